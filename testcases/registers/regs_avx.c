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

#include "helpers.h"
#include "lock.h"

const char *test_doc = "ymm registers (upper halves included) survive checkpoint/restore";

struct avxstate {
	uint8_t ref[15][32] __attribute__((aligned(32)));
	volatile unsigned long progress;
	long bad;
};

static struct avxstate states[2];
static volatile int stop;
static futex_t ready;

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
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	spin(s);
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long at_restore[2];
	pthread_t th[2];
	int i, j, k, bad = 0;

	test_init(argc, argv);
	if (!__builtin_cpu_supports("avx")) {
		pr_err("this CPU has no AVX\n");
		return 1;
	}
	for (i = 0; i < 2; i++) {
		for (j = 0; j < 15 * 32; j++)
			states[i].ref[j / 32][j % 32] = (uint8_t)(i * 77 + j * 13 + (j % 32 >= 16 ? 0x80 : 1));
		if (pthread_create(&th[i], NULL, run, &states[i])) {
			pr_err("pthread_create failed\n");
			return 1;
		}
	}
	while (futex_get(&ready) < 2)   /* bumped by the asm, no futex wake */
		sleep_ms(1);

	test_daemon();
	test_waitsig();

	for (i = 0; i < 2; i++)
		at_restore[i] = states[i].progress;
	/* let every loop run on after the restore (up to 2 s under load) */
	for (i = 0; i < 2; i++)
		for (k = 0; k < 2000 && states[i].progress == at_restore[i]; k++)
			sleep_ms(1);
	stop = 1;
	for (i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		if (states[i].bad) {
			fail("thread %d: a ymm register changed under the loop", i);
			bad = 1;
		} else if (states[i].progress == at_restore[i]) {
			fail("thread %d: the loop did not run after the restore", i);
			bad = 1;
		}
	}
	if (!bad)
		pass();
	return 0;
}
