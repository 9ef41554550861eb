/*
 * Bloom filters (BPF_MAP_TYPE_BLOOM_FILTER, key_size 0): one with 3 hash
 * functions (map_extra 3) and a random seed holding 300 pushed 12-byte
 * values, one with BPF_F_ZERO_SEED and the default number of hash
 * functions (map_extra 0) holding 150 pushed 8-byte values.
 *
 * After restore: BPF_OBJ_GET_INFO_BY_FD and fdinfo (type, sizes,
 * max_entries, flags, map_extra); every pushed value is found (a lookup
 * succeeds); of 1000 values never pushed, most are not found (a filter with
 * all bits set would find them all: the false-positive rate of these sizes
 * is a few percent, 25% is allowed); new values can be pushed and are found.
 * A bloom filter's bits cannot be read from user space, so an engine has
 * to learn its contents some other way.
 */
#include "bpfcheck.h"

const char *test_doc = "BPF bloom filters still find every value pushed into them";

struct bloom {
	struct map_spec spec;
	int pushed;
	int fd;
};

static struct bloom blooms[] = {
	{ { BPF_MAP_TYPE_BLOOM_FILTER, 0, 12, 400, 0, "bl_bloom3", .map_extra = 3 }, 300 },
	{ { BPF_MAP_TYPE_BLOOM_FILTER, 0, 8, 200, BPF_F_ZERO_SEED, "bl_bloom_zseed" }, 150 },
};
#define NBLOOMS ((int)ARRAY_SIZE(blooms))
#define ABSENT 1000
/* values never pushed: another stream */
#define ABSENT_A 1000
/* pushed after the restore */
#define LATE 50000

static int found(int b, int i, int a)
{
	uint8_t value[16];

	gen_bytes(value, blooms[b].spec.value_size, a + b, i);
	return map_lookup(blooms[b].fd, NULL, value) == 0;
}

static int check(int b, const char *when)
{
	int i, fp = 0, bad = 0;

	for (i = 0; i < blooms[b].pushed; i++)
		if (!found(b, i, 0)) {
			fail("%s %s: pushed value %d not found", blooms[b].spec.name, when, i);
			bad = 1;
			break;
		}
	for (i = 0; i < ABSENT; i++)
		fp += found(b, i, ABSENT_A);
	if (fp > ABSENT / 4) {
		fail("%s %s: %d of %d values never pushed are found", blooms[b].spec.name, when,
		     fp, ABSENT);
		bad = 1;
	}
	test_msg("%s %s: %d false positives of %d\n", blooms[b].spec.name, when, fp, ABSENT);
	return bad;
}

int main(int argc, char **argv)
{
	uint8_t value[16];
	int b, i, bad = 0;

	test_init(argc, argv);
	for (b = 0; b < NBLOOMS; b++) {
		blooms[b].fd = map_create(&blooms[b].spec);
		if (blooms[b].fd < 0) {
			pr_perror("BPF_MAP_CREATE %s", blooms[b].spec.name);
			return 1;
		}
		for (i = 0; i < blooms[b].pushed; i++) {
			gen_bytes(value, blooms[b].spec.value_size, b, i);
			if (map_update(blooms[b].fd, NULL, value, BPF_ANY)) {
				pr_perror("%s: push %d", blooms[b].spec.name, i);
				return 1;
			}
		}
		if (check_map_info(blooms[b].fd, &blooms[b].spec, blooms[b].spec.name, NULL) ||
		    check(b, "before the checkpoint"))
			return 1;
	}

	test_daemon();
	test_waitsig();

	for (b = 0; b < NBLOOMS; b++) {
		bad |= check_map_info(blooms[b].fd, &blooms[b].spec, blooms[b].spec.name, NULL);
		bad |= check(b, "after the restore");
		for (i = 0; i < 20; i++) {
			gen_bytes(value, blooms[b].spec.value_size, LATE + b, i);
			bad |= expect_ok(map_update(blooms[b].fd, NULL, value, BPF_ANY),
					 "a push after the restore");
		}
		for (i = 0; i < 20; i++)
			if (!found(b, i, LATE)) {
				fail("%s: a value pushed after the restore is not found",
				     blooms[b].spec.name);
				bad = 1;
				break;
			}
	}
	if (!bad)
		pass();
	return 0;
}
