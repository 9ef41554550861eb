/*
 * Threads blocked in pthread_cond_wait() (6) and pthread_cond_timedwait()
 * with a far CLOCK_MONOTONIC deadline (2) on one condition variable, all
 * asleep in FUTEX_WAIT at the checkpoint. After restore none of them has
 * left its wait by itself (the predicate is still false for them), a
 * broadcast wakes every one, and none times out.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>

#include "helpers.h"
#include "lock.h"

const char *test_doc = "threads blocked in pthread_cond_wait wake correctly after restore";

#define NWAIT 6
#define NTIMED 2
#define N (NWAIT + NTIMED)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond;
static int released, woken, timed_out;
static pid_t tids[N];
static futex_t started;

static void *waiter(void *arg)
{
	int index = (int)(long)arg, rc = 0;
	struct timespec deadline;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	tids[index] = syscall(SYS_gettid);
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += 600;

	pthread_mutex_lock(&lock);
	futex_inc_and_wake(&started);
	while (!released && rc == 0)
		rc = index < NWAIT ? pthread_cond_wait(&cond, &lock)
				   : pthread_cond_timedwait(&cond, &lock, &deadline);
	if (rc == ETIMEDOUT)
		timed_out++;
	else if (released)
		woken++;
	pthread_mutex_unlock(&lock);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t th[N];
	pthread_condattr_t attr;
	struct timespec limit;
	int i, bad = 0;

	test_init(argc, argv);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&cond, &attr);

	for (i = 0; i < N; i++)
		if (pthread_create(&th[i], NULL, waiter, (void *)(long)i)) {
			pr_err("pthread_create failed\n");
			return 1;
		}
	futex_wait_until(&started, N);
	for (i = 0; i < N; i++)
		if (wait_in_syscall(getpid(), tids[i], SYS_futex, 5000))
			return 1;

	test_daemon();
	test_waitsig();

	sleep_ms(100);   /* a waiter the restore woke by mistake would run now */
	pthread_mutex_lock(&lock);
	if (woken || timed_out) {
		fail("%d waiters left their wait before the broadcast (%d timed out)", woken, timed_out);
		bad = 1;
	}
	released = 1;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);

	clock_gettime(CLOCK_REALTIME, &limit);
	limit.tv_sec += 10;
	for (i = 0; i < N; i++)
		if (pthread_timedjoin_np(th[i], NULL, &limit)) {
			fail("waiter %d did not wake up after the broadcast", i);
			return 1;   /* exiting with live threads: the harness reports the failure */
		}
	if (woken != N) {
		fail("%d of %d waiters woke up (%d timed out)", woken, N, timed_out);
		bad = 1;
	}
	if (!bad)
		pass();
	return 0;
}
