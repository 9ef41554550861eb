/*
 * A ring set up with IORING_SETUP_NO_MMAP (6.5+): its memory is the
 * program's own, which the kernel pinned, and no mapping of the ring fd
 * exists (the kernel refuses one). The SQ and CQ rings (8 SQ entries, 16 CQ
 * entries) lie in an anonymous mapping of one page, the SQEs in a page of the
 * program's static data. Then, as uring_basic.c does:
 *  - 1000 NOPs have gone through it (125 laps of the SQ ring);
 *  - a NOP (OLD_NOP1), a READ of 16 bytes from a pipe that held exactly them
 *    (OLD_READ) and a NOP (OLD_NOP2) were submitted and completed: their 3
 *    CQEs are still in the CQ ring, at positions 1000, 1001, 1002;
 *  - a NOP (NEW_NOP) and a WRITE of 14 bytes into a second pipe (NEW_WRITE)
 *    were written as SQEs and the SQ tail stored (1005), but io_uring_enter()
 *    was not called: the kernel's SQ head is 1003.
 *
 * After restore: the ring is the same memory (the program's pointers are its
 * own and did not change), ring memory shows the same sizes and positions, the
 * 3 old CQEs are exactly there, the READ's buffer holds the pipe's bytes;
 * io_uring_enter(2 to submit) returns 2 and the pending SQEs complete at 1003
 * and 1004 (in either order), the WRITE's bytes come out of the second pipe.
 * Then 20 more NOPs go round at their exact positions, ending at 1025: the
 * kernel posts them into the program's memory.
 *
 * A second NO_MMAP ring has an SQ thread (IORING_SETUP_SQPOLL) and its rings
 * and SQEs in two pages of one mapping: 500 NOPs went through it, then 2 NOPs
 * (SQ_NOP1, SQ_NOP2) whose CQEs are left at 500 and 501. After restore they
 * are there and 20 more NOPs go round (its SQ thread takes what the SQ tail
 * says is queued: the restore must not leave the dumped tail in its memory
 * before the replay, as 6.12 would).
 */
#include "uringcheck.h"

const char *test_doc = "A ring whose memory is the program's own (IORING_SETUP_NO_MMAP)";

#define BURN 1000
#define OLD_NOP1 0x0101010101010101ull
#define OLD_READ 0x0202020202020202ull
#define OLD_NOP2 0x0303030303030303ull
#define NEW_NOP 0x0404040404040404ull
#define NEW_WRITE 0x0505050505050505ull
#define SQ_BURN 500
#define SQ_NOP1 0x0606060606060606ull
#define SQ_NOP2 0x0707070707070707ull

static const char in_bytes[16] = "bytes-read-early";
static const char out_bytes[14] = "written-later!";

/* the SQEs: 8 of 64 bytes in a page of static data */
static char sqe_page[4096] __attribute__((aligned(4096)));

static struct ring r, sq;
static struct ring_pos pos, sq_pos;
static void *rings_page;
static char *sq_pages;
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
	rings_page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (rings_page == MAP_FAILED) {
		pr_perror("mmap of the rings' page");
		return 1;
	}
	if (ring_setup_no_mmap(&r, 8, NULL, rings_page, sqe_page)) {
		pr_perror("io_uring_setup(8, IORING_SETUP_NO_MMAP)");
		return 1;
	}
	if (r.p.sq_entries != 8 || r.p.cq_entries != 16 ||
	    r.sq_len > 4096 || r.cq_len > 4096 || r.sqes_len > sizeof(sqe_page)) {
		pr_err("io_uring_setup(8) made %u/%u entries, rings of %zu/%zu bytes, SQEs of "
		       "%zu: expected 8/16 within a page each\n", r.p.sq_entries, r.p.cq_entries,
		       r.sq_len, r.cq_len, r.sqes_len);
		return 1;
	}
	if (ring_nops(&r, BURN, "the NOPs before"))
		return 1;

	sq_pages = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (sq_pages == MAP_FAILED) {
		pr_perror("mmap of the SQPOLL ring's pages");
		return 1;
	}
	if (ring_setup_no_mmap(&sq, 8, &(struct io_uring_params){ .flags = IORING_SETUP_SQPOLL,
				.sq_thread_idle = 10 }, sq_pages, sq_pages + 4096)) {
		pr_perror("io_uring_setup(8, IORING_SETUP_NO_MMAP | IORING_SETUP_SQPOLL)");
		return 1;
	}
	if (ring_nops(&sq, SQ_BURN, "the SQPOLL ring's NOPs before"))
		return 1;
	prep_nop(sqe_or_die(&sq), SQ_NOP1);
	prep_nop(sqe_or_die(&sq), SQ_NOP2);
	if (ring_submit(&sq, 2, 2, 0) != 2 || ring_wait(&sq, 2, 5000)) {
		pr_perror("the SQPOLL ring's 2 NOPs");
		return 1;
	}
	/* the SQ thread stores the SQ head after it posted the CQEs: wait for it too */
	for (ret = 0; load_acquire(sq.sq_head) != SQ_BURN + 2 && ret < 5000; ret++)
		sleep_ms(1);
	ring_save_pos(&sq, &sq_pos);
	if (sq_pos.sq_head != SQ_BURN + 2 || sq_pos.cq_head != SQ_BURN ||
	    sq_pos.cq_tail != SQ_BURN + 2) {
		pr_err("unexpected SQPOLL ring positions before the checkpoint: sq %u..%u cq %u..%u\n",
		       sq_pos.sq_head, sq_pos.sq_tail, sq_pos.cq_head, sq_pos.cq_tail);
		return 1;
	}

	/* one io_uring_enter() each, waiting for it (a pipe READ may go to io-wq) */
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

	/* the pending SQEs, read by the kernel from the program's page */
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
	if (ring_check(&r, &pos, "at the end"))
		return 1;

	if (ring_check(&sq, &sq_pos, "the SQPOLL ring after restore") ||
	    pop_cqe_is(&sq, SQ_BURN, SQ_NOP1, 0, 0, "the SQPOLL ring's first NOP") ||
	    pop_cqe_is(&sq, SQ_BURN + 1, SQ_NOP2, 0, 0, "the SQPOLL ring's second NOP") ||
	    ring_nops(&sq, 20, "20 NOPs of the SQPOLL ring after restore"))
		return 1;
	for (ret = 0; load_acquire(sq.sq_head) != SQ_BURN + 22 && ret < 5000; ret++)
		sleep_ms(1);
	sq_pos = (struct ring_pos){ SQ_BURN + 22, SQ_BURN + 22, SQ_BURN + 22, SQ_BURN + 22, 0, 0 };
	return ring_check(&sq, &sq_pos, "the SQPOLL ring at the end");
}

int main(int argc, char **argv)
{
	return uring_test_main(argc, argv, setup, check);
}
