/* dialog.c - sendwrap's own SMTP dialog for greylisting; see dialog.h. */
#include "dialog.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"

#define LAST_REPLY_MS 1000	/* for the closing 421 of the time limit */

static const char reply_rcpt[] = "250 2.1.5 Ok\r\n";
static const char reply_unknown[] = "502 5.5.2 Command not recognized\r\n";

/* ------------------------------------------------------------ tests */

static int
is_token_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int
dialog_non_smtp(const char *line, size_t len)
{
	static const char *const http[] = { "GET", "POST", "HEAD", "PUT",
	    "DELETE", "OPTIONS", "TRACE", "PATCH", "CONNECT" };
	size_t word = 0, i;

	while (word < len && is_token_char(line[word]))
		word++;
	if (word == 0)
		return 0;
	/* "Host: ...", "User-Agent: ...": a header where a command goes. */
	if (word < len && line[word] == ':')
		return 1;
	if (word < len && line[word] != ' ')
		return 0;
	for (i = 0; i < sizeof http / sizeof http[0]; i++)
		if (strlen(http[i]) == word &&
		    strncasecmp(line, http[i], word) == 0)
			return 1;
	return 0;
}

static void
keep(struct dialog_text *t, const char *s, size_t len)
{
	t->len = len < sizeof t->text ? len : sizeof t->text;
	memcpy(t->text, s, t->len);
}

/* Which test does this line fail, if any is on: the test, or -1. */
static int
failed_test(const struct dialog *d, const char *line, size_t len,
    unsigned how)
{
	unsigned on = d->cfg->tests;

	if ((on & GREY_TEST_BIT(GREY_NON_SMTP)) && dialog_non_smtp(line, len))
		return GREY_NON_SMTP;
	if ((on & GREY_TEST_BIT(GREY_PIPELINING)) && (how & LINE_MORE))
		return GREY_PIPELINING;
	if ((on & GREY_TEST_BIT(GREY_BARE_NEWLINE)) && (how & LINE_BARE_LF))
		return GREY_BARE_NEWLINE;
	return -1;
}

/* Note the first failed test, and what failed it. */
static void
note_fault(struct dialog *d, int test, const char *line, size_t len)
{
	d->fault = test;
	d->fault_at = d->commands;
	/* Pipelined: what came too soon is the evidence. */
	if (test == GREY_PIPELINING)
		keep(&d->faulty, d->in.buf, d->in.len);
	else
		keep(&d->faulty, line, len);
}

/* ------------------------------------------------------------ dialog */

void
dialog_init(struct dialog *d, const struct dialog_config *cfg)
{
	memset(d, 0, sizeof *d);
	d->cfg = cfg;
	d->fault = -1;
	d->end = END_ERROR;
}

