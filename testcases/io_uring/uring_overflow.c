/*
 * Completions without submissions and the CQ overflow list, in a plain ring
 * and (where the kernel has it) a SINGLE_ISSUER|DEFER_TASKRUN one; each has
 * 4 SQ and 8 CQ entries and goes through the same story:
 *  - 100 NOPs (positions 100/100, all consumed);
 *  - 3 CQEs sent into it with IORING_OP_MSG_RING from a third ring (MSG_UD+i,
 *    res 1000+i): more completions than submissions;
 *  - a multishot POLL_ADD of POLLIN on an empty pipe (POLL_UD), which fires
 *    twice (a byte written, waited for, read back, twice): two CQEs with
 *    IORING_CQE_F_MORE, and the poll stays armed over the checkpoint;
 *  - 3 NOPs (NOP_UD+0..2): the CQ ring is full (8 CQEs at 100..107);
 *  - 4 more NOPs (NOP_UD+3..6) and one more message (LATE_UD, res 77, with
 *    CQE flags 0x8000 where IORING_MSG_RING_FLAGS_PASS exists): they go to the
 *    kernel's overflow list (the DEFER_TASKRUN ring's message once its task
 *    work ran: io_uring_enter(GETEVENTS), which cannot flush a full ring), and
 *    IORING_SQ_CQ_OVERFLOW is set.
 *
 * After restore: the same positions (sq 108/108, cq 100..108), the overflow
 * flag set; the 8 CQEs in the ring are exactly there; io_uring_enter(GETEVENTS)
 * then flushes the overflow list into the ring, in order (NOP_UD+3..6, then
 * LATE_UD) and clears the flag; a byte written into the pipe fires the
 * multishot poll again (POLL_UD, POLLIN, F_MORE); 20 NOPs go round at their
 * exact positions.
 *
 * A third ring (4/8, flags 0) has 95 NOPs consumed and 3 more (FULL_UD+0..2,
 * at 95..97) left in its CQ ring.  After restore 6 more NOPs (FULL_UD+3..8)
 * fill the 5 free slots and the sixth goes to the overflow list: the 3 old
 * CQEs must still be there (a kernel that kept a cache of free CQ slots from
 * a replay would have written over them).
 */
#include "uringcheck.h"

const char *test_doc = "Completions without submissions (MSG_RING, multishot) and the CQ "
		       "overflow list";

#ifndef IORING_MSG_RING_FLAGS_PASS
#define IORING_MSG_RING_FLAGS_PASS (1U << 1)
#endif
#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif

#define BURN 100
#define MSG_UD 0x4d53470000000000ull
#define POLL_UD 0x504f4c4c00000000ull
#define NOP_UD 0x4f56520000000000ull
#define LATE_UD 0x4c41544500000000ull
#define LATE_RES 77
#define LATE_FLAGS 0x8000

struct story {
	const char *name;
	unsigned flags;
	struct ring r;
	struct ring_pos pos;
	int pipe[2];
	int used;
};

static struct story stories[] = {
	{ .name = "the plain ring" },
	{ .name = "the DEFER_TASKRUN ring",
	  .flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN },
};
static struct ring sender, full;
#define FULL_UD 0x46554c4c00000000ull
static int flags_pass;	/* the kernel passes CQE flags with MSG_RING (6.3+) */

/* MSG_RING from the sender into ring fd, waited for: its result */
static int send_msg(int fd, uint64_t user_data, int res, unsigned cqe_flags)
{
	struct io_uring_sqe *sqe = sqe_or_die(&sender);
	struct io_uring_cqe *cqe;
	int ret;

	prep_rw(sqe, IORING_OP_MSG_RING, fd, NULL, res, user_data, 0x5e4d);
	if (cqe_flags) {
		sqe->msg_ring_flags = IORING_MSG_RING_FLAGS_PASS;
		sqe->file_index = cqe_flags;
	}
	if (ring_submit(&sender, 1, 1, 0) != 1 || ring_wait(&sender, 1, 5000)) {
		pr_perror("MSG_RING");
		return -EIO;
	}
	cqe = peek_cqe(&sender);
	ret = cqe->res;
	cqe_seen(&sender);
	return ret;
}

static int poll_fires(struct story *s, unsigned pos)
{
	char c = 'x';

	if (write(s->pipe[1], &c, 1) != 1 || ring_wait(&s->r, 1, 5000)) {
		pr_perror("%s: a byte into the polled pipe", s->name);
		return 1;
	}
	if (pop_cqe_is(&s->r, pos, POLL_UD, POLLIN, IORING_CQE_F_MORE, "the multishot poll"))
		return 1;
	return read(s->pipe[0], &c, 1) != 1;
}

