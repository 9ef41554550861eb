/*
 * Options of a unix stream socketpair. End 0: SO_SNDBUF 65536 and
 * SO_RCVBUF 50000 (the kernel doubles both), SO_PASSCRED on, SO_RCVTIMEO
 * 0.3 s, SO_SNDTIMEO 2.5 s. End 1: SO_SNDBUF 30000, O_NONBLOCK, the rest
 * left at the defaults. After restore SO_SNDBUF, SO_RCVBUF, SO_PASSCRED,
 * SO_RCVTIMEO, SO_SNDTIMEO and the file status flags of both ends read back
 * what they read before the checkpoint, and they act accordingly: a message
 * from end 1 arrives at end 0 with SCM_CREDENTIALS of this process; a recv
 * on end 0 with nothing queued times out after about 0.3 s with EAGAIN; a
 * recv on end 1 with nothing queued gives EAGAIN at once.
 */
#include <sys/time.h>

#include "sockcheck.h"

const char *test_doc = "unix socket options survive: buffer sizes, SO_PASSCRED, timeouts, O_NONBLOCK";

struct opts {
	int sndbuf, rcvbuf, passcred, flags;
	struct timeval rcvtimeo, sndtimeo;
};

static int get_opts(int fd, struct opts *o)
{
	socklen_t len = sizeof(struct timeval);

	memset(o, 0, sizeof(*o));
	o->sndbuf = sock_int(fd, SOL_SOCKET, SO_SNDBUF);
	o->rcvbuf = sock_int(fd, SOL_SOCKET, SO_RCVBUF);
	o->passcred = sock_int(fd, SOL_SOCKET, SO_PASSCRED);
	o->flags = fcntl(fd, F_GETFL);
	if (getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &o->rcvtimeo, &len))
		return -1;
	len = sizeof(struct timeval);
	if (getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &o->sndtimeo, &len))
		return -1;
	return o->sndbuf < 0 || o->rcvbuf < 0 || o->passcred < 0 || o->flags < 0 ? -1 : 0;
}

static int setint(int fd, int opt, int v)
{
	return setsockopt(fd, SOL_SOCKET, opt, &v, sizeof(v));
}

