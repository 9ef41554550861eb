/*
 * O_PATH fds: in --dirname, an O_PATH fd to a regular file and an
 * O_PATH | O_DIRECTORY | O_CLOEXEC fd to a directory holding a file. After
 * restore: F_GETFL has O_PATH (and is what it was), FD_CLOEXEC is only on the
 * directory fd, readlink gives the same paths, fstat gives the same
 * device and inode as the paths do, read() through the O_PATH file fails with
 * EBADF (it is still O_PATH), the file reopened through /proc/self/fd/N
 * reads its content, and fstatat() / openat() relative to the directory fd
 * find and read the file inside it.
 */
#include <sys/stat.h>

#include "helpers.h"

const char *test_doc = "O_PATH fds to a file and a directory are kept and still usable";

static char *dirname;
TEST_OPTION(dirname, string, "directory for the files", 1);

static int bad;

struct rec {
	char link[4096];
	int fl, fdfl;
	dev_t dev;
	ino_t ino;
};

static int record(int fd, struct rec *r)
{
	char p[64];
	struct stat st;
	ssize_t n;

	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	n = readlink(p, r->link, sizeof(r->link) - 1);
	if (n < 0 || fstat(fd, &st))
		return -1;
	r->link[n] = '\0';
	r->fl = fcntl(fd, F_GETFL);
	r->fdfl = fcntl(fd, F_GETFD);
	r->dev = st.st_dev;
	r->ino = st.st_ino;
	return 0;
}

static void expect_same(int fd, const struct rec *was, const char *path, const char *what)
{
	struct rec now;
	struct stat st;

	if (record(fd, &now)) {
		fail("%s: fd %d is not open", what, fd);
		bad = 1;
		return;
	}
	if (strcmp(now.link, was->link) || now.fl != was->fl || now.fdfl != was->fdfl ||
	    now.dev != was->dev || now.ino != was->ino || !(now.fl & O_PATH)) {
		fail("%s: %s flags %#o fd flags %d ino %lu, was %s %#o %d %lu", what, now.link, now.fl,
		     now.fdfl, (unsigned long)now.ino, was->link, was->fl, was->fdfl,
		     (unsigned long)was->ino);
		bad = 1;
	}
	if (stat(path, &st) || st.st_dev != now.dev || st.st_ino != now.ino) {
		fail("%s: the fd is not the inode at %s", what, path);
		bad = 1;
	}
}

int main(int argc, char **argv)
{
	char file[4096], dir[4096], inner[4096], buf[64], p[64];
	const char *c1 = "file content\n", *c2 = "inner content\n";
	struct rec rf, rd;
	struct stat st, inner_st;
	int ffd, dfd, fd;

	test_init(argc, argv);
	snprintf(file, sizeof(file), "%s/file", dirname);
	snprintf(dir, sizeof(dir), "%s/dir", dirname);
	snprintf(inner, sizeof(inner), "%s/dir/inner", dirname);
	if (mkdir(dirname, 0755) || mkdir(dir, 0755)) {
		pr_perror("mkdir");
		return 1;
	}
	fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd < 0 || write(fd, c1, strlen(c1)) != (ssize_t)strlen(c1) || close(fd)) {
		pr_perror("create %s", file);
		return 1;
	}
	fd = open(inner, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd < 0 || write(fd, c2, strlen(c2)) != (ssize_t)strlen(c2) || close(fd) ||
	    stat(inner, &inner_st)) {
		pr_perror("create %s", inner);
		return 1;
	}
	ffd = open(file, O_PATH);
	dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (ffd < 0 || dfd < 0 || record(ffd, &rf) || record(dfd, &rd)) {
		pr_perror("open O_PATH");
		return 1;
	}

	test_daemon();
	test_waitsig();

	expect_same(ffd, &rf, file, "file");
	expect_same(dfd, &rd, dir, "directory");
	if (fcntl(ffd, F_GETFD) != 0 || fcntl(dfd, F_GETFD) != FD_CLOEXEC) {
		fail("FD_CLOEXEC: file %d directory %d", fcntl(ffd, F_GETFD), fcntl(dfd, F_GETFD));
		bad = 1;
	}
	errno = 0;
	if (read(ffd, buf, sizeof(buf)) != -1 || errno != EBADF) {
		fail("read() through the O_PATH file fd did not fail with EBADF");
		bad = 1;
	}
	snprintf(p, sizeof(p), "/proc/self/fd/%d", ffd);
	fd = open(p, O_RDONLY);
	memset(buf, 0, sizeof(buf));
	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) != (ssize_t)strlen(c1) || strcmp(buf, c1)) {
		fail("reopening the O_PATH file through %s did not read its content", p);
		bad = 1;
	}
	if (fd >= 0)
		close(fd);
	if (fstatat(dfd, "inner", &st, 0) || st.st_ino != inner_st.st_ino ||
	    fstatat(dfd, "", &st, AT_EMPTY_PATH) || st.st_ino != rd.ino) {
		fail("fstatat() relative to the directory fd");
		bad = 1;
	}
	fd = openat(dfd, "inner", O_RDONLY);
	memset(buf, 0, sizeof(buf));
	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) != (ssize_t)strlen(c2) || strcmp(buf, c2)) {
		fail("openat() relative to the directory fd did not read the inner file");
		bad = 1;
	}
	if (fd >= 0)
		close(fd);

	unlink(inner);
	unlink(file);
	rmdir(dir);
	rmdir(dirname);
	if (!bad)
		pass();
	return 0;
}
