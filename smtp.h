/*
 * smtp.h - the facts of SMTP that sendwrap relies on, and the replies it
 * sends of its own (the decoy responder's are in decoy.c).
 *
 * Every reply here is temporary (4xx) except REPLY_REJECT: sendwrap
 * refuses for good only what this client did itself, on this connection.
 * A known early talker (the pass cache) is refused for what an earlier
 * client did, perhaps a neighbour behind the same address or network:
 * always temporarily, whatever -x says.
 */
#ifndef SENDWRAP_SMTP_H
#define SENDWRAP_SMTP_H

/* RFC 5321 4.5.3.2.1: a client waits 5 minutes for the greeting, so no
 * delay may be longer. */
#define SMTP_GREETING_WAIT_S 300
#define SMTP_GREETING_WAIT_MS ((uint64_t)SMTP_GREETING_WAIT_S * 1000)
#define SMTP_STR(x) #x
#define SMTP_XSTR(x) SMTP_STR(x)
#define SMTP_GREETING_WAIT_TEXT "0 to " SMTP_XSTR(SMTP_GREETING_WAIT_S) " s"

/* RFC 5321 4.5.3.1.4: a command line is at most 512 octets with CRLF. */
#define SMTP_LINE_MAX 512

/* The longest text we put after "220-" (-b, the tar pit's lines). */
#define GREETING_TEXT_MAX 200

#define REPLY_UNAVAILABLE "421 4.3.0 Service temporarily unavailable\r\n"

/* The replies of sendwrap's own two speakers of SMTP, the tempfail decoy
 * (decoy.c) and the greylisting dialog (dialog.c), where they agree. */
#define REPLY_MAIL_OK "250 2.1.0 Ok\r\n"
#define REPLY_OK "250 2.0.0 Ok\r\n"
#define REPLY_BYE "221 2.0.0 Bye\r\n"
#define REPLY_LINE_TOO_LONG "500 5.5.2 Line too long\r\n"
#define REPLY_TOO_MANY_COMMANDS \
    "421 4.7.0 Too many commands, closing connection\r\n"
#define REPLY_SESSION_TIME \
    "421 4.4.2 Session time limit reached, closing connection\r\n"
#define REPLY_REJECT \
    "554 5.5.1 SMTP protocol violation: input before greeting\r\n"
#define REPLY_TEMPFAIL "421 4.5.1 SMTP protocol violation: input before " \
    "greeting, try again later\r\n"
/* A greylisted client that failed an after-greeting test (-x). */
#define REPLY_PROTOCOL_REJECT "554 5.5.1 SMTP protocol violation\r\n"
#define REPLY_PROTOCOL_TEMPFAIL \
    "421 4.5.1 SMTP protocol violation, try again later\r\n"
#define REPLY_BUSY "421 4.7.0 Too busy, try again later\r\n"
/* --slots in delay mode: no place left to wait in. */
#define REPLY_WAIT_BUSY "421 4.3.2 busy, try again later\r\n"
#define REPLY_TOO_MANY "421 4.3.2 Too many connections, try again later\r\n"
/* The listener: one address over --per-ip or --per-ip-children. */
#define REPLY_PER_IP \
    "421 4.7.0 Too many connections from your address, try again later\r\n"
#define REPLY_SHUTDOWN "421 4.3.2 Service shutting down, try again later\r\n"
#define REPLY_KNOWN_EARLY "421 4.7.1 Service temporarily unavailable, " \
    "try again later\r\n"
#define REPLY_OWN_HOST \
    "421 4.7.0 Not a mail server for this client, try another MX\r\n"

#endif
