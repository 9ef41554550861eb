/*
 * A TCP listening socket on 127.0.0.1, port 0 (the kernel's pick, learned
 * with getsockname), with SO_REUSEADDR. After restore it has the same
 * address and port, SO_REUSEADDR still on, flags as before, TCP state
 * LISTEN; the port is still held (binding it again, even with
 * SO_REUSEADDR, gives EADDRINUSE); a new connection to it is accepted, the
 * accepted socket has the listener's address and the client's as peer, and
 * it carries data both ways; no other connection is pending.
 */
#include "inetcheck.h"

const char *test_doc = "a TCP listener keeps its port and accepts new connections";

int main(int argc, char **argv)
{
	struct tcp_listener l;

	test_init(argc, argv);
	if (tcp_listener_setup(&l, AF_INET))
		return 1;

	test_daemon();
	test_waitsig();

	if (!tcp_listener_check(&l, 0xa000))
		pass();
	close(l.fd);
	return 0;
}
