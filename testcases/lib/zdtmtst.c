/* The ZDTM static-test protocol: options, the log, launcher and daemon (see zdtmtst.h). */
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "lock.h"
#include "zdtmtst.h"

__attribute__((weak)) const char *test_doc = "";
__attribute__((weak)) const char *test_author = "";

static char *pidfile;
static char *outfile;
TEST_OPTION(pidfile, string, "where the launcher writes the test's pid", 1);
TEST_OPTION(outfile, string, "the test's result and log (written as OUTFILE.inprogress)", 1);

enum { STAGE_INIT = 0, STAGE_READY = 1 };

static futex_t *stage;            /* shared with the launcher until test_daemon() */
static futex_t sig_received;      /* private: set by the SIGTERM handler */
static pid_t test_main_pid;
static char *out_path, *inprogress_path;

/* ---- options ------------------------------------------------------------ */

static struct long_opt *opts;

void __push_opt(struct long_opt *opt)
{
	opt->next = opts;
	opts = opt;
}

int parse_opt_string(char *arg, void *value)
{
	*(char **)value = arg;
	return 0;
}

static int parse_number(char *arg, long long lo, unsigned long long hi, int is_signed, void *out,
			size_t size)
{
	char *end;

	errno = 0;
	if (is_signed) {
		long long v = strtoll(arg, &end, 0);
		if (errno || *arg == '\0' || *end || v < lo || v > (long long)hi)
			return -1;
		if (size == sizeof(int))
			*(int *)out = (int)v;
		else
			*(long *)out = (long)v;
	} else {
		unsigned long long v = strtoull(arg, &end, 0);
		if (errno || *arg == '\0' || *end || *arg == '-' || v > hi)
			return -1;
		if (size == sizeof(unsigned int))
			*(unsigned int *)out = (unsigned int)v;
		else
			*(unsigned long *)out = (unsigned long)v;
	}
	return 0;
}

int parse_opt_int(char *arg, void *value)
{
	return parse_number(arg, INT_MIN, INT_MAX, 1, value, sizeof(int));
}

int parse_opt_uint(char *arg, void *value)
{
	return parse_number(arg, 0, UINT_MAX, 0, value, sizeof(unsigned int));
}

int parse_opt_long(char *arg, void *value)
{
	return parse_number(arg, LONG_MIN, LONG_MAX, 1, value, sizeof(long));
}

int parse_opt_ulong(char *arg, void *value)
{
	return parse_number(arg, 0, ULONG_MAX, 0, value, sizeof(unsigned long));
}

int parse_opt_bool(char *arg, void *value)
{
	static const char *yes[] = { "1", "true", "yes", "on" }, *no[] = { "0", "false", "no", "off" };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(yes); i++) {
		if (!strcasecmp(arg, yes[i])) {
			*(int *)value = 1;
			return 0;
		}
		if (!strcasecmp(arg, no[i])) {
			*(int *)value = 0;
			return 0;
		}
	}
	return -1;
}

static void usage(const char *prog, const char *why, const char *what)
{
	struct long_opt *o;
	const char *slash = strrchr(prog, '/');

	prog = slash ? slash + 1 : prog;
	fprintf(stderr, "%s: %s%s\n", prog, why, what ? what : "");
	if (test_doc && *test_doc)
		fprintf(stderr, "%s\n", test_doc);
	fprintf(stderr, "usage: %s --name=value ...\n", prog);
	for (o = opts; o; o = o->next)
		fprintf(stderr, "  --%s=%s%s\t%s\n", o->name, o->type, o->is_required ? " (required)" : "",
			o->doc);
	exit(2);
}

static void parse_args(int argc, char **argv)
{
	struct long_opt *o;
	int i, nopts = 0, *seen;

	for (o = opts; o; o = o->next)
		nopts++;
	seen = calloc(nopts + 1, sizeof(*seen));
	if (!seen)
		abort();

	for (i = 1; i < argc; i++) {
		char *arg = argv[i], *name, *value, *eq;
		size_t len;
		int k = 0;

		if (strncmp(arg, "--", 2))
			usage(argv[0], "not an option: ", arg);
		name = arg + 2;
		eq = strchr(name, '=');
		len = eq ? (size_t)(eq - name) : strlen(name);
		for (o = opts; o; o = o->next, k++)
			if (strlen(o->name) == len && !strncmp(o->name, name, len))
				break;
		if (!o)
			usage(argv[0], "unknown option: ", arg);
		if (eq)
			value = eq + 1;
		else if (!strcmp(o->type, "bool"))
			value = "1";
		else if (i + 1 < argc)
			value = argv[++i];
		else
			usage(argv[0], "missing value for ", arg);
		if (o->parse_opt(value, o->value))
			usage(argv[0], "bad value for ", arg);
		seen[k] = 1;
	}

	for (o = opts, i = 0; o; o = o->next, i++)
		if (o->is_required && !seen[i])
			usage(argv[0], "missing required option --", o->name);
	free(seen);
}

