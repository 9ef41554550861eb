/* A process with N MiB of dirtied private anonymous memory, for C/R benchmarks.
 *
 *   dirty_memory MIB RESULT_FILE
 * Fills every page with a pattern derived from its index, writes "ready PID" to RESULT_FILE,
 * then sleeps in pause().  On SIGTERM it checks every page and replaces RESULT_FILE's content
 * with "OK" or "BAD page N", then exits 0 (OK) or 1.  With STALL_METER=1 it runs
 * stall_meter.h's meter (SIGUSR2: the largest stall into RESULT_FILE.stall).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "result_file.h"
#include "stall_meter.h"

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	size_t size = strtoul(argv[1], NULL, 0) << 20, page = 4096;
	uint64_t *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return 2;
	for (size_t i = 0; i < size / page; i++)
		for (size_t w = 0; w < page / 8; w += 64)
			mem[i * page / 8 + w] = i * 2654435761u + w + 1;
	signal(SIGTERM, on_term);
	stall_meter_start(argv[2]);
	char msg[64];
	snprintf(msg, sizeof(msg), "ready %d\n", getpid());
	put(argv[2], msg);
	while (!stop)
		pause();
	for (size_t i = 0; i < size / page; i++)
		for (size_t w = 0; w < page / 8; w += 64)
			if (mem[i * page / 8 + w] != i * 2654435761u + w + 1) {
				snprintf(msg, sizeof(msg), "BAD page %zu\n", i);
				put(argv[2], msg);
				return 1;
			}
	put(argv[2], "OK\n");
	return 0;
}
