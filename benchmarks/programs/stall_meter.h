/* A stall meter for the benchmark programs: how long the process itself saw time jump, the
 * same way for either engine (a dump's freeze, a pre-dump's stall, scheduling noise too).
 *
 * stall_meter_start(RESULT_FILE) starts a thread that sleeps ~50 us in a loop and keeps the
 * largest gap of CLOCK_MONOTONIC between two of its wake-ups.  On SIGUSR2 it replaces the
 * content of RESULT_FILE.stall with "stall NS" (the largest gap since the last report, in
 * ns) and starts again from zero.  Only with STALL_METER=1 in the environment: some 20,000
 * wake-ups a second would take CPU from a dump on a small machine, so benchmarks that do
 * not read the meter run the programs as before.
 */
#ifndef STALL_METER_H
#define STALL_METER_H

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "result_file.h"

static volatile sig_atomic_t stall_asked;
static char stall_path[4096];

static void stall_on_usr2(int sig) { (void)sig; stall_asked = 1; }

static uint64_t stall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static void *stall_loop(void *arg)
{
	const struct timespec nap = { 0, 50000 };
	uint64_t last = stall_now(), largest = 0, now;
	char text[64];

	(void)arg;
	for (;;) {
		nanosleep(&nap, NULL);		/* a signal cutting it short is no matter */
		now = stall_now();
		if (now - last > largest)
			largest = now - last;
		last = now;
		if (stall_asked) {		/* after the gap that ended now is counted */
			stall_asked = 0;
			snprintf(text, sizeof(text), "stall %llu\n", (unsigned long long)largest);
			put(stall_path, text);
			largest = 0;
			last = stall_now();	/* writing the report is not a stall */
		}
	}
	return NULL;
}

static void stall_meter_start(const char *result)
{
	const char *on = getenv("STALL_METER");
	struct sigaction sa = { .sa_handler = stall_on_usr2, .sa_flags = SA_RESTART };
	sigset_t others, old;
	pthread_t thread;

	if (!on || strcmp(on, "1"))
		return;
	snprintf(stall_path, sizeof(stall_path), "%s.stall", result);
	sigemptyset(&sa.sa_mask);
	/* the meter's thread takes SIGUSR2 only: a SIGTERM it took would set the program's
	 * flag but leave the main thread in pause() */
	sigfillset(&others);
	sigdelset(&others, SIGUSR2);
	if (sigaction(SIGUSR2, &sa, NULL) || pthread_sigmask(SIG_SETMASK, &others, &old) ||
	    pthread_create(&thread, NULL, stall_loop, NULL) ||
	    pthread_sigmask(SIG_SETMASK, &old, NULL))
		exit(3);
}

#endif
