/*
 * A frozen queue and a frozen stack (BPF_MAP_FREEZE after 10 pushes each).
 * From user space a frozen queue or stack can only be peeked: popping is a
 * write, which freezing forbids, so only its head can be read; BPF programs
 * still may pop (freezing only stops writes through bpf(2)).
 *
 * After restore: BPF_OBJ_GET_INFO_BY_FD and fdinfo ("frozen:\t1"); a peek
 * (BPF_MAP_LOOKUP_ELEM) gives the head (the queue's first element, the
 * stack's last), twice; a pop (BPF_MAP_LOOKUP_AND_DELETE_ELEM), a push,
 * a push with BPF_EXIST fail with EPERM, a second freeze with EPERM or EBUSY
 * (as the kernel orders its checks). Then a socket
 * filter run with BPF_PROG_TEST_RUN pops the elements one at a time into an
 * array made after the restore: they come out all there and in the original
 * order (FIFO, LIFO), then the maps are empty (a peek gives ENOENT) and
 * still frozen.
 */
#include "bpfcheck.h"

const char *test_doc = "frozen BPF queues and stacks keep their elements and order";

#define N 10

enum { QUEUE, STACK, NMAPS };
static struct map_spec specs[NMAPS] = {
	[QUEUE] = { BPF_MAP_TYPE_QUEUE, 0, 20, 16, 0, "fq_queue", .frozen = 1 },
	[STACK] = { BPF_MAP_TYPE_STACK, 0, 12, 16, 0, "fq_stack", .frozen = 1 },
};
static int fds[NMAPS];

/* element k of map m */
static void elem(int m, int k, uint8_t *value)
{
	gen_bytes(value, specs[m].value_size, 10 + m, k);
}

/* the k-th element out (peek or pop) */
static int out_order(int m, int k)
{
	return m == QUEUE ? k : N - 1 - k;
}

static int check_peek(int m, int k, const char *what)
{
	uint8_t value[32], want[32];

	if (map_lookup(fds[m], NULL, value)) {
		fail("%s: peek", what);
		return 1;
	}
	elem(m, k, want);
	if (memcmp(value, want, specs[m].value_size)) {
		fail("%s: the peek did not give element %d", what, k);
		return 1;
	}
	return 0;
}

static int check_refuses(int m)
{
	uint8_t value[32];
	int bad = 0;

	elem(m, 99, value);
	bad |= expect_errno(map_lookup_and_delete(fds[m], NULL, value), EPERM, specs[m].name);
	bad |= expect_errno(map_update(fds[m], NULL, value, BPF_ANY), EPERM, specs[m].name);
	bad |= expect_errno(map_update(fds[m], NULL, value, BPF_EXIST), EPERM, specs[m].name);
	bad |= expect_frozen_again(fds[m], specs[m].name);
	return bad;
}

/*
 * A program that pops one element of map m into key 0 of an array `out`:
 * it returns 0 when it popped one, 1 when the map was empty.
 */
static int pop_prog(int m, int out)
{
	struct bpf_insn insns[] = {
		/* the value buffer fp-32..fp-1 starts zeroed */
		ST_MEM_W(BPF_REG_10, -32, 0), ST_MEM_W(BPF_REG_10, -28, 0),
		ST_MEM_W(BPF_REG_10, -24, 0), ST_MEM_W(BPF_REG_10, -20, 0),
		ST_MEM_W(BPF_REG_10, -16, 0), ST_MEM_W(BPF_REG_10, -12, 0),
		ST_MEM_W(BPF_REG_10, -8, 0), ST_MEM_W(BPF_REG_10, -4, 0),
		/* bpf_map_pop_elem(map, fp - 32) */
		LD_IMM64(BPF_REG_1, BPF_PSEUDO_MAP_FD, fds[m]),
		MOV64_REG(BPF_REG_2, BPF_REG_10),
		ADD64_IMM(BPF_REG_2, -32),
		CALL(BPF_FUNC_map_pop_elem),
		JNE_IMM(BPF_REG_0, 0, 11),
		/* bpf_map_update_elem(out, &(u32)0, fp - 32, BPF_ANY) */
		ST_MEM_W(BPF_REG_10, -40, 0),
		LD_IMM64(BPF_REG_1, BPF_PSEUDO_MAP_FD, out),
		MOV64_REG(BPF_REG_2, BPF_REG_10),
		ADD64_IMM(BPF_REG_2, -40),
		MOV64_REG(BPF_REG_3, BPF_REG_10),
		ADD64_IMM(BPF_REG_3, -32),
		MOV64_IMM(BPF_REG_4, BPF_ANY),
		CALL(BPF_FUNC_map_update_elem),
		MOV64_IMM(BPF_REG_0, 0),
		EXIT(),
		/* empty */
		MOV64_IMM(BPF_REG_0, 1),
		EXIT(),
	};

	return prog_load(BPF_PROG_TYPE_SOCKET_FILTER, insns, ARRAY_SIZE(insns), "fq_pop", -1,
			 NULL, 0);
}

