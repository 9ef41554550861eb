/*
 * Helpers our test programs share (not part of the ZDTM API): readiness
 * pipes, clocks, small /proc readers, forking children that check
 * themselves, waiting for children and collecting their verdicts.
 */
#ifndef CRBENCH_HELPERS_H_
#define CRBENCH_HELPERS_H_

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "zdtmtst.h"

/*
 * A readiness pipe: children call ready_signal() once set up, the parent
 * ready_wait()s for all of them. Both ends are closed afterwards, so nothing
 * of it is left to checkpoint.
 */
struct ready {
	int fds[2];
};

static inline void ready_init(struct ready *r)
{
	if (pipe(r->fds)) {
		pr_perror("pipe");
		exit(1);
	}
}

/* In a child: "I am ready"; closes the child's copies of both ends. */
static inline void ready_signal(struct ready *r)
{
	char c = 'r';

	if (write(r->fds[1], &c, 1) != 1)
		pr_perror("ready_signal");
	close(r->fds[0]);
	close(r->fds[1]);
}

/* In a child that has nothing to say (e.g. a grandchild): drop the ends. */
static inline void ready_close(struct ready *r)
{
	close(r->fds[0]);
	close(r->fds[1]);
}

/* In the parent, after the last fork: wait for n signals; 0 on success. */
static inline int ready_wait(struct ready *r, int n)
{
	int got = 0;
	char c;

	close(r->fds[1]);
	while (got < n) {
		ssize_t k = read(r->fds[0], &c, 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k != 1)
			break;
		got++;
	}
	close(r->fds[0]);
	if (got != n)
		pr_err("only %d of %d processes got ready\n", got, n);
	return got == n ? 0 : -1;
}

static inline double clock_seconds(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline double now_mono(void)
{
	return clock_seconds(CLOCK_MONOTONIC);
}

static inline void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Read a small file whole (NUL-terminated); returns its length or -1. */
static inline ssize_t read_whole(const char *path, char *buf, size_t size)
{
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	while (len < size - 1) {
		ssize_t k = read(fd, buf + len, size - 1 - len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		len += k;
	}
	close(fd);
	buf[len] = '\0';
	return len;
}

/*
 * Wait (up to timeout_ms) until task `tid` of process `pid` sleeps in system
 * call `nr` (first field of /proc/PID/task/TID/syscall); 0 when it does.
 */
static inline int wait_in_syscall(pid_t pid, pid_t tid, long nr, int timeout_ms)
{
	char path[64], buf[256], *end;
	int waited;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", pid, tid);
	for (waited = 0; waited <= timeout_ms; waited += 5) {
		/* a number: "running" would read as 0, which is read()'s */
		if (read_whole(path, buf, sizeof(buf)) > 0 && strtol(buf, &end, 10) == nr &&
		    end != buf)
			return 0;
		sleep_ms(5);
	}
	pr_err("task %d/%d is not in syscall %ld: %s\n", pid, tid, nr, buf);
	return -1;
}

/* Wait (up to timeout_ms) until process `pid` is a zombie. */
static inline int wait_zombie(pid_t pid, int timeout_ms)
{
	siginfo_t si;
	int waited;

	for (waited = 0; waited <= timeout_ms; waited += 5) {
		si.si_pid = 0;
		if (waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid)
			return 0;
		sleep_ms(5);
	}
	pr_err("%d did not become a zombie\n", pid);
	return -1;
}

/* waitpid() that retries on EINTR; returns the status or -1. */
static inline int wait_status(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			pr_perror("waitpid(%d)", pid);
			return -1;
		}
	}
	return status;
}

/*
 * The /proc/self/maps line of the mapping that starts at addr: its inode (for a SysV
 * segment: its shmid), or -1 when no mapping starts there; perms (5 bytes) and the file
 * offset too when asked for (non-NULL).
 */
static inline long maps_entry(void *addr, char *perms, unsigned long *offset)
{
	char line[512], p[8];
	unsigned long start, end, off, ino;
	long found = -1;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx %4s %lx %*s %lu", &start, &end, p, &off, &ino) == 5 &&
		    start == (unsigned long)addr) {
			found = ino;
			if (perms)
				strcpy(perms, p);
			if (offset)
				*offset = off;
			break;
		}
	fclose(f);
	return found;
}

static inline long maps_inode(void *addr)
{
	return maps_entry(addr, NULL, NULL);
}

/* test_fork() in the parent; a failed fork is reported and ends the program (exit 1). */
static inline pid_t fork_or_exit(void)
{
	pid_t pid = test_fork();

	if (pid < 0) {
		pr_perror("fork");
		exit(1);
	}
	return pid;
}

/*
 * Wait for child pid; 0 when it exited with status 0, else fail() with what
 * and its status, and 1.
 */
static inline int child_passed(pid_t pid, const char *what)
{
	int st = wait_status(pid);

	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fail("%s (status %#x)", what, st);
		return 1;
	}
	return 0;
}

/*
 * After the restore: SIGTERM a child that checks its own state when the
 * signal comes, and collect its verdict as child_passed() does.
 */
static inline int child_verdict(pid_t pid, const char *what)
{
	kill(pid, SIGTERM);
	return child_passed(pid, what);
}

/*
 * Fork a child that checks its own state after the restore: it runs
 * setup(arg) (non-zero: it exits 1), tells the parent it is ready and waits
 * for SIGTERM (test_waitsig); then it exits 0 when check(arg) returns 0, 1
 * otherwise. The parent gets the child's pid once it is ready (it exits 1
 * when the fork fails or the child never gets ready); child_verdict() later
 * collects the result.
 */
static inline pid_t fork_checker(int (*setup)(void *arg), int (*check)(void *arg), void *arg)
{
	struct ready r;
	pid_t pid;

	ready_init(&r);
	pid = fork_or_exit();
	if (pid == 0) {
		if (setup(arg))
			_exit(1);
		ready_signal(&r);
		test_waitsig();
		_exit(check(arg) ? 1 : 0);
	}
	if (ready_wait(&r, 1))
		exit(1);
	return pid;
}

/* SIGTERM each child and wait for it; 0 when all exited with status 0. */
static inline int stop_children(const pid_t *pids, int n)
{
	int i, bad = 0;

	for (i = 0; i < n; i++)
		if (kill(pids[i], SIGTERM))
			pr_perror("kill(%d)", pids[i]);
	for (i = 0; i < n; i++) {
		int st = wait_status(pids[i]);
		if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st)) {
			pr_err("child %d ended with status %#x\n", pids[i], st);
			bad++;
		}
	}
	return bad ? -1 : 0;
}

/* Send one message of `len` bytes carrying `nfds` fds (SCM_RIGHTS, at most 4); 0 when all
 * of it went. */
static inline int send_fds(int sk, const void *data, size_t len, const int *fds, int nfds,
			   int flags)
{
	char cbuf[CMSG_SPACE(4 * sizeof(int))] = { 0 };
	struct iovec iov = { (void *)data, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = CMSG_SPACE(nfds * sizeof(int)) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	if (nfds < 1 || nfds > 4)
		return -1;
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
	return sendmsg(sk, &mh, flags) == (ssize_t)len ? 0 : -1;
}

#endif /* CRBENCH_HELPERS_H_ */
