/* What the benchmark programs share: the result file the benchmark polls, replaced
 * atomically, and the SIGTERM flag that asks a program to check itself. */
#ifndef RESULT_FILE_H
#define RESULT_FILE_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static volatile sig_atomic_t stop;

static void on_term(int sig) { (void)sig; stop = 1; }

/* Replace the content of ``path`` with ``text`` at once (write aside, rename). */
static void put(const char *path, const char *text)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		exit(2);
	fputs(text, f);
	fclose(f);
	rename(tmp, path);
}

#endif
