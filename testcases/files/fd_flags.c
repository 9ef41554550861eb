/*
 * The fd table and per-fd settings: fds at chosen numbers (3..9, 100, 517,
 * 1000) with FD_CLOEXEC on some, status flags changed with F_SETFL
 * (O_NONBLOCK, O_APPEND, O_ASYNC), and a pipe with an owner (F_SETOWN) and a
 * signal (F_SETSIG) for O_ASYNC. After restore /proc/self/fd lists exactly
 * the same fds, each with the same FD_CLOEXEC, status flags and target, and
 * the owner and signal are kept.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>

#include "fdcheck.h"

const char *test_doc = "fd numbers, FD_CLOEXEC, status flags and file owners are kept";

#define MAXFD 64

static int list_fds(int *out)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0, self = dirfd(d);

	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && atoi(de->d_name) != self && n < MAXFD)
			out[n++] = atoi(de->d_name);
	closedir(d);
	return n;
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

int main(int argc, char **argv)
{
	static const int wanted[] = { 100, 517, 1000 };
	int before[MAXFD], after[MAXFD], nb, na, i, p[2], bad = 0, fd;
	struct fdstate was[MAXFD];
	struct f_owner_ex owner;

	test_init(argc, argv);
	signal(SIGIO, SIG_IGN);
	signal(SIGRTMIN + 1, SIG_IGN);
	if (pipe(p)) {
		pr_perror("pipe");
		return 1;
	}
	for (i = 0; i < 5; i++) {
		fd = open("/dev/null", i & 1 ? O_RDONLY | O_CLOEXEC : O_WRONLY);
		if (fd < 0) {
			pr_perror("open");
			return 1;
		}
	}
	for (i = 0; i < (int)ARRAY_SIZE(wanted); i++)
		if (fcntl(p[i & 1], i == 1 ? F_DUPFD_CLOEXEC : F_DUPFD, wanted[i]) != wanted[i]) {
			pr_perror("F_DUPFD %d", wanted[i]);
			return 1;
		}
	if (fcntl(p[0], F_SETFL, O_NONBLOCK | O_ASYNC) || fcntl(wanted[1], F_SETFL, O_APPEND) ||
	    fcntl(p[0], F_SETOWN, getpid()) || fcntl(p[0], F_SETSIG, SIGRTMIN + 1) ||
	    fcntl(p[1], F_SETFD, FD_CLOEXEC)) {
		pr_perror("fcntl");
		return 1;
	}
	nb = list_fds(before);
	qsort(before, nb, sizeof(int), cmp_int);
	for (i = 0; i < nb; i++)
		if (fd_state(before[i], &was[i])) {
			pr_perror("fd state %d", before[i]);
			return 1;
		}

	test_daemon();
	test_waitsig();

	na = list_fds(after);
	qsort(after, na, sizeof(int), cmp_int);
	if (na != nb || memcmp(before, after, nb * sizeof(int))) {
		fail("the fd table has %d fds, had %d", na, nb);
		for (i = 0; i < na; i++)
			test_msg("  now fd %d\n", after[i]);
		bad = 1;
	}
	for (i = 0; i < nb; i++) {
		char what[32];
		snprintf(what, sizeof(what), "fd %d", before[i]);
		bad |= fd_same(before[i], &was[i], what);
	}
	if (fcntl(p[0], F_GETOWN_EX, &owner) || owner.type != F_OWNER_PID || owner.pid != getpid() ||
	    fcntl(p[0], F_GETSIG) != SIGRTMIN + 1) {
		fail("owner %d/%d signal %d, expected pid %d signal %d", owner.type, owner.pid,
		     fcntl(p[0], F_GETSIG), getpid(), SIGRTMIN + 1);
		bad = 1;
	}
	if (!bad)
		pass();
	return 0;
}
