/*
 * Ptys of a devpts instance of the tree's own (flavors ns and uns): devpts is mounted
 * with newinstance,ptmxmode=0666,mode=0620 at D/pts (D: --dirname) and three ptys are
 * opened through D/pts/ptmx:
 *
 *   pty 0  kept (master and slave): the slave raw (cfmakeraw), VMIN 4, VTIME 5, B9600 in
 *          and out, window 31x97 (776x496 pixels), exclusive (TIOCEXCL)
 *   pty 1  opened and closed again: index 1 is free, so the restore must make a gap
 *   pty 2  kept (master and slave): the slave canonical with ECHO off and VINTR ^G, window
 *          53x141, the master in packet mode (TIOCPKT); a child holds the slave as its
 *          stdin and stdout (one open file, dup2'ed; not its controlling terminal) and
 *          answers a line on SIGUSR1
 *
 * Every fd is opened with O_NOCTTY: nothing here is a controlling terminal.  Every queue
 * is empty whenever the tree may be dumped (the checks drain what they write).
 *
 * Before the dump and after the restore: D/pts lists "0 2 ptmx" and mountinfo has
 * mode=620,ptmxmode=666; for each kept pty: TIOCGPTN of the master is its index, the
 * master is D/pts/ptmx (char 5:2 of that devpts) and unlocked (TIOCGPTLCK), the slave is
 * D/pts/<index> (char 136:<index>, mode 0620, our uid and gid); the termios (flags, c_cc,
 * speeds, line discipline), window size, packet mode and exclusive flags are as set (the
 * termios and window size read the same through the master); then live exchanges (the
 * raw pty carries ^C, ^S, ^Q, CR, NUL, DEL and 0xff untouched both ways; the canonical
 * pty hands out one line per read, drops a partial line on ^G and tells the master of the
 * flush by a status byte, turns NL into CR NL on output; packet-mode reads of the master
 * start with TIOCPKT_DATA), and the child answers a line it read from pty 2 with its own
 * view of its fds 0 and 1; the next pty of D/pts/ptmx is number 1 (the gap is free), and
 * afterwards nothing is left to read anywhere.
 */
#include <linux/kcmp.h>
#include <sys/sysmacros.h>

#include "ptycheck.h"

const char *test_doc = "ptys of a devpts instance of the tree's own: indices with a gap, "
		       "termios, window sizes, packet mode, exclusive mode, a child's stdio";


struct pty {
	int index;
	int master, slave;
	int pkt, excl;			/* packet mode of the master, exclusive slave */
	struct termios tio;		/* as the kernel read it back once set */
	struct winsize ws;
};

static struct pty ptys[2] = {
	{ .index = 0, .master = -1, .slave = -1, .excl = 1,
	  .ws = { .ws_row = 31, .ws_col = 97, .ws_xpixel = 776, .ws_ypixel = 496 } },
	{ .index = 2, .master = -1, .slave = -1, .pkt = 1,
	  .ws = { .ws_row = 53, .ws_col = 141 } },
};

#define INTR_CHAR 0x07			/* pty 2's VINTR (^G) */

static pid_t child = -1;
static volatile sig_atomic_t child_asked, child_stop;

static const char *at(const char *rel)
{
	return mp("%s/%s", mnt_dir, rel);
}

static long kcmp(pid_t a, pid_t b, int type, unsigned long x, unsigned long y)
{
	return syscall(SYS_kcmp, a, b, type, x, y);
}

/* ---- the child ---------------------------------------------------------------------- */

static void child_sig(int sig)
{
	if (sig == SIGUSR1)
		child_asked = 1;
	else
		child_stop = 1;
}

/*
 * pty 2's slave is its fd 0 and 1.  On SIGUSR1 it reads a line from fd 0 and writes to
 * fd 1 "child <pid> #<n> <fd 0> <fd 1> <shared|apart>: <the line in upper case>", where
 * fd 0 and 1 are their /proc/self/fd links, and shared says they are one open file.
 * Exits 0 on SIGTERM.  Signals are blocked but in sigsuspend().
 */
