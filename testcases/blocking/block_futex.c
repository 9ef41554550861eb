/*
 * FUTEX_WAIT across the checkpoint, in four flavours: private and shared
 * without a timeout, FUTEX_WAIT with a long relative timeout, and
 * FUTEX_WAIT_BITSET with a far absolute CLOCK_MONOTONIC deadline and bitset
 * 0x2. After restore none has returned (untimed waits never report EINTR:
 * there was no signal; timed ones may, and wait again), a FUTEX_WAKE_BITSET
 * with bitset 0x1 leaves the bitset waiter asleep (the restarted wait kept
 * its bitset), and the proper wakes wake each one.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>

#include "helpers.h"
#include "lock.h"

const char *test_doc = "futex waits are restarted with their arguments after restore";

enum { PRIVATE, SHARED, RELATIVE, BITSET, N };
static const char *names[N] = { "FUTEX_WAIT_PRIVATE", "FUTEX_WAIT", "FUTEX_WAIT with timeout",
				"FUTEX_WAIT_BITSET" };

struct waiter {
	pthread_t th;
	int kind;
	pid_t tid;
	uint32_t word;
	int woken, eintr, timedout, other;
};

static struct waiter waiters[N];
static futex_t started;

static void *run(void *arg)
{
	struct waiter *w = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	w->tid = syscall(SYS_gettid);
	futex_inc_and_wake(&started);
	while (__atomic_load_n(&w->word, __ATOMIC_SEQ_CST) == 0) {
		struct timespec rel = { 600, 0 }, abs;
		long r = 0;

		switch (w->kind) {
		case PRIVATE:
			r = sys_futex(&w->word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
			break;
		case SHARED:
			r = sys_futex(&w->word, FUTEX_WAIT, 0, NULL, NULL, 0);
			break;
		case RELATIVE:
			r = sys_futex(&w->word, FUTEX_WAIT, 0, &rel, NULL, 0);
			break;
		case BITSET:
			clock_gettime(CLOCK_MONOTONIC, &abs);
			abs.tv_sec += 600;
			r = sys_futex(&w->word, FUTEX_WAIT_BITSET, 0, &abs, NULL, 0x2);
			break;
		}
		if (r == 0)
			continue;
		if (errno == EINTR)
			w->eintr++;
		else if (errno == ETIMEDOUT)
			w->timedout++;
		else if (errno != EAGAIN)
			w->other = errno;
	}
	w->woken = 1;
	return NULL;
}

static int still_waiting(struct waiter *w)
{
	return !__atomic_load_n(&w->woken, __ATOMIC_SEQ_CST);
}

static void wake(struct waiter *w)
{
	__atomic_store_n(&w->word, 1, __ATOMIC_SEQ_CST);
	switch (w->kind) {
	case PRIVATE:
		sys_futex(&w->word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
		break;
	case BITSET:
		sys_futex(&w->word, FUTEX_WAKE_BITSET, 1, NULL, NULL, 0x2);
		break;
	default:
		sys_futex(&w->word, FUTEX_WAKE, 1, NULL, NULL, 0);
	}
}

int main(int argc, char **argv)
{
	struct waiter *bs = &waiters[BITSET];
	struct timespec limit;
	int i, bad = 0;

	test_init(argc, argv);
	for (i = 0; i < N; i++) {
		waiters[i].kind = i;
		if (pthread_create(&waiters[i].th, NULL, run, &waiters[i])) {
			pr_err("pthread_create failed\n");
			return 1;
		}
	}
	futex_wait_until(&started, N);
	for (i = 0; i < N; i++)
		if (wait_in_syscall(getpid(), waiters[i].tid, SYS_futex, 5000))
			return 1;

	test_daemon();
	test_waitsig();

	sleep_ms(100);
	for (i = 0; i < N; i++)
		if (!still_waiting(&waiters[i])) {
			fail("%s returned before the wake", names[i]);
			bad = 1;
		}

	/* a wake for bitset 0x1 must not wake a waiter on bitset 0x2: set the word
	 * only after checking, so that a wrong wake-up would show as a new wait */
	if (sys_futex(&bs->word, FUTEX_WAKE_BITSET, 1, NULL, NULL, 0x1) != 0) {
		fail("FUTEX_WAKE_BITSET(0x1) woke the waiter on bitset 0x2");
		bad = 1;
	}
	for (i = 0; i < N; i++)
		wake(&waiters[i]);

	clock_gettime(CLOCK_REALTIME, &limit);
	limit.tv_sec += 10;
	for (i = 0; i < N; i++) {
		struct waiter *w = &waiters[i];

		if (pthread_timedjoin_np(w->th, NULL, &limit)) {
			fail("%s: the waiter did not wake up", names[i]);
			return 1;
		}
		if (w->timedout || w->other || ((i == PRIVATE || i == SHARED) && w->eintr)) {
			errno = w->other;
			fail("%s: %d EINTR, %d ETIMEDOUT", names[i], w->eintr, w->timedout);
			bad = 1;
		}
	}
	if (!bad)
		pass();
	return 0;
}
