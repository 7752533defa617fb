/*
 * relay-bench.c - what relaying a client to the MTA costs (--forward,
 * relay.h): MB bytes sent by a client process to an MTA process over
 * loopback TCP, directly and through a relay in this process, which is
 * either the engine (splice through pipes of 4, 8 or 16 KiB, or of the
 * kernel's default size, 64 KiB) or a plain copy through a 64 KiB buffer in
 * user space (read/write), the way a relay is usually written.
 *
 *   relay-bench [MB [ROUNDS]]     (default 50 MB, 3 rounds)
 *   relay-bench --memory [N]      N idle sessions held (default 2000)
 *
 * Per way: the wall time of the transfer and the relay's CPU time (this
 * process's user + system time: the endpoints run in children), each
 * the best of the rounds, the ways taking turns round by round.  Prints
 * a Markdown table with ratios against the copy relay and direct.
 *
 * --memory: the kernel memory (slab) N idle sessions take, with pipes of
 * 4 KiB, 16 KiB and the kernel's size, a session's sockets included;
 * noisy on a machine doing other work, hence the median of 7 rounds.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conn.h"
#include "relay.h"

#define CHUNK 65536
#define LIMIT_MS 120000		/* any one transfer */
#define MEMORY_ROUNDS 7

enum way { DIRECT, SPLICE_4K, SPLICE_8K, SPLICE_16K, SPLICE_DEFAULT, COPY,
	WAYS };

static const char *const names[WAYS] = { "direct (no relay)",
	"engine, pipes of one page (4 KiB)", "engine, pipes of 8 KiB",
	"engine, pipes of 16 KiB", "engine, the kernel's pipes (64 KiB)",
	"copy relay, read/write 64 KiB" };
static const int pipe_sizes[WAYS] = { 0, 4096, 8192, 16384, 0, 0 };

static void
die(const char *what)
{
	perror(what);
	exit(1);
}

static int
listener(struct sockaddr_in *sin)
{
	socklen_t len = sizeof *sin;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memset(sin, 0, sizeof *sin);
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)sin, sizeof *sin) != 0 ||
	    listen(fd, 8) != 0 ||
	    getsockname(fd, (struct sockaddr *)sin, &len) != 0)
		die("listener");
	return fd;
}

/* The MTA: accept one, greet, read all until EOF, close. */
static pid_t
mta(int l, uint64_t bytes)
{
	pid_t pid = fork();
	char buf[CHUNK];
	uint64_t got = 0;
	ssize_t n;
	int fd;

	if (pid != 0)
		return pid;
	if ((fd = accept(l, NULL, NULL)) < 0)
		_exit(1);
	if (write(fd, "220 mx\r\n", 8) != 8)
		_exit(1);
	while ((n = read(fd, buf, sizeof buf)) > 0)
		got += (uint64_t)n;
	_exit(got == bytes ? 0 : 2);
}

/* The client: connect, send bytes, shut its side, read until EOF. */
static pid_t
client(const struct sockaddr_in *to, uint64_t bytes)
{
	pid_t pid = fork();
	char buf[CHUNK];
	uint64_t sent = 0;
	ssize_t n;
	int fd;

	if (pid != 0)
		return pid;
	memset(buf, 'x', sizeof buf);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (const struct sockaddr *)to, sizeof *to) != 0)
		_exit(1);
	while (sent < bytes) {
		size_t len = bytes - sent < sizeof buf ? bytes - sent : sizeof buf;

		if ((n = write(fd, buf, len)) <= 0)
			_exit(1);
		sent += (uint64_t)n;
	}
	shutdown(fd, SHUT_WR);
	while (read(fd, buf, sizeof buf) > 0)
		;
	_exit(0);
}

static const enum relay_side tags[2] = { RELAY_CLIENT, RELAY_MTA };

static void
engine(int fd, const struct sockaddr_in *mta_at, int pipe_size)
{
	struct relay_config cfg;
	struct relay r;
	enum relay_status s;
	int ep = epoll_create1(EPOLL_CLOEXEC);

	memset(&cfg, 0, sizeof cfg);
	memcpy(&cfg.target.addr, mta_at, sizeof *mta_at);
	cfg.target.len = sizeof *mta_at;
	cfg.connect_ms = 5000;
	cfg.idle_ms = 30000;
	cfg.pipe_size = pipe_size;
	s = relay_start(&r, &cfg, fd, NULL, 0);
	while (s == RELAY_GOING) {
		struct epoll_event ev[4];
		int n, i;

		relay_watch(&r, ep, (void *)&tags[0], (void *)&tags[1]);
		n = epoll_wait(ep, ev, 4, 1000);
		for (i = 0; i < n && s == RELAY_GOING; i++)
			s = relay_ready(&r, *(const enum relay_side *)ev[i].data.ptr,
			    ev[i].events);
		if (s == RELAY_GOING && mono_ms() >= relay_deadline(&r))
			s = relay_timeout(&r);
	}
	if (r.end != RELAY_CLIENT_CLOSED && r.end != RELAY_MTA_CLOSED) {
		fprintf(stderr, "relay ended %s\n", relay_end_name(r.end));
		exit(1);
	}
	close(ep);
}

