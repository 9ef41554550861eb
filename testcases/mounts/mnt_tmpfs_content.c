/*
 * The content of a tmpfs, every attribute of it:
 *
 *   D/c  tmpfs "content" (size=64m, mode=711, huge=never), its root then chmod 0751 and
 *        chown 0:1001 (so its mode is no longer the mount option's), holding
 *        directories (0755, 0700 owned 1000:1000, sticky 01777, setgid 02775), files
 *        (empty, small, setuid 04755, setgid 02755, 0444, a 20 MiB file with data only at
 *        [0, 64K), [5M, 5M + 4K) and its last 4K), owners 1000 and 1001, hard links (one
 *        file with three names in three directories), symlinks (relative, absolute and
 *        dangling, one up a level, one lchown-ed), a FIFO, a char device (1:3 outside a
 *        user namespace; in one, where mknod of devices is refused, the whiteout 0:0),
 *        user.* xattrs (text, 256 binary bytes, an empty value) on files and a
 *        directory, trusted.* ones on a file and a symlink (outside a user namespace:
 *        they need CAP_SYS_ADMIN of the initial one), and atime/mtime set with
 *        utimensat() (nanoseconds; the atimes a day ahead, so that no relatime read
 *        moves them).
 *
 * Before the dump and after the restore: each entry's type, mode, owner, size, link
 * count, device number, atime and mtime; file contents (the 20 MiB file byte by byte
 * where it has data) and its holes (SEEK_DATA/SEEK_HOLE give the three extents, st_blocks
 * counts 72K); symlink targets; the hard links share one inode; each file's xattr names
 * and values; each directory lists exactly its entries; the root's mode and owner, and
 * the mount's options as before.
 */
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "mntcheck.h"

const char *test_doc = "a tmpfs with directories, a sparse file, setuid/sticky modes, "
		       "owners, links, xattrs, a FIFO, a device and set times";

enum { T_DIR, T_FILE, T_SPARSE, T_LINK, T_FIFO, T_CHR, T_HARD };

struct ent {
	const char *path;
	int type;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	const char *data;	/* file content, link target, hard link's original */
	int nlink;		/* expected (0: 1 for non-directories, not checked for dirs) */
	struct timespec times[2];
};

static struct ent ents[] = {
	{ "", T_DIR, 0751, 0, 1001 },			/* the root */
	{ "d1", T_DIR, 0755, 0, 0 },
	{ "d1/d2", T_DIR, 0700, 1000, 1000 },
	{ "sticky", T_DIR, 01777, 0, 0 },
	{ "sgid-dir", T_DIR, 02775, 0, 1001 },
	{ "empty", T_FILE, 0644, 0, 0, "" },
	{ "small", T_FILE, 0640, 1000, 1001, "small file\n", 3 },
	{ "setuid", T_FILE, 04755, 1000, 0, "#!/bin/false\n" },
	{ "setgid", T_FILE, 02755, 0, 1001, "setgid\n" },
	{ "readonly", T_FILE, 0444, 0, 0, "read only\n" },
	{ "d1/d2/deep", T_FILE, 0600, 1000, 1000, "deep\n" },
	{ "sparse", T_SPARSE, 0600, 0, 0 },
	{ "d1/small-link", T_HARD, 0640, 1000, 1001, "small", 3 },
	{ "sticky/small-link2", T_HARD, 0640, 1000, 1001, "small", 3 },
	{ "link-rel", T_LINK, 0777, 1000, 1000, "small" },
	{ "link-abs", T_LINK, 0777, 0, 0, "/nonexistent/target" },
	{ "d1/link-up", T_LINK, 0777, 0, 0, "../small" },
	{ "fifo", T_FIFO, 0620, 1000, 0 },
	{ "chr", T_CHR, 0666, 0, 0 },
};

struct xattr {
	const char *path, *name;
	const char *value;
	int len;		/* -1: strlen(value); 256: the binary value */
	int trusted;		/* outside a user namespace only */
};

