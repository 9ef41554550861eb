/*
 * Per-process attributes. The main process sets umask 027, lowers the soft
 * and hard limits of RLIMIT_CPU, FSIZE, DATA, CORE, NOFILE, AS, LOCKS,
 * SIGPENDING, MSGQUEUE, MEMLOCK, STACK and RTTIME (never above what it had:
 * raising a hard limit needs CAP_SYS_RESOURCE), nice 7, SCHED_BATCH,
 * personality ADDR_NO_RANDOMIZE and the comm
 * name "crb-attrs-main"; a child sets umask 077, nice 3, SCHED_IDLE and the
 * name "crb-attrs-idle". After restore each checks its own: umask(),
 * getrlimit() of every resource against what it had (the child's are the
 * inherited ones), getpriority(), sched_getscheduler() and its priority
 * (0), personality(0xffffffff) and /proc/self/personality, PR_GET_NAME and
 * /proc/self/comm.
 */
#include <sched.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "helpers.h"

const char *test_doc = "umask, rlimits, nice, scheduling policy, personality and comm are kept";

static const struct {
	int res;
	const char *name;
	rlim_t soft, hard;
} limits[] = {
	{ RLIMIT_CPU, "CPU", 3600, 7200 },
	{ RLIMIT_FSIZE, "FSIZE", 1ull << 32, 1ull << 33 },
	{ RLIMIT_DATA, "DATA", 1ull << 36, 1ull << 37 },
	{ RLIMIT_CORE, "CORE", 0, 1 << 20 },
	{ RLIMIT_NOFILE, "NOFILE", 500, 900 },
	{ RLIMIT_AS, "AS", 1ull << 40, 1ull << 41 },
	{ RLIMIT_LOCKS, "LOCKS", 1000, 2000 },
	{ RLIMIT_SIGPENDING, "SIGPENDING", 1000, 2000 },
	{ RLIMIT_MSGQUEUE, "MSGQUEUE", 100000, 200000 },
	{ RLIMIT_MEMLOCK, "MEMLOCK", 1 << 20, 2 << 20 },
	{ RLIMIT_STACK, "STACK", 4 << 20, 16 << 20 },
	{ RLIMIT_RTTIME, "RTTIME", 1000000, 2000000 },
};

struct attrs {
	mode_t umask;
	int nice, policy, persona;
	char comm[16];
	struct rlimit rl[RLIM_NLIMITS];
};

static void collect(struct attrs *a)
{
	struct sched_param sp = { 0 };
	int i;

	memset(a, 0, sizeof(*a));
	a->umask = umask(0);
	umask(a->umask);
	errno = 0;
	a->nice = getpriority(PRIO_PROCESS, 0);
	if (errno)
		a->nice = -100;
	a->policy = sched_getscheduler(0);
	if (sched_getparam(0, &sp) || sp.sched_priority)
		a->policy = -2;
	a->persona = personality(0xffffffff);
	prctl(PR_GET_NAME, a->comm, 0, 0, 0);
	for (i = 0; i < RLIM_NLIMITS; i++)
		getrlimit(i, &a->rl[i]);
}

