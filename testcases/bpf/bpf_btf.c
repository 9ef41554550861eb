/*
 * Maps created with BTF. Two small BTF blobs are loaded with BPF_BTF_LOAD:
 * A (INT u32, INT u64, STRUCT val { u32 a; u64 b; }) and B (INT int,
 * INT unsigned long, STRUCT elem { int x; unsigned long y; }). A hash and an
 * LRU hash use A (key u32, value struct val), and the process keeps A's fd;
 * an array uses B (key int, value struct elem), and B's fd is closed once
 * the array exists (only the map holds it).
 *
 * After restore: BPF_OBJ_GET_INFO_BY_FD and fdinfo of each map (with a
 * btf_id, and the key and value type ids it was created with); the kept
 * BTF fd is a BTF object whose id is the btf_id of both maps that use A
 * (one BTF object, not one per map), and the array's btf_id is another;
 * the bytes of each map's BTF (BPF_OBJ_GET_INFO_BY_FD on
 * BPF_BTF_GET_FD_BY_ID(btf_id), struct bpf_btf_info) are the blob that was
 * loaded, byte for byte; the maps' contents are intact and they take
 * updates; a new map can still be created with the kept BTF fd.
 */
#include "bpfcheck.h"

const char *test_doc = "BPF maps keep their BTF: ids, type ids and the BTF bytes";

struct blob {
	uint8_t data[512];
	__u32 len;
};

