/*
 * Pending signals, per process and per thread. Before the checkpoint, with
 * everything blocked: SIGUSR1 twice and queued real-time signals with
 * payloads (sigqueue) go to the process; SIGUSR2 and queued real-time signals
 * go to one thread and to the main thread (tgkill, pthread_sigqueue). After
 * restore ShdPnd and each thread's SigPnd are what they were, sigtimedwait()
 * dequeues every signal in the kernel's order (thread-private first, then
 * shared; lower numbers first; same-number real-time signals in queueing
 * order) with its si_code, sender and payload, and two more queued signals
 * are delivered to their handler in order the moment they are unblocked.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>

#include "helpers.h"
#include "lock.h"

const char *test_doc = "pending signals and queued real-time payloads are kept";

struct expect {
	int sig, code, value;
};

static futex_t ready, go;
static pid_t thread_tid;
static int thread_result = 1;

static unsigned long long status_mask(pid_t tid, const char *field)
{
	char path[64], buf[4096], *p;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
	if (read_whole(path, buf, sizeof(buf)) < 0 || !(p = strstr(buf, field)))
		return ~0ULL;
	return strtoull(p + strlen(field), NULL, 16);
}

/* The raw call: glibc's sigtimedwait() reports SI_TKILL as SI_USER. */
static int timedwait(const sigset_t *set, siginfo_t *si, const struct timespec *timeout)
{
	return syscall(SYS_rt_sigtimedwait, set, si, timeout, 8);
}

static int drain(const char *who, const struct expect *e, int n)
{
	struct timespec zero = { 0, 0 };
	siginfo_t si;
	sigset_t all;
	int i, sig;

	sigfillset(&all);
	for (i = 0; i < n; i++) {
		sig = timedwait(&all, &si, &zero);
		if (sig != e[i].sig || si.si_code != e[i].code || si.si_pid != getpid() ||
		    si.si_uid != getuid() || (e[i].code == SI_QUEUE && si.si_value.sival_int != e[i].value)) {
			fail("%s: signal %d: got %d code %d pid %d value %d, expected %d code %d value %d",
			     who, i, sig, si.si_code, si.si_pid, si.si_value.sival_int, e[i].sig, e[i].code,
			     e[i].value);
			return 1;
		}
	}
	sig = timedwait(&all, &si, &zero);
	if (sig != -1 || errno != EAGAIN) {
		fail("%s: an extra signal %d is pending", who, sig);
		return 1;
	}
	return 0;
}

static void *run(void *arg)
{
	sigset_t all;

	(void)arg;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	thread_tid = syscall(SYS_gettid);
	futex_set_and_wake(&ready, 1);
	futex_wait_while(&go, 0);
	{
		const struct expect e[] = {
			{ SIGUSR2, SI_TKILL, 0 },
			{ SIGRTMIN + 3, SI_QUEUE, 200 },
			{ SIGRTMIN + 3, SI_QUEUE, 201 },
			{ SIGRTMIN + 4, SI_QUEUE, 202 },
		};
		thread_result = drain("thread", e, ARRAY_SIZE(e));
	}
	return NULL;
}

static int handled[4], nhandled;

static void on_rt(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if (nhandled < 4)
		handled[nhandled++] = si->si_value.sival_int;
}

static int queue(int sig, int value)
{
	union sigval v = { .sival_int = value };

	if (sigqueue(getpid(), sig, v)) {
		pr_perror("sigqueue(%d)", sig);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long long shd, pnd_main, pnd_thread;
	struct sigaction sa = { .sa_sigaction = on_rt, .sa_flags = SA_SIGINFO };
	sigset_t block, rt5;
	pthread_t th;
	int bad = 0;

	test_init(argc, argv);
	sigfillset(&block);
	sigdelset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, NULL);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGRTMIN + 5, &sa, NULL);
	if (pthread_create(&th, NULL, run, NULL)) {
		pr_err("pthread_create failed\n");
		return 1;
	}
	futex_wait_until(&ready, 1);

	/* process-directed (shared) */
	kill(getpid(), SIGUSR1);
	kill(getpid(), SIGUSR1);
	if (queue(SIGRTMIN + 2, 100) || queue(SIGRTMIN + 2, 101) || queue(SIGRTMIN + 1, 102) ||
	    queue(SIGRTMIN + 2, 103) || queue(SIGRTMIN + 5, 500) || queue(SIGRTMIN + 5, 501))
		return 1;
	/* thread-directed */
	if (syscall(SYS_tgkill, getpid(), thread_tid, SIGUSR2) ||
	    pthread_sigqueue(th, SIGRTMIN + 3, (union sigval){ .sival_int = 200 }) ||
	    pthread_sigqueue(th, SIGRTMIN + 3, (union sigval){ .sival_int = 201 }) ||
	    pthread_sigqueue(th, SIGRTMIN + 4, (union sigval){ .sival_int = 202 }) ||
	    pthread_sigqueue(pthread_self(), SIGRTMIN + 4, (union sigval){ .sival_int = 300 })) {
		pr_perror("tgkill/pthread_sigqueue");
		return 1;
	}
	shd = status_mask(getpid(), "ShdPnd:");
	pnd_main = status_mask(getpid(), "SigPnd:");
	pnd_thread = status_mask(thread_tid, "SigPnd:");

	test_daemon();
	test_waitsig();

	if (status_mask(getpid(), "ShdPnd:") != shd || status_mask(getpid(), "SigPnd:") != pnd_main ||
	    status_mask(thread_tid, "SigPnd:") != pnd_thread) {
		fail("pending sets: shared %llx main %llx thread %llx, were %llx %llx %llx",
		     status_mask(getpid(), "ShdPnd:"), status_mask(getpid(), "SigPnd:"),
		     status_mask(thread_tid, "SigPnd:"), shd, pnd_main, pnd_thread);
		bad = 1;
	}

	/* first the two handled ones: unblocking delivers both, in queueing order */
	sigemptyset(&rt5);
	sigaddset(&rt5, SIGRTMIN + 5);
	sigprocmask(SIG_UNBLOCK, &rt5, NULL);
	sigprocmask(SIG_BLOCK, &rt5, NULL);
	if (nhandled != 2 || handled[0] != 500 || handled[1] != 501) {
		fail("handler got %d signals (%d, %d), expected 500, 501", nhandled, handled[0],
		     handled[1]);
		bad = 1;
	}
	{
		const struct expect e[] = {
			{ SIGRTMIN + 4, SI_QUEUE, 300 },   /* private to the main thread */
			{ SIGUSR1, SI_USER, 0 },           /* shared, standard: once */
			{ SIGRTMIN + 1, SI_QUEUE, 102 },
			{ SIGRTMIN + 2, SI_QUEUE, 100 },
			{ SIGRTMIN + 2, SI_QUEUE, 101 },
			{ SIGRTMIN + 2, SI_QUEUE, 103 },
		};
		bad |= drain("main thread", e, ARRAY_SIZE(e));
	}
	futex_set_and_wake(&go, 1);
	pthread_join(th, NULL);
	bad |= thread_result;
	if (!bad)
		pass();
	return 0;
}
