/*
 * Regular files opened with different flags: O_RDWR at an offset, O_RDONLY
 * at the end, O_WRONLY|O_APPEND, O_WRONLY|O_SYNC|O_NOATIME, O_RDONLY|
 * O_NONBLOCK. After restore each fd is the same file (path, device, inode),
 * with the same status flags and offset; reads at the offset give the file's
 * bytes, and a write through the O_APPEND fd lands at the end of the file even
 * after an lseek to 0.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "fdcheck.h"

const char *test_doc = "regular files keep path, flags and offsets; O_APPEND still appends";

static char *dirname;
TEST_OPTION(dirname, string, "directory for the test's files", 1);

#define SIZE 8192

static uint8_t byte_at(int i)
{
	return (uint8_t)(i * 13 + 5);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int flags;
		off_t seek;
	} opens[] = {
		{ "data", O_RDWR, 1234 },
		{ "data", O_RDONLY, SIZE },
		{ "log", O_WRONLY | O_APPEND, 0 },
		{ "sync", O_WRONLY | O_SYNC | O_NOATIME, 10 },
		{ "data", O_RDONLY | O_NONBLOCK, 4096 },
	};
	struct fdstate was[ARRAY_SIZE(opens)];
	int fds[ARRAY_SIZE(opens)], i, bad = 0;
	uint8_t buf[SIZE];
	char path[4096];
	struct stat sb;

	test_init(argc, argv);
	if (mkdir(dirname, 0755)) {
		pr_perror("mkdir %s", dirname);
		return 1;
	}
	for (i = 0; i < SIZE; i++)
		buf[i] = byte_at(i);
	snprintf(path, sizeof(path), "%s/data", dirname);
	i = open(path, O_WRONLY | O_CREAT, 0644);
	if (i < 0 || write_data(i, buf, SIZE) || close(i)) {
		pr_perror("create %s", path);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/log", dirname);
	i = open(path, O_WRONLY | O_CREAT, 0644);
	if (i < 0 || write_data(i, (const unsigned char *)"0123456789", 10) || close(i)) {
		pr_perror("create %s", path);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/sync", dirname);
	i = open(path, O_WRONLY | O_CREAT, 0644);
	if (i < 0 || write_data(i, buf, 100) || close(i)) {
		pr_perror("create %s", path);
		return 1;
	}

	for (i = 0; i < (int)ARRAY_SIZE(opens); i++) {
		snprintf(path, sizeof(path), "%s/%s", dirname, opens[i].name);
		fds[i] = open(path, opens[i].flags);
		if (fds[i] < 0 || lseek(fds[i], opens[i].seek, SEEK_SET) != opens[i].seek ||
		    fd_state(fds[i], &was[i])) {
			pr_perror("open %s", path);
			return 1;
		}
	}

	test_daemon();
	test_waitsig();

	for (i = 0; i < (int)ARRAY_SIZE(opens); i++)
		bad |= fd_same(fds[i], &was[i], opens[i].name);
	if (bad)
		return 0;

	/* reads continue at the offset */
	if (read(fds[0], buf, 100) != 100 || buf[0] != byte_at(1234) || buf[99] != byte_at(1333)) {
		fail("reading at offset 1234 gave other bytes");
		bad = 1;
	}
	if (read(fds[1], buf, 1) != 0) {
		fail("the fd at the end of the file is not at its end");
		bad = 1;
	}
	/* O_APPEND appends, wherever the offset is */
	lseek(fds[2], 0, SEEK_SET);
	if (write(fds[2], "abc", 3) != 3 || fstat(fds[2], &sb) || sb.st_size != 13 ||
	    lseek(fds[2], 0, SEEK_CUR) != 13) {
		fail("a write through the O_APPEND fd did not append (size %lld)", (long long)sb.st_size);
		bad = 1;
	}
	snprintf(path, sizeof(path), "%s/log", dirname);
	i = open(path, O_RDONLY);
	if (i < 0 || read(i, buf, 20) != 13 || memcmp(buf, "0123456789abc", 13)) {
		fail("the log file does not read 0123456789abc");
		bad = 1;
	}
	close(i);
	if (!bad)
		pass();
	return 0;
}
