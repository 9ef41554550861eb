/*
 * SysV IPC objects, kept with their ids:
 * - a shared memory segment (IPC_PRIVATE, 0600) of 3 pages + 100 bytes filled
 *   with checksummed data, attached three times: read-write, SHM_RDONLY, and
 *   read-write with its first page unmapped (an attach at offset 1 page).
 *   After restore shmctl(IPC_STAT) gives the size, 3 attaches, this pid as
 *   creator, mode 0600; /proc/self/maps shows each attach at its address with
 *   the shmid as inode, perms rw-s / r--s / rw-s and offsets 0 / 0 / 1 page;
 *   the read-only attach cannot be made writable (mprotect: EACCES); the data
 *   is intact and a write through one attach is seen through the others.
 * - a segment removed (IPC_RMID) while attached (mode 0640): the dump's kill
 *   destroys it, the restore creates it again with its id.  After restore it
 *   is still attached, marked for destruction (SHM_DEST, key IPC_PRIVATE),
 *   this pid is its creator, and its data is intact.
 * - a set of 4 semaphores (0600) holding 0, 1, 7 and 32000, set here (GETPID
 *   gives this pid): after restore semctl(GETALL) gives the values, GETPID this
 *   pid, semop() can take 7 from the third semaphore but not 1 more (EAGAIN).
 * - a message queue with a key of its own (0640, byte limit 12000) holding
 *   three messages (types 1, 5 and 2; 6, 3000 and 6 bytes): after restore
 *   msgctl(IPC_STAT) gives the key, mode, limit, this pid as last sender, 3
 *   messages and their byte count; msgrcv() by type 5 gets the big one, then
 *   in order "first" and "third", then nothing (ENOMSG).
 * The ids of the objects that outlive the program are written to --filename;
 * they are removed (IPC_RMID) at every exit of the program, and the file with
 * them. If the program is killed first, test_context.py removes what the file
 * still lists.
 */
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>

#include "helpers.h"

const char *test_doc = "SysV shared memory, semaphores and message queues are kept";

static char *filename;
TEST_OPTION(filename, string, "where the ids of the IPC objects are written", 1);

#define NSEMS 4
#define BIG 3000
#define QBYTES 12000

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

struct msgbuf_big {
	long mtype;
	char mtext[BIG];
};

static int shmid = -1, semid = -1, msgid = -1, removed_id = -1;

