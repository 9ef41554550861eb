/*
 * prctl flags. The main process sets PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS
 * and PR_SET_DUMPABLE 0; its child P forks a grandchild C that sets
 * PR_SET_PDEATHSIG(SIGUSR1) (SIGUSR1 blocked in C). After restore:
 * - main: PR_GET_CHILD_SUBREAPER is 1, PR_GET_NO_NEW_PRIVS is 1 (and
 *   /proc/self/status "NoNewPrivs: 1"), PR_GET_DUMPABLE is 0;
 * - C: PR_GET_PDEATHSIG is SIGUSR1 (reported to main over a pipe);
 * - then P exits: C receives SIGUSR1 (the parent-death signal still works)
 *   and is re-parented to main (the subreaper still works), which it reports,
 *   and main reaps it.
 */
#include <signal.h>
#include <sys/prctl.h>

#include "helpers.h"

const char *test_doc = "no_new_privs, dumpable, pdeath_signal and child subreaper are kept";

/* The grandchild: report the pdeath signal, then the signal and the new parent. */
static void __attribute__((noreturn)) grandchild(int report, pid_t main_pid)
{
	struct timespec ts = { 5, 0 };
	sigset_t set;
	int sig = 0;
	char c;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	test_waitsig();
	prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0);
	c = sig == SIGUSR1 ? 'A' : 'a';
	if (c != 'A')
		fail("grandchild: PR_GET_PDEATHSIG is %d, expected SIGUSR1", sig);
	if (write(report, &c, 1) != 1)
		_exit(1);
	sig = sigtimedwait(&set, NULL, &ts);
	c = sig == SIGUSR1 && getppid() == main_pid ? 'B' : 'b';
	if (c != 'B')
		fail("grandchild: after its parent died got signal %d, parent %d; expected SIGUSR1 "
		     "and %d", sig, getppid(), main_pid);
	if (write(report, &c, 1) != 1)
		_exit(1);
	_exit(0);
}

int main(int argc, char **argv)
{
	static char status[8192];
	int rep[2], v = -1, bad = 0;
	char c = 0;
	pid_t p, gc, me;
	struct ready r;
	sigset_t set;

	test_init(argc, argv);
	me = getpid();
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)) {
		pr_perror("prctl");
		return 1;
	}
	if (pipe(rep)) {
		pr_perror("pipe");
		return 1;
	}
	ready_init(&r);
	p = fork_or_exit();
	if (p == 0) {
		pid_t g = test_fork();
		if (g < 0)
			_exit(1);
		if (g == 0) {
			g = getpid();
			close(rep[0]);
			sigemptyset(&set);
			sigaddset(&set, SIGUSR1);
			if (sigprocmask(SIG_BLOCK, &set, NULL) ||
			    prctl(PR_SET_PDEATHSIG, SIGUSR1, 0, 0, 0) ||
			    write(rep[1], &g, sizeof(g)) != sizeof(g))
				_exit(1);
			ready_signal(&r);
			grandchild(rep[1], me);
		}
		close(rep[0]);
		close(rep[1]);
		ready_signal(&r);
		test_waitsig();
		_exit(0);
	}
	close(rep[1]);
	if (ready_wait(&r, 2))
		return 1;
	if (read(rep[0], &gc, sizeof(gc)) != sizeof(gc)) {   /* the grandchild's pid */
		pr_err("no pid from the grandchild\n");
		return 1;
	}

	test_daemon();
	test_waitsig();

	if (prctl(PR_GET_CHILD_SUBREAPER, &v, 0, 0, 0) || v != 1) {
		fail("PR_GET_CHILD_SUBREAPER is %d, expected 1", v);
		bad = 1;
	}
	v = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	if (v != 1) {
		fail("PR_GET_NO_NEW_PRIVS is %d, expected 1", v);
		bad = 1;
	}
	if (read_whole("/proc/self/status", status, sizeof(status)) < 0 ||
	    !strstr(status, "\nNoNewPrivs:\t1\n")) {
		fail("/proc/self/status has no \"NoNewPrivs: 1\"");
		bad = 1;
	}
	v = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	if (v != 0) {
		fail("PR_GET_DUMPABLE is %d, expected 0", v);
		bad = 1;
	}

	kill(gc, SIGTERM);
	if (read(rep[0], &c, 1) != 1 || c != 'A') {
		fail("the grandchild's pdeath signal is not SIGUSR1 (report '%c')", c);
		bad = 1;
	}
	bad |= child_verdict(p, "the child failed");
	c = 0;
	if (read(rep[0], &c, 1) != 1 || c != 'B') {
		fail("the grandchild did not get SIGUSR1 and main as its parent (report '%c')", c);
		bad = 1;
	}
	/* main can reap it: it is main's child now */
	bad |= child_passed(gc, "the grandchild was not re-parented to main or failed");
	if (!bad)
		pass();
	return 0;
}
