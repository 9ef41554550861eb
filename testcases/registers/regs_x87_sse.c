/*
 * x87 and SSE state at the moment of the checkpoint: two threads each load
 * their own values into the eight x87 stack registers, a non-default x87
 * control word (round toward zero) and MXCSR (round toward zero, DAZ), and
 * xmm0-xmm15, then spin in an assembly loop that FXSAVEs the state on every
 * iteration and compares it with the image taken before the loop (control
 * and status words, tag word, MXCSR, all ST and XMM registers). After restore
 * the threads leave the loop and report any difference.
 */
#include <pthread.h>
#include <signal.h>
#include <stddef.h>

#include "spin.h"

const char *test_doc = "x87 stack and control word, MXCSR and xmm0-15 survive checkpoint/restore";

struct fpstate {
	uint8_t ref[512] __attribute__((aligned(64)));
	uint8_t cur[512] __attribute__((aligned(64)));
	double st[8];
	uint8_t xmm[16][16];
	uint16_t fcw;
	uint32_t mxcsr;
	volatile unsigned long progress;
	long bad;
};

static struct fpstate states[2];

static void spin(struct fpstate *s)
{
	long bad;

	asm volatile(
		"fninit\n\t"
		"fldcw %c[fcw](%[s])\n\t"
		"fldl %c[st]+0(%[s])\n\t"
		"fldl %c[st]+8(%[s])\n\t"
		"fldl %c[st]+16(%[s])\n\t"
		"fldl %c[st]+24(%[s])\n\t"
		"fldl %c[st]+32(%[s])\n\t"
		"fldl %c[st]+40(%[s])\n\t"
		"fldl %c[st]+48(%[s])\n\t"
		"fldl %c[st]+56(%[s])\n\t"
		"ldmxcsr %c[mxcsr](%[s])\n\t"
		"movdqu %c[xmm]+0(%[s]), %%xmm0\n\t"
		"movdqu %c[xmm]+16(%[s]), %%xmm1\n\t"
		"movdqu %c[xmm]+32(%[s]), %%xmm2\n\t"
		"movdqu %c[xmm]+48(%[s]), %%xmm3\n\t"
		"movdqu %c[xmm]+64(%[s]), %%xmm4\n\t"
		"movdqu %c[xmm]+80(%[s]), %%xmm5\n\t"
		"movdqu %c[xmm]+96(%[s]), %%xmm6\n\t"
		"movdqu %c[xmm]+112(%[s]), %%xmm7\n\t"
		"movdqu %c[xmm]+128(%[s]), %%xmm8\n\t"
		"movdqu %c[xmm]+144(%[s]), %%xmm9\n\t"
		"movdqu %c[xmm]+160(%[s]), %%xmm10\n\t"
		"movdqu %c[xmm]+176(%[s]), %%xmm11\n\t"
		"movdqu %c[xmm]+192(%[s]), %%xmm12\n\t"
		"movdqu %c[xmm]+208(%[s]), %%xmm13\n\t"
		"movdqu %c[xmm]+224(%[s]), %%xmm14\n\t"
		"movdqu %c[xmm]+240(%[s]), %%xmm15\n\t"
		"fxsave64 %c[ref](%[s])\n\t"
		"lock incl %[ready]\n\t"
		"1:\n\t"
		"fxsave64 %c[cur](%[s])\n\t"
		"incq %c[progress](%[s])\n\t"
		/* bytes 0-5: FCW, FSW, abridged FTW */
		"lea %c[cur](%[s]), %%rsi\n\t"
		"lea %c[ref](%[s]), %%rdi\n\t"
		"mov $6, %%ecx\n\t"
		"repe cmpsb\n\t"
		"jne 9f\n\t"
		/* bytes 24-415: MXCSR, MXCSR_MASK, ST0-7, XMM0-15 */
		"lea %c[cur]+24(%[s]), %%rsi\n\t"
		"lea %c[ref]+24(%[s]), %%rdi\n\t"
		"mov $392, %%ecx\n\t"
		"repe cmpsb\n\t"
		"jne 9f\n\t"
		"cmpl $0, %[stop]\n\t"
		"je 1b\n\t"
		"xor %%eax, %%eax\n\t"
		"jmp 8f\n\t"
		"9: mov $1, %%eax\n\t"
		"8:\n\t"
		"fninit\n\t"
		"movl $0x1f80, %c[mxcsr](%[s])\n\t"
		"ldmxcsr %c[mxcsr](%[s])\n\t"
		: "=&a"(bad), [ready] "+m"(ready.raw)
		: [s] "b"(s), [stop] "m"(stop), [fcw] "i"(offsetof(struct fpstate, fcw)),
		  [st] "i"(offsetof(struct fpstate, st)), [mxcsr] "i"(offsetof(struct fpstate, mxcsr)),
		  [xmm] "i"(offsetof(struct fpstate, xmm)), [ref] "i"(offsetof(struct fpstate, ref)),
		  [cur] "i"(offsetof(struct fpstate, cur)),
		  [progress] "i"(offsetof(struct fpstate, progress))
		: "rcx", "rsi", "rdi", "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",
		  "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",
		  "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)");
	s->bad = bad;
}

static void *run(void *arg)
{
	struct fpstate *s = arg;
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
	for (i = 0; i < 2; i++) {
		struct fpstate *s = &states[i];

		for (j = 0; j < 8; j++)
			s->st[j] = (i + 1) * 1e10 / (j + 3) - j * 0.123456789;
		for (j = 0; j < 16 * 16; j++)
			s->xmm[j / 16][j % 16] = (uint8_t)(i * 101 + j * 7 + 1);
		s->fcw = 0x0f7f;                           /* all masked, 64-bit, round to zero */
		s->mxcsr = 0x1f80 | 0x6000 | 0x0040;       /* all masked, round to zero, DAZ */
	}
	if (spinners_start(th, 2, run, args))
		return 1;

	test_daemon();
	test_waitsig();

	stalled = spinners_finish(th, 2, progress);
	for (i = 0; i < 2; i++) {
		if (states[i].bad) {
			uint8_t *r = states[i].ref, *c = states[i].cur;
			for (j = 0; j < 416; j++)
				if ((j < 6 || j >= 24) && r[j] != c[j])
					break;
			fail("thread %d: FPU/SSE state changed under the loop (first difference at "
			     "FXSAVE byte %d: %#x, was %#x)", i, j, c[j], r[j]);
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
