/*
 * Zombies that exited with different statuses, left unreaped: children of
 * the root and a grandchild of a live child. After restore they are still
 * zombies, waitid(WNOWAIT) sees them, and waitpid() gives the same status.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "helpers.h"

const char *test_doc = "unreaped children that exited keep their exit status";

static const int codes[] = { 0, 1, 42, 255 };
#define NZ ((int)ARRAY_SIZE(codes))

static char proc_state(pid_t pid)
{
	char path[64], buf[512], *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (read_whole(path, buf, sizeof(buf)) < 0 || !(p = strrchr(buf, ')')))
		return '?';
	return p[2];
}

static int check_zombie(pid_t pid, int code)
{
	siginfo_t si = { 0 };
	int st;

	if (proc_state(pid) != 'Z') {
		fail("%d is in state %c, not a zombie", pid, proc_state(pid));
		return -1;
	}
	if (waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) || si.si_pid != pid ||
	    si.si_code != CLD_EXITED || si.si_status != code) {
		fail("waitid(%d): pid %d code %d status %d, expected exit %d", pid, si.si_pid,
		     si.si_code, si.si_status, code);
		return -1;
	}
	st = wait_status(pid);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != code) {
		fail("waitpid(%d): status %#x, expected exit %d", pid, st, code);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	pid_t zombies[NZ], keeper;
	struct ready ready;
	int i, bad = 0;

	test_init(argc, argv);
	ready_init(&ready);

	for (i = 0; i < NZ; i++) {
		zombies[i] = fork_or_exit();
		if (zombies[i] == 0)
			_exit(codes[i]);
	}

	/* a live child holding a zombie of its own */
	keeper = fork();
	if (keeper == 0) {
		pid_t z = fork();
		if (z == 0)
			_exit(7);
		if (z < 0 || wait_zombie(z, 5000))
			exit(2);
		ready_signal(&ready);
		test_waitsig();
		exit(check_zombie(z, 7) ? 1 : 0);
	}
	for (i = 0; i < NZ; i++)
		if (wait_zombie(zombies[i], 5000))
			return 1;
	if (ready_wait(&ready, 1))
		return 1;

	test_daemon();
	test_waitsig();

	for (i = 0; i < NZ; i++)
		if (check_zombie(zombies[i], codes[i]))
			bad = 1;
	if (stop_children(&keeper, 1)) {
		fail("the grandchild zombie lost its status");
		bad = 1;
	}
	if (!bad)
		pass();
	return 0;
}
