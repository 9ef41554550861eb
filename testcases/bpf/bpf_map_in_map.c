/*
 * Maps of maps: an array_of_maps of 8 slots holding inner arrays and a
 * hash_of_maps holding inner hashes, both made from a template map that was
 * closed right after (as libbpf does). One inner map of each kind is also
 * held by an fd of the process; the others live only in their outer map
 * (their fds were closed after insertion); one inner array sits in two
 * slots; some slots are empty. Every inner map has a name of its own and
 * contents made from a seed.
 *
 * After restore: BPF_OBJ_GET_INFO_BY_FD and fdinfo of the outer maps and of
 * the held inner ones; each used slot's value (the inner map's id, from a
 * lookup) opens with BPF_MAP_GET_FD_BY_ID to a map with the right info and
 * contents; the empty slots are empty (ENOENT); the hash_of_maps walk gives
 * exactly its keys; the held inner maps have the ids in their slots (one
 * map, not a copy: a write through the held fd is seen through the slot),
 * the shared inner array has one id in both slots and the inner maps are
 * all different maps. Then new inner maps of the template's shape go into
 * a free slot and replace a used one, and a map of another shape (an
 * array with more entries, a hash with bigger values) is refused with
 * EINVAL: the outer maps kept their templates.
 */
#include "bpfcheck.h"

const char *test_doc = "BPF maps of maps keep their inner maps, shared or not";

#define ARR_SLOTS 8
#define INNER_ARR_N 16
#define INNER_HASH_N 64
#define INNER_HASH_KEYS 40

static struct map_spec outer_arr_spec = {
	BPF_MAP_TYPE_ARRAY_OF_MAPS, 4, 4, ARR_SLOTS, 0, "mm_outer_arr"
};
static struct map_spec outer_hash_spec = {
	BPF_MAP_TYPE_HASH_OF_MAPS, 8, 4, 16, 0, "mm_outer_hash"
};

/* the inner maps: arrays 0..2, hashes 3..5 */
#define NINNER 6
static struct map_spec inner[NINNER] = {
	{ BPF_MAP_TYPE_ARRAY, 4, 12, INNER_ARR_N, 0, "mm_in_arr0" },
	{ BPF_MAP_TYPE_ARRAY, 4, 12, INNER_ARR_N, 0, "mm_in_arr1" },
	{ BPF_MAP_TYPE_ARRAY, 4, 12, INNER_ARR_N, 0, "mm_in_arr2" },
	{ BPF_MAP_TYPE_HASH, 4, 20, INNER_HASH_N, 0, "mm_in_hash3" },
	{ BPF_MAP_TYPE_HASH, 4, 20, INNER_HASH_N, 0, "mm_in_hash4" },
	{ BPF_MAP_TYPE_HASH, 4, 20, INNER_HASH_N, 0, "mm_in_hash5" },
};
/* held by an fd after the setup: arrays 0 and hash 3 */
static int held(int j)
{
	return j == 0 || j == 3;
}

/* array slot -> inner map (-1: empty): arr1 in two slots */
static const int arr_slot[ARR_SLOTS] = { 0, 1, -1, 2, -1, 1, -1, -1 };
/* hash_of_maps: key outer_key(j) -> hash j, for j = 3..5 */
static uint64_t outer_key(int j)
{
	return mix64(0x77000 + j);
}

/* the contents of inner map j: key i (arrays: index i) -> gen_bytes(j, i) */
static uint32_t inner_key(int j, int i)
{
	return inner[j].type == BPF_MAP_TYPE_ARRAY ? (uint32_t)i : (uint32_t)(i * 7919 + j * 131);
}

static int inner_count(int j)
{
	return inner[j].type == BPF_MAP_TYPE_ARRAY ? INNER_ARR_N : INNER_HASH_KEYS;
}

static int inner_fill(int j, int fd)
{
	uint8_t value[32];
	uint32_t key;
	int i;

	for (i = 0; i < inner_count(j); i++) {
		key = inner_key(j, i);
		gen_bytes(value, inner[j].value_size, j, i);
		if (map_update(fd, &key, value, BPF_ANY)) {
			pr_perror("%s: update %d", inner[j].name, i);
			return -1;
		}
	}
	return 0;
}

struct walk {
	int j;
	uint8_t seen[INNER_HASH_N];
	char what[64];
};

static int visit(const void *key, const void *value, void *arg)
{
	struct walk *w = arg;
	uint8_t want[32];
	uint32_t k;
	int i;

	memcpy(&k, key, 4);
	for (i = 0; i < inner_count(w->j) && inner_key(w->j, i) != k; i++)
		;
	if (i == inner_count(w->j)) {
		fail("%s: key %#x was never put in", w->what, k);
		return 1;
	}
	if (w->seen[i]++) {
		fail("%s: key %#x walked twice", w->what, k);
		return 1;
	}
	gen_bytes(want, inner[w->j].value_size, w->j, i);
	return value_differs(&inner[w->j], 1, value, want, w->what, i);
}

