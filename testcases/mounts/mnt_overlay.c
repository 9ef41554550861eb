/*
 * An overlay, its layers, and a process that uses files of it:
 *
 *   D/low     tmpfs "ovl-low" with two lower layers, directories l1 (the upper one of
 *             the two) and l2:
 *               l1: a, both ("l1-both"), mod, gone, priv (a page), link -> a, sub/s1
 *               l2: b, both ("l2-both"), rw (two pages), map (two pages), opq/old1,
 *                   opq/old2, sub/s2, late-before, late-after
 *   D/up      tmpfs "ovl-up": upper/ (holding up-only before the mount) and work/
 *   D/merged  overlay "ovl-merged", lowerdir=D/low/l1:D/low/l2,upperdir=D/up/upper,
 *             workdir=D/up/work (absolute paths; userxattr in a user namespace)
 *
 * Through the overlay before the dump: mod appended to (copy-up), gone unlinked
 * (whiteout), opq removed and made again with new1 in it (opaque directory), newfile
 * created; rw opened read-write (copy-up) and kept open at an offset, written through
 * the fd and through a MAP_SHARED read-write mapping; map mapped MAP_SHARED read-only;
 * priv mapped MAP_PRIVATE and written in memory only.
 *
 * Before the dump and after the restore:
 *   - mountinfo has one overlay at D/merged, of source ovl-merged, with the lowerdir,
 *     upperdir and workdir strings as mounted and the super options as before;
 *   - the merged view lists exactly what is expected (both from l1, sub merging s1 and
 *     s2, no gone, opq holding only new1) with the expected contents; link points to a;
 *   - the layers: l1/l2 unchanged (mod, gone, opq/old* still there), the upper holds the
 *     copies, the whiteout (a char device 0:0) and the opaque xattr (trusted.overlay.
 *     or user.overlay.opaque = "y");
 *   - the fd: /proc/self/fd names D/merged/rw, its fdinfo mnt_id is the overlay's, its
 *     fstat is stat() of the path, its offset is kept, it reads what the path reads, and
 *     a write through it is seen through the path;
 *   - the mappings: /proc/self/maps names the overlay paths (dev and inode as they related
 *     to the overlay's before the dump), the shared ones show the file's data and a write
 *     through the read-write one reaches the file, the private one keeps its own page
 *     while the file does not change (and is not copied up);
 *   - a new copy-up works (late-<when> appended to).
 */
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "mntcheck.h"

const char *test_doc = "an overlay of two lower layers and a tmpfs upper with a copy-up, "
		       "a whiteout, an opaque directory, an fd open read-write and mappings";

#define PAGE 4096
#define SOURCE "ovl-merged"

static int in_userns;
static char opts[4096];			/* the mount's data */
static char lowerdir[1024], upperdir[512], workdir[512];

static int rw_fd = -1;
static off_t rw_off;
static char rw_shadow[2 * PAGE];	/* what rw must hold */
static char *rw_map, *map_map, *priv_map;

/* what /proc/self/maps said before the dump, per mapping */
struct maps_rel {
	const char *name;
	char **addr;
	int seen, dev_is_ovl, ino_is_fstat;
};

static struct maps_rel maps_rels[] = {
	{ "rw", &rw_map },
	{ "map", &map_map },
	{ "priv", &priv_map },
};

struct file {
	const char *path;		/* in the merged view */
	const char *data;		/* NULL: checked elsewhere (the mapped files) */
};

/* the merged view: directories and their exact listings, then file contents */
static const char *const dirs[][2] = {
	{ "", "a b both late-after late-before link map mod newfile opq priv rw sub up-only" },
	{ "sub", "s1 s2" },
	{ "opq", "new1" },
};

static const struct file files[] = {
	{ "a", "l1-a" },
	{ "b", "l2-b" },
	{ "both", "l1-both" },
	{ "mod", "l1-mod+upper" },
	{ "newfile", "new through the overlay" },
	{ "up-only", "in the upper before the mount" },
	{ "sub/s1", "l1-s1" },
	{ "sub/s2", "l2-s2" },
	{ "opq/new1", "made in the opaque dir" },
	{ "link", "l1-a" },		/* through the symlink */
};

