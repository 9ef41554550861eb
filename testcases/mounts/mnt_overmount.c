/*
 * Overmounts, and a process that uses what they hide:
 *
 *   D/stack  three tmpfs on one point: "ovm-bottom", "ovm-middle", "ovm-top", each with a
 *            file "level" naming it; the bottom one also holds "data"
 *   D/a      tmpfs "ovm-x" with a mount "ovm-y" at D/a/b; then tmpfs "ovm-z" mounted on
 *            D/a, which hides both (Y's mount point is in X)
 *   child C  (same mount namespace) opened D/stack/data while the bottom tmpfs was on top,
 *            and has its cwd in D/a/b (in Y) since before Z came
 *
 * Before the dump and after the restore: mountinfo has the three at D/stack in that
 * order (each mounted on the one below) and Y hidden at D/a/b under Z; D/stack/level
 * reads "top", D/a/marker "z"; C reads "bottom-data" through its fd, whose st_dev is the
 * bottom tmpfs's (mountinfo); C's cwd has Y's st_dev, getcwd() gives D/a/b and ./marker
 * reads "y".  After the restore also: unmounting the top of the stack shows "middle",
 * then "bottom"; unmounting Z shows Y's marker at D/a/b.
 */
#include <sys/sysmacros.h>

#include "mntcheck.h"

const char *test_doc = "a stack of three tmpfs, a mount hidden under an overmount of its "
		       "parent, a process with an fd and its cwd in the hidden ones";

enum { OP_READFD = MNT_OP_USER, OP_CWD };

static struct mnt_srv child;
static int data_fd = -1;

static int child_ops(struct mnt_srv *s, const struct mnt_req *q, struct mnt_rep *r)
{
	(void)s;
	switch (q->op) {
	case OP_READFD: {
		ssize_t n = pread(data_fd, r->buf, sizeof(r->buf) - 1, 0);

		if (n < 0 || fstat(data_fd, &r->st))
			return -1;
		r->buf[n] = 0;
		return 0;
	}
	case OP_CWD: {
		char cwd[512];
		ssize_t n;

		if (stat(".", &r->st) || !getcwd(cwd, sizeof(cwd)))
			return -1;
		n = read_whole("marker", r->buf + 512, 512);
		if (n < 0)
			return -1;
		memcpy(r->buf, cwd, 512);
		return 0;
	}
	}
	return 0;		/* quit */
}

static int setup_child(struct mnt_srv *s, void *arg)
{
	(void)s;
	(void)arg;
	data_fd = open(mp("%s/stack/data", mnt_dir), O_RDONLY);
	if (data_fd < 0) {
		pr_perror("C: open stack/data");
		return -1;
	}
	if (chdir(mp("%s/a/b", mnt_dir))) {
		pr_perror("C: chdir a/b");
		return -1;
	}
	return 0;
}

static const char *at(const char *rel)
{
	return mp("%s/%s", mnt_dir, rel);
}

