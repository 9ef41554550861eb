/*
 * Maps pinned in a bpf filesystem: the program makes --dirname, mounts a
 * bpf filesystem on it, makes a subdirectory "sub" in it, and pins a hash at
 * DIR/m and an array at DIR/sub/m2, keeping fds to both; a third map
 * (a hash) is pinned at DIR/sub/m3 and its fd closed, so only the pin holds
 * it.
 *
 * After restore: DIR is still a bpf filesystem; BPF_OBJ_GET of DIR/m and
 * DIR/sub/m2 gives maps with the same ids as the kept fds (the pins and the
 * fds are one map each, not a restored copy beside the original) and the
 * right info; the contents are intact, read through the kept fds and the
 * pins; a write through a kept fd is seen through a new BPF_OBJ_GET, also a
 * read-only one (BPF_F_RDONLY) that refuses updates with EPERM; DIR/sub/m3
 * still holds its map and contents; a new map can be pinned in DIR/sub. At
 * the end (also on the failure paths) the filesystem is unmounted
 * (MNT_DETACH) and DIR removed, so nothing is left behind.
 */
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "bpfcheck.h"

const char *test_doc = "BPF maps pinned in a bpf filesystem stay pinned, one map each";

static char *dirname;
TEST_OPTION(dirname, string, "mount point of the bpf filesystem", 1);

#define BPF_FS_MAGIC 0xcafe4a11

enum { M, M2, M3, NMAPS };
static struct map_spec specs[NMAPS] = {
	[M] = { BPF_MAP_TYPE_HASH, 4, 12, 128, 0, "pn_pinned" },
	[M2] = { BPF_MAP_TYPE_ARRAY, 4, 20, 64, 0, "pn_pinned_sub" },
	[M3] = { BPF_MAP_TYPE_HASH, 4, 12, 128, 0, "pn_only_pinned" },
};
static const char *const pin_name[NMAPS] = { "m", "sub/m2", "sub/m3" };
static char pin_path[NMAPS][PATH_MAX];
#define NKEYS 60

static int mounted;

static void cleanup(void)
{
	if (!mounted)
		return;
	mounted = 0;
	if (umount2(dirname, MNT_DETACH))
		pr_perror("umount2 %s", dirname);
	rmdir(dirname);
}

static __u32 key_of(int m, int i)
{
	return specs[m].type == BPF_MAP_TYPE_ARRAY ? (__u32)i : (__u32)mix64(m * 100 + i);
}

static int nkeys(int m)
{
	return specs[m].type == BPF_MAP_TYPE_ARRAY ? (int)specs[m].max_entries : NKEYS;
}

static int fill(int m, int fd)
{
	uint8_t value[32];
	__u32 key;
	int i;

	for (i = 0; i < nkeys(m); i++) {
		key = key_of(m, i);
		gen_bytes(value, specs[m].value_size, m, i);
		if (map_update(fd, &key, value, BPF_ANY)) {
			pr_perror("%s: update %d", specs[m].name, i);
			return -1;
		}
	}
	return 0;
}

/* All of map m's keys through fd (and nothing else: a count). */
static int check_contents(int m, int fd, const char *what)
{
	uint8_t value[32], want[32];
	__u32 key, next;
	int i, n = 0, bad = 0;

	for (i = 0; i < nkeys(m); i++) {
		key = key_of(m, i);
		gen_bytes(want, specs[m].value_size, m, i);
		if (map_lookup(fd, &key, value)) {
			fail("%s: lookup of key %d", what, i);
			return 1;
		}
		bad |= value_differs(&specs[m], 1, value, want, what, i);
	}
	for (i = 0; !map_get_next_key(fd, i ? &key : NULL, &next); i++) {
		key = next;
		if (++n > nkeys(m))
			break;
	}
	if (n != nkeys(m)) {
		fail("%s: %d keys walked, expected %d", what, n, nkeys(m));
		bad = 1;
	}
	return bad;
}

