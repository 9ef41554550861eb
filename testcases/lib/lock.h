/*
 * Futex-based synchronisation for test programs (the names follow the ZDTM
 * library so that its tests build against ours).
 *
 * A futex_t is a 32-bit word; when it lives in a MAP_SHARED mapping it
 * synchronises processes, otherwise threads.  Waits are plain (not
 * FUTEX_PRIVATE) so one helper serves both cases, and they survive signals:
 * an interrupted wait simply re-checks the value and waits again.
 */
#ifndef ZDTM_LOCK_H_
#define ZDTM_LOCK_H_

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/syscall.h>

#define BUG_ON(cond)                                                          \
	do {                                                                  \
		if (cond) {                                                   \
			raise(SIGABRT);                                       \
			_exit(134);                                           \
		}                                                             \
	} while (0)

typedef struct {
	uint32_t raw;
} futex_t;

#define FUTEX_ABORT_FLAG 0x80000000u
#define FUTEX_ABORT_RAW  (~0u)

static inline long sys_futex(uint32_t *uaddr, int op, uint32_t val,
			     const struct timespec *timeout, uint32_t *uaddr2, uint32_t val3)
{
	return syscall(SYS_futex, uaddr, op, val, timeout, uaddr2, val3);
}

static inline uint32_t futex_get(futex_t *f)
{
	return __atomic_load_n(&f->raw, __ATOMIC_SEQ_CST);
}

static inline void futex_set(futex_t *f, uint32_t v)
{
	__atomic_store_n(&f->raw, v, __ATOMIC_SEQ_CST);
}

#define futex_init(f) futex_set(f, 0)

static inline void futex_inc(futex_t *f)
{
	__atomic_add_fetch(&f->raw, 1, __ATOMIC_SEQ_CST);
}

static inline void futex_dec(futex_t *f)
{
	__atomic_sub_fetch(&f->raw, 1, __ATOMIC_SEQ_CST);
}

static inline void futex_wake(futex_t *f)
{
	BUG_ON(sys_futex(&f->raw, FUTEX_WAKE, INT_MAX, NULL, NULL, 0) < 0);
}

static inline void futex_set_and_wake(futex_t *f, uint32_t v)
{
	futex_set(f, v);
	futex_wake(f);
}

static inline void futex_inc_and_wake(futex_t *f)
{
	futex_inc(f);
	futex_wake(f);
}

static inline void futex_dec_and_wake(futex_t *f)
{
	futex_dec(f);
	futex_wake(f);
}

static inline void futex_abort_and_wake(futex_t *f)
{
	futex_set_and_wake(f, FUTEX_ABORT_RAW);
}

/* Sleep while *f == cur (returns at once if it already differs). */
static inline void __futex_wait_on(futex_t *f, uint32_t cur)
{
	if (sys_futex(&f->raw, FUTEX_WAIT, cur, NULL, NULL, 0) < 0)
		BUG_ON(errno != EAGAIN && errno != EINTR);
}

/* Wait until the value satisfies "value OP v" (or carries the abort flag). */
#define futex_wait_if_cond(f, v, op)                                          \
	do {                                                                  \
		for (;;) {                                                    \
			uint32_t __cur = futex_get(f);                        \
			if ((__cur & FUTEX_ABORT_FLAG) || (__cur op (v)))     \
				break;                                        \
			__futex_wait_on(f, __cur);                            \
		}                                                             \
	} while (0)

static inline void futex_wait_until(futex_t *f, uint32_t v)
{
	futex_wait_if_cond(f, v, ==);
}

/* Wait while the value is greater than v. */
static inline void futex_wait_while_gt(futex_t *f, uint32_t v)
{
	futex_wait_if_cond(f, v, <=);
}

/* Wait while the value is lower than v. */
static inline void futex_wait_while_lt(futex_t *f, uint32_t v)
{
	futex_wait_if_cond(f, v, >=);
}

/* Wait while the value is v; returns the new value. */
static inline uint32_t futex_wait_while(futex_t *f, uint32_t v)
{
	uint32_t cur;

	while ((cur = futex_get(f)) == v)
		__futex_wait_on(f, cur);
	return cur;
}

/* A simple sleeping lock (0 free, 1 locked, 2 locked with waiters). */
typedef struct {
	uint32_t raw;
} mutex_t;

static inline void mutex_init(mutex_t *m)
{
	__atomic_store_n(&m->raw, 0, __ATOMIC_SEQ_CST);
}

static inline void mutex_lock(mutex_t *m)
{
	uint32_t c = 0;

	if (__atomic_compare_exchange_n(&m->raw, &c, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return;
	while (__atomic_exchange_n(&m->raw, 2, __ATOMIC_ACQUIRE) != 0)
		if (sys_futex(&m->raw, FUTEX_WAIT, 2, NULL, NULL, 0) < 0)
			BUG_ON(errno != EAGAIN && errno != EINTR);
}

static inline void mutex_unlock(mutex_t *m)
{
	if (__atomic_exchange_n(&m->raw, 0, __ATOMIC_RELEASE) == 2)
		BUG_ON(sys_futex(&m->raw, FUTEX_WAKE, 1, NULL, NULL, 0) < 0);
}

#endif /* ZDTM_LOCK_H_ */
