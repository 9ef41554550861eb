/*
 * Maps whose contents are more than keys and values: an LPM trie
 * (BPF_F_NO_PREALLOC) of IPv4 prefixes from /8 to /32, nested into each
 * other (a 10/8, 10.1/16, 10.1.2/24, 10.1.2.3/32 chain and many random
 * prefixes inside 10/8) and scattered; a queue that wrapped around its ring
 * (90 pushes, 40 pops, 50 left); a queue that is full (32 of 32); a stack
 * with 45 elements (50 pushes, 10 pops, 5 more pushes). Queues and stacks
 * have key_size 0 and odd value sizes.
 *
 * After restore: BPF_OBJ_GET_INFO_BY_FD and fdinfo of each map; the trie's
 * walk (GET_NEXT_KEY) gives exactly the prefixes put in, each with its
 * value, and longest-prefix lookups of /32 keys (each prefix with random
 * host bits, and random addresses) give the value of the longest prefix
 * that matches, or ENOENT; after deleting a prefix its addresses fall to
 * the next shorter one, and a new prefix can be added. A peek
 * (BPF_MAP_LOOKUP_ELEM) of the queue and the stack gives the head without
 * removing it, pops (BPF_MAP_LOOKUP_AND_DELETE_ELEM) give every element in
 * the original order (FIFO, LIFO) and then ENOENT; the full queue refuses
 * one more push with E2BIG, takes one with BPF_EXIST by dropping its
 * oldest, and all of them take new elements.
 */
#include <arpa/inet.h>

#include "bpfcheck.h"

const char *test_doc = "BPF LPM trie prefixes, queue and stack order are kept";

struct lpm_key {
	__u32 prefixlen;
	__u8 addr[4];		/* network byte order */
};

#define LPM_MAX 512
#define LPM_RANDOM 200
#define LPM_VALUE 12

static struct map_spec lpm_spec = {
	BPF_MAP_TYPE_LPM_TRIE, sizeof(struct lpm_key), LPM_VALUE, LPM_MAX, BPF_F_NO_PREALLOC,
	"lq_lpm_trie"
};
static struct map_spec queue_spec = { BPF_MAP_TYPE_QUEUE, 0, 12, 64, 0, "lq_queue" };
static struct map_spec full_spec = { BPF_MAP_TYPE_QUEUE, 0, 36, 32, 0, "lq_queue_full" };
static struct map_spec stack_spec = { BPF_MAP_TYPE_STACK, 0, 20, 64, 0, "lq_stack" };

/* the trie's model: prefix e is (addr[e], len[e]), its value gen_bytes(LPM_A, e) */
#define LPM_A 100
static uint32_t lpm_addr[LPM_MAX];
static int lpm_len[LPM_MAX], lpm_n, lpm_gone = -1;

static uint32_t mask_of(int len)
{
	return len ? ~0u << (32 - len) : 0;
}

static void lpm_key_of(uint32_t addr, int len, struct lpm_key *k)
{
	uint32_t be = htonl(addr);

	k->prefixlen = len;
	memcpy(k->addr, &be, 4);
}

static int lpm_find(uint32_t addr, int len)
{
	int e;

	for (e = 0; e < lpm_n; e++)
		if (lpm_len[e] == len && lpm_addr[e] == addr)
			return e;
	return -1;
}

static void lpm_add(uint32_t addr, int len)
{
	addr &= mask_of(len);
	if (lpm_n < LPM_MAX && lpm_find(addr, len) < 0) {
		lpm_addr[lpm_n] = addr;
		lpm_len[lpm_n++] = len;
	}
}

/* The same prefixes every time: a chain, nested random ones in 10/8, others anywhere. */
static void lpm_model(void)
{
	uint64_t r;
	int j;

	lpm_add(0x0a000000, 8);
	lpm_add(0x0a010000, 16);
	lpm_add(0x0a010200, 24);
	lpm_add(0x0a010203, 32);
	for (j = 0; lpm_n < LPM_RANDOM; j++) {
		r = mix64(BPF_SEED + LPM_A + j);
		if (j % 2)
			lpm_add(0x0a000000 | ((uint32_t)r & 0x00ffffff), 9 + (r >> 32) % 24);
		else
			lpm_add((uint32_t)r, 1 + (r >> 32) % 32);
	}
}

