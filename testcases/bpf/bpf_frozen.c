/*
 * Frozen maps (BPF_MAP_FREEZE after filling): an array with every index
 * written and a hash with 150 keys; beside them an unfrozen hash with the
 * same kind of contents. (A frozen queue: bpf_frozen_queue.c.)
 *
 * After restore: BPF_OBJ_GET_INFO_BY_FD and fdinfo of each (fdinfo says
 * "frozen:\t1" for the frozen ones, 0 for the other); the contents are
 * intact (a walk of each); the frozen maps refuse, with EPERM, an update of
 * an existing key, a new key, a delete and a lookup-and-delete, and a second
 * freeze (EPERM or EBUSY, as the kernel orders its checks), also through a new description of the same map
 * (BPF_MAP_GET_FD_BY_ID). The unfrozen hash takes updates, new keys and
 * deletes, and can be frozen now.
 */
#include "bpfcheck.h"

const char *test_doc = "frozen BPF maps stay frozen with their contents";

#define HASH_KEYS 150

enum { ARR, HASH, OPEN };

static struct map_spec specs[] = {
	[ARR] = { BPF_MAP_TYPE_ARRAY, 4, 36, 128, 0, "fz_array", .frozen = 1 },
	[HASH] = { BPF_MAP_TYPE_HASH, 8, 12, 256, 0, "fz_hash", .frozen = 1 },
	[OPEN] = { BPF_MAP_TYPE_HASH, 8, 12, 256, 0, "fz_open_hash" },
};
static int fds[ARRAY_SIZE(specs)];

/* key i of map m: for arrays the index, for hashes a u64 that says i */
static void make_key(int m, uint32_t i, void *key)
{
	uint64_t k = (mix64(((uint64_t)m << 32) | i) & ~0xffffull) | i;

	if (specs[m].type == BPF_MAP_TYPE_ARRAY)
		memcpy(key, &i, 4);
	else
		memcpy(key, &k, 8);
}

static long key_index(int m, const void *key)
{
	uint8_t want[8];
	uint64_t k;
	uint32_t i;

	if (specs[m].type == BPF_MAP_TYPE_ARRAY) {
		memcpy(&i, key, 4);
		return i < specs[m].max_entries ? (long)i : -1;
	}
	memcpy(&k, key, 8);
	i = k & 0xffff;
	make_key(m, i, want);
	return memcmp(want, key, 8) ? -1 : (long)i;
}

static int count_of(int m)
{
	return specs[m].type == BPF_MAP_TYPE_ARRAY ? (int)specs[m].max_entries : HASH_KEYS;
}

struct walk {
	int m;
	uint8_t seen[1024];
};

static int visit(const void *key, const void *value, void *arg)
{
	struct walk *w = arg;
	long i = key_index(w->m, key);
	uint8_t want[64];

	if (i < 0 || i >= count_of(w->m)) {
		fail("%s: a key that was never put in", specs[w->m].name);
		return 1;
	}
	if (w->seen[i]++) {
		fail("%s: key %ld walked twice", specs[w->m].name, i);
		return 1;
	}
	gen_bytes(want, specs[w->m].value_size, w->m, i);
	return value_differs(&specs[w->m], 1, value, want, specs[w->m].name, i);
}

static int check_contents(int m)
{
	static struct walk w;
	uint8_t value[64];
	long n;

	memset(&w, 0, sizeof(w));
	w.m = m;
	n = map_walk(fds[m], specs[m].key_size, value, specs[m].max_entries + 1, visit, &w,
		     specs[m].name);
	if (n < 0)
		return 1;
	if (n != count_of(m)) {
		fail("%s: %ld keys walked, expected %d", specs[m].name, n, count_of(m));
		return 1;
	}
	return 0;
}

static int fill(int m)
{
	uint8_t key[8], value[64];
	int i;

	for (i = 0; i < count_of(m); i++) {
		make_key(m, i, key);
		gen_bytes(value, specs[m].value_size, m, i);
		if (map_update(fds[m], key, value, BPF_ANY)) {
			pr_perror("%s: update %d", specs[m].name, i);
			return -1;
		}
	}
	return 0;
}

