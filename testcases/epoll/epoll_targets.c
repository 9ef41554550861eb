/*
 * One epoll watching a target of every kind, level-triggered, each with its
 * own 64-bit data (0xdead000000000000 | index): the read end of a pipe holding
 * data, the write end of a full pipe, both ends of a unix stream socketpair
 * (one with data queued, one idle, watched for EPOLLRDHUP too), both ends of a
 * unix datagram pair (one with a datagram queued, one watched for EPOLLOUT), a
 * UDP socket on 127.0.0.1 with nothing queued, an eventfd holding 3 and one
 * holding 0, a timerfd armed an hour ahead and one that has expired, a
 * signalfd with its (blocked) signal pending and one without, an inotify fd
 * watching --dirname. A second epoll, made with EPOLL_CLOEXEC, watches the
 * first pipe and the idle eventfd under other data.
 *
 * After restore: both epolls' fdinfo list exactly the items registered (tfd,
 * events, data), the EPOLL_CLOEXEC one has FD_CLOEXEC and the other not, one
 * epoll_wait() returns exactly the targets that were ready with exactly their
 * events; then each idle target is made ready in turn (the full pipe drained
 * a page, data and then a shutdown on the stream, a datagram to the UDP
 * socket, a write to the eventfd, the timer re-armed to 1 ms, the signal
 * raised, a file made in the directory) and the ready set grows by exactly
 * that one. EPOLL_CTL_MOD with the registered numbers changes the data seen
 * in fdinfo and in the events, EPOLL_CTL_DEL removes an item (a second DEL
 * and a MOD on an fd that was never registered fail with ENOENT), and
 * EPOLL_CTL_ADD of a registered fd fails with EEXIST.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/eventfd.h>

#include "epollcheck.h"

const char *test_doc = "epoll items on targets of every kind keep their masks, data and readiness";

static char *dirname;
TEST_OPTION(dirname, string, "directory the inotify target watches", 1);

enum {
	PIPE_R,		/* pipe read end, data queued: ready */
	PIPE_W_FULL,	/* write end of a full pipe: not ready */
	STREAM_IDLE,	/* unix stream end, nothing queued, EPOLLIN | EPOLLRDHUP */
	STREAM_DATA,	/* the other end, data queued */
	DGRAM_DATA,	/* unix datagram end, a datagram queued */
	DGRAM_OUT,	/* the other end, watched for EPOLLOUT: ready */
	UDP,		/* UDP on 127.0.0.1, nothing queued */
	EFD_READY,	/* eventfd holding 3 */
	EFD_IDLE,	/* eventfd holding 0 */
	TIMER_LONG,	/* timerfd an hour ahead */
	TIMER_FIRED,	/* timerfd that has expired */
	SIG_PENDING,	/* signalfd for SIGUSR1, which is pending */
	SIG_IDLE,	/* signalfd for SIGUSR2 */
	INOTIFY,	/* inotify watching dirname for IN_CREATE */
	NT
};

struct target {
	const char *name;
	int fd;
	uint32_t mask;		/* registered events */
	uint32_t ready;		/* what epoll_wait reports for it now; 0: nothing */
	uint64_t data;
};

static struct target t[NT];
static int ep, ep2, pipe_w, pipe_full_r, stream_peer;
static struct sockaddr_in udp_addr;
static char file_new[4096];

#define DATA(i) (0xdead000000000000ull | (i))
#define DATA2(i) (0xbeef000000000000ull | (i))

static void set(int i, const char *name, int fd, uint32_t mask, uint32_t ready)
{
	t[i].name = name;
	t[i].fd = fd;
	t[i].mask = mask;
	t[i].ready = ready;
	t[i].data = DATA(i);
}

/* ep's expected items and ready set, from the table. */
static int check_ep(const char *what)
{
	struct ep_item items[NT];
	struct ep_ev evs[NT];
	int i, n = 0, bad;

	for (i = 0; i < NT; i++)
		items[i] = (struct ep_item){ t[i].fd, t[i].mask | EP_ALWAYS, t[i].data };
	bad = ep_items_are(ep, items, NT, what);
	for (i = 0; i < NT; i++)
		if (t[i].ready)
			evs[n++] = (struct ep_ev){ t[i].data, t[i].ready };
	return bad | ep_ready_are(ep, evs, n, what);
}