static void remove_objects(void)
{
	if (shmid >= 0 && shmctl(shmid, IPC_RMID, NULL))
		pr_perror("shmctl(IPC_RMID)");
	if (semid >= 0 && semctl(semid, 0, IPC_RMID))
		pr_perror("semctl(IPC_RMID)");
	if (msgid >= 0 && msgctl(msgid, IPC_RMID, NULL))
		pr_perror("msgctl(IPC_RMID)");
	if (removed_id >= 0)		/* gone with its last attach, unless a restore lost its mark */
		shmctl(removed_id, IPC_RMID, NULL);
	shmid = semid = msgid = removed_id = -1;
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

static int queue_msg(long type, const void *text, size_t len)
{
	struct msgbuf_big m = { .mtype = type };

	memcpy(m.mtext, text, len);
	return msgsnd(msgid, &m, len, IPC_NOWAIT);
}

static int check_attach(const char *what, void *addr, int id, const char *want_perms,
			unsigned long want_offset)
{
	char perms[8] = "";
	unsigned long offset = -1;
	long ino = maps_entry(addr, perms, &offset);

	if (ino != id || strcmp(perms, want_perms) || offset != want_offset) {
		fail("shm: the %s attach at %p maps inode %ld %s at %#lx, expected %d %s at %#lx",
		     what, addr, ino, perms, offset, id, want_perms, want_offset);
		return 1;
	}
	return 0;
}

static int check_segment(void)
{
	struct shmid_ds sds;

	if (shmctl(shmid, IPC_STAT, &sds)) {
		fail("shmctl(%d, IPC_STAT): the segment is gone", shmid);
		return 1;
	}
	if (sds.shm_segsz != 3 * PAGE_SIZE + 100 || sds.shm_nattch != 3 ||
	    sds.shm_cpid != getpid() || (sds.shm_perm.mode & 0777) != 0600 ||
	    sds.shm_perm.__key != IPC_PRIVATE || sds.shm_perm.cuid != getuid()) {
		fail("shm: size %zu attaches %lu creator %d mode %o key %d cuid %u, expected "
		     "%u 3 %d 0600 0 %u", (size_t)sds.shm_segsz, (unsigned long)sds.shm_nattch,
		     sds.shm_cpid, sds.shm_perm.mode & 0777, sds.shm_perm.__key, sds.shm_perm.cuid,
		     3 * PAGE_SIZE + 100, getpid(), getuid());
		return 1;
	}
	return 0;
}

static int check_shm(uint8_t *rw, uint8_t *ro, uint8_t *part)
{
	size_t size = 3 * PAGE_SIZE + 100;
	uint32_t crc = ~0;
	int bad = check_segment();

	bad |= check_attach("read-write", rw, shmid, "rw-s", 0);
	bad |= check_attach("read-only", ro, shmid, "r--s", 0);
	bad |= check_attach("partial", part + PAGE_SIZE, shmid, "rw-s", PAGE_SIZE);
	if (maps_inode(part) == shmid) {
		fail("shm: the unmapped first page of the partial attach is mapped again");
		bad = 1;
	}
	errno = 0;
	if (mprotect(ro, PAGE_SIZE, PROT_READ | PROT_WRITE) != -1 || errno != EACCES) {
		fail("shm: the SHM_RDONLY attach could be made writable (%m)");
		bad = 1;
	}
	if (datachk(rw, size, &crc) || memcmp(rw, ro, size) ||
	    memcmp(rw + PAGE_SIZE, part + PAGE_SIZE, size - PAGE_SIZE)) {
		fail("shm: the data changed");
		bad = 1;
	}
	memcpy(part + 2 * PAGE_SIZE + 3, "shared", 6);
	if (memcmp(ro + 2 * PAGE_SIZE + 3, "shared", 6) || memcmp(rw + 2 * PAGE_SIZE + 3, "shared", 6)) {
		fail("shm: a write through one attach is not seen through the others");
		bad = 1;
	}
	return bad;
}

/* The segment removed while attached: recreated by the restore, marked again. */
static int check_removed(int id, uint8_t *addr, size_t size)
{
	struct shmid_ds sds;
	uint32_t crc = ~0;
	int bad = 0;

	if (shmctl(id, IPC_STAT, &sds)) {
		fail("shmctl(%d, IPC_STAT): the removed segment is gone while attached", id);
		return 1;
	}
	if (!(sds.shm_perm.mode & SHM_DEST) || sds.shm_perm.__key != IPC_PRIVATE ||
	    sds.shm_nattch != 1 || sds.shm_cpid != getpid() || sds.shm_segsz != size ||
	    (sds.shm_perm.mode & 0777) != 0640) {
		fail("shm: removed segment: mode %o key %d attaches %lu creator %d size %zu, "
		     "expected SHM_DEST|0640 0 1 %d %zu", sds.shm_perm.mode, sds.shm_perm.__key,
		     (unsigned long)sds.shm_nattch, sds.shm_cpid, (size_t)sds.shm_segsz, getpid(),
		     size);
		bad = 1;
	}
	bad |= check_attach("removed segment's", addr, id, "rw-s", 0);
	if (datachk(addr, size, &crc)) {
		fail("shm: the removed segment's data changed");
		bad = 1;
	}
	return bad;
}

static int check_sem(const unsigned short *vals)
{
	unsigned short got[NSEMS];
	struct semid_ds semds;
	struct sembuf op;
	union semun arg;
	int i, bad = 0;

	arg.buf = &semds;
	if (semctl(semid, 0, IPC_STAT, arg) || semds.sem_nsems != NSEMS ||
	    (semds.sem_perm.mode & 0777) != 0600) {
		fail("semctl(%d, IPC_STAT): the set is gone or not of %d with mode 0600", semid, NSEMS);
		return 1;
	}
	arg.array = got;
	memset(got, 0xff, sizeof(got));
	if (semctl(semid, 0, GETALL, arg) || memcmp(got, vals, NSEMS * sizeof(*vals))) {
		fail("sem: values %u %u %u %u, expected 0 1 7 32000", got[0], got[1], got[2], got[3]);
		bad = 1;
	}
	for (i = 0; i < NSEMS; i++)
		if (semctl(semid, i, GETPID) != getpid()) {
			fail("sem: semaphore %d was last changed by %d, not %d", i,
			     semctl(semid, i, GETPID), getpid());
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
	return bad;
}

static int check_msg(key_t key, const uint8_t *big)
{
	struct msgbuf_big m;
	struct msqid_ds mds;
	int bad = 0;
	ssize_t n;

	if (msgctl(msgid, IPC_STAT, &mds)) {
		fail("msgctl(%d, IPC_STAT): the queue is gone", msgid);
		return 1;
	}
	if (mds.msg_qnum != 3 || mds.msg_cbytes != 6 + BIG + 6 || mds.msg_perm.__key != key ||
	    (mds.msg_perm.mode & 0777) != 0640 || mds.msg_qbytes != QBYTES ||
	    mds.msg_lspid != getpid()) {
		fail("msg: %lu messages of %lu bytes, key %#x mode %o limit %lu sender %d, expected "
		     "3 of %d, %#x 0640 %d %d", (unsigned long)mds.msg_qnum,
		     (unsigned long)mds.msg_cbytes, mds.msg_perm.__key, mds.msg_perm.mode & 0777,
		     (unsigned long)mds.msg_qbytes, mds.msg_lspid, 6 + BIG + 6, key, QBYTES, getpid());
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
	return bad;
}

int main(int argc, char **argv)
{
	static const unsigned short vals[NSEMS] = { 0, 1, 7, 32000 };
	size_t shm_size = 3 * PAGE_SIZE + 100, removed_size = PAGE_SIZE + 10;
	uint8_t big[BIG], *rw, *ro, *part, *removed;
	key_t key;
	struct msqid_ds mds;
	uint32_t crc = ~0;
	union semun arg;
	int i, bad = 0;

	test_init(argc, argv);
	atexit(remove_objects);
	key = 0x5c000000 | getpid();
	shmid = shmget(IPC_PRIVATE, shm_size, IPC_CREAT | 0600);
	semid = semget(IPC_PRIVATE, NSEMS, IPC_CREAT | 0600);
	msgid = msgget(key, IPC_CREAT | IPC_EXCL | 0640);
	removed_id = shmget(IPC_PRIVATE, removed_size, IPC_CREAT | 0640);
	if (shmid < 0 || semid < 0 || msgid < 0 || removed_id < 0 || write_ids()) {
		pr_perror("create the IPC objects");
		return 1;
	}
	rw = shmat(shmid, NULL, 0);
	ro = shmat(shmid, NULL, SHM_RDONLY);
	part = shmat(shmid, NULL, 0);
	removed = shmat(removed_id, NULL, 0);
	if (rw == (void *)-1 || ro == (void *)-1 || part == (void *)-1 || removed == (void *)-1 ||
	    munmap(part, PAGE_SIZE) || shmctl(removed_id, IPC_RMID, NULL)) {
		pr_perror("shmat / munmap / IPC_RMID");
		return 1;
	}
	datagen(rw, shm_size, &crc);
	crc = ~0;
	datagen(removed, removed_size, &crc);
	arg.array = (unsigned short *)vals;
	if (semctl(semid, 0, SETALL, arg)) {
		pr_perror("semctl(SETALL)");
		return 1;
	}
	for (i = 0; i < BIG; i++)
		big[i] = (uint8_t)(i * 11 + 5);
	if (msgctl(msgid, IPC_STAT, &mds) || (mds.msg_qbytes = QBYTES, msgctl(msgid, IPC_SET, &mds)) ||
	    queue_msg(1, "first", 6) || queue_msg(5, big, BIG) || queue_msg(2, "third", 6)) {
		pr_perror("msgctl(IPC_SET) / msgsnd");
		return 1;
	}

	test_daemon();
	test_waitsig();

	bad |= check_shm(rw, ro, part);
	bad |= check_removed(removed_id, removed, removed_size);
	bad |= check_sem(vals);
	bad |= check_msg(key, big);

	shmdt(rw);
	shmdt(ro);
	shmdt(part);
	shmdt(removed);
	remove_objects();
	if (!bad)
		pass();
	return 0;
}
