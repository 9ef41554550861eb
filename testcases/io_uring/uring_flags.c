/*
 * Rings set up with different io_uring_setup() flags, all in one process.
 * A ring whose flags this kernel refuses (EINVAL: an older kernel) is logged
 * and left out. Each ring has had its own number of NOPs go through it
 * (500 + 97 * its number, past many laps of its SQ and CQ) and then holds one
 * unconsumed CQE, a NOP with user_data OLD_UD(ring):
 *  - CQSIZE: 8 SQ entries, cq_entries 64 asked for: 64;
 *  - CLAMP: CQSIZE | CLAMP, cq_entries 100000 asked for: clamped to 65536;
 *  - SUBMIT_ALL;
 *  - COOP: COOP_TASKRUN | TASKRUN_FLAG;
 *  - SINGLE: SINGLE_ISSUER (the main thread submitted first: it is the issuer);
 *  - DEFER: SINGLE_ISSUER | DEFER_TASKRUN;
 *  - NOSQARRAY: NO_SQARRAY (the kernel takes SQE number head & mask);
 *  - SQE128: 128-byte SQEs;
 *  - CQE32: 32-byte CQEs.
 *
 * After restore, for each ring: ring memory shows the sizes setup returned
 * (CQSIZE 64 CQ entries, CLAMP 65536), the positions are those of the
 * checkpoint, the old CQE is exactly there; then the flag's behaviour:
 *  - SUBMIT_ALL: a batch of 3 SQEs whose middle one has an invalid opcode:
 *    io_uring_enter() returns 3 and the CQEs are 0, -EINVAL, 0, in any order
 *    (without the flag it returns 2 and leaves the third SQE);
 *  - COOP: a READ of an empty pipe completes with its length once the pipe is
 *    written (when the task work runs is not observable reliably);
 *  - SINGLE: from a second thread io_uring_enter(1 to submit) fails with
 *    EEXIST and leaves the SQE unconsumed, io_uring_register(PROBE) fails
 *    with EEXIST; the main thread's io_uring_enter() then submits it;
 *  - DEFER: a READ of an empty pipe, then the pipe is written: no CQE is
 *    posted (not after 20 ms, not by io_uring_enter() without GETEVENTS)
 *    until io_uring_enter(GETEVENTS) (min_complete 1: before 6.2 the READ of
 *    a pipe runs in io-wq and may not be done yet); from a second thread io_uring_enter()
 *    with to_submit and with GETEVENTS both fail with EEXIST;
 *  - NOSQARRAY, SQE128: batches of NOPs with distinct user_data come back in
 *    order (a ring with an SQ array or 64-byte SQEs would read other slots:
 *    the upper half of each 128-byte SQE is filled with 0xa5);
 *  - CQE32: batches of NOPs come back at a 32-byte stride and the 16 extra
 *    bytes of each CQE are 0 (the free slots were filled with 0xa5 first);
 * and then NOPs go round (2 SQ lengths plus 3) on every ring.
 */
#include <pthread.h>

#include "uringcheck.h"

const char *test_doc = "Rings set up with each io_uring_setup() flag keep their behaviour";

enum { CQSIZE, CLAMP, SUBMIT_ALL, COOP, SINGLE, DEFER, NOSQARRAY, SQE128, CQE32, NR };

static const struct spec {
	const char *name;
	unsigned flags, cq_entries;	/* cq_entries: asked for with CQSIZE */
	unsigned want_cq;		/* what setup must return */
} specs[NR] = {
	[CQSIZE] = { "CQSIZE", IORING_SETUP_CQSIZE, 64, 64 },
	[CLAMP] = { "CLAMP", IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP, 100000, 65536 },
	[SUBMIT_ALL] = { "SUBMIT_ALL", IORING_SETUP_SUBMIT_ALL, 0, 16 },
	[COOP] = { "COOP_TASKRUN", IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG, 0, 16 },
	[SINGLE] = { "SINGLE_ISSUER", IORING_SETUP_SINGLE_ISSUER, 0, 16 },
	[DEFER] = { "DEFER_TASKRUN", IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, 0,
		    16 },
	[NOSQARRAY] = { "NO_SQARRAY", IORING_SETUP_NO_SQARRAY, 0, 16 },
	[SQE128] = { "SQE128", IORING_SETUP_SQE128, 0, 16 },
	[CQE32] = { "CQE32", IORING_SETUP_CQE32, 0, 16 },
};

