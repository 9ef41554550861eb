/*
 * The mm's metadata: /proc/self/cmdline and /proc/self/environ (bytes),
 * /proc/self/exe, the auxiliary vector (/proc/self/auxv bytes and the values
 * getauxval() gives, AT_RANDOM's 16 bytes, AT_EXECFN's string), the code,
 * data, brk, stack, argument and environment boundaries of /proc/self/stat,
 * and the thread name (PR_SET_NAME) are the same after restore.
 */
#include <sys/auxv.h>
#include <sys/prctl.h>

#include "helpers.h"

const char *test_doc = "cmdline, environ, exe, auxv and mm boundaries are kept";

#define BIG 65536

struct snapshot {
	char cmdline[BIG], environ[BIG], auxv[4096], exe[4096], comm[32], random[16];
	char execfn[4096], platform[64];
	ssize_t ncmdline, nenviron, nauxv;
	unsigned long at[16], stat[16];
};

static const unsigned long at_types[] = { AT_PHDR, AT_PHENT, AT_PHNUM, AT_PAGESZ, AT_BASE,
					  AT_ENTRY, AT_UID, AT_EUID, AT_GID, AT_EGID, AT_HWCAP,
					  AT_HWCAP2, AT_CLKTCK, AT_SECURE, AT_SYSINFO_EHDR,
					  AT_MINSIGSTKSZ };
/* proc(5): startcode endcode startstack start_data end_data start_brk arg_start arg_end
 * env_start env_end */
static const int stat_fields[] = { 26, 27, 28, 45, 46, 47, 48, 49, 50, 51 };

static struct snapshot before, after;

static void take(struct snapshot *s)
{
	char buf[4096], *p;
	size_t i;
	int f;

	memset(s, 0, sizeof(*s));
	s->ncmdline = read_whole("/proc/self/cmdline", s->cmdline, sizeof(s->cmdline));
	s->nenviron = read_whole("/proc/self/environ", s->environ, sizeof(s->environ));
	s->nauxv = read_whole("/proc/self/auxv", s->auxv, sizeof(s->auxv));
	if (readlink("/proc/self/exe", s->exe, sizeof(s->exe) - 1) < 0)
		strcpy(s->exe, "?");
	prctl(PR_GET_NAME, s->comm);
	for (i = 0; i < ARRAY_SIZE(at_types); i++)
		s->at[i] = getauxval(at_types[i]);
	memcpy(s->random, (void *)getauxval(AT_RANDOM), 16);
	snprintf(s->execfn, sizeof(s->execfn), "%s", (char *)getauxval(AT_EXECFN));
	snprintf(s->platform, sizeof(s->platform), "%s",
		 getauxval(AT_PLATFORM) ? (char *)getauxval(AT_PLATFORM) : "");

	if (read_whole("/proc/self/stat", buf, sizeof(buf)) < 0 || !(p = strrchr(buf, ')')))
		return;
	p += 2;
	for (f = 3, i = 0; p && i < ARRAY_SIZE(stat_fields); f++) {
		if (f == stat_fields[i])
			s->stat[i++] = strtoul(p, NULL, 10);
		p = strchr(p, ' ');
		if (p)
			p++;
	}
}

int main(int argc, char **argv)
{
	size_t i;
	int bad = 0;

	test_init(argc, argv);
	if (prctl(PR_SET_NAME, "zdtm-mm-meta")) {
		pr_perror("PR_SET_NAME");
		return 1;
	}
	take(&before);
	if (before.ncmdline <= 0 || before.nenviron < 0 || before.nauxv <= 0 || !before.stat[9]) {
		pr_err("could not read /proc/self\n");
		return 1;
	}

	test_daemon();
	test_waitsig();

	take(&after);
	if (after.ncmdline != before.ncmdline || memcmp(after.cmdline, before.cmdline, before.ncmdline)) {
		fail("/proc/self/cmdline changed");
		bad = 1;
	}
	if (after.nenviron != before.nenviron || memcmp(after.environ, before.environ, before.nenviron)) {
		fail("/proc/self/environ changed");
		bad = 1;
	}
	if (after.nauxv != before.nauxv || memcmp(after.auxv, before.auxv, before.nauxv)) {
		fail("/proc/self/auxv changed");
		bad = 1;
	}
	if (strcmp(after.exe, before.exe)) {
		fail("/proc/self/exe is %s, was %s", after.exe, before.exe);
		bad = 1;
	}
	if (strcmp(after.comm, before.comm)) {
		fail("the thread name is %s, was %s", after.comm, before.comm);
		bad = 1;
	}
	for (i = 0; i < ARRAY_SIZE(at_types); i++)
		if (after.at[i] != before.at[i]) {
			fail("getauxval(%lu) is %#lx, was %#lx", at_types[i], after.at[i], before.at[i]);
			bad = 1;
		}
	if (memcmp(after.random, before.random, 16) || strcmp(after.execfn, before.execfn) ||
	    strcmp(after.platform, before.platform)) {
		fail("AT_RANDOM bytes, AT_EXECFN or AT_PLATFORM strings changed");
		bad = 1;
	}
	for (i = 0; i < ARRAY_SIZE(stat_fields); i++)
		if (after.stat[i] != before.stat[i]) {
			fail("/proc/self/stat field %d is %#lx, was %#lx", stat_fields[i], after.stat[i],
			     before.stat[i]);
			bad = 1;
		}
	if (!bad)
		pass();
	return 0;
}
