/*
 * conn.h - the client's connection: waiting on it, peeking at what it
 * sent, replying, and closing it so that the last reply arrives.
 *
 * All deadlines are on CLOCK_MONOTONIC, so a clock step does not shorten
 * or stretch a wait, and a wait interrupted by a signal resumes with the
 * time that is left.  Input is only ever peeked at, never consumed, until
 * the connection is being closed: the program exec'd next must see every
 * byte the client sent.
 *
 * Contract: no logging, no allocation, no signal handling of its own;
 * writes use MSG_NOSIGNAL on sockets so a vanished client cannot raise
 * SIGPIPE.  Nothing here blocks past the deadline it is given: a client
 * that sends and never reads cannot hold the process.  The descriptors'
 * flags (O_NONBLOCK) are never changed: they are shared with the program
 * and with the superserver.
 */
#ifndef SENDWRAP_CONN_H
#define SENDWRAP_CONN_H

#include <stddef.h>
#include <stdint.h>

#define CONN_PEEK_MAX 256	/* bytes of early input looked at */
#define CONN_DRAIN_MS 2000	/* after our last reply: see close_gently() */
#define CONN_DRAIN_MAX (64 * 1024)
#define CONN_SEND_MS 2000	/* for a reply or banner the client must take */

enum wait_result { WAIT_TIMEOUT, WAIT_READABLE, WAIT_ERROR };
/* wait_client() adds one: the resolver has news. */
enum client_wait { CLIENT_TIMEOUT, CLIENT_READABLE, CLIENT_ERROR,
	CLIENT_DNS };
enum input_kind { INPUT_DATA, INPUT_EOF, INPUT_RESET, INPUT_ERROR };

/* Milliseconds on CLOCK_MONOTONIC from an arbitrary origin. */
uint64_t mono_ms(void);

/* Wait until fd is readable or mono_ms() reaches deadline. */
enum wait_result wait_readable(int fd, uint64_t deadline);

struct dnsl_resolver;

/*
 * The same, while the resolver r (if not NULL) does its work: CLIENT_DNS
 * after it has read answers or handled a timeout, so that the caller can
 * look at its lookups.  The client comes first: CLIENT_READABLE whenever
 * fd is readable.
 */
enum client_wait wait_client(int fd, uint64_t deadline,
    struct dnsl_resolver *r);

/*
 * Look at what is waiting on readable fd without consuming it: up to
 * size bytes copied to buf, their number in *copied, and the number
 * waiting (at least those) in *waiting.  On something that is not a
 * socket nothing can be peeked: *copied is 0 and *waiting the FIONREAD
 * count.
 */
enum input_kind peek_input(int fd, char *buf, size_t size, size_t *copied,
    size_t *waiting);

/*
 * Bytes written to fd that the client has not yet acknowledged (the
 * socket's send queue); 0 where that cannot be known (a pipe, say).
 */
int conn_unsent(int fd);

/*
 * Write all of buf to fd by deadline (mono_ms()): a socket with
 * MSG_DONTWAIT and poll(), anything else (a pipe) only when poll() says
 * it can take PIPE_BUF bytes.  Returns 0, or -1 with errno (ETIMEDOUT
 * when the client did not take it in time).
 */
int send_all(int fd, const char *buf, size_t len, uint64_t deadline);

/*
 * End the connection so that a reply already written reaches the client:
 * shut down the write side, read and discard input for at most drain_ms
 * and drain_max bytes (a close with unread input sends a reset that can
 * destroy the reply in flight), then close both descriptors.
 */
void close_gently(int in, int out, uint64_t drain_ms, size_t drain_max);

#endif
