/*
 * Credentials. The main process stays root; its child, as root, drops
 * CAP_SYS_BOOT and CAP_MKNOD from its bounding set, sets supplementary
 * groups {20001, 20002, 20003}, setresgid(10001, 10002, 10003),
 * PR_SET_KEEPCAPS, setresuid(10011, 10012, 10013), then capset()s effective
 * {CHOWN}, permitted {CHOWN, KILL, NET_BIND_SERVICE}, inheritable {KILL,
 * NET_BIND_SERVICE} and raises NET_BIND_SERVICE as an ambient capability.
 * After restore the child checks getresuid(), getresgid(), getgroups(),
 * capget() against those values, PR_GET_SECUREBITS and the /proc/self/status
 * lines Uid, Gid, Groups, CapInh, CapPrm, CapEff, CapBnd and CapAmb against
 * what they were; the main process checks it is still root with its own
 * capabilities.
 */
#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "helpers.h"

const char *test_doc = "uids, gids, groups and capability sets of a process are kept";

static const char *status_keys[] = { "Uid:", "Gid:", "Groups:", "CapInh:", "CapPrm:",
				     "CapEff:", "CapBnd:", "CapAmb:" };
#define NKEYS ((int)ARRAY_SIZE(status_keys))

struct snapshot {
	char lines[NKEYS][256];
	int securebits;
};

#define BIT(c) (1ull << (c))
#define WANT_EFF BIT(CAP_CHOWN)
#define WANT_PRM (BIT(CAP_CHOWN) | BIT(CAP_KILL) | BIT(CAP_NET_BIND_SERVICE))
#define WANT_INH (BIT(CAP_KILL) | BIT(CAP_NET_BIND_SERVICE))

static const gid_t groups[] = { 20001, 20002, 20003 };

static int snap(struct snapshot *s)
{
	static char status[8192];
	char *line, *save = NULL;
	int i;

	memset(s, 0, sizeof(*s));
	if (read_whole("/proc/self/status", status, sizeof(status)) < 0)
		return -1;
	for (line = strtok_r(status, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		for (i = 0; i < NKEYS; i++)
			if (!strncmp(line, status_keys[i], strlen(status_keys[i])))
				snprintf(s->lines[i], sizeof(s->lines[i]), "%s", line);
	s->securebits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
	return 0;
}

static int caps(uint64_t *eff, uint64_t *prm, uint64_t *inh)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		return -1;
	*eff = d[0].effective | (uint64_t)d[1].effective << 32;
	*prm = d[0].permitted | (uint64_t)d[1].permitted << 32;
	*inh = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
	return 0;
}

static int set_caps(uint64_t eff, uint64_t prm, uint64_t inh)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = {
		{ (uint32_t)eff, (uint32_t)prm, (uint32_t)inh },
		{ (uint32_t)(eff >> 32), (uint32_t)(prm >> 32), (uint32_t)(inh >> 32) },
	};

	return syscall(SYS_capset, &h, d);
}

static int switch_creds(void)
{
	if (prctl(PR_CAPBSET_DROP, CAP_SYS_BOOT, 0, 0, 0) ||
	    prctl(PR_CAPBSET_DROP, CAP_MKNOD, 0, 0, 0)) {
		pr_perror("PR_CAPBSET_DROP");
		return -1;
	}
	if (setgroups(ARRAY_SIZE(groups), groups) || setresgid(10001, 10002, 10003)) {
		pr_perror("setgroups / setresgid");
		return -1;
	}
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) || setresuid(10011, 10012, 10013)) {
		pr_perror("PR_SET_KEEPCAPS / setresuid");
		return -1;
	}
	if (set_caps(WANT_EFF, WANT_PRM, WANT_INH)) {
		pr_perror("capset");
		return -1;
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0)) {
		pr_perror("PR_CAP_AMBIENT_RAISE");
		return -1;
	}
	return 0;
}

/* The child's set-up: switch to its credentials and record them (in *arg). */
static int child_setup(void *arg)
{
	struct snapshot *was = arg;
	int i;

	if (switch_creds() || snap(was))
		return -1;
	for (i = 0; i < NKEYS; i++)
		test_msg("child: %s\n", was->lines[i]);
	return 0;
}

/* The child after the restore (*arg: what it recorded); the number of differences found. */
static int check_child(void *arg)
{
	const struct snapshot *was = arg;
	uid_t ru = -1, eu = -1, su = -1;
	gid_t rg = -1, eg = -1, sg = -1, got[16];
	uint64_t eff = 0, prm = 0, inh = 0;
	struct snapshot now;
	int n, i, bad = 0;

	if (getresuid(&ru, &eu, &su) || ru != 10011 || eu != 10012 || su != 10013) {
		fail("child: uids %d/%d/%d, expected 10011/10012/10013", ru, eu, su);
		bad++;
	}
	if (getresgid(&rg, &eg, &sg) || rg != 10001 || eg != 10002 || sg != 10003) {
		fail("child: gids %d/%d/%d, expected 10001/10002/10003", rg, eg, sg);
		bad++;
	}
	n = getgroups(ARRAY_SIZE(got), got);
	if (n != (int)ARRAY_SIZE(groups) || memcmp(got, groups, sizeof(groups))) {
		fail("child: %d supplementary groups, expected 20001 20002 20003", n);
		bad++;
	}
	if (caps(&eff, &prm, &inh) || eff != WANT_EFF || prm != WANT_PRM || inh != WANT_INH) {
		fail("child: capabilities eff %#llx prm %#llx inh %#llx, expected %#llx %#llx %#llx",
		     (unsigned long long)eff, (unsigned long long)prm, (unsigned long long)inh,
		     WANT_EFF, WANT_PRM, WANT_INH);
		bad++;
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_BIND_SERVICE, 0, 0) != 1 ||
	    prctl(PR_CAPBSET_READ, CAP_SYS_BOOT, 0, 0, 0) != 0 ||
	    prctl(PR_CAPBSET_READ, CAP_CHOWN, 0, 0, 0) != 1) {
		fail("child: ambient or bounding capabilities changed");
		bad++;
	}
	if (snap(&now)) {
		fail("child: cannot read /proc/self/status");
		return bad + 1;
	}
	if (now.securebits != was->securebits) {
		fail("child: securebits %#x, expected %#x", now.securebits, was->securebits);
		bad++;
	}
	for (i = 0; i < NKEYS; i++)
		if (strcmp(now.lines[i], was->lines[i])) {
			fail("child: /proc/self/status \"%s\", was \"%s\"", now.lines[i], was->lines[i]);
			bad++;
		}
	return bad;
}

int main(int argc, char **argv)
{
	struct snapshot main_was, main_now, child_was;
	int i, bad = 0;
	pid_t child;

	test_init(argc, argv);
	if (snap(&main_was)) {
		pr_perror("read /proc/self/status");
		return 1;
	}
	child = fork_checker(child_setup, check_child, &child_was);

	test_daemon();
	test_waitsig();

	bad |= child_verdict(child, "the child found its credentials changed");
	if (getuid() != 0 || geteuid() != 0 || snap(&main_now)) {
		fail("main is not root any more");
		bad = 1;
	} else {
		for (i = 0; i < NKEYS; i++)
			if (strcmp(main_now.lines[i], main_was.lines[i])) {
				fail("main: /proc/self/status \"%s\", was \"%s\"", main_now.lines[i],
				     main_was.lines[i]);
				bad = 1;
			}
	}
	if (!bad)
		pass();
	return 0;
}
