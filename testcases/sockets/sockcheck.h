/*
 * What the socket tests share: data patterns that show a lost, repeated or
 * reordered byte, sending and expecting stream data and datagrams, a record
 * of a socket's identity (domain, type, protocol, flags, own and peer
 * address) compared after restore, for one socket or both ends of a pair,
 * queue sizes, unique names, a listener taking a new client.
 */
#ifndef SOCKCHECK_H_
#define SOCKCHECK_H_

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "helpers.h"

/* How long to wait for data that must come, and for data that must not. */
#define WAIT_MS 5000
#define QUIET_MS 200

/*
 * Byte `i` of data stream `seed`: 4-byte words counting up (scrambled), so a
 * piece lost, repeated or moved shows wherever it is.
 */
static inline uint8_t pat_byte(uint32_t seed, uint64_t i)
{
	uint32_t word = ((uint32_t)(i / 4) + seed * 0x10001u) * 2654435761u ^ seed;

	return (uint8_t)(word >> (8 * (i % 4)));
}

static inline void pat_fill(uint8_t *buf, size_t len, uint32_t seed, uint64_t off)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = pat_byte(seed, off + i);
}

/* Index of the first byte that is not stream `seed` from `off`, or -1. */
static inline long pat_diff(const uint8_t *buf, size_t len, uint32_t seed, uint64_t off)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (buf[i] != pat_byte(seed, off + i))
			return (long)i;
	return -1;
}

/* A random 32-bit number (for names other runs must not share). */
static inline uint32_t rand32(void)
{
	uint32_t r;

	if (getrandom(&r, sizeof(r), 0) != sizeof(r)) {
		pr_perror("getrandom");
		exit(1);
	}
	return r;
}

/* Wait up to ms for `events` on fd; the revents, 0 on timeout, -1 on error. */
static inline int wait_fd(int fd, short events, int ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int n;

	do
		n = poll(&p, 1, ms);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -1 : n == 0 ? 0 : p.revents;
}

/* Unread bytes (SIOCINQ) and unsent or unacknowledged bytes (SIOCOUTQ); -1 on error. */
static inline int inq(int fd)
{
	int n;

	return ioctl(fd, SIOCINQ, &n) ? -1 : n;
}

static inline int outq(int fd)
{
	int n;

	return ioctl(fd, SIOCOUTQ, &n) ? -1 : n;
}

/*
 * Send len bytes of stream seed from offset off, each send() of at most
 * `chunk` bytes (so several writes make up the data), never blocking for
 * longer than WAIT_MS for room: 0 when all of it went.
 */
static inline int pat_send(int fd, uint32_t seed, uint64_t off, size_t len, size_t chunk)
{
	uint8_t *buf = malloc(len ? len : 1);
	size_t done = 0;

	if (!buf)
		return -1;
	pat_fill(buf, len, seed, off);
	while (done < len) {
		size_t n = len - done < chunk ? len - done : chunk;
		ssize_t k = send(fd, buf + done, n, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (k < 0 && (errno == EAGAIN || errno == EINTR) && wait_fd(fd, POLLOUT, WAIT_MS) > 0)
			continue;
		if (k <= 0) {
			pr_perror("send of %zu bytes at %zu of %zu (seed %u)", n, done, len, seed);
			free(buf);
			return -1;
		}
		done += k;
	}
	free(buf);
	return 0;
}

/*
 * Send stream seed from offset 0 as n writes of sizes[0], sizes[1], ...
 * bytes; 0 when all went. The number of bytes sent goes to *total (unless
 * NULL).
 */
static inline int pat_send_writes(int fd, uint32_t seed, const size_t *sizes, int n, size_t *total)
{
	size_t off = 0;
	int i;

	for (i = 0; i < n; i++) {
		if (pat_send(fd, seed, off, sizes[i], sizes[i]))
			return -1;
		off += sizes[i];
	}
	if (total)
		*total = off;
	return 0;
}

/*
 * Read exactly len bytes from a stream socket and check that they are stream
 * seed from offset off. Reports with fail() and returns 1 when they are not.
 */
static inline int pat_expect(int fd, uint32_t seed, uint64_t off, size_t len, const char *what)
{
	uint8_t *buf = malloc(len ? len : 1);
	size_t done = 0;
	long at;

	if (!buf) {
		fail("%s: out of memory", what);
		return 1;
	}
	while (done < len) {
		ssize_t k = recv(fd, buf + done, len - done, MSG_DONTWAIT);

		if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (wait_fd(fd, POLLIN, WAIT_MS) <= 0) {
				fail("%s: no more data after %zu of %zu bytes", what, done, len);
				free(buf);
				return 1;
			}
			continue;
		}
		if (k <= 0) {
			fail("%s: recv gave %zd after %zu of %zu bytes", what, k, done, len);
			free(buf);
			return 1;
		}
		done += k;
	}
	at = pat_diff(buf, len, seed, off);
	if (at >= 0)
		fail("%s: byte %ld of %zu is %#x, expected %#x (data lost, repeated or out of order)",
		     what, at, len, buf[at], pat_byte(seed, off + at));
	free(buf);
	return at >= 0;
}