/* The prefix a lookup of addr must find (the longest match), or -1. */
static int lpm_longest(uint32_t addr)
{
	int e, best = -1;

	for (e = 0; e < lpm_n; e++)
		if (e != lpm_gone && (addr & mask_of(lpm_len[e])) == lpm_addr[e] &&
		    (best < 0 || lpm_len[e] > lpm_len[best]))
			best = e;
	return best;
}

struct lpm_walk {
	uint8_t seen[LPM_MAX];
};

static int lpm_visit(const void *key, const void *value, void *arg)
{
	const struct lpm_key *k = key;
	struct lpm_walk *w = arg;
	uint8_t want[LPM_VALUE];
	uint32_t be, addr;
	int e;

	memcpy(&be, k->addr, 4);
	addr = ntohl(be);
	e = lpm_find(addr, k->prefixlen);
	if (e < 0 || e == lpm_gone) {
		fail("lpm: %08x/%u is in the trie but was never put in", addr, k->prefixlen);
		return 1;
	}
	if (w->seen[e]++) {
		fail("lpm: %08x/%u walked twice", addr, k->prefixlen);
		return 1;
	}
	gen_bytes(want, LPM_VALUE, LPM_A, e);
	return value_differs(&lpm_spec, 1, value, want, "lpm", e);
}

static int lpm_fill(int fd)
{
	uint8_t value[LPM_VALUE];
	struct lpm_key k;
	int e;

	for (e = 0; e < lpm_n; e++) {
		lpm_key_of(lpm_addr[e], lpm_len[e], &k);
		gen_bytes(value, LPM_VALUE, LPM_A, e);
		if (map_update(fd, &k, value, BPF_NOEXIST)) {
			pr_perror("lpm: update of %08x/%d", lpm_addr[e], lpm_len[e]);
			return -1;
		}
	}
	return 0;
}

/* A /32 lookup of addr gives the longest matching prefix's value, or ENOENT. */
static int lpm_lookup_is(int fd, uint32_t addr, const char *what)
{
	uint8_t value[LPM_VALUE], want[LPM_VALUE];
	struct lpm_key k;
	int e = lpm_longest(addr);

	lpm_key_of(addr, 32, &k);
	if (e < 0)
		return expect_errno(map_lookup(fd, &k, value), ENOENT, what);
	if (map_lookup(fd, &k, value)) {
		fail("%s: lookup of %08x (expected %08x/%d)", what, addr, lpm_addr[e], lpm_len[e]);
		return 1;
	}
	gen_bytes(want, LPM_VALUE, LPM_A, e);
	if (memcmp(value, want, LPM_VALUE)) {
		fail("%s: lookup of %08x did not give the value of %08x/%d", what, addr,
		     lpm_addr[e], lpm_len[e]);
		return 1;
	}
	return 0;
}

static int lpm_check_lookups(int fd, const char *what)
{
	int e, bad = 0;
	uint64_t r;

	for (e = 0; e < lpm_n; e++) {
		r = mix64(BPF_SEED ^ (0x100000 + e));
		bad |= lpm_lookup_is(fd, lpm_addr[e] | ((uint32_t)r & ~mask_of(lpm_len[e])), what);
		bad |= lpm_lookup_is(fd, (uint32_t)(r >> 32), what);
		bad |= lpm_lookup_is(fd, 0x0a000000 | ((uint32_t)(r >> 32) & 0xffffff), what);
	}
	return bad;
}

static int lpm_check(int fd, int count, const char *what)
{
	static struct lpm_walk w;
	uint8_t value[LPM_VALUE];
	long n;

	memset(&w, 0, sizeof(w));
	n = map_walk(fd, sizeof(struct lpm_key), value, LPM_MAX + 1, lpm_visit, &w, what);
	if (n < 0)
		return 1;
	if (n != count) {
		fail("%s: %ld prefixes walked, expected %d", what, n, count);
		return 1;
	}
	return lpm_check_lookups(fd, what);
}


/*
 * What a new trie answers to a second BPF_NOEXIST update of one key: EEXIST on kernels
 * that check the flag for tries (6.13), success before. The restored trie must answer
 * the same. -1 when the trie cannot be made.
 */
static int second_noexist_errno(const struct lpm_key *k, const uint8_t *value)
{
	int fd = map_create(&lpm_spec), err;

	if (fd < 0) {
		pr_perror("BPF_MAP_CREATE of a control trie");
		return -1;
	}
	map_update(fd, k, value, BPF_NOEXIST);
	err = map_update(fd, k, value, BPF_NOEXIST) ? errno : 0;
	close(fd);
	return err;
}

