/*
 * One hash map, many descriptions of it: the fd BPF_MAP_CREATE gave (A), a
 * second description from BPF_MAP_GET_FD_BY_ID (B), a dup() of B (C, which
 * has no FD_CLOEXEC), and a read-only description (R, BPF_MAP_GET_FD_BY_ID
 * with BPF_F_RDONLY). A child forked after all of them holds the same four.
 *
 * After restore, in the parent: each fd is a bpf-map with the map's info and
 * all four show the same map id; kcmp(KCMP_FILE) says A and B are two
 * descriptions, B and C one, and the child's fds are the parent's
 * descriptions; R is O_RDONLY (F_GETFL and fdinfo "flags:"), the others
 * O_RDWR, and only C lacks FD_CLOEXEC; the contents are intact (walked
 * through R); a write through A is seen through B, C and R; R refuses an
 * update and a delete with EPERM. Then the child checks its own fds the same
 * way (one map id, R read-only), sees the parent's write through all four,
 * writes through its C, and reports its verdict by its exit status; the
 * parent then sees the child's write through A and R.
 */
#include <linux/kcmp.h>
#include <sys/syscall.h>

#include "bpfcheck.h"

const char *test_doc = "one BPF map held through several descriptions by two processes";

static struct map_spec spec = { BPF_MAP_TYPE_HASH, 4, 12, 64, 0, "sh_shared" };

enum { A, B, C, R, NFDS };
static const char *const fd_name[NFDS] = { "A", "B", "C (dup of B)", "R (read-only)" };
static int fds[NFDS];

#define NKEYS 40
#define PARENT_KEY 1000
#define CHILD_KEY 2000

static void value_of(__u32 key, int gen, uint8_t *value)
{
	gen_bytes(value, spec.value_size, gen, key);
}

/* key has its generation-gen value when looked up through fd */
static int sees(int fd, __u32 key, int gen, const char *what)
{
	uint8_t got[12], want[12];

	value_of(key, gen, want);
	if (map_lookup(fd, &key, got)) {
		fail("%s: lookup of key %u", what, key);
		return 1;
	}
	if (memcmp(got, want, sizeof(want))) {
		fail("%s: key %u has another value", what, key);
		return 1;
	}
	return 0;
}

/* The checks both processes make on their own fds: info, one id, flags. */
static int check_fds(const char *who)
{
	char what[64];
	__u32 id[NFDS];
	int i, fl, bad = 0;
	long long info_fl;

	for (i = 0; i < NFDS; i++) {
		snprintf(what, sizeof(what), "%s: fd %s", who, fd_name[i]);
		bad |= check_map_info(fds[i], &spec, what, &id[i]);
		if (i && id[i] != id[A]) {
			fail("%s: map id %u, fd A has %u", what, id[i], id[A]);
			bad = 1;
		}
		fl = fcntl(fds[i], F_GETFL);
		info_fl = fdinfo_number(fds[i], "flags:");
		if (fl < 0 || (fl & O_ACCMODE) != (i == R ? O_RDONLY : O_RDWR) ||
		    info_fl < 0 || (info_fl & O_ACCMODE) != (fl & O_ACCMODE)) {
			fail("%s: F_GETFL %#o, fdinfo flags %#llo, expected %s", what, fl, info_fl,
			     i == R ? "O_RDONLY" : "O_RDWR");
			bad = 1;
		}
		fl = fcntl(fds[i], F_GETFD);
		if (fl != (i == C ? 0 : FD_CLOEXEC)) {
			fail("%s: F_GETFD %d", what, fl);
			bad = 1;
		}
	}
	return bad;
}

static int child_setup(void *arg)
{
	return 0;
}

