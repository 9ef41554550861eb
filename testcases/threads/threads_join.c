/*
 * clear_child_tid: pthread_join() sleeps on the exiting thread's tid word,
 * which the kernel clears and wakes (set_tid_address / CLONE_CHILD_CLEARTID).
 * Eight threads live across the checkpoint; after restore each checks that
 * PR_GET_TID_ADDRESS is the address it had, then returns a value, and the main
 * thread joins every one (with a timeout: a lost clear_child_tid hangs joins).
 */
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "helpers.h"
#include "lock.h"

const char *test_doc = "pthread_join works after restore (clear_child_tid kept)";

#define N 8

static futex_t ready, go;
static unsigned long tid_addr[N + 1];
static int result[N + 1];

static unsigned long get_tid_address(void)
{
	unsigned long addr = 0;

	if (prctl(PR_GET_TID_ADDRESS, &addr))
		return 0;
	return addr;
}

static void *run(void *arg)
{
	long index = (long)arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	tid_addr[index] = get_tid_address();
	futex_inc_and_wake(&ready);
	futex_wait_while(&go, 0);
	if (get_tid_address() != tid_addr[index]) {
		fail("thread %ld: tid address %#lx, was %#lx", index, get_tid_address(), tid_addr[index]);
		result[index] = 1;
	}
	return (void *)(index * 1000 + 7);
}

int main(int argc, char **argv)
{
	pthread_t th[N + 1];
	struct timespec limit;
	long i;
	int bad = 0;

	test_init(argc, argv);
	tid_addr[0] = get_tid_address();
	for (i = 1; i <= N; i++)
		if (pthread_create(&th[i], NULL, run, (void *)i)) {
			pr_err("pthread_create failed\n");
			return 1;
		}
	futex_wait_until(&ready, N);
	for (i = 0; i <= N; i++)
		if (!tid_addr[i]) {
			pr_err("no tid address for thread %ld\n", i);
			return 1;
		}

	test_daemon();
	test_waitsig();

	if (get_tid_address() != tid_addr[0]) {
		fail("main: tid address %#lx, was %#lx", get_tid_address(), tid_addr[0]);
		bad = 1;
	}
	futex_set_and_wake(&go, 1);
	clock_gettime(CLOCK_REALTIME, &limit);
	limit.tv_sec += 10;
	for (i = 1; i <= N; i++) {
		void *ret;
		int rc = pthread_timedjoin_np(th[i], &ret, &limit);

		if (rc) {
			errno = rc;
			fail("joining thread %ld failed", i);
			return 1;
		}
		if (ret != (void *)(i * 1000 + 7)) {
			fail("thread %ld returned %p", i, ret);
			bad = 1;
		}
		bad |= result[i];
	}
	if (!bad)
		pass();
	return 0;
}