/* After restore: len new bytes of stream seed (from off) go from one socket to another. */
static inline int pat_through(int from, int to, uint32_t seed, uint64_t off, size_t len,
			      const char *what)
{
	if (pat_send(from, seed, off, len, len)) {
		fail("%s: sending %zu bytes failed", what, len);
		return 1;
	}
	return pat_expect(to, seed, off, len, what);
}

/* Nothing may be left to read (and the socket may not be at EOF either). */
static inline int nothing_queued(int fd, const char *what)
{
	char c;
	ssize_t k = recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK);

	if (k < 0 && errno == EAGAIN)
		return 0;
	if (k < 0)
		fail("%s: recv: expected EAGAIN (nothing queued)", what);
	else if (k == 0)
		fail("%s: reads EOF (or an empty datagram), expected nothing queued", what);
	else
		fail("%s: more data is queued than was sent (%d bytes)", what, inq(fd));
	return 1;
}

/* The socket reads EOF: recv returns 0 at once. */
static inline int reads_eof(int fd, const char *what)
{
	char c;
	ssize_t k = recv(fd, &c, 1, MSG_DONTWAIT);

	if (k == 0)
		return 0;
	if (k < 0)
		fail("%s: recv: expected 0 (EOF)", what);
	else
		fail("%s: read a byte, expected EOF", what);
	return 1;
}

/* Send one datagram: len bytes of stream seed (to `to` unless NULL); 0 on success. */
static inline int dgram_send(int fd, uint32_t seed, size_t len, const struct sockaddr *to,
			     socklen_t tolen)
{
	uint8_t *buf = malloc(len ? len : 1);
	ssize_t k;

	if (!buf)
		return -1;
	pat_fill(buf, len, seed, 0);
	k = sendto(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL, to, to ? tolen : 0);
	free(buf);
	if (k != (ssize_t)len) {
		pr_perror("send of a %zu-byte datagram gave %zd", len, k);
		return -1;
	}
	return 0;
}

#define DGRAM_MAX (1 << 17)

/*
 * Receive one datagram (waiting for it) and check it is exactly len bytes of
 * stream seed, whole (no MSG_TRUNC). When from is not NULL the sender's
 * address is stored there. Reports with fail() and returns 1 otherwise.
 */
static inline int dgram_expect(int fd, uint32_t seed, size_t len, struct sockaddr_storage *from,
			       socklen_t *fromlen, const char *what)
{
	uint8_t *buf = malloc(DGRAM_MAX);
	struct iovec iov = { buf, DGRAM_MAX };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t k;
	long at;

	if (!buf) {
		fail("%s: out of memory", what);
		return 1;
	}
	if (from) {
		memset(from, 0, sizeof(*from));
		mh.msg_name = from;
		mh.msg_namelen = sizeof(*from);
	}
	if (wait_fd(fd, POLLIN, WAIT_MS) <= 0) {
		fail("%s: the %zu-byte datagram did not come", what, len);
		free(buf);
		return 1;
	}
	k = recvmsg(fd, &mh, MSG_DONTWAIT);
	if (from)
		*fromlen = mh.msg_namelen;
	if (k < 0) {
		fail("%s: recvmsg (expecting a %zu-byte datagram)", what, len);
		free(buf);
		return 1;
	}
	if ((size_t)k != len || (mh.msg_flags & MSG_TRUNC)) {
		fail("%s: got a %zd-byte datagram (flags %#x), expected %zu bytes: boundaries lost",
		     what, k, mh.msg_flags, len);
		free(buf);
		return 1;
	}
	at = pat_diff(buf, len, seed, 0);
	if (at >= 0)
		fail("%s: byte %ld of the %zu-byte datagram is %#x, expected %#x", what, at, len,
		     buf[at], pat_byte(seed, at));
	free(buf);
	return at >= 0;
}

