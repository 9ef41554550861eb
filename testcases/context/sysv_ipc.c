/*
 * SysV IPC objects (all IPC_PRIVATE, mode 0600): a shared memory segment of
 * 3 pages + 100 bytes filled with checksummed data and attached twice (the
 * second time SHM_RDONLY), a set of 4 semaphores holding 0, 1, 7 and 32000,
 * and a message queue holding three messages (types 1, 5 and 2; 6, 3000 and
 * 6 bytes). After restore, with the same ids: shmctl(IPC_STAT) gives the
 * size, 2 attaches, this pid as creator and mode 0600, both attaches are the
 * segment (/proc/self/maps names the shmid as their inode), the data is
 * intact and a write through one attach is seen through the other;
 * semctl(GETALL) gives the values, semop() can take 7 from the third
 * semaphore but not 1 more (EAGAIN); msgctl(IPC_STAT) gives 3 messages and
 * their byte count, msgrcv() by type 5 gets the big one, then in order "first"
 * and "third", then nothing (ENOMSG).
 * The ids are written to --filename; the objects are removed (IPC_RMID) at
 * every exit of the program, and the file with them. If the program is
 * killed first, test_context.py removes what the file still lists.
 */
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>

#include "helpers.h"

const char *test_doc = "SysV shared memory, semaphores and message queues are kept";

static char *filename;
TEST_OPTION(filename, string, "where the ids of the IPC objects are written", 1);

#define NSEMS 4
#define BIG 3000

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

struct msgbuf_big {
	long mtype;
	char mtext[BIG];
};

static int shmid = -1, semid = -1, msgid = -1;

static void remove_objects(void)
{
	if (shmid >= 0 && shmctl(shmid, IPC_RMID, NULL))
		pr_perror("shmctl(IPC_RMID)");
	if (semid >= 0 && semctl(semid, 0, IPC_RMID))
		pr_perror("semctl(IPC_RMID)");
	if (msgid >= 0 && msgctl(msgid, IPC_RMID, NULL))
		pr_perror("msgctl(IPC_RMID)");
	shmid = semid = msgid = -1;
	unlink(filename);
}

static int write_ids(void)
{
	char buf[128];
	int fd, len;

	len = snprintf(buf, sizeof(buf), "shm %d\nsem %d\nmsg %d\n", shmid, semid, msgid);
	fd = open(filename, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, buf, len) != len || close(fd))
		return -1;
	return 0;
}

static int send(long type, const void *text, size_t len)
{
	struct msgbuf_big m = { .mtype = type };

	memcpy(m.mtext, text, len);
	return msgsnd(msgid, &m, len, IPC_NOWAIT);
}

