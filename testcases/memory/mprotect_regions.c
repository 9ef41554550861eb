/*
 * Protections: one 16-page mapping mprotect()ed into pieces (r--, ---, rw-,
 * r-x, --- over written data, -w-) plus a PROT_NONE guard region never
 * touched. After restore /proc/self/maps shows the same pieces with the same
 * permissions, accesses fault where they should (read of ---, write of r--),
 * and once made readable again every page has its contents.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>

#include "helpers.h"

const char *test_doc = "mprotect-ed regions keep permissions and contents";

#define PAGES 16
struct piece {
	int first, count, prot;
};
static const struct piece pieces[] = {
	{ 0, 2, PROT_READ },
	{ 2, 2, PROT_NONE },
	{ 4, 2, PROT_READ | PROT_WRITE },
	{ 6, 2, PROT_READ | PROT_EXEC },
	{ 8, 2, PROT_NONE },
	{ 10, 6, PROT_WRITE },
};

#define MAX_VMAS 32
struct vma {
	unsigned long start, end;
	char perms[5];
};

static int vmas_in(unsigned long lo, unsigned long hi, struct vma *out)
{
	char buf[1 << 16], *line, *save;
	int n = 0;

	if (read_whole("/proc/self/maps", buf, sizeof(buf)) < 0)
		return -1;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct vma v;
		if (sscanf(line, "%lx-%lx %4s", &v.start, &v.end, v.perms) != 3)
			continue;
		if (v.end <= lo || v.start >= hi)
			continue;
		if (n < MAX_VMAS)
			out[n++] = v;
	}
	return n;
}

static sigjmp_buf jb;
static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(jb, 1);
}

static int faults(volatile uint8_t *p, int write)
{
	if (sigsetjmp(jb, 1))
		return 1;
	if (write)
		*p = *p;   /* the same value: contents stay checkable */
	else
		(void)*p;
	return 0;
}

int main(int argc, char **argv)
{
	size_t ps = sysconf(_SC_PAGESIZE), i;
	struct vma before[MAX_VMAS], after[MAX_VMAS], gb[MAX_VMAS], ga[MAX_VMAS];
	int nb, na, ngb, nga, bad = 0;
	uint8_t *map, *guard;
	uint32_t crc = ~0;

	test_init(argc, argv);
	map = mmap(NULL, PAGES * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	guard = mmap(NULL, 8 * ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED || guard == MAP_FAILED) {
		pr_perror("mmap");
		return 1;
	}
	datagen(map, PAGES * ps, &crc);
	for (i = 0; i < ARRAY_SIZE(pieces); i++)
		if (mprotect(map + pieces[i].first * ps, pieces[i].count * ps, pieces[i].prot)) {
			pr_perror("mprotect");
			return 1;
		}
	nb = vmas_in((unsigned long)map, (unsigned long)map + PAGES * ps, before);
	ngb = vmas_in((unsigned long)guard, (unsigned long)guard + 8 * ps, gb);
	if (nb != (int)ARRAY_SIZE(pieces) || ngb != 1) {
		pr_err("expected %zu pieces, /proc/self/maps has %d\n", ARRAY_SIZE(pieces), nb);
		return 1;
	}

	test_daemon();
	test_waitsig();

	na = vmas_in((unsigned long)map, (unsigned long)map + PAGES * ps, after);
	nga = vmas_in((unsigned long)guard, (unsigned long)guard + 8 * ps, ga);
	if (na != nb || memcmp(before, after, nb * sizeof(*before))) {
		fail("the pieces changed: %d vmas, expected %d", na, nb);
		for (i = 0; i < (size_t)na; i++)
			test_msg("  now %lx-%lx %s\n", after[i].start, after[i].end, after[i].perms);
		bad = 1;
	}
	if (nga != 1 || memcmp(gb, ga, sizeof(*gb))) {
		fail("the PROT_NONE guard region changed");
		bad = 1;
	}

	signal(SIGSEGV, on_segv);
	if (!faults(map + 2 * ps, 0) || !faults(map + 8 * ps, 0) || !faults(guard, 0)) {
		fail("reading a PROT_NONE page did not fault");
		bad = 1;
	}
	if (!faults(map, 1) || !faults(map + 6 * ps, 1)) {
		fail("writing a read-only page did not fault");
		bad = 1;
	}
	if (faults(map + 4 * ps, 1) || faults(map + 10 * ps + 8, 1)) {
		fail("writing a writable page faulted");
		bad = 1;
	}
	signal(SIGSEGV, SIG_DFL);

	/* contents, the PROT_NONE pages' included */
	if (mprotect(map, PAGES * ps, PROT_READ)) {
		pr_perror("mprotect");
		return 1;
	}
	crc = ~0;
	if (datachk(map, PAGES * ps, &crc)) {
		fail("contents changed");
		bad = 1;
	}
	if (!bad)
		pass();
	return 0;
}
