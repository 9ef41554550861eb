/*
 * The ZDTM "static test" protocol, our implementation.
 *
 * A test program is started as
 *     prog --pidfile=P --outfile=O [--filename=F] [--dirname=D] [options]
 * test_init() parses the options, opens O.inprogress as the log (stdout and
 * stderr go there, stdin reads /dev/null) and forks.  The parent, the
 * launcher, waits until the child calls test_daemon(), writes the child's pid
 * to P (atomically: a temporary file in the cwd, then rename) and exits 0; it
 * exits non-zero when the child dies first.  The child becomes a session and
 * process-group leader (setsid), sets up its state, calls test_daemon(), waits
 * for SIGTERM (test_waitsig() or a test_go() loop), checks its state and
 * reports with pass() or fail().  At exit the main process renames
 * O.inprogress to O.  The public names are those of CRIU's zdtm library, so
 * its static tests build against this one.
 */
#ifndef ZDTMTST_H_
#define ZDTMTST_H_

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define INPROGRESS ".inprogress"

#ifndef PAGE_SIZE
#define PAGE_SIZE ((unsigned int)sysconf(_SC_PAGESIZE))
#endif

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define __stringify_1(x) #x
#define __stringify(x) __stringify_1(x)
#define __stack_aligned__ __attribute__((aligned(16)))

/* Optional descriptions a test may define (weak defaults in the library). */
extern const char *test_doc;
extern const char *test_author;

/* Lifecycle. */
extern void test_init(int argc, char **argv);
extern void test_daemon(void);       /* ready: the launcher writes the pidfile */
extern int test_go(void);            /* non-zero until SIGTERM arrives */
extern void test_waitsig(void);      /* sleep until SIGTERM arrives */

/* fork() for test processes (ZDTM's id argument only labels its logs). */
extern int test_fork_id(int id);
#define test_fork() test_fork_id(-1)

/* The log: one line per call, prefixed with the time and the pid. */
#define TEST_MSG_BUFFER_SIZE 2048
extern void test_msg(const char *format, ...) __attribute__((format(printf, 1, 2)));

#define pr_err(format, ...) \
	test_msg("ERR: %s:%d: " format, __FILE__, __LINE__, ##__VA_ARGS__)
#define pr_info(format, ...) test_msg(format, ##__VA_ARGS__)
#define pr_perror(format, ...)                                                      \
	({                                                                          \
		int __e = errno;                                                    \
		test_msg("ERR: %s:%d: " format " (errno = %d (%s))\n", __FILE__, __LINE__, \
			 ##__VA_ARGS__, __e, strerror(__e));                        \
	})
#define fail(format, ...)                                                           \
	({                                                                          \
		int __e = errno;                                                    \
		test_msg("FAIL: %s:%d: " format " (errno = %d (%s))\n", __FILE__, __LINE__, \
			 ##__VA_ARGS__, __e, strerror(__e));                        \
	})
#define skip(format, ...) \
	test_msg("SKIP: %s:%d: " format "\n", __FILE__, __LINE__, ##__VA_ARGS__)
#define pass() test_msg("PASS\n")

/*
 * Checksummed pseudo-random data.  *crc is the running CRC-32 (start it at
 * ~0).  datagen() fills the buffer and stores the checksum of the rest in its
 * last 4 bytes; datachk() returns 0 when they still agree.  datagen2() fills
 * all of it and only updates *crc; datasum() updates *crc from the contents.
 */
extern void datagen(uint8_t *buffer, unsigned length, uint32_t *crc);
extern void datagen2(uint8_t *buffer, unsigned length, uint32_t *crc);
extern int datachk(const uint8_t *buffer, unsigned length, uint32_t *crc);
extern int datasum(const uint8_t *buffer, unsigned length, uint32_t *crc);

/* Small I/O helpers. */
extern int set_nonblock(int fd, int on);
extern int read_data(int fd, unsigned char *buf, int len);   /* all or -1 */
extern int write_data(int fd, const unsigned char *buf, int len);
extern int pipe_in2out(int infd, int outfd, uint8_t *buffer, int length);

/* Command-line options: TEST_OPTION(variable, type, doc, required). */
struct long_opt {
	const char *name;
	const char *type;
	const char *doc;
	int is_required;
	int (*parse_opt)(char *arg, void *value);
	void *value;
	struct long_opt *next;
};

extern void __push_opt(struct long_opt *opt);
extern int parse_opt_string(char *arg, void *value);
extern int parse_opt_int(char *arg, void *value);
extern int parse_opt_uint(char *arg, void *value);
extern int parse_opt_long(char *arg, void *value);
extern int parse_opt_ulong(char *arg, void *value);
extern int parse_opt_bool(char *arg, void *value);

/* The C type of each option type (bool options are ints, as in ZDTM). */
typedef char *zdtm_opt_ctype_string;
typedef int zdtm_opt_ctype_int;
typedef unsigned int zdtm_opt_ctype_uint;
typedef long zdtm_opt_ctype_long;
typedef unsigned long zdtm_opt_ctype_ulong;
typedef int zdtm_opt_ctype_bool;

#define TEST_OPTION(name, type, doc, required)                                     \
	static inline zdtm_opt_ctype_##type *zdtm_opt_check_##name(void)           \
	{                                                                          \
		return &(name); /* a type mismatch is a compile error */           \
	}                                                                          \
	static struct long_opt zdtm_opt_##name = {                                 \
		#name, #type, doc, required, parse_opt_##type, &(name), NULL };    \
	__attribute__((constructor)) static void zdtm_opt_register_##name(void)   \
	{                                                                          \
		(void)zdtm_opt_check_##name;                                       \
		__push_opt(&zdtm_opt_##name);                                      \
	}

/* One-shot rendezvous between processes (over a pipe pair). */
typedef struct {
	unsigned long seed;
	int pipes[2];
} task_waiter_t;

extern void task_waiter_init(task_waiter_t *t);
extern void task_waiter_fini(task_waiter_t *t);
extern void task_waiter_wait4(task_waiter_t *t, unsigned int lockid);
extern void task_waiter_complete(task_waiter_t *t, unsigned int lockid);
extern void task_waiter_complete_current(task_waiter_t *t);

#define ssprintf(s, fmt, ...)                                             \
	({                                                                \
		int __r = snprintf(s, sizeof(s), fmt, ##__VA_ARGS__);     \
		if (__r < 0 || (size_t)__r >= sizeof(s))                  \
			abort();                                          \
		__r;                                                      \
	})

#endif /* ZDTMTST_H_ */
