/*
 * Helpers of the mount programs (testcases/mounts): setting up mounts, reading a
 * process's mountinfo, servers in other mount namespaces, and the propagation matrix.
 *
 * mnt_prepare() comes first in every program: a mount namespace of its own with
 * everything private (in the h flavor nothing it mounts reaches the host; in ns and uns
 * the same is harmless), and the absolute path of --dirname, where it works (mnt_dir).
 *
 * A server (struct mnt_srv) is a child that may unshare CLONE_NEWNS, runs a setup
 * function, and then acts on commands the main program sends over a pipe (mount, umount,
 * stat, read a file, a program's own operations), so that after the restore the program
 * can make a process of another namespace act there.  A server ends on MNT_OP_QUIT (it
 * reaps its own children first and exits with the status its quit handler gives) or when
 * the main program is gone (end of file on its pipe).  mnt_srv_self() is a server that
 * acts in the calling process.
 *
 * The propagation matrix (docs/plans/issue-10-mounts.md, 3.3): for each member i of a set
 * of mounts, a tmpfs with source "probe-<i>" is mounted at <member i>/probe by a process
 * of member i's namespace; row i tells in which members it then shows (in the mountinfo
 * of a process of that member's namespace, and by st_dev of <member>/probe against its
 * parent: both must agree); then it is unmounted and must be gone everywhere.
 */
#ifndef MNTCHECK_H_
#define MNTCHECK_H_

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "helpers.h"

static char *dirname;
TEST_OPTION(dirname, string, "directory the program mounts under", 1);

static char mnt_dir[512];	/* the absolute path of --dirname */

/* A path from a format, in one of 64 rotating buffers (hold it across few more calls). */
static inline const char *mp(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline const char *mp(const char *fmt, ...)
{
	static char bufs[64][1024];
	static int next;
	char *buf = bufs[next++ % 64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(bufs[0]), fmt, ap);
	va_end(ap);
	if (n < 0 || n >= (int)sizeof(bufs[0]))
		abort();
	return buf;
}

/* mkdir -p */
static inline int mnt_mkdirs(const char *path, mode_t mode)
{
	char buf[1024], *p;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, mode) && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, mode) && errno != EEXIST)
		return -1;
	return 0;
}

/* 1 in a user namespace other than the initial one (the uns flavor), 0 outside, -1 */
static inline int mnt_in_userns(void)
{
	char map[64];

	if (read_whole("/proc/self/uid_map", map, sizeof(map)) < 0) {
		pr_perror("read /proc/self/uid_map");
		return -1;
	}
	return !strstr(map, "4294967295");
}

/* The program's own mount namespace, all private; mnt_dir made. */
/* 0 when this program runs under an init of its own (the ns and uns flavors), as a
 * program that mounts its pid namespace's proc needs. */
static inline int mnt_need_own_init(void)
{
	if (getpid() == 1 || getppid() != 1) {
		pr_err("not under an init of its own: run in the ns or uns flavor\n");
		return -1;
	}
	return 0;
}

static inline int mnt_prepare(void)
{
	if (unshare(CLONE_NEWNS)) {
		pr_perror("unshare(CLONE_NEWNS)");
		return -1;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
		pr_perror("make / rprivate");
		return -1;
	}
	if (mkdir(dirname, 0755) && errno != EEXIST) {
		pr_perror("mkdir %s", dirname);
		return -1;
	}
	if (!realpath(dirname, mnt_dir)) {
		pr_perror("realpath %s", dirname);
		return -1;
	}
	return 0;
}

/* ---- making mounts ----------------------------------------------------------- */

/* A tmpfs with that source at path (made when missing). */
static inline int mnt_tmpfs(const char *source, const char *path, unsigned long flags,
			    const char *opts)
{
	if (mnt_mkdirs(path, 0755)) {
		pr_perror("mkdir %s", path);
		return -1;
	}
	if (mount(source, path, "tmpfs", flags, opts)) {
		pr_perror("mount tmpfs %s at %s (%s)", source, path, opts ? opts : "");
		return -1;
	}
	return 0;
}

/* A bind (recursive when rec) of src at dst; dst made as a directory or an empty file
 * like src when missing. */
