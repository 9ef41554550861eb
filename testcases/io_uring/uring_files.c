/*
 * A registered file table of 16 slots, sparse (IORING_REGISTER_FILES2 with
 * IORING_RSRC_REGISTER_SPARSE; before 5.19 IORING_REGISTER_FILES with -1 in
 * every slot), on a ring that has been through 1000 NOPs:
 *  - slot 0: --dirname/zero, a regular file still open as fd0 (the same open
 *    file), holding ZERO_DATA, file position 6;
 *  - slot 3: the write end of a pipe whose fd was then closed; the read end
 *    stays an fd; EARLY was written through the slot and is still in the pipe;
 *  - slot 7: --dirname/seven, opened as a direct descriptor by
 *    IORING_OP_OPENAT with file_index 8 (it never had an fd), holding
 *    SEVEN_DATA; 6 bytes were read through the slot (file position 6);
 *    before 5.15 (OPENAT gives -EINVAL) slot 7 stays empty and is not checked;
 *  - slot 9: a memfd holding NINE_DATA, put in by IORING_REGISTER_FILES_UPDATE,
 *    whose fd was then closed;
 *  - every other slot is empty.
 *
 * After restore (the ring's positions are those of the checkpoint), with
 * IOSQE_FIXED_FILE:
 *  - slot 0: a READ at the file position gives ZERO_DATA from byte 6 and
 *    moves fd0's position (one open file); a WRITE at offset 100 is seen by
 *    pread() on fd0;
 *  - slot 3: the pipe's read end gives EARLY, then LATE written through slot 3;
 *  - slot 7: a READ at the file position gives SEVEN_DATA from byte 6; a WRITE
 *    at offset 64 is in --dirname/seven for a new open();
 *  - slot 9: a READ at offset 0 gives NINE_DATA, a WRITE at 0 and a READ
 *    give the new bytes;
 *  - slots 5 and 14: a READ gives -EBADF;
 *  - IORING_REGISTER_FILES_UPDATE of slot 15 (a new pipe's read end) returns
 *    1 and a READ through it gets what the pipe was given; of slot 16: EINVAL
 *    (the table has 16 slots);
 *  - IORING_OP_FIXED_FD_INSTALL (6.8; IORING_REGISTER_PROBE says whether the
 *    kernel has it) of slot 7 gives an O_CLOEXEC fd whose /proc/self/fd link is
 *    --dirname/seven and whose file position is the slot's (the end of the data).
 */
#include <limits.h>
#include <sys/stat.h>

#include "uringcheck.h"

const char *test_doc = "A sparse registered file table: files with and without fds, direct "
		       "descriptors, file positions";

static char *dirname;
TEST_OPTION(dirname, string, "directory for the files of slots 0 and 7", 1);

#define NSLOTS 16
#define BURN 1000

static const char ZERO_DATA[] = "slot0-regular-file-contents";
static const char SEVEN_DATA[] = "slot7-direct-descriptor-contents";
static const char NINE_DATA[] = "slot9-memfd-contents";
static const char EARLY[] = "early-through-slot3";
static const char LATE[] = "late-through-slot3";

static struct ring r;
static struct ring_pos pos;
static int fd0, pipe3, has_seven;
static char zero_path[PATH_MAX], seven_path[PATH_MAX];

/* An SQE template on fixed file slot. */
static struct io_uring_sqe fixed(int op, int slot, void *buf, unsigned len, uint64_t off)
{
	struct io_uring_sqe sqe = {};

	prep_rw(&sqe, op, slot, buf, len, off, 0xf11e000000000000ull | (op << 8) | slot);
	sqe.flags = IOSQE_FIXED_FILE;
	return sqe;
}

/* A READ of len bytes through slot that must give exactly want (len < 0: that error). */
static int read_slot_is(int slot, uint64_t off, const char *want, int len, const char *what)
{
	char buf[128] = {};
	struct io_uring_sqe sqe = fixed(IORING_OP_READ, slot, buf, len < 0 ? 16 : len, off);

	if (ring_op_is(&r, &sqe, len, what))
		return 1;
	if (len > 0 && memcmp(buf, want, len)) {
		fail("%s: read \"%.*s\", expected \"%.*s\"", what, len, buf, len, want);
		return 1;
	}
	return 0;
}

