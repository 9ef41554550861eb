/*
 * Mount and superblock options, seen by behaviour:
 *
 *   D/t1  tmpfs "opt-t1": size=2m, nr_inodes=64, mode=1750, uid=1000, gid=1001, holding
 *         file, script (#!/bin/sh, exit 42), link -> file, dir/, atime, suid (a copy of
 *         this program, owner 1000, mode 04755: run with --euid it exits 10 when its
 *         euid is 1000) and, outside a user namespace, null (char 1:3)
 *   binds of D/t1, each with one option, set by mount_setattr() or MS_REMOUNT|MS_BIND:
 *         D/ro, D/nosuid, D/nodev, D/noexec, D/noatime, D/strictatime, D/nodiratime,
 *         D/nosymfollow, D/multi (ro, nosuid, nodev, noexec at once)
 *   D/t2  tmpfs "opt-t2" holding file, remounted ro (the superblock too); D/t2rw a bind
 *         of it made rw again (the superblock stays ro)
 *   D/t3  tmpfs "opt-t3", defaults
 *
 * Before the dump and after the restore: statvfs flags of every mount; mountinfo options
 * and superblock options as they were; D/t1's size, inode count, mode and owner; writes
 * fail with EROFS where ro (the mount or the superblock) and work in D/t1; the script
 * runs (42) from D/t1 and fails with EACCES from D/noexec; the suid copy gets euid 1000
 * from D/t1 and not from D/nosuid; link opens through D/t1 and fails with ELOOP through
 * D/nosymfollow; null opens through D/t1 and fails with EACCES through D/nodev; reading
 * a file whose atime is ahead of its mtime and ctime moves its atime through
 * D/strictatime only, not through D/t1 (relatime) nor D/noatime; listing a directory
 * with an old atime moves it through D/strictatime and not through D/nodiratime;
 * st_dev is one per superblock: the same for D/t1 and its binds, D/t2 and D/t2rw.
 */
#include <grp.h>
#include <sys/sysmacros.h>
#include <sys/time.h>

#include "mntcheck.h"

#ifndef ST_NOSYMFOLLOW
#define ST_NOSYMFOLLOW 0x2000
#endif
#define ST_MASK (ST_RDONLY | ST_NOSUID | ST_NODEV | ST_NOEXEC | ST_NOATIME | ST_NODIRATIME | \
		 ST_RELATIME | ST_NOSYMFOLLOW)

const char *test_doc = "tmpfs options, binds with ro, nosuid, nodev, noexec, atime modes "
		       "and nosymfollow, a ro superblock: each by behaviour";

struct bind {
	const char *name;
	unsigned long attr_set;		/* by mount_setattr() when not 0 */
	unsigned long remount;		/* else by MS_REMOUNT | MS_BIND | this */
	unsigned long statvfs;		/* the flags statvfs must show */
	char opts[256], super[1024];	/* mountinfo, as before the dump */
};

static struct bind binds[] = {
	{ "t1", 0, 0, ST_RELATIME },
	{ "ro", 0, MS_RDONLY, ST_RDONLY | ST_RELATIME },
	{ "nosuid", 0, MS_NOSUID, ST_NOSUID | ST_RELATIME },
	{ "nodev", MOUNT_ATTR_NODEV, 0, ST_NODEV | ST_RELATIME },
	{ "noexec", MOUNT_ATTR_NOEXEC, 0, ST_NOEXEC | ST_RELATIME },
	{ "noatime", MOUNT_ATTR_NOATIME, 0, ST_NOATIME },
	{ "strictatime", 0, MS_STRICTATIME, 0 },
	{ "nodiratime", 0, MS_NODIRATIME, ST_NODIRATIME | ST_RELATIME },
	{ "nosymfollow", MOUNT_ATTR_NOSYMFOLLOW, 0, ST_NOSYMFOLLOW | ST_RELATIME },
	{ "multi", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, 0,
	  ST_RDONLY | ST_NOSUID | ST_NODEV | ST_NOEXEC | ST_RELATIME },
	{ "t2", 0, 0, ST_RDONLY | ST_RELATIME },
	{ "t2rw", 0, 0, ST_RDONLY | ST_RELATIME },
	{ "t3", 0, 0, ST_RELATIME },
};

