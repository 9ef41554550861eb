/*
 * One epoll with 1000 targets: eventfds (even indexes) and pipe read ends
 * (odd ones; their write ends are kept), every third one ready (the eventfd
 * holds 1, the pipe a byte), each registered with its own data and with
 * EPOLLIN, every fifth with EPOLLRDHUP | EPOLLPRI as well. RLIMIT_NOFILE is
 * raised when it does not leave room for the 1501 fds.
 *
 * After restore: fdinfo lists exactly the 1000 items (tfd, events, data) and
 * one epoll_wait() returns exactly the 334 ready ones; after a write to each
 * of the others all 1000 are returned, after reading every target none is,
 * and after EPOLL_CTL_DEL of every tenth item fdinfo lists the other 900.
 */
#include <sys/eventfd.h>
#include <sys/resource.h>

#include "epollcheck.h"

const char *test_doc = "an epoll with 1000 items keeps all of them and their readiness";

#define N 1000
#define DATA(i) (0xdead000000000000ull | ((uint64_t)(i) << 20) | 0x5a5a)

static int ep, fd[N], wfd[N];	/* wfd: the pipe's write end, or the eventfd itself */
static struct ep_item items[N];
static struct ep_ev ready[N];

static uint32_t mask_of(int i)
{
	return i % 5 == 0 ? EPOLLIN | EPOLLRDHUP | EPOLLPRI : EPOLLIN;
}

/*
 * ep lists every item (but every tenth one when deleted) and returns every
 * third (all when all_ready, none when none_ready).
 */
static int check(int all_ready, int none_ready, int deleted, const char *what)
{
	int i, n = 0, r = 0;

	for (i = 0; i < N; i++) {
		if (deleted && i % 10 == 0)
			continue;
		items[n++] = (struct ep_item){ fd[i], mask_of(i) | EP_ALWAYS, DATA(i) };
		if (!none_ready && (all_ready || i % 3 == 0))
			ready[r++] = (struct ep_ev){ DATA(i), EPOLLIN };
	}
	return ep_items_are(ep, items, n, what) || ep_ready_are(ep, ready, r, what);
}

static int poke(int i)
{
	uint64_t one = 1;

	if (i % 2 == 0)
		return write(wfd[i], &one, sizeof(one)) == sizeof(one) ? 0 : -1;
	return write(wfd[i], "p", 1) == 1 ? 0 : -1;
}

static int drain(int i)
{
	uint64_t v;

	if (i % 2 == 0)
		return read(fd[i], &v, sizeof(v)) == sizeof(v) ? 0 : -1;
	return read(fd[i], &v, 1) == 1 ? 0 : -1;
}

static int setup(void)
{
	struct rlimit rl;
	int i, p[2];

	if (getrlimit(RLIMIT_NOFILE, &rl)) {
		pr_perror("getrlimit");
		return 1;
	}
	if (rl.rlim_cur < 2048) {
		if (rl.rlim_max < 2048) {
			pr_err("RLIMIT_NOFILE's hard limit %llu leaves no room for %d targets\n",
			       (unsigned long long)rl.rlim_max, N);
			return 1;
		}
		rl.rlim_cur = 2048;
		if (setrlimit(RLIMIT_NOFILE, &rl)) {
			pr_perror("setrlimit");
			return 1;
		}
	}

	ep = epoll_create1(0);
	if (ep < 0) {
		pr_perror("epoll_create1");
		return 1;
	}
	for (i = 0; i < N; i++) {
		if (i % 2 == 0) {
			fd[i] = wfd[i] = eventfd(0, 0);
			if (fd[i] < 0) {
				pr_perror("eventfd %d", i);
				return 1;
			}
		} else {
			if (pipe(p)) {
				pr_perror("pipe %d", i);
				return 1;
			}
			fd[i] = p[0];
			wfd[i] = p[1];
		}
		if (i % 3 == 0 && poke(i)) {
			pr_perror("write to target %d", i);
			return 1;
		}
		if (ep_add(ep, fd[i], mask_of(i), DATA(i)))
			return 1;
	}
	return check(0, 0, 0, "before the checkpoint");
}

int main(int argc, char **argv)
{
	int bad, i;

	test_init(argc, argv);
	if (setup())
		return 1;

	test_daemon();
	test_waitsig();

	bad = check(0, 0, 0, "after restore");
	for (i = 0; !bad && i < N; i++)
		if (i % 3 && poke(i)) {
			fail("write to target %d", i);
			bad = 1;
		}
	if (!bad)
		bad = check(1, 0, 0, "all made ready");
	for (i = 0; !bad && i < N; i++)
		if (drain(i)) {
			fail("read target %d", i);
			bad = 1;
		}
	if (!bad)
		bad = check(0, 1, 0, "all read");
	for (i = 0; !bad && i < N; i += 10)
		bad = ep_ctl_is(ep, EPOLL_CTL_DEL, fd[i], 0, 0, 0, "DEL");
	if (!bad)
		bad = check(0, 1, 1, "every tenth deleted");
	if (!bad)
		pass();
	return 0;
}
