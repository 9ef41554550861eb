/*
 * Four registered buffers (IORING_REGISTER_BUFFERS, one call) on a ring that
 * has been through 1500 NOPs, each filled with its own checksummed pattern:
 *  - buf0: one page of a private anonymous mapping;
 *  - buf1: two pages of a private anonymous mapping that was munmap()ed after
 *    registration: its contents now live only in the pages the kernel pins;
 *  - buf2: one page of MAP_SHARED | MAP_ANONYMOUS memory;
 *  - buf3: 3 pages minus 1024 bytes starting 512 bytes into a private
 *    mapping of 3 pages (it spans 3 pages, starting mid-page).
 * A copy of each pattern is kept in the heap.
 *
 * After restore: the ring's positions are those of the checkpoint; buf1's
 * range is still unmapped (msync() gives ENOMEM); WRITE_FIXED of each whole
 * buffer into a pipe gives its pattern (buf1's WRITE_FIXED uses its old, now
 * unmapped address) and buf0, buf2 and buf3 still hold theirs in memory; a
 * WRITE_FIXED of 100 bytes at 4096 bytes into buf3 gives that part; buf0's
 * memory is changed and WRITE_FIXED gives the new bytes (the registered
 * buffer is the process's memory, not a copy); a READ_FIXED from a pipe into
 * buf2 puts the pipe's bytes in buf2's memory; buf_index 4 (not registered)
 * and an address outside buf0 give -EFAULT.
 */
#include "uringcheck.h"

const char *test_doc = "Registered buffers: private, unmapped, shared, spanning pages";

#define NBUF 4
#define BURN 1500

static struct ring r;
static struct ring_pos pos;
static struct iovec iov[NBUF];
static uint8_t *expect[NBUF];
static int pfd[2];

static void *map(size_t len, int flags)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		pr_perror("mmap %zu", len);
		exit(1);
	}
	return p;
}

/* WRITE_FIXED of len bytes at addr (in buffer i) into the pipe gives want. */
static int write_fixed_is(int i, const void *addr, unsigned len, const uint8_t *want,
			  const char *what)
{
	struct io_uring_sqe sqe = {};
	uint8_t *got = malloc(len);

	if (!got)
		abort();
	prep_write_fixed(&sqe, pfd[1], addr, len, 0, i, 0xb0f0000000000000ull | i);
	if (ring_op_is(&r, &sqe, len, what))
		return 1;
	if (read_data(pfd[0], got, len) || memcmp(got, want, len)) {
		fail("%s: the pipe does not give the buffer's %u bytes", what, len);
		free(got);
		return 1;
	}
	free(got);
	return 0;
}

static int setup(void)
{
	size_t page = PAGE_SIZE;
	uint8_t *area3;
	int i;

	if (pipe(pfd)) {
		pr_perror("pipe");
		return 1;
	}
	iov[0] = (struct iovec){ map(page, MAP_PRIVATE), page };
	iov[1] = (struct iovec){ map(2 * page, MAP_PRIVATE), 2 * page };
	iov[2] = (struct iovec){ map(page, MAP_SHARED), page };
	area3 = map(3 * page, MAP_PRIVATE);
	iov[3] = (struct iovec){ area3 + 512, 3 * page - 1024 };
	for (i = 0; i < NBUF; i++) {
		uint32_t crc = ~0u;

		expect[i] = malloc(iov[i].iov_len);
		if (!expect[i])
			abort();
		datagen(iov[i].iov_base, iov[i].iov_len, &crc);
		memcpy(expect[i], iov[i].iov_base, iov[i].iov_len);
	}

	if (ring_setup(&r, 8, NULL)) {
		pr_perror("io_uring_setup");
		return 1;
	}
	if (ring_nops(&r, BURN, "the NOPs before"))
		return 1;
	if (sys_io_uring_register(r.fd, IORING_REGISTER_BUFFERS, iov, NBUF)) {
		pr_perror("IORING_REGISTER_BUFFERS");
		return 1;
	}
	if (munmap(iov[1].iov_base, iov[1].iov_len)) {
		pr_perror("munmap buf1");
		return 1;
	}
	/* the test's own premise: buf1 is readable through the ring only */
	if (write_fixed_is(1, iov[1].iov_base, iov[1].iov_len, expect[1], "buf1 before"))
		return 1;
	ring_save_pos(&r, &pos);
	return 0;
}

static int check(void)
{
	struct io_uring_sqe sqe = {};
	char what[64];
	uint8_t *b0 = iov[0].iov_base, *b2 = iov[2].iov_base, *b3 = iov[3].iov_base;
	static const char fresh[] = "read into buf2 after restore";
	int i;

	if (ring_check(&r, &pos, "after restore"))
		return 1;
	if (msync(iov[1].iov_base, iov[1].iov_len, MS_ASYNC) != -1 || errno != ENOMEM) {
		fail("buf1's range %p+%zu is mapped again", iov[1].iov_base, iov[1].iov_len);
		return 1;
	}
	for (i = 0; i < NBUF; i++) {
		if (i != 1 && memcmp(iov[i].iov_base, expect[i], iov[i].iov_len)) {
			fail("buf%d's memory does not hold its pattern", i);
			return 1;
		}
		snprintf(what, sizeof(what), "WRITE_FIXED of buf%d", i);
		if (write_fixed_is(i, iov[i].iov_base, iov[i].iov_len, expect[i], what))
			return 1;
	}
	if (write_fixed_is(3, b3 + 4096, 100, expect[3] + 4096, "WRITE_FIXED of a part of buf3"))
		return 1;

	/* the registered buffer is the process's memory */
	memset(b0 + 100, 'Z', 200);
	memcpy(expect[0] + 100, b0 + 100, 200);
	if (write_fixed_is(0, b0, iov[0].iov_len, expect[0], "WRITE_FIXED of buf0 changed"))
		return 1;

	if (write(pfd[1], fresh, sizeof(fresh)) != sizeof(fresh)) {
		pr_perror("write to the pipe");
		return 1;
	}
	prep_read_fixed(&sqe, pfd[0], b2 + 8, sizeof(fresh), 0, 2, 0xb2);
	if (ring_op_is(&r, &sqe, sizeof(fresh), "READ_FIXED into buf2"))
		return 1;
	if (memcmp(b2 + 8, fresh, sizeof(fresh)) || memcmp(b2, expect[2], 8)) {
		fail("buf2's memory does not show the READ_FIXED: \"%.*s\"", (int)sizeof(fresh),
		     b2 + 8);
		return 1;
	}

	prep_write_fixed(&sqe, pfd[1], b0, 16, 0, NBUF, 0xb4);
	if (ring_op_is(&r, &sqe, -EFAULT, "WRITE_FIXED with buf_index 4"))
		return 1;
	prep_write_fixed(&sqe, pfd[1], b0 + iov[0].iov_len, 16, 0, 0, 0xb5);
	return ring_op_is(&r, &sqe, -EFAULT, "WRITE_FIXED past the end of buf0");
}

int main(int argc, char **argv)
{
	return uring_test_main(argc, argv, setup, check);
}
