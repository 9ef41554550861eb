/*
 * A pty of the host's devpts instance (flavor h): the tree may hold ptys of a devpts it
 * does not own.  One pty opened through /dev/ptmx (O_NOCTTY: not a controlling
 * terminal), its master and slave kept; the slave canonical with ECHO off, VERASE ^H,
 * no IXON, no ONLCR, 115200 baud (an extended speed, CBAUDEX), window 41x123 (984x738
 * pixels).  The queues are empty whenever the tree may be dumped.
 *
 * Before the dump and after the restore: TIOCGPTN of the master is the index it had (a
 * restore must keep it: the slave's name is /dev/pts/<index>), the master's fdinfo says
 * that tty-index, the master is /dev/ptmx (the same inode, char 5:2) and unlocked, the
 * slave is /dev/pts/<index> (char 136:<index>, on the devpts at /dev/pts, with the mode
 * and owner it had); termios and window size read as set through either end; packet
 * and exclusive modes are off; then an exchange: "ab^Hc\n" through the master reads "ac\n"
 * through the slave (the erase char works), a line written through the slave reads
 * unchanged through the master (no CR added); nothing is left to read afterwards.
 */
#include <sys/sysmacros.h>

#include "ptycheck.h"

const char *test_doc = "a pty of the host's devpts: index, termios, window size, an exchange";

#define ERASE_CHAR 0x08

static int master = -1, slave = -1, index_ = -1;
static struct termios tio;	/* as the kernel read it back once set */
static const struct winsize ws = { .ws_row = 41, .ws_col = 123, .ws_xpixel = 984,
				   .ws_ypixel = 738 };
static struct stat master_st, slave_node;	/* fstat of the master, stat of the slave's node */

