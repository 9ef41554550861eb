/*
 * Alternate signal stacks per thread: the main thread and one thread each
 * have their own sigaltstack (the thread's with SS_AUTODISARM), a third
 * thread has none. After restore sigaltstack() reports the same stack, size
 * and flags in every thread, and a SIGUSR1 (SA_ONSTACK handler) sent to each
 * thread runs on that thread's alternate stack - or on its normal stack for
 * the thread without one - with SS_ONSTACK reported inside the handler (an
 * SS_AUTODISARM stack reports itself disabled there and is re-armed after).
 */
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>

#include "helpers.h"
#include "lock.h"

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)   /* <linux/signal.h>, not in glibc 2.36 */
#endif

const char *test_doc = "per-thread sigaltstacks are kept";

#define STACK (64 << 10)

struct slot {
	pthread_t th;
	int has_stack, flags;
	stack_t ss;
	uintptr_t handler_sp;
	int handler_onstack;
	int result;
};

static struct slot slots[3];
static __thread struct slot *me;
static futex_t ready, go;

static void on_usr1(int sig)
{
	volatile char here;
	stack_t cur;

	(void)sig;
	me->handler_sp = (uintptr_t)&here;
	sigaltstack(NULL, &cur);
	me->handler_onstack = !!(cur.ss_flags & SS_ONSTACK);
}

static int setup(struct slot *s)
{
	me = s;
	if (s->has_stack) {
		stack_t ss = { .ss_sp = malloc(STACK), .ss_size = STACK, .ss_flags = s->flags };
		if (!ss.ss_sp || sigaltstack(&ss, NULL)) {
			pr_perror("sigaltstack");
			return -1;
		}
	}
	return sigaltstack(NULL, &s->ss);
}

static int verify(struct slot *s, const char *who)
{
	stack_t now;
	sigset_t usr1;
	uintptr_t lo = (uintptr_t)s->ss.ss_sp, hi = lo + s->ss.ss_size;

	if (sigaltstack(NULL, &now) || now.ss_sp != s->ss.ss_sp || now.ss_size != s->ss.ss_size ||
	    now.ss_flags != s->ss.ss_flags) {
		fail("%s: sigaltstack %p/%zu/%#x, was %p/%zu/%#x", who, now.ss_sp, now.ss_size,
		     now.ss_flags, s->ss.ss_sp, s->ss.ss_size, s->ss.ss_flags);
		return 1;
	}
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
	syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	if (!s->handler_sp) {
		fail("%s: the handler did not run", who);
		return 1;
	}
	/* inside the handler an SS_AUTODISARM stack reports itself disabled */
	if (s->has_stack != (s->handler_sp >= lo && s->handler_sp < hi) ||
	    (s->has_stack && !(s->flags & SS_AUTODISARM)) != s->handler_onstack) {
		fail("%s: handler ran at %#lx (on alt stack: %d), alt stack %#lx-%#lx", who,
		     (unsigned long)s->handler_sp, s->handler_onstack, (unsigned long)lo,
		     (unsigned long)hi);
		return 1;
	}
	if (sigaltstack(NULL, &now) || now.ss_sp != s->ss.ss_sp || now.ss_flags != s->ss.ss_flags) {
		fail("%s: sigaltstack not the same after the handler returned", who);
		return 1;
	}
	return 0;
}

static void *run(void *arg)
{
	struct slot *s = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	if (setup(s))
		s->result = 1;
	futex_inc_and_wake(&ready);
	futex_wait_while(&go, 0);
	if (!s->result)
		s->result = verify(s, s == &slots[1] ? "thread with SS_AUTODISARM stack" : "thread without stack");
	return NULL;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_ONSTACK };
	sigset_t usr1;
	int i, bad = 0;

	test_init(argc, argv);
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);

	slots[0].has_stack = 1;
	slots[1].has_stack = 1;
	slots[1].flags = SS_AUTODISARM;
	if (setup(&slots[0]))
		return 1;
	for (i = 1; i < 3; i++)
		if (pthread_create(&slots[i].th, NULL, run, &slots[i])) {
			pr_err("pthread_create failed\n");
			return 1;
		}
	futex_wait_until(&ready, 2);
	for (i = 1; i < 3; i++)
		if (slots[i].result)
			return 1;

	test_daemon();
	test_waitsig();

	bad = verify(&slots[0], "main thread");
	futex_set_and_wake(&go, 1);
	for (i = 1; i < 3; i++) {
		pthread_join(slots[i].th, NULL);
		bad |= slots[i].result;
	}
	if (!bad)
		pass();
	return 0;
}