static int write_slot(int slot, uint64_t off, const char *data, unsigned len, const char *what)
{
	struct io_uring_sqe sqe = fixed(IORING_OP_WRITE, slot, (void *)data, len, off);

	return ring_op_is(&r, &sqe, len, what);
}

static int update_slot(unsigned slot, int fd, int err, const char *what)
{
	struct io_uring_files_update up = { .offset = slot, .fds = (unsigned long)&fd };
	int ret = 0;

	if (register_is(r.fd, IORING_REGISTER_FILES_UPDATE, &up, 1, err, &ret, what))
		return 1;
	if (!err && ret != 1) {
		fail("%s: IORING_REGISTER_FILES_UPDATE returned %d, expected 1", what, ret);
		return 1;
	}
	return 0;
}

static int make_file(const char *path, const char *data)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || write(fd, data, strlen(data)) != (ssize_t)strlen(data)) {
		pr_perror("creating %s", path);
		return -1;
	}
	return fd;
}

static int setup(void)
{
	struct io_uring_rsrc_register reg = { .nr = NSLOTS, .flags = IORING_RSRC_REGISTER_SPARSE };
	struct io_uring_sqe sqe = {};
	int pfd[2], memfd, fd, res, i;
	char dir[PATH_MAX];

	if (mkdir(dirname, 0755) || !realpath(dirname, dir)) {
		pr_perror("mkdir %s", dirname);
		return 1;
	}
	ssprintf(zero_path, "%s/zero", dir);
	ssprintf(seven_path, "%s/seven", dir);
	fd0 = make_file(zero_path, ZERO_DATA);
	fd = make_file(seven_path, SEVEN_DATA);
	if (fd0 < 0 || fd < 0)
		return 1;
	close(fd);
	if (lseek(fd0, 6, SEEK_SET) != 6) {
		pr_perror("lseek");
		return 1;
	}
	memfd = memfd_create("uring-slot9", 0);
	if (memfd < 0 || write(memfd, NINE_DATA, strlen(NINE_DATA)) != (ssize_t)strlen(NINE_DATA)) {
		pr_perror("memfd");
		return 1;
	}
	if (pipe(pfd)) {
		pr_perror("pipe");
		return 1;
	}
	pipe3 = pfd[0];

	if (ring_setup(&r, 8, NULL)) {
		pr_perror("io_uring_setup");
		return 1;
	}
	if (ring_nops(&r, BURN, "the NOPs before"))
		return 1;
	if (sys_io_uring_register(r.fd, IORING_REGISTER_FILES2, &reg, sizeof(reg))) {
		int fds[NSLOTS];

		if (errno != EINVAL) {
			pr_perror("IORING_REGISTER_FILES2 (sparse)");
			return 1;
		}
		pr_info("no IORING_RSRC_REGISTER_SPARSE: %d slots of -1 instead\n", NSLOTS);
		for (i = 0; i < NSLOTS; i++)
			fds[i] = -1;
		if (sys_io_uring_register(r.fd, IORING_REGISTER_FILES, fds, NSLOTS)) {
			pr_perror("IORING_REGISTER_FILES");
			return 1;
		}
	}
	if (update_slot(0, fd0, 0, "slot 0") || update_slot(3, pfd[1], 0, "slot 3") ||
	    update_slot(9, memfd, 0, "slot 9"))
		return 1;
	close(pfd[1]);
	close(memfd);

	/* slot 7: a direct descriptor */
	prep_rw(&sqe, IORING_OP_OPENAT, AT_FDCWD, seven_path, 0, 0, 0x0be7);
	sqe.open_flags = O_RDWR;
	sqe.file_index = 7 + 1;
	if (ring_op(&r, &sqe, &res, NULL, "OPENAT into slot 7"))
		return 1;
	if (res == -EINVAL) {
		pr_info("OPENAT with file_index -> EINVAL: no direct descriptors (5.15); "
			"slot 7 is left empty\n");
	} else if (res != 0) {
		pr_err("OPENAT into slot 7: res %d\n", res);
		return 1;
	} else {
		has_seven = 1;
		if (read_slot_is(7, -1, SEVEN_DATA, 6, "reading 6 bytes through slot 7"))
			return 1;
	}
	if (write_slot(3, 0, EARLY, sizeof(EARLY), "writing EARLY through slot 3"))
		return 1;
	ring_save_pos(&r, &pos);
	return 0;
}

