/*
 * A typical unix stream server: a listener bound to --dirname/server.sock
 * (backlog 8) with three accepted connections, made in this order: from
 * client 1 (unnamed), handed to a child process forked right after its
 * connect() (the child closes its copy of the listener, the parent its copy
 * of the client end, so the client lives only in the child); from client 0
 * (unnamed); from client 2, bound to --dirname/client2.sock. Data is queued
 * both ways on each connection (client i -> server: 1000 * (i + 1) + 7
 * bytes in two writes; server -> client i: 300 * (i + 1) bytes; each its own
 * stream), and client 3 (unnamed) is connected but not accepted, without
 * data. After restore: the listener, the accepted ends and the clients have
 * the same addresses, peers and flags (accepted ends: server.sock with the
 * client's name as peer; clients: the reverse); each accepted end reads
 * exactly its own client's data, each client (client 1 in the child, which
 * checks on SIGTERM) exactly its own server end's, then nothing more, and
 * new data goes through both ways on each connection; the pending
 * connection is accepted (server.sock, unnamed peer) and carries data both
 * ways; then a new client can connect and exchange data.
 */
#include "sockcheck.h"

const char *test_doc = "a unix stream server keeps its clients, one in a child process";

static char *dirname;
TEST_OPTION(dirname, string, "directory for the sockets", 1);

#define NCONN 3
#define SEED_C 0xc000   /* + i: client i -> server */
#define SEED_S 0xc100   /* + i: server -> client i */
#define CLEN(i) (1000 * ((i) + 1) + 7)
#define SLEN(i) (300 * ((i) + 1))
#define NEW 1500

/* Client 1, in the child. */
struct child_client {
	int lst, cli;
	struct sockstate was;
};

static int child_setup(void *arg)
{
	struct child_client *c = arg;

	close(c->lst);
	sock_record(c->cli, &c->was, "client 1");
	return pat_send(c->cli, SEED_C + 1, 0, 1000, 1000) ||
	       pat_send(c->cli, SEED_C + 1, 1000, CLEN(1) - 1000, CLEN(1) - 1000);
}

/* After SIGTERM: read the server's data, send NEW bytes, read NEW back. */
static int child_check(void *arg)
{
	struct child_client *c = arg;

	if (sock_same(c->cli, &c->was, "client 1 (in the child)") ||
	    pat_expect(c->cli, SEED_S + 1, 0, SLEN(1), "client 1 reading its server end's data") ||
	    nothing_queued(c->cli, "client 1") ||
	    pat_send(c->cli, SEED_C + 1, CLEN(1), NEW, NEW) ||
	    pat_expect(c->cli, SEED_S + 1, SLEN(1), NEW, "client 1 reading new data"))
		return 1;
	return 0;
}

