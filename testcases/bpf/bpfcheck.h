/*
 * What the BPF map tests share: thin bpf(2) wrappers (raw syscalls, no
 * libbpf), the map's own view of itself read back from the kernel
 * (BPF_OBJ_GET_INFO_BY_FD and /proc/self/fdinfo), deterministic data made
 * from a seed so that a program can recompute what it put in, and a walk
 * over a map's keys (GET_NEXT_KEY + LOOKUP).
 */
#ifndef BPFCHECK_H_
#define BPFCHECK_H_

#include <limits.h>
#include <linux/bpf.h>
#include <linux/btf.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "../fds/fdinfo.h"

/*
 * Before 5.11 BPF maps are charged to RLIMIT_MEMLOCK (64 KiB by default): lift it, as
 * libbpf does, before anything is made (later kernels charge the memory cgroup).
 */
__attribute__((constructor)) static void bpf_memlock_unlimited(void)
{
	struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };

	setrlimit(RLIMIT_MEMLOCK, &unlimited);
}

/* Everything the tests put in is derived from this. */
#define BPF_SEED 0x5eed0bf5c0ffee11ull

static inline int sys_bpf(enum bpf_cmd cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

static inline __u64 ptr_to_u64(const void *p)
{
	return (__u64)(unsigned long)p;
}

/*
 * How a map is made, and what BPF_OBJ_GET_INFO_BY_FD and fdinfo must say
 * about it. Zero is "none" for the fds (stdin is /dev/null in a test);
 * BTF is used when a type id is set.
 */
struct map_spec {
	__u32 type;
	__u32 key_size;
	__u32 value_size;
	__u32 max_entries;
	__u32 flags;
	const char *name;
	__u32 numa_node;	/* with BPF_F_NUMA_NODE */
	int inner_map_fd;	/* map-in-map: the template */
	int btf_fd;
	__u32 btf_key_type_id;
	__u32 btf_value_type_id;
	__u64 map_extra;
	int frozen;		/* what fdinfo's "frozen:" must say */
};

static inline int map_create(const struct map_spec *s)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_type = s->type;
	a.key_size = s->key_size;
	a.value_size = s->value_size;
	a.max_entries = s->max_entries;
	a.map_flags = s->flags;
	a.inner_map_fd = s->inner_map_fd;
	a.numa_node = s->numa_node;
	if (s->name)
		strncpy(a.map_name, s->name, BPF_OBJ_NAME_LEN - 1);
	a.btf_fd = s->btf_fd;
	a.btf_key_type_id = s->btf_key_type_id;
	a.btf_value_type_id = s->btf_value_type_id;
	a.map_extra = s->map_extra;
	return sys_bpf(BPF_MAP_CREATE, &a);
}

static inline int map_elem_cmd(enum bpf_cmd cmd, int fd, const void *key, void *value,
			       __u64 flags)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_fd = fd;
	a.key = ptr_to_u64(key);
	a.value = ptr_to_u64(value);
	a.flags = flags;
	return sys_bpf(cmd, &a);
}

/* flags: BPF_ANY, BPF_NOEXIST, BPF_EXIST (key NULL for queues, stacks, bloom filters) */
static inline int map_update(int fd, const void *key, const void *value, __u64 flags)
{
	return map_elem_cmd(BPF_MAP_UPDATE_ELEM, fd, key, (void *)value, flags);
}

/* value: value_size bytes, or round_up(value_size, 8) per possible CPU for per-CPU maps */
static inline int map_lookup(int fd, const void *key, void *value)
{
	return map_elem_cmd(BPF_MAP_LOOKUP_ELEM, fd, key, value, 0);
}

static inline int map_delete(int fd, const void *key)
{
	return map_elem_cmd(BPF_MAP_DELETE_ELEM, fd, key, NULL, 0);
}

/* key NULL: the first key */
static inline int map_get_next_key(int fd, const void *key, void *next)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_fd = fd;
	a.key = ptr_to_u64(key);
	a.next_key = ptr_to_u64(next);
	return sys_bpf(BPF_MAP_GET_NEXT_KEY, &a);
}

/* a pop for queues and stacks (key NULL) */
static inline int map_lookup_and_delete(int fd, const void *key, void *value)
{
	return map_elem_cmd(BPF_MAP_LOOKUP_AND_DELETE_ELEM, fd, key, value, 0);
}

