/*
 * Processes whose root is not their namespace's:
 *
 *   X  unshares its mount namespace, pivot_roots into a tmpfs ("pivot-root", holding
 *      marker "pivot"), detaches the old root, and mounts a tmpfs "pivot-sub" at /sub:
 *      its namespace holds those two mounts only
 *   Y  unshares its mount namespace, mounts a tmpfs "jail-fs" at D/jail (inner/marker
 *      "inner", outside "outside") with a tmpfs "jail-sub" at D/jail/inner/sub, and
 *      chroots into D/jail/inner
 *
 * Before the dump and after the restore: X's mountinfo is exactly "/" (pivot-root) and
 * "/sub" (pivot-sub), its /marker reads "pivot" and /.. is / ; Y's /marker reads
 * "inner", /.. is / and /../outside is not there, its mountinfo (relative to its root)
 * shows jail-sub at /sub and no mount point outside its root; both namespaces differ
 * from the main program's and each other's; and each still works: a tmpfs X or Y mounts
 * at /live shows in its mountinfo at /live and goes away with its umount.
 */
#include "mntcheck.h"

const char *test_doc = "a process pivot_root-ed into a tmpfs of its own namespace, another "
		       "chrooted into a subdirectory of its namespace";

static struct mnt_srv ns_main, px, py;

static int setup_x(struct mnt_srv *s, void *arg)
{
	const char *root = mp("%s/newroot", mnt_dir);

	(void)s;
	(void)arg;
	if (mnt_tmpfs("pivot-root", root, 0, "size=1m,mode=755") ||
	    mnt_write_file(mp("%s/marker", root), "pivot", 0644) ||
	    mkdir(mp("%s/old", root), 0700) || mkdir(mp("%s/live", root), 0755))
		return -1;
	if (chdir(root) || syscall(SYS_pivot_root, ".", "old") || chdir("/") ||
	    umount2("/old", MNT_DETACH) || rmdir("/old")) {
		pr_perror("X: pivot_root into %s", root);
		return -1;
	}
	return mnt_tmpfs("pivot-sub", "/sub", 0, "size=1m,mode=755") ||
	       mnt_write_file("/sub/marker", "sub", 0644);
}

static int setup_y(struct mnt_srv *s, void *arg)
{
	const char *jail = mp("%s/jail", mnt_dir);

	(void)s;
	(void)arg;
	if (mnt_tmpfs("jail-fs", jail, 0, "size=1m,mode=755") ||
	    mnt_mkdirs(mp("%s/inner/live", jail), 0755) ||
	    mnt_write_file(mp("%s/inner/marker", jail), "inner", 0644) ||
	    mnt_write_file(mp("%s/outside", jail), "outside", 0644) ||
	    mnt_tmpfs("jail-sub", mp("%s/inner/sub", jail), 0, "size=1m,mode=755") ||
	    mnt_write_file(mp("%s/inner/sub/marker", jail), "jail-sub", 0644))
		return -1;
	if (chroot(mp("%s/inner", jail)) || chdir("/")) {
		pr_perror("Y: chroot into %s/inner", jail);
		return -1;
	}
	return 0;
}

/* / and /.. of the server are the same directory */
static int root_closed(const char *when, struct mnt_srv *s)
{
	struct stat a, b;

	if (srv_stat(s, "/", &a) || srv_stat(s, "/..", &b)) {
		fail("%s: %s: stat / and /..", when, s->name);
		return 1;
	}
	errno = 0;
	if (a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		fail("%s: %s: /.. is not /", when, s->name);
		return 1;
	}
	return 0;
}

static int expect_read(const char *when, struct mnt_srv *s, const char *path, const char *want)
{
	char buf[1024];

	if (srv_read(s, path, buf) || strcmp(buf, want)) {
		fail("%s: %s: %s does not read \"%s\"", when, s->name, path, want);
		return 1;
	}
	return 0;
}

/* What the server mounts at /live shows at /live in its mountinfo, and goes. */
static int live(const char *when, struct mnt_srv *s)
{
	if (srv_mount(s, "live", "/live", "tmpfs", 0, "size=64k")) {
		fail("%s: %s: mount at /live", when, s->name);
		return 1;
	}
	errno = 0;
	if (mnt_visible(s->pid, "/live", "live") != 1) {
		fail("%s: %s: what it mounted at /live does not show there", when, s->name);
		srv_umount(s, "/live", MNT_DETACH);
		return 1;
	}
	if (srv_umount(s, "/live", 0) || mnt_visible(s->pid, "/live", NULL) != 0) {
		fail("%s: %s: umount /live", when, s->name);
		return 1;
	}
	return 0;
}

static int check(const char *when)
{
	struct mnt_line lines[8];
	int bad = 0, n, i;
	char buf[1024];

	errno = 0;
	if (mnt_ns_ino(ns_main.pid) == mnt_ns_ino(px.pid) ||
	    mnt_ns_ino(ns_main.pid) == mnt_ns_ino(py.pid) ||
	    mnt_ns_ino(px.pid) == mnt_ns_ino(py.pid)) {
		fail("%s: the main program, X and Y do not have three mount namespaces", when);
		bad = 1;
	}

	/* X */
	n = mnt_read_info(px.pid, lines, 8);
	errno = 0;
	if (n != 2 || strcmp(lines[0].point, "/") || strcmp(lines[0].source, "pivot-root") ||
	    strcmp(lines[0].root, "/") || strcmp(lines[1].point, "/sub") ||
	    strcmp(lines[1].source, "pivot-sub") || lines[1].parent != lines[0].id) {
		fail("%s: X's mountinfo is not / (pivot-root) and /sub (pivot-sub) only", when);
		for (i = 0; i < n; i++)
			test_msg("%s: X: %s %s %s\n", when, lines[i].root, lines[i].point,
				 lines[i].source);
		bad = 1;
	}
	bad |= expect_read(when, &px, "/marker", "pivot");
	bad |= expect_read(when, &px, "/sub/marker", "sub");
	bad |= root_closed(when, &px);
	bad |= live(when, &px);

	/* Y */
	bad |= expect_read(when, &py, "/marker", "inner");
	bad |= expect_read(when, &py, "/sub/marker", "jail-sub");
	bad |= root_closed(when, &py);
	if (srv_read(&py, "/../outside", buf) == 0 || errno != ENOENT) {
		fail("%s: Y: /../outside is there (or not ENOENT)", when);
		bad = 1;
	}
	n = mnt_read_info(py.pid, mnt_lines, MNT_MAX_LINES);
	for (i = 0; i < n; i++)
		if (mnt_lines[i].point[0] != '/' || !strcmp(mnt_lines[i].source, "jail-fs")) {
			errno = 0;
			fail("%s: Y's mountinfo shows %s at %s, outside its root", when,
			     mnt_lines[i].source, mnt_lines[i].point);
			bad = 1;
		}
	errno = 0;
	if (n < 0 || mnt_visible(py.pid, "/sub", "jail-sub") != 1) {
		fail("%s: Y's mountinfo has no jail-sub at /sub", when);
		bad = 1;
	}
	bad |= live(when, &py);
	return bad;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (mnt_prepare())
		return 1;
	mnt_srv_self(&ns_main, "main", NULL);
	if (mnt_srv_init(&px, "X", NULL, NULL) || mnt_srv_start(&px, 1, setup_x, NULL) ||
	    mnt_srv_init(&py, "Y", NULL, NULL) || mnt_srv_start(&py, 1, setup_y, NULL)) {
		mnt_srv_quit_all();
		return 1;
	}
	return mnt_around(check, "pivot_root and chroot did not hold");
}