/* One direction of the copy relay: 1 while it goes on. */
static int
copy_some(int from, int to, char *buf, size_t *held, size_t *off, int *eof)
{
	ssize_t n;

	for (;;) {
		if (*held > *off) {
			n = write(to, buf + *off, *held - *off);
			if (n < 0)
				return errno == EAGAIN;
			*off += (size_t)n;
			continue;
		}
		if (*eof)
			return 0;
		*held = *off = 0;
		n = read(from, buf, CHUNK);
		if (n == 0) {
			*eof = 1;
			shutdown(to, SHUT_WR);
			return 0;
		}
		if (n < 0)
			return errno == EAGAIN;
		*held = (size_t)n;
	}
}

/* The usual relay: read into a buffer, write it out; poll both ways. */
static void
copy_relay(int c, const struct sockaddr_in *mta_at)
{
	static char up[CHUNK], down[CHUNK];
	size_t held[2] = { 0, 0 }, off[2] = { 0, 0 };
	int m = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), eof[2] = { 0, 0 };
	int ep = epoll_create1(EPOLL_CLOEXEC), go[2] = { 1, 1 };
	struct epoll_event ev = { EPOLLIN | EPOLLOUT, { 0 } };

	if (m < 0 || connect(m, (const struct sockaddr *)mta_at,
	    sizeof *mta_at) != 0)
		die("connect");
	fcntl(c, F_SETFL, O_NONBLOCK);
	fcntl(m, F_SETFL, O_NONBLOCK);
	epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
	epoll_ctl(ep, EPOLL_CTL_ADD, m, &ev);
	while (go[0] || go[1]) {
		struct epoll_event got[4];

		if (go[0])
			go[0] = copy_some(c, m, up, &held[0], &off[0], &eof[0]);
		if (go[1])
			go[1] = copy_some(m, c, down, &held[1], &off[1], &eof[1]);
		if (go[0] || go[1])
			epoll_wait(ep, got, 4, 1000);
	}
	close(m);
	close(ep);
}

/* Slab + page tables + kernel stacks, kB: the kernel's own memory. */
static long
kernel_kb(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[128];
	long kb, sum = 0;

	if (f == NULL)
		die("/proc/meminfo");
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "Slab: %ld", &kb) == 1)
			sum += kb;
	fclose(f);
	return sum;
}

/*
 * n idle sessions at once (a socketpair for each client, a unix socket
 * for the MTA, accepted and held): the kernel memory they take, per
 * session, with pipes of pipe_size (0: the kernel's), measured as the
 * growth of the slab.
 */
static double
idle_kb(int n, int pipe_size, const char *path)
{
	struct relay_config cfg;
	struct relay *r = calloc((size_t)n, sizeof *r);
	int *fds = calloc((size_t)n * 3, sizeof *fds), l, i;
	struct sockaddr_un *un = (struct sockaddr_un *)&cfg.target.addr;
	long before;

	if (r == NULL || fds == NULL)
		die("calloc");
	memset(&cfg, 0, sizeof cfg);
	un->sun_family = AF_UNIX;
	snprintf(un->sun_path, sizeof un->sun_path, "%s", path);
	cfg.target.len = sizeof *un;
	cfg.connect_ms = 5000;
	cfg.idle_ms = 60000;
	cfg.pipe_size = pipe_size;
	unlink(path);
	l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (struct sockaddr *)un, sizeof *un) != 0 ||
	    listen(l, 64) != 0)
		die("unix listener");
	before = kernel_kb();
	for (i = 0; i < n; i++) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0, &fds[3 * i]) != 0)
			die("socketpair");
		if (relay_start(&r[i], &cfg, fds[3 * i + 1], NULL, 0) !=
		    RELAY_GOING || (fds[3 * i + 2] = accept(l, NULL, NULL)) < 0)
			die("relay_start");
	}
	sleep(1);	/* RCU-freed objects settle */
	before = kernel_kb() - before;
	for (i = 0; i < n; i++) {
		relay_close(&r[i]);
		close(fds[3 * i]);
		close(fds[3 * i + 1]);
		close(fds[3 * i + 2]);
	}
	close(l);
	unlink(path);
	free(r);
	free(fds);
	return (double)before / n;
}

