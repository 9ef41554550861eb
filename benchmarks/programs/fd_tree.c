/* A tree of processes holding many fds of mixed kinds, for bench_collectors.py:
 *
 *   fd_tree PROCS FDS RESULT
 *
 * PROCS processes (this one and PROCS - 1 children) hold FDS fds each besides stdin,
 * stdout and stderr.  The first FDS / 16 are opened by this one before it forks, so that
 * every process holds the same descriptions there; each process opens the rest itself,
 * round robin: a regular file of the directory "files" (50 files, so each inode has many
 * descriptions across the tree, each at its own offset, every other one O_CLOEXEC), both
 * ends of a pipe, /dev/null, an eventfd, a memfd, both ends of a unix socketpair, and a
 * dup of one of its earlier fds (one more fd on that description).  RESULT gets
 * "ready <pid>" once every process has its fds; the children die with this one.  On
 * SIGTERM this process counts its open fds and replaces RESULT's content with "OK" if
 * it still holds FDS + 3, or with what it holds, then exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "result_file.h"

#define FILES 50

enum kind { REG, PIPE, DEVNULL, EVENT, MEMFD, SOCKETS, DUP, KINDS };

/* Open ``count`` fds, the kinds round robin; ``who`` sets the files' offsets apart. */
static int open_fds(int count, int who)
{
	int *own = calloc(count, sizeof(int)), n = 0, pair[2];
	char name[64];

	if (!own)
		return -1;
	for (int slot = 0; n < count; slot++) {
		enum kind kind = slot % KINDS;

		/* a pair needs room for two; a dup, an fd before it */
		if (((kind == PIPE || kind == SOCKETS) && count - n < 2) || (kind == DUP && !n))
			kind = DEVNULL;
		switch (kind) {
		case REG:
			snprintf(name, sizeof(name), "files/f%d", slot % FILES);
			own[n] = open(name, O_RDWR | O_CREAT | (slot & 1 ? O_CLOEXEC : 0), 0644);
			if (own[n] >= 0 && lseek(own[n], who * 1000 + slot, SEEK_SET) < 0)
				return -1;
			break;
		case PIPE:
		case SOCKETS:
			if (kind == PIPE ? pipe(pair) : socketpair(AF_UNIX, SOCK_STREAM, 0, pair))
				return -1;
			own[n++] = pair[0];
			own[n] = pair[1];
			break;
		case DEVNULL:
			own[n] = open("/dev/null", O_RDONLY);
			break;
		case EVENT:
			own[n] = eventfd(slot, 0);
			break;
		case MEMFD:
			own[n] = memfd_create("fd_tree", 0);
			if (own[n] >= 0 && write(own[n], &slot, sizeof(slot)) != sizeof(slot))
				return -1;
			break;
		default:
			own[n] = dup(own[n / 2]);
		}
		if (own[n++] < 0)
			return -1;
	}
	free(own);
	return 0;
}

static int held(int want, const char *result)
{
	char text[64];
	int n = 0;

	for (int fd = 0; fd < want + 64; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	if (n == want) {
		put(result, "OK\n");
		return 0;
	}
	snprintf(text, sizeof(text), "BAD: %d fds open, not %d\n", n, want);
	put(result, text);
	return 1;
}

int main(int argc, char **argv)
{
	int procs, fds, shared, ready[2];
	pid_t parent = getpid();
	struct rlimit rl;
	char text[64], c;

	if (argc != 4)
		return 2;
	procs = atoi(argv[1]);
	fds = atoi(argv[2]);
	shared = fds / 16;
	rl.rlim_cur = rl.rlim_max = fds + 64;
	if (procs < 1 || fds < 1 || setrlimit(RLIMIT_NOFILE, &rl) ||
	    (mkdir("files", 0755) && errno != EEXIST) || pipe(ready) || open_fds(shared, 0))
		return 3;
	for (int i = 1; i < procs; i++) {
		pid_t pid = fork();

		if (pid < 0)
			return 3;
		if (pid == 0) {
			close(ready[0]);
			if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent ||
			    open_fds(fds - shared, i) || write(ready[1], "x", 1) != 1)
				_exit(3);
			close(ready[1]);
			for (;;)
				pause();
		}
	}
	close(ready[1]);
	for (int i = 1; i < procs; i++)		/* end of file first: a child failed */
		if (read(ready[0], &c, 1) != 1)
			return 3;
	close(ready[0]);
	if (open_fds(fds - shared, 0))
		return 3;
	signal(SIGTERM, on_term);
	snprintf(text, sizeof(text), "ready %d\n", getpid());
	put(argv[3], text);
	while (!stop)
		pause();
	return held(fds + 3, argv[3]);
}
