/*
 * Zombies of children killed by signals (SIGKILL from the parent, a raised
 * SIGUSR2, SIGHUP and SIGPIPE), left unreaped. After restore waitid(WNOWAIT)
 * reports CLD_KILLED with the same signal and waitpid() WTERMSIG agrees; none
 * of them claims a core dump.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "helpers.h"

const char *test_doc = "unreaped children killed by a signal keep their termination signal";

static const int sigs[] = { SIGKILL, SIGUSR2, SIGHUP, SIGPIPE };
#define NZ ((int)ARRAY_SIZE(sigs))

int main(int argc, char **argv)
{
	pid_t zombies[NZ];
	int i, bad = 0;

	test_init(argc, argv);

	for (i = 0; i < NZ; i++) {
		zombies[i] = fork_or_exit();
		if (zombies[i] == 0) {
			signal(sigs[i], SIG_DFL);
			if (sigs[i] != SIGKILL)
				raise(sigs[i]);
			for (;;)
				pause();
		}
		if (sigs[i] == SIGKILL)
			kill(zombies[i], SIGKILL);
	}
	for (i = 0; i < NZ; i++)
		if (wait_zombie(zombies[i], 5000))
			return 1;

	test_daemon();
	test_waitsig();

	for (i = 0; i < NZ; i++) {
		siginfo_t si = { 0 };
		int st;

		if (waitid(P_PID, zombies[i], &si, WEXITED | WNOHANG | WNOWAIT) ||
		    si.si_pid != zombies[i] || si.si_code != CLD_KILLED || si.si_status != sigs[i]) {
			fail("waitid(%d): pid %d code %d status %d, expected CLD_KILLED by %d",
			     zombies[i], si.si_pid, si.si_code, si.si_status, sigs[i]);
			bad = 1;
			continue;
		}
		st = wait_status(zombies[i]);
		if (st == -1 || !WIFSIGNALED(st) || WTERMSIG(st) != sigs[i] || WCOREDUMP(st)) {
			fail("waitpid(%d): status %#x, expected killed by %d", zombies[i], st, sigs[i]);
			bad = 1;
		}
	}
	if (!bad)
		pass();
	return 0;
}
