/*
 * seccomp filters: the main process installs two BPF filters, one making
 * uname() fail with EPERM and one making getppid() fail with EACCES; then it
 * forks a child, which inherits both and adds a third making getpgrp() fail
 * with ENOTTY and a fourth making uname() fail with EXDEV (of two filters that
 * both refuse a call, the newest one's errno wins: the chain's order shows).
 * After restore, in each process: /proc/self/status says "Seccomp: 2" and
 * "Seccomp_filters:" 2 (main) or 4 (child), the filtered calls fail with
 * exactly those errors (getpgrp() only in the child, uname() with EXDEV
 * there), and calls no filter names (getpid(), getpgrp() in main) still work.
 *
 * A second child adds a filter that allows only read(), write(), the exit
 * system call and rt_sigreturn() and kills the process on anything else, so
 * the calls an engine injects would kill it unless it suspends seccomp; after
 * restore it must still run, answer over a pipe, and die of SIGSYS at its
 * next getpid() (see jail.h).
 */
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>

#include "jail.h"

const char *test_doc = "seccomp filters (a chain inherited and extended by a child) still apply";

#if defined(__x86_64__)
#define MY_AUDIT_ARCH AUDIT_ARCH_X86_64
#else
#error "x86_64 only (getpgrp is not a system call everywhere)"
#endif

static int install(struct sock_filter *code, unsigned short len)
{
	struct sock_fprog prog = { len, code };

	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
}

/* Make system call nr fail with err; everything else (and other ABIs) is allowed. */
static int deny(long nr, int err)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, MY_AUDIT_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (err & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};

	return install(code, ARRAY_SIZE(code));
}

/* Allow only what strict mode allows; kill the process on anything else. */
static int jail(void)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, MY_AUDIT_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_read, 4, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_write, 3, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_exit, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_rt_sigreturn, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct rlimit no_core = { 0, 0 };

	/* its death by SIGSYS must not leave a core file */
	return setrlimit(RLIMIT_CORE, &no_core) || install(code, ARRAY_SIZE(code));
}

/* Checks in either process; the number of differences (each reported). */
static int check(const char *who, int nfilters, pid_t pid)
{
	int child = nfilters == 4, uname_err = child ? EXDEV : EPERM;
	static char status[8192];
	struct utsname u;
	char want[64], *line;
	long r;
	int bad = 0;

	if (read_whole("/proc/self/status", status, sizeof(status)) < 0 ||
	    !strstr(status, "\nSeccomp:\t2\n")) {
		fail("%s: /proc/self/status does not say \"Seccomp: 2\"", who);
		bad++;
	}
	snprintf(want, sizeof(want), "\nSeccomp_filters:\t%d\n", nfilters);
	line = strstr(status, "\nSeccomp_filters:");
	if (line && strncmp(line, want, strlen(want))) {
		fail("%s: /proc/self/status has no \"Seccomp_filters: %d\"", who, nfilters);
		bad++;
	}
	errno = 0;
	if (uname(&u) != -1 || errno != uname_err) {
		fail("%s: uname() was not refused with errno %d (got %d)", who, uname_err, errno);
		bad++;
	}
	errno = 0;
	r = syscall(SYS_getppid);
	if (r != -1 || errno != EACCES) {
		fail("%s: getppid() returned %ld, expected EACCES", who, r);
		bad++;
	}
	errno = 0;
	r = syscall(SYS_getpgrp);
	if (child ? (r != -1 || errno != ENOTTY) : r != pid) {
		fail("%s: getpgrp() returned %ld (errno %d)", who, r, errno);
		bad++;
	}
	if (syscall(SYS_getpid) != pid) {
		fail("%s: getpid() is not allowed any more", who);
		bad++;
	}
	return bad;
}

/* The child's set-up: a third and a fourth filter of its own. */
static int child_setup(void *arg)
{
	return deny(SYS_getpgrp, ENOTTY) || deny(SYS_uname, EXDEV);
}

/* The child after the restore: all four filters apply, the newest first. */
static int child_check(void *arg)
{
	return check("child", 4, getpid());
}

int main(int argc, char **argv)
{
	struct jail jailed;
	int bad = 0;
	pid_t child, me;

	test_init(argc, argv);
	me = getpid();   /* a session leader: its pgid is its pid */
	if (deny(SYS_uname, EPERM) || deny(SYS_getppid, EACCES)) {
		pr_perror("install the filters");
		return 1;
	}
	child = fork_checker(child_setup, child_check, NULL);
	if (jail_start(&jailed, jail))
		return 1;

	test_daemon();
	test_waitsig();

	if (check("main", 2, me))
		bad = 1;
	bad |= child_verdict(child, "the child found its filters changed");
	if (jail_check(jailed.pid, jailed.cmd, jailed.res, 2, SIGSYS))
		bad = 1;
	if (!bad)
		pass();
	return 0;
}
