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

static int strict(void)
{
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0);
}

int main(int argc, char **argv)
{
	struct jail j;

	test_init(argc, argv);
	if (jail_start(&j, strict))
		return 1;

	test_daemon();
	test_waitsig();

	if (!jail_check(j.pid, j.cmd, j.res, 1, SIGKILL))
		pass();
	return 0;
}