static int set_up(struct story *s)
{
	struct io_uring_params p = { .flags = s->flags | IORING_SETUP_CQSIZE, .cq_entries = 8 };
	struct io_uring_sqe *sqe;
	unsigned i;
	int ret;

	if (ring_setup(&s->r, 4, &p)) {
		if (errno == EINVAL && s->flags) {
			test_msg("%s: setup flags %#x refused: left out\n", s->name, s->flags);
			return 0;
		}
		pr_perror("%s: io_uring_setup", s->name);
		return 1;
	}
	s->used = 1;
	if (pipe2(s->pipe, O_NONBLOCK) || ring_nops(&s->r, BURN, s->name))
		return 1;
	for (i = 0; i < 3; i++)
		if (send_msg(s->r.fd, MSG_UD + i, 1000 + i, 0)) {
			pr_err("%s: MSG_RING failed\n", s->name);
			return 1;
		}
	/* the poll's CQEs are read (and consumed) as they come, the messages stay */
	sqe = sqe_or_die(&s->r);
	prep_rw(sqe, IORING_OP_POLL_ADD, s->pipe[0], NULL, IORING_POLL_ADD_MULTI, 0, POLL_UD);
	sqe->poll32_events = POLLIN;
	if (ring_submit(&s->r, 1, 0, 0) != 1)
		return 1;
	for (i = 0; i < 2; i++) {
		char c = 'x';

		if (write(s->pipe[1], &c, 1) != 1 || ring_wait(&s->r, 4 + i, 5000) ||
		    check_cqe(cqe_at(&s->r, BURN + 3 + i), POLL_UD, POLLIN, IORING_CQE_F_MORE,
			      "before: the multishot poll") ||
		    read(s->pipe[0], &c, 1) != 1)
			return 1;
	}
	for (i = 0; i < 3; i++)
		prep_nop(sqe_or_die(&s->r), NOP_UD + i);
	if (ring_submit(&s->r, 3, 0, 0) != 3 || ring_wait(&s->r, 8, 5000))
		return 1;
	for (i = 3; i < 7; i++)
		prep_nop(sqe_or_die(&s->r), NOP_UD + i);
	ret = ring_submit(&s->r, 4, 0, 0);
	if (ret != 4) {
		pr_perror("%s: the NOPs that overflow: %d", s->name, ret);
		return 1;
	}
	ret = send_msg(s->r.fd, LATE_UD, LATE_RES, flags_pass ? LATE_FLAGS : 0);
	if (ret) {
		pr_err("%s: the late MSG_RING gave %d\n", s->name, ret);
		return 1;
	}
	/* a DEFER_TASKRUN ring gets messages as task work of its own: run it */
	if (ring_enter(&s->r, 0, 0, IORING_ENTER_GETEVENTS) < 0) {
		pr_perror("%s: io_uring_enter(GETEVENTS)", s->name);
		return 1;
	}
	ring_save_pos(&s->r, &s->pos);
	if (s->pos.sq_head != BURN + 8 || s->pos.cq_head != BURN || s->pos.cq_tail != BURN + 8 ||
	    !(load_acquire(s->r.sq_flags) & IORING_SQ_CQ_OVERFLOW)) {
		pr_err("%s: before: sq %u, cq %u..%u, sq flags %#x\n", s->name, s->pos.sq_head,
		       s->pos.cq_head, s->pos.cq_tail, load_acquire(s->r.sq_flags));
		return 1;
	}
	return 0;
}

static int setup(void)
{
	struct ring scratch;
	unsigned i;

	if (ring_setup(&sender, 8, NULL) || ring_setup(&scratch, 8, NULL)) {
		pr_perror("io_uring_setup of the sender");
		return 1;
	}
	/* FLAGS_PASS: a message with CQE flags into a scratch ring (EINVAL before 6.3) */
	flags_pass = send_msg(scratch.fd, 1, 0, LATE_FLAGS) == 0;
	if (flags_pass && (ring_wait(&scratch, 1, 5000) ||
			   pop_cqe_is(&scratch, 0, 1, 0, LATE_FLAGS, "FLAGS_PASS")))
		return 1;
	ring_close(&scratch);
	for (i = 0; i < ARRAY_SIZE(stories); i++)
		if (set_up(&stories[i]))
			return 1;
	if (ring_setup(&full, 4, &(struct io_uring_params){ .flags = IORING_SETUP_CQSIZE,
							     .cq_entries = 8 }) ||
	    ring_nops(&full, 95, "the full ring"))
		return 1;
	for (i = 0; i < 3; i++)
		prep_nop(sqe_or_die(&full), FULL_UD + i);
	return ring_submit(&full, 3, 3, 0) != 3 || cq_ready(&full) != 3;
}

