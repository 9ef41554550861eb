/*
 * Guard pages (MADV_GUARD_INSTALL, 6.13): a 16-page private mapping holding data, with
 * guards installed on pages 3-4 and 10, a read-only private file mapping with one on its
 * page 1, and a shared anonymous mapping with one on its page 2.  After restore the guards are where they were (pagemap's PM_GUARD_REGION
 * bit, and a touch of one faults), the data pages kept their contents, and removing a
 * guard (MADV_GUARD_REMOVE) leaves an ordinary page of zeros.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>

#include "helpers.h"

const char *test_doc = "guard pages stay guards, the pages around them keep their data";

#define PAGES 16
#define MADV_GUARD_INSTALL 102
#define MADV_GUARD_REMOVE 103
#define PM_GUARD_REGION (1ULL << 58)

static const int guards[] = { 3, 4, 10 };
static sigjmp_buf jump;

static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(jump, 1);
}

static int is_guard(int page)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(guards); i++)
		if (guards[i] == page)
			return 1;
	return 0;
}

/* 1: the pagemap calls the page at addr a guard, 0: not, -1: cannot read it */
static int guard_bit(const void *addr)
{
	uint64_t entry;
	int fd = open("/proc/self/pagemap", O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = pread(fd, &entry, sizeof(entry), (uintptr_t)addr / sysconf(_SC_PAGESIZE) * 8);
	close(fd);
	return n == sizeof(entry) ? !!(entry & PM_GUARD_REGION) : -1;
}

/* 1: reading addr faults */
static int faults(const volatile char *addr)
{
	if (sigsetjmp(jump, 1))
		return 1;
	(void)*addr;
	return 0;
}

int main(int argc, char **argv)
{
	size_t ps = sysconf(_SC_PAGESIZE);
	struct sigaction sa = { .sa_handler = on_segv };
	uint8_t *map, *file, *shared;
	uint32_t crc;
	size_t i;
	int p, bad = 0, fd;

	test_init(argc, argv);
	map = mmap(NULL, PAGES * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fd = open("/proc/self/exe", O_RDONLY);
	file = fd < 0 ? MAP_FAILED : mmap(NULL, 2 * ps, PROT_READ, MAP_PRIVATE, fd, 0);
	shared = mmap(NULL, 4 * ps, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED || file == MAP_FAILED || shared == MAP_FAILED) {
		pr_perror("mmap");
		return 1;
	}
	close(fd);
	for (p = 0; p < PAGES; p++) {
		crc = ~0;
		datagen(map + p * ps, ps, &crc);
	}
	for (i = 0; i < ARRAY_SIZE(guards); i++)
		if (madvise(map + guards[i] * ps, ps, MADV_GUARD_INSTALL)) {
			pr_perror("MADV_GUARD_INSTALL");
			return 1;
		}
	if (madvise(file + ps, ps, MADV_GUARD_INSTALL)) {
		pr_perror("MADV_GUARD_INSTALL on a file mapping");
		return 1;
	}
	memset(shared, 0x5a, 4 * ps);
	if (madvise(shared + 2 * ps, ps, MADV_GUARD_INSTALL)) {
		pr_perror("MADV_GUARD_INSTALL on a shared mapping");
		return 1;
	}
	if (sigaction(SIGSEGV, &sa, NULL)) {
		pr_perror("sigaction");
		return 1;
	}

	test_daemon();
	test_waitsig();

	for (p = 0; p < PAGES; p++) {
		int bit = guard_bit(map + p * ps);

		if (bit != is_guard(p)) {
			fail("page %d: pagemap guard bit %d, want %d", p, bit, is_guard(p));
			bad = 1;
		} else if (is_guard(p) && !faults((char *)map + p * ps)) {
			fail("guard page %d can be read", p);
			bad = 1;
		} else if (!is_guard(p)) {
			crc = ~0;
			if (datachk(map + p * ps, ps, &crc)) {
				fail("page %d changed", p);
				bad = 1;
			}
		}
	}
	if (guard_bit(file) != 0 || guard_bit(file + ps) != 1 || !faults((char *)file + ps)) {
		fail("the file mapping's guard is not its page 1 alone");
		bad = 1;
	}
	for (p = 0; p < 4; p++)
		if (guard_bit(shared + p * ps) != (p == 2) ||
		    (p == 2 ? !faults((char *)shared + p * ps) : shared[p * ps] != 0x5a)) {
			fail("shared page %d: a guard %d, want %d", p, guard_bit(shared + p * ps),
			     p == 2);
			bad = 1;
		}
	if (madvise(map + 10 * ps, ps, MADV_GUARD_REMOVE) || faults((char *)map + 10 * ps) ||
	    map[10 * ps] != 0 || map[11 * ps - 1] != 0) {
		fail("a removed guard does not leave a page of zeros");
		bad = 1;
	}
	if (!bad)
		pass();
	return 0;
}