/* fd is inner map j: its info and all of its contents. */
static int inner_check(int j, int fd, const char *where)
{
	static struct walk w;
	uint8_t value[32];
	long n;

	memset(&w, 0, sizeof(w));
	w.j = j;
	snprintf(w.what, sizeof(w.what), "%s (%s)", inner[j].name, where);
	if (check_map_info(fd, &inner[j], w.what, NULL))
		return 1;
	n = map_walk(fd, 4, value, INNER_HASH_N + 1, visit, &w, w.what);
	if (n < 0)
		return 1;
	if (n != inner_count(j)) {
		fail("%s: %ld keys walked, expected %d", w.what, n, inner_count(j));
		return 1;
	}
	return 0;
}

/* The id in a slot of an outer map (0 and ENOENT: empty); -1 on other errors. */
static long slot_id(int outer, const void *key, const char *what)
{
	__u32 id;

	if (map_lookup(outer, key, &id)) {
		if (errno == ENOENT)
			return 0;
		fail("%s: lookup", what);
		return -1;
	}
	if (id == 0) {
		fail("%s: a slot holding map id 0", what);
		return -1;
	}
	return id;
}

/* Open the map in a slot and check that it is inner map j; its id, or 0. */
static __u32 slot_check(int outer, const void *key, int j, const char *what)
{
	long id = slot_id(outer, key, what);
	int fd, bad;

	if (id <= 0) {
		if (id == 0)
			fail("%s: empty, expected %s", what, inner[j].name);
		return 0;
	}
	fd = map_get_fd_by_id(id, 0);
	if (fd < 0) {
		fail("%s: BPF_MAP_GET_FD_BY_ID(%ld)", what, id);
		return 0;
	}
	bad = inner_check(j, fd, what);
	close(fd);
	return bad ? 0 : id;
}

static int outer_hash_visit(const void *key, const void *value, void *arg)
{
	uint64_t k;
	int j;

	memcpy(&k, key, 8);
	for (j = 3; j < NINNER && outer_key(j) != k; j++)
		;
	if (j == NINNER) {
		fail("mm_outer_hash: key %#llx was never put in", (unsigned long long)k);
		return 1;
	}
	return 0;
}

/* A new inner map of spec s goes into slot key of outer (an update); 0 when it did. */
static int insert_new(int outer, const void *key, const struct map_spec *s, int err,
		      const char *what)
{
	int fd = map_create(s), ret;
	__u32 id, got = 0;

	if (fd < 0) {
		fail("%s: BPF_MAP_CREATE %s", what, s->name);
		return 1;
	}
	id = map_id_of(fd, what);
	if (err) {
		ret = expect_errno(map_update(outer, key, &fd, BPF_ANY), err, what);
		close(fd);
		return ret;
	}
	ret = expect_ok(map_update(outer, key, &fd, BPF_ANY), what);
	close(fd);
	if (!ret && (map_lookup(outer, key, &got) || got != id)) {
		fail("%s: the slot holds %u, the new map is %u", what, got, id);
		ret = 1;
	}
	return ret;
}

