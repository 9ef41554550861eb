/* Memory written all the time, checking itself as it goes: for C/R while the process runs
 * (pre-dumps copy pages after the thaw; what it writes meanwhile must be stored again).
 *
 *   page_rounds MIB RESULT_FILE
 * Writes round r into the first word of every page, page after page, r = 1, 2, ...; before
 * each write it checks that the page still holds r - 1, so a page that comes back from a
 * restore with an older (or newer) round than the rest is found at its next write.  Writes
 * "ready PID" to RESULT_FILE after the first round; on SIGTERM replaces it with "OK"
 * or "BAD page N: round R holds X", then exits 0 or 1.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "result_file.h"

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	size_t pages = (strtoul(argv[1], NULL, 0) << 20) / 4096;
	volatile uint64_t *mem = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return 2;
	signal(SIGTERM, on_term);
	char msg[128];
	for (uint64_t round = 1; !stop; round++) {
		for (size_t i = 0; i < pages; i++) {
			uint64_t was = mem[i * 512];
			if (was != round - 1) {
				snprintf(msg, sizeof(msg), "BAD page %zu: round %llu holds %llu\n", i,
					 (unsigned long long)round, (unsigned long long)was);
				put(argv[2], msg);
				return 1;
			}
			mem[i * 512] = round;
		}
		if (round == 1) {
			snprintf(msg, sizeof(msg), "ready %d\n", getpid());
			put(argv[2], msg);
		}
	}
	put(argv[2], "OK\n");
	return 0;
}