static int in_userns;

static const char *at(const char *mnt, const char *file)
{
	return file ? mp("%s/%s/%s", mnt_dir, mnt, file) : mp("%s/%s", mnt_dir, mnt);
}

/* Run path with arg, as root, or as uid:gid through an fd opened before (the way to it
 * may be closed to them); its exit status, or -errno of the exec. */
static int run(const char *path, const char *arg, uid_t uid, gid_t gid)
{
	int fd = open(path, O_PATH | O_CLOEXEC), st;
	pid_t pid;

	if (fd < 0)
		return -errno;
	pid = test_fork();
	if (pid < 0) {
		close(fd);
		return -errno;
	}
	if (pid == 0) {
		char *argv[] = { (char *)path, (char *)arg, NULL }, *envp[] = { NULL };

		if (!uid) {
			/* a script: its interpreter opens it by path */
			execve(path, argv, envp);
			_exit(200 + (errno & 0x3f));
		}
		if (setgroups(0, NULL) || setresgid(gid, gid, gid) || setresuid(uid, uid, uid))
			_exit(100);
		syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
		_exit(200 + (errno & 0x3f));
	}
	close(fd);
	st = wait_status(pid);
	if (st < 0 || !WIFEXITED(st))
		return -1000;
	if (WEXITSTATUS(st) >= 200)
		return -(WEXITSTATUS(st) - 200);
	return WEXITSTATUS(st);
}

static int expect_errno(const char *what, int ret, int err)
{
	if (ret >= 0) {
		errno = 0;
		fail("%s worked, expected %s", what, strerror(err));
		return 1;
	}
	if (errno != err) {
		fail("%s: expected %s", what, strerror(err));
		return 1;
	}
	return 0;
}

static int try_open(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC, 0644);

	if (fd >= 0)
		close(fd);
	return fd < 0 ? -1 : 0;
}

static int read_one(const char *path)
{
	char c;
	int fd = open(path, O_RDONLY | O_CLOEXEC), n;

	if (fd < 0)
		return -1;
	n = read(fd, &c, 1);
	close(fd);
	return n < 0 ? -1 : 0;
}

static int list_one(const char *path)
{
	DIR *d = opendir(path);

	if (!d)
		return -1;
	while (readdir(d))
		;
	closedir(d);
	return 0;
}

/* atime of path (ns), or -1 */
static long long atime_of(const char *path)
{
	struct stat st;

	if (stat(path, &st))
		return -1;
	return st.st_atim.tv_sec * 1000000000LL + st.st_atim.tv_nsec;
}

static int set_times(const char *path, long atime_off, long mtime_off)
{
	struct timespec now, ts[2];

	clock_gettime(CLOCK_REALTIME, &now);
	ts[0] = (struct timespec){ now.tv_sec + atime_off, 123456789 };
	ts[1] = (struct timespec){ now.tv_sec + mtime_off, 987654321 };
	if (utimensat(AT_FDCWD, path, ts, 0)) {
		pr_perror("utimensat %s", path);
		return -1;
	}
	return 0;
}

/* Does `access` (read or list) through mount `mnt` move the atime of `file`? 1, 0 or -1 */
static int moves_atime(const char *mnt, const char *file, long atime_off, long mtime_off,
		       int (*access)(const char *))
{
	long long was;

	if (set_times(at("t1", file), atime_off, mtime_off))
		return -1;
	was = atime_of(at("t1", file));
	if (was < 0 || access(at(mnt, file)))
		return -1;
	return atime_of(at("t1", file)) != was;
}

