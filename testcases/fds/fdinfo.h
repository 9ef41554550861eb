/*
 * What the fd tests share: reading /proc/self/fdinfo/N, checking an fd's
 * flags, whether it has something to read.
 */
#ifndef FDINFO_H_
#define FDINFO_H_

#include <poll.h>

#include "helpers.h"

/* The whole of /proc/self/fdinfo/FD into buf (NUL-terminated); its length or -1. */
static inline ssize_t fdinfo_read(int fd, char *buf, size_t size)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	return read_whole(path, buf, size);
}

/*
 * The value of the line "KEY<spaces or tab>VALUE" of fd's fdinfo (KEY
 * includes its colon, e.g. "sigmask:"), copied without the line end; 0 when
 * found, -1 when not.
 */
static inline int fdinfo_field(int fd, const char *key, char *out, size_t size)
{
	char buf[8192], *line, *save = NULL;
	size_t klen = strlen(key);

	if (fdinfo_read(fd, buf, sizeof(buf)) < 0)
		return -1;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, key, klen))
			continue;
		line += klen;
		while (*line == ' ' || *line == '\t')
			line++;
		snprintf(out, size, "%s", line);
		return 0;
	}
	return -1;
}

/*
 * fd's access mode and O_NONBLOCK (F_GETFL) are fl and its fd flags (F_GETFD)
 * are fdfl; fail() and 1 otherwise.
 */
static inline int fd_flags_are(int fd, int fl, int fdfl, const char *what)
{
	int got = fcntl(fd, F_GETFL), gotfd = fcntl(fd, F_GETFD);

	if ((got & (O_ACCMODE | O_NONBLOCK)) != fl || gotfd != fdfl) {
		fail("%s: F_GETFL %#o F_GETFD %d, expected %#o %d", what, got, gotfd, fl, fdfl);
		return 1;
	}
	return 0;
}

/* 1 when fd has something to read right now (poll without waiting). */
static inline int fd_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

#endif
