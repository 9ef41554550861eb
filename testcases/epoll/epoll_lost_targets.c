/*
 * epoll items whose target is no longer (or not only) at the number it was
 * registered under. An epoll item is keyed by (file, fd number at
 * EPOLL_CTL_ADD) and lives as long as the file does, whatever happens to the
 * number; fdinfo keeps showing the old number. Each item has its own data:
 *  (a) an eventfd holding 1, registered as fd 100, dup'ed to 101, 100 closed;
 *  (b) the read end of an empty pipe, registered as fd 110, moved with dup2 to
 *      900, 110 closed;
 *  (c) an empty eventfd registered as fd 120, dup'ed to 121, 120 closed, then
 *      another eventfd (holding 1) put at 120 and registered too: two items
 *      with tfd 120;
 *  (d) the read end of an empty pipe, registered as fd 130, then a child is
 *      forked that keeps it (and closes its copy of the epoll), and the
 *      parent closes 130: the only holder of the target is the child;
 *  (e) an eventfd holding 1 at fd 140, dup'ed to 141, both registered: two
 *      items on one file.
 *
 * After restore: fdinfo lists exactly these seven items (tfd, events, data),
 * fds 100, 110 and 130 are still closed, kcmp(KCMP_EPOLL_TFD) finds the file
 * of each item at its current number (in the child for (d); skipped where the
 * kernel has no kcmp), one epoll_wait() returns exactly (a), the second
 * eventfd of (c) and both items of (e), and writes to (b)'s pipe, (c)'s first
 * eventfd (through 121) and (d)'s pipe add exactly their items. epoll_ctl
 * behaves as the kernel makes it: DEL and MOD with the current numbers of
 * (a) and (b) and (c)'s first eventfd fail with ENOENT, DEL with an old
 * number that is not open fails with EBADF, ADD of (a) under 101 makes a
 * second item, MOD and DEL of 120 reach the second eventfd's item only, DEL
 * of 141 removes one of (e)'s items. The child reads the byte written to
 * (d)'s pipe; once it has exited (d)'s item is gone, and closing 101, 900 and
 * 121 removes the items of (a), (b) and (c): nothing else holds the targets.
 */
#include <sys/eventfd.h>

#include "epollcheck.h"

const char *test_doc = "epoll items whose targets moved to other fds or to another process";

enum { A, A2, B, C1, C2, C3, D, E1, E2, NI };

static const char *const names[NI] = {
	"(a)", "(a) under 101", "(b)", "(c) first", "(c) second", "(c) second, modified", "(d)",
	"(e) under 140", "(e) under 141",
};

static const int tfd[NI] = {
	[A] = 100, [A2] = 101, [B] = 110, [C1] = 120, [C2] = 120, [C3] = 120, [D] = 130,
	[E1] = 140, [E2] = 141,
};

/* where each target is now, in this process (-1: only in the child) */
static const int now_fd[NI] = {
	[A] = 101, [A2] = 101, [B] = 900, [C1] = 121, [C2] = 120, [C3] = 120, [D] = -1,
	[E1] = 140, [E2] = 140,
};

#define DATA(i) (0xdead000000000000ull | (i))

#define PIPE_B_W 111
#define PIPE_D_W 131

static int ep, present[NI], readable[NI];
static pid_t child;

static int check_items(const char *what)
{
	struct ep_item items[NI];
	int i, n = 0;

	for (i = 0; i < NI; i++)
		if (present[i])
			items[n++] = (struct ep_item){ tfd[i], EPOLLIN | EP_ALWAYS, DATA(i) };
	return ep_items_are(ep, items, n, what);
}

static int check_ready(const char *what)
{
	struct ep_ev evs[NI];
	int i, n = 0;

	for (i = 0; i < NI; i++)
		if (present[i] && readable[i])
			evs[n++] = (struct ep_ev){ DATA(i), EPOLLIN };
	return ep_ready_are(ep, evs, n, what);
}

static int check(const char *what)
{
	return check_items(what) || check_ready(what);
}

