/*
 * Thread-local storage: __thread variables with and without initializers
 * (.tdata and .tbss) hold per-thread values; the fs base (ARCH_GET_FS) of
 * every thread is its TCB (the self pointer at %fs:0, pthread_self()). After
 * restore each thread finds its values at the same addresses, and its fs base
 * unchanged, read both with arch_prctl and through %fs.
 */
#include <asm/prctl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>

#include "helpers.h"
#include "lock.h"

const char *test_doc = "thread-local storage and the fs base of every thread are kept";

#define NTHREADS 6

static __thread long tls_init = 0x1234567;
static __thread char tls_buf[300];
static __thread int tls_index;

struct slot {
	pthread_t th;
	void *addr_init, *addr_buf;
	unsigned long fsbase, self;
	int result;
};

static struct slot slots[NTHREADS + 1];
static futex_t ready, go;

static unsigned long fs_self(void)
{
	unsigned long v;

	asm volatile("mov %%fs:0, %0" : "=r"(v));
	return v;
}

static unsigned long get_fs(void)
{
	unsigned long v = 0;

	syscall(SYS_arch_prctl, ARCH_GET_FS, &v);
	return v;
}

static void setup(int index)
{
	struct slot *s = &slots[index];
	int i;

	tls_index = index;
	tls_init = 0x1000 + index;
	for (i = 0; i < (int)sizeof(tls_buf); i++)
		tls_buf[i] = (char)(index * 13 + i);
	s->addr_init = &tls_init;
	s->addr_buf = tls_buf;
	s->fsbase = get_fs();
	s->self = fs_self();
}

static unsigned long fs_self_of(int index)
{
	return slots[index].self;
}

static int verify(int index)
{
	struct slot *s = &slots[index];
	int i;

	if (tls_index != index || tls_init != 0x1000 + index) {
		fail("thread %d: tls values %d %ld", index, tls_index, tls_init);
		return 1;
	}
	for (i = 0; i < (int)sizeof(tls_buf); i++)
		if (tls_buf[i] != (char)(index * 13 + i)) {
			fail("thread %d: tls_buf[%d] changed", index, i);
			return 1;
		}
	if ((void *)&tls_init != s->addr_init || (void *)tls_buf != s->addr_buf) {
		fail("thread %d: tls moved from %p to %p", index, s->addr_init, (void *)&tls_init);
		return 1;
	}
	if (get_fs() != s->fsbase || fs_self() != s->fsbase ||
	    (unsigned long)pthread_self() != s->fsbase) {
		fail("thread %d: fs base %#lx, %%fs:0 %#lx, expected %#lx", index, get_fs(), fs_self(),
		     s->fsbase);
		return 1;
	}
	return 0;
}

static void *run(void *arg)
{
	int index = (int)(long)arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	setup(index);
	futex_inc_and_wake(&ready);
	futex_wait_while(&go, 0);
	slots[index].result = verify(index);
	return NULL;
}

int main(int argc, char **argv)
{
	int i, bad = 0;

	test_init(argc, argv);
	setup(0);
	for (i = 1; i <= NTHREADS; i++)
		if (pthread_create(&slots[i].th, NULL, run, (void *)(long)i)) {
			pr_err("pthread_create failed\n");
			return 1;
		}
	futex_wait_until(&ready, NTHREADS);
	for (i = 0; i <= NTHREADS; i++)
		if (!slots[i].fsbase || slots[i].fsbase != fs_self_of(i)) {
			pr_err("no fs base\n");
			return 1;
		}

	test_daemon();
	test_waitsig();

	bad = verify(0);
	futex_set_and_wake(&go, 1);
	for (i = 1; i <= NTHREADS; i++) {
		pthread_join(slots[i].th, NULL);
		bad |= slots[i].result;
	}
	if (!bad)
		pass();
	return 0;
}
