/*
 * The heap (brk): grown with sbrk() in several steps and filled. After
 * restore the program break is where it was, start_brk too (/proc/self/stat),
 * the contents are kept, and the break still moves: sbrk() grows it again
 * (the new memory is usable) and shrinks it back.
 */
#include <stdint.h>

#include "helpers.h"

const char *test_doc = "the brk heap keeps its break, contents and ability to grow";

#define STEP (256 << 10)
#define STEPS 4

/* Field `n` (1-based, as in proc(5)) of /proc/self/stat. */
static unsigned long stat_field(int n)
{
	char buf[2048], *p;
	int i;

	if (read_whole("/proc/self/stat", buf, sizeof(buf)) < 0 || !(p = strrchr(buf, ')')))
		return 0;
	p += 2;   /* field 3 */
	for (i = 3; i < n; i++) {
		p = strchr(p, ' ');
		if (!p)
			return 0;
		p++;
	}
	return strtoul(p, NULL, 10);
}

int main(int argc, char **argv)
{
	uint8_t *start, *end, *more;
	unsigned long start_brk;
	uint32_t crc = ~0;
	int i, bad = 0;

	test_init(argc, argv);

	start = sbrk(0);
	for (i = 0; i < STEPS; i++)
		if (sbrk(STEP) == (void *)-1) {
			pr_perror("sbrk");
			return 1;
		}
	end = sbrk(0);
	if (end != start + STEP * STEPS) {
		pr_err("sbrk moved the break to %p, expected %p\n", end, start + STEP * STEPS);
		return 1;
	}
	datagen(start, end - start, &crc);
	start_brk = stat_field(47);

	test_daemon();
	test_waitsig();

	if (sbrk(0) != end) {
		fail("the break is %p, expected %p", sbrk(0), end);
		bad = 1;
	}
	if (stat_field(47) != start_brk) {
		fail("start_brk is %#lx, expected %#lx", stat_field(47), start_brk);
		bad = 1;
	}
	crc = ~0;
	if (datachk(start, end - start, &crc)) {
		fail("heap contents changed");
		bad = 1;
	}
	if (!bad) {
		more = sbrk(STEP);
		if (more != end || sbrk(0) != end + STEP) {
			fail("sbrk(%d) after restore returned %p, break %p", STEP, more, sbrk(0));
			bad = 1;
		} else {
			memset(more, 0x77, STEP);
			if (more[STEP - 1] != 0x77) {
				fail("the grown heap is not writable");
				bad = 1;
			}
			if (sbrk(-STEP) == (void *)-1 || sbrk(0) != end) {
				fail("shrinking the heap failed");
				bad = 1;
			}
		}
	}
	if (!bad)
		pass();
	return 0;
}
