/*
 * A named unix stream listener (bound in --dirname) with a backlog of four
 * connections not accepted yet; their client ends are kept open here and
 * clients 0, 2 and 3 already sent data (100 bytes; 10 + 2000 + 70000 bytes
 * in three writes; 1 byte), client 1 nothing (with --pending_data=0 no
 * client sent anything: data in a connection not accepted yet can only be
 * read by accepting it, which the engine refuses to do). After restore: the listener
 * is the same (address, SO_ACCEPTCONN, flags) and its path is still a
 * socket file, each client still has the listener's path as its peer;
 * accept() returns the four connections in the order they were made, each
 * with its own client's data and nothing more, each accepted end has the
 * listener's address and an unnamed peer, and each pair carries data both
 * ways; then no fifth connection is pending, and a new client can connect,
 * be accepted and exchange data.
 */
#include "sockcheck.h"

const char *test_doc = "unix listener keeps its backlog of unaccepted connections and their data";

static char *dirname;
TEST_OPTION(dirname, string, "directory for the socket", 1);

#define NCLI 4
#define SEED 0x4000
static const size_t sent[NCLI][3] = { { 100 }, { 0 }, { 10, 2000, 70000 }, { 1 } };
static const size_t none[3];

static int pending_data = 1;
TEST_OPTION(pending_data, bool, "clients 0, 2 and 3 send data before the checkpoint", 0);

static const size_t *writes(int i)
{
	return pending_data ? sent[i] : none;
}

static size_t total(int i)
{
	return writes(i)[0] + writes(i)[1] + writes(i)[2];
}

int main(int argc, char **argv)
{
	struct sockstate lst_was, cli_was[NCLI];
	int lst, cli[NCLI], acc[NCLI], na, i, bad = 0;
	struct sockaddr_storage lst_name, unnamed = { .ss_family = AF_UNIX };
	struct sockaddr_un sun;
	socklen_t lst_len, sun_len;
	char path[256], what[96];
	struct stat sb;

	test_init(argc, argv);
	ssprintf(path, "%s/listen.sock", dirname);
	if (mkdir(dirname, 0755)) {
		pr_perror("mkdir %s", dirname);
		return 1;
	}
	sun_len = unix_addr(&sun, path, 0);
	lst = socket(AF_UNIX, SOCK_STREAM, 0);
	if (lst < 0 || bind(lst, (struct sockaddr *)&sun, sun_len) || listen(lst, 8)) {
		pr_perror("listener at %s", path);
		return 1;
	}
	for (i = 0; i < NCLI; i++) {
		cli[i] = socket(AF_UNIX, SOCK_STREAM, 0);
		if (cli[i] < 0 || connect(cli[i], (struct sockaddr *)&sun, sun_len)) {
			pr_perror("connect client %d", i);
			return 1;
		}
		if (pat_send_writes(cli[i], SEED + i, writes(i), 3, NULL))
			return 1;
		sock_record(cli[i], &cli_was[i], "client");
	}
	sock_record(lst, &lst_was, "listener");
	lst_name = lst_was.name;
	lst_len = lst_was.namelen;

	test_daemon();
	test_waitsig();

	bad |= sock_same(lst, &lst_was, "listener");
	for (i = 0; i < NCLI; i++) {
		snprintf(what, sizeof(what), "client %d", i);
		bad |= sock_same(cli[i], &cli_was[i], what);
	}
	if (stat(path, &sb) || !S_ISSOCK(sb.st_mode)) {
		fail("%s is not a socket file any more", path);
		bad = 1;
	}
	if (bad)
		return 0;

	for (na = 0; na < NCLI; na++) {
		if (wait_fd(lst, POLLIN, WAIT_MS) <= 0) {
			fail("the listener has no connection pending after %d accepted", na);
			return 0;
		}
		acc[na] = accept4(lst, NULL, NULL, SOCK_NONBLOCK);
		if (acc[na] < 0) {
			fail("accept after %d accepted", na);
			return 0;
		}
		snprintf(what, sizeof(what), "accepted connection %d", na);
		bad |= name_is(acc[na], 0, &lst_name, lst_len, what);
		bad |= name_is(acc[na], 1, &unnamed, sizeof(sa_family_t), what);
	}
	if (bad)
		return 0;
	/* which client is at the other end of each accepted connection */
	for (na = 0; na < NCLI; na++) {
		char c = 'A' + na;
		if (send(acc[na], &c, 1, MSG_NOSIGNAL) != 1) {
			fail("send on accepted connection %d", na);
			return 0;
		}
	}
	for (i = 0; i < NCLI; i++) {
		char c = 0;
		if (wait_fd(cli[i], POLLIN, WAIT_MS) <= 0 || recv(cli[i], &c, 1, MSG_DONTWAIT) != 1 ||
		    c < 'A' || c >= 'A' + NCLI) {
			fail("client %d is not connected to any accepted connection (got %#x)", i, c);
			return 0;
		}
		if (c - 'A' != i) {
			fail("client %d was accepted as connection %d: the backlog's order changed", i,
			     c - 'A');
			bad = 1;
		}
		na = c - 'A';
		snprintf(what, sizeof(what), "data of client %d on accepted connection %d", i, na);
		if (inq(acc[na]) != (int)total(i)) {
			fail("%s: %d bytes queued, expected %zu", what, inq(acc[na]), total(i));
			bad = 1;
			continue;
		}
		bad |= pat_expect(acc[na], SEED + i, 0, total(i), what);
		bad |= nothing_queued(acc[na], what);
		bad |= nothing_queued(cli[i], what);
		bad |= pat_through(cli[i], acc[na], SEED + i, total(i), 500, what);
		bad |= pat_through(acc[na], cli[i], SEED + 0x10 + i, 0, 600, what);
	}
	if (wait_fd(lst, POLLIN, QUIET_MS) != 0) {
		fail("a fifth connection is pending on the listener");
		bad = 1;
	}
	if (bad)
		return 0;

	/* the listener still takes new connections */
	bad |= unix_new_client(lst, &sun, sun_len, SEED + 0x20, SEED + 0x21, 4000);

	for (i = 0; i < NCLI; i++) {
		close(cli[i]);
		close(acc[i]);
	}
	close(lst);
	bad |= remove_sockets(dirname, path, NULL);
	if (!bad)
		pass();
	return 0;
}
