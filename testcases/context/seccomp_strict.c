/*
 * seccomp strict mode: a child enters SECCOMP_MODE_STRICT (after which it may
 * only read, write, _exit and sigreturn), tells the parent over a pipe, and
 * blocks reading a command from another pipe. After restore the parent sees
 * "Seccomp: 1" in the child's /proc/PID/status, sends the command, gets the
 * child's answer (so the child still runs and can read and write), and then
 * the child calls getpid(), which strict mode must punish with SIGKILL: the
 * parent checks the child died of SIGKILL without writing its "still alive"
 * byte.
 */
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "helpers.h"

const char *test_doc = "a task in seccomp strict mode stays in it";

/* The strict child: only read(), write() and the exit system call from here on. */
static void __attribute__((noreturn)) strict_child(int cmd, int res)
{
	char c = 'R';

	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0))
		syscall(SYS_exit_group, 1);
	if (write(res, &c, 1) != 1)
		syscall(SYS_exit, 2);
	for (;;) {
		long n = read(cmd, &c, 1);
		if (n == 1)
			break;
		if (n == 0 || errno != EINTR)
			syscall(SYS_exit, 5);   /* the parent is gone */
	}
	c++;
	if (write(res, &c, 1) != 1)
		syscall(SYS_exit, 3);
	syscall(SYS_getpid);       /* SIGKILL in strict mode */
	c = 'X';                   /* still alive: strict mode was lost */
	if (write(res, &c, 1) != 1)
		syscall(SYS_exit, 4);
	syscall(SYS_exit, 0);
	__builtin_unreachable();
}

int main(int argc, char **argv)
{
	char path[64], status[4096], c = 0;
	int cmd[2], res[2], st, bad = 0;
	pid_t child;

	test_init(argc, argv);
	if (pipe(cmd) || pipe(res)) {
		pr_perror("pipe");
		return 1;
	}
	child = fork_or_exit();
	if (child == 0) {
		close(cmd[1]);
		close(res[0]);
		strict_child(cmd[0], res[1]);
	}
	close(cmd[0]);
	close(res[1]);
	if (read(res[0], &c, 1) != 1 || c != 'R') {
		pr_err("the child did not enter strict mode\n");
		return 1;
	}

	test_daemon();
	test_waitsig();

	snprintf(path, sizeof(path), "/proc/%d/status", child);
	if (read_whole(path, status, sizeof(status)) < 0 || !strstr(status, "\nSeccomp:\t1\n")) {
		fail("the child's status does not say \"Seccomp: 1\"");
		bad = 1;
	}
	c = 'G';
	if (write(cmd[1], &c, 1) != 1) {
		fail("write the command");
		bad = 1;
	}
	c = 0;
	if (read(res[0], &c, 1) != 1 || c != 'H') {
		fail("the child did not answer the command (got '%c')", c);
		bad = 1;
	}
	st = wait_status(child);
	if (st == -1 || !WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
		fail("the child's getpid() was not killed by strict mode (status %#x)", st);
		bad = 1;
	}
	c = 0;
	if (read(res[0], &c, 1) != 0) {
		fail("the child wrote '%c' after a forbidden system call", c);
		bad = 1;
	}
	if (!bad)
		pass();
	return 0;
}