static int same_opts(int fd, const struct opts *was, const char *what)
{
	struct opts now;

	if (get_opts(fd, &now)) {
		fail("%s: getsockopt", what);
		return 1;
	}
	if (now.sndbuf != was->sndbuf || now.rcvbuf != was->rcvbuf || now.passcred != was->passcred ||
	    now.flags != was->flags || now.rcvtimeo.tv_sec != was->rcvtimeo.tv_sec ||
	    now.rcvtimeo.tv_usec != was->rcvtimeo.tv_usec ||
	    now.sndtimeo.tv_sec != was->sndtimeo.tv_sec ||
	    now.sndtimeo.tv_usec != was->sndtimeo.tv_usec) {
		fail("%s: SO_SNDBUF %d SO_RCVBUF %d SO_PASSCRED %d flags %#o SO_RCVTIMEO %ld.%06ld "
		     "SO_SNDTIMEO %ld.%06ld, were %d %d %d %#o %ld.%06ld %ld.%06ld",
		     what, now.sndbuf, now.rcvbuf, now.passcred, now.flags, (long)now.rcvtimeo.tv_sec,
		     (long)now.rcvtimeo.tv_usec, (long)now.sndtimeo.tv_sec, (long)now.sndtimeo.tv_usec,
		     was->sndbuf, was->rcvbuf, was->passcred, was->flags, (long)was->rcvtimeo.tv_sec,
		     (long)was->rcvtimeo.tv_usec, (long)was->sndtimeo.tv_sec,
		     (long)was->sndtimeo.tv_usec);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct timeval rcvtimeo = { 0, 300000 }, sndtimeo = { 2, 500000 };
	struct opts was[2];
	struct sockstate st[2];
	int sk[2], bad = 0;

	test_init(argc, argv);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sk) || setint(sk[0], SO_SNDBUF, 65536) ||
	    setint(sk[0], SO_RCVBUF, 50000) || setint(sk[0], SO_PASSCRED, 1) ||
	    setsockopt(sk[0], SOL_SOCKET, SO_RCVTIMEO, &rcvtimeo, sizeof(rcvtimeo)) ||
	    setsockopt(sk[0], SOL_SOCKET, SO_SNDTIMEO, &sndtimeo, sizeof(sndtimeo)) ||
	    setint(sk[1], SO_SNDBUF, 30000) || set_nonblock(sk[1], 1)) {
		pr_perror("set up");
		return 1;
	}
	if (get_opts(sk[0], &was[0]) || get_opts(sk[1], &was[1])) {
		pr_perror("getsockopt");
		return 1;
	}
	if (was[0].sndbuf != 2 * 65536 || was[0].rcvbuf != 2 * 50000 || was[0].passcred != 1 ||
	    was[1].sndbuf != 2 * 30000 || was[1].passcred != 0 || !(was[1].flags & O_NONBLOCK) ||
	    (was[0].flags & O_NONBLOCK) || was[0].rcvtimeo.tv_sec != 0 ||
	    was[0].rcvtimeo.tv_usec != 300000 || was[0].sndtimeo.tv_sec != 2 ||
	    was[0].sndtimeo.tv_usec != 500000 || was[1].rcvtimeo.tv_sec || was[1].rcvtimeo.tv_usec) {
		pr_err("the options did not take as set\n");
		return 1;
	}
	pair_record(sk, st, NULL);

	test_daemon();
	test_waitsig();

	bad |= pair_same(sk, st, NULL);
	bad |= same_opts(sk[0], &was[0], "end 0") | same_opts(sk[1], &was[1], "end 1");
	if (bad)
		return 0;

	/* SO_PASSCRED: the message comes with our credentials */
	{
		char cbuf[CMSG_SPACE(sizeof(struct ucred))], c;
		struct iovec iov = { &c, 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		struct cmsghdr *cm;
		struct ucred uc;

		if (send(sk[1], "c", 1, MSG_NOSIGNAL) != 1 || recvmsg(sk[0], &mh, 0) != 1 || c != 'c') {
			fail("a message from end 1 to end 0 did not come through");
			return 0;
		}
		cm = CMSG_FIRSTHDR(&mh);
		if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_CREDENTIALS) {
			fail("end 0 got no SCM_CREDENTIALS although SO_PASSCRED is on");
			bad = 1;
		} else {
			memcpy(&uc, CMSG_DATA(cm), sizeof(uc));
			if (uc.pid != getpid() || uc.uid != getuid() || uc.gid != getgid()) {
				fail("SCM_CREDENTIALS pid %d uid %d gid %d, expected %d %d %d", uc.pid,
				     uc.uid, uc.gid, getpid(), getuid(), getgid());
				bad = 1;
			}
		}
	}
	/* SO_RCVTIMEO: a blocking recv with nothing queued times out */
	{
		double t0 = now_mono(), dt;
		char c;
		ssize_t k = recv(sk[0], &c, 1, 0);

		dt = now_mono() - t0;
		if (k != -1 || (errno != EAGAIN && errno != EWOULDBLOCK) || dt < 0.25 || dt > 3.0) {
			fail("recv on end 0 gave %zd after %.3f s, expected EAGAIN after 0.3 s", k, dt);
			bad = 1;
		}
	}
	/* O_NONBLOCK */
	{
		double t0 = now_mono();
		char c;
		ssize_t k = recv(sk[1], &c, 1, 0);

		if (k != -1 || errno != EAGAIN || now_mono() - t0 > 0.1) {
			fail("recv on the non-blocking end 1 gave %zd, expected EAGAIN at once", k);
			bad = 1;
		}
	}
	close(sk[0]);
	close(sk[1]);
	if (!bad)
		pass();
	return 0;
}
