/*
 * redis.h - a small Redis client (Redis, or Valkey, which speaks the same
 * protocol): connect, AUTH, SELECT and one command at a time, all within
 * a deadline.
 *
 * Servers are named by URLs, tried in order: redis://[[USER]@]HOST[:PORT]
 * [/DB] (HOST an IPv4 address, [IPv6] or localhost; no name is looked up,
 * since a DNS query per connection would eat the time budget) or
 * unix:/PATH[?db=N][&user=NAME].  The password is never in a URL: it is
 * read from a file (redis_password_read()), which must be a regular file
 * that group and others cannot read or write.
 *
 * Timing: every call takes a deadline (mono_ms(), conn.h) and returns by
 * then, whatever the server does: the socket is non-blocking, connect
 * and every read and write wait in poll() for what is left of the time.
 * A server that is stopped (SIGSTOP: the kernel still completes the TCP
 * handshake), never answers, answers half a reply or closes the
 * connection costs at most the time to the deadline.  With several
 * servers each gets a share of the time left (a server that hangs leaves
 * time for the next one).  One round trip per command: AUTH and SELECT go
 * out in the same write as the first command.
 *
 * Replies are parsed by hiredis's reply reader (read.h); this module
 * formats the commands and does the I/O.  A reply is limited in size and
 * nesting, so a hostile or broken server cannot make us allocate without
 * bound.
 *
 * Contract: no logging and no output; every failure is a return value
 * with a one-line reason (server text in it cleaned of anything but
 * printable ASCII; never the password).  The socket is close-on-exec and
 * writes never raise SIGPIPE.  No TLS (hiredis 0.14 has none): use a
 * private network, a tunnel, or a local replica on a unix socket.
 */
#ifndef SENDWRAP_REDIS_H
#define SENDWRAP_REDIS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define REDIS_PORT_DEFAULT 6379
#define REDIS_URLS_MAX 4		/* --redis, given at most this often */
#define REDIS_USER_MAX 64
#define REDIS_PASSWORD_MAX 512
#define REDIS_DB_MAX 1000000
#define REDIS_URL_TEXT_MAX 160		/* a URL as given, with its NUL */
#define REDIS_REPLY_BYTES_MAX (4 << 20)	/* read for one command, at most */
#define REDIS_REPLY_ELEMENTS_MAX 100000	/* in one array */

struct redis_url {
	struct sockaddr_storage addr;	/* AF_INET, AF_INET6 or AF_UNIX */
	socklen_t addrlen;
	char user[REDIS_USER_MAX + 1];	/* ACL user; "": none (default) */
	unsigned db;			/* SELECT, unless 0 */
	char text[REDIS_URL_TEXT_MAX];	/* as given: for messages */
};

/* Where the servers are and how to log in to them. */
struct redis_setup {
	const struct redis_url *urls;
	size_t nurls;
	const char *password;		/* NULL: no AUTH */
};

enum redis_type {
	REDIS_STRING = 1, REDIS_ARRAY, REDIS_INTEGER, REDIS_NIL,
	REDIS_STATUS, REDIS_ERROR
};

struct redis_reply {
	enum redis_type type;
	long long integer;		/* REDIS_INTEGER */
	char *str;			/* STRING, STATUS, ERROR; NUL-ended */
	size_t len;
	struct redis_reply **element;	/* REDIS_ARRAY */
	size_t elements;
};

struct redis;

/* Parse a URL (above).  0, or -1 with why. */
int redis_url_parse(const char *s, struct redis_url *u, const char **why);

/*
 * Read the password: the first line of path, without its line end.
 * The file is opened without following a symbolic link and must be a
 * regular file, not readable or writable by group or others, with a
 * password of 1 to REDIS_PASSWORD_MAX bytes.  0, or -1 with the reason.
 */
int redis_password_read(const char *path, char *buf, size_t size,
    char *err, size_t errsize);

/*
 * Run one command (argc words) on the servers of s, in order, by
 * deadline, on *conn: connected first if it is NULL, left connected on
 * success (the caller closes it, or keeps it for the next command).  A
 * server that cannot be reached, logged in to or selected, or that
 * fails the exchange, is dropped for the next one in the time left; so
 * is a server that answers a write with READONLY (a replica), if write.
 * An error reply is a reply: 0 with *reply, which the caller frees.
 * -1 with the reason in err (each server's, in order), *conn NULL.
 */
int redis_run(struct redis **conn, const struct redis_setup *s,
    uint64_t deadline, int write, int argc, const char *const *argv,
    const size_t *lens, struct redis_reply **reply, char *err,
    size_t errsize);

/* The URL of the server conn is connected to. */
const char *redis_server(const struct redis *conn);

/* Close conn and its socket.  conn may be NULL. */
void redis_close(struct redis *conn);

void redis_reply_free(struct redis_reply *r);

/*
 * Parse len bytes as replies, as redis_run() does with what a server
 * sends: calls fn for each complete reply (which fn must free).  The
 * number of complete replies, or -1 on a protocol error or a reply
 * over the limits.  For tests and the fuzz target.
 */
long redis_parse(const char *buf, size_t len,
    void (*fn)(void *ctx, struct redis_reply *r), void *ctx);

/* -------------------------------- the pieces an event loop drives */

/*
 * What redisloop.h builds on: a connection that never waits.  Start a
 * non-blocking connect to server i of s, with AUTH and SELECT queued:
 * the connection, or NULL with the reason.  *pending is 1 while the
 * connect is under way: wait for the socket to be writable, then call
 * redis_connect_done(): 0, or -1 with the reason.
 */
struct redis *redis_connect_start(const struct redis_setup *s, size_t i,
    int *pending, char *err, size_t errsize);
int redis_connect_done(struct redis *c, char *err, size_t errsize);

/* The connection's socket. */
int redis_fd(const struct redis *c);

/* Queue a command behind the others: 0, or -1 (out of memory). */
int redis_queue(struct redis *c, int argc, const char *const *argv,
    const size_t *lens);

/* Send what the socket takes now: 0 with *left still to go, or -1. */
int redis_flush(struct redis *c, size_t *left, char *err, size_t errsize);

/*
 * Read what has come, without waiting, and hand each whole reply to fn
 * in order (fn frees it); the replies to AUTH and SELECT are checked
 * here, not handed on.  0, or -1 with the reason (closed, an error, a
 * bad reply, AUTH or SELECT refused).
 */
int redis_take(struct redis *c, void (*fn)(void *ctx, struct redis_reply *r),
    void *ctx, char *err, size_t errsize);

/* Copy server text into dst for a message: printable ASCII, cut short. */
void redis_clean(char *dst, size_t size, const char *src, size_t len);

#endif
