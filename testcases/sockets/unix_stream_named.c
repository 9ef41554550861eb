/*
 * A connected pair of named unix stream sockets: a listener bound to
 * --dirname/server.sock accepted a client bound to --dirname/client.sock,
 * then the listener was closed (its socket file stays). Data is queued both
 * ways: client -> server 3 writes (300, 5000, 1 bytes), server -> client 2
 * writes (70, 9000 bytes). After restore getsockname/getpeername of both
 * ends are as before (server end: server.sock, peer client.sock; client end
 * the reverse), flags too; each end reads exactly the other's data, in
 * order, then nothing more; new data goes through both ways; and connecting
 * to server.sock is refused (there is no listener behind it any more).
 */
#include "sockcheck.h"

const char *test_doc = "connected named unix stream sockets keep their names, peers and data";

static char *dirname;
TEST_OPTION(dirname, string, "directory for the sockets", 1);

#define SEED_C 0x5000
#define SEED_S 0x5001

int main(int argc, char **argv)
{
	char srv_path[256], cli_path[256];
	struct sockaddr_un srv_sun, cli_sun;
	socklen_t srv_len, cli_len;
	struct sockstate srv_was, cli_was;
	int lst, srv, cli, extra, bad = 0;

	test_init(argc, argv);
	ssprintf(srv_path, "%s/server.sock", dirname);
	ssprintf(cli_path, "%s/client.sock", dirname);
	if (mkdir(dirname, 0755)) {
		pr_perror("mkdir %s", dirname);
		return 1;
	}
	srv_len = unix_addr(&srv_sun, srv_path, 0);
	cli_len = unix_addr(&cli_sun, cli_path, 0);
	lst = socket(AF_UNIX, SOCK_STREAM, 0);
	cli = socket(AF_UNIX, SOCK_STREAM, 0);
	if (lst < 0 || cli < 0 || bind(lst, (struct sockaddr *)&srv_sun, srv_len) || listen(lst, 1) ||
	    bind(cli, (struct sockaddr *)&cli_sun, cli_len) ||
	    connect(cli, (struct sockaddr *)&srv_sun, srv_len)) {
		pr_perror("set up the connection");
		return 1;
	}
	srv = accept(lst, NULL, NULL);
	if (srv < 0) {
		pr_perror("accept");
		return 1;
	}
	close(lst);
	if (pat_send(cli, SEED_C, 0, 300, 300) || pat_send(cli, SEED_C, 300, 5000, 5000) ||
	    pat_send(cli, SEED_C, 5300, 1, 1) || pat_send(srv, SEED_S, 0, 70, 70) ||
	    pat_send(srv, SEED_S, 70, 9000, 9000))
		return 1;
	sock_record(srv, &srv_was, "server end");
	sock_record(cli, &cli_was, "client end");
	if (!sa_equal(&srv_was.name, srv_was.namelen, &cli_was.peer, cli_was.peerlen) ||
	    !sa_equal(&cli_was.name, cli_was.namelen, &srv_was.peer, srv_was.peerlen)) {
		pr_err("the two ends do not name each other\n");
		return 1;
	}

	test_daemon();
	test_waitsig();

	bad |= sock_same(srv, &srv_was, "server end") | sock_same(cli, &cli_was, "client end");
	if (bad)
		return 0;
	bad |= pat_expect(srv, SEED_C, 0, 5301, "server end reading the client's data");
	bad |= pat_expect(cli, SEED_S, 0, 9070, "client end reading the server's data");
	if (bad)
		return 0;
	bad |= nothing_queued(srv, "server end") | nothing_queued(cli, "client end");
	bad |= pat_through(cli, srv, SEED_C, 5301, 2222, "new data client -> server");
	bad |= pat_through(srv, cli, SEED_S, 9070, 3333, "new data server -> client");

	extra = socket(AF_UNIX, SOCK_STREAM, 0);
	if (extra < 0 || connect(extra, (struct sockaddr *)&srv_sun, srv_len) == 0 ||
	    errno != ECONNREFUSED) {
		fail("connecting to %s (its listener was closed) is not refused", srv_path);
		bad = 1;
	}
	close(extra);
	close(srv);
	close(cli);
	bad |= remove_sockets(dirname, srv_path, cli_path, NULL);
	if (!bad)
		pass();
	return 0;
}
