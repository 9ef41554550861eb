/*
 * Runs a random process tree script (testcases/pidns/randtree.py makes them):
 * forks, exits (zombies, or reaped by the parent), setsid, setpgid to a new
 * group or into another process's, child subreaper on and off - so that
 * re-parenting scatters sessions and groups across the tree.
 *
 * --script=OPS: comma-separated ops, each "letter.actor[.arg]", actors and
 * args being process ids of the script (0: the root):
 *   f.A.B  A forks B          s.A    A calls setsid()
 *   g.A    setpgid(0, 0)      j.A.B  A joins B's group (setpgid(0, pgid of B))
 *   u.A.1  subreaper on (0: off)
 *   x.A.C  A exits with status C (its children go to the nearest subreaper)
 *   w.A.B  A reaps its zombie child B
 *
 * The ops run one at a time in script order: the root hands out turns through
 * shared memory and waits for each to be done (an exit: until the process is
 * a zombie or gone). Then every live process saves pid, ppid, pgid and sid;
 * after the restore each checks them and writes its verdict to shared memory,
 * and the root collects them all. The harness compares the whole tree from
 * outside too.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "helpers.h"

const char *test_doc = "a random tree of forks, exits, sessions, groups and subreapers";

static char *script;
TEST_OPTION(script, string, "the ops (see the comment at the top)", 1);

#define MAX_OPS 256
#define MAX_PROCS 64

struct op {
	char kind;
	int actor, arg;
};

struct shared {
	volatile int turn, ack, ready, checked;
	volatile pid_t pid[MAX_PROCS];
	volatile int verdict[MAX_PROCS];	/* 1 passed, 2 failed */
};

static struct op ops[MAX_OPS];
static int nops;
static struct shared *sh;
static int me;			/* our id in the script */
static pid_t saved[4];		/* pid, ppid, pgid, sid */

static int parse(void)
{
	char *copy = strdup(script), *tok, *save;

	for (tok = strtok_r(copy, ",", &save); tok && nops < MAX_OPS;
	     tok = strtok_r(NULL, ",", &save)) {
		struct op *o = &ops[nops++];

		o->kind = tok[0];
		o->arg = 0;
		if (sscanf(tok + 1, ".%d.%d", &o->actor, &o->arg) < 1) {
			pr_err("bad op \"%s\"\n", tok);
			return -1;
		}
	}
	return 0;
}

static void look(pid_t *ids)
{
	ids[0] = getpid();
	ids[1] = getppid();
	ids[2] = getpgid(0);
	ids[3] = getsid(0);
}

static int run_op(const struct op *o)
{
	pid_t pid;

	switch (o->kind) {
	case 'f':
		pid = fork_or_exit();
		if (pid == 0) {
			me = o->arg;
			sh->pid[me] = getpid();
			return 1;	/* in the child: start following turns */
		}
		sh->pid[o->arg] = pid;
		return 0;
	case 's':
		return setsid() < 0 ? -1 : 0;
	case 'g':
		return setpgid(0, 0);
	case 'j':
		return setpgid(0, getpgid(sh->pid[o->arg]));
	case 'u':
		return prctl(PR_SET_CHILD_SUBREAPER, o->arg);
	case 'x':
		_exit(o->arg);
	case 'w':
		return waitpid(sh->pid[o->arg], NULL, 0) == sh->pid[o->arg] ? 0 : -1;
	}
	return -1;
}

/* Follow the turns until the script is done (every process but the root). */
static void follow(void)
{
	int seen = -1;

	for (;;) {
		int turn = sh->turn;

		if (turn >= nops)
			return;
		if (turn != seen && ops[turn].actor == me) {
			int ret = run_op(&ops[turn]);

			if (ret == 1) {		/* a new child: it follows from the next turn */
				seen = turn;
				continue;
			}
			if (ret < 0)
				pr_perror("op %d (%c) of %d", turn, ops[turn].kind, me);
			sh->ack = turn;
			seen = turn;
		}
		usleep(200);
	}
}

static int gone_or_zombie(pid_t pid)
{
	char path[64], buf[512], *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (read_whole(path, buf, sizeof(buf)) < 0)
		return 1;
	p = strrchr(buf, ')');
	return p && p[2] == 'Z';
}

