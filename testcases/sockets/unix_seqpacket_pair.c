/*
 * A unix SOCK_SEQPACKET socketpair with packets queued both ways: end 0 sent
 * 1, 64, 1000, 30000 and 5 bytes, end 1 sent 200 and 3 bytes. After restore
 * both ends are the same unnamed connected seqpacket sockets with the same
 * flags and FIONREAD counts; each end receives exactly the packets the other
 * sent, one per recvmsg, with their sizes (boundaries kept: nothing
 * truncated, merged or split), contents and order, then nothing more is
 * queued; new packets still go through both ways.
 */
#include "sockcheck.h"

const char *test_doc = "unix seqpacket socketpair keeps queued packets and their boundaries";

static const size_t sent0[] = { 1, 64, 1000, 30000, 5 };
static const size_t sent1[] = { 200, 3 };
#define SEED0 0x3000
#define SEED1 0x3100

int main(int argc, char **argv)
{
	struct sockstate was[2];
	int sk[2], nread[2], bad = 0;

	test_init(argc, argv);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sk)) {
		pr_perror("socketpair");
		return 1;
	}
	if (dgrams_send(sk[0], SEED0, sent0, ARRAY_SIZE(sent0)) ||
	    dgrams_send(sk[1], SEED1, sent1, ARRAY_SIZE(sent1)))
		return 1;
	pair_record(sk, was, nread);
	if (nread[0] != 203 || nread[1] != 31070) {
		pr_err("FIONREAD %d/%d, expected 203/31070\n", nread[0], nread[1]);
		return 1;
	}

	test_daemon();
	test_waitsig();

	if (pair_same(sk, was, nread))
		return 0;
	if (dgrams_expect(sk[1], SEED0, sent0, ARRAY_SIZE(sent0), "end 1 reading end 0's packet") ||
	    dgrams_expect(sk[0], SEED1, sent1, ARRAY_SIZE(sent1), "end 0 reading end 1's packet"))
		return 0;
	bad |= nothing_queued(sk[0], "end 0 after its packets") |
	       nothing_queued(sk[1], "end 1 after its packets");
	if (dgram_send(sk[0], SEED0 + 100, 777, NULL, 0) || dgram_send(sk[1], SEED1 + 100, 12, NULL, 0)) {
		fail("sending new packets");
		return 0;
	}
	bad |= dgram_expect(sk[1], SEED0 + 100, 777, NULL, NULL, "new packet 0 -> 1");
	bad |= dgram_expect(sk[0], SEED1 + 100, 12, NULL, NULL, "new packet 1 -> 0");
	bad |= nothing_queued(sk[0], "end 0 at the end") | nothing_queued(sk[1], "end 1 at the end");
	if (!bad)
		pass();
	return 0;
}
