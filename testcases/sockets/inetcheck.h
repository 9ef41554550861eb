/*
 * The TCP listener and UDP checks shared by the IPv4 programs (tcp_listen,
 * udp) and their IPv6 variant (inet6), over the loopback address of either
 * family, on ports the kernel picks.
 */
#ifndef INETCHECK_H_
#define INETCHECK_H_

#include <netinet/tcp.h>

#include "sockcheck.h"

/* The loopback address of `family` with port 0; its length. */
static inline socklen_t loopback(int family, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = family;
	if (family == AF_INET6) {
		((struct sockaddr_in6 *)ss)->sin6_addr = in6addr_loopback;
		return sizeof(struct sockaddr_in6);
	}
	((struct sockaddr_in *)ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sizeof(struct sockaddr_in);
}

static inline unsigned port_of(const struct sockaddr_storage *ss)
{
	return ntohs(ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_port
					       : ((const struct sockaddr_in *)ss)->sin_port);
}

static inline int tcp_state(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len))
		return -1;
	return ti.tcpi_state;
}

/* ---- a TCP listener ------------------------------------------------------------ */

struct tcp_listener {
	int family, fd, v6only;
	struct sockstate was;
};

/* A listener on loopback port 0 with SO_REUSEADDR (and IPV6_V6ONLY for IPv6). */
static inline int tcp_listener_setup(struct tcp_listener *l, int family)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(family, &ss);
	int one = 1;

	l->family = family;
	l->fd = socket(family, SOCK_STREAM, 0);
	if (l->fd < 0 || setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (family == AF_INET6 &&
	     setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))) ||
	    bind(l->fd, (struct sockaddr *)&ss, len) || listen(l->fd, 16)) {
		pr_perror("TCP listener (family %d)", family);
		return -1;
	}
	sock_record(l->fd, &l->was, "TCP listener");
	l->v6only = family == AF_INET6 ? sock_int(l->fd, IPPROTO_IPV6, IPV6_V6ONLY) : -1;
	if (port_of(&l->was.name) == 0 || sock_int(l->fd, SOL_SOCKET, SO_REUSEADDR) != 1 ||
	    (family == AF_INET6 && l->v6only != 1)) {
		pr_err("the TCP listener is not as set up\n");
		return -1;
	}
	return 0;
}

/*
 * After restore: same address (and port), SO_REUSEADDR, IPV6_V6ONLY, state
 * LISTEN; the port is still held (another bind gives EADDRINUSE); a new
 * connection is accepted, with the right addresses, and carries data both ways.
 */
