/*
 * Mount namespaces with many mounts in peer groups, for bench_mounts.py:
 *
 *   mounts_1000 [N] RESULT
 *
 * The program unshares a mount namespace (A), makes / rprivate and mounts a private tmpfs
 * at ./mnt (the base); on it N / 20 tmpfs superblocks at mnt/gG/m0, each made shared (one
 * peer group each) and bound 9 times at mnt/gG/m1..m9: odd members bind the tmpfs's
 * subdirectory "sub", even ones its root.  Each tmpfs holds 10 small files (f0..f4 at its
 * root, f5..f9 in sub).  Then a child unshares namespace B: the kernel copies the N / 2
 * mounts as peers of A's, N mounts in N / 20 groups across two namespaces.  RESULT gets
 * "ready <pid>" once B exists; on SIGTERM the program checks both namespaces (their
 * mountinfo: as many mounts as before, every member at its place with its root, one peer
 * group per G across A and B, a distinct one for each G; every file's content; a tmpfs
 * mounted at mnt/gG/m0/probe in A shows in B's root members of G and nowhere else there,
 * and leaves with its umount) and writes "OK" or what failed.  Once A is set up, the
 * program runs again from inside it (inside() says why).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "result_file.h"

#define MEMBERS 10
#define FILES 10

static char *base, why[512];
static int groups;
static pid_t ns_b;

/* The first failure is the one told. */
static void bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void bad(const char *fmt, ...)
{
	va_list ap;

	if (why[0])
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why) - 1, fmt, ap);
	va_end(ap);
	strcat(why, "\n");
}

/* A member's path (G, I), or a file F in it (F < 0: none); in B through /proc/B/root. */
static const char *path(char *buf, int in_b, int g, int i, int f, const char *tail)
{
	int n = in_b ? snprintf(buf, PATH_MAX, "/proc/%d/root%s/g%d/m%d", ns_b, base, g, i)
		     : snprintf(buf, PATH_MAX, "%s/g%d/m%d", base, g, i);

	if (f >= 0)	/* a root member has sub/f5..f9, a subdirectory one f5..f9 at its top */
		snprintf(buf + n, PATH_MAX - n, "/%sf%d", f >= FILES / 2 && i % 2 == 0 ?
			 "sub/" : "", f);
	else if (tail)
		snprintf(buf + n, PATH_MAX - n, "/%s", tail);
	return buf;
}

static void content(char *buf, int g, int f)
{
	snprintf(buf, 64, "group %d file %d", g, f);
}

static int setup(void)
{
	char p[PATH_MAX], q[PATH_MAX], text[64];

	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    (mkdir("mnt", 0755) && errno != EEXIST) || !(base = realpath("mnt", NULL)) ||
	    mount("bench-base", base, "tmpfs", 0, "size=4m,mode=755"))
		return -1;
	for (int g = 0; g < groups; g++) {
		snprintf(p, sizeof(p), "%s/g%d", base, g);
		if (mkdir(p, 0755))
			return -1;
		for (int i = 0; i < MEMBERS; i++)
			if (mkdir(path(p, 0, g, i, -1, NULL), 0755))
				return -1;
		snprintf(text, sizeof(text), "bench-g%d", g);
		if (mount(text, path(p, 0, g, 0, -1, NULL), "tmpfs", 0, "size=1m,mode=755") ||
		    mount(NULL, p, NULL, MS_SHARED, NULL) ||
		    mkdir(path(p, 0, g, 0, -1, "sub"), 0755) ||
		    mkdir(path(p, 0, g, 0, -1, "probe"), 0755))
			return -1;
		for (int f = 0; f < FILES; f++) {
			int fd = open(path(p, 0, g, 0, f, NULL), O_CREAT | O_WRONLY, 0644);

			content(text, g, f);
			if (fd < 0 || write(fd, text, strlen(text)) < 0 || close(fd))
				return -1;
		}
		for (int i = 1; i < MEMBERS; i++)
			if (mount(path(q, 0, g, 0, -1, i % 2 ? "sub" : NULL),
				  path(p, 0, g, i, -1, NULL), NULL, MS_BIND, NULL))
				return -1;
	}
	return 0;
}

/* Run again from inside namespace A: CRIU looks the executable and the fds up among the
 * mounts of the tree's namespaces, which those opened before the unshare are not on. */
