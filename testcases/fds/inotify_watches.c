/*
 * inotify watches: in --dirname, a non-blocking, close-on-exec inotify fd
 * watching a file (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE) and a
 * subdirectory (IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_ONLYDIR |
 * IN_EXCL_UNLINK); a first watch on the top directory was removed, so the
 * live watch descriptors are not 1 and 2 only by chance. The queue is empty
 * at the checkpoint. After restore: /proc/self/fdinfo lists exactly the two
 * "inotify wd:... ino:... mask:..." lines as before (same wd, inode, mask),
 * the fd keeps O_NONBLOCK and FD_CLOEXEC, the queue is still empty, and new
 * changes fire exactly the expected events with the right wd and names:
 * nothing for the unwatched top directory, IN_MODIFY + IN_CLOSE_WRITE for the
 * file, IN_CREATE + IN_DELETE for a file made and removed in the subdirectory.
 */
#include <sys/stat.h>

#include "inotify_events.h"

const char *test_doc = "inotify watches (wd, inode, mask) are kept and still fire";

static char *dirname;
TEST_OPTION(dirname, string, "directory for the watched files", 1);

#define FILE_MASK (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE)
#define DIR_MASK (IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_ONLYDIR | IN_EXCL_UNLINK)

/* The "inotify wd:" lines of the fd's fdinfo, without the f_handle part, sorted by wd. */
static int watch_lines(int fd, char out[][256], int max)
{
	char buf[8192], *line, *save = NULL, *h;
	int n = 0, i, j;

	if (fdinfo_read(fd, buf, sizeof(buf)) < 0)
		return -1;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "inotify wd:", 11) || n == max)
			continue;
		h = strstr(line, " fhandle-bytes:");
		if (h)
			*h = '\0';
		snprintf(out[n++], 256, "%s", line);
	}
	for (i = 1; i < n; i++)   /* few lines: insertion sort by wd */
		for (j = i; j > 0 && strtol(out[j] + 11, NULL, 16) < strtol(out[j - 1] + 11, NULL, 16); j--) {
			char t[256];
			memcpy(t, out[j], 256);
			memcpy(out[j], out[j - 1], 256);
			memcpy(out[j - 1], t, 256);
		}
	return n;
}

static int touch(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);

	if (fd < 0)
		return -1;
	if (data && write(fd, data, strlen(data)) != (ssize_t)strlen(data)) {
		close(fd);
		return -1;
	}
	return close(fd);
}

int main(int argc, char **argv)
{
	char file[4096], sub[4096], newf[4096], other[4096];
	char before[4][256], after[4][256];
	struct inotify_ev ev[INOTIFY_KEEP], want[4];
	struct stat fst, sst;
	int fd, wd_top, wd_file, wd_dir, nb, na, n, i, fl, bad = 0;

	test_init(argc, argv);
	snprintf(file, sizeof(file), "%s/file", dirname);
	snprintf(sub, sizeof(sub), "%s/sub", dirname);
	snprintf(newf, sizeof(newf), "%s/sub/new", dirname);
	snprintf(other, sizeof(other), "%s/other", dirname);
	if (mkdir(dirname, 0755) || mkdir(sub, 0755) || touch(file, "hello\n") ||
	    stat(file, &fst) || stat(sub, &sst)) {
		pr_perror("set up %s", dirname);
		return 1;
	}
	fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0) {
		pr_perror("inotify_init1");
		return 1;
	}
	wd_top = inotify_add_watch(fd, dirname, IN_CREATE);
	wd_file = inotify_add_watch(fd, file, FILE_MASK);
	wd_dir = inotify_add_watch(fd, sub, DIR_MASK);
	if (wd_top < 0 || wd_file < 0 || wd_dir < 0 || inotify_rm_watch(fd, wd_top)) {
		pr_perror("inotify_add_watch");
		return 1;
	}
	n = inotify_read_events(fd, ev);   /* the IN_IGNORED of the removed watch */
	if (n != 1 || ev[0].wd != wd_top || !(ev[0].mask & IN_IGNORED)) {
		pr_err("expected one IN_IGNORED event, got %d\n", n);
		return 1;
	}
	nb = watch_lines(fd, before, 4);
	if (nb != 2) {
		pr_err("fdinfo shows %d watches, expected 2\n", nb);
		return 1;
	}
	for (i = 0; i < nb; i++)
		test_msg("before: %s\n", before[i]);

	test_daemon();
	test_waitsig();

	fl = fcntl(fd, F_GETFL);
	if (!(fl & O_NONBLOCK) || fcntl(fd, F_GETFD) != FD_CLOEXEC) {
		fail("F_GETFL %#o F_GETFD %d, expected O_NONBLOCK and FD_CLOEXEC", fl,
		     fcntl(fd, F_GETFD));
		bad = 1;
	}
	na = watch_lines(fd, after, 4);
	if (na != nb) {
		fail("fdinfo shows %d watches, expected %d", na, nb);
		bad = 1;
	}
	for (i = 0; i < na && i < nb; i++)
		if (strcmp(before[i], after[i])) {
			fail("watch was \"%s\", is \"%s\"", before[i], after[i]);
			bad = 1;
		}
	for (i = 0; i < na; i++) {
		unsigned long wd, ino, mask;
		char *m = strstr(after[i], " mask:"), *ino_s = strstr(after[i], " ino:");

		if (!m || !ino_s) {
			fail("cannot parse \"%s\"", after[i]);
			bad = 1;
			continue;
		}
		wd = strtoul(after[i] + 11, NULL, 16);
		ino = strtoul(ino_s + 5, NULL, 16);
		mask = strtoul(m + 6, NULL, 16);
		if (!((wd == (unsigned long)wd_file && ino == fst.st_ino &&
		       (mask & IN_ALL_EVENTS) == (FILE_MASK & IN_ALL_EVENTS)) ||
		      (wd == (unsigned long)wd_dir && ino == sst.st_ino &&
		       (mask & IN_ALL_EVENTS) == (DIR_MASK & IN_ALL_EVENTS)))) {
			fail("unexpected watch \"%s\" (file wd %d ino %lu, dir wd %d ino %lu)", after[i],
			     wd_file, (unsigned long)fst.st_ino, wd_dir, (unsigned long)sst.st_ino);
			bad = 1;
		}
	}
	n = inotify_read_events(fd, ev);
	if (n != 0) {
		fail("%d events queued after the restore, expected none (first wd %d mask %#x)", n,
		     n > 0 ? ev[0].wd : -1, n > 0 ? ev[0].mask : 0);
		bad = 1;
	}

	/* new changes */
	if (touch(other, NULL) || touch(file, "more\n") || touch(newf, NULL) || unlink(newf)) {
		pr_perror("changes");
		return 1;
	}
	want[0] = (struct inotify_ev){ wd_file, IN_MODIFY, 0, "" };
	want[1] = (struct inotify_ev){ wd_file, IN_CLOSE_WRITE, 0, "" };
	want[2] = (struct inotify_ev){ wd_dir, IN_CREATE, 0, "new" };
	want[3] = (struct inotify_ev){ wd_dir, IN_DELETE, 0, "new" };
	n = inotify_read_events(fd, ev);
	bad |= inotify_events_are(ev, n, want, 4, 0, "after the changes");

	close(fd);
	unlink(file);
	unlink(other);
	rmdir(sub);
	rmdir(dirname);
	if (!bad)
		pass();
	return 0;
}
