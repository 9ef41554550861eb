/*
 * A mount the tree shares with the outside world: declared external at the dump
 * (external=mnt[D/ext]:KEY) and bound again at the restore from the path the restore
 * names (external=mnt[KEY]:PATH), which test_mount_external.py makes another directory
 * with the same content as the one bound at the start:
 *
 *   --outside=DIR  a tmpfs of the caller's mount namespace (source "mnt-external"),
 *                  holding "data" ("shared") and "marker" (which copy it is)
 *   D/ext          a bind of DIR (private, as everything mnt_prepare leaves)
 *   fd             D/ext/data, open read-only, 3 bytes read
 *   child C        (same mount namespace) its cwd is D/ext
 *
 * Before the dump and after the restore: the top mount at D/ext is a private one of
 * "mnt-external" with root /; D/ext/data reads "shared"; the fd is on that mount (fdinfo
 * mnt_id) and the file's inode is D/ext/data's, at offset 3 it reads "red"; C's cwd is
 * D/ext (st_dev, st_ino) and ./data reads "shared" for it.  Before the dump only: D/ext
 * is DIR (st_dev and marker).  After the restore the program does not look at the marker:
 * which copy is bound there is what the test module checks from outside.
 */
#include "mntcheck.h"

const char *test_doc = "a bind of a mount of the outside world, declared external at the "
		       "dump and bound at the restore from the path it names; an fd and a "
		       "cwd on it";

static char *outside;
TEST_OPTION(outside, string, "the outside world's directory (a tmpfs) to bind", 1);
/* "": D/ext private; "slave" / "shared": it keeps receiving from (and, shared, sending
 * to) the outside's mount - cloned from it before the program's namespace is made */
static char *propagation = "";
TEST_OPTION(propagation, string, "slave or shared: D/ext propagates with --outside", 0);
static int sending = -1;	/* the clone of --outside, before mnt_prepare */

/* Whether the propagation tags of D/ext's line are what --propagation asks. */
static int propagates_as_asked(const struct mnt_line *l)
{
	int shared = mnt_tag(l, "shared") != 0, master = mnt_tag(l, "master") != 0;

	if (!strcmp(propagation, "slave"))
		return !shared && master;
	if (!strcmp(propagation, "shared"))
		return shared && !master;
	return !l->tags[0];
}

#define SOURCE "mnt-external"
#define DATA "shared"
#define KEPT 3			/* bytes of data the fd has read */

enum { OP_CWD = MNT_OP_USER };

static struct mnt_srv child;
static int data_fd = -1;

static const char *ext(const char *rel)
{
	return rel ? mp("%s/ext/%s", mnt_dir, rel) : mp("%s/ext", mnt_dir);
}

static int child_ops(struct mnt_srv *s, const struct mnt_req *q, struct mnt_rep *r)
{
	(void)s;
	if (q->op != OP_CWD)
		return 0;		/* quit */
	if (stat(".", &r->st) || read_whole("data", r->buf, sizeof(r->buf)) < 0)
		return -1;
	return 0;
}

static int setup_child(struct mnt_srv *s, void *arg)
{
	(void)s;
	(void)arg;
	if (chdir(ext(NULL))) {
		pr_perror("C: chdir %s", ext(NULL));
		return -1;
	}
	return 0;
}

/* The mnt_id fdinfo gives fd (-1 on error). */
static int fd_mnt_id(int fd)
{
	char buf[1024], *p;

	if (read_whole(mp("/proc/self/fdinfo/%d", fd), buf, sizeof(buf)) < 0)
		return -1;
	p = strstr(buf, "mnt_id:");
	return p ? atoi(p + strlen("mnt_id:")) : -1;
}