int main(int argc, char **argv)
{
	struct map_spec tmpl_arr = inner[0], tmpl_hash = inner[3];
	int outer_arr, outer_hash, fds[NINNER], held_fd[NINNER], j, s, bad = 0;
	__u32 ids[NINNER] = { 0 }, id, key;
	uint64_t hkey;
	char what[96];
	long n;

	test_init(argc, argv);

	/* the templates: closed as soon as the outer maps exist */
	tmpl_arr.name = "mm_tmpl_arr";
	tmpl_hash.name = "mm_tmpl_hash";
	outer_arr_spec.inner_map_fd = map_create(&tmpl_arr);
	outer_hash_spec.inner_map_fd = map_create(&tmpl_hash);
	if (outer_arr_spec.inner_map_fd < 0 || outer_hash_spec.inner_map_fd < 0) {
		pr_perror("BPF_MAP_CREATE template");
		return 1;
	}
	outer_arr = map_create(&outer_arr_spec);
	outer_hash = map_create(&outer_hash_spec);
	if (outer_arr < 0 || outer_hash < 0) {
		pr_perror("BPF_MAP_CREATE outer");
		return 1;
	}
	close(outer_arr_spec.inner_map_fd);
	close(outer_hash_spec.inner_map_fd);

	for (j = 0; j < NINNER; j++) {
		fds[j] = map_create(&inner[j]);
		if (fds[j] < 0 || inner_fill(j, fds[j])) {
			pr_perror("inner map %s", inner[j].name);
			return 1;
		}
	}
	for (s = 0; s < ARR_SLOTS; s++) {
		key = s;
		if (arr_slot[s] >= 0 && map_update(outer_arr, &key, &fds[arr_slot[s]], BPF_ANY)) {
			pr_perror("array_of_maps slot %d", s);
			return 1;
		}
	}
	for (j = 3; j < NINNER; j++) {
		hkey = outer_key(j);
		if (map_update(outer_hash, &hkey, &fds[j], BPF_NOEXIST)) {
			pr_perror("hash_of_maps key %d", j);
			return 1;
		}
	}
	for (j = 0; j < NINNER; j++) {
		held_fd[j] = -1;
		if (held(j))
			held_fd[j] = fds[j];
		else
			close(fds[j]);
	}

	test_daemon();
	test_waitsig();

	bad |= check_map_info(outer_arr, &outer_arr_spec, "mm_outer_arr", NULL);
	bad |= check_map_info(outer_hash, &outer_hash_spec, "mm_outer_hash", NULL);
	for (j = 0; j < NINNER; j++)
		if (held_fd[j] >= 0)
			bad |= inner_check(j, held_fd[j], "its own fd");
	if (bad)
		goto out;

	/* the array_of_maps, slot by slot */
	for (s = 0; s < ARR_SLOTS; s++) {
		key = s;
		snprintf(what, sizeof(what), "mm_outer_arr slot %d", s);
		if (arr_slot[s] < 0) {
			n = slot_id(outer_arr, &key, what);
			if (n != 0) {
				fail("%s: holds map %ld, expected none", what, n);
				bad = 1;
			}
			continue;
		}
		id = slot_check(outer_arr, &key, arr_slot[s], what);
		if (!id) {
			bad = 1;
			continue;
		}
		if (ids[arr_slot[s]] && ids[arr_slot[s]] != id) {
			fail("%s: map %u, but the other slot of %s holds %u", what, id,
			     inner[arr_slot[s]].name, ids[arr_slot[s]]);
			bad = 1;
		}
		ids[arr_slot[s]] = id;
	}
	key = ARR_SLOTS;
	bad |= expect_errno(map_lookup(outer_arr, &key, &id), ENOENT, "mm_outer_arr past the end");

	/* the hash_of_maps: its keys, and each one's map */
	n = map_walk(outer_hash, 8, &id, outer_hash_spec.max_entries + 1, outer_hash_visit, NULL,
		     "mm_outer_hash");
	if (n != NINNER - 3) {
		fail("mm_outer_hash: %ld keys walked, expected %d", n, NINNER - 3);
		bad = 1;
	}
	for (j = 3; j < NINNER; j++) {
		hkey = outer_key(j);
		snprintf(what, sizeof(what), "mm_outer_hash key of %s", inner[j].name);
		ids[j] = slot_check(outer_hash, &hkey, j, what);
		if (!ids[j])
			bad = 1;
	}
	if (bad)
		goto out;

	/* all different maps; the held ones are the ones in the slots */
	for (j = 0; j < NINNER; j++) {
		for (s = 0; s < j; s++)
			if (ids[s] == ids[j]) {
				fail("%s and %s are one map (%u)", inner[s].name, inner[j].name,
				     ids[j]);
				bad = 1;
			}
		if (held_fd[j] < 0)
			continue;
		id = map_id_of(held_fd[j], inner[j].name);
		if (id != ids[j]) {
			fail("%s: its fd has map %u, its slot %u", inner[j].name, id, ids[j]);
			bad = 1;
		} else {
			/* a write through the held fd shows through the slot's map */
			uint8_t value[32], got[32];
			int fd = map_get_fd_by_id(ids[j], 0);

			key = inner_key(j, 1);
			gen_bytes(value, inner[j].value_size, j, 5000);
			bad |= expect_ok(map_update(held_fd[j], &key, value, BPF_EXIST),
					 inner[j].name);
			if (fd < 0 || map_lookup(fd, &key, got) ||
			    memcmp(got, value, inner[j].value_size)) {
				fail("%s: a write through its fd is not seen through its slot",
				     inner[j].name);
				bad = 1;
			}
			if (fd >= 0)
				close(fd);
		}
	}
	if (bad)
		goto out;

	/* new inner maps: the templates' shape fits, another does not */
	tmpl_arr.name = "mm_new_arr";
	tmpl_hash.name = "mm_new_hash";
	key = 2;
	bad |= insert_new(outer_arr, &key, &tmpl_arr, 0, "mm_outer_arr: a new map in slot 2");
	key = 3;
	bad |= insert_new(outer_arr, &key, &tmpl_arr, 0, "mm_outer_arr: a new map in slot 3");
	hkey = outer_key(42);
	bad |= insert_new(outer_hash, &hkey, &tmpl_hash, 0, "mm_outer_hash: a new map");
	hkey = outer_key(4);
	bad |= insert_new(outer_hash, &hkey, &tmpl_hash, 0, "mm_outer_hash: a replacing map");
	/* (an inner array's max_entries is part of the shape, an inner hash's is not) */
	tmpl_arr.max_entries *= 2;
	tmpl_hash.value_size += 4;
	tmpl_arr.name = "mm_bad_arr";
	tmpl_hash.name = "mm_bad_hash";
	key = 4;
	bad |= insert_new(outer_arr, &key, &tmpl_arr, EINVAL, "mm_outer_arr: another shape");
	hkey = outer_key(43);
	bad |= insert_new(outer_hash, &hkey, &tmpl_hash, EINVAL, "mm_outer_hash: another shape");
	key = 4;
	bad |= expect_errno(map_lookup(outer_arr, &key, &id), ENOENT,
			    "mm_outer_arr slot 4 after a refused insertion");
out:
	if (!bad)
		pass();
	return 0;
}
