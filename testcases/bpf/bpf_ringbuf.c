/*
 * Ring buffers, mapped the way libbpf maps them: a BPF_MAP_TYPE_RINGBUF of
 * 16 pages (consumer page read-write at offset 0, producer page and the
 * data area twice read-only at offset page_size) and a
 * BPF_MAP_TYPE_USER_RINGBUF of 16 pages (consumer page read-only, producer
 * page and data read-write). Three records went into the kernel ring buffer
 * (a socket filter calling bpf_ringbuf_output(), run with
 * BPF_PROG_TEST_RUN, then closed) and the first was consumed; two records
 * were written into the user ring buffer as libbpf's
 * user_ring_buffer__reserve/submit do (8-byte header, busy bit cleared on
 * submit). No BPF program is loaded at the checkpoint.
 *
 * After restore: BPF_OBJ_GET_INFO_BY_FD and fdinfo of both (max_entries
 * 16 pages); the kernel ring buffer is readable (poll POLLIN) and, from its
 * consumer position, holds exactly the two unconsumed records with their
 * lengths and bytes; once consumed it is no longer readable. The user ring
 * buffer holds its two records from its consumer position; the kernel
 * drains them (a program calling bpf_user_ringbuf_drain() whose callback
 * copies each record into the kernel ring buffer with bpf_ringbuf_output()):
 * the drain reports 2, the records arrive intact and the user ring buffer's
 * consumer position reaches its producer position. Both still take new
 * records: one more user record is drained, one more kernel record output.
 */
#include <poll.h>
#include <stddef.h>
#include <sys/mman.h>

#include "bpfcheck.h"

const char *test_doc = "BPF ring buffers keep their records, mapped as libbpf maps them";

#define RB_PAGES 16
#define REC_LEN 32

static struct map_spec rb_spec = { BPF_MAP_TYPE_RINGBUF, 0, 0, 0, 0, "rb_ringbuf" };
static struct map_spec urb_spec = { BPF_MAP_TYPE_USER_RINGBUF, 0, 0, 0, 0, "rb_user_ringbuf" };

/* a ring buffer as user space sees it */
struct ring {
	int fd;
	unsigned long *consumer_pos;
	unsigned long *producer_pos;
	uint8_t *data;
	unsigned long mask;
};

static int ring_map(struct ring *r, int fd, int user)
{
	size_t page = PAGE_SIZE;
	void *cons, *prod;

	r->fd = fd;
	r->mask = (unsigned long)RB_PAGES * page - 1;
	cons = mmap(NULL, page, user ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	prod = mmap(NULL, page + 2 * (r->mask + 1), user ? PROT_READ | PROT_WRITE : PROT_READ,
		    MAP_SHARED, fd, page);
	if (cons == MAP_FAILED || prod == MAP_FAILED) {
		pr_perror("mmap of %s", user ? "the user ring buffer" : "the ring buffer");
		return -1;
	}
	r->consumer_pos = cons;
	r->producer_pos = prod;
	r->data = (uint8_t *)prod + page;
	return 0;
}

static __u32 rec_total(__u32 len)
{
	return (len + BPF_RINGBUF_HDR_SZ + 7) & ~7u;
}

/* record k's bytes */
static void rec_bytes(uint8_t *buf, int stream, int k)
{
	gen_bytes(buf, REC_LEN, stream, k);
}

/*
 * Read and consume the next record of a kernel ring buffer (advancing its
 * consumer position as libbpf does); it must be record k of stream.
 */
static int consume_one(struct ring *r, int stream, int k, const char *what)
{
	unsigned long cons = __atomic_load_n(r->consumer_pos, __ATOMIC_ACQUIRE);
	unsigned long prod = __atomic_load_n(r->producer_pos, __ATOMIC_ACQUIRE);
	uint8_t want[REC_LEN];
	__u32 *hdr, len;

	if (cons >= prod) {
		fail("%s: no record left (consumer %lu, producer %lu), expected %d:%d", what,
		     cons, prod, stream, k);
		return 1;
	}
	hdr = (__u32 *)(r->data + (cons & r->mask));
	len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);
	if (len != REC_LEN) {
		fail("%s: record header %#x at %lu, expected length %d", what, len, cons, REC_LEN);
		return 1;
	}
	rec_bytes(want, stream, k);
	if (memcmp(hdr + 2, want, REC_LEN)) {
		fail("%s: record at %lu is not %d:%d", what, cons, stream, k);
		return 1;
	}
	__atomic_store_n(r->consumer_pos, cons + rec_total(len), __ATOMIC_RELEASE);
	return 0;
}