/* The EPOLL_CLOEXEC one: the pipe (always ready) and the idle eventfd, ready or not. */
static int check_ep2(const char *what)
{
	struct ep_item items[] = {
		{ t[PIPE_R].fd, EPOLLIN | EP_ALWAYS, DATA2(0) },
		{ t[EFD_IDLE].fd, EPOLLIN | EP_ALWAYS, DATA2(1) },
	};
	struct ep_ev evs[] = { { DATA2(0), EPOLLIN }, { DATA2(1), EPOLLIN } };

	return ep_items_are(ep2, items, 2, what) |
	       ep_ready_are(ep2, evs, t[EFD_IDLE].ready ? 2 : 1, what);
}

static int setup(void)
{
	int p1[2], p2[2], st[2], dg[2], fd, i;
	struct itimerspec its = { .it_value = { 3600, 0 } };
	socklen_t len = sizeof(udp_addr);
	char page[4096];
	sigset_t set1, set2;

	if (mkdir(dirname, 0755)) {
		pr_perror("mkdir %s", dirname);
		return 1;
	}
	snprintf(file_new, sizeof(file_new), "%s/new", dirname);

	if (pipe(p1) || pipe(p2) || socketpair(AF_UNIX, SOCK_STREAM, 0, st) ||
	    socketpair(AF_UNIX, SOCK_DGRAM, 0, dg)) {
		pr_perror("pipe/socketpair");
		return 1;
	}
	pipe_w = p1[1];
	if (write(pipe_w, "pipe", 4) != 4) {
		pr_perror("write pipe");
		return 1;
	}
	set(PIPE_R, "pipe read end", p1[0], EPOLLIN, EPOLLIN);

	/* a full pipe: page-sized writes until there is no room */
	pipe_full_r = p2[0];
	set_nonblock(p2[1], 1);
	memset(page, 'f', sizeof(page));
	while (write(p2[1], page, sizeof(page)) == sizeof(page))
		;
	if (errno != EAGAIN) {
		pr_perror("fill the pipe");
		return 1;
	}
	set(PIPE_W_FULL, "write end of a full pipe", p2[1], EPOLLOUT, 0);

	stream_peer = st[1];
	if (write(st[0], "stream", 6) != 6) {
		pr_perror("write stream");
		return 1;
	}
	set(STREAM_IDLE, "unix stream end", st[0], EPOLLIN | EPOLLRDHUP, 0);
	set(STREAM_DATA, "unix stream end with data", st[1], EPOLLIN, EPOLLIN);

	if (write(dg[1], "dgram", 5) != 5) {
		pr_perror("write dgram");
		return 1;
	}
	set(DGRAM_DATA, "unix dgram end with a datagram", dg[0], EPOLLIN, EPOLLIN);
	set(DGRAM_OUT, "unix dgram end, EPOLLOUT", dg[1], EPOLLOUT, EPOLLOUT);

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	udp_addr.sin_family = AF_INET;
	udp_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&udp_addr, sizeof(udp_addr)) ||
	    getsockname(fd, (struct sockaddr *)&udp_addr, &len)) {
		pr_perror("udp socket");
		return 1;
	}
	set(UDP, "UDP socket", fd, EPOLLIN, 0);

	set(EFD_READY, "eventfd holding 3", eventfd(3, 0), EPOLLIN, EPOLLIN);
	set(EFD_IDLE, "eventfd holding 0", eventfd(0, 0), EPOLLIN, 0);

	fd = timerfd_create(CLOCK_MONOTONIC, 0);
	if (fd < 0 || timerfd_settime(fd, 0, &its, NULL)) {
		pr_perror("timerfd");
		return 1;
	}
	set(TIMER_LONG, "timerfd an hour ahead", fd, EPOLLIN, 0);
	fd = timerfd_create(CLOCK_MONOTONIC, 0);
	its.it_value.tv_sec = 0;
	its.it_value.tv_nsec = 1;
	if (fd < 0 || timerfd_settime(fd, 0, &its, NULL) || wait_ready(fd, POLLIN, 5000)) {
		pr_perror("timerfd that expires");
		return 1;
	}
	set(TIMER_FIRED, "expired timerfd", fd, EPOLLIN, EPOLLIN);

	sigemptyset(&set1);
	sigaddset(&set1, SIGUSR1);
	sigemptyset(&set2);
	sigaddset(&set2, SIGUSR2);
	if (sigprocmask(SIG_BLOCK, &set1, NULL) || sigprocmask(SIG_BLOCK, &set2, NULL)) {
		pr_perror("sigprocmask");
		return 1;
	}
	set(SIG_PENDING, "signalfd, signal pending", signalfd(-1, &set1, 0), EPOLLIN, EPOLLIN);
	set(SIG_IDLE, "signalfd, no signal", signalfd(-1, &set2, 0), EPOLLIN, 0);
	if (raise(SIGUSR1)) {
		pr_perror("raise");
		return 1;
	}

	fd = inotify_init1(0);
	if (fd < 0 || inotify_add_watch(fd, dirname, IN_CREATE) < 0) {
		pr_perror("inotify");
		return 1;
	}
	set(INOTIFY, "inotify", fd, EPOLLIN, 0);

	ep = epoll_create1(0);
	ep2 = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0 || ep2 < 0) {
		pr_perror("epoll_create1");
		return 1;
	}
	for (i = 0; i < NT; i++) {
		if (t[i].fd < 0) {
			pr_err("%s: no fd\n", t[i].name);
			return 1;
		}
		if (ep_add(ep, t[i].fd, t[i].mask, t[i].data))
			return 1;
	}
	if (ep_add(ep2, t[PIPE_R].fd, EPOLLIN, DATA2(0)) ||
	    ep_add(ep2, t[EFD_IDLE].fd, EPOLLIN, DATA2(1)))
		return 1;

	return check_ep("before the checkpoint") | check_ep2("before the checkpoint");
}

