/*
 * An established TCP connection to a peer outside the dumped tree: the
 * harness's echo server on 127.0.0.1:--port (test_sockets.py's EchoPeer),
 * dumped with --tcp-established. This program sends 10000 bytes; the peer
 * echoes the first 7000 at once and holds the last 3000 until the tree has
 * been dumped and killed, then sends them while the tree is away (the
 * engine's network lock must drop them, so that the kernel answers no RST and
 * the peer retransmits them to the restored socket). Before the checkpoint
 * this program reads 4000 bytes of the echo, so 3000 sit in its receive
 * queue. After restore: the socket has the same addresses, flags and state
 * ESTABLISHED; it reads the remaining 6000 bytes of the echo exactly, in
 * order; 5000 new bytes go to the peer and come back; nothing more is queued.
 */
#include "inetcheck.h"

const char *test_doc = "a TCP connection to a peer outside the tree survives C/R (--tcp-established)";

static int port;
TEST_OPTION(port, int, "port of the echo peer on 127.0.0.1", 1);

#define SEED 0xe000
#define SENT 10000
#define READ_BEFORE 4000
#define ECHOED_AT_ONCE 7000
#define NEW 5000

int main(int argc, char **argv)
{
	struct sockaddr_in peer = { .sin_family = AF_INET };
	struct sockstate was;
	int fd, waited, bad = 0;

	test_init(argc, argv);
	peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	peer.sin_port = htons(port);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&peer, sizeof(peer))) {
		pr_perror("connect to the peer on port %d", port);
		return 1;
	}
	if (pat_send(fd, SEED, 0, SENT, SENT))
		return 1;
	for (waited = 0; waited < WAIT_MS && inq(fd) < ECHOED_AT_ONCE; waited += 10)
		sleep_ms(10);
	if (inq(fd) != ECHOED_AT_ONCE) {
		pr_err("the peer echoed %d bytes, expected %d at once\n", inq(fd), ECHOED_AT_ONCE);
		return 1;
	}
	if (pat_expect(fd, SEED, 0, READ_BEFORE, "echo read before the checkpoint"))
		return 1;
	sock_record(fd, &was, "connection to the peer");

	test_daemon();
	test_waitsig();

	bad |= sock_same(fd, &was, "connection to the peer");
	if (tcp_state(fd) != TCP_ESTABLISHED) {
		fail("TCP state %d, expected ESTABLISHED", tcp_state(fd));
		bad = 1;
	}
	if (bad)
		return 0;
	bad |= pat_expect(fd, SEED, READ_BEFORE, SENT - READ_BEFORE,
			  "the rest of the echo (the last 3000 bytes sent while the tree was away)");
	bad |= pat_through(fd, fd, SEED, SENT, NEW, "new data, echoed");
	bad |= nothing_queued(fd, "connection at the end");
	close(fd);
	if (!bad)
		pass();
	return 0;
}
