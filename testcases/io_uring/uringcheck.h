/*
 * What the io_uring tests share: a ring set up and mapped with raw syscalls
 * (no liburing), SQEs filled at the program's own tail, CQEs read at exact
 * positions, and checks that fail() with a clear message.
 *
 * struct ring keeps pointers into the ring memory (the kernel's head, tail,
 * mask, entries and flags words, the SQ array, the SQEs and CQEs) and the
 * program's own position: sqe_tail, the next SQE it fills. The SQ tail in ring
 * memory is only stored by ring_flush() (release), so SQEs can be written and
 * made visible to the kernel without io_uring_enter(). Every layout the tests
 * use is handled: one mapping for both rings (IORING_FEAT_SINGLE_MMAP) or two,
 * IORING_SETUP_NO_SQARRAY (no array: the kernel takes SQE head & mask),
 * IORING_SETUP_SQE128 (128-byte SQEs) and IORING_SETUP_CQE32 (32-byte CQEs),
 * IORING_SETUP_SQPOLL (ring_submit() stores the tail and wakes the thread
 * only when it asks for it).
 *
 * The system header is Debian 12's (6.1 uapi): what came later is defined here.
 */
#ifndef URINGCHECK_H_
#define URINGCHECK_H_

#include <fcntl.h>
#include <linux/io_uring.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>

#include "zdtmtst.h"

/* 6.5 also named the last __u64 of io_sqring_offsets and io_cqring_offsets user_addr */
#ifndef IORING_SETUP_NO_MMAP
#define IORING_SETUP_NO_MMAP (1U << 14)
#define URING_USER_ADDR resv2
#else
#define URING_USER_ADDR user_addr
#endif
#ifndef IORING_SETUP_REGISTERED_FD_ONLY
#define IORING_SETUP_REGISTERED_FD_ONLY (1U << 15)
#endif
#ifndef IORING_SETUP_NO_SQARRAY
#define IORING_SETUP_NO_SQARRAY (1U << 16)
#endif
#ifndef IORING_FEAT_REG_REG_RING
#define IORING_FEAT_REG_REG_RING (1U << 13)
#endif
#ifndef IORING_REGISTER_USE_REGISTERED_RING
#define IORING_REGISTER_USE_REGISTERED_RING (1U << 31)
#endif
/* 6.8; the 6.1 header has no such enum member, a newer one has the same value */
#ifndef IORING_OP_FIXED_FD_INSTALL
#define IORING_OP_FIXED_FD_INSTALL 54
#endif
#ifndef IORING_FIXED_FD_NO_CLOEXEC
#define IORING_FIXED_FD_NO_CLOEXEC (1U << 0)
#endif

/*
 * Without CAP_IPC_LOCK (in a user namespace of the test's own) registered
 * buffers, and before 5.12 the rings too, are charged to RLIMIT_MEMLOCK: lift
 * it as far as we may before anything is set up.
 */
__attribute__((constructor)) static void uring_memlock_lift(void)
{
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };

	if (setrlimit(RLIMIT_MEMLOCK, &rl) && !getrlimit(RLIMIT_MEMLOCK, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_MEMLOCK, &rl);
	}
}

/* An opcode no kernel has (io_init_req: >= IORING_OP_LAST gives -EINVAL). */
#define URING_BAD_OPCODE 0xff

/* The user_data of the NOPs ring_nops() consumes: their base, plus the NOP's number. */
#define NOP_UD_BASE 0x4e4f500000000000ull

struct ring {
	int fd;
	struct io_uring_params p;	/* what io_uring_setup() returned */
	unsigned *sq_head, *sq_tail, *sq_mask, *sq_entries, *sq_flags, *sq_dropped;
	unsigned *sq_array;		/* NULL with IORING_SETUP_NO_SQARRAY */
	unsigned *cq_head, *cq_tail, *cq_mask, *cq_entries, *cq_flags, *cq_overflow;
	char *sqes, *cqes;
	unsigned sqe_size, cqe_size;
	unsigned sqe_tail;		/* the next SQE this program fills */
	void *sq_map, *cq_map;
	size_t sq_len, cq_len, sqes_len;
};

