/*
 * passbench - per-invocation cost of programs run the way tcpserver or
 * inetd runs them: fd 0 and 1 a connected loopback TCP socket, fd 2
 * /dev/null.  Forks and execs each program N times, one connection each,
 * and reports the wall time from fork to reaped exit, and the peak RSS
 * (ru_maxrss of wait4: the largest of the images the process ran, the
 * wrapper or the target it exec'd).  Each run must exit 0 and its client
 * must read a line starting "220 " (with -q: the target writes nothing,
 * only the exit status counts).
 *
 *   passbench [-6] [-q] [-r] [-s FIRST_IP] [-n N] [-t SECONDS] --
 *       COMMAND [::: COMMAND ...]
 *   COMMAND = [every=K] [dialog=1] [VAR=value ...] /path/to/program [arg ...]
 *
 * Several commands are interleaved invocation by invocation (A B C A B C
 * ...), so that the noise of a busy machine falls on all of them alike;
 * every=K runs a slow one only on every K-th round.  VAR=value entries
 * are added to that command's environment.  Prints one line of key=value
 * figures per command (times in microseconds, RSS in kB, minflt the
 * minor page faults of the invocation, fork to exit, cpu_us its user +
 * system CPU time from wait4).  -t bounds the
 * whole run in time (default 60 s); -6 connects over ::1.  -r adds, for
 * each command, its invocations in the order they ran: raw_us (wall time)
 * and raw_flt (minor faults), comma-separated, so that commands can be
 * paired invocation by invocation.
 *
 * dialog=1: while that command runs, its client holds a whole SMTP
 * session with it, each command after the reply to the one before:
 * the 220, EHLO, MAIL, RCPT (any reply), DATA (451 wanted: a greylisting
 * or tempfail responder) and QUIT (221); the invocation is right when
 * every reply came as wanted and the program exited 0.  -s binds the
 * client of every connection, in turn, to the next IPv4 address from
 * FIRST_IP on (127.20.0.1, 127.20.0.2, ...), so that a cache keyed by
 * address sees a new client each time.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int
cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return x < y ? -1 : x > y;
}

static void
die(const char *what)
{
	perror(what);
	exit(2);
}

/* Did the client get a greeting?  Reads what there is for up to 2 s. */
static int
got_greeting(int fd)
{
	char buf[256];
	size_t n = 0;
	struct pollfd pfd = { fd, POLLIN, 0 };

	while (n < sizeof buf - 1 && poll(&pfd, 1, 2000) > 0) {
		ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);

		if (r <= 0)
			break;
		n += (size_t)r;
		if (memchr(buf, '\n', n))
			break;
	}
	return n >= 4 && memcmp(buf, "220 ", 4) == 0;
}

/* The client's side of a dialog=1 session: what it sends, and the
 * reply code wanted ("": any). */
static const struct step {
	const char *command;
	const char *want;
} dialog_script[] = {
	{ NULL, "220" },
	{ "EHLO client.bench.invalid\r\n", "250" },
	{ "MAIL FROM:<sender@client.bench.invalid>\r\n", "250" },
	{ "RCPT TO:<user@bench.invalid>\r\n", "" },
	{ "DATA\r\n", "451" },
	{ "QUIT\r\n", "221" },
};

/*
 * Read one whole reply (its last line "NNN ...") for up to 2 s: is its
 * code the one wanted?
 */
static int
got_reply(int fd, const char *want)
{
	char buf[1024];
	size_t n = 0, line = 0;
	struct pollfd pfd = { fd, POLLIN, 0 };

	while (n < sizeof buf - 1 && poll(&pfd, 1, 2000) > 0) {
		ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);
		char *nl;

		if (r <= 0)
			return 0;
		n += (size_t)r;
		/* Past the continuation lines ("250-..."): the last. */
		while ((nl = memchr(buf + line, '\n', n - line)) != NULL) {
			if (n - line >= 4 && buf[line + 3] == ' ')
				return strncmp(buf + line, want,
				    strlen(want)) == 0;
			line = (size_t)(nl - buf) + 1;
		}
	}
	return 0;
}