/* ---- the log -------------------------------------------------------------- */

void test_msg(const char *format, ...)
{
	char buf[TEST_MSG_BUFFER_SIZE];
	int saved = errno, n, m;
	struct timeval tv;
	va_list ap;

	gettimeofday(&tv, NULL);
	/* UTC by hand: localtime_r() would open /etc/localtime inside the test */
	n = snprintf(buf, sizeof(buf), "%02ld:%02ld:%02ld.%03ld: %5d: ", (long)(tv.tv_sec / 3600 % 24),
		     (long)(tv.tv_sec / 60 % 60), (long)(tv.tv_sec % 60), (long)(tv.tv_usec / 1000),
		     (int)getpid());
	va_start(ap, format);
	m = vsnprintf(buf + n, sizeof(buf) - n, format, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	if (buf[n - 1] != '\n')
		buf[n++] = '\n';
	/* one write: the log is O_APPEND, so lines of concurrent writers never mix */
	if (write(STDERR_FILENO, buf, n) < 0) {
		/* nowhere left to report it */
	}
	errno = saved;
}

static char *absolute(const char *path)
{
	char cwd[PATH_MAX], *res;

	if (path[0] == '/')
		res = strdup(path);
	else if (!getcwd(cwd, sizeof(cwd)) || asprintf(&res, "%s/%s", cwd, path) < 0)
		res = NULL;
	if (!res) {
		perror("zdtm: outfile path");
		exit(1);
	}
	return res;
}

/* a forked child is never the test's main process, whatever pid its namespace gives it */
static void not_main(void)
{
	test_main_pid = 0;
}

static void finish_outfile(void)
{
	if (getpid() != test_main_pid)
		return;       /* children of the test leave the log alone */
	fflush(NULL);
	if (rename(inprogress_path, out_path))
		perror("zdtm: rename outfile");
}

/* ---- launcher and daemon ---------------------------------------------------- */

static int write_pidfile(pid_t pid)
{
	char tmp[] = "./.zdtm-pidfile-XXXXXX", buf[32];
	int fd, len;

	fd = mkstemp(tmp);
	if (fd < 0) {
		perror("zdtm: pidfile temporary");
		return -1;
	}
	len = snprintf(buf, sizeof(buf), "%d\n", (int)pid);
	if (write(fd, buf, len) != len || fchmod(fd, 0644) || close(fd)) {
		perror("zdtm: write pidfile");
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, pidfile)) {
		perror("zdtm: rename pidfile");
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* The parent after the fork: wait for test_daemon() or the child's death. */
static void __attribute__((noreturn)) launcher(pid_t child)
{
	for (;;) {
		struct timespec tick = { 0, 100 * 1000 * 1000 };
		uint32_t cur = futex_get(stage);
		int status;

		if (cur == STAGE_READY)
			_exit(write_pidfile(child) ? 1 : 0);
		if (waitpid(child, &status, WNOHANG) == child) {
			if (futex_get(stage) == STAGE_READY)
				_exit(write_pidfile(child) ? 1 : 0);
			if (WIFEXITED(status))
				fprintf(stderr, "zdtm: test %d exited with %d before test_daemon()\n",
					child, WEXITSTATUS(status));
			else
				fprintf(stderr, "zdtm: test %d killed by signal %d before test_daemon()\n",
					child, WTERMSIG(status));
			_exit(1);
		}
		sys_futex(&stage->raw, FUTEX_WAIT, cur, &tick, NULL, 0);
	}
}

static void sigterm_handler(int signo)
{
	(void)signo;
	futex_set_and_wake(&sig_received, 1);
}

/* ---- the ns flavor ------------------------------------------------------- */

/*
 * With ZDTM_NEWNS=1 in the environment the test runs in new pid, mount, network, IPC and
 * UTS namespaces, under an init of its own (pid 1 there, the root of the tree a checkpoint
 * takes): it forwards SIGTERM to the test, reaps whatever ends up its child, and exits as
 * the test did.  The launcher's pidfile names the init.  The test sees a private root: a
 * tmpfs holding the launcher's /usr, /etc and /tmp (bound, with what is mounted below them),
 * its /bin, /lib... links, a /proc of the new pid namespace, and a /dev of its own (a
 * tmpfs with the launcher's null, zero, full, random and urandom bound in), all private.
 *
 * With ZDTM_USERNS=1 as well (the uns flavor) all of them belong to a new user namespace
 * made in the same clone, whose maps the launcher writes before the init goes on: root is
 * root (so the test reaches the harness's files) and every other id is shifted by
 * USERNS_SHIFT, so that an engine which does not translate ids gets them visibly wrong.
 */
static volatile pid_t ns_test;

static void ns_forward(int signo)
{
	if (ns_test > 0)
		kill(ns_test, signo);
}

static void __attribute__((noreturn)) ns_init(void)
{
	struct sigaction sa = { .sa_handler = ns_forward, .sa_flags = SA_RESTART };
	int status;
	pid_t got;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	for (;;) {
		got = waitpid(-1, &status, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			_exit(1);
		if (got == ns_test)
			_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	}
}

static int ns_loopback_up(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int sk = socket(AF_INET, SOCK_DGRAM, 0), ret;

	if (sk < 0)
		return -1;
	ret = ioctl(sk, SIOCGIFFLAGS, &ifr);
	if (!ret) {
		ifr.ifr_flags |= IFF_UP;
		ret = ioctl(sk, SIOCSIFFLAGS, &ifr);
	}
	close(sk);
	return ret;
}

#define USERNS_SHIFT 100000

static int write_map(pid_t pid, const char *which)
{
	char path[64], map[64];
	int fd, len, ret;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, which);
	len = snprintf(map, sizeof(map), "0 0 1\n1 %d 65535\n", USERNS_SHIFT + 1);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ret = write(fd, map, len) == len ? 0 : -1;
	close(fd);
	return ret;
}

static const char *const root_binds[] = { "usr", "etc", "tmp" };
static const char *const root_links[] = { "bin", "sbin", "lib", "lib32", "lib64", "libx32" };
static const char *const dev_nodes[] = { "null", "zero", "full", "random", "urandom" };

/* The private root, built under DIR/ns-root (DIR: our cwd) and pivoted into. */
static int ns_private_root(void)
{
	char cwd[PATH_MAX], root[PATH_MAX + 16], path[2 * PATH_MAX], link[PATH_MAX];
	struct stat st;
	unsigned i;
	ssize_t len;
	int fd;

	if (!getcwd(cwd, sizeof(cwd)))
		return -1;
	snprintf(root, sizeof(root), "%s/ns-root", cwd);
	if ((mkdir(root, 0755) && errno != EEXIST) ||
	    mount("tmpfs", root, "tmpfs", 0, "mode=755"))
		return -1;
	for (i = 0; i < ARRAY_SIZE(root_binds); i++) {
		snprintf(path, sizeof(path), "%s/%s", root, root_binds[i]);
		snprintf(link, sizeof(link), "/%s", root_binds[i]);
		if (mkdir(path, 0755) || mount(link, path, NULL, MS_BIND | MS_REC, NULL))
			return -1;
	}
	for (i = 0; i < ARRAY_SIZE(root_links); i++) {
		snprintf(path, sizeof(path), "/%s", root_links[i]);
		len = readlink(path, link, sizeof(link) - 1);
		if (len < 0)
			continue;		/* absent, or a directory: not on this layout */
		link[len] = 0;
		snprintf(path, sizeof(path), "%s/%s", root, root_links[i]);
		if (symlink(link, path))
			return -1;
	}
	snprintf(path, sizeof(path), "%s/proc", root);
	if (mkdir(path, 0555) ||
	    mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
		return -1;
	snprintf(path, sizeof(path), "%s/dev", root);
	if (mkdir(path, 0755) || mount("tmpfs", path, "tmpfs", MS_NOSUID, "mode=755"))
		return -1;
	for (i = 0; i < ARRAY_SIZE(dev_nodes); i++) {
		snprintf(path, sizeof(path), "%s/dev/%s", root, dev_nodes[i]);
		snprintf(link, sizeof(link), "/dev/%s", dev_nodes[i]);
		if (stat(link, &st))
			continue;
		fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
		if (fd < 0)
			return -1;
		close(fd);
		if (mount(link, path, NULL, MS_BIND, NULL))
			return -1;
	}
	snprintf(path, sizeof(path), "%s/.old", root);
	if (mkdir(path, 0700) || chdir(root) || syscall(SYS_pivot_root, ".", ".old") ||
	    umount2("/.old", MNT_DETACH) || rmdir("/.old") || chdir(cwd))
		return -1;
	/* the recursive bind of /tmp copied the new root as it was then: not ours to keep */
	umount2("ns-root", MNT_DETACH);
	rmdir("ns-root");
	return 0;
}

/* In the launcher: the init's pid (>0); in the test: 0; -1 on failure. */
static pid_t ns_fork(void)
{
	int userns = getenv("ZDTM_USERNS") != NULL, maps[2];
	pid_t init;
	char go;

	if (userns && pipe2(maps, O_CLOEXEC))
		return -1;
	init = syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC |
		       CLONE_NEWUTS | (userns ? CLONE_NEWUSER : 0) | SIGCHLD, 0, 0, 0, 0);
	if (init != 0 && userns) {
		/* the init waits for its maps: written here, by root of the parent namespace */
		if (init > 0 && (write_map(init, "uid_map") || write_map(init, "gid_map"))) {
			perror("zdtm: write the user namespace's maps");
			kill(init, SIGKILL);
			init = -1;
		}
		close(maps[0]);
		close(maps[1]);
	}
	if (init != 0)
		return init;
	if (userns) {
		close(maps[1]);
		if (read(maps[0], &go, 1) != 0 || setresgid(0, 0, 0) || setresuid(0, 0, 0)) {
			perror("zdtm: enter the user namespace");
			_exit(1);
		}
		close(maps[0]);
	}
	if (setsid() < 0 || ns_loopback_up() || sethostname("zdtm-ns", 7) ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) || ns_private_root()) {
		perror("zdtm: set up the namespaces");
		_exit(1);
	}
	ns_test = fork();
	if (ns_test < 0) {
		perror("zdtm: fork the test");
		_exit(1);
	}
	if (ns_test == 0)
		return 0;
	ns_init();
}

void test_init(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = sigterm_handler, .sa_flags = SA_RESTART };
	sigset_t none;
	int log, null;
	pid_t pid;

	parse_args(argc, argv);
	out_path = absolute(outfile);
	if (asprintf(&inprogress_path, "%s%s", out_path, INPROGRESS) < 0)
		abort();

	log = open(inprogress_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	if (log < 0) {
		perror("zdtm: open the log");
		exit(1);
	}
	stage = mmap(NULL, sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		     -1, 0);
	if (stage == MAP_FAILED) {
		perror("zdtm: mmap");
		exit(1);
	}
	futex_set(stage, STAGE_INIT);

	/* the test starts from a known signal state, whatever the harness had */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	fflush(NULL);
	pid = getenv("ZDTM_NEWNS") ? ns_fork() : fork();
	if (pid < 0) {
		perror("zdtm: fork");
		exit(1);
	}
	if (pid > 0)
		launcher(pid);

	test_main_pid = getpid();
	pthread_atfork(NULL, NULL, not_main);
	if (setsid() < 0) {
		perror("zdtm: setsid");
		exit(1);
	}
	null = open("/dev/null", O_RDONLY);
	if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(log, STDOUT_FILENO) < 0 ||
	    dup2(log, STDERR_FILENO) < 0) {
		perror("zdtm: redirect stdio");
		exit(1);
	}
	if (null > STDERR_FILENO)
		close(null);
	close(log);
	setvbuf(stdout, NULL, _IOLBF, 0);
	setvbuf(stderr, NULL, _IONBF, 0);
	atexit(finish_outfile);

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL)) {
		pr_perror("sigaction(SIGTERM)");
		exit(1);
	}
}

void test_daemon(void)
{
	if (!stage)
		return;
	/*
	 * The page stays mapped, as in CRIU's library: an munmap() here would race with the
	 * harness, which looks at the tree as soon as the launcher has written the pidfile.
	 */
	futex_set_and_wake(stage, STAGE_READY);
	stage = NULL;
}

int test_fork_id(int id)
{
	(void)id;
	fflush(NULL);   /* no buffered output twice */
	return fork();
}

int test_go(void)
{
	return futex_get(&sig_received) == 0;
}

void test_waitsig(void)
{
	futex_wait_while(&sig_received, 0);
}
