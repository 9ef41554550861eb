/*
 * io_uring requests in flight at the checkpoint, all at once on one ring
 * (flags 0, 16 SQ entries, 32 CQ entries) that 300 NOPs went through first:
 *  - READ (IORING_OP_READ, off -1) of 64 bytes into read_buf on an empty
 *    pipe (user_data UD_READ);
 *  - POLL_ADD of POLLIN, one-shot, on another empty pipe (UD_POLL);
 *  - POLL_ADD of POLLIN with IORING_POLL_ADD_MULTI on an eventfd that counts 0
 *    (UD_MPOLL);
 *  - RECV of 64 bytes into recv_buf on one end of a unix stream socketpair
 *    nothing was sent on (UD_RECV);
 *  - ACCEPT (SOCK_CLOEXEC, with a peer address and its length) on a listening
 *    unix stream socket bound to an abstract name with the pid in it, which
 *    nobody connects to before the checkpoint (UD_ACCEPT);
 *  - a relative TIMEOUT of 3 s (off 0, UD_TREL) and an IORING_TIMEOUT_ABS one
 *    on CLOCK_MONOTONIC 4 s after setup (UD_TABS); the monotonic times they
 *    are due at are recorded (3 s and 4 s after the time read just before
 *    they were submitted);
 *  - a NOP (UD_NOP) whose CQE is left unconsumed.
 * All 8 SQEs are submitted by one io_uring_enter(); before the checkpoint
 * (after 50 ms more) the CQ holds exactly the NOP's CQE, at position 300: none
 * of the others completed. SQ head and tail are 308, CQ head 300, tail 301.
 *
 * After restore: SQ head and tail are still 308, the CQ head 300, the NOP's
 * CQE is at 300 (user_data, res 0, flags 0), no SQE was dropped, no CQE
 * overflowed. Then one by one, each CQE waited for with a timeout (5 s;
 * io_uring_enter with IORING_ENTER_EXT_ARG, or poll() on the ring fd):
 *  - 72 bytes written to the first pipe: the READ completes with 64, read_buf
 *    holds the first 64 of them and the last 8 are left in the pipe;
 *  - 5 bytes written to the second pipe: the POLL_ADD completes with POLLIN;
 *    they are read, and 5 more written (a one-shot poll: no second CQE);
 *  - 1 written to the eventfd: the multishot poll posts POLLIN with
 *    IORING_CQE_F_MORE; the eventfd is read (1); 1 written again: a second
 *    such CQE;
 *  - 72 bytes sent on the other end of the socketpair: the RECV completes with
 *    64 and IORING_CQE_F_SOCK_NONEMPTY (kernels whose unix sockets have SO_INQ,
 *    6.17+: older ones do not tell), recv_buf holds the first 64 and the
 *    last 8 are left in the socket;
 *  - a new unix socket connected to the listener: the ACCEPT completes with a
 *    new fd, close-on-exec, the peer address length it wrote is that of an
 *    unbound unix socket (family AF_UNIX), and bytes sent through the fd come
 *    out of the connecting socket and back; a second socket connects (not a
 *    multishot ACCEPT: no second CQE);
 *  - the two timeouts complete with -ETIME: the relative one not before its
 *    due time less 50 ms (the engine starts it again with the time it had
 *    left, so it may come later by the checkpoint's downtime), the absolute one
 *    not before its due time; both within 10 s of the later of their due
 *    time and the start of the checks.
 * The timeouts may complete at any point of this (whenever they are due);
 * every other CQE only once its trigger happened. Each CQE carries a user_data
 * of these, comes as many times as its triggers make it (once; the multishot
 * poll twice) and nothing else appears in the CQ: after 200 ms more the CQ is
 * empty, at head = tail = 309, and the SQ head is still 308.
 */
#include <stddef.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "uringcheck.h"

const char *test_doc = "Requests in flight at the checkpoint: armed polls, reads, recv, accept, timeouts";

#define BURN 300
#define NR_SQES 8

