/* A process holding N open fds of mixed kinds, for C/R benchmarks.
 *
 *   many_fds N DIR [noinet] RESULT_FILE
 * Opens N fds round robin: a regular file in DIR (own offset), a pipe end (the pipe holds
 * data), an eventfd (count = index), a timerfd (armed), a memfd (content), /dev/null, both
 * ends of a unix stream socketpair (data queued on one end), both ends of a TCP connection
 * over 127.0.0.1 (data queued on one end; one listener, kept open, makes them all), a UDP
 * socket holding a datagram it sent itself (with "noinet", /dev/null takes the place of the
 * TCP and UDP sockets: CRIU 4.1.1 cannot dump inet sockets on kernels >= 6.16).  Writes
 * "ready PID" to RESULT_FILE and pauses.  On SIGTERM it checks every fd (kind, offset, count,
 * data) and replaces RESULT_FILE's content with "OK" or "BAD fd N: why", then exits.  With
 * STALL_METER=1 it runs stall_meter.h's meter (SIGUSR2: the largest stall into
 * RESULT_FILE.stall).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

enum kind { REG, PIPE_R, PIPE_W, EVENT, TIMER, MEMFD, DEVNULL, SOCK_A, SOCK_B, TCP_A, TCP_B, UDP,
	     KINDS };

#include "result_file.h"
#include "stall_meter.h"

int main(int argc, char **argv)
{
	if (argc != 4 && argc != 5)
		return 2;
	int n = atoi(argv[1]), *fds = calloc(n, sizeof(int)), i, pipefd[2] = { -1, -1 };
	int pair[2] = { -1, -1 }, lst = -1;
	struct sockaddr_in sin = { .sin_family = AF_INET }, tcp_at = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);

	sin.sin_addr.s_addr = tcp_at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	char path[4096], why[256] = "";
	struct itimerspec its = { { 100, 0 }, { 100, 0 } };

	int inet = argc == 4 || strcmp(argv[3], "noinet");
	const char *result = argv[argc - 1];

	for (i = 0; i < n; i++) {
		switch (!inet && i % KINDS >= TCP_A ? DEVNULL : i % KINDS) {
		case REG:
			snprintf(path, sizeof(path), "%s/file-%d", argv[2], i);
			fds[i] = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
			if (write(fds[i], path, strlen(path)) < 0)
				return 3;
			lseek(fds[i], i % 7, SEEK_SET);
			break;
		case PIPE_R:
			if (pipe(pipefd) || write(pipefd[1], &i, sizeof(i)) != sizeof(i))
				return 3;
			fds[i] = pipefd[0];
			break;
		case PIPE_W:
			fds[i] = pipefd[1];
			break;
		case EVENT:
			fds[i] = eventfd(i, 0);
			break;
		case TIMER:
			fds[i] = timerfd_create(CLOCK_MONOTONIC, 0);
			timerfd_settime(fds[i], 0, &its, NULL);
			break;
		case MEMFD:
			fds[i] = memfd_create("bench", 0);
			if (write(fds[i], &i, sizeof(i)) != sizeof(i))
				return 3;
			break;
		case SOCK_A:
			if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) ||
			    write(pair[1], &i, sizeof(i)) != sizeof(i))
				return 3;
			fds[i] = pair[0];
			break;
		case SOCK_B:
			fds[i] = pair[1];
			break;
		case TCP_A:
			if (lst < 0 && ((lst = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
					bind(lst, (struct sockaddr *)&tcp_at, sizeof(tcp_at)) ||
					listen(lst, 4) ||
					getsockname(lst, (struct sockaddr *)&tcp_at, &len)))
				return 3;
			fds[i] = socket(AF_INET, SOCK_STREAM, 0);
			if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&tcp_at, sizeof(tcp_at)) ||
			    (pair[1] = accept(lst, NULL, NULL)) < 0 ||
			    write(pair[1], &i, sizeof(i)) != sizeof(i))
				return 3;
			break;
		case TCP_B:
			fds[i] = pair[1];
			break;
		case UDP:
			sin.sin_port = 0;
			fds[i] = socket(AF_INET, SOCK_DGRAM, 0);
			if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&sin, sizeof(sin)) ||
			    getsockname(fds[i], (struct sockaddr *)&sin, &len) ||
			    sendto(fds[i], &i, sizeof(i), 0, (struct sockaddr *)&sin, sizeof(sin)) != sizeof(i))
				return 3;
			break;
		default:
			fds[i] = open("/dev/null", O_RDWR);
		}
		if (fds[i] < 0)
			return 3;
	}
	signal(SIGTERM, on_term);
	stall_meter_start(result);
	snprintf(path, sizeof(path), "ready %d", getpid());
	put(result, path);
	while (!stop)
		pause();

	for (i = 0; i < n && !why[0]; i++) {
		int fd = fds[i], v = -1;
		uint64_t count = 0;
		switch (!inet && i % KINDS >= TCP_A ? DEVNULL : i % KINDS) {
		case REG:
			if (lseek(fd, 0, SEEK_CUR) != i % 7)
				snprintf(why, sizeof(why), "BAD fd %d: offset", fd);
			break;
		case PIPE_R:
			if (read(fd, &v, sizeof(v)) != sizeof(v) || v != i)
				snprintf(why, sizeof(why), "BAD fd %d: pipe data", fd);
			break;
		case EVENT:
			if (read(fd, &count, sizeof(count)) != sizeof(count) || count != (uint64_t)i)
				snprintf(why, sizeof(why), "BAD fd %d: eventfd count", fd);
			break;
		case TIMER:
			if (timerfd_gettime(fd, &its) || its.it_interval.tv_sec != 100)
				snprintf(why, sizeof(why), "BAD fd %d: timer", fd);
			break;
		case MEMFD:
			if (pread(fd, &v, sizeof(v), 0) != sizeof(v) || v != i)
				snprintf(why, sizeof(why), "BAD fd %d: memfd", fd);
			break;
		case SOCK_A:
		case TCP_A:
		case UDP:
			if (recv(fd, &v, sizeof(v), MSG_DONTWAIT) != sizeof(v) || v != i)
				snprintf(why, sizeof(why), "BAD fd %d: socket data", fd);
			break;
		default:
			if (fcntl(fd, F_GETFD) < 0)
				snprintf(why, sizeof(why), "BAD fd %d: closed", fd);
		}
	}
	put(result, why[0] ? why : "OK");
	return why[0] ? 1 : 0;
}
