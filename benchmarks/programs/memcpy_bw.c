/*
 * This machine's plain copy bandwidths, for bench_memcopy.py:
 *
 *   memcpy_bw MIB FILE
 *   memcpy_bw MIB FILE once
 *
 * Prints three lines "name bytes_per_second", best of 5 each over MIB MiB (touched first,
 * so that page faults are not measured): "memcpy" (memory to memory), "pwrite" (memory
 * into FILE's page cache, the file truncated before each pass: what a dump's page copy
 * amounts to at best) and "pwrite-hot" (the same into pages already cached).
 * With "once": one line, "pwrite-once", a single pass into a new FILE with its blocks
 * reserved first (fallocate), as a dump writes its page image, after free memory of twice
 * the size was warmed as before a timed dump: what the copy costs in the machine's state
 * of the moment (in this VM, whether the free memory the page cache takes is still backed
 * by the host).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1 << 20)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *area(size_t size)
{
	char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	memset(p, 0x5a, size);
	return p;
}

static void write_all(int fd, const char *src, size_t size)
{
	for (size_t done = 0; done < size; done += CHUNK)
		if (pwrite(fd, src + done, CHUNK, done) != CHUNK) {
			perror("pwrite");
			exit(2);
		}
}

int main(int argc, char **argv)
{
	size_t size = (argc > 2 ? strtoul(argv[1], NULL, 10) : 256) << 20;
	char *src = area(size), *dst;
	double best[3] = { 1e9, 1e9, 1e9 };
	int fd;

	if (argc < 3)
		return 2;
	fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		perror("open");
		return 2;
	}
	if (argc > 3 && !strcmp(argv[3], "once")) {
		double t;

		/* as bench_memcopy.py before each dump: twice the size warmed (warm_memory.c) */
		char *warm = mmap(NULL, 2 * size, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (warm == MAP_FAILED || madvise(warm, 2 * size, 23 /* POPULATE_WRITE */))
			return 2;
		munmap(warm, 2 * size);
		if (fallocate(fd, 0, 0, size))
			perror("fallocate");
		t = now();
		write_all(fd, src, size);
		printf("pwrite-once %.0f\n", size / (now() - t));
		unlink(argv[2]);
		return 0;
	}
	dst = area(size);
	for (int i = 0; i < 5; i++) {
		double t = now();

		memcpy(dst, src, size);
		t = now() - t;
		if (t < best[0])
			best[0] = t;
		if (ftruncate(fd, 0))
			return 2;
		t = now();
		write_all(fd, src, size);
		t = now() - t;
		if (t < best[1])
			best[1] = t;
		t = now();
		write_all(fd, src, size);
		t = now() - t;
		if (t < best[2])
			best[2] = t;
	}
	printf("memcpy %.0f\npwrite %.0f\npwrite-hot %.0f\n", size / best[0], size / best[1],
	       size / best[2]);
	close(fd);
	unlink(argv[2]);
	return dst[size - 1] == 0x5a ? 0 : 1;
}