#define UD_READ 0x1111000000000001ull
#define UD_POLL 0x2222000000000002ull
#define UD_MPOLL 0x3333000000000003ull
#define UD_RECV 0x4444000000000004ull
#define UD_ACCEPT 0x5555000000000005ull
#define UD_TREL 0x6666000000000006ull
#define UD_TABS 0x7777000000000007ull
#define UD_NOP 0x8888000000000008ull

#define NSEC 1000000000LL
#define MSEC 1000000LL
#define ANY_FD (-100000)	/* expected res: any fd (>= 0) */
#define BUF_LEN 64
#define SENT_LEN 72		/* written to the pipe / sent: 8 more than the READ / RECV take */
#define FILL 0xa7

enum { E_READ, E_POLL, E_MPOLL, E_RECV, E_ACCEPT, E_TREL, E_TABS, E_N };

/* A request in flight and what its CQEs must be. */
struct expect {
	uint64_t ud;
	const char *name;
	int res;		/* expected res, or ANY_FD */
	unsigned flags;		/* expected CQE flags */
	int allowed;		/* CQEs its triggers allow so far (timeouts: 1 from the start) */
	int total;		/* CQEs it must have posted at the end */
	int got;		/* CQEs seen */
	int last_res;
	int64_t due, early;	/* timeouts: due time, how much earlier it may come */
	int64_t absent, seen;	/* last time the CQ was read without it; time it was seen */
};

static struct expect exp[E_N] = {
	[E_READ] = { UD_READ, "the READ on the pipe", BUF_LEN, 0, 0, 1 },
	[E_POLL] = { UD_POLL, "the one-shot POLL_ADD on the second pipe", POLLIN, 0, 0, 1 },
	[E_MPOLL] = { UD_MPOLL, "the multishot POLL_ADD on the eventfd", POLLIN, IORING_CQE_F_MORE,
		      0, 2 },
	/* 8 bytes are left behind in the socket: IORING_CQE_F_SOCK_NONEMPTY where the kernel
	 * tells it for unix sockets (setup() decides) */
	[E_RECV] = { UD_RECV, "the RECV on the socketpair", BUF_LEN, IORING_CQE_F_SOCK_NONEMPTY, 0,
		     1 },
	[E_ACCEPT] = { UD_ACCEPT, "the ACCEPT on the listener", ANY_FD, 0, 0, 1 },
	[E_TREL] = { UD_TREL, "the relative 3 s TIMEOUT", -ETIME, 0, 1, 1 },
	[E_TABS] = { UD_TABS, "the absolute TIMEOUT (CLOCK_MONOTONIC)", -ETIME, 0, 1, 1 },
};

static struct ring r;
static struct ring_pos pos;
static int rpipe[2], ppipe[2], efd, sp[2], lfd;
static struct sockaddr_un laddr;
static socklen_t laddr_len;
static unsigned char read_buf[BUF_LEN], recv_buf[BUF_LEN];
static unsigned char sent[SENT_LEN];
static struct sockaddr_un peer;
static socklen_t peer_len;
static struct __kernel_timespec ts_rel, ts_abs;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * NSEC + ts.tv_nsec;
}

static double ms_of(int64_t ns)
{
	return ns / 1e6;
}

static struct expect *find(uint64_t ud)
{
	int i;

	for (i = 0; i < E_N; i++)
		if (exp[i].ud == ud)
			return &exp[i];
	return NULL;
}

/*
 * Consume every CQE ready, each checked against what is expected of it; the
 * times of the timeouts noted. 0, or fail() and 1.
 */
