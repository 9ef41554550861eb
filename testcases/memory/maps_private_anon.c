/*
 * Private anonymous memory: a large region (32 MiB) filled with a checksummed
 * pattern, small ones of odd sizes, a sparse MAP_NORESERVE region with a few
 * touched pages (the rest must read as zeroes), and one populated eagerly.
 * After restore every region is at the same address with the same size and
 * permissions (/proc/self/maps) and the same contents.
 */
#include <stdint.h>
#include <sys/mman.h>

#include "helpers.h"

const char *test_doc = "private anonymous mappings keep address, size and contents";

struct region {
	const char *what;
	size_t pages;
	int flags;
	uint8_t *addr;
	uint32_t crc;
};

static struct region regions[] = {
	{ "large", 8192, 0 },
	{ "one page", 1, 0 },
	{ "odd size", 17, 0 },
	{ "populated", 64, MAP_POPULATE },
};

#define SPARSE_PAGES 4096
static const size_t touched[] = { 0, 1, 100, 2047, 4095 };

static int find_vma(void *addr, size_t len, char *perms_out)
{
	char buf[1 << 16], *line, *save;
	unsigned long lo = (unsigned long)addr, hi = lo + len;

	if (read_whole("/proc/self/maps", buf, sizeof(buf)) < 0)
		return -1;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long s, e;
		char perms[5];

		if (sscanf(line, "%lx-%lx %4s", &s, &e, perms) != 3)
			continue;
		if (s <= lo && hi <= e) {
			strcpy(perms_out, perms);
			return 0;
		}
	}
	return -1;
}

int main(int argc, char **argv)
{
	size_t ps = sysconf(_SC_PAGESIZE), i;
	uint8_t *sparse;
	char perms[8];
	int bad = 0;

	test_init(argc, argv);

	for (i = 0; i < ARRAY_SIZE(regions); i++) {
		struct region *r = &regions[i];

		r->addr = mmap(NULL, r->pages * ps, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | r->flags, -1, 0);
		if (r->addr == MAP_FAILED) {
			pr_perror("mmap %s", r->what);
			return 1;
		}
		r->crc = ~0;
		datagen(r->addr, r->pages * ps, &r->crc);
	}
	sparse = mmap(NULL, SPARSE_PAGES * ps, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (sparse == MAP_FAILED) {
		pr_perror("mmap sparse");
		return 1;
	}
	for (i = 0; i < ARRAY_SIZE(touched); i++)
		memset(sparse + touched[i] * ps, 0xa0 + i, ps);

	test_daemon();
	test_waitsig();

	for (i = 0; i < ARRAY_SIZE(regions); i++) {
		struct region *r = &regions[i];
		uint32_t crc = ~0;

		if (find_vma(r->addr, r->pages * ps, perms) || strcmp(perms, "rw-p")) {
			fail("%s region %p+%zu pages is not mapped rw-p any more", r->what, r->addr,
			     r->pages);
			bad = 1;
			continue;
		}
		if (datachk(r->addr, r->pages * ps, &crc)) {
			fail("%s region: contents changed", r->what);
			bad = 1;
		}
	}
	if (find_vma(sparse, SPARSE_PAGES * ps, perms) || strcmp(perms, "rw-p")) {
		fail("sparse region is not mapped rw-p any more");
		bad = 1;
	} else {
		for (i = 0; i < SPARSE_PAGES; i++) {
			size_t k, t;
			int want = 0;

			for (t = 0; t < ARRAY_SIZE(touched); t++)
				if (touched[t] == i)
					want = 0xa0 + t;
			for (k = 0; k < ps; k++)
				if (sparse[i * ps + k] != want)
					break;
			if (k != ps) {
				fail("sparse page %zu byte %zu is %#x, expected %#x", i, k,
				     sparse[i * ps + k], want);
				bad = 1;
				break;
			}
		}
	}
	if (!bad)
		pass();
	return 0;
}
