/*
 * loadgen - a bounded SMTP-greeting client loop for the throughput
 * measurement: TOTAL connections to HOST:PORT, at most INFLIGHT at once,
 * each reading the server's output until it closes (the 220 line, then
 * EOF when the target exits).  Stops after TOTAL connections or SECONDS,
 * whichever comes first.  A connection counts as ok when what it read
 * starts with "220 ".
 *
 *   loadgen HOST PORT TOTAL INFLIGHT SECONDS
 *
 * Prints: ok=K errors=E secs=T rate=CONNECTIONS_PER_SECOND
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
	int fd;
	size_t n;
	char buf[64];
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sin;
	struct epoll_event ev, evs[256];
	struct conn *conns;
	long total, started = 0, ok = 0, errors = 0;
	int inflight, active = 0, ep, i;
	double limit, start, deadline;

	if (argc != 6) {
		fprintf(stderr, "usage: loadgen HOST PORT TOTAL INFLIGHT SECONDS\n");
		return 2;
	}
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &sin.sin_addr) != 1)
		return 2;
	total = atol(argv[3]);
	inflight = atoi(argv[4]);
	limit = atof(argv[5]);
	if (total < 1 || inflight < 1 || inflight > 1000 || limit <= 0)
		return 2;
	conns = calloc((size_t)inflight, sizeof *conns);
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0 || !conns) {
		perror("loadgen");
		return 2;
	}
	for (i = 0; i < inflight; i++)
		conns[i].fd = -1;

	start = now_s();
	deadline = start + limit;
	for (;;) {
		int n;

		/* Keep INFLIGHT connections going until TOTAL are started. */
		for (i = 0; i < inflight && started < total && now_s() < deadline;
		    i++) {
			struct conn *c = &conns[i];

			if (c->fd >= 0)
				continue;
			c->n = 0;
			c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
			    SOCK_CLOEXEC, 0);
			if (c->fd < 0) {
				perror("socket");
				return 2;
			}
			started++;
			if (connect(c->fd, (struct sockaddr *)&sin, sizeof sin) != 0 &&
			    errno != EINPROGRESS) {
				close(c->fd);
				c->fd = -1;
				errors++;
				continue;
			}
			ev.events = EPOLLIN;
			ev.data.u32 = (unsigned)i;
			epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
			active++;
		}
		if (active == 0)
			break;
		if (now_s() >= deadline + 2)	/* stragglers get 2 s more */
			break;
		n = epoll_wait(ep, evs, 256, 100);
		for (i = 0; i < n; i++) {
			struct conn *c = &conns[evs[i].data.u32];
			ssize_t r;
			char sink[256];

			if (c->n < sizeof c->buf)
				r = read(c->fd, c->buf + c->n, sizeof c->buf - c->n);
			else
				r = read(c->fd, sink, sizeof sink);
			if (r > 0) {
				if (c->n < sizeof c->buf)
					c->n += (size_t)r;
				continue;
			}
			if (r < 0 && errno == EAGAIN)
				continue;
			if (r == 0 && c->n >= 4 && memcmp(c->buf, "220 ", 4) == 0)
				ok++;
			else
				errors++;
			close(c->fd);
			c->fd = -1;
			active--;
		}
	}
	errors += active;
	{
		double secs = now_s() - start;

		printf("ok=%ld errors=%ld secs=%.3f rate=%.1f\n", ok, errors, secs,
		    ok / secs);
	}
	return 0;
}