static int drain(void)
{
	int64_t before = now_ns(), after;
	unsigned head = *r.cq_head, tail = load_acquire(r.cq_tail);
	int i;

	after = now_ns();
	for (; head != tail; head++) {
		struct io_uring_cqe *cqe = cqe_at(&r, head);
		struct expect *e = find(cqe->user_data);
		int res_ok;

		if (!e) {
			fail("an unexpected CQE at %u: user_data %#llx res %d flags %#x", head,
			     (unsigned long long)cqe->user_data, cqe->res, cqe->flags);
			return 1;
		}
		if (e->got >= e->allowed) {
			fail("%s: a CQE at %u (res %d flags %#x) that nothing made it post: %d "
			     "seen before, %d allowed so far", e->name, head, cqe->res, cqe->flags,
			     e->got, e->allowed);
			return 1;
		}
		res_ok = e->res == ANY_FD ? cqe->res >= 0 : cqe->res == e->res;
		if (!res_ok || cqe->flags != e->flags) {
			fail("%s: the CQE at %u has res %d (%s) flags %#x, expected res %d flags %#x",
			     e->name, head, cqe->res, cqe->res < 0 ? strerror(-cqe->res) : "-",
			     cqe->flags, e->res, e->flags);
			return 1;
		}
		e->got++;
		e->last_res = cqe->res;
		if (e->due) {
			e->seen = after;
			pr_info("%s: seen at %+.1f ms of its due time (absent at %+.1f ms)\n",
				e->name, ms_of(after - e->due), ms_of(e->absent - e->due));
			if (after < e->due - e->early) {
				fail("%s completed %.1f ms before its due time (%.1f ms allowed)",
				     e->name, ms_of(e->due - after), ms_of(e->early));
				return 1;
			}
		}
		store_release(r.cq_head, head + 1);
	}
	for (i = 0; i < E_N; i++)
		if (exp[i].got < exp[i].total)
			exp[i].absent = before;
	return 0;
}

/* Wait up to ns nanoseconds for a CQE (IORING_ENTER_EXT_ARG, else poll() on the ring fd). */
static int wait_cq(int64_t ns)
{
	struct __kernel_timespec ts = { .tv_sec = ns / NSEC, .tv_nsec = ns % NSEC };
	struct io_uring_getevents_arg arg = { .ts = (unsigned long)&ts };
	int ret;

	if (cq_ready(&r))
		return 0;
	if (r.p.features & IORING_FEAT_EXT_ARG) {
		ret = sys_io_uring_enter(r.fd, 0, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
					 &arg, sizeof(arg));
		if (ret < 0 && errno != ETIME && errno != EINTR) {
			pr_perror("io_uring_enter(GETEVENTS, %lld ns)", (long long)ns);
			return 1;
		}
	} else {
		struct pollfd p = { .fd = r.fd, .events = POLLIN };

		ret = poll(&p, 1, (ns + MSEC - 1) / MSEC);
		if (ret < 0 && errno != EINTR) {
			pr_perror("poll on the ring fd");
			return 1;
		}
	}
	return 0;
}

/* Until e has posted n CQEs (all others checked as they come), up to deadline. */
static int wait_until(struct expect *e, int n, int64_t deadline)
{
	for (;;) {
		int64_t now;

		if (drain())
			return 1;
		if (e->got >= n)
			return 0;
		now = now_ns();
		if (now >= deadline) {
			fail("%s: %d CQEs of %d after waiting (CQ head %u tail %u): lost?", e->name,
			     e->got, n, *r.cq_head, load_acquire(r.cq_tail));
			return 1;
		}
		if (wait_cq(deadline - now))
			return 1;
	}
}

static int wait_for(struct expect *e, int n)
{
	return wait_until(e, n, now_ns() + 5 * NSEC);
}

static int write_all(int fd, const void *buf, size_t len, const char *what)
{
	if (write(fd, buf, len) != (ssize_t)len) {
		fail("writing %zu bytes to %s", len, what);
		return 1;
	}
	return 0;
}

