/*
 * Plain BPF maps: an array, a hash, a hash with BPF_F_NO_PREALLOC, a per-CPU
 * array, a per-CPU hash, an LRU hash, an LRU per-CPU hash, an array with
 * BPF_F_RDONLY_PROG, an array with BPF_F_MMAPABLE (not mapped here) and a
 * hash with BPF_F_NUMA_NODE on node 0, each with a name of its own and
 * some odd key and value sizes (6, 12, 20, 36). Arrays have most indexes
 * written (the rest stay zero), hashes hold a few hundred keys of which some
 * were deleted after insertion; all data comes from a seed. The LRU maps are
 * filled from one CPU, below the point where the kernel starts evicting.
 *
 * After restore: BPF_OBJ_GET_INFO_BY_FD and fdinfo of each fd (type, key
 * and value size, max_entries, flags, name, map_extra, no BTF, not frozen),
 * a walk of each map (GET_NEXT_KEY + LOOKUP) that finds exactly the keys
 * put in and not deleted, each with its value (every possible CPU's value
 * for the per-CPU maps). Then each map still works: an update of an
 * existing key, BPF_NOEXIST/BPF_EXIST refusals, for arrays E2BIG past the
 * end and EINVAL for a delete; for hashes a delete, a new key, and filling
 * up to exactly max_entries (one more is E2BIG); for LRU hashes inserting
 * max_entries new keys evicts old ones instead of failing.
 */
#include <sched.h>

#include "bpfcheck.h"

const char *test_doc = "BPF array, hash, per-CPU and LRU maps keep their contents and limits";

struct mcase {
	struct map_spec spec;
	int filled;	/* hash: keys 0..filled-1 went in; array: indexes below filled */
	int del_mod;	/* hash: key i then went out, array: index i was never written, */
			/* when i % del_mod == 1 (0: none) */
	int fd;
};

#define LRU_SIZE 512

static struct mcase maps[] = {
	{ { BPF_MAP_TYPE_ARRAY, 4, 12, 300, 0, "bb_array" }, 260, 4 },
	{ { BPF_MAP_TYPE_HASH, 8, 36, 400, 0, "bb_hash" }, 300, 5 },
	{ { BPF_MAP_TYPE_HASH, 20, 12, 400, BPF_F_NO_PREALLOC, "bb_hash_noprea" }, 250, 3 },
	{ { BPF_MAP_TYPE_PERCPU_ARRAY, 4, 12, 200, 0, "bb_pcpu_array" }, 200, 3 },
	{ { BPF_MAP_TYPE_PERCPU_HASH, 4, 36, 300, 0, "bb_pcpu_hash" }, 200, 4 },
	{ { BPF_MAP_TYPE_LRU_HASH, 12, 12, LRU_SIZE, 0, "bb_lru_hash" }, 300, 6 },
	{ { BPF_MAP_TYPE_LRU_PERCPU_HASH, 6, 20, LRU_SIZE, 0, "bb_lru_pcpu" }, 250, 5 },
	{ { BPF_MAP_TYPE_ARRAY, 4, 36, 100, BPF_F_RDONLY_PROG, "bb_array_rdprg" }, 100, 7 },
	{ { BPF_MAP_TYPE_ARRAY, 4, 12, 300, BPF_F_MMAPABLE, "bb_array_mmap" }, 280, 5 },
	{ { BPF_MAP_TYPE_HASH, 4, 12, 300, BPF_F_NUMA_NODE, "bb_hash_numa", 0 }, 200, 4 },
};

#define NMAPS ((int)ARRAY_SIZE(maps))
#define MAX_CPUS 256
/* a value buffer: the biggest value_size (36) rounded up to 8, per CPU */
#define VBUF (40 * MAX_CPUS)
/* keys made after the restore: beyond every index used before */
#define NEW_KEY 20000
#define MAX_INDEX 65536

static int ncpus;

static int is_hash(const struct mcase *mc)
{
	return mc->spec.type != BPF_MAP_TYPE_ARRAY && mc->spec.type != BPF_MAP_TYPE_PERCPU_ARRAY;
}

