/*
 * The vDSO: [vdso], [vvar] (and [vvar_vclock] on newer kernels) are at the
 * same addresses after restore, AT_SYSINFO_EHDR still points at the vDSO,
 * and the vDSO functions work when called directly (looked up in its ELF
 * dynamic symbol table) and through glibc, which cached their addresses at
 * start-up: clock_gettime, gettimeofday, time and getcpu agree with the
 * system calls and the clocks keep moving forward.
 */
#include <elf.h>
#include <link.h>
#include <sched.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/time.h>

#include "helpers.h"

const char *test_doc = "the vDSO stays mapped where it was and keeps working";

#define NSPECIAL 3
static const char *special[NSPECIAL] = { "[vdso]", "[vvar]", "[vvar_vclock]" };

static void special_maps(unsigned long starts[NSPECIAL], unsigned long ends[NSPECIAL])
{
	char buf[1 << 16], *line, *save;
	int i;

	memset(starts, 0, NSPECIAL * sizeof(*starts));
	memset(ends, 0, NSPECIAL * sizeof(*ends));
	if (read_whole("/proc/self/maps", buf, sizeof(buf)) < 0)
		return;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		size_t len = strlen(line);
		for (i = 0; i < NSPECIAL; i++) {
			size_t n = strlen(special[i]);
			if (len > n && !strcmp(line + len - n, special[i]))
				sscanf(line, "%lx-%lx", &starts[i], &ends[i]);
		}
	}
}

/* Look a symbol up in the vDSO's dynamic symbol table (DT_HASH or DT_GNU_HASH). */
static void *vdso_sym(const char *name)
{
	uintptr_t base = getauxval(AT_SYSINFO_EHDR), load = 0;
	const ElfW(Ehdr) *eh = (const void *)base;
	const ElfW(Phdr) *ph;
	const ElfW(Dyn) *dyn = NULL;
	const ElfW(Sym) *symtab = NULL;
	const char *strtab = NULL;
	const uint32_t *hash = NULL, *gnu = NULL;
	size_t i, nsyms = 0;

	if (!base || memcmp(eh->e_ident, ELFMAG, SELFMAG))
		return NULL;
	ph = (const void *)(base + eh->e_phoff);
	for (i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type == PT_LOAD && !load)
			load = base + ph[i].p_offset - ph[i].p_vaddr;
		else if (ph[i].p_type == PT_DYNAMIC)
			dyn = (const void *)(base + ph[i].p_offset);
	}
	if (!dyn)
		return NULL;
	for (; dyn->d_tag != DT_NULL; dyn++) {
		if (dyn->d_tag == DT_SYMTAB)
			symtab = (const void *)(load + dyn->d_un.d_ptr);
		else if (dyn->d_tag == DT_STRTAB)
			strtab = (const void *)(load + dyn->d_un.d_ptr);
		else if (dyn->d_tag == DT_HASH)
			hash = (const void *)(load + dyn->d_un.d_ptr);
		else if (dyn->d_tag == DT_GNU_HASH)
			gnu = (const void *)(load + dyn->d_un.d_ptr);
	}
	if (!symtab || !strtab)
		return NULL;
	if (hash) {
		nsyms = hash[1];
	} else if (gnu) {
		/* the highest symbol index reachable from the buckets, then its chain's end */
		uint32_t nbuckets = gnu[0], symoffset = gnu[1], bloom = gnu[2], last = 0;
		const uint32_t *buckets = gnu + 4 + bloom * (sizeof(ElfW(Addr)) / 4), *chain;

		for (i = 0; i < nbuckets; i++)
			if (buckets[i] > last)
				last = buckets[i];
		chain = buckets + nbuckets;
		if (last)
			while (!(chain[last - symoffset] & 1))
				last++;
		nsyms = last + 1;
	}
	for (i = 0; i < nsyms; i++)
		if (symtab[i].st_name && symtab[i].st_shndx != SHN_UNDEF &&
		    !strcmp(strtab + symtab[i].st_name, name))
			return (void *)(load + symtab[i].st_value);
	return NULL;
}

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);
typedef int (*gettimeofday_fn)(struct timeval *, void *);
typedef long (*time_fn)(long *);
typedef long (*getcpu_fn)(unsigned *, unsigned *, void *);

static double ts_sec(struct timespec t)
{
	return t.tv_sec + t.tv_nsec / 1e9;
}