static const char *at(const char *rel)
{
	return rel[0] ? mp("%s/%s", mnt_dir, rel) : mnt_dir;
}

static const char *merged(const char *rel)
{
	return rel[0] ? mp("%s/merged/%s", mnt_dir, rel) : mp("%s/merged", mnt_dir);
}

static const char *xattr_prefix(void)
{
	return in_userns ? "user.overlay." : "trusted.overlay.";
}

static char pattern(const char *name, int off)
{
	return 'a' + (name[0] * 7 + off * 3 + off / PAGE) % 26;
}

static int make_pattern_file(const char *path, const char *name, int size)
{
	char buf[2 * PAGE + 1];
	int i;

	for (i = 0; i < size; i++)
		buf[i] = pattern(name, i);
	buf[size] = 0;
	return mnt_write_file(path, buf, 0644);
}

/* The whole of a file (up to size bytes) into buf; its length or -1. */
static ssize_t read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = pread(fd, buf, size, 0);
	close(fd);
	return n;
}

/* ---- mountinfo ------------------------------------------------------------------------ */

/* The value of key= in a comma-separated option list, into out ("" when absent). */
static void opt_value(const char *list, const char *key, char *out, size_t size)
{
	size_t len = strlen(key);
	const char *p = list, *end;

	out[0] = 0;
	while (*p) {
		end = strchrnul(p, ',');
		if (!strncmp(p, key, len) && p[len] == '=') {
			snprintf(out, size, "%.*s", (int)(end - p - len - 1), p + len + 1);
			return;
		}
		p = *end ? end + 1 : end;
	}
}

static char super_before[1024];

/* The overlay's line; 0 when it is there alone and as mounted. */
static int check_mountinfo(const char *when, struct mnt_line *out)
{
	int n = mnt_read_info(0, mnt_lines, MNT_MAX_LINES), i, novl = 0, bad = 0;
	struct mnt_line *l = NULL;
	char v[1024];

	if (n < 0)
		return 1;
	for (i = 0; i < n; i++)
		if (!strcmp(mnt_lines[i].point, merged(""))) {
			novl++;
			l = &mnt_lines[i];
		}
	errno = 0;
	if (novl != 1 || strcmp(l->fstype, "overlay") || strcmp(l->source, SOURCE)) {
		fail("%s: %d mounts at %s, not one overlay of source %s (%s %s)", when, novl,
		     merged(""), SOURCE, l ? l->fstype : "-", l ? l->source : "-");
		return 1;
	}
	*out = *l;
	test_msg("%s: %s %s %s\n", when, l->fstype, l->source, l->super);
	opt_value(l->super, "lowerdir", v, sizeof(v));
	if (strcmp(v, lowerdir)) {
		fail("%s: lowerdir=%s, mounted with %s", when, v, lowerdir);
		bad = 1;
	}
	opt_value(l->super, "upperdir", v, sizeof(v));
	if (strcmp(v, upperdir)) {
		fail("%s: upperdir=%s, mounted with %s", when, v, upperdir);
		bad = 1;
	}
	opt_value(l->super, "workdir", v, sizeof(v));
	if (strcmp(v, workdir)) {
		fail("%s: workdir=%s, mounted with %s", when, v, workdir);
		bad = 1;
	}
	if (in_userns && !mnt_has_opt(l->super, "userxattr")) {
		fail("%s: no userxattr in %s", when, l->super);
		bad = 1;
	}
	if (!super_before[0])
		snprintf(super_before, sizeof(super_before), "%s", l->super);
	if (strcmp(l->super, super_before)) {
		fail("%s: super options %s, before the dump %s", when, l->super, super_before);
		bad = 1;
	}
	return bad;
}

/* ---- the merged view and the layers ----------------------------------------------------- */

