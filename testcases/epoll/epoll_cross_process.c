/*
 * An epoll shared by three processes whose targets were made by whoever
 * came later (CRIU issue 1366: the restore must not assume the epoll's
 * owner made its targets). The parent makes epoll E and an eventfd X holding
 * 5 (fd 60), then forks:
 *  - child 1 makes a pipe (read end at fd 50, data in it) and an empty
 *    eventfd (fd 51) after the fork and registers both in the inherited E;
 *    it closes nothing;
 *  - child 2 makes an epoll of its own (fd 70) watching the inherited X.
 * Then the parent makes an empty eventfd P, puts it at fd 50 too, and
 * registers P and X in E. E has two items with tfd 50: child 1's pipe and
 * the parent's P, which only one process each holds.
 *
 * After restore, in the parent: kcmp says E and X are one file in all three
 * processes and finds the target of each tfd-50 item in its process
 * (KCMP_EPOLL_TFD; skipped where the kernel lacks it); E's fdinfo lists the
 * four items, one epoll_wait() returns exactly the pipe and X; MOD of fd 50
 * reaches P's item only; a write to P adds it. Then child 1 checks the same
 * from its side: the same four items and ready set, its MOD of fd 50 reaches
 * the pipe's item only, a write to its eventfd adds that item, reading the
 * pipe and the eventfd removes both. Once child 1 has exited, its two items
 * are gone from E. Child 2 checks its epoll (X ready) and E (P and X, only X
 * ready), reads X (5) and sees nothing ready in either. The parent then sees
 * nothing ready in E, whose items are P's and X's.
 */
#include <sys/eventfd.h>

#include "epollcheck.h"

const char *test_doc = "an epoll shared by processes, with targets made by the children";

#define X_FD 60		/* the parent's eventfd, inherited by both children */
#define PIPE_R 50	/* child 1's pipe: read end */
#define PIPE_W 52	/* and write end */
#define C1_EFD 51	/* child 1's eventfd */
#define P_FD 50		/* the parent's eventfd, made after the forks */
#define EP2_FD 70	/* child 2's epoll */

#define C1(i) (0xc100000000000000ull | (i))
#define C2(i) (0xc200000000000000ull | (i))
#define PA(i) (0xaa00000000000000ull | (i))

#define IN (EPOLLIN | EP_ALWAYS)

static int ep;
static pid_t child1, child2;

/* E's items as long as child 1 lives; c1 and p: the data of the two tfd-50 items. */
static int e_items(uint64_t c1, uint64_t p, const char *what)
{
	struct ep_item items[] = {
		{ PIPE_R, IN, c1 }, { C1_EFD, IN, C1(1) }, { P_FD, IN, p }, { X_FD, IN, PA(1) },
	};

	return ep_items_are(ep, items, 4, what);
}

/* E's items once child 1 has gone (wait a little for its files to be released). */
static int e_items_without_child1(const char *what)
{
	struct ep_item items[] = { { P_FD, IN, PA(0) }, { X_FD, IN, PA(1) } }, got[8];
	int i;

	for (i = 0; i < 100 && ep_items(ep, got, 8) != 2; i++)
		sleep_ms(10);
	return ep_items_are(ep, items, 2, what);
}

static long kcmp(pid_t a, pid_t b, int type, unsigned long x, unsigned long y)
{
	return syscall(SYS_kcmp, a, b, type, x, y);
}

static int check_kcmp(void)
{
	pid_t self = getpid();
	int m1, m2;

	if (kcmp(self, self, KCMP_FILE, ep, ep) < 0) {
		pr_info("no kcmp here (errno %d): sharing not checked\n", errno);
		return 0;
	}
	if (kcmp(self, child1, KCMP_FILE, ep, ep) || kcmp(self, child2, KCMP_FILE, ep, ep) ||
	    kcmp(self, child1, KCMP_FILE, X_FD, X_FD) ||
	    kcmp(self, child2, KCMP_FILE, X_FD, X_FD)) {
		fail("the epoll or X is not one file in the three processes");
		return 1;
	}
	m1 = ep_kcmp_tfd(child1, PIPE_R, ep, PIPE_R);
	m2 = ep_kcmp_tfd(self, P_FD, ep, P_FD);
	if (m1 < 0 && m2 < 0 && (errno == EOPNOTSUPP || errno == EINVAL)) {
		pr_info("no KCMP_EPOLL_TFD here (errno %d): targets not compared\n", errno);
		return 0;
	}
	if (m1 != 1 && m1 != 2) {
		fail("child 1's pipe is the target of items %#x with tfd %d", m1, PIPE_R);
		return 1;
	}
	if ((m2 != 1 && m2 != 2) || m1 == m2) {
		fail("the parent's eventfd is the target of items %#x with tfd %d (the pipe: %#x)",
		     m2, P_FD, m1);
		return 1;
	}
	return 0;
}

/* Child 1: a pipe with data and an empty eventfd, made now, registered in E. */
static int child1_setup(void *arg)
{
	int p[2], e;

	if (pipe(p)) {
		pr_perror("pipe");
		return 1;
	}
	move_fd(p[0], PIPE_R);
	move_fd(p[1], PIPE_W);
	e = eventfd(0, 0);
	if (e < 0) {
		pr_perror("eventfd");
		return 1;
	}
	move_fd(e, C1_EFD);
	if (write(PIPE_W, "c", 1) != 1) {
		pr_perror("write");
		return 1;
	}
	return ep_add(ep, PIPE_R, EPOLLIN, C1(0)) || ep_add(ep, C1_EFD, EPOLLIN, C1(1));
}

