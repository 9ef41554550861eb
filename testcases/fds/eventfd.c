/*
 * eventfd: a plain eventfd holding 5 (and a dup of it), an EFD_SEMAPHORE one
 * holding 3 (with EFD_CLOEXEC), an EFD_NONBLOCK one holding 0 and a
 * non-blocking one holding a counter near the 64-bit maximum. After restore:
 * the counters are as they were (fdinfo "eventfd-count:" and read()), the
 * plain read returns the whole counter and zeroes it, the semaphore one
 * returns 1 per read and decrements until it is no longer readable, the
 * EFD_NONBLOCK one has O_NONBLOCK in F_GETFL and fails a read with EAGAIN,
 * the big counter refuses an overflowing write with EAGAIN, the dup still
 * shares its eventfd, and FD_CLOEXEC is only on the EFD_CLOEXEC one.
 */
#include <sys/eventfd.h>

#include "fdinfo.h"

const char *test_doc = "eventfd counters, EFD_SEMAPHORE and EFD_NONBLOCK are kept";

#define BIG 0xfffffffffffff000ull

static int bad;

static uint64_t count_of(int fd)
{
	char val[64];

	if (fdinfo_field(fd, "eventfd-count:", val, sizeof(val))) {
		fail("fd %d: no eventfd-count in fdinfo", fd);
		bad = 1;
		return ~0ull;
	}
	return strtoull(val, NULL, 16);
}

static void expect_count(int fd, uint64_t want, const char *what)
{
	uint64_t got = count_of(fd);

	if (got != want) {
		fail("%s: eventfd-count %#llx, expected %#llx", what, (unsigned long long)got,
		     (unsigned long long)want);
		bad = 1;
	}
}

static void expect_read(int fd, uint64_t want, const char *what)
{
	uint64_t v = 0;

	if (read(fd, &v, sizeof(v)) != sizeof(v) || v != want) {
		fail("%s: read gave %#llx, expected %#llx", what, (unsigned long long)v,
		     (unsigned long long)want);
		bad = 1;
	}
}

static void expect_write(int fd, uint64_t v, const char *what)
{
	if (write(fd, &v, sizeof(v)) != sizeof(v)) {
		fail("%s: write of %#llx", what, (unsigned long long)v);
		bad = 1;
	}
}

int main(int argc, char **argv)
{
	int plain, plain_dup, sem, nb, big, i;
	uint64_t v;

	test_init(argc, argv);
	plain = eventfd(5, 0);
	sem = eventfd(3, EFD_SEMAPHORE | EFD_CLOEXEC);
	nb = eventfd(0, EFD_NONBLOCK);
	big = eventfd(0, EFD_NONBLOCK);
	plain_dup = dup(plain);
	if (plain < 0 || sem < 0 || nb < 0 || big < 0 || plain_dup < 0) {
		pr_perror("eventfd");
		return 1;
	}
	v = BIG;
	if (write(big, &v, sizeof(v)) != sizeof(v)) {
		pr_perror("write big");
		return 1;
	}

	test_daemon();
	test_waitsig();

	bad |= fd_flags_are(plain, O_RDWR, 0, "plain");
	bad |= fd_flags_are(sem, O_RDWR, FD_CLOEXEC, "semaphore");
	bad |= fd_flags_are(nb, O_RDWR | O_NONBLOCK, 0, "nonblock");
	bad |= fd_flags_are(big, O_RDWR | O_NONBLOCK, 0, "big");

	/* the plain one: whole counter, then zero; the dup is the same eventfd */
	expect_count(plain, 5, "plain");
	expect_count(plain_dup, 5, "plain dup");
	expect_read(plain, 5, "plain");
	expect_count(plain, 0, "plain after read");
	if (fd_readable(plain)) {
		fail("plain: readable with a zero counter");
		bad = 1;
	}
	expect_write(plain_dup, 11, "plain dup");
	expect_read(plain, 11, "plain after a write through the dup");

	/* EFD_SEMAPHORE: 1 per read, decrementing */
	expect_count(sem, 3, "semaphore");
	for (i = 2; i >= 0; i--) {
		expect_read(sem, 1, "semaphore");
		expect_count(sem, i, "semaphore after a read");
	}
	if (fd_readable(sem)) {
		fail("semaphore: readable with a zero counter");
		bad = 1;
	}

	/* EFD_NONBLOCK with nothing in it */
	expect_count(nb, 0, "nonblock");
	errno = 0;
	if (read(nb, &v, sizeof(v)) != -1 || errno != EAGAIN) {
		fail("nonblock: read of an empty eventfd did not fail with EAGAIN");
		bad = 1;
	}
	expect_write(nb, 7, "nonblock");
	expect_read(nb, 7, "nonblock");

	/* near the maximum: one more 0x1000 would overflow */
	expect_count(big, BIG, "big");
	v = 0x1000;
	errno = 0;
	if (write(big, &v, sizeof(v)) != -1 || errno != EAGAIN) {
		fail("big: an overflowing write did not fail with EAGAIN");
		bad = 1;
	}
	expect_write(big, 0xffe, "big");
	expect_read(big, BIG + 0xffe, "big");

	if (!bad)
		pass();
	return 0;
}