static unsigned char binary[256];

static const struct xattr xattrs[] = {
	{ "small", "user.alpha", "alpha", -1 },
	{ "small", "user.bin", NULL, 256 },
	{ "small", "user.empty", "", -1 },
	{ "d1", "user.dir", "a directory", -1 },
	{ "sticky/small-link2", "user.more", "through another name", -1 },
	{ "small", "trusted.t", "trusted value", -1, 1 },
	{ "link-rel", "trusted.link", "on a symlink", -1, 1 },
};

static int in_userns;

#define SPARSE_SIZE (20 << 20)
static const long extents[][2] = {
	{ 0, 64 << 10 },
	{ 5 << 20, (5 << 20) + 4096 },
	{ SPARSE_SIZE - 4096, SPARSE_SIZE },
};

static unsigned char pattern(long off)
{
	return (off * 7 + 13 + (off >> 12)) & 0xff;
}

static const char *at(const char *rel)
{
	return rel[0] ? mp("%s/c/%s", mnt_dir, rel) : mp("%s/c", mnt_dir);
}

/* The first name of the inode at path (hard links name their original). */
static const char *inode_of(const char *path)
{
	unsigned i;

	for (i = 0; i < ARRAY_SIZE(ents); i++)
		if (!strcmp(ents[i].path, path))
			return ents[i].type == T_HARD ? ents[i].data : path;
	abort();
}

static dev_t chr_rdev(void)
{
	return in_userns ? makedev(0, 0) : makedev(1, 3);
}

static mode_t type_bits(int type)
{
	switch (type) {
	case T_DIR:
		return S_IFDIR;
	case T_LINK:
		return S_IFLNK;
	case T_FIFO:
		return S_IFIFO;
	case T_CHR:
		return S_IFCHR;
	}
	return S_IFREG;
}

static const char *xattr_value(const struct xattr *x, int *len)
{
	*len = x->len == 256 ? 256 : (int)strlen(x->value);
	return x->len == 256 ? (const char *)binary : x->value;
}

static int make_sparse(const char *path)
{
	static unsigned char buf[64 << 10];
	int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	unsigned i;
	long off;

	if (fd < 0 || ftruncate(fd, SPARSE_SIZE))
		return -1;
	for (i = 0; i < ARRAY_SIZE(extents); i++) {
		long len = extents[i][1] - extents[i][0];

		for (off = 0; off < len; off++)
			buf[off] = pattern(extents[i][0] + off);
		if (pwrite(fd, buf, len, extents[i][0]) != len)
			return -1;
	}
	close(fd);
	return 0;
}

static int check_sparse(const char *when, const char *path)
{
	static unsigned char buf[64 << 10];
	int fd = open(path, O_RDONLY | O_CLOEXEC), bad = 0;
	long off = 0, data, hole;
	unsigned i, n = 0;
	struct stat st;

	if (fd < 0 || fstat(fd, &st)) {
		fail("%s: open %s", when, path);
		return 1;
	}
	while ((data = lseek(fd, off, SEEK_DATA)) >= 0) {
		hole = lseek(fd, data, SEEK_HOLE);
		errno = 0;
		if (n >= ARRAY_SIZE(extents) || data != extents[n][0] || hole != extents[n][1]) {
			fail("%s: sparse: data at [%ld, %ld), expected [%ld, %ld)", when, data, hole,
			     n < ARRAY_SIZE(extents) ? extents[n][0] : -1L,
			     n < ARRAY_SIZE(extents) ? extents[n][1] : -1L);
			bad = 1;
			break;
		}
		n++;
		off = hole;
	}
	errno = 0;
	if (!bad && n != ARRAY_SIZE(extents)) {
		fail("%s: sparse: %u extents of data, expected %zu", when, n, ARRAY_SIZE(extents));
		bad = 1;
	}
	if (st.st_blocks != (72 << 10) / 512) {
		fail("%s: sparse: %ld blocks, expected %d", when, (long)st.st_blocks,
		     (72 << 10) / 512);
		bad = 1;
	}
	for (i = 0; i < ARRAY_SIZE(extents); i++) {
		long len = extents[i][1] - extents[i][0];

		if (pread(fd, buf, len, extents[i][0]) != len) {
			fail("%s: sparse: read [%ld, %ld)", when, extents[i][0], extents[i][1]);
			bad = 1;
			break;
		}
		for (off = 0; off < len; off++)
			if (buf[off] != pattern(extents[i][0] + off)) {
				errno = 0;
				fail("%s: sparse: byte %ld is %#x, not %#x", when,
				     extents[i][0] + off, buf[off], pattern(extents[i][0] + off));
				bad = 1;
				break;
			}
	}
	/* and a hole reads zeroes */
	if (pread(fd, buf, 4096, 10 << 20) != 4096 || memchr(buf, 0, 4096) != buf ||
	    memcmp(buf, buf + 1, 4095)) {
		errno = 0;
		fail("%s: sparse: the hole at 10M does not read zeroes", when);
		bad = 1;
	}
	close(fd);
	return bad;
}

