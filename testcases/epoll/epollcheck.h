/*
 * What the epoll tests share: the items of an epoll as its fdinfo shows them
 * ("tfd: %8d events: %8x data: %16llx  pos:%lli ino:%lx sdev:%x"), compared
 * with what was registered; the exact set of events one epoll_wait() returns;
 * epoll_ctl() calls that must succeed or fail with a given errno.
 *
 * Every comparison is a set comparison (fdinfo lists items in the order of
 * its red-black tree, keyed by file address, which a restore changes; events
 * come in the order they became ready). ino and pos are not compared: a
 * restored pipe or socket is a new inode.
 */
#ifndef EPOLLCHECK_H_
#define EPOLLCHECK_H_

#include <linux/kcmp.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/syscall.h>

#include "../fds/fdinfo.h"

/* Events the kernel adds to every item on EPOLL_CTL_ADD and EPOLL_CTL_MOD. */
#define EP_ALWAYS (EPOLLERR | EPOLLHUP)
/* What is left of a fired EPOLLONESHOT item's events (the kernel's EP_PRIVATE_BITS). */
#define EP_PRIVATE (EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE)

/* Stop listing differences after this many (the 1000-item test). */
#define EP_MAX_REPORTS 16

/* One item as fdinfo shows it. */
struct ep_item {
	int tfd;
	uint32_t events;
	uint64_t data;
};

/* One event as epoll_wait() returns it. */
struct ep_ev {
	uint64_t data;
	uint32_t events;
};

/* epoll_ctl() with a 64-bit data word; its result (errno set on -1). */
static inline int ep_ctl(int ep, int op, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };

	return epoll_ctl(ep, op, fd, &ev);
}

/* EPOLL_CTL_ADD that must work: fail() and 1 otherwise. */
static inline int ep_add(int ep, int fd, uint32_t events, uint64_t data)
{
	if (ep_ctl(ep, EPOLL_CTL_ADD, fd, events, data)) {
		pr_perror("epoll_ctl(%d, ADD, %d, %#x, %#llx)", ep, fd, events,
			  (unsigned long long)data);
		return 1;
	}
	return 0;
}

/* epoll_ctl() that must succeed (err 0) or fail with errno err; fail() and 1 otherwise. */
static inline int ep_ctl_is(int ep, int op, int fd, uint32_t events, uint64_t data, int err,
			    const char *what)
{
	static const char *const ops[] = { "?", "ADD", "DEL", "MOD" };
	int ret;

	errno = 0;
	ret = ep_ctl(ep, op, fd, events, data);
	if (err ? ret == -1 && errno == err : ret == 0)
		return 0;
	fail("%s: epoll_ctl(%s, fd %d) returned %d, expected %s", what, ops[op & 3], fd, ret,
	     err ? strerror(err) : "success");
	return 1;
}

/* The items of ep's fdinfo, at most max of them; their number, or -1. */
static inline int ep_items(int ep, struct ep_item *items, int max)
{
	size_t size = (size_t)max * 128 + 4096;
	char *buf = malloc(size), *line, *save = NULL;
	unsigned long long data;
	unsigned int events;
	int n = 0, tfd;

	if (!buf || fdinfo_read(ep, buf, size) < 0) {
		pr_perror("fdinfo of %d", ep);
		free(buf);
		return -1;
	}
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "tfd:", 4))
			continue;
		if (sscanf(line, "tfd: %d events: %x data: %llx", &tfd, &events, &data) != 3) {
			pr_err("fdinfo of %d: cannot parse \"%s\"\n", ep, line);
			n = -1;
			break;
		}
		if (n == max) {
			pr_err("fdinfo of %d: more than %d items\n", ep, max);
			n = -1;
			break;
		}
		items[n].tfd = tfd;
		items[n].events = events;
		items[n].data = data;
		n++;
	}
	free(buf);
	return n;
}

static inline int ep_item_cmp(const void *a, const void *b)
{
	const struct ep_item *x = a, *y = b;

	if (x->tfd != y->tfd)
		return x->tfd < y->tfd ? -1 : 1;
	if (x->data != y->data)
		return x->data < y->data ? -1 : 1;
	if (x->events != y->events)
		return x->events < y->events ? -1 : 1;
	return 0;
}

/*
 * ep's fdinfo lists exactly the items want[0..n) (tfd, events, data; in any
 * order); otherwise fail() with each missing and unexpected item, and 1.
 */
static inline int ep_items_are(int ep, const struct ep_item *want, int n, const char *what)
{
	int max = n + 64, got_n, i = 0, j = 0, reports = 0;
	struct ep_item *got = calloc(max, sizeof(*got)), *exp = calloc(n + 1, sizeof(*exp));

	if (!got || !exp)
		abort();
	got_n = ep_items(ep, got, max);
	if (got_n < 0) {
		fail("%s: the items of epoll %d cannot be read", what, ep);
		free(got);
		free(exp);
		return 1;
	}
	if (n)
		memcpy(exp, want, n * sizeof(*exp));
	qsort(got, got_n, sizeof(*got), ep_item_cmp);
	qsort(exp, n, sizeof(*exp), ep_item_cmp);
	while (i < n || j < got_n) {
		int c = i == n ? 1 : j == got_n ? -1 : ep_item_cmp(&exp[i], &got[j]);

		if (c == 0) {
			i++;
			j++;
			continue;
		}
		if (reports++ < EP_MAX_REPORTS) {
			const struct ep_item *it = c < 0 ? &exp[i] : &got[j];

			fail("%s: epoll %d %s tfd %d events %#x data %#llx", what, ep,
			     c < 0 ? "lacks the item" : "has an unexpected item", it->tfd,
			     it->events, (unsigned long long)it->data);
		}
		if (c < 0)
			i++;
		else
			j++;
	}
	if (reports)
		fail("%s: epoll %d has %d items, expected %d; %d differences", what, ep, got_n, n,
		     reports);
	free(got);
	free(exp);
	return reports ? 1 : 0;
}