static inline int map_freeze(int fd)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_fd = fd;
	return sys_bpf(BPF_MAP_FREEZE, &a);
}

/* open_flags: 0, BPF_F_RDONLY or BPF_F_WRONLY */
static inline int map_get_fd_by_id(__u32 id, __u32 open_flags)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_id = id;
	a.open_flags = open_flags;
	return sys_bpf(BPF_MAP_GET_FD_BY_ID, &a);
}

static inline int btf_get_fd_by_id(__u32 id)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.btf_id = id;
	return sys_bpf(BPF_BTF_GET_FD_BY_ID, &a);
}

/* *len: the size of info in, what the kernel filled out */
static inline int obj_get_info_by_fd(int fd, void *info, __u32 *len)
{
	union bpf_attr a;
	int ret;

	memset(&a, 0, sizeof(a));
	a.info.bpf_fd = fd;
	a.info.info_len = *len;
	a.info.info = ptr_to_u64(info);
	ret = sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a);
	if (!ret)
		*len = a.info.info_len;
	return ret;
}

static inline int map_get_info(int fd, struct bpf_map_info *info)
{
	__u32 len = sizeof(*info);

	memset(info, 0, sizeof(*info));
	return obj_get_info_by_fd(fd, info, &len);
}

/* The map id behind fd, or 0 (after a fail()). */
static inline __u32 map_id_of(int fd, const char *what)
{
	struct bpf_map_info info;

	if (map_get_info(fd, &info)) {
		fail("%s: BPF_OBJ_GET_INFO_BY_FD on fd %d", what, fd);
		return 0;
	}
	return info.id;
}

/* log: NULL, or log_size bytes for the verifier's words */
static inline int btf_load(const void *blob, __u32 size, char *log, __u32 log_size)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.btf = ptr_to_u64(blob);
	a.btf_size = size;
	if (log && log_size) {
		a.btf_log_buf = ptr_to_u64(log);
		a.btf_log_size = log_size;
		a.btf_log_level = 1;
		log[0] = '\0';
	}
	return sys_bpf(BPF_BTF_LOAD, &a);
}

static inline int obj_pin(int fd, const char *path)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.pathname = ptr_to_u64(path);
	a.bpf_fd = fd;
	return sys_bpf(BPF_OBJ_PIN, &a);
}

/* file_flags: 0, BPF_F_RDONLY or BPF_F_WRONLY */
static inline int obj_get(const char *path, __u32 file_flags)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.pathname = ptr_to_u64(path);
	a.file_flags = file_flags;
	return sys_bpf(BPF_OBJ_GET, &a);
}

/*
 * The kernel's num_possible_cpus(), as a per-CPU map sees it: a lookup in a
 * fresh per-CPU array writes one zero value per possible CPU into a buffer
 * of non-zero bytes.
 */
static inline int possible_cpus_by_map(void)
{
	static uint64_t buf[8192];
	struct map_spec s = { BPF_MAP_TYPE_PERCPU_ARRAY, 4, 8, 1, 0, "cpu_count" };
	__u32 key = 0;
	int fd = map_create(&s), n;

	if (fd < 0)
		return -1;
	memset(buf, 0xff, sizeof(buf));
	n = map_lookup(fd, &key, buf);
	close(fd);
	if (n)
		return -1;
	for (n = 0; n < (int)ARRAY_SIZE(buf) && buf[n] == 0; n++)
		;
	return n > 0 ? n : -1;
}

/*
 * The kernel's num_possible_cpus(): how many value slots a per-CPU map has,
 * from /sys/devices/system/cpu/possible ("0-3", "0,2-5"), or from a per-CPU
 * map when there is no /sys (the ns flavor's private root); -1 on error.
 */
static inline int possible_cpus(void)
{
	char buf[256], *p = buf, *end;
	long lo, hi;
	int n = 0;

	if (read_whole("/sys/devices/system/cpu/possible", buf, sizeof(buf)) <= 0)
		return possible_cpus_by_map();
	while (*p && *p != '\n') {
		lo = strtol(p, &end, 10);
		if (end == p)
			return -1;
		hi = lo;
		p = end;
		if (*p == '-') {
			hi = strtol(p + 1, &end, 10);
			if (end == p + 1)
				return -1;
			p = end;
		}
		n += hi - lo + 1;
		if (*p == ',')
			p++;
	}
	return n > 0 ? n : -1;
}