static int check_install(void)
{
	char link[PATH_MAX + 1], proc[64];
	struct io_uring_sqe sqe;
	ssize_t n;
	off_t at;
	int fd;

	if (!op_supported(r.fd, IORING_OP_FIXED_FD_INSTALL)) {
		pr_info("no IORING_OP_FIXED_FD_INSTALL (6.8): not checked\n");
		return 0;
	}
	sqe = fixed(IORING_OP_FIXED_FD_INSTALL, 7, NULL, 0, 0);
	if (ring_op(&r, &sqe, &fd, NULL, "FIXED_FD_INSTALL of slot 7"))
		return 1;
	if (fd < 0) {
		errno = -fd;
		fail("FIXED_FD_INSTALL of slot 7 gave %d", fd);
		return 1;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, link, sizeof(link) - 1);
	if (n < 0) {
		fail("readlink of the installed fd %d", fd);
		return 1;
	}
	link[n] = 0;
	at = lseek(fd, 0, SEEK_CUR);
	if (strcmp(link, seven_path) || at != (off_t)strlen(SEVEN_DATA) ||
	    fcntl(fd, F_GETFD) != FD_CLOEXEC) {
		fail("the fd installed from slot 7 is %s at %lld (F_GETFD %d), expected %s at %zu "
		     "and O_CLOEXEC", link, (long long)at, fcntl(fd, F_GETFD), seven_path,
		     strlen(SEVEN_DATA));
		return 1;
	}
	close(fd);
	return 0;
}

static int check(void)
{
	size_t zlen = strlen(ZERO_DATA), slen = strlen(SEVEN_DATA);
	char buf[128] = {};
	int pfd[2], fd;
	off_t at;

	if (ring_check(&r, &pos, "after restore"))
		return 1;

	/* slot 0: one open file with fd0 */
	if (read_slot_is(0, -1, ZERO_DATA + 6, zlen - 6, "slot 0 at its file position"))
		return 1;
	at = lseek(fd0, 0, SEEK_CUR);
	if (at != (off_t)zlen) {
		fail("fd0 is at %lld after reading through slot 0, expected %zu", (long long)at,
		     zlen);
		return 1;
	}
	if (write_slot(0, 100, "slot0-after", 11, "writing through slot 0"))
		return 1;
	if (pread(fd0, buf, 11, 100) != 11 || memcmp(buf, "slot0-after", 11)) {
		fail("fd0 does not see the write through slot 0: \"%.11s\"", buf);
		return 1;
	}

	/* slot 3: the write end of the pipe */
	if (read_is(pipe3, EARLY, sizeof(EARLY), "the pipe of slot 3 (written before)") ||
	    write_slot(3, 0, LATE, sizeof(LATE), "writing through slot 3") ||
	    read_is(pipe3, LATE, sizeof(LATE), "the pipe of slot 3 (written after)"))
		return 1;

	/* slot 7: the direct descriptor, at its file position */
	if (has_seven) {
		if (read_slot_is(7, -1, SEVEN_DATA + 6, slen - 6, "slot 7 at its file position") ||
		    write_slot(7, 64, "slot7-after", 11, "writing through slot 7"))
			return 1;
		fd = open(seven_path, O_RDONLY);
		if (fd < 0 || pread(fd, buf, 11, 64) != 11 || memcmp(buf, "slot7-after", 11)) {
			fail("%s does not hold the write through slot 7", seven_path);
			return 1;
		}
		close(fd);
	}

	/* slot 9: the memfd */
	if (read_slot_is(9, 0, NINE_DATA, strlen(NINE_DATA), "slot 9") ||
	    write_slot(9, 0, "NINE", 4, "writing through slot 9") ||
	    read_slot_is(9, 0, "NINE9-memfd", 11, "slot 9 rewritten"))
		return 1;

	/* empty slots */
	if (read_slot_is(5, 0, "", -EBADF, "empty slot 5") ||
	    read_slot_is(14, 0, "", -EBADF, "empty slot 14"))
		return 1;

	/* the table's size */
	if (pipe(pfd)) {
		pr_perror("pipe");
		return 1;
	}
	if (update_slot(15, pfd[0], 0, "slot 15") || update_slot(16, pfd[0], EINVAL, "slot 16"))
		return 1;
	if (write(pfd[1], "fifteen", 7) != 7 || read_slot_is(15, 0, "fifteen", 7, "slot 15"))
		return 1;

	return has_seven ? check_install() : 0;
}

int main(int argc, char **argv)
{
	return uring_test_main(argc, argv, setup, check);
}
