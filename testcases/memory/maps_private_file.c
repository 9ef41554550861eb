/*
 * A private file mapping (MAP_PRIVATE of --filename) with some pages written:
 * after restore the written pages keep their new contents, the others still
 * show the file, and still *are* the file: a pwrite() to the file shows
 * through an unwritten page but not through a written one. A second,
 * read-only mapping at a file offset keeps its offset (/proc/self/maps).
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "helpers.h"

const char *test_doc = "private file mappings: dirty pages private, clean pages the file's";

static char *filename;
TEST_OPTION(filename, string, "file to map", 1);

#define PAGES 16
static const int dirty[] = { 1, 5, 6, 15 };

static uint8_t file_byte(size_t i)
{
	return (uint8_t)(i * 7 + i / 4096 + 3);
}

static uint8_t dirty_byte(size_t i)
{
	return (uint8_t)(~i ^ 0x5a);
}

static int is_dirty(int page)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(dirty); i++)
		if (dirty[i] == page)
			return 1;
	return 0;
}

/* The /proc/self/maps line of the mapping starting at addr: offset and path. */
static int vma_of(void *addr, unsigned long *pgoff, char *perms, char *path)
{
	char buf[1 << 16], *line, *save;

	if (read_whole("/proc/self/maps", buf, sizeof(buf)) < 0)
		return -1;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long s, e;
		int n = 0;

		if (sscanf(line, "%lx-%lx %4s %lx %*s %*u %n", &s, &e, perms, pgoff, &n) < 4)
			continue;
		if (s == (unsigned long)addr) {
			strcpy(path, n ? line + n : "");
			return 0;
		}
	}
	return -1;
}

int main(int argc, char **argv)
{
	size_t ps = sysconf(_SC_PAGESIZE), i, len;
	char perms[8], path[4096], want_path[4096];
	unsigned long pgoff;
	uint8_t *map, *ro, *buf;
	int fd, p, bad = 0;

	test_init(argc, argv);
	len = PAGES * ps;

	fd = open(filename, O_RDWR | O_CREAT | O_TRUNC, 0644);
	buf = malloc(len);
	if (fd < 0 || !buf) {
		pr_perror("open %s", filename);
		return 1;
	}
	for (i = 0; i < len; i++)
		buf[i] = file_byte(i);
	if (write_data(fd, buf, len)) {
		pr_perror("write");
		return 1;
	}
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	ro = mmap(NULL, 4 * ps, PROT_READ, MAP_PRIVATE, fd, 4 * ps);
	if (map == MAP_FAILED || ro == MAP_FAILED) {
		pr_perror("mmap");
		return 1;
	}
	close(fd);
	if (!realpath(filename, want_path)) {
		pr_perror("realpath");
		return 1;
	}
	for (p = 0; p < PAGES; p++)
		if (is_dirty(p))
			for (i = p * ps; i < (p + 1) * ps; i++)
				map[i] = dirty_byte(i);

	test_daemon();
	test_waitsig();

	if (vma_of(map, &pgoff, perms, path) || strcmp(perms, "rw-p") || pgoff || strcmp(path, want_path)) {
		fail("writable mapping at %p is not rw-p at offset 0 of %s", map, want_path);
		bad = 1;
	}
	if (vma_of(ro, &pgoff, perms, path) || strcmp(perms, "r--p") || pgoff != 4 * ps ||
	    strcmp(path, want_path)) {
		fail("read-only mapping at %p is not r--p at offset %zu of %s", ro, 4 * ps, want_path);
		bad = 1;
	}
	for (i = 0; i < len && !bad; i++) {
		uint8_t want = is_dirty(i / ps) ? dirty_byte(i) : file_byte(i);
		if (map[i] != want) {
			fail("byte %zu (page %zu, %s) is %#x, expected %#x", i, i / ps,
			     is_dirty(i / ps) ? "written" : "clean", map[i], want);
			bad = 1;
		}
	}
	for (i = 0; i < 4 * ps && !bad; i++)
		if (ro[i] != file_byte(4 * ps + i)) {
			fail("read-only mapping byte %zu differs from the file", i);
			bad = 1;
		}

	/* clean pages are the file's page cache: a write to the file shows through */
	fd = open(filename, O_WRONLY);
	if (fd < 0 || pwrite(fd, "CLEAN", 5, 2 * ps) != 5 || pwrite(fd, "DIRTY", 5, 5 * ps) != 5) {
		pr_perror("pwrite");
		return 1;
	}
	close(fd);
	if (!bad && memcmp(map + 2 * ps, "CLEAN", 5)) {
		fail("a clean page of the private mapping no longer follows the file");
		bad = 1;
	}
	if (!bad && !memcmp(map + 5 * ps, "DIRTY", 5)) {
		fail("a written page of the private mapping shows the file's new data");
		bad = 1;
	}
	if (!bad)
		pass();
	return 0;
}