static inline int mnt_bind(const char *src, const char *dst, int rec)
{
	struct stat st;

	if (stat(src, &st)) {
		pr_perror("stat %s", src);
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		if (mnt_mkdirs(dst, 0755)) {
			pr_perror("mkdir %s", dst);
			return -1;
		}
	} else if (access(dst, F_OK)) {
		int fd = open(dst, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);

		if (fd < 0) {
			pr_perror("create %s", dst);
			return -1;
		}
		close(fd);
	}
	if (mount(src, dst, NULL, MS_BIND | (rec ? MS_REC : 0), NULL)) {
		pr_perror("bind %s at %s", src, dst);
		return -1;
	}
	return 0;
}

/* Propagation: MS_SHARED, MS_SLAVE, MS_PRIVATE or MS_UNBINDABLE (| MS_REC). */
static inline int mnt_propagation(const char *path, unsigned long type)
{
	if (mount(NULL, path, NULL, type, NULL)) {
		pr_perror("propagation %#lx of %s", type, path);
		return -1;
	}
	return 0;
}

static inline int mnt_share(const char *path)
{
	return mnt_propagation(path, MS_SHARED);
}

static inline int mnt_slave(const char *path)
{
	return mnt_propagation(path, MS_SLAVE);
}

static inline int mnt_private(const char *path)
{
	return mnt_propagation(path, MS_PRIVATE);
}

static inline int mnt_unbindable(const char *path)
{
	return mnt_propagation(path, MS_UNBINDABLE);
}

/* mount_setattr(2) of one mount: MOUNT_ATTR_* to set and to clear. */
static inline int mnt_setattr(const char *path, unsigned long set, unsigned long clr)
{
	struct mount_attr attr = { .attr_set = set, .attr_clr = clr };

	if (mount_setattr(AT_FDCWD, path, 0, &attr, sizeof(attr))) {
		pr_perror("mount_setattr %s set %#lx clear %#lx", path, set, clr);
		return -1;
	}
	return 0;
}

