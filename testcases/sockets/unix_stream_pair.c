/*
 * A unix SOCK_STREAM socketpair with data queued in both directions: end 0
 * wrote 1, 17, 1000, 4096 and 65536 bytes, of which end 1 already read the
 * first 11 (so one queued write is half read); end 1 wrote 3, 500 and 12345
 * bytes. After restore both ends are the same unnamed unix stream sockets,
 * connected, with the same flags (end 1 O_NONBLOCK) and FIONREAD counts;
 * each end reads exactly the bytes the other wrote, in order, and then
 * nothing more is queued; new data still goes through both ways.
 */
#include "sockcheck.h"

const char *test_doc = "unix stream socketpair keeps queued data both ways";

static const size_t writes0[] = { 1, 17, 1000, 4096, 65536 };
static const size_t writes1[] = { 3, 500, 12345 };
#define READ_BEFORE 11
#define SEED0 0x1001
#define SEED1 0x1002

int main(int argc, char **argv)
{
	struct sockstate was[2];
	size_t total0, total1;
	int sk[2], nread[2], bad = 0;

	test_init(argc, argv);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sk) || set_nonblock(sk[1], 1)) {
		pr_perror("socketpair");
		return 1;
	}
	if (pat_send_writes(sk[0], SEED0, writes0, ARRAY_SIZE(writes0), &total0) ||
	    pat_send_writes(sk[1], SEED1, writes1, ARRAY_SIZE(writes1), &total1))
		return 1;
	if (pat_expect(sk[1], SEED0, 0, READ_BEFORE, "read before the checkpoint"))
		return 1;
	pair_record(sk, was, nread);
	if (nread[1] != (int)(total0 - READ_BEFORE) || nread[0] != (int)total1) {
		pr_err("FIONREAD %d/%d, expected %zu/%zu\n", nread[0], nread[1], total1,
		       total0 - READ_BEFORE);
		return 1;
	}

	test_daemon();
	test_waitsig();

	if (pair_same(sk, was, nread))
		return 0;
	bad |= pat_expect(sk[1], SEED0, READ_BEFORE, total0 - READ_BEFORE, "end 1 reading 0's data");
	bad |= pat_expect(sk[0], SEED1, 0, total1, "end 0 reading 1's data");
	if (bad)
		return 0;
	bad |= nothing_queued(sk[0], "end 0 after its data") |
	       nothing_queued(sk[1], "end 1 after its data");
	bad |= pat_through(sk[0], sk[1], SEED0, total0, 3000, "new data 0 -> 1");
	bad |= pat_through(sk[1], sk[0], SEED1, total1, 2000, "new data 1 -> 0");
	bad |= nothing_queued(sk[0], "end 0 at the end") | nothing_queued(sk[1], "end 1 at the end");
	if (!bad)
		pass();
	return 0;
}