static int child_check(void *arg)
{
	uint8_t value[12];
	__u32 key = CHILD_KEY;
	int i, bad = check_fds("child");

	for (i = 0; i < NFDS; i++)
		bad |= sees(fds[i], PARENT_KEY, 1, "child: the parent's write");
	value_of(key, 2, value);
	bad |= expect_errno(map_update(fds[R], &key, value, BPF_ANY), EPERM,
			    "child: an update through R");
	bad |= expect_ok(map_update(fds[C], &key, value, BPF_NOEXIST), "child: an update through C");
	return bad;
}

static int same_file(pid_t a, pid_t b, int fda, int fdb)
{
	return syscall(SYS_kcmp, a, b, KCMP_FILE, fda, fdb) == 0;
}

static int walk_visit(const void *key, const void *value, void *arg)
{
	uint8_t want[12];
	__u32 k;

	memcpy(&k, key, 4);
	if (k >= NKEYS) {
		fail("a key %u that was never put in", k);
		return 1;
	}
	value_of(k, 0, want);
	return value_differs(&spec, 1, value, want, "walk through R", k);
}

int main(int argc, char **argv)
{
	uint8_t value[12];
	__u32 key, id;
	pid_t child, me;
	int i, bad = 0;
	long n;

	test_init(argc, argv);
	fds[A] = map_create(&spec);
	if (fds[A] < 0) {
		pr_perror("BPF_MAP_CREATE");
		return 1;
	}
	for (key = 0; key < NKEYS; key++) {
		value_of(key, 0, value);
		if (map_update(fds[A], &key, value, BPF_NOEXIST)) {
			pr_perror("update %u", key);
			return 1;
		}
	}
	id = map_id_of(fds[A], "A");
	fds[B] = map_get_fd_by_id(id, 0);
	fds[C] = dup(fds[B]);
	fds[R] = map_get_fd_by_id(id, BPF_F_RDONLY);
	if (!id || fds[B] < 0 || fds[C] < 0 || fds[R] < 0) {
		pr_perror("second descriptions of map %u", id);
		return 1;
	}
	if (check_fds("parent before the checkpoint"))
		return 1;
	child = fork_checker(child_setup, child_check, NULL);

	test_daemon();
	test_waitsig();

	me = getpid();
	bad |= check_fds("parent");
	if (same_file(me, me, fds[A], fds[B])) {
		fail("parent: A and B are one description");
		bad = 1;
	}
	if (!same_file(me, me, fds[B], fds[C])) {
		fail("parent: B and its dup C are two descriptions");
		bad = 1;
	}
	if (same_file(me, me, fds[R], fds[B])) {
		fail("parent: R and B are one description");
		bad = 1;
	}
	for (i = 0; i < NFDS; i++)
		if (!same_file(me, child, fds[i], fds[i])) {
			fail("fd %s: the child's is not the parent's description", fd_name[i]);
			bad = 1;
		}

	n = map_walk(fds[R], 4, value, spec.max_entries + 1, walk_visit, NULL, "walk through R");
	if (n != NKEYS) {
		fail("%ld keys walked through R, expected %d", n, NKEYS);
		bad = 1;
	}

	/* a write through A shows everywhere; R writes nothing */
	key = PARENT_KEY;
	value_of(key, 1, value);
	bad |= expect_ok(map_update(fds[A], &key, value, BPF_NOEXIST), "parent: update through A");
	for (i = 0; i < NFDS; i++)
		bad |= sees(fds[i], PARENT_KEY, 1, fd_name[i]);
	key = 1;
	bad |= expect_errno(map_update(fds[R], &key, value, BPF_ANY), EPERM, "update through R");
	bad |= expect_errno(map_delete(fds[R], &key), EPERM, "delete through R");
	bad |= sees(fds[R], 1, 0, "R after its refused writes");

	if (child_verdict(child, "the child's checks"))
		bad = 1;
	bad |= sees(fds[A], CHILD_KEY, 2, "the child's write, through A");
	bad |= sees(fds[R], CHILD_KEY, 2, "the child's write, through R");
	if (!bad)
		pass();
	return 0;
}
