/*
 * Nested epolls and targets shared between epolls. B watches the read end
 * of an empty pipe and an eventfd holding 1 (so B is ready); A watches B
 * (level-triggered) and an eventfd "shared" holding 0; C watches B with
 * EPOLLET and its edge has been consumed (epoll_wait() returned it before
 * the checkpoint); D watches "shared" for EPOLLIN | EPOLLOUT and the pipe
 * with EPOLLET. Each item has its own data.
 *
 * After restore: the four fdinfo lists are as registered (A's and C's items
 * name B's fd); C returns nothing, B returns its eventfd, A returns B, D
 * returns "shared" with EPOLLOUT. Readiness then propagates through the
 * nesting as the kernel does it: a write to the pipe makes B return both
 * items, A still B, C B exactly once (a new edge), D the pipe exactly once;
 * emptying B's eventfd and the pipe leaves B, A and C with nothing; a write
 * to "shared" shows in A (EPOLLIN) and in D (EPOLLIN | EPOLLOUT) but not in
 * B; a write to B's eventfd makes A return B and "shared", C return B once.
 * Adding A into B fails with ELOOP (A already watches B), EPOLL_CTL_DEL of B
 * from A leaves A only "shared", a second DEL fails with ENOENT,
 * EPOLL_CTL_MOD of "shared" in D changes what D returns, and MOD of the pipe
 * in C (where it is not registered) fails with ENOENT.
 */
#include <stdarg.h>
#include <sys/eventfd.h>

#include "epollcheck.h"

const char *test_doc = "nested epolls and targets in several epolls keep propagating readiness";

static int A, B, C, D, pr, pw, eb, shared;

#define DA(i) (0xa000000000000000ull | (i))
#define DB(i) (0xb000000000000000ull | (i))
#define DC(i) (0xc000000000000000ull | (i))
#define DD(i) (0xd000000000000000ull | (i))

#define IN (EPOLLIN | EP_ALWAYS)

/* The fdinfo of the four epolls, as registered. */
static int check_items(const char *what)
{
	struct ep_item a[] = { { B, IN, DA(0) }, { shared, IN, DA(1) } };
	struct ep_item b[] = { { pr, IN, DB(0) }, { eb, IN, DB(1) } };
	struct ep_item c[] = { { B, IN | EPOLLET, DC(0) } };
	struct ep_item d[] = { { shared, IN | EPOLLOUT, DD(0) }, { pr, IN | EPOLLET, DD(1) } };

	return ep_items_are(A, a, 2, what) | ep_items_are(B, b, 2, what) |
	       ep_items_are(C, c, 1, what) | ep_items_are(D, d, 2, what);
}

/* ep returns exactly the (data, events) pairs given, ended by a data of 0. */
static int ready(int ep, const char *what, ...)
{
	struct ep_ev evs[8];
	unsigned long long data;
	va_list ap;
	int n = 0;

	va_start(ap, what);
	while ((data = va_arg(ap, unsigned long long)) && n < 8) {
		evs[n].data = data;
		evs[n++].events = va_arg(ap, int);
	}
	va_end(ap);
	return ep_ready_are(ep, evs, n, what);
}

#define END 0ull

/* C returns B once (a new edge), then nothing. */
static int c_edge(const char *what)
{
	return ready(C, what, DC(0), EPOLLIN, END) || ep_none_ready(C, what);
}

static int setup(void)
{
	int p[2];

	if (pipe(p)) {
		pr_perror("pipe");
		return 1;
	}
	pr = p[0];
	pw = p[1];
	eb = eventfd(1, 0);
	shared = eventfd(0, 0);
	A = epoll_create1(0);
	B = epoll_create1(0);
	C = epoll_create1(0);
	D = epoll_create1(0);
	if (eb < 0 || shared < 0 || A < 0 || B < 0 || C < 0 || D < 0) {
		pr_perror("eventfd/epoll_create1");
		return 1;
	}
	if (ep_add(B, pr, EPOLLIN, DB(0)) || ep_add(B, eb, EPOLLIN, DB(1)) ||
	    ep_add(A, B, EPOLLIN, DA(0)) || ep_add(A, shared, EPOLLIN, DA(1)) ||
	    ep_add(C, B, EPOLLIN | EPOLLET, DC(0)) ||
	    ep_add(D, shared, EPOLLIN | EPOLLOUT, DD(0)) || ep_add(D, pr, EPOLLIN | EPOLLET, DD(1)))
		return 1;

	return check_items("before the checkpoint") ||
	       ready(B, "B before the checkpoint", DB(1), EPOLLIN, END) ||
	       ready(A, "A before the checkpoint", DA(0), EPOLLIN, END) ||
	       ready(D, "D before the checkpoint", DD(0), EPOLLOUT, END) ||
	       c_edge("C before the checkpoint");
}

