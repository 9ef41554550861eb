/*
 * A ring with a kernel submission thread: IORING_SETUP_SQPOLL | SQ_AFF,
 * sq_thread_idle 50 ms, sq_thread_cpu the first CPU this process may run on
 * (CPU 0 on most hosts). 8 SQ entries; 2000 NOPs have gone through it, each
 * submitted by the thread (the program only stores the SQ tail, and calls
 * io_uring_enter(SQ_WAKEUP) when the thread has set IORING_SQ_NEED_WAKEUP),
 * then one more NOP (OLD_NOP) whose CQE is not consumed. The thread has been
 * idle for 200 ms at the checkpoint.
 *
 * The thread is a thread of this process named iou-sqp-<pid of the ring's
 * creator>: the creator's pid in the initial pid namespace, so the name is
 * only checked to be iou-sqp-<getpid()> when it was so before the checkpoint
 * (no pid namespace of our own); otherwise it has to be iou-sqp-<a number>.
 *
 * After restore: ring memory shows the same sizes and positions; the old CQE
 * is exactly there; /proc/self/task holds exactly one iou-sqp- thread and
 * sched_getaffinity() of it is exactly the chosen CPU; 50 NOPs submitted by
 * storing the tail (waking the thread only when it asks to be woken) complete
 * in order at their exact positions, with the program waiting by watching the
 * CQ tail (no io_uring_enter(GETEVENTS)); 200 ms after the last one
 * IORING_SQ_NEED_WAKEUP is set (the thread idled out: an idle time of 1 s,
 * the default, would not have set it yet); a last NOP then needs a wake-up
 * and completes.
 * Kernels before 5.12 run the thread as a kernel thread outside the process
 * (no IORING_FEAT_NATIVE_WORKERS): the thread checks are left out there.
 */
#include <dirent.h>
#include <sched.h>

#include "uringcheck.h"

const char *test_doc = "An SQPOLL ring keeps its thread, CPU and idle time";

#define BURN 2000
#define IDLE_MS 50
#define OLD_NOP 0x5150000000000001ull
#define NEW_UD(n) (0x5150000100000000ull | (n))

static struct ring r;
static struct ring_pos pos;
static int cpu = -1, native, name_is_pid;

/*
 * The tids of the iou-sqp- threads of this process (at most max), their
 * number; the first one's comm in comm.
 */
static int sqp_threads(pid_t *tids, int max, char *comm, size_t size)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (!d) {
		pr_perror("opendir /proc/self/task");
		return -1;
	}
	while ((e = readdir(d))) {
		char path[300], buf[64] = "";
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = 0;
		fclose(f);
		buf[strcspn(buf, "\n")] = 0;
		if (strncmp(buf, "iou-sqp-", 8))
			continue;
		if (n == 0)
			snprintf(comm, size, "%s", buf);
		if (n < max)
			tids[n] = atoi(e->d_name);
		n++;
	}
	closedir(d);
	return n;
}

/* Exactly one iou-sqp- thread, named as expected, bound to cpu alone; fail() and 1 otherwise. */
static int check_thread(const char *what)
{
	char comm[64] = "", want[64];
	cpu_set_t set;
	pid_t tid[4];
	int n, i;

	/* a thread set up a moment ago may not have named itself yet */
	for (i = 0; (n = sqp_threads(tid, 4, comm, sizeof(comm))) == 0 && i < 1000; i++)
		sleep_ms(1);
	if (n != 1) {
		fail("%s: %d iou-sqp- threads in /proc/self/task, expected 1", what, n);
		return 1;
	}
	snprintf(want, sizeof(want), "iou-sqp-%d", getpid());
	if (name_is_pid && strcmp(comm, want)) {
		fail("%s: the SQ thread is called %s, expected %s", what, comm, want);
		return 1;
	}
	if (!name_is_pid && strspn(comm + 8, "0123456789") != strlen(comm + 8)) {
		fail("%s: the SQ thread is called %s", what, comm);
		return 1;
	}
	if (sched_getaffinity(tid[0], sizeof(set), &set)) {
		fail("%s: sched_getaffinity(%d)", what, tid[0]);
		return 1;
	}
	if (CPU_COUNT(&set) != 1 || !CPU_ISSET(cpu, &set)) {
		fail("%s: the SQ thread %d may run on %d CPUs (CPU %d: %s), expected CPU %d only",
		     what, tid[0], CPU_COUNT(&set), cpu, CPU_ISSET(cpu, &set) ? "yes" : "no", cpu);
		return 1;
	}
	return 0;
}

/* Wait up to ms for n CQEs by watching the CQ tail only. */
static int watch_cq(unsigned n, int ms)
{
	int waited;

	for (waited = 0; cq_ready(&r) < n && waited < ms; waited++)
		sleep_ms(1);
	return cq_ready(&r) >= n ? 0 : -1;
}

