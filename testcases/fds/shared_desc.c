/*
 * One open file description in several processes:
 * - the parent opens --filename (O_RDWR, offset 100) and forks child A,
 *   which inherits it;
 * - child B, forked before the parent opened a second file, receives that
 *   file's description over a unix socket (SCM_RIGHTS, MSG_CMSG_CLOEXEC; the
 *   socket is closed before the checkpoint) while the parent keeps its own fd
 *   to it (offset 200).
 * After restore: kcmp(KCMP_FILE) says the parent and A, and the parent and B,
 * still share one description each; the parent reads 5 bytes, then A finds
 * the offset at 105 and writes 10 bytes, after which the parent's offset is
 * 115 and the parent reads A's bytes there; B finds the offset at 200 (and
 * FD_CLOEXEC on its fd) and reads 20 bytes, after which the parent's offset
 * is 220.
 */
#include <linux/kcmp.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "helpers.h"

const char *test_doc = "descriptions inherited or passed with SCM_RIGHTS stay shared between processes";

static char *filename;
TEST_OPTION(filename, string, "file to open", 1);

static uint8_t pattern(int i)
{
	return (uint8_t)(i * 5 + 1);
}

static int make(const char *path, off_t pos)
{
	uint8_t buf[1000];
	int fd, i;

	for (i = 0; i < (int)sizeof(buf); i++)
		buf[i] = pattern(i);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write_data(fd, buf, sizeof(buf)) || lseek(fd, pos, SEEK_SET) != pos)
		return -1;
	return fd;
}

static int recv_fd(int sock)
{
	char cbuf[CMSG_SPACE(sizeof(int))], c;
	struct iovec iov = { &c, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	int fd;

	if (recvmsg(sock, &mh, MSG_CMSG_CLOEXEC) != 1)
		return -1;
	cm = CMSG_FIRSTHDR(&mh);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

static int same_file(pid_t p1, int fd1, pid_t p2, int fd2)
{
	return syscall(SYS_kcmp, p1, p2, KCMP_FILE, fd1, fd2) == 0;
}

/* Child B: receive the description, report its fd number, wait, then read through it. */
static void __attribute__((noreturn)) child_b(int sock, int report)
{
	uint8_t buf[20];
	int fd = recv_fd(sock), i;

	close(sock);
	if (fd < 0 || write(report, &fd, sizeof(fd)) != sizeof(fd)) {
		pr_perror("child B: receive the fd");
		_exit(1);
	}
	close(report);
	test_waitsig();
	if (lseek(fd, 0, SEEK_CUR) != 200 || fcntl(fd, F_GETFD) != FD_CLOEXEC) {
		fail("child B: offset %lld fd flags %d, expected 200 and FD_CLOEXEC",
		     (long long)lseek(fd, 0, SEEK_CUR), fcntl(fd, F_GETFD));
		_exit(1);
	}
	if (read(fd, buf, sizeof(buf)) != sizeof(buf)) {
		fail("child B: read");
		_exit(1);
	}
	for (i = 0; i < (int)sizeof(buf); i++)
		if (buf[i] != pattern(200 + i)) {
			fail("child B: read other data at 200");
			_exit(1);
		}
	_exit(0);
}

/* Child A: the inherited fd; write 10 bytes at the shared offset (105 by then). */
static void __attribute__((noreturn)) child_a(int fd)
{
	test_waitsig();
	if (lseek(fd, 0, SEEK_CUR) != 105) {
		fail("child A: offset %lld, expected 105 (the parent's read did not move it)",
		     (long long)lseek(fd, 0, SEEK_CUR));
		_exit(1);
	}
	if (write(fd, "child A!!!", 10) != 10) {
		fail("child A: write");
		_exit(1);
	}
	_exit(0);
}

int main(int argc, char **argv)
{
	char second[4096];
	uint8_t buf[16];
	int sv[2], rep[2], fd_a, fd_b, fd_in_b = -1, bad = 0;
	pid_t a, b, me;

	test_init(argc, argv);
	me = getpid();
	snprintf(second, sizeof(second), "%s.scm", filename);
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) || pipe(rep)) {
		pr_perror("socketpair");
		return 1;
	}
	b = fork_or_exit();
	if (b == 0) {
		close(sv[0]);
		close(rep[0]);
		child_b(sv[1], rep[1]);
	}
	close(sv[1]);
	close(rep[1]);
	fd_b = make(second, 200);
	if (fd_b < 0 || send_fds(sv[0], "f", 1, &fd_b, 1, 0)) {
		pr_perror("send %s", second);
		return 1;
	}
	close(sv[0]);
	if (read(rep[0], &fd_in_b, sizeof(fd_in_b)) != sizeof(fd_in_b)) {
		pr_err("child B did not receive the fd\n");
		return 1;
	}
	close(rep[0]);

	fd_a = make(filename, 100);
	if (fd_a < 0) {
		pr_perror("create %s", filename);
		return 1;
	}
	a = fork_or_exit();
	if (a == 0)
		child_a(fd_a);

	test_daemon();
	test_waitsig();

	if (!same_file(me, fd_a, a, fd_a) || !same_file(me, fd_b, b, fd_in_b) ||
	    same_file(me, fd_a, b, fd_in_b)) {
		fail("kcmp: the descriptions are not shared as before");
		bad = 1;
	}
	if (lseek(fd_a, 0, SEEK_CUR) != 100 || lseek(fd_b, 0, SEEK_CUR) != 200) {
		fail("offsets %lld/%lld, expected 100/200", (long long)lseek(fd_a, 0, SEEK_CUR),
		     (long long)lseek(fd_b, 0, SEEK_CUR));
		bad = 1;
	}
	if (read(fd_a, buf, 5) != 5 || buf[0] != pattern(100)) {
		fail("read at 100");
		bad = 1;
	}
	if (child_verdict(a, "child A did not see the shared offset")) {
		bad = 1;
	} else if (lseek(fd_a, 0, SEEK_CUR) != 115 || pread(fd_a, buf, 10, 105) != 10 ||
		   memcmp(buf, "child A!!!", 10)) {
		fail("child A's write did not move the parent's offset to 115 (%lld)",
		     (long long)lseek(fd_a, 0, SEEK_CUR));
		bad = 1;
	}
	if (child_verdict(b, "child B did not see the shared offset")) {
		bad = 1;
	} else if (lseek(fd_b, 0, SEEK_CUR) != 220) {
		fail("child B's read did not move the parent's offset to 220 (%lld)",
		     (long long)lseek(fd_b, 0, SEEK_CUR));
		bad = 1;
	}

	unlink(second);
	unlink(filename);
	if (!bad)
		pass();
	return 0;
}
