/*
 * smtpline.h - what an SMTP client sends, taken apart: its input a line
 * at a time, and the verb of each line.  Shared by sendwrap's two
 * speakers of SMTP, the tempfail decoy (decoy.h) and the greylisting
 * dialog (dialog.h).
 *
 * Contract: pure functions on caller memory; no I/O, no allocation.
 */
#ifndef SENDWRAP_SMTPLINE_H
#define SENDWRAP_SMTPLINE_H

#include <stddef.h>

#include "smtp.h"

/* Client input taken a line at a time; a line never holds more than
 * the buffer. */
struct smtp_lines {
	char buf[SMTP_LINE_MAX];
	size_t len;
	int overlong;		/* the line being read has overflowed */
};

#define LINE_LONG 1		/* overflowed: its start was thrown away */
#define LINE_BARE_LF 2		/* ended with LF alone */
#define LINE_MORE 4		/* input follows it already */

/*
 * Move the first whole line out of in into line (SMTP_LINE_MAX bytes;
 * without CRLF or LF), *len its length, *how the LINE_* flags.  Returns
 * 0 if there is none yet; a full buffer without a line end is thrown
 * away and the line marked long.
 */
int smtp_take_line(struct smtp_lines *in, char *line, size_t *len,
    unsigned *how);

/* Where the next input goes (*room bytes fit; 0: take a line first). */
char *smtp_lines_room(struct smtp_lines *in, size_t *room);

enum smtp_cmd {
	CMD_HELO, CMD_EHLO, CMD_MAIL, CMD_RSET, CMD_NOOP,
	CMD_RCPT, CMD_DATA,
	CMD_QUIT,
	CMD_UNKNOWN,
	CMD_TOO_LONG		/* a line over SMTP_LINE_MAX */
};

/*
 * Classify one command line (without its line end).  The verb is
 * matched without regard to case and must stand alone or be followed by
 * a space: "QUIT", "mail FROM:<>", not "QUITE".
 */
enum smtp_cmd smtp_classify(const char *line, size_t len);

#endif
