/*
 * Blocked-signal masks per process and per thread: the main thread, five
 * threads and a child process each block their own set of standard and
 * real-time signals. After restore each checks its mask with
 * pthread_sigmask() and in SigBlk of /proc/self/task/TID/status.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "helpers.h"
#include "lock.h"

const char *test_doc = "blocked signal masks of every thread and process are kept";

#define N 5

static futex_t ready, go;
static int result[N + 1];

/* who: 0 the main thread, 1..N threads, N + 1 the child process */
static void make_mask(int who, sigset_t *set)
{
	int sig;

	sigemptyset(set);
	for (sig = 1; sig <= 64; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP || sig == 32 || sig == 33)
			continue;   /* unblockable, or glibc's own */
		if ((sig * 7 + who * 3) % 5 == 0 || sig == SIGRTMIN + who)
			sigaddset(set, sig);
	}
	if (who == 0 || who == N + 1)
		sigdelset(set, SIGTERM);   /* the main thread and the child take SIGTERM */
	else
		sigaddset(set, SIGTERM);
}

static unsigned long long bits(const sigset_t *set)
{
	unsigned long long b = 0;
	int sig;

	for (sig = 1; sig <= 64; sig++)
		if (sigismember(set, sig) == 1)
			b |= 1ULL << (sig - 1);
	return b;
}

static unsigned long long sigblk(void)
{
	char path[64], buf[4096], *p;

	snprintf(path, sizeof(path), "/proc/self/task/%ld/status", syscall(SYS_gettid));
	if (read_whole(path, buf, sizeof(buf)) < 0 || !(p = strstr(buf, "SigBlk:")))
		return ~0ULL;
	return strtoull(p + 7, NULL, 16);
}

static int check(int who)
{
	sigset_t want, cur;

	make_mask(who, &want);
	pthread_sigmask(SIG_SETMASK, NULL, &cur);
	if (bits(&cur) != bits(&want) || sigblk() != bits(&want)) {
		fail("%d: mask %llx, SigBlk %llx, expected %llx", who, bits(&cur), sigblk(), bits(&want));
		return 1;
	}
	return 0;
}

static void *run(void *arg)
{
	long who = (long)arg;
	sigset_t set;

	make_mask(who, &set);
	pthread_sigmask(SIG_SETMASK, &set, NULL);
	futex_inc_and_wake(&ready);
	futex_wait_while(&go, 0);
	result[who] = check(who);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t th[N + 1];
	sigset_t set;
	pid_t child;
	long i;
	int bad = 0, st, fds[2];

	test_init(argc, argv);
	make_mask(0, &set);
	pthread_sigmask(SIG_SETMASK, &set, NULL);
	for (i = 1; i <= N; i++)
		if (pthread_create(&th[i], NULL, run, (void *)i)) {
			pr_err("pthread_create failed\n");
			return 1;
		}
	if (pipe(fds)) {
		pr_perror("pipe");
		return 1;
	}
	child = fork();
	if (child == 0) {
		char c = 0;

		make_mask(N + 1, &set);
		pthread_sigmask(SIG_SETMASK, &set, NULL);
		if (write(fds[1], &c, 1) != 1)
			exit(2);
		close(fds[0]);
		close(fds[1]);
		test_waitsig();
		exit(check(N + 1));
	}
	close(fds[1]);
	if (read_data(fds[0], (unsigned char *)&st, 1)) {
		pr_err("the child did not start\n");
		return 1;
	}
	close(fds[0]);
	futex_wait_until(&ready, N);

	test_daemon();
	test_waitsig();

	bad = check(0);
	futex_set_and_wake(&go, 1);
	for (i = 1; i <= N; i++) {
		pthread_join(th[i], NULL);
		bad |= result[i];
	}
	if (stop_children(&child, 1)) {
		fail("the child's mask changed");
		bad = 1;
	}
	if (!bad)
		pass();
	return 0;
}