/* The target of every item is the file it should be, by kcmp. */
static int check_kcmp(void)
{
	/* the file at fd is the target of exactly one of the items with the item's tfd */
	static const struct {
		int item, fd;
	} checks[] = {
		{ A, 101 }, { B, 900 }, { C1, 121 }, { C2, 120 }, { E1, 140 }, { E2, 140 },
	};
	int i, mask, bad = 0;

	mask = ep_kcmp_tfd(getpid(), 101, ep, 100);
	if (mask < 0 && (errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL)) {
		pr_info("no kcmp(KCMP_EPOLL_TFD) here (errno %d): targets not compared\n", errno);
		return 0;
	}
	for (i = 0; i < (int)ARRAY_SIZE(checks); i++) {
		mask = ep_kcmp_tfd(getpid(), checks[i].fd, ep, tfd[checks[i].item]);
		if (mask < 0 || __builtin_popcount(mask) != 1) {
			fail("%s: fd %d is the target of %d items with tfd %d (mask %#x), expected 1",
			     names[checks[i].item], checks[i].fd,
			     mask < 0 ? -1 : __builtin_popcount(mask), tfd[checks[i].item], mask);
			bad = 1;
		}
	}
	/* (c): the two eventfds are the targets of different items with tfd 120 */
	if (ep_kcmp_tfd(getpid(), 120, ep, 120) == ep_kcmp_tfd(getpid(), 121, ep, 120)) {
		fail("(c): fds 120 and 121 are the target of the same item");
		bad = 1;
	}
	mask = ep_kcmp_tfd(child, 130, ep, 130);
	if (mask != 1) {
		fail("(d): the child's fd 130 is not the target of the item with tfd 130 (%d)",
		     mask);
		bad = 1;
	}
	return bad;
}

/* The child of (d): holds the pipe's read end at 130 and nothing of the epoll. */
static int child_setup(void *arg)
{
	close(ep);
	close(PIPE_D_W);
	return 0;
}

/* After restore: the byte the parent wrote is in the pipe at 130. */
static int child_check(void *arg)
{
	char c = 0;

	if (!fd_readable(130) || read(130, &c, 1) != 1 || c != 'd') {
		fail("child: read %#x from fd 130, expected 'd'", c);
		return 1;
	}
	return 0;
}

/* A pipe with its read end at r and its write end at w (both far above what is open). */
static void make_pipe(int r, int w)
{
	int p[2];

	if (pipe(p) || p[0] == w || p[1] == r) {
		pr_perror("pipe");
		exit(1);
	}
	move_fd(p[0], r);
	move_fd(p[1], w);
}

static int new_eventfd(unsigned int count, int at)
{
	int fd = eventfd(count, 0);

	if (fd < 0) {
		pr_perror("eventfd");
		exit(1);
	}
	return move_fd(fd, at);
}

static int setup(void)
{
	int i;

	ep = epoll_create1(0);
	if (ep < 0) {
		pr_perror("epoll_create1");
		return 1;
	}

	/* (d) first, so that the child inherits nothing of the others */
	make_pipe(130, PIPE_D_W);
	if (ep_add(ep, 130, EPOLLIN, DATA(D)))
		return 1;
	child = fork_checker(child_setup, child_check, NULL);
	close(130);
	present[D] = 1;

	/* (a) */
	new_eventfd(1, 100);
	if (ep_add(ep, 100, EPOLLIN, DATA(A)))
		return 1;
	move_fd(100, 101);
	present[A] = readable[A] = 1;

	/* (b) */
	make_pipe(110, PIPE_B_W);
	if (ep_add(ep, 110, EPOLLIN, DATA(B)))
		return 1;
	move_fd(110, 900);
	present[B] = 1;

	/* (c) */
	new_eventfd(0, 120);
	if (ep_add(ep, 120, EPOLLIN, DATA(C1)))
		return 1;
	move_fd(120, 121);
	new_eventfd(1, 120);
	if (ep_add(ep, 120, EPOLLIN, DATA(C2)))
		return 1;
	present[C1] = present[C2] = readable[C2] = 1;

	/* (e) */
	new_eventfd(1, 140);
	if (dup2(140, 141) != 141) {
		pr_perror("dup2");
		return 1;
	}
	if (ep_add(ep, 140, EPOLLIN, DATA(E1)) || ep_add(ep, 141, EPOLLIN, DATA(E2)))
		return 1;
	present[E1] = present[E2] = readable[E1] = readable[E2] = 1;

	for (i = 0; i < NI; i++)
		if (present[i] && now_fd[i] >= 0 && fd_closed(now_fd[i])) {
			pr_err("%s: fd %d is not open\n", names[i], now_fd[i]);
			return 1;
		}
	return check("before the checkpoint");
}

