/*
 * FD_CLOEXEC and file owners on pipes with O_ASYNC:
 * - pipe 1 read end: O_ASYNC | O_NONBLOCK, F_SETOWN(pid), F_SETSIG(SIGRTMIN+1),
 *   FD_CLOEXEC;
 * - pipe 2 read end: O_ASYNC, F_SETOWN_EX(F_OWNER_PGRP, our group),
 *   F_SETSIG(SIGRTMIN+3), its write end FD_CLOEXEC;
 * - pipe 3 read end: O_ASYNC, F_SETOWN_EX(F_OWNER_TID, our thread),
 *   F_SETSIG(SIGRTMIN+5);
 * - pipe 4 read end: O_ASYNC, F_SETOWN(pid), no F_SETSIG (plain SIGIO).
 * After restore: F_GETFD is FD_CLOEXEC exactly on those three fds, and an
 * exec()ed shell sees exactly the others; F_GETFL has O_ASYNC (and
 * O_NONBLOCK on pipe 1 only); F_GETOWN_EX gives the same owner type and id
 * and F_GETSIG the same signal; and writing into each pipe delivers its
 * signal (the F_SETSIG ones with si_fd = the read end and si_code POLL_IN).
 */
#include <signal.h>

#include "helpers.h"

const char *test_doc = "FD_CLOEXEC, O_ASYNC owners (F_SETOWN, F_SETOWN_EX) and F_SETSIG are kept";

static int bad;

struct owned {
	int p[2];
	int type, id, sig, extra_fl;
};

static void expect_owner(struct owned *o, const char *what)
{
	struct f_owner_ex ex = { 0, 0 };
	int fl = fcntl(o->p[0], F_GETFL), sig = fcntl(o->p[0], F_GETSIG);

	if (fcntl(o->p[0], F_GETOWN_EX, &ex) || ex.type != o->type || ex.pid != o->id || sig != o->sig) {
		fail("%s: owner type %d id %d signal %d, expected %d %d %d", what, ex.type, ex.pid, sig,
		     o->type, o->id, o->sig);
		bad = 1;
	}
	if ((fl & (O_ASYNC | O_NONBLOCK | O_ACCMODE)) != (O_ASYNC | O_RDONLY | o->extra_fl)) {
		fail("%s: F_GETFL %#o, expected O_ASYNC%s", what, fl, o->extra_fl ? " | O_NONBLOCK" : "");
		bad = 1;
	}
}

static void expect_signal(struct owned *o, const char *what)
{
	struct timespec ts = { 2, 0 };
	int sig = o->sig ? o->sig : SIGIO;
	siginfo_t si;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, sig);
	if (write(o->p[1], "x", 1) != 1) {
		fail("%s: write", what);
		bad = 1;
		return;
	}
	memset(&si, 0, sizeof(si));
	if (sigtimedwait(&set, &si, &ts) != sig) {
		fail("%s: signal %d did not come", what, sig);
		bad = 1;
		return;
	}
	if (o->sig && (si.si_fd != o->p[0] || si.si_code != POLL_IN)) {
		fail("%s: signal %d with si_fd %d si_code %d, expected fd %d POLL_IN", what, sig,
		     si.si_fd, si.si_code, o->p[0]);
		bad = 1;
	}
}

