/*
 * Edge-triggered and one-shot items and the flag bits of an item, in one
 * epoll, on eventfds (an eventfd wakes its waiters on every write, so every
 * write is an edge) and a unix stream socket:
 *  - ET_SEEN: EPOLLET, its eventfd holds 1 and epoll_wait() has returned it
 *    (the edge is consumed, the counter is not read);
 *  - ET_NEW: EPOLLET, its eventfd holds 1, registered after that epoll_wait(),
 *    never returned;
 *  - OS_FIRED, OS_ET_FIRED: EPOLLONESHOT (and EPOLLET | EPOLLONESHOT), ready,
 *    returned once: disarmed, fdinfo shows only the private bits (0x40000000,
 *    0xc0000000) though the eventfd still holds 1;
 *  - OS_ARMED: EPOLLONESHOT on an empty eventfd;
 *  - EXCL: EPOLLEXCLUSIVE, level-triggered, ready;
 *  - WAKE: EPOLLWAKEUP on an empty eventfd (the kernel drops the bit without
 *    CAP_BLOCK_SUSPEND in the initial user namespace or without
 *    CONFIG_PM_SLEEP: what fdinfo showed before the checkpoint is expected);
 *  - RDHUP: EPOLLIN | EPOLLRDHUP | EPOLLPRI on an idle unix stream end.
 *
 * After restore: fdinfo shows every item as before (tfd, events, data); one
 * epoll_wait() returns exactly ET_NEW and EXCL, the next only EXCL (ET_NEW's
 * edge is used up, ET_SEEN stays quiet although its eventfd is readable, the
 * fired one-shot items stay quiet). A write to ET_SEEN's and then ET_NEW's
 * eventfd makes each of them return exactly once. EPOLL_CTL_MOD re-arms the
 * fired one-shot items: each is returned once, then fdinfo shows only the
 * private bits again. A write to OS_ARMED's eventfd returns it once and
 * disarms it. EPOLL_CTL_MOD on the EPOLLEXCLUSIVE item fails with EINVAL and
 * leaves it as it was. A write to WAKE's eventfd and a shutdown of RDHUP's
 * peer (EPOLLIN | EPOLLRDHUP) make them ready, and EPOLL_CTL_DEL of EXCL
 * removes it from fdinfo and from the ready set.
 */
#include <stdarg.h>
#include <sys/eventfd.h>

#include "epollcheck.h"

const char *test_doc = "EPOLLET and EPOLLONESHOT state, EPOLLEXCLUSIVE, EPOLLWAKEUP, "
		       "EPOLLRDHUP and EPOLLPRI masks are kept";

enum { ET_SEEN, ET_NEW, OS_FIRED, OS_ET_FIRED, OS_ARMED, EXCL, WAKE, RDHUP, NI };

static const char *const names[NI] = {
	"ET_SEEN", "ET_NEW", "OS_FIRED", "OS_ET_FIRED", "OS_ARMED", "EXCL", "WAKE", "RDHUP",
};

static int ep, fd[NI], peer, present[NI];
static uint32_t events[NI];	/* as fdinfo shows them */

#define DATA(i) (0xdead000000000000ull | (i))

/* The items whose eventfd holds 1 at the checkpoint. */
static int holds_one(int i)
{
	return i == ET_SEEN || i == ET_NEW || i == OS_FIRED || i == OS_ET_FIRED || i == EXCL;
}

static int register_item(int i, uint32_t mask)
{
	events[i] = mask | EP_ALWAYS;
	present[i] = 1;
	return ep_add(ep, fd[i], mask, DATA(i));
}

static int check_items(const char *what)
{
	struct ep_item items[NI];
	int i, n = 0;

	for (i = 0; i < NI; i++)
		if (present[i])
			items[n++] = (struct ep_item){ fd[i], events[i], DATA(i) };
	return ep_items_are(ep, items, n, what);
}

/* One epoll_wait() returns exactly the items of the list (ended by -1), with EPOLLIN. */
static int ready_are(const char *what, ...)
{
	struct ep_ev evs[NI];
	va_list ap;
	int i, n = 0;

	va_start(ap, what);
	while ((i = va_arg(ap, int)) >= 0)
		evs[n++] = (struct ep_ev){ DATA(i), i == RDHUP ? EPOLLIN | EPOLLRDHUP : EPOLLIN };
	va_end(ap);
	return ep_ready_are(ep, evs, n, what);
}

/* The events fdinfo shows for item i now; 0 when it is not there. */
static uint32_t shown_events(int i)
{
	struct ep_item items[NI + 8];
	int n = ep_items(ep, items, NI + 8), j;

	for (j = 0; j < n; j++)
		if (items[j].data == DATA(i))
			return items[j].events;
	return 0;
}