static int check_view(const char *when)
{
	char got[1024], buf[64];
	unsigned i;
	int bad = 0;
	ssize_t n;

	for (i = 0; i < ARRAY_SIZE(dirs); i++) {
		errno = 0;
		if (mnt_listdir(merged(dirs[i][0]), got, sizeof(got)) || strcmp(got, dirs[i][1])) {
			fail("%s: merged/%s lists \"%s\", expected \"%s\"", when, dirs[i][0], got,
			     dirs[i][1]);
			bad = 1;
		}
	}
	for (i = 0; i < ARRAY_SIZE(files); i++)
		if (mnt_expect_file(merged(files[i].path), files[i].data)) {
			fail("%s: merged/%s", when, files[i].path);
			bad = 1;
		}
	n = readlink(merged("link"), buf, sizeof(buf) - 1);
	if (n < 0 || (buf[n] = 0, strcmp(buf, "a"))) {
		fail("%s: merged/link points to \"%s\", not \"a\"", when, n < 0 ? "" : buf);
		bad = 1;
	}
	/* the whiteout and the opaque directory hide the lower entries */
	if (!access(merged("gone"), F_OK) || errno != ENOENT || !access(merged("opq/old1"), F_OK) ||
	    errno != ENOENT) {
		fail("%s: merged/gone or merged/opq/old1 is not ENOENT", when);
		bad = 1;
	}
	return bad;
}

static int check_layers(const char *when)
{
	static const char *const lower[][2] = {
		{ "low/l1/mod", "l1-mod" },
		{ "low/l1/gone", "l1-gone" },
		{ "low/l1/both", "l1-both" },
		{ "low/l2/both", "l2-both" },
		{ "low/l2/opq/old1", "l2-old1" },
		{ "low/l2/opq/old2", "l2-old2" },
		{ "up/upper/mod", "l1-mod+upper" },
		{ "up/upper/newfile", "new through the overlay" },
		{ "up/upper/up-only", "in the upper before the mount" },
		{ "up/upper/opq/new1", "made in the opaque dir" },
	};
	char val[16], list[256];
	struct stat st;
	unsigned i;
	ssize_t n;
	int bad = 0;

	for (i = 0; i < ARRAY_SIZE(lower); i++)
		if (mnt_expect_file(at(lower[i][0]), lower[i][1])) {
			fail("%s: %s", when, lower[i][0]);
			bad = 1;
		}
	errno = 0;
	if (lstat(at("up/upper/gone"), &st) || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(0, 0)) {
		fail("%s: up/upper/gone is not a whiteout (mode %o, %u:%u)", when, st.st_mode,
		     major(st.st_rdev), minor(st.st_rdev));
		bad = 1;
	}
	n = lgetxattr(at("up/upper/opq"), mp("%sopaque", xattr_prefix()), val, sizeof(val));
	if (n != 1 || val[0] != 'y') {
		fail("%s: up/upper/opq: %sopaque is not \"y\"", when, xattr_prefix());
		bad = 1;
	}
	if (mnt_listdir(at("up/upper/opq"), list, sizeof(list)) || strcmp(list, "new1")) {
		fail("%s: up/upper/opq lists \"%s\", not \"new1\"", when, list);
		bad = 1;
	}
	/* priv is only mapped privately: never copied up */
	errno = 0;
	if (!access(at("up/upper/priv"), F_OK) || errno != ENOENT) {
		fail("%s: priv was copied up", when);
		bad = 1;
	}
	if (stat(at("up/work/work"), &st) || !S_ISDIR(st.st_mode)) {
		fail("%s: no directory up/work/work", when);
		bad = 1;
	}
	return bad;
}

/* late-<when> copied up by an append; late-before stays copied up */
static int check_late_copy_up(const char *when)
{
	const char *name = mp("late-%s", when);
	int fd, bad = 0;

	if (!strcmp(when, "after") && (mnt_expect_file(merged("late-before"), "l2-late+before") ||
				       mnt_expect_file(at("up/upper/late-before"), "l2-late+before")))
		bad = 1;
	if (mnt_expect_file(merged(name), "l2-late"))
		return 1;
	fd = open(merged(name), O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0 || write(fd, mp("+%s", when), strlen(when) + 1) != (ssize_t)strlen(when) + 1) {
		fail("%s: append to merged/%s", when, name);
		if (fd >= 0)
			close(fd);
		return 1;
	}
	close(fd);
	if (mnt_expect_file(merged(name), mp("l2-late+%s", when)) ||
	    mnt_expect_file(at(mp("up/upper/%s", name)), mp("l2-late+%s", when)) ||
	    mnt_expect_file(at(mp("low/l2/%s", name)), "l2-late")) {
		fail("%s: the copy-up of %s", when, name);
		bad = 1;
	}
	return bad;
}