static inline int sys_io_uring_setup(unsigned entries, struct io_uring_params *p)
{
	return syscall(__NR_io_uring_setup, entries, p);
}

static inline int sys_io_uring_enter(int fd, unsigned to_submit, unsigned min_complete,
				     unsigned flags, const void *arg, size_t argsz)
{
	return syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, arg, argsz);
}

static inline int sys_io_uring_register(int fd, unsigned op, const void *arg, unsigned nr)
{
	return syscall(__NR_io_uring_register, fd, op, arg, nr);
}

static inline unsigned load_acquire(const unsigned *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void store_release(unsigned *p, unsigned v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* The sizes of the ring memory io_uring_setup() returned in r->p. */
static inline void ring_sizes(struct ring *r)
{
	struct io_uring_params *p = &r->p;

	r->sqe_size = p->flags & IORING_SETUP_SQE128 ? 128 : 64;
	r->cqe_size = p->flags & IORING_SETUP_CQE32 ? 32 : 16;
	/* with NO_SQARRAY sq_off.array is 0: the SQ part is the header only */
	r->sq_len = p->sq_off.array + (p->flags & IORING_SETUP_NO_SQARRAY ? 0 :
				       p->sq_entries * sizeof(unsigned));
	if (r->sq_len < p->sq_off.dropped + sizeof(unsigned))
		r->sq_len = p->sq_off.dropped + sizeof(unsigned);
	r->cq_len = p->cq_off.cqes + (size_t)p->cq_entries * r->cqe_size;
	if (p->features & IORING_FEAT_SINGLE_MMAP) {
		if (r->cq_len > r->sq_len)
			r->sq_len = r->cq_len;
		r->cq_len = r->sq_len;
	}
	r->sqes_len = (size_t)p->sq_entries * r->sqe_size;
}

/* r's pointers into the ring memory: the SQ ring at r->sq_map, the CQ ring at r->cq_map. */
static inline void ring_pointers(struct ring *r)
{
	struct io_uring_params *p = &r->p;
	char *sq = r->sq_map, *cq = r->cq_map;

	r->sq_head = (unsigned *)(sq + p->sq_off.head);
	r->sq_tail = (unsigned *)(sq + p->sq_off.tail);
	r->sq_mask = (unsigned *)(sq + p->sq_off.ring_mask);
	r->sq_entries = (unsigned *)(sq + p->sq_off.ring_entries);
	r->sq_flags = (unsigned *)(sq + p->sq_off.flags);
	r->sq_dropped = (unsigned *)(sq + p->sq_off.dropped);
	r->sq_array = p->flags & IORING_SETUP_NO_SQARRAY ? NULL :
		      (unsigned *)(sq + p->sq_off.array);
	r->cq_head = (unsigned *)(cq + p->cq_off.head);
	r->cq_tail = (unsigned *)(cq + p->cq_off.tail);
	r->cq_mask = (unsigned *)(cq + p->cq_off.ring_mask);
	r->cq_entries = (unsigned *)(cq + p->cq_off.ring_entries);
	r->cq_overflow = (unsigned *)(cq + p->cq_off.overflow);
	r->cq_flags = (unsigned *)(cq + p->cq_off.flags);
	r->cqes = cq + p->cq_off.cqes;
	r->sqe_tail = *r->sq_tail;
}

/*
 * io_uring_setup(entries, p) (p NULL: flags 0) and map the rings and SQEs
 * into r. 0, or -1 with errno set; only a failed mmap is logged here (the
 * caller decides what a refused setup means, e.g. a flag this kernel lacks).
 */
static inline int ring_setup(struct ring *r, unsigned entries, struct io_uring_params *p)
{
	struct io_uring_params zero = {};
	int e;

	memset(r, 0, sizeof(*r));
	r->fd = sys_io_uring_setup(entries, p ? p : &zero);
	if (r->fd < 0)
		return -1;
	r->p = p ? *p : zero;
	p = &r->p;
	ring_sizes(r);
	r->sq_map = mmap(NULL, r->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
			 r->fd, IORING_OFF_SQ_RING);
	if (r->sq_map == MAP_FAILED)
		goto err;
	if (p->features & IORING_FEAT_SINGLE_MMAP) {
		r->cq_map = r->sq_map;
	} else {
		r->cq_map = mmap(NULL, r->cq_len, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_CQ_RING);
		if (r->cq_map == MAP_FAILED)
			goto err;
	}
	r->sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
		       r->fd, IORING_OFF_SQES);
	if (r->sqes == MAP_FAILED)
		goto err;
	ring_pointers(r);
	return 0;
err:
	e = errno;
	pr_perror("mmap of io_uring %d (flags %#x)", r->fd, p->flags);
	close(r->fd);
	errno = e;
	return -1;
}

/*
 * io_uring_setup(entries, p) with IORING_SETUP_NO_MMAP (6.5+): the SQ and CQ
 * rings live in the program's memory at rings, the SQEs at sqes (both page
 * aligned; before 6.15 memory of more than one page must be one huge page).
 * p may be NULL (no other flag); its flags get NO_MMAP and its user_addr
 * fields are set here. 0, or -1 with errno set (not logged).
 */
static inline int ring_setup_no_mmap(struct ring *r, unsigned entries,
				     struct io_uring_params *p, void *rings, void *sqes)
{
	struct io_uring_params zero = {};

	if (!p)
		p = &zero;
	p->flags |= IORING_SETUP_NO_MMAP;
	p->sq_off.URING_USER_ADDR = (unsigned long)sqes;
	p->cq_off.URING_USER_ADDR = (unsigned long)rings;
	memset(r, 0, sizeof(*r));
	r->fd = sys_io_uring_setup(entries, p);
	if (r->fd < 0)
		return -1;
	r->p = *p;
	ring_sizes(r);
	r->sq_map = r->cq_map = rings;
	r->sqes = sqes;
	ring_pointers(r);
	return 0;
}

/* The next SQE at the program's tail, zeroed (and listed in the SQ array); NULL when full. */
static inline struct io_uring_sqe *get_sqe(struct ring *r)
{
	unsigned idx;
	struct io_uring_sqe *sqe;

	if (r->sqe_tail - load_acquire(r->sq_head) >= *r->sq_entries)
		return NULL;
	idx = r->sqe_tail & *r->sq_mask;
	sqe = (struct io_uring_sqe *)(r->sqes + (size_t)idx * r->sqe_size);
	memset(sqe, 0, r->sqe_size);
	if (r->sq_array)
		r->sq_array[idx] = idx;
	r->sqe_tail++;
	return sqe;
}

/*
 * get_sqe() that must work: the tests never overfill; exits otherwise. An
 * SQPOLL thread posts a batch's CQEs before it stores the SQ head: wait (up
 * to a second) for the head there.
 */
static inline struct io_uring_sqe *sqe_or_die(struct ring *r)
{
	struct io_uring_sqe *sqe = get_sqe(r);
	int i;

	for (i = 0; !sqe && (r->p.flags & IORING_SETUP_SQPOLL) && i < 1000; i++) {
		struct timespec ts = { 0, 1000000 };

		nanosleep(&ts, NULL);
		sqe = get_sqe(r);
	}
	if (!sqe) {
		pr_err("io_uring %d: SQ full (tail %u head %u entries %u)\n", r->fd, r->sqe_tail,
		       *r->sq_head, *r->sq_entries);
		exit(1);
	}
	return sqe;
}

/* Make the SQEs filled so far visible to the kernel: store the SQ tail (release). */
static inline void ring_flush(struct ring *r)
{
	store_release(r->sq_tail, r->sqe_tail);
}

static inline int ring_enter(struct ring *r, unsigned to_submit, unsigned wait_nr, unsigned flags)
{
	if (wait_nr)
		flags |= IORING_ENTER_GETEVENTS;
	return sys_io_uring_enter(r->fd, to_submit, wait_nr, flags, NULL, 0);
}

/*
 * ring_flush() and io_uring_enter(to_submit, wait_nr, flags); what it returns
 * (-1 with errno). With SQPOLL the thread submits: io_uring_enter() is only
 * called to wake it when it set IORING_SQ_NEED_WAKEUP, or to wait; to_submit
 * is returned then, as the kernel does.
 */
static inline int ring_submit(struct ring *r, unsigned to_submit, unsigned wait_nr, unsigned flags)
{
	ring_flush(r);
	if (r->p.flags & IORING_SETUP_SQPOLL) {
		/* the tail store must be seen before the flag is read (as liburing does) */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (load_acquire(r->sq_flags) & IORING_SQ_NEED_WAKEUP)
			flags |= IORING_ENTER_SQ_WAKEUP;
		if (!(flags & IORING_ENTER_SQ_WAKEUP) && !wait_nr)
			return to_submit;
	}
	return ring_enter(r, to_submit, wait_nr, flags);
}

/* CQEs ready at the head (tail read with acquire). */
static inline unsigned cq_ready(struct ring *r)
{
	return load_acquire(r->cq_tail) - *r->cq_head;
}

/* The CQE slot of position pos (a 32-bit counter value, as the head and tail are). */
static inline struct io_uring_cqe *cqe_at(struct ring *r, unsigned pos)
{
	return (struct io_uring_cqe *)(r->cqes + (size_t)(pos & *r->cq_mask) * r->cqe_size);
}

static inline struct io_uring_cqe *peek_cqe(struct ring *r)
{
	return cq_ready(r) ? cqe_at(r, *r->cq_head) : NULL;
}

/* Consume the CQE at the head. */
static inline void cqe_seen(struct ring *r)
{
	store_release(r->cq_head, *r->cq_head + 1);
}

/*
 * Wait until at least n CQEs are ready, up to ms milliseconds; 0 when they
 * are, -1 (logged) otherwise. io_uring_enter(GETEVENTS) with a timeout
 * (IORING_ENTER_EXT_ARG, 5.11) where the kernel has it, else without one.
 */
static inline int ring_wait(struct ring *r, unsigned n, int ms)
{
	struct __kernel_timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	struct io_uring_getevents_arg arg = { .ts = (unsigned long)&ts };
	int ret;

	while (cq_ready(r) < n) {
		if (r->p.features & IORING_FEAT_EXT_ARG)
			ret = sys_io_uring_enter(r->fd, 0, n,
						 IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
						 &arg, sizeof(arg));
		else
			ret = ring_enter(r, 0, n, 0);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0) {
			pr_perror("io_uring %d: waiting for %u CQEs (%u ready)", r->fd, n,
				  cq_ready(r));
			return -1;
		}
	}
	return 0;
}

