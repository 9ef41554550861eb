/*
 * Pid namespaces nested 4 deep below the root's (5 levels with the root's own
 * in the ns and uns flavors), built the way programs do it:
 *
 *   P (level 0: the root)
 *   |- A   a child in P's namespace (at level 1 it calls setsid, at level 3
 *   |      setpgid(0, 0); at level 2 it runs two more threads)
 *   |- B   unshare(CLONE_NEWPID) + fork: the init of level 1 (pid 1 there),
 *   |      which grows the same shape one level down, to level 4
 *   `- C   forked after B: a process of B's namespace whose parent is outside
 *          it (getppid() is 0 in it); P's children keep going to B's namespace
 *
 * Each process that grows a level (the root, each B) also has a zombie child Z,
 * which exited with 10 + its level: reaped after the restore, with that status.
 *
 * Every process saves before the checkpoint what it sees of itself: the
 * NSpid, NSpgid and NSsid lines of /proc/self/status (every level from the
 * /proc mount's namespace down), getpid(), getppid(), getpgid(0), getsid(0),
 * its threads and children (/proc/self/task), and where its children go
 * (/proc/self/ns/pid_for_children against /proc/self/ns/pid). After the
 * restore it checks all of it again, stops its children (C and A before B:
 * an init's exit kills its namespace) and reports through its exit status.
 *
 * Each init (B, and P where it is one) reads its namespace's ns_last_pid once
 * the whole tree is up (nothing forks after that), after a number of forks of
 * its own that differs per level; after the restore ns_last_pid reads the
 * same, and (in the last namespace, where an init's children stay in its own)
 * the next child it forks gets the pid after it.
 */
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "helpers.h"

const char *test_doc = "pid namespaces nested 4 levels deep: every level's pid, group and "
		       "session, inits, children forked into a namespace from outside it";

#define DEPTH 4
#define MAX_KIDS 3

struct seen {
	char nspid[128], nspgid[128], nssid[128], tasks[256], children[256];
	pid_t pid, ppid, pgid, sid;
	int children_elsewhere;		/* pid_for_children is not our own namespace */
};

static struct ready ready, recorded;
static int go[2];		/* closed by the root once every process is ready */
static struct seen before;
static long last_pid = -1;	/* an init's ns_last_pid at the checkpoint */
static pid_t kids[MAX_KIDS];	/* in the order they are stopped */
static int nkids, depth;
static const char *role = "P";

