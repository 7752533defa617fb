/*
 * redisloop.h - Redis for an event loop (the listener): commands go out
 * as they come, pipelined across clients on one connection, and their
 * replies come back in order to callbacks, each within its own deadline
 * (--redis-timeout from when it was asked).  Nothing here waits: the
 * loop watches redisloop_fd() for redisloop_events(), calls
 * redisloop_io() when the socket is ready and redisloop_expire() at
 * redisloop_deadline().
 *
 * Failures: a server that cannot be reached, refuses AUTH or SELECT,
 * closes, sends garbage, or leaves the oldest command unanswered past
 * its deadline loses the connection; every command waiting on it is
 * answered "failed" at once (a client's lookup is a miss, never a
 * refusal), and the next server of the setup is tried for what comes
 * next.  When the last one has failed, commands are refused at once for
 * retry_ms (a dead Redis must cost a loop nothing), then the first
 * server is tried again.  on_down is told each time a connection is
 * lost, with the reason.
 *
 * Contract: no logging; callbacks run from redisloop_io(),
 * redisloop_expire() and redisloop_free() only, never from
 * redisloop_command(); a callback may issue commands.  The socket is
 * close-on-exec.
 */
#ifndef SENDWRAP_REDISLOOP_H
#define SENDWRAP_REDISLOOP_H

#include <stddef.h>
#include <stdint.h>

#include "redis.h"

/*
 * A command's answer: the reply (freed after the call), or NULL with why
 * it failed.
 */
typedef void (*redisloop_fn)(void *ctx, const struct redis_reply *r,
    const char *why);

struct redisloop;

/*
 * For the servers of s (kept by reference, the password too), each
 * command answered within timeout_ms; retry_ms after the last server
 * failed.  NULL when out of memory.
 */
struct redisloop *redisloop_new(const struct redis_setup *s,
    uint64_t timeout_ms, uint64_t retry_ms,
    void (*on_down)(void *ctx, const char *why), void *down_ctx);

/*
 * Send a command (a write: a READONLY answer fails the server as in
 * redis.h).  0: fn will be called once with its answer; -1: Redis is
 * not asked now (no server answers: within retry_ms of the last
 * failure, or out of memory), and fn is not called.
 */
int redisloop_command(struct redisloop *rl, int write, int argc,
    const char *const *argv, const size_t *lens, redisloop_fn fn,
    void *ctx);

/* Forget every answer due to ctx: fn is not called for them. */
void redisloop_cancel(struct redisloop *rl, void *ctx);

/* The socket to watch (-1: none now), and for what: POLLIN, POLLOUT. */
int redisloop_fd(const struct redisloop *rl);
short redisloop_events(const struct redisloop *rl);

/* The socket is ready for what redisloop_events() said. */
void redisloop_io(struct redisloop *rl, int readable, int writable);

/* When redisloop_expire() is due (UINT64_MAX: never), on mono_ms(). */
uint64_t redisloop_deadline(const struct redisloop *rl);
void redisloop_expire(struct redisloop *rl);

/* Is Redis being asked now (not within retry_ms of a failure)? */
int redisloop_up(const struct redisloop *rl);

/* Close the connection; every answer still due is "failed". */
void redisloop_free(struct redisloop *rl);

#endif