static int child1_check(void *arg)
{
	struct ep_ev r1[] = { { C1(0), EPOLLIN }, { PA(1), EPOLLIN } };
	struct ep_ev r2[] = { { C1(2), EPOLLIN }, { C1(1), EPOLLIN }, { PA(1), EPOLLIN } };
	struct ep_ev r3[] = { { PA(1), EPOLLIN } };
	char c;

	if (e_items(C1(0), PA(0), "child 1 after restore") ||
	    ep_ready_are(ep, r1, 2, "child 1 after restore"))
		return 1;
	/* here fd 50 is the pipe */
	if (ep_ctl_is(ep, EPOLL_CTL_MOD, PIPE_R, EPOLLIN, C1(2), 0, "child 1: MOD 50") ||
	    e_items(C1(2), PA(0), "child 1 after MOD 50"))
		return 1;
	if (efd_add(C1_EFD, 1, "child 1's eventfd") ||
	    ep_ready_are(ep, r2, 3, "child 1 after a write to its eventfd"))
		return 1;
	if (!fd_readable(PIPE_R) || read(PIPE_R, &c, 1) != 1 || c != 'c') {
		fail("child 1: read the pipe");
		return 1;
	}
	return efd_take(C1_EFD, 1, "child 1's eventfd") ||
	       ep_ready_are(ep, r3, 1, "child 1 after reading its targets");
}

/* Child 2: an epoll of its own watching the inherited X. */
static int child2_setup(void *arg)
{
	int e = epoll_create1(0);

	if (e < 0) {
		pr_perror("epoll_create1");
		return 1;
	}
	move_fd(e, EP2_FD);
	return ep_add(EP2_FD, X_FD, EPOLLIN, C2(0));
}

static int child2_check(void *arg)
{
	struct ep_item mine = { X_FD, IN, C2(0) };
	struct ep_ev r_mine = { C2(0), EPOLLIN }, r_e = { PA(1), EPOLLIN };

	if (ep_items_are(EP2_FD, &mine, 1, "child 2's epoll") ||
	    ep_ready_are(EP2_FD, &r_mine, 1, "child 2's epoll") ||
	    e_items_without_child1("E seen by child 2") ||
	    ep_ready_are(ep, &r_e, 1, "E seen by child 2"))
		return 1;
	if (!fd_readable(X_FD)) {
		fail("child 2: X is not readable");
		return 1;
	}
	return efd_take(X_FD, 5, "X in child 2") ||
	       ep_none_ready(EP2_FD, "child 2's epoll after reading X") ||
	       ep_none_ready(ep, "E seen by child 2 after reading X");
}

static int setup(void)
{
	struct ep_ev r[] = { { C1(0), EPOLLIN }, { PA(1), EPOLLIN } };
	int fd;

	ep = epoll_create1(0);
	fd = eventfd(5, 0);
	if (ep < 0 || fd < 0) {
		pr_perror("epoll_create1/eventfd");
		return 1;
	}
	move_fd(fd, X_FD);
	child1 = fork_checker(child1_setup, child1_check, NULL);
	child2 = fork_checker(child2_setup, child2_check, NULL);

	fd = eventfd(0, 0);
	if (fd < 0) {
		pr_perror("eventfd");
		return 1;
	}
	move_fd(fd, P_FD);
	if (ep_add(ep, P_FD, EPOLLIN, PA(0)) || ep_add(ep, X_FD, EPOLLIN, PA(1)))
		return 1;
	return e_items(C1(0), PA(0), "before the checkpoint") ||
	       ep_ready_are(ep, r, 2, "before the checkpoint");
}

static int parent_check(void)
{
	struct ep_ev r1[] = { { C1(0), EPOLLIN }, { PA(1), EPOLLIN } };
	struct ep_ev r2[] = { { C1(0), EPOLLIN }, { PA(0), EPOLLIN }, { PA(1), EPOLLIN } };

	if (check_kcmp() || e_items(C1(0), PA(0), "after restore") ||
	    ep_ready_are(ep, r1, 2, "after restore"))
		return 1;
	/* here fd 50 is P */
	if (ep_ctl_is(ep, EPOLL_CTL_MOD, P_FD, EPOLLIN, PA(2), 0, "parent: MOD 50") ||
	    e_items(C1(0), PA(2), "parent: after MOD 50") ||
	    ep_ctl_is(ep, EPOLL_CTL_MOD, P_FD, EPOLLIN, PA(0), 0, "parent: MOD 50 back"))
		return 1;
	if (efd_add(P_FD, 1, "P") || ep_ready_are(ep, r2, 3, "after a write to P") ||
	    efd_take(P_FD, 1, "P") || ep_ready_are(ep, r1, 2, "after reading P"))
		return 1;
	return 0;
}

int main(int argc, char **argv)
{
	int bad;

	test_init(argc, argv);
	if (setup()) {
		if (child1 > 0)
			kill(child1, SIGKILL);
		if (child2 > 0)
			kill(child2, SIGKILL);
		return 1;
	}

	test_daemon();
	test_waitsig();

	/* one process after the other: each expects what the one before left */
	bad = parent_check();
	if (child_verdict(child1, "child 1"))
		bad = 1;
	if (!bad)
		bad = e_items_without_child1("after child 1 exited");
	if (child_verdict(child2, "child 2"))
		bad = 1;
	if (!bad) {
		if (fd_readable(X_FD)) {
			fail("X is still readable after child 2 read it");
			bad = 1;
		}
		bad |= ep_none_ready(ep, "at the end");
		bad |= e_items_without_child1("at the end");
	}
	if (!bad)
		pass();
	return 0;
}
