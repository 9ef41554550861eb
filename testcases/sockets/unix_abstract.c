/*
 * Abstract-namespace unix sockets (names made unique with the pid and a
 * random number): a listener, and a connection to it from a client bound to
 * an abstract name of its own, accepted; data queued both ways (client ->
 * server 4000 + 10 bytes, server -> client 123 bytes), and a second client
 * (unbound) connected but not accepted, holding 50 bytes (none with
 * --pending_data=0: data in a connection not accepted yet can only be read
 * by accepting it, which the engine refuses to do). After restore
 * every socket has the same address and peer (the accepted end has the
 * listener's name, its peer the client's name, and so on), byte for byte
 * with the same length; the queued data reads back exactly; the pending
 * connection is accepted with its data; the name is still taken (binding
 * it again gives EADDRINUSE) and a new client connecting to it is accepted
 * and exchanges data both ways.
 */
#include "sockcheck.h"

const char *test_doc = "abstract unix sockets keep their names, connections and data";

#define SEED_C 0x6000
#define SEED_S 0x6001
#define SEED_P 0x6002

static int pending_data = 1;
TEST_OPTION(pending_data, bool, "the pending client sends 50 bytes before the checkpoint", 0);

int main(int argc, char **argv)
{
	char lst_name[96], cli_name[96];
	struct sockaddr_un lst_sun, cli_sun;
	socklen_t lst_len, cli_len;
	struct sockstate lst_was, srv_was, cli_was, pend_was;
	struct sockaddr_storage unnamed = { .ss_family = AF_UNIX };
	int lst, srv, cli, pend, acc, other, bad = 0;
	uint32_t r = rand32();

	test_init(argc, argv);
	ssprintf(lst_name, "crbench-unix_abstract-%d-%08x-listen", getpid(), r);
	ssprintf(cli_name, "crbench-unix_abstract-%d-%08x-client", getpid(), r);
	lst_len = unix_addr(&lst_sun, lst_name, 1);
	cli_len = unix_addr(&cli_sun, cli_name, 1);
	lst = socket(AF_UNIX, SOCK_STREAM, 0);
	cli = socket(AF_UNIX, SOCK_STREAM, 0);
	pend = socket(AF_UNIX, SOCK_STREAM, 0);
	if (lst < 0 || cli < 0 || pend < 0 || bind(lst, (struct sockaddr *)&lst_sun, lst_len) ||
	    listen(lst, 4) || bind(cli, (struct sockaddr *)&cli_sun, cli_len) ||
	    connect(cli, (struct sockaddr *)&lst_sun, lst_len)) {
		pr_perror("set up the connection");
		return 1;
	}
	srv = accept(lst, NULL, NULL);
	if (srv < 0 || connect(pend, (struct sockaddr *)&lst_sun, lst_len)) {
		pr_perror("accept / connect the pending client");
		return 1;
	}
	if (pat_send(cli, SEED_C, 0, 4000, 4000) || pat_send(cli, SEED_C, 4000, 10, 10) ||
	    pat_send(srv, SEED_S, 0, 123, 123) ||
	    (pending_data && pat_send(pend, SEED_P, 0, 50, 50)))
		return 1;
	sock_record(lst, &lst_was, "listener");
	sock_record(srv, &srv_was, "accepted end");
	sock_record(cli, &cli_was, "client");
	sock_record(pend, &pend_was, "pending client");
	if (lst_was.namelen != lst_len || memcmp(&lst_was.name, &lst_sun, lst_len) ||
	    !sa_equal(&srv_was.name, srv_was.namelen, &lst_was.name, lst_was.namelen) ||
	    !sa_equal(&srv_was.peer, srv_was.peerlen, &cli_was.name, cli_was.namelen)) {
		pr_err("the abstract names are not as bound\n");
		return 1;
	}

	test_daemon();
	test_waitsig();

	bad |= sock_same(lst, &lst_was, "listener") | sock_same(srv, &srv_was, "accepted end") |
	       sock_same(cli, &cli_was, "client") | sock_same(pend, &pend_was, "pending client");
	if (bad)
		return 0;
	bad |= pat_expect(srv, SEED_C, 0, 4010, "accepted end reading the client's data");
	bad |= pat_expect(cli, SEED_S, 0, 123, "client reading the accepted end's data");
	bad |= nothing_queued(srv, "accepted end") | nothing_queued(cli, "client");
	bad |= pat_through(cli, srv, SEED_C, 4010, 1000, "new data client -> accepted end");
	bad |= pat_through(srv, cli, SEED_S, 123, 1000, "new data accepted end -> client");

	if (wait_fd(lst, POLLIN, WAIT_MS) <= 0 || (acc = accept(lst, NULL, NULL)) < 0) {
		fail("the pending connection cannot be accepted");
		return 0;
	}
	bad |= name_is(acc, 0, &lst_was.name, lst_was.namelen, "pending connection, accepted");
	bad |= name_is(acc, 1, &unnamed, sizeof(sa_family_t), "pending connection, accepted");
	if (pending_data)
		bad |= pat_expect(acc, SEED_P, 0, 50, "pending connection's data");
	bad |= nothing_queued(acc, "pending connection");
	bad |= pat_through(acc, pend, SEED_P + 1, 0, 100, "accepted pending connection -> client");
	close(acc);

	other = socket(AF_UNIX, SOCK_STREAM, 0);
	if (other < 0 || bind(other, (struct sockaddr *)&lst_sun, lst_len) == 0 || errno != EADDRINUSE) {
		fail("binding @%s again does not give EADDRINUSE: the name is not held", lst_name);
		bad = 1;
	}
	close(other);
	bad |= unix_new_client(lst, &lst_sun, lst_len, SEED_C + 0x10, SEED_S + 0x10, 3000);
	close(pend);
	close(srv);
	close(cli);
	close(lst);
	if (!bad)
		pass();
	return 0;
}
