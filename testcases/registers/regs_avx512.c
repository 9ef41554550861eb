/*
 * AVX-512 state at the moment of the checkpoint: two threads load their own
 * 512-bit values into zmm0-zmm30 (the upper registers zmm16-31 and the upper
 * 256 bits of zmm0-15 are separate xstate components) and the opmask
 * registers k2-k7, then spin in an assembly loop that compares all of them
 * with their references on every iteration (zmm31 and k1 are scratch).
 * After restore the threads leave the loop and report any difference.
 */
#include <pthread.h>
#include <signal.h>
#include <stddef.h>

#include "spin.h"

const char *test_doc = "zmm0-30 and opmask registers survive checkpoint/restore";

struct zstate {
	uint8_t ref[31][64] __attribute__((aligned(64)));
	uint64_t k[8];
	volatile unsigned long progress;
	long bad;
};

static struct zstate states[2];

#define LOAD(n) "vmovdqu64 " #n "*64(%[s]), %%zmm" #n "\n\t"
#define CHECK(n)                                              \
	"vpxorq " #n "*64(%[s]), %%zmm" #n ", %%zmm31\n\t"     \
	"vptestmq %%zmm31, %%zmm31, %%k1\n\t"                 \
	"kortestw %%k1, %%k1\n\t"                             \
	"jnz 9f\n\t"
#define LOADK(n) "kmovq %c[k]+" #n "*8(%[s]), %%k" #n "\n\t"
#define CHECKK(n)                                   \
	"kmovq %%k" #n ", %%rdx\n\t"                \
	"cmp %c[k]+" #n "*8(%[s]), %%rdx\n\t"       \
	"jne 9f\n\t"

static void spin(struct zstate *s)
{
	long bad;

	asm volatile(
		LOAD(0) LOAD(1) LOAD(2) LOAD(3) LOAD(4) LOAD(5) LOAD(6) LOAD(7)
		LOAD(8) LOAD(9) LOAD(10) LOAD(11) LOAD(12) LOAD(13) LOAD(14) LOAD(15)
		LOAD(16) LOAD(17) LOAD(18) LOAD(19) LOAD(20) LOAD(21) LOAD(22) LOAD(23)
		LOAD(24) LOAD(25) LOAD(26) LOAD(27) LOAD(28) LOAD(29) LOAD(30)
		LOADK(2) LOADK(3) LOADK(4) LOADK(5) LOADK(6) LOADK(7)
		"lock incl %[ready]\n\t"
		"1:\n\t"
		"incq %c[progress](%[s])\n\t"
		CHECK(0) CHECK(1) CHECK(2) CHECK(3) CHECK(4) CHECK(5) CHECK(6) CHECK(7)
		CHECK(8) CHECK(9) CHECK(10) CHECK(11) CHECK(12) CHECK(13) CHECK(14) CHECK(15)
		CHECK(16) CHECK(17) CHECK(18) CHECK(19) CHECK(20) CHECK(21) CHECK(22) CHECK(23)
		CHECK(24) CHECK(25) CHECK(26) CHECK(27) CHECK(28) CHECK(29) CHECK(30)
		CHECKK(2) CHECKK(3) CHECKK(4) CHECKK(5) CHECKK(6) CHECKK(7)
		"cmpl $0, %[stop]\n\t"
		"je 1b\n\t"
		"xor %%eax, %%eax\n\t"
		"jmp 8f\n\t"
		"9: mov $1, %%eax\n\t"
		"8: vzeroupper\n\t"
		: "=&a"(bad), [ready] "+m"(ready.raw)
		: [s] "b"(s), [stop] "m"(stop), [progress] "i"(offsetof(struct zstate, progress)),
		  [k] "i"(offsetof(struct zstate, k))
		: "rdx", "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6",
		  "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",
		  "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24",
		  "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "k1", "k2", "k3",
		  "k4", "k5", "k6", "k7");
	s->bad = bad;
}

static void *run(void *arg)
{
	struct zstate *s = arg;
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
	if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw")) {
		pr_err("this CPU has no AVX-512F/BW\n");
		return 1;
	}
	for (i = 0; i < 2; i++) {
		for (j = 0; j < 31 * 64; j++)
			states[i].ref[j / 64][j % 64] = (uint8_t)(i * 59 + j * 11 + (j % 64) / 16 + 1);
		for (j = 0; j < 8; j++)
			states[i].k[j] = 0x0123456789abcdefULL * (j + 1) + i;
	}
	if (spinners_start(th, 2, run, args))
		return 1;

	test_daemon();
	test_waitsig();

	stalled = spinners_finish(th, 2, progress);
	for (i = 0; i < 2; i++) {
		if (states[i].bad) {
			fail("thread %d: a zmm or opmask register changed under the loop", i);
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