/* ---- the fd and the mappings -------------------------------------------------------------- */

static int check_fd(const char *when, const struct mnt_line *ovl)
{
	char buf[2 * PAGE + 1], link[512], fdinfo[512], *p;
	const char *marker = mp("<fd %s>", when);
	struct stat fst, pst;
	int bad = 0, mnt_id = -1;
	ssize_t n;
	off_t off;

	n = readlink(mp("/proc/self/fd/%d", rw_fd), link, sizeof(link) - 1);
	if (n < 0 || (link[n] = 0, strcmp(link, merged("rw")))) {
		fail("%s: the fd names \"%s\", not %s", when, n < 0 ? "" : link, merged("rw"));
		bad = 1;
	}
	if (read_whole(mp("/proc/self/fdinfo/%d", rw_fd), fdinfo, sizeof(fdinfo)) < 0 ||
	    !(p = strstr(fdinfo, "mnt_id:")) || sscanf(p, "mnt_id: %d", &mnt_id) != 1 ||
	    mnt_id != ovl->id) {
		fail("%s: the fd's mnt_id is %d, not the overlay's %d", when, mnt_id, ovl->id);
		bad = 1;
	}
	if (fstat(rw_fd, &fst) || stat(merged("rw"), &pst) || fst.st_dev != pst.st_dev ||
	    fst.st_ino != pst.st_ino) {
		fail("%s: fstat of the fd is %u:%u %lu, stat of merged/rw %u:%u %lu", when,
		     major(fst.st_dev), minor(fst.st_dev), (unsigned long)fst.st_ino,
		     major(pst.st_dev), minor(pst.st_dev), (unsigned long)pst.st_ino);
		bad = 1;
	}
	off = lseek(rw_fd, 0, SEEK_CUR);
	errno = 0;
	if (off != rw_off) {
		fail("%s: the fd's offset is %ld, not %ld", when, (long)off, (long)rw_off);
		bad = 1;
	}
	n = pread(rw_fd, buf, sizeof(buf), 0);
	if (n != sizeof(rw_shadow) || memcmp(buf, rw_shadow, sizeof(rw_shadow))) {
		fail("%s: the fd reads %zd bytes, not what was written", when, n);
		bad = 1;
	}
	n = read_file(merged("rw"), buf, sizeof(buf));
	if (n != sizeof(rw_shadow) || memcmp(buf, rw_shadow, sizeof(rw_shadow))) {
		fail("%s: merged/rw reads %zd bytes, not what was written", when, n);
		bad = 1;
	}
	if (memcmp(rw_map, rw_shadow, sizeof(rw_shadow))) {
		fail("%s: the shared mapping of rw does not show the file", when);
		bad = 1;
	}
	if (bad)
		return 1;

	/* a write through the fd, at its offset, is seen through the path */
	if (write(rw_fd, marker, strlen(marker)) != (ssize_t)strlen(marker)) {
		fail("%s: write through the fd", when);
		return 1;
	}
	memcpy(rw_shadow + rw_off, marker, strlen(marker));
	rw_off += strlen(marker);
	/* and one through the shared mapping, on its second page */
	marker = mp("<map %s>", when);
	memcpy(rw_map + PAGE + 64 + 32 * !strcmp(when, "after"), marker, strlen(marker));
	memcpy(rw_shadow + PAGE + 64 + 32 * !strcmp(when, "after"), marker, strlen(marker));
	n = read_file(merged("rw"), buf, sizeof(buf));
	if (n != sizeof(rw_shadow) || memcmp(buf, rw_shadow, sizeof(rw_shadow))) {
		fail("%s: merged/rw does not show the writes through the fd and the mapping", when);
		return 1;
	}
	if (lseek(rw_fd, 0, SEEK_CUR) != rw_off) {
		fail("%s: the offset did not move with the write", when);
		return 1;
	}
	return 0;
}

/* The /proc/self/maps line of a mapping: its dev, inode and path. */
static int maps_line(char *addr, unsigned *maj, unsigned *min, unsigned long *ino, char *path)
{
	char line[1024];
	unsigned long start;
	int found = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	path[0] = 0;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		int n;

		if (sscanf(line, "%lx-%*x %*s %*x %x:%x %lu %n", &start, maj, min, ino, &n) < 4)
			continue;
		if (start != (unsigned long)addr)
			continue;
		sscanf(line + n, "%511[^\n]", path);
		found = 1;
		break;
	}
	fclose(f);
	return found ? 0 : -1;
}

