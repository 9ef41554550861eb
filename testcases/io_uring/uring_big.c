/*
 * A big ring: 4096 SQ entries (8192 CQ entries) that have seen 13522 NOPs
 * (past 3 laps of the SQ ring and one of the CQ ring), and 256 registered
 * buffers of 4 KiB each (256 iovecs over one private anonymous mapping of
 * 1 MiB), each holding its own checksummed pattern (datagen(): the last 4
 * bytes are the CRC of the rest; the CRC of buffer i is kept in crc[i], so
 * a buffer that went to the wrong index is caught too).
 *
 * After restore: the ring's sizes and positions are those of the checkpoint;
 * every buffer is written with WRITE_FIXED (buf_index i, its address) to
 * offset 4096 * i of a memfd, in batches of 64 SQEs (each CQE: res 4096, each
 * user_data once); the memfd then holds, at each offset, a buffer whose
 * checksum is right and equals crc[i], and that is the buffer's memory. The
 * first mismatch fails; nothing is printed per buffer.
 */
#include "uringcheck.h"

const char *test_doc = "A 4096-entry ring with 256 registered buffers";

#define ENTRIES 4096
#define NBUF 256
#define BUF_SIZE 4096
#define BATCH 64
#define BURN (3 * ENTRIES + 1234)
#define UD(i) (0xb16b000000000000ull | (i))

static struct ring r;
static struct ring_pos pos;
static uint8_t *area;
static uint32_t crc[NBUF];
static struct iovec iov[NBUF];

static int setup(void)
{
	int i;

	area = mmap(NULL, NBUF * BUF_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
	if (area == MAP_FAILED) {
		pr_perror("mmap");
		return 1;
	}
	for (i = 0; i < NBUF; i++) {
		crc[i] = ~0u;
		datagen(area + i * BUF_SIZE, BUF_SIZE, &crc[i]);
		iov[i] = (struct iovec){ area + i * BUF_SIZE, BUF_SIZE };
	}
	if (ring_setup(&r, ENTRIES, NULL)) {
		pr_perror("io_uring_setup(%d)", ENTRIES);
		return 1;
	}
	if (sys_io_uring_register(r.fd, IORING_REGISTER_BUFFERS, iov, NBUF)) {
		pr_perror("IORING_REGISTER_BUFFERS of %d", NBUF);
		return 1;
	}
	if (ring_nops(&r, BURN, "the NOPs before"))
		return 1;
	ring_save_pos(&r, &pos);
	return 0;
}

/* WRITE_FIXED of buffers first..first+BATCH-1 to their offsets in fd; every CQE checked. */
static int write_batch(int fd, int first)
{
	uint8_t seen[BATCH] = {};
	int i, ret;

	for (i = first; i < first + BATCH; i++)
		prep_write_fixed(sqe_or_die(&r), fd, area + i * BUF_SIZE, BUF_SIZE,
				 (uint64_t)i * BUF_SIZE, i, UD(i));
	ret = ring_submit(&r, BATCH, 0, 0);
	if (ret != BATCH) {
		fail("submitting %d WRITE_FIXED returned %d", BATCH, ret);
		return 1;
	}
	if (ring_wait(&r, BATCH, 10000)) {
		fail("WRITE_FIXED of buffers %d..%d: %u CQEs", first, first + BATCH - 1, cq_ready(&r));
		return 1;
	}
	/* io-wq may complete them in any order */
	for (i = 0; i < BATCH; i++) {
		struct io_uring_cqe *cqe = peek_cqe(&r);
		uint64_t n = cqe->user_data - UD(first);

		if (n >= BATCH || seen[n] || cqe->res != BUF_SIZE) {
			fail("WRITE_FIXED batch from %d: CQE user_data %#llx res %d", first,
			     (unsigned long long)cqe->user_data, cqe->res);
			return 1;
		}
		seen[n] = 1;
		cqe_seen(&r);
	}
	return 0;
}

static int check(void)
{
	uint8_t *out = malloc(NBUF * BUF_SIZE);
	int fd, i;

	if (!out)
		abort();
	if (ring_check(&r, &pos, "after restore"))
		return 1;
	fd = memfd_create("uring-big", 0);
	if (fd < 0 || ftruncate(fd, NBUF * BUF_SIZE)) {
		pr_perror("memfd");
		return 1;
	}
	for (i = 0; i < NBUF; i += BATCH)
		if (write_batch(fd, i))
			return 1;
	if (pread(fd, out, NBUF * BUF_SIZE, 0) != NBUF * BUF_SIZE) {
		fail("pread of the memfd");
		return 1;
	}
	for (i = 0; i < NBUF; i++) {
		uint32_t c = ~0u;

		if (datachk(out + i * BUF_SIZE, BUF_SIZE, &c) || c != crc[i]) {
			fail("registered buffer %d: its checksum is %#x, expected %#x (%s)", i, c,
			     crc[i], c == crc[i] ? "damaged" : "another buffer or damaged");
			return 1;
		}
		if (memcmp(out + i * BUF_SIZE, area + i * BUF_SIZE, BUF_SIZE)) {
			fail("registered buffer %d differs from its memory", i);
			return 1;
		}
	}
	free(out);
	return ring_nops(&r, ENTRIES + 7, "NOPs at the end");
}

int main(int argc, char **argv)
{
	return uring_test_main(argc, argv, setup, check);
}
