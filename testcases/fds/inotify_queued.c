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
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "inotify_events.h"

const char *test_doc = "inotify events queued before the checkpoint are read after the restore";

static char *dirname;
TEST_OPTION(dirname, string, "directory for the watched files", 1);

static int touch(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0644);

	return fd < 0 ? -1 : close(fd);
}

int main(int argc, char **argv)
{
	char a[4096], b[4096], c[4096], file[4096], d2[4096];
	struct inotify_ev ev[INOTIFY_KEEP], want[6];
	int fd, wd_dir, wd_file, n, bad = 0, queued_before = 0, queued_after = 0;

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
	want[0] = (struct inotify_ev){ wd_dir, IN_CREATE, 0, "a" };
	want[1] = (struct inotify_ev){ wd_dir, IN_CREATE, 0, "b" };
	want[2] = (struct inotify_ev){ wd_dir, IN_MOVED_FROM, 1, "a" };
	want[3] = (struct inotify_ev){ wd_dir, IN_MOVED_TO, 1, "c" };
	want[4] = (struct inotify_ev){ wd_dir, IN_DELETE, 0, "b" };
	want[5] = (struct inotify_ev){ wd_file, IN_ATTRIB, 0, "" };
	n = inotify_read_events(fd, ev);
	bad |= inotify_events_are(ev, n, want, 6, 1, "the queued events");
	if (n >= 4 && ev[2].cookie != ev[3].cookie) {
		fail("the rename's events have cookies %u and %u", ev[2].cookie, ev[3].cookie);
		bad = 1;
	}
	if (fd_readable(fd)) {
		fail("events left after reading all");
		bad = 1;
	}
	if (chmod(file, 0644) || inotify_read_events(fd, ev) != 1 || ev[0].wd != wd_file ||
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