static int check_clocks(const char *when)
{
	clock_gettime_fn v_cgt = vdso_sym("__vdso_clock_gettime");
	gettimeofday_fn v_gtod = vdso_sym("__vdso_gettimeofday");
	time_fn v_time = vdso_sym("__vdso_time");
	getcpu_fn v_getcpu = vdso_sym("__vdso_getcpu");
	static const clockid_t clocks[] = { CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME,
					    CLOCK_MONOTONIC_RAW, CLOCK_REALTIME_COARSE,
					    CLOCK_MONOTONIC_COARSE };
	struct timespec a, b, c, d;
	struct timeval tv;
	unsigned cpu = ~0u, node = ~0u, scpu = ~0u, snode = ~0u;
	size_t i;

	if (!v_cgt || !v_gtod || !v_time || !v_getcpu) {
		fail("%s: vDSO symbols missing (%p %p %p %p)", when, v_cgt, v_gtod, v_time, v_getcpu);
		return -1;
	}
	for (i = 0; i < ARRAY_SIZE(clocks); i++) {
		syscall(SYS_clock_gettime, clocks[i], &a);
		if (v_cgt(clocks[i], &b) || clock_gettime(clocks[i], &c))
			return fail("%s: clock %d failed", when, clocks[i]), -1;
		syscall(SYS_clock_gettime, clocks[i], &d);
		/* coarse clocks tick per jiffy: allow 20 ms either way */
		if (ts_sec(b) < ts_sec(a) - 0.02 || ts_sec(b) > ts_sec(d) + 0.02 ||
		    ts_sec(c) < ts_sec(b) - 0.02 || ts_sec(c) > ts_sec(d) + 0.02) {
			fail("%s: clock %d: syscall %.6f, vdso %.6f, glibc %.6f, syscall %.6f", when,
			     clocks[i], ts_sec(a), ts_sec(b), ts_sec(c), ts_sec(d));
			return -1;
		}
	}
	syscall(SYS_clock_gettime, CLOCK_REALTIME, &a);
	if (v_gtod(&tv, NULL))
		return fail("%s: gettimeofday failed", when), -1;
	if (tv.tv_sec + tv.tv_usec / 1e6 < ts_sec(a) - 0.02 || tv.tv_sec + tv.tv_usec / 1e6 > ts_sec(a) + 1)
		return fail("%s: vdso gettimeofday %ld.%06ld vs %.6f", when, (long)tv.tv_sec,
			    (long)tv.tv_usec, ts_sec(a)), -1;
	if (labs(v_time(NULL) - (long)a.tv_sec) > 2 || labs(time(NULL) - (long)a.tv_sec) > 2)
		return fail("%s: time() is off", when), -1;
	if (v_getcpu(&cpu, &node, NULL) || syscall(SYS_getcpu, &scpu, &snode, NULL) ||
	    cpu >= (unsigned)sysconf(_SC_NPROCESSORS_CONF) || node != snode || sched_getcpu() < 0)
		return fail("%s: getcpu: vdso cpu %u node %u, syscall node %u", when, cpu, node, snode), -1;
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long sb[NSPECIAL], eb[NSPECIAL], sa[NSPECIAL], ea[NSPECIAL];
	unsigned long ehdr;
	struct timespec m0, m1;
	int i, bad = 0;

	test_init(argc, argv);
	special_maps(sb, eb);
	ehdr = getauxval(AT_SYSINFO_EHDR);
	if (!sb[0] || ehdr != sb[0]) {
		pr_err("no [vdso] at AT_SYSINFO_EHDR %#lx\n", ehdr);
		return 1;
	}
	if (check_clocks("before"))
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &m0);

	test_daemon();
	test_waitsig();

	special_maps(sa, ea);
	for (i = 0; i < NSPECIAL; i++)
		if (sa[i] != sb[i] || ea[i] != eb[i]) {
			fail("%s moved: %lx-%lx, was %lx-%lx", special[i], sa[i], ea[i], sb[i], eb[i]);
			bad = 1;
		}
	if (getauxval(AT_SYSINFO_EHDR) != ehdr) {
		fail("AT_SYSINFO_EHDR is %#lx, was %#lx", getauxval(AT_SYSINFO_EHDR), ehdr);
		bad = 1;
	}
	if (!bad && check_clocks("after"))
		bad = 1;
	clock_gettime(CLOCK_MONOTONIC, &m1);
	if (ts_sec(m1) < ts_sec(m0)) {
		fail("CLOCK_MONOTONIC went backwards: %.6f -> %.6f", ts_sec(m0), ts_sec(m1));
		bad = 1;
	}
	if (!bad)
		pass();
	return 0;
}
