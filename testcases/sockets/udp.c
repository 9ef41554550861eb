/*
 * UDP over 127.0.0.1: socket a bound to port 0 (the kernel's pick) holds
 * five unread datagrams (1, 9000, 0, 33 and 1400 bytes, alternately from b
 * and c), socket b is connected to a and holds one unread datagram from a
 * (123 bytes), socket c is bound to port 0 and sends with sendto. After
 * restore the three have the same addresses (ports) and b the same peer;
 * a receives its five datagrams whole, in order, each with the right
 * sender's address as source, then nothing more; b receives a's datagram
 * with a's address; new datagrams b -> a, c -> a and a -> b go through with
 * the right source addresses, and b, being connected to a, still does not
 * receive a datagram c sends it.
 */
#include "inetcheck.h"

const char *test_doc = "UDP sockets keep their ports, peers and queued datagrams";

int main(int argc, char **argv)
{
	struct udp_set u;

	test_init(argc, argv);
	if (udp_setup(&u, AF_INET, 0xb000))
		return 1;

	test_daemon();
	test_waitsig();

	if (!udp_check(&u))
		pass();
	return 0;
}
