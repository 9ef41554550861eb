/*
 * Binds of directories and files, a recursive bind, a read-only bind of a file:
 *
 *   D/src        tmpfs "bind-src": dir/f, file, rofile
 *   D/bdir       bind of D/src/dir
 *   D/bfile      bind of D/src/file (a file on the file system of --dirname)
 *   D/src/fbind  bind of D/src/dir/f (a file bind on a file inside the tmpfs)
 *   D/rofile     bind of D/src/rofile, made ro
 *   D/tree       tmpfs "bind-tree" with submounts m1 (tmpfs "bind-m1") and, inside it,
 *                m1/m2 (tmpfs "bind-m2"), each with a marker
 *   D/rb         recursive bind of D/tree (its copies of m1 and m1/m2 come with it)
 *
 * Before the dump and after the restore: the roots, sources and options mountinfo gives
 * each bind; the content read through each (and what was last written through D/bfile
 * reads through D/src/file); st_dev and st_ino of each bind are its source's; D/rofile
 * refuses writes (EROFS) while D/src/rofile takes them.
 */
#include "mntcheck.h"

const char *test_doc = "binds of a directory and of files, a recursive bind of a tree with "
		       "two submounts, a ro file bind: contents, inodes, ro";

static char last[64] = "file";	/* what D/bfile last got */

struct same {
	const char *bind, *src;
};

static const struct same sames[] = {
	{ "bdir", "src/dir" },
	{ "bfile", "src/file" },
	{ "src/fbind", "src/dir/f" },
	{ "rofile", "src/rofile" },
	{ "rb", "tree" },
	{ "rb/m1", "tree/m1" },
	{ "rb/m1/m2", "tree/m1/m2" },
	{ "rb/m1/m2/marker", "tree/m1/m2/marker" },
};

struct want {
	const char *point, *source, *root;
	int ro;
};

static const struct want wants[] = {
	{ "bdir", "bind-src", "/dir", 0 },
	{ "bfile", "bind-src", "/file", 0 },
	{ "src/fbind", "bind-src", "/dir/f", 0 },
	{ "rofile", "bind-src", "/rofile", 1 },
	{ "tree", "bind-tree", "/", 0 },
	{ "tree/m1", "bind-m1", "/", 0 },
	{ "tree/m1/m2", "bind-m2", "/", 0 },
	{ "rb", "bind-tree", "/", 0 },
	{ "rb/m1", "bind-m1", "/", 0 },
	{ "rb/m1/m2", "bind-m2", "/", 0 },
};

static const char *at(const char *rel)
{
	return mp("%s/%s", mnt_dir, rel);
}

static int check(const char *when)
{
	struct mnt_line l;
	struct stat a, b;
	unsigned i;
	int bad = 0, fd;

	for (i = 0; i < ARRAY_SIZE(wants); i++) {
		const struct want *w = &wants[i];

		errno = 0;
		if (mnt_find(0, at(w->point), w->source, &l) != 1) {
			fail("%s: no mount of %s at %s", when, w->source, w->point);
			bad = 1;
			continue;
		}
		if (strcmp(l.root, w->root) || mnt_has_opt(l.opts, "ro") != w->ro) {
			fail("%s: %s: root %s options %s; expected root %s, %s", when, w->point,
			     l.root, l.opts, w->root, w->ro ? "ro" : "rw");
			bad = 1;
		}
	}
	for (i = 0; i < ARRAY_SIZE(sames); i++) {
		if (stat(at(sames[i].bind), &a) || stat(at(sames[i].src), &b)) {
			fail("%s: stat %s or %s", when, sames[i].bind, sames[i].src);
			bad = 1;
			continue;
		}
		errno = 0;
		if (a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
			fail("%s: %s is %#lx/%lu, its source %s %#lx/%lu", when, sames[i].bind,
			     (unsigned long)a.st_dev, (unsigned long)a.st_ino, sames[i].src,
			     (unsigned long)b.st_dev, (unsigned long)b.st_ino);
			bad = 1;
		}
	}
	if (mnt_expect_file(at("bdir/f"), "dir-f") || mnt_expect_file(at("src/fbind"), "dir-f") ||
	    mnt_expect_file(at("bfile"), last) || mnt_expect_file(at("rofile"), "rofile") ||
	    mnt_expect_file(at("rb/marker"), "tree") ||
	    mnt_expect_file(at("rb/m1/marker"), "m1") ||
	    mnt_expect_file(at("rb/m1/m2/marker"), "m2"))
		bad = 1;

	/* a write through the file bind is a write to its source */
	snprintf(last, sizeof(last), "file-%s", when);
	if (mnt_write_file(at("bfile"), last, 0644) || mnt_expect_file(at("src/file"), last))
		bad = 1;

	fd = open(at("rofile"), O_WRONLY | O_CLOEXEC);
	if (fd >= 0 || errno != EROFS) {
		fail("%s: opening rofile for writing: not EROFS", when);
		if (fd >= 0)
			close(fd);
		bad = 1;
	}
	fd = open(at("src/rofile"), O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0) {
		fail("%s: opening src/rofile for writing", when);
		bad = 1;
	} else {
		close(fd);
	}
	return bad;
}

static int setup(void)
{
	if (mnt_tmpfs("bind-src", at("src"), 0, "size=1m,mode=755") ||
	    mkdir(at("src/dir"), 0755) || mnt_write_file(at("src/dir/f"), "dir-f", 0644) ||
	    mnt_write_file(at("src/file"), "file", 0644) ||
	    mnt_write_file(at("src/rofile"), "rofile", 0644) ||
	    mnt_write_file(at("src/fbind"), "", 0644))
		return -1;
	if (mnt_tmpfs("bind-tree", at("tree"), 0, "size=1m,mode=755") ||
	    mnt_write_file(at("tree/marker"), "tree", 0644) ||
	    mnt_tmpfs("bind-m1", at("tree/m1"), 0, "size=1m,mode=755") ||
	    mnt_write_file(at("tree/m1/marker"), "m1", 0644) ||
	    mnt_tmpfs("bind-m2", at("tree/m1/m2"), 0, "size=1m,mode=755") ||
	    mnt_write_file(at("tree/m1/m2/marker"), "m2", 0644))
		return -1;
	if (mnt_bind(at("src/dir"), at("bdir"), 0) || mnt_bind(at("src/file"), at("bfile"), 0) ||
	    mnt_bind(at("src/dir/f"), at("src/fbind"), 0) ||
	    mnt_bind(at("src/rofile"), at("rofile"), 0) || mnt_bind(at("tree"), at("rb"), 1))
		return -1;
	if (mount(NULL, at("rofile"), NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL)) {
		pr_perror("remount rofile ro");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (mnt_prepare() || setup())
		return 1;
	return mnt_around(check, "the binds did not hold");
}