static int setup(void)
{
	struct io_uring_sqe *sqe;
	unsigned i;
	int64_t t0;
	int ret;

	for (i = 0; i < SENT_LEN; i++)
		sent[i] = '0' + i % 75;	/* printable, no two 64-byte windows alike */
	memset(read_buf, FILL, sizeof(read_buf));
	memset(recv_buf, FILL, sizeof(recv_buf));
	memset(&peer, 0xff, sizeof(peer));
	peer_len = sizeof(peer);

	if (pipe(rpipe) || pipe(ppipe)) {
		pr_perror("pipe");
		return 1;
	}
	efd = eventfd(0, EFD_NONBLOCK);
	if (efd < 0) {
		pr_perror("eventfd");
		return 1;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp)) {
		pr_perror("socketpair");
		return 1;
	}
	/* unix stream sockets report what is left (SOCK_NONEMPTY) from the kernel that gave
	 * them SO_INQ (6.17; 6.12 has neither) */
	if (setsockopt(sp[0], SOL_SOCKET, 84 /* SO_INQ */, &(int){ 0 }, sizeof(int)))
		exp[E_RECV].flags = 0;
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (lfd < 0) {
		pr_perror("socket");
		return 1;
	}
	laddr.sun_family = AF_UNIX;
	ret = snprintf(laddr.sun_path + 1, sizeof(laddr.sun_path) - 1, "uring_inflight.%d",
		       (int)getpid());
	laddr_len = offsetof(struct sockaddr_un, sun_path) + 1 + ret;
	if (bind(lfd, (struct sockaddr *)&laddr, laddr_len) || listen(lfd, 4)) {
		pr_perror("bind or listen on @%s", laddr.sun_path + 1);
		return 1;
	}

	if (ring_setup(&r, 16, NULL)) {
		pr_perror("io_uring_setup(16)");
		return 1;
	}
	if (r.p.sq_entries != 16 || r.p.cq_entries != 32) {
		pr_err("io_uring_setup(16) made %u/%u entries, expected 16/32\n", r.p.sq_entries,
		       r.p.cq_entries);
		return 1;
	}
	if (ring_nops(&r, BURN, "the NOPs before"))
		return 1;

	sqe = sqe_or_die(&r);
	prep_read(sqe, rpipe[0], read_buf, BUF_LEN, -1ull, UD_READ);

	sqe = sqe_or_die(&r);
	prep_rw(sqe, IORING_OP_POLL_ADD, ppipe[0], NULL, 0, 0, UD_POLL);
	sqe->poll32_events = POLLIN;

	sqe = sqe_or_die(&r);
	prep_rw(sqe, IORING_OP_POLL_ADD, efd, NULL, IORING_POLL_ADD_MULTI, 0, UD_MPOLL);
	sqe->poll32_events = POLLIN;

	sqe = sqe_or_die(&r);
	prep_rw(sqe, IORING_OP_RECV, sp[0], recv_buf, BUF_LEN, 0, UD_RECV);

	sqe = sqe_or_die(&r);
	prep_rw(sqe, IORING_OP_ACCEPT, lfd, &peer, 0, (unsigned long)&peer_len, UD_ACCEPT);
	sqe->accept_flags = SOCK_CLOEXEC;

	t0 = now_ns();
	exp[E_TREL].due = t0 + 3 * NSEC;
	exp[E_TREL].early = 50 * MSEC;
	exp[E_TABS].due = t0 + 4 * NSEC;
	exp[E_TABS].early = 0;
	ts_rel.tv_sec = 3;
	ts_abs.tv_sec = exp[E_TABS].due / NSEC;
	ts_abs.tv_nsec = exp[E_TABS].due % NSEC;

	sqe = sqe_or_die(&r);
	prep_rw(sqe, IORING_OP_TIMEOUT, -1, &ts_rel, 1, 0, UD_TREL);

	sqe = sqe_or_die(&r);
	prep_rw(sqe, IORING_OP_TIMEOUT, -1, &ts_abs, 1, 0, UD_TABS);
	sqe->timeout_flags = IORING_TIMEOUT_ABS;

	prep_nop(sqe_or_die(&r), UD_NOP);

	ret = ring_submit(&r, NR_SQES, 0, 0);
	if (ret != NR_SQES) {
		pr_perror("io_uring_enter(%d to submit) returned %d", NR_SQES, ret);
		return 1;
	}
	if (ring_wait(&r, 1, 5000))
		return 1;
	sleep_ms(50);		/* anything that wrongly completes shows up */
	if (cq_ready(&r) != 1) {
		for (i = *r.cq_head; i != load_acquire(r.cq_tail); i++)
			pr_err("CQE at %u: user_data %#llx res %d flags %#x\n", i,
			       (unsigned long long)cqe_at(&r, i)->user_data, cqe_at(&r, i)->res,
			       cqe_at(&r, i)->flags);
		pr_err("before the checkpoint: %u CQEs ready, expected only the NOP's\n",
		       cq_ready(&r));
		return 1;
	}
	if (check_cqe(cqe_at(&r, BURN), UD_NOP, 0, 0, "before the checkpoint: the NOP"))
		return 1;
	exp[E_TREL].absent = exp[E_TABS].absent = now_ns();
	if (!nothing_to_read(rpipe[0]) || !nothing_to_read(ppipe[0]) ||
	    !nothing_to_read(efd) || !nothing_to_read(sp[0]) || !nothing_to_read(lfd)) {
		pr_err("before the checkpoint: something is ready to read\n");
		return 1;
	}

	ring_save_pos(&r, &pos);
	if (pos.sq_head != BURN + NR_SQES || pos.sq_tail != BURN + NR_SQES ||
	    pos.cq_head != BURN || pos.cq_tail != BURN + 1 || pos.sq_dropped ||
	    pos.cq_overflow) {
		pr_err("unexpected positions before the checkpoint: sq %u..%u cq %u..%u "
		       "dropped %u overflow %u\n", pos.sq_head, pos.sq_tail, pos.cq_head,
		       pos.cq_tail, pos.sq_dropped, pos.cq_overflow);
		return 1;
	}
	if (now_ns() > exp[E_TREL].due - 500 * MSEC)
		pr_info("setup took long: the relative timeout is due in %.1f ms\n",
			ms_of(exp[E_TREL].due - now_ns()));
	return 0;
}