static int lpm_check_works(int fd)
{
	const char *what = "lpm after the restore";
	uint8_t value[LPM_VALUE];
	struct lpm_key k;
	int bad = 0, e24 = lpm_find(0x0a010200, 24), e16 = lpm_find(0x0a010000, 16), want;

	/* 10.1.2/24 goes: 10.1.2.9 falls to 10.1/16 */
	lpm_key_of(0x0a010200, 24, &k);
	bad |= expect_ok(map_delete(fd, &k), what);
	lpm_gone = e24;
	if (lpm_longest(0x0a010209) != e16) {
		fail("lpm: the model expects 10.1.2.9 under another prefix than 10.1/16");
		return 1;
	}
	bad |= lpm_lookup_is(fd, 0x0a010209, what);
	bad |= lpm_lookup_is(fd, 0x0a010203, what);
	/* it comes back */
	gen_bytes(value, LPM_VALUE, LPM_A, e24);
	bad |= expect_ok(map_update(fd, &k, value, BPF_NOEXIST), what);
	lpm_gone = -1;
	bad |= lpm_lookup_is(fd, 0x0a010209, what);
	/* a new prefix */
	lpm_add(0xc0000200, 24);
	lpm_key_of(0xc0000200, 24, &k);
	gen_bytes(value, LPM_VALUE, LPM_A, lpm_n - 1);
	bad |= expect_ok(map_update(fd, &k, value, BPF_NOEXIST), what);
	want = second_noexist_errno(&k, value);
	if (want < 0)
		return 1;
	bad |= want ? expect_errno(map_update(fd, &k, value, BPF_NOEXIST), want, what)
		    : expect_ok(map_update(fd, &k, value, BPF_NOEXIST), what);
	bad |= lpm_lookup_is(fd, 0xc0000263, what);
	if (!bad)
		bad = lpm_check(fd, lpm_n, what);
	return bad;
}

/* element k of a queue or stack: gen_bytes(a, k) */
static int push(int fd, const struct map_spec *s, int a, int k, __u64 flags)
{
	uint8_t value[64];

	gen_bytes(value, s->value_size, a, k);
	return map_update(fd, NULL, value, flags);
}

/* peek (flags: lookup) or pop: element k, or ENOENT when k < 0 */
static int expect_elem(int fd, const struct map_spec *s, int a, int k, int pop, const char *what)
{
	uint8_t value[64], want[64];
	int ret = pop ? map_lookup_and_delete(fd, NULL, value) : map_lookup(fd, NULL, value);

	if (k < 0)
		return expect_errno(ret, ENOENT, what);
	if (ret) {
		fail("%s: %s (expected element %d)", what, pop ? "pop" : "peek", k);
		return 1;
	}
	gen_bytes(want, s->value_size, a, k);
	if (memcmp(value, want, s->value_size)) {
		fail("%s: %s did not give element %d", what, pop ? "pop" : "peek", k);
		return 1;
	}
	return 0;
}

/* the queue: elements 0..89 pushed, 0..39 popped on the way */
#define QUEUE_A 200
#define QUEUE_FIRST 40
#define QUEUE_END 90
/* the full one: 0..31 */
#define FULL_A 300
/* the stack: 0..49 pushed, 49..40 popped, 50..54 pushed */
#define STACK_A 400

static int queues_fill(int q, int full, int st)
{
	int k;

	for (k = 0; k < 60; k++)
		if (push(q, &queue_spec, QUEUE_A, k, BPF_ANY))
			return -1;
	for (k = 0; k < QUEUE_FIRST; k++)
		if (expect_elem(q, &queue_spec, QUEUE_A, k, 1, "queue setup"))
			return -1;
	for (k = 60; k < QUEUE_END; k++)
		if (push(q, &queue_spec, QUEUE_A, k, BPF_ANY))
			return -1;
	for (k = 0; k < (int)full_spec.max_entries; k++)
		if (push(full, &full_spec, FULL_A, k, BPF_ANY))
			return -1;
	for (k = 0; k < 50; k++)
		if (push(st, &stack_spec, STACK_A, k, BPF_ANY))
			return -1;
	for (k = 49; k >= 40; k--)
		if (expect_elem(st, &stack_spec, STACK_A, k, 1, "stack setup"))
			return -1;
	for (k = 50; k < 55; k++)
		if (push(st, &stack_spec, STACK_A, k, BPF_ANY))
			return -1;
	return 0;
}