static int check_entry(const char *when, struct ent *e)
{
	struct stat st, orig;
	char buf[1024];
	int bad = 0;
	ssize_t n;

	if (lstat(at(e->path), &st)) {
		fail("%s: lstat %s", when, e->path);
		return 1;
	}
	errno = 0;
	if ((st.st_mode & S_IFMT) != type_bits(e->type) ||
	    (e->type != T_LINK && (st.st_mode & 07777) != e->mode) || st.st_uid != e->uid ||
	    st.st_gid != e->gid) {
		fail("%s: %s: mode %o owner %d:%d, expected %o %d:%d", when, e->path, st.st_mode,
		     st.st_uid, st.st_gid, type_bits(e->type) | e->mode, e->uid, e->gid);
		bad = 1;
	}
	if (e->type != T_DIR && st.st_nlink != (nlink_t)(e->nlink ? e->nlink : 1)) {
		fail("%s: %s: %lu links, expected %d", when, e->path, (unsigned long)st.st_nlink,
		     e->nlink ? e->nlink : 1);
		bad = 1;
	}
	if (st.st_mtim.tv_sec != e->times[1].tv_sec || st.st_mtim.tv_nsec != e->times[1].tv_nsec ||
	    st.st_atim.tv_sec != e->times[0].tv_sec || st.st_atim.tv_nsec != e->times[0].tv_nsec) {
		fail("%s: %s: atime %ld.%09ld mtime %ld.%09ld, expected %ld.%09ld %ld.%09ld", when,
		     e->path, st.st_atim.tv_sec, st.st_atim.tv_nsec, st.st_mtim.tv_sec,
		     st.st_mtim.tv_nsec, e->times[0].tv_sec, e->times[0].tv_nsec,
		     e->times[1].tv_sec, e->times[1].tv_nsec);
		bad = 1;
	}
	switch (e->type) {
	case T_FILE:
		if (st.st_size != (off_t)strlen(e->data)) {
			fail("%s: %s: size %ld, expected %zu", when, e->path, (long)st.st_size,
			     strlen(e->data));
			bad = 1;
		} else if (mnt_expect_file(at(e->path), e->data)) {
			bad = 1;
		}
		break;
	case T_SPARSE:
		if (st.st_size != SPARSE_SIZE) {
			fail("%s: %s: size %ld", when, e->path, (long)st.st_size);
			bad = 1;
		}
		bad |= check_sparse(when, at(e->path));
		break;
	case T_HARD:
		if (lstat(at(e->data), &orig) || orig.st_ino != st.st_ino ||
		    orig.st_dev != st.st_dev) {
			fail("%s: %s is not a hard link of %s", when, e->path, e->data);
			bad = 1;
		}
		break;
	case T_LINK:
		n = readlink(at(e->path), buf, sizeof(buf) - 1);
		if (n < 0 || (buf[n] = 0, strcmp(buf, e->data))) {
			fail("%s: %s: link to \"%s\", not \"%s\"", when, e->path, n < 0 ? "" : buf,
			     e->data);
			bad = 1;
		}
		break;
	case T_CHR:
		if (st.st_rdev != chr_rdev()) {
			fail("%s: %s: device %u:%u, expected %u:%u", when, e->path,
			     major(st.st_rdev), minor(st.st_rdev), major(chr_rdev()),
			     minor(chr_rdev()));
			bad = 1;
		}
		break;
	case T_DIR: {
		char want[1024] = "", got[1024];
		const char *names[64];
		unsigned i, k, len = strlen(e->path), nn = 0;

		for (i = 0; i < ARRAY_SIZE(ents); i++) {
			const char *p = ents[i].path, *rest;

			if (!p[0] || (len && (strncmp(p, e->path, len) || p[len] != '/')))
				continue;
			rest = len ? p + len + 1 : p;
			if (!strchr(rest, '/'))
				names[nn++] = rest;
		}
		qsort(names, nn, sizeof(names[0]), mnt_cmpstr);
		for (k = 0; k < nn; k++) {
			if (k)
				strcat(want, " ");
			strcat(want, names[k]);
		}
		if (mnt_listdir(at(e->path), got, sizeof(got)) || strcmp(got, want)) {
			fail("%s: %s/ lists \"%s\", expected \"%s\"", when, e->path, got, want);
			bad = 1;
		}
		break;
	}
	}
	return bad;
}