static int check(const char *when)
{
	struct stat st, fst, dst;
	struct mnt_line l;
	struct mnt_rep r;
	char buf[64];
	ssize_t n;
	int bad = 0;

	errno = 0;
	if (mnt_find(0, ext(NULL), NULL, &l) != 1) {
		fail("%s: no mount at %s", when, ext(NULL));
		return 1;
	}
	if (strcmp(l.source, SOURCE) || strcmp(l.root, "/") || !propagates_as_asked(&l)) {
		fail("%s: the top mount at %s is %s root %s (%s), not a %s %s of root /",
		     when, ext(NULL), l.source, l.root, l.tags, *propagation ? propagation :
		     "private", SOURCE);
		bad = 1;
	}
	if (mnt_expect_file(ext("data"), DATA))
		bad = 1;

	/* the kept fd: on the mount at D/ext, the file's inode, its offset */
	errno = 0;
	if (fd_mnt_id(data_fd) != l.id) {
		fail("%s: the fd of ext/data is on mount %d, %s is mount %d", when,
		     fd_mnt_id(data_fd), ext(NULL), l.id);
		bad = 1;
	}
	if (fstat(data_fd, &fst) || stat(ext("data"), &st)) {
		fail("%s: stat the fd or ext/data", when);
		return 1;
	}
	if (fst.st_dev != st.st_dev || fst.st_ino != st.st_ino) {
		errno = 0;
		fail("%s: the fd is %#lx/%lu, ext/data %#lx/%lu", when, (unsigned long)fst.st_dev,
		     (unsigned long)fst.st_ino, (unsigned long)st.st_dev, (unsigned long)st.st_ino);
		bad = 1;
	}
	n = pread(data_fd, buf, sizeof(buf) - 1, 0);
	if (n < 0 || lseek(data_fd, 0, SEEK_CUR) != KEPT) {
		fail("%s: pread of the fd, or its offset is not %d", when, KEPT);
		bad = 1;
	} else {
		buf[n] = 0;
		errno = 0;
		if (strcmp(buf, DATA)) {
			fail("%s: the fd reads \"%s\", not \"%s\"", when, buf, DATA);
			bad = 1;
		}
	}

	/* C's cwd */
	if (srv_user(&child, OP_CWD, "", &r) || stat(ext(NULL), &dst)) {
		fail("%s: C's cwd", when);
		return 1;
	}
	errno = 0;
	if (r.st.st_dev != dst.st_dev || r.st.st_ino != dst.st_ino || strcmp(r.buf, DATA)) {
		fail("%s: C's cwd is %#lx/%lu with data \"%s\"; %s is %#lx/%lu", when,
		     (unsigned long)r.st.st_dev, (unsigned long)r.st.st_ino, r.buf, ext(NULL),
		     (unsigned long)dst.st_dev, (unsigned long)dst.st_ino);
		bad = 1;
	}

	if (!strcmp(when, "before")) {	/* D/ext is --outside */
		char marker[64];

		if (stat(outside, &st) || read_whole(mp("%s/marker", outside), marker,
						     sizeof(marker)) < 0) {
			fail("%s: stat %s or read its marker", when, outside);
			return 1;
		}
		if (st.st_dev != dst.st_dev || mnt_expect_file(ext("marker"), marker)) {
			errno = 0;
			fail("%s: %s is not a bind of %s", when, ext(NULL), outside);
			bad = 1;
		}
	}
	return bad;
}

static int setup(void)
{
	char buf[KEPT];

	if (sending >= 0) {	/* the clone of the outside's mount, attached here */
		if (mnt_mkdirs(ext(NULL), 0755) ||
		    syscall(SYS_move_mount, sending, "", AT_FDCWD, ext(NULL),
			    MOVE_MOUNT_F_EMPTY_PATH)) {
			pr_perror("move_mount the clone of %s to %s", outside, ext(NULL));
			return -1;
		}
		close(sending);
		if (!strcmp(propagation, "slave") && mnt_slave(ext(NULL)))
			return -1;
	} else if (mnt_bind(outside, ext(NULL), 0)) {
		return -1;
	}
	data_fd = open(ext("data"), O_RDONLY | O_CLOEXEC);
	if (data_fd < 0 || read(data_fd, buf, KEPT) != KEPT) {
		pr_perror("open and read %s", ext("data"));
		return -1;
	}
	if (mnt_srv_init(&child, "C", NULL, child_ops) ||
	    mnt_srv_start(&child, 0, setup_child, NULL))
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (*propagation) {	/* a peer of the outside's mount, in our namespace still */
		sending = syscall(SYS_open_tree, AT_FDCWD, outside, OPEN_TREE_CLONE |
				  OPEN_TREE_CLOEXEC);
		if (sending < 0) {
			pr_perror("open_tree %s", outside);
			return 1;
		}
	}
	if (mnt_prepare() || setup())
		return 1;
	return mnt_around(check, "the external mount did not hold");
}
