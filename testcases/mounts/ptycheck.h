/*
 * What the pty programs (mnt_devpts_ptys.c, pty_host.c) share: printing bytes and termios
 * for messages, comparing termios, waiting for input, and the checks that an fd's queues are
 * empty and that it links to a path.
 */
#ifndef PTYCHECK_H
#define PTYCHECK_H

#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>

#include "mntcheck.h"

#define PTS_SLAVE_MAJOR 136
#define WAIT_MS 5000		/* the longest a read waits for what it expects */

static inline const char *show(const void *data, size_t len)
{
	static char bufs[4][512];
	static int next;
	char *buf = bufs[next++ % 4], *p = buf;
	const unsigned char *d = data;
	size_t i;

	for (i = 0; i < len && p < buf + sizeof(bufs[0]) - 5; i++) {
		if (d[i] >= 0x20 && d[i] < 0x7f && d[i] != '\\')
			*p++ = d[i];
		else
			p += sprintf(p, "\\x%02x", d[i]);
	}
	*p = 0;
	return buf;
}

static inline const char *show_termios(const struct termios *t)
{
	static char bufs[2][256];
	static int next;
	char *buf = bufs[next++ % 2];

	snprintf(buf, sizeof(bufs[0]), "iflag %#o oflag %#o cflag %#o lflag %#o line %d cc %s "
		 "speed %#o/%#o", t->c_iflag, t->c_oflag, t->c_cflag, t->c_lflag, t->c_line,
		 show(t->c_cc, NCCS), cfgetispeed(t), cfgetospeed(t));
	return buf;
}

static inline int same_termios(const struct termios *a, const struct termios *b)
{
	return a->c_iflag == b->c_iflag && a->c_oflag == b->c_oflag &&
	       a->c_cflag == b->c_cflag && a->c_lflag == b->c_lflag && a->c_line == b->c_line &&
	       !memcmp(a->c_cc, b->c_cc, sizeof(a->c_cc)) &&
	       cfgetispeed(a) == cfgetispeed(b) && cfgetospeed(a) == cfgetospeed(b);
}

static inline int readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLPRI };
	int r;

	do
		r = poll(&p, 1, ms);
	while (r < 0 && errno == EINTR);
	return r > 0 && (p.revents & (POLLIN | POLLPRI));
}

static inline int quiet(const char *when, const char *what, int fd)
{
	int inq = -1, outq = -1, in = readable(fd, 0);

	if (ioctl(fd, FIONREAD, &inq))
		inq = -1;
	if (ioctl(fd, TIOCOUTQ, &outq))
		outq = -1;
	if (in || inq || outq) {
		fail("%s: %s is not quiet: readable %d, FIONREAD %d, TIOCOUTQ %d", when, what, in,
		     inq, outq);
		return 1;
	}
	return 0;
}

static inline int check_link(const char *when, const char *what, int fd, const char *want)
{
	char buf[512];
	ssize_t n = readlink(mp("/proc/self/fd/%d", fd), buf, sizeof(buf) - 1);

	if (n < 0 || (buf[n] = 0, strcmp(buf, want))) {
		if (n >= 0)
			errno = 0;
		fail("%s: %s is \"%s\", not %s", when, what, n < 0 ? "" : buf, want);
		return 1;
	}
	return 0;
}

#endif
