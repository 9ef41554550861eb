/* A process holding one io_uring ring, for C/R benchmarks.
 *
 *   io_uring_ring ENTRIES BUFFERS SUBMITTED RESULT_FILE
 *
 * A ring of ENTRIES SQ entries with BUFFERS registered 4 KiB buffers (each a pattern of its
 * own), through which SUBMITTED NOPs went (half of them posting a CQE), plus 3 NOP CQEs left
 * unconsumed.  Writes "ready PID" to RESULT_FILE and pauses.  On SIGTERM it checks the ring
 * positions and the 3 CQEs, writes every buffer out with WRITE_FIXED into a memfd and
 * compares, and replaces RESULT_FILE's content with "OK" or "BAD: why", then exits.
 */
#include <linux/io_uring.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "result_file.h"

#define BUF 4096

static int ring_fd;
static unsigned *sq_head, *sq_tail, *sq_array, *cq_head, *cq_tail, sq_mask, cq_mask;
static struct io_uring_sqe *sqes;
static struct io_uring_cqe *cqes;
static unsigned tail;
static struct iovec *iov;

static int enter(unsigned submit, unsigned wait)
{
	return syscall(__NR_io_uring_enter, ring_fd, submit, wait,
		       wait ? IORING_ENTER_GETEVENTS : 0, NULL, 0);
}

static struct io_uring_sqe *next_sqe(void)
{
	struct io_uring_sqe *sqe = &sqes[tail & sq_mask];

	memset(sqe, 0, sizeof(*sqe));
	sq_array[tail & sq_mask] = tail & sq_mask;
	tail++;
	return sqe;
}

static void publish(void)
{
	__atomic_store_n(sq_tail, tail, __ATOMIC_RELEASE);
}

static unsigned char pattern(unsigned buf, unsigned at)
{
	return (unsigned char)(buf * 131 + at * 7 + (at >> 8));
}

static int setup(unsigned entries, unsigned nbufs, unsigned long submitted)
{
	struct io_uring_params p = { 0 };
	size_t sq_size, cq_size;
	char *sq, *cq;
	unsigned long done = 0;

	iov = calloc(nbufs, sizeof(*iov));
	ring_fd = syscall(__NR_io_uring_setup, entries, &p);
	if (ring_fd < 0)
		return -1;
	sq_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	cq_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	sq = mmap(NULL, sq_size > cq_size ? sq_size : cq_size, PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_SQ_RING);
	cq = sq;
	sqes = mmap(NULL, p.sq_entries * sizeof(*sqes), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_SQES);
	if (sq == MAP_FAILED || sqes == MAP_FAILED)
		return -1;
	sq_head = (unsigned *)(sq + p.sq_off.head);
	sq_tail = (unsigned *)(sq + p.sq_off.tail);
	sq_array = (unsigned *)(sq + p.sq_off.array);
	sq_mask = *(unsigned *)(sq + p.sq_off.ring_mask);
	cq_head = (unsigned *)(cq + p.cq_off.head);
	cq_tail = (unsigned *)(cq + p.cq_off.tail);
	cq_mask = *(unsigned *)(cq + p.cq_off.ring_mask);
	cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);

	for (unsigned b = 0; b < nbufs; b++) {
		unsigned char *mem = mmap(NULL, BUF, PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mem == MAP_FAILED)
			return -1;
		for (unsigned at = 0; at < BUF; at++)
			mem[at] = pattern(b, at);
		iov[b] = (struct iovec){ mem, BUF };
	}
	if (nbufs && syscall(__NR_io_uring_register, ring_fd, IORING_REGISTER_BUFFERS, iov, nbufs))
		return -1;
	while (done < submitted) {
		unsigned n = submitted - done > p.sq_entries ? p.sq_entries : submitted - done;

		for (unsigned k = 0; k < n; k++)
			next_sqe()->flags = (done + k) % 2 ? IOSQE_CQE_SKIP_SUCCESS : 0;
		publish();
		if (enter(n, 0) != (int)n)
			return -1;
		__atomic_store_n(cq_head, *cq_tail, __ATOMIC_RELEASE);
		done += n;
	}
	for (unsigned k = 0; k < 3; k++)
		next_sqe()->user_data = 1000 + k;
	publish();
	return enter(3, 3) == 3 ? 0 : -1;
}

static const char *check(unsigned nbufs, unsigned sq_was, unsigned cq_was)
{
	static char why[128];
	int sink = memfd_create("io_uring_ring", 0);
	unsigned char *got = malloc(BUF);

	if (*sq_head != sq_was || *cq_tail != cq_was || *cq_head != cq_was - 3)
		return "ring positions differ";
	for (unsigned k = 0; k < 3; k++)
		if (cqes[(cq_was - 3 + k) & cq_mask].user_data != 1000 + k)
			return "an unconsumed CQE differs";
	__atomic_store_n(cq_head, cq_was, __ATOMIC_RELEASE);
	for (unsigned b = 0; b < nbufs; b += 64) {
		unsigned n = nbufs - b < 64 ? nbufs - b : 64;

		for (unsigned k = 0; k < n; k++) {
			struct io_uring_sqe *sqe = next_sqe();

			sqe->opcode = IORING_OP_WRITE_FIXED;
			sqe->fd = sink;
			sqe->off = (uint64_t)(b + k) * BUF;
			sqe->addr = (uintptr_t)iov[b + k].iov_base;
			sqe->len = BUF;
			sqe->buf_index = b + k;
		}
		publish();
		if (enter(n, n) != (int)n)
			return "WRITE_FIXED submission failed";
		for (unsigned head = *cq_head; head != *cq_tail; head++)
			if (cqes[head & cq_mask].res != BUF)
				return "a WRITE_FIXED failed";
		__atomic_store_n(cq_head, *cq_tail, __ATOMIC_RELEASE);
	}
	for (unsigned b = 0; b < nbufs; b++) {
		if (pread(sink, got, BUF, (off_t)b * BUF) != BUF)
			return "short read of the written buffers";
		for (unsigned at = 0; at < BUF; at++)
			if (got[at] != pattern(b, at)) {
				snprintf(why, sizeof(why), "BAD: buffer %u differs at %u", b, at);
				return why;
			}
	}
	free(got);
	close(sink);
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned entries, nbufs;
	unsigned long submitted;
	char text[160];
	const char *bad;

	if (argc != 5)
		return 2;
	entries = strtoul(argv[1], NULL, 0);
	nbufs = strtoul(argv[2], NULL, 0);
	submitted = strtoul(argv[3], NULL, 0);
	signal(SIGTERM, on_term);
	struct rlimit lim = { RLIM_INFINITY, RLIM_INFINITY };
	setrlimit(RLIMIT_MEMLOCK, &lim);
	if (setup(entries, nbufs, submitted))
		return 3;
	unsigned sq_was = *sq_head, cq_was = *cq_tail;

	snprintf(text, sizeof(text), "ready %d", getpid());
	put(argv[4], text);
	while (!stop)
		pause();
	bad = check(nbufs, sq_was, cq_was);
	if (bad && strncmp(bad, "BAD", 3)) {
		snprintf(text, sizeof(text), "BAD: %s", bad);
		bad = text;
	}
	put(argv[4], bad ? bad : "OK");
	return 0;
}
