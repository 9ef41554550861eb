/*
 * memfd: "crb-sealed" (MFD_ALLOW_SEALING) holding 10000 bytes of data,
 * truncated up to 64 KiB, offset 1234, sealed with F_SEAL_SHRINK |
 * F_SEAL_GROW | F_SEAL_SEAL and not mapped, plus a second, read-only
 * description of it opened through /proc/self/fd; and "crb-mapped"
 * (MFD_CLOEXEC) of 4 pages mapped MAP_SHARED, filled through the mapping.
 * After restore: readlink of each fd is "/memfd:NAME (deleted)", sizes,
 * offsets, flags and FD_CLOEXEC are kept, the content reads back, the seals
 * are exactly as set and still enforced (shrinking, growing and adding seals
 * fail with EPERM), the reopened fd is the same inode as a separate
 * description (a write through one is read through the other), and the
 * mapping is still the memfd: /proc/self/maps names its inode, data written
 * through the mapping is read by pread() and data pwrite()n appears in the
 * mapping.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include "helpers.h"

const char *test_doc = "memfd names, contents, sizes, seals and shared mappings are kept";

#define DATA_LEN 10000
#define SEALED_SIZE 65536
#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

static int bad;

static void expect_link(int fd, const char *name)
{
	char link[64], path[256], want[256];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	snprintf(want, sizeof(want), "/memfd:%s (deleted)", name);
	n = readlink(link, path, sizeof(path) - 1);
	path[n < 0 ? 0 : n] = '\0';
	if (strcmp(path, want)) {
		fail("fd %d links to \"%s\", expected \"%s\"", fd, path, want);
		bad = 1;
	}
}

int main(int argc, char **argv)
{
	static uint8_t data[DATA_LEN], got[SEALED_SIZE];
	size_t maplen = 4 * PAGE_SIZE;
	uint8_t *map, *pattern;
	uint32_t crc = ~0;
	int sealed, reopened, mapped, seals, i;
	char path[64];
	struct stat sa, sb;

	test_init(argc, argv);
	datagen2(data, DATA_LEN, &crc);
	pattern = malloc(maplen);
	if (!pattern)
		return 1;
	for (i = 0; i < (int)maplen; i++)
		pattern[i] = (uint8_t)(i * 7 + 3);

	sealed = memfd_create("crb-sealed", MFD_ALLOW_SEALING);
	mapped = memfd_create("crb-mapped", MFD_CLOEXEC);
	if (sealed < 0 || mapped < 0) {
		pr_perror("memfd_create");
		return 1;
	}
	if (write_data(sealed, data, DATA_LEN) || ftruncate(sealed, SEALED_SIZE) ||
	    lseek(sealed, 1234, SEEK_SET) != 1234 || fcntl(sealed, F_ADD_SEALS, SEALS)) {
		pr_perror("fill crb-sealed");
		return 1;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", sealed);
	reopened = open(path, O_RDONLY);
	if (reopened < 0 || lseek(reopened, 99, SEEK_SET) != 99) {
		pr_perror("reopen %s", path);
		return 1;
	}
	if (ftruncate(mapped, maplen)) {
		pr_perror("ftruncate crb-mapped");
		return 1;
	}
	map = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, mapped, 0);
	if (map == MAP_FAILED) {
		pr_perror("mmap");
		return 1;
	}
	memcpy(map, pattern, maplen);

	test_daemon();
	test_waitsig();

	/* crb-sealed */
	expect_link(sealed, "crb-sealed");
	expect_link(reopened, "crb-sealed");
	if (fstat(sealed, &sa) || fstat(reopened, &sb) || sa.st_ino != sb.st_ino ||
	    sa.st_size != SEALED_SIZE) {
		fail("crb-sealed: size %lld, inodes %lu/%lu", (long long)sa.st_size,
		     (unsigned long)sa.st_ino, (unsigned long)sb.st_ino);
		bad = 1;
	}
	if ((fcntl(sealed, F_GETFL) & O_ACCMODE) != O_RDWR || fcntl(sealed, F_GETFD) != 0 ||
	    (fcntl(reopened, F_GETFL) & O_ACCMODE) != O_RDONLY || fcntl(reopened, F_GETFD) != 0) {
		fail("crb-sealed: flags %#o/%#o fd flags %d/%d", fcntl(sealed, F_GETFL),
		     fcntl(reopened, F_GETFL), fcntl(sealed, F_GETFD), fcntl(reopened, F_GETFD));
		bad = 1;
	}
	if (lseek(sealed, 0, SEEK_CUR) != 1234 || lseek(reopened, 0, SEEK_CUR) != 99) {
		fail("crb-sealed: offsets %lld/%lld, expected 1234/99",
		     (long long)lseek(sealed, 0, SEEK_CUR), (long long)lseek(reopened, 0, SEEK_CUR));
		bad = 1;
	}
	if (pread(sealed, got, SEALED_SIZE, 0) != SEALED_SIZE || memcmp(got, data, DATA_LEN)) {
		fail("crb-sealed: content differs");
		bad = 1;
	}
	for (i = DATA_LEN; i < SEALED_SIZE; i++)
		if (got[i]) {
			fail("crb-sealed: byte %d past the data is %#x", i, got[i]);
			bad = 1;
			break;
		}
	seals = fcntl(sealed, F_GET_SEALS);
	if (seals != SEALS) {
		fail("crb-sealed: seals %#x, expected %#x", seals, SEALS);
		bad = 1;
	}
	errno = 0;
	if (ftruncate(sealed, 100) != -1 || errno != EPERM) {
		fail("crb-sealed: shrinking was not refused with EPERM");
		bad = 1;
	}
	errno = 0;
	if (pwrite(sealed, "x", 1, SEALED_SIZE) != -1 || errno != EPERM) {
		fail("crb-sealed: growing was not refused with EPERM");
		bad = 1;
	}
	errno = 0;
	if (fcntl(sealed, F_ADD_SEALS, F_SEAL_WRITE) != -1 || errno != EPERM) {
		fail("crb-sealed: adding a seal was not refused with EPERM");
		bad = 1;
	}
	if (pwrite(sealed, "QRS", 3, 500) != 3 || pread(reopened, got, 3, 500) != 3 ||
	    memcmp(got, "QRS", 3)) {
		fail("crb-sealed: a write was not seen through the reopened fd");
		bad = 1;
	}

	/* crb-mapped */
	expect_link(mapped, "crb-mapped");
	if (fstat(mapped, &sa) || sa.st_size != (off_t)maplen || fcntl(mapped, F_GETFD) != FD_CLOEXEC ||
	    (fcntl(mapped, F_GETFL) & O_ACCMODE) != O_RDWR) {
		fail("crb-mapped: size %lld fd flags %d flags %#o", (long long)sa.st_size,
		     fcntl(mapped, F_GETFD), fcntl(mapped, F_GETFL));
		bad = 1;
	}
	if (fcntl(mapped, F_GET_SEALS) != F_SEAL_SEAL) {
		fail("crb-mapped: seals %#x, expected F_SEAL_SEAL only", fcntl(mapped, F_GET_SEALS));
		bad = 1;
	}
	if (maps_inode(map) != (long)sa.st_ino) {
		fail("crb-mapped: the mapping is inode %ld, the fd %lu", maps_inode(map),
		     (unsigned long)sa.st_ino);
		bad = 1;
	}
	if (memcmp(map, pattern, maplen)) {
		fail("crb-mapped: the mapping's content differs");
		bad = 1;
	}
	if (pread(mapped, got, maplen, 0) != (ssize_t)maplen || memcmp(got, pattern, maplen)) {
		fail("crb-mapped: read() gives other content than was written through the mapping");
		bad = 1;
	}
	memcpy(map + 100, "through the map", 15);
	if (pread(mapped, got, 15, 100) != 15 || memcmp(got, "through the map", 15)) {
		fail("crb-mapped: a write through the mapping is not seen by read()");
		bad = 1;
	}
	if (pwrite(mapped, "through the fd", 14, PAGE_SIZE + 5) != 14 ||
	    memcmp(map + PAGE_SIZE + 5, "through the fd", 14)) {
		fail("crb-mapped: a write() is not seen in the mapping");
		bad = 1;
	}

	munmap(map, maplen);
	if (!bad)
		pass();
	return 0;
}
