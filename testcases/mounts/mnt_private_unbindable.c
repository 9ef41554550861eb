/*
 * Private and unbindable mounts:
 *
 *   D/tree      a tmpfs ("pu-tree") with two submounts:
 *   D/tree/sub  a tmpfs ("pu-sub"), private;
 *   D/tree/unb  a tmpfs ("pu-unb"), unbindable;
 *   D/s         a tmpfs ("pu-s") made shared;
 *   D/priv      a bind of D/s made private (it leaves S's group);
 *   D/sl        a bind of D/s made slave (it receives from S's group).
 *
 * Before the dump and after the restore: mountinfo says "unbindable" of D/tree/unb and
 * nothing of D/priv; a bind of D/tree/unb fails with EINVAL; a recursive bind of D/tree
 * (at D/rb, taken away again) copies D/tree/sub but not D/tree/unb; the propagation
 * matrix of S, the private bind and the slave: S sends to the slave only, the private
 * bind and the slave send nowhere.
 */
#include "mntcheck.h"

const char *test_doc = "a private and an unbindable mount: a bind of the unbindable fails, "
		       "a recursive bind skips it, the private receives nothing";

static struct mnt_srv self;

#define N 3
static struct mnt_member members[N];
static const char *const expected[N] = { "101", "010", "001" };
static char rows_before[N][MNT_MAX_MEMBERS + 1], rows_after[N][MNT_MAX_MEMBERS + 1];

static int check(const char *when, char before[][MNT_MAX_MEMBERS + 1],
		 char got[][MNT_MAX_MEMBERS + 1])
{
	const char *unb = mp("%s/tree/unb", mnt_dir), *rb = mp("%s/rb", mnt_dir);
	struct mnt_line l = { 0 };
	int bad = 0;

	errno = 0;
	if (mnt_find(0, unb, "pu-unb", &l) != 1 || strcmp(l.tags, "unbindable")) {
		fail("%s: %s is not an unbindable mount (\"%s\")", when, unb, l.tags);
		bad = 1;
	}
	if (mnt_find(0, mp("%s/tree/sub", mnt_dir), "pu-sub", &l) != 1 || l.tags[0]) {
		fail("%s: %s/tree/sub is not a private mount (\"%s\")", when, mnt_dir, l.tags);
		bad = 1;
	}
	if (mnt_find(0, mp("%s/priv", mnt_dir), "pu-s", &l) != 1 || l.tags[0]) {
		fail("%s: %s/priv is not a private mount (\"%s\")", when, mnt_dir, l.tags);
		bad = 1;
	}

	/* a bind of the unbindable mount: EINVAL */
	if (mount(unb, mp("%s/x", mnt_dir), NULL, MS_BIND, NULL) == 0) {
		errno = 0;
		fail("%s: a bind of the unbindable %s worked", when, unb);
		umount2(mp("%s/x", mnt_dir), MNT_DETACH);
		bad = 1;
	} else if (errno != EINVAL) {
		fail("%s: a bind of the unbindable %s: not EINVAL", when, unb);
		bad = 1;
	}
	/* ... and recursively, it is left out */
	if (mount(mp("%s/tree", mnt_dir), rb, NULL, MS_BIND | MS_REC, NULL)) {
		fail("%s: rbind %s/tree at %s", when, mnt_dir, rb);
		return 1;
	}
	errno = 0;
	if (mnt_visible(0, mp("%s/sub", rb), "pu-sub") != 1) {
		fail("%s: the rbind did not copy the submount at sub", when);
		bad = 1;
	}
	if (mnt_visible(0, mp("%s/unb", rb), NULL) != 0) {
		fail("%s: the rbind copied the unbindable submount", when);
		bad = 1;
	}
	if (mnt_expect_file(mp("%s/marker", rb), "tree") ||
	    mnt_expect_file(mp("%s/sub/marker", rb), "sub"))
		bad = 1;
	if (umount2(rb, MNT_DETACH) || mnt_visible(0, rb, NULL) ||
	    mnt_visible(0, mp("%s/sub", rb), NULL)) {
		fail("%s: taking the rbind away", when);
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
	if (mnt_tmpfs("pu-tree", mp("%s/tree", mnt_dir), 0, "size=1m,mode=755") ||
	    mnt_write_file(mp("%s/tree/marker", mnt_dir), "tree", 0644) ||
	    mnt_tmpfs("pu-sub", mp("%s/tree/sub", mnt_dir), 0, "size=1m,mode=755") ||
	    mnt_write_file(mp("%s/tree/sub/marker", mnt_dir), "sub", 0644) ||
	    mnt_tmpfs("pu-unb", mp("%s/tree/unb", mnt_dir), 0, "size=1m,mode=755") ||
	    mnt_unbindable(mp("%s/tree/unb", mnt_dir)) ||
	    mnt_tmpfs("pu-s", mp("%s/s", mnt_dir), 0, "size=1m,mode=755") ||
	    mkdir(mp("%s/s/probe", mnt_dir), 0755) || mnt_share(mp("%s/s", mnt_dir)) ||
	    mnt_bind(mp("%s/s", mnt_dir), mp("%s/priv", mnt_dir), 0) ||
	    mnt_private(mp("%s/priv", mnt_dir)) ||
	    mnt_bind(mp("%s/s", mnt_dir), mp("%s/sl", mnt_dir), 0) ||
	    mnt_slave(mp("%s/sl", mnt_dir)) || mnt_mkdirs(mp("%s/x", mnt_dir), 0755) ||
	    mnt_mkdirs(mp("%s/rb", mnt_dir), 0755))
		return 1;

	mnt_srv_self(&self, "self", NULL);
	members[0] = (struct mnt_member){ "s", &self, strdup(mp("%s/s", mnt_dir)) };
	members[1] = (struct mnt_member){ "priv", &self, strdup(mp("%s/priv", mnt_dir)) };
	members[2] = (struct mnt_member){ "sl", &self, strdup(mp("%s/sl", mnt_dir)) };

	return mnt_around(check_when, "private and unbindable mounts did not hold");
}