#define SQ_ENTRIES 8
#define OLD_UD(i) (0x01d0000000000000ull | (i))
#define UD(i, n) (0x0e30000000000000ull | ((uint64_t)(i) << 32) | (n))

static struct ring rings[NR];
static struct ring_pos pos[NR];
static int present[NR];

static int setup_ring(int i)
{
	const struct spec *s = &specs[i];
	struct io_uring_params p = { .flags = s->flags, .cq_entries = s->cq_entries };
	struct ring *r = &rings[i];

	if (ring_setup(r, SQ_ENTRIES, &p)) {
		if (errno == EINVAL) {
			pr_info("%s: io_uring_setup(flags %#x) -> EINVAL: not in this kernel, "
				"left out\n", s->name, s->flags);
			return 0;
		}
		pr_perror("%s: io_uring_setup(flags %#x)", s->name, s->flags);
		return 1;
	}
	if (r->p.sq_entries != SQ_ENTRIES || r->p.cq_entries != s->want_cq) {
		pr_err("%s: setup made %u/%u entries, expected %u/%u\n", s->name, r->p.sq_entries,
		       r->p.cq_entries, SQ_ENTRIES, s->want_cq);
		return 1;
	}
	if ((i == NOSQARRAY) != !r->sq_array) {
		pr_err("%s: sq_off.array is %u\n", s->name, r->p.sq_off.array);
		return 1;
	}
	if (ring_nops(r, 500 + 97 * i, s->name))
		return 1;
	prep_nop(sqe_or_die(r), OLD_UD(i));
	if (ring_submit(r, 1, 1, 0) != 1 || cq_ready(r) != 1) {
		pr_perror("%s: the last NOP", s->name);
		return 1;
	}
	ring_save_pos(r, &pos[i]);
	present[i] = 1;
	return 0;
}

/* SUBMIT_ALL: NOP, an invalid opcode, NOP in one io_uring_enter(): all 3 are submitted. */
static int check_submit_all(struct ring *r)
{
	const struct cqe_want want[] = {
		{ UD(SUBMIT_ALL, 1), 0, 0 },
		{ UD(SUBMIT_ALL, 2), -EINVAL, 0 },
		{ UD(SUBMIT_ALL, 3), 0, 0 },
	};
	struct io_uring_sqe *sqe;
	int ret;

	prep_nop(sqe_or_die(r), UD(SUBMIT_ALL, 1));
	sqe = sqe_or_die(r);
	prep_nop(sqe, UD(SUBMIT_ALL, 2));
	sqe->opcode = URING_BAD_OPCODE;
	prep_nop(sqe_or_die(r), UD(SUBMIT_ALL, 3));
	ret = ring_submit(r, 3, 0, 0);
	if (ret != 3) {
		fail("SUBMIT_ALL: io_uring_enter(3 to submit) with an invalid opcode in the middle "
		     "returned %d, expected 3", ret);
		return 1;
	}
	/* the failed SQE's CQE is posted at once, the NOPs' at the end of the batch (6.1) */
	return ring_wait(r, 3, 5000) || pop_cqes_are(r, 3, want, "SUBMIT_ALL: the batch");
}

/*
 * A READ of an empty pipe, then the pipe is written. With DEFER_TASKRUN the
 * CQE must not show up until io_uring_enter(GETEVENTS); otherwise it only
 * has to come.
 */