/* The positions after restore: as saved, but timeouts may have completed since. */
static int check_restored(void)
{
	struct ring_pos now;

	if (ring_check(&r, NULL, "after restore"))
		return 1;
	ring_save_pos(&r, &now);
	if (now.sq_head != pos.sq_head || now.sq_tail != pos.sq_tail ||
	    now.cq_head != pos.cq_head || now.cq_tail - pos.cq_tail > 2 || now.sq_dropped ||
	    now.cq_overflow || r.sqe_tail != now.sq_tail) {
		fail("after restore: sq head %u tail %u (own %u) dropped %u, cq head %u tail %u "
		     "overflow %u; expected sq head %u tail %u, cq head %u tail %u (or up to 2 "
		     "timeouts more)", now.sq_head, now.sq_tail, r.sqe_tail, now.sq_dropped,
		     now.cq_head, now.cq_tail, now.cq_overflow, pos.sq_head, pos.sq_tail,
		     pos.cq_head, pos.cq_tail);
		return 1;
	}
	if (now.cq_tail != pos.cq_tail)
		pr_info("after restore: %u timeouts completed already\n", now.cq_tail - pos.cq_tail);
	return pop_cqe_is(&r, BURN, UD_NOP, 0, 0, "after restore: the unconsumed NOP");
}

static int check_bytes(const unsigned char *buf, const char *what)
{
	if (memcmp(buf, sent, BUF_LEN)) {
		fail("%s: the buffer holds \"%.64s\", expected \"%.64s\"", what, buf, sent);
		return 1;
	}
	return 0;
}

static int check_untouched(const unsigned char *buf, const char *what)
{
	int i;

	for (i = 0; i < BUF_LEN; i++)
		if (buf[i] != FILL) {
			fail("%s: its buffer was written (byte %d is %#x) before anything came", what,
			     i, buf[i]);
			return 1;
		}
	return 0;
}

static int check_accept(int nfd)
{
	int fl = fcntl(nfd, F_GETFD);

	if (fl < 0 || !(fl & FD_CLOEXEC)) {
		fail("the accepted fd %d: F_GETFD gives %#x, expected FD_CLOEXEC", nfd, fl);
		return 1;
	}
	if (peer_len != offsetof(struct sockaddr_un, sun_path) || peer.sun_family != AF_UNIX) {
		fail("the ACCEPT wrote a peer address of length %u family %d, expected %zu and %d "
		     "(an unbound unix socket)", peer_len, peer.sun_family,
		     offsetof(struct sockaddr_un, sun_path), AF_UNIX);
		return 1;
	}
	return 0;
}

