/*
 * crowd - many SMTP clients at once, from one process (epoll), for
 * bench/listener.py and bench/peers.py.
 *
 *   crowd [-s FIRST_IP/COUNT] [-c INFLIGHT] [-b EVERY] [-w SECONDS] [-H]
 *         [-Q] [-R] HOST PORT TOTAL
 *
 * TOTAL IPv4 connections to HOST:PORT, at most INFLIGHT open at once
 * (default: all of them), bound in turn to the COUNT source addresses
 * from FIRST_IP on (127.0.3.1/200: 127.0.3.1 ... 127.0.3.200), so that
 * neither a server's per-address limit nor the port range is the bound.
 * Every EVERY-th connection (-b; 0, the default: none) is a bot: it
 * writes a pipelined transaction as soon as it is connected.  Each
 * connection reads until the server closes it: a quiet client is right
 * when what it read starts with "220 ", a bot when it starts with "554 ".
 * At most 512 connects are pending at once, so that a burst does not
 * overflow the server's accept queue.
 *
 * -H (hold): connect all TOTAL, quiet, print "held N SECONDS" on stdout,
 * then wait until stdin is closed or a line comes, close every
 * connection without reading, and exit.
 *
 * -w: the bound in seconds for the whole run (default 120; holding
 * waits for stdin however long).
 *
 * For servers that keep the session open after their greeting (a real
 * MTA, bench/peers.py), and that may greet with several lines
 * (postscreen's "220-" first):
 * -Q: a quiet client waits for the greeting's last line ("220 "), says
 * QUIT and reads until the close; it is right when it saw that line, and
 * its latency is from connect() to that line.
 * -R: a bot is right when the server did not take its message: it read
 * at least one reply, and none that starts with 354 (DATA's go-ahead) or
 * 421 (a server too busy to judge it).
 *
 * Prints one line: total= right= wrong= errors= resets= open= secs= rate=
 * p50ms= p99ms= maxms= cpums= minms= p10ms= p90ms= spanms= (the latency:
 * from connect() to the first byte read; open: connections still open at
 * the bound; cpums: its own user and system time; spanms: from the first
 * connect() to the last).  Exit status 0,
 * or 2 for bad usage or a failure of its own.
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

#define PENDING_MAX 512

static const char bot_text[] =
    "EHLO bot.invalid\r\nMAIL FROM:<spammer@bot.invalid>\r\n"
    "RCPT TO:<victim@bench.invalid>\r\nDATA\r\nSubject: buy now\r\n\r\n"
    "spam spam spam\r\n.\r\nQUIT\r\n";

enum cstate { C_FREE, C_CONNECTING, C_OPEN };

struct conn {
	int fd;
	enum cstate state;
	int bot;
	size_t n;		/* bytes read into head */
	char head[4];
	double t0, first;	/* connect(), first byte; first < 0: none */
	size_t ln;		/* bytes of the current line in line */
	char line[4];		/* its first bytes */
	int lines, greeted, taken;	/* for -Q and -R */
};

static int quit_after_greeting, refused_unless_taken;

/*
 * -Q and -R: follow the replies' lines.  A quiet client says QUIT after
 * the greeting's last line and takes that line's time as its latency.
 */
static void
read_lines(struct conn *c, const char *buf, size_t n, double t)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (buf[i] != '\n') {
			if (c->ln < sizeof c->line)
				c->line[c->ln] = buf[i];
			c->ln++;
			continue;
		}
		c->lines++;
		if (c->ln >= 3 && (memcmp(c->line, "354", 3) == 0 ||
		    memcmp(c->line, "421", 3) == 0))
			c->taken = 1;
		if (!c->greeted && c->ln >= 4 &&
		    memcmp(c->line, "220 ", 4) == 0) {
			c->greeted = 1;
			if (quit_after_greeting && !c->bot) {
				c->first = t;
				(void)send(c->fd, "QUIT\r\n", 6, MSG_NOSIGNAL);
			}
		}
		c->ln = 0;
	}
}

