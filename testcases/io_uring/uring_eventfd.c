/*
 * Eventfds registered with rings:
 *  - ring A: 1000 NOPs went through it, then IORING_REGISTER_EVENTFD of an
 *    eventfd (EFD_NONBLOCK) that stays open as efd_a, then 5 NOPs, each in an
 *    io_uring_enter() of its own (the kernel signals once per batch of
 *    completions it posts): efd_a counts 5, unread;
 *  - ring B: IORING_REGISTER_EVENTFD_ASYNC of another eventfd (EFD_NONBLOCK),
 *    which is also in B's registered file table (slot 0) - the only way left
 *    to read it once its fd is closed. 800 NOPs went through B (completed
 *    inline: not signalled with EVENTFD_ASYNC; read() of the fd says so);
 *    then, the fd still open, 7 was written with write(), read back through
 *    slot 0 (a READ), and read() tells whether that READ's completion was
 *    signalled; then 7 was written again with write(), the fd closed, and one
 *    NOP with IOSQE_ASYNC, which completes in an io-wq worker and is
 *    signalled, went through B: the count is 8.
 *
 * After restore (each ring's positions are those of the checkpoint):
 *  - A: efd_a reads 5; a NOP makes it 1; IORING_UNREGISTER_EVENTFD succeeds,
 *    a second one fails with ENXIO, and a NOP leaves efd_a at 0;
 *  - B: an inline NOP, then a READ through slot 0 gives 8 (7 written plus the
 *    async NOP; the inline NOP was not signalled); a NOP with IOSQE_ASYNC
 *    makes it 1, and a READ with RWF_NOWAIT then gives -EAGAIN (0);
 *    IORING_UNREGISTER_EVENTFD succeeds, a second one fails with ENXIO.
 *    The counts of B are only checked where the READ through slot 0 was not
 *    signalled before the checkpoint: before 5.12 the reads and writes of an
 *    eventfd through io_uring go to io-wq, and their own completions are
 *    signalled.
 * (6.18: EVENTFD_ASYNC signals only completions posted by an io-wq worker;
 * neither inline completions nor task-work ones, e.g. a polled READ.)
 */
#include <sys/eventfd.h>

#include "uringcheck.h"

const char *test_doc = "Eventfds registered with rings, plain and EVENTFD_ASYNC, fd kept or closed";

static struct ring a, b;
static struct ring_pos pos_a, pos_b;
static int efd_a, b_inline;

/* One NOP (IOSQE_ASYNC: in an io-wq worker) on ring r. */
static int nop(struct ring *r, int async, const char *what)
{
	struct io_uring_sqe sqe = {};

	prep_nop(&sqe, async ? 0xa5c : 0x505);
	if (async)
		sqe.flags = IOSQE_ASYNC;
	return ring_op_is(r, &sqe, 0, what);
}

/* efd_a's count is want (0: nothing to read); fail() and 1 otherwise. */
static int count_a_is(uint64_t want, const char *what)
{
	uint64_t v = 0;
	ssize_t n = read(efd_a, &v, sizeof(v));

	if (want ? n == sizeof(v) && v == want : n == -1 && errno == EAGAIN)
		return 0;
	fail("%s: efd_a read %zd bytes: %llu, expected %llu", what, n, (unsigned long long)v,
	     (unsigned long long)want);
	return 1;
}

/* B's eventfd, read through slot 0, counts want (0: the READ, RWF_NOWAIT, gives -EAGAIN). */
static int count_b_is(uint64_t want, const char *what)
{
	struct io_uring_sqe sqe = {};
	uint64_t v = 0;

	prep_read(&sqe, 0, &v, sizeof(v), 0, 0xbead);
	sqe.flags = IOSQE_FIXED_FILE;
	/*
	 * a count of 0 must not wait: RWF_NOWAIT (O_NONBLOCK is not enough, io_uring
	 * answers it by waiting for the file to be ready)
	 */
	if (!want)
		sqe.rw_flags = RWF_NOWAIT;
	if (ring_op_is(&b, &sqe, want ? (int)sizeof(v) : -EAGAIN, what))
		return 1;
	if (v != want) {
		fail("%s: B's eventfd read %llu, expected %llu", what, (unsigned long long)v,
		     (unsigned long long)want);
		return 1;
	}
	return 0;
}

