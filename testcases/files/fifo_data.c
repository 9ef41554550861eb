/*
 * FIFOs (named pipes) in --dirname: one opened read-write, read-only
 * (O_NONBLOCK) and write-only, holding 5000 unread bytes; a second one opened
 * only read-write holding 123 bytes. After restore the fds are the FIFOs at
 * those paths (inode of the path, flags), the unread data reads back in
 * order, and bytes written to the write-only fd come out of the read-only
 * one: all three fds are still one pipe.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "fdcheck.h"

const char *test_doc = "FIFOs keep their path, flags and unread data";

static char *dirname;
TEST_OPTION(dirname, string, "directory for the FIFOs", 1);

static int check_data(int fd, int len, int seed)
{
	uint8_t buf[8192];
	int i;

	if (read_data(fd, buf, len))
		return -1;
	for (i = 0; i < len; i++)
		if (buf[i] != (uint8_t)(seed + i * 3))
			return -1;
	return 0;
}

static int put_data(int fd, int len, int seed)
{
	uint8_t buf[8192];
	int i;

	for (i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed + i * 3);
	return write_data(fd, buf, len);
}

int main(int argc, char **argv)
{
	char f1[4096], f2[4096];
	struct fdstate was[4];
	int fds[4], i, bad = 0;
	struct stat sb;

	test_init(argc, argv);
	snprintf(f1, sizeof(f1), "%s/fifo1", dirname);
	snprintf(f2, sizeof(f2), "%s/fifo2", dirname);
	if (mkdir(dirname, 0755) || mkfifo(f1, 0600) || mkfifo(f2, 0600)) {
		pr_perror("mkfifo");
		return 1;
	}
	fds[0] = open(f1, O_RDWR);
	fds[1] = open(f1, O_RDONLY | O_NONBLOCK);
	fds[2] = open(f1, O_WRONLY);
	fds[3] = open(f2, O_RDWR);
	for (i = 0; i < 4; i++)
		if (fds[i] < 0 || fd_state(fds[i], &was[i])) {
			pr_perror("open fifo");
			return 1;
		}
	if (put_data(fds[2], 5000, 7) || put_data(fds[3], 123, 99)) {
		pr_perror("write");
		return 1;
	}

	test_daemon();
	test_waitsig();

	for (i = 0; i < 4; i++)
		bad |= fd_same(fds[i], &was[i], i < 3 ? "fifo1" : "fifo2");
	if (stat(f1, &sb) || sb.st_ino != was[0].ino || !S_ISFIFO(sb.st_mode)) {
		fail("%s is not the FIFO the fds have open", f1);
		bad = 1;
	}
	if (bad)
		return 0;
	if (check_data(fds[1], 5000, 7)) {
		fail("fifo1 did not give back its 5000 bytes");
		bad = 1;
	}
	if (check_data(fds[3], 123, 99)) {
		fail("fifo2 did not give back its 123 bytes");
		bad = 1;
	}
	if (put_data(fds[2], 10, 1) || check_data(fds[1], 10, 1)) {
		fail("bytes written to the write-only fd did not reach the read-only one");
		bad = 1;
	}
	if (!bad)
		pass();
	return 0;
}
