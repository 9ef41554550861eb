/*
 * Unix sockets in flight (SCM_RIGHTS), each message carrying one fd, the
 * sender's own copy closed afterwards so the message holds the only one:
 *   - over a stream socketpair x -> y, message "p0!!" carries p0, the end of
 *     another stream socketpair (p0, p1) with 200 bytes from p1 unread;
 *   - over a datagram socketpair u -> v, the datagram "d0" carries d0, the
 *     end of a datagram socketpair (d0, d1) with datagrams of 10, 0 and 3000
 *     bytes from d1 unread;
 *   - a loop: in stream socketpair (l0, l1), l0 sent l1 to l1 ("self": l1
 *     holds itself in its own queue) and then l0 to l1 ("peer"); l0 is then
 *     only in l1's queue, l1 held by this process and by its own queue.
 * p1, d1, l1 and the carriers stay open here; nothing is received before
 * the checkpoint. After restore every socket kept here is the same
 * (sock_same); y, v and l1 receive their messages whole, each with exactly
 * one fd (no MSG_CTRUNC), in order: the received p0 is the same kind of
 * socket as p0 was, reads p1's 200 bytes and nothing more, and talks with
 * p1 both ways; the received d0 likewise gets d1's three datagrams whole and
 * exchanges new ones with d1; the fd received as "self" is l1 itself (same
 * inode; data sent by the received l0 is read through it), the one received
 * as "peer" is l0, l1's peer, and new data goes both ways between them.
 * Then nothing more is queued anywhere.
 */
#include "sockcheck.h"

const char *test_doc = "unix sockets in flight keep their queues, peers and loops";

#define SEED_P 0xb000
#define SEED_D 0xb100
#define SEED_L 0xb200
static const size_t dsizes[] = { 10, 0, 3000 };

/* Send a message of len bytes carrying fd (SCM_RIGHTS); 0 on success. */
static int send_fd(int sk, const char *data, size_t len, int fd)
{
	if (send_fds(sk, data, len, &fd, 1, MSG_DONTWAIT)) {
		pr_perror("send fd %d in '%s'", fd, data);
		return -1;
	}
	return 0;
}