/* A CQE is exactly (user_data, res, flags); fail() and 1 otherwise. */
static inline int check_cqe(const struct io_uring_cqe *cqe, uint64_t user_data, int res,
			    unsigned flags, const char *what)
{
	if (cqe->user_data == user_data && cqe->res == res && cqe->flags == flags)
		return 0;
	fail("%s: CQE user_data %#llx res %d (%s) flags %#x, expected %#llx res %d flags %#x",
	     what, (unsigned long long)cqe->user_data, cqe->res,
	     cqe->res < 0 ? strerror(-cqe->res) : "-", cqe->flags,
	     (unsigned long long)user_data, res, flags);
	return 1;
}

/*
 * The CQE at the head is at position pos and is exactly (user_data, res,
 * flags); it is consumed. fail() and 1 otherwise.
 */
static inline int pop_cqe_is(struct ring *r, unsigned pos, uint64_t user_data, int res,
			     unsigned flags, const char *what)
{
	unsigned head = *r->cq_head, tail = load_acquire(r->cq_tail);

	if (head != pos || tail == head) {
		fail("%s: the CQ head is %u and its tail %u, expected a CQE at %u", what, head,
		     tail, pos);
		return 1;
	}
	if (check_cqe(cqe_at(r, pos), user_data, res, flags, what))
		return 1;
	cqe_seen(r);
	return 0;
}