static int
by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
print_median(const char *what, double *v)
{
	qsort(v, MEMORY_ROUNDS, sizeof *v, by_value);
	printf("| %s | %.2f [%.2f-%.2f] |\n", what, v[MEMORY_ROUNDS / 2], v[0],
	    v[MEMORY_ROUNDS - 1]);
}

static double
cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* One transfer the given way: wall and relay CPU seconds. */
static void
transfer(enum way w, uint64_t bytes, double *wall, double *cpu)
{
	struct sockaddr_in at_mta, at_relay;
	int lm = listener(&at_mta), lr = -1, fd, st, ok = 1;
	pid_t pm, pc;
	uint64_t t0;
	double c0;

	pm = mta(lm, bytes);
	if (w != DIRECT)
		lr = listener(&at_relay);
	t0 = mono_ms();
	c0 = cpu_s();
	pc = client(w == DIRECT ? &at_mta : &at_relay, bytes);
	if (w != DIRECT) {
		if ((fd = accept4(lr, NULL, NULL, SOCK_NONBLOCK |
		    SOCK_CLOEXEC)) < 0)
			die("accept");
		if (w == COPY)
			copy_relay(fd, &at_mta);
		else
			engine(fd, &at_mta, pipe_sizes[w]);
		close(fd);
	}
	if (waitpid(pc, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
		ok = 0;
	if (waitpid(pm, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
		ok = 0;
	*wall = (double)(mono_ms() - t0) / 1000;
	*cpu = cpu_s() - c0;
	if (!ok || *wall * 1000 > LIMIT_MS) {
		fprintf(stderr, "%s: the transfer failed\n", names[w]);
		exit(1);
	}
	close(lm);
	if (lr >= 0)
		close(lr);
}

int
main(int argc, char **argv)
{
	unsigned long mb = argc > 1 ? strtoul(argv[1], NULL, 10) : 50;
	int rounds = argc > 2 ? atoi(argv[2]) : 3, r, w;
	double wall[WAYS], cpu[WAYS];
	uint64_t bytes = (uint64_t)mb << 20;

	signal(SIGPIPE, SIG_IGN);
	if (argc > 1 && strcmp(argv[1], "--memory") == 0) {
		int n = argc > 2 ? atoi(argv[2]) : 2000, k;
		struct rlimit rl = { (rlim_t)n * 8 + 64, (rlim_t)n * 8 + 64 };
		double small[MEMORY_ROUNDS], mid[MEMORY_ROUNDS],
		    large[MEMORY_ROUNDS];
		char path[64];

		snprintf(path, sizeof path, "/tmp/relay-bench.%ld.sock",
		    (long)getpid());
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			die("setrlimit");
		for (k = 0; k < MEMORY_ROUNDS; k++) {
			small[k] = idle_kb(n, 4096, path);
			mid[k] = idle_kb(n, 16384, path);
			large[k] = idle_kb(n, 0, path);
		}
		printf("%d idle sessions held, kernel slab kB a session, median "
		    "of %d rounds [min-max]\n\n| pipes | kB |\n|---|---|\n", n,
		    MEMORY_ROUNDS);
		print_median("4 KiB", small);
		print_median("16 KiB", mid);
		print_median("64 KiB (the kernel's)", large);
		return 0;
	}
	for (w = 0; w < WAYS; w++)
		wall[w] = cpu[w] = 1e9;
	for (r = 0; r < rounds; r++)
		for (w = 0; w < WAYS; w++) {
			double t, c;

			transfer((enum way)w, bytes, &t, &c);
			if (t < wall[w])
				wall[w] = t;
			if (c < cpu[w])
				cpu[w] = c;
		}
	printf("%lu MB client -> MTA over loopback TCP, best of %d rounds\n\n",
	    mb, rounds);
	printf("| way | MB/s | wall ÷ direct | relay CPU ms/MB | CPU ÷ copy "
	    "relay |\n|---|---|---|---|---|\n");
	for (w = 0; w < WAYS; w++) {
		printf("| %s | %.0f | %.2f× |", names[w], mb / wall[w],
		    wall[w] / wall[DIRECT]);
		if (w == DIRECT)
			printf(" – | – |\n");
		else
			printf(" %.3f | %.2f× |\n", cpu[w] * 1000 / mb,
			    cpu[w] / cpu[COPY]);
	}
	return 0;
}