/* BPF_OBJ_GET of pin m is the map behind kept (when kept >= 0), with its contents. */
static int check_pin(int m, int kept)
{
	char what[PATH_MAX + 64];
	__u32 id, kept_id;
	int fd, bad;

	snprintf(what, sizeof(what), "pin %s", pin_name[m]);
	fd = obj_get(pin_path[m], 0);
	if (fd < 0) {
		fail("%s: BPF_OBJ_GET %s", what, pin_path[m]);
		return 1;
	}
	bad = check_map_info(fd, &specs[m], what, &id);
	if (!bad && kept >= 0) {
		kept_id = map_id_of(kept, specs[m].name);
		if (kept_id != id) {
			fail("%s: map %u, the kept fd has map %u", what, id, kept_id);
			bad = 1;
		}
	}
	if (!bad)
		bad = check_contents(m, fd, what);
	close(fd);
	return bad;
}

int main(int argc, char **argv)
{
	int fds[NMAPS], m, fd, bad = 0;
	char path[PATH_MAX];
	struct statfs sfs;
	uint8_t value[32], got[32];
	__u32 key;

	test_init(argc, argv);
	if (mkdir(dirname, 0755)) {
		pr_perror("mkdir %s", dirname);
		return 1;
	}
	if (mount("bpf", dirname, "bpf", 0, NULL)) {
		pr_perror("mount bpf on %s", dirname);
		rmdir(dirname);
		return 1;
	}
	mounted = 1;
	atexit(cleanup);
	snprintf(path, sizeof(path), "%s/sub", dirname);
	if (mkdir(path, 0755)) {
		pr_perror("mkdir %s", path);
		return 1;
	}
	for (m = 0; m < NMAPS; m++) {
		snprintf(pin_path[m], sizeof(pin_path[m]), "%s/%s", dirname, pin_name[m]);
		fds[m] = map_create(&specs[m]);
		if (fds[m] < 0 || fill(m, fds[m])) {
			pr_perror("BPF_MAP_CREATE %s", specs[m].name);
			return 1;
		}
		if (obj_pin(fds[m], pin_path[m])) {
			pr_perror("BPF_OBJ_PIN %s", pin_path[m]);
			return 1;
		}
	}
	close(fds[M3]);
	fds[M3] = -1;
	for (m = 0; m < NMAPS; m++)
		if (check_pin(m, fds[m]))
			return 1;

	test_daemon();
	test_waitsig();

	if (statfs(dirname, &sfs) || sfs.f_type != BPF_FS_MAGIC) {
		fail("%s is no longer a bpf filesystem (f_type %#lx)", dirname, (long)sfs.f_type);
		return 1;
	}
	for (m = 0; m < NMAPS; m++) {
		if (fds[m] >= 0) {
			bad |= check_map_info(fds[m], &specs[m], specs[m].name, NULL);
			bad |= check_contents(m, fds[m], specs[m].name);
		}
		bad |= check_pin(m, fds[m]);
	}
	if (bad)
		return 0;

	/* a write through the kept fd, seen through the pin; a read-only get */
	key = key_of(M, 7);
	gen_bytes(value, specs[M].value_size, M, 7007);
	bad |= expect_ok(map_update(fds[M], &key, value, BPF_EXIST), "update through the kept fd");
	fd = obj_get(pin_path[M], BPF_F_RDONLY);
	if (fd < 0) {
		fail("BPF_OBJ_GET %s, BPF_F_RDONLY", pin_path[M]);
		return 0;
	}
	if (map_lookup(fd, &key, got) || memcmp(got, value, specs[M].value_size)) {
		fail("the write through the kept fd is not seen through the pin");
		bad = 1;
	}
	bad |= expect_errno(map_update(fd, &key, value, BPF_ANY), EPERM,
			    "an update through a read-only BPF_OBJ_GET");
	close(fd);

	/* the filesystem still takes pins */
	snprintf(path, sizeof(path), "%s/sub/new", dirname);
	bad |= expect_ok(obj_pin(fds[M2], path), "BPF_OBJ_PIN sub/new");
	fd = obj_get(path, 0);
	if (fd < 0 || map_id_of(fd, "sub/new") != map_id_of(fds[M2], "m2")) {
		fail("sub/new is not the map pinned there");
		bad = 1;
	}
	if (fd >= 0)
		close(fd);
	if (!bad)
		pass();
	return 0;
}
