/* Reading /proc/self/fdinfo/N for the fd tests. */
#ifndef FDINFO_H_
#define FDINFO_H_

#include "helpers.h"

/* The whole of /proc/self/fdinfo/FD into buf (NUL-terminated); its length or -1. */
static inline ssize_t fdinfo_read(int fd, char *buf, size_t size)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	return read_whole(path, buf, size);
}

/*
 * The value of the line "KEY<spaces or tab>VALUE" of fd's fdinfo (KEY
 * includes its colon, e.g. "sigmask:"), copied without the line end; 0 when
 * found, -1 when not.
 */
static inline int fdinfo_field(int fd, const char *key, char *out, size_t size)
{
	char buf[8192], *line, *save = NULL;
	size_t klen = strlen(key);

	if (fdinfo_read(fd, buf, sizeof(buf)) < 0)
		return -1;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, key, klen))
			continue;
		line += klen;
		while (*line == ' ' || *line == '\t')
			line++;
		snprintf(out, size, "%s", line);
		return 0;
	}
	return -1;
}

#endif
