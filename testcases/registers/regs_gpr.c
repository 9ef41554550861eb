/*
 * General-purpose registers at the moment of the checkpoint: two threads
 * spin in an assembly loop that keeps values in rbx, rcx, rsi, rdi and
 * r8-r15 - rcx counts iterations, rbx and rsi move with it, the others are
 * constants - and checks every one of them on every iteration. The threads
 * are inside the loop when the tree is dumped; after restore the main thread
 * lets them leave it, and each reports whether any register ever differed
 * from what the loop expected and that it kept iterating after the restore.
 */
#include <pthread.h>
#include <signal.h>

#include "spin.h"

const char *test_doc = "general registers held in a busy loop survive checkpoint/restore";

static volatile unsigned long progress[2];

/* One loop per thread, with its own constants (immediates). */
#define SPIN(NAME, SLOT, K)                                                                  \
	static long NAME(void)                                                                \
	{                                                                                     \
		long bad;                                                                     \
		asm volatile(                                                                 \
			"movabs %[b0], %%rbx\n\t"                                             \
			"movabs %[s0], %%rsi\n\t"                                             \
			"xor %%ecx, %%ecx\n\t"                                                \
			"movabs %[k0], %%rdi\n\t"                                             \
			"movabs %[k1], %%r8\n\t"                                              \
			"movabs %[k2], %%r9\n\t"                                              \
			"movabs %[k3], %%r10\n\t"                                             \
			"movabs %[k4], %%r11\n\t"                                             \
			"movabs %[k5], %%r12\n\t"                                             \
			"movabs %[k6], %%r13\n\t"                                             \
			"movabs %[k7], %%r14\n\t"                                             \
			"movabs %[k8], %%r15\n\t"                                             \
			"lock incl %[ready]\n\t"                                              \
			"1:\n\t"                                                              \
			"add $1, %%rcx\n\t"                                                   \
			"add $3, %%rbx\n\t"                                                   \
			"sub $5, %%rsi\n\t"                                                   \
			"mov %%rcx, %[progress]\n\t"                                          \
			/* rbx == b0 + 3 * rcx */                                             \
			"lea (%%rcx,%%rcx,2), %%rax\n\t"                                      \
			"movabs %[b0], %%rdx\n\t"                                             \
			"add %%rdx, %%rax\n\t"                                                \
			"cmp %%rax, %%rbx\n\t"                                                \
			"jne 9f\n\t"                                                          \
			/* rsi == s0 - 5 * rcx */                                             \
			"lea (%%rcx,%%rcx,4), %%rax\n\t"                                      \
			"movabs %[s0], %%rdx\n\t"                                             \
			"sub %%rax, %%rdx\n\t"                                                \
			"cmp %%rdx, %%rsi\n\t"                                                \
			"jne 9f\n\t"                                                          \
			"movabs %[k0], %%rax\n\tcmp %%rax, %%rdi\n\tjne 9f\n\t"               \
			"movabs %[k1], %%rax\n\tcmp %%rax, %%r8\n\tjne 9f\n\t"                \
			"movabs %[k2], %%rax\n\tcmp %%rax, %%r9\n\tjne 9f\n\t"                \
			"movabs %[k3], %%rax\n\tcmp %%rax, %%r10\n\tjne 9f\n\t"               \
			"movabs %[k4], %%rax\n\tcmp %%rax, %%r11\n\tjne 9f\n\t"               \
			"movabs %[k5], %%rax\n\tcmp %%rax, %%r12\n\tjne 9f\n\t"               \
			"movabs %[k6], %%rax\n\tcmp %%rax, %%r13\n\tjne 9f\n\t"               \
			"movabs %[k7], %%rax\n\tcmp %%rax, %%r14\n\tjne 9f\n\t"               \
			"movabs %[k8], %%rax\n\tcmp %%rax, %%r15\n\tjne 9f\n\t"               \
			"cmpl $0, %[stop]\n\t"                                                \
			"je 1b\n\t"                                                           \
			"xor %%eax, %%eax\n\t"                                                \
			"jmp 8f\n\t"                                                          \
			"9: mov $1, %%eax\n\t"                                                \
			"8:\n\t"                                                              \
			: "=&a"(bad), [ready] "+m"(ready.raw), [progress] "=m"(progress[SLOT])  \
			: [stop] "m"(stop), [b0] "i"(0x1111000000000000L + K),               \
			  [s0] "i"(0x7fff000000000000L - K), [k0] "i"(0x0101010101010101L * K), \
			  [k1] "i"(0x0123456789abcdefL ^ K), [k2] "i"(0x0fedcba987654321L ^ K), \
			  [k3] "i"(0x5555aaaa5555aaaaL ^ K), [k4] "i"(0x3333cccc3333ccccL ^ K), \
			  [k5] "i"(0x7777888877778888L ^ K), [k6] "i"(0x1248124812481248L ^ K), \
			  [k7] "i"(0x0f0f0f0ff0f0f0f0L ^ K), [k8] "i"(0x6969969669699696L ^ K)  \
			: "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12",  \
			  "r13", "r14", "r15", "cc", "memory");                                \
		return bad;                                                                   \
	}

SPIN(spin0, 0, 0x11)
SPIN(spin1, 1, 0x5a)

static long results[2];

static void *run(void *arg)
{
	long slot = (long)arg;
	spin_block_signals();
	results[slot] = slot ? spin1() : spin0();
	return NULL;
}

int main(int argc, char **argv)
{
	void *args[] = { (void *)0L, (void *)1L };
	volatile unsigned long *slots[] = { &progress[0], &progress[1] };
	pthread_t th[2];
	unsigned stalled;
	long i;
	int bad = 0;

	test_init(argc, argv);
	if (spinners_start(th, 2, run, args))
		return 1;

	test_daemon();
	test_waitsig();

	stalled = spinners_finish(th, 2, slots);
	for (i = 0; i < 2; i++) {
		if (results[i]) {
			fail("thread %ld: a register changed under the loop (iteration %lu)", i, progress[i]);
			bad = 1;
		} else if (stalled >> i & 1) {
			fail("thread %ld: the loop did not run after the restore", i);
			bad = 1;
		}
	}
	if (!bad)
		pass();
	return 0;
}
