/*
 * seccomp strict mode: a child enters SECCOMP_MODE_STRICT (after which it may
 * only read, write, _exit and sigreturn), tells the parent over a pipe, and
 * blocks reading a command from another pipe. After restore the parent sees
 * "Seccomp: 1" in the child's /proc/PID/status, sends the command, gets the
 * child's answer (so the child still runs and can read and write), and then
 * the child calls getpid(), which strict mode must punish with SIGKILL: the
 * parent checks the child died of SIGKILL without writing its "still alive"
 * byte (see jail.h).
 */
#include <linux/seccomp.h>
#include <sys/prctl.h>

#include "jail.h"

const char *test_doc = "a task in seccomp strict mode stays in it";

int main(int argc, char **argv)
{
	int cmd[2], res[2];
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
		if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0))
			syscall(SYS_exit_group, 1);
		jail_serve(cmd[0], res[1]);
	}
	close(cmd[0]);
	close(res[1]);
	if (jail_wait_ready(res[0]))
		return 1;

	test_daemon();
	test_waitsig();

	if (!jail_check(child, cmd[1], res[0], 1, SIGKILL))
		pass();
	return 0;
}