/* A CQE expected, for pop_cqes_are(). */
struct cqe_want {
	uint64_t user_data;
	int res;
	unsigned flags;
};

/*
 * The n CQEs at the head are exactly want[0..n), in any order (requests
 * submitted by one io_uring_enter() may complete in another order: e.g. one
 * punted to io-wq, or one that failed before issue, whose CQE is posted before
 * the batch's inline completions); they are consumed. fail() and 1 otherwise.
 */
static inline int pop_cqes_are(struct ring *r, unsigned n, const struct cqe_want *want,
			       const char *what)
{
	unsigned head = *r->cq_head, i, j;
	char used[256] = {};

	if (n > sizeof(used))
		abort();
	if (cq_ready(r) < n) {
		fail("%s: %u CQEs ready, expected %u", what, cq_ready(r), n);
		return 1;
	}
	for (i = 0; i < n; i++) {
		const struct io_uring_cqe *cqe = cqe_at(r, head + i);

		for (j = 0; j < n; j++)
			if (!used[j] && want[j].user_data == cqe->user_data)
				break;
		if (j == n) {
			fail("%s: the CQE at %u has user_data %#llx (res %d), not one expected or "
			     "a second one", what, head + i, (unsigned long long)cqe->user_data,
			     cqe->res);
			return 1;
		}
		used[j] = 1;
		if (check_cqe(cqe, want[j].user_data, want[j].res, want[j].flags, what))
			return 1;
	}
	store_release(r->cq_head, head + n);
	return 0;
}