static int check_maps(const char *when, const struct mnt_line *ovl)
{
	char path[512], buf[2 * PAGE], file[PAGE];
	unsigned i, maj, min;
	unsigned long ino;
	int bad = 0;

	for (i = 0; i < ARRAY_SIZE(maps_rels); i++) {
		struct maps_rel *m = &maps_rels[i];
		struct stat st;
		int dev_is_ovl, ino_is_fstat;

		errno = 0;
		if (maps_line(*m->addr, &maj, &min, &ino, path) || strcmp(path, merged(m->name)) ||
		    stat(merged(m->name), &st)) {
			fail("%s: the mapping of %s is of \"%s\", not %s", when, m->name, path,
			     merged(m->name));
			bad = 1;
			continue;
		}
		dev_is_ovl = maj == ovl->major && min == ovl->minor;
		ino_is_fstat = ino == st.st_ino;
		test_msg("%s: %s mapped: maps %u:%u %lu, stat %u:%u %lu, overlay %u:%u\n", when,
			 m->name, maj, min, ino, major(st.st_dev), minor(st.st_dev),
			 (unsigned long)st.st_ino, ovl->major, ovl->minor);
		if (!m->seen) {
			m->seen = 1;
			m->dev_is_ovl = dev_is_ovl;
			m->ino_is_fstat = ino_is_fstat;
		} else if (dev_is_ovl != m->dev_is_ovl || ino_is_fstat != m->ino_is_fstat) {
			fail("%s: the mapping of %s: maps dev is%s the overlay's, inode is%s stat's; "
			     "before the dump: is%s, is%s", when, m->name, dev_is_ovl ? "" : " not",
			     ino_is_fstat ? "" : " not", m->dev_is_ovl ? "" : " not",
			     m->ino_is_fstat ? "" : " not");
			bad = 1;
		}
	}

	/* map: the file's data */
	for (i = 0; i < 2 * PAGE; i++)
		buf[i] = pattern("map", i);
	if (memcmp(map_map, buf, 2 * PAGE)) {
		fail("%s: the shared read-only mapping of map lost its data", when);
		bad = 1;
	}
	/* priv: its own first page, the file's second one; the file as it was */
	for (i = 0; i < PAGE; i++)
		buf[i] = pattern("priv", i);
	memcpy(buf, "PRIVATE PAGE", 12);
	if (memcmp(priv_map, buf, PAGE)) {
		fail("%s: the private mapping of priv lost its written page", when);
		bad = 1;
	}
	for (i = 0; i < PAGE; i++)
		buf[i] = pattern("priv", i);
	if (read_file(merged("priv"), file, PAGE) != PAGE || memcmp(file, buf, PAGE)) {
		fail("%s: merged/priv shows the private write", when);
		bad = 1;
	}
	return bad;
}

