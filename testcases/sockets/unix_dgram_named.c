/*
 * A named unix datagram "server" (bound to --dirname/server.sock, connected
 * to nobody) with nine datagrams queued from three senders, interleaved:
 * P, a client bound to --dirname/client.sock and connect()ed to the server
 * (it sends with send(), no address), A, a client bound to an abstract name
 * (pid + random, sendto), and U, an unbound client (sendto, so the datagrams
 * carry no sender address); sizes 0 to 60000 bytes, P, A and U each send an
 * empty one. Plus O, an unbound socket connected one-way to the server (the
 * server is not connected back) that sent nothing. After restore every
 * socket has the same address, peer and flags (P's and O's peer is
 * server.sock, the server has none); the server receives each datagram
 * whole, in order, with its sender's address from recvfrom (P's path, A's
 * abstract name byte for byte, none for U), then nothing more; new
 * datagrams reach the server from each client (P and O with plain send())
 * with the right sender address, the server's replies reach P and A; and
 * server.sock is still a socket file: a datagram sent to that path arrives.
 */
#include "sockcheck.h"

const char *test_doc = "named unix datagram sockets keep queued datagrams and their senders";

static char *dirname;
TEST_OPTION(dirname, string, "directory for the sockets", 1);

enum { P, A, U, O, NCLI };
static const char *names[NCLI] = { "path client", "abstract client", "unbound client", "one-way" };

#define SEED 0x9000
static const struct { int from; size_t len; } queued[] = {
	{ P, 100 }, { A, 0 }, { U, 3000 }, { P, 0 }, { U, 1 },
	{ A, 60000 }, { P, 7 }, { U, 0 }, { A, 512 },
};

static struct sockaddr_un srv_sun, cli_sun[NCLI];
static socklen_t srv_len, cli_len[NCLI];   /* 0: unbound (no sender address) */
static int srv, cli[NCLI];

/* Client i sends a datagram of len bytes of stream seed to the server. */
static int send_from(int i, uint32_t seed, size_t len)
{
	int conn = i == P || i == O;

	return dgram_send(cli[i], seed, len, conn ? NULL : (struct sockaddr *)&srv_sun, srv_len);
}

/* The server receives the datagram (seed, len) and it came from client i. */
static int srv_expect(int i, uint32_t seed, size_t len, const char *what)
{
	struct sockaddr_storage from;
	socklen_t fromlen;
	char a[256], b[256];

	if (dgram_expect(srv, seed, len, &from, &fromlen, what))
		return 1;
	if (fromlen != cli_len[i] || memcmp(&from, &cli_sun[i], fromlen)) {
		fail("%s: sender %s, expected %s's address %s", what, sa_str(&from, fromlen, a, sizeof(a)),
		     names[i], sa_str((void *)&cli_sun[i], cli_len[i], b, sizeof(b)));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	char srv_path[256], cli_path[256], abs_name[96], what[96];
	struct sockstate srv_was, was[NCLI];
	struct stat st;
	size_t i;
	int bad = 0;

	test_init(argc, argv);
	ssprintf(srv_path, "%s/server.sock", dirname);
	ssprintf(cli_path, "%s/client.sock", dirname);
	ssprintf(abs_name, "crbench-unix_dgram_named-%d-%08x", getpid(), rand32());
	if (mkdir(dirname, 0755)) {
		pr_perror("mkdir %s", dirname);
		return 1;
	}
	srv_len = unix_addr(&srv_sun, srv_path, 0);
	cli_len[P] = unix_addr(&cli_sun[P], cli_path, 0);
	cli_len[A] = unix_addr(&cli_sun[A], abs_name, 1);
	srv = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (srv < 0 || bind(srv, (struct sockaddr *)&srv_sun, srv_len)) {
		pr_perror("bind the server to %s", srv_path);
		return 1;
	}
	for (i = 0; i < NCLI; i++) {
		cli[i] = socket(AF_UNIX, SOCK_DGRAM, 0);
		if (cli[i] < 0 || (cli_len[i] && bind(cli[i], (struct sockaddr *)&cli_sun[i], cli_len[i])) ||
		    ((i == P || i == O) && connect(cli[i], (struct sockaddr *)&srv_sun, srv_len))) {
			pr_perror("set up the %s", names[i]);
			return 1;
		}
	}
	for (i = 0; i < ARRAY_SIZE(queued); i++)
		if (send_from(queued[i].from, SEED + i, queued[i].len))
			return 1;
	sock_record(srv, &srv_was, "server");
	for (i = 0; i < NCLI; i++)
		sock_record(cli[i], &was[i], names[i]);
	if (srv_was.peerlen || !sa_equal(&was[P].peer, was[P].peerlen, &srv_was.name, srv_was.namelen) ||
	    !sa_equal(&was[O].peer, was[O].peerlen, &srv_was.name, srv_was.namelen)) {
		pr_err("the connections are not as made\n");
		return 1;
	}

	test_daemon();
	test_waitsig();

	bad |= sock_same(srv, &srv_was, "server");
	for (i = 0; i < NCLI; i++)
		bad |= sock_same(cli[i], &was[i], names[i]);
	if (bad)
		return 0;
	for (i = 0; i < ARRAY_SIZE(queued); i++) {
		snprintf(what, sizeof(what), "queued datagram %zu (%s)", i, names[queued[i].from]);
		if (srv_expect(queued[i].from, SEED + i, queued[i].len, what))
			return 0;
	}
	if (nothing_queued(srv, "server after the queued datagrams"))
		return 0;

	for (i = 0; i < NCLI; i++) {
		snprintf(what, sizeof(what), "new datagram from the %s", names[i]);
		if (send_from(i, SEED + 0x100 + i, 1000 + i)) {
			fail("%s: cannot send", what);
			bad = 1;
			continue;
		}
		bad |= srv_expect(i, SEED + 0x100 + i, 1000 + i, what);
	}
	for (i = P; i <= A; i++) {
		snprintf(what, sizeof(what), "server's reply to the %s", names[i]);
		if (dgram_send(srv, SEED + 0x200 + i, 77, (struct sockaddr *)&cli_sun[i], cli_len[i])) {
			fail("%s: cannot send", what);
			bad = 1;
		} else {
			bad |= dgram_expect(cli[i], SEED + 0x200 + i, 77, NULL, NULL, what);
		}
	}
	if (stat(srv_path, &st) || !S_ISSOCK(st.st_mode)) {
		fail("%s is not a socket file (mode %#o)", srv_path, st.st_mode);
		bad = 1;
	}
	for (i = 0; i < NCLI; i++) {
		bad |= nothing_queued(cli[i], names[i]);
		close(cli[i]);
	}
	bad |= nothing_queued(srv, "server at the end");
	close(srv);
	bad |= remove_sockets(dirname, srv_path, cli_path, NULL);
	if (!bad)
		pass();
	return 0;
}
