/*
 * A unix SOCK_DGRAM socketpair with datagrams queued both ways: end 0 sent
 * 1, 0 (an empty datagram), 100, 1500, 60000 and 7 bytes, end 1 sent 4000,
 * 0 and 2 bytes. After restore both ends are the same unnamed connected
 * unix datagram sockets with the same flags; each end receives exactly the
 * datagrams the other sent, one per recvmsg, with their sizes (boundaries
 * kept, none truncated, none merged), contents and order, then nothing more
 * is queued; new datagrams still go through both ways.
 */
#include "sockcheck.h"

const char *test_doc = "unix datagram socketpair keeps queued datagrams and their boundaries";

static const size_t sent0[] = { 1, 0, 100, 1500, 60000, 7 };
static const size_t sent1[] = { 4000, 0, 2 };
#define SEED0 0x2000
#define SEED1 0x2100

int main(int argc, char **argv)
{
	struct sockstate was[2];
	int sk[2], bad = 0;

	test_init(argc, argv);
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sk)) {
		pr_perror("socketpair");
		return 1;
	}
	if (dgrams_send(sk[0], SEED0, sent0, ARRAY_SIZE(sent0)) ||
	    dgrams_send(sk[1], SEED1, sent1, ARRAY_SIZE(sent1)))
		return 1;
	pair_record(sk, was, NULL);

	test_daemon();
	test_waitsig();

	if (pair_same(sk, was, NULL))
		return 0;
	if (dgrams_expect(sk[1], SEED0, sent0, ARRAY_SIZE(sent0), "end 1 reading end 0's datagram") ||
	    dgrams_expect(sk[0], SEED1, sent1, ARRAY_SIZE(sent1), "end 0 reading end 1's datagram"))
		return 0;
	bad |= nothing_queued(sk[0], "end 0 after its datagrams") |
	       nothing_queued(sk[1], "end 1 after its datagrams");
	if (dgram_send(sk[0], SEED0 + 100, 333, NULL, 0) || dgram_send(sk[0], SEED0 + 101, 1, NULL, 0) ||
	    dgram_send(sk[1], SEED1 + 100, 4444, NULL, 0)) {
		fail("sending new datagrams");
		return 0;
	}
	bad |= dgram_expect(sk[1], SEED0 + 100, 333, NULL, NULL, "new datagram 0 -> 1") ||
	       dgram_expect(sk[1], SEED0 + 101, 1, NULL, NULL, "second new datagram 0 -> 1");
	bad |= dgram_expect(sk[0], SEED1 + 100, 4444, NULL, NULL, "new datagram 1 -> 0");
	bad |= nothing_queued(sk[0], "end 0 at the end") | nothing_queued(sk[1], "end 1 at the end");
	if (!bad)
		pass();
	return 0;
}