int main(int argc, char **argv)
{
	static const unsigned short vals[NSEMS] = { 0, 1, 7, 32000 };
	unsigned short got[NSEMS];
	size_t shm_size = 3 * PAGE_SIZE + 100;
	uint8_t big[BIG], *rw, *ro;
	struct msgbuf_big m;
	struct shmid_ds sds;
	struct semid_ds semds;
	struct msqid_ds mds;
	struct sembuf op;
	union semun arg;
	uint32_t crc = ~0;
	int i, bad = 0;
	ssize_t n;

	test_init(argc, argv);
	atexit(remove_objects);
	shmid = shmget(IPC_PRIVATE, shm_size, IPC_CREAT | 0600);
	semid = semget(IPC_PRIVATE, NSEMS, IPC_CREAT | 0600);
	msgid = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	if (shmid < 0 || semid < 0 || msgid < 0 || write_ids()) {
		pr_perror("create the IPC objects");
		return 1;
	}
	rw = shmat(shmid, NULL, 0);
	ro = shmat(shmid, NULL, SHM_RDONLY);
	if (rw == (void *)-1 || ro == (void *)-1) {
		pr_perror("shmat");
		return 1;
	}
	datagen(rw, shm_size, &crc);
	arg.array = (unsigned short *)vals;
	if (semctl(semid, 0, SETALL, arg)) {
		pr_perror("semctl(SETALL)");
		return 1;
	}
	for (i = 0; i < BIG; i++)
		big[i] = (uint8_t)(i * 11 + 5);
	if (send(1, "first", 6) || send(5, big, BIG) || send(2, "third", 6)) {
		pr_perror("msgsnd");
		return 1;
	}

	test_daemon();
	test_waitsig();

	/* shared memory */
	if (shmctl(shmid, IPC_STAT, &sds)) {
		fail("shmctl(%d, IPC_STAT): the segment is gone", shmid);
		bad = 1;
	} else if (sds.shm_segsz != shm_size || sds.shm_nattch != 2 || sds.shm_cpid != getpid() ||
		   (sds.shm_perm.mode & 0777) != 0600 || sds.shm_perm.__key != IPC_PRIVATE) {
		fail("shm: size %zu attaches %lu creator %d mode %o key %d, expected %zu 2 %d 0600 0",
		     (size_t)sds.shm_segsz, (unsigned long)sds.shm_nattch, sds.shm_cpid,
		     sds.shm_perm.mode & 0777, sds.shm_perm.__key, shm_size, getpid());
		bad = 1;
	}
	if (maps_inode(rw) != shmid || maps_inode(ro) != shmid) {
		fail("shm: the attaches map inodes %ld and %ld, expected the shmid %d", maps_inode(rw),
		     maps_inode(ro), shmid);
		bad = 1;
	}
	crc = ~0;
	if (datachk(rw, shm_size, &crc) || memcmp(rw, ro, shm_size)) {
		fail("shm: the data changed");
		bad = 1;
	}
	memcpy(rw + PAGE_SIZE + 3, "shared", 6);
	if (memcmp(ro + PAGE_SIZE + 3, "shared", 6)) {
		fail("shm: a write through one attach is not seen through the other");
		bad = 1;
	}

	/* semaphores */
	arg.buf = &semds;
	if (semctl(semid, 0, IPC_STAT, arg) || semds.sem_nsems != NSEMS) {
		fail("semctl(%d, IPC_STAT): the set is gone or not of %d", semid, NSEMS);
		bad = 1;
	}
	arg.array = got;
	memset(got, 0xff, sizeof(got));
	if (semctl(semid, 0, GETALL, arg) || memcmp(got, vals, sizeof(vals))) {
		fail("sem: values %u %u %u %u, expected 0 1 7 32000", got[0], got[1], got[2], got[3]);
		bad = 1;
	}
	op = (struct sembuf){ 2, -7, IPC_NOWAIT };
	if (semop(semid, &op, 1)) {
		fail("sem: could not take 7 from the third semaphore");
		bad = 1;
	}
	op = (struct sembuf){ 2, -1, IPC_NOWAIT };
	errno = 0;
	if (semop(semid, &op, 1) != -1 || errno != EAGAIN) {
		fail("sem: could take 1 more from the third semaphore");
		bad = 1;
	}

	/* messages */
	if (msgctl(msgid, IPC_STAT, &mds)) {
		fail("msgctl(%d, IPC_STAT): the queue is gone", msgid);
		bad = 1;
	} else if (mds.msg_qnum != 3 || mds.msg_cbytes != 6 + BIG + 6) {
		fail("msg: %lu messages of %lu bytes, expected 3 of %d", (unsigned long)mds.msg_qnum,
		     (unsigned long)mds.msg_cbytes, 6 + BIG + 6);
		bad = 1;
	}
	n = msgrcv(msgid, &m, BIG, 5, IPC_NOWAIT);
	if (n != BIG || m.mtype != 5 || memcmp(m.mtext, big, BIG)) {
		fail("msg: the type 5 message is wrong (%zd bytes)", n);
		bad = 1;
	}
	n = msgrcv(msgid, &m, BIG, 0, IPC_NOWAIT);
	if (n != 6 || m.mtype != 1 || strcmp(m.mtext, "first")) {
		fail("msg: the first message is wrong (%zd bytes)", n);
		bad = 1;
	}
	n = msgrcv(msgid, &m, BIG, 0, IPC_NOWAIT);
	if (n != 6 || m.mtype != 2 || strcmp(m.mtext, "third")) {
		fail("msg: the third message is wrong (%zd bytes)", n);
		bad = 1;
	}
	errno = 0;
	if (msgrcv(msgid, &m, BIG, 0, IPC_NOWAIT) != -1 || errno != ENOMSG) {
		fail("msg: the queue is not empty after three messages");
		bad = 1;
	}

	shmdt(rw);
	shmdt(ro);
	remove_objects();
	if (!bad)
		pass();
	return 0;
}
