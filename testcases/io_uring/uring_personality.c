/*
 * Personalities (credentials registered with a ring) on a ring that has been
 * through 700 NOPs:
 *  - personality 1: the process's own credentials (root), registered by the
 *    main thread;
 *  - personality 2: registered by a second thread that had set only its own
 *    effective uid to 1000 (the raw setresuid syscall, which changes one
 *    thread; it dropped the thread's effective capabilities) and then went
 *    back to euid 0 and exited.
 * In --dirname (mode 0777, open as dfd): "secret", mode 0600 owned by root;
 * "mine", mode 0600 owned by uid 1000. Every OPENAT is relative to dfd (uid
 * 1000 may not search the directories above).
 *
 * After restore (the ring's positions are those of the checkpoint), with
 * IORING_OP_OPENAT and sqe->personality:
 *  - personality 1 opens "secret" (and the fd reads its contents) and "mine";
 *  - personality 2 gets -EACCES for "secret", opens "mine", and a file it
 *    creates (O_CREAT) is owned by uid 1000 and gid 0;
 *  - personality 3 (never registered) gets -EINVAL, with a NOP too;
 *  - IORING_UNREGISTER_PERSONALITY of 2 succeeds, then personality 2 gets
 *    -EINVAL and a second unregistration fails with EINVAL; personality 1
 *    still works.
 */
#include <pthread.h>
#include <sys/stat.h>

#include "uringcheck.h"

const char *test_doc = "Ring personalities keep their credentials";

static char *dirname;
TEST_OPTION(dirname, string, "directory for the files opened under the personalities", 1);

#define OTHER_UID 1000
#define SECRET "secret contents"

static struct ring r;
static struct ring_pos pos;
static int pers_root, pers_other, dfd;
/* relative to dfd, --dirname (uid 1000 may not search the directories above it) */
static const char secret[] = "secret", mine[] = "mine", created[] = "created";

static void *other_thread(void *arg)
{
	int *ret = arg;

	if (syscall(SYS_setresuid, -1, OTHER_UID, -1)) {
		pr_perror("setresuid(-1, %d, -1)", OTHER_UID);
		*ret = -1;
		return NULL;
	}
	*ret = sys_io_uring_register(r.fd, IORING_REGISTER_PERSONALITY, NULL, 0);
	if (*ret < 0)
		pr_perror("IORING_REGISTER_PERSONALITY as euid %d", OTHER_UID);
	if (syscall(SYS_setresuid, -1, 0, -1)) {
		pr_perror("setresuid(-1, 0, -1)");
		*ret = -1;
	}
	return NULL;
}

/* OPENAT of path (flags) under personality pers: its res (an fd or -errno) in *res. */
static int open_as(int pers, const char *path, int flags, int *res, const char *what)
{
	struct io_uring_sqe sqe = {};

	prep_rw(&sqe, IORING_OP_OPENAT, dfd, path, 0644, 0, 0x9e50000 + pers);
	sqe.open_flags = flags;
	sqe.personality = pers;
	return ring_op(&r, &sqe, res, NULL, what);
}

/* OPENAT must give an error (-err): fail() and 1 otherwise. */
static int open_fails(int pers, const char *path, int err, const char *what)
{
	int res;

	if (open_as(pers, path, O_RDONLY, &res, what))
		return 1;
	if (res == -err)
		return 0;
	fail("%s: OPENAT of %s with personality %d gave %d, expected %d (%s)", what, path, pers,
	     res, -err, strerror(err));
	if (res >= 0)
		close(res);
	return 1;
}

/* OPENAT must open the file; the fd in *fd, or closed when fd is NULL. */
static int open_works(int pers, const char *path, int flags, int *fd, const char *what)
{
	int res;

	if (open_as(pers, path, flags, &res, what))
		return 1;
	if (res < 0) {
		fail("%s: OPENAT of %s with personality %d gave %d (%s)", what, path, pers, res,
		     strerror(-res));
		return 1;
	}
	if (fd)
		*fd = res;
	else
		close(res);
	return 0;
}

