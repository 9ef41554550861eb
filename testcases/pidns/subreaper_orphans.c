/*
 * Child subreapers at several depths and the orphans re-parented to them:
 *
 *   R (root: a child subreaper in the h flavor, an init in ns and uns)
 *   |- S1 (subreaper, depth 1)
 *   |  |- O1   forked by X1 (a child of S1 that exited): re-parented to S1
 *   |  |- Z1   likewise, then exited: a zombie child of S1
 *   |  `- M    a plain child of S1
 *   |     `- S3 (subreaper, depth 3)
 *   |        |- O3  forked by X3 (a grandchild of S3 through Y3), X3 exited:
 *   |        |      it passed Y3 (not a subreaper) and went to S3
 *   |        `- Y3
 *   `- S0 (was a subreaper, cleared the flag after its orphan O0 came)
 *      `- O0
 *
 * Each process saves its pid, ppid, pgid, sid, subreaper flag and children
 * (/proc/thread-self/children) and checks them after the restore. Then S1
 * waits for its zombie Z1 (exit status 7) and for O1; S3 for O3: each wait
 * must give exactly the re-parented child and its status. And W, another
 * subreaper, is blocked in waitid(P_ALL) over the checkpoint on OW, an orphan
 * re-parented to it: once OW exits (status 5) after the restore, the wait
 * returns exactly it.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "helpers.h"

const char *test_doc = "orphans re-parented to child subreapers at several depths, with "
		       "their zombies";

struct seen {
	pid_t pid, ppid, pgid, sid;
	int subreaper;
	char children[256];
};

static struct ready ready;
static struct seen before;
static const char *role = "R", *orphan_role;
static pid_t kids[8];
static int nkids;
static pid_t zombie;		/* a zombie child to reap after the checks (S1's Z1) */
static pid_t middle;		/* in an orphan-to-be: the parent it was forked by */

static int look(struct seen *s)
{
	s->pid = getpid();
	s->ppid = getppid();
	s->pgid = getpgid(0);
	s->sid = getsid(0);
	if (prctl(PR_GET_CHILD_SUBREAPER, &s->subreaper) ||
	    read_whole("/proc/thread-self/children", s->children, sizeof(s->children)) < 0) {
		pr_perror("%s: looking at itself", role);
		return -1;
	}
	return 0;
}

static int check(void)
{
	struct seen now = {};

	if (look(&now))
		return 1;
	if (now.pid != before.pid || now.ppid != before.ppid || now.pgid != before.pgid ||
	    now.sid != before.sid || now.subreaper != before.subreaper ||
	    strcmp(now.children, before.children)) {
		fail("%s: pid %d ppid %d pgid %d sid %d subreaper %d children \"%s\"; was pid %d "
		     "ppid %d pgid %d sid %d subreaper %d children \"%s\"", role, now.pid,
		     now.ppid, now.pgid, now.sid, now.subreaper, now.children, before.pid,
		     before.ppid, before.pgid, before.sid, before.subreaper, before.children);
		return 1;
	}
	return 0;
}

/* The process we become after the fork: save, ready, wait for the restore, check. */
static void settle(void)
{
	int bad = 0, i;

	if (look(&before))
		exit(1);
	ready_signal(&ready);
	test_waitsig();
	bad = check();
	if (zombie) {
		int st = wait_status(zombie);

		if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 7) {
			fail("%s: its zombie %d gave status %#x, not exit 7", role, zombie, st);
			bad = 1;
		}
	}
	for (i = 0; i < nkids; i++)
		bad |= stop_children(&kids[i], 1) ? 1 : 0;
	exit(bad);
}

static pid_t spawn(const char *name, void (*body)(void))
{
	pid_t pid = fork_or_exit();

	if (pid == 0) {
		role = name;
		nkids = 0;
		zombie = 0;
		if (body)
			body();
		settle();
	}
	return pid;
}

/* A middle process that forks what ``body`` makes and exits: its children are orphans.
 * It tells us their pids through a pipe. */
static void orphan_via_middle(void (*body)(int w), pid_t *out, int n)
{
	int p[2], i;
	pid_t mid;

	if (pipe(p))
		exit(1);
	mid = fork_or_exit();
	if (mid == 0) {
		close(p[0]);
		middle = getpid();
		body(p[1]);
		_exit(0);
	}
	close(p[1]);
	for (i = 0; i < n; i++)
		if (read(p[0], &out[i], sizeof(out[i])) != sizeof(out[i]))
			exit(1);
	close(p[0]);
	wait_status(mid);
}

/* an orphan-to-be: settles once its parent (the middle) is gone */
static void wait_orphaned(void)
{
	while (getppid() == middle)
		sleep_ms(1);
}

static void make_orphan(int w)
{
	pid_t o = spawn(orphan_role, wait_orphaned);

	if (write(w, &o, sizeof(o)) != sizeof(o))
		_exit(1);
}