static int is_lru(const struct mcase *mc)
{
	return mc->spec.type == BPF_MAP_TYPE_LRU_HASH ||
	       mc->spec.type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

/* hash: key i is in the map; array: index i was written */
static int present(const struct mcase *mc, long i)
{
	return i < mc->filled && !(mc->del_mod && i % mc->del_mod == 1);
}

static int expected_count(const struct mcase *mc)
{
	long i;
	int n = 0;

	if (!is_hash(mc))
		return mc->spec.max_entries;
	for (i = 0; i < mc->filled; i++)
		n += present(mc, i);
	return n;
}

static uint32_t key_tag(int m)
{
	return 0x6b000000u | (uint32_t)m << 16;
}

/*
 * Key i of map m: for arrays the index; for hashes (key_size >= 4) a tag
 * that says i, then bytes made from (m, i).
 */
static void make_key(int m, long i, void *key)
{
	uint32_t tag = (uint32_t)i ^ key_tag(m);
	__u32 ks = maps[m].spec.key_size;

	if (!is_hash(&maps[m])) {
		*(uint32_t *)key = (uint32_t)i;
		return;
	}
	memcpy(key, &tag, 4);
	gen_bytes((uint8_t *)key + 4, ks - 4, 1000 + m, i);
}

/* The index a key stands for, or -1 when no key of ours looks like it. */
static long key_index(int m, const void *key)
{
	uint8_t want[256];
	uint32_t tag;
	long i;

	if (!is_hash(&maps[m])) {
		memcpy(&tag, key, 4);
		return tag < maps[m].spec.max_entries ? (long)tag : -1;
	}
	memcpy(&tag, key, 4);
	i = tag ^ key_tag(m);
	if (i < 0 || i >= MAX_INDEX)
		return -1;
	make_key(m, i, want);
	return memcmp(want, key, maps[m].spec.key_size) ? -1 : i;
}

/* Value of key/index i of map m in generation gen (0: before the dump). */
static void make_value(int m, long i, int gen, void *value)
{
	const struct map_spec *s = &maps[m].spec;

	if (map_is_percpu(s->type))
		gen_percpu(value, s->value_size, ncpus, m * 16 + gen, i);
	else
		gen_bytes(value, s->value_size, m * 16 + gen, i);
}

/* What a lookup of key/index i must give now (arrays: zero where never written). */
static void expected_value(int m, long i, void *value)
{
	if (present(&maps[m], i))
		make_value(m, i, 0, value);
	else
		memset(value, 0, value_bytes(&maps[m].spec, ncpus));
}

struct walk {
	int m;
	uint8_t seen[MAX_INDEX];
	uint8_t *want;
	char what[64];
};

static int visit(const void *key, const void *value, void *arg)
{
	struct walk *w = arg;
	long i = key_index(w->m, key);

	if (i < 0) {
		fail("%s: a key that was never put in", w->what);
		return 1;
	}
	if (w->seen[i]++) {
		fail("%s: key %ld walked twice", w->what, i);
		return 1;
	}
	if (is_hash(&maps[w->m]) && !present(&maps[w->m], i)) {
		fail("%s: key %ld is there, but it was %s", w->what, i,
		     i < maps[w->m].filled ? "deleted" : "never put in");
		return 1;
	}
	expected_value(w->m, i, w->want);
	return value_differs(&maps[w->m].spec, ncpus, value, w->want, w->what, i);
}

static int accept_any(const void *key, const void *value, void *arg)
{
	return 0;
}

static int fill(int m)
{
	struct mcase *mc = &maps[m];
	uint8_t key[64], value[VBUF];
	long i;

	for (i = 0; i < mc->filled; i++) {
		if (!is_hash(mc) && !present(mc, i))
			continue;
		make_key(m, i, key);
		make_value(m, i, 0, value);
		if (map_update(mc->fd, key, value, is_hash(mc) ? BPF_NOEXIST : BPF_ANY)) {
			pr_perror("%s: update of key %ld", mc->spec.name, i);
			return -1;
		}
	}
	for (i = 0; is_hash(mc) && i < mc->filled; i++) {
		if (present(mc, i))
			continue;
		make_key(m, i, key);
		if (map_delete(mc->fd, key)) {
			pr_perror("%s: delete of key %ld", mc->spec.name, i);
			return -1;
		}
	}
	return 0;
}

/* Every key walked, each once, with its value, and no others. */
static int check_contents(int m)
{
	struct mcase *mc = &maps[m];
	static struct walk w;
	uint8_t value[VBUF], want[VBUF];
	long n;
	int count = expected_count(mc);

	memset(&w, 0, sizeof(w));
	w.m = m;
	w.want = want;
	snprintf(w.what, sizeof(w.what), "%s", mc->spec.name);
	n = map_walk(mc->fd, mc->spec.key_size, value, mc->spec.max_entries + 1, visit, &w,
		     w.what);
	if (n < 0)
		return 1;
	if (n != count) {
		fail("%s: %ld keys walked, expected %d", mc->spec.name, n, count);
		return 1;
	}
	return 0;
}

/* lookup of key/index i gives generation gen's value */
static int lookup_is(int m, long i, int gen, const char *what)
{
	uint8_t key[64], value[VBUF], want[VBUF];

	make_key(m, i, key);
	make_value(m, i, gen, want);
	if (map_lookup(maps[m].fd, key, value)) {
		fail("%s: %s: lookup of key %ld", maps[m].spec.name, what, i);
		return 1;
	}
	return value_differs(&maps[m].spec, ncpus, value, want, what, i);
}

static int check_array_works(int m)
{
	struct mcase *mc = &maps[m];
	uint8_t key[64], value[VBUF];
	const char *name = mc->spec.name;
	int bad = 0;
	char what[64];

	snprintf(what, sizeof(what), "%s after the restore", name);
	make_key(m, 0, key);
	make_value(m, 0, 1, value);
	bad |= expect_ok(map_update(mc->fd, key, value, BPF_EXIST), what);
	bad |= lookup_is(m, 0, 1, what);
	make_key(m, 2, key);
	bad |= expect_errno(map_update(mc->fd, key, value, BPF_NOEXIST), EEXIST, what);
	bad |= expect_errno(map_delete(mc->fd, key), EINVAL, what);
	make_key(m, mc->spec.max_entries, key);
	bad |= expect_errno(map_update(mc->fd, key, value, BPF_ANY), E2BIG, what);
	return bad;
}

static int check_hash_works(int m)
{
	struct mcase *mc = &maps[m];
	uint8_t key[64], value[VBUF];
	int bad = 0, count = expected_count(mc), i0 = -1, i1 = -1;
	long i, n;
	char what[64];

	for (i = 0; i < mc->filled && i1 < 0; i++)
		if (present(mc, i)) {
			if (i0 < 0)
				i0 = i;
			else
				i1 = i;
		}
	snprintf(what, sizeof(what), "%s after the restore", mc->spec.name);

	/* an existing key takes a new value */
	make_key(m, i0, key);
	make_value(m, i0, 1, value);
	bad |= expect_ok(map_update(mc->fd, key, value, BPF_EXIST), what);
	bad |= expect_errno(map_update(mc->fd, key, value, BPF_NOEXIST), EEXIST, what);
	bad |= lookup_is(m, i0, 1, what);

	/* a key goes */
	make_key(m, i1, key);
	bad |= expect_ok(map_delete(mc->fd, key), what);
	bad |= expect_errno(map_lookup(mc->fd, key, value), ENOENT, what);
	bad |= expect_errno(map_delete(mc->fd, key), ENOENT, what);

	/* a new key comes */
	make_key(m, NEW_KEY, key);
	make_value(m, NEW_KEY, 0, value);
	bad |= expect_errno(map_update(mc->fd, key, value, BPF_EXIST), ENOENT, what);
	bad |= expect_ok(map_update(mc->fd, key, value, BPF_NOEXIST), what);
	bad |= lookup_is(m, NEW_KEY, 0, what);
	if (bad)
		return bad;

	if (is_lru(mc)) {
		/* beyond max_entries: old keys are evicted, no insertion fails */
		for (i = 1; i <= mc->spec.max_entries; i++) {
			make_key(m, NEW_KEY + i, key);
			make_value(m, NEW_KEY + i, 0, value);
			if (map_update(mc->fd, key, value, BPF_NOEXIST)) {
				fail("%s: new key %ld of %u (the LRU map should evict)", what, i,
				     mc->spec.max_entries);
				return 1;
			}
		}
		bad |= lookup_is(m, NEW_KEY + mc->spec.max_entries, 0, what);
		n = map_walk(mc->fd, mc->spec.key_size, value, mc->spec.max_entries + 1,
			     accept_any, NULL, what);
		if (n < 0 || n > mc->spec.max_entries) {
			fail("%s: %ld keys after filling it over, max_entries %u", what, n,
			     mc->spec.max_entries);
			bad = 1;
		}
		return bad;
	}

	/* exactly max_entries keys fit */
	for (i = 1; count + i <= (long)mc->spec.max_entries; i++) {
		make_key(m, NEW_KEY + i, key);
		make_value(m, NEW_KEY + i, 0, value);
		if (map_update(mc->fd, key, value, BPF_NOEXIST)) {
			fail("%s: key %ld of max_entries %u", what, count + i, mc->spec.max_entries);
			return 1;
		}
	}
	make_key(m, NEW_KEY + i, key);
	bad |= expect_errno(map_update(mc->fd, key, value, BPF_NOEXIST), E2BIG, what);
	n = map_walk(mc->fd, mc->spec.key_size, value, mc->spec.max_entries + 1, accept_any,
		     NULL, what);
	if (n != mc->spec.max_entries) {
		fail("%s: %ld keys when full, max_entries %u", what, n, mc->spec.max_entries);
		bad = 1;
	}
	return bad;
}

int main(int argc, char **argv)
{
	cpu_set_t old, one;
	int m, bad = 0;

	test_init(argc, argv);
	ncpus = possible_cpus();
	if (ncpus < 1 || ncpus > MAX_CPUS) {
		pr_perror("the number of possible CPUs: %d", ncpus);
		return 1;
	}

	/*
	 * An LRU map may evict before it is full when its elements sit in the
	 * free lists of other CPUs: fill from one CPU, well below max_entries.
	 */
	if (sched_getaffinity(0, sizeof(old), &old)) {
		pr_perror("sched_getaffinity");
		return 1;
	}
	CPU_ZERO(&one);
	CPU_SET(sched_getcpu(), &one);
	if (sched_setaffinity(0, sizeof(one), &one)) {
		pr_perror("sched_setaffinity");
		return 1;
	}
	for (m = 0; m < NMAPS; m++) {
		maps[m].fd = map_create(&maps[m].spec);
		if (maps[m].fd < 0) {
			pr_perror("BPF_MAP_CREATE %s", maps[m].spec.name);
			return 1;
		}
		if (fill(m))
			return 1;
	}
	if (sched_setaffinity(0, sizeof(old), &old)) {
		pr_perror("sched_setaffinity back");
		return 1;
	}
	/* the setup itself must be what the checks expect */
	for (m = 0; m < NMAPS; m++)
		if (check_map_info(maps[m].fd, &maps[m].spec, maps[m].spec.name, NULL) ||
		    check_contents(m)) {
			pr_err("%s: wrong before the checkpoint\n", maps[m].spec.name);
			return 1;
		}

	test_daemon();
	test_waitsig();

	for (m = 0; m < NMAPS; m++) {
		if (check_map_info(maps[m].fd, &maps[m].spec, maps[m].spec.name, NULL)) {
			bad = 1;
			continue;
		}
		bad |= check_contents(m);
	}
	for (m = 0; m < NMAPS && !bad; m++)
		bad |= is_hash(&maps[m]) ? check_hash_works(m) : check_array_works(m);
	if (!bad)
		pass();
	return 0;
}
