/*
 * A plain ring (flags 0, 8 SQ entries, 16 CQ entries) far from its start,
 * with completions not yet consumed and SQEs the kernel has not yet seen:
 *  - 3000 NOPs have gone through it (375 laps of the SQ ring);
 *  - then a NOP (user_data OLD_NOP1), a READ of 16 bytes from a pipe that
 *    held exactly them (OLD_READ, res 16) and a NOP (OLD_NOP2), each submitted
 *    and waited for by an io_uring_enter() of its own: their 3 CQEs are still
 *    in the CQ ring, at positions 3000, 3001, 3002;
 *  - then a NOP (NEW_NOP) and a WRITE of 14 bytes into a second pipe
 *    (NEW_WRITE) were written as SQEs and the SQ tail stored (3005), but
 *    io_uring_enter() was not called: the kernel's SQ head is 3003.
 *
 * After restore: ring memory shows the same sizes, SQ head 3003, SQ tail
 * 3005, CQ head 3000, CQ tail 3003; the 3 old CQEs are exactly there
 * (user_data, res, flags 0) and the READ's buffer holds the pipe's bytes,
 * which left the pipe; the second pipe is empty. io_uring_enter(2 to submit)
 * returns 2, the 2 pending SQEs complete at positions 3003 and 3004 (NEW_NOP
 * with 0, NEW_WRITE with 14, in either order: before 6.2 a pipe write goes to
 * io-wq) and the WRITE's bytes come out of the second pipe.
 * Then 20 more NOPs go round at their exact positions, ending at 3025.
 */
#include "uringcheck.h"

const char *test_doc = "A ring's positions, unconsumed CQEs and submitted-but-not-entered SQEs";

#define BURN 3000
#define OLD_NOP1 0x0101010101010101ull
#define OLD_READ 0x0202020202020202ull
#define OLD_NOP2 0x0303030303030303ull
#define NEW_NOP 0x0404040404040404ull
#define NEW_WRITE 0x0505050505050505ull

static const char in_bytes[16] = "bytes-read-early";
static const char out_bytes[14] = "written-later!";

static struct ring r;
static struct ring_pos pos;
static int in_pipe[2], out_pipe[2];
static char read_buf[64];

static int setup(void)
{
	int ret;

	if (pipe(in_pipe) || pipe(out_pipe)) {
		pr_perror("pipe");
		return 1;
	}
	if (write(in_pipe[1], in_bytes, sizeof(in_bytes)) != sizeof(in_bytes)) {
		pr_perror("write to the pipe");
		return 1;
	}
	if (ring_setup(&r, 8, NULL)) {
		pr_perror("io_uring_setup(8)");
		return 1;
	}
	if (r.p.sq_entries != 8 || r.p.cq_entries != 16) {
		pr_err("io_uring_setup(8) made %u/%u entries, expected 8/16\n", r.p.sq_entries,
		       r.p.cq_entries);
		return 1;
	}
	if (ring_nops(&r, BURN, "the NOPs before"))
		return 1;

	/*
	 * one io_uring_enter() each, waiting for it (min_complete counts the CQEs
	 * left in the ring): a READ of a pipe may go to io-wq (6.1) and complete late
	 */
	prep_nop(sqe_or_die(&r), OLD_NOP1);
	ret = ring_submit(&r, 1, 1, 0);
	prep_read(sqe_or_die(&r), in_pipe[0], read_buf, sizeof(in_bytes), 0, OLD_READ);
	ret += ring_submit(&r, 1, 2, 0);
	prep_nop(sqe_or_die(&r), OLD_NOP2);
	ret += ring_submit(&r, 1, 3, 0);
	if (ret != 3 || ring_wait(&r, 3, 5000) || cq_ready(&r) != 3) {
		pr_perror("submitting 3 SQEs: %d, %u CQEs", ret, cq_ready(&r));
		return 1;
	}
	if (check_cqe(cqe_at(&r, BURN), OLD_NOP1, 0, 0, "before: the first NOP") ||
	    check_cqe(cqe_at(&r, BURN + 1), OLD_READ, sizeof(in_bytes), 0, "before: the READ") ||
	    check_cqe(cqe_at(&r, BURN + 2), OLD_NOP2, 0, 0, "before: the second NOP"))
		return 1;

	prep_nop(sqe_or_die(&r), NEW_NOP);
	prep_write(sqe_or_die(&r), out_pipe[1], out_bytes, sizeof(out_bytes), 0, NEW_WRITE);
	ring_flush(&r);

	ring_save_pos(&r, &pos);
	if (pos.sq_head != BURN + 3 || pos.sq_tail != BURN + 5 || pos.cq_head != BURN ||
	    pos.cq_tail != BURN + 3) {
		pr_err("unexpected positions before the checkpoint: sq %u..%u cq %u..%u\n",
		       pos.sq_head, pos.sq_tail, pos.cq_head, pos.cq_tail);
		return 1;
	}
	return 0;
}

static int check(void)
{
	const struct cqe_want pending[] = {
		{ NEW_NOP, 0, 0 },
		{ NEW_WRITE, sizeof(out_bytes), 0 },
	};
	int ret;

	if (ring_check(&r, &pos, "after restore"))
		return 1;
	if (pop_cqe_is(&r, BURN, OLD_NOP1, 0, 0, "the first old NOP") ||
	    pop_cqe_is(&r, BURN + 1, OLD_READ, sizeof(in_bytes), 0, "the old READ") ||
	    pop_cqe_is(&r, BURN + 2, OLD_NOP2, 0, 0, "the second old NOP"))
		return 1;
	if (memcmp(read_buf, in_bytes, sizeof(in_bytes))) {
		fail("the old READ's buffer holds \"%.16s\", expected \"%.16s\"", read_buf,
		     in_bytes);
		return 1;
	}
	if (!nothing_to_read(in_pipe[0]) || !nothing_to_read(out_pipe[0])) {
		fail("a pipe has data: the READ's %d, the WRITE's %d", !nothing_to_read(in_pipe[0]),
		     !nothing_to_read(out_pipe[0]));
		return 1;
	}

	/* the pending SQEs: only the kernel's head moves them on */
	ret = ring_enter(&r, 2, 2, 0);
	if (ret != 2) {
		fail("io_uring_enter(2 to submit) for the pending SQEs returned %d", ret);
		return 1;
	}
	if (*r.cq_head != BURN + 3 || ring_wait(&r, 2, 5000) ||
	    pop_cqes_are(&r, 2, pending, "the pending NOP and WRITE"))
		return 1;
	if (read_is(out_pipe[0], out_bytes, sizeof(out_bytes), "the pending WRITE's pipe"))
		return 1;

	if (ring_nops(&r, 20, "20 NOPs after restore"))
		return 1;
	pos = (struct ring_pos){ BURN + 25, BURN + 25, BURN + 25, BURN + 25, 0, 0 };
	return ring_check(&r, &pos, "at the end");
}

int main(int argc, char **argv)
{
	return uring_test_main(argc, argv, setup, check);
}
