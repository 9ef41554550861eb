/*
 * Several mount namespaces in one tree, one of them shared by two processes:
 *
 *   main  ns A: a tmpfs "ns-a" at D/ma
 *   P1    ns B (unshared): a tmpfs "ns-b" at D/mb; it forks P2
 *   P2    ns B (inherited from P1): a tmpfs "ns-b2" at D/mb2
 *   P3    ns C (unshared from A before A mounted anything): a tmpfs "ns-c" at D/mc
 *
 * Before the dump and after the restore: the /proc/<pid>/ns/mnt inodes of P1 and P2 are
 * equal and those of A, B and C differ; each process sees exactly its namespace's mounts
 * of the four (mountinfo, and the marker file each tmpfs holds); and B is really one
 * namespace: a tmpfs P2 mounts then shows in P1's mountinfo (and not in A's or C's), and
 * goes away from it when P2 unmounts it.
 */
#include "mntcheck.h"

const char *test_doc = "four processes in three mount namespaces, two of them sharing one; "
		       "each sees its own mounts";

static struct mnt_srv ns_a, p1, p2, p3;

#define NP 4
#define NM 4
static struct mnt_srv *procs[NP] = { &ns_a, &p1, &p2, &p3 };
static const char *const mounts[NM] = { "ns-a", "ns-b", "ns-b2", "ns-c" };
static const char *const points[NM] = { "ma", "mb", "mb2", "mc" };
/* which process sees which mount */
static const char *const sees[NP] = { "1000", "0110", "0110", "0001" };

static int mount_marked(const char *source, const char *point)
{
	return mnt_tmpfs(source, mp("%s/%s", mnt_dir, point), 0, "size=1m,mode=755") ||
	       mnt_write_file(mp("%s/%s/marker", mnt_dir, point), source, 0644);
}

static int setup_p2(struct mnt_srv *s, void *arg)
{
	(void)s;
	(void)arg;
	return mount_marked("ns-b2", "mb2");
}

static int setup_p1(struct mnt_srv *s, void *arg)
{
	(void)s;
	(void)arg;
	if (mount_marked("ns-b", "mb") || mnt_srv_start(&p2, 0, setup_p2, NULL))
		return -1;
	mnt_srv_started_for_main(&p2);
	return 0;
}

static int setup_p3(struct mnt_srv *s, void *arg)
{
	(void)s;
	(void)arg;
	return mount_marked("ns-c", "mc");
}

static int check(const char *when)
{
	unsigned long ino[NP];
	int i, j, bad = 0;
	char buf[1024];

	for (i = 0; i < NP; i++) {
		ino[i] = mnt_ns_ino(procs[i]->pid);
		if (!ino[i])
			return 1;
	}
	errno = 0;
	if (ino[1] != ino[2] || ino[0] == ino[1] || ino[0] == ino[3] || ino[1] == ino[3]) {
		fail("%s: mount namespaces A %lu, P1 %lu, P2 %lu, P3 %lu: not A, B, B, C", when,
		     ino[0], ino[1], ino[2], ino[3]);
		bad = 1;
	}
	for (i = 0; i < NP; i++) {
		for (j = 0; j < NM; j++) {
			const char *point = mp("%s/%s", mnt_dir, points[j]);
			int vis = mnt_visible(procs[i]->pid, point, mounts[j]);
			int want = sees[i][j] == '1';
			int rd = srv_read(procs[i], mp("%s/marker", point), buf);

			errno = 0;
			if (vis != want) {
				fail("%s: %s %s %s at %s", when, procs[i]->name,
				     vis ? "sees" : "does not see", mounts[j], point);
				bad = 1;
			}
			if (want && (rd || strcmp(buf, mounts[j]))) {
				fail("%s: %s reads no marker \"%s\" in %s", when, procs[i]->name,
				     mounts[j], point);
				bad = 1;
			} else if (!want && !rd) {
				fail("%s: %s reads a marker \"%s\" in %s", when, procs[i]->name, buf,
				     point);
				bad = 1;
			}
		}
	}

	/* B is one namespace: what P2 mounts now, P1 sees, and A and P3 do not */
	if (srv_mount(&p2, "ns-live", mp("%s/live", mnt_dir), "tmpfs", 0, "size=64k")) {
		fail("%s: P2: mount ns-live at %s/live", when, mnt_dir);
		return 1;
	}
	errno = 0;
	if (mnt_visible(p1.pid, mp("%s/live", mnt_dir), "ns-live") != 1 ||
	    mnt_visible(p2.pid, mp("%s/live", mnt_dir), "ns-live") != 1 ||
	    mnt_visible(ns_a.pid, mp("%s/live", mnt_dir), "ns-live") != 0 ||
	    mnt_visible(p3.pid, mp("%s/live", mnt_dir), "ns-live") != 0) {
		fail("%s: a tmpfs P2 mounted does not show in P1 only", when);
		bad = 1;
	}
	if (srv_umount(&p2, mp("%s/live", mnt_dir), 0)) {
		fail("%s: P2: umount %s/live", when, mnt_dir);
		return 1;
	}
	errno = 0;
	if (mnt_visible(p1.pid, mp("%s/live", mnt_dir), NULL) != 0) {
		fail("%s: P1 still sees what P2 unmounted", when);
		bad = 1;
	}
	return bad;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (mnt_prepare() || mnt_mkdirs(mp("%s/live", mnt_dir), 0755))
		return 1;
	mnt_srv_self(&ns_a, "A", NULL);
	if (mnt_srv_init(&p1, "P1", NULL, NULL) || mnt_srv_init(&p2, "P2", &p1, NULL) ||
	    mnt_srv_start(&p1, 1, setup_p1, NULL) || mnt_srv_adopt(&p2) ||
	    mnt_srv_init(&p3, "P3", NULL, NULL) || mnt_srv_start(&p3, 1, setup_p3, NULL))
		return 1;
	if (mount_marked("ns-a", "ma"))
		return 1;

	return mnt_around(check, "the mount namespaces did not hold");
}
