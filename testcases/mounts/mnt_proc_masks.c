/*
 * A proc of the tree's own pid namespace masked the way container runtimes do it (flavors
 * ns and uns: the program needs a pid namespace of its own):
 *
 *   D/proc          proc of its pid namespace
 *   D/proc/sys      read-only bind of D/proc/sys (a bind of a part of that proc)
 *   D/proc/fs       read-only bind of D/proc/fs
 *   D/proc/<file>   /dev/null bound over a proc file (timer_list, kcore or sysrq-trigger:
 *                   the first this kernel has)
 *   D/proc/<dir>    an empty read-only tmpfs over a proc directory (driver, acpi or
 *                   bus: the first there is)
 *
 * Before the dump and after the restore: each is the topmost mount at its point, with the
 * root it had ("/sys", "/fs"); D/proc/sys/kernel/ostype reads "Linux" and refuses a write
 * (EROFS); D/proc/<file> is /dev/null (char 1:3, reads nothing); D/proc/<dir> is empty and
 * refuses a new entry (EROFS); D/proc/self is this process.
 */
#include <sys/sysmacros.h>

#include "mntcheck.h"

const char *test_doc = "a proc of the tree's pid namespace masked by read-only binds of its "
		       "parts, /dev/null over a file and a tmpfs over a directory";

static const char *masked_file, *masked_dir;

static const char *at(const char *rel)
{
	return mp("%s/proc/%s", mnt_dir, rel);
}

/* 0 when the top mount at proc's ``rel`` is ``fstype`` (NULL: any but proc) with ``root``
 * (NULL: any). */
static int on_top(const char *when, const char *rel, const char *root, const char *fstype)
{
	struct mnt_line l = { 0 };

	if (mnt_find(0, at(rel), NULL, &l) != 1 ||
	    (fstype ? strcmp(l.fstype, fstype) : !strcmp(l.fstype, "proc")) ||
	    (root && strcmp(l.root, root))) {
		fail("%s: %s: the top mount is %s %s, not %s %s", when, rel, l.fstype, l.root,
		     fstype ? fstype : "a mask", root ? root : "");
		return 1;
	}
	return 0;
}

static int refuses_writes(const char *when, const char *path, int dir)
{
	int fd = dir ? mkdir(path, 0755) : open(path, O_WRONLY | O_CLOEXEC);

	if (fd >= 0 || errno != EROFS) {
		fail("%s: writing %s: not EROFS", when, path);
		if (fd >= 0 && !dir)
			close(fd);
		return 1;
	}
	return 0;
}

static int check(const char *when)
{
	char buf[64], list[256];
	struct stat st;
	int bad = 0, fd;
	ssize_t n;

	bad |= on_top(when, "sys", "/sys", "proc") || on_top(when, "fs", "/fs", "proc");
	bad |= on_top(when, masked_file, NULL, NULL);		/* /dev/null's, checked below */
	bad |= on_top(when, masked_dir, "/", "tmpfs");
	if (bad)
		return 1;
	bad |= mnt_expect_file(at("sys/kernel/ostype"), "Linux\n");
	bad |= refuses_writes(when, at("sys/kernel/hostname"), 0);
	if (stat(at(masked_file), &st) || !S_ISCHR(st.st_mode) ||
	    st.st_rdev != makedev(1, 3)) {
		fail("%s: %s is not /dev/null", when, masked_file);
		bad = 1;
	}
	fd = open(at(masked_file), O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, buf, sizeof(buf));
	if (fd >= 0)
		close(fd);
	if (n != 0) {
		fail("%s: %s reads %zd bytes, not 0", when, masked_file, n);
		bad = 1;
	}
	if (mnt_listdir(at(masked_dir), list, sizeof(list)) || list[0]) {
		fail("%s: %s lists \"%s\", not nothing", when, masked_dir, list);
		bad = 1;
	}
	bad |= refuses_writes(when, mp("%s/new", at(masked_dir)), 1);
	n = readlink(at("self"), buf, sizeof(buf) - 1);
	if (n <= 0 || (buf[n] = 0, atoi(buf) != getpid())) {
		fail("%s: proc/self is not this process", when);
		bad = 1;
	}
	return bad;
}

static const char *first_present(const char *const *names)
{
	for (; *names; names++)
		if (access(at(*names), F_OK) == 0)
			return *names;
	return NULL;
}

static int ro_bind(const char *rel)
{
	return mnt_bind(at(rel), at(rel), 0) ||
	       mount(NULL, at(rel), NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID |
		     MS_NODEV | MS_NOEXEC, NULL);
}

static int setup(void)
{
	static const char *const files[] = { "timer_list", "kcore", "sysrq-trigger", NULL };
	static const char *const dirs[] = { "driver", "acpi", "bus", NULL };

	if (mnt_mkdirs(mp("%s/proc", mnt_dir), 0755) ||
	    mount("proc", mp("%s/proc", mnt_dir), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)) {
		pr_perror("mount proc");
		return -1;
	}
	masked_file = first_present(files);
	masked_dir = first_present(dirs);
	if (!masked_file || !masked_dir) {
		pr_err("this proc has none of the files or directories to mask\n");
		return -1;
	}
	if (ro_bind("sys") || ro_bind("fs") || mnt_bind("/dev/null", at(masked_file), 0) ||
	    mnt_tmpfs("proc-mask", at(masked_dir), MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k")) {
		pr_perror("mask proc");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (mnt_need_own_init() || mnt_prepare() || setup())
		return 1;
	return mnt_around(check, "the masks of proc did not hold");
}