static inline int map_is_percpu(__u32 type)
{
	return type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_PERCPU_HASH ||
	       type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

/* Where CPU n's value starts in a per-CPU lookup/update buffer. */
static inline __u32 percpu_stride(__u32 value_size)
{
	return (value_size + 7) & ~7u;
}

/* The size of a lookup/update value buffer for a map of this spec. */
static inline size_t value_bytes(const struct map_spec *s, int ncpus)
{
	return map_is_percpu(s->type) ? (size_t)percpu_stride(s->value_size) * ncpus
				      : s->value_size;
}

/* An fdinfo field read as a number (base 0: "0x.." hex, "0.." octal); -1 when absent. */
static inline long long fdinfo_number(int fd, const char *key)
{
	char val[64];

	if (fdinfo_field(fd, key, val, sizeof(val)))
		return -1;
	return strtoll(val, NULL, 0);
}

/* 1 when fd is an "anon_inode:bpf-map" (kind: "bpf-map", "btf", ...), else fail() and 0. */
static inline int fd_is_bpf(int fd, const char *kind, const char *what)
{
	char path[64], link[128], want[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	snprintf(want, sizeof(want), "anon_inode:%s", kind);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0) {
		fail("%s: fd %d is not open", what, fd);
		return 0;
	}
	link[n] = '\0';
	if (strcmp(link, want)) {
		fail("%s: fd %d is %s, expected %s", what, fd, link, want);
		return 0;
	}
	return 1;
}

/*
 * The kernel's view of the map behind fd against s: BPF_OBJ_GET_INFO_BY_FD
 * (type, sizes, max_entries, flags, name, map_extra, BTF ids: a btf_id
 * when s uses BTF, none otherwise) and fdinfo (the same map_id, "frozen:"
 * as s->frozen). fail() for each difference and 1; 0 when all agree. *id
 * (when not NULL) gets the map's id.
 */
static inline int check_map_info(int fd, const struct map_spec *s, const char *what,
				 __u32 *id)
{
	struct bpf_map_info info;
	int bad = 0, btf = s->btf_key_type_id || s->btf_value_type_id;
	long long v;

	if (id)
		*id = 0;
	if (!fd_is_bpf(fd, "bpf-map", what))
		return 1;
	if (map_get_info(fd, &info)) {
		fail("%s: BPF_OBJ_GET_INFO_BY_FD on fd %d", what, fd);
		return 1;
	}
#define CHECK_FIELD(field, want)                                                        \
	do {                                                                            \
		if ((unsigned long long)info.field != (unsigned long long)(want)) {     \
			fail("%s: " #field " %#llx, expected %#llx", what,              \
			     (unsigned long long)info.field, (unsigned long long)(want)); \
			bad = 1;                                                        \
		}                                                                       \
	} while (0)
	CHECK_FIELD(type, s->type);
	CHECK_FIELD(key_size, s->key_size);
	CHECK_FIELD(value_size, s->value_size);
	CHECK_FIELD(max_entries, s->max_entries);
	CHECK_FIELD(map_flags, s->flags);
	CHECK_FIELD(map_extra, s->map_extra);
	CHECK_FIELD(ifindex, 0);
	CHECK_FIELD(btf_vmlinux_value_type_id, 0);
	CHECK_FIELD(btf_key_type_id, s->btf_key_type_id);
	CHECK_FIELD(btf_value_type_id, s->btf_value_type_id);
#undef CHECK_FIELD
	if (info.id == 0) {
		fail("%s: map id 0", what);
		bad = 1;
	}
	if (btf && info.btf_id == 0) {
		fail("%s: created with BTF but its btf_id is 0", what);
		bad = 1;
	} else if (!btf && info.btf_id != 0) {
		fail("%s: created without BTF but its btf_id is %u", what, info.btf_id);
		bad = 1;
	}
	if (strncmp(info.name, s->name ? s->name : "", BPF_OBJ_NAME_LEN)) {
		fail("%s: name \"%.16s\", expected \"%s\"", what, info.name, s->name);
		bad = 1;
	}
	v = fdinfo_number(fd, "map_id:");
	if (v != info.id) {
		fail("%s: fdinfo map_id %lld, the info's id %u", what, v, info.id);
		bad = 1;
	}
	v = fdinfo_number(fd, "frozen:");
	if (v != !!s->frozen) {
		fail("%s: fdinfo frozen: %lld, expected %d", what, v, !!s->frozen);
		bad = 1;
	}
	if (id)
		*id = info.id;
	return bad;
}

/* splitmix64's finaliser: a bijective 64-bit mix. */
static inline uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* len pseudo-random bytes, a function of (BPF_SEED, a, b) only. */
static inline void gen_bytes(void *buf, size_t len, uint64_t a, uint64_t b)
{
	uint64_t s = mix64(BPF_SEED ^ mix64(a) ^ mix64(mix64(b) + 1)), w = 0;
	uint8_t *p = buf;
	size_t i;

	for (i = 0; i < len; i++) {
		if (i % 8 == 0)
			w = mix64(s + i);
		p[i] = (uint8_t)(w >> (8 * (i % 8)));
	}
}

/*
 * A per-CPU value buffer: CPU n's value_size bytes at n * stride are
 * gen_bytes(a, b * 1024 + n), the padding up to the stride is zero.
 */
static inline void gen_percpu(void *buf, __u32 value_size, int ncpus, uint64_t a, uint64_t b)
{
	__u32 stride = percpu_stride(value_size);
	int n;

	memset(buf, 0, (size_t)stride * ncpus);
	for (n = 0; n < ncpus; n++)
		gen_bytes((uint8_t *)buf + (size_t)n * stride, value_size, a, b * 1024 + n);
}

/*
 * Compare a looked-up value with the expected one: value_size bytes, or
 * each CPU's value_size bytes (not the padding) for per-CPU maps. The
 * first difference is fail()ed (with what and the key index); 1 when they
 * differ.
 */
static inline int value_differs(const struct map_spec *s, int ncpus, const void *got,
				const void *want, const char *what, long index)
{
	__u32 stride = percpu_stride(s->value_size), i;
	int n, slots = map_is_percpu(s->type) ? ncpus : 1;
	const uint8_t *g = got, *w = want;

	for (n = 0; n < slots; n++) {
		size_t off = (size_t)n * stride;

		if (!memcmp(g + off, w + off, s->value_size))
			continue;
		for (i = 0; i < s->value_size && g[off + i] == w[off + i]; i++)
			;
		if (slots > 1)
			fail("%s: key %ld, cpu %d: value byte %u is %#x, expected %#x", what,
			     index, n, i, g[off + i], w[off + i]);
		else
			fail("%s: key %ld: value byte %u is %#x, expected %#x", what, index, i,
			     g[off + i], w[off + i]);
		return 1;
	}
	return 0;
}

/*
 * Walk fd's keys with BPF_MAP_GET_NEXT_KEY from the start, looking each one
 * up (value: a buffer big enough for value_bytes()); visit(key, value, arg)
 * returns non-zero for a bad entry. Returns the number of keys walked, -1
 * when a bpf() call failed or a bad entry was seen (fail() said which). A
 * walk longer than max_keys is an error (a map that loops).
 */
static inline long map_walk(int fd, __u32 key_size, void *value, long max_keys,
			    int (*visit)(const void *key, const void *value, void *arg),
			    void *arg, const char *what)
{
	uint8_t key[256], next[256];
	long n = 0;
	int bad = 0, first = 1;

	if (key_size > sizeof(key)) {
		fail("%s: key_size %u is too big to walk", what, key_size);
		return -1;
	}
	for (;;) {
		if (map_get_next_key(fd, first ? NULL : key, next)) {
			if (errno == ENOENT)
				break;
			fail("%s: BPF_MAP_GET_NEXT_KEY after %ld keys", what, n);
			return -1;
		}
		first = 0;
		memcpy(key, next, key_size);
		if (++n > max_keys) {
			fail("%s: the walk goes on past %ld keys", what, max_keys);
			return -1;
		}
		if (map_lookup(fd, key, value)) {
			fail("%s: BPF_MAP_LOOKUP_ELEM of walked key %ld", what, n);
			bad = 1;
			continue;
		}
		if (visit(key, value, arg))
			bad = 1;
	}
	return bad ? -1 : n;
}

/* Expect a bpf() call's result to be -1 with errno err; fail() and 1 otherwise. */
static inline int expect_errno(int ret, int err, const char *what)
{
	if (ret == -1 && errno == err)
		return 0;
	if (ret == -1)
		fail("%s: errno %d (%s), expected %d (%s)", what, errno, strerror(errno), err,
		     strerror(err));
	else
		fail("%s: succeeded (%d), expected errno %d (%s)", what, ret, err,
		     strerror(err));
	return 1;
}

/*
 * A second BPF_MAP_FREEZE of a frozen map fails: with EPERM where the kernel checks the
 * description's write permission first (a frozen map has none left, 6.18), EBUSY where it
 * checks "already frozen" first (5.10, 6.1).  Either says the map is frozen.
 */
static inline int expect_frozen_again(int fd, const char *what)
{
	if (map_freeze(fd) == -1 && (errno == EPERM || errno == EBUSY))
		return 0;
	fail("%s: a second BPF_MAP_FREEZE did not fail with EPERM or EBUSY", what);
	return 1;
}

/* Expect a bpf() call to succeed; fail() and 1 otherwise. */
static inline int expect_ok(int ret, const char *what)
{
	if (ret >= 0)
		return 0;
	fail("%s", what);
	return 1;
}

/*
 * Hand-assembled programs, for what only a program can do to a map (output
 * into a ring buffer, drain a user ring buffer, pop a frozen queue): loaded
 * and run after the restore or closed before the checkpoint, never held
 * across it.
 */
#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), \
						.off = (o), .imm = (i) })
