/*
 * File locks, in --dirname: flock(LOCK_EX) on file "a", flock(LOCK_SH) on
 * file "b", and POSIX locks (F_SETLK) on file "c": a write lock on bytes
 * 0-99 and a read lock on bytes 200-299. After restore:
 * - /proc/locks lists exactly these four locks for this pid (kind, mode,
 *   inode, range);
 * - a child forked after the restore, opening the files anew, is refused
 *   what conflicts (flock LOCK_SH on "a" and LOCK_EX on "b": EWOULDBLOCK;
 *   F_SETLK read lock inside 0-99 and write lock inside 200-299: EAGAIN or
 *   EACCES), is granted what does not (flock LOCK_SH on "b", a read lock
 *   inside 200-299, a write lock on 100-199), and F_GETLK shows it the write
 *   lock 0-99 held by this pid.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "helpers.h"

const char *test_doc = "flock and POSIX locks are kept and still conflict";

static char *dirname;
TEST_OPTION(dirname, string, "directory for the locked files", 1);

struct want {
	const char *kind, *mode;
	ino_t ino;
	long long start;
	const char *end;
	int seen;
};

static int posix_lock(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };

	return fcntl(fd, cmd, &fl);
}

/* Check /proc/locks: exactly the wanted locks for pid on dev; the number of problems. */
static int check_proc_locks(pid_t pid, dev_t dev, struct want *w, int n)
{
	char buf[65536], *line, *save = NULL;
	int problems = 0, i;

	if (read_whole("/proc/locks", buf, sizeof(buf)) < 0) {
		fail("cannot read /proc/locks");
		return 1;
	}
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char kind[16], adv[16], mode[16], end[32];
		unsigned int maj, min;
		unsigned long ino;
		long long start;
		int lpid;

		if (strstr(line, "->"))
			continue;     /* a blocked waiter, not a held lock */
		if (sscanf(line, "%*d: %15s %15s %15s %d %x:%x:%lu %lld %31s", kind, adv, mode, &lpid,
			   &maj, &min, &ino, &start, end) != 9 || lpid != pid)
			continue;
		for (i = 0; i < n; i++)
			if (!strcmp(kind, w[i].kind) && !strcmp(mode, w[i].mode) && ino == w[i].ino &&
			    start == w[i].start && !strcmp(end, w[i].end) && makedev(maj, min) == dev)
				break;
		if (i == n || w[i].seen++) {
			fail("/proc/locks: unexpected lock \"%s\"", line);
			problems++;
		}
	}
	for (i = 0; i < n; i++)
		if (!w[i].seen) {
			fail("/proc/locks: no %s %s lock of pid %d on inode %lu from %lld to %s", w[i].kind,
			     w[i].mode, pid, (unsigned long)w[i].ino, w[i].start, w[i].end);
			problems++;
		}
	return problems;
}