/* Write one record into a user ring buffer: reserve, fill, submit (libbpf's way). */
static int user_write(struct ring *r, int stream, int k)
{
	unsigned long cons = __atomic_load_n(r->consumer_pos, __ATOMIC_ACQUIRE);
	unsigned long prod = *r->producer_pos;
	__u32 total = rec_total(REC_LEN), *hdr;

	if (r->mask + 1 - (prod - cons) < total) {
		pr_err("user ring buffer full\n");
		return -1;
	}
	hdr = (__u32 *)(r->data + (prod & r->mask));
	hdr[0] = REC_LEN | BPF_RINGBUF_BUSY_BIT;
	hdr[1] = 0;
	__atomic_store_n(r->producer_pos, prod + total, __ATOMIC_RELEASE);
	rec_bytes((uint8_t *)(hdr + 2), stream, k);
	__atomic_exchange_n(&hdr[0], REC_LEN, __ATOMIC_ACQ_REL);
	return 0;
}

/* The records of a user ring buffer from its consumer position: stream's from..to-1. */
static int user_holds(struct ring *r, int stream, int from, int to, const char *what)
{
	unsigned long cons = __atomic_load_n(r->consumer_pos, __ATOMIC_ACQUIRE);
	unsigned long prod = __atomic_load_n(r->producer_pos, __ATOMIC_ACQUIRE);
	uint8_t want[REC_LEN];
	__u32 *hdr;
	int k;

	if (prod - cons != (unsigned long)(to - from) * rec_total(REC_LEN)) {
		fail("%s: consumer %lu, producer %lu: expected %d records", what, cons, prod,
		     to - from);
		return 1;
	}
	for (k = from; k < to; k++, cons += rec_total(REC_LEN)) {
		hdr = (__u32 *)(r->data + (cons & r->mask));
		rec_bytes(want, stream, k);
		if (hdr[0] != REC_LEN || memcmp(hdr + 2, want, REC_LEN)) {
			fail("%s: record %d (header %#x) is not the one written", what, k, hdr[0]);
			return 1;
		}
	}
	return 0;
}

static int readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/*
 * The BTF a program with a callback needs (its func_info): [1] INT int,
 * [2] FUNC_PROTO int (void), [3] FUNC rb_drain and [4] FUNC rb_cb, both
 * static, of type [2]. Its fd, or -1.
 */
static int func_btf(void)
{
	static const char strings[] = "\0int\0rb_drain\0rb_cb";
	struct {
		struct btf_header h;
		struct btf_type t_int;
		__u32 int_enc;
		struct btf_type t_proto, t_main, t_cb;
		char str[sizeof(strings)];
	} __attribute__((packed)) b = {
		.h = { .magic = BTF_MAGIC, .version = BTF_VERSION, .hdr_len = sizeof(b.h),
		       .type_off = 0, .type_len = offsetof(typeof(b), str) - sizeof(b.h),
		       .str_off = offsetof(typeof(b), str) - sizeof(b.h),
		       .str_len = sizeof(strings) },
		.t_int = { .name_off = 1, .info = BTF_KIND_INT << 24, .size = 4 },
		.int_enc = BTF_INT_SIGNED << 24 | 32,
		.t_proto = { .info = BTF_KIND_FUNC_PROTO << 24, .type = 1 },
		.t_main = { .name_off = 5, .info = BTF_KIND_FUNC << 24, .type = 2 },
		.t_cb = { .name_off = 14, .info = BTF_KIND_FUNC << 24, .type = 2 },
	};
	static char log[4096];
	int fd;

	memcpy(b.str, strings, sizeof(strings));
	fd = btf_load(&b, sizeof(b), log, sizeof(log));
	if (fd < 0)
		pr_perror("BPF_BTF_LOAD: %s", log);
	return fd;
}

