/*
 * timerfd: a CLOCK_MONOTONIC one armed for 100 s with a 7.25 s interval, a
 * CLOCK_REALTIME one armed with TFD_TIMER_ABSTIME for an absolute time 200 s
 * ahead (TFD_NONBLOCK), a CLOCK_MONOTONIC one-shot that expired before the
 * checkpoint and was not read (TFD_CLOEXEC), and a disarmed CLOCK_BOOTTIME
 * one (TFD_NONBLOCK). After restore (timerfd_gettime and fdinfo):
 * - monotonic: interval exactly 7.25 s, remaining time in (0, 100 s] and
 *   not less than 100 s minus the time that passed (1 s tolerance);
 * - realtime: fdinfo "clockid: 0" and "settime flags: 01", and it still
 *   expires at the same absolute time (now + remaining within 1 s), no
 *   interval;
 * - expired: read() returns 1 expiration, then it is disarmed;
 * - disarmed: all zeros, read() fails with EAGAIN;
 * - every fd has its clock id, O_NONBLOCK and FD_CLOEXEC as created.
 */
#include <poll.h>
#include <sys/timerfd.h>

#include "fdinfo.h"

const char *test_doc = "timerfd clocks, remaining times, intervals, TFD_TIMER_ABSTIME and ticks are kept";

static int bad;

static double ts_sec(const struct timespec *ts)
{
	return ts->tv_sec + ts->tv_nsec / 1e9;
}

static void expect_fdinfo(int fd, const char *key, long want, int base, const char *what)
{
	char val[64];

	if (fdinfo_field(fd, key, val, sizeof(val))) {
		fail("%s: no %s in fdinfo", what, key);
		bad = 1;
	} else if (strtol(val, NULL, base) != want) {
		fail("%s: fdinfo %s %s, expected %ld", what, key, val, want);
		bad = 1;
	}
}

static int gettime(int fd, struct itimerspec *its, const char *what)
{
	if (timerfd_gettime(fd, its)) {
		fail("%s: timerfd_gettime", what);
		bad = 1;
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct itimerspec its, mono_set = { { 7, 250000000 }, { 100, 0 } };
	struct itimerspec shot = { { 0, 0 }, { 0, 1000 } };
	struct pollfd p;
	double t0, target, rem, elapsed;
	uint64_t ticks;
	int mono, real, expired, disarmed;

	test_init(argc, argv);
	mono = timerfd_create(CLOCK_MONOTONIC, 0);
	real = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
	expired = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	disarmed = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK);
	if (mono < 0 || real < 0 || expired < 0 || disarmed < 0) {
		pr_perror("timerfd_create");
		return 1;
	}
	t0 = now_mono();
	if (timerfd_settime(mono, 0, &mono_set, NULL)) {
		pr_perror("timerfd_settime mono");
		return 1;
	}
	memset(&its, 0, sizeof(its));
	clock_gettime(CLOCK_REALTIME, &its.it_value);
	its.it_value.tv_sec += 200;
	target = ts_sec(&its.it_value);
	if (timerfd_settime(real, TFD_TIMER_ABSTIME, &its, NULL)) {
		pr_perror("timerfd_settime realtime");
		return 1;
	}
	if (timerfd_settime(expired, 0, &shot, NULL)) {
		pr_perror("timerfd_settime one-shot");
		return 1;
	}
	p.fd = expired;
	p.events = POLLIN;
	if (poll(&p, 1, 5000) != 1) {   /* it expired: one tick waits to be read */
		pr_perror("the one-shot timer did not expire");
		return 1;
	}

	test_daemon();
	test_waitsig();

	bad |= fd_flags_are(mono, O_RDWR, 0, "monotonic");
	bad |= fd_flags_are(real, O_RDWR | O_NONBLOCK, 0, "realtime");
	bad |= fd_flags_are(expired, O_RDWR, FD_CLOEXEC, "expired");
	bad |= fd_flags_are(disarmed, O_RDWR | O_NONBLOCK, 0, "disarmed");
	expect_fdinfo(mono, "clockid:", CLOCK_MONOTONIC, 10, "monotonic");
	expect_fdinfo(real, "clockid:", CLOCK_REALTIME, 10, "realtime");
	expect_fdinfo(expired, "clockid:", CLOCK_MONOTONIC, 10, "expired");
	expect_fdinfo(disarmed, "clockid:", CLOCK_BOOTTIME, 10, "disarmed");
	expect_fdinfo(mono, "settime flags:", 0, 8, "monotonic");
	expect_fdinfo(real, "settime flags:", TFD_TIMER_ABSTIME, 8, "realtime");

	/* monotonic: exact interval, a plausible remaining time */
	if (!gettime(mono, &its, "monotonic")) {
		elapsed = now_mono() - t0;
		rem = ts_sec(&its.it_value);
		if (its.it_interval.tv_sec != 7 || its.it_interval.tv_nsec != 250000000) {
			fail("monotonic: interval %ld.%09ld, expected 7.250000000",
			     (long)its.it_interval.tv_sec, its.it_interval.tv_nsec);
			bad = 1;
		}
		if (rem <= 0 || rem > 100.0 || rem < 100.0 - elapsed - 1.0) {
			fail("monotonic: %.3f s left, expected between %.3f and 100 (%.3f s passed)", rem,
			     100.0 - elapsed - 1.0, elapsed);
			bad = 1;
		}
	}
	/* realtime, absolute: the same deadline */
	if (!gettime(real, &its, "realtime")) {
		rem = ts_sec(&its.it_value);
		if (its.it_interval.tv_sec || its.it_interval.tv_nsec) {
			fail("realtime: an interval appeared");
			bad = 1;
		}
		if (rem <= 0 || clock_seconds(CLOCK_REALTIME) + rem - target > 1.0 ||
		    clock_seconds(CLOCK_REALTIME) + rem - target < -1.0) {
			fail("realtime: expires %.3f s from now, at %.3f, expected at %.3f", rem,
			     clock_seconds(CLOCK_REALTIME) + rem, target);
			bad = 1;
		}
	}
	errno = 0;
	if (read(real, &ticks, sizeof(ticks)) != -1 || errno != EAGAIN) {
		fail("realtime: a read before expiry did not fail with EAGAIN");
		bad = 1;
	}

	/* the unread expiration of the one-shot */
	expect_fdinfo(expired, "ticks:", 1, 10, "expired");
	ticks = 0;
	if (read(expired, &ticks, sizeof(ticks)) != sizeof(ticks) || ticks != 1) {
		fail("expired: read gave %llu expirations, expected 1", (unsigned long long)ticks);
		bad = 1;
	}
	if (!gettime(expired, &its, "expired") &&
	    (its.it_value.tv_sec || its.it_value.tv_nsec || its.it_interval.tv_sec ||
	     its.it_interval.tv_nsec)) {
		fail("expired: armed again (%ld.%09ld s)", (long)its.it_value.tv_sec,
		     its.it_value.tv_nsec);
		bad = 1;
	}

	/* disarmed */
	if (!gettime(disarmed, &its, "disarmed") &&
	    (its.it_value.tv_sec || its.it_value.tv_nsec || its.it_interval.tv_sec ||
	     its.it_interval.tv_nsec)) {
		fail("disarmed: armed (%ld.%09ld s)", (long)its.it_value.tv_sec, its.it_value.tv_nsec);
		bad = 1;
	}
	errno = 0;
	if (read(disarmed, &ticks, sizeof(ticks)) != -1 || errno != EAGAIN) {
		fail("disarmed: a read did not fail with EAGAIN");
		bad = 1;
	}

	if (!bad)
		pass();
	return 0;
}