/* Everything that writes fails with EPERM on fd, a description of frozen map m. */
static int check_refuses(int m, int fd, const char *what)
{
	uint8_t key[8], value[64];
	int bad = 0;

	gen_bytes(value, specs[m].value_size, m, 1000);
	make_key(m, 1, key);
	bad |= expect_errno(map_update(fd, key, value, BPF_ANY), EPERM, what);
	bad |= expect_errno(map_update(fd, key, value, BPF_EXIST), EPERM, what);
	bad |= expect_errno(map_delete(fd, key), EPERM, what);
	make_key(m, specs[m].type == BPF_MAP_TYPE_ARRAY ? 5 : 500, key);
	bad |= expect_errno(map_update(fd, key, value, BPF_ANY), EPERM, what);
	make_key(m, 2, key);
	bad |= expect_errno(map_lookup_and_delete(fd, key, value), EPERM, what);
	bad |= expect_frozen_again(fd, what);
	return bad;
}

static int check_frozen(int m)
{
	char what[64];
	__u32 id;
	int fd, bad = 0;

	snprintf(what, sizeof(what), "%s after the restore", specs[m].name);
	bad |= check_refuses(m, fds[m], what);
	id = map_id_of(fds[m], what);
	fd = map_get_fd_by_id(id, 0);
	if (fd < 0) {
		fail("%s: BPF_MAP_GET_FD_BY_ID(%u)", what, id);
		return 1;
	}
	snprintf(what, sizeof(what), "%s, a new description", specs[m].name);
	bad |= check_map_info(fd, &specs[m], what, NULL);
	bad |= check_refuses(m, fd, what);
	close(fd);
	/* nothing changed */
	bad |= check_contents(m);
	return bad;
}

static int check_open(void)
{
	const char *what = "the unfrozen hash after the restore";
	uint8_t key[8], value[64];
	int bad = 0;

	make_key(OPEN, 1, key);
	gen_bytes(value, specs[OPEN].value_size, OPEN, 1);
	bad |= expect_ok(map_update(fds[OPEN], key, value, BPF_EXIST), what);
	bad |= expect_ok(map_delete(fds[OPEN], key), what);
	bad |= expect_errno(map_lookup(fds[OPEN], key, value), ENOENT, what);
	bad |= expect_ok(map_update(fds[OPEN], key, value, BPF_NOEXIST), what);
	make_key(OPEN, 500, key);
	bad |= expect_ok(map_update(fds[OPEN], key, value, BPF_NOEXIST), what);
	bad |= expect_ok(map_delete(fds[OPEN], key), what);
	/* and it can be frozen now */
	bad |= expect_ok(map_freeze(fds[OPEN]), what);
	specs[OPEN].frozen = 1;
	bad |= check_map_info(fds[OPEN], &specs[OPEN], "the hash frozen after the restore", NULL);
	bad |= expect_errno(map_update(fds[OPEN], key, value, BPF_ANY), EPERM,
			    "the hash frozen after the restore");
	return bad;
}

int main(int argc, char **argv)
{
	int m, bad = 0;

	test_init(argc, argv);
	for (m = 0; m < (int)ARRAY_SIZE(specs); m++) {
		fds[m] = map_create(&specs[m]);
		if (fds[m] < 0) {
			pr_perror("BPF_MAP_CREATE %s", specs[m].name);
			return 1;
		}
		if (fill(m))
			return 1;
		if (specs[m].frozen && map_freeze(fds[m])) {
			pr_perror("BPF_MAP_FREEZE %s", specs[m].name);
			return 1;
		}
		if (check_map_info(fds[m], &specs[m], specs[m].name, NULL) || check_contents(m))
			return 1;
	}

	test_daemon();
	test_waitsig();

	for (m = 0; m < (int)ARRAY_SIZE(specs); m++) {
		bad |= check_map_info(fds[m], &specs[m], specs[m].name, NULL);
		bad |= check_contents(m);
	}
	for (m = 0; m < (int)ARRAY_SIZE(specs) && !bad; m++)
		if (specs[m].frozen)
			bad |= check_frozen(m);
	if (!bad)
		bad |= check_open();
	if (!bad)
		pass();
	return 0;
}
