/*
 * inotify events queued and unread at the checkpoint: in --dirname, an
 * inotify fd (blocking) watches a directory (IN_CREATE | IN_DELETE |
 * IN_MOVED_FROM | IN_MOVED_TO) and a file (IN_ATTRIB); before the
 * checkpoint "a" and "b" are created, "a" is renamed to "c", "b" is removed
 * and the file is chmod-ed, and none of it is read. After restore FIONREAD
 * reports the same number of bytes, reading gives exactly those six events in
 * order (wd, mask, names, the rename's two events sharing one non-zero
 * cookie), then the queue is empty, and a new change still fires.
 */
#include <poll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "helpers.h"

const char *test_doc = "inotify events queued before the checkpoint are read after the restore";

static char *dirname;
TEST_OPTION(dirname, string, "directory for the watched files", 1);

struct event {
	int wd;
	uint32_t mask, cookie;
	char name[64];
};

static int readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* Read the events queued now (without blocking); their number or -1. */
static int read_events(int fd, struct event *ev, int max)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int n = 0;

	while (readable(fd)) {
		ssize_t len = read(fd, buf, sizeof(buf)), off = 0;

		if (len <= 0)
			return -1;
		while (off < len) {
			struct inotify_event *ie = (struct inotify_event *)(buf + off);
			if (n < max) {
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

static int touch(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0644);

	return fd < 0 ? -1 : close(fd);
}

int main(int argc, char **argv)
{
	char a[4096], b[4096], c[4096], file[4096], d2[4096];
	struct event ev[16], want[6];
	int fd, wd_dir, wd_file, n, i, bad = 0, queued_before = 0, queued_after = 0;

	test_init(argc, argv);
	snprintf(a, sizeof(a), "%s/dir/a", dirname);
	snprintf(b, sizeof(b), "%s/dir/b", dirname);
	snprintf(c, sizeof(c), "%s/dir/c", dirname);
	snprintf(d2, sizeof(d2), "%s/dir", dirname);
	snprintf(file, sizeof(file), "%s/file", dirname);
	if (mkdir(dirname, 0755) || mkdir(d2, 0755) || touch(file)) {
		pr_perror("set up %s", dirname);
		return 1;
	}
	fd = inotify_init1(0);
	if (fd < 0) {
		pr_perror("inotify_init1");
		return 1;
	}
	wd_dir = inotify_add_watch(fd, d2, IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO);
	wd_file = inotify_add_watch(fd, file, IN_ATTRIB);
	if (wd_dir < 0 || wd_file < 0) {
		pr_perror("inotify_add_watch");
		return 1;
	}
	if (touch(a) || touch(b) || rename(a, c) || unlink(b) || chmod(file, 0600)) {
		pr_perror("changes");
		return 1;
	}
	if (ioctl(fd, FIONREAD, &queued_before) || queued_before <= 0) {
		pr_perror("FIONREAD");
		return 1;
	}
	test_msg("%d bytes of events queued\n", queued_before);

	test_daemon();
	test_waitsig();

	if (ioctl(fd, FIONREAD, &queued_after) || queued_after != queued_before) {
		fail("FIONREAD %d, expected %d", queued_after, queued_before);
		bad = 1;
	}
	want[0] = (struct event){ wd_dir, IN_CREATE, 0, "a" };
	want[1] = (struct event){ wd_dir, IN_CREATE, 0, "b" };
	want[2] = (struct event){ wd_dir, IN_MOVED_FROM, 1, "a" };
	want[3] = (struct event){ wd_dir, IN_MOVED_TO, 1, "c" };
	want[4] = (struct event){ wd_dir, IN_DELETE, 0, "b" };
	want[5] = (struct event){ wd_file, IN_ATTRIB, 0, "" };
	n = read_events(fd, ev, 16);
	if (n != 6) {
		fail("%d events read, expected 6", n);
		bad = 1;
	}
	for (i = 0; i < n && i < 16; i++) {
		test_msg("event wd %d mask %#x cookie %u name '%s'\n", ev[i].wd, ev[i].mask,
			 ev[i].cookie, ev[i].name);
		if (i < 6 && (ev[i].wd != want[i].wd || ev[i].mask != want[i].mask ||
			      strcmp(ev[i].name, want[i].name) || !!ev[i].cookie != want[i].cookie)) {
			fail("event %d: wd %d mask %#x cookie %u name '%s', expected wd %d mask %#x "
			     "name '%s'", i, ev[i].wd, ev[i].mask, ev[i].cookie, ev[i].name, want[i].wd,
			     want[i].mask, want[i].name);
			bad = 1;
		}
	}
	if (n >= 4 && ev[2].cookie != ev[3].cookie) {
		fail("the rename's events have cookies %u and %u", ev[2].cookie, ev[3].cookie);
		bad = 1;
	}
	if (readable(fd)) {
		fail("events left after reading all");
		bad = 1;
	}
	if (chmod(file, 0644) || read_events(fd, ev, 16) != 1 || ev[0].wd != wd_file ||
	    ev[0].mask != IN_ATTRIB) {
		fail("a chmod after the restore did not give one IN_ATTRIB event");
		bad = 1;
	}

	close(fd);
	unlink(c);
	unlink(file);
	rmdir(d2);
	rmdir(dirname);
	if (!bad)
		pass();
	return 0;
}
