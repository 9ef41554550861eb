/*
 * A process tree four levels deep: the root has 3 children, each has 2
 * children, and the first grandchild of each has one more child. After
 * restore every process checks its pid, its parent's pid and the exact set
 * of its children (known before the checkpoint), then reports up the tree
 * through its exit status.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "helpers.h"

const char *test_doc = "parents and children several levels deep keep their pids and links";

#define MAX_KIDS 3

static struct ready ready;
static pid_t self, parent, kids[MAX_KIDS];
static int nkids;

static int fanout(int depth, int index)
{
	if (depth == 0)
		return 3;
	if (depth == 1)
		return 2;
	if (depth == 2 && index == 0)
		return 1;
	return 0;
}

static int check_children(void)
{
	char path[64], buf[512], *tok, *save;
	int seen = 0, i;

	snprintf(path, sizeof(path), "/proc/self/task/%d/children", self);
	if (read_whole(path, buf, sizeof(buf)) < 0) {
		pr_perror("read %s", path);
		return -1;
	}
	for (tok = strtok_r(buf, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
		pid_t pid = atoi(tok);
		for (i = 0; i < nkids && kids[i] != pid; i++)
			;
		if (i == nkids) {
			fail("%d has an unexpected child %d", self, pid);
			return -1;
		}
		seen++;
	}
	if (seen != nkids) {
		fail("%d has %d children, expected %d", self, seen, nkids);
		return -1;
	}
	return 0;
}

static int check_self(void)
{
	if (getpid() != self) {
		fail("getpid() %d, expected %d", getpid(), self);
		return -1;
	}
	if (getppid() != parent) {
		fail("%d: getppid() %d, expected %d", self, getppid(), parent);
		return -1;
	}
	return check_children();
}

/* Fork this process's subtree; returns in the parent only. */
static void grow(int depth, int index)
{
	int i, n = fanout(depth, index);

	for (i = 0; i < n; i++) {
		pid_t pid = fork_or_exit();
		if (pid == 0) {
			parent = self;
			self = getpid();
			nkids = 0;
			grow(depth + 1, i);
			ready_signal(&ready);
			test_waitsig();
			int bad = check_self();
			bad |= stop_children(kids, nkids);
			exit(bad ? 1 : 0);
		}
		kids[nkids++] = pid;
	}
}

int main(int argc, char **argv)
{
	int bad;

	test_init(argc, argv);
	self = getpid();
	parent = getppid();   /* the launcher now; after it exits, whoever adopts us */
	ready_init(&ready);
	grow(0, 0);
	if (ready_wait(&ready, 3 + 3 * 2 + 3)) {
		fail("the tree did not come up");
		return 1;
	}

	test_daemon();
	test_waitsig();

	parent = getppid();   /* the root's parent is the harness's business */
	bad = check_self();
	if (stop_children(kids, nkids)) {
		fail("a descendant found its links changed");
		bad = 1;
	}
	if (!bad)
		pass();
	return 0;
}
