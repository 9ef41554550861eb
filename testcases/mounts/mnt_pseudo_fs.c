/*
 * Pseudo file systems of the tree's own namespaces, mounted under --dirname (flavors ns
 * and uns: the program needs pid, network and IPC namespaces of its own):
 *
 *   D/proc  proc (of its pid namespace) with hidepid=2
 *   D/sys   sysfs (of its network namespace)
 *   D/pts   devpts, a new instance with ptmxmode=0666
 *   D/mq    mqueue (of its IPC namespace)
 *
 * Before the dump and after the restore: D/proc/self is this process and D/proc/1 its
 * namespace's init (the same comm and pid namespace as /proc/1); mountinfo says
 * hidepid=invisible, and a child that became uid 1000 does not see D/proc/1 while it
 * sees /proc/1; D/sys/class/net lists only lo; mountinfo says ptmxmode=666, D/pts holds
 * only ptmx (char 5:2, mode 0666), and a pty opened through it is number 0 of the
 * instance, shows as D/pts/0 and goes with its close; D/mq is empty, a queue made with
 * mq_open() shows in it and goes with mq_unlink().
 */
#include <grp.h>
#include <mqueue.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>

#include "mntcheck.h"

const char *test_doc = "proc with hidepid, sysfs, a new devpts instance and mqueue of the "
		       "tree's own namespaces";

static char super_before[4][1024];
static int no_sysfs;		/* in a user namespace that has no sysfs to show */
static const char *const fstypes[4] = { "proc", "sysfs", "devpts", "mqueue" };
static const char *const points[4] = { "proc", "sys", "pts", "mq" };

static const char *at(const char *rel)
{
	return mp("%s/%s", mnt_dir, rel);
}

static unsigned long ino_of(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : st.st_ino;
}

/* 0: as uid 1000, D/proc/1 is hidden while /proc/1 and D/proc/self are there (looked up
 * from an fd of D/proc: the way to it may be closed to uid 1000) */
