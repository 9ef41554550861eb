/*
 * Holes: a 32-page mapping with single pages and a run of pages unmapped
 * from it, and a mapping placed at a fixed address far from the others.
 * After restore the remaining pieces are where they were with their
 * contents, and the holes are still holes: MAP_FIXED_NOREPLACE can map each
 * of them (it fails with EEXIST on anything mapped).
 */
#include <stdint.h>
#include <sys/mman.h>

#include "helpers.h"

const char *test_doc = "unmapped holes between mappings stay unmapped";

#define PAGES 32
static const int holes[] = { 3, 10, 11, 12, 20, 31 };

static int is_hole(int page)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(holes); i++)
		if (holes[i] == page)
			return 1;
	return 0;
}

static int mapped(void *addr, size_t len)
{
	void *p = mmap(addr, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	if (p == MAP_FAILED)
		return errno == EEXIST ? 1 : -1;
	munmap(p, len);
	return p == addr ? 0 : -1;
}

int main(int argc, char **argv)
{
	size_t ps = sysconf(_SC_PAGESIZE);
	uint8_t *map, *fixed = NULL;
	uint32_t crc;
	int p, bad = 0;
	unsigned long hint;

	test_init(argc, argv);
	map = mmap(NULL, PAGES * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED) {
		pr_perror("mmap");
		return 1;
	}
	for (p = 0; p < PAGES; p++) {
		if (is_hole(p)) {
			if (munmap(map + p * ps, ps)) {
				pr_perror("munmap");
				return 1;
			}
		} else {
			crc = ~0;
			datagen(map + p * ps, ps, &crc);
		}
	}
	/* a mapping at a fixed address (the first free one of a few candidates) */
	for (hint = 0x100000000000UL; hint < 0x100000000000UL + (16UL << 30); hint += 1UL << 30) {
		fixed = mmap((void *)hint, 4 * ps, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (fixed != MAP_FAILED)
			break;
	}
	if (fixed == MAP_FAILED || fixed != (void *)hint) {
		pr_perror("mmap fixed");
		return 1;
	}
	crc = ~0;
	datagen(fixed, 4 * ps, &crc);

	test_daemon();
	test_waitsig();

	for (p = 0; p < PAGES; p++) {
		int m = mapped(map + p * ps, ps);

		if (m < 0) {
			fail("probing page %d", p);
			bad = 1;
		} else if (is_hole(p) && m) {
			fail("hole at page %d (%p) is mapped", p, map + p * ps);
			bad = 1;
		} else if (!is_hole(p) && !m) {
			fail("page %d (%p) is not mapped", p, map + p * ps);
			bad = 1;
		} else if (!is_hole(p)) {
			crc = ~0;
			if (datachk(map + p * ps, ps, &crc)) {
				fail("page %d changed", p);
				bad = 1;
			}
		}
	}
	if (mapped(fixed, 4 * ps) != 1 || mapped(fixed - ps, ps) != 0 || mapped(fixed + 4 * ps, ps) != 0) {
		fail("the fixed mapping at %p is not where it was (alone)", fixed);
		bad = 1;
	} else {
		crc = ~0;
		if (datachk(fixed, 4 * ps, &crc)) {
			fail("the fixed mapping's contents changed");
			bad = 1;
		}
	}
	if (!bad)
		pass();
	return 0;
}
