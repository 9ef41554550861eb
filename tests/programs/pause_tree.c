/* A root and N - 1 children asleep in pause() with a SIGTERM handler, each in
 * `while (!stop) pause();`, which a handler run ahead of its pause() leaves asleep for good.
 *
 *   pause_tree N RESULT_FILE
 * "ready PID" goes to RESULT_FILE once every child has its handler; on SIGTERM the root
 * sends SIGTERM to each child (once), waits for them all and puts "OK" in RESULT_FILE.
 * A child that does not exit within 10 s makes it put "STUCK n" (n: how many were left).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_term(int sig) { (void)sig; stop = 1; }

static void put(const char *path, const char *text)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		exit(2);
	fputs(text, f);
	fclose(f);
	rename(tmp, path);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_term };
	int n, ready[2], left;
	pid_t *kids;
	char c, text[64];
	time_t deadline;

	if (argc != 3 || (n = atoi(argv[1])) < 1 || !(kids = calloc(n, sizeof(*kids))) ||
	    pipe(ready))
		return 2;
	for (int i = 1; i < n; i++) {
		kids[i] = fork();
		if (kids[i] < 0)
			return 2;
		if (kids[i] == 0) {
			sigaction(SIGTERM, &sa, NULL);
			if (write(ready[1], "x", 1) != 1)
				_exit(3);
			while (!stop)
				pause();
			_exit(0);
		}
	}
	close(ready[1]);
	for (int i = 1; i < n; i++)
		if (read(ready[0], &c, 1) != 1)
			return 3;
	sigaction(SIGTERM, &sa, NULL);
	snprintf(text, sizeof(text), "ready %d\n", getpid());
	put(argv[2], text);
	while (!stop)
		pause();
	for (int i = 1; i < n; i++)
		kill(kids[i], SIGTERM);
	left = n - 1;
	deadline = time(NULL) + 10;
	while (left && time(NULL) < deadline) {
		pid_t got = waitpid(-1, NULL, WNOHANG);

		if (got > 0)
			left--;
		else
			usleep(1000);
	}
	snprintf(text, sizeof(text), left ? "STUCK %d\n" : "OK\n", left);
	put(argv[2], text);
	return left ? 1 : 0;
}
