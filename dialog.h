/*
 * dialog.h - sendwrap's own side of an SMTP session, for a client that is
 * greylisted (--greylist): it greets, answers, sees every recipient, and
 * turns the message away at DATA with "451 4.7.1" (come back later); a
 * real MTA retries, a bot mostly does not.  On the way it runs the
 * after-greeting tests (--grey-tests) and notes greytrap recipients.
 *
 *   220 HOST ESMTP
 *   HELO, EHLO  250 HOST        (no extensions: no PIPELINING, no STARTTLS)
 *   MAIL        250 2.1.0 Ok
 *   RCPT        250 2.1.5 Ok    (every recipient, greytraps too)
 *   DATA        451 4.7.1 TEXT
 *   RSET, NOOP  250 2.0.0 Ok
 *   QUIT        221 2.0.0 Bye, and the session ends
 *   else        502 5.5.2 Command not recognized
 *   a line over SMTP_LINE_MAX bytes: 500 5.5.2 Line too long
 * After DIALOG_COMMANDS_MAX command lines the reply is followed by
 * "421 4.7.0 Too many commands" and the session ends; a front end ends it
 * at DIALOG_SESSION_MS from the greeting with dialog_time_up().
 *
 * The tests (a client that fails one is no mail server that waited for
 * the greeting in good faith):
 *  - pipelining: a command line came with more input behind it, sent
 *    before the reply to it (PIPELINING was not offered);
 *  - non-smtp: an HTTP request line (GET, POST, CONNECT, ...) or a
 *    header line ("Host: ...");
 *  - bare-newline: a line ended with LF alone.
 * The first test failed is kept; with end_on_fault it ends the session
 * at once, with no reply (the front end acts on -x).
 *
 * Layers: the dialog itself is a machine with no I/O (bytes in, replies
 * out), so that the listener drives it from its event loop and a fuzz
 * target from memory; dialog_serve() drives it on descriptors for the
 * process-per-connection front end.  For the tests to mean anything, a
 * front end gives the dialog all the input there is before it asks for
 * the next reply.
 *
 * Contract: no allocation, no logging, no signals, no exit.  Client
 * bytes are kept raw (bounded); the caller escapes them for the log.
 * Nothing here waits but dialog_serve(), in wait_readable(), bounded by
 * the session's deadline.
 */
#ifndef SENDWRAP_DIALOG_H
#define SENDWRAP_DIALOG_H

#include <stddef.h>
#include <stdint.h>

#include "greytrap.h"
#include "names.h"
#include "smtp.h"
#include "smtpline.h"

#define DIALOG_COMMANDS_MAX 110	/* RFC 5321's 100 recipients, and more */
#define DIALOG_SESSION_MS 60000	/* from the greeting */
#define DIALOG_ARG_MAX 64	/* bytes kept of HELO, MAIL, RCPT, input */
#define DIALOG_HOST_MAX 256	/* the host name, with its NUL */
#define DIALOG_REPLY_MAX (DIALOG_HOST_MAX + GREETING_TEXT_MAX + 80)
#define DIALOG_TEXT_DEFAULT "Greylisted, try again later"

/* ------------------------------------------------------------ dialog */

struct dialog_config {
	const char *host;		/* in the greeting and the HELO reply */
	const char *text;		/* after "451 4.7.1 " at DATA */
	unsigned tests;			/* GREY_TEST_BIT()s */
	int end_on_fault;		/* a failed test ends the session */
	const struct greytraps *traps;	/* or NULL */
};

/* Bytes the client sent, kept for the log: the first DIALOG_ARG_MAX. */
struct dialog_text {
	char text[DIALOG_ARG_MAX];
	size_t len;
};

struct dialog {
	const struct dialog_config *cfg;
	struct smtp_lines in;		/* input not yet taken */
	unsigned commands;		/* command lines answered */
	unsigned rcpts;			/* RCPT commands */
	int quit;			/* the client said QUIT */
	int fault;			/* the first test failed, or -1 */
	unsigned fault_at;		/* commands answered before it */
	int trapped;			/* a greytrap was named */
	enum decoy_end end;		/* once the session is over */
	int err;			/* errno, for END_ERROR */
	struct dialog_text helo;	/* the first HELO or EHLO argument */
	struct dialog_text from;	/* the first MAIL's path */
	struct dialog_text rcpt;	/* the first RCPT's path */
	struct dialog_text trap;	/* the first greytrap named */
	struct dialog_text faulty;	/* the input that failed the test */
};

enum dialog_step {
	DIALOG_READ,		/* no whole line: give it more input */
	DIALOG_REPLY,		/* send the reply, then ask again */
	DIALOG_CLOSE		/* send the reply (if any); the session is
				 * over: end says why, or the test failed */
};

void dialog_init(struct dialog *d, const struct dialog_config *cfg);

/* "220 HOST ESMTP\r\n" into buf; its length. */
size_t dialog_greeting(const struct dialog *d, char *buf, size_t size);

/*
 * Where the client's next bytes go and how many fit.  Tell the dialog
 * how many came with dialog_received().
 */
char *dialog_room(struct dialog *d, size_t *room);
void dialog_received(struct dialog *d, size_t n);

/* The next step, its reply (DIALOG_REPLY_MAX bytes of room) in reply. */
enum dialog_step dialog_next(struct dialog *d, char *reply, size_t *len);

/* Did a failed test end the session (end_on_fault)? */
int dialog_failed(const struct dialog *d);

/* The session's time is up: end = END_TIME, and the closing 421. */
size_t dialog_time_up(struct dialog *d, char *reply, size_t size);

/*
 * Is this command line not SMTP at all: an HTTP request line or a
 * header line?
 */
int dialog_non_smtp(const char *line, size_t len);

/*
 * Send the greeting, at once (the socket's buffer is empty): 1, or 0 if
 * it could not go (the session is over, end says why).
 */
int dialog_start(struct dialog *d, int out);

/*
 * Take all the input there is on in without waiting, and answer every
 * whole line of it on out, each reply at once or not at all (a client
 * that leaves the socket's buffer full has stopped reading).  Returns 1
 * while the session goes on (call again when in is readable), 0 once it
 * is over.  For the listener's loop, and dialog_serve().
 */
int dialog_pump(struct dialog *d, int in, int out);

/*
 * The whole session on in/out for the per-connection front end: the
 * greeting, then replies until the session is over or deadline, where
 * it ends with dialog_time_up()'s reply.
 */
void dialog_serve(struct dialog *d, int in, int out, uint64_t deadline);

#endif