/* The root: hand out every turn, doing its own ops itself; 1 in a child it forked. */
static int lead(void)
{
	int t;

	for (t = 0; t < nops; t++) {
		double deadline = now_mono() + 5;

		sh->ack = -1;
		__atomic_store_n(&sh->turn, t, __ATOMIC_SEQ_CST);
		if (ops[t].actor == 0) {
			int ret = run_op(&ops[t]);

			if (ret == 1)
				return 1;	/* the new child: it follows from here */
			if (ret < 0)
				pr_perror("op %d (%c) of the root", t, ops[t].kind);
			continue;
		}
		while (ops[t].kind == 'x' ? !gone_or_zombie(sh->pid[ops[t].actor]) :
					    sh->ack != t) {
			if (now_mono() > deadline) {
				pr_err("op %d (%c of %d) not done in 5 s\n", t, ops[t].kind,
				       ops[t].actor);
				return -1;
			}
			usleep(100);
		}
	}
	__atomic_store_n(&sh->turn, nops, __ATOMIC_SEQ_CST);
	return 0;
}

/* After the script, a live process other than the root: save, wait, check, report. */
static void settle(void)
{
	pid_t now[4];

	look(saved);
	__atomic_add_fetch(&sh->ready, 1, __ATOMIC_SEQ_CST);
	test_waitsig();
	look(now);
	if (memcmp(now, saved, sizeof(now))) {
		fail("process %d of the script: pid %d ppid %d pgid %d sid %d, was %d %d %d %d", me,
		     now[0], now[1], now[2], now[3], saved[0], saved[1], saved[2], saved[3]);
		sh->verdict[me] = 2;
	} else {
		sh->verdict[me] = 1;
	}
	for (;;)
		pause();
}

/* How many processes are alive at the end of the script (the root aside). */
static int live_count(void)
{
	int alive[MAX_PROCS] = {}, t, n = 0, i;

	for (t = 0; t < nops; t++)
		if (ops[t].kind == 'f')
			alive[ops[t].arg] = 1;
		else if (ops[t].kind == 'x')
			alive[ops[t].actor] = 0;
	for (i = 1; i < MAX_PROCS; i++)
		n += alive[i];
	return n;
}

int main(int argc, char **argv)
{
	int live, i, ret, bad = 0;
	pid_t now[4];
	double deadline;

	test_init(argc, argv);
	if (parse())
		return 1;
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;
	sh->turn = -1;
	if (getpid() != 1 && prctl(PR_SET_CHILD_SUBREAPER, 1)) {
		pr_perror("PR_SET_CHILD_SUBREAPER");
		return 1;
	}
	sh->pid[0] = getpid();
	ret = lead();
	if (ret == 1) {			/* a process of the script */
		follow();
		settle();
	}
	if (ret < 0) {
		fail("the script did not run through");
		return 1;
	}
	live = live_count();
	deadline = now_mono() + 10;
	while (sh->ready < live && now_mono() < deadline)
		usleep(1000);
	if (sh->ready != live) {
		fail("%d of %d processes got ready", sh->ready, live);
		return 1;
	}
	look(saved);

	test_daemon();
	test_waitsig();

	look(now);
	if (now[0] != saved[0] || now[2] != saved[2] || now[3] != saved[3]) {
		fail("the root: pid %d pgid %d sid %d, was %d %d %d", now[0], now[2], now[3],
		     saved[0], saved[2], saved[3]);
		bad = 1;
	}
	for (i = 1; i < MAX_PROCS; i++)
		if (sh->pid[i] && !gone_or_zombie(sh->pid[i]))
			kill(sh->pid[i], SIGTERM);
	deadline = now_mono() + 10;
	for (;;) {
		int waiting = 0;

		for (i = 1; i < MAX_PROCS; i++)
			if (sh->pid[i] && !sh->verdict[i] && !gone_or_zombie(sh->pid[i]))
				waiting++;
		if (!waiting || now_mono() > deadline)
			break;
		usleep(1000);
	}
	for (i = 1; i < MAX_PROCS; i++) {
		if (sh->verdict[i] == 2)
			bad = 1;
		else if (sh->pid[i] && !sh->verdict[i] && !gone_or_zombie(sh->pid[i])) {
			fail("process %d of the script (pid %d) gave no verdict", i, sh->pid[i]);
			bad = 1;
		}
		if (sh->pid[i])
			kill(sh->pid[i], SIGKILL);
	}
	/* everything left comes to us (a subreaper, or the init): reap it all */
	deadline = now_mono() + 10;
	while (waitpid(-1, NULL, WNOHANG) >= 0 && now_mono() < deadline)
		usleep(1000);
	if (bad)
		fail("a process of the script found itself changed");
	else
		pass();
	return 0;
}
