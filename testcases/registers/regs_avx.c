/*
 * AVX state at the moment of the checkpoint: two threads load their own
 * 256-bit values (different in the upper halves) into ymm0-ymm14 and spin in
 * an assembly loop that compares each register with its reference on every
 * iteration (ymm15 is the scratch register). After restore the threads leave
 * the loop and report whether any upper or lower half ever changed.
 */
#include <pthread.h>
#include <signal.h>
#include <stddef.h>

#include "spin.h"

const char *test_doc = "ymm registers (upper halves included) survive checkpoint/restore";

struct avxstate {
	uint8_t ref[15][32] __attribute__((aligned(32)));
	volatile unsigned long progress;
	long bad;
};

static struct avxstate states[2];

#define LOAD(n) "vmovdqu " #n "*32(%[s]), %%ymm" #n "\n\t"
#define CHECK(n)                                         \
	"vpxor " #n "*32(%[s]), %%ymm" #n ", %%ymm15\n\t" \
	"vptest %%ymm15, %%ymm15\n\t"                    \
	"jnz 9f\n\t"

static void spin(struct avxstate *s)
{
	long bad;

	asm volatile(
		LOAD(0) LOAD(1) LOAD(2) LOAD(3) LOAD(4) LOAD(5) LOAD(6) LOAD(7)
		LOAD(8) LOAD(9) LOAD(10) LOAD(11) LOAD(12) LOAD(13) LOAD(14)
		"lock incl %[ready]\n\t"
		"1:\n\t"
		"incq %c[progress](%[s])\n\t"
		CHECK(0) CHECK(1) CHECK(2) CHECK(3) CHECK(4) CHECK(5) CHECK(6) CHECK(7)
		CHECK(8) CHECK(9) CHECK(10) CHECK(11) CHECK(12) CHECK(13) CHECK(14)
		"cmpl $0, %[stop]\n\t"
		"je 1b\n\t"
		"xor %%eax, %%eax\n\t"
		"jmp 8f\n\t"
		"9: mov $1, %%eax\n\t"
		"8: vzeroupper\n\t"
		: "=&a"(bad), [ready] "+m"(ready.raw)
		: [s] "b"(s), [stop] "m"(stop), [progress] "i"(offsetof(struct avxstate, progress))
		: "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
		  "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
	s->bad = bad;
}

static void *run(void *arg)
{
	struct avxstate *s = arg;
	spin_block_signals();
	spin(s);
	return NULL;
}

int main(int argc, char **argv)
{
	void *args[] = { &states[0], &states[1] };
	volatile unsigned long *progress[] = { &states[0].progress, &states[1].progress };
	pthread_t th[2];
	unsigned stalled;
	int i, j, bad = 0;

	test_init(argc, argv);
	if (!__builtin_cpu_supports("avx")) {
		pr_err("this CPU has no AVX\n");
		return 1;
	}
	for (i = 0; i < 2; i++)
		for (j = 0; j < 15 * 32; j++)
			states[i].ref[j / 32][j % 32] = (uint8_t)(i * 77 + j * 13 + (j % 32 >= 16 ? 0x80 : 1));
	if (spinners_start(th, 2, run, args))
		return 1;

	test_daemon();
	test_waitsig();

	stalled = spinners_finish(th, 2, progress);
	for (i = 0; i < 2; i++) {
		if (states[i].bad) {
			fail("thread %d: a ymm register changed under the loop", i);
			bad = 1;
		} else if (stalled >> i & 1) {
			fail("thread %d: the loop did not run after the restore", i);
			bad = 1;
		}
	}
	if (!bad)
		pass();
	return 0;
}
