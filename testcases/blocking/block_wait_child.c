/*
 * Parents blocked waiting for children across the checkpoint: three waiter
 * processes sleep in waitpid(child), wait() and waitid(P_ALL) for a child
 * that sleeps until SIGTERM. After restore the root SIGTERMs the grandchildren
 * (their pids reported before the checkpoint); each waiter's call returns that
 * child's pid and exit status - not EINTR, not early - and the waiters report
 * through their own exit status.
 */
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "helpers.h"

const char *test_doc = "waitpid, wait and waitid blocked on a child are restarted after restore";

enum { WAITPID, WAIT, WAITID, N };
static const char *names[N] = { "waitpid", "wait", "waitid" };
static const long nrs[N] = { SYS_wait4, SYS_wait4, SYS_waitid };

static int waiter(int kind, int report_fd)
{
	pid_t child = fork(), got;
	int status = 0;
	siginfo_t si = { 0 };

	if (child < 0) {
		pr_perror("fork");
		return 1;
	}
	if (child == 0) {
		close(report_fd);
		test_waitsig();
		exit(40 + kind);
	}
	if (write(report_fd, &child, sizeof(child)) != sizeof(child)) {
		pr_perror("report");
		return 1;
	}
	close(report_fd);

	switch (kind) {
	case WAITPID:
		got = waitpid(child, &status, 0);
		break;
	case WAIT:
		got = wait(&status);
		break;
	default:
		got = waitid(P_ALL, 0, &si, WEXITED) ? -1 : si.si_pid;
		status = si.si_code == CLD_EXITED ? si.si_status << 8 : -1;
		break;
	}
	if (got != child || !WIFEXITED(status) || WEXITSTATUS(status) != 40 + kind) {
		fail("%s returned %d status %#x, expected %d exiting with %d", names[kind], got, status,
		     child, 40 + kind);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	pid_t waiters[N], children[N];
	int fds[2], i, bad = 0;

	test_init(argc, argv);
	for (i = 0; i < N; i++) {
		if (pipe(fds)) {
			pr_perror("pipe");
			return 1;
		}
		waiters[i] = fork_or_exit();
		if (waiters[i] == 0) {
			close(fds[0]);
			exit(waiter(i, fds[1]));
		}
		close(fds[1]);
		if (read_data(fds[0], (unsigned char *)&children[i], sizeof(children[i]))) {
			pr_err("waiter %d did not report its child\n", i);
			return 1;
		}
		close(fds[0]);
	}
	for (i = 0; i < N; i++)
		if (wait_in_syscall(waiters[i], waiters[i], nrs[i], 5000))
			return 1;

	test_daemon();
	test_waitsig();

	sleep_ms(100);
	for (i = 0; i < N; i++) {
		siginfo_t si = { 0 };
		if (waitid(P_PID, waiters[i], &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid) {
			fail("the %s waiter ended before its child", names[i]);
			bad = 1;
		}
	}
	for (i = 0; i < N; i++)
		kill(children[i], SIGTERM);
	for (i = 0; i < N; i++) {
		int st = wait_status(waiters[i]);
		if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st))
			bad = 1;
	}
	if (!bad)
		pass();
	return 0;
}
