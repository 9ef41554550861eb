/*
 * Directories: a directory opened as an fd (O_RDONLY|O_DIRECTORY), an
 * O_PATH fd of a subdirectory, and the cwd moved into that subdirectory.
 * After restore the fds name the same directories (path, inode, flags),
 * openat() relative to them works, reading the directory lists the entries,
 * getcwd() and /proc/self/cwd are unchanged and relative paths resolve there.
 */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "fdcheck.h"

const char *test_doc = "directory fds, O_PATH fds and the cwd are kept";

static char *dirname;
TEST_OPTION(dirname, string, "directory for the test's files", 1);

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || write_data(fd, (const unsigned char *)text, strlen(text)) || close(fd))
		return -1;
	return 0;
}

static int read_at(int dirfd, const char *name, char *buf, size_t size)
{
	int fd = openat(dirfd, name, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

int main(int argc, char **argv)
{
	char top[4096], sub[4096], cwd[4096], cwd_link[4096], now[4096], buf[256];
	struct fdstate was_dir, was_path;
	int dfd, pfd, bad = 0, found = 0;
	struct stat dot;
	ino_t cwd_ino;
	DIR *d;
	struct dirent *de;

	test_init(argc, argv);
	if (mkdir(dirname, 0755)) {
		pr_perror("mkdir");
		return 1;
	}
	snprintf(top, sizeof(top), "%s/top.txt", dirname);
	snprintf(sub, sizeof(sub), "%s/sub", dirname);
	if (write_file(top, "top") || mkdir(sub, 0755)) {
		pr_perror("set up");
		return 1;
	}
	snprintf(top, sizeof(top), "%s/sub/inner.txt", dirname);
	if (write_file(top, "inner")) {
		pr_perror("set up");
		return 1;
	}
	dfd = open(dirname, O_RDONLY | O_DIRECTORY);
	pfd = open(sub, O_PATH | O_DIRECTORY);
	if (dfd < 0 || pfd < 0 || fd_state(dfd, &was_dir) || fd_state(pfd, &was_path)) {
		pr_perror("open directories");
		return 1;
	}
	if (chdir(sub) || !getcwd(cwd, sizeof(cwd)) || stat(".", &dot) ||
	    readlink("/proc/self/cwd", cwd_link, sizeof(cwd_link)) < 0) {
		pr_perror("chdir");
		return 1;
	}
	cwd_ino = dot.st_ino;

	test_daemon();
	test_waitsig();

	bad |= fd_same(dfd, &was_dir, "directory fd");
	bad |= fd_same(pfd, &was_path, "O_PATH directory fd");
	if (!getcwd(now, sizeof(now)) || strcmp(now, cwd) || stat(".", &dot) || dot.st_ino != cwd_ino) {
		fail("cwd is %s, was %s", now, cwd);
		bad = 1;
	}
	memset(now, 0, sizeof(now));
	if (readlink("/proc/self/cwd", now, sizeof(now) - 1) < 0 || strcmp(now, cwd_link)) {
		fail("/proc/self/cwd is %s, was %s", now, cwd_link);
		bad = 1;
	}
	if (read_at(AT_FDCWD, "inner.txt", buf, sizeof(buf)) || strcmp(buf, "inner")) {
		fail("a relative path does not resolve in the cwd");
		bad = 1;
	}
	if (read_at(dfd, "top.txt", buf, sizeof(buf)) || strcmp(buf, "top") ||
	    read_at(pfd, "inner.txt", buf, sizeof(buf)) || strcmp(buf, "inner")) {
		fail("openat() relative to the directory fds failed");
		bad = 1;
	}
	d = fdopendir(dup(dfd));
	if (!d) {
		fail("fdopendir");
		return 1;
	}
	rewinddir(d);
	while ((de = readdir(d)))
		found += !strcmp(de->d_name, "top.txt") || !strcmp(de->d_name, "sub");
	closedir(d);
	if (found != 2) {
		fail("reading the directory fd found %d of its 2 entries", found);
		bad = 1;
	}
	if (!bad)
		pass();
	return 0;
}