/* The fds an exec()ed program still has among fds[]: a bitmask by index, or -1. */
static int fds_after_exec(const int *fds, int n)
{
	char args[16][16], out[256] = "";
	char *argv[24];
	int res[2], i, k = 0, mask = 0, st;
	ssize_t got, len = 0;
	pid_t pid;

	if (pipe2(res, O_CLOEXEC))
		return -1;
	argv[k++] = "/bin/sh";
	argv[k++] = "-c";
	argv[k++] = "for f; do [ -e /proc/self/fd/$f ] && echo $f; done; exit 0";
	argv[k++] = "sh";
	for (i = 0; i < n; i++) {
		snprintf(args[i], sizeof(args[i]), "%d", fds[i]);
		argv[k++] = args[i];
	}
	argv[k] = NULL;
	pid = test_fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(res[1], STDOUT_FILENO);   /* dup2 clears FD_CLOEXEC on the copy */
		execv(argv[0], argv);
		_exit(127);
	}
	close(res[1]);
	while ((got = read(res[0], out + len, sizeof(out) - 1 - len)) > 0)
		len += got;
	out[len] = '\0';
	close(res[0]);
	st = wait_status(pid);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st))
		return -1;
	for (char *tok = strtok(out, "\n"); tok; tok = strtok(NULL, "\n"))
		for (i = 0; i < n; i++)
			if (atoi(tok) == fds[i])
				mask |= 1 << i;
	return mask;
}

int main(int argc, char **argv)
{
	struct owned o[4];
	const char *names[4] = { "pipe 1 (F_SETOWN pid)", "pipe 2 (F_OWNER_PGRP)",
				 "pipe 3 (F_OWNER_TID)", "pipe 4 (plain SIGIO)" };
	int fds[8], cloexec[8], i, want_mask = 0, got_mask;
	struct f_owner_ex ex;
	sigset_t set;

	test_init(argc, argv);
	memset(o, 0, sizeof(o));
	for (i = 0; i < 4; i++)
		if (pipe(o[i].p)) {
			pr_perror("pipe");
			return 1;
		}
	o[0] = (struct owned){ { o[0].p[0], o[0].p[1] }, F_OWNER_PID, getpid(), SIGRTMIN + 1, O_NONBLOCK };
	o[1] = (struct owned){ { o[1].p[0], o[1].p[1] }, F_OWNER_PGRP, getpgrp(), SIGRTMIN + 3, 0 };
	o[2] = (struct owned){ { o[2].p[0], o[2].p[1] }, F_OWNER_TID, gettid(), SIGRTMIN + 5, 0 };
	o[3] = (struct owned){ { o[3].p[0], o[3].p[1] }, F_OWNER_PID, getpid(), 0, 0 };

	sigemptyset(&set);
	sigaddset(&set, SIGIO);
	for (i = 0; i < 4; i++)
		if (o[i].sig)
			sigaddset(&set, o[i].sig);
	if (sigprocmask(SIG_BLOCK, &set, NULL)) {
		pr_perror("sigprocmask");
		return 1;
	}
	for (i = 0; i < 4; i++) {
		ex.type = o[i].type;
		ex.pid = o[i].id;
		if (fcntl(o[i].p[0], F_SETFL, O_ASYNC | o[i].extra_fl) ||
		    fcntl(o[i].p[0], F_SETOWN_EX, &ex) || fcntl(o[i].p[0], F_SETSIG, o[i].sig)) {
			pr_perror("fcntl %s", names[i]);
			return 1;
		}
	}
	for (i = 0; i < 8; i++) {
		fds[i] = o[i / 2].p[i % 2];
		cloexec[i] = (i == 0 || i == 3 || i == 4) ? FD_CLOEXEC : 0;
		if (fcntl(fds[i], F_SETFD, cloexec[i])) {
			pr_perror("F_SETFD");
			return 1;
		}
		if (!cloexec[i])
			want_mask |= 1 << i;
	}

	test_daemon();
	test_waitsig();

	for (i = 0; i < 8; i++)
		if (fcntl(fds[i], F_GETFD) != cloexec[i]) {
			fail("fd %d: F_GETFD %d, expected %d", fds[i], fcntl(fds[i], F_GETFD), cloexec[i]);
			bad = 1;
		}
	got_mask = fds_after_exec(fds, 8);
	if (got_mask != want_mask) {
		fail("after exec the fds left are mask %#x, expected %#x", got_mask, want_mask);
		bad = 1;
	}
	for (i = 0; i < 4; i++)
		expect_owner(&o[i], names[i]);
	for (i = 0; i < 4; i++)
		expect_signal(&o[i], names[i]);

	if (!bad)
		pass();
	return 0;
}