/* 0 when reads of fd give exactly want (several reads may make it up), else fail(). */
static int expect_read(const char *when, const char *what, int fd, const char *want)
{
	size_t len = strlen(want), got = 0;
	char buf[1024];

	while (got < len && readable(fd, WAIT_MS)) {
		ssize_t n = read(fd, buf + got, sizeof(buf) - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += n;
	}
	if (got != len || memcmp(buf, want, len)) {
		fail("%s: %s read \"%s\", not \"%s\"", when, what, show(buf, got), show(want, len));
		return 1;
	}
	return 0;
}

static int check(const char *when)
{
	const char *slave_path = mp("/dev/pts/%d", index_);
	char fdinfo[2048], want[64];
	struct stat st, pts;
	struct termios t;
	struct winsize w;
	unsigned int ptn = ~0u;
	int bad = 0, v, i;

	errno = 0;
	if (ioctl(master, TIOCGPTN, &ptn) || ptn != (unsigned int)index_) {
		fail("%s: TIOCGPTN gives %d, not %d", when, (int)ptn, index_);
		bad = 1;
	}
	snprintf(want, sizeof(want), "tty-index:\t%d\n", index_);
	if (read_whole(mp("/proc/self/fdinfo/%d", master), fdinfo, sizeof(fdinfo)) < 0 ||
	    !strstr(fdinfo, want)) {
		fail("%s: the master's fdinfo has no \"%s\": %s", when, show(want, strlen(want)),
		     fdinfo);
		bad = 1;
	}
	bad |= check_link(when, "the master", master, "/dev/ptmx");
	bad |= check_link(when, "the slave", slave, slave_path);
	if (fstat(master, &st) || st.st_dev != master_st.st_dev || st.st_ino != master_st.st_ino ||
	    st.st_rdev != makedev(5, 2)) {
		fail("%s: the master is %u:%u inode %lu (char %u:%u), not %u:%u inode %lu (5:2)",
		     when, major(st.st_dev), minor(st.st_dev), (unsigned long)st.st_ino,
		     major(st.st_rdev), minor(st.st_rdev), major(master_st.st_dev),
		     minor(master_st.st_dev), (unsigned long)master_st.st_ino);
		bad = 1;
	}
	if (stat("/dev/pts", &pts) || fstat(slave, &st) || !S_ISCHR(st.st_mode) ||
	    st.st_rdev != makedev(PTS_SLAVE_MAJOR, index_) || st.st_dev != pts.st_dev) {
		fail("%s: the slave is %o char %u:%u on %u:%u, not char %d:%d on /dev/pts (%u:%u)",
		     when, st.st_mode, major(st.st_rdev), minor(st.st_rdev), major(st.st_dev),
		     minor(st.st_dev), PTS_SLAVE_MAJOR, index_, major(pts.st_dev),
		     minor(pts.st_dev));
		bad = 1;
	}
	if (stat(slave_path, &st) || st.st_mode != slave_node.st_mode ||
	    st.st_uid != slave_node.st_uid || st.st_gid != slave_node.st_gid) {
		fail("%s: %s has mode %o owner %u:%u, not %o %u:%u", when, slave_path, st.st_mode,
		     st.st_uid, st.st_gid, slave_node.st_mode, slave_node.st_uid,
		     slave_node.st_gid);
		bad = 1;
	}
	v = -1;
	if (ioctl(master, TIOCGPTLCK, &v) || v) {
		fail("%s: TIOCGPTLCK gives %d, not unlocked", when, v);
		bad = 1;
	}
	v = -1;
	if (ioctl(master, TIOCGPKT, &v) || v) {
		fail("%s: TIOCGPKT gives %d, not 0", when, v);
		bad = 1;
	}
	for (i = 0; i < 2; i++) {
		int fd = i ? master : slave;
		const char *end = i ? "master" : "slave";

		v = -1;
		if (ioctl(fd, TIOCGEXCL, &v) || v) {
			fail("%s: TIOCGEXCL of the %s gives %d, not 0", when, end, v);
			bad = 1;
		}
		memset(&t, 0, sizeof(t));
		if (tcgetattr(fd, &t) || !same_termios(&t, &tio)) {
			fail("%s: termios through the %s: %s, not %s", when, end, show_termios(&t),
			     show_termios(&tio));
			bad = 1;
		}
		memset(&w, 0, sizeof(w));
		if (ioctl(fd, TIOCGWINSZ, &w) || memcmp(&w, &ws, sizeof(w))) {
			fail("%s: window size through the %s: %ux%u (%ux%u), not %ux%u (%ux%u)", when,
			     end, w.ws_row, w.ws_col, w.ws_xpixel, w.ws_ypixel, ws.ws_row, ws.ws_col,
			     ws.ws_xpixel, ws.ws_ypixel);
			bad = 1;
		}
	}
	bad |= quiet(when, "the master", master);
	bad |= quiet(when, "the slave", slave);
	if (bad)
		return bad;

	/* the erase char; no CR added on output */
	if (write_data(master, (const unsigned char *)"ab\x08" "c\n", 5)) {
		fail("%s: write to the master", when);
		return 1;
	}
	bad |= expect_read(when, "the slave", slave, "ac\n");
	if (write_data(slave, (const unsigned char *)"pong\n", 5)) {
		fail("%s: write to the slave", when);
		return 1;
	}
	bad |= expect_read(when, "the master", master, "pong\n");

	usleep(100 * 1000);
	bad |= quiet(when, "the master", master);
	bad |= quiet(when, "the slave", slave);
	return bad;
}

static int setup(void)
{
	unsigned int n;
	int unlock = 0;
	struct termios t;

	master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0) {
		pr_perror("open /dev/ptmx");
		return -1;
	}
	if (ioctl(master, TIOCSPTLCK, &unlock) || ioctl(master, TIOCGPTN, &n)) {
		pr_perror("unlock the pty");
		return -1;
	}
	index_ = n;
	slave = open(mp("/dev/pts/%d", index_), O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0) {
		pr_perror("open /dev/pts/%d", index_);
		return -1;
	}
	if (fstat(master, &master_st) || stat(mp("/dev/pts/%d", index_), &slave_node)) {
		pr_perror("stat the pty");
		return -1;
	}
	if (tcgetattr(slave, &t)) {
		pr_perror("tcgetattr");
		return -1;
	}
	t.c_lflag |= ICANON;
	t.c_lflag &= ~(ECHO | ECHONL);
	t.c_iflag &= ~(IXON | IXOFF);
	t.c_oflag &= ~ONLCR;
	t.c_cc[VERASE] = ERASE_CHAR;
	if (cfsetispeed(&t, B115200) || cfsetospeed(&t, B115200) ||
	    tcsetattr(slave, TCSANOW, &t) || tcgetattr(slave, &tio)) {
		pr_perror("termios");
		return -1;
	}
	if (!(tio.c_lflag & ICANON) || (tio.c_lflag & ECHO) || (tio.c_iflag & IXON) ||
	    (tio.c_oflag & ONLCR) || tio.c_cc[VERASE] != ERASE_CHAR ||
	    cfgetispeed(&tio) != B115200 || cfgetospeed(&tio) != B115200) {
		pr_err("termios not as set: %s\n", show_termios(&tio));
		return -1;
	}
	if (ioctl(master, TIOCSWINSZ, &ws)) {
		pr_perror("TIOCSWINSZ");
		return -1;
	}
	test_msg("pty %d: %s; slave node mode %o owner %u:%u\n", index_, show_termios(&tio),
		 slave_node.st_mode, slave_node.st_uid, slave_node.st_gid);
	return 0;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (setup())
		return 1;
	return mnt_around(check, "the host pty did not hold");
}
