/*
 * Pipes holding unread data: a few bytes; a full pipe (written with
 * O_NONBLOCK until EAGAIN); a pipe enlarged with F_SETPIPE_SZ holding 300 KiB;
 * a packet-mode pipe (O_DIRECT) with three packets; a pipe whose write end is
 * closed (EOF) and one whose read end is closed (EPIPE). After restore sizes,
 * flags and FIONREAD are as they were, the data reads back in order (packets
 * one per read), the first EOF pipe still reads EOF and the other still gives
 * EPIPE.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>

#include "fdcheck.h"

const char *test_doc = "pipes keep unread data, sizes, flags and packet boundaries";

#define BIG (300 << 10)

static uint8_t byte_at(int pipe, int i)
{
	return (uint8_t)(pipe * 37 + i * 11 + i / 4096);
}

struct pipe {
	const char *what;
	int fds[2], flags, size, len;
	struct fdstate was[2];
	int nread;
};

static int fill(struct pipe *p, int index, int len)
{
	uint8_t *buf = malloc(len);
	int i, done = 0;

	if (!buf)
		return -1;
	for (i = 0; i < len; i++)
		buf[i] = byte_at(index, i);
	while (done < len) {
		ssize_t n = write(p->fds[1], buf + done, len - done);
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			free(buf);
			return -1;
		}
		done += n;
	}
	free(buf);
	p->len = done;
	return 0;
}

static int drain(struct pipe *p, int index)
{
	uint8_t *buf = malloc(p->len + 1);
	int done = 0, i;

	while (done < p->len) {
		ssize_t n = read(p->fds[0], buf + done, p->len - done);
		if (n <= 0) {
			fail("%s: read gave %zd after %d of %d bytes", p->what, n, done, p->len);
			free(buf);
			return 1;
		}
		done += n;
	}
	for (i = 0; i < p->len; i++)
		if (buf[i] != byte_at(index, i)) {
			fail("%s: byte %d is %#x", p->what, i, buf[i]);
			free(buf);
			return 1;
		}
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	struct pipe pipes[] = {
		{ "small" }, { "full", .flags = O_NONBLOCK }, { "enlarged" },
		{ "packets", .flags = O_DIRECT }, { "eof", .flags = O_NONBLOCK }, { "epipe" },
	};
	enum { SMALL, FULL, ENLARGED, PACKETS, EOFP, EPIPEP, N };
	static const int packets[] = { 100, 200, 300 };
	uint8_t buf[1024];
	int i, k, n, bad = 0;

	test_init(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < N; i++)
		if (pipe2(pipes[i].fds, pipes[i].flags)) {
			pr_perror("pipe2");
			return 1;
		}
	if (fcntl(pipes[ENLARGED].fds[0], F_SETPIPE_SZ, 1 << 20) < 0) {
		pr_perror("F_SETPIPE_SZ");
		return 1;
	}
	if (fill(&pipes[SMALL], SMALL, 1000) || fill(&pipes[FULL], FULL, 1 << 20) ||
	    fill(&pipes[ENLARGED], ENLARGED, BIG)) {
		pr_perror("write");
		return 1;
	}
	for (k = 0; k < (int)ARRAY_SIZE(packets); k++) {
		memset(buf, 'a' + k, packets[k]);
		if (write(pipes[PACKETS].fds[1], buf, packets[k]) != packets[k]) {
			pr_perror("write packet");
			return 1;
		}
	}
	close(pipes[EOFP].fds[1]);
	close(pipes[EPIPEP].fds[0]);
	pipes[EOFP].fds[1] = pipes[EPIPEP].fds[0] = -1;

	for (i = 0; i < N; i++) {
		struct pipe *p = &pipes[i];
		int fd = p->fds[0] >= 0 ? p->fds[0] : p->fds[1];

		p->size = fcntl(fd, F_GETPIPE_SZ);
		if (p->fds[0] >= 0)
			ioctl(p->fds[0], FIONREAD, &p->nread);
		for (k = 0; k < 2; k++)
			if (p->fds[k] >= 0 && fd_state(p->fds[k], &p->was[k])) {
				pr_perror("fd state");
				return 1;
			}
	}
	if (pipes[FULL].len != pipes[FULL].size) {
		pr_err("the full pipe took %d bytes, its size is %d\n", pipes[FULL].len, pipes[FULL].size);
		return 1;
	}

	test_daemon();
	test_waitsig();

	for (i = 0; i < N; i++) {
		struct pipe *p = &pipes[i];
		int fd = p->fds[0] >= 0 ? p->fds[0] : p->fds[1];

		for (k = 0; k < 2; k++)
			if (p->fds[k] >= 0)
				bad |= fd_same(p->fds[k], &p->was[k], p->what);
		if (fcntl(fd, F_GETPIPE_SZ) != p->size) {
			fail("%s: pipe size %d, was %d", p->what, fcntl(fd, F_GETPIPE_SZ), p->size);
			bad = 1;
		}
		if (p->fds[0] >= 0 && (ioctl(p->fds[0], FIONREAD, &n) || n != p->nread)) {
			fail("%s: %d bytes unread, was %d", p->what, n, p->nread);
			bad = 1;
		}
	}
	if (bad)
		return 0;
	bad |= drain(&pipes[SMALL], SMALL) | drain(&pipes[FULL], FULL) |
	       drain(&pipes[ENLARGED], ENLARGED);
	for (k = 0; k < (int)ARRAY_SIZE(packets); k++) {
		n = read(pipes[PACKETS].fds[0], buf, sizeof(buf));
		if (n != packets[k] || buf[0] != 'a' + k || buf[n - 1] != 'a' + k) {
			fail("packet %d: read %d bytes, expected %d", k, n, packets[k]);
			bad = 1;
			break;
		}
	}
	if (read(pipes[EOFP].fds[0], buf, 1) != 0) {
		fail("the pipe without writers does not read EOF");
		bad = 1;
	}
	if (write(pipes[EPIPEP].fds[1], buf, 1) != -1 || errno != EPIPE) {
		fail("the pipe without readers does not give EPIPE");
		bad = 1;
	}
	if (!bad)
		pass();
	return 0;
}