static void __attribute__((noreturn)) child_main(struct ready *r)
{
	struct sigaction sa = { .sa_handler = child_sig };
	sigset_t block, wait_mask;
	int served = 0;

	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &wait_mask);
	sigdelset(&wait_mask, SIGUSR1);
	sigdelset(&wait_mask, SIGTERM);
	if (sigaction(SIGUSR1, &sa, NULL) || sigaction(SIGTERM, &sa, NULL)) {
		pr_perror("child: sigaction");
		_exit(1);
	}
	if (dup2(ptys[1].slave, 0) != 0 || dup2(ptys[1].slave, 1) != 1) {
		pr_perror("child: dup2");
		_exit(1);
	}
	close(ptys[0].master);
	close(ptys[0].slave);
	close(ptys[1].master);
	close(ptys[1].slave);
	ready_signal(r);

	for (;;) {
		char line[256], answer[1024], fd0[256], fd1[256];
		ssize_t n, l0, l1;
		int i, len;

		while (!child_asked && !child_stop)
			sigsuspend(&wait_mask);
		if (child_stop)
			_exit(0);
		child_asked = 0;
		n = read(0, line, sizeof(line) - 1);
		if (n <= 0) {
			pr_perror("child: read a line from fd 0 (%zd)", n);
			_exit(2);
		}
		line[n] = 0;
		for (i = 0; i < n; i++)
			if (line[i] >= 'a' && line[i] <= 'z')
				line[i] -= 'a' - 'A';
		l0 = readlink("/proc/self/fd/0", fd0, sizeof(fd0) - 1);
		l1 = readlink("/proc/self/fd/1", fd1, sizeof(fd1) - 1);
		fd0[l0 < 0 ? 0 : l0] = 0;
		fd1[l1 < 0 ? 0 : l1] = 0;
		len = snprintf(answer, sizeof(answer), "child %d #%d %s %s %s: %s", getpid(),
			       ++served, fd0, fd1,
			       kcmp(getpid(), getpid(), KCMP_FILE, 0, 1) == 0 ? "shared" : "apart",
			       line);
		if (write(1, answer, len) != len) {
			pr_perror("child: write the answer to fd 1");
			_exit(3);
		}
	}
}

static int stop_child(void)
{
	int bad;

	if (child <= 0)
		return 0;
	bad = child_verdict(child, "the child holding pty 2's slave");
	child = -1;
	return bad;
}

/* ---- I/O with timeouts ------------------------------------------------------------------ */

static int write_all(int fd, const void *data, size_t len)
{
	return write_data(fd, (const unsigned char *)data, len);
}

/*
 * Read up to len bytes from fd, as many reads as it takes (each one waited for up to
 * WAIT_MS); pkt: fd is a master in packet mode, each read starts with a status byte:
 * TIOCPKT_DATA before data (dropped), else a status alone (or'ed into *status).
 * The number of data bytes read (less than len when nothing more came), or -1.
 */
