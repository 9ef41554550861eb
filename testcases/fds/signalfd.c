/*
 * signalfd: one for {SIGUSR1, SIGRTMIN+2} with SFD_NONBLOCK | SFD_CLOEXEC and
 * one for {SIGUSR2} without flags; the signals are blocked, and a SIGUSR2
 * with a payload (sigqueue) is pending when the checkpoint is taken. After
 * restore: each fd's fdinfo "sigmask:" is its mask, the first has O_NONBLOCK
 * and FD_CLOEXEC and the second neither, the pending SIGUSR2 is read through
 * the second with its payload, the first reads nothing (EAGAIN), and signals
 * raised after the restore are read through the fd whose mask has them
 * (SIGUSR1 and SIGRTMIN+2 through the first, never through the second).
 */
#include <signal.h>
#include <sys/signalfd.h>

#include "fdinfo.h"

const char *test_doc = "signalfd masks and flags are kept and signals still read through them";

static int bad;

static unsigned long long mask_bits(const int *sigs, int n)
{
	unsigned long long m = 0;
	int i;

	for (i = 0; i < n; i++)
		m |= 1ull << (sigs[i] - 1);
	return m;
}

static void expect_mask(int fd, unsigned long long want, const char *what)
{
	char val[64];

	if (fdinfo_field(fd, "sigmask:", val, sizeof(val))) {
		fail("%s: no sigmask in fdinfo", what);
		bad = 1;
	} else if (strtoull(val, NULL, 16) != want) {
		fail("%s: sigmask %s, expected %016llx", what, val, want);
		bad = 1;
	}
}

/* Read one signal through fd (which must be readable) and check its number (and payload). */
static void expect_signal(int fd, int sig, int check_value, int value, const char *what)
{
	struct signalfd_siginfo si;

	if (!fd_readable(fd)) {
		fail("%s: nothing to read", what);
		bad = 1;
		return;
	}
	memset(&si, 0, sizeof(si));
	if (read(fd, &si, sizeof(si)) != sizeof(si)) {
		fail("%s: read", what);
		bad = 1;
		return;
	}
	if ((int)si.ssi_signo != sig || (check_value && (si.ssi_int != value ||
							  si.ssi_code != SI_QUEUE ||
							  (pid_t)si.ssi_pid != getpid()))) {
		fail("%s: got signal %u code %d value %d from %u, expected %d value %d", what,
		     si.ssi_signo, si.ssi_code, si.ssi_int, si.ssi_pid, sig, value);
		bad = 1;
	}
}

int main(int argc, char **argv)
{
	int sigs1[] = { SIGUSR1, SIGRTMIN + 2 }, sigs2[] = { SIGUSR2 };
	sigset_t m1, m2, all;
	union sigval sv = { .sival_int = 0x5eed };
	struct signalfd_siginfo si;
	int fd1, fd2;

	test_init(argc, argv);
	sigemptyset(&m1);
	sigaddset(&m1, SIGUSR1);
	sigaddset(&m1, SIGRTMIN + 2);
	sigemptyset(&m2);
	sigaddset(&m2, SIGUSR2);
	sigemptyset(&all);
	sigaddset(&all, SIGUSR1);
	sigaddset(&all, SIGUSR2);
	sigaddset(&all, SIGRTMIN + 2);
	if (sigprocmask(SIG_BLOCK, &all, NULL)) {
		pr_perror("sigprocmask");
		return 1;
	}
	fd1 = signalfd(-1, &m1, SFD_NONBLOCK | SFD_CLOEXEC);
	fd2 = signalfd(-1, &m2, 0);
	if (fd1 < 0 || fd2 < 0) {
		pr_perror("signalfd");
		return 1;
	}
	if (sigqueue(getpid(), SIGUSR2, sv)) {
		pr_perror("sigqueue");
		return 1;
	}

	test_daemon();
	test_waitsig();

	expect_mask(fd1, mask_bits(sigs1, 2), "fd1");
	expect_mask(fd2, mask_bits(sigs2, 1), "fd2");
	bad |= fd_flags_are(fd1, O_RDWR | O_NONBLOCK, FD_CLOEXEC, "fd1");
	bad |= fd_flags_are(fd2, O_RDWR, 0, "fd2");

	/* the signal queued before the checkpoint */
	if (fd_readable(fd1)) {
		fail("fd1 is readable: it should see nothing pending");
		bad = 1;
	}
	errno = 0;
	if (read(fd1, &si, sizeof(si)) != -1 || errno != EAGAIN) {
		fail("fd1: a read with nothing pending did not fail with EAGAIN");
		bad = 1;
	}
	expect_signal(fd2, SIGUSR2, 1, 0x5eed, "the SIGUSR2 queued before the checkpoint");

	/* new signals go to the fd whose mask has them */
	sv.sival_int = 77;
	if (kill(getpid(), SIGUSR1) || sigqueue(getpid(), SIGRTMIN + 2, sv)) {
		pr_perror("kill");
		return 1;
	}
	if (fd_readable(fd2)) {
		fail("fd2 is readable: SIGUSR1 / SIGRTMIN+2 are not in its mask");
		bad = 1;
	}
	expect_signal(fd1, SIGUSR1, 0, 0, "SIGUSR1 after the restore");
	expect_signal(fd1, SIGRTMIN + 2, 1, 77, "SIGRTMIN+2 after the restore");
	if (kill(getpid(), SIGUSR2)) {
		pr_perror("kill");
		return 1;
	}
	if (fd_readable(fd1)) {
		fail("fd1 is readable: SIGUSR2 is not in its mask");
		bad = 1;
	}
	expect_signal(fd2, SIGUSR2, 0, 0, "SIGUSR2 after the restore");

	if (!bad)
		pass();
	return 0;
}