/* The session of dialog=1 on fd: 1 if every reply was as wanted. */
static int
hold_dialog(int fd)
{
	size_t i;

	for (i = 0; i < sizeof dialog_script / sizeof dialog_script[0]; i++) {
		const struct step *st = &dialog_script[i];

		if (st->command && send(fd, st->command, strlen(st->command),
		    MSG_NOSIGNAL) != (ssize_t)strlen(st->command))
			return 0;
		if (!got_reply(fd, st->want))
			return 0;
	}
	return 1;
}

struct command {
	char **argv;		/* program and arguments, NULL-terminated */
	char **env;		/* VAR=value to add, NULL-terminated */
	int index, every;
	int dialog;		/* dialog=1: hold a session with it */
	int done, ok, failed;
	double *times, *cpu, sum;
	long *rss, *minflt;
};

static int quiet_target;	/* -q: no greeting to wait for */
static uint32_t next_source;	/* -s: the next client's address, or 0 */

static int
run_one(struct command *c, int lfd, const struct sockaddr_storage *ss,
    socklen_t sslen, int family, int devnull)
{
	struct rusage ru;
	int cfd, sfd, status, talked = 1;
	double t0, t1;
	pid_t pid;

	if ((cfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		die("socket");
	if (next_source) {
		struct sockaddr_in src;

		memset(&src, 0, sizeof src);
		src.sin_family = AF_INET;
		src.sin_addr.s_addr = htonl(next_source++);
		if (bind(cfd, (struct sockaddr *)&src, sizeof src) != 0)
			die("bind");
	}
	if (connect(cfd, (const struct sockaddr *)ss, sslen) != 0 ||
	    (sfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
		die("connect");
	t0 = now_us();
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		char **e;

		for (e = c->env; *e; e++)
			putenv(*e);
		if (dup2(sfd, 0) < 0 || dup2(sfd, 1) < 0 || dup2(devnull, 2) < 0)
			_exit(126);
		execv(c->argv[0], c->argv);
		_exit(127);
	}
	if (c->dialog) {
		/* and closes, as a client does after the 221 */
		talked = hold_dialog(cfd);
		close(cfd);
		cfd = -1;
	}
	while (wait4(pid, &status, 0, &ru) < 0)
		if (errno != EINTR)
			die("wait4");
	t1 = now_us();
	close(sfd);
	c->times[c->done] = t1 - t0;
	c->cpu[c->done] = ru.ru_utime.tv_sec * 1e6 + ru.ru_utime.tv_usec +
	    ru.ru_stime.tv_sec * 1e6 + ru.ru_stime.tv_usec;
	c->rss[c->done] = ru.ru_maxrss;
	c->minflt[c->done] = ru.ru_minflt;
	c->sum += t1 - t0;
	c->done++;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && talked &&
	    (quiet_target || c->dialog || got_greeting(cfd)))
		c->ok++;
	else
		c->failed++;
	if (cfd >= 0)
		close(cfd);
	return 0;
}

/* The invocations in the order they ran, before they are sorted. */
static void
print_raw(const struct command *cm)
{
	int i;

	printf("cmd=%d raw_us=", cm->index);
	for (i = 0; i < cm->done; i++)
		printf("%s%.1f", i ? "," : "", cm->times[i]);
	printf(" raw_flt=");
	for (i = 0; i < cm->done; i++)
		printf("%s%ld", i ? "," : "", cm->minflt[i]);
	printf("\n");
}

int
main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof ss;
	int family = AF_INET, n = 100, limit_s = 60, c, lfd, devnull, i, j;
	int ncmd = 0, failed = 0, raw = 0;
	struct command *cmds;
	double start;

	while ((c = getopt(argc, argv, "+6n:qrs:t:")) != -1)
		switch (c) {
		case '6': family = AF_INET6; break;
		case 's':
			if (inet_pton(AF_INET, optarg, &next_source) != 1)
				return 2;
			next_source = ntohl(next_source);
			break;
		case 'q': quiet_target = 1; break;
		case 'r': raw = 1; break;
		case 'n': n = atoi(optarg); break;
		case 't': limit_s = atoi(optarg); break;
		default: return 2;
		}
	if (optind >= argc || n < 1) {
		fprintf(stderr, "usage: passbench [-6] [-q] [-r] [-s FIRST_IP] "
		    "[-n N] [-t S] -- [every=K] [dialog=1] [VAR=value ...] "
		    "program [arg ...] [::: ...]\n");
		return 2;
	}
	cmds = calloc((size_t)(argc - optind), sizeof *cmds);
	if (!cmds)
		die("calloc");
	/* Split at ":::", peel off every=K and VAR=value in place. */
	for (i = optind; i < argc; ) {
		struct command *cm = &cmds[ncmd++];
		int k = i;

		cm->index = ncmd - 1;
		cm->every = 1;
		if (strncmp(argv[k], "every=", 6) == 0)
			cm->every = atoi(argv[k++] + 6);
		if (k < argc && strcmp(argv[k], "dialog=1") == 0) {
			cm->dialog = 1;
			k++;
		}
		cm->env = argv + k;
		while (k < argc && strchr(argv[k], '=') && argv[k][0] != '/')
			k++;
		cm->argv = argv + k;
		while (k < argc && strcmp(argv[k], ":::") != 0)
			k++;
		if (cm->argv == argv + k || cm->every < 1) {
			fprintf(stderr, "passbench: empty command or bad every=\n");
			return 2;
		}
		/* Terminate env and argv lists: env ends where argv starts. */
		if (k < argc)
			argv[k++] = NULL;
		i = k;
		cm->times = calloc((size_t)n, sizeof *cm->times);
		cm->rss = calloc((size_t)n, sizeof *cm->rss);
		cm->minflt = calloc((size_t)n, sizeof *cm->minflt);
		cm->cpu = calloc((size_t)n, sizeof *cm->cpu);
		if (!cm->times || !cm->rss || !cm->minflt || !cm->cpu)
			die("calloc");
	}
	/* Copy each env list (it runs into the argv that follows it). */
	for (j = 0; j < ncmd; j++) {
		size_t ne = (size_t)(cmds[j].argv - cmds[j].env);
		char **e = calloc(ne + 1, sizeof *e);

		if (!e)
			die("calloc");
		memcpy(e, cmds[j].env, ne * sizeof *e);
		cmds[j].env = e;
	}

	memset(&ss, 0, sizeof ss);
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sslen = sizeof *sin;
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_loopback;
		sslen = sizeof *sin6;
	}
	if ((lfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(lfd, (struct sockaddr *)&ss, sslen) != 0 ||
	    listen(lfd, 16) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&ss, &sslen) != 0)
		die("listen");
	if ((devnull = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0)
		die("/dev/null");

	start = now_us();
	for (i = 0; i < n && now_us() - start < limit_s * 1e6; i++)
		for (j = 0; j < ncmd; j++)
			if (i % cmds[j].every == 0)
				run_one(&cmds[j], lfd, &ss, sslen, family, devnull);

	for (j = 0; j < ncmd; j++) {
		struct command *cm = &cmds[j];
		int d = cm->done;

		if (d == 0) {
			printf("cmd=%d n=0\n", j);
			failed++;
			continue;
		}
		if (raw)
			print_raw(cm);
		qsort(cm->times, (size_t)d, sizeof *cm->times, cmp_double);
		qsort(cm->rss, (size_t)d, sizeof *cm->rss, cmp_long);
		qsort(cm->minflt, (size_t)d, sizeof *cm->minflt, cmp_long);
		qsort(cm->cpu, (size_t)d, sizeof *cm->cpu, cmp_double);
		printf("cmd=%d n=%d ok=%d failed=%d median_us=%.1f mean_us=%.1f "
		    "min_us=%.1f p90_us=%.1f max_us=%.1f maxrss_kb=%ld "
		    "minflt=%ld cpu_us=%.1f\n", j, d, cm->ok, cm->failed,
		    cm->times[d / 2], cm->sum / d, cm->times[0],
		    cm->times[d * 9 / 10], cm->times[d - 1], cm->rss[d / 2],
		    cm->minflt[d / 2], cm->cpu[d / 2]);
		if (cm->failed)
			failed++;
	}
	return failed ? 1 : 0;
}