size_t
dialog_greeting(const struct dialog *d, char *buf, size_t size)
{
	int n = snprintf(buf, size, "220 %s ESMTP\r\n", d->cfg->host);

	return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

char *
dialog_room(struct dialog *d, size_t *room)
{
	return smtp_lines_room(&d->in, room);
}

void
dialog_received(struct dialog *d, size_t n)
{
	d->in.len += n;
}

/*
 * The path a MAIL or RCPT names, after "FROM:" or "TO:": "<...>" whole
 * (a quoted local part may hold a space), or a bare one up to a space;
 * its parameters (SIZE=, NOTIFY=) are not kept.
 */
static void
keep_path(struct dialog_text *t, const char *line, size_t len)
{
	const char *p = line + 4, *end = line + len, *colon, *stop;

	if (t->len > 0)
		return;
	colon = memchr(p, ':', (size_t)(end - p));
	if (colon)
		p = colon + 1;
	while (p < end && *p == ' ')
		p++;
	if (p < end && *p == '<')
		stop = memchr(p, '>', (size_t)(end - p));
	else
		stop = memchr(p, ' ', (size_t)(end - p));
	keep(t, p, stop ? (size_t)(stop - p) + (*stop == '>') :
	    (size_t)(end - p));
}

/* What a command tells of the client. */
static void
note(struct dialog *d, enum smtp_cmd cmd, const char *line, size_t len)
{
	const char *trap;

	switch (cmd) {
	case CMD_HELO:
	case CMD_EHLO:
		if (d->helo.len == 0 && len > 5)
			keep(&d->helo, line + 5, len - 5);
		break;
	case CMD_MAIL:
		keep_path(&d->from, line, len);
		break;
	case CMD_RCPT:
		d->rcpts++;
		keep_path(&d->rcpt, line, len);
		/* The list's own address: what the line names may be spelt
		 * in ways keep_path() does not read as a path. */
		if (!d->trapped && (trap = greytraps_match(d->cfg->traps,
		    line + 4, len - 4)) != NULL) {
			d->trapped = 1;
			keep(&d->trap, trap, strlen(trap));
		}
		break;
	case CMD_QUIT:
		d->quit = 1;
		break;
	default:
		break;
	}
}

/* The reply to cmd into reply; its length. */
static size_t
answer(const struct dialog *d, enum smtp_cmd cmd, char *reply)
{
	const char *fixed = reply_unknown;
	int n;

	switch (cmd) {
	case CMD_HELO:
	case CMD_EHLO:
		/* No extensions: nothing to pipeline, nothing to negotiate. */
		n = snprintf(reply, DIALOG_REPLY_MAX, "250 %s\r\n",
		    d->cfg->host);
		return n > 0 && n < DIALOG_REPLY_MAX ? (size_t)n : 0;
	case CMD_DATA:
		n = snprintf(reply, DIALOG_REPLY_MAX, "451 4.7.1 %s\r\n",
		    d->cfg->text);
		return n > 0 && n < DIALOG_REPLY_MAX ? (size_t)n : 0;
	case CMD_MAIL: fixed = REPLY_MAIL_OK; break;
	case CMD_RCPT: fixed = reply_rcpt; break;
	case CMD_RSET:
	case CMD_NOOP: fixed = REPLY_OK; break;
	case CMD_QUIT: fixed = REPLY_BYE; break;
	case CMD_TOO_LONG: fixed = REPLY_LINE_TOO_LONG; break;
	case CMD_UNKNOWN: break;
	}
	memcpy(reply, fixed, strlen(fixed));
	return strlen(fixed);
}

enum dialog_step
dialog_next(struct dialog *d, char *reply, size_t *len)
{
	char line[SMTP_LINE_MAX];
	enum smtp_cmd cmd;
	unsigned how;
	size_t n;
	int test;

	*len = 0;
	if (!smtp_take_line(&d->in, line, &n, &how))
		return DIALOG_READ;
	if (d->fault < 0 && (test = failed_test(d, line, n, how)) >= 0) {
		note_fault(d, test, line, n);
		if (d->cfg->end_on_fault)
			return DIALOG_CLOSE;
	}
	cmd = how & LINE_LONG ? CMD_TOO_LONG : smtp_classify(line, n);
	note(d, cmd, line, n);
	*len = answer(d, cmd, reply);
	d->commands++;
	if (cmd == CMD_QUIT) {
		d->end = END_QUIT;
		return DIALOG_CLOSE;
	}
	if (d->commands < DIALOG_COMMANDS_MAX)
		return DIALOG_REPLY;
	/* A limit, not the client, ends it. */
	memcpy(reply + *len, REPLY_TOO_MANY_COMMANDS,
	    sizeof REPLY_TOO_MANY_COMMANDS - 1);
	*len += sizeof REPLY_TOO_MANY_COMMANDS - 1;
	d->end = END_COMMANDS;
	return DIALOG_CLOSE;
}

int
dialog_failed(const struct dialog *d)
{
	return d->fault >= 0 && d->cfg->end_on_fault;
}

size_t
dialog_time_up(struct dialog *d, char *reply, size_t size)
{
	d->end = END_TIME;
	if (size < sizeof REPLY_SESSION_TIME)
		return 0;
	memcpy(reply, REPLY_SESSION_TIME, sizeof REPLY_SESSION_TIME - 1);
	return sizeof REPLY_SESSION_TIME - 1;
}

/* ------------------------------------------------------------ serving */

/* How input ended, if it did. */
enum input_end { INPUT_GOES_ON, INPUT_ENDED };

/* How a failed read or send ends the session. */
static void
ended_by(struct dialog *d, int err)
{
	d->end = err == EPIPE || err == ECONNRESET ? END_RESET : END_ERROR;
	d->err = err;
}

/*
 * All the input there is now, up to the room, without waiting (a
 * descriptor that is not a socket is read once: the caller saw it
 * readable).  INPUT_ENDED with d->end set once the client closed, reset
 * or failed: what came before it is still to be answered.
 */
static enum input_end
take_input(struct dialog *d, int in)
{
	int got_any = 0;

	for (;;) {
		size_t room;
		char *at = dialog_room(d, &room);
		ssize_t got;

		if (room == 0)
			return INPUT_GOES_ON;
		got = recv(in, at, room, MSG_DONTWAIT);
		if (got < 0 && errno == ENOTSOCK) {
			if (got_any)
				return INPUT_GOES_ON;
			got = read(in, at, room);
		}
		if (got > 0) {
			dialog_received(d, (size_t)got);
			got_any = 1;
			/* Less than the room: all there was, no second call
			 * needed to learn it. */
			if ((size_t)got < room)
				return INPUT_GOES_ON;
			continue;
		}
		if (got < 0 && (errno == EAGAIN || errno == EINTR))
			return INPUT_GOES_ON;
		if (got == 0)
			d->end = END_CLOSED;
		else
			ended_by(d, errno);
		return INPUT_ENDED;
	}
}

/*
 * A reply goes out at once or not at all: it is a few hundred bytes, and
 * a client that leaves the socket's buffer full has stopped reading.
 */
static int
send_now(struct dialog *d, int out, const char *reply, size_t len)
{
	if (send_all(out, reply, len, mono_ms()) == 0)
		return 0;
	ended_by(d, errno == ETIMEDOUT ? EAGAIN : errno);
	return -1;
}

int
dialog_start(struct dialog *d, int out)
{
	char reply[DIALOG_REPLY_MAX];

	return send_now(d, out, reply, dialog_greeting(d, reply,
	    sizeof reply)) == 0 ? 1 : 0;
}

int
dialog_pump(struct dialog *d, int in, int out)
{
	char reply[DIALOG_REPLY_MAX];
	enum input_end input = take_input(d, in);
	enum dialog_step step;
	size_t len;

	while ((step = dialog_next(d, reply, &len)) != DIALOG_READ) {
		if (step == DIALOG_CLOSE) {
			/* The last word: the session ended as it says, whether
			 * or not the client takes it. */
			if (len > 0)
				send_all(out, reply, len, mono_ms());
			return 0;
		}
		if (send_now(d, out, reply, len) != 0)
			return 0;
	}
	return input == INPUT_GOES_ON;
}

void
dialog_serve(struct dialog *d, int in, int out, uint64_t deadline)
{
	char reply[DIALOG_REPLY_MAX];
	size_t len;

	if (!dialog_start(d, out))
		return;
	for (;;) {
		switch (wait_readable(in, deadline)) {
		case WAIT_TIMEOUT:
			len = dialog_time_up(d, reply, sizeof reply);
			send_all(out, reply, len, mono_ms() + LAST_REPLY_MS);
			return;
		case WAIT_ERROR:
			ended_by(d, errno);
			return;
		case WAIT_READABLE:
			if (!dialog_pump(d, in, out))
				return;
		}
	}
}