#define MOV64_REG(d, s) INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV64_IMM(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define ADD64_IMM(d, i) INSN(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, i)
#define ST_MEM_W(d, o, i) INSN(BPF_ST | BPF_MEM | BPF_W, d, 0, o, i)
#define JNE_IMM(d, i, o) INSN(BPF_JMP | BPF_JNE | BPF_K, d, 0, o, i)
#define CALL(f) INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
/* two instructions: dst = a map (src BPF_PSEUDO_MAP_FD) or a subprogram (BPF_PSEUDO_FUNC) */
#define LD_IMM64(d, s, i) INSN(BPF_LD | BPF_DW | BPF_IMM, d, s, 0, i), INSN(0, 0, 0, 0, 0)

/*
 * BPF_PROG_LOAD of n instructions (GPL); btf_fd and finfo/nfinfo: BTF
 * func_info, or -1 and NULL/0. The fd, or -1 after pr_perror() with the
 * verifier's log.
 */
static inline int prog_load(enum bpf_prog_type type, const struct bpf_insn *insns, int n,
			    const char *name, int btf_fd, const struct bpf_func_info *finfo,
			    int nfinfo)
{
	static char log[65536];
	union bpf_attr a;
	int fd;

	memset(&a, 0, sizeof(a));
	a.prog_type = type;
	a.insns = ptr_to_u64(insns);
	a.insn_cnt = n;
	a.license = ptr_to_u64("GPL");
	a.log_buf = ptr_to_u64(log);
	a.log_size = sizeof(log);
	a.log_level = 1;
	strncpy(a.prog_name, name, sizeof(a.prog_name) - 1);
	if (btf_fd >= 0) {
		a.prog_btf_fd = btf_fd;
		a.func_info = ptr_to_u64(finfo);
		a.func_info_rec_size = sizeof(*finfo);
		a.func_info_cnt = nfinfo;
	}
	log[0] = '\0';
	fd = sys_bpf(BPF_PROG_LOAD, &a);
	if (fd < 0)
		pr_perror("BPF_PROG_LOAD %s: %.2000s", name, log);
	return fd;
}

/*
 * Run a socket filter once (BPF_PROG_TEST_RUN) on a packet of a zero
 * Ethernet header and len bytes of payload (what the program sees at
 * offset 0); its return value, or -1 after pr_perror().
 */
static inline long prog_run(int prog, const void *payload, size_t len)
{
	uint8_t pkt[14 + 256] = { 0 };
	union bpf_attr a;

	if (len > sizeof(pkt) - 14)
		return -1;
	memcpy(pkt + 14, payload, len);
	memset(&a, 0, sizeof(a));
	a.test.prog_fd = prog;
	a.test.data_in = ptr_to_u64(pkt);
	a.test.data_size_in = 14 + (len < 32 ? 32 : len);
	a.test.repeat = 1;
	if (sys_bpf(BPF_PROG_TEST_RUN, &a)) {
		pr_perror("BPF_PROG_TEST_RUN");
		return -1;
	}
	return a.test.retval;
}

#endif /* BPFCHECK_H_ */