static ssize_t read_upto(int fd, void *buf, size_t len, int pkt, int *status)
{
	unsigned char tmp[1024];
	size_t got = 0;

	while (got < len) {
		ssize_t n;

		if (!readable(fd, WAIT_MS))
			break;
		n = read(fd, tmp, pkt ? len - got + 1 : len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		if (pkt) {
			if (tmp[0] != TIOCPKT_DATA) {
				*status |= tmp[0];
				if (n != 1) {
					errno = 0;
					pr_err("a packet with status %#x and %zd bytes\n", tmp[0], n - 1);
					return -1;
				}
				continue;
			}
			memcpy((char *)buf + got, tmp + 1, n - 1);
			got += n - 1;
		} else {
			memcpy((char *)buf + got, tmp, n);
			got += n;
		}
	}
	return got;
}

/* 0 when reading fd (pkt: a master in packet mode) gives exactly want (else fail()). */
static int expect_read(const char *when, const char *what, int fd, int pkt, const void *want,
		       size_t len)
{
	char got[1024];
	int status = 0;
	ssize_t n = read_upto(fd, got, len, pkt, &status);

	if (n != (ssize_t)len || memcmp(got, want, len) || status) {
		fail("%s: %s: read \"%s\" (%zd bytes, status %#x), not \"%s\"", when, what,
		     n < 0 ? "" : show(got, n), n, status, show(want, len));
		return 1;
	}
	return 0;
}

/* 0 when one read of the canonical slave fd gives exactly the line want (else fail()). */
static int expect_line(const char *when, const char *what, int fd, const char *want)
{
	char got[1024];
	ssize_t n = -1;

	if (readable(fd, WAIT_MS))
		do
			n = read(fd, got, sizeof(got));
		while (n < 0 && errno == EINTR);
	if (n != (ssize_t)strlen(want) || memcmp(got, want, n)) {
		fail("%s: %s: one read gave \"%s\" (%zd bytes), not the line \"%s\"", when, what,
		     n < 0 ? "" : show(got, n), n, show(want, strlen(want)));
		return 1;
	}
	return 0;
}

/*
 * What a master in packet mode has to read now (waited for up to WAIT_MS, then whatever
 * follows within 100 ms): the status bytes or'ed into *status, the number of data bytes
 * (into buf, up to len), or -1.
 */
static ssize_t read_status(int fd, void *buf, size_t len, int *status)
{
	unsigned char tmp[1024];
	size_t got = 0;
	int wait = WAIT_MS;

	while (readable(fd, wait)) {
		ssize_t n = read(fd, tmp, sizeof(tmp));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		wait = 100;
		*status |= tmp[0];
		if (got + n - 1 > len)
			return -1;
		memcpy((char *)buf + got, tmp + 1, n - 1);
		got += n - 1;
	}
	return got;
}

/* ---- the checks ------------------------------------------------------------------------- */

/* The index, paths, devices and flags of one pty. */
static int check_pty(const char *when, const struct pty *p, dev_t pts_dev)
{
	char what[64], ptn_want[64];
	struct termios t;
	struct winsize ws;
	struct stat st;
	unsigned int ptn = ~0u;
	int v, bad = 0, i;
	char fdinfo[2048];

	errno = 0;
	snprintf(what, sizeof(what), "pty %d", p->index);
	if (ioctl(p->master, TIOCGPTN, &ptn) || ptn != (unsigned int)p->index) {
		fail("%s: %s: TIOCGPTN of the master gives %d", when, what, (int)ptn);
		bad = 1;
	}
	snprintf(ptn_want, sizeof(ptn_want), "tty-index:\t%d\n", p->index);
	if (read_whole(mp("/proc/self/fdinfo/%d", p->master), fdinfo, sizeof(fdinfo)) < 0 ||
	    !strstr(fdinfo, ptn_want)) {
		fail("%s: %s: the master's fdinfo has no \"%s\": %s", when, what,
		     show(ptn_want, strlen(ptn_want)), fdinfo);
		bad = 1;
	}
	bad |= check_link(when, mp("%s: the master", what), p->master, at("pts/ptmx"));
	bad |= check_link(when, mp("%s: the slave", what), p->slave,
			  at(mp("pts/%d", p->index)));
	if (fstat(p->master, &st) || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(5, 2) ||
	    st.st_dev != pts_dev) {
		fail("%s: %s: the master is %o %u:%u on %u:%u, not the ptmx (5:2) of pts (%u:%u)",
		     when, what, st.st_mode, major(st.st_rdev), minor(st.st_rdev),
		     major(st.st_dev), minor(st.st_dev), major(pts_dev), minor(pts_dev));
		bad = 1;
	}
	if (fstat(p->slave, &st) || !S_ISCHR(st.st_mode) ||
	    st.st_rdev != makedev(PTS_SLAVE_MAJOR, p->index) || st.st_dev != pts_dev) {
		fail("%s: %s: the slave is %o %u:%u on %u:%u, not char %d:%d on pts (%u:%u)",
		     when, what, st.st_mode, major(st.st_rdev), minor(st.st_rdev),
		     major(st.st_dev), minor(st.st_dev), PTS_SLAVE_MAJOR, p->index,
		     major(pts_dev), minor(pts_dev));
		bad = 1;
	}
	if (stat(at(mp("pts/%d", p->index)), &st) || st.st_mode != (S_IFCHR | 0620) ||
	    st.st_uid != geteuid() || st.st_gid != getegid()) {
		fail("%s: %s: pts/%d has mode %o owner %u:%u, not %o %u:%u", when, what, p->index,
		     st.st_mode, st.st_uid, st.st_gid, S_IFCHR | 0620, geteuid(), getegid());
		bad = 1;
	}

	v = -1;
	if (ioctl(p->master, TIOCGPTLCK, &v) || v != 0) {
		fail("%s: %s: TIOCGPTLCK gives %d, not unlocked", when, what, v);
		bad = 1;
	}
	v = -1;
	if (ioctl(p->master, TIOCGPKT, &v) || v != p->pkt) {
		fail("%s: %s: TIOCGPKT gives %d, not %d", when, what, v, p->pkt);
		bad = 1;
	}
	v = -1;
	if (ioctl(p->slave, TIOCGEXCL, &v) || v != p->excl) {
		fail("%s: %s: TIOCGEXCL of the slave gives %d, not %d", when, what, v, p->excl);
		bad = 1;
	}
	v = -1;
	if (ioctl(p->master, TIOCGEXCL, &v) || v != 0) {
		fail("%s: %s: TIOCGEXCL of the master gives %d, not 0", when, what, v);
		bad = 1;
	}

	/* termios and window size: the slave's, through either end */
	for (i = 0; i < 2; i++) {
		int fd = i ? p->master : p->slave;
		const char *end = i ? "master" : "slave";

		memset(&t, 0, sizeof(t));
		if (tcgetattr(fd, &t) || !same_termios(&t, &p->tio)) {
			fail("%s: %s: termios through the %s: %s, not %s", when, what, end,
			     show_termios(&t), show_termios(&p->tio));
			bad = 1;
		}
		memset(&ws, 0, sizeof(ws));
		if (ioctl(fd, TIOCGWINSZ, &ws) || memcmp(&ws, &p->ws, sizeof(ws))) {
			fail("%s: %s: window size through the %s: %ux%u (%ux%u), not %ux%u (%ux%u)",
			     when, what, end, ws.ws_row, ws.ws_col, ws.ws_xpixel, ws.ws_ypixel,
			     p->ws.ws_row, p->ws.ws_col, p->ws.ws_xpixel, p->ws.ws_ypixel);
			bad = 1;
		}
	}
	bad |= quiet(when, mp("%s: the master", what), p->master);
	bad |= quiet(when, mp("%s: the slave", what), p->slave);
	return bad;
}

/* pty 0, raw: every byte both ways, untouched. */
static int exchange_raw(const char *when, const struct pty *p)
{
	static const char in[] = "raw\x03\x11\x13\r\0\x7f\xff\x1a\x04\x1c" "0",
			  out[] = "back\x03\x13\x11\n\r\0\xff\x7f\x15\x17" "0";
	int bad = 0;

	if (write_all(p->master, in, sizeof(in) - 1)) {
		fail("%s: pty 0: write to the master", when);
		return 1;
	}
	bad |= expect_read(when, "pty 0: the slave", p->slave, 0, in, sizeof(in) - 1);
	if (write_all(p->slave, out, sizeof(out) - 1)) {
		fail("%s: pty 0: write to the slave", when);
		return 1;
	}
	bad |= expect_read(when, "pty 0: the master", p->master, 0, out, sizeof(out) - 1);
	return bad;
}

/* pty 2, canonical, ECHO off, VINTR ^G, the master in packet mode. */
static int exchange_canon(const char *when, const struct pty *p)
{
	static const char lines[] = "one\ntwo\n", flushed[] = "junk\x07" "after intr\n",
			  out[] = "pong 2\n", out_master[] = "pong 2\r\n";
	char buf[256];
	int bad = 0, status = 0;
	ssize_t n;

	/* one line per read */
	if (write_all(p->master, lines, sizeof(lines) - 1)) {
		fail("%s: pty 2: write to the master", when);
		return 1;
	}
	bad |= expect_line(when, "pty 2: the slave's first line", p->slave, "one\n");
	bad |= expect_line(when, "pty 2: the slave's second line", p->slave, "two\n");

	/* ^G drops the partial line "junk"; the master hears of the flush */
	if (write_all(p->master, flushed, sizeof(flushed) - 1)) {
		fail("%s: pty 2: write to the master", when);
		return 1;
	}
	bad |= expect_line(when, "pty 2: the slave after ^G", p->slave, "after intr\n");
	n = read_status(p->master, buf, sizeof(buf), &status);
	test_msg("%s: pty 2: after ^G the master read status %#x (and %zd data bytes)\n", when,
		 status, n);
	if (n != 0 || !(status & TIOCPKT_FLUSHREAD)) {
		fail("%s: pty 2: after ^G the master read status %#x and %zd data bytes (\"%s\"), "
		     "not TIOCPKT_FLUSHREAD alone", when, status, n, n > 0 ? show(buf, n) : "");
		bad = 1;
	}

	/* NL is CR NL on the way out; the master's read starts with TIOCPKT_DATA */
	if (write_all(p->slave, out, sizeof(out) - 1)) {
		fail("%s: pty 2: write to the slave", when);
		return 1;
	}
	bad |= expect_read(when, "pty 2: the master", p->master, 1, out_master,
			   sizeof(out_master) - 1);
	return bad;
}

/* The child reads a line from pty 2 and answers it there. */
static int exchange_child(const char *when, const struct pty *p)
{
	static int asked;
	char line[64], want[1024];
	const char *slave = at(mp("pts/%d", p->index));
	int len, i, bad = 0;

	len = snprintf(line, sizeof(line), "ping %s %d\n", when, ++asked);
	if (write_all(p->master, line, len) || kill(child, SIGUSR1)) {
		fail("%s: ask the child", when);
		return 1;
	}
	for (i = 0; i < len; i++)
		if (line[i] >= 'a' && line[i] <= 'z')
			line[i] -= 'a' - 'A';
	line[len - 1] = 0;
	len = snprintf(want, sizeof(want), "child %d #%d %s %s shared: %s\r\n", child, asked,
		       slave, slave, line);
	bad |= expect_read(when, "pty 2: the child's answer", p->master, 1, want, len);
	return bad;
}

static int check(const char *when)
{
	char list[256];
	struct mnt_line l;
	struct stat st;
	unsigned int ptn = ~0u;
	int bad = 0, i, fd;

	errno = 0;
	if (mnt_find(0, at("pts"), NULL, &l) != 1 || strcmp(l.fstype, "devpts")) {
		fail("%s: no devpts at %s", when, at("pts"));
		return 1;
	}
	test_msg("%s: pts: %s | %s\n", when, l.opts, l.super);
	if (!mnt_has_opt(l.super, "mode=620") || !mnt_has_opt(l.super, "ptmxmode=666")) {
		fail("%s: pts: options %s, not mode=620,ptmxmode=666", when, l.super);
		bad = 1;
	}
	if (stat(at("pts"), &st)) {
		fail("%s: stat pts", when);
		return 1;
	}
	if (mnt_listdir(at("pts"), list, sizeof(list)) || strcmp(list, "0 2 ptmx")) {
		fail("%s: pts lists \"%s\", not \"0 2 ptmx\"", when, list);
		bad = 1;
	}
	for (i = 0; i < 2; i++)
		bad |= check_pty(when, &ptys[i], st.st_dev);
	if (kill(child, 0) || kcmp(getpid(), child, KCMP_FILE, ptys[1].slave, 0)) {
		fail("%s: the child %d is gone, or its fd 0 is not our pty 2 slave", when, child);
		bad = 1;
	}
	if (bad)
		return bad;	/* no exchange on ptys that are not what they should be */

	bad |= exchange_raw(when, &ptys[0]);
	bad |= exchange_canon(when, &ptys[1]);
	bad |= exchange_child(when, &ptys[1]);

	/* index 1 is the lowest free one */
	fd = open(at("pts/ptmx"), O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0 || ioctl(fd, TIOCGPTN, &ptn) || ptn != 1 ||
	    mnt_listdir(at("pts"), list, sizeof(list)) || strcmp(list, "0 1 2 ptmx")) {
		fail("%s: a new pty of pts/ptmx is number %d, pts lists \"%s\"", when, (int)ptn,
		     list);
		bad = 1;
	}
	if (fd >= 0)
		close(fd);
	if (mnt_listdir(at("pts"), list, sizeof(list)) || strcmp(list, "0 2 ptmx")) {
		fail("%s: once the new pty is closed, pts lists \"%s\"", when, list);
		bad = 1;
	}

	/* all drained: nothing came late either */
	usleep(100 * 1000);
	for (i = 0; i < 2; i++) {
		bad |= quiet(when, mp("pty %d: the master", ptys[i].index), ptys[i].master);
		bad |= quiet(when, mp("pty %d: the slave", ptys[i].index), ptys[i].slave);
	}
	return bad;
}

static int check_and_stop(const char *when)
{
	int bad = check(when);

	if (bad || !strcmp(when, "after"))
		bad |= stop_child();
	return bad;
}

/* ---- setup ---------------------------------------------------------------------------- */

/* A pty of pts/ptmx, unlocked: its master and index. */
static int open_pty(int *master, int *index)
{
	unsigned int n;
	int unlock = 0;

	*master = open(at("pts/ptmx"), O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (*master < 0) {
		pr_perror("open pts/ptmx");
		return -1;
	}
	if (ioctl(*master, TIOCSPTLCK, &unlock) || ioctl(*master, TIOCGPTN, &n)) {
		pr_perror("unlock a pty");
		return -1;
	}
	*index = n;
	return 0;
}

static int open_slave(struct pty *p)
{
	p->slave = open(at(mp("pts/%d", p->index)), O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (p->slave < 0) {
		pr_perror("open pts/%d", p->index);
		return -1;
	}
	return 0;
}

static int setup(void)
{
	struct pty *p0 = &ptys[0], *p2 = &ptys[1];
	struct termios t;
	int m1, idx[3], one = 1;
	struct ready r;

	if (mnt_mkdirs(at("pts"), 0755))
		return -1;
	if (mount("devpts", at("pts"), "devpts", MS_NOSUID | MS_NOEXEC,
		  "newinstance,ptmxmode=0666,mode=0620")) {
		pr_perror("mount devpts");
		return -1;
	}
	if (open_pty(&p0->master, &idx[0]) || open_pty(&m1, &idx[1]) ||
	    open_pty(&p2->master, &idx[2]))
		return -1;
	if (idx[0] != 0 || idx[1] != 1 || idx[2] != 2) {
		pr_err("the new instance handed out ptys %d %d %d, not 0 1 2\n", idx[0], idx[1],
		       idx[2]);
		return -1;
	}
	close(m1);
	if (open_slave(p0) || open_slave(p2))
		return -1;

	/* pty 0: raw, VMIN 4, VTIME 5, 9600 baud; exclusive */
	if (tcgetattr(p0->slave, &t)) {
		pr_perror("tcgetattr pty 0");
		return -1;
	}
	cfmakeraw(&t);
	t.c_cc[VMIN] = 4;
	t.c_cc[VTIME] = 5;
	if (cfsetispeed(&t, B9600) || cfsetospeed(&t, B9600) ||
	    tcsetattr(p0->slave, TCSANOW, &t) || tcgetattr(p0->slave, &p0->tio)) {
		pr_perror("termios of pty 0");
		return -1;
	}
	if ((p0->tio.c_lflag & (ICANON | ECHO | ISIG | IEXTEN)) || (p0->tio.c_oflag & OPOST) ||
	    (p0->tio.c_iflag & (ICRNL | IXON | ISTRIP)) || p0->tio.c_cc[VMIN] != 4 ||
	    p0->tio.c_cc[VTIME] != 5 || cfgetispeed(&p0->tio) != B9600 ||
	    cfgetospeed(&p0->tio) != B9600) {
		pr_err("pty 0: termios not as set: %s\n", show_termios(&p0->tio));
		return -1;
	}
	if (ioctl(p0->slave, TIOCSWINSZ, &p0->ws) || ioctl(p0->slave, TIOCEXCL)) {
		pr_perror("window size / exclusive of pty 0");
		return -1;
	}

	/* pty 2: canonical, ECHO off, VINTR ^G; the window size set through the master;
	 * packet mode last (a termios change after it may queue a status byte) */
	if (tcgetattr(p2->slave, &t)) {
		pr_perror("tcgetattr pty 2");
		return -1;
	}
	t.c_lflag |= ICANON | ISIG;
	t.c_lflag &= ~(ECHO | ECHONL | NOFLSH);
	t.c_cc[VINTR] = INTR_CHAR;
	if (tcsetattr(p2->slave, TCSANOW, &t) || tcgetattr(p2->slave, &p2->tio)) {
		pr_perror("termios of pty 2");
		return -1;
	}
	if (!(p2->tio.c_lflag & ICANON) || (p2->tio.c_lflag & ECHO) ||
	    p2->tio.c_cc[VINTR] != INTR_CHAR || !(p2->tio.c_oflag & OPOST) ||
	    !(p2->tio.c_oflag & ONLCR)) {
		pr_err("pty 2: termios not as set: %s\n", show_termios(&p2->tio));
		return -1;
	}
	if (same_termios(&p0->tio, &p2->tio)) {
		pr_err("pty 0 and 2 have the same termios\n");
		return -1;
	}
	if (ioctl(p2->master, TIOCSWINSZ, &p2->ws) || ioctl(p2->master, TIOCPKT, &one)) {
		pr_perror("window size / packet mode of pty 2");
		return -1;
	}
	test_msg("pty 0: %s\npty 2: %s\n", show_termios(&p0->tio), show_termios(&p2->tio));

	ready_init(&r);
	child = test_fork();
	if (child < 0) {
		pr_perror("fork");
		return -1;
	}
	if (child == 0)
		child_main(&r);
	if (ready_wait(&r, 1))
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (mnt_need_own_init() || mnt_prepare())
		return 1;
	if (setup()) {
		if (child > 0) {
			kill(child, SIGKILL);
			wait_status(child);
		}
		return 1;
	}
	return mnt_around(check_and_stop, "the ptys did not hold");
}