/* the third ring: 6 NOPs into 5 free CQ slots, the 3 old CQEs kept */
static int check_full(void)
{
	unsigned i;

	for (i = 3; i < 7; i++)
		prep_nop(sqe_or_die(&full), FULL_UD + i);
	if (ring_submit(&full, 4, 0, 0) != 4) {
		pr_perror("the full ring: submitting 4 NOPs");
		return 1;
	}
	for (; i < 9; i++)
		prep_nop(sqe_or_die(&full), FULL_UD + i);
	if (ring_submit(&full, 2, 0, 0) != 2) {
		pr_perror("the full ring: submitting 2 NOPs");
		return 1;
	}
	if (cq_ready(&full) != 8 || !(load_acquire(full.sq_flags) & IORING_SQ_CQ_OVERFLOW)) {
		fail("the full ring: %u CQEs ready, sq flags %#x; expected 8 and an overflow",
		     cq_ready(&full), load_acquire(full.sq_flags));
		return 1;
	}
	for (i = 0; i < 8; i++)
		if (pop_cqe_is(&full, 95 + i, FULL_UD + i, 0, 0, "the full ring"))
			return 1;
	if (ring_wait(&full, 1, 5000) || pop_cqe_is(&full, 103, FULL_UD + 8, 0, 0,
						    "the full ring's overflowed NOP"))
		return 1;
	return ring_nops(&full, 10, "the full ring");
}

static int check_story(struct story *s)
{
	unsigned i, pos = BURN;

	if (ring_check(&s->r, &s->pos, s->name))
		return 1;
	if (!(load_acquire(s->r.sq_flags) & IORING_SQ_CQ_OVERFLOW)) {
		fail("%s: IORING_SQ_CQ_OVERFLOW is not set after restore", s->name);
		return 1;
	}
	if (!nothing_to_read(s->pipe[0])) {
		fail("%s: the polled pipe has data after restore", s->name);
		return 1;
	}
	for (i = 0; i < 3; i++)
		if (pop_cqe_is(&s->r, pos++, MSG_UD + i, 1000 + i, 0, "an old message"))
			return 1;
	for (i = 0; i < 2; i++)
		if (pop_cqe_is(&s->r, pos++, POLL_UD, POLLIN, IORING_CQE_F_MORE, "an old poll CQE"))
			return 1;
	for (i = 0; i < 3; i++)
		if (pop_cqe_is(&s->r, pos++, NOP_UD + i, 0, 0, "an old NOP"))
			return 1;
	/* flushing the overflow list: GETEVENTS (it would not wait: nothing is asked) */
	if (ring_enter(&s->r, 0, 0, IORING_ENTER_GETEVENTS) < 0) {
		pr_perror("%s: io_uring_enter(GETEVENTS)", s->name);
		return 1;
	}
	if (cq_ready(&s->r) != 5) {
		for (i = 0; i < cq_ready(&s->r); i++)
			test_msg("CQE at %u: user_data %#llx res %d flags %#x\n", pos + i,
				 (unsigned long long)cqe_at(&s->r, pos + i)->user_data,
				 cqe_at(&s->r, pos + i)->res, cqe_at(&s->r, pos + i)->flags);
		fail("%s: the overflow list gave %u CQEs, expected 5", s->name, cq_ready(&s->r));
		return 1;
	}
	for (i = 3; i < 7; i++)
		if (pop_cqe_is(&s->r, pos++, NOP_UD + i, 0, 0, "an overflowed NOP"))
			return 1;
	if (pop_cqe_is(&s->r, pos++, LATE_UD, LATE_RES, flags_pass ? LATE_FLAGS : 0,
		       "the overflowed message"))
		return 1;
	if (load_acquire(s->r.sq_flags) & IORING_SQ_CQ_OVERFLOW) {
		fail("%s: IORING_SQ_CQ_OVERFLOW is still set once flushed", s->name);
		return 1;
	}
	if (poll_fires(s, pos++))
		return 1;
	return ring_nops(&s->r, 20, s->name);
}

static int check(void)
{
	unsigned i;

	for (i = 0; i < ARRAY_SIZE(stories); i++)
		if (stories[i].used && check_story(&stories[i]))
			return 1;
	return check_full() || ring_nops(&sender, 3, "the sender");
}

int main(int argc, char **argv)
{
	return uring_test_main(argc, argv, setup, check);
}