/* Target i became ready with events ev: the ready set is the old one plus that. */
static int now_ready(int i, uint32_t ev)
{
	char what[128];

	t[i].ready = ev;
	snprintf(what, sizeof(what), "%s made ready", t[i].name);
	return check_ep(what);
}

/* Make each idle target ready in turn; stops at the first step that fails. */
static int make_ready(void)
{
	struct itimerspec its = { .it_value = { 0, 1000000 } }, cur;
	char page[4096];
	int fd;

	if (read(pipe_full_r, page, sizeof(page)) != sizeof(page)) {
		fail("read a page from the full pipe");
		return 1;
	}
	if (now_ready(PIPE_W_FULL, EPOLLOUT))
		return 1;

	if (write(stream_peer, "more", 4) != 4) {
		fail("write to the stream peer");
		return 1;
	}
	if (now_ready(STREAM_IDLE, EPOLLIN))
		return 1;
	if (shutdown(stream_peer, SHUT_WR)) {
		fail("shutdown the stream peer");
		return 1;
	}
	if (now_ready(STREAM_IDLE, EPOLLIN | EPOLLRDHUP))
		return 1;

	if (sendto(t[UDP].fd, "udp", 3, 0, (struct sockaddr *)&udp_addr, sizeof(udp_addr)) != 3 ||
	    wait_ready(t[UDP].fd, POLLIN, 5000)) {
		fail("a datagram to the UDP socket on port %d", ntohs(udp_addr.sin_port));
		return 1;
	}
	if (now_ready(UDP, EPOLLIN))
		return 1;

	if (efd_add(t[EFD_IDLE].fd, 1, "idle eventfd") || now_ready(EFD_IDLE, EPOLLIN))
		return 1;

	if (timerfd_gettime(t[TIMER_LONG].fd, &cur) || cur.it_value.tv_sec < 600) {
		fail("the long timer has %lld s left, expected more than 600",
		     (long long)cur.it_value.tv_sec);
		return 1;
	}
	if (timerfd_settime(t[TIMER_LONG].fd, 0, &its, NULL) ||
	    wait_ready(t[TIMER_LONG].fd, POLLIN, 5000)) {
		fail("the long timer re-armed to 1 ms does not expire");
		return 1;
	}
	if (now_ready(TIMER_LONG, EPOLLIN))
		return 1;

	if (raise(SIGUSR2)) {
		fail("raise(SIGUSR2)");
		return 1;
	}
	if (now_ready(SIG_IDLE, EPOLLIN))
		return 1;

	fd = open(file_new, O_CREAT | O_WRONLY, 0644);
	if (fd < 0) {
		fail("create %s", file_new);
		return 1;
	}
	close(fd);
	return now_ready(INOTIFY, EPOLLIN);
}