static int queue_check(int q)
{
	const char *what = "queue after the restore";
	int k, bad = 0;

	bad |= expect_elem(q, &queue_spec, QUEUE_A, QUEUE_FIRST, 0, what);
	bad |= expect_elem(q, &queue_spec, QUEUE_A, QUEUE_FIRST, 0, what);
	for (k = QUEUE_FIRST; k < QUEUE_END && !bad; k++)
		bad |= expect_elem(q, &queue_spec, QUEUE_A, k, 1, what);
	bad |= expect_elem(q, &queue_spec, QUEUE_A, -1, 1, what);
	bad |= expect_elem(q, &queue_spec, QUEUE_A, -1, 0, what);
	/* it still works */
	for (k = 1000; k < 1003; k++)
		bad |= expect_ok(push(q, &queue_spec, QUEUE_A, k, BPF_ANY), what);
	for (k = 1000; k < 1003; k++)
		bad |= expect_elem(q, &queue_spec, QUEUE_A, k, 1, what);
	return bad;
}

static int full_check(int q)
{
	const char *what = "full queue after the restore";
	int k, n = full_spec.max_entries, bad = 0;

	bad |= expect_elem(q, &full_spec, FULL_A, 0, 0, what);
	bad |= expect_errno(push(q, &full_spec, FULL_A, n, BPF_ANY), E2BIG, what);
	/* BPF_EXIST: the oldest (0) makes room */
	bad |= expect_ok(push(q, &full_spec, FULL_A, n, BPF_EXIST), what);
	for (k = 1; k <= n && !bad; k++)
		bad |= expect_elem(q, &full_spec, FULL_A, k, 1, what);
	bad |= expect_elem(q, &full_spec, FULL_A, -1, 1, what);
	return bad;
}

static int stack_check(int st)
{
	const char *what = "stack after the restore";
	int k, bad = 0;

	bad |= expect_elem(st, &stack_spec, STACK_A, 54, 0, what);
	bad |= expect_elem(st, &stack_spec, STACK_A, 54, 0, what);
	for (k = 54; k >= 50 && !bad; k--)
		bad |= expect_elem(st, &stack_spec, STACK_A, k, 1, what);
	for (k = 39; k >= 0 && !bad; k--)
		bad |= expect_elem(st, &stack_spec, STACK_A, k, 1, what);
	bad |= expect_elem(st, &stack_spec, STACK_A, -1, 1, what);
	bad |= expect_elem(st, &stack_spec, STACK_A, -1, 0, what);
	for (k = 1000; k < 1003; k++)
		bad |= expect_ok(push(st, &stack_spec, STACK_A, k, BPF_ANY), what);
	for (k = 1002; k >= 1000; k--)
		bad |= expect_elem(st, &stack_spec, STACK_A, k, 1, what);
	return bad;
}

int main(int argc, char **argv)
{
	int lpm, q, full, st, bad = 0;

	test_init(argc, argv);
	lpm_model();
	lpm = map_create(&lpm_spec);
	q = map_create(&queue_spec);
	full = map_create(&full_spec);
	st = map_create(&stack_spec);
	if (lpm < 0 || q < 0 || full < 0 || st < 0) {
		pr_perror("BPF_MAP_CREATE");
		return 1;
	}
	if (lpm_fill(lpm) || queues_fill(q, full, st))
		return 1;
	if (lpm_check(lpm, lpm_n, "lpm before the checkpoint") ||
	    expect_errno(push(full, &full_spec, FULL_A, 99, BPF_ANY), E2BIG, "full queue"))
		return 1;

	test_daemon();
	test_waitsig();

	bad |= check_map_info(lpm, &lpm_spec, "lpm", NULL);
	bad |= check_map_info(q, &queue_spec, "queue", NULL);
	bad |= check_map_info(full, &full_spec, "full queue", NULL);
	bad |= check_map_info(st, &stack_spec, "stack", NULL);
	if (!bad)
		bad |= lpm_check(lpm, lpm_n, "lpm after the restore");
	if (!bad)
		bad |= lpm_check_works(lpm);
	if (!bad)
		bad |= queue_check(q);
	if (!bad)
		bad |= full_check(full);
	if (!bad)
		bad |= stack_check(st);
	if (!bad)
		pass();
	return 0;
}
