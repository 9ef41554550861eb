/* Touch N MiB of fresh anonymous memory, then give it back: warm_memory MIB
 *
 * In a VM with free page reporting (virtio-balloon), memory that stayed free for a couple of
 * seconds is handed back to the host, and the next first touch of each page costs a host
 * fault: several times the cost of the copy itself.  Whether an engine's timed run meets such
 * memory then depends on what ran two seconds before it.  Running this right before every
 * timed dump and restore, for both engines, gives each the memory a bare-metal machine has.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	size_t size = strtoull(argv[1], NULL, 10) << 20;
	char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 1;
	if (madvise(p, size, MADV_POPULATE_WRITE))
		for (size_t i = 0; i < size; i += 4096)
			p[i] = 1;
	return 0;
}
