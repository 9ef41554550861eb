/*
 * A child confined by seccomp to read(), write(), the exit system call and
 * rt_sigreturn() (strict mode, or a filter that allows just those): any other
 * system call kills it, so an engine that injects calls into it without
 * suspending seccomp kills it too. It tells the parent it is confined, answers
 * one command after the restore, then makes a forbidden call that must kill
 * it. The parent checks the mode in the child's /proc status, the answer, and
 * the death.
 */
#ifndef CRBENCH_JAIL_H_
#define CRBENCH_JAIL_H_

#include <sys/syscall.h>

#include "helpers.h"

/* In the confined child: the protocol above. Never returns. */
static inline void __attribute__((noreturn)) jail_serve(int cmd, int res)
{
	char c = 'R';

	if (write(res, &c, 1) != 1)
		syscall(SYS_exit, 2);
	for (;;) {
		long n = read(cmd, &c, 1);
		if (n == 1)
			break;
		if (n == 0 || errno != EINTR)
			syscall(SYS_exit, 5);   /* the parent is gone */
	}
	c++;
	if (write(res, &c, 1) != 1)
		syscall(SYS_exit, 3);
	syscall(SYS_getpid);       /* forbidden: kills the child */
	c = 'X';                   /* still alive: the confinement was lost */
	if (write(res, &c, 1) != 1)
		syscall(SYS_exit, 4);
	syscall(SYS_exit, 0);
	__builtin_unreachable();
}

/* In the parent, before the dump: 0 once the child said it is confined. */
static inline int jail_wait_ready(int res)
{
	char c = 0;

	if (read(res, &c, 1) != 1 || c != 'R') {
		pr_err("the child did not confine itself\n");
		return -1;
	}
	return 0;
}

/* The confined child, and the parent's ends of the command and answer pipes. */
struct jail {
	pid_t pid;
	int cmd, res;
};

/*
 * In the parent: fork the child, which confines itself with confine() (0 once
 * confined) and serves; 0 once it said it is confined.
 */
static inline int jail_start(struct jail *j, int (*confine)(void))
{
	int cmd[2], res[2];

	if (pipe(cmd) || pipe(res)) {
		pr_perror("pipe");
		return -1;
	}
	j->pid = fork_or_exit();
	if (j->pid == 0) {
		close(cmd[1]);
		close(res[0]);
		if (confine())
			syscall(SYS_exit_group, 1);
		jail_serve(cmd[0], res[1]);
	}
	close(cmd[0]);
	close(res[1]);
	j->cmd = cmd[1];
	j->res = res[0];
	return jail_wait_ready(j->res);
}

/*
 * In the parent, after the restore: the number of differences (each
 * reported). mode: the value of the child's "Seccomp:" status line; sig: the
 * signal its forbidden call must die of.
 */
static inline int jail_check(pid_t child, int cmd, int res, int mode, int sig)
{
	char path[64], status[4096], want[32], c = 'G';
	int st, bad = 0;

	snprintf(path, sizeof(path), "/proc/%d/status", child);
	snprintf(want, sizeof(want), "\nSeccomp:\t%d\n", mode);
	if (read_whole(path, status, sizeof(status)) < 0 || !strstr(status, want)) {
		fail("the child's status does not say \"Seccomp: %d\"", mode);
		bad++;
	}
	if (write(cmd, &c, 1) != 1) {
		fail("write the command");
		bad++;
	}
	c = 0;
	if (read(res, &c, 1) != 1 || c != 'H') {
		fail("the child did not answer the command (got '%c')", c);
		bad++;
	}
	st = wait_status(child);
	if (st == -1 || !WIFSIGNALED(st) || WTERMSIG(st) != sig) {
		fail("the child's getpid() was not killed by signal %d (status %#x)", sig, st);
		bad++;
	}
	c = 0;
	if (read(res, &c, 1) != 0) {
		fail("the child wrote '%c' after a forbidden system call", c);
		bad++;
	}
	return bad;
}

#endif
