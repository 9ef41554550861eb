/*
 * Files opened and then unlinked, in --dirname: "rw" (O_RDWR, 5000 bytes of
 * data, a hole, 16 bytes at 1 MiB, offset 3000) and "ro" (O_RDONLY, 100
 * bytes, offset 40) whose name was reused afterwards by a new file with other
 * content. After restore: both fds are still unlinked (fstat st_nlink == 0,
 * readlink is "<path> (deleted)"; for "ro", whose path is taken, the name may
 * carry a suffix), keep their access mode, size, offset and
 * content (the hole reads as zeros), a write through "rw" at its offset reads
 * back, and the new "ro" at the old path is another inode with its own
 * content, untouched.
 */
#include <sys/stat.h>

#include "helpers.h"

const char *test_doc = "unlinked open files keep their content and offset and stay unlinked";

static char *dirname;
TEST_OPTION(dirname, string, "directory for the files", 1);

#define TAIL_OFF (1 << 20)

static int bad;

/*
 * path_taken: another file has the path now, so a restored deleted file can
 * only be made under another name in the same place: "<path>..." is enough.
 */
static void expect_deleted(int fd, const char *path, int path_taken, off_t size, off_t pos,
			   int acc, const char *what)
{
	char link[64], got[4200];
	size_t plen = strlen(path), glen;
	struct stat st;
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, got, sizeof(got) - 1);
	got[n < 0 ? 0 : n] = '\0';
	glen = strlen(got);
	if (strncmp(got, path, plen) || glen < plen + 10 || strcmp(got + glen - 10, " (deleted)") ||
	    (!path_taken && glen != plen + 10)) {
		fail("%s: links to \"%s\", expected \"%s%s (deleted)\"", what, got, path,
		     path_taken ? "[suffix]" : "");
		bad = 1;
	}
	if (fstat(fd, &st) || st.st_nlink != 0 || !S_ISREG(st.st_mode) || st.st_size != size) {
		fail("%s: nlink %lu size %lld, expected an unlinked regular file of %lld bytes", what,
		     (unsigned long)st.st_nlink, (long long)st.st_size, (long long)size);
		bad = 1;
	}
	if (lseek(fd, 0, SEEK_CUR) != pos || (fcntl(fd, F_GETFL) & O_ACCMODE) != acc) {
		fail("%s: offset %lld flags %#o, expected %lld %#o", what,
		     (long long)lseek(fd, 0, SEEK_CUR), fcntl(fd, F_GETFL), (long long)pos, acc);
		bad = 1;
	}
}

static int make_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);

	if (fd < 0)
		return -1;
	if (write_data(fd, data, len)) {
		close(fd);
		return -1;
	}
	return close(fd);
}

int main(int argc, char **argv)
{
	static uint8_t data[5000], got[TAIL_OFF + 16];
	char rw_path[4096], ro_path[4096], abs_rw[4096], abs_ro[4096], link[64];
	const char *tail = "tail of the file", *fresh = "a new file under the old name\n";
	int rw, ro, i;
	ssize_t n;
	struct stat st_old, st_new;

	test_init(argc, argv);
	for (i = 0; i < (int)sizeof(data); i++)
		data[i] = (uint8_t)(i * 13 + 1);
	snprintf(rw_path, sizeof(rw_path), "%s/rw", dirname);
	snprintf(ro_path, sizeof(ro_path), "%s/ro", dirname);
	if (mkdir(dirname, 0755)) {
		pr_perror("mkdir %s", dirname);
		return 1;
	}
	rw = open(rw_path, O_RDWR | O_CREAT | O_EXCL, 0644);
	if (rw < 0 || write_data(rw, data, sizeof(data)) ||
	    pwrite(rw, tail, 16, TAIL_OFF) != 16 || lseek(rw, 3000, SEEK_SET) != 3000) {
		pr_perror("create %s", rw_path);
		return 1;
	}
	if (make_file(ro_path, data, 100) || (ro = open(ro_path, O_RDONLY)) < 0 ||
	    lseek(ro, 40, SEEK_SET) != 40) {
		pr_perror("create %s", ro_path);
		return 1;
	}
	snprintf(link, sizeof(link), "/proc/self/fd/%d", rw);
	n = readlink(link, abs_rw, sizeof(abs_rw) - 1);
	abs_rw[n < 0 ? 0 : n] = '\0';
	snprintf(link, sizeof(link), "/proc/self/fd/%d", ro);
	n = readlink(link, abs_ro, sizeof(abs_ro) - 1);
	abs_ro[n < 0 ? 0 : n] = '\0';
	if (unlink(rw_path) || unlink(ro_path) || make_file(ro_path, fresh, strlen(fresh))) {
		pr_perror("unlink");
		return 1;
	}

	test_daemon();
	test_waitsig();

	expect_deleted(rw, abs_rw, 0, TAIL_OFF + 16, 3000, O_RDWR, "rw");
	expect_deleted(ro, abs_ro, 1, 100, 40, O_RDONLY, "ro");
	if (pread(rw, got, TAIL_OFF + 16, 0) != TAIL_OFF + 16 || memcmp(got, data, sizeof(data)) ||
	    memcmp(got + TAIL_OFF, tail, 16)) {
		fail("rw: content differs");
		bad = 1;
	}
	for (i = sizeof(data); i < TAIL_OFF; i++)
		if (got[i]) {
			fail("rw: byte %d of the hole is %#x", i, got[i]);
			bad = 1;
			break;
		}
	if (write(rw, "written after", 13) != 13 || lseek(rw, 0, SEEK_CUR) != 3013 ||
	    pread(rw, got, 13, 3000) != 13 || memcmp(got, "written after", 13)) {
		fail("rw: a write at the offset did not read back");
		bad = 1;
	}
	if (read(ro, got, 60) != 60 || memcmp(got, data + 40, 60) || read(ro, got, 10) != 0) {
		fail("ro: reading from the offset gave other data");
		bad = 1;
	}
	if (stat(ro_path, &st_new) || fstat(ro, &st_old) || st_new.st_ino == st_old.st_ino ||
	    st_new.st_nlink != 1 || st_new.st_size != (off_t)strlen(fresh)) {
		fail("%s is not the new file any more", ro_path);
		bad = 1;
	} else {
		int fd = open(ro_path, O_RDONLY);
		if (fd < 0 || read(fd, got, sizeof(data)) != (ssize_t)strlen(fresh) ||
		    memcmp(got, fresh, strlen(fresh))) {
			fail("%s: its content changed", ro_path);
			bad = 1;
		}
		close(fd);
	}
	if (access(rw_path, F_OK) == 0) {
		fail("%s exists again", rw_path);
		bad = 1;
	}

	unlink(ro_path);
	rmdir(dirname);
	if (!bad)
		pass();
	return 0;
}
