/*
 * fs and gs bases of every thread. fs is glibc's TLS (the TCB, whose first
 * word points to itself); gs, unused by glibc on x86-64, is set with
 * ARCH_SET_GS to a per-thread buffer. Three threads spin reading %fs:0 and
 * %gs:0/%gs:8 (so the bases in the CPU, not only their saved values, are
 * checked on every iteration) across the checkpoint; after restore each also
 * compares ARCH_GET_FS/ARCH_GET_GS with the values set.
 */
#include <asm/prctl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>

#include "spin.h"

const char *test_doc = "fs and gs base of every thread survive checkpoint/restore";

#define N 3

struct slot {
	uint64_t gsbuf[2];
	unsigned long fs, gs;
	volatile unsigned long progress;
	long bad;
};

static struct slot slots[N];

static unsigned long arch_get(int code)
{
	unsigned long v = 0;

	syscall(SYS_arch_prctl, code, &v);
	return v;
}

static void *run(void *arg)
{
	struct slot *s = arg;
	long bad;

	spin_block_signals();
	s->gsbuf[0] = 0x6a6b6c6d00000000ULL + (s - slots);
	s->gsbuf[1] = ~s->gsbuf[0];
	if (syscall(SYS_arch_prctl, ARCH_SET_GS, s->gsbuf)) {
		pr_perror("ARCH_SET_GS");
		s->bad = 1;
		futex_inc_and_wake(&ready);
		return NULL;
	}
	s->fs = arch_get(ARCH_GET_FS);
	s->gs = arch_get(ARCH_GET_GS);

	asm volatile(
		"lock incl %[ready]\n\t"
		"1:\n\t"
		"incq %[progress]\n\t"
		"mov %%fs:0, %%rax\n\t"
		"cmp %[fs], %%rax\n\t"
		"jne 9f\n\t"
		"mov %%gs:0, %%rax\n\t"
		"cmp %[g0], %%rax\n\t"
		"jne 9f\n\t"
		"mov %%gs:8, %%rax\n\t"
		"cmp %[g1], %%rax\n\t"
		"jne 9f\n\t"
		"cmpl $0, %[stop]\n\t"
		"je 1b\n\t"
		"xor %%eax, %%eax\n\t"
		"jmp 8f\n\t"
		"9: mov $1, %%eax\n\t"
		"8:\n\t"
		: "=&a"(bad), [ready] "+m"(ready.raw), [progress] "+m"(s->progress)
		: [stop] "m"(stop), [fs] "r"(s->fs), [g0] "r"(s->gsbuf[0]), [g1] "r"(s->gsbuf[1])
		: "cc", "memory");
	if (bad)
		fail("thread %ld: %%fs:0 or %%gs:0/8 changed under the loop", (long)(s - slots));
	else if (arch_get(ARCH_GET_FS) != s->fs || arch_get(ARCH_GET_GS) != s->gs) {
		fail("thread %ld: fs base %#lx gs base %#lx, expected %#lx %#lx", (long)(s - slots),
		     arch_get(ARCH_GET_FS), arch_get(ARCH_GET_GS), s->fs, s->gs);
		bad = 1;
	}
	s->bad = bad;
	return NULL;
}

int main(int argc, char **argv)
{
	volatile unsigned long *progress[N];
	void *args[N];
	pthread_t th[N];
	unsigned stalled;
	int i, bad = 0;

	test_init(argc, argv);
	for (i = 0; i < N; i++) {
		args[i] = &slots[i];
		progress[i] = &slots[i].progress;
	}
	if (spinners_start(th, N, run, args))
		return 1;
	for (i = 0; i < N; i++)
		if (slots[i].bad)
			return 1;

	test_daemon();
	test_waitsig();

	stalled = spinners_finish(th, N, progress);
	for (i = 0; i < N; i++) {
		if (slots[i].bad)
			bad = 1;
		else if (stalled >> i & 1) {
			fail("thread %d: the loop did not run after the restore", i);
			bad = 1;
		}
	}
	if (!bad)
		pass();
	return 0;
}
