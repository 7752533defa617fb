/*
 * bulk - the two ends of bench/relays.py's relayed sessions: a sink in
 * place of the MTA, and a client that sends one large message or holds
 * many idle sessions.  Loopback only.
 *
 *   bulk sink             listen on 127.0.0.1, a free port (printed on
 *                         stdout: "port N"); greet every connection
 *                         ("220 sink\r\n"), read and discard all it sends,
 *                         close at its EOF; until killed
 *   bulk send PORT MB     connect to 127.0.0.1:PORT, read the greeting's
 *                         line, send MB MiB in writes of 64 KiB, shut its
 *                         side, read to the end
 *   bulk hold PORT N      N connections to 127.0.0.1:PORT, each from an
 *                         address of its own (127.10.0.1 and up), each
 *                         held once it has read its greeting's line;
 *                         prints "held N SECONDS", then waits until stdin
 *                         is closed or a line comes, closes them all and
 *                         exits
 *
 * send prints "secs= greetms= cpums=": from connect() to the end, to the
 * greeting, and its own user + system time.  Every wait is bounded
 * (LIMIT_S); exit status 0, 1 on a failure, 2 for bad usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65536
#define LIMIT_S 120
#define GREETING "220 sink\r\n"

static char buf[CHUNK];

static void
fail(const char *what)
{
	perror(what);
	exit(1);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* As many descriptors as the hard limit allows. */
static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static struct sockaddr_in
loopback(unsigned port)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((unsigned short)port);
	return sin;
}

static void
sink(void)
{
	struct sockaddr_in sin = loopback(0);
	socklen_t len = sizeof sin;
	struct epoll_event ev, evs[256];
	int l, ep, n, i;

	raise_nofile();
	l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&sin, sizeof sin) != 0 ||
	    listen(l, 4096) != 0 ||
	    getsockname(l, (struct sockaddr *)&sin, &len) != 0)
		fail("sink: listen");
	printf("port %u\n", ntohs(sin.sin_port));
	fflush(stdout);
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		fail("sink: epoll");
	ev.events = EPOLLIN;
	ev.data.fd = l;
	epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
	for (;;) {
		if ((n = epoll_wait(ep, evs, 256, -1)) < 0 && errno != EINTR)
			fail("sink: epoll_wait");
		for (i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			ssize_t r;

			if (fd == l) {
				while ((fd = accept4(l, NULL, NULL,
				    SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					(void)send(fd, GREETING,
					    sizeof GREETING - 1, MSG_NOSIGNAL);
					ev.events = EPOLLIN;
					ev.data.fd = fd;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			while ((r = read(fd, buf, sizeof buf)) > 0)
				;
			if (r == 0 || errno != EAGAIN)
				close(fd);
		}
	}
}

/* Read fd until a whole line has come; 0, or -1. */
static int
read_line(int fd)
{
	char c;

	for (;;) {
		ssize_t r = read(fd, &c, 1);

		if (r <= 0)
			return -1;
		if (c == '\n')
			return 0;
	}
}

static int
send_message(unsigned port, unsigned long mb)
{
	struct sockaddr_in to = loopback(port);
	struct timeval tv = { LIMIT_S, 0 };
	unsigned long long left = (unsigned long long)mb << 20;
	struct rusage ru;
	double t0, greeted;
	ssize_t n;
	int fd;

	memset(buf, 'x', sizeof buf);
	t0 = now_s();
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
	    connect(fd, (struct sockaddr *)&to, sizeof to) != 0)
		fail("send: connect");
	if (read_line(fd) != 0)
		fail("send: no greeting");
	greeted = now_s();
	while (left > 0) {
		size_t len = left < sizeof buf ? (size_t)left : sizeof buf;

		if ((n = write(fd, buf, len)) <= 0)
			fail("send: write");
		left -= (unsigned long long)n;
	}
	shutdown(fd, SHUT_WR);
	while ((n = read(fd, buf, sizeof buf)) > 0)
		;
	if (n < 0)
		fail("send: read");
	getrusage(RUSAGE_SELF, &ru);
	printf("secs=%.6f greetms=%.3f cpums=%.3f\n", now_s() - t0,
	    1000 * (greeted - t0),
	    1000 * (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0);
	return 0;
}

/*
 * N connections, at most 256 connecting at once, each held once it has
 * read a line (its greeting).
 */
static int
hold(unsigned port, long total)
{
	struct sockaddr_in to = loopback(port), from = loopback(0);
	struct epoll_event ev, evs[256];
	double t0 = now_s();
	long started = 0, pending = 0, held = 0, i;
	int *fds = calloc((size_t)total, sizeof *fds), ep, one = 1, c;

	raise_nofile();
	if (fds == NULL || (ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		fail("hold");
	while (held < total) {
		int n;

		for (; started < total && pending < 256; started++, pending++) {
			int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
			    SOCK_CLOEXEC, 0);

			from.sin_addr.s_addr = htonl((127u << 24 | 10u << 16) +
			    1 + (uint32_t)started);
			if (fd < 0 || setsockopt(fd, IPPROTO_IP,
			    IP_BIND_ADDRESS_NO_PORT, &one, sizeof one) != 0 ||
			    bind(fd, (struct sockaddr *)&from, sizeof from) != 0)
				fail("hold: socket");
			if (connect(fd, (struct sockaddr *)&to, sizeof to) != 0 &&
			    errno != EINPROGRESS)
				fail("hold: connect");
			fds[started] = fd;
			ev.events = EPOLLIN;
			ev.data.u64 = (uint64_t)started;
			epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
		}
		if (now_s() - t0 > LIMIT_S) {
			fprintf(stderr, "hold: %ld of %ld greeted\n", held, total);
			return 1;
		}
		n = epoll_wait(ep, evs, 256, 100);
		for (i = 0; i < n; i++) {
			int fd = fds[evs[i].data.u64];
			ssize_t r = recv(fd, buf, sizeof buf, 0);

			/* the greeting is one short line, in one segment */
			if (r <= 0 || memchr(buf, '\n', (size_t)r) == NULL) {
				fprintf(stderr, "hold: a session ended\n");
				return 1;
			}
			epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
			pending--;
			held++;
		}
	}
	printf("held %ld %.3f\n", held, now_s() - t0);
	fflush(stdout);
	while ((c = getchar()) != EOF && c != '\n')
		;
	for (i = 0; i < total; i++)
		close(fds[i]);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "sink") == 0)
		sink();		/* runs until killed */
	if (argc == 4 && strcmp(argv[1], "send") == 0)
		return send_message((unsigned)atoi(argv[2]),
		    strtoul(argv[3], NULL, 10));
	if (argc == 4 && strcmp(argv[1], "hold") == 0 && atol(argv[3]) > 0)
		return hold((unsigned)atoi(argv[2]), atol(argv[3]));
	fprintf(stderr, "usage: bulk sink | bulk send PORT MB | "
	    "bulk hold PORT N\n");
	return 2;
}
