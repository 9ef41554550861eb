/* Reading and comparing inotify events for the inotify tests. */
#ifndef INOTIFY_EVENTS_H_
#define INOTIFY_EVENTS_H_

#include <sys/inotify.h>

#include "fdinfo.h"

/*
 * An event as the tests compare it. In what is read, cookie is the kernel's;
 * in what is expected, 1 when the event must have a cookie, 0 when not.
 */
struct inotify_ev {
	int wd;
	uint32_t mask, cookie;
	char name[64];
};

/* How many events the tests keep of what they read (they expect fewer). */
#define INOTIFY_KEEP 16

/*
 * Read the events queued on fd now, without waiting (fd may be blocking or
 * not), keeping the first INOTIFY_KEEP in ev; their number (those not kept
 * too), or -1 when a read fails.
 */
static inline int inotify_read_events(int fd, struct inotify_ev ev[INOTIFY_KEEP])
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int n = 0;

	while (fd_readable(fd)) {
		ssize_t len = read(fd, buf, sizeof(buf)), off = 0;

		if (len < 0 && errno == EAGAIN)
			return n;
		if (len <= 0)
			return -1;
		while (off < len) {
			struct inotify_event *ie = (struct inotify_event *)(buf + off);
			if (n < INOTIFY_KEEP) {
				ev[n].wd = ie->wd;
				ev[n].mask = ie->mask;
				ev[n].cookie = ie->cookie;
				snprintf(ev[n].name, sizeof(ev[n].name), "%s", ie->len ? ie->name : "");
			}
			n++;
			off += sizeof(*ie) + ie->len;
		}
	}
	return n;
}

/*
 * The n events inotify_read_events() read into ev are exactly the nwant of
 * want, in order: wd, mask, name and, when cookies is set, whether there is a
 * cookie. Logs every event kept; fail()s on each difference and returns 1 on
 * any.
 */
static inline int inotify_events_are(const struct inotify_ev *ev, int n,
				     const struct inotify_ev *want, int nwant, int cookies,
				     const char *what)
{
	int i, bad = 0;

	if (n != nwant) {
		fail("%s: %d events, expected %d", what, n, nwant);
		bad = 1;
	}
	for (i = 0; i < n && i < INOTIFY_KEEP; i++) {
		test_msg("event wd %d mask %#x cookie %u name '%s'\n", ev[i].wd, ev[i].mask,
			 ev[i].cookie, ev[i].name);
		if (i < nwant && (ev[i].wd != want[i].wd || ev[i].mask != want[i].mask ||
				  strcmp(ev[i].name, want[i].name) ||
				  (cookies && !!ev[i].cookie != want[i].cookie))) {
			fail("%s: event %d: wd %d mask %#x cookie %u name '%s', expected wd %d mask %#x "
			     "name '%s'", what, i, ev[i].wd, ev[i].mask, ev[i].cookie, ev[i].name,
			     want[i].wd, want[i].mask, want[i].name);
			bad = 1;
		}
	}
	return bad;
}

#endif
