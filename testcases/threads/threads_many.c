/*
 * Many threads (12), each with its own tid, data (a heap buffer and an array
 * on its stack, each with a checksummed pattern) and signal mask. They sleep
 * on a futex across the checkpoint; after restore each checks its tid, mask
 * (pthread_sigmask and SigBlk in /proc/self/task/TID/status) and data, and
 * the set of tasks in /proc/self/task is the one recorded before.  The heap
 * buffers (4 MiB each, 48 MiB in all) make the image big enough for an engine
 * to load it with helper threads: their tids must not take any of these.
 */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>

#include "helpers.h"
#include "lock.h"

const char *test_doc = "many threads keep their tids, data and signal masks";

#define NTHREADS 12
#define HEAP (4 << 20)

struct worker {
	pthread_t th;
	int index;
	pid_t tid;
	sigset_t mask;
	int result;
};

static struct worker workers[NTHREADS];
static futex_t ready, go;

static unsigned long long sigblk(pid_t tid)
{
	char path[64], buf[4096], *p;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
	if (read_whole(path, buf, sizeof(buf)) < 0 || !(p = strstr(buf, "SigBlk:")))
		return ~0ULL;
	return strtoull(p + 7, NULL, 16);
}

static unsigned long long mask_bits(const sigset_t *set)
{
	unsigned long long bits = 0;
	int sig;

	for (sig = 1; sig <= 64; sig++)
		if (sigismember(set, sig) == 1)
			bits |= 1ULL << (sig - 1);
	return bits;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	uint8_t stack_data[8192], *heap = malloc(HEAP);
	unsigned long long want;
	uint32_t crc = ~0;
	sigset_t cur;

	w->tid = syscall(SYS_gettid);
	sigemptyset(&w->mask);
	sigaddset(&w->mask, SIGTERM);   /* SIGTERM is for the main thread */
	sigaddset(&w->mask, SIGRTMIN + w->index);
	if (w->index & 1)
		sigaddset(&w->mask, SIGUSR1);
	if (w->index % 3 == 0)
		sigaddset(&w->mask, SIGHUP);
	pthread_sigmask(SIG_SETMASK, &w->mask, NULL);
	datagen(stack_data, sizeof(stack_data), &crc);
	crc = ~0;
	datagen(heap, HEAP, &crc);

	futex_inc_and_wake(&ready);
	futex_wait_while(&go, 0);

	w->result = 1;
	if (syscall(SYS_gettid) != w->tid) {
		fail("thread %d: gettid() %ld, expected %d", w->index, syscall(SYS_gettid), w->tid);
		return NULL;
	}
	pthread_sigmask(SIG_SETMASK, NULL, &cur);
	want = mask_bits(&w->mask);
	if (mask_bits(&cur) != want || sigblk(w->tid) != want) {
		fail("thread %d: mask %llx (SigBlk %llx), expected %llx", w->index, mask_bits(&cur),
		     sigblk(w->tid), want);
		return NULL;
	}
	crc = ~0;
	if (datachk(stack_data, sizeof(stack_data), &crc)) {
		fail("thread %d: stack data changed", w->index);
		return NULL;
	}
	crc = ~0;
	if (datachk(heap, HEAP, &crc)) {
		fail("thread %d: heap data changed", w->index);
		return NULL;
	}
	free(heap);
	w->result = 0;
	return NULL;
}

static int task_set_ok(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0, i;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		pid_t tid = atoi(de->d_name);
		if (!tid)
			continue;
		n++;
		if (tid == getpid())
			continue;
		for (i = 0; i < NTHREADS && workers[i].tid != tid; i++)
			;
		if (i == NTHREADS) {
			fail("unexpected task %d", tid);
			closedir(d);
			return 0;
		}
	}
	closedir(d);
	if (n != NTHREADS + 1)
		fail("%d tasks, expected %d", n, NTHREADS + 1);
	return n == NTHREADS + 1;
}

int main(int argc, char **argv)
{
	int i, bad = 0;

	test_init(argc, argv);
	for (i = 0; i < NTHREADS; i++) {
		workers[i].index = i;
		if (pthread_create(&workers[i].th, NULL, run, &workers[i])) {
			pr_err("pthread_create failed\n");
			return 1;
		}
	}
	futex_wait_until(&ready, NTHREADS);

	test_daemon();
	test_waitsig();

	if (!task_set_ok())
		bad = 1;
	futex_set_and_wake(&go, 1);
	for (i = 0; i < NTHREADS; i++) {
		pthread_join(workers[i].th, NULL);
		bad |= workers[i].result;
	}
	if (!bad)
		pass();
	return 0;
}