static int check_atime(const char *when)
{
	static const struct {
		const char *mnt, *file;
		int dir, moves;
	} cases[] = {
		/* atime an hour ahead of mtime and ctime: relatime leaves it */
		{ "t1", "atime", 0, 0 },
		{ "noatime", "atime", 0, 0 },
		{ "strictatime", "atime", 0, 1 },
		/* a directory with an atime older than its ctime: relatime would move it */
		{ "t1", "dir", 1, 1 },
		{ "nodiratime", "dir", 1, 0 },
		{ "strictatime", "dir", 1, 1 },
	};
	unsigned i;
	int bad = 0;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		int got = cases[i].dir ? moves_atime(cases[i].mnt, cases[i].file, -3600, -7200,
						     list_one)
				       : moves_atime(cases[i].mnt, cases[i].file, 3600, -7200,
						     read_one);

		errno = 0;
		if (got != cases[i].moves) {
			fail("%s: %s %s through %s %s its atime", when,
			     cases[i].dir ? "listing" : "reading", cases[i].file, cases[i].mnt,
			     got < 0 ? "failed: cannot tell" : got ? "moved" : "did not move");
			bad = 1;
		}
	}
	return bad;
}

static int check(const char *when, int first)
{
	struct stat st, st1, st2, st3;
	struct statvfs sv;
	struct mnt_line l;
	unsigned i;
	int bad = 0, r;
	char buf[64];

	for (i = 0; i < ARRAY_SIZE(binds); i++) {
		struct bind *b = &binds[i];
		const char *src = !strncmp(b->name, "t2", 2) ? "opt-t2" :
				  !strcmp(b->name, "t3") ? "opt-t3" : "opt-t1";

		errno = 0;
		if (mnt_find(0, at(b->name, NULL), src, &l) != 1) {
			fail("%s: no mount of %s at %s", when, src, at(b->name, NULL));
			return 1;
		}
		if (first) {
			snprintf(b->opts, sizeof(b->opts), "%s", l.opts);
			snprintf(b->super, sizeof(b->super), "%s", l.super);
			test_msg("%s: %s: %s | %s\n", when, b->name, l.opts, l.super);
		} else if (strcmp(b->opts, l.opts) || strcmp(b->super, l.super)) {
			fail("%s: %s: options %s | %s, before the dump %s | %s", when, b->name,
			     l.opts, l.super, b->opts, b->super);
			bad = 1;
		}
		if (statvfs(at(b->name, NULL), &sv)) {
			fail("%s: statvfs %s", when, b->name);
			return 1;
		}
		errno = 0;
		if ((sv.f_flag & ST_MASK) != b->statvfs) {
			fail("%s: %s: statvfs flags %#lx, expected %#lx", when, b->name,
			     sv.f_flag & ST_MASK, b->statvfs);
			bad = 1;
		}
	}

	/* the tmpfs options of t1 */
	errno = 0;
	if (mnt_find(0, at("t1", NULL), "opt-t1", &l) != 1 || statvfs(at("t1", NULL), &sv) ||
	    stat(at("t1", NULL), &st)) {
		fail("%s: t1", when);
		return 1;
	}
	if (sv.f_blocks * sv.f_frsize != 2 << 20 || sv.f_files != 64 ||
	    (st.st_mode & 07777) != 01750 || st.st_uid != 1000 || st.st_gid != 1001 ||
	    !mnt_has_opt(l.super, "size=2048k") || !mnt_has_opt(l.super, "nr_inodes=64") ||
	    !mnt_has_opt(l.super, "mode=1750")) {
		fail("%s: t1: %lu bytes, %lu inodes, mode %o, owner %d:%d, options %s; expected "
		     "2 MiB, 64 inodes, 1750, 1000:1001", when,
		     (unsigned long)(sv.f_blocks * sv.f_frsize), (unsigned long)sv.f_files,
		     st.st_mode & 07777, st.st_uid, st.st_gid, l.super);
		bad = 1;
	}
	if (mnt_find(0, at("t2", NULL), "opt-t2", &l) != 1 || !mnt_has_opt(l.super, "ro") ||
	    mnt_find(0, at("t2rw", NULL), "opt-t2", &l) != 1 || !mnt_has_opt(l.opts, "rw")) {
		fail("%s: t2 is no ro superblock, or t2rw no rw mount of it", when);
		bad = 1;
	}

	/* writes */
	bad |= expect_errno(mp("%s: creating ro/new", when),
			    try_open(at("ro", "new"), O_CREAT | O_WRONLY), EROFS);
	bad |= expect_errno(mp("%s: writing ro/file", when), try_open(at("ro", "file"), O_WRONLY),
			    EROFS);
	bad |= expect_errno(mp("%s: writing multi/file", when),
			    try_open(at("multi", "file"), O_WRONLY), EROFS);
	bad |= expect_errno(mp("%s: creating t2/new", when),
			    try_open(at("t2", "new"), O_CREAT | O_WRONLY), EROFS);
	bad |= expect_errno(mp("%s: writing t2rw/file (ro superblock)", when),
			    try_open(at("t2rw", "file"), O_WRONLY), EROFS);
	if (try_open(at("t1", "file"), O_WRONLY | O_APPEND) ||
	    try_open(at("nosuid", "file"), O_WRONLY | O_APPEND)) {
		fail("%s: writing t1/file or nosuid/file", when);
		bad = 1;
	}
	if (mnt_expect_file(at("t2rw", "file"), "t2"))
		bad = 1;

	/* exec */
	r = run(at("t1", "script"), NULL, 0, 0);
	if (r != 42) {
		errno = r < 0 ? -r : 0;
		fail("%s: t1/script gave %d, not 42", when, r);
		bad = 1;
	}
	r = run(at("noexec", "script"), NULL, 0, 0);
	if (r != -EACCES) {
		errno = r < 0 ? -r : 0;
		fail("%s: noexec/script gave %d, not -EACCES", when, r);
		bad = 1;
	}
	r = run(at("multi", "script"), NULL, 0, 0);
	if (r != -EACCES) {
		errno = r < 0 ? -r : 0;
		fail("%s: multi/script gave %d, not -EACCES", when, r);
		bad = 1;
	}

	/* suid: run as 1001:1001, the copy owned by 1000 gets euid 1000 unless nosuid */
	r = run(at("t1", "suid"), "--euid", 1001, 1001);
	if (r != 10) {
		errno = r < 0 ? -r : 0;
		fail("%s: t1/suid as 1001 gave %d, not 10 (euid 1000)", when, r);
		bad = 1;
	}
	r = run(at("nosuid", "suid"), "--euid", 1001, 1001);
	if (r != 11) {
		errno = r < 0 ? -r : 0;
		fail("%s: nosuid/suid as 1001 gave %d, not 11 (euid 1001)", when, r);
		bad = 1;
	}

	/* symlinks */
	if (try_open(at("t1", "link"), O_RDONLY)) {
		fail("%s: opening t1/link", when);
		bad = 1;
	}
	bad |= expect_errno(mp("%s: opening nosymfollow/link", when),
			    try_open(at("nosymfollow", "link"), O_RDONLY), ELOOP);
	if (readlink(at("nosymfollow", "link"), buf, sizeof(buf)) != 4) {
		fail("%s: readlink nosymfollow/link", when);
		bad = 1;
	}

	/* devices */
	if (!in_userns) {
		if (try_open(at("t1", "null"), O_WRONLY)) {
			fail("%s: opening t1/null", when);
			bad = 1;
		}
		bad |= expect_errno(mp("%s: opening nodev/null", when),
				    try_open(at("nodev", "null"), O_WRONLY), EACCES);
	}

	bad |= check_atime(when);

	/* one st_dev per superblock */
	if (stat(at("t1", NULL), &st1) || stat(at("t2", NULL), &st2) ||
	    stat(at("t3", NULL), &st3)) {
		fail("%s: stat t1, t2, t3", when);
		return 1;
	}
	errno = 0;
	if (st1.st_dev == st2.st_dev || st1.st_dev == st3.st_dev || st2.st_dev == st3.st_dev) {
		fail("%s: t1, t2 and t3 do not have three st_dev", when);
		bad = 1;
	}
	for (i = 0; i < ARRAY_SIZE(binds); i++) {
		dev_t want = !strncmp(binds[i].name, "t2", 2) ? st2.st_dev :
			     !strcmp(binds[i].name, "t3") ? st3.st_dev : st1.st_dev;

		if (stat(at(binds[i].name, NULL), &st) || st.st_dev != want) {
			fail("%s: %s: st_dev %#lx, not %#lx", when, binds[i].name,
			     (unsigned long)st.st_dev, (unsigned long)want);
			bad = 1;
		}
	}
	return bad;
}

