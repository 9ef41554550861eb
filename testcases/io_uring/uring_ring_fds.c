/*
 * Registered ring fds (IORING_REGISTER_RING_FDS), which belong to a thread,
 * not to the process: a ring (fd kept too) that has been through 600 NOPs is
 * registered by the main thread at index MAIN_IDX (5) and by a second thread
 * at index THREAD_IDX (11). The main thread's last NOP was submitted through
 * its index and its CQE (OLD_NOP) is not consumed. The second thread waits
 * (in read() of a pipe) across the checkpoint.
 *
 * After restore (positions as at the checkpoint, the old CQE exactly there):
 *  - main thread: io_uring_enter(MAIN_IDX, IORING_ENTER_REGISTERED_RING)
 *    submits a NOP; THREAD_IDX (registered by the other thread only) and 3
 *    (never registered) give EBADF, 16 (past the table) EINVAL; where the
 *    kernel has IORING_FEAT_REG_REG_RING (6.3), io_uring_register() through
 *    MAIN_IDX (IORING_REGISTER_USE_REGISTERED_RING) works; the plain fd works;
 *  - second thread: io_uring_enter(THREAD_IDX, REGISTERED_RING) submits a NOP,
 *    MAIN_IDX gives EBADF; IORING_UNREGISTER_RING_FDS of THREAD_IDX returns 1
 *    and THREAD_IDX then gives EBADF.
 */
#include <pthread.h>

#include "uringcheck.h"

const char *test_doc = "Registered ring fds, per thread";

#define MAIN_IDX 5
#define THREAD_IDX 11
#define OLD_NOP 0x7e6000000000001ull

static struct ring r;
static struct ring_pos pos;
static int go[2], ready[2], registered[2];

static int enter_idx(unsigned idx, unsigned to_submit, unsigned wait_nr)
{
	ring_flush(&r);
	return sys_io_uring_enter(idx, to_submit, wait_nr,
				  IORING_ENTER_REGISTERED_RING |
				  (wait_nr ? IORING_ENTER_GETEVENTS : 0), NULL, 0);
}

/* A NOP submitted and waited for through registered index idx. */
static int nop_idx(unsigned idx, uint64_t ud, const char *what)
{
	unsigned head = *r.cq_head;
	int ret;

	prep_nop(sqe_or_die(&r), ud);
	ret = enter_idx(idx, 1, 1);
	if (ret != 1) {
		fail("%s: io_uring_enter(index %u, REGISTERED_RING, 1 to submit) returned %d", what,
		     idx, ret);
		return 1;
	}
	return pop_cqe_is(&r, head, ud, 0, 0, what);
}

/* io_uring_enter() through index idx fails with err (nothing to submit). */
static int idx_fails(unsigned idx, int err, const char *what)
{
	int ret = enter_idx(idx, 0, 0);

	if (ret == -1 && errno == err)
		return 0;
	fail("%s: io_uring_enter(index %u, REGISTERED_RING) returned %d, expected %s", what, idx,
	     ret, strerror(err));
	return 1;
}

static int register_idx(unsigned idx)
{
	struct io_uring_rsrc_update up = { .offset = idx, .data = r.fd };
	int ret = sys_io_uring_register(r.fd, IORING_REGISTER_RING_FDS, &up, 1);

	if (ret != 1 || up.offset != idx) {
		pr_perror("IORING_REGISTER_RING_FDS at %u: %d (offset %u)", idx, ret, up.offset);
		return 1;
	}
	return 0;
}

static void *other_thread(void *arg)
{
	struct io_uring_rsrc_update up = { .offset = THREAD_IDX };
	int *bad = arg, ret;
	char c;

	registered[1] = !register_idx(THREAD_IDX);
	if (write(ready[1], "r", 1) != 1)	/* registered (or not) */
		pr_perror("write");
	if (!registered[1])
		return NULL;
	while ((ret = read(go[0], &c, 1)) < 0 && errno == EINTR)
		;
	if (ret != 1 || c != 'g') {
		pr_perror("the second thread's read: %d", ret);
		return NULL;
	}
	/* after restore */
	if (nop_idx(THREAD_IDX, 0x7e6000000000011ull, "the thread through its index") ||
	    idx_fails(MAIN_IDX, EBADF, "the thread through the main thread's index"))
		return NULL;
	ret = sys_io_uring_register(r.fd, IORING_UNREGISTER_RING_FDS, &up, 1);
	if (ret != 1) {
		fail("the thread's IORING_UNREGISTER_RING_FDS of %d returned %d", THREAD_IDX, ret);
		return NULL;
	}
	if (idx_fails(THREAD_IDX, EBADF, "the thread through its unregistered index"))
		return NULL;
	*bad = 0;
	return NULL;
}

static int check(void)
{
	struct io_uring_sqe sqe = {};
	int ret;

	if (ring_check(&r, &pos, "after restore") ||
	    pop_cqe_is(&r, pos.cq_head, OLD_NOP, 0, 0, "the old NOP"))
		return 1;
	if (nop_idx(MAIN_IDX, 0x7e6000000000021ull, "the main thread through its index") ||
	    idx_fails(THREAD_IDX, EBADF, "the main thread through the other thread's index") ||
	    idx_fails(3, EBADF, "the main thread through index 3") ||
	    idx_fails(16, EINVAL, "the main thread through index 16"))
		return 1;
	if (r.p.features & IORING_FEAT_REG_REG_RING) {
		size_t size = sizeof(struct io_uring_probe) + 64 * sizeof(struct io_uring_probe_op);
		void *probe = calloc(1, size);

		ret = sys_io_uring_register(MAIN_IDX,
					    IORING_REGISTER_PROBE | IORING_REGISTER_USE_REGISTERED_RING,
					    probe, 64);
		free(probe);
		if (ret) {
			fail("io_uring_register(index %d, PROBE | USE_REGISTERED_RING) returned %d",
			     MAIN_IDX, ret);
			return 1;
		}
	}
	prep_nop(&sqe, 0x7e6000000000031ull);
	return ring_op_is(&r, &sqe, 0, "a NOP through the ring's fd");
}

int main(int argc, char **argv)
{
	int thread_bad = 1, bad;
	pthread_t t;
	char c;

	test_init(argc, argv);
	if (pipe(go) || pipe(ready) || ring_setup(&r, 8, NULL)) {
		pr_perror("pipe or io_uring_setup");
		return 1;
	}
	if (ring_nops(&r, 600, "the NOPs before") || register_idx(MAIN_IDX))
		return 1;
	if (pthread_create(&t, NULL, other_thread, &thread_bad)) {
		pr_perror("pthread_create");
		return 1;
	}
	if (read(ready[0], &c, 1) != 1 || !registered[1]) {
		pr_err("the second thread did not register the ring\n");
		return 1;
	}
	prep_nop(sqe_or_die(&r), OLD_NOP);
	if (enter_idx(MAIN_IDX, 1, 1) != 1) {
		pr_perror("the last NOP, through index %d", MAIN_IDX);
		return 1;
	}
	ring_save_pos(&r, &pos);

	test_daemon();
	test_waitsig();

	bad = check();
	/* the thread's turn, then the main thread's index must still work */
	if (write(go[1], "g", 1) != 1 || pthread_join(t, NULL)) {
		pr_perror("waking the second thread");
		return 1;
	}
	if (!bad && !thread_bad &&
	    !nop_idx(MAIN_IDX, 0x7e6000000000041ull, "the main thread at the end"))
		pass();
	return 0;
}
