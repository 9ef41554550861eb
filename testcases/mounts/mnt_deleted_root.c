/*
 * Binds whose source was removed afterwards:
 *
 *   D/t    tmpfs "del-src" that held dir/, file and sub/f2
 *   D/bd   bind of D/t/dir, then the directory removed
 *   D/bf   bind of D/t/file, then the file unlinked, and a new, other file created under
 *          the same name
 *   D/bf2  bind of D/t/sub/f2, then f2 unlinked and sub removed
 *
 * Before the dump and after the restore: mountinfo gives the roots "/dir//deleted",
 * "/file//deleted" and "/sub/f2//deleted"; the binds have no links left (st_nlink 0);
 * D/bf and D/bf2 read what was last written through them (and a write goes on working),
 * the new D/t/file is another inode with its own content; D/bd is empty and refuses a
 * new entry (ENOENT: a removed directory); D/t lists only the new file.
 */
#include "mntcheck.h"

const char *test_doc = "binds of a directory and of files whose sources were removed "
		       "(mountinfo roots ending in //deleted)";

static char last_bf[64] = "file-data", last_bf2[64] = "f2-data";

static const char *at(const char *rel)
{
	return mp("%s/%s", mnt_dir, rel);
}

static int check_bind(const char *when, const char *point, const char *root, int dir)
{
	struct mnt_line l = { 0 };
	struct stat st;

	errno = 0;
	if (mnt_find(0, at(point), "del-src", &l) != 1 || strcmp(l.root, root)) {
		fail("%s: %s: no bind of del-src with root %s (%s)", when, point, root, l.root);
		return 1;
	}
	if (stat(at(point), &st) || st.st_nlink != 0 || !S_ISDIR(st.st_mode) != !dir) {
		fail("%s: %s: %lu links, mode %o: not a removed %s", when, point,
		     (unsigned long)st.st_nlink, st.st_mode, dir ? "directory" : "file");
		return 1;
	}
	return 0;
}

static int rewrite(const char *when, const char *point, char *last, size_t size)
{
	int bad = mnt_expect_file(at(point), last);

	snprintf(last, size, "%s-%s", point, when);
	return bad || mnt_write_file(at(point), last, 0644) || mnt_expect_file(at(point), last);
}

static int check(const char *when)
{
	struct stat a, b;
	char list[256];
	int bad = 0, fd;

	bad |= check_bind(when, "bd", "/dir//deleted", 1);
	bad |= check_bind(when, "bf", "/file//deleted", 0);
	bad |= check_bind(when, "bf2", "/sub/f2//deleted", 0);
	if (bad)
		return 1;

	bad |= rewrite(when, "bf", last_bf, sizeof(last_bf));
	bad |= rewrite(when, "bf2", last_bf2, sizeof(last_bf2));
	if (mnt_expect_file(at("t/file"), "impostor") || stat(at("t/file"), &a) ||
	    stat(at("bf"), &b) || a.st_ino == b.st_ino) {
		fail("%s: t/file is not a file of its own", when);
		bad = 1;
	}
	if (mnt_listdir(at("bd"), list, sizeof(list)) || list[0]) {
		fail("%s: bd lists \"%s\", not nothing", when, list);
		bad = 1;
	}
	fd = open(at("bd/new"), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	if (fd >= 0 || errno != ENOENT) {
		fail("%s: creating bd/new: not ENOENT", when);
		if (fd >= 0) {
			close(fd);
			unlink(at("bd/new"));
		}
		bad = 1;
	}
	if (mnt_listdir(at("t"), list, sizeof(list)) || strcmp(list, "file")) {
		fail("%s: t lists \"%s\", not \"file\"", when, list);
		bad = 1;
	}
	return bad;
}

static int setup(void)
{
	if (mnt_tmpfs("del-src", at("t"), 0, "size=1m,mode=755") || mkdir(at("t/dir"), 0755) ||
	    mnt_write_file(at("t/file"), "file-data", 0644) || mkdir(at("t/sub"), 0755) ||
	    mnt_write_file(at("t/sub/f2"), "f2-data", 0644))
		return -1;
	if (mnt_bind(at("t/dir"), at("bd"), 0) || mnt_bind(at("t/file"), at("bf"), 0) ||
	    mnt_bind(at("t/sub/f2"), at("bf2"), 0))
		return -1;
	if (rmdir(at("t/dir")) || unlink(at("t/file")) || unlink(at("t/sub/f2")) ||
	    rmdir(at("t/sub"))) {
		pr_perror("remove the sources");
		return -1;
	}
	return mnt_write_file(at("t/file"), "impostor", 0644);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (mnt_prepare() || setup())
		return 1;
	return mnt_around(check, "the binds of removed sources did not hold");
}