static int setup(void)
{
	uint64_t seven = 7, v = 0;
	int efd_b, i;

	if (ring_setup(&a, 8, NULL) || ring_setup(&b, 8, NULL)) {
		pr_perror("io_uring_setup");
		return 1;
	}
	efd_a = eventfd(0, EFD_NONBLOCK);
	efd_b = eventfd(0, EFD_NONBLOCK);
	if (efd_a < 0 || efd_b < 0) {
		pr_perror("eventfd");
		return 1;
	}

	if (ring_nops(&a, 1000, "A: the NOPs before"))
		return 1;
	if (sys_io_uring_register(a.fd, IORING_REGISTER_EVENTFD, &efd_a, 1)) {
		pr_perror("IORING_REGISTER_EVENTFD");
		return 1;
	}
	for (i = 0; i < 5; i++)
		if (nop(&a, 0, "A: a NOP before"))
			return 1;

	if (sys_io_uring_register(b.fd, IORING_REGISTER_EVENTFD_ASYNC, &efd_b, 1) ||
	    sys_io_uring_register(b.fd, IORING_REGISTER_FILES, &efd_b, 1)) {
		pr_perror("IORING_REGISTER_EVENTFD_ASYNC or _FILES");
		return 1;
	}
	if (ring_nops(&b, 800, "B: the NOPs before"))
		return 1;
	if (read(efd_b, &v, sizeof(v)) != -1 || errno != EAGAIN) {
		pr_err("B: inline NOPs were signalled with EVENTFD_ASYNC: %llu\n",
		       (unsigned long long)v);
		return 1;
	}
	/* is a READ of the eventfd through the ring completed inline (not signalled)? */
	if (write(efd_b, &seven, sizeof(seven)) != sizeof(seven) ||
	    count_b_is(7, "B: the READ before"))
		return 1;
	b_inline = read(efd_b, &v, sizeof(v)) == -1 && errno == EAGAIN;
	if (!b_inline)
		pr_info("B: a READ of the eventfd through the ring was signalled (it went to "
			"io-wq): B's counts are not checked\n");
	if (write(efd_b, &seven, sizeof(seven)) != sizeof(seven)) {
		pr_perror("write to B's eventfd");
		return 1;
	}
	close(efd_b);
	if (nop(&b, 1, "B: an async NOP before"))
		return 1;
	ring_save_pos(&a, &pos_a);
	ring_save_pos(&b, &pos_b);
	return 0;
}

static int check(void)
{
	if (ring_check(&a, &pos_a, "A after restore") || ring_check(&b, &pos_b, "B after restore"))
		return 1;

	if (count_a_is(5, "A after restore") || nop(&a, 0, "A: a NOP after restore") ||
	    count_a_is(1, "A after a NOP"))
		return 1;
	if (register_is(a.fd, IORING_UNREGISTER_EVENTFD, NULL, 0, 0, NULL, "A: unregister") ||
	    register_is(a.fd, IORING_UNREGISTER_EVENTFD, NULL, 0, ENXIO, NULL,
			"A: unregister again"))
		return 1;
	if (nop(&a, 0, "A: a NOP after unregistering") ||
	    count_a_is(0, "A after unregistering and a NOP"))
		return 1;

	if (b_inline && (nop(&b, 0, "B: an inline NOP after restore") ||
			 count_b_is(8, "B after restore and an inline NOP") ||
			 nop(&b, 1, "B: an async NOP after restore") ||
			 count_b_is(1, "B after an async NOP") || count_b_is(0, "B read again")))
		return 1;
	return register_is(b.fd, IORING_UNREGISTER_EVENTFD, NULL, 0, 0, NULL, "B: unregister") ||
	       register_is(b.fd, IORING_UNREGISTER_EVENTFD, NULL, 0, ENXIO, NULL,
			   "B: unregister again");
}

int main(int argc, char **argv)
{
	return uring_test_main(argc, argv, setup, check);
}
