/*
 * A peer group whose members bind different subtrees of one tmpfs, and no member binds
 * its root; it spans three mount namespaces and has a slave+shared group and a slave:
 *
 *   T: a tmpfs ("width-t") with sub1/probe and sub2/probe, made shared (group G1), at
 *   D/t while the rest is set up, then unmounted in every namespace.
 *
 *   ns A (main):  D/w1  bind of T's /sub1 (G1)
 *                 D/w2  bind of T's /sub2 (G1)
 *                 D/s1  bind of D/w1 made slave, then shared (G2, master G1)
 *   ns B:         D/w1  (its copy: G1), D/s1 (its copy: G2); the copies of T and D/w2
 *                 unmounted
 *   ns C:         D/w2  (its copy: G1); D/s2 a bind of it made slave (master G1); the
 *                 copies of T, D/w1 and D/s1 unmounted
 *
 * A mount propagates to the peers and slaves whose root holds its mount point: one under
 * sub1 reaches the sub1 binds and G2, one under sub2 the sub2 binds and D/s2.  Before the
 * dump and after the restore: the groups and masters in mountinfo (one G1 over the three
 * namespaces, G2 over two, no mount of T's root anywhere) and the propagation matrix.
 */
#include "mntcheck.h"

const char *test_doc = "a peer group of binds of two subtrees (no root member) over three "
		       "mount namespaces, a slave+shared group and a slave of it";

static struct mnt_srv ns_a, ns_b, ns_c;

#define N 7
static struct mnt_member members[N];
/* members: A:w1 A:w2 A:s1 B:w1 B:s1 C:w2 C:s2 */
static const char *const expected[N] = {
	"1011100",	/* A:w1 -> the sub1 binds of G1, and G2 */
	"0100011",	/* A:w2 -> the sub2 binds of G1, and C:s2 */
	"0010100",	/* A:s1 -> G2 only */
	"1011100",	/* B:w1 */
	"0010100",	/* B:s1 */
	"0100011",	/* C:w2 */
	"0000001",	/* C:s2 -> nowhere else */
};
static const char *const roots[N] = { "/sub1", "/sub2", "/sub1", "/sub1", "/sub1", "/sub2",
				      "/sub2" };
static char rows_before[N][MNT_MAX_MEMBERS + 1], rows_after[N][MNT_MAX_MEMBERS + 1];

static int setup_b(struct mnt_srv *s, void *arg)
{
	(void)s;
	(void)arg;
	if (umount2(mp("%s/t", mnt_dir), 0) || umount2(mp("%s/w2", mnt_dir), 0)) {
		pr_perror("B: umount the copies of T and w2");
		return -1;
	}
	return 0;
}

static int setup_c(struct mnt_srv *s, void *arg)
{
	(void)s;
	(void)arg;
	if (umount2(mp("%s/t", mnt_dir), 0) || umount2(mp("%s/w1", mnt_dir), 0) ||
	    umount2(mp("%s/s1", mnt_dir), 0)) {
		pr_perror("C: umount the copies of T, w1 and s1");
		return -1;
	}
	return mnt_bind(mp("%s/w2", mnt_dir), mp("%s/s2", mnt_dir), 0) ||
	       mnt_slave(mp("%s/s2", mnt_dir));
}

/* No mount of width-t with root "/" in the namespace of pid. */
static int no_root_member(pid_t pid)
{
	int n = mnt_read_info(pid, mnt_lines, MNT_MAX_LINES), i;

	for (i = 0; i < n; i++)
		if (!strcmp(mnt_lines[i].source, "width-t") && !strcmp(mnt_lines[i].root, "/"))
			return 0;
	return n < 0 ? 0 : 1;
}

