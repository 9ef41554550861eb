/*
 * File descriptors in flight: over a unix stream socketpair end 0 sent a
 * 4-byte message carrying (SCM_RIGHTS) the read end of a pipe holding 3000
 * unread bytes and an O_RDWR fd of the regular file --filename (64 bytes,
 * offset 7), then a plain 4-byte message; the sender then closed its own
 * copies, so the messages hold the only references. Nothing is received
 * before the checkpoint. After restore end 1 receives the first message with
 * exactly two fds (no MSG_CTRUNC): the first is a read-only pipe end that
 * gives the 3000 bytes and then what is written to the pipe's write end
 * (kept here); the second is the same file (device and inode of the path),
 * O_RDWR, at offset 7, reading the rest of the contents, and writes through
 * it land in the file. The plain message follows, without fds, and then
 * nothing more is queued.
 */
#include "sockcheck.h"

const char *test_doc = "SCM_RIGHTS messages in flight keep their pipe and file fds";

static char *filename;
TEST_OPTION(filename, string, "the regular file to pass", 1);

#define SEED_PIPE 0x7000
#define FILE_LEN 64
#define FILE_OFF 7

static void file_byte_fill(char *buf)
{
	int i;

	for (i = 0; i < FILE_LEN; i++)
		buf[i] = 'a' + (i * 7) % 26;
}

int main(int argc, char **argv)
{
	char content[FILE_LEN], got[FILE_LEN], cbuf[CMSG_SPACE(4 * sizeof(int))], msg[4];
	struct msghdr mh = { 0 };
	struct iovec iov;
	struct cmsghdr *cm;
	struct sockstate was[2];
	struct stat file_st, st;
	int sk[2], pfd[2], file, fds[4], nfds = 0, i, bad = 0;
	ssize_t k;

	test_init(argc, argv);
	file_byte_fill(content);
	file = open(filename, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (file < 0 || write(file, content, FILE_LEN) != FILE_LEN ||
	    lseek(file, FILE_OFF, SEEK_SET) != FILE_OFF || fstat(file, &file_st)) {
		pr_perror("prepare %s", filename);
		return 1;
	}
	if (pipe(pfd) || socketpair(AF_UNIX, SOCK_STREAM, 0, sk)) {
		pr_perror("pipe / socketpair");
		return 1;
	}
	{
		uint8_t data[3000];
		pat_fill(data, sizeof(data), SEED_PIPE, 0);
		if (write(pfd[1], data, sizeof(data)) != sizeof(data)) {
			pr_perror("fill the pipe");
			return 1;
		}
	}
	if (send_fds(sk[0], "fds!", 4, (int[]){ pfd[0], file }, 2, 0) ||
	    send(sk[0], "tail", 4, 0) != 4) {
		pr_perror("sendmsg");
		return 1;
	}
	close(pfd[0]);
	close(file);
	pair_record(sk, was, NULL);

	test_daemon();
	test_waitsig();

	if (pair_same(sk, was, NULL))
		return 0;
	memset(&mh, 0, sizeof(mh));
	iov.iov_base = msg;
	iov.iov_len = sizeof(msg);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	k = recvmsg(sk[1], &mh, MSG_DONTWAIT);
	if (k != 4 || memcmp(msg, "fds!", 4)) {
		fail("the first message is %zd bytes '%.4s', expected 'fds!'", k, k > 0 ? msg : "");
		return 0;
	}
	if (mh.msg_flags & MSG_CTRUNC) {
		fail("the fds were cut off (MSG_CTRUNC)");
		return 0;
	}
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		int n;
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
			fail("unexpected control message %d/%d", cm->cmsg_level, cm->cmsg_type);
			return 0;
		}
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (nfds + n > 4) {
			fail("too many fds");
			return 0;
		}
		memcpy(fds + nfds, CMSG_DATA(cm), n * sizeof(int));
		nfds += n;
	}
	if (nfds != 2) {
		fail("the first message carried %d fds, expected 2", nfds);
		return 0;
	}

	/* the pipe's read end */
	if (fstat(fds[0], &st) || !S_ISFIFO(st.st_mode) || (fcntl(fds[0], F_GETFL) & O_ACCMODE) != O_RDONLY) {
		fail("the first fd is not a read-only pipe end (mode %#o flags %#o)", st.st_mode,
		     fcntl(fds[0], F_GETFL));
		bad = 1;
	} else {
		uint8_t data[3000];
		long at;

		if (set_nonblock(fds[0], 1) || read(fds[0], data, sizeof(data)) != sizeof(data) ||
		    (at = pat_diff(data, sizeof(data), SEED_PIPE, 0)) >= 0) {
			fail("the passed pipe end did not give back its 3000 bytes");
			bad = 1;
		} else if (read(fds[0], data, 1) != -1 || errno != EAGAIN) {
			fail("the passed pipe holds more than its 3000 bytes");
			bad = 1;
		} else if (write(pfd[1], "through", 7) != 7 || read(fds[0], data, 100) != 7 ||
			   memcmp(data, "through", 7)) {
			fail("bytes written to the pipe's write end do not come out of the passed end");
			bad = 1;
		}
	}

	/* the file */
	if (fstat(fds[1], &st) || st.st_dev != file_st.st_dev || st.st_ino != file_st.st_ino ||
	    stat(filename, &st) || st.st_ino != file_st.st_ino) {
		fail("the second fd is not %s", filename);
		bad = 1;
	} else if ((fcntl(fds[1], F_GETFL) & O_ACCMODE) != O_RDWR) {
		fail("the passed file's flags are %#o, expected O_RDWR", fcntl(fds[1], F_GETFL));
		bad = 1;
	} else if (lseek(fds[1], 0, SEEK_CUR) != FILE_OFF) {
		fail("the passed file is at offset %lld, expected %d",
		     (long long)lseek(fds[1], 0, SEEK_CUR), FILE_OFF);
		bad = 1;
	} else if (read(fds[1], got, FILE_LEN) != FILE_LEN - FILE_OFF ||
		   memcmp(got, content + FILE_OFF, FILE_LEN - FILE_OFF)) {
		fail("the passed file does not read its contents from offset %d", FILE_OFF);
		bad = 1;
	} else if (write(fds[1], "!", 1) != 1 || stat(filename, &st) || st.st_size != FILE_LEN + 1) {
		fail("a write through the passed file did not land in %s", filename);
		bad = 1;
	}

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	k = recvmsg(sk[1], &mh, MSG_DONTWAIT);
	if (k != 4 || memcmp(msg, "tail", 4) || mh.msg_controllen) {
		fail("the second message is %zd bytes with %zu bytes of control data, expected "
		     "'tail' alone", k, (size_t)mh.msg_controllen);
		bad = 1;
	}
	bad |= nothing_queued(sk[1], "end 1") | nothing_queued(sk[0], "end 0");
	for (i = 0; i < nfds; i++)
		close(fds[i]);
	close(pfd[1]);
	if (unlink(filename)) {
		fail("unlink %s", filename);
		bad = 1;
	}
	if (!bad)
		pass();
	return 0;
}
