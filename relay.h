/*
 * relay.h - a client that passed, relayed to the MTA's daemon
 * (--forward): the listener's loop connects to the MTA and moves the
 * bytes both ways with splice(2) through one pipe per direction, so that
 * no byte passes through user space and no process runs per session.
 *
 * A session, driven by the loop:
 *
 *   connect    a non-blocking connect to the target (TCP, or a unix
 *              socket: one whose backlog is full is tried again every
 *              RELAY_RETRY_MS), bounded by connect_ms; no byte of the
 *              client's is read before it is connected, so a failure
 *              loses nothing: the client is told 421 4.3.0
 *              (relay_reply()) and tries again later;
 *   first      the bytes to send first (a PROXY header), written before
 *              any byte of the client's;
 *   relay      client -> MTA and MTA -> client, each through its pipe.
 *              A pipe that holds bytes waits for its destination to
 *              take them, and its source is not read meanwhile: a side
 *              that stops reading holds the other back, and nothing is
 *              lost or reordered.  An EOF is passed on as
 *              shutdown(SHUT_WR) once its pipe is empty;
 *   end        both directions closed, either side reset or failed, or
 *              idle_ms with no byte either way.  struct relay then says
 *              why, who, and how many bytes went each way.
 *
 * Driving it: after relay_start() and after every relay_ready() and
 * relay_timeout() that leaves it going, the loop
 *   - watches each side's descriptor for relay_events() (relay_watch()
 *     does it: a descriptor is out of the epoll set while the engine
 *     waits for nothing on it, since EPOLLHUP and EPOLLERR cannot be
 *     masked and would wake the loop in vain),
 *   - sets its timer for relay_deadline(),
 * and calls relay_ready() with the events a descriptor had, and
 * relay_timeout() at the deadline.  Each returns RELAY_GOING or
 * RELAY_OVER; once over the engine has closed all it opened, and the
 * loop logs, answers relay_reply() if it is not NULL, and closes the
 * client (whose descriptor relay_watch() may have taken out of the
 * epoll set: watching it again for the drain is an EPOLL_CTL_ADD).
 *
 * Contract: nothing blocks; no logging, no signals (the caller ignores
 * SIGPIPE: a splice to a socket the peer has reset raises it), the one
 * allocation is relay_start()'s copy of the first bytes, freed once they
 * are sent.  Every descriptor the engine opens (the MTA's socket, the
 * pipes) is close-on-exec and non-blocking, and closed when the session
 * ends or relay_close() is called, except that an empty pipe is kept
 * for the next session while other sessions run (at most 64; none once
 * no session holds a pipe); the client's descriptor is the caller's
 * (relay_start() makes it non-blocking if it is not: a splice from a
 * blocking socket waits, whatever its flags say).  The kept pipes are
 * the process's own: one thread drives every session.
 */
#ifndef SENDWRAP_RELAY_H
#define SENDWRAP_RELAY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "names.h"

#define RELAY_CONNECT_MS 10000		/* --forward-timeout's default */
#define RELAY_IDLE_MS 600000		/* --forward-idle's default */
#define RELAY_RETRY_MS 50		/* a unix socket's full backlog */
#define RELAY_FIRST_MAX 1024		/* the bytes to send first */
#define RELAY_PIPE_SIZE 16384		/* each pipe's: see BENCHMARKS.md */
#define RELAY_UNIX "unix:"

/* The two sides; a direction is named by the side it reads. */
enum relay_side { RELAY_CLIENT, RELAY_MTA };

/* Where to forward: --forward's "ADDR:PORT", "[IPv6]:PORT", "unix:/PATH". */
struct relay_target {
	struct sockaddr_storage addr;
	socklen_t len;
};

struct relay_config {
	struct relay_target target;
	uint64_t connect_ms;		/* --forward-timeout */
	uint64_t idle_ms;		/* --forward-idle */
	int pipe_size;			/* bytes (F_SETPIPE_SZ); 0: the kernel's */
};

enum relay_phase {
	RELAY_CONNECTING,		/* the connect is under way */
	RELAY_FIRST,			/* sending the bytes to send first */
	RELAY_RELAYING,
	RELAY_DONE			/* over: end says why */
};

