/*
 * The stack: 48 nested frames, each with its own array filled with a pattern
 * of its depth, and a 1 MiB alloca() at the deepest one; the program waits
 * for SIGTERM down there. After restore every frame checks its array as the
 * calls return (return addresses and saved registers on the stack are thus
 * used too), and the [stack] mapping ends where it did.
 */
#include <alloca.h>
#include <stdint.h>

#include "helpers.h"

const char *test_doc = "stack contents (frames, locals, return addresses) are kept";

#define DEPTH 48
#define BIG (1 << 20)

static unsigned long stack_end(void)
{
	char buf[1 << 16], *line, *save;

	if (read_whole("/proc/self/maps", buf, sizeof(buf)) < 0)
		return 0;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long s, e;
		if (strstr(line, "[stack]") && sscanf(line, "%lx-%lx", &s, &e) == 2)
			return e;
	}
	return 0;
}

static unsigned long end_before;

static int __attribute__((noinline)) descend(int depth)
{
	volatile uint8_t local[512];
	int i, bad = 0;

	for (i = 0; i < (int)sizeof(local); i++)
		local[i] = (uint8_t)(depth * 31 + i);

	if (depth == DEPTH) {
		uint8_t *big = alloca(BIG);
		uint32_t crc = ~0;

		datagen(big, BIG, &crc);
		end_before = stack_end();
		test_daemon();
		test_waitsig();
		crc = ~0;
		if (datachk(big, BIG, &crc)) {
			fail("the alloca() area at the deepest frame changed");
			bad = 1;
		}
		if (stack_end() != end_before) {
			fail("[stack] ends at %#lx, expected %#lx", stack_end(), end_before);
			bad = 1;
		}
	} else {
		bad = descend(depth + 1);
	}

	for (i = 0; i < (int)sizeof(local); i++)
		if (local[i] != (uint8_t)(depth * 31 + i)) {
			fail("frame %d: local byte %d is %#x", depth, i, local[i]);
			return 1;
		}
	return bad;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (descend(0) == 0)
		pass();
	return 0;
}
