/*
 * cwd and root: a child chroot()s into <dirname>/root (prepared with a
 * subdirectory "sub" holding "marker" and a file "top") and chdir()s to
 * "/sub"; it keeps O_PATH fds to the new root, to "sub" and to <dirname>
 * (outside the root), opened before the chroot. After restore the child
 * checks (everything by fstat/stat inode comparison, no /proc inside the
 * root): "/" is the inode of its root fd, "/.." is "/" (the chroot holds),
 * "." is "sub", getcwd() is "/sub", "marker" opens relative to the cwd and as
 * "/sub/marker" and reads its content, "/top" opens, and the outside fd still
 * reaches the files. The parent (not chrooted) still has "/" as root and its
 * own cwd.
 */
#include <sys/stat.h>

#include "helpers.h"

const char *test_doc = "a chroot and a cwd inside it are kept";

static char *dirname;
TEST_OPTION(dirname, string, "directory holding the new root", 1);

static int same_inode(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

static int read_is(int dirfd, const char *path, const char *want)
{
	char buf[64] = "";
	int fd = openat(dirfd, path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n == (ssize_t)strlen(want) && !memcmp(buf, want, n);
}

static int make_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);

	if (fd < 0)
		return -1;
	if (write(fd, data, strlen(data)) != (ssize_t)strlen(data)) {
		close(fd);
		return -1;
	}
	return close(fd);
}

/* What the child keeps: the new root's path and O_PATH fds opened before the chroot. */
struct kept {
	const char *root;
	int root_fd, sub_fd, out_fd;
};

/* The child's set-up: chroot into the new root, cwd "/sub". */
static int enter_root(void *arg)
{
	const struct kept *k = arg;

	if (chroot(k->root) || chdir("/sub")) {
		pr_perror("child: chroot %s", k->root);
		return -1;
	}
	return 0;
}

/* The chrooted child: checks after the restore, 0 when all is as it was. */
static int chrooted_checks(void *arg)
{
	const struct kept *k = arg;
	struct stat root_st, sub_st, st, st2;
	char cwd[256];
	int bad = 0;

	if (fstat(k->root_fd, &root_st) || fstat(k->sub_fd, &sub_st)) {
		fail("child: fstat of the kept fds");
		return 1;
	}
	if (stat("/", &st) || !same_inode(&st, &root_st)) {
		fail("child: \"/\" is inode %lu, the root fd %lu", (unsigned long)st.st_ino,
		     (unsigned long)root_st.st_ino);
		bad = 1;
	}
	if (stat("/..", &st2) || !same_inode(&st2, &root_st)) {
		fail("child: \"/..\" leads out of the root (inode %lu)", (unsigned long)st2.st_ino);
		bad = 1;
	}
	if (stat(".", &st) || !same_inode(&st, &sub_st)) {
		fail("child: the cwd is inode %lu, \"sub\" is %lu", (unsigned long)st.st_ino,
		     (unsigned long)sub_st.st_ino);
		bad = 1;
	}
	if (!getcwd(cwd, sizeof(cwd)) || strcmp(cwd, "/sub")) {
		fail("child: getcwd() is \"%s\", expected \"/sub\"", cwd);
		bad = 1;
	}
	if (!read_is(AT_FDCWD, "marker", "marker\n") || !read_is(AT_FDCWD, "/sub/marker", "marker\n") ||
	    !read_is(AT_FDCWD, "/top", "top\n")) {
		fail("child: the files inside the root do not read back");
		bad = 1;
	}
	if (!read_is(k->out_fd, "root/sub/marker", "marker\n")) {
		fail("child: the fd outside the root does not reach the files");
		bad = 1;
	}
	return bad;
}

int main(int argc, char **argv)
{
	char root[4096], sub[4096], path[8192], cwd_before[4096], cwd_after[4096], link[4096];
	struct kept k = { .root = root };
	int bad = 0;
	ssize_t n;
	pid_t child;

	test_init(argc, argv);
	cwd_after[0] = '\0';
	snprintf(root, sizeof(root), "%s/root", dirname);
	snprintf(sub, sizeof(sub), "%s/root/sub", dirname);
	if (mkdir(dirname, 0755) || mkdir(root, 0755) || mkdir(sub, 0755)) {
		pr_perror("mkdir");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/marker", sub);
	if (make_file(path, "marker\n")) {
		pr_perror("create %s", path);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/top", root);
	if (make_file(path, "top\n")) {
		pr_perror("create %s", path);
		return 1;
	}
	k.root_fd = open(root, O_PATH | O_DIRECTORY);
	k.sub_fd = open(sub, O_PATH | O_DIRECTORY);
	k.out_fd = open(dirname, O_PATH | O_DIRECTORY);
	if (k.root_fd < 0 || k.sub_fd < 0 || k.out_fd < 0 || !getcwd(cwd_before, sizeof(cwd_before))) {
		pr_perror("open");
		return 1;
	}
	child = fork_checker(enter_root, chrooted_checks, &k);

	test_daemon();
	test_waitsig();

	bad |= child_verdict(child, "the chrooted child found its root or cwd changed");
	n = readlink("/proc/self/root", link, sizeof(link) - 1);
	link[n < 0 ? 0 : n] = '\0';
	if (strcmp(link, "/") || !getcwd(cwd_after, sizeof(cwd_after)) ||
	    strcmp(cwd_after, cwd_before)) {
		fail("the parent's root is \"%s\" and cwd \"%s\", expected \"/\" and \"%s\"", link,
		     cwd_after, cwd_before);
		bad = 1;
	}

	snprintf(path, sizeof(path), "%s/marker", sub);
	unlink(path);
	snprintf(path, sizeof(path), "%s/top", root);
	unlink(path);
	rmdir(sub);
	rmdir(root);
	rmdir(dirname);
	if (!bad)
		pass();
	return 0;
}