/* One direction: from the side that names it to the other. */
struct relay_way {
	int pipe[2];			/* read end, write end */
	size_t held;			/* bytes in the pipe */
	uint64_t bytes;			/* passed on to the other side */
	unsigned char eof;		/* its source said EOF */
	unsigned char shut;		/* the other side shut down for writing */
};

struct relay {
	const struct relay_config *cfg;
	int fd[2];			/* [RELAY_CLIENT]: the caller's */
	enum relay_phase phase;
	struct relay_way way[2];	/* [RELAY_CLIENT]: client -> MTA */
	unsigned char ready[2];		/* what each descriptor may take now */
	uint32_t watched[2];		/* relay_watch(): in the epoll set */
	char *first;			/* the bytes to send first, or NULL */
	size_t first_len, first_sent;
	uint64_t start;			/* relay_start() (mono_ms()) */
	uint64_t connected;		/* the MTA took the connection */
	uint64_t last;			/* the last byte either way */
	uint64_t retry;			/* a unix socket's next connect */
	uint64_t ended;
	enum relay_end end;		/* once RELAY_DONE */
	int err;			/* errno, for the ends that have one */
	int eof_first;			/* the side whose EOF came first, or -1 */
};

enum relay_status { RELAY_GOING, RELAY_OVER };

/*
 * Parse --forward's value into t.  0, or -1 with *why a static message.
 * A port must be 1 to 65535; a unix path absolute, and short enough for
 * a socket address.
 */
int relay_target_parse(const char *s, struct relay_target *t,
    const char **why);

/*
 * Start a session for the client on client_fd: open the pipes and the
 * MTA's socket, and connect.  first (first_len bytes, at most
 * RELAY_FIRST_MAX; NULL, 0 for none) goes to the MTA before anything
 * of the client's; it is copied.  RELAY_GOING, or RELAY_OVER at once
 * (the connect refused, RELAY_LOCAL_ERROR: no descriptors, no memory;
 * RELAY_CLIENT_ERROR: client_fd is no descriptor).  r needs no preparing; the caller keeps it in place (and cfg
 * alive) until the session is over or relay_close()d.
 */
enum relay_status relay_start(struct relay *r, const struct relay_config *cfg,
    int client_fd, const void *first, size_t first_len);

/* The epoll events (EPOLLIN, EPOLLOUT, or 0) the engine waits for on
 * side's descriptor now. */
uint32_t relay_events(const struct relay *r, enum relay_side side);

/* A descriptor had events (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP). */
enum relay_status relay_ready(struct relay *r, enum relay_side side,
    uint32_t events);

/* When relay_timeout() is due: mono_ms() time; 0 once over. */
uint64_t relay_deadline(const struct relay *r);

/* Call at relay_deadline() (early is harmless: nothing happens). */
enum relay_status relay_timeout(struct relay *r);

/*
 * Bring epoll set ep in line with relay_events() for both descriptors
 * (ADD, MOD, DEL as needed), each event carrying client_ptr or mta_ptr.
 * The client's descriptor may be in ep already, with any events: its
 * first call here replaces them.  0, or -1 with errno from epoll_ctl().
 */
int relay_watch(struct relay *r, int ep, void *client_ptr, void *mta_ptr);

/*
 * What the client hears before it is closed: REPLY_UNAVAILABLE (421
 * 4.3.0) when it never got a byte from the MTA and did not end the
 * session itself (the MTA unreachable, or gone before its greeting);
 * NULL otherwise.
 */
const char *relay_reply(const struct relay *r);

/* The session's length: from the connect to the end (or now). */
uint64_t relay_length_ms(const struct relay *r);

/*
 * Close what the engine opened (the pipes, the MTA's socket), at any
 * phase; the client's descriptor is left alone.  Twice is harmless.  A
 * session cut short here ends as RELAY_LOCAL_ERROR with ECANCELED.
 */
void relay_close(struct relay *r);

/*
 * -n: connect to cfg's target once, bounded by connect_ms, and close.
 * 0 with the time taken in *took_ms, or -1 with errno (ETIMEDOUT).
 */
int relay_probe(const struct relay_config *cfg, uint64_t *took_ms);

#endif