static void make_z1(int w)
{
	pid_t z = fork_or_exit();

	if (z == 0) {		/* tells its pid, then becomes a zombie of S1 */
		sleep_ms(100);
		_exit(7);
	}
	if (write(w, &z, sizeof(z)) != sizeof(z))
		_exit(1);
}

static void make_o3(int w)		/* X3: under Y3's child, two levels below S3 */
{
	pid_t o = spawn("O3", wait_orphaned);

	if (write(w, &o, sizeof(o)) != sizeof(o))
		_exit(1);
}

static pid_t o3;

static void y3(void)
{
	/* Y3 forks X3 which forks O3 and exits: O3 goes past Y3 (not a subreaper) */
	orphan_via_middle(make_o3, &o3, 1);
}

static pid_t o1, z1;

static void s3(void)
{
	int p[2];
	pid_t y;

	if (prctl(PR_SET_CHILD_SUBREAPER, 1))
		exit(1);
	if (pipe(p))
		exit(1);
	y = fork_or_exit();
	if (y == 0) {
		close(p[0]);
		role = "Y3";
		nkids = 0;
		y3();
		if (write(p[1], &o3, sizeof(o3)) != sizeof(o3))
			exit(1);
		settle();
	}
	close(p[1]);
	if (read(p[0], &o3, sizeof(o3)) != sizeof(o3))
		exit(1);
	kids[nkids++] = o3;
	kids[nkids++] = y;
}

static void m(void)
{
	kids[nkids++] = spawn("S3", s3);
}

static void s1(void)
{
	if (prctl(PR_SET_CHILD_SUBREAPER, 1))
		exit(1);
	orphan_role = "O1";
	orphan_via_middle(make_orphan, &o1, 1);
	orphan_via_middle(make_z1, &z1, 1);
	if (wait_zombie(z1, 5000))
		exit(1);
	kids[nkids++] = o1;
	kids[nkids++] = spawn("M", m);
	zombie = z1;
}

static void s0(void)
{
	pid_t o0;

	if (prctl(PR_SET_CHILD_SUBREAPER, 1))
		exit(1);
	orphan_role = "O0";
	orphan_via_middle(make_orphan, &o0, 1);
	if (prctl(PR_SET_CHILD_SUBREAPER, 0))
		exit(1);
	kids[nkids++] = o0;
}

/*
 * W: a subreaper blocked in waitid(P_ALL) on OW, an orphan re-parented to it, from
 * before the checkpoint until OW exits (after the restore, SIGTERMed by the root): the
 * wait must give exactly OW's pid and exit status 5. W exits 0 when it did.
 */
static pid_t ow;

static void make_ow(int w)
{
	pid_t o = fork_or_exit();

	if (o == 0) {
		while (getppid() == middle)
			sleep_ms(1);
		ready_signal(&ready);
		test_waitsig();
		_exit(5);
	}
	if (write(w, &o, sizeof(o)) != sizeof(o))
		_exit(1);
}

static pid_t spawn_waiter(int tell)
{
	pid_t w = fork_or_exit();

	if (w == 0) {
		siginfo_t si = {};

		if (prctl(PR_SET_CHILD_SUBREAPER, 1))
			_exit(1);
		orphan_via_middle(make_ow, &ow, 1);
		if (write(tell, &ow, sizeof(ow)) != sizeof(ow))
			_exit(1);
		ready_signal(&ready);
		/* blocked here over the checkpoint: SIGTERM (the lib's handler) restarts it */
		while (waitid(P_ALL, 0, &si, WEXITED) && errno == EINTR)
			;
		if (si.si_pid != ow || si.si_code != CLD_EXITED || si.si_status != 5) {
			fail("W: waitid gave pid %d code %d status %d, expected %d exited with 5",
			     si.si_pid, si.si_code, si.si_status, ow);
			_exit(1);
		}
		_exit(0);
	}
	return w;
}

int main(int argc, char **argv)
{
	int bad, i, tell[2];
	pid_t w;

	test_init(argc, argv);
	if (getpid() != 1 && prctl(PR_SET_CHILD_SUBREAPER, 1)) {
		pr_perror("PR_SET_CHILD_SUBREAPER");
		return 1;
	}
	ready_init(&ready);
	kids[nkids++] = spawn("S1", s1);
	kids[nkids++] = spawn("S0", s0);
	if (pipe(tell))
		return 1;
	w = spawn_waiter(tell[1]);
	if (read(tell[0], &ow, sizeof(ow)) != sizeof(ow))
		return 1;
	/* S1, O1, M, S3, Y3, O3, S0, O0, W, OW */
	if (ready_wait(&ready, 10)) {
		fail("the tree did not come up");
		return 1;
	}
	if (look(&before))
		return 1;

	test_daemon();
	test_waitsig();

	before.ppid = getppid();
	bad = check();
	for (i = 0; i < nkids; i++)
		bad |= stop_children(&kids[i], 1) ? 1 : 0;
	kill(ow, SIGTERM);		/* W, waiting for it, then exits */
	if (child_passed(w, "W waiting for its re-parented child"))
		bad = 1;
	if (bad)
		fail("a process found itself changed");
	else
		pass();
	return 0;
}