/* Send n datagrams: datagram i is sizes[i] bytes of stream seed + i; 0 when all went. */
static inline int dgrams_send(int fd, uint32_t seed, const size_t *sizes, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (dgram_send(fd, seed + i, sizes[i], NULL, 0))
			return -1;
	return 0;
}

/*
 * Receive the n datagrams dgrams_send(seed, sizes, n) sent, in order, each
 * as dgram_expect() checks it (reported as "<what> <i>"); stops at the first
 * that is not as sent and returns 1, else 0.
 */
static inline int dgrams_expect(int fd, uint32_t seed, const size_t *sizes, int n,
				const char *what)
{
	char label[128];
	int i;

	for (i = 0; i < n; i++) {
		snprintf(label, sizeof(label), "%s %d", what, i);
		if (dgram_expect(fd, seed + i, sizes[i], NULL, NULL, label))
			return 1;
	}
	return 0;
}

/* ---- addresses ------------------------------------------------------------ */

/* A printable form of an address (unix paths, @abstract names, inet, inet6). */
static inline const char *sa_str(const struct sockaddr_storage *sa, socklen_t len, char *out,
				 size_t size)
{
	const struct sockaddr_un *un = (const void *)sa;
	const struct sockaddr_in *in = (const void *)sa;
	const struct sockaddr_in6 *in6 = (const void *)sa;
	char host[INET6_ADDRSTRLEN];
	size_t i, n, o;

	if (len < sizeof(sa_family_t)) {
		snprintf(out, size, "(none, len %u)", (unsigned)len);
		return out;
	}
	switch (sa->ss_family) {
	case AF_UNIX:
		n = len - offsetof(struct sockaddr_un, sun_path);
		if (len <= offsetof(struct sockaddr_un, sun_path)) {
			snprintf(out, size, "unix:(unnamed)");
			return out;
		}
		o = snprintf(out, size, "unix:%s", un->sun_path[0] ? "" : "@");
		for (i = un->sun_path[0] ? 0 : 1; i < n && o + 5 < size; i++) {
			unsigned char c = un->sun_path[i];
			if (c == 0 && un->sun_path[0])
				break;
			o += snprintf(out + o, size - o, c >= 32 && c < 127 ? "%c" : "\\x%02x", c);
		}
		snprintf(out + o, size - o, " (len %u)", (unsigned)len);
		return out;
	case AF_INET:
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(out, size, "%s:%u", host, ntohs(in->sin_port));
		return out;
	case AF_INET6:
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(out, size, "[%s]:%u (flow %u, scope %u)", host, ntohs(in6->sin6_port),
			 ntohl(in6->sin6_flowinfo), in6->sin6_scope_id);
		return out;
	}
	snprintf(out, size, "family %u, len %u", sa->ss_family, (unsigned)len);
	return out;
}

/* 1 when two addresses (as returned by the kernel) are the same. */
static inline int sa_equal(const struct sockaddr_storage *a, socklen_t alen,
			   const struct sockaddr_storage *b, socklen_t blen)
{
	return alen == blen && !memcmp(a, b, alen < sizeof(*a) ? alen : sizeof(*a));
}

/* A unix address for a path or (when abstract) an abstract name; its length. */
static inline socklen_t unix_addr(struct sockaddr_un *sun, const char *name, int abstract)
{
	size_t len = strlen(name);

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (len + 1 > sizeof(sun->sun_path)) {
		pr_err("unix socket name too long: %s\n", name);
		exit(1);
	}
	if (abstract) {
		memcpy(sun->sun_path + 1, name, len);
		return offsetof(struct sockaddr_un, sun_path) + 1 + len;
	}
	memcpy(sun->sun_path, name, len);
	return offsetof(struct sockaddr_un, sun_path) + len + 1;
}

