/*
 * Shutdown states of unix stream socketpairs (SIGPIPE blocked):
 *   pair 1: a wrote 700 bytes, then shutdown(SHUT_WR); b wrote 400 bytes;
 *   pair 2: d wrote 500 bytes, then c did shutdown(SHUT_RD); c wrote 300;
 *   pair 3: e wrote 100 bytes, then shutdown(SHUT_RDWR).
 * After restore poll() reports the same events on all six ends as before
 * (POLLRDHUP where the receive side is shut, POLLHUP where both are), and:
 * a: write gives EPIPE, it reads b's 400 bytes and then new data from b;
 * b: reads a's 700 bytes and then EOF; it can still write;
 * c: reads d's 500 bytes and then EOF; it can still write (to d);
 * d: write gives EPIPE, it reads c's 300 bytes and then new data from c;
 * e: reads EOF, write gives EPIPE; f: reads e's 100 bytes, then EOF, and
 * write gives EPIPE.
 */
#include <signal.h>

#include "sockcheck.h"

const char *test_doc = "unix stream sockets keep their shutdown states";

enum { A, B, C, D, E, F, N };
static const char *names = "abcdef";

static int gives_epipe(int fd, int i)
{
	if (write(fd, "x", 1) == -1 && errno == EPIPE)
		return 0;
	fail("%c: write does not give EPIPE", names[i]);
	return 1;
}

int main(int argc, char **argv)
{
	struct sockstate was[N];
	short ev[N];
	sigset_t pipe_set;
	int sk[N], i, bad = 0;
	char what[32];

	test_init(argc, argv);
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	if (sigprocmask(SIG_BLOCK, &pipe_set, NULL)) {
		pr_perror("block SIGPIPE");
		return 1;
	}
	for (i = 0; i < N; i += 2)
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sk + i)) {
			pr_perror("socketpair");
			return 1;
		}
	if (pat_send(sk[A], 0x8000 + A, 0, 700, 700) || shutdown(sk[A], SHUT_WR) ||
	    pat_send(sk[B], 0x8000 + B, 0, 400, 400) || pat_send(sk[D], 0x8000 + D, 0, 500, 500) ||
	    shutdown(sk[C], SHUT_RD) || pat_send(sk[C], 0x8000 + C, 0, 300, 300) ||
	    pat_send(sk[E], 0x8000 + E, 0, 100, 100) || shutdown(sk[E], SHUT_RDWR)) {
		pr_perror("set up");
		return 1;
	}
	for (i = 0; i < N; i++) {
		sock_record(sk[i], &was[i], "socket");
		ev[i] = poll_events(sk[i]);
	}
	if (!(ev[B] & POLLRDHUP) || !(ev[C] & POLLRDHUP) || !(ev[E] & POLLHUP) ||
	    !(ev[F] & POLLHUP) || (ev[A] & POLLRDHUP) || (ev[D] & POLLRDHUP)) {
		pr_err("poll events before the checkpoint: a %#x b %#x c %#x d %#x e %#x f %#x\n", ev[A],
		       ev[B], ev[C], ev[D], ev[E], ev[F]);
		return 1;
	}

	test_daemon();
	test_waitsig();

	for (i = 0; i < N; i++) {
		short now = poll_events(sk[i]);

		snprintf(what, sizeof(what), "%c", names[i]);
		bad |= sock_same(sk[i], &was[i], what);
		if (now != ev[i]) {
			fail("%c: poll events %#x, were %#x", names[i], now, ev[i]);
			bad = 1;
		}
	}
	if (bad)
		return 0;

	bad |= gives_epipe(sk[A], A);
	bad |= pat_expect(sk[A], 0x8000 + B, 0, 400, "a reading b's data");
	bad |= pat_expect(sk[B], 0x8000 + A, 0, 700, "b reading a's data") ||
	       reads_eof(sk[B], "b after a's data");
	bad |= pat_through(sk[B], sk[A], 0x8000 + B, 400, 50, "new data b -> a");
	bad |= nothing_queued(sk[A], "a at the end");

	bad |= pat_expect(sk[C], 0x8000 + D, 0, 500, "c reading d's data") ||
	       reads_eof(sk[C], "c after d's data");
	bad |= gives_epipe(sk[D], D);
	bad |= pat_expect(sk[D], 0x8000 + C, 0, 300, "d reading c's data");
	bad |= pat_through(sk[C], sk[D], 0x8000 + C, 300, 60, "new data c -> d");
	bad |= nothing_queued(sk[D], "d at the end");

	bad |= reads_eof(sk[E], "e") | gives_epipe(sk[E], E);
	bad |= pat_expect(sk[F], 0x8000 + E, 0, 100, "f reading e's data") ||
	       reads_eof(sk[F], "f after e's data");
	bad |= gives_epipe(sk[F], F);

	for (i = 0; i < N; i++)
		close(sk[i]);
	if (!bad)
		pass();
	return 0;
}