/* ---- SQE preparation ---------------------------------------------------------- */

static inline void prep_rw(struct io_uring_sqe *sqe, int op, int fd, const void *addr,
			   unsigned len, uint64_t off, uint64_t user_data)
{
	sqe->opcode = op;
	sqe->fd = fd;
	sqe->addr = (unsigned long)addr;
	sqe->len = len;
	sqe->off = off;
	sqe->user_data = user_data;
}

static inline void prep_nop(struct io_uring_sqe *sqe, uint64_t user_data)
{
	prep_rw(sqe, IORING_OP_NOP, -1, NULL, 0, 0, user_data);
}

/* off -1: at (and moving) the file position */
static inline void prep_read(struct io_uring_sqe *sqe, int fd, void *buf, unsigned len,
			     uint64_t off, uint64_t user_data)
{
	prep_rw(sqe, IORING_OP_READ, fd, buf, len, off, user_data);
}

static inline void prep_write(struct io_uring_sqe *sqe, int fd, const void *buf, unsigned len,
			      uint64_t off, uint64_t user_data)
{
	prep_rw(sqe, IORING_OP_WRITE, fd, buf, len, off, user_data);
}

static inline void prep_read_fixed(struct io_uring_sqe *sqe, int fd, void *buf, unsigned len,
				   uint64_t off, unsigned buf_index, uint64_t user_data)
{
	prep_rw(sqe, IORING_OP_READ_FIXED, fd, buf, len, off, user_data);
	sqe->buf_index = buf_index;
}

static inline void prep_write_fixed(struct io_uring_sqe *sqe, int fd, const void *buf,
				    unsigned len, uint64_t off, unsigned buf_index,
				    uint64_t user_data)
{
	prep_rw(sqe, IORING_OP_WRITE_FIXED, fd, buf, len, off, user_data);
	sqe->buf_index = buf_index;
}

/* ---- one operation at a time -------------------------------------------------- */

/*
 * Submit one SQE made from tmpl (its first 64 bytes; the rest of a 128-byte
 * SQE stays zero), wait for its CQE and consume it: the CQE must come next
 * (position checked) and carry tmpl's user_data; its res and flags in *res,
 * *flags (either may be NULL). 0, or fail() and 1.
 */
