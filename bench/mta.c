/*
 * mta - the stand-in MTA of bench/scenarios: the program sendwrap runs
 * for a client it lets through.  It speaks SMTP on fds 0 and 1, takes
 * every message it is given, and records what reached it, one line a
 * write, appended to RECORD:
 *
 *	accepted ip=IP rcpts=N bytes=B	(a message taken: the 250 after DATA)
 *	session ip=IP messages=N end=quit|eof|reset|timeout	(at its exit)
 *
 * IP is $TCPREMOTEIP (or $TCP6REMOTEIP), which tcpserver and sendwrap's
 * listener both set.  It advertises PIPELINING and answers a pipelined
 * transaction as a real MTA that does would: it is the most a client
 * that gets this far can achieve, so what the scenarios count as
 * stopped was stopped by sendwrap.  Any command is answered within a
 * line; a session lasts at most SESSION_S seconds.
 *
 *   mta RECORD
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define SESSION_S 60
#define CMD_MAX 1024

static const char *record_path, *peer_ip;
static int messages;
static volatile sig_atomic_t timed_out;

static void record(const char *, ...) __attribute__((format(printf, 1, 2)));

static void
put(const char *s)
{
	size_t n = strlen(s);
	ssize_t w;

	while (n > 0) {
		if ((w = write(1, s, n)) <= 0) {
			record("session ip=%s messages=%d end=reset\n", peer_ip,
			    messages);
			exit(1);
		}
		s += w;
		n -= (size_t)w;
	}
}

/* One line, one write(2) on an O_APPEND descriptor: whole among others'. */
static void
record(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int fd, n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof line)
		return;
	if ((fd = open(record_path, O_WRONLY | O_APPEND | O_CREAT |
	    O_CLOEXEC, 0644)) < 0)
		return;
	if (write(fd, line, (size_t)n) != n)
		n = -1;
	close(fd);
}

/* Installed without SA_RESTART: the read in progress fails, and the
 * session ends as at end of file. */
static void
on_alarm(int sig)
{
	(void)sig;
	timed_out = 1;
}

/* The next line from fd 0, CR LF or LF stripped; NULL at end of file. */
static char *
next_line(void)
{
	static char buf[65536];
	static size_t have, start;
	static char line[CMD_MAX];
	char *nl;
	ssize_t r;
	size_t n;

	for (;;) {
		nl = memchr(buf + start, '\n', have - start);
		if (nl != NULL) {
			n = (size_t)(nl - (buf + start));
			if (n > 0 && buf[start + n - 1] == '\r')
				n--;
			if (n >= sizeof line)
				n = sizeof line - 1;
			memcpy(line, buf + start, n);
			line[n] = '\0';
			start = (size_t)(nl - buf) + 1;
			return line;
		}
		if (start > 0) {
			memmove(buf, buf + start, have - start);
			have -= start;
			start = 0;
		}
		if (have == sizeof buf)
			have = 0;	/* an endless line: thrown away */
		if ((r = read(0, buf + have, sizeof buf - have)) <= 0)
			return NULL;
		have += (size_t)r;
	}
}

static int
is(const char *line, const char *cmd)
{
	size_t n = strlen(cmd);

	return strncasecmp(line, cmd, n) == 0 &&
	    (line[n] == '\0' || line[n] == ' ' || line[n] == ':');
}

/* The body, up to the "." line; its size, or -1 at end of file. */
static long
read_body(void)
{
	char *line;
	long bytes = 0;

	while ((line = next_line()) != NULL) {
		if (strcmp(line, ".") == 0)
			return bytes;
		bytes += (long)strlen(line) + 2;
	}
	return -1;
}

int
main(int argc, char **argv)
{
	struct sigaction sa;
	char *line;
	int mail = 0, rcpts = 0;
	long bytes;

	if (argc != 2) {
		fprintf(stderr, "usage: mta RECORD\n");
		return 2;
	}
	record_path = argv[1];
	if ((peer_ip = getenv("TCPREMOTEIP")) == NULL &&
	    (peer_ip = getenv("TCP6REMOTEIP")) == NULL)
		peer_ip = "unknown";
	signal(SIGPIPE, SIG_IGN);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	alarm(SESSION_S);
	put("220 mta.bench.invalid ESMTP stand-in\r\n");
	while ((line = next_line()) != NULL) {
		if (is(line, "EHLO")) {
			put("250-mta.bench.invalid\r\n250-PIPELINING\r\n"
			    "250 8BITMIME\r\n");
		} else if (is(line, "HELO")) {
			put("250 mta.bench.invalid\r\n");
		} else if (is(line, "MAIL")) {
			mail = 1;
			rcpts = 0;
			put("250 2.1.0 Ok\r\n");
		} else if (is(line, "RCPT")) {
			if (!mail) {
				put("503 5.5.1 MAIL first\r\n");
				continue;
			}
			rcpts++;
			put("250 2.1.5 Ok\r\n");
		} else if (is(line, "DATA")) {
			if (rcpts == 0) {
				put("503 5.5.1 RCPT first\r\n");
				continue;
			}
			put("354 End data with <CR><LF>.<CR><LF>\r\n");
			if ((bytes = read_body()) < 0)
				break;
			messages++;
			record("accepted ip=%s rcpts=%d bytes=%ld\n", peer_ip,
			    rcpts, bytes);
			put("250 2.0.0 Ok: queued\r\n");
			mail = rcpts = 0;
		} else if (is(line, "RSET")) {
			mail = rcpts = 0;
			put("250 2.0.0 Ok\r\n");
		} else if (is(line, "NOOP")) {
			put("250 2.0.0 Ok\r\n");
		} else if (is(line, "QUIT")) {
			put("221 2.0.0 Bye\r\n");
			record("session ip=%s messages=%d end=quit\n", peer_ip,
			    messages);
			return 0;
		} else {
			put("500 5.5.2 Command not recognized\r\n");
		}
	}
	record("session ip=%s messages=%d end=%s\n", peer_ip, messages,
	    timed_out ? "timeout" : "eof");
	return 0;
}