/* A small file with that content. */
static inline int mnt_write_file(const char *path, const char *content, mode_t mode)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, mode);
	size_t len = strlen(content);

	if (fd < 0 || write(fd, content, len) != (ssize_t)len) {
		pr_perror("write %s", path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* 0 when the file at path reads exactly `want` (else a fail() line). */
static inline int mnt_expect_file(const char *path, const char *want)
{
	char buf[1024];

	errno = 0;
	if (read_whole(path, buf, sizeof(buf)) < 0) {
		fail("read %s", path);
		return -1;
	}
	if (strcmp(buf, want)) {
		errno = 0;
		fail("%s reads \"%s\", not \"%s\"", path, buf, want);
		return -1;
	}
	return 0;
}

/* The names in a directory, sorted, joined by spaces (or -1). */
static inline int mnt_cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static inline int mnt_listdir(const char *path, char *out, size_t size)
{
	char *names[256];
	struct dirent *de;
	int n = 0, i;
	DIR *d = opendir(path);

	if (!d)
		return -1;
	while ((de = readdir(d)) && n < 256)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			names[n++] = strdup(de->d_name);
	closedir(d);
	qsort(names, n, sizeof(names[0]), mnt_cmpstr);
	out[0] = 0;
	for (i = 0; i < n; i++) {
		if (i)
			strncat(out, " ", size - strlen(out) - 1);
		strncat(out, names[i], size - strlen(out) - 1);
		free(names[i]);
	}
	return 0;
}

/* ---- mountinfo ---------------------------------------------------------------- */

struct mnt_line {
	int id, parent;
	unsigned int major, minor;
	char root[512], point[512], opts[256], tags[256];
	char fstype[64], source[512], super[1024];
};

/* \ooo escapes of mountinfo, in place */
static inline void mnt_unescape(char *s)
{
	char *d = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*d++ = (s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0');
			s += 4;
		} else {
			*d++ = *s++;
		}
	}
	*d = 0;
}

static inline int mnt_parse_line(char *line, struct mnt_line *l)
{
	char *sep = strstr(line, " - "), *tok, *save;
	int n;

	if (!sep)
		return -1;
	*sep = 0;
	memset(l, 0, sizeof(*l));
	if (sscanf(line, "%d %d %u:%u %511s %511s %255s %n", &l->id, &l->parent, &l->major,
		   &l->minor, l->root, l->point, l->opts, &n) < 7)
		return -1;
	snprintf(l->tags, sizeof(l->tags), "%s", line + n);
	n = strlen(l->tags);
	while (n && l->tags[n - 1] == ' ')
		l->tags[--n] = 0;
	tok = strtok_r(sep + 3, " \n", &save);
	if (!tok)
		return -1;
	snprintf(l->fstype, sizeof(l->fstype), "%s", tok);
	tok = strtok_r(NULL, " \n", &save);
	if (!tok)
		return -1;
	snprintf(l->source, sizeof(l->source), "%s", tok);
	tok = strtok_r(NULL, " \n", &save);
	snprintf(l->super, sizeof(l->super), "%s", tok ? tok : "");
	mnt_unescape(l->root);
	mnt_unescape(l->point);
	mnt_unescape(l->source);
	return 0;
}

/*
 * The lines of /proc/<pid>/mountinfo (pid 0: this process) into lines[max]; their
 * number, or -1.  Mount points are as that process sees them (relative to its root).
 */
static inline int mnt_read_info(pid_t pid, struct mnt_line *lines, int max)
{
	char path[64], *line = NULL;
	size_t cap = 0;
	int n = 0;
	FILE *f;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/mountinfo", pid);
	else
		snprintf(path, sizeof(path), "/proc/self/mountinfo");
	f = fopen(path, "r");
	if (!f) {
		pr_perror("open %s", path);
		return -1;
	}
	while (getline(&line, &cap, f) > 0) {
		if (n == max) {
			pr_err("%s: more than %d mounts\n", path, max);
			n = -1;
			break;
		}
		if (mnt_parse_line(line, &lines[n])) {
			pr_err("%s: cannot parse \"%s\"\n", path, line);
			n = -1;
			break;
		}
		n++;
	}
	free(line);
	fclose(f);
	return n;
}

#define MNT_MAX_LINES 1024
static struct mnt_line mnt_lines[MNT_MAX_LINES];

/*
 * The topmost mount at `point` in the namespace of pid (0: ourselves), of that source
 * when source is not NULL, into *out (when not NULL): 1 when there is one, 0 when not,
 * -1 on error.  "Topmost": no other candidate is mounted on it.
 */
static inline int mnt_find(pid_t pid, const char *point, const char *source,
			   struct mnt_line *out)
{
	struct mnt_line *lines = mnt_lines;
	int n = mnt_read_info(pid, lines, MNT_MAX_LINES), i, j, top = -1;

	if (n < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (strcmp(lines[i].point, point) || (source && strcmp(lines[i].source, source)))
			continue;
		for (j = 0; j < n; j++)
			if (j != i && lines[j].parent == lines[i].id &&
			    !strcmp(lines[j].point, point) &&
			    (!source || !strcmp(lines[j].source, source)))
				break;
		if (j == n)
			top = i;
	}
	if (top < 0)
		return 0;
	if (out)
		*out = lines[top];
	return 1;
}

static inline int mnt_visible(pid_t pid, const char *point, const char *source)
{
	return mnt_find(pid, point, source, NULL);
}

/* How many mounts the namespace of pid shows it (-1 on error). */
static inline int mnt_count(pid_t pid)
{
	return mnt_read_info(pid, mnt_lines, MNT_MAX_LINES);
}

/* The number after "<kind>:" in a line's optional fields (shared, master), or 0. */
static inline int mnt_tag(const struct mnt_line *l, const char *kind)
{
	const char *p = l->tags;
	size_t len = strlen(kind);

	while ((p = strstr(p, kind))) {
		if ((p == l->tags || p[-1] == ' ') && p[len] == ':')
			return atoi(p + len + 1);
		p += len;
	}
	return 0;
}

/* Whether a comma-separated option list holds `opt` exactly. */
static inline int mnt_has_opt(const char *list, const char *opt)
{
	size_t len = strlen(opt);
	const char *p = list;

	while (*p) {
		if (!strncmp(p, opt, len) && (p[len] == ',' || p[len] == 0))
			return 1;
		p = strchr(p, ',');
		if (!p)
			break;
		p++;
	}
	return 0;
}

/* ---- servers ------------------------------------------------------------------- */

enum {
	MNT_OP_QUIT = 1,
	MNT_OP_MOUNT,		/* mount(a, b, c, flags, d), empty strings are NULL */
	MNT_OP_UMOUNT,		/* umount2(b, flags) */
	MNT_OP_STAT,		/* stat(b) (lstat when flags) into st */
	MNT_OP_READ,		/* the content of file b into buf */
	MNT_OP_MKDIR,		/* mkdir(b, flags) */
	MNT_OP_GETPID,
	MNT_OP_USER = 100,	/* and up: the server's own handler */
};

struct mnt_req {
	int op;
	unsigned long flags;
	char a[512], b[512], c[64], d[512];
};

struct mnt_rep {
	int ret, err;
	struct stat st;
	char buf[1024];
};

struct mnt_srv;
typedef int (*mnt_handler_t)(struct mnt_srv *s, const struct mnt_req *q, struct mnt_rep *r);

struct mnt_srv {
	const char *name;
	pid_t pid;		/* as the main program's pid namespace sees it */
	int self;		/* acts in the calling process */
	int cmd[2], rep[2];
	struct mnt_srv *via;	/* started by that server's process, not by the caller */
	mnt_handler_t handler;	/* MNT_OP_USER and up, and MNT_OP_QUIT (its exit status) */
	int started;
};

static struct mnt_srv *mnt_srvs[32];
static int mnt_nsrv;

static inline void mnt_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* A server to be started (by us or, with via, by another server) */
static inline int mnt_srv_init(struct mnt_srv *s, const char *name, struct mnt_srv *via,
			       mnt_handler_t handler)
{
	memset(s, 0, sizeof(*s));
	s->name = name;
	s->via = via;
	s->handler = handler;
	if (pipe(s->cmd) || pipe(s->rep)) {
		pr_perror("pipe for %s", name);
		return -1;
	}
	if (mnt_nsrv == (int)ARRAY_SIZE(mnt_srvs))
		abort();
	mnt_srvs[mnt_nsrv++] = s;
	return 0;
}

/* The calling process as a server. */
static inline void mnt_srv_self(struct mnt_srv *s, const char *name, mnt_handler_t handler)
{
	memset(s, 0, sizeof(*s));
	s->name = name;
	s->self = 1;
	s->pid = getpid();
	s->handler = handler;
	s->cmd[0] = s->cmd[1] = s->rep[0] = s->rep[1] = -1;
}

static inline void mnt_handle(struct mnt_srv *s, const struct mnt_req *q, struct mnt_rep *r)
{
	memset(r, 0, sizeof(*r));
	errno = 0;
	switch (q->op) {
	case MNT_OP_MOUNT:
		r->ret = mount(q->a[0] ? q->a : NULL, q->b, q->c[0] ? q->c : NULL, q->flags,
			       q->d[0] ? q->d : NULL);
		break;
	case MNT_OP_UMOUNT:
		r->ret = umount2(q->b, q->flags);
		break;
	case MNT_OP_STAT:
		r->ret = q->flags ? lstat(q->b, &r->st) : stat(q->b, &r->st);
		break;
	case MNT_OP_READ:
		r->ret = read_whole(q->b, r->buf, sizeof(r->buf)) < 0 ? -1 : 0;
		break;
	case MNT_OP_MKDIR:
		r->ret = mkdir(q->b, q->flags);
		break;
	case MNT_OP_GETPID:
		r->ret = getpid();
		break;
	case MNT_OP_QUIT:
		r->ret = s->handler ? s->handler(s, q, r) : 0;
		break;
	default:
		if (q->op >= MNT_OP_USER && s->handler) {
			r->ret = s->handler(s, q, r);
			break;
		}
		r->ret = -1;
		errno = ENOSYS;
	}
	r->err = r->ret < 0 ? errno : 0;
}

static inline void __attribute__((noreturn)) mnt_serve(struct mnt_srv *s)
{
	struct mnt_req q;
	struct mnt_rep r;

	for (;;) {
		if (read_data(s->cmd[0], (unsigned char *)&q, sizeof(q)))
			_exit(0);		/* the main program is gone */
		mnt_handle(s, &q, &r);
		if (q.op == MNT_OP_QUIT) {
			int st, bad = r.ret ? 1 : 0;

			/* our own children (servers we started) first */
			while (1) {
				pid_t got = waitpid(-1, &st, 0);

				if (got < 0 && errno == EINTR)
					continue;
				if (got < 0)
					break;
				if (!WIFEXITED(st) || WEXITSTATUS(st))
					bad = 1;
			}
			r.ret = bad;
			write_data(s->rep[1], (unsigned char *)&r, sizeof(r));
			_exit(bad);
		}
		if (write_data(s->rep[1], (unsigned char *)&r, sizeof(r)))
			_exit(1);
	}
}

/*
 * Fork server s (mnt_srv_init'ed): the child unshares CLONE_NEWNS when newns, runs
 * setup(s, arg) (non-zero: it exits 1), tells it is ready and serves.  In the caller: 0
 * once the child is ready.  The child keeps no pipe of other servers but those it is to
 * start itself (their via is s).
 */
static inline int mnt_srv_start(struct mnt_srv *s, int newns,
				int (*setup)(struct mnt_srv *s, void *arg), void *arg)
{
	struct ready r;
	pid_t pid;
	int i;

	ready_init(&r);
	pid = test_fork();
	if (pid < 0) {
		pr_perror("fork %s", s->name);
		return -1;
	}
	if (pid == 0) {
		for (i = 0; i < mnt_nsrv; i++) {
			struct mnt_srv *o = mnt_srvs[i];

			if (o == s) {
				mnt_close(&o->cmd[1]);
				mnt_close(&o->rep[0]);
			} else if (o->via != s) {
				mnt_close(&o->cmd[0]);
				mnt_close(&o->cmd[1]);
				mnt_close(&o->rep[0]);
				mnt_close(&o->rep[1]);
			}
		}
		s->pid = getpid();
		s->self = 0;
		if (newns && unshare(CLONE_NEWNS)) {
			pr_perror("%s: unshare(CLONE_NEWNS)", s->name);
			_exit(1);
		}
		if (setup && setup(s, arg)) {
			pr_err("%s: setup failed\n", s->name);
			_exit(1);
		}
		ready_signal(&r);
		mnt_serve(s);
	}
	mnt_close(&s->cmd[0]);
	mnt_close(&s->rep[1]);
	if (ready_wait(&r, 1)) {
		pr_err("%s did not get ready\n", s->name);
		return -1;
	}
	s->pid = pid;
	s->started = 1;
	return 0;
}

static inline int mnt_call(struct mnt_srv *s, struct mnt_req *q, struct mnt_rep *r)
{
	if (s->self) {
		mnt_handle(s, q, r);
	} else if (write_data(s->cmd[1], (unsigned char *)q, sizeof(*q)) ||
		   read_data(s->rep[0], (unsigned char *)r, sizeof(*r))) {
		pr_perror("talking to %s", s->name);
		r->ret = -1;
		r->err = EPIPE;
	}
	errno = r->err;
	return r->ret;
}

/*
 * After a server that another one started (via) is ready: drop our copies of its
 * child ends, and learn its pid.
 */
static inline int mnt_srv_adopt(struct mnt_srv *s)
{
	struct mnt_req q = { .op = MNT_OP_GETPID };
	struct mnt_rep r;

	mnt_close(&s->cmd[0]);
	mnt_close(&s->rep[1]);
	s->pid = mnt_call(s, &q, &r);
	if (s->pid <= 0) {
		pr_perror("getpid of %s", s->name);
		return -1;
	}
	s->started = 1;
	return 0;
}

/* In the server that started s (s->via): our copies of s's main ends go. */
static inline void mnt_srv_started_for_main(struct mnt_srv *s)
{
	mnt_close(&s->cmd[1]);
	mnt_close(&s->rep[0]);
}

static inline void mnt_strcpy(char *dst, size_t size, const char *src)
{
	if (snprintf(dst, size, "%s", src ? src : "") >= (int)size)
		abort();
}

static inline int srv_mount(struct mnt_srv *s, const char *src, const char *target,
			    const char *fstype, unsigned long flags, const char *data)
{
	struct mnt_req q = { .op = MNT_OP_MOUNT, .flags = flags };
	struct mnt_rep r;

	mnt_strcpy(q.a, sizeof(q.a), src);
	mnt_strcpy(q.b, sizeof(q.b), target);
	mnt_strcpy(q.c, sizeof(q.c), fstype);
	mnt_strcpy(q.d, sizeof(q.d), data);
	return mnt_call(s, &q, &r);
}

static inline int srv_umount(struct mnt_srv *s, const char *target, int flags)
{
	struct mnt_req q = { .op = MNT_OP_UMOUNT, .flags = flags };
	struct mnt_rep r;

	mnt_strcpy(q.b, sizeof(q.b), target);
	return mnt_call(s, &q, &r);
}

static inline int srv_stat(struct mnt_srv *s, const char *path, struct stat *st)
{
	struct mnt_req q = { .op = MNT_OP_STAT };
	struct mnt_rep r;
	int ret;

	mnt_strcpy(q.b, sizeof(q.b), path);
	ret = mnt_call(s, &q, &r);
	if (!ret)
		*st = r.st;
	return ret;
}

/* The content of a small file as the server sees it, into buf (size 1024). */
static inline int srv_read(struct mnt_srv *s, const char *path, char *buf)
{
	struct mnt_req q = { .op = MNT_OP_READ };
	struct mnt_rep r;
	int ret;

	mnt_strcpy(q.b, sizeof(q.b), path);
	ret = mnt_call(s, &q, &r);
	if (!ret)
		memcpy(buf, r.buf, sizeof(r.buf));
	return ret;
}

/* A program's own operation (MNT_OP_USER + k) with a path argument; its reply. */
static inline int srv_user(struct mnt_srv *s, int op, const char *path, struct mnt_rep *r)
{
	struct mnt_req q = { .op = op };

	mnt_strcpy(q.b, sizeof(q.b), path);
	return mnt_call(s, &q, r);
}

/* The server quits (after its own children); 0 when all of them ended well. */
static inline int mnt_srv_quit(struct mnt_srv *s)
{
	struct mnt_req q = { .op = MNT_OP_QUIT };
	struct mnt_rep r;
	int bad;

	if (s->self || !s->started)
		return 0;
	bad = mnt_call(s, &q, &r) ? 1 : 0;
	mnt_close(&s->cmd[1]);
	mnt_close(&s->rep[0]);
	if (!s->via && child_passed(s->pid, s->name))
		bad = 1;
	s->started = 0;
	return bad;
}

/* Quit every server we talk to, those started through others first. */
static inline int mnt_srv_quit_all(void)
{
	int i, bad = 0;

	for (i = mnt_nsrv - 1; i >= 0; i--)
		if (mnt_srvs[i]->via && mnt_srvs[i]->started)
			bad |= mnt_srv_quit(mnt_srvs[i]);
	for (i = mnt_nsrv - 1; i >= 0; i--)
		if (mnt_srvs[i]->started)
			bad |= mnt_srv_quit(mnt_srvs[i]);
	return bad;
}

/*
 * The protocol around a program's checks: check("before") (a failure ends the program),
 * daemonize, wait for the signal, check("after"), then pass or fail with ``what``; the
 * command servers are stopped either way.
 */
static inline int mnt_around(int (*check)(const char *when), const char *what)
{
	int bad;

	if (check("before")) {
		mnt_srv_quit_all();
		return 1;
	}
	test_daemon();
	test_waitsig();
	bad = check("after");
	bad |= mnt_srv_quit_all();
	if (bad)
		fail("%s", what);
	else
		pass();
	return 0;
}

/* The inode of a process's mount namespace (/proc/<pid>/ns/mnt), 0 on error. */
static inline unsigned long mnt_ns_ino(pid_t pid)
{
	struct stat st;

	if (stat(mp("/proc/%d/ns/mnt", pid), &st)) {
		pr_perror("stat /proc/%d/ns/mnt", pid);
		return 0;
	}
	return st.st_ino;
}

/* ---- the propagation matrix --------------------------------------------------------- */

struct mnt_member {
	const char *name;
	struct mnt_srv *srv;	/* a process of the member's namespace */
	const char *path;	/* the member's mount point as that process sees it */
};

#define MNT_MAX_MEMBERS 16

/*
 * Measure the matrix of n members into rows[i] ("0"/"1" per member j, NUL-terminated,
 * each row at least n + 1 chars).  0 when the measure itself went well (mountinfo and
 * st_dev agree, every probe was unmounted everywhere), else -1 (fail() says why).
 */
static inline int mnt_matrix_measure(const struct mnt_member *m, int n,
				     char rows[][MNT_MAX_MEMBERS + 1])
{
	int i, j, bad = 0;

	for (i = 0; i < n; i++) {
		char src[32];

		snprintf(src, sizeof(src), "probe-%d", i);
		if (srv_mount(m[i].srv, src, mp("%s/probe", m[i].path), "tmpfs", 0,
			      "size=64k,mode=755")) {
			fail("%s: mount %s at %s/probe", m[i].name, src, m[i].path);
			return -1;
		}
		for (j = 0; j < n; j++) {
			struct stat probe, parent;
			int vis = mnt_visible(m[j].srv->pid, mp("%s/probe", m[j].path), src);

			if (vis < 0 || srv_stat(m[j].srv, mp("%s/probe", m[j].path), &probe) ||
			    srv_stat(m[j].srv, m[j].path, &parent)) {
				fail("%s: looking for %s", m[j].name, src);
				bad = 1;
				vis = 0;
			} else if (vis != (probe.st_dev != parent.st_dev)) {
				errno = 0;
				fail("%s: mountinfo %s %s at %s/probe, but st_dev %s", m[j].name,
				     vis ? "shows" : "does not show", src, m[j].path,
				     probe.st_dev != parent.st_dev ? "differs" : "does not differ");
				bad = 1;
			}
			rows[i][j] = vis ? '1' : '0';
		}
		rows[i][n] = 0;
		if (srv_umount(m[i].srv, mp("%s/probe", m[i].path), 0)) {
			fail("%s: umount %s/probe", m[i].name, m[i].path);
			bad = 1;
		}
		for (j = 0; j < n; j++) {
			int vis = mnt_visible(m[j].srv->pid, mp("%s/probe", m[j].path), src);

			if (vis) {
				errno = 0;
				fail("%s: %s still at %s/probe after its umount in %s", m[j].name,
				     src, m[j].path, m[i].name);
				bad = 1;
				/* leave nothing behind */
				while (mnt_visible(m[j].srv->pid, mp("%s/probe", m[j].path), src) > 0 &&
				       !srv_umount(m[j].srv, mp("%s/probe", m[j].path), MNT_DETACH))
					;
			}
		}
	}
	return bad ? -1 : 0;
}

static inline void mnt_matrix_log(const char *when, const struct mnt_member *m, int n,
				  char rows[][MNT_MAX_MEMBERS + 1])
{
	int i;

	for (i = 0; i < n; i++)
		test_msg("%s: probe mounted in %-12s shows in %s\n", when, m[i].name, rows[i]);
}

/*
 * Measure the matrix and compare it with `expected` (n strings of n "0"/"1") and, when
 * `before` is not NULL, with the rows measured before; the rows go to `got`.  0 when all
 * agree.
 */
static inline int mnt_matrix_check(const char *when, const struct mnt_member *m, int n,
				   const char *const *expected,
				   char before[][MNT_MAX_MEMBERS + 1],
				   char got[][MNT_MAX_MEMBERS + 1])
{
	int i, bad = 0;

	if (n > MNT_MAX_MEMBERS)
		abort();
	if (mnt_matrix_measure(m, n, got))
		bad = 1;
	mnt_matrix_log(when, m, n, got);
	for (i = 0; i < n; i++) {
		errno = 0;
		if (strcmp(got[i], expected[i])) {
			fail("%s: a probe mounted in %s shows in %s, expected %s", when, m[i].name,
			     got[i], expected[i]);
			bad = 1;
		}
		if (before && strcmp(got[i], before[i])) {
			fail("%s: a probe mounted in %s shows in %s, before the dump %s", when,
			     m[i].name, got[i], before[i]);
			bad = 1;
		}
	}
	return bad;
}

#endif /* MNTCHECK_H_ */
