/*
 * Shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS) shared by a parent and
 * its child after fork, plus one such mapping only the parent has. After
 * restore both see the data written by either before the checkpoint, and a
 * write by one is seen by the other: the parent writes and wakes the child
 * through a futex in the shared region (the child sleeps in FUTEX_WAIT across
 * the checkpoint), the child answers the same way.
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include "helpers.h"
#include "lock.h"

const char *test_doc = "shared anonymous mappings stay shared between processes";

#define REGION (4 << 20)

struct shared {
	futex_t turn;
	uint32_t crc_parent, crc_child;
};

int main(int argc, char **argv)
{
	size_t ps = sysconf(_SC_PAGESIZE);
	uint8_t *region, *own;
	struct shared *sh;
	uint32_t crc, own_crc = ~0;
	pid_t child;
	int bad = 0, st;

	test_init(argc, argv);
	region = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED) {
		pr_perror("mmap");
		return 1;
	}
	sh = (struct shared *)region;
	futex_init(&sh->turn);
	sh->crc_parent = ~0;
	datagen(region + ps, REGION / 2 - ps, &sh->crc_parent);

	child = fork_or_exit();
	if (child == 0) {
		/* the child's half, written after the fork */
		sh->crc_child = ~0;
		datagen(region + REGION / 2, REGION / 4, &sh->crc_child);
		futex_set_and_wake(&sh->turn, 1);

		/* sleep in FUTEX_WAIT on shared memory across the checkpoint */
		futex_wait_until(&sh->turn, 2);
		crc = ~0;
		if (datachk(region + ps, REGION / 2 - ps, &crc)) {
			fail("child: the parent's data changed");
			exit(1);
		}
		crc = ~0;
		if (datachk(region + REGION * 3 / 4, REGION / 4, &crc)) {
			fail("child: the parent's post-restore write is not visible");
			exit(1);
		}
		crc = ~0;
		datagen(region + REGION / 2, REGION / 4, &crc);   /* rewrite: the parent checks */
		futex_set_and_wake(&sh->turn, 3);
		exit(0);
	}
	futex_wait_until(&sh->turn, 1);

	own = mmap(NULL, 64 * ps, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (own == MAP_FAILED) {
		pr_perror("mmap");
		return 1;
	}
	datagen(own, 64 * ps, &own_crc);

	test_daemon();
	test_waitsig();

	crc = ~0;
	if (datachk(region + REGION / 2, REGION / 4, &crc)) {
		fail("parent: the child's pre-checkpoint data is not visible");
		bad = 1;
	}
	crc = ~0;
	if (datachk(own, 64 * ps, &crc)) {
		fail("parent: its own shared mapping changed");
		bad = 1;
	}
	crc = ~0;
	datagen(region + REGION * 3 / 4, REGION / 4, &crc);
	futex_set_and_wake(&sh->turn, 2);
	futex_wait_until(&sh->turn, 3);
	crc = ~0;
	if (datachk(region + REGION / 2, REGION / 4, &crc)) {
		fail("parent: the child's post-restore write is not visible");
		bad = 1;
	}
	st = wait_status(child);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fail("the child failed (status %#x)", st);
		bad = 1;
	}
	if (!bad)
		pass();
	return 0;
}
