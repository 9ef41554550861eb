/*
 * A process tree spread across nested pid namespaces, for bench_pstree.py:
 *
 *   pid_tree TOTAL LEVELS RESULT
 *
 * The root and LEVELS nested pid namespaces below it (unshare(CLONE_NEWPID) + fork: each
 * namespace's init is a child of the previous level's) hold TOTAL processes in all,
 * spread evenly: in each level the init (the root at level 0) forks the others as
 * sleepers. Every process saves its pid (as its namespace numbers it) in a slot of a
 * shared mapping. RESULT gets "ready <root pid>" once all are up; on SIGTERM the root
 * sends SIGUSR1 to its process group (the whole tree), each process checks its pid and
 * marks its slot, and the root writes "OK" (or what failed) once every slot is marked.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "result_file.h"

#define MAX 4096

struct slots {
	volatile int up, checked, bad;
	volatile pid_t pid[MAX];
};

static struct slots *sh;
static int me, nkids;
static pid_t kids[MAX];		/* in each process: the children it forked */

static void on_usr1(int sig)
{
	(void)sig;
	if (getpid() != sh->pid[me])
		__atomic_add_fetch(&sh->bad, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&sh->checked, 1, __ATOMIC_SEQ_CST);
}

static void sleeper(void)
{
	for (;;)
		pause();
}

/* Fork process ``*next`` of the tree: 0 in it (registered, counted up), its pid here. */
static pid_t spawn(int *next)
{
	int id = (*next)++;
	pid_t pid = fork();

	if (pid < 0)
		exit(3);
	if (pid == 0) {
		me = id;
		nkids = 0;
		sh->pid[me] = getpid();
		__atomic_add_fetch(&sh->up, 1, __ATOMIC_SEQ_CST);
		return 0;
	}
	kids[nkids++] = pid;
	return pid;
}

/* In the init of ``level`` (the root at 0): fork this level's processes, then the next
 * level's init. */
static void grow(int level, int levels, int per_level, int *next)
{
	int i;

	for (i = 1; i < per_level; i++)
		if (spawn(next) == 0)
			sleeper();
	if (level == levels)
		return;
	if (unshare(CLONE_NEWPID))
		exit(4);
	if (spawn(next) == 0) {
		grow(level + 1, levels, per_level, next);
		sleeper();
	}
}

int main(int argc, char **argv)
{
	int total = argc > 1 ? atoi(argv[1]) : 1000, levels = argc > 2 ? atoi(argv[2]) : 4;
	int per_level = total / (levels + 1), next = 1, n = per_level * (levels + 1);
	const char *result = argc > 3 ? argv[3] : "result";
	struct sigaction sa = { .sa_handler = on_usr1 };
	char text[128];

	if (n > MAX)
		return 2;
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 2;
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGTERM, on_term);
	sh->pid[0] = getpid();
	grow(0, levels, per_level, &next);
	while (sh->up < n - 1)
		usleep(1000);
	snprintf(text, sizeof(text), "ready %d\n", getpid());
	put(result, text);
	while (!stop)
		pause();
	signal(SIGUSR1, SIG_IGN);
	kill(0, SIGUSR1);
	for (int i = 0; i < 10000 && sh->checked < n - 1; i++)
		usleep(1000);
	if (sh->checked == n - 1 && !sh->bad)
		put(result, "OK\n");
	else {
		snprintf(text, sizeof(text), "checked %d of %d, %d with another pid\n", sh->checked,
			 n - 1, sh->bad);
		put(result, text);
	}
	for (int i = 0; i < nkids; i++) {	/* an init's end takes its namespace along */
		kill(kids[i], SIGKILL);
		waitpid(kids[i], NULL, 0);
	}
	return 0;
}
