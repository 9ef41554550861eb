/*
 * One pipe shared by a parent and its child: both hold both ends (the same
 * open file descriptions). The child wrote 100 bytes before the checkpoint.
 * After restore kcmp(KCMP_FILE) says the ends are shared, the child reads the
 * first 30 bytes, then the parent reads the next 30, both see the same
 * FIONREAD, and a status flag the child sets (O_NONBLOCK) shows in the
 * parent's fd: one description, not two copies.
 */
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "helpers.h"

const char *test_doc = "pipe ends shared by parent and child stay one description";

static int shared(pid_t a, pid_t b, int fd)
{
	return syscall(SYS_kcmp, a, b, KCMP_FILE, fd, fd) == 0;
}

static int read_expect(int fd, int from, int len)
{
	uint8_t buf[64];
	int i;

	if (read_data(fd, buf, len))
		return -1;
	for (i = 0; i < len; i++)
		if (buf[i] != (uint8_t)(from + i))
			return -1;
	return 0;
}

int main(int argc, char **argv)
{
	int fds[2], i, n, st, bad = 0;
	uint8_t data[100];
	pid_t child;

	test_init(argc, argv);
	if (pipe(fds)) {
		pr_perror("pipe");
		return 1;
	}
	child = fork_or_exit();
	if (child == 0) {
		for (i = 0; i < 100; i++)
			data[i] = (uint8_t)i;
		if (write_data(fds[1], data, 100))
			exit(2);
		test_waitsig();
		if (read_expect(fds[0], 0, 30)) {
			fail("child: the first 30 bytes are not 0..29");
			exit(1);
		}
		fcntl(fds[0], F_SETFL, O_NONBLOCK);
		exit(0);
	}
	do {
		ioctl(fds[0], FIONREAD, &n);
	} while (n < 100 && (sleep_ms(1), 1));

	test_daemon();
	test_waitsig();

	if (!shared(getpid(), child, fds[0]) || !shared(getpid(), child, fds[1])) {
		fail("kcmp: the pipe ends are not shared with the child");
		bad = 1;
	}
	if (ioctl(fds[0], FIONREAD, &n) || n != 100) {
		fail("%d bytes in the pipe, expected 100", n);
		bad = 1;
	}
	kill(child, SIGTERM);
	st = wait_status(child);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fail("the child failed (status %#x)", st);
		bad = 1;
	}
	if (ioctl(fds[0], FIONREAD, &n) || n != 70) {
		fail("after the child's read %d bytes are left, expected 70", n);
		bad = 1;
	}
	if (!(fcntl(fds[0], F_GETFL) & O_NONBLOCK)) {
		fail("the child's O_NONBLOCK does not show in the parent's fd");
		bad = 1;
	}
	if (read_expect(fds[0], 30, 30)) {
		fail("the parent's read did not continue at byte 30");
		bad = 1;
	}
	if (!bad)
		pass();
	return 0;
}