static int after_restore(void)
{
	static const int closed[] = { 100, 110, 130 };
	int i;

	for (i = 0; i < (int)ARRAY_SIZE(closed); i++)
		if (!fd_closed(closed[i])) {
			fail("fd %d is open after restore", closed[i]);
			return 1;
		}
	if (check_ready("after restore") || check_kcmp())
		return 1;

	/* the others made ready through the numbers they are at now */
	if (write(PIPE_B_W, "b", 1) != 1 || efd_add(121, 1, "(c) first") ||
	    write(PIPE_D_W, "d", 1) != 1) {
		fail("writes to the targets");
		return 1;
	}
	readable[B] = readable[C1] = readable[D] = 1;
	if (check_ready("all made ready"))
		return 1;

	/* (a): known under 100 only, which is not open */
	if (ep_ctl_is(ep, EPOLL_CTL_MOD, 101, EPOLLIN, 1, ENOENT, "(a): MOD 101") ||
	    ep_ctl_is(ep, EPOLL_CTL_DEL, 101, 0, 0, ENOENT, "(a): DEL 101") ||
	    ep_ctl_is(ep, EPOLL_CTL_DEL, 100, 0, 0, EBADF, "(a): DEL 100") ||
	    ep_ctl_is(ep, EPOLL_CTL_ADD, 101, EPOLLIN, DATA(A2), 0, "(a): ADD 101"))
		return 1;
	present[A2] = readable[A2] = 1;
	if (check("(a) added under 101"))
		return 1;
	if (ep_ctl_is(ep, EPOLL_CTL_DEL, 101, 0, 0, 0, "(a): DEL 101 once added"))
		return 1;
	present[A2] = 0;

	/* (b) */
	if (ep_ctl_is(ep, EPOLL_CTL_MOD, 900, EPOLLIN, 1, ENOENT, "(b): MOD 900") ||
	    ep_ctl_is(ep, EPOLL_CTL_DEL, 900, 0, 0, ENOENT, "(b): DEL 900") ||
	    ep_ctl_is(ep, EPOLL_CTL_DEL, 110, 0, 0, EBADF, "(b): DEL 110"))
		return 1;

	/* (c): 120 now means the second eventfd */
	if (ep_ctl_is(ep, EPOLL_CTL_DEL, 121, 0, 0, ENOENT, "(c): DEL 121") ||
	    ep_ctl_is(ep, EPOLL_CTL_MOD, 121, EPOLLIN, 1, ENOENT, "(c): MOD 121") ||
	    ep_ctl_is(ep, EPOLL_CTL_MOD, 120, EPOLLIN, DATA(C3), 0, "(c): MOD 120"))
		return 1;
	present[C2] = 0;
	present[C3] = readable[C3] = 1;
	if (check("(c) second modified"))
		return 1;
	if (ep_ctl_is(ep, EPOLL_CTL_DEL, 120, 0, 0, 0, "(c): DEL 120") ||
	    ep_ctl_is(ep, EPOLL_CTL_DEL, 120, 0, 0, ENOENT, "(c): DEL 120 again"))
		return 1;
	present[C3] = 0;

	/* (d), (e) */
	if (ep_ctl_is(ep, EPOLL_CTL_DEL, 130, 0, 0, EBADF, "(d): DEL 130") ||
	    ep_ctl_is(ep, EPOLL_CTL_DEL, 141, 0, 0, 0, "(e): DEL 141"))
		return 1;
	present[E2] = 0;
	return check("after the epoll_ctl calls");
}

/* Items disappear when their target's last reference goes (wait a little for it). */
static int gone(int item, const char *what)
{
	int i;

	present[item] = 0;
	for (i = 0; i < 100; i++) {
		struct ep_item items[NI + 4];
		int n = ep_items(ep, items, NI + 4), j;

		for (j = 0; j < n && items[j].data != DATA(item); j++)
			;
		if (n >= 0 && j == n)
			break;
		sleep_ms(10);
	}
	return check(what);
}

static int the_end(void)
{
	int bad = child_verdict(child, "the child holding (d)'s pipe");

	child = 0;
	if (bad)
		return 1;
	if (gone(D, "after the child exited"))
		return 1;
	close(101);
	if (gone(A, "after closing 101"))
		return 1;
	close(900);
	if (gone(B, "after closing 900"))
		return 1;
	close(121);
	return gone(C1, "after closing 121");
}

int main(int argc, char **argv)
{
	int bad;

	test_init(argc, argv);
	if (setup()) {
		if (child)
			kill(child, SIGKILL);
		return 1;
	}

	test_daemon();
	test_waitsig();

	bad = check_items("after restore");
	if (!bad)
		bad = after_restore();
	if (!bad)
		bad = the_end();
	if (child)
		child_verdict(child, "the child holding (d)'s pipe");
	if (!bad)
		pass();
	return 0;
}
