/* A process holding one big BPF hash map or one epoll watching many files, for C/R
 * benchmarks.
 *
 *   bpf_epoll hash N RESULT_FILE    a BPF hash map of N entries (u32 key -> u64 value)
 *   bpf_epoll epoll N RESULT_FILE   an epoll watching N eventfds (every third one ready),
 *                                    each under its own data word
 * Writes "ready PID" to RESULT_FILE and pauses.  On SIGTERM it checks the map's every entry,
 * or the epoll's ready set (epoll_wait) and the fdinfo item count, and replaces RESULT_FILE's
 * content with "OK" or "BAD: why", then exits.
 */
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "result_file.h"

static long bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

static uint64_t value_of(uint32_t key)
{
	return (uint64_t)key * 0x9e3779b97f4a7c15ull;
}

static int map_update_batch(int fd, uint32_t *keys, uint64_t *values, uint32_t count)
{
	union bpf_attr a = { 0 };

	a.batch.map_fd = fd;
	a.batch.keys = (uintptr_t)keys;
	a.batch.values = (uintptr_t)values;
	a.batch.count = count;
	return bpf(BPF_MAP_UPDATE_BATCH, &a);
}

static const char *check_hash(int fd, uint32_t n)
{
	union bpf_attr a = { 0 };
	uint32_t key;
	uint64_t value;

	for (key = 0; key < n; key++) {
		a.map_fd = fd;
		a.key = (uintptr_t)&key;
		a.value = (uintptr_t)&value;
		if (bpf(BPF_MAP_LOOKUP_ELEM, &a) || value != value_of(key))
			return "a map entry is missing or wrong";
	}
	return NULL;
}

static const char *check_epoll(int ep, uint32_t n)
{
	struct epoll_event *events = calloc(n, sizeof(*events));
	char path[64], line[256];
	uint32_t ready = 0, items = 0, i;
	int got = epoll_wait(ep, events, n, 0);
	FILE *f;

	for (i = 0; i < (uint32_t)(got > 0 ? got : 0); i++)
		if (events[i].data.u64 % 3 == 0 && events[i].events == EPOLLIN)
			ready++;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", ep);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		items += !strncmp(line, "tfd:", 4);
	if (f)
		fclose(f);
	free(events);
	if (got != (int)((n + 2) / 3) || ready != (n + 2) / 3)
		return "the ready set differs";
	return items == n ? NULL : "the epoll lost items";
}

int main(int argc, char **argv)
{
	uint32_t n, i;
	int fd, ep = -1;
	char text[64];
	const char *bad;

	if (argc != 4)
		return 2;
	n = strtoul(argv[2], NULL, 0);
	signal(SIGTERM, on_term);
	if (!strcmp(argv[1], "hash")) {
		union bpf_attr a = { 0 };
		uint32_t *keys = malloc(n * sizeof(*keys));
		uint64_t *values = malloc(n * sizeof(*values));

		a.map_type = BPF_MAP_TYPE_HASH;
		a.key_size = 4;
		a.value_size = 8;
		a.max_entries = n;
		strcpy(a.map_name, "bench_hash");
		fd = bpf(BPF_MAP_CREATE, &a);
		for (i = 0; i < n; i++) {
			keys[i] = i;
			values[i] = value_of(i);
		}
		if (fd < 0 || map_update_batch(fd, keys, values, n))
			return 3;
		free(keys);
		free(values);
	} else {
		struct rlimit lim = { n + 64, n + 64 };

		if (setrlimit(RLIMIT_NOFILE, &lim))
			return 3;
		ep = fd = epoll_create1(0);
		for (i = 0; i < n; i++) {
			int e = eventfd(i % 3 == 0, 0);
			struct epoll_event ev = { .events = EPOLLIN, .data.u64 = i };

			if (e < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, e, &ev))
				return 3;
		}
	}
	snprintf(text, sizeof(text), "ready %d", getpid());
	put(argv[3], text);
	while (!stop)
		pause();
	bad = ep >= 0 ? check_epoll(ep, n) : check_hash(fd, n);
	snprintf(text, sizeof(text), "BAD: %s", bad ? bad : "");
	put(argv[3], bad ? text : "OK");
	return 0;
}