static inline int ring_op(struct ring *r, const struct io_uring_sqe *tmpl, int *res,
			  unsigned *flags, const char *what)
{
	unsigned pos = load_acquire(r->cq_tail);
	struct io_uring_cqe *cqe;
	int ret;

	if (cq_ready(r)) {
		fail("%s: %u CQEs are unexpectedly ready before the SQE is submitted", what,
		     cq_ready(r));
		return 1;
	}
	memcpy(sqe_or_die(r), tmpl, sizeof(*tmpl));
	ret = ring_submit(r, 1, 0, 0);
	if (ret != 1) {
		fail("%s: io_uring_enter(1 to submit) returned %d", what, ret);
		return 1;
	}
	if (ring_wait(r, 1, 5000)) {
		fail("%s: no CQE", what);
		return 1;
	}
	cqe = cqe_at(r, pos);
	if (*r->cq_head != pos || cqe->user_data != tmpl->user_data) {
		fail("%s: the CQE at %u (head %u) has user_data %#llx, expected %#llx", what, pos,
		     *r->cq_head, (unsigned long long)cqe->user_data,
		     (unsigned long long)tmpl->user_data);
		return 1;
	}
	if (res)
		*res = cqe->res;
	if (flags)
		*flags = cqe->flags;
	cqe_seen(r);
	return 0;
}

/* ring_op() whose CQE must have res want (flags not checked); fail() and 1 otherwise. */
static inline int ring_op_is(struct ring *r, const struct io_uring_sqe *tmpl, int want,
			     const char *what)
{
	int res;

	if (ring_op(r, tmpl, &res, NULL, what))
		return 1;
	if (res != want) {
		fail("%s: CQE res %d (%s), expected %d (%s)", what, res,
		     res < 0 ? strerror(-res) : "-", want, want < 0 ? strerror(-want) : "-");
		return 1;
	}
	return 0;
}

/*
 * Consume n NOPs (in batches of what the SQ and the free CQ space take), each
 * CQE checked at its exact position: moves every counter on by n. 0, or
 * fail() and 1.
 */
static inline int ring_nops(struct ring *r, unsigned n, const char *what)
{
	unsigned done = 0;

	while (done < n) {
		unsigned batch = n - done, head = load_acquire(r->cq_tail), i;
		unsigned room = *r->cq_entries - cq_ready(r);
		int ret;

		if (batch > *r->sq_entries)
			batch = *r->sq_entries;
		if (batch > room)
			batch = room;
		if (cq_ready(r)) {
			fail("%s: %u CQEs are unexpectedly ready", what, cq_ready(r));
			return 1;
		}
		for (i = 0; i < batch; i++)
			prep_nop(sqe_or_die(r), NOP_UD_BASE + done + i);
		ret = ring_submit(r, batch, 0, 0);
		if (ret != (int)batch) {
			fail("%s: io_uring_enter(%u to submit) returned %d", what, batch, ret);
			return 1;
		}
		if (ring_wait(r, batch, 5000)) {
			fail("%s: NOP completions missing", what);
			return 1;
		}
		for (i = 0; i < batch; i++)
			if (pop_cqe_is(r, head + i, NOP_UD_BASE + done + i, 0, 0, what))
				return 1;
		done += batch;
	}
	return 0;
}

/* ---- positions and layout in ring memory --------------------------------------- */

struct ring_pos {
	unsigned sq_head, sq_tail, cq_head, cq_tail, sq_dropped, cq_overflow;
};

static inline void ring_save_pos(struct ring *r, struct ring_pos *s)
{
	s->sq_head = load_acquire(r->sq_head);
	s->sq_tail = load_acquire(r->sq_tail);
	s->cq_head = load_acquire(r->cq_head);
	s->cq_tail = load_acquire(r->cq_tail);
	s->sq_dropped = load_acquire(r->sq_dropped);
	s->cq_overflow = load_acquire(r->cq_overflow);
}

/*
 * Ring memory shows the sizes io_uring_setup() returned (entries and masks)
 * and the positions and the dropped and overflow counts saved in s (NULL: not checked), and the program's own SQ
 * tail is the one in ring memory; fail() and 1 otherwise.
 */
