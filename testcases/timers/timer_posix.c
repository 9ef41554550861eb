/*
 * POSIX timers: several timer_create()d timers with different clocks
 * (REALTIME, MONOTONIC, BOOTTIME, the process CPU clock), notifications
 * (SIGEV_SIGNAL with sival_int / sival_ptr, SIGEV_NONE, SIGEV_THREAD_ID to
 * a thread), intervals and values, one disarmed and one deleted (a gap in
 * the ids). After restore the ids are the same (timer_gettime on each id
 * works, the deleted one gives EINVAL), /proc/self/timers lists the same
 * clocks, signals, values and notification targets, intervals are exact and
 * remaining times are the checkpoint's minus the time passed (within 0.3 s),
 * and the periodic SIGEV_THREAD_ID timer keeps delivering its signal with
 * its value and timer id to its thread.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>

#include "helpers.h"
#include "lock.h"

const char *test_doc = "POSIX timers keep ids, clocks, notifications, intervals and remaining time";

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

#define TOL 0.3

struct spec {
	const char *name;
	clockid_t clock;
	int notify, signo;
	int use_ptr, value;
	double first, interval;
	int deleted;
	timer_t id;
	struct itimerspec at_dump;
};

static int some_object;

static struct spec specs[] = {
	{ "realtime/signal/int", CLOCK_REALTIME, SIGEV_SIGNAL, 0, 0, 0x1111, 30, 5 },
	{ "monotonic/signal/ptr", CLOCK_MONOTONIC, SIGEV_SIGNAL, 0, 1, 0, 20, 0 },
	{ "deleted", CLOCK_MONOTONIC, SIGEV_NONE, 0, 0, 0, 10, 0, 1 },
	{ "boottime/none", CLOCK_BOOTTIME, SIGEV_NONE, 0, 0, 0, 40, 1.5 },
	{ "cputime/signal", CLOCK_PROCESS_CPUTIME_ID, SIGEV_SIGNAL, 0, 0, 0x4444, 50, 0 },
	{ "disarmed", CLOCK_MONOTONIC, SIGEV_SIGNAL, 0, 0, 0x6666, 0, 0 },
	{ "monotonic/thread/periodic", CLOCK_MONOTONIC, SIGEV_THREAD_ID, 0, 0, 0x5555, 0.05, 0.05 },
};
#define N ((int)ARRAY_SIZE(specs))
#define PERIODIC (N - 1)

static pid_t ticker_tid;
static futex_t ticker_ready, ticks, go;
static int tick_errors;

static double ts(struct timespec t)
{
	return t.tv_sec + t.tv_nsec / 1e9;
}

static struct timespec to_ts(double s)
{
	struct timespec t = { (time_t)s, (long)((s - (time_t)s) * 1e9 + 0.5) };
	return t;
}

/* The periodic timer's thread: take its signals with sigwaitinfo, check them, count them. */
static void *ticker(void *arg)
{
	int sig = specs[PERIODIC].signo;
	sigset_t set;
	siginfo_t si;

	(void)arg;
	sigfillset(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	ticker_tid = syscall(SYS_gettid);
	futex_set_and_wake(&ticker_ready, 1);
	sigemptyset(&set);
	sigaddset(&set, sig);
	while (futex_get(&go) != 2) {
		if (sigwaitinfo(&set, &si) != sig)
			continue;
		if (si.si_code != SI_TIMER || si.si_value.sival_int != specs[PERIODIC].value ||
		    si.si_timerid != (int)(intptr_t)specs[PERIODIC].id)
			tick_errors++;
		futex_inc_and_wake(&ticks);
	}
	return NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* /proc/self/timers with its records sorted (the kernel's listing order is not a property) */
static ssize_t proc_timers(char *out, size_t size)
{
	char buf[8192], *rec[64], *p;
	int n = 0, i;
	size_t len = 0;

	if (read_whole("/proc/self/timers", buf, sizeof(buf)) <= 0)
		return -1;
	for (p = buf; (p = strstr(p, "ID: ")) && n < 64; p++) {
		if (p != buf)
			p[-1] = '\0';   /* end the previous record */
		rec[n++] = p;
	}
	for (i = 0; i < n; i++) {
		size_t l = strlen(rec[i]);
		while (l && rec[i][l - 1] == '\n')
			rec[i][--l] = '\0';
	}
	qsort(rec, n, sizeof(*rec), cmp_str);
	out[0] = '\0';
	for (i = 0; i < n; i++)
		len += snprintf(out + len, size - len, "%s\n", rec[i]);
	return len;
}

int main(int argc, char **argv)
{
	static char timers_before[8192], timers_after[8192];
	double t0, cpu0;
	pthread_t th;
	sigset_t block;
	int i, bad = 0;
	uint32_t t;

	test_init(argc, argv);
	specs[0].signo = SIGRTMIN + 1;
	specs[1].signo = SIGUSR1;
	specs[4].signo = SIGRTMIN + 2;
	specs[5].signo = SIGRTMIN + 4;
	specs[PERIODIC].signo = SIGRTMIN + 3;

	/* the main thread does not take any timer signal by accident */
	sigemptyset(&block);
	for (i = 0; i < N; i++)
		if (specs[i].signo)
			sigaddset(&block, specs[i].signo);
	sigprocmask(SIG_BLOCK, &block, NULL);

	if (pthread_create(&th, NULL, ticker, NULL)) {
		pr_err("pthread_create failed\n");
		return 1;
	}
	futex_wait_until(&ticker_ready, 1);

	for (i = 0; i < N; i++) {
		struct spec *s = &specs[i];
		struct sigevent sev;
		struct itimerspec its = { to_ts(s->interval), to_ts(s->first) };

		memset(&sev, 0, sizeof(sev));
		sev.sigev_notify = s->notify;
		sev.sigev_signo = s->signo;
		if (s->use_ptr)
			sev.sigev_value.sival_ptr = &some_object;
		else
			sev.sigev_value.sival_int = s->value;
		if (s->notify == SIGEV_THREAD_ID)
			sev.sigev_notify_thread_id = ticker_tid;
		if (timer_create(s->clock, &sev, &s->id)) {
			pr_perror("timer_create(%s)", s->name);
			return 1;
		}
		if (timer_settime(s->id, 0, &its, NULL)) {
			pr_perror("timer_settime(%s)", s->name);
			return 1;
		}
	}
	for (i = 0; i < N; i++)
		if (specs[i].deleted && timer_delete(specs[i].id)) {
			pr_perror("timer_delete");
			return 1;
		}
	futex_wait_while_lt(&ticks, 3);   /* the periodic one runs */

	for (i = 0; i < N; i++)
		if (!specs[i].deleted)
			timer_gettime(specs[i].id, &specs[i].at_dump);
	t0 = now_mono();
	cpu0 = clock_seconds(CLOCK_PROCESS_CPUTIME_ID);
	if (proc_timers(timers_before, sizeof(timers_before)) <= 0) {
		pr_perror("/proc/self/timers");
		return 1;
	}

	test_daemon();
	test_waitsig();

	if (proc_timers(timers_after, sizeof(timers_after)) < 0 || strcmp(timers_before, timers_after)) {
		fail("/proc/self/timers changed:\n%s---- was:\n%s", timers_after, timers_before);
		bad = 1;
	}
	for (i = 0; i < N; i++) {
		struct spec *s = &specs[i];
		struct itimerspec now;
		double passed, want, slack;

		if (s->deleted) {
			if (timer_gettime(s->id, &now) != -1 || errno != EINVAL) {
				fail("%s: the deleted timer id exists again", s->name);
				bad = 1;
			}
			continue;
		}
		if (timer_gettime(s->id, &now)) {
			fail("%s: timer_gettime(%d)", s->name, (int)(intptr_t)s->id);
			bad = 1;
			continue;
		}
		if (ts(now.it_interval) != ts(s->at_dump.it_interval)) {
			fail("%s: interval %.9f, expected %.9f", s->name, ts(now.it_interval),
			     ts(s->at_dump.it_interval));
			bad = 1;
		}
		if (i == PERIODIC)
			continue;   /* expires every 50 ms: its value says nothing */
		passed = s->clock == CLOCK_PROCESS_CPUTIME_ID ? clock_seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0
							      : now_mono() - t0;
		if (passed < 0)
			passed = 0;   /* a restored process may have a new CPU clock */
		want = ts(s->at_dump.it_value) - passed;
		/* CPU-clock timers may read back up to a tick above the value set */
		slack = s->clock == CLOCK_PROCESS_CPUTIME_ID ? 0.02 : 0.001;
		if (ts(s->at_dump.it_value) == 0 ? ts(now.it_value) != 0
						 : (ts(now.it_value) > ts(s->at_dump.it_value) + slack ||
						    ts(now.it_value) < want - TOL)) {
			fail("%s: %.3f s left, expected %.3f", s->name, ts(now.it_value), want);
			bad = 1;
		}
	}

	t = futex_get(&ticks);
	sleep_ms(400);
	if (futex_get(&ticks) < t + 2) {
		fail("the 50 ms timer ticked %u times in 400 ms after restore", futex_get(&ticks) - t);
		bad = 1;
	}
	if (tick_errors) {
		fail("%d ticks came with a wrong code, value or timer id", tick_errors);
		bad = 1;
	}
	futex_set(&go, 2);
	pthread_join(th, NULL);
	if (!bad)
		pass();
	return 0;
}