static int status_line(const char *key, char *out, size_t size)
{
	char buf[4096], *line;
	size_t len = strlen(key);

	if (read_whole("/proc/self/status", buf, sizeof(buf)) < 0)
		return -1;
	for (line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
		if (!strncmp(line, key, len) && line[len] == ':') {
			snprintf(out, size, "%s", line + len + 1);
			return 0;
		}
	return -1;
}

static int by_number(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* The numeric entries of a directory, sorted, as "n n n " (their order is not the point). */
static int list_dir(const char *path, char *out, size_t size)
{
	int ids[64], n = 0, i;
	struct dirent *d;
	DIR *dir = opendir(path);
	size_t len = 0;

	if (!dir)
		return -1;
	while ((d = readdir(dir)) && n < 64)
		if (d->d_name[0] >= '0' && d->d_name[0] <= '9')
			ids[n++] = atoi(d->d_name);
	closedir(dir);
	qsort(ids, n, sizeof(ids[0]), by_number);
	out[0] = 0;
	for (i = 0; i < n && len < size; i++)
		len += snprintf(out + len, size - len, "%d ", ids[i]);
	return 0;
}

static int children_elsewhere(void)
{
	struct stat own, kids_ns;

	if (stat("/proc/self/ns/pid", &own) || stat("/proc/self/ns/pid_for_children", &kids_ns))
		return -1;
	return own.st_ino != kids_ns.st_ino;
}

static int look(struct seen *s)
{
	s->pid = getpid();
	s->ppid = getppid();
	s->pgid = getpgid(0);
	s->sid = getsid(0);
	if (status_line("NSpid", s->nspid, sizeof(s->nspid)) ||
	    status_line("NSpgid", s->nspgid, sizeof(s->nspgid)) ||
	    status_line("NSsid", s->nssid, sizeof(s->nssid)) ||
	    list_dir("/proc/self/task", s->tasks, sizeof(s->tasks)) ||
	    read_whole("/proc/thread-self/children", s->children, sizeof(s->children)) < 0) {
		pr_perror("%s at level %d: reading /proc/self", role, depth);
		return -1;
	}
	s->children_elsewhere = children_elsewhere();
	return 0;
}

static int check(void)
{
	struct seen now = {};
	int bad = 0;

	if (look(&now))
		return 1;
#define SAME_STR(f)                                                                      \
	if (strcmp(before.f, now.f)) {                                                   \
		fail("%s at level %d: " #f " is \"%s\", was \"%s\"", role, depth, now.f,  \
		     before.f);                                                          \
		bad = 1;                                                                 \
	}
#define SAME_INT(f)                                                                      \
	if (before.f != now.f) {                                                         \
		fail("%s at level %d: " #f " is %d, was %d", role, depth, (int)now.f,     \
		     (int)before.f);                                                     \
		bad = 1;                                                                 \
	}
	SAME_STR(nspid) SAME_STR(nspgid) SAME_STR(nssid) SAME_STR(tasks) SAME_STR(children)
	SAME_INT(pid) SAME_INT(ppid) SAME_INT(pgid) SAME_INT(sid) SAME_INT(children_elsewhere)
	return bad;
}

static pid_t zombie;		/* Z: our child that exited with 10 + our level */

/* Z and its exit status: a zombie at every level, reaped by its parent after restore */
static int reap_zombie(void)
{
	int st = wait_status(zombie);

	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 10 + depth) {
		fail("%s at level %d: its zombie %d gave status %#x, not exit %d", role, depth,
		     zombie, st, 10 + depth);
		return 1;
	}
	return 0;
}

static long read_last_pid(void)
{
	char buf[32];

	if (read_whole("/proc/sys/kernel/ns_last_pid", buf, sizeof(buf)) < 0) {
		pr_perror("%s at level %d: reading ns_last_pid", role, depth);
		return -1;
	}
	return atol(buf);
}

/* An init, once every process is ready (nothing forks any more): ns_last_pid. */
static int record_last_pid(void)
{
	char c;

	if (read(go[0], &c, 1) != 0)
		return -1;
	last_pid = read_last_pid();
	ready_signal(&recorded);
	return last_pid < 0 ? -1 : 0;
}

static int check_last_pid(void)
{
	long now = read_last_pid();
	pid_t child;

	if (now != last_pid) {
		fail("%s at level %d: ns_last_pid is %ld, was %ld", role, depth, now, last_pid);
		return 1;
	}
	/* a fork of ours would go to the next namespace down (and move its cursor before
	 * its init checks it), or last_pid + 1 is taken: the next fork gets another pid */
	if (before.children_elsewhere || kill(last_pid + 1, 0) == 0)
		return 0;
	child = fork_or_exit();
	if (child == 0)
		_exit(0);
	wait_status(child);
	if (child != last_pid + 1) {
		fail("%s at level %d: a new child got pid %d, not %ld", role, depth, child,
		     last_pid + 1);
		return 1;
	}
	return 0;
}

/* n children that exit at once, reaped: the namespace's pid cursor moves on by n */
static void burn(int n)
{
	while (n-- > 0) {
		pid_t pid = fork_or_exit();

		if (pid == 0)
			_exit(0);
		wait_status(pid);
	}
}

static void *sleeper(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

/* Save what we see, say ready, wait for the restore, check, stop our children. */
static void settle(void)
{
	int bad, i;

	if (getpid() == 1)		/* an init: as many forks as our level says */
		burn(2 * depth + 1);
	if (look(&before))
		exit(1);
	ready_signal(&ready);
	if (getpid() == 1 && record_last_pid())
		exit(1);
	test_waitsig();
	bad = check();
	if (last_pid >= 0)
		bad |= check_last_pid();
	if (zombie)
		bad |= reap_zombie();
	for (i = 0; i < nkids; i++)		/* one by one: B (an init) last */
		bad |= stop_children(&kids[i], 1) ? 1 : 0;
	exit(bad);
}

static void grow(void);

static pid_t spawn(const char *name, void (*body)(void))
{
	pid_t pid = fork_or_exit();

	if (pid == 0) {
		close(go[1]);	/* only the root holds it: its close is the go */
		role = name;
		nkids = 0;
		zombie = 0;
		body();
		settle();
	}
	return pid;
}

static void child_a(void)
{
	pthread_t t;
	int i;

	if (depth == 1 && setsid() < 0)
		exit(1);
	if (depth == 3 && setpgid(0, 0))
		exit(1);
	if (depth == 2)
		for (i = 0; i < 2; i++)
			if (pthread_create(&t, NULL, sleeper, NULL))
				exit(1);
}

static void child_b(void)
{
	depth++;
	grow();
}

static void child_c(void)
{
}

/* Our children: A here, then B (a new namespace's init) and C (into B's namespace). */
static void grow(void)
{
	pid_t a, b, c;

	zombie = fork_or_exit();
	if (zombie == 0)
		_exit(10 + depth);
	if (wait_zombie(zombie, 5000))
		exit(1);
	a = spawn("A", child_a);
	if (depth == DEPTH) {
		kids[nkids++] = a;
		return;
	}
	if (unshare(CLONE_NEWPID)) {
		pr_perror("unshare(CLONE_NEWPID) at level %d", depth);
		exit(1);
	}
	b = spawn("B", child_b);
	c = spawn("C", child_c);
	kids[nkids++] = c;
	kids[nkids++] = a;
	kids[nkids++] = b;
}

int main(int argc, char **argv)
{
	int bad, i;

	test_init(argc, argv);
	ready_init(&ready);
	ready_init(&recorded);
	if (pipe(go)) {
		pr_perror("pipe");
		return 1;
	}
	grow();
	/* per level above the last: A, B, C; at the last: A */
	if (ready_wait(&ready, 3 * DEPTH + 1)) {
		fail("the tree did not come up");
		return 1;
	}
	close(go[1]);
	if (ready_wait(&recorded, DEPTH)) {
		fail("the inits did not read ns_last_pid");
		return 1;
	}
	if (look(&before))
		return 1;
	if (getpid() == 1) {	/* the init of the tree's own namespace (ns, uns) */
		burn(3);
		last_pid = read_last_pid();
	}

	test_daemon();
	test_waitsig();

	before.ppid = getppid();	/* the root's parent is the harness's business */
	bad = check();
	if (last_pid >= 0)
		bad |= check_last_pid();
	if (zombie)
		bad |= reap_zombie();
	for (i = 0; i < nkids; i++)
		bad |= stop_children(&kids[i], 1) ? 1 : 0;
	if (bad)
		fail("a process of the tree found itself changed");
	else
		pass();
	return 0;
}
