/* What the register tests share: threads that each spin in an asm loop checking their
 * registers against the values they loaded, counting iterations, while the main thread
 * is checkpointed and restored; then every loop must be seen running on after the
 * restore before the loops are stopped and their verdicts read. */
#ifndef SPIN_H
#define SPIN_H

#include <pthread.h>
#include <signal.h>

#include "helpers.h"
#include "lock.h"

static volatile int stop;       /* read by every loop: set to end them */
static futex_t ready;           /* bumped by each loop's asm once its registers are loaded */

/* In a spinner thread, first: no signal may be delivered to it (SIGTERM is the main
 * thread's to take). */
static inline void spin_block_signals(void)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
}

/* Start ``n`` threads run(args[i]) and wait until each loop is ready; -1 if one could not
 * be started. */
static inline int spinners_start(pthread_t *th, int n, void *(*run)(void *), void *const *args)
{
	int i;

	for (i = 0; i < n; i++)
		if (pthread_create(&th[i], NULL, run, args[i])) {
			pr_err("pthread_create failed\n");
			return -1;
		}
	while ((int)futex_get(&ready) < n)      /* no futex wake: the asm only increments */
		sleep_ms(1);
	return 0;
}

/* After the restore: wait (up to 2 s under load) until every loop has moved on from where
 * it was at the restore, then stop and join them all.  Returns a bit mask of the loops
 * that did not run after the restore. */
static inline unsigned spinners_finish(pthread_t *th, int n, volatile unsigned long *const *progress)
{
	unsigned long at_restore[n];
	unsigned stalled = 0;
	int i, k;

	for (i = 0; i < n; i++)
		at_restore[i] = *progress[i];
	for (i = 0; i < n; i++)
		for (k = 0; k < 2000 && *progress[i] == at_restore[i]; k++)
			sleep_ms(1);
	stop = 1;
	for (i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		if (*progress[i] == at_restore[i])
			stalled |= 1u << i;
	}
	return stalled;
}

#endif