/*
 * Load a socket filter; cb_off: where its callback starts (0: it has none;
 * else BTF with func_info is given, which the verifier wants for callbacks).
 */
static int load(const struct bpf_insn *insns, int n, int cb_off, const char *name)
{
	struct bpf_func_info finfo[2] = { { 0, 3 }, { cb_off, 4 } };
	int fd, btf = -1;

	if (cb_off) {
		btf = func_btf();
		if (btf < 0)
			return -1;
	}
	fd = prog_load(BPF_PROG_TYPE_SOCKET_FILTER, insns, n, name, btf, cb_off ? finfo : NULL,
		       cb_off ? 2 : 0);
	if (btf >= 0)
		close(btf);
	return fd;
}

/* Record k of stream into the kernel ring buffer: a program copies the packet's payload. */
static int kernel_output(int rb_fd, int stream, int k)
{
	struct bpf_insn insns[] = {
		MOV64_REG(BPF_REG_6, BPF_REG_1),
		/* bpf_skb_load_bytes(skb, 0, fp - 40, REC_LEN) */
		MOV64_REG(BPF_REG_1, BPF_REG_6),
		MOV64_IMM(BPF_REG_2, 0),
		MOV64_REG(BPF_REG_3, BPF_REG_10),
		ADD64_IMM(BPF_REG_3, -40),
		MOV64_IMM(BPF_REG_4, REC_LEN),
		CALL(BPF_FUNC_skb_load_bytes),
		/* bpf_ringbuf_output(rb, fp - 40, REC_LEN, 0) */
		LD_IMM64(BPF_REG_1, BPF_PSEUDO_MAP_FD, rb_fd),
		MOV64_REG(BPF_REG_2, BPF_REG_10),
		ADD64_IMM(BPF_REG_2, -40),
		MOV64_IMM(BPF_REG_3, REC_LEN),
		MOV64_IMM(BPF_REG_4, 0),
		CALL(BPF_FUNC_ringbuf_output),
		EXIT(),
	};
	uint8_t payload[REC_LEN];
	int prog = load(insns, ARRAY_SIZE(insns), 0, "rb_output");
	long ret;

	if (prog < 0)
		return -1;
	rec_bytes(payload, stream, k);
	ret = prog_run(prog, payload, REC_LEN);
	close(prog);
	if (ret != 0) {
		pr_err("bpf_ringbuf_output returned %ld\n", ret);
		return -1;
	}
	return 0;
}

/*
 * Drain the user ring buffer into the kernel ring buffer (each record's
 * first REC_LEN bytes, by bpf_dynptr_read() and bpf_ringbuf_output());
 * returns how many records were drained, or -1.
 */
static long drain(int urb_fd, int rb_fd)
{
	struct bpf_insn insns[] = {
		/* bpf_user_ringbuf_drain(urb, callback, NULL, 0) */
		LD_IMM64(BPF_REG_1, BPF_PSEUDO_MAP_FD, urb_fd),
		LD_IMM64(BPF_REG_2, BPF_PSEUDO_FUNC, 5),
		MOV64_IMM(BPF_REG_3, 0),
		MOV64_IMM(BPF_REG_4, 0),
		CALL(BPF_FUNC_user_ringbuf_drain),
		EXIT(),
		/* the callback (insn 8): r1 = the record's dynptr */
		MOV64_REG(BPF_REG_3, BPF_REG_1),
		MOV64_REG(BPF_REG_1, BPF_REG_10),
		ADD64_IMM(BPF_REG_1, -40),
		MOV64_IMM(BPF_REG_2, REC_LEN),
		MOV64_IMM(BPF_REG_4, 0),
		MOV64_IMM(BPF_REG_5, 0),
		CALL(BPF_FUNC_dynptr_read),
		LD_IMM64(BPF_REG_1, BPF_PSEUDO_MAP_FD, rb_fd),
		MOV64_REG(BPF_REG_2, BPF_REG_10),
		ADD64_IMM(BPF_REG_2, -40),
		MOV64_IMM(BPF_REG_3, REC_LEN),
		MOV64_IMM(BPF_REG_4, 0),
		CALL(BPF_FUNC_ringbuf_output),
		MOV64_IMM(BPF_REG_0, 0),
		EXIT(),
	};
	uint8_t payload[REC_LEN] = { 0 };
	int prog = load(insns, ARRAY_SIZE(insns), 8, "rb_drain");
	long ret;

	if (prog < 0)
		return -1;
	ret = prog_run(prog, payload, REC_LEN);
	close(prog);
	return ret;
}

