/*
 * A chain of slaves across two mount namespaces:
 *
 *   ns A (the main program): A, a tmpfs made shared, at D/a;
 *   ns X (a child that unshared after that): B at D/b, a bind of its copy of A made slave
 *        (of A's group) and then shared (a group of its own): "shared:M master:N";
 *        C at D/c, a bind of B made slave (of B's group): "master:M"; its copy of A is
 *        unmounted.
 *
 * Before the dump and after the restore: the tags say so (A's group is B's master, B's
 * is C's, C is no peer), and by behaviour: a probe mounted in A shows in A, B and C; in
 * B, it shows in B and C but not in A; in C, nowhere else.
 */
#include "mntcheck.h"

const char *test_doc = "a shared mount, a slave+shared of it and a slave of that, two "
		       "mount namespaces: propagation goes down the chain only";

static struct mnt_srv ns_a, ns_x;

#define N 3
static struct mnt_member members[N];
static const char *const expected[N] = { "111", "011", "001" };
static char rows_before[N][MNT_MAX_MEMBERS + 1], rows_after[N][MNT_MAX_MEMBERS + 1];

static int setup_x(struct mnt_srv *s, void *arg)
{
	(void)s;
	(void)arg;
	if (mnt_bind(mp("%s/a", mnt_dir), mp("%s/b", mnt_dir), 0) ||
	    mnt_slave(mp("%s/b", mnt_dir)) || mnt_share(mp("%s/b", mnt_dir)) ||
	    mnt_bind(mp("%s/b", mnt_dir), mp("%s/c", mnt_dir), 0) ||
	    mnt_slave(mp("%s/c", mnt_dir)))
		return -1;
	if (umount2(mp("%s/a", mnt_dir), 0)) {
		pr_perror("X: umount its copy of A");
		return -1;
	}
	return 0;
}

static int check(const char *when, char before[][MNT_MAX_MEMBERS + 1],
		 char got[][MNT_MAX_MEMBERS + 1])
{
	struct mnt_line l[N];
	int i, bad = 0;

	for (i = 0; i < N; i++) {
		errno = 0;
		if (mnt_find(members[i].srv->pid, members[i].path, "chain-a", &l[i]) != 1) {
			fail("%s: %s: no mount of chain-a at %s", when, members[i].name,
			     members[i].path);
			return 1;
		}
		test_msg("%s: %s: %s\n", when, members[i].name, l[i].tags);
	}
	errno = 0;
	if (!mnt_tag(&l[0], "shared") || mnt_tag(&l[0], "master") ||
	    !mnt_tag(&l[1], "shared") || mnt_tag(&l[1], "master") != mnt_tag(&l[0], "shared") ||
	    mnt_tag(&l[2], "shared") || mnt_tag(&l[2], "master") != mnt_tag(&l[1], "shared") ||
	    mnt_tag(&l[1], "shared") == mnt_tag(&l[0], "shared")) {
		fail("%s: the chain reads A \"%s\", B \"%s\", C \"%s\"", when, l[0].tags, l[1].tags,
		     l[2].tags);
		bad = 1;
	}
	if (mnt_visible(ns_x.pid, mp("%s/a", mnt_dir), NULL) ||
	    mnt_visible(ns_a.pid, mp("%s/b", mnt_dir), NULL) ||
	    mnt_visible(ns_a.pid, mp("%s/c", mnt_dir), NULL)) {
		fail("%s: A's namespace has B or C, or X's has A", when);
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
	if (mnt_tmpfs("chain-a", mp("%s/a", mnt_dir), 0, "size=1m,mode=755") ||
	    mkdir(mp("%s/a/probe", mnt_dir), 0755) || mnt_share(mp("%s/a", mnt_dir)))
		return 1;

	mnt_srv_self(&ns_a, "A", NULL);
	if (mnt_srv_init(&ns_x, "X", NULL, NULL) || mnt_srv_start(&ns_x, 1, setup_x, NULL))
		return 1;
	members[0] = (struct mnt_member){ "A:a", &ns_a, strdup(mp("%s/a", mnt_dir)) };
	members[1] = (struct mnt_member){ "X:b", &ns_x, strdup(mp("%s/b", mnt_dir)) };
	members[2] = (struct mnt_member){ "X:c", &ns_x, strdup(mp("%s/c", mnt_dir)) };

	return mnt_around(check_when, "the slave chain did not hold");
}
