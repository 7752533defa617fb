/*
 * log.h - one line per event, to stderr or syslog, never to the client.
 *
 * Under inetd fd 2 is the client's socket, so "auto" (and "stderr" too)
 * sends lines to syslog (ident sendwrap, LOG_PID, facility mail) when
 * fd 2 is closed or is an internet-domain socket, and to stderr
 * otherwise: a pipe to multilog under tcpserver, the journal's AF_UNIX
 * stream under systemd.  On stderr every line starts with "sendwrap: ".
 *
 * Contract: a line is written with one write(2) or syslog(3) call, so
 * lines from concurrent processes do not interleave; on standard error a
 * line waits at most LOG_WAIT_MS for room (the listener: none, nor on
 * syslog; see log_never_wait).  Client bytes, and
 * text read from files (allowlist rules), must go through log_escape()
 * or log_escape_word() before they reach a line.  log_close() drops
 * the syslog descriptor; call it before exec.
 */
#ifndef SENDWRAP_LOG_H
#define SENDWRAP_LOG_H

#include <stddef.h>

#include "names.h"

/* Room for the fields a verdict line adds beyond its fixed ones. */
#define LOG_FIELDS_MAX 512
/* How long a line waits for room on standard error before it is dropped
 * (and counted, and the count logged with the next line that fits). */
#define LOG_WAIT_MS 1000

/*
 * The listener, one process for every client: a line waits for nothing.
 * On standard error, one with no room at once is dropped and counted;
 * syslog gets lines through sendwrap's own client, a non-blocking
 * datagram socket connected to _PATH_LOG in the format syslog(3) sends
 * (connected again at once when the daemon restarted; when there is no
 * daemon, tried again at most once a second), and a line the daemon
 * cannot take at once (its queue full) is dropped and counted too.  The count goes out first, in an error line, once one gets through.
 * (A stream socket there, which no non-blocking client can frame
 * safely, is left to syslog(3).)
 */
void log_never_wait(void);
/*
 * First thing in main, before anything is opened: puts /dev/null
 * (close-on-exec) on each of fds 0, 1 and 2 that is closed, so that
 * nothing opened later (LMDB's lock file, the syslog socket) lands there
 * and is written to as standard error, while the program exec'd still
 * gets exactly the descriptors we were given.  Notes whether fd 2 was
 * closed, for log_open().
 */
void log_init(void);

/* Parse "auto", "stderr", "syslog" or "none"; -1 if none of them. */
int log_mode_parse(const char *s, enum log_mode *mode);

/*
 * Choose the destination, once.  auto and stderr alike log to syslog
 * when fd 2 was closed or is an internet-domain socket (the client,
 * under inetd): a line must never reach the client, nor nobody.
 */
void log_open(enum log_mode mode);

/* A verdict or notice line, printf-style, at LOG_INFO. */
void log_info(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* An "error ..." line at LOG_ERR; the word "error " is added here. */
void log_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/*
 * Copy len client bytes to dst as printable ASCII: \r, \n, \t, \\, \"
 * and \xHH for anything else.  dst always ends in NUL; output stops
 * before an escape that would not fit.  Returns the bytes written.
 */
size_t log_escape(char *dst, size_t size, const char *src, size_t len);

/*
 * As log_escape(), for a value written bare, unquoted (rule=...): a
 * space is escaped too (\x20), so that the value stays one word.
 */
size_t log_escape_word(char *dst, size_t size, const char *src, size_t len);

void log_close(void);

#endif
