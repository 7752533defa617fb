/*
 * decoy.h - the decoy MX modes: what happens with a connection that no
 * MTA will ever see.
 *
 * tarpit: a greeting that never ends.  A "220-TEXT" continuation line
 * goes out at once and then every interval, never the final "220 "
 * line, until the client closes or resets or the maximum hold time has
 * passed.  Whatever the client sends is read and thrown away unseen.
 *
 * tempfail: the "come back later" responder of a fake MX.  It greets
 * with 220, answers HELO/EHLO/MAIL/RSET/NOOP with 250, RCPT and DATA
 * with 451, QUIT with 221 and anything else with 500, within a bound on
 * commands, on session time and on line length.  A real MTA takes the
 * 451, says QUIT and retries another MX; a bot usually does not QUIT.
 *
 * Layers, so each can be tested on its own:
 *  - decoy_classify(), decoy_reply(): pure functions, no I/O;
 *  - tarpit_hold(), decoy_serve(): the conversation on in/out; they
 *    neither log nor close, and wait only through wait_readable();
 *  - decoy_tarpit(), decoy_tempfail(): one whole connection, ending in
 *    its one verdict line; the caller then closes (close_gently).
 *
 * Contract: no allocation, no signal handling, no exit.  Client bytes
 * reach the log only through log_escape().  Replies go out with
 * send_all() (MSG_NOSIGNAL: a vanished client raises no SIGPIPE) and a
 * deadline, the end of the hold or of the session: a client that sends
 * and never reads cannot hold the process past either.
 */
#ifndef SENDWRAP_DECOY_H
#define SENDWRAP_DECOY_H

#include <stddef.h>
#include <stdint.h>

#include "names.h"
#include "peer.h"
#include "smtp.h"
#include "smtpline.h"

#define DECOY_LINE_MAX SMTP_LINE_MAX	/* with its CRLF */
#define DECOY_HELO_MAX 64	/* bytes of the HELO/EHLO argument kept */
#define HOST_MAX 256		/* this host's name in a greeting */
/*
 * A client that leaves this much of the tar pit's lines unread has
 * stopped reading: another line would only pile up, and once the socket
 * buffer is full a send would block past --tarpit-max.
 */
#define DECOY_UNSENT_MAX 2048
#define DECOY_TARPIT_LINE_MAX (GREETING_TEXT_MAX + HOST_MAX + 16)

struct decoy_config {
	enum mode mode;			/* MODE_TARPIT or MODE_TEMPFAIL */
	const char *text;		/* tarpit line text; NULL: a default */
	const char *host;		/* --hostname; NULL: this host's */
	uint64_t interval_ms;		/* tarpit: between two lines */
	uint64_t tarpit_max_ms;		/* tarpit: longest hold */
	unsigned max_commands;		/* tempfail: commands answered */
	uint64_t tempfail_max_ms;	/* tempfail: session, from the 220 */
};

/* ------------------------------------------------------------ tarpit */

struct tarpit_result {
	uint64_t held_ms;		/* from the first line to the end */
	uint64_t bytes;			/* received and discarded */
	enum tarpit_end end;
	int err;			/* errno, for TARPIT_ERROR */
};

/*
 * Send line (a whole "220-...\r\n") on out at once and every interval_ms
 * after it, read and discard input on in, until end of file, a reset,
 * or max_ms.  A send that fails counts as a reset (EPIPE, ECONNRESET)
 * or an error.  A line is skipped while the client leaves earlier ones
 * unread, so a send never blocks and max_ms holds.
 */
void tarpit_hold(int in, int out, const char *line, uint64_t interval_ms,
    uint64_t max_ms, struct tarpit_result *r);

/* ---------------------------------------------------------- tempfail */

/*
 * Write the reply to cmd, CRLF included, into buf (NUL-terminated).
 * host is the name in the HELO/EHLO reply.  Returns its length, or 0 if
 * it did not fit.
 */
size_t decoy_reply(enum smtp_cmd cmd, const char *host, char *buf,
    size_t size);

struct decoy_result {
	unsigned commands;		/* command lines answered */
	int quit;			/* the client said QUIT */
	char helo[DECOY_HELO_MAX];	/* first HELO/EHLO argument, raw */
	size_t helo_len;
	enum decoy_end end;
	int err;			/* errno, for END_ERROR */
};

/*
 * The responder session, from the 220 greeting (host in it) to QUIT, end
 * of input, or a limit (then a 421 is sent).  Lines over DECOY_LINE_MAX
 * are answered 500 and thrown away up to their end.
 */
void decoy_serve(int in, int out, const char *host,
    const struct decoy_config *cfg, struct decoy_result *r);

/* ------------------------------------------------- whole connections */

/*
 * The name for a greeting: configured (--hostname, checked when it was
 * given) if not NULL, else this host's name made safe to send (no CR,
 * LF...).  Returns buf.
 */
const char *decoy_hostname(const char *configured, char *buf, size_t size);

/* The tar pit's line: "220-TEXT\r\n", or this host's name and ESMTP.
 * Its length (0 if it did not fit). */
size_t decoy_tarpit_line(const struct decoy_config *cfg, char *buf,
    size_t size);

/* The verdict line of a hold: "tarpit ip= port= held= bytes= end=". */
void decoy_log_tarpit(const struct peer *p, const struct tarpit_result *r);

/* Hold the client on fds 0/1 and log "tarpit ip= port= held= ...". */
void decoy_tarpit(const struct decoy_config *cfg, const struct peer *p);

/* Serve the responder on fds 0/1 and log "decoy ip= port= helo= ...". */
void decoy_tempfail(const struct decoy_config *cfg, const struct peer *p);

#endif