static inline int ring_check(struct ring *r, const struct ring_pos *s, const char *what)
{
	struct ring_pos now;
	int bad = 0;

	if (*r->sq_entries != r->p.sq_entries || *r->sq_mask != r->p.sq_entries - 1 ||
	    *r->cq_entries != r->p.cq_entries || *r->cq_mask != r->p.cq_entries - 1) {
		fail("%s: ring memory shows sq entries %u mask %#x, cq entries %u mask %#x; "
		     "setup returned %u and %u", what, *r->sq_entries, *r->sq_mask,
		     *r->cq_entries, *r->cq_mask, r->p.sq_entries, r->p.cq_entries);
		bad = 1;
	}
	if (!s)
		return bad;
	ring_save_pos(r, &now);
	if (memcmp(&now, s, sizeof(now))) {
		fail("%s: positions sq head %u tail %u dropped %u, cq head %u tail %u overflow %u; "
		     "expected sq head %u tail %u dropped %u, cq head %u tail %u overflow %u", what,
		     now.sq_head, now.sq_tail, now.sq_dropped, now.cq_head, now.cq_tail,
		     now.cq_overflow, s->sq_head, s->sq_tail, s->sq_dropped, s->cq_head,
		     s->cq_tail, s->cq_overflow);
		bad = 1;
	}
	if (r->sqe_tail != now.sq_tail) {
		fail("%s: the program's SQ tail is %u, ring memory's %u", what, r->sqe_tail,
		     now.sq_tail);
		bad = 1;
	}
	return bad;
}

/* ---- register -------------------------------------------------------------- */

/*
 * io_uring_register(fd, op, arg, nr) must succeed (err 0; its result, >= 0, in
 * *ret when ret is not NULL) or fail with errno err; fail() and 1 otherwise.
 */
static inline int register_is(int fd, unsigned op, const void *arg, unsigned nr, int err,
			      int *ret, const char *what)
{
	int r;

	errno = 0;
	r = sys_io_uring_register(fd, op, arg, nr);
	if (err ? r == -1 && errno == err : r >= 0) {
		if (ret)
			*ret = r;
		return 0;
	}
	fail("%s: io_uring_register(%d, op %u, nr %u) returned %d, expected %s", what, fd, op,
	     nr, r, err ? strerror(err) : "success");
	return 1;
}

/* 1 when the ring's kernel supports SQE opcode op (IORING_REGISTER_PROBE), else 0. */
static inline int op_supported(int fd, unsigned op)
{
	size_t size = sizeof(struct io_uring_probe) + 256 * sizeof(struct io_uring_probe_op);
	struct io_uring_probe *probe = calloc(1, size);
	int ok;

	if (!probe)
		abort();
	ok = sys_io_uring_register(fd, IORING_REGISTER_PROBE, probe, 256) == 0 &&
	     op <= probe->last_op && (probe->ops[op].flags & IO_URING_OP_SUPPORTED);
	free(probe);
	return ok;
}

/* ---- small helpers ----------------------------------------------------------- */

/* read() exactly len bytes that must be want; fail() and 1 otherwise. */
static inline int read_is(int fd, const void *want, size_t len, const char *what)
{
	char buf[4096];
	ssize_t n;

	if (len > sizeof(buf))
		abort();
	n = read(fd, buf, len);
	if (n != (ssize_t)len || memcmp(buf, want, len)) {
		fail("%s: read %zd bytes from fd %d, expected %zu: \"%.*s\" vs \"%.*s\"", what, n,
		     fd, len, n > 0 ? (int)n : 0, buf, (int)len, (const char *)want);
		return 1;
	}
	return 0;
}

/* 1 when fd has nothing to read right now. */
static inline int nothing_to_read(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 0;
}

/* Unmap ring r and close its fd (a mapping alone keeps a ring alive). */
static inline void ring_close(struct ring *r)
{
	if (r->sq_map)
		munmap(r->sq_map, r->sq_len);
	if (r->cq_map && r->cq_map != r->sq_map)
		munmap(r->cq_map, r->cq_len);
	if (r->sqes)
		munmap(r->sqes, r->sqes_len);
	close(r->fd);
	memset(r, 0, sizeof(*r));
}

static inline void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/*
 * The static test protocol, as these programs follow it: setup(), daemonize, wait for
 * the checkpoint's end (SIGTERM), check(); PASS when check() returns 0 (each failing
 * check says why itself).
 */
static inline int uring_test_main(int argc, char **argv, int (*setup)(void), int (*check)(void))
{
	test_init(argc, argv);
	if (setup())
		return 1;

	test_daemon();
	test_waitsig();

	if (!check())
		pass();
	return 0;
}

#endif