static inline int tcp_listener_check(struct tcp_listener *l, uint32_t seed)
{
	struct sockaddr_storage cname;
	socklen_t clen = sizeof(cname);
	char a[128];
	int bad = 0, one = 1, other, cli, acc;

	bad |= sock_same(l->fd, &l->was, "TCP listener");
	if (sock_int(l->fd, SOL_SOCKET, SO_REUSEADDR) != 1) {
		fail("TCP listener: SO_REUSEADDR is off");
		bad = 1;
	}
	if (l->family == AF_INET6 && sock_int(l->fd, IPPROTO_IPV6, IPV6_V6ONLY) != l->v6only) {
		fail("TCP listener: IPV6_V6ONLY is %d, was %d",
		     sock_int(l->fd, IPPROTO_IPV6, IPV6_V6ONLY), l->v6only);
		bad = 1;
	}
	if (tcp_state(l->fd) != TCP_LISTEN) {
		fail("TCP listener: state %d, expected LISTEN", tcp_state(l->fd));
		bad = 1;
	}
	if (bad)
		return 1;

	other = socket(l->family, SOCK_STREAM, 0);
	if (other < 0 || setsockopt(other, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(other, (struct sockaddr *)&l->was.name, l->was.namelen) == 0 || errno != EADDRINUSE) {
		fail("TCP listener: binding %s again does not give EADDRINUSE",
		     sa_str(&l->was.name, l->was.namelen, a, sizeof(a)));
		bad = 1;
	}
	close(other);

	cli = socket(l->family, SOCK_STREAM, 0);
	if (cli < 0 || connect(cli, (struct sockaddr *)&l->was.name, l->was.namelen)) {
		fail("TCP listener: connect to %s", sa_str(&l->was.name, l->was.namelen, a, sizeof(a)));
		return 1;
	}
	if (wait_fd(l->fd, POLLIN, WAIT_MS) <= 0 || (acc = accept(l->fd, NULL, NULL)) < 0) {
		fail("TCP listener: accept of a new connection");
		close(cli);
		return 1;
	}
	if (getsockname(cli, (struct sockaddr *)&cname, &clen)) {
		fail("getsockname");
		bad = 1;
	} else {
		bad |= name_is(acc, 0, &l->was.name, l->was.namelen, "accepted connection");
		bad |= name_is(acc, 1, &cname, clen, "accepted connection");
	}
	if (tcp_state(acc) != TCP_ESTABLISHED || tcp_state(cli) != TCP_ESTABLISHED) {
		fail("the new connection is not established (%d, %d)", tcp_state(acc), tcp_state(cli));
		bad = 1;
	}
	bad |= pat_through(cli, acc, seed, 0, 10000, "TCP client -> accepted");
	bad |= pat_through(acc, cli, seed + 1, 0, 10000, "TCP accepted -> client");
	close(acc);
	close(cli);
	if (wait_fd(l->fd, POLLIN, QUIET_MS) != 0) {
		fail("TCP listener: a connection nobody made is pending");
		bad = 1;
	}
	return bad;
}

/* ---- UDP ----------------------------------------------------------------------- */

/*
 * a: bound to loopback port 0, receiving; b: connected to a (bound by the
 * kernel); c: bound to loopback port 0, not connected, sending with sendto.
 * Queued on a: b 1, c 9000, b 0, c 33, b 1400 bytes, in that order; on b:
 * one 123-byte datagram from a.
 */
struct udp_set {
	int family, fd[3];
	struct sockstate was[3];
	uint32_t seed;
};

enum { UA, UB, UC };
static const struct {
	int from;
	size_t len;
} udp_queued[] = { { UB, 1 }, { UC, 9000 }, { UB, 0 }, { UC, 33 }, { UB, 1400 } };

static inline int udp_setup(struct udp_set *u, int family, uint32_t seed)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(family, &ss);
	int i;

	u->family = family;
	u->seed = seed;
	for (i = 0; i < 3; i++) {
		u->fd[i] = socket(family, SOCK_DGRAM, 0);
		if (u->fd[i] < 0) {
			pr_perror("UDP socket");
			return -1;
		}
	}
	if (bind(u->fd[UA], (struct sockaddr *)&ss, len) || bind(u->fd[UC], (struct sockaddr *)&ss, len)) {
		pr_perror("bind UDP sockets to loopback");
		return -1;
	}
	sock_record(u->fd[UA], &u->was[UA], "UDP a");
	if (connect(u->fd[UB], (struct sockaddr *)&u->was[UA].name, u->was[UA].namelen)) {
		pr_perror("connect UDP b");
		return -1;
	}
	for (i = 0; i < (int)ARRAY_SIZE(udp_queued); i++) {
		int from = udp_queued[i].from;

		if (dgram_send(u->fd[from], seed + i, udp_queued[i].len,
			       from == UC ? (struct sockaddr *)&u->was[UA].name : NULL,
			       u->was[UA].namelen))
			return -1;
	}
	sock_record(u->fd[UB], &u->was[UB], "UDP b");
	sock_record(u->fd[UC], &u->was[UC], "UDP c");
	if (dgram_send(u->fd[UA], seed + 100, 123, (struct sockaddr *)&u->was[UB].name,
		       u->was[UB].namelen))
		return -1;
	/* loopback delivers at once; give the softirq a moment all the same */
	if (wait_fd(u->fd[UA], POLLIN, WAIT_MS) <= 0 || wait_fd(u->fd[UB], POLLIN, WAIT_MS) <= 0) {
		pr_err("the UDP datagrams did not arrive\n");
		return -1;
	}
	sleep_ms(50);
	return 0;
}

