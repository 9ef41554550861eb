/*
 * Signal dispositions: handlers installed with SA_SIGINFO, SA_RESTART,
 * SA_NODEFER, SA_RESETHAND, SA_ONSTACK, SA_NOCLDSTOP and various sa_masks,
 * plus ignored and default signals. After restore the kernel's view of every
 * signal 1-64 (rt_sigaction: handler, flags, restorer, mask) is what it was,
 * and raising the signals shows the behaviour: siginfo reaches SA_SIGINFO
 * handlers, sa_mask is blocked inside the handler (and the signal itself
 * unless SA_NODEFER; SA_RESETHAND does not imply it on Linux), SA_RESETHAND
 * resets to SIG_DFL after one delivery.
 */
#include <signal.h>
#include <sys/syscall.h>

#include "helpers.h"

const char *test_doc = "signal handlers and their flags and masks are kept";

struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

static struct ksigaction before[65];

static int kget(int sig, struct ksigaction *ka)
{
	return syscall(SYS_rt_sigaction, sig, NULL, ka, 8);
}

struct seen {
	int count, signo, code;
	pid_t pid;
	sigset_t mask;
};
static struct seen seen[65];

static void record(int sig, siginfo_t *si)
{
	seen[sig].count++;
	seen[sig].signo = si ? si->si_signo : sig;
	seen[sig].code = si ? si->si_code : 0;
	seen[sig].pid = si ? si->si_pid : 0;
	sigprocmask(SIG_SETMASK, NULL, &seen[sig].mask);
}

static void plain_handler(int sig)
{
	record(sig, NULL);
}

static void info_handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	record(sig, si);
}

static int install(int sig, int flags, void *handler, const int *mask_sigs)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_flags = flags;
	if (flags & SA_SIGINFO)
		sa.sa_sigaction = handler;
	else
		sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	for (; mask_sigs && *mask_sigs; mask_sigs++)
		sigaddset(&sa.sa_mask, *mask_sigs);
	if (sigaction(sig, &sa, NULL)) {
		pr_perror("sigaction(%d)", sig);
		return -1;
	}
	return 0;
}

static int check_delivery(int sig, int info, const int *masked, int nodefer)
{
	if (raise(sig)) {
		pr_perror("raise(%d)", sig);
		return 1;
	}
	if (seen[sig].count != 1) {
		fail("signal %d: handler ran %d times", sig, seen[sig].count);
		return 1;
	}
	if (info && (seen[sig].signo != sig || seen[sig].code != SI_TKILL || seen[sig].pid != getpid())) {
		fail("signal %d: siginfo signo %d code %d pid %d", sig, seen[sig].signo, seen[sig].code,
		     seen[sig].pid);
		return 1;
	}
	for (; masked && *masked; masked++)
		if (!sigismember(&seen[sig].mask, *masked)) {
			fail("signal %d: %d not blocked in the handler", sig, *masked);
			return 1;
		}
	if (sigismember(&seen[sig].mask, sig) == nodefer) {
		fail("signal %d: itself %sblocked in the handler", sig, nodefer ? "" : "not ");
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const int usr1_mask[] = { SIGUSR2, SIGHUP, 0 }, rt_mask[] = { SIGINT, SIGQUIT, 0 };
	struct ksigaction now;
	int sig, rt = SIGRTMIN + 5, bad = 0;

	test_init(argc, argv);
	if (install(SIGUSR1, SA_SIGINFO | SA_RESTART, info_handler, usr1_mask) ||
	    install(SIGUSR2, SA_NODEFER, plain_handler, NULL) ||
	    install(SIGHUP, SA_RESETHAND | SA_SIGINFO, info_handler, NULL) ||
	    install(SIGWINCH, SA_ONSTACK | SA_RESTART, plain_handler, NULL) ||
	    install(SIGCHLD, SA_NOCLDSTOP | SA_RESTART, plain_handler, NULL) ||
	    install(rt, SA_SIGINFO, info_handler, rt_mask) ||
	    install(SIGRTMAX, SA_RESTART | SA_NODEFER, plain_handler, rt_mask))
		return 1;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGURG, SIG_IGN);
	signal(SIGALRM, SIG_DFL);
	for (sig = 1; sig <= 64; sig++)
		if (sig != SIGKILL && sig != SIGSTOP && kget(sig, &before[sig])) {
			pr_perror("rt_sigaction(%d)", sig);
			return 1;
		}

	test_daemon();
	test_waitsig();

	for (sig = 1; sig <= 64; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if (kget(sig, &now) || memcmp(&now, &before[sig], sizeof(now))) {
			fail("signal %d: handler %p flags %#lx restorer %p mask %#llx, was %p %#lx %p %#llx",
			     sig, now.handler, now.flags, now.restorer, (unsigned long long)now.mask,
			     before[sig].handler, before[sig].flags, before[sig].restorer,
			     (unsigned long long)before[sig].mask);
			bad = 1;
		}
	}
	if (bad)
		return 0;

	if (check_delivery(SIGUSR1, 1, usr1_mask, 0) || check_delivery(SIGUSR2, 0, NULL, 1) ||
	    check_delivery(SIGHUP, 1, NULL, 0) || check_delivery(rt, 1, rt_mask, 0) ||
	    check_delivery(SIGRTMAX, 0, rt_mask, 1) || check_delivery(SIGWINCH, 0, NULL, 0))
		return 0;
	if (kget(SIGHUP, &now) || now.handler != SIG_DFL) {
		fail("SIGHUP (SA_RESETHAND) still has a handler after one delivery");
		return 0;
	}
	raise(SIGPIPE);   /* ignored: must not kill us */
	pass();
	return 0;
}
