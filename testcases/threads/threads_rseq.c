/*
 * rseq: glibc registers a struct rseq for every thread (__rseq_offset from
 * the thread pointer, __rseq_size). After restore each thread's area is
 * still registered with the same parameters (registering it again with the
 * address, length and signature it had fails with EBUSY, the kernel's answer
 * for "already registered, same arguments"; any other length gives EINVAL), the
 * kernel keeps cpu_id up to date (after moving the thread to each allowed
 * CPU in turn, cpu_id and cpu_id_start name that CPU), and sched_getcpu()
 * agrees.
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/rseq.h>
#include <sys/syscall.h>

#include "helpers.h"
#include "lock.h"

const char *test_doc = "rseq stays registered and cpu_id follows migrations after restore";

#define N 2

static futex_t ready, go;
static int result[N + 1];
static unsigned int rseq_len[N + 1];

static struct rseq *my_rseq(void)
{
	char *tp;

	asm("mov %%fs:0, %0" : "=r"(tp));
	return (struct rseq *)(tp + __rseq_offset);
}

/* The length this thread's rseq area is registered with: the one that gives EBUSY. */
static unsigned int registered_len(struct rseq *rs)
{
	unsigned int len;

	for (len = 20; len <= 512; len += 4)
		if (syscall(SYS_rseq, rs, len, 0, RSEQ_SIG) == -1 && errno == EBUSY)
			return len;
	return 0;
}

static int check(int index)
{
	struct rseq *rs = my_rseq();
	cpu_set_t allowed, one;
	int cpu, bad = 0;

	if (syscall(SYS_rseq, rs, rseq_len[index], 0, RSEQ_SIG) != -1 || errno != EBUSY) {
		fail("thread %d: rseq is not registered at %p, length %u as before", index, rs,
		     rseq_len[index]);
		return 1;
	}
	if (sched_getaffinity(0, sizeof(allowed), &allowed)) {
		pr_perror("sched_getaffinity");
		return 1;
	}
	for (cpu = 0; cpu < CPU_SETSIZE && !bad; cpu++) {
		if (!CPU_ISSET(cpu, &allowed))
			continue;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		if (sched_setaffinity(0, sizeof(one), &one)) {
			pr_perror("sched_setaffinity(%d)", cpu);
			return 1;
		}
		sched_yield();
		if ((int)__atomic_load_n(&rs->cpu_id, __ATOMIC_RELAXED) != cpu ||
		    (int)rs->cpu_id_start != cpu || sched_getcpu() != cpu) {
			fail("thread %d on cpu %d: rseq cpu_id %d cpu_id_start %u sched_getcpu %d", index,
			     cpu, (int)rs->cpu_id, rs->cpu_id_start, sched_getcpu());
			bad = 1;
		}
	}
	sched_setaffinity(0, sizeof(allowed), &allowed);
	return bad;
}

static void *run(void *arg)
{
	long index = (long)arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	rseq_len[index] = registered_len(my_rseq());
	futex_inc_and_wake(&ready);
	futex_wait_while(&go, 0);
	result[index] = check(index);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t th[N + 1];
	long i;
	int bad = 0;

	test_init(argc, argv);
	if (__rseq_size == 0) {
		pr_err("glibc did not register rseq (disabled by glibc.pthread.rseq=0?)\n");
		return 1;
	}
	if ((int)my_rseq()->cpu_id < 0) {
		pr_err("rseq cpu_id is %d before the checkpoint\n", (int)my_rseq()->cpu_id);
		return 1;
	}
	for (i = 1; i <= N; i++)
		if (pthread_create(&th[i], NULL, run, (void *)i)) {
			pr_err("pthread_create failed\n");
			return 1;
		}
	futex_wait_until(&ready, N);
	rseq_len[0] = registered_len(my_rseq());
	for (i = 0; i <= N; i++)
		if (!rseq_len[i]) {
			pr_err("thread %ld: rseq not registered\n", i);
			return 1;
		}

	test_daemon();
	test_waitsig();

	bad = check(0);
	futex_set_and_wake(&go, 1);
	for (i = 1; i <= N; i++) {
		pthread_join(th[i], NULL);
		bad |= result[i];
	}
	if (!bad)
		pass();
	return 0;
}