int main(int argc, char **argv)
{
	static struct child_client child;
	char srv_path[256], cli_path[256], what[64];
	struct sockaddr_un srv_sun, cli_sun;
	socklen_t srv_len, cli_len;
	struct sockaddr_storage unnamed = { .ss_family = AF_UNIX };
	struct sockstate lst_was, srv_was[NCONN], cli_was[NCONN], pend_was;
	int lst, cli[NCONN], srv[NCONN], pend, acc, i, bad = 0;
	pid_t pid;

	test_init(argc, argv);
	ssprintf(srv_path, "%s/server.sock", dirname);
	ssprintf(cli_path, "%s/client2.sock", dirname);
	if (mkdir(dirname, 0755)) {
		pr_perror("mkdir %s", dirname);
		return 1;
	}
	srv_len = unix_addr(&srv_sun, srv_path, 0);
	cli_len = unix_addr(&cli_sun, cli_path, 0);
	lst = socket(AF_UNIX, SOCK_STREAM, 0);
	cli[1] = socket(AF_UNIX, SOCK_STREAM, 0);
	if (lst < 0 || cli[1] < 0 || bind(lst, (struct sockaddr *)&srv_sun, srv_len) ||
	    listen(lst, 8) || connect(cli[1], (struct sockaddr *)&srv_sun, srv_len)) {
		pr_perror("set up the listener and client 1");
		return 1;
	}
	child.lst = lst;
	child.cli = cli[1];
	pid = fork_checker(child_setup, child_check, &child);
	close(cli[1]);
	cli[0] = socket(AF_UNIX, SOCK_STREAM, 0);
	cli[2] = socket(AF_UNIX, SOCK_STREAM, 0);
	if (cli[0] < 0 || cli[2] < 0 || connect(cli[0], (struct sockaddr *)&srv_sun, srv_len) ||
	    bind(cli[2], (struct sockaddr *)&cli_sun, cli_len) ||
	    connect(cli[2], (struct sockaddr *)&srv_sun, srv_len)) {
		pr_perror("connect clients 0 and 2");
		return 1;
	}
	/* accepted in the order connected: client 1, 0, 2 */
	if ((srv[1] = accept(lst, NULL, NULL)) < 0 || (srv[0] = accept(lst, NULL, NULL)) < 0 ||
	    (srv[2] = accept(lst, NULL, NULL)) < 0) {
		pr_perror("accept");
		return 1;
	}
	pend = socket(AF_UNIX, SOCK_STREAM, 0);
	if (pend < 0 || connect(pend, (struct sockaddr *)&srv_sun, srv_len)) {
		pr_perror("connect the pending client");
		return 1;
	}
	for (i = 0; i < NCONN; i++)
		if ((i != 1 && (pat_send(cli[i], SEED_C + i, 0, 1000, 1000) ||
				pat_send(cli[i], SEED_C + i, 1000, CLEN(i) - 1000, CLEN(i)))) ||
		    pat_send(srv[i], SEED_S + i, 0, SLEN(i), SLEN(i)))
			return 1;
	sock_record(lst, &lst_was, "listener");
	sock_record(pend, &pend_was, "pending client");
	for (i = 0; i < NCONN; i++) {
		snprintf(what, sizeof(what), "server end %d", i);
		sock_record(srv[i], &srv_was[i], what);
		if (i != 1) {
			snprintf(what, sizeof(what), "client %d", i);
			sock_record(cli[i], &cli_was[i], what);
		}
	}
	if (!sa_equal(&srv_was[2].peer, srv_was[2].peerlen, &cli_was[2].name, cli_was[2].namelen) ||
	    !sa_equal(&srv_was[1].peer, srv_was[1].peerlen, &unnamed, sizeof(sa_family_t))) {
		pr_err("the accepted ends do not name their clients\n");
		return 1;
	}

	test_daemon();
	test_waitsig();

	bad |= sock_same(lst, &lst_was, "listener") | sock_same(pend, &pend_was, "pending client");
	for (i = 0; i < NCONN; i++) {
		snprintf(what, sizeof(what), "server end %d", i);
		bad |= sock_same(srv[i], &srv_was[i], what);
		bad |= name_is(srv[i], 0, &lst_was.name, lst_was.namelen, what);
		snprintf(what, sizeof(what), "client %d", i);
		if (i != 1)
			bad |= sock_same(cli[i], &cli_was[i], what);
	}
	if (bad) {
		kill(pid, SIGKILL);
		return 0;
	}
	kill(pid, SIGTERM);     /* client 1 checks itself, sends NEW bytes, waits for NEW */
	for (i = 0; i < NCONN; i++) {
		snprintf(what, sizeof(what), "server end %d reading client %d's data", i, i);
		bad |= pat_expect(srv[i], SEED_C + i, 0, CLEN(i), what);
		if (i != 1) {
			snprintf(what, sizeof(what), "client %d reading its server end's data", i);
			bad |= pat_expect(cli[i], SEED_S + i, 0, SLEN(i), what);
			bad |= nothing_queued(cli[i], what) | nothing_queued(srv[i], "server end");
			bad |= pat_through(cli[i], srv[i], SEED_C + i, CLEN(i), NEW, "new data client -> server");
		} else {
			bad |= pat_expect(srv[1], SEED_C + 1, CLEN(1), NEW, "server end 1 reading new data");
		}
		if (i == 1)     /* the child reads it */
			bad |= pat_send(srv[1], SEED_S + 1, SLEN(1), NEW, NEW);
		else
			bad |= pat_through(srv[i], cli[i], SEED_S + i, SLEN(i), NEW,
					   "new data server -> client");
	}
	bad |= child_passed(pid, "client 1, in the child");

	if (wait_fd(lst, POLLIN, WAIT_MS) <= 0 || (acc = accept(lst, NULL, NULL)) < 0) {
		fail("the pending connection cannot be accepted");
		return 0;
	}
	bad |= name_is(acc, 0, &lst_was.name, lst_was.namelen, "pending connection, accepted");
	bad |= name_is(acc, 1, &unnamed, sizeof(sa_family_t), "pending connection, accepted");
	bad |= nothing_queued(acc, "pending connection");
	bad |= pat_through(pend, acc, SEED_C + 3, 0, NEW, "new data pending client -> server");
	bad |= pat_through(acc, pend, SEED_S + 3, 0, NEW, "new data server -> pending client");
	bad |= unix_new_client(lst, &srv_sun, srv_len, SEED_C + 4, SEED_S + 4, NEW);
	for (i = 0; i < NCONN; i++) {
		close(srv[i]);
		if (i != 1)
			close(cli[i]);
	}
	close(acc);
	close(pend);
	close(lst);
	bad |= remove_sockets(dirname, srv_path, cli_path, NULL);
	if (!bad)
		pass();
	return 0;
}
