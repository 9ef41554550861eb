/* Processes with many separate VMAs, for bench_collectors.py:
 *
 *   many_vmas N FILE_EVERY PROCS RESULT
 *
 * PROCS processes (this one and PROCS - 1 children) each map N regions of 2 pages side by
 * side, protections alternating rw- / r-- so that no two merge into one VMA; with
 * FILE_EVERY > 0 every FILE_EVERY-th region is a private mapping of a page pair of the
 * file "backing" (in the working directory, 64 pairs, each pair starting with its index),
 * the others anonymous, each writable one written (so it has a page).  RESULT gets
 * "ready <pid>" once every process has mapped its regions; the children die with this
 * one.  On SIGTERM this process checks its own regions (the byte written, the file's
 * index) and replaces RESULT's content with "OK" or the first bad region, then exits.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "result_file.h"

#define PAGE 4096L
#define REGION (2 * PAGE)
#define PAIRS 64

static int n, every;

static int is_file(int i) { return every > 0 && i % every == 0; }
static int writable(int i) { return !(i & 1); }
static int pair_of(int i) { return i / every % PAIRS; }
static char mark(int i) { return (char)(i * 7 + 1); }

static int make_backing(void)
{
	int fd = open("backing", O_RDWR | O_CREAT, 0644);

	if (fd < 0 || ftruncate(fd, PAIRS * REGION))
		return -1;
	for (int k = 0; k < PAIRS; k++)
		if (pwrite(fd, &k, sizeof(k), k * REGION) != sizeof(k))
			return -1;
	return fd;
}

/* Map the regions into one reserved area, so they sit next to each other. */
static char *map_regions(int fd)
{
	char *base = mmap(NULL, (size_t)n * REGION, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (base == MAP_FAILED)
		return NULL;
	for (int i = 0; i < n; i++) {
		char *at = base + (size_t)i * REGION;
		int prot = writable(i) ? PROT_READ | PROT_WRITE : PROT_READ;
		void *p = is_file(i) ?
			mmap(at, REGION, prot, MAP_PRIVATE | MAP_FIXED, fd, pair_of(i) * REGION) :
			mmap(at, REGION, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);

		if (p == MAP_FAILED)
			return NULL;
		if (writable(i) && !is_file(i))
			at[0] = mark(i);
	}
	return base;
}

static int check(const char *base, char *why, size_t size)
{
	for (int i = 0; i < n; i++) {
		const char *at = base + (size_t)i * REGION;
		int k;

		memcpy(&k, at, sizeof(k));
		if (is_file(i) ? k != pair_of(i) : writable(i) ? at[0] != mark(i) : at[0] != 0) {
			snprintf(why, size, "BAD region %d\n", i);
			return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	int procs, fd = -1, ready[2], bad;
	pid_t parent = getpid();
	char text[64], c;
	char *base;

	if (argc != 5)
		return 2;
	n = atoi(argv[1]);
	every = atoi(argv[2]);
	procs = atoi(argv[3]);
	if (n < 1 || procs < 1 || (every > 0 && (fd = make_backing()) < 0) || pipe(ready))
		return 3;
	for (int i = 1; i < procs; i++) {
		pid_t pid = fork();

		if (pid < 0)
			return 3;
		if (pid == 0) {
			if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent ||
			    !map_regions(fd))
				_exit(3);
			if (write(ready[1], "x", 1) != 1)
				_exit(3);
			close(ready[0]);
			close(ready[1]);
			for (;;)
				pause();
		}
	}
	close(ready[1]);
	base = map_regions(fd);
	if (!base)
		return 3;
	for (int i = 1; i < procs; i++)		/* end of file first: a child failed */
		if (read(ready[0], &c, 1) != 1)
			return 3;
	close(ready[0]);
	if (fd >= 0)
		close(fd);
	signal(SIGTERM, on_term);
	snprintf(text, sizeof(text), "ready %d\n", getpid());
	put(argv[4], text);
	while (!stop)
		pause();
	bad = check(base, text, sizeof(text));
	put(argv[4], bad ? text : "OK\n");
	return bad;
}