static int after_restore(void)
{
	uint64_t v;
	char c;

	/* as at the checkpoint; C first: its edge was used up */
	if (ep_none_ready(C, "C after restore") ||
	    ready(B, "B after restore", DB(1), EPOLLIN, END) ||
	    ready(A, "A after restore", DA(0), EPOLLIN, END) ||
	    ready(D, "D after restore", DD(0), EPOLLOUT, END) ||
	    ep_none_ready(C, "C after waits on the others"))
		return 1;

	/* data in the pipe: a new edge for C and for D's pipe item */
	if (write(pw, "x", 1) != 1) {
		fail("write to the pipe");
		return 1;
	}
	if (c_edge("C after a write to the pipe") ||
	    ready(B, "B after a write to the pipe", DB(0), EPOLLIN, DB(1), EPOLLIN, END) ||
	    ready(A, "A after a write to the pipe", DA(0), EPOLLIN, END) ||
	    ready(D, "D after a write to the pipe", DD(0), EPOLLOUT, DD(1), EPOLLIN, END) ||
	    ready(D, "D's second wait", DD(0), EPOLLOUT, END))
		return 1;

	/* B's targets emptied: B, and so A and C, have nothing */
	if (efd_take(eb, 1, "B's eventfd") ||
	    ready(B, "B after its eventfd was read", DB(0), EPOLLIN, END) ||
	    ready(A, "A after B's eventfd was read", DA(0), EPOLLIN, END))
		return 1;
	if (read(pr, &c, 1) != 1 || c != 'x') {
		fail("read from the pipe");
		return 1;
	}
	if (ep_none_ready(B, "B emptied") || ep_none_ready(A, "A with B emptied") ||
	    ep_none_ready(C, "C with B emptied"))
		return 1;

	/* "shared" in A and D, not in B */
	if (efd_add(shared, 1, "shared") ||
	    ready(A, "A after a write to shared", DA(1), EPOLLIN, END) ||
	    ready(D, "D after a write to shared", DD(0), EPOLLIN | EPOLLOUT, END) ||
	    ep_none_ready(B, "B after a write to shared") ||
	    ep_none_ready(C, "C after a write to shared"))
		return 1;

	/* B ready again through its eventfd */
	if (efd_add(eb, 1, "B's eventfd") || c_edge("C after a write to B's eventfd") ||
	    ready(B, "B after a write to its eventfd", DB(1), EPOLLIN, END) ||
	    ready(A, "A after a write to B's eventfd", DA(0), EPOLLIN, DA(1), EPOLLIN, END))
		return 1;

	/* epoll_ctl on the nesting */
	if (ep_ctl_is(B, EPOLL_CTL_ADD, A, EPOLLIN, 1, ELOOP, "adding A into B") ||
	    ep_ctl_is(A, EPOLL_CTL_DEL, B, 0, 0, 0, "DEL of B from A") ||
	    ep_ctl_is(A, EPOLL_CTL_DEL, B, 0, 0, ENOENT, "second DEL of B from A") ||
	    ep_ctl_is(C, EPOLL_CTL_MOD, pr, EPOLLIN, 1, ENOENT, "MOD of the pipe in C") ||
	    ep_ctl_is(D, EPOLL_CTL_MOD, shared, EPOLLIN, DD(2), 0, "MOD of shared in D"))
		return 1;
	{
		struct ep_item a = { shared, IN, DA(1) };
		struct ep_item d[] = { { shared, IN, DD(2) }, { pr, IN | EPOLLET, DD(1) } };

		if (ep_items_are(A, &a, 1, "A after DEL of B") ||
		    ep_items_are(D, d, 2, "D after MOD of shared"))
			return 1;
	}
	if (ready(A, "A after DEL of B", DA(1), EPOLLIN, END) ||
	    ready(D, "D after MOD of shared", DD(2), EPOLLIN, END))
		return 1;
	if (read(shared, &v, sizeof(v)) != sizeof(v) || v != 1) {
		fail("read shared");
		return 1;
	}
	return ep_none_ready(A, "A with shared emptied") ||
	       ep_none_ready(D, "D with shared emptied");
}

int main(int argc, char **argv)
{
	int bad;

	test_init(argc, argv);
	if (setup())
		return 1;

	test_daemon();
	test_waitsig();

	bad = check_items("after restore");
	if (!bad)
		bad = after_restore();
	if (!bad)
		pass();
	return 0;
}