static int copy_self(const char *dst)
{
	int in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC), out;
	char buf[65536];
	ssize_t n;

	out = open(dst, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0755);
	if (in < 0 || out < 0) {
		pr_perror("copy this program to %s", dst);
		return -1;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, n) != n) {
			pr_perror("write %s", dst);
			return -1;
		}
	close(in);
	close(out);
	/* chown clears the suid bit: chmod after it */
	if (n < 0 || chown(dst, 1000, 1000) || chmod(dst, 04755)) {
		pr_perror("make %s suid 1000", dst);
		return -1;
	}
	return 0;
}

static int setup(void)
{
	unsigned i;

	in_userns = mnt_in_userns();
	if (in_userns < 0)
		return -1;

	if (mnt_tmpfs("opt-t1", at("t1", NULL), 0,
		      "size=2m,nr_inodes=64,mode=1750,uid=1000,gid=1001") ||
	    mnt_write_file(at("t1", "file"), "t1", 0644) ||
	    mnt_write_file(at("t1", "atime"), "atime", 0644) ||
	    mnt_write_file(at("t1", "script"), "#!/bin/sh\nexit 42\n", 0755) ||
	    symlink("file", at("t1", "link")) || mkdir(at("t1", "dir"), 0755) ||
	    copy_self(at("t1", "suid"))) {
		pr_perror("fill t1");
		return -1;
	}
	if (!in_userns && mknod(at("t1", "null"), S_IFCHR | 0666, makedev(1, 3))) {
		pr_perror("mknod t1/null");
		return -1;
	}
	for (i = 0; i < ARRAY_SIZE(binds); i++) {
		struct bind *b = &binds[i];

		if (!strncmp(b->name, "t", 1))
			continue;
		if (mnt_bind(at("t1", NULL), at(b->name, NULL), 0))
			return -1;
		if (b->attr_set) {
			unsigned long set = b->attr_set, clr = 0;

			if (set & MOUNT_ATTR_NOATIME)
				clr = MOUNT_ATTR__ATIME;
			if (mnt_setattr(at(b->name, NULL), set, clr))
				return -1;
		} else if (mount(NULL, at(b->name, NULL), NULL, MS_REMOUNT | MS_BIND | b->remount,
				 NULL)) {
			pr_perror("remount %s", b->name);
			return -1;
		}
	}
	if (mnt_tmpfs("opt-t2", at("t2", NULL), 0, "size=1m") ||
	    mnt_write_file(at("t2", "file"), "t2", 0644))
		return -1;
	if (mount(NULL, at("t2", NULL), NULL, MS_REMOUNT | MS_RDONLY, NULL)) {
		pr_perror("remount t2 ro");
		return -1;
	}
	if (mnt_bind(at("t2", NULL), at("t2rw", NULL), 0) ||
	    mount(NULL, at("t2rw", NULL), NULL, MS_REMOUNT | MS_BIND, NULL)) {
		pr_perror("t2rw");
		return -1;
	}
	return mnt_tmpfs("opt-t3", at("t3", NULL), 0, NULL);
}

static int check_when(const char *when)
{
	return check(when, !strcmp(when, "before"));
}

int main(int argc, char **argv)
{
	/* as the suid copy: tell the euid we run with */
	if (argc == 2 && !strcmp(argv[1], "--euid"))
		return geteuid() == 1000 ? 10 : 11;

	test_init(argc, argv);
	if (mnt_prepare() || setup())
		return 1;
	return mnt_around(check_when, "mount options did not hold");
}