static int
is_right(const struct conn *c)
{
	if (c->bot && refused_unless_taken)
		return c->lines > 0 && !c->taken;
	if (!c->bot && quit_after_greeting)
		return c->greeted;
	return c->n == sizeof c->head && memcmp(c->head,
	    c->bot ? "554 " : "220 ", 4) == 0;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
usage(void)
{
	fprintf(stderr, "usage: crowd [-s FIRST_IP/COUNT] [-c INFLIGHT] "
	    "[-b EVERY] [-w SECONDS] [-H] [-Q] [-R] HOST PORT TOTAL\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct sockaddr_in dst, src;
	struct epoll_event ev, evs[512];
	struct rlimit rl;
	struct conn *conns;
	double *lat, limit = 120, start, deadline, last_connect = 0;
	long total, started = 0, done = 0, right = 0, wrong = 0, errors = 0;
	long resets = 0, inflight = 0, nlat = 0, pending = 0, active = 0;
	long every = 0, nsrc = 0, i;
	uint32_t first_src = 0;
	int hold = 0, ep, opt, one = 1;
	char *slash;

	while ((opt = getopt(argc, argv, "s:c:b:w:HQR")) != -1) {
		switch (opt) {
		case 's':
			if ((slash = strchr(optarg, '/')) == NULL)
				usage();
			*slash = '\0';
			if (inet_pton(AF_INET, optarg, &first_src) != 1 ||
			    (nsrc = atol(slash + 1)) < 1)
				usage();
			first_src = ntohl(first_src);
			break;
		case 'c':
			inflight = atol(optarg);
			break;
		case 'b':
			every = atol(optarg);
			break;
		case 'w':
			limit = atof(optarg);
			break;
		case 'H':
			hold = 1;
			break;
		case 'Q':
			quit_after_greeting = 1;
			break;
		case 'R':
			refused_unless_taken = 1;
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 3)
		usage();
	memset(&dst, 0, sizeof dst);
	dst.sin_family = AF_INET;
	dst.sin_port = htons((unsigned short)atoi(argv[optind + 1]));
	if (inet_pton(AF_INET, argv[optind], &dst.sin_addr) != 1)
		usage();
	total = atol(argv[optind + 2]);
	if (total < 1 || limit <= 0 || every < 0)
		usage();
	if (inflight < 1 || inflight > total || hold)
		inflight = total;

	/* A descriptor a connection, and a few more. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur < (rlim_t)inflight + 16) {
		rl.rlim_cur = (rlim_t)inflight + 16;
		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_cur > rl.rlim_max)
			rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	conns = calloc((size_t)inflight, sizeof *conns);
	lat = calloc((size_t)total, sizeof *lat);
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0 || !conns || !lat) {
		perror("crowd");
		return 2;
	}
	for (i = 0; i < inflight; i++)
		conns[i].fd = -1;

	start = now_s();
	deadline = start + limit;
	for (;;) {
		int n, k;

		/* Start connections while there is room. */
		for (i = 0; i < inflight && started < total &&
		    pending < PENDING_MAX; i++) {
			struct conn *c = &conns[i];

			if (c->state != C_FREE)
				continue;
			c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
			    SOCK_CLOEXEC, 0);
			if (c->fd < 0) {
				perror("crowd: socket");
				return 2;
			}
			if (nsrc) {
				memset(&src, 0, sizeof src);
				src.sin_family = AF_INET;
				src.sin_addr.s_addr = htonl(first_src +
				    (uint32_t)(started % nsrc));
				setsockopt(c->fd, IPPROTO_IP,
				    IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
				if (bind(c->fd, (struct sockaddr *)&src,
				    sizeof src) != 0) {
					perror("crowd: bind");
					return 2;
				}
			}
			c->bot = every > 0 && started % every == every - 1;
			c->n = 0;
			c->ln = 0;
			c->lines = c->greeted = c->taken = 0;
			c->first = -1;
			c->t0 = last_connect = now_s();
			started++;
			if (connect(c->fd, (struct sockaddr *)&dst,
			    sizeof dst) != 0 && errno != EINPROGRESS) {
				close(c->fd);
				c->fd = -1;
				errors++;
				done++;
				continue;
			}
			c->state = C_CONNECTING;
			pending++;
			active++;
			ev.events = EPOLLOUT;
			ev.data.u64 = (uint64_t)i;
			epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
		}
		if (hold && pending == 0 && started == total) {
			printf("held %ld %.3f\n", active, now_s() - start);
			fflush(stdout);
			while ((k = getchar()) != EOF && k != '\n')
				;
			printf("total=%ld held=%ld errors=%ld\n", total, active,
			    errors);
			return 0;
		}
		if (active == 0 && started == total)
			break;
		if (now_s() >= deadline && !hold)
			break;
		n = epoll_wait(ep, evs, 512, 100);
		for (k = 0; k < n; k++) {
			struct conn *c = &conns[evs[k].data.u64];
			char buf[4096];
			ssize_t r;
			int err = 0;
			socklen_t len = sizeof err;

			if (c->state == C_CONNECTING) {
				pending--;
				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err,
				    &len);
				if (err == 0 && c->bot &&
				    send(c->fd, bot_text, sizeof bot_text - 1,
				    MSG_NOSIGNAL) < 0)
					err = errno;
				if (err != 0) {
					errors++;
					goto finish;
				}
				c->state = C_OPEN;
				ev.events = EPOLLIN;
				ev.data.u64 = evs[k].data.u64;
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				continue;
			}
			if (hold)
				continue;
			r = recv(c->fd, buf, sizeof buf, 0);
			if (r > 0) {
				if (quit_after_greeting || refused_unless_taken)
					read_lines(c, buf, (size_t)r, now_s());
				if (c->first < 0 && !quit_after_greeting)
					c->first = now_s();
				if (c->n < sizeof c->head) {
					size_t m = sizeof c->head - c->n;

					memcpy(c->head + c->n, buf,
					    (size_t)r < m ? (size_t)r : m);
					c->n += (size_t)r < m ? (size_t)r : m;
				}
				continue;
			}
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (r < 0 && errno == ECONNRESET)
				resets++;
			if (is_right(c))
				right++;
			else
				wrong++;
			if (c->first >= 0)
				lat[nlat++] = c->first - c->t0;
finish:
			close(c->fd);
			c->fd = -1;
			c->state = C_FREE;
			active--;
			done++;
		}
	}
	{
		double secs = now_s() - start;
		struct rusage ru;

		getrusage(RUSAGE_SELF, &ru);
		qsort(lat, (size_t)nlat, sizeof *lat, cmp_double);
		printf("total=%ld right=%ld wrong=%ld errors=%ld resets=%ld "
		    "open=%ld secs=%.3f rate=%.1f p50ms=%.3f p99ms=%.3f "
		    "maxms=%.3f cpums=%.1f minms=%.3f p10ms=%.3f p90ms=%.3f "
		    "spanms=%.3f\n", total, right, wrong, errors,
		    resets, active, secs, done / secs,
		    nlat ? 1000 * lat[nlat / 2] : 0,
		    nlat ? 1000 * lat[nlat * 99 / 100] : 0,
		    nlat ? 1000 * lat[nlat - 1] : 0,
		    1000 * (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
		    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0,
		    nlat ? 1000 * lat[0] : 0,
		    nlat ? 1000 * lat[nlat / 10] : 0,
		    nlat ? 1000 * lat[nlat * 9 / 10] : 0,
		    1000 * (last_connect - start));
	}
	return 0;
}
