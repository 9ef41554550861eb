/*
 * Unix sockets whose peer is gone, holding the data it sent before it
 * closed: s, the end of a stream socketpair whose other end wrote 3000 bytes
 * (three writes of 1000) and was closed; q, the end of a seqpacket
 * socketpair whose other end sent records of 1000, 1 and 2000 bytes and was
 * closed; c, the end accepted by a listener bound to --dirname/server.sock
 * (kept open) whose unnamed client wrote 500 bytes and was closed. None of
 * them wrote anything to its peer. After restore each of the three is the
 * same socket (address, peer, flags), with the same unread byte count
 * (SIOCINQ) and the same poll() revents as before (POLLIN | POLLRDHUP |
 * POLLHUP | POLLOUT on Linux, compared as seen before the checkpoint); s
 * and c read exactly their data, q its three records whole and in order,
 * then each reads EOF (recv returns 0) and send() gives EPIPE; the listener
 * is the same and a new client can connect and exchange data.
 */
#include "sockcheck.h"

const char *test_doc = "unix sockets keep the data and the EOF of a peer that closed";

static char *dirname;
TEST_OPTION(dirname, string, "directory for the listener", 1);

enum { S, Q, C, N };
static const char *names[N] = { "stream end", "seqpacket end", "accepted end" };
#define SEED 0xa000
static const size_t records[] = { 1000, 1, 2000 };

int main(int argc, char **argv)
{
	char path[256];
	struct sockaddr_un sun;
	socklen_t len;
	struct sockstate was[N], lst_was;
	short ev[N], now;
	int sk[N], unread[N], pair[2], lst, cli, i, bad = 0;

	test_init(argc, argv);
	ssprintf(path, "%s/server.sock", dirname);
	if (mkdir(dirname, 0755)) {
		pr_perror("mkdir %s", dirname);
		return 1;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) ||
	    pat_send(pair[1], SEED + S, 0, 3000, 1000) || close(pair[1])) {
		pr_perror("set up the stream pair");
		return 1;
	}
	sk[S] = pair[0];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, pair) ||
	    dgrams_send(pair[1], SEED + Q, records, ARRAY_SIZE(records)) || close(pair[1])) {
		pr_perror("set up the seqpacket pair");
		return 1;
	}
	sk[Q] = pair[0];
	len = unix_addr(&sun, path, 0);
	lst = socket(AF_UNIX, SOCK_STREAM, 0);
	cli = socket(AF_UNIX, SOCK_STREAM, 0);
	if (lst < 0 || cli < 0 || bind(lst, (struct sockaddr *)&sun, len) || listen(lst, 4) ||
	    connect(cli, (struct sockaddr *)&sun, len) || (sk[C] = accept(lst, NULL, NULL)) < 0 ||
	    pat_send(cli, SEED + C, 0, 500, 500) || close(cli)) {
		pr_perror("set up the accepted connection");
		return 1;
	}
	sock_record(lst, &lst_was, "listener");
	for (i = 0; i < N; i++) {
		sock_record(sk[i], &was[i], names[i]);
		unread[i] = inq(sk[i]);
		ev[i] = poll_events(sk[i]);
		if ((ev[i] & (POLLIN | POLLRDHUP)) != (POLLIN | POLLRDHUP)) {
			pr_err("%s: poll revents %#x before the checkpoint: no POLLIN | POLLRDHUP\n",
			       names[i], ev[i]);
			return 1;
		}
	}
	pr_info("poll revents: %s %#x, %s %#x, %s %#x\n", names[S], ev[S], names[Q], ev[Q], names[C],
		ev[C]);

	test_daemon();
	test_waitsig();

	bad |= sock_same(lst, &lst_was, "listener");
	for (i = 0; i < N; i++) {
		bad |= sock_same(sk[i], &was[i], names[i]);
		if (inq(sk[i]) != unread[i]) {
			fail("%s: %d bytes unread, were %d", names[i], inq(sk[i]), unread[i]);
			bad = 1;
		}
		now = poll_events(sk[i]);
		if (now != ev[i]) {
			fail("%s: poll revents %#x, were %#x", names[i], now, ev[i]);
			bad = 1;
		}
	}
	if (bad)
		return 0;
	bad |= pat_expect(sk[S], SEED + S, 0, 3000, "stream end reading its closed peer's data");
	bad |= dgrams_expect(sk[Q], SEED + Q, records, ARRAY_SIZE(records),
			     "seqpacket end reading its closed peer's record");
	bad |= pat_expect(sk[C], SEED + C, 0, 500, "accepted end reading its closed client's data");
	if (bad)
		return 0;
	for (i = 0; i < N; i++) {
		char what[64];

		snprintf(what, sizeof(what), "%s after the data", names[i]);
		bad |= reads_eof(sk[i], what);
		if (send(sk[i], "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL) != -1 || errno != EPIPE) {
			fail("%s: send does not give EPIPE", names[i]);
			bad = 1;
		}
		close(sk[i]);
	}
	bad |= unix_new_client(lst, &sun, len, SEED + 0x10, SEED + 0x11, 2000);
	close(lst);
	bad |= remove_sockets(dirname, path, NULL);
	if (!bad)
		pass();
	return 0;
}
