/*
 * Sessions and process groups. The test root is a session leader (test_init
 * calls setsid). It has:
 *   a child in its own group          (pgid = sid = root)
 *   a child leading a new group B     (setpgid(0, 0)), with a child in group B
 *   a child leading a new session S   (setsid), which has
 *       a child in a new group S2 of session S, with a child joining S2,
 *       a child staying in S's leader group,
 * and one process that joins group B although its parent is elsewhere.
 * After restore every member checks getpid/getppid/getpgid/getsid of itself,
 * and the root checks getpgid()/getsid() of every pid it recorded.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "helpers.h"

const char *test_doc = "sessions, process groups, members in other groups";

struct member {
	pid_t pid, ppid, pgid, sid;
};

enum { ROOT_KID, GRP_LEADER, GRP_MEMBER, SES_LEADER, SES_GRP_LEADER, SES_GRP_MEMBER,
       SES_PLAIN, JOINER, NMEMBERS };

static struct ready ready;

static int check(const char *who, pid_t pid, pid_t pgid, pid_t sid)
{
	pid_t g = getpgid(pid), s = getsid(pid);

	if (g != pgid || s != sid) {
		fail("%s %d: pgid %d sid %d, expected pgid %d sid %d", who, pid, g, s, pgid, sid);
		return -1;
	}
	return 0;
}

/*
 * Members report their identity through a pipe before the checkpoint (the pipe
 * is closed before test_daemon) and re-check it themselves after restore.
 */
static int report_fd;

static void report(int index)
{
	struct member m = { getpid(), getppid(), getpgid(0), getsid(0) };
	int rec[5] = { index, m.pid, m.ppid, m.pgid, m.sid };

	if (write(report_fd, rec, sizeof(rec)) != sizeof(rec))
		pr_perror("report");
}

static void __attribute__((noreturn)) live(int index, pid_t *kids, int nkids)
{
	pid_t pid = getpid(), ppid = getppid(), pgid = getpgid(0), sid = getsid(0);
	int bad = 0;

	report(index);
	close(report_fd);
	ready_signal(&ready);
	test_waitsig();
	if (getpid() != pid || getppid() != ppid) {
		fail("member %d: pid %d ppid %d, expected %d %d", index, getpid(), getppid(), pid, ppid);
		bad = 1;
	}
	bad |= check("self", 0, pgid, sid) ? 1 : 0;
	if (getpgrp() != pgid) {
		fail("getpgrp() %d, expected %d", getpgrp(), pgid);
		bad = 1;
	}
	bad |= stop_children(kids, nkids) ? 1 : 0;
	exit(bad);
}

static pid_t spawn(void)
{
	pid_t pid = fork_or_exit();
	return pid;
}

int main(int argc, char **argv)
{
	struct member expect[NMEMBERS];
	pid_t kids[4];
	int fds[2], i, bad = 0, pipe_to_joiner[2];
	pid_t root;

	test_init(argc, argv);
	root = getpid();
	ready_init(&ready);
	if (pipe(fds) || pipe(pipe_to_joiner)) {
		pr_perror("pipe");
		return 1;
	}
	report_fd = fds[1];

	/* a child in the root's group */
	if ((kids[0] = spawn()) == 0) {
		close(fds[0]);
		close(pipe_to_joiner[0]);
		close(pipe_to_joiner[1]);
		live(ROOT_KID, NULL, 0);
	}

	/* a group leader B with one member; B tells the joiner its pgid */
	if ((kids[1] = spawn()) == 0) {
		pid_t member;

		close(fds[0]);
		close(pipe_to_joiner[0]);
		if (setpgid(0, 0)) {
			pr_perror("setpgid");
			exit(1);
		}
		if ((member = spawn()) == 0) {
			close(pipe_to_joiner[1]);
			live(GRP_MEMBER, NULL, 0);
		}
		pid_t me = getpid();
		if (write(pipe_to_joiner[1], &me, sizeof(me)) != sizeof(me))
			pr_perror("write");
		close(pipe_to_joiner[1]);
		live(GRP_LEADER, &member, 1);
	}

	/* a new session S with a group S2 (leader + member) and a plain member */
	if ((kids[2] = spawn()) == 0) {
		pid_t sub[2], s2;

		close(fds[0]);
		close(pipe_to_joiner[0]);
		close(pipe_to_joiner[1]);
		if (setsid() < 0) {
			pr_perror("setsid");
			exit(1);
		}
		if ((sub[0] = spawn()) == 0) {
			pid_t member;

			if (setpgid(0, 0)) {
				pr_perror("setpgid");
				exit(1);
			}
			s2 = getpid();
			if ((member = spawn()) == 0) {
				if (setpgid(0, s2)) {
					pr_perror("setpgid(s2)");
					exit(1);
				}
				live(SES_GRP_MEMBER, NULL, 0);
			}
			live(SES_GRP_LEADER, &member, 1);
		}
		if ((sub[1] = spawn()) == 0)
			live(SES_PLAIN, NULL, 0);
		live(SES_LEADER, sub, 2);
	}

	/* a child of the root that joins group B */
	if ((kids[3] = spawn()) == 0) {
		pid_t b;

		close(fds[0]);
		close(pipe_to_joiner[1]);
		if (read(pipe_to_joiner[0], &b, sizeof(b)) != sizeof(b)) {
			pr_perror("read");
			exit(1);
		}
		close(pipe_to_joiner[0]);
		if (setpgid(0, b)) {
			pr_perror("setpgid(B)");
			exit(1);
		}
		live(JOINER, NULL, 0);
	}
	close(pipe_to_joiner[0]);
	close(pipe_to_joiner[1]);
	close(fds[1]);

	if (ready_wait(&ready, NMEMBERS)) {
		fail("the members did not come up");
		return 1;
	}
	memset(expect, 0, sizeof(expect));
	for (i = 0; i < NMEMBERS; i++) {
		int rec[5];
		if (read_data(fds[0], (unsigned char *)rec, sizeof(rec)) || rec[0] < 0 ||
		    rec[0] >= NMEMBERS) {
			fail("bad report");
			return 1;
		}
		expect[rec[0]] = (struct member){ rec[1], rec[2], rec[3], rec[4] };
	}
	close(fds[0]);

	/* the set-up is what the test is about: make sure it really is so */
	if (expect[GRP_LEADER].pgid != expect[GRP_LEADER].pid ||
	    expect[GRP_MEMBER].pgid != expect[GRP_LEADER].pid ||
	    expect[JOINER].pgid != expect[GRP_LEADER].pid || expect[JOINER].sid != root ||
	    expect[SES_LEADER].sid != expect[SES_LEADER].pid ||
	    expect[SES_GRP_MEMBER].pgid != expect[SES_GRP_LEADER].pid ||
	    expect[SES_GRP_MEMBER].sid != expect[SES_LEADER].pid ||
	    expect[SES_PLAIN].pgid != expect[SES_LEADER].pid || expect[ROOT_KID].pgid != root) {
		fail("set-up did not give the expected groups");
		return 1;
	}

	test_daemon();
	test_waitsig();

	if (check("root", 0, root, root))
		bad = 1;
	for (i = 0; i < NMEMBERS; i++)
		if (check("member", expect[i].pid, expect[i].pgid, expect[i].sid))
			bad = 1;
	if (stop_children(kids, 4)) {
		fail("a member found its ids changed");
		bad = 1;
	}
	if (!bad)
		pass();
	return 0;
}
