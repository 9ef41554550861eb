/*
 * Interval timers: ITIMER_REAL, ITIMER_VIRTUAL and ITIMER_PROF armed with
 * long values and intervals in the root, and alarm() in a child. After
 * restore every interval is exactly what was set, and each remaining value
 * is what it was at the checkpoint minus the time that passed since (wall
 * time for REAL and alarm, CPU time for VIRTUAL and PROF), within 0.3 s - so
 * a timer that was re-armed with its full value, or lost, fails. None fired.
 */
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "helpers.h"

const char *test_doc = "setitimer timers and alarm keep their remaining time and interval";

#define TOL 0.3

static volatile sig_atomic_t fired;

static void on_timer(int sig)
{
	(void)sig;
	fired++;
}

static double tv(struct timeval t)
{
	return t.tv_sec + t.tv_usec / 1e6;
}

static double cpu_seconds(void)
{
	return clock_seconds(CLOCK_PROCESS_CPUTIME_ID);
}

static const struct {
	int which;
	const char *name;
	struct itimerval set;
} timers[] = {
	{ ITIMER_REAL, "ITIMER_REAL", { { 7, 0 }, { 90, 0 } } },
	{ ITIMER_VIRTUAL, "ITIMER_VIRTUAL", { { 3, 500000 }, { 50, 0 } } },
	{ ITIMER_PROF, "ITIMER_PROF", { { 4, 250000 }, { 60, 0 } } },
};
#define N ((int)ARRAY_SIZE(timers))

static int alarm_child(void)
{
	double t0;
	unsigned left;

	alarm(100);
	t0 = now_mono();
	test_waitsig();
	left = alarm(0);
	/* alarm() rounds up to whole seconds */
	if (left > 100 || left + 1 < 100 - (now_mono() - t0) - TOL) {
		fail("alarm(0) says %u s left, expected about %.1f", left, 100 - (now_mono() - t0));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct itimerval at_dump[N], now;
	double wall0, cpu0, dwall, dcpu;
	pid_t child;
	int i, bad = 0;

	test_init(argc, argv);
	signal(SIGALRM, on_timer);
	signal(SIGVTALRM, on_timer);
	signal(SIGPROF, on_timer);

	child = fork_or_exit();
	if (child == 0)
		exit(alarm_child());

	for (i = 0; i < N; i++)
		if (setitimer(timers[i].which, &timers[i].set, NULL)) {
			pr_perror("setitimer(%s)", timers[i].name);
			return 1;
		}
	for (i = 0; i < N; i++)
		getitimer(timers[i].which, &at_dump[i]);
	wall0 = now_mono();
	cpu0 = cpu_seconds();

	test_daemon();
	test_waitsig();

	dwall = now_mono() - wall0;
	/* a restored process may have a new CPU clock, restarted below cpu0 */
	dcpu = cpu_seconds() - cpu0;
	if (dcpu < 0)
		dcpu = 0;
	for (i = 0; i < N; i++) {
		double passed = timers[i].which == ITIMER_REAL ? dwall : dcpu, want, got;

		getitimer(timers[i].which, &now);
		want = tv(at_dump[i].it_value) - passed;
		got = tv(now.it_value);
		if (tv(now.it_interval) != tv(timers[i].set.it_interval)) {
			fail("%s: interval %.6f, expected %.6f", timers[i].name, tv(now.it_interval),
			     tv(timers[i].set.it_interval));
			bad = 1;
		}
		/* CPU-time timers read back up to a tick (1/HZ s) above the value set */
		double slack = timers[i].which == ITIMER_REAL ? 0.001 : 0.02;

		if (got > tv(at_dump[i].it_value) + slack || got < want - TOL) {
			fail("%s: %.3f s left, expected %.3f (%.3f at the checkpoint, %.3f s passed)",
			     timers[i].name, got, want, tv(at_dump[i].it_value), passed);
			bad = 1;
		}
	}
	if (fired) {
		fail("a timer fired (%d signals)", (int)fired);
		bad = 1;
	}
	if (stop_children(&child, 1)) {
		fail("the child's alarm was not kept");
		bad = 1;
	}
	if (!bad)
		pass();
	return 0;
}