static int check_deferred_read(int i)
{
	struct ring *r = &rings[i];
	unsigned head = *r->cq_head;
	char buf[8] = {};
	int pfd[2], ret, bad = 1;

	if (pipe(pfd)) {
		pr_perror("pipe");
		return 1;
	}
	prep_read(sqe_or_die(r), pfd[0], buf, 5, 0, UD(i, 1));
	ret = ring_submit(r, 1, 0, 0);
	if (ret != 1) {
		fail("%s: submitting a READ returned %d", specs[i].name, ret);
		goto out;
	}
	if (cq_ready(r)) {
		fail("%s: a READ of an empty pipe completed", specs[i].name);
		goto out;
	}
	if (write(pfd[1], "hello", 5) != 5) {
		pr_perror("write to the pipe");
		goto out;
	}
	if (i == DEFER) {
		sleep_ms(20);
		if (cq_ready(r)) {
			fail("DEFER_TASKRUN: the READ's CQE was posted without io_uring_enter()");
			goto out;
		}
		ret = ring_enter(r, 0, 0, 0);
		if (ret != 0 || cq_ready(r)) {
			fail("DEFER_TASKRUN: io_uring_enter(0, 0, 0) returned %d and %u CQEs are "
			     "ready, expected 0 and none", ret, cq_ready(r));
			goto out;
		}
		/* before 6.2 the READ of a pipe runs in io-wq: it may take a while yet */
		if (ring_wait(r, 1, 5000)) {
			fail("DEFER_TASKRUN: io_uring_enter(GETEVENTS) did not post the READ's CQE");
			goto out;
		}
	} else if (ring_wait(r, 1, 5000)) {
		fail("%s: no CQE for the READ", specs[i].name);
		goto out;
	}
	if (pop_cqe_is(r, head, UD(i, 1), 5, 0, "the READ of the pipe"))
		goto out;
	if (memcmp(buf, "hello", 5)) {
		fail("%s: the READ got \"%.5s\"", specs[i].name, buf);
		goto out;
	}
	bad = 0;
out:
	close(pfd[0]);
	close(pfd[1]);
	return bad;
}

/* What a second thread sees of a SINGLE_ISSUER ring (errno values, -1: success). */
struct other {
	int ring;
	int submit, getevents, reg;
};

static void *other_thread(void *arg)
{
	struct other *o = arg;
	struct ring *r = &rings[o->ring];
	size_t size = sizeof(struct io_uring_probe) + 64 * sizeof(struct io_uring_probe_op);
	void *probe = calloc(1, size);

	o->submit = ring_enter(r, 1, 0, 0) < 0 ? errno : -1;
	o->getevents = ring_enter(r, 0, 0, IORING_ENTER_GETEVENTS) < 0 ? errno : -1;
	o->reg = sys_io_uring_register(r->fd, IORING_REGISTER_PROBE, probe, 64) < 0 ? errno : -1;
	free(probe);
	return NULL;
}

/*
 * SINGLE_ISSUER (and DEFER_TASKRUN): an SQE flushed to the ring; a second
 * thread cannot submit it (EEXIST), the main thread can.
 */
static int check_single_issuer(int i)
{
	struct ring *r = &rings[i];
	struct other o = { .ring = i };
	unsigned head = *r->cq_head, sq_head = *r->sq_head;
	pthread_t t;
	int ret;

	prep_nop(sqe_or_die(r), UD(i, 2));
	ring_flush(r);
	if (pthread_create(&t, NULL, other_thread, &o) || pthread_join(t, NULL)) {
		pr_perror("pthread");
		return 1;
	}
	if (o.submit != EEXIST || o.reg != EEXIST) {
		fail("%s: from a second thread io_uring_enter(1 to submit) -> %s, "
		     "io_uring_register(PROBE) -> %s; expected EEXIST for both", specs[i].name,
		     o.submit < 0 ? "success" : strerror(o.submit),
		     o.reg < 0 ? "success" : strerror(o.reg));
		return 1;
	}
	/* waiting is the issuer's business only when task work is deferred to it */
	if (i == DEFER && o.getevents != EEXIST) {
		fail("DEFER_TASKRUN: from a second thread io_uring_enter(GETEVENTS) -> %s, "
		     "expected EEXIST", o.getevents < 0 ? "success" : strerror(o.getevents));
		return 1;
	}
	if (*r->sq_head != sq_head || cq_ready(r)) {
		fail("%s: the second thread's attempt moved the SQ head %u -> %u (%u CQEs)",
		     specs[i].name, sq_head, *r->sq_head, cq_ready(r));
		return 1;
	}
	ret = ring_enter(r, 1, 1, 0);
	if (ret != 1) {
		fail("%s: the main thread's io_uring_enter(1 to submit) returned %d",
		     specs[i].name, ret);
		return 1;
	}
	return pop_cqe_is(r, head, UD(i, 2), 0, 0, "the issuer's NOP");
}

/*
 * NOSQARRAY, SQE128: a full SQ of NOPs with distinct user_data, in one
 * io_uring_enter(); for SQE128 the upper half of each SQE holds 0xa5 (an
 * opcode no kernel has, for a reader with 64-byte steps).
 */