/* n NOPs (at most an SQ's worth) submitted through the thread; CQEs checked in order. */
static int thread_nops(unsigned n, unsigned first, const char *what)
{
	unsigned head = *r.cq_head, i;
	int ret;

	for (i = 0; i < n; i++)
		prep_nop(sqe_or_die(&r), NEW_UD(first + i));
	ret = ring_submit(&r, n, 0, 0);
	if (ret != (int)n) {
		fail("%s: waking the SQ thread returned %d", what, ret);
		return 1;
	}
	if (watch_cq(n, 5000)) {
		fail("%s: %u of %u NOPs completed (sq head %u tail %u, sq flags %#x)", what,
		     cq_ready(&r), n, *r.sq_head, *r.sq_tail, *r.sq_flags);
		return 1;
	}
	for (i = 0; i < n; i++)
		if (pop_cqe_is(&r, head + i, NEW_UD(first + i), 0, 0, what))
			return 1;
	return 0;
}

/* 200 ms after the last work the thread has gone to sleep and asks to be woken. */
static int check_idle(const char *what)
{
	sleep_ms(200);
	if (!(load_acquire(r.sq_flags) & IORING_SQ_NEED_WAKEUP)) {
		fail("%s: IORING_SQ_NEED_WAKEUP is not set after 200 ms of idleness (sq flags %#x); "
		     "the idle time is %d ms", what, *r.sq_flags, IDLE_MS);
		return 1;
	}
	return 0;
}

static int setup(void)
{
	struct io_uring_params p = {
		.flags = IORING_SETUP_SQPOLL | IORING_SETUP_SQ_AFF,
		.sq_thread_idle = IDLE_MS,
	};
	char comm[64];
	cpu_set_t set;
	pid_t tid;
	int i;

	if (sched_getaffinity(0, sizeof(set), &set)) {
		pr_perror("sched_getaffinity");
		return 1;
	}
	for (i = 0; i < CPU_SETSIZE && cpu < 0; i++)
		if (CPU_ISSET(i, &set))
			cpu = i;
	p.sq_thread_cpu = cpu;
	if (ring_setup(&r, 8, &p)) {
		pr_perror("io_uring_setup(SQPOLL | SQ_AFF, cpu %d)", cpu);
		return 1;
	}
	native = !!(r.p.features & IORING_FEAT_NATIVE_WORKERS);
	if (native) {
		/* the thread names itself when it starts */
		for (i = 0; i < 1000 && sqp_threads(&tid, 1, comm, sizeof(comm)) == 0; i++)
			sleep_ms(1);
		if (sqp_threads(&tid, 1, comm, sizeof(comm)) == 1) {
			char want[64];

			snprintf(want, sizeof(want), "iou-sqp-%d", getpid());
			name_is_pid = !strcmp(comm, want);
		}
		if (check_thread("before"))
			return 1;
		pr_info("the SQ thread is %s on CPU %d\n", comm, cpu);
	} else {
		pr_info("no IORING_FEAT_NATIVE_WORKERS: the SQ thread is a kernel thread, "
			"not checked\n");
	}
	if (ring_nops(&r, BURN, "the NOPs before"))
		return 1;
	prep_nop(sqe_or_die(&r), OLD_NOP);
	if (ring_submit(&r, 1, 1, 0) != 1 || ring_wait(&r, 1, 5000)) {
		pr_perror("the last NOP");
		return 1;
	}
	if (check_idle("before"))
		return 1;
	ring_save_pos(&r, &pos);
	return 0;
}

static int check(void)
{
	unsigned i;

	if (ring_check(&r, &pos, "after restore") ||
	    pop_cqe_is(&r, BURN, OLD_NOP, 0, 0, "the old NOP"))
		return 1;
	if (native && check_thread("after restore"))
		return 1;
	for (i = 0; i < 50; i += 5)
		if (thread_nops(5, i, "NOPs through the SQ thread"))
			return 1;
	if (check_idle("after restore"))
		return 1;
	if (thread_nops(1, 50, "a NOP after the thread went to sleep"))
		return 1;
	/* the thread stores the SQ head after it posts the CQEs */
	for (i = 0; i < 1000 && load_acquire(r.sq_head) != r.sqe_tail; i++)
		sleep_ms(1);
	pos = (struct ring_pos){ BURN + 52, BURN + 52, BURN + 52, BURN + 52, 0, 0 };
	return ring_check(&r, &pos, "at the end") || (native && check_thread("at the end"));
}

int main(int argc, char **argv)
{
	return uring_test_main(argc, argv, setup, check);
}