static int check(const char *when)
{
	struct mnt_line bottom, middle, top, x, y, z, l;
	struct mnt_rep r;
	struct stat st;
	int bad = 0;

	errno = 0;
	if (mnt_find(0, at("stack"), "ovm-bottom", &bottom) != 1 ||
	    mnt_find(0, at("stack"), "ovm-middle", &middle) != 1 ||
	    mnt_find(0, at("stack"), "ovm-top", &top) != 1 ||
	    mnt_find(0, at("a"), "ovm-x", &x) != 1 || mnt_find(0, at("a"), "ovm-z", &z) != 1 ||
	    mnt_find(0, at("a/b"), "ovm-y", &y) != 1) {
		fail("%s: a mount of the stack or of D/a is missing", when);
		return 1;
	}
	if (middle.parent != bottom.id || top.parent != middle.id) {
		fail("%s: the stack is not bottom, middle, top (parents %d %d, ids %d %d %d)",
		     when, middle.parent, top.parent, bottom.id, middle.id, top.id);
		bad = 1;
	}
	if (y.parent != x.id || z.parent != x.id) {
		fail("%s: Y (on %d) and Z (on %d) are not both on X (%d)", when, y.parent,
		     z.parent, x.id);
		bad = 1;
	}
	if (mnt_find(0, at("stack"), NULL, &l) != 1 || strcmp(l.source, "ovm-top") ||
	    mnt_find(0, at("a"), NULL, &l) != 1 || strcmp(l.source, "ovm-z")) {
		fail("%s: the tops of D/stack and D/a are not ovm-top and ovm-z", when);
		bad = 1;
	}
	if (mnt_expect_file(at("stack/level"), "top") || mnt_expect_file(at("a/marker"), "z"))
		bad = 1;
	if (stat(at("a/b"), &st) == 0 || errno != ENOENT) {
		fail("%s: D/a/b shows through Z", when);
		bad = 1;
	}

	if (srv_user(&child, OP_READFD, "", &r)) {
		fail("%s: C: read through its fd", when);
		return 1;
	}
	errno = 0;
	if (strcmp(r.buf, "bottom-data") ||
	    r.st.st_dev != makedev(bottom.major, bottom.minor)) {
		fail("%s: C's fd reads \"%s\" on %u:%u, not \"bottom-data\" on %u:%u", when,
		     r.buf, major(r.st.st_dev), minor(r.st.st_dev), bottom.major, bottom.minor);
		bad = 1;
	}
	if (srv_user(&child, OP_CWD, "", &r)) {
		fail("%s: C: its cwd", when);
		return 1;
	}
	errno = 0;
	if (r.st.st_dev != makedev(y.major, y.minor) || strcmp(r.buf, at("a/b")) ||
	    strcmp(r.buf + 512, "y")) {
		fail("%s: C's cwd is %s on %u:%u with marker \"%s\", not %s on %u:%u with \"y\"",
		     when, r.buf, major(r.st.st_dev), minor(r.st.st_dev), r.buf + 512, at("a/b"),
		     y.major, y.minor);
		bad = 1;
	}
	return bad;
}

/* After the restore: take the overmounts away one by one. */
static int unstack(void)
{
	int bad = 0;

	if (umount2(at("stack"), 0) || mnt_expect_file(at("stack/level"), "middle") ||
	    umount2(at("stack"), 0) || mnt_expect_file(at("stack/level"), "bottom")) {
		fail("unmounting the stack does not show middle, then bottom");
		bad = 1;
	}
	if (umount2(at("a"), 0) || mnt_expect_file(at("a/b/marker"), "y")) {
		fail("unmounting Z does not show Y");
		bad = 1;
	}
	return bad;
}

static int setup(void)
{
	static const char *const levels[] = { "bottom", "middle", "top" };
	int i;

	for (i = 0; i < 3; i++) {
		if (mnt_tmpfs(mp("ovm-%s", levels[i]), at("stack"), 0, "size=1m,mode=755") ||
		    mnt_write_file(at("stack/level"), levels[i], 0644))
			return -1;
		if (i == 0 && mnt_write_file(at("stack/data"), "bottom-data", 0644))
			return -1;
		if (i == 0 && (mnt_tmpfs("ovm-x", at("a"), 0, "size=1m,mode=755") ||
			       mnt_tmpfs("ovm-y", at("a/b"), 0, "size=1m,mode=755") ||
			       mnt_write_file(at("a/b/marker"), "y", 0644) ||
			       mnt_srv_init(&child, "C", NULL, child_ops) ||
			       mnt_srv_start(&child, 0, setup_child, NULL)))
			return -1;
	}
	return mnt_tmpfs("ovm-z", at("a"), 0, "size=1m,mode=755") ||
	       mnt_write_file(at("a/marker"), "z", 0644);
}

/* check(); after the restore, the overmounts taken away one by one too */
static int check_when(const char *when)
{
	int bad = check(when);

	if (strcmp(when, "before"))
		bad |= unstack();
	return bad;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (mnt_prepare() || setup()) {
		mnt_srv_quit_all();
		return 1;
	}
	return mnt_around(check_when, "the overmounts did not hold");
}