static int check(void)
{
	int64_t start = now_ns(), deadline;
	unsigned char rest[SENT_LEN - BUF_LEN];
	uint64_t v;
	int c, c2, i;

	if (check_restored() || drain())
		return 1;

	/* the READ */
	if (check_untouched(read_buf, exp[E_READ].name) ||
	    write_all(rpipe[1], sent, SENT_LEN, "the first pipe"))
		return 1;
	exp[E_READ].allowed = 1;
	if (wait_for(&exp[E_READ], 1) || check_bytes(read_buf, exp[E_READ].name) ||
	    read_is(rpipe[0], sent + BUF_LEN, SENT_LEN - BUF_LEN, "what the READ left"))
		return 1;

	/* the one-shot poll */
	if (write_all(ppipe[1], "poll!", 5, "the second pipe"))
		return 1;
	exp[E_POLL].allowed = 1;
	if (wait_for(&exp[E_POLL], 1) || read_is(ppipe[0], "poll!", 5, "the second pipe"))
		return 1;
	/* one-shot: more data makes no second CQE (the last drain() sees it) */
	if (write_all(ppipe[1], "again", 5, "the second pipe"))
		return 1;

	/* the multishot poll, twice */
	for (i = 1; i <= 2; i++) {
		v = 1;
		if (write_all(efd, &v, sizeof(v), "the eventfd"))
			return 1;
		exp[E_MPOLL].allowed = i;
		if (wait_for(&exp[E_MPOLL], i))
			return 1;
		v = 0;
		if (read(efd, &v, sizeof(v)) != sizeof(v) || v != 1) {
			fail("reading the eventfd: %llu, expected 1", (unsigned long long)v);
			return 1;
		}
	}

	/* the RECV */
	if (check_untouched(recv_buf, exp[E_RECV].name) ||
	    write_all(sp[1], sent, SENT_LEN, "the socketpair"))
		return 1;
	exp[E_RECV].allowed = 1;
	if (wait_for(&exp[E_RECV], 1) || check_bytes(recv_buf, exp[E_RECV].name))
		return 1;
	if (recv(sp[0], rest, sizeof(rest), MSG_DONTWAIT) != (ssize_t)sizeof(rest) ||
	    memcmp(rest, sent + BUF_LEN, sizeof(rest)) || !nothing_to_read(sp[0])) {
		fail("the socketpair: not exactly the %zu bytes the RECV did not take left",
		     sizeof(rest));
		return 1;
	}

	/* the ACCEPT */
	c = socket(AF_UNIX, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&laddr, laddr_len)) {
		fail("connecting to @%s", laddr.sun_path + 1);
		return 1;
	}
	exp[E_ACCEPT].allowed = 1;
	if (wait_for(&exp[E_ACCEPT], 1) || check_accept(exp[E_ACCEPT].last_res))
		return 1;
	if (write_all(exp[E_ACCEPT].last_res, "accepted", 8, "the accepted socket") ||
	    read_is(c, "accepted", 8, "the connecting socket") ||
	    write_all(c, "back", 4, "the connecting socket") ||
	    read_is(exp[E_ACCEPT].last_res, "back", 4, "the accepted socket"))
		return 1;
	/* not multishot: a second connection makes no second CQE */
	c2 = socket(AF_UNIX, SOCK_STREAM, 0);
	if (c2 < 0 || connect(c2, (struct sockaddr *)&laddr, laddr_len)) {
		fail("connecting a second socket to @%s", laddr.sun_path + 1);
		return 1;
	}

	/* the timeouts: whenever they are due */
	for (i = E_TREL; i <= E_TABS; i++) {
		deadline = (exp[i].due > start ? exp[i].due : start) + 10 * NSEC;
		if (wait_until(&exp[i], 1, deadline))
			return 1;
	}

	/* nothing more: no second CQE of any, nothing else */
	sleep_ms(200);
	if (drain())
		return 1;
	for (i = 0; i < E_N; i++)
		if (exp[i].got != exp[i].total) {
			fail("%s: %d CQEs, expected %d", exp[i].name, exp[i].got, exp[i].total);
			return 1;
		}
	pos = (struct ring_pos){ BURN + NR_SQES, BURN + NR_SQES, BURN + 1 + 8, BURN + 1 + 8, 0, 0 };
	return ring_check(&r, &pos, "at the end");
}

int main(int argc, char **argv)
{
	return uring_test_main(argc, argv, setup, check);
}