/* EPOLL_CTL_MOD / DEL / ADD with the registered fd numbers. */
static int check_ctl(void)
{
	int bad = 0, i;

	for (i = 0; i < NT; i++) {
		t[i].data ^= 0xff00;
		bad |= ep_ctl_is(ep, EPOLL_CTL_MOD, t[i].fd, t[i].mask, t[i].data, 0, t[i].name);
	}
	bad |= check_ep("after EPOLL_CTL_MOD of every item");

	bad |= ep_ctl_is(ep, EPOLL_CTL_ADD, t[EFD_READY].fd, EPOLLIN, 1, EEXIST,
			 "ADD of a registered eventfd");
	bad |= ep_ctl_is(ep, EPOLL_CTL_MOD, pipe_w, EPOLLOUT, 1, ENOENT,
			 "MOD of the unregistered pipe write end");
	bad |= ep_ctl_is(ep, EPOLL_CTL_DEL, pipe_w, 0, 0, ENOENT,
			 "DEL of the unregistered pipe write end");

	bad |= ep_ctl_is(ep2, EPOLL_CTL_DEL, t[PIPE_R].fd, 0, 0, 0, "DEL of the pipe in ep2");
	bad |= ep_ctl_is(ep2, EPOLL_CTL_DEL, t[PIPE_R].fd, 0, 0, ENOENT, "second DEL in ep2");
	{
		struct ep_item left = { t[EFD_IDLE].fd, EPOLLIN | EP_ALWAYS, DATA2(1) };
		struct ep_ev ev = { DATA2(1), EPOLLIN };

		bad |= ep_items_are(ep2, &left, 1, "ep2 after DEL");
		bad |= ep_ready_are(ep2, &ev, 1, "ep2 after DEL");
	}

	for (i = 0; i < NT; i++) {
		bad |= ep_ctl_is(ep, EPOLL_CTL_DEL, t[i].fd, 0, 0, 0, t[i].name);
		bad |= ep_ctl_is(ep, EPOLL_CTL_DEL, t[i].fd, 0, 0, ENOENT, t[i].name);
	}
	bad |= ep_items_are(ep, NULL, 0, "after DEL of every item");
	bad |= ep_none_ready(ep, "after DEL of every item");
	return bad;
}

int main(int argc, char **argv)
{
	int bad = 0;

	test_init(argc, argv);
	if (setup())
		return 1;

	test_daemon();
	test_waitsig();

	/* each stage expects what the one before left: go on only while all is well */
	bad |= fd_flags_are(ep, O_RDWR, 0, "epoll");
	bad |= fd_flags_are(ep2, O_RDWR, FD_CLOEXEC, "EPOLL_CLOEXEC epoll");
	bad |= check_ep("after restore");
	bad |= check_ep2("after restore");
	if (!bad)
		bad = make_ready();
	if (!bad)
		bad = check_ep2("after the idle eventfd was written");
	if (!bad)
		bad = check_ctl();

	unlink(file_new);
	rmdir(dirname);
	if (!bad)
		pass();
	return 0;
}