static int check(const char *when)
{
	struct mnt_line ovl;
	int bad;

	if (check_mountinfo(when, &ovl))
		return 1;
	bad = check_view(when);
	bad |= check_layers(when);
	bad |= check_fd(when, &ovl);
	bad |= check_maps(when, &ovl);
	bad |= check_late_copy_up(when);
	return bad;
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int setup_layers(void)
{
	static const char *const lower_files[][2] = {
		{ "l1/a", "l1-a" },
		{ "l1/both", "l1-both" },
		{ "l1/mod", "l1-mod" },
		{ "l1/gone", "l1-gone" },
		{ "l1/sub/s1", "l1-s1" },
		{ "l2/b", "l2-b" },
		{ "l2/both", "l2-both" },
		{ "l2/opq/old1", "l2-old1" },
		{ "l2/opq/old2", "l2-old2" },
		{ "l2/sub/s2", "l2-s2" },
		{ "l2/late-before", "l2-late" },
		{ "l2/late-after", "l2-late" },
	};
	unsigned i;

	if (mnt_tmpfs("ovl-low", at("low"), 0, "size=4m,mode=755") ||
	    mnt_tmpfs("ovl-up", at("up"), 0, "size=4m,mode=755"))
		return -1;
	if (mnt_mkdirs(at("low/l1/sub"), 0755) || mnt_mkdirs(at("low/l2/sub"), 0755) ||
	    mnt_mkdirs(at("low/l2/opq"), 0755) || mnt_mkdirs(at("up/upper"), 0755) ||
	    mnt_mkdirs(at("up/work"), 0755) || mnt_mkdirs(merged(""), 0755)) {
		pr_perror("mkdir the layers");
		return -1;
	}
	for (i = 0; i < ARRAY_SIZE(lower_files); i++)
		if (mnt_write_file(at(mp("low/%s", lower_files[i][0])), lower_files[i][1], 0644))
			return -1;
	if (symlink("a", at("low/l1/link"))) {
		pr_perror("symlink l1/link");
		return -1;
	}
	if (make_pattern_file(at("low/l1/priv"), "priv", PAGE) ||
	    make_pattern_file(at("low/l2/rw"), "rw", 2 * PAGE) ||
	    make_pattern_file(at("low/l2/map"), "map", 2 * PAGE) ||
	    mnt_write_file(at("up/upper/up-only"), "in the upper before the mount", 0644))
		return -1;

	snprintf(lowerdir, sizeof(lowerdir), "%s:%s", at("low/l1"), at("low/l2"));
	snprintf(upperdir, sizeof(upperdir), "%s", at("up/upper"));
	snprintf(workdir, sizeof(workdir), "%s", at("up/work"));
	snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s,workdir=%s%s", lowerdir, upperdir,
		 workdir, in_userns ? ",userxattr" : "");
	if (mount(SOURCE, merged(""), "overlay", 0, opts)) {
		pr_perror("mount overlay at %s (%s)", merged(""), opts);
		return -1;
	}
	return 0;
}

static int setup_changes(void)
{
	int fd;

	fd = open(merged("mod"), O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0 || write(fd, "+upper", 6) != 6) {
		pr_perror("append to merged/mod");
		return -1;
	}
	close(fd);
	if (unlink(merged("gone")) || unlink(merged("opq/old1")) || unlink(merged("opq/old2")) ||
	    rmdir(merged("opq")) || mkdir(merged("opq"), 0755)) {
		pr_perror("whiteout and opaque dir");
		return -1;
	}
	if (mnt_write_file(merged("opq/new1"), "made in the opaque dir", 0644) ||
	    mnt_write_file(merged("newfile"), "new through the overlay", 0644))
		return -1;
	return 0;
}

static int setup_fd_and_maps(void)
{
	int fd, i;

	rw_fd = open(merged("rw"), O_RDWR);	/* copied up */
	if (rw_fd < 0) {
		pr_perror("open merged/rw");
		return -1;
	}
	for (i = 0; i < 2 * PAGE; i++)
		rw_shadow[i] = pattern("rw", i);
	if (lseek(rw_fd, 100, SEEK_SET) != 100 || write(rw_fd, "<fd setup>", 10) != 10) {
		pr_perror("write through the fd");
		return -1;
	}
	memcpy(rw_shadow + 100, "<fd setup>", 10);
	rw_off = 110 + 1000;
	if (lseek(rw_fd, rw_off, SEEK_SET) != rw_off) {
		pr_perror("lseek");
		return -1;
	}
	rw_map = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, rw_fd, 0);
	if (rw_map == MAP_FAILED) {
		pr_perror("mmap merged/rw shared");
		return -1;
	}
	memcpy(rw_map + PAGE + 8, "<map setup>", 11);
	memcpy(rw_shadow + PAGE + 8, "<map setup>", 11);

	fd = open(merged("map"), O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("open merged/map");
		return -1;
	}
	map_map = mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	fd = open(merged("priv"), O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("open merged/priv");
		return -1;
	}
	priv_map = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map_map == MAP_FAILED || priv_map == MAP_FAILED) {
		pr_perror("mmap merged/map or merged/priv");
		return -1;
	}
	memcpy(priv_map, "PRIVATE PAGE", 12);
	return 0;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (mnt_prepare())
		return 1;
	in_userns = mnt_in_userns();
	if (in_userns < 0 || setup_layers() || setup_changes() || setup_fd_and_maps())
		return 1;
	return mnt_around(check, "the overlay did not hold");
}
