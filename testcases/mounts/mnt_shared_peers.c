/*
 * A shared peer group across two mount namespaces:
 *
 *   ns A (the main program):  S (a tmpfs made shared) at D/s, P1 = bind of S at D/p1,
 *                             P2 = bind of S at D/p2: S, P1 and P2 are peers;
 *   ns B (a child that unshared after that): the copy of P1 at D/p1, a peer too (the
 *                             copies of S and P2 are unmounted there).
 *
 * Before the dump and after the restore: the four members carry one and the same
 * "shared:N" in mountinfo, ns B has no mount at D/s and D/p2, and the propagation matrix
 * is all ones: a probe mounted in any member shows in every other, and its umount takes
 * it away everywhere.
 */
#include "mntcheck.h"

const char *test_doc = "a shared tmpfs, two binds of it and a copy in another mount "
		       "namespace: one peer group, mounts propagate both ways";

static struct mnt_srv ns_a, ns_b;

#define N 4
static struct mnt_member members[N];
static const char *const expected[N] = { "1111", "1111", "1111", "1111" };
static char rows_before[N][MNT_MAX_MEMBERS + 1], rows_after[N][MNT_MAX_MEMBERS + 1];

static int setup_b(struct mnt_srv *s, void *arg)
{
	(void)s;
	(void)arg;
	if (umount2(mp("%s/s", mnt_dir), 0) || umount2(mp("%s/p2", mnt_dir), 0)) {
		pr_perror("B: umount the copies of S and P2");
		return -1;
	}
	return 0;
}

static int check(const char *when, char before[][MNT_MAX_MEMBERS + 1],
		 char got[][MNT_MAX_MEMBERS + 1])
{
	struct mnt_line l = { 0 };
	int i, group = 0, bad = 0;

	for (i = 0; i < N; i++) {
		errno = 0;
		if (mnt_find(members[i].srv->pid, members[i].path, NULL, &l) != 1) {
			fail("%s: %s: no mount at %s", when, members[i].name, members[i].path);
			bad = 1;
			continue;
		}
		if (strcmp(l.source, "peers-s") || strcmp(l.root, "/") || !mnt_tag(&l, "shared") ||
		    mnt_tag(&l, "master") || (group && mnt_tag(&l, "shared") != group)) {
			fail("%s: %s: %s root %s \"%s\", not a peer of the others (shared:%d)", when,
			     members[i].name, l.source, l.root, l.tags, group);
			bad = 1;
		}
		group = mnt_tag(&l, "shared");
	}
	errno = 0;
	if (mnt_visible(ns_b.pid, mp("%s/s", mnt_dir), NULL) ||
	    mnt_visible(ns_b.pid, mp("%s/p2", mnt_dir), NULL)) {
		fail("%s: ns B has a mount at %s/s or %s/p2", when, mnt_dir, mnt_dir);
		bad = 1;
	}
	if (mnt_ns_ino(ns_a.pid) == mnt_ns_ino(ns_b.pid)) {
		fail("%s: A and B share a mount namespace", when);
		bad = 1;
	}
	bad |= mnt_matrix_check(when, members, N, expected, before, got);
	return bad;
}

/* check() with the rows to compare: before the dump none, after it those of before */
static int check_when(const char *when)
{
	if (!strcmp(when, "before"))
		return check(when, NULL, rows_before);
	return check(when, rows_before, rows_after);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (mnt_prepare())
		return 1;
	if (mnt_tmpfs("peers-s", mp("%s/s", mnt_dir), 0, "size=1m,mode=755") ||
	    mkdir(mp("%s/s/probe", mnt_dir), 0755) || mnt_share(mp("%s/s", mnt_dir)) ||
	    mnt_bind(mp("%s/s", mnt_dir), mp("%s/p1", mnt_dir), 0) ||
	    mnt_bind(mp("%s/s", mnt_dir), mp("%s/p2", mnt_dir), 0))
		return 1;

	mnt_srv_self(&ns_a, "A", NULL);
	if (mnt_srv_init(&ns_b, "B", NULL, NULL) || mnt_srv_start(&ns_b, 1, setup_b, NULL))
		return 1;
	members[0] = (struct mnt_member){ "A:s", &ns_a, strdup(mp("%s/s", mnt_dir)) };
	members[1] = (struct mnt_member){ "A:p1", &ns_a, strdup(mp("%s/p1", mnt_dir)) };
	members[2] = (struct mnt_member){ "A:p2", &ns_a, strdup(mp("%s/p2", mnt_dir)) };
	members[3] = (struct mnt_member){ "B:p1", &ns_b, strdup(mp("%s/p1", mnt_dir)) };

	return mnt_around(check_when, "the peer group did not hold");
}