/* In the child: what a process other than the holder gets; exits 0 when all as expected. */
static void __attribute__((noreturn)) contender(const char *a, const char *b, const char *c,
						pid_t holder)
{
	int fa = open(a, O_RDONLY), fb = open(b, O_RDONLY), fc = open(c, O_RDWR), bad = 0;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };

	if (fa < 0 || fb < 0 || fc < 0) {
		fail("child: open");
		_exit(1);
	}
	errno = 0;
	if (flock(fa, LOCK_SH | LOCK_NB) != -1 || errno != EWOULDBLOCK) {
		fail("child: flock(LOCK_SH) on \"a\" was not refused with EWOULDBLOCK");
		bad = 1;
	}
	errno = 0;
	if (flock(fb, LOCK_EX | LOCK_NB) != -1 || errno != EWOULDBLOCK) {
		fail("child: flock(LOCK_EX) on \"b\" was not refused with EWOULDBLOCK");
		bad = 1;
	}
	if (flock(fb, LOCK_SH | LOCK_NB) || flock(fb, LOCK_UN)) {
		fail("child: flock(LOCK_SH) on \"b\" (shared with the holder's) was refused");
		bad = 1;
	}
	errno = 0;
	if (posix_lock(fc, F_SETLK, F_RDLCK, 50, 10) != -1 || (errno != EAGAIN && errno != EACCES)) {
		fail("child: a read lock on bytes 50-59 of \"c\" was not refused");
		bad = 1;
	}
	errno = 0;
	if (posix_lock(fc, F_SETLK, F_WRLCK, 250, 10) != -1 || (errno != EAGAIN && errno != EACCES)) {
		fail("child: a write lock on bytes 250-259 of \"c\" was not refused");
		bad = 1;
	}
	if (posix_lock(fc, F_SETLK, F_RDLCK, 250, 10) || posix_lock(fc, F_SETLK, F_UNLCK, 250, 10)) {
		fail("child: a read lock on bytes 250-259 of \"c\" was refused");
		bad = 1;
	}
	if (posix_lock(fc, F_SETLK, F_WRLCK, 100, 100) || posix_lock(fc, F_SETLK, F_UNLCK, 100, 100)) {
		fail("child: a write lock on the free bytes 100-199 of \"c\" was refused");
		bad = 1;
	}
	if (fcntl(fc, F_GETLK, &fl) || fl.l_type != F_WRLCK || fl.l_pid != holder ||
	    fl.l_start != 0 || fl.l_len != 100) {
		fail("child: F_GETLK shows type %d pid %d range %lld+%lld, expected a write lock of "
		     "pid %d on 0+100", fl.l_type, fl.l_pid, (long long)fl.l_start, (long long)fl.l_len,
		     holder);
		bad = 1;
	}
	_exit(bad);
}

int main(int argc, char **argv)
{
	char a[4096], b[4096], c[4096];
	struct stat sa, sb, sc;
	struct want w[4];
	int fa, fb, fc, bad = 0;
	pid_t child;

	test_init(argc, argv);
	snprintf(a, sizeof(a), "%s/a", dirname);
	snprintf(b, sizeof(b), "%s/b", dirname);
	snprintf(c, sizeof(c), "%s/c", dirname);
	if (mkdir(dirname, 0755)) {
		pr_perror("mkdir %s", dirname);
		return 1;
	}
	fa = open(a, O_RDWR | O_CREAT | O_EXCL, 0644);
	fb = open(b, O_RDONLY | O_CREAT | O_EXCL, 0644);
	fc = open(c, O_RDWR | O_CREAT | O_EXCL, 0644);
	if (fa < 0 || fb < 0 || fc < 0 || ftruncate(fc, 4096) || fstat(fa, &sa) || fstat(fb, &sb) ||
	    fstat(fc, &sc)) {
		pr_perror("create the files");
		return 1;
	}
	if (flock(fa, LOCK_EX | LOCK_NB) || flock(fb, LOCK_SH | LOCK_NB) ||
	    posix_lock(fc, F_SETLK, F_WRLCK, 0, 100) || posix_lock(fc, F_SETLK, F_RDLCK, 200, 100)) {
		pr_perror("lock");
		return 1;
	}

	test_daemon();
	test_waitsig();

	w[0] = (struct want){ "FLOCK", "WRITE", sa.st_ino, 0, "EOF", 0 };
	w[1] = (struct want){ "FLOCK", "READ", sb.st_ino, 0, "EOF", 0 };
	w[2] = (struct want){ "POSIX", "WRITE", sc.st_ino, 0, "99", 0 };
	w[3] = (struct want){ "POSIX", "READ", sc.st_ino, 200, "299", 0 };
	if (check_proc_locks(getpid(), sa.st_dev, w, 4))
		bad = 1;

	child = fork_or_exit();
	if (child == 0)
		contender(a, b, c, getppid());
	bad |= child_passed(child, "the child found the locks missing or wrong");

	close(fa);
	close(fb);
	close(fc);
	unlink(a);
	unlink(b);
	unlink(c);
	rmdir(dirname);
	if (!bad)
		pass();
	return 0;
}
