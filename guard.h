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
 * LMDB also waits without a limit: for the lock file's fcntl lock while
 * another process sets it up, and on the robust mutexes of its reader
 * table and writer.  A process stopped (SIGSTOP, a debugger) or hung
 * while holding one would stall every connection.  So a wait inside
 * guard_run() can be bounded: guard_wait(ms) before the LMDB call that
 * may block, guard_waited() after it.  If it is still blocked after ms,
 * a timer's SIGALRM jumps out of it as a fault does (GUARD_FAULT, the
 * reason says it timed out), and what it was working on is as dead.
 *
 * The signal handlers (SIGSEGV, SIGBUS, SIGALRM) are in place while any
 * user holds the guard (guard_hold() to guard_release(): a few system
 * calls per connection, not per call), and act only inside guard_run():
 * a fault anywhere else gets the default action, a stray SIGALRM is
 * ignored.  The timer is a POSIX timer of our own (no interval timer of
 * the caller's is touched), armed only during a bounded wait, and gone
 * with the last release, which also puts back the caller's dispositions
 * and signal mask.
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

/* Inside guard_run(): bound the wait that follows to ms, until
 * guard_waited().  Without a timer (none could be made) it is unbounded. */
void guard_wait(unsigned ms);
void guard_waited(void);

/* For mdb_env_set_assert(): an assertion inside guard_run() faults. */
void guard_on_assert(struct MDB_env *env, const char *msg);

#endif