/* ---- a socket's identity ---------------------------------------------------- */

struct sockstate {
	int domain, type, protocol, acceptconn;
	int flags, fdflags;
	struct sockaddr_storage name, peer;
	socklen_t namelen, peerlen;
	int peer_err;                 /* why there is no peer: ENOTCONN, EOPNOTSUPP; else 0 */
};

static inline int sock_int(int fd, int level, int opt)
{
	int v = -1;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, level, opt, &v, &len))
		return -1;
	return v;
}

static inline int sock_state(int fd, struct sockstate *st)
{
	struct stat sb;

	memset(st, 0, sizeof(*st));
	if (fstat(fd, &sb) || !S_ISSOCK(sb.st_mode))
		return -1;
	st->domain = sock_int(fd, SOL_SOCKET, SO_DOMAIN);
	st->type = sock_int(fd, SOL_SOCKET, SO_TYPE);
	st->protocol = sock_int(fd, SOL_SOCKET, SO_PROTOCOL);
	st->acceptconn = sock_int(fd, SOL_SOCKET, SO_ACCEPTCONN);
	st->flags = fcntl(fd, F_GETFL);
	st->fdflags = fcntl(fd, F_GETFD);
	st->namelen = sizeof(st->name);
	if (getsockname(fd, (struct sockaddr *)&st->name, &st->namelen))
		return -1;
	st->peerlen = sizeof(st->peer);
	if (getpeername(fd, (struct sockaddr *)&st->peer, &st->peerlen)) {
		if (errno != ENOTCONN && errno != EOPNOTSUPP)
			return -1;
		st->peer_err = errno;
		st->peerlen = 0;
	}
	return 0;
}

/* Record fd's state or exit (for the set-up phase). */
static inline void sock_record(int fd, struct sockstate *st, const char *what)
{
	if (sock_state(fd, st)) {
		pr_perror("%s: socket state of fd %d", what, fd);
		exit(1);
	}
}

/*
 * Compare fd with its record: the same kind of socket, flags, own address and
 * peer. Reports with fail() and returns 1 on a difference.
 */
static inline int sock_same(int fd, const struct sockstate *was, const char *what)
{
	struct sockstate now;
	char a[256], b[256];
	int bad = 0;

	if (sock_state(fd, &now)) {
		fail("%s: fd %d is not a socket any more", what, fd);
		return 1;
	}
	if (now.domain != was->domain || now.type != was->type || now.protocol != was->protocol) {
		fail("%s: domain/type/protocol %d/%d/%d, was %d/%d/%d", what, now.domain, now.type,
		     now.protocol, was->domain, was->type, was->protocol);
		bad = 1;
	}
	if (now.acceptconn != was->acceptconn) {
		fail("%s: SO_ACCEPTCONN %d, was %d", what, now.acceptconn, was->acceptconn);
		bad = 1;
	}
	if (now.flags != was->flags || now.fdflags != was->fdflags) {
		fail("%s: flags %#o fd flags %d, was %#o %d", what, now.flags, now.fdflags, was->flags,
		     was->fdflags);
		bad = 1;
	}
	if (!sa_equal(&now.name, now.namelen, &was->name, was->namelen)) {
		fail("%s: bound to %s, was %s", what, sa_str(&now.name, now.namelen, a, sizeof(a)),
		     sa_str(&was->name, was->namelen, b, sizeof(b)));
		bad = 1;
	}
	if (!sa_equal(&now.peer, now.peerlen, &was->peer, was->peerlen) ||
	    now.peer_err != was->peer_err) {
		fail("%s: peer %s, was %s", what,
		     now.peerlen ? sa_str(&now.peer, now.peerlen, a, sizeof(a)) : strerror(now.peer_err),
		     was->peerlen ? sa_str(&was->peer, was->peerlen, b, sizeof(b)) : strerror(was->peer_err));
		bad = 1;
	}
	return bad;
}

