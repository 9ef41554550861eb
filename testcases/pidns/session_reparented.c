/*
 * Sessions and process groups that re-parenting has separated from their
 * leader, all under the root R (a child subreaper in the h flavor, an init in
 * ns and uns):
 *
 *   a. L1 calls setsid and forks H1, H1 forks P1 and exits: P1 goes past L1
 *      (not a subreaper) to R. P1 is in session L1 (and group L1) while its
 *      leader lives in another branch: its sibling.
 *   b. L2 calls setsid, forks Q2 and exits (R reaps it): session L2 has no
 *      leader any more; Q2 (group L2 too) is R's child.
 *   c. G3 (in R's session) calls setpgid(0, 0), forks K3 and exits (reaped):
 *      group G3 has no leader; K3 is R's child.
 *   d. L4 calls setsid, forks M4 and exits; R does not reap it: a zombie
 *      session leader with its member M4 a child of R too.
 *
 * Every live process saves pid, ppid, pgid and sid and checks them after the
 * restore; R then reaps the zombie L4 (exit status 4). The harness compares
 * the trees (ppid, pgid, sid of every process) from outside as well.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "helpers.h"

const char *test_doc = "sessions and groups whose leader is dead, a zombie or in another "
		       "branch after re-parenting";

struct seen {
	pid_t pid, ppid, pgid, sid;
};

static struct ready ready;
static struct seen before;
static const char *role = "R";
static pid_t middle;

static void look(struct seen *s)
{
	s->pid = getpid();
	s->ppid = getppid();
	s->pgid = getpgid(0);
	s->sid = getsid(0);
}

static int check(void)
{
	struct seen now;

	look(&now);
	if (memcmp(&now, &before, sizeof(now))) {
		fail("%s: pid %d ppid %d pgid %d sid %d; was pid %d ppid %d pgid %d sid %d", role,
		     now.pid, now.ppid, now.pgid, now.sid, before.pid, before.ppid, before.pgid,
		     before.sid);
		return 1;
	}
	return 0;
}

/* A member: once re-parented (its parent, ``middle``, gone), save, ready, wait, check. */
static void member(const char *name)
{
	role = name;
	while (getppid() == middle)
		sleep_ms(1);
	look(&before);
	ready_signal(&ready);
	test_waitsig();
	exit(check());
}

static void send_pid(int w, pid_t pid)
{
	if (write(w, &pid, sizeof(pid)) != sizeof(pid))
		_exit(1);
}

/*
 * Fork a middle process that runs ``body`` (which makes the member and sends its pid
 * on ``w``), then exits; returns the member's pid and, in *mid, the middle's.
 */
static pid_t through(void (*body)(int w), pid_t *mid)
{
	int p[2];
	pid_t got = 0;

	if (pipe(p))
		exit(1);
	*mid = fork_or_exit();
	if (*mid == 0) {
		close(p[0]);
		middle = getpid();
		body(p[1]);
		_exit(0);
	}
	close(p[1]);
	if (read(p[0], &got, sizeof(got)) != sizeof(got))
		exit(1);
	close(p[0]);
	return got;
}

static void make_p1(int w)		/* H1, a child of L1 */
{
	pid_t p = fork_or_exit();

	if (p == 0)
		member("P1");
	send_pid(w, p);
}

static void l1_body(int w)		/* L1: a leader that stays, in its own branch */
{
	pid_t h, p;

	if (setsid() < 0)
		_exit(1);
	p = through(make_p1, &h);
	wait_status(h);
	send_pid(w, p);
	middle = 0;
	role = "L1";
	look(&before);
	ready_signal(&ready);
	test_waitsig();
	exit(check());
}

static void make_q2(int w)		/* L2: a leader that dies */
{
	pid_t q;

	if (setsid() < 0)
		_exit(1);
	q = fork_or_exit();
	if (q == 0)
		member("Q2");
	send_pid(w, q);
}

static void make_k3(int w)		/* G3: a group leader that dies */
{
	pid_t k;

	if (setpgid(0, 0))
		_exit(1);
	k = fork_or_exit();
	if (k == 0)
		member("K3");
	send_pid(w, k);
}

static pid_t l4;

static void make_m4(int w)		/* L4: a leader that stays a zombie */
{
	pid_t m;

	if (setsid() < 0)
		_exit(1);
	m = fork_or_exit();
	if (m == 0)
		member("M4");
	send_pid(w, m);
	_exit(4);
}

int main(int argc, char **argv)
{
	pid_t kids[5], mid;
	int bad, i, n = 0, st, pp[2];

	test_init(argc, argv);
	if (getpid() != 1 && prctl(PR_SET_CHILD_SUBREAPER, 1)) {
		pr_perror("PR_SET_CHILD_SUBREAPER");
		return 1;
	}
	ready_init(&ready);
	if (pipe(pp))
		return 1;
	kids[n] = fork_or_exit();		/* a: L1, which tells P1's pid */
	if (kids[n] == 0) {
		close(pp[0]);
		l1_body(pp[1]);
	}
	close(pp[1]);
	n++;
	if (read(pp[0], &kids[n++], sizeof(pid_t)) != sizeof(pid_t))
		return 1;
	kids[n++] = through(make_q2, &mid);	/* b */
	wait_status(mid);
	kids[n++] = through(make_k3, &mid);	/* c */
	wait_status(mid);
	kids[n++] = through(make_m4, &l4);	/* d: L4 stays a zombie */
	if (wait_zombie(l4, 5000))
		return 1;
	/* L1, P1, Q2, K3, M4 */
	if (ready_wait(&ready, 5)) {
		fail("the tree did not come up");
		return 1;
	}
	look(&before);

	test_daemon();
	test_waitsig();

	before.ppid = getppid();
	bad = check();
	st = wait_status(l4);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 4) {
		fail("the zombie leader L4 gave status %#x, not exit 4", st);
		bad = 1;
	}
	for (i = 0; i < n; i++)
		bad |= stop_children(&kids[i], 1) ? 1 : 0;
	if (bad)
		fail("a process found itself changed");
	else
		pass();
	return 0;
}
