/*
 * guard.h - run LMDB calls so that a damaged file costs an error, not
 * the process.
 *
 * LMDB trusts its file: garbage in it can make LMDB read out of bounds
 * (SIGSEGV, or SIGBUS past the end of the file) or fail an assertion
 * (which would print to fd 2, the client under inetd, and abort).  A
 * call run through guard_run() that faults or asserts jumps back out and
 * returns GUARD_FAULT with a reason; whatever it was working on must
 * then be treated as dead.
 *
 * The signal handlers are in place while any user holds the guard
 * (guard_hold() to guard_release(): a few system calls per connection,
 * not per call), and armed only inside guard_run(): a fault anywhere
 * else gets the default action.  The last release puts back the caller's
 * dispositions and signal mask.
 *
 * Contract: one guarded call at a time (no threads, not re-entered).
 */
#ifndef SENDWRAP_GUARD_H
#define SENDWRAP_GUARD_H

#include <stddef.h>

#define GUARD_FAULT (-1)	/* beside LMDB's codes (-30800 and up) */

struct MDB_env;

void guard_hold(void);
void guard_release(void);

/* fn(arg)'s result, or GUARD_FAULT with the reason in why. */
int guard_run(int (*fn)(void *arg), void *arg, char *why, size_t size);

/* For mdb_env_set_assert(): an assertion inside guard_run() faults. */
void guard_on_assert(struct MDB_env *env, const char *msg);

#endif
