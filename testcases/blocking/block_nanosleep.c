/*
 * Sleeps across the checkpoint: four threads (all signals blocked) sleep 5 s
 * in nanosleep(), clock_nanosleep(CLOCK_MONOTONIC) relative and absolute and
 * clock_nanosleep(CLOCK_REALTIME) absolute; the checkpoint comes 2 s into
 * the sleep. Each call must return 0 (no EINTR: no signal was delivered to
 * it), never before its deadline on CLOCK_MONOTONIC, and not much after the
 * later of its deadline and the restore: a sleep restarted with its full
 * relative length again would end 2 s late (the tolerance, 1.5 s, leaves room for a
 * slow machine: an emulated guest wakes a sleeper 0.4 s late under load).
 */
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>

#include "helpers.h"
#include "lock.h"

const char *test_doc = "nanosleep and clock_nanosleep sleep the right time across checkpoint/restore";

#define SLEEP 6.0   /* long enough for --fault all: its dumps and restores take about 2 s */
#define INTO 2000   /* ms into the sleep the checkpoint comes */
#define TOLERANCE 1.5

enum { NANOSLEEP, MONO_REL, MONO_ABS, REAL_ABS, N };
static const char *names[N] = { "nanosleep", "clock_nanosleep(MONOTONIC)",
				"clock_nanosleep(MONOTONIC, ABSTIME)",
				"clock_nanosleep(REALTIME, ABSTIME)" };

struct sleeper {
	pthread_t th;
	int kind;
	pid_t tid;
	double start, end;
	int ret, err;
};

static struct sleeper sleepers[N];
static futex_t started;

static struct timespec at(clockid_t clk, double delta)
{
	struct timespec ts;
	double t;

	clock_gettime(clk, &ts);
	t = ts.tv_sec + ts.tv_nsec / 1e9 + delta;
	ts.tv_sec = (time_t)t;
	ts.tv_nsec = (long)((t - ts.tv_sec) * 1e9);
	return ts;
}

static void *run(void *arg)
{
	struct sleeper *s = arg;
	struct timespec req = { (time_t)SLEEP, (long)((SLEEP - (time_t)SLEEP) * 1e9) }, rem;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	s->tid = syscall(SYS_gettid);
	s->start = now_mono();
	futex_inc_and_wake(&started);
	switch (s->kind) {
	case NANOSLEEP:
		s->ret = nanosleep(&req, &rem) ? errno : 0;
		break;
	case MONO_REL:
		s->ret = clock_nanosleep(CLOCK_MONOTONIC, 0, &req, &rem);
		break;
	case MONO_ABS:
		req = at(CLOCK_MONOTONIC, SLEEP);
		s->ret = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &req, NULL);
		break;
	case REAL_ABS:
		req = at(CLOCK_REALTIME, SLEEP);
		s->ret = clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &req, NULL);
		break;
	}
	s->end = now_mono();
	return NULL;
}

int main(int argc, char **argv)
{
	double restored;
	int i, bad = 0;

	test_init(argc, argv);
	for (i = 0; i < N; i++) {
		sleepers[i].kind = i;
		if (pthread_create(&sleepers[i].th, NULL, run, &sleepers[i])) {
			pr_err("pthread_create failed\n");
			return 1;
		}
	}
	futex_wait_until(&started, N);
	for (i = 0; i < N; i++)
		if (wait_in_syscall(getpid(), sleepers[i].tid, SYS_clock_nanosleep, 1000))
			return 1;
	sleep_ms(INTO);

	test_daemon();
	test_waitsig();
	restored = now_mono();

	for (i = 0; i < N; i++) {
		struct sleeper *s = &sleepers[i];
		double deadline = s->start + SLEEP, latest;

		pthread_join(s->th, NULL);
		latest = (deadline > restored ? deadline : restored) + TOLERANCE;
		if (s->ret) {
			errno = s->ret;
			fail("%s failed", names[i]);
			bad = 1;
		} else if (s->end < deadline - 0.001) {
			fail("%s returned %.3f s early", names[i], deadline - s->end);
			bad = 1;
		} else if (s->end > latest) {
			fail("%s slept %.3f s for %.1f s (ended %.3f s after the restore)", names[i],
			     s->end - s->start, SLEEP, s->end - restored);
			bad = 1;
		}
	}
	if (!bad)
		pass();
	return 0;
}