static int check_sq_layout(int i)
{
	struct ring *r = &rings[i];
	unsigned head = *r->cq_head, n;
	int ret;

	for (n = 0; n < SQ_ENTRIES; n++) {
		struct io_uring_sqe *sqe = sqe_or_die(r);

		prep_nop(sqe, UD(i, 16 + n));
		if (r->sqe_size == 128)
			memset((char *)sqe + 64, 0xa5, 64);
	}
	ret = ring_submit(r, SQ_ENTRIES, SQ_ENTRIES, 0);
	if (ret != SQ_ENTRIES) {
		fail("%s: submitting %d NOPs returned %d", specs[i].name, SQ_ENTRIES, ret);
		return 1;
	}
	for (n = 0; n < SQ_ENTRIES; n++)
		if (pop_cqe_is(r, head + n, UD(i, 16 + n), 0, 0, specs[i].name))
			return 1;
	return 0;
}

/* CQE32: the free CQE slots filled with 0xa5, a batch of NOPs, 32-byte CQEs with zero extras. */
static int check_cqe32(void)
{
	struct ring *r = &rings[CQE32];
	unsigned head = *r->cq_head, n, slot;
	int ret;

	for (slot = load_acquire(r->cq_tail); slot != head + *r->cq_entries; slot++)
		memset(cqe_at(r, slot), 0xa5, r->cqe_size);
	for (n = 0; n < SQ_ENTRIES; n++)
		prep_nop(sqe_or_die(r), UD(CQE32, 32 + n));
	ret = ring_submit(r, SQ_ENTRIES, SQ_ENTRIES, 0);
	if (ret != SQ_ENTRIES) {
		fail("CQE32: submitting %d NOPs returned %d", SQ_ENTRIES, ret);
		return 1;
	}
	for (n = 0; n < SQ_ENTRIES; n++) {
		struct io_uring_cqe *cqe = cqe_at(r, head + n);

		if (cqe->big_cqe[0] || cqe->big_cqe[1]) {
			fail("CQE32: the CQE at %u has extra words %#llx %#llx, expected 0",
			     head + n, (unsigned long long)cqe->big_cqe[0],
			     (unsigned long long)cqe->big_cqe[1]);
			return 1;
		}
		if (pop_cqe_is(r, head + n, UD(CQE32, 32 + n), 0, 0, "CQE32"))
			return 1;
	}
	return 0;
}

static int check_ring(int i)
{
	const struct spec *s = &specs[i];
	struct ring *r = &rings[i];
	char what[64];

	snprintf(what, sizeof(what), "%s after restore", s->name);
	if (ring_check(r, &pos[i], what))
		return 1;
	if (*r->cq_entries != s->want_cq) {
		fail("%s: ring memory shows %u CQ entries, expected %u", s->name, *r->cq_entries,
		     s->want_cq);
		return 1;
	}
	if (i == CQE32 && (cqe_at(r, pos[i].cq_head)->big_cqe[0] ||
			   cqe_at(r, pos[i].cq_head)->big_cqe[1])) {
		fail("CQE32: the old CQE's extra words are not 0");
		return 1;
	}
	snprintf(what, sizeof(what), "%s: the old CQE", s->name);
	if (pop_cqe_is(r, pos[i].cq_head, OLD_UD(i), 0, 0, what))
		return 1;

	switch (i) {
	case SUBMIT_ALL:
		if (check_submit_all(r))
			return 1;
		break;
	case COOP:
		if (check_deferred_read(i))
			return 1;
		break;
	case SINGLE:
		if (check_single_issuer(i))
			return 1;
		break;
	case DEFER:
		if (check_deferred_read(i) || check_single_issuer(i))
			return 1;
		break;
	case NOSQARRAY:
	case SQE128:
		if (check_sq_layout(i))
			return 1;
		break;
	case CQE32:
		if (check_cqe32())
			return 1;
		break;
	}
	snprintf(what, sizeof(what), "%s: NOPs after restore", s->name);
	return ring_nops(r, 2 * SQ_ENTRIES + 3, what);
}

int main(int argc, char **argv)
{
	int i, n = 0;

	test_init(argc, argv);
	for (i = 0; i < NR; i++)
		if (setup_ring(i))
			return 1;

	test_daemon();
	test_waitsig();

	for (i = 0; i < NR; i++) {
		if (!present[i])
			continue;
		if (check_ring(i))
			return 0;
		n++;
	}
	pr_info("%d rings checked\n", n);
	pass();
	return 0;
}