static void put(struct blob *b, const void *p, size_t n)
{
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void put_u32(struct blob *b, __u32 v)
{
	put(b, &v, 4);
}

static void put_type(struct blob *b, __u32 name_off, __u32 kind, __u32 vlen, __u32 size)
{
	struct btf_type t = { .name_off = name_off, .info = kind << 24 | vlen, .size = size };

	put(b, &t, sizeof(t));
}

/*
 * A BTF blob: [1] INT i4 (4 bytes, 32 bits, signed or not), [2] INT i8
 * (8 bytes), [3] STRUCT st { i4 m1; i8 m2 at byte 8 } (16 bytes); the
 * strings are "\0<i4>\0<i8>\0<st>\0<m1>\0<m2>\0".
 */
static void make_blob(struct blob *b, const char *i4, int i4_signed, const char *i8,
		      const char *st, const char *m1, const char *m2)
{
	const char *names[] = { i4, i8, st, m1, m2 };
	__u32 off[5], str_off = 1, types_len;
	struct btf_header *h;
	struct btf_member m;
	int i;

	memset(b, 0, sizeof(*b));
	b->len = sizeof(*h);
	for (i = 0; i < 5; i++) {
		off[i] = str_off;
		str_off += strlen(names[i]) + 1;
	}
	put_type(b, off[0], BTF_KIND_INT, 0, 4);
	put_u32(b, (i4_signed ? BTF_INT_SIGNED : 0) << 24 | 32);
	put_type(b, off[1], BTF_KIND_INT, 0, 8);
	put_u32(b, 64);
	put_type(b, off[2], BTF_KIND_STRUCT, 2, 16);
	m = (struct btf_member){ .name_off = off[3], .type = 1, .offset = 0 };
	put(b, &m, sizeof(m));
	m = (struct btf_member){ .name_off = off[4], .type = 2, .offset = 64 };
	put(b, &m, sizeof(m));
	types_len = b->len - sizeof(*h);
	put(b, "", 1);
	for (i = 0; i < 5; i++)
		put(b, names[i], strlen(names[i]) + 1);

	h = (struct btf_header *)b->data;
	h->magic = BTF_MAGIC;
	h->version = BTF_VERSION;
	h->hdr_len = sizeof(*h);
	h->type_off = 0;
	h->type_len = types_len;
	h->str_off = types_len;
	h->str_len = str_off;
}

#define KEY_T 1
#define VALUE_T 3
#define VALUE_SIZE 16
#define NKEYS 100

enum { HASH, LRU, ARR };

static struct map_spec specs[] = {
	[HASH] = { BPF_MAP_TYPE_HASH, 4, VALUE_SIZE, 128, 0, "bt_hash",
		   .btf_key_type_id = KEY_T, .btf_value_type_id = VALUE_T },
	[LRU] = { BPF_MAP_TYPE_LRU_HASH, 4, VALUE_SIZE, 1024, 0, "bt_lru_hash",
		  .btf_key_type_id = KEY_T, .btf_value_type_id = VALUE_T },
	[ARR] = { BPF_MAP_TYPE_ARRAY, 4, VALUE_SIZE, 64, 0, "bt_array",
		  .btf_key_type_id = KEY_T, .btf_value_type_id = VALUE_T },
};
#define NMAPS ((int)ARRAY_SIZE(specs))

static struct blob blob_a, blob_b;

static int nkeys(int m)
{
	return specs[m].type == BPF_MAP_TYPE_ARRAY ? (int)specs[m].max_entries : NKEYS;
}

static __u32 key_of(int m, int i)
{
	return specs[m].type == BPF_MAP_TYPE_ARRAY ? (__u32)i : (__u32)mix64(m * 1000 + i);
}

static int fill(int m, int fd)
{
	uint8_t value[VALUE_SIZE];
	__u32 key;
	int i;

	for (i = 0; i < nkeys(m); i++) {
		key = key_of(m, i);
		gen_bytes(value, VALUE_SIZE, m, i);
		if (map_update(fd, &key, value, BPF_ANY)) {
			pr_perror("%s: update %d", specs[m].name, i);
			return -1;
		}
	}
	return 0;
}

struct walk {
	int m;
	uint8_t seen[1024];
};

static int visit(const void *key, const void *value, void *arg)
{
	struct walk *w = arg;
	uint8_t want[VALUE_SIZE];
	__u32 k;
	int i;

	memcpy(&k, key, 4);
	for (i = 0; i < nkeys(w->m) && key_of(w->m, i) != k; i++)
		;
	if (i == nkeys(w->m) || w->seen[i]++) {
		fail("%s: key %#x never put in or walked twice", specs[w->m].name, k);
		return 1;
	}
	gen_bytes(want, VALUE_SIZE, w->m, i);
	return value_differs(&specs[w->m], 1, value, want, specs[w->m].name, i);
}

static int check_contents(int m, int fd)
{
	static struct walk w;
	uint8_t value[VALUE_SIZE];
	long n;

	memset(&w, 0, sizeof(w));
	w.m = m;
	n = map_walk(fd, 4, value, specs[m].max_entries + 1, visit, &w, specs[m].name);
	if (n < 0)
		return 1;
	if (n != nkeys(m)) {
		fail("%s: %ld keys walked, expected %d", specs[m].name, n, nkeys(m));
		return 1;
	}
	return 0;
}

/* The BTF object btf_fd: its id (0 after a fail()) and bytes against want. */
static __u32 check_btf_fd(int btf_fd, const struct blob *want, const char *what)
{
	static uint8_t data[4096];
	struct bpf_btf_info info;
	__u32 len = sizeof(info);

	if (!fd_is_bpf(btf_fd, "btf", what))
		return 0;
	memset(&info, 0, sizeof(info));
	memset(data, 0xa5, sizeof(data));
	info.btf = ptr_to_u64(data);
	info.btf_size = sizeof(data);
	if (obj_get_info_by_fd(btf_fd, &info, &len)) {
		fail("%s: BPF_OBJ_GET_INFO_BY_FD on the BTF fd", what);
		return 0;
	}
	if (info.id == 0 || info.kernel_btf) {
		fail("%s: BTF id %u, kernel_btf %u", what, info.id, info.kernel_btf);
		return 0;
	}
	if (info.btf_size != want->len) {
		fail("%s: %u bytes of BTF, %u were loaded", what, info.btf_size, want->len);
		return 0;
	}
	if (memcmp(data, want->data, want->len)) {
		fail("%s: the BTF bytes differ from the loaded blob", what);
		return 0;
	}
	return info.id;
}

/* The map's btf_id opens to a BTF object with the right bytes; that id, or 0. */
static __u32 check_map_btf(int fd, const struct blob *want, const char *what)
{
	struct bpf_map_info info;
	__u32 id;
	int btf_fd;

	if (map_get_info(fd, &info)) {
		fail("%s: BPF_OBJ_GET_INFO_BY_FD", what);
		return 0;
	}
	btf_fd = btf_get_fd_by_id(info.btf_id);
	if (btf_fd < 0) {
		fail("%s: BPF_BTF_GET_FD_BY_ID(%u)", what, info.btf_id);
		return 0;
	}
	id = check_btf_fd(btf_fd, want, what);
	close(btf_fd);
	if (id && id != info.btf_id) {
		fail("%s: btf_id %u opened a BTF object with id %u", what, info.btf_id, id);
		return 0;
	}
	return id;
}

int main(int argc, char **argv)
{
	int btf_a, btf_b, fds[NMAPS], m, bad = 0;
	__u32 a_id, ids[NMAPS], key;
	uint8_t value[VALUE_SIZE], got[VALUE_SIZE];
	static char log[65536];
	struct map_spec s;

	test_init(argc, argv);
	make_blob(&blob_a, "u32", 0, "u64", "val", "a", "b");
	make_blob(&blob_b, "int", 1, "long unsigned int", "elem", "x", "y");
	btf_a = btf_load(blob_a.data, blob_a.len, log, sizeof(log));
	if (btf_a < 0) {
		pr_perror("BPF_BTF_LOAD A: %s", log);
		return 1;
	}
	btf_b = btf_load(blob_b.data, blob_b.len, log, sizeof(log));
	if (btf_b < 0) {
		pr_perror("BPF_BTF_LOAD B: %s", log);
		return 1;
	}
	specs[HASH].btf_fd = btf_a;
	specs[LRU].btf_fd = btf_a;
	specs[ARR].btf_fd = btf_b;
	for (m = 0; m < NMAPS; m++) {
		fds[m] = map_create(&specs[m]);
		if (fds[m] < 0) {
			pr_perror("BPF_MAP_CREATE %s", specs[m].name);
			return 1;
		}
		if (fill(m, fds[m]))
			return 1;
	}
	close(btf_b);
	if (!check_btf_fd(btf_a, &blob_a, "BTF A before the checkpoint") ||
	    !check_map_btf(fds[ARR], &blob_b, "bt_array before the checkpoint"))
		return 1;

	test_daemon();
	test_waitsig();

	for (m = 0; m < NMAPS; m++) {
		bad |= check_map_info(fds[m], &specs[m], specs[m].name, NULL);
		ids[m] = check_map_btf(fds[m], m == ARR ? &blob_b : &blob_a, specs[m].name);
		if (!ids[m])
			bad = 1;
	}
	a_id = check_btf_fd(btf_a, &blob_a, "the kept BTF fd");
	if (!a_id)
		bad = 1;
	if (bad)
		goto out;
	if (ids[HASH] != a_id || ids[LRU] != a_id) {
		fail("the kept BTF fd is BTF %u, bt_hash has %u, bt_lru_hash %u", a_id, ids[HASH],
		     ids[LRU]);
		bad = 1;
	}
	if (ids[ARR] == a_id) {
		fail("bt_array has BTF %u, the kept BTF fd's", a_id);
		bad = 1;
	}
	for (m = 0; m < NMAPS; m++) {
		bad |= check_contents(m, fds[m]);
		key = key_of(m, 3);
		gen_bytes(value, VALUE_SIZE, m, 777);
		bad |= expect_ok(map_update(fds[m], &key, value, BPF_EXIST), specs[m].name);
		if (map_lookup(fds[m], &key, got) || memcmp(got, value, VALUE_SIZE)) {
			fail("%s: an update after the restore is not seen", specs[m].name);
			bad = 1;
		}
	}

	/* the kept BTF fd still makes maps */
	s = specs[HASH];
	s.name = "bt_new_hash";
	s.btf_fd = btf_a;
	m = map_create(&s);
	if (m < 0) {
		fail("BPF_MAP_CREATE with the kept BTF fd");
		bad = 1;
	} else {
		bad |= check_map_info(m, &s, s.name, NULL);
		if (check_map_btf(m, &blob_a, s.name) != a_id) {
			fail("bt_new_hash: not on the kept BTF");
			bad = 1;
		}
		close(m);
	}
out:
	if (!bad)
		pass();
	return 0;
}