/* Compare now with was; the number of differences (each reported). */
static int compare(const struct attrs *was, const char *who)
{
	char buf[64], want[32];
	struct attrs now;
	int bad = 0, i;

	collect(&now);
	if (now.umask != was->umask) {
		fail("%s: umask %03o, expected %03o", who, now.umask, was->umask);
		bad++;
	}
	if (now.nice != was->nice) {
		fail("%s: nice %d, expected %d", who, now.nice, was->nice);
		bad++;
	}
	if (now.policy != was->policy) {
		fail("%s: scheduling policy %d, expected %d", who, now.policy, was->policy);
		bad++;
	}
	if (now.persona != was->persona) {
		fail("%s: personality %#x, expected %#x", who, now.persona, was->persona);
		bad++;
	}
	snprintf(want, sizeof(want), "%08x\n", was->persona);
	if (read_whole("/proc/self/personality", buf, sizeof(buf)) < 0 || strcmp(buf, want)) {
		fail("%s: /proc/self/personality \"%s\", expected \"%s\"", who, buf, want);
		bad++;
	}
	if (strcmp(now.comm, was->comm)) {
		fail("%s: PR_GET_NAME \"%s\", expected \"%s\"", who, now.comm, was->comm);
		bad++;
	}
	snprintf(want, sizeof(want), "%s\n", was->comm);
	if (read_whole("/proc/self/comm", buf, sizeof(buf)) < 0 || strcmp(buf, want)) {
		fail("%s: /proc/self/comm \"%s\", expected \"%s\"", who, buf, was->comm);
		bad++;
	}
	for (i = 0; i < RLIM_NLIMITS; i++)
		if (now.rl[i].rlim_cur != was->rl[i].rlim_cur || now.rl[i].rlim_max != was->rl[i].rlim_max) {
			fail("%s: rlimit %d is %llu/%llu, expected %llu/%llu", who, i,
			     (unsigned long long)now.rl[i].rlim_cur, (unsigned long long)now.rl[i].rlim_max,
			     (unsigned long long)was->rl[i].rlim_cur, (unsigned long long)was->rl[i].rlim_max);
			bad++;
		}
	return bad;
}

static int set_sched(int policy, int nice)
{
	struct sched_param sp = { 0 };

	if (setpriority(PRIO_PROCESS, 0, nice) || sched_setscheduler(0, policy, &sp)) {
		pr_perror("nice %d / policy %d", nice, policy);
		return -1;
	}
	return 0;
}

/* The SCHED_IDLE child's set-up: its own umask, name and scheduling, recorded in *arg. */
static int child_setup(void *arg)
{
	umask(077);
	if (prctl(PR_SET_NAME, "crb-attrs-idle", 0, 0, 0) || set_sched(SCHED_IDLE, 3))
		return -1;
	collect(arg);
	return 0;
}

/* The child after the restore: its attributes against *arg. */
static int child_check(void *arg)
{
	return compare(arg, "child");
}

int main(int argc, char **argv)
{
	struct attrs main_was, child_was;
	int i, bad = 0;
	pid_t child;

	test_init(argc, argv);
	umask(027);
	for (i = 0; i < (int)ARRAY_SIZE(limits); i++) {
		struct rlimit rl;
		if (getrlimit(limits[i].res, &rl)) {
			pr_perror("getrlimit %s", limits[i].name);
			return 1;
		}
		if (rl.rlim_max > limits[i].hard)   /* lower only */
			rl.rlim_max = limits[i].hard;
		rl.rlim_cur = limits[i].soft < rl.rlim_max ? limits[i].soft : rl.rlim_max;
		if (setrlimit(limits[i].res, &rl)) {
			pr_perror("setrlimit %s", limits[i].name);
			return 1;
		}
	}
	if (personality(PER_LINUX | ADDR_NO_RANDOMIZE) < 0 ||
	    prctl(PR_SET_NAME, "crb-attrs-main", 0, 0, 0) || set_sched(SCHED_BATCH, 7)) {
		pr_perror("personality / PR_SET_NAME / sched");
		return 1;
	}
	collect(&main_was);
	if (main_was.policy != SCHED_BATCH || main_was.nice != 7 ||
	    main_was.persona != (PER_LINUX | ADDR_NO_RANDOMIZE)) {
		pr_err("the attributes did not take: policy %d nice %d personality %#x\n",
		       main_was.policy, main_was.nice, main_was.persona);
		return 1;
	}

	child = fork_checker(child_setup, child_check, &child_was);

	test_daemon();
	test_waitsig();

	if (compare(&main_was, "main"))
		bad = 1;
	bad |= child_verdict(child, "the SCHED_IDLE child found its attributes changed");
	if (!bad)
		pass();
	return 0;
}
