/*
 * waiters.h - how many connections are waiting out their delay at once,
 * across every sendwrap process that names the same --state-dir: the
 * count behind --stress, and behind --slots in delay mode.
 *
 * A waiting connection holds a place: a lock (flock) on DIR/place.K, K
 * below the number of places, as a decoy's slot is held (slots.h).  The
 * kernel drops the lock when the descriptor is closed, at the latest
 * when the process ends however it ends (exit, crash, SIGKILL), so the
 * locks are the truth and a dead holder cannot keep its place.
 *
 * Trying each lock in turn would cost two system calls per place: far
 * too much at 500 waiting.  So DIR/waiting marks the places taken, one
 * byte each, written only by whoever holds that place's lock: a taker
 * reads the marks (one pread), locks a place marked free and marks it; a
 * leaver clears its mark, then lets go.  The count is the number of
 * marks, and a connection costs the same at 5 or 5000 waiting.  A
 * process killed while waiting leaves its mark over a free lock; such a
 * stale mark is found, and cleared under its lock so that no taker can
 * race the repair, whenever the count would turn a client away or
 * shorten its wait, unless that was checked in the last
 * WAITERS_CHECK_MS: a killed holder's place is counted free again within
 * that time, and a flood costs one look at every lock per period, not
 * per connection.
 *
 * DIR/waiting: bytes 0 to 7 the time of the last check (CLOCK_MONOTONIC
 * ms, written by whoever holds the flock of DIR/waiting itself, the
 * checker), byte 8 + K the mark of place K.  The files are never
 * removed.
 *
 * The directory and the files are checked before use as the cache's
 * are (safefile.h): the directory owned by root or the effective user
 * and not writable by group or others, each file a regular file of ours
 * with one link, made with O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC and
 * mode 0600, never followed.
 *
 * Contract: no logging, no allocation, no signals.  The descriptor is
 * O_CLOEXEC; give the place back before an exec all the same, or its
 * mark stays until the next check.
 */
#ifndef SENDWRAP_WAITERS_H
#define SENDWRAP_WAITERS_H

#include <stddef.h>

#define WAITERS_MAX 100000	/* places: more than any host can hold */
#define WAITERS_CHECK_MS 1000	/* stale marks are looked for this often */
#define WAITERS_FILE "waiting"	/* in the state directory */

/* Outcomes of waiters_join(). */
#define WAITERS_IN 0		/* a place is held */
#define WAITERS_FULL 1		/* every place is held */
#define WAITERS_ERROR (-1)	/* the state directory cannot be used */

/* One connection's place. */
struct waiters {
	int fd;				/* DIR/waiting; -1: no place held */
	int lock;			/* DIR/place.K, locked */
	unsigned place;			/* K */
};

/*
 * Take one of places (1 to WAITERS_MAX) in dir for this connection.
 * WAITERS_IN with *others the places held by others (exact but for
 * holders killed in the last WAITERS_CHECK_MS), checked for stale marks
 * first if it reaches threshold; WAITERS_FULL (nothing held); or
 * WAITERS_ERROR with errno and one line in why.
 */
int waiters_join(struct waiters *w, const char *dir, unsigned places,
    unsigned threshold, unsigned *others, char *why, size_t size);

/* Give the place back (nothing if none is held). */
void waiters_leave(struct waiters *w);

/*
 * Check dir as waiters_join() would, creating nothing (for -n): 0, or
 * -1 with one line in why.
 */
int waiters_check(const char *dir, char *why, size_t size);

#endif
