/*
 * read() blocked on an empty pipe: a child process and a thread of the main
 * process each sleep in read() at the checkpoint (checked in
 * /proc/PID/task/TID/syscall). After restore the main process writes; each
 * reader gets exactly the bytes written after the restore (the read was
 * restarted, not failed with EINTR or returned early), then EOF once the
 * writer closes.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "helpers.h"
#include "lock.h"

const char *test_doc = "a read() blocked on a pipe is restarted and gets data written after restore";

#define LEN 3000

static uint8_t pattern(int who, int i)
{
	return (uint8_t)(who * 41 + i * 3 + 1);
}

/* Read LEN bytes (in as many reads as it takes), then expect EOF. */
static int reader(int fd, int who)
{
	uint8_t buf[LEN + 16];
	int got = 0, i;

	while (got < LEN) {
		ssize_t r = read(fd, buf + got, sizeof(buf) - got);
		if (r < 0) {
			fail("reader %d: read failed after %d bytes", who, got);
			return 1;
		}
		if (r == 0) {
			fail("reader %d: EOF after %d bytes", who, got);
			return 1;
		}
		got += r;
	}
	for (i = 0; i < LEN; i++)
		if (buf[i] != pattern(who, i)) {
			fail("reader %d: byte %d is %#x", who, i, buf[i]);
			return 1;
		}
	if (read(fd, buf, 1) != 0) {
		fail("reader %d: no EOF after the data", who);
		return 1;
	}
	return 0;
}

static int thread_fds[2];
static pid_t thread_tid;
static futex_t thread_started;
static int thread_result = 1;

static void *thread_reader(void *arg)
{
	sigset_t all;

	(void)arg;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	thread_tid = syscall(SYS_gettid);
	futex_set_and_wake(&thread_started, 1);
	thread_result = reader(thread_fds[0], 1);
	return NULL;
}

int main(int argc, char **argv)
{
	uint8_t data[LEN];
	int child_fds[2], i, st, bad = 0;
	pthread_t th;
	pid_t child;

	test_init(argc, argv);
	if (pipe(child_fds) || pipe(thread_fds)) {
		pr_perror("pipe");
		return 1;
	}
	child = fork_or_exit();
	if (child == 0) {
		close(child_fds[1]);
		close(thread_fds[0]);
		close(thread_fds[1]);
		exit(reader(child_fds[0], 0));
	}
	close(child_fds[0]);
	if (pthread_create(&th, NULL, thread_reader, NULL)) {
		pr_err("pthread_create failed\n");
		return 1;
	}
	futex_wait_until(&thread_started, 1);
	if (wait_in_syscall(child, child, SYS_read, 5000) ||
	    wait_in_syscall(getpid(), thread_tid, SYS_read, 5000))
		return 1;

	test_daemon();
	test_waitsig();

	for (i = 0; i < LEN; i++)
		data[i] = pattern(0, i);
	if (write_data(child_fds[1], data, LEN)) {
		pr_perror("write");
		return 1;
	}
	close(child_fds[1]);
	for (i = 0; i < LEN; i++)
		data[i] = pattern(1, i);
	if (write_data(thread_fds[1], data, LEN)) {
		pr_perror("write");
		return 1;
	}
	close(thread_fds[1]);

	pthread_join(th, NULL);
	st = wait_status(child);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fail("the child reader failed (status %#x)", st);
		bad = 1;
	}
	if (thread_result) {
		fail("the thread reader failed");
		bad = 1;
	}
	if (!bad)
		pass();
	return 0;
}