static int hidden_from_others(void)
{
	int dir = open(at("proc"), O_PATH | O_DIRECTORY | O_CLOEXEC), status;
	struct stat st;
	pid_t pid;

	if (dir < 0)
		return -1;
	pid = test_fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (setgroups(0, NULL) || setresgid(1000, 1000, 1000) ||
		    setresuid(1000, 1000, 1000))
			_exit(1);
		if (fstatat(dir, "1", &st, 0) == 0 || errno != ENOENT)
			_exit(2);
		if (stat("/proc/1", &st) || fstatat(dir, "self/status", &st, 0))
			_exit(3);
		_exit(0);
	}
	close(dir);
	status = wait_status(pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

static int check(const char *when)
{
	char buf[1024], want[1024], list[1024];
	struct mnt_line l;
	struct stat st;
	int i, bad = 0, fd, n, r;
	unsigned int ptn = ~0u;
	char qname[64];
	mqd_t q;

	for (i = 0; i < 4; i++) {
		if (i == 1 && no_sysfs)
			continue;
		errno = 0;
		if (mnt_find(0, at(points[i]), NULL, &l) != 1 || strcmp(l.fstype, fstypes[i])) {
			fail("%s: no %s at %s", when, fstypes[i], points[i]);
			return 1;
		}
		if (!super_before[i][0])
			snprintf(super_before[i], sizeof(super_before[i]), "%s", l.super);
		test_msg("%s: %s: %s | %s\n", when, points[i], l.opts, l.super);
		if (strcmp(l.super, super_before[i])) {
			fail("%s: %s: options %s, before the dump %s", when, points[i], l.super,
			     super_before[i]);
			bad = 1;
		}
		if (i == 0 && !mnt_has_opt(l.super, "hidepid=invisible")) {
			fail("%s: proc without hidepid=invisible", when);
			bad = 1;
		}
		if (i == 2 && !mnt_has_opt(l.super, "ptmxmode=666")) {
			fail("%s: devpts without ptmxmode=666", when);
			bad = 1;
		}
	}

	/* proc */
	n = readlink(at("proc/self"), buf, sizeof(buf) - 1);
	snprintf(want, sizeof(want), "%d", getpid());
	if (n < 0 || (buf[n] = 0, strcmp(buf, want))) {
		fail("%s: proc/self is \"%s\", not %s", when, n < 0 ? "" : buf, want);
		bad = 1;
	}
	if (read_whole("/proc/1/comm", want, sizeof(want)) < 0 ||
	    read_whole(at("proc/1/comm"), buf, sizeof(buf)) < 0 || strcmp(buf, want) ||
	    !ino_of(at("proc/1/ns/pid")) || ino_of(at("proc/1/ns/pid")) != ino_of("/proc/1/ns/pid") ||
	    ino_of(at("proc/self/ns/pid")) != ino_of("/proc/self/ns/pid")) {
		fail("%s: proc/1 is not this namespace's init", when);
		bad = 1;
	}
	r = hidden_from_others();
	if (r) {
		errno = 0;
		fail("%s: hidepid: the check as uid 1000 gave %d", when, r);
		bad = 1;
	}

	/* sysfs */
	if (!no_sysfs &&
	    (mnt_listdir(at("sys/class/net"), list, sizeof(list)) || strcmp(list, "lo"))) {
		fail("%s: sys/class/net lists \"%s\", not \"lo\"", when, list);
		bad = 1;
	}

	/* devpts */
	if (mnt_listdir(at("pts"), list, sizeof(list)) || strcmp(list, "ptmx")) {
		fail("%s: pts lists \"%s\", not ptmx alone", when, list);
		bad = 1;
	}
	if (stat(at("pts/ptmx"), &st) || !S_ISCHR(st.st_mode) || (st.st_mode & 0777) != 0666 ||
	    st.st_rdev != makedev(5, 2)) {
		fail("%s: pts/ptmx: mode %o device %u:%u, not char 5:2 0666", when, st.st_mode,
		     major(st.st_rdev), minor(st.st_rdev));
		bad = 1;
	}
	fd = open(at("pts/ptmx"), O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0 || ioctl(fd, TIOCGPTN, &ptn) || ptn != 0 || stat(at("pts/0"), &st)) {
		fail("%s: a pty of pts/ptmx is number %u, or pts/0 is missing", when, ptn);
		bad = 1;
	}
	if (fd >= 0)
		close(fd);
	if (stat(at("pts/0"), &st) == 0) {
		errno = 0;
		fail("%s: pts/0 outlived its pty", when);
		bad = 1;
	}

	/* mqueue */
	if (mnt_listdir(at("mq"), list, sizeof(list)) || list[0]) {
		fail("%s: mq lists \"%s\", not nothing", when, list);
		bad = 1;
	}
	snprintf(qname, sizeof(qname), "/mnt-pseudo-%d", getpid());
	q = mq_open(qname, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600, NULL);
	if (q == (mqd_t)-1) {
		fail("%s: mq_open %s", when, qname);
		return 1;
	}
	mq_close(q);
	if (mnt_listdir(at("mq"), list, sizeof(list)) || strcmp(list, qname + 1)) {
		fail("%s: with queue %s, mq lists \"%s\"", when, qname, list);
		bad = 1;
	}
	if (mq_unlink(qname) || mnt_listdir(at("mq"), list, sizeof(list)) || list[0]) {
		fail("%s: after mq_unlink, mq lists \"%s\"", when, list);
		bad = 1;
	}
	return bad;
}

static int setup(void)
{
	unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;

	if (mnt_mkdirs(at("proc"), 0555) || mnt_mkdirs(at("sys"), 0555) ||
	    mnt_mkdirs(at("pts"), 0755) || mnt_mkdirs(at("mq"), 0755))
		return -1;
	if (mount("proc", at("proc"), "proc", flags, "hidepid=2")) {
		pr_perror("mount proc");
		return -1;
	}
	if (mount("sysfs", at("sys"), "sysfs", flags, NULL)) {
		/*
		 * In a user namespace the kernel lets sysfs be mounted only where one is
		 * fully visible already (mount_too_revealing()); the uns flavor's private
		 * root has none.
		 */
		if (errno != EPERM || mnt_in_userns() != 1) {
			pr_perror("mount sysfs");
			return -1;
		}
		test_msg("sysfs: EPERM in this user namespace (no sysfs visible in it): "
			 "not checked\n");
		no_sysfs = 1;
	}
	if (mount("devpts", at("pts"), "devpts", MS_NOSUID | MS_NOEXEC,
		  "newinstance,ptmxmode=0666,mode=0620")) {
		pr_perror("mount devpts");
		return -1;
	}
	if (mount("mqueue", at("mq"), "mqueue", flags, NULL)) {
		pr_perror("mount mqueue");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (mnt_need_own_init() || mnt_prepare() || setup())
		return 1;
	return mnt_around(check, "the pseudo file systems did not hold");
}