/* stream numbers */
#define KREC 1		/* output into the kernel ring buffer */
#define UREC 2		/* written into the user ring buffer */

int main(int argc, char **argv)
{
	struct ring rb, urb;
	int rb_fd, urb_fd, k, bad = 0;
	long n;

	test_init(argc, argv);
	rb_spec.max_entries = urb_spec.max_entries = RB_PAGES * PAGE_SIZE;
	rb_fd = map_create(&rb_spec);
	urb_fd = map_create(&urb_spec);
	if (rb_fd < 0 || urb_fd < 0) {
		pr_perror("BPF_MAP_CREATE");
		return 1;
	}
	if (ring_map(&rb, rb_fd, 0) || ring_map(&urb, urb_fd, 1))
		return 1;
	for (k = 0; k < 3; k++)
		if (kernel_output(rb_fd, KREC, k))
			return 1;
	if (consume_one(&rb, KREC, 0, "ring buffer before the checkpoint"))
		return 1;
	for (k = 0; k < 2; k++)
		if (user_write(&urb, UREC, k))
			return 1;
	if (user_holds(&urb, UREC, 0, 2, "user ring buffer before the checkpoint"))
		return 1;

	test_daemon();
	test_waitsig();

	bad |= check_map_info(rb_fd, &rb_spec, "rb_ringbuf", NULL);
	bad |= check_map_info(urb_fd, &urb_spec, "rb_user_ringbuf", NULL);
	if (bad)
		goto out;

	/* the kernel ring buffer: records 1 and 2, then empty */
	if (!readable(rb_fd)) {
		fail("the ring buffer holds records but does not poll readable");
		bad = 1;
	}
	for (k = 1; k < 3 && !bad; k++)
		bad |= consume_one(&rb, KREC, k, "ring buffer after the restore");
	if (!bad && readable(rb_fd)) {
		fail("the ring buffer polls readable once all its records are consumed");
		bad = 1;
	}
	if (*rb.consumer_pos != *rb.producer_pos) {
		fail("ring buffer: consumer %lu, producer %lu after consuming everything",
		     *rb.consumer_pos, *rb.producer_pos);
		bad = 1;
	}
	if (bad)
		goto out;

	/* the user ring buffer: its records, drained by the kernel into the other */
	bad |= user_holds(&urb, UREC, 0, 2, "user ring buffer after the restore");
	if (bad)
		goto out;
	n = drain(urb_fd, rb_fd);
	if (n != 2) {
		fail("bpf_user_ringbuf_drain: %ld records, expected 2", n);
		bad = 1;
		goto out;
	}
	bad |= user_holds(&urb, UREC, 2, 2, "user ring buffer once drained");
	for (k = 0; k < 2 && !bad; k++)
		bad |= consume_one(&rb, UREC, k, "the drained records");

	/* both take more */
	if (!bad)
		bad |= user_write(&urb, UREC, 2) ? 1 : 0;
	if (!bad && (n = drain(urb_fd, rb_fd)) != 1) {
		fail("bpf_user_ringbuf_drain of a new record: %ld", n);
		bad = 1;
	}
	if (!bad)
		bad |= consume_one(&rb, UREC, 2, "a new drained record");
	if (!bad && kernel_output(rb_fd, KREC, 3)) {
		fail("bpf_ringbuf_output after the restore");
		bad = 1;
	}
	if (!bad)
		bad |= consume_one(&rb, KREC, 3, "a new record");
out:
	if (!bad)
		pass();
	return 0;
}