static int setup(void)
{
	int sk[2], i;
	uint32_t wake;

	for (i = 0; i < RDHUP; i++) {
		fd[i] = eventfd(holds_one(i), 0);
		if (fd[i] < 0) {
			pr_perror("eventfd");
			return 1;
		}
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sk)) {
		pr_perror("socketpair");
		return 1;
	}
	fd[RDHUP] = sk[0];
	peer = sk[1];

	ep = epoll_create1(0);
	if (ep < 0) {
		pr_perror("epoll_create1");
		return 1;
	}
	/* the items epoll_wait() returns before the checkpoint */
	if (register_item(ET_SEEN, EPOLLIN | EPOLLET) ||
	    register_item(OS_FIRED, EPOLLIN | EPOLLONESHOT) ||
	    register_item(OS_ET_FIRED, EPOLLIN | EPOLLET | EPOLLONESHOT))
		return 1;
	if (ready_are("the first epoll_wait", ET_SEEN, OS_FIRED, OS_ET_FIRED, -1))
		return 1;
	events[OS_FIRED] = EPOLLONESHOT;
	events[OS_ET_FIRED] = EPOLLONESHOT | EPOLLET;

	/* and those it has not seen yet */
	if (register_item(ET_NEW, EPOLLIN | EPOLLET) ||
	    register_item(OS_ARMED, EPOLLIN | EPOLLONESHOT) ||
	    register_item(EXCL, EPOLLIN | EPOLLEXCLUSIVE) ||
	    register_item(WAKE, EPOLLIN | EPOLLWAKEUP) ||
	    register_item(RDHUP, EPOLLIN | EPOLLRDHUP | EPOLLPRI))
		return 1;

	wake = shown_events(WAKE);
	if (!(wake & EPOLLWAKEUP)) {
		pr_info("the kernel dropped EPOLLWAKEUP (events %#x): no CAP_BLOCK_SUSPEND "
			"or no CONFIG_PM_SLEEP\n", wake);
		events[WAKE] &= ~EPOLLWAKEUP;
	}
	/* not epoll_wait(): it would use up ET_NEW's edge */
	return check_items("before the checkpoint");
}

/* An edge on item i's eventfd: it is returned once (with EXCL, always ready), then not. */
static int edge(int i, const char *what)
{
	char w[128];

	if (efd_add(fd[i], 1, what))
		return 1;
	snprintf(w, sizeof(w), "%s: after a write", what);
	if (ready_are(w, i, EXCL, -1))
		return 1;
	snprintf(w, sizeof(w), "%s: the wait after", what);
	return ready_are(w, EXCL, -1);
}

/* Re-arm a fired one-shot item: returned once, then only its private bits are left. */
static int rearm(int i, uint32_t mask)
{
	char w[128];

	snprintf(w, sizeof(w), "%s re-armed", names[i]);
	if (ep_ctl_is(ep, EPOLL_CTL_MOD, fd[i], mask, DATA(i), 0, w))
		return 1;
	events[i] = mask | EP_ALWAYS;
	if (check_items(w) || ready_are(w, i, EXCL, -1))
		return 1;
	events[i] = mask & EP_PRIVATE;
	snprintf(w, sizeof(w), "%s fired again", names[i]);
	return check_items(w) || ready_are(w, EXCL, -1);
}

static int after_restore(void)
{
	int i;

	for (i = 0; i < NI; i++)
		if (fd_readable(fd[i]) != holds_one(i)) {
			fail("%s: the target is %sreadable", names[i], holds_one(i) ? "not " : "");
			return 1;
		}
	if (ready_are("the first wait after restore", ET_NEW, EXCL, -1) ||
	    ready_are("the second wait after restore", EXCL, -1))
		return 1;

	/* new edges on the ET items */
	if (edge(ET_SEEN, "ET_SEEN") || edge(ET_NEW, "ET_NEW"))
		return 1;
	if (efd_take(fd[ET_SEEN], 2, "ET_SEEN") || efd_take(fd[ET_NEW], 2, "ET_NEW"))
		return 1;

	/* the fired one-shot items: quiet until re-armed */
	if (rearm(OS_FIRED, EPOLLIN | EPOLLONESHOT) ||
	    rearm(OS_ET_FIRED, EPOLLIN | EPOLLET | EPOLLONESHOT))
		return 1;

	/* the armed one fires once */
	if (edge(OS_ARMED, "OS_ARMED"))
		return 1;
	events[OS_ARMED] = EPOLLONESHOT;
	if (check_items("OS_ARMED fired"))
		return 1;

	/* EPOLLEXCLUSIVE items cannot be modified */
	if (ep_ctl_is(ep, EPOLL_CTL_MOD, fd[EXCL], EPOLLIN, DATA(EXCL), EINVAL, "MOD of EXCL") ||
	    check_items("after a MOD of EXCL"))
		return 1;

	if (efd_add(fd[WAKE], 1, "WAKE") || ready_are("WAKE made ready", EXCL, WAKE, -1))
		return 1;
	if (shutdown(peer, SHUT_WR)) {
		fail("shutdown(SHUT_WR) of RDHUP's peer");
		return 1;
	}
	if (ready_are("RDHUP's peer shut down", EXCL, WAKE, RDHUP, -1))
		return 1;

	if (ep_ctl_is(ep, EPOLL_CTL_DEL, fd[EXCL], 0, 0, 0, "DEL of EXCL"))
		return 1;
	present[EXCL] = 0;
	return check_items("after DEL of EXCL") || ready_are("after DEL of EXCL", WAKE, RDHUP, -1);
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
