/*
 * The IPv6 variant of tcp_listen and udp, over ::1: a TCP listener on
 * [::1] port 0 with SO_REUSEADDR and IPV6_V6ONLY, and the three UDP sockets
 * (a bound to [::1]:0 holding five unread datagrams from b and c, b
 * connected to a holding one from a, c bound and sending with sendto).
 * After restore everything tcp_listen and udp check holds here too:
 * addresses and ports (and flow info and scope id), IPV6_V6ONLY, the port
 * still held, a new connection accepted and carrying data both ways, the
 * datagrams whole, in order, from the right source addresses, sending still
 * working, b still ignoring others than a. Without IPv6 on the loopback
 * this program fails, saying so: nothing is skipped.
 */
#include "inetcheck.h"

const char *test_doc = "TCP listener and UDP sockets over IPv6 loopback";

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(AF_INET6, &ss);
	struct tcp_listener l;
	struct udp_set u;
	int probe, bad = 0;

	test_init(argc, argv);
	probe = socket(AF_INET6, SOCK_DGRAM, 0);
	if (probe < 0 || bind(probe, (struct sockaddr *)&ss, len)) {
		fail("IPv6 loopback ::1 is unavailable on this host (%s), this test needs it",
		     probe < 0 ? "no AF_INET6 sockets" : "cannot bind to [::1]");
		return 1;
	}
	close(probe);
	if (tcp_listener_setup(&l, AF_INET6) || udp_setup(&u, AF_INET6, 0xc000))
		return 1;

	test_daemon();
	test_waitsig();

	bad |= tcp_listener_check(&l, 0xc800);
	bad |= udp_check(&u);
	close(l.fd);
	if (!bad)
		pass();
	return 0;
}