/* Pop everything with a program: elements in order, then empty. */
static int check_all(int m)
{
	struct map_spec out_spec = { BPF_MAP_TYPE_ARRAY, 4, specs[m].value_size, 1, 0, "fq_out" };
	uint8_t value[32], want[32];
	int out, prog, k, bad = 0;
	__u32 key = 0;
	long ret;

	out = map_create(&out_spec);
	if (out < 0) {
		fail("BPF_MAP_CREATE fq_out");
		return 1;
	}
	prog = pop_prog(m, out);
	if (prog < 0) {
		fail("%s: the popping program does not load", specs[m].name);
		close(out);
		return 1;
	}
	for (k = 0; k <= N && !bad; k++) {
		ret = prog_run(prog, "", 0);
		if (k == N) {
			if (ret != 1) {
				fail("%s: a pop after %d elements gave %ld, not empty", specs[m].name,
				     N, ret);
				bad = 1;
			}
			break;
		}
		if (ret != 0 || map_lookup(out, &key, value)) {
			fail("%s: pop %d by the program: %ld", specs[m].name, k, ret);
			bad = 1;
			break;
		}
		elem(m, out_order(m, k), want);
		if (memcmp(value, want, specs[m].value_size)) {
			fail("%s: pop %d gave another element than %d", specs[m].name, k,
			     out_order(m, k));
			bad = 1;
		}
	}
	close(prog);
	close(out);
	return bad;
}

int main(int argc, char **argv)
{
	uint8_t value[32];
	int m, k, bad = 0;

	test_init(argc, argv);
	for (m = 0; m < NMAPS; m++) {
		fds[m] = map_create(&specs[m]);
		if (fds[m] < 0) {
			pr_perror("BPF_MAP_CREATE %s", specs[m].name);
			return 1;
		}
		for (k = 0; k < N; k++) {
			elem(m, k, value);
			if (map_update(fds[m], NULL, value, BPF_ANY)) {
				pr_perror("%s: push %d", specs[m].name, k);
				return 1;
			}
		}
		if (map_freeze(fds[m])) {
			pr_perror("BPF_MAP_FREEZE %s", specs[m].name);
			return 1;
		}
		if (check_map_info(fds[m], &specs[m], specs[m].name, NULL) ||
		    check_peek(m, out_order(m, 0), specs[m].name))
			return 1;
	}

	test_daemon();
	test_waitsig();

	for (m = 0; m < NMAPS; m++) {
		bad |= check_map_info(fds[m], &specs[m], specs[m].name, NULL);
		bad |= check_peek(m, out_order(m, 0), specs[m].name);
		bad |= check_peek(m, out_order(m, 0), specs[m].name);
		bad |= check_refuses(m);
	}
	for (m = 0; m < NMAPS && !bad; m++) {
		bad |= check_all(m);
		bad |= expect_errno(map_lookup(fds[m], NULL, value), ENOENT, specs[m].name);
		bad |= check_map_info(fds[m], &specs[m], specs[m].name, NULL);
		bad |= check_refuses(m);
	}
	if (!bad)
		pass();
	return 0;
}