static int make(const char *path, uid_t uid)
{
	int fd = openat(dfd, path, O_WRONLY | O_CREAT | O_EXCL, 0600);

	if (fd < 0 || write(fd, SECRET, strlen(SECRET)) != (ssize_t)strlen(SECRET) ||
	    fchown(fd, uid, 0) || fchmod(fd, 0600)) {
		pr_perror("creating %s", path);
		return 1;
	}
	close(fd);
	return 0;
}

static int setup(void)
{
	pthread_t t;

	if (mkdir(dirname, 0777) || chmod(dirname, 0777)) {
		pr_perror("mkdir %s", dirname);
		return 1;
	}
	dfd = open(dirname, O_RDONLY | O_DIRECTORY);
	if (dfd < 0) {
		pr_perror("open %s", dirname);
		return 1;
	}
	if (make(secret, 0) || make(mine, OTHER_UID))
		return 1;

	if (ring_setup(&r, 8, NULL)) {
		pr_perror("io_uring_setup");
		return 1;
	}
	if (ring_nops(&r, 700, "the NOPs before"))
		return 1;
	pers_root = sys_io_uring_register(r.fd, IORING_REGISTER_PERSONALITY, NULL, 0);
	if (pers_root < 0) {
		pr_perror("IORING_REGISTER_PERSONALITY");
		return 1;
	}
	if (pthread_create(&t, NULL, other_thread, &pers_other) || pthread_join(t, NULL)) {
		pr_perror("pthread");
		return 1;
	}
	if (pers_root != 1 || pers_other != 2) {
		pr_err("the personalities are %d and %d, expected 1 and 2\n", pers_root, pers_other);
		return 1;
	}
	if (geteuid() != 0) {
		pr_err("the main thread's euid is %d\n", geteuid());
		return 1;
	}
	/* the premise: what personality 2 cannot do, the process can */
	if (open_fails(2, secret, EACCES, "before: personality 2") ||
	    open_works(1, secret, O_RDONLY, NULL, "before: personality 1"))
		return 1;
	ring_save_pos(&r, &pos);
	return 0;
}

static int check(void)
{
	struct io_uring_sqe sqe = {};
	char buf[64] = {};
	struct stat st;
	int fd;

	if (ring_check(&r, &pos, "after restore"))
		return 1;

	if (open_works(1, secret, O_RDONLY, &fd, "personality 1, secret"))
		return 1;
	if (read(fd, buf, sizeof(buf)) != (ssize_t)strlen(SECRET) || strcmp(buf, SECRET)) {
		fail("the fd personality 1 opened reads \"%s\"", buf);
		return 1;
	}
	close(fd);
	if (open_works(1, mine, O_RDONLY, NULL, "personality 1, mine"))
		return 1;

	if (open_fails(2, secret, EACCES, "personality 2, secret") ||
	    open_works(2, mine, O_RDONLY, NULL, "personality 2, mine") ||
	    open_works(2, created, O_WRONLY | O_CREAT | O_EXCL, &fd, "personality 2 creating"))
		return 1;
	if (fstat(fd, &st) || st.st_uid != OTHER_UID || st.st_gid != 0) {
		fail("the file personality 2 created is owned by %d:%d, expected %d:0",
		     (int)st.st_uid, (int)st.st_gid, OTHER_UID);
		return 1;
	}
	close(fd);

	if (open_fails(3, secret, EINVAL, "personality 3"))
		return 1;
	prep_nop(&sqe, 0x3);
	sqe.personality = 3;
	if (ring_op_is(&r, &sqe, -EINVAL, "a NOP with personality 3"))
		return 1;

	if (register_is(r.fd, IORING_UNREGISTER_PERSONALITY, NULL, 2, 0, NULL,
			"unregistering personality 2") ||
	    register_is(r.fd, IORING_UNREGISTER_PERSONALITY, NULL, 2, EINVAL, NULL,
			"unregistering personality 2 again"))
		return 1;
	return open_fails(2, mine, EINVAL, "personality 2 unregistered") ||
	       open_works(1, secret, O_RDONLY, NULL, "personality 1 at the end");
}

int main(int argc, char **argv)
{
	return uring_test_main(argc, argv, setup, check);
}