static int check(const char *when, char before[][MNT_MAX_MEMBERS + 1],
		 char got[][MNT_MAX_MEMBERS + 1])
{
	struct mnt_line l[N];
	int i, bad = 0, g1, g2;

	for (i = 0; i < N; i++) {
		errno = 0;
		if (mnt_find(members[i].srv->pid, members[i].path, "width-t", &l[i]) != 1) {
			fail("%s: %s: no mount of width-t at %s", when, members[i].name,
			     members[i].path);
			return 1;
		}
		test_msg("%s: %s: root %s %s\n", when, members[i].name, l[i].root, l[i].tags);
		if (strcmp(l[i].root, roots[i])) {
			fail("%s: %s: root %s, not %s", when, members[i].name, l[i].root, roots[i]);
			bad = 1;
		}
	}
	g1 = mnt_tag(&l[0], "shared");
	g2 = mnt_tag(&l[2], "shared");
	errno = 0;
	if (!g1 || !g2 || g1 == g2 ||
	    mnt_tag(&l[1], "shared") != g1 || mnt_tag(&l[3], "shared") != g1 ||
	    mnt_tag(&l[5], "shared") != g1 || mnt_tag(&l[4], "shared") != g2 ||
	    mnt_tag(&l[6], "shared") || mnt_tag(&l[0], "master") || mnt_tag(&l[1], "master") ||
	    mnt_tag(&l[3], "master") || mnt_tag(&l[5], "master") ||
	    mnt_tag(&l[2], "master") != g1 || mnt_tag(&l[4], "master") != g1 ||
	    mnt_tag(&l[6], "master") != g1) {
		fail("%s: the groups are not G1 = {A:w1 A:w2 B:w1 C:w2}, G2 = {A:s1 B:s1} "
		     "slave of G1, C:s2 slave of G1", when);
		bad = 1;
	}
	if (!no_root_member(ns_a.pid) || !no_root_member(ns_b.pid) ||
	    !no_root_member(ns_c.pid)) {
		fail("%s: a mount of the root of width-t", when);
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
	if (mnt_tmpfs("width-t", mp("%s/t", mnt_dir), 0, "size=1m,mode=755") ||
	    mnt_mkdirs(mp("%s/t/sub1/probe", mnt_dir), 0755) ||
	    mnt_mkdirs(mp("%s/t/sub2/probe", mnt_dir), 0755) ||
	    mnt_share(mp("%s/t", mnt_dir)) ||
	    mnt_bind(mp("%s/t/sub1", mnt_dir), mp("%s/w1", mnt_dir), 0) ||
	    mnt_bind(mp("%s/t/sub2", mnt_dir), mp("%s/w2", mnt_dir), 0) ||
	    mnt_bind(mp("%s/w1", mnt_dir), mp("%s/s1", mnt_dir), 0) ||
	    mnt_slave(mp("%s/s1", mnt_dir)) || mnt_share(mp("%s/s1", mnt_dir)) ||
	    mnt_mkdirs(mp("%s/s2", mnt_dir), 0755))
		return 1;

	mnt_srv_self(&ns_a, "A", NULL);
	if (mnt_srv_init(&ns_b, "B", NULL, NULL) || mnt_srv_start(&ns_b, 1, setup_b, NULL) ||
	    mnt_srv_init(&ns_c, "C", NULL, NULL) || mnt_srv_start(&ns_c, 1, setup_c, NULL))
		return 1;
	if (umount2(mp("%s/t", mnt_dir), 0)) {
		pr_perror("umount T");
		return 1;
	}
	members[0] = (struct mnt_member){ "A:w1", &ns_a, strdup(mp("%s/w1", mnt_dir)) };
	members[1] = (struct mnt_member){ "A:w2", &ns_a, strdup(mp("%s/w2", mnt_dir)) };
	members[2] = (struct mnt_member){ "A:s1", &ns_a, strdup(mp("%s/s1", mnt_dir)) };
	members[3] = (struct mnt_member){ "B:w1", &ns_b, strdup(mp("%s/w1", mnt_dir)) };
	members[4] = (struct mnt_member){ "B:s1", &ns_b, strdup(mp("%s/s1", mnt_dir)) };
	members[5] = (struct mnt_member){ "C:w2", &ns_c, strdup(mp("%s/w2", mnt_dir)) };
	members[6] = (struct mnt_member){ "C:s2", &ns_c, strdup(mp("%s/s2", mnt_dir)) };

	return mnt_around(check_when, "the peer group of subtrees did not hold");
}
