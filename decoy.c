/* decoy.c - the tarpit and the tempfail responder; see decoy.h. */
#include "decoy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "duration.h"
#include "log.h"
#include "conn.h"

#define SINK_SIZE 4096		/* tarpit input is read in bites this big */
#define LAST_REPLY_MS 1000	/* for a closing 421 the client may not read */

static const char reply_later[] =
    "451 4.7.1 Service temporarily unavailable, try again later\r\n";
static const char reply_unknown[] = "500 5.5.2 Command not recognized\r\n";

/* A failed send means the client went away, unless errno says worse. */
static int
gone(int err)
{
	return err == EPIPE || err == ECONNRESET;
}

/* ------------------------------------------------------------ tarpit */

/* Read what the client sent and forget it; 1 when the hold is over. */
static int
discard_input(int in, struct tarpit_result *r)
{
	char sink[SINK_SIZE];
	ssize_t got = read(in, sink, sizeof sink);

	if (got > 0) {
		r->bytes += (uint64_t)got;
		return 0;
	}
	if (got < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (got == 0)
		r->end = TARPIT_CLOSED;
	else if (errno == ECONNRESET)
		r->end = TARPIT_RESET;
	else {
		r->end = TARPIT_ERROR;
		r->err = errno;
	}
	return 1;
}

/* Send a line, by the end of the hold at the latest; 1 when it is over. */
static int
send_line(int out, const char *line, uint64_t stop, struct tarpit_result *r)
{
	if (conn_unsent(out) > DECOY_UNSENT_MAX)
		return 0;
	if (send_all(out, line, strlen(line), stop) == 0)
		return 0;
	r->end = errno == ETIMEDOUT ? TARPIT_MAX : gone(errno) ?
	    TARPIT_RESET : TARPIT_ERROR;
	r->err = errno;
	return 1;
}

/*
 * One turn of the hold: the next line when it is due, else wait for it
 * (or for input) in wait_readable, where the process spends its life.
 * Returns 1 when the hold is over.
 */
static int
tarpit_turn(int in, int out, const char *line, uint64_t interval_ms,
    uint64_t stop, uint64_t *next, struct tarpit_result *r)
{
	uint64_t now = mono_ms();

	if (now >= stop) {
		r->end = TARPIT_MAX;
		return 1;
	}
	if (now >= *next) {
		/* Keep the cadence, but never send a burst to catch up. */
		*next += interval_ms;
		if (*next <= now)
			*next = now + interval_ms;
		return send_line(out, line, stop, r);
	}
	switch (wait_readable(in, *next < stop ? *next : stop)) {
	case WAIT_TIMEOUT:
		return 0;
	case WAIT_READABLE:
		return discard_input(in, r);
	case WAIT_ERROR:
		break;
	}
	r->end = TARPIT_ERROR;
	r->err = errno;
	return 1;
}

void
tarpit_hold(int in, int out, const char *line, uint64_t interval_ms,
    uint64_t max_ms, struct tarpit_result *r)
{
	uint64_t start = mono_ms(), next = start;

	memset(r, 0, sizeof *r);
	while (!tarpit_turn(in, out, line, interval_ms, start + max_ms, &next,
	    r))
		;
	r->held_ms = mono_ms() - start;
}

/* ---------------------------------------------------------- tempfail */

size_t
decoy_reply(enum smtp_cmd cmd, const char *host, char *buf, size_t size)
{
	const char *fixed = NULL;
	int n;

	switch (cmd) {
	case CMD_HELO:
	case CMD_EHLO:
		/* No extensions: nothing to pipeline, nothing to negotiate. */
		n = snprintf(buf, size, "250 %s\r\n", host);
		return n > 0 && (size_t)n < size ? (size_t)n : 0;
	case CMD_MAIL: fixed = REPLY_MAIL_OK; break;
	case CMD_RSET:
	case CMD_NOOP: fixed = REPLY_OK; break;
	case CMD_RCPT:
	case CMD_DATA: fixed = reply_later; break;
	case CMD_QUIT: fixed = REPLY_BYE; break;
	case CMD_UNKNOWN: fixed = reply_unknown; break;
	case CMD_TOO_LONG: fixed = REPLY_LINE_TOO_LONG; break;
	}
	n = snprintf(buf, size, "%s", fixed);
	return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

enum line_status { LINE_OK, LINE_TOO_LONG, LINE_EOF, LINE_RESET,
	LINE_TIMEOUT, LINE_ERROR };

static enum line_status
fill(struct smtp_lines *rd, int fd)
{
	size_t room;
	char *at = smtp_lines_room(rd, &room);
	ssize_t got = read(fd, at, room);

	if (got > 0) {
		rd->len += (size_t)got;
		return LINE_OK;
	}
	if (got == 0)
		return LINE_EOF;
	if (errno == EINTR || errno == EAGAIN)
		return LINE_OK;
	return errno == ECONNRESET ? LINE_RESET : LINE_ERROR;
}

/* The next line, waiting for it no later than deadline. */
static enum line_status
read_line(struct smtp_lines *rd, int fd, uint64_t deadline, char *line,
    size_t *len)
{
	enum line_status st;
	unsigned how;

	for (;;) {
		if (smtp_take_line(rd, line, len, &how))
			return how & LINE_LONG ? LINE_TOO_LONG : LINE_OK;
		switch (wait_readable(fd, deadline)) {
		case WAIT_TIMEOUT:
			return LINE_TIMEOUT;
		case WAIT_ERROR:
			return LINE_ERROR;
		case WAIT_READABLE:
			break;
		}
		st = fill(rd, fd);
		if (st != LINE_OK)
			return st;
	}
}

/* Keep the first HELO/EHLO argument: what the client calls itself. */
static void
keep_helo(struct decoy_result *r, const char *line, size_t len)
{
	size_t i = 4;

	if (r->helo_len > 0)
		return;
	while (i < len && line[i] == ' ')
		i++;
	r->helo_len = len - i < sizeof r->helo ? len - i : sizeof r->helo;
	memcpy(r->helo, line + i, r->helo_len);
}

/*
 * Send a reply by deadline; 1 (session over) if the client is no longer
 * there, or does not take it in time (it sends and never reads: the
 * session limit holds for writing too).
 */
static int
reply(int out, const char *text, size_t len, uint64_t deadline,
    struct decoy_result *r)
{
	if (send_all(out, text, len, deadline) == 0)
		return 0;
	r->end = errno == ETIMEDOUT ? END_TIME : gone(errno) ? END_RESET :
	    END_ERROR;
	r->err = errno;
	return 1;
}

/* The last word, a 421: sent if the client takes it soon, else dropped. */
static void
last_reply(int out, const char *text, size_t len, struct decoy_result *r)
{
	enum decoy_end end = r->end;

	reply(out, text, len, mono_ms() + LAST_REPLY_MS, r);
	r->end = end;
}

/* Answer one command line by deadline; 1 when the session is over. */
static int
answer(int out, const char *host, unsigned max_commands, uint64_t deadline,
    const char *line, size_t len, enum line_status st,
    struct decoy_result *r)
{
	enum smtp_cmd cmd = st == LINE_TOO_LONG ? CMD_TOO_LONG :
	    smtp_classify(line, len);
	char text[DECOY_LINE_MAX];
	size_t n = decoy_reply(cmd, host, text, sizeof text);

	r->commands++;
	if (cmd == CMD_HELO || cmd == CMD_EHLO)
		keep_helo(r, line, len);
	if (cmd == CMD_QUIT)
		r->quit = 1;
	if (reply(out, text, n, deadline, r))
		return 1;
	if (cmd == CMD_QUIT) {
		r->end = END_QUIT;
		return 1;
	}
	if (r->commands < max_commands)
		return 0;
	/* A limit, not the client, ends it, even if the 421 is lost. */
	r->end = END_COMMANDS;
	last_reply(out, REPLY_TOO_MANY_COMMANDS,
	    sizeof REPLY_TOO_MANY_COMMANDS - 1, r);
	return 1;
}

/* How a session ended other than by a command line. */
static void
end_without_line(int out, enum line_status st, struct decoy_result *r)
{
	switch (st) {
	case LINE_EOF:
		r->end = END_CLOSED;
		break;
	case LINE_RESET:
		r->end = END_RESET;
		break;
	case LINE_TIMEOUT:
		r->end = END_TIME;
		last_reply(out, REPLY_SESSION_TIME,
		    sizeof REPLY_SESSION_TIME - 1, r);
		break;
	default:
		r->end = END_ERROR;
		r->err = errno;
	}
}

void
decoy_serve(int in, int out, const char *host,
    const struct decoy_config *cfg, struct decoy_result *r)
{
	char greeting[HOST_MAX + 16], line[DECOY_LINE_MAX];
	struct smtp_lines rd;
	uint64_t deadline;
	size_t len;
	int n;

	memset(r, 0, sizeof *r);
	rd.len = 0;
	rd.overlong = 0;
	n = snprintf(greeting, sizeof greeting, "220 %s ESMTP\r\n", host);
	deadline = mono_ms() + cfg->tempfail_max_ms;
	if (n <= 0 || (size_t)n >= sizeof greeting ||
	    reply(out, greeting, (size_t)n, deadline, r))
		return;
	for (;;) {
		enum line_status st = read_line(&rd, in, deadline, line, &len);

		if (st != LINE_OK && st != LINE_TOO_LONG) {
			end_without_line(out, st, r);
			return;
		}
		if (answer(out, host, cfg->max_commands, deadline, line, len,
		    st, r))
			return;
	}
}

/* ------------------------------------------------- whole connections */

const char *
decoy_hostname(const char *configured, char *buf, size_t size)
{
	size_t i;

	if (size == 0)
		return buf;
	if (configured) {
		snprintf(buf, size, "%s", configured);
		return buf;
	}
	if (gethostname(buf, size) != 0)
		buf[0] = '\0';
	buf[size - 1] = '\0';
	/* It goes into an SMTP reply: nothing that could end or bend it. */
	for (i = 0; buf[i] != '\0'; i++)
		if (!((buf[i] >= 'a' && buf[i] <= 'z') ||
		    (buf[i] >= 'A' && buf[i] <= 'Z') ||
		    (buf[i] >= '0' && buf[i] <= '9') ||
		    buf[i] == '.' || buf[i] == '-'))
			buf[i] = '-';
	if (buf[0] == '\0')
		snprintf(buf, size, "localhost");
	return buf;
}

size_t
decoy_tarpit_line(const struct decoy_config *cfg, char *buf, size_t size)
{
	char host[HOST_MAX];
	int n;

	if (cfg->text)
		n = snprintf(buf, size, "220-%s\r\n", cfg->text);
	else {
		decoy_hostname(cfg->host, host, sizeof host);
		n = snprintf(buf, size, "220-%s ESMTP\r\n", host);
	}
	return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

void
decoy_log_tarpit(const struct peer *p, const struct tarpit_result *r)
{
	char held[32];

	duration_format(r->held_ms, held, sizeof held);
	if (r->end == TARPIT_ERROR)
		log_error("ip=%s port=%s tarpit: %s", p->ip, peer_port(p),
		    strerror(r->err));
	log_info("tarpit ip=%s port=%s held=%s bytes=%llu end=%s", p->ip,
	    peer_port(p), held, (unsigned long long)r->bytes,
	    tarpit_end_name(r->end));
}

void
decoy_tarpit(const struct decoy_config *cfg, const struct peer *p)
{
	char line[DECOY_TARPIT_LINE_MAX];
	struct tarpit_result r;

	decoy_tarpit_line(cfg, line, sizeof line);
	tarpit_hold(0, 1, line, cfg->interval_ms, cfg->tarpit_max_ms, &r);
	decoy_log_tarpit(p, &r);
}

void
decoy_tempfail(const struct decoy_config *cfg, const struct peer *p)
{
	char host[HOST_MAX], helo[DECOY_HELO_MAX * 4 + 1];
	struct decoy_result r;

	decoy_hostname(cfg->host, host, sizeof host);
	decoy_serve(0, 1, host, cfg, &r);
	log_escape(helo, sizeof helo, r.helo, r.helo_len);
	if (r.end == END_ERROR)
		log_error("ip=%s port=%s decoy: %s", p->ip, peer_port(p),
		    strerror(r.err));
	log_info("decoy ip=%s port=%s helo=\"%s\" commands=%u quit=%s end=%s",
	    p->ip, peer_port(p), helo, r.commands, r.quit ? "yes" : "no",
	    decoy_end_name(r.end));
}
