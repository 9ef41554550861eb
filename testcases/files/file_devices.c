/*
 * Character devices: /dev/null (read-write and write-only append), /dev/zero
 * (read-only, and a private mapping of it with data written) and
 * /dev/urandom. After restore each fd is the same device (rdev, path,
 * flags), /dev/null swallows writes and reads EOF, /dev/zero reads zeroes,
 * /dev/urandom gives bytes, and the /dev/zero mapping keeps its data.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "fdcheck.h"

const char *test_doc = "fds of /dev/null, /dev/zero, /dev/urandom are kept";

int main(int argc, char **argv)
{
	static const struct {
		const char *path;
		int flags;
		unsigned maj, min;
	} devs[] = {
		{ "/dev/null", O_RDWR, 1, 3 },
		{ "/dev/null", O_WRONLY | O_APPEND, 1, 3 },
		{ "/dev/zero", O_RDONLY, 1, 5 },
		{ "/dev/urandom", O_RDONLY | O_NONBLOCK, 1, 9 },
	};
	struct fdstate was[ARRAY_SIZE(devs)];
	int fds[ARRAY_SIZE(devs)], i, bad = 0;
	size_t ps = sysconf(_SC_PAGESIZE);
	uint8_t buf[512], *zmap;
	uint32_t crc = ~0;

	test_init(argc, argv);
	for (i = 0; i < (int)ARRAY_SIZE(devs); i++) {
		fds[i] = open(devs[i].path, devs[i].flags);
		if (fds[i] < 0 || fd_state(fds[i], &was[i])) {
			pr_perror("open %s", devs[i].path);
			return 1;
		}
		if (major(was[i].rdev) != devs[i].maj || minor(was[i].rdev) != devs[i].min) {
			pr_err("%s is not %u:%u\n", devs[i].path, devs[i].maj, devs[i].min);
			return 1;
		}
	}
	zmap = mmap(NULL, 16 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE, fds[2], 0);
	if (zmap == MAP_FAILED) {
		pr_perror("mmap /dev/zero");
		return 1;
	}
	datagen(zmap + 4 * ps, 8 * ps, &crc);

	test_daemon();
	test_waitsig();

	for (i = 0; i < (int)ARRAY_SIZE(devs); i++)
		bad |= fd_same(fds[i], &was[i], devs[i].path);
	if (bad)
		return 0;
	if (write(fds[0], buf, sizeof(buf)) != sizeof(buf) || read(fds[0], buf, sizeof(buf)) != 0 ||
	    write(fds[1], buf, 10) != 10) {
		fail("/dev/null does not behave");
		bad = 1;
	}
	memset(buf, 0xff, sizeof(buf));
	if (read(fds[2], buf, sizeof(buf)) != sizeof(buf)) {
		fail("reading /dev/zero");
		bad = 1;
	}
	for (i = 0; i < (int)sizeof(buf) && !bad; i++)
		if (buf[i]) {
			fail("/dev/zero gave a non-zero byte");
			bad = 1;
		}
	if (read(fds[3], buf, 64) != 64) {
		fail("reading /dev/urandom");
		bad = 1;
	}
	crc = ~0;
	if (datachk(zmap + 4 * ps, 8 * ps, &crc)) {
		fail("the /dev/zero mapping lost its data");
		bad = 1;
	}
	for (i = 0; i < (int)(4 * ps) && !bad; i++)
		if (zmap[i]) {
			fail("an untouched page of the /dev/zero mapping is not zero");
			bad = 1;
		}
	if (!bad)
		pass();
	return 0;
}