static inline int udp_from_is(const struct sockaddr_storage *from, socklen_t len,
			      const struct sockstate *want, const char *what)
{
	char a[128], b[128];

	if (sa_equal(from, len, &want->name, want->namelen))
		return 0;
	fail("%s: came from %s, expected %s", what, sa_str(from, len, a, sizeof(a)),
	     sa_str(&want->name, want->namelen, b, sizeof(b)));
	return 1;
}

/*
 * After restore: same addresses and peers; a receives its five datagrams, in
 * order, whole, each from the right sender's address, then nothing; b its one
 * from a; then b -> a, a -> b and c -> a still work, and b, connected to a,
 * still ignores a datagram from c.
 */
static inline int udp_check(struct udp_set *u)
{
	static const char *names[] = { "UDP a", "UDP b", "UDP c" };
	struct sockaddr_storage from;
	socklen_t fromlen;
	char what[96];
	int i, bad = 0;

	for (i = 0; i < 3; i++)
		bad |= sock_same(u->fd[i], &u->was[i], names[i]);
	if (bad)
		return 1;
	for (i = 0; i < (int)ARRAY_SIZE(udp_queued); i++) {
		int src = udp_queued[i].from;

		snprintf(what, sizeof(what), "queued datagram %d on a (%zu bytes from %s)", i,
			 udp_queued[i].len, names[src]);
		if (dgram_expect(u->fd[UA], u->seed + i, udp_queued[i].len, &from, &fromlen, what) ||
		    udp_from_is(&from, fromlen, &u->was[src], what))
			return 1;
	}
	bad |= nothing_queued(u->fd[UA], "UDP a after its datagrams");
	if (dgram_expect(u->fd[UB], u->seed + 100, 123, &from, &fromlen, "queued datagram on b") ||
	    udp_from_is(&from, fromlen, &u->was[UA], "queued datagram on b"))
		return 1;
	bad |= nothing_queued(u->fd[UB], "UDP b after its datagram");

	if (dgram_send(u->fd[UB], u->seed + 200, 500, NULL, 0) ||
	    dgram_send(u->fd[UC], u->seed + 201, 501, (struct sockaddr *)&u->was[UA].name,
		       u->was[UA].namelen) ||
	    dgram_send(u->fd[UC], u->seed + 202, 502, (struct sockaddr *)&u->was[UB].name,
		       u->was[UB].namelen) ||
	    dgram_send(u->fd[UA], u->seed + 203, 503, (struct sockaddr *)&u->was[UB].name,
		       u->was[UB].namelen)) {
		fail("sending new UDP datagrams");
		return 1;
	}
	bad |= dgram_expect(u->fd[UA], u->seed + 200, 500, &from, &fromlen, "new datagram b -> a") ||
	       udp_from_is(&from, fromlen, &u->was[UB], "new datagram b -> a");
	bad |= dgram_expect(u->fd[UA], u->seed + 201, 501, &from, &fromlen, "new datagram c -> a") ||
	       udp_from_is(&from, fromlen, &u->was[UC], "new datagram c -> a");
	bad |= dgram_expect(u->fd[UB], u->seed + 203, 503, &from, &fromlen,
			    "new datagram a -> b (c's datagram to b, connected to a, must be dropped)") ||
	       udp_from_is(&from, fromlen, &u->was[UA], "new datagram a -> b");
	if (wait_fd(u->fd[UB], POLLIN, QUIET_MS) != 0) {
		fail("UDP b, connected to a, has a datagram queued from someone else");
		bad = 1;
	}
	bad |= nothing_queued(u->fd[UA], "UDP a at the end") |
	       nothing_queued(u->fd[UC], "UDP c at the end");
	for (i = 0; i < 3; i++)
		close(u->fd[i]);
	return bad;
}

#endif
