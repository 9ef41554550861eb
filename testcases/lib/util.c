/* Data patterns, I/O helpers and task waiters for test programs (see zdtmtst.h). */
#include <fcntl.h>

#include "zdtmtst.h"

/* ---- CRC-32 (IEEE, reflected) over a xorshift pattern ---------------------------- */

static uint32_t crc_table[256];

/*
 * Filled before main(): made lazily, a thread that found crc_table[1] set while another
 * was still filling the rest used a half-made table, and its data "changed" by the next
 * check (threads_many failed so about once in 300 runs).
 */
__attribute__((constructor)) static void crc_init(void)
{
	uint32_t i, j, c;

	for (i = 0; i < 256; i++) {
		for (c = i, j = 0; j < 8; j++)
			c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t crc_update(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

static uint64_t pattern_state = 0x9e3779b97f4a7c15ull;

static void fill(uint8_t *buf, size_t len)
{
	uint64_t x = pattern_state;
	size_t i;

	for (i = 0; i < len; i++) {
		if ((i & 7) == 0) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
		}
		buf[i] = (uint8_t)(x >> ((i & 7) * 8));
	}
	pattern_state = x + 0x632be59bd9b4e019ull;
}

void datagen(uint8_t *buffer, unsigned length, uint32_t *crc)
{
	uint32_t c;

	if (length < 4) {
		fill(buffer, length);
		return;
	}
	fill(buffer, length - 4);
	c = crc_update(*crc, buffer, length - 4);
	*crc = c;
	memcpy(buffer + length - 4, &c, 4);
}

void datagen2(uint8_t *buffer, unsigned length, uint32_t *crc)
{
	fill(buffer, length);
	*crc = crc_update(*crc, buffer, length);
}

int datachk(const uint8_t *buffer, unsigned length, uint32_t *crc)
{
	uint32_t stored;

	if (length < 4)
		return 0;
	*crc = crc_update(*crc, buffer, length - 4);
	memcpy(&stored, buffer + length - 4, 4);
	return stored == *crc ? 0 : 1;
}

int datasum(const uint8_t *buffer, unsigned length, uint32_t *crc)
{
	*crc = crc_update(*crc, buffer, length);
	return 0;
}

/* ---- I/O ------------------------------------------------------------------------ */

int set_nonblock(int fd, int on)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0)
		return -1;
	flags = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
	return fcntl(fd, F_SETFL, flags);
}

int read_data(int fd, unsigned char *buf, int len)
{
	int done = 0;

	while (done < len) {
		ssize_t r = read(fd, buf + done, len - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		done += r;
	}
	return 0;
}

int write_data(int fd, const unsigned char *buf, int len)
{
	int done = 0;

	while (done < len) {
		ssize_t r = write(fd, buf + done, len - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		done += r;
	}
	return 0;
}

int pipe_in2out(int infd, int outfd, uint8_t *buffer, int length)
{
	ssize_t r = read(infd, buffer, length);

	if (r <= 0)
		return r < 0 ? -1 : 0;
	return write_data(outfd, buffer, r) ? -1 : (int)r;
}

/* ---- task waiters ---------------------------------------------------------------- */

void task_waiter_init(task_waiter_t *t)
{
	t->seed = (unsigned long)getpid();
	if (pipe(t->pipes)) {
		pr_perror("task_waiter_init: pipe");
		exit(1);
	}
}

void task_waiter_fini(task_waiter_t *t)
{
	close(t->pipes[0]);
	close(t->pipes[1]);
}

void task_waiter_wait4(task_waiter_t *t, unsigned int lockid)
{
	unsigned int got;

	if (read_data(t->pipes[0], (unsigned char *)&got, sizeof(got))) {
		pr_perror("task_waiter_wait4: read");
		exit(1);
	}
	if (got != lockid) {
		pr_err("task_waiter_wait4: got %u, waited for %u\n", got, lockid);
		exit(1);
	}
}

void task_waiter_complete(task_waiter_t *t, unsigned int lockid)
{
	if (write_data(t->pipes[1], (unsigned char *)&lockid, sizeof(lockid))) {
		pr_perror("task_waiter_complete: write");
		exit(1);
	}
}

void task_waiter_complete_current(task_waiter_t *t)
{
	task_waiter_complete(t, (unsigned int)getpid());
}
