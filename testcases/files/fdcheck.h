/* What the file tests record about an fd and compare after restore. */
#ifndef FDCHECK_H_
#define FDCHECK_H_

#include <fcntl.h>
#include <sys/stat.h>

#include "helpers.h"

struct fdstate {
	char path[4096];
	int flags, fdflags;
	off_t pos;
	dev_t dev, rdev;
	ino_t ino;
	mode_t mode;
};

static inline int fd_state(int fd, struct fdstate *st)
{
	char link[64];
	struct stat sb;
	ssize_t n;

	memset(st, 0, sizeof(*st));
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, st->path, sizeof(st->path) - 1);
	if (n < 0 || fstat(fd, &sb))
		return -1;
	st->flags = fcntl(fd, F_GETFL);
	st->fdflags = fcntl(fd, F_GETFD);
	st->pos = lseek(fd, 0, SEEK_CUR);   /* -1 for pipes and O_PATH */
	st->dev = sb.st_dev;
	st->rdev = sb.st_rdev;
	st->ino = sb.st_ino;
	st->mode = sb.st_mode;
	return 0;
}

/* Compare an fd with what was recorded; reports and returns 1 on a difference. */
static inline int fd_same(int fd, const struct fdstate *was, const char *what)
{
	struct fdstate now;

	if (fd_state(fd, &now)) {
		fail("%s: fd %d is not open", what, fd);
		return 1;
	}
	/*
	 * An anonymous pipe's inode number is pipefs's business: a restored pipe is
	 * a new inode. Tests check its identity by sharing (kcmp) and data instead.
	 */
	if (!strncmp(was->path, "pipe:[", 6) && !strncmp(now.path, "pipe:[", 6)) {
		now.ino = was->ino;
		strcpy(now.path, was->path);
	}
	if (strcmp(now.path, was->path) || now.flags != was->flags || now.fdflags != was->fdflags ||
	    now.pos != was->pos || now.dev != was->dev || now.ino != was->ino ||
	    now.rdev != was->rdev || now.mode != was->mode) {
		fail("%s: fd %d is %s flags %#o fd flags %d pos %lld ino %lu, was %s %#o %d %lld %lu", what,
		     fd, now.path, now.flags, now.fdflags, (long long)now.pos, (unsigned long)now.ino,
		     was->path, was->flags, was->fdflags, (long long)was->pos, (unsigned long)was->ino);
		return 1;
	}
	return 0;
}

#endif