static inline int ep_ev_cmp(const void *a, const void *b)
{
	const struct ep_ev *x = a, *y = b;

	if (x->data != y->data)
		return x->data < y->data ? -1 : 1;
	if (x->events != y->events)
		return x->events < y->events ? -1 : 1;
	return 0;
}

/*
 * One epoll_wait(ep, maxevents large, timeout 0) returns exactly the events
 * want[0..n) (data with exactly those event bits, each once, in any order);
 * otherwise fail() with each missing and unexpected one, and 1.
 */
static inline int ep_ready_are(int ep, const struct ep_ev *want, int n, const char *what)
{
	int max = 2 * n + 256, got_n, i = 0, j = 0, reports = 0;
	struct epoll_event *evs = calloc(max, sizeof(*evs));
	struct ep_ev *got = calloc(max, sizeof(*got)), *exp = calloc(n + 1, sizeof(*exp));

	if (!evs || !got || !exp)
		abort();
	got_n = epoll_wait(ep, evs, max, 0);
	if (got_n < 0) {
		fail("%s: epoll_wait(%d)", what, ep);
		free(evs);
		free(got);
		free(exp);
		return 1;
	}
	for (i = 0; i < got_n; i++) {
		got[i].data = evs[i].data.u64;
		got[i].events = evs[i].events;
	}
	if (n)
		memcpy(exp, want, n * sizeof(*exp));
	qsort(got, got_n, sizeof(*got), ep_ev_cmp);
	qsort(exp, n, sizeof(*exp), ep_ev_cmp);
	i = 0;
	while (i < n || j < got_n) {
		int c = i == n ? 1 : j == got_n ? -1 : ep_ev_cmp(&exp[i], &got[j]);

		if (c == 0) {
			i++;
			j++;
			continue;
		}
		if (reports++ < EP_MAX_REPORTS) {
			const struct ep_ev *ev = c < 0 ? &exp[i] : &got[j];

			fail("%s: epoll_wait(%d) %s data %#llx events %#x", what, ep,
			     c < 0 ? "did not return" : "returned unexpected",
			     (unsigned long long)ev->data, ev->events);
		}
		if (c < 0)
			i++;
		else
			j++;
	}
	if (reports)
		fail("%s: epoll_wait(%d) returned %d events, expected %d; %d differences", what, ep,
		     got_n, n, reports);
	free(evs);
	free(got);
	free(exp);
	return reports ? 1 : 0;
}

/* Nothing ready in ep: an epoll_wait() with timeout 0 returns no event. */
static inline int ep_none_ready(int ep, const char *what)
{
	return ep_ready_are(ep, NULL, 0, what);
}

/*
 * Wait (up to ms) until poll() sees any of events on fd, for targets that
 * become ready asynchronously (timers, loopback packets); 0 when it does. The
 * target's own poll(), so no epoll state is touched.
 */
static inline int wait_ready(int fd, short events, int ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int ret;

	do
		ret = poll(&p, 1, ms);
	while (ret < 0 && errno == EINTR);
	return ret == 1 && (p.revents & events) ? 0 : -1;
}

/* 1 when fd is not an open descriptor of this process. */
static inline int fd_closed(int fd)
{
	return fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

/*
 * kcmp(KCMP_EPOLL_TFD): which of the items of this process's epoll ep with
 * target number tfd (the toff-th such item in the kernel's order, for toff 0,
 * 1, ...) have the file at fd of process pid as their target: a bit mask by
 * toff; -1 (errno set) when the kernel cannot say, e.g. no such item at all,
 * or no kcmp (ENOSYS) or no KCMP_EPOLL_TFD (EINVAL) in this kernel.
 */
static inline int ep_kcmp_tfd(pid_t pid, int fd, int ep, int tfd)
{
	struct kcmp_epoll_slot slot = { .efd = ep, .tfd = tfd };
	int mask = 0;

	for (slot.toff = 0; slot.toff < 8; slot.toff++) {
		long ret = syscall(SYS_kcmp, pid, getpid(), KCMP_EPOLL_TFD, fd, &slot);

		if (ret < 0 && slot.toff > 0 && errno == ENOENT)
			break;
		if (ret < 0)
			return -1;
		if (ret == 0)
			mask |= 1 << slot.toff;
	}
	return mask;
}

/* Write one 8-byte value to an eventfd; fail() and 1 when it does not go in. */
static inline int efd_add(int fd, uint64_t v, const char *what)
{
	if (write(fd, &v, sizeof(v)) != sizeof(v)) {
		fail("%s: write %llu to eventfd %d", what, (unsigned long long)v, fd);
		return 1;
	}
	return 0;
}

/* Read an eventfd's counter (zeroing it) and compare; fail() and 1 when it differs. */
static inline int efd_take(int fd, uint64_t want, const char *what)
{
	uint64_t v = 0;

	if (read(fd, &v, sizeof(v)) != sizeof(v) || v != want) {
		fail("%s: eventfd %d read %llu, expected %llu", what, fd, (unsigned long long)v,
		     (unsigned long long)want);
		return 1;
	}
	return 0;
}

/* Move fd to number to (dup2 and close the original); exits on failure. */
static inline int move_fd(int fd, int to)
{
	if (fd == to)
		return to;
	if (dup2(fd, to) != to) {
		pr_perror("dup2(%d, %d)", fd, to);
		exit(1);
	}
	close(fd);
	return to;
}

#endif
