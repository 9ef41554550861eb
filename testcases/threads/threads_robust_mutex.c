/*
 * Robust mutexes and the robust futex list. Mutex A was locked by a thread
 * that exited before the checkpoint (the kernel already marked it owner-dead);
 * mutex B is held across the checkpoint by a thread that exits after the
 * restore without unlocking it: only a restored robust list (and tid) lets the
 * kernel mark B owner-dead then. Both lock with EOWNERDEAD after restore, and
 * every thread's get_robust_list() head is unchanged.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>

#include "helpers.h"
#include "lock.h"

const char *test_doc = "a robust mutex held by a thread that exits gives EOWNERDEAD after restore";

static pthread_mutex_t mutex_a, mutex_b;
static futex_t holding, quit;
static pid_t holder_tid;

static void *lock_and_exit(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mutex_a);
	return NULL;
}

static void *lock_and_hold(void *arg)
{
	sigset_t all;

	(void)arg;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	holder_tid = syscall(SYS_gettid);
	pthread_mutex_lock(&mutex_b);
	futex_set_and_wake(&holding, 1);
	futex_wait_while(&quit, 0);
	return NULL;   /* exits holding mutex_b */
}

static int robust_head(pid_t tid, void **head, size_t *len)
{
	return syscall(SYS_get_robust_list, tid, head, len);
}

static int lock_owner_dead(pthread_mutex_t *m, const char *name)
{
	struct timespec limit;
	int rc;

	clock_gettime(CLOCK_REALTIME, &limit);
	limit.tv_sec += 5;
	rc = pthread_mutex_timedlock(m, &limit);
	if (rc != EOWNERDEAD) {
		errno = rc;
		fail("locking %s gave %d (%s), expected EOWNERDEAD", name, rc, strerror(rc));
		return 1;
	}
	pthread_mutex_consistent(m);
	pthread_mutex_unlock(m);
	return 0;
}

int main(int argc, char **argv)
{
	pthread_mutexattr_t attr;
	pthread_t a, b;
	void *head_main, *head_b, *h;
	size_t len_main, len_b, l;
	int bad = 0;

	test_init(argc, argv);
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&mutex_a, &attr);
	pthread_mutex_init(&mutex_b, &attr);

	if (pthread_create(&a, NULL, lock_and_exit, NULL) || pthread_join(a, NULL) ||
	    pthread_create(&b, NULL, lock_and_hold, NULL)) {
		pr_err("pthread_create failed\n");
		return 1;
	}
	futex_wait_until(&holding, 1);
	if (robust_head(0, &head_main, &len_main) || robust_head(holder_tid, &head_b, &len_b)) {
		pr_perror("get_robust_list");
		return 1;
	}

	test_daemon();
	test_waitsig();

	if (robust_head(0, &h, &l) || h != head_main || l != len_main) {
		fail("main thread's robust list head %p/%zu, was %p/%zu", h, l, head_main, len_main);
		bad = 1;
	}
	if (robust_head(holder_tid, &h, &l) || h != head_b || l != len_b) {
		fail("holder's robust list head %p/%zu, was %p/%zu", h, l, head_b, len_b);
		bad = 1;
	}
	bad |= lock_owner_dead(&mutex_a, "mutex A (owner exited before the checkpoint)");

	futex_set_and_wake(&quit, 1);
	pthread_join(b, NULL);
	bad |= lock_owner_dead(&mutex_b, "mutex B (owner exited after the restore)");
	if (!bad)
		pass();
	return 0;
}
