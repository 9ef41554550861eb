/*
 * An established TCP connection over 127.0.0.1, both ends in this process
 * (the listener closed after accept). The server end has a small receive
 * buffer (SO_RCVBUF 16384) and the client a small send buffer (SO_SNDBUF
 * 16384) and O_NONBLOCK: the client wrote until EAGAIN (the server read the
 * first 1000 bytes of it, then the client filled up again), so unread data
 * sits in the server's receive queue (SIOCINQ > 0) and unsent or
 * unacknowledged data in the client's send queue (SIOCOUTQ > 0). The server
 * wrote 1, 1000 and 20000 bytes the client has not read. After restore:
 * both ends have the same addresses and peers, flags, buffer sizes and
 * state ESTABLISHED; the server reads everything the client wrote after the
 * first 1000 bytes, in order, exactly once (when the client's send queue is
 * empty nothing more is queued); the client reads the server's 21001 bytes
 * and nothing more; new data goes through both ways.
 */
#include "inetcheck.h"

const char *test_doc = "an established TCP connection keeps its queued and in-flight data";

#define SEED_C 0xd000
#define SEED_S 0xd001
#define READ_BEFORE 1000
#define CHUNK 4096

/* Write the client's stream from *off until the connection takes no more. */
static int fill(int fd, uint64_t *off)
{
	uint8_t buf[CHUNK];
	int rounds = 0, idle = 0;

	while (idle < 3 && rounds++ < 1000) {
		ssize_t k;
		int wrote = 0;

		for (;;) {
			pat_fill(buf, CHUNK, SEED_C, *off);
			k = send(fd, buf, CHUNK, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (k < 0 && errno == EAGAIN)
				break;
			if (k <= 0) {
				pr_perror("send");
				return -1;
			}
			*off += k;
			wrote = 1;
		}
		idle = wrote ? 0 : idle + 1;
		sleep_ms(30);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(AF_INET, &ss);
	struct sockstate lst_st, srv_was, cli_was;
	int lst, srv, cli, small = 16384, sndbuf, rcvbuf, in_srv, out_cli, waited, bad = 0;
	uint64_t sent = 0;

	test_init(argc, argv);
	lst = socket(AF_INET, SOCK_STREAM, 0);
	cli = socket(AF_INET, SOCK_STREAM, 0);
	if (lst < 0 || cli < 0 || setsockopt(lst, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)) ||
	    bind(lst, (struct sockaddr *)&ss, len) || listen(lst, 1) ||
	    setsockopt(cli, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small))) {
		pr_perror("set up the listener");
		return 1;
	}
	sock_record(lst, &lst_st, "listener");
	if (connect(cli, (struct sockaddr *)&lst_st.name, lst_st.namelen) ||
	    (srv = accept(lst, NULL, NULL)) < 0 || set_nonblock(cli, 1)) {
		pr_perror("connect");
		return 1;
	}
	close(lst);

	if (fill(cli, &sent) || pat_expect(srv, SEED_C, 0, READ_BEFORE, "read before the checkpoint") ||
	    fill(cli, &sent))
		return 1;
	if (pat_send(srv, SEED_S, 0, 1, 1) || pat_send(srv, SEED_S, 1, 1000, 1000) ||
	    pat_send(srv, SEED_S, 1001, 20000, 20000))
		return 1;
	for (waited = 0; waited < 2000 && (outq(srv) || inq(cli) != 21001); waited += 10)
		sleep_ms(10);
	in_srv = inq(srv);
	out_cli = outq(cli);
	sndbuf = sock_int(cli, SOL_SOCKET, SO_SNDBUF);
	rcvbuf = sock_int(srv, SOL_SOCKET, SO_RCVBUF);
	test_msg("client wrote %llu bytes: %d unread at the server, %d in the client's send queue; "
		 "%d unread at the client\n", (unsigned long long)sent, in_srv, out_cli, inq(cli));
	if (in_srv <= 0 || out_cli <= 0 || inq(cli) != 21001) {
		pr_err("could not get data into both queues (server SIOCINQ %d, client SIOCOUTQ %d, "
		       "client SIOCINQ %d)\n", in_srv, out_cli, inq(cli));
		return 1;
	}
	sock_record(srv, &srv_was, "server end");
	sock_record(cli, &cli_was, "client end");

	test_daemon();
	test_waitsig();

	bad |= sock_same(srv, &srv_was, "server end") | sock_same(cli, &cli_was, "client end");
	if (sock_int(cli, SOL_SOCKET, SO_SNDBUF) != sndbuf ||
	    sock_int(srv, SOL_SOCKET, SO_RCVBUF) != rcvbuf) {
		fail("client SO_SNDBUF %d, server SO_RCVBUF %d, were %d and %d",
		     sock_int(cli, SOL_SOCKET, SO_SNDBUF), sock_int(srv, SOL_SOCKET, SO_RCVBUF), sndbuf,
		     rcvbuf);
		bad = 1;
	}
	if (tcp_state(srv) != TCP_ESTABLISHED || tcp_state(cli) != TCP_ESTABLISHED) {
		fail("TCP states %d (server), %d (client), expected ESTABLISHED", tcp_state(srv),
		     tcp_state(cli));
		bad = 1;
	}
	if (bad)
		return 0;
	test_msg("at the check: %d unread at the server, %d in the client's send queue\n", inq(srv),
		 outq(cli));

	bad |= pat_expect(srv, SEED_C, READ_BEFORE, sent - READ_BEFORE, "server reading the client's data");
	for (waited = 0; waited < WAIT_MS && outq(cli); waited += 10)
		sleep_ms(10);
	if (outq(cli)) {
		fail("the client's send queue still holds %d bytes", outq(cli));
		bad = 1;
	}
	bad |= nothing_queued(srv, "server end after the client's data");
	bad |= pat_expect(cli, SEED_S, 0, 21001, "client reading the server's data");
	bad |= nothing_queued(cli, "client end after the server's data");
	if (bad)
		return 0;
	bad |= pat_through(cli, srv, SEED_C, sent, 5000, "new data client -> server");
	bad |= pat_through(srv, cli, SEED_S, 21001, 5000, "new data server -> client");
	bad |= nothing_queued(srv, "server end at the end") | nothing_queued(cli, "client end at the end");
	close(srv);
	close(cli);
	if (!bad)
		pass();
	return 0;
}