/* Receive the message `data` carrying exactly one fd; the fd, or -1 after fail(). */
static int recv_fd(int sk, const char *data, const char *what)
{
	char buf[16], cbuf[CMSG_SPACE(4 * sizeof(int))];
	struct iovec iov = { buf, strlen(data) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	ssize_t k = recvmsg(sk, &mh, MSG_DONTWAIT);
	int fd;

	if (k != (ssize_t)strlen(data) || memcmp(buf, data, k)) {
		fail("%s: received %zd bytes, expected '%s'", what, k, data);
		return -1;
	}
	cm = CMSG_FIRSTHDR(&mh);
	if ((mh.msg_flags & MSG_CTRUNC) || !cm || cm->cmsg_level != SOL_SOCKET ||
	    cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(sizeof(int)) ||
	    CMSG_NXTHDR(&mh, cm)) {
		fail("%s: the message does not carry exactly one fd (flags %#x, %zu bytes of control)",
		     what, mh.msg_flags, (size_t)mh.msg_controllen);
		return -1;
	}
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

int main(int argc, char **argv)
{
	enum { X, Y, P0, P1, U, V, D0, D1, L0, L1, N };
	static const char *names[N] = { "x", "y", "p0", "p1", "u", "v", "d0", "d1", "l0", "l1" };
	static const int kept[] = { X, Y, P1, U, V, D1, L1 };
	struct sockstate was[N];
	struct stat a, b;
	int sk[N], p0, d0, l0, self, i, bad = 0;

	test_init(argc, argv);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sk + X) || socketpair(AF_UNIX, SOCK_STREAM, 0, sk + P0) ||
	    socketpair(AF_UNIX, SOCK_DGRAM, 0, sk + U) || socketpair(AF_UNIX, SOCK_DGRAM, 0, sk + D0) ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, sk + L0)) {
		pr_perror("socketpair");
		return 1;
	}
	if (pat_send(sk[P1], SEED_P, 0, 200, 200) ||
	    dgrams_send(sk[D1], SEED_D, dsizes, ARRAY_SIZE(dsizes)))
		return 1;
	for (i = 0; i < N; i++)
		sock_record(sk[i], &was[i], names[i]);
	if (send_fd(sk[X], "p0!!", 4, sk[P0]) || send_fd(sk[U], "d0", 2, sk[D0]) ||
	    send_fd(sk[L0], "self", 4, sk[L1]) || send_fd(sk[L0], "peer", 4, sk[L0]))
		return 1;
	close(sk[P0]);
	close(sk[D0]);
	close(sk[L0]);

	test_daemon();
	test_waitsig();

	for (i = 0; i < (int)ARRAY_SIZE(kept); i++)
		bad |= sock_same(sk[kept[i]], &was[kept[i]], names[kept[i]]);
	if (bad)
		return 0;

	p0 = recv_fd(sk[Y], "p0!!", "y receiving p0");
	if (p0 < 0 || sock_same(p0, &was[P0], "received p0"))
		return 0;
	bad |= pat_expect(p0, SEED_P, 0, 200, "received p0 reading p1's data");
	bad |= nothing_queued(p0, "received p0");
	bad |= pat_through(sk[P1], p0, SEED_P, 200, 1000, "new data p1 -> received p0");
	bad |= pat_through(p0, sk[P1], SEED_P + 1, 0, 1000, "new data received p0 -> p1");

	d0 = recv_fd(sk[V], "d0", "v receiving d0");
	if (d0 < 0 || sock_same(d0, &was[D0], "received d0"))
		return 0;
	bad |= dgrams_expect(d0, SEED_D, dsizes, ARRAY_SIZE(dsizes), "received d0 reading d1's datagram");
	bad |= nothing_queued(d0, "received d0");
	if (dgram_send(sk[D1], SEED_D + 0x10, 500, NULL, 0) || dgram_send(d0, SEED_D + 0x11, 600, NULL, 0)) {
		fail("sending new datagrams between d1 and the received d0");
		return 0;
	}
	bad |= dgram_expect(d0, SEED_D + 0x10, 500, NULL, NULL, "new datagram d1 -> received d0");
	bad |= dgram_expect(sk[D1], SEED_D + 0x11, 600, NULL, NULL, "new datagram received d0 -> d1");

	self = recv_fd(sk[L1], "self", "l1 receiving itself");
	if (self < 0)
		return 0;
	l0 = recv_fd(sk[L1], "peer", "l1 receiving l0");
	if (l0 < 0 || sock_same(l0, &was[L0], "received l0") || sock_same(self, &was[L1], "received l1"))
		return 0;
	if (fstat(self, &a) || fstat(sk[L1], &b) || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		fail("the fd l1 received as itself is another socket (inode %lu, l1 is %lu)",
		     (unsigned long)a.st_ino, (unsigned long)b.st_ino);
		return 0;
	}
	bad |= pat_through(l0, self, SEED_L, 0, 700, "new data received l0 -> l1 (as received)");
	bad |= pat_through(l0, sk[L1], SEED_L, 700, 300, "new data received l0 -> l1");
	bad |= pat_through(sk[L1], l0, SEED_L + 1, 0, 900, "new data l1 -> received l0");

	for (i = 0; i < (int)ARRAY_SIZE(kept); i++)
		bad |= nothing_queued(sk[kept[i]], names[kept[i]]);
	bad |= nothing_queued(l0, "received l0");
	close(p0);
	close(d0);
	close(self);
	close(l0);
	for (i = 0; i < (int)ARRAY_SIZE(kept); i++)
		close(sk[kept[i]]);
	if (!bad)
		pass();
	return 0;
}
