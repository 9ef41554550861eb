/*
 * pause() and sigsuspend() across the checkpoint. One child sleeps in
 * pause() with a SIGUSR1 handler; another has SIGUSR1 blocked and sleeps in
 * sigsuspend() with a mask that lets it through. Neither may return before
 * the signal: after restore the parent sends SIGUSR1, the handler runs, the
 * call returns EINTR, and sigsuspend() puts the old mask (SIGUSR1 blocked)
 * back - a restore that loses the saved mask leaves SIGUSR1 unblocked.
 */
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "helpers.h"

const char *test_doc = "pause() and sigsuspend() sleep until a signal after restore";

static volatile sig_atomic_t got;

static void on_usr1(int sig)
{
	(void)sig;
	got++;
}

static int sleeper(int use_sigsuspend)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	sigset_t usr1, during, now;
	int r;

	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL);
	sigprocmask(SIG_SETMASK, NULL, &during);
	sigdelset(&during, SIGUSR1);

	if (use_sigsuspend) {
		r = sigsuspend(&during);
	} else {
		sigprocmask(SIG_UNBLOCK, &usr1, NULL);
		r = pause();
	}
	if (r != -1 || errno != EINTR || got != 1) {
		fail("%s returned %d (handler ran %d times)", use_sigsuspend ? "sigsuspend" : "pause", r,
		     (int)got);
		return 1;
	}
	sigprocmask(SIG_SETMASK, NULL, &now);
	if (use_sigsuspend && !sigismember(&now, SIGUSR1)) {
		fail("sigsuspend did not restore the mask: SIGUSR1 is unblocked");
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const long nr[2] = { SYS_pause, SYS_rt_sigsuspend };
	pid_t kids[2];
	int i, bad = 0;

	test_init(argc, argv);
	for (i = 0; i < 2; i++) {
		kids[i] = fork_or_exit();
		if (kids[i] == 0)
			exit(sleeper(i));
	}
	for (i = 0; i < 2; i++)
		if (wait_in_syscall(kids[i], kids[i], nr[i], 5000))
			return 1;

	test_daemon();
	test_waitsig();

	sleep_ms(100);   /* a sleeper woken by the restore would exit now, without the signal */
	for (i = 0; i < 2; i++) {
		siginfo_t si = { 0 };
		if (waitid(P_PID, kids[i], &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid) {
			fail("%s returned before any signal", i ? "sigsuspend" : "pause");
			bad = 1;
		}
		kill(kids[i], SIGUSR1);
	}
	for (i = 0; i < 2; i++) {
		int st = wait_status(kids[i]);
		if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st))
			bad = 1;
	}
	if (!bad)
		pass();
	return 0;
}