/* ---- both ends of a socketpair ---------------------------------------------- */

/*
 * Record both ends of socketpair sk ("end 0" and "end 1") or exit; when nread
 * is not NULL, also their unread bytes (SIOCINQ).
 */
static inline void pair_record(const int sk[2], struct sockstate was[2], int nread[2])
{
	int i;

	for (i = 0; i < 2; i++) {
		sock_record(sk[i], &was[i], i ? "end 1" : "end 0");
		if (nread)
			nread[i] = inq(sk[i]);
	}
}

/*
 * Compare both ends with what pair_record() kept: identity as sock_same()
 * checks it and, when nread is not NULL, the unread bytes. Reports each
 * difference with fail() and returns 1 on any.
 */
static inline int pair_same(const int sk[2], const struct sockstate was[2], const int nread[2])
{
	int i, bad = sock_same(sk[0], &was[0], "end 0") | sock_same(sk[1], &was[1], "end 1");

	for (i = 0; nread && i < 2; i++)
		if (inq(sk[i]) != nread[i]) {
			fail("end %d: %d bytes unread, was %d", i, inq(sk[i]), nread[i]);
			bad = 1;
		}
	return bad;
}

/* fd's own address is `want` (of length wantlen); fail() and 1 otherwise. */
static inline int name_is(int fd, int peer, const struct sockaddr_storage *want, socklen_t wantlen,
			  const char *what)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	char a[256], b[256];
	int r = peer ? getpeername(fd, (struct sockaddr *)&sa, &len)
		     : getsockname(fd, (struct sockaddr *)&sa, &len);

	if (r) {
		fail("%s: %s", what, peer ? "getpeername" : "getsockname");
		return 1;
	}
	if (!sa_equal(&sa, len, want, wantlen)) {
		fail("%s: %s is %s, expected %s", what, peer ? "peer" : "address",
		     sa_str(&sa, len, a, sizeof(a)), sa_str(want, wantlen, b, sizeof(b)));
		return 1;
	}
	return 0;
}

/*
 * The unix stream listener lst, bound to addr, still takes connections: a
 * new client connects, is accepted, and len bytes go through each way
 * (stream seed_c from the client, seed_s back). Reports with fail() and
 * returns 1 otherwise.
 */
static inline int unix_new_client(int lst, const struct sockaddr_un *addr, socklen_t addrlen,
				  uint32_t seed_c, uint32_t seed_s, size_t len)
{
	struct sockaddr_storage ss = { 0 };
	int cli, acc, bad;
	char a[256];

	cli = socket(AF_UNIX, SOCK_STREAM, 0);
	if (cli < 0 || connect(cli, (const struct sockaddr *)addr, addrlen)) {
		memcpy(&ss, addr, addrlen);
		fail("connect a new client to %s", sa_str(&ss, addrlen, a, sizeof(a)));
		if (cli >= 0)
			close(cli);
		return 1;
	}
	if (wait_fd(lst, POLLIN, WAIT_MS) <= 0 || (acc = accept(lst, NULL, NULL)) < 0) {
		fail("accept the new client");
		close(cli);
		return 1;
	}
	bad = pat_through(cli, acc, seed_c, 0, len, "new client -> server");
	bad |= pat_through(acc, cli, seed_s, 0, len, "server -> new client");
	close(acc);
	close(cli);
	return bad;
}

/* What poll() says of fd right now (in, out, read hang-up, hang-up), or -1. */
static inline short poll_events(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT | POLLRDHUP };

	if (poll(&p, 1, 0) < 0)
		return -1;
	return p.revents;
}

/*
 * Remove the socket files (a NULL-terminated list; each must still be there: a restore that
 * lost one fails here) and then the directory holding them; 1 after fail().
 */
static inline int remove_sockets(const char *dir, ...)
{
	const char *path;
	va_list ap;
	int bad = 0;

	va_start(ap, dir);
	while (!bad && (path = va_arg(ap, const char *)))
		if (unlink(path)) {
			fail("removing %s", path);
			bad = 1;
		}
	va_end(ap);
	if (!bad && rmdir(dir)) {
		fail("removing %s", dir);
		bad = 1;
	}
	return bad;
}

#endif