static int check_xattrs(const char *when)
{
	char names[1024], joined[1024], want[1024], value[512];
	unsigned i, j;
	int bad = 0;

	for (i = 0; i < ARRAY_SIZE(ents); i++) {
		const char *path = ents[i].path;
		ssize_t n = llistxattr(at(path), names, sizeof(names)), k;
		char *got[16];
		int ngot = 0, nwant = 0;
		const char *wanted[16];

		if (n < 0) {
			fail("%s: llistxattr %s", when, path);
			bad = 1;
			continue;
		}
		for (k = 0; k < n; k += strlen(names + k) + 1)
			if (strncmp(names + k, "security.", 9) && ngot < 16)
				got[ngot++] = names + k;
		for (j = 0; j < ARRAY_SIZE(xattrs); j++) {
			const struct xattr *x = &xattrs[j];
			int len;
			const char *v;
			ssize_t vl;

			if (strcmp(inode_of(x->path), inode_of(path)))
				continue;
			if (x->trusted && in_userns)
				continue;
			wanted[nwant++] = x->name;
			v = xattr_value(x, &len);
			vl = lgetxattr(at(path), x->name, value, sizeof(value));
			if (vl != len || memcmp(value, v, len)) {
				fail("%s: %s: xattr %s is %zd bytes, not the %d expected", when, path,
				     x->name, vl, len);
				bad = 1;
			}
		}
		qsort(got, ngot, sizeof(got[0]), mnt_cmpstr);
		qsort(wanted, nwant, sizeof(wanted[0]), mnt_cmpstr);
		joined[0] = want[0] = 0;
		for (j = 0; j < (unsigned)ngot; j++)
			snprintf(joined + strlen(joined), sizeof(joined) - strlen(joined), "%s%s",
				 j ? " " : "", got[j]);
		for (j = 0; j < (unsigned)nwant; j++)
			snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%s",
				 j ? " " : "", wanted[j]);
		errno = 0;
		if (strcmp(joined, want)) {
			fail("%s: %s: xattrs \"%s\", expected \"%s\"", when, path, joined, want);
			bad = 1;
		}
	}
	return bad;
}

static char super_before[1024];

