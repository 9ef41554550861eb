/*
 * Open file descriptions and their sharing: a file opened twice (two
 * descriptions, two offsets), a dup() and an F_DUPFD_CLOEXEC of the first
 * (one description, one offset), and a child that inherited the first (the
 * same description in another process). After restore kcmp(KCMP_FILE)
 * reports the same sharing, the offsets are as they were, reading through the
 * dup moves the first fd's offset but not the second open's, and the child's
 * read moves the parent's offset too.
 */
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "helpers.h"

const char *test_doc = "dup-ed and inherited fds share an offset, separate opens do not";

static char *filename;
TEST_OPTION(filename, string, "file to open", 1);

static int same_file(pid_t p1, int fd1, pid_t p2, int fd2)
{
	return syscall(SYS_kcmp, p1, p2, KCMP_FILE, fd1, fd2) == 0;
}

int main(int argc, char **argv)
{
	uint8_t buf[4096];
	int fd1, fd2, fd3, fd4, i, st, bad = 0;
	pid_t child, me;

	test_init(argc, argv);
	me = getpid();
	for (i = 0; i < (int)sizeof(buf); i++)
		buf[i] = (uint8_t)i;
	fd1 = open(filename, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd1 < 0 || write_data(fd1, buf, sizeof(buf))) {
		pr_perror("create %s", filename);
		return 1;
	}
	fd2 = open(filename, O_RDONLY);
	fd3 = dup(fd1);
	fd4 = fcntl(fd1, F_DUPFD_CLOEXEC, 50);
	if (fd2 < 0 || fd3 < 0 || fd4 != 50) {
		pr_perror("open/dup");
		return 1;
	}
	lseek(fd1, 100, SEEK_SET);
	lseek(fd2, 200, SEEK_SET);

	child = fork_or_exit();
	if (child == 0) {
		test_waitsig();
		/* the parent moved the shared offset to 110 after the restore */
		if (lseek(fd1, 0, SEEK_CUR) != 110) {
			fail("child: shared offset %lld, expected 110", (long long)lseek(fd1, 0, SEEK_CUR));
			exit(1);
		}
		if (read(fd1, buf, 5) != 5 || buf[0] != 110) {
			fail("child: read at 110 gave %d", buf[0]);
			exit(1);
		}
		exit(0);
	}

	test_daemon();
	test_waitsig();

	if (!same_file(me, fd1, me, fd3) || !same_file(me, fd1, me, fd4) ||
	    same_file(me, fd1, me, fd2) || !same_file(me, fd1, child, fd1) ||
	    !same_file(me, fd2, child, fd2) || same_file(me, fd2, child, fd1)) {
		fail("kcmp: the fds are not shared as before");
		bad = 1;
	}
	if (lseek(fd3, 0, SEEK_CUR) != 100 || lseek(fd2, 0, SEEK_CUR) != 200) {
		fail("offsets %lld/%lld, expected 100/200", (long long)lseek(fd3, 0, SEEK_CUR),
		     (long long)lseek(fd2, 0, SEEK_CUR));
		bad = 1;
	}
	if (read(fd3, buf, 10) != 10 || buf[0] != 100 || lseek(fd1, 0, SEEK_CUR) != 110 ||
	    lseek(fd4, 0, SEEK_CUR) != 110 || lseek(fd2, 0, SEEK_CUR) != 200) {
		fail("reading through the dup did not move exactly the shared offset");
		bad = 1;
	}
	if (fcntl(fd4, F_GETFD) != FD_CLOEXEC || fcntl(fd3, F_GETFD) != 0) {
		fail("FD_CLOEXEC: fd %d has %d, fd %d has %d", fd4, fcntl(fd4, F_GETFD), fd3,
		     fcntl(fd3, F_GETFD));
		bad = 1;
	}
	kill(child, SIGTERM);
	st = wait_status(child);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fail("the child did not share the offset");
		bad = 1;
	} else if (lseek(fd1, 0, SEEK_CUR) != 115) {
		fail("the child's read did not move the parent's offset (%lld)",
		     (long long)lseek(fd1, 0, SEEK_CUR));
		bad = 1;
	}
	if (!bad)
		pass();
	return 0;
}