static int inside(char **argv)
{
	char exe[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	int null = open("/dev/null", O_RDWR);

	if (len < 0 || null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
		return -1;
	exe[len] = 0;
	close(null);
	setenv("MOUNTS_INSIDE", "1", 1);
	execv(exe, argv);
	return -1;
}

/* The mounts of a namespace's mountinfo, and the members among them (checked: once
 * each, with their root, in the peer group of the rest of G: peer[G], 0 until seen). */
static int scan(const char *info, int *peer, char *seen)
{
	char line[4096], root[PATH_MAX], point[PATH_MAX];
	size_t len = strlen(base);
	int count = 0;
	FILE *f = fopen(info, "r");

	if (!f) {
		bad("cannot open %s", info);
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *dash = strstr(line, " - "), *tag = strstr(line, " shared:");
		int g, i, end = 0, group = tag && tag < dash ? atoi(tag + 8) : 0;

		count++;
		if (sscanf(line, "%*d %*d %*s %4095s %4095s", root, point) != 2 ||
		    strncmp(point, base, len) || sscanf(point + len, "/g%d/m%d%n", &g, &i, &end) != 2 ||
		    point[len + end] || g < 0 || g >= groups || i < 0 || i >= MEMBERS)
			continue;
		if (seen[g * MEMBERS + i]++)
			bad("%s: twice", point);
		if (strcmp(root, i % 2 ? "/sub" : "/"))
			bad("%s: root %s", point, root);
		if (!group || (peer[g] && peer[g] != group))
			bad("%s: not in its group's peer group (shared:%d)", point, group);
		peer[g] = group;
	}
	fclose(f);
	for (int m = 0; m < groups * MEMBERS; m++)
		if (!seen[m])
			bad("%s: member %d missing", info, m);
	return count;
}

static int same_dev(const char *a, const char *b)
{
	struct stat sa, sb;

	return !stat(a, &sa) && !stat(b, &sb) && sa.st_dev == sb.st_dev;
}

static void check(int count_a, int count_b)
{
	char p[PATH_MAX], q[PATH_MAX], want[64], got[64], info[64];
	int n, *peer = calloc(groups, sizeof(int));
	char *seen = calloc(2 * groups * MEMBERS, 1);

	snprintf(info, sizeof(info), "/proc/%d/mountinfo", ns_b);
	if ((n = scan("/proc/self/mountinfo", peer, seen)) != count_a)
		bad("namespace A: %d mounts, %d before", n, count_a);
	if ((n = scan(info, peer, seen + groups * MEMBERS)) != count_b)
		bad("namespace B: %d mounts, %d before", n, count_b);
	for (int g = 0; g < groups && !why[0]; g++)
		for (int h = 0; h < g; h++)
			if (peer[g] == peer[h])
				bad("groups %d and %d share a peer group", h, g);
	for (int g = 0; g < groups && !why[0]; g++)
		for (int b = 0; b < 2; b++)
			for (int i = 0; i < MEMBERS; i++)
				for (int f = i % 2 ? FILES / 2 : 0; f < FILES; f++) {
					int fd = open(path(p, b, g, i, f, NULL), O_RDONLY);

					n = fd < 0 ? -1 : read(fd, got, sizeof(got) - 1);
					got[n < 0 ? 0 : n] = 0;
					content(want, g, f);
					if (fd >= 0)
						close(fd);
					if (strcmp(got, want))
						bad("%s: \"%s\", not \"%s\"", p, got, want);
				}
	/* propagation, A to B: in every root member of G there, in no other group */
	for (int g = 0; g < groups && !why[0]; g++) {
		if (mount("bench-probe", path(p, 0, g, 0, -1, "probe"), "tmpfs", 0, "size=64k")) {
			bad("%s: mount the probe: %s", p, strerror(errno));
			break;
		}
		for (int i = 0; i < MEMBERS; i += 2)
			if (!same_dev(p, path(q, 1, g, i, -1, "probe")))
				bad("%s: the probe mounted in A does not show", q);
		if (groups > 1 && same_dev(p, path(q, 1, (g + 1) % groups, 0, -1, "probe")))
			bad("%s: the probe of group %d shows", q, g);
		if (umount2(p, 0))
			bad("%s: umount the probe: %s", p, strerror(errno));
		if (!same_dev(path(p, 1, g, 0, -1, NULL), path(q, 1, g, 0, -1, "probe")))
			bad("%s: the probe stays after its umount in A", q);
	}
}

static int count(const char *info)
{
	char line[4096];
	int n = 0;
	FILE *f = fopen(info, "r");

	while (f && fgets(line, sizeof(line), f))
		n++;
	if (f)
		fclose(f);
	return n;
}

int main(int argc, char **argv)
{
	int n = argc > 2 ? atoi(argv[1]) : 1000, ready[2], count_a, count_b;
	pid_t parent = getpid();
	const char *result = argv[argc - 1];
	char text[128], info[64], c;
	struct stat a, b;

	groups = n / (2 * MEMBERS);
	if (argc < 2 || groups < 1)
		return 2;
	if (!getenv("MOUNTS_INSIDE") && (setup() || inside(argv))) {
		snprintf(text, sizeof(text), "setup: %s\n", strerror(errno));
		put(result, text);
		return 3;
	}
	signal(SIGTERM, on_term);
	if (!(base = realpath("mnt", NULL)) || pipe(ready))
		return 3;
	ns_b = fork();
	if (ns_b < 0)
		return 3;
	if (ns_b == 0) {	/* B: a copy of A's mounts, its shared ones peers of A's */
		/* an engine that gives up after killing the root leaves nothing behind */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent || unshare(CLONE_NEWNS))
			_exit(3);
		close(ready[0]);
		close(ready[1]);
		for (;;)
			pause();
	}
	close(ready[1]);
	if (read(ready[0], &c, 1) != 0)		/* end of file: B unshared */
		return 3;
	close(ready[0]);
	snprintf(info, sizeof(info), "/proc/%d/mountinfo", ns_b);
	count_a = count("/proc/self/mountinfo");
	count_b = count(info);
	snprintf(text, sizeof(text), "ready %d\n", getpid());
	put(result, text);
	while (!stop)
		pause();

	snprintf(info, sizeof(info), "/proc/%d/ns/mnt", ns_b);
	if (stat("/proc/self/ns/mnt", &a) || stat(info, &b) || a.st_ino == b.st_ino)
		bad("%s: B is not a mount namespace of its own", info);
	check(count_a, count_b);
	kill(ns_b, SIGKILL);
	waitpid(ns_b, NULL, 0);
	put(result, why[0] ? why : "OK\n");
	return why[0] ? 1 : 0;
}