static int check(const char *when)
{
	struct mnt_line l;
	unsigned i;
	int bad = 0;

	errno = 0;
	if (mnt_find(0, at(""), "content", &l) != 1) {
		fail("%s: no tmpfs at %s", when, at(""));
		return 1;
	}
	if (!super_before[0])
		snprintf(super_before, sizeof(super_before), "%s", l.super);
	if (strcmp(l.super, super_before) || !mnt_has_opt(l.super, "mode=711")) {
		fail("%s: options %s, before the dump %s (with mode=711)", when, l.super,
		     super_before);
		bad = 1;
	}
	/* attributes first: the content checks read (the atimes are ahead of relatime) */
	for (i = 0; i < ARRAY_SIZE(ents); i++)
		bad |= check_entry(when, &ents[i]);
	bad |= check_xattrs(when);
	return bad;
}

static int setup(void)
{
	struct timespec now;
	unsigned i;

	in_userns = mnt_in_userns();
	if (in_userns < 0)
		return -1;
	for (i = 0; i < sizeof(binary); i++)
		binary[i] = i;

	if (mnt_tmpfs("content", at(""), 0, "size=64m,mode=711,huge=never"))
		return -1;
	for (i = 1; i < ARRAY_SIZE(ents); i++) {
		struct ent *e = &ents[i];
		const char *p = at(e->path);
		int ret = 0;

		switch (e->type) {
		case T_DIR:
			ret = mkdir(p, 0700);
			break;
		case T_FILE:
			ret = mnt_write_file(p, e->data, 0600);
			break;
		case T_SPARSE:
			ret = make_sparse(p);
			break;
		case T_HARD:
			ret = link(at(e->data), p);
			break;
		case T_LINK:
			ret = symlink(e->data, p);
			break;
		case T_FIFO:
			ret = mkfifo(p, 0600);
			break;
		case T_CHR:
			ret = mknod(p, S_IFCHR | 0600, chr_rdev());
			break;
		}
		if (ret) {
			pr_perror("create %s", e->path);
			return -1;
		}
	}
	/* owners, then modes (chown clears setuid and setgid) */
	for (i = 0; i < ARRAY_SIZE(ents); i++) {
		struct ent *e = &ents[i];

		if (lchown(at(e->path), e->uid, e->gid) ||
		    (e->type != T_LINK && chmod(at(e->path), e->mode))) {
			pr_perror("owner and mode of %s", e->path);
			return -1;
		}
	}
	for (i = 0; i < ARRAY_SIZE(xattrs); i++) {
		const struct xattr *x = &xattrs[i];
		int len;
		const char *v = xattr_value(x, &len);

		if (x->trusted && in_userns)
			continue;
		if (lsetxattr(at(x->path), x->name, v, len, XATTR_CREATE)) {
			pr_perror("setxattr %s %s", x->path, x->name);
			return -1;
		}
	}
	/* times last: anything above moves them */
	clock_gettime(CLOCK_REALTIME, &now);
	for (i = 0; i < ARRAY_SIZE(ents); i++) {
		struct ent *e = &ents[i];

		e->times[0] = (struct timespec){ now.tv_sec + 86400 + i, i * 1000 + 3 };
		e->times[1] = (struct timespec){ 1600000000 + i * 1000, i * 111111 + 7 };
		if (utimensat(AT_FDCWD, at(e->path), e->times, AT_SYMLINK_NOFOLLOW)) {
			pr_perror("utimensat %s", e->path);
			return -1;
		}
	}
	/* the names of one inode share its times: the last ones set */
	for (i = 0; i < ARRAY_SIZE(ents); i++) {
		unsigned j;

		for (j = 0; j < ARRAY_SIZE(ents); j++)
			if (!strcmp(inode_of(ents[j].path), inode_of(ents[i].path))) {
				ents[i].times[0] = ents[j].times[0];
				ents[i].times[1] = ents[j].times[1];
			}
	}
	return 0;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (mnt_prepare() || setup())
		return 1;
	return mnt_around(check, "the tmpfs content did not hold");
}
