/* A flat process tree for C/R benchmarks: this process and N - 1 children, each with M
 * separate one-page VMAs (N = 1, M = 20000: one process with many VMAs).
 *
 *   proc_tree N M RESULT_FILE
 * Every process maps M pages side by side, protections alternating rw- / r-- so that no two
 * merge, and writes a mark of its own index and the page's into each writable page.
 * "ready PID" goes to RESULT_FILE once all processes have done so; then they pause.  On
 * SIGTERM the root has every child check itself (a child exits 0 when each page holds its
 * mark, the read-only ones zero, and its parent is still the root), checks its own pages
 * and that every child passed, and replaces RESULT_FILE's content with "OK" or the first
 * failure, then exits.  With STALL_METER=1 the root runs stall_meter.h's meter (SIGUSR2:
 * the largest stall into RESULT_FILE.stall); processes stop one by one, the root first.
 */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "result_file.h"
#include "stall_meter.h"

#define PAGE 4096L

static int m;

static uint64_t mark(int proc, int page) { return (uint64_t)proc << 32 | ((uint64_t)page + 1); }
static int writable(int page) { return !(page & 1); }

/* Map the pages into one reserved area, so that they sit next to each other. */
static uint64_t *map_pages(int proc)
{
	char *base = mmap(NULL, (size_t)m * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (base == MAP_FAILED)
		return NULL;
	for (int i = 0; i < m; i++) {
		int prot = writable(i) ? PROT_READ | PROT_WRITE : PROT_READ;
		uint64_t *p = mmap(base + i * PAGE, PAGE, prot,
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);

		if (p == MAP_FAILED)
			return NULL;
		if (writable(i))
			*p = mark(proc, i);
	}
	return (uint64_t *)base;
}

/* The first page that does not hold what it should, or -1. */
static int bad_page(const uint64_t *base, int proc)
{
	for (int i = 0; i < m; i++)
		if (base[i * PAGE / 8] != (writable(i) ? mark(proc, i) : 0))
			return i;
	return -1;
}

static void child(int proc, pid_t root, int ready)
{
	uint64_t *base = map_pages(proc);

	signal(SIGTERM, on_term);
	if (!base || write(ready, "x", 1) != 1)
		_exit(3);
	close(ready);
	while (!stop)
		pause();
	_exit(bad_page(base, proc) >= 0 || getppid() != root ? 1 : 0);
}

int main(int argc, char **argv)
{
	int n, ready[2], bad;
	pid_t root = getpid(), *kids;
	uint64_t *base;
	char text[128], c;

	if (argc != 4)
		return 2;
	n = atoi(argv[1]);
	m = atoi(argv[2]);
	kids = calloc(n, sizeof(*kids));
	if (n < 1 || m < 1 || !kids || pipe(ready))
		return 3;
	for (int i = 1; i < n; i++) {
		kids[i] = fork();
		if (kids[i] < 0)
			return 3;
		if (kids[i] == 0) {
			close(ready[0]);
			child(i, root, ready[1]);
		}
	}
	close(ready[1]);
	base = map_pages(0);
	if (!base)
		return 3;
	for (int i = 1; i < n; i++)		/* end of file first: a child failed */
		if (read(ready[0], &c, 1) != 1)
			return 3;
	close(ready[0]);
	signal(SIGTERM, on_term);
	stall_meter_start(argv[3]);
	snprintf(text, sizeof(text), "ready %d\n", root);
	put(argv[3], text);
	while (!stop)
		pause();

	text[0] = 0;
	for (int i = 1; i < n; i++)
		kill(kids[i], SIGTERM);
	for (int i = 1; i < n; i++) {
		int status = -1;

		if ((waitpid(kids[i], &status, 0) != kids[i] || status != 0) && !text[0])
			snprintf(text, sizeof(text), "BAD child %d (pid %d): status %#x\n", i,
				 kids[i], status);
	}
	if (!text[0] && (bad = bad_page(base, 0)) >= 0)
		snprintf(text, sizeof(text), "BAD page %d of the root\n", bad);
	put(argv[3], text[0] ? text : "OK\n");
	return text[0] ? 1 : 0;
}
