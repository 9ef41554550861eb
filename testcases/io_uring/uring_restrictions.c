/*
 * Restricted and disabled rings:
 *  - ring R: set up with IORING_SETUP_R_DISABLED, restricted
 *    (IORING_REGISTER_RESTRICTIONS: SQE opcodes NOP and READ, register opcode
 *    PROBE, SQE flags IOSQE_IO_LINK), then IORING_REGISTER_ENABLE_RINGS; 900
 *    NOPs went through it, then a WRITE was refused: its CQE (OLD_WRITE,
 *    -EACCES) is not consumed;
 *  - ring D: set up with IORING_SETUP_R_DISABLED and never enabled, nothing
 *    registered; a NOP (PENDING_NOP) was written as an SQE and the SQ tail
 *    stored (1); io_uring_enter() fails with EBADFD.
 *
 * After restore (positions as at the checkpoint):
 *  - R: the old CQE is exactly there; a NOP completes with 0, a READ of a
 *    pipe with its length, a WRITE with -EACCES, a NOP with IOSQE_ASYNC (not
 *    an allowed flag) with -EACCES, two NOPs linked with IOSQE_IO_LINK with 0;
 *    IORING_REGISTER_PROBE works, IORING_REGISTER_FILES fails with EACCES;
 *  - D: io_uring_enter() fails with EBADFD; IORING_REGISTER_RESTRICTIONS
 *    (NOP only) and IORING_REGISTER_ENABLE_RINGS succeed; then
 *    io_uring_enter(1 to submit) submits the pending NOP (CQE at 0), a NOP
 *    completes with 0 and a READ with -EACCES.
 */
#include "uringcheck.h"

const char *test_doc = "Restricted rings and rings still disabled";

#define OLD_WRITE 0x3e57000000000001ull
#define PENDING_NOP 0x3e57000000000002ull

static struct ring R, D;
static struct ring_pos pos_r, pos_d;
static int pfd[2];

static int setup_disabled(struct ring *r)
{
	struct io_uring_params p = { .flags = IORING_SETUP_R_DISABLED };

	if (ring_setup(r, 8, &p)) {
		pr_perror("io_uring_setup(R_DISABLED)");
		return 1;
	}
	return 0;
}

static int setup(void)
{
	struct io_uring_restriction res[] = {
		{ .opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_NOP },
		{ .opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_READ },
		{ .opcode = IORING_RESTRICTION_REGISTER_OP, .register_op = IORING_REGISTER_PROBE },
		{ .opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED, .sqe_flags = IOSQE_IO_LINK },
	};
	int ret;

	if (pipe(pfd)) {
		pr_perror("pipe");
		return 1;
	}
	if (setup_disabled(&R) || setup_disabled(&D))
		return 1;
	if (sys_io_uring_register(R.fd, IORING_REGISTER_RESTRICTIONS, res, ARRAY_SIZE(res)) ||
	    sys_io_uring_register(R.fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0)) {
		pr_perror("restricting and enabling R");
		return 1;
	}
	if (ring_nops(&R, 900, "R: the NOPs before"))
		return 1;
	prep_write(sqe_or_die(&R), pfd[1], "x", 1, 0, OLD_WRITE);
	if (ring_submit(&R, 1, 1, 0) != 1 || cq_ready(&R) != 1 ||
	    check_cqe(peek_cqe(&R), OLD_WRITE, -EACCES, 0, "R: a WRITE before"))
		return 1;

	prep_nop(sqe_or_die(&D), PENDING_NOP);
	ret = ring_submit(&D, 1, 0, 0);
	if (ret != -1 || errno != EBADFD) {
		pr_perror("D: io_uring_enter() of a disabled ring returned %d", ret);
		return 1;
	}
	ring_save_pos(&R, &pos_r);
	ring_save_pos(&D, &pos_d);
	return 0;
}

static int check_r(void)
{
	struct io_uring_sqe sqe = {}, *link;
	unsigned head;
	char buf[8] = {};
	int fd = pfd[0];

	if (pop_cqe_is(&R, pos_r.cq_head, OLD_WRITE, -EACCES, 0, "R: the old WRITE"))
		return 1;
	prep_nop(&sqe, 1);
	if (ring_op_is(&R, &sqe, 0, "R: a NOP"))
		return 1;
	if (write(pfd[1], "abcd", 4) != 4) {
		pr_perror("write to the pipe");
		return 1;
	}
	prep_read(&sqe, fd, buf, 4, 0, 2);
	if (ring_op_is(&R, &sqe, 4, "R: a READ") || memcmp(buf, "abcd", 4))
		return 1;
	prep_write(&sqe, pfd[1], "abcd", 4, 0, 3);
	if (ring_op_is(&R, &sqe, -EACCES, "R: a WRITE"))
		return 1;
	if (!nothing_to_read(pfd[0])) {
		fail("R: the refused WRITE wrote");
		return 1;
	}
	prep_nop(&sqe, 4);
	sqe.flags = IOSQE_ASYNC;
	if (ring_op_is(&R, &sqe, -EACCES, "R: a NOP with IOSQE_ASYNC"))
		return 1;

	head = *R.cq_head;
	link = sqe_or_die(&R);
	prep_nop(link, 5);
	link->flags = IOSQE_IO_LINK;
	prep_nop(sqe_or_die(&R), 6);
	if (ring_submit(&R, 2, 2, 0) != 2 || ring_wait(&R, 2, 5000) ||
	    pop_cqe_is(&R, head, 5, 0, 0, "R: a linked NOP") ||
	    pop_cqe_is(&R, head + 1, 6, 0, 0, "R: the NOP it links to"))
		return 1;

	if (!op_supported(R.fd, IORING_OP_NOP)) {
		fail("R: IORING_REGISTER_PROBE is refused or does not list NOP");
		return 1;
	}
	return register_is(R.fd, IORING_REGISTER_FILES, &fd, 1, EACCES, NULL,
			   "R: IORING_REGISTER_FILES");
}

static int check_d(void)
{
	struct io_uring_restriction nop_only = {
		.opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_NOP,
	};
	struct io_uring_sqe sqe = {};
	char buf[4];
	int ret;

	ret = ring_enter(&D, 1, 0, 0);
	if (ret != -1 || errno != EBADFD) {
		fail("D: io_uring_enter() returned %d, expected EBADFD", ret);
		return 1;
	}
	if (register_is(D.fd, IORING_REGISTER_RESTRICTIONS, &nop_only, 1, 0, NULL,
			"D: IORING_REGISTER_RESTRICTIONS") ||
	    register_is(D.fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0, 0, NULL,
			"D: IORING_REGISTER_ENABLE_RINGS"))
		return 1;
	ret = ring_enter(&D, 1, 1, 0);
	if (ret != 1) {
		fail("D: io_uring_enter(1 to submit) after enabling returned %d", ret);
		return 1;
	}
	if (pop_cqe_is(&D, 0, PENDING_NOP, 0, 0, "D: the pending NOP"))
		return 1;
	prep_nop(&sqe, 7);
	if (ring_op_is(&D, &sqe, 0, "D: a NOP"))
		return 1;
	prep_read(&sqe, pfd[0], buf, sizeof(buf), 0, 8);
	return ring_op_is(&D, &sqe, -EACCES, "D: a READ");
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (setup())
		return 1;

	test_daemon();
	test_waitsig();

	if (ring_check(&R, &pos_r, "R after restore") || ring_check(&D, &pos_d, "D after restore"))
		return 0;
	if (!check_r() && !check_d())
		pass();
	return 0;
}
