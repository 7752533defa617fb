/*
 * waiters.h - how many connections are waiting out their delay at once,
 * across every sendwrap process that names the same --state-dir: the
 * count behind --stress, and behind --slots in delay mode.
 *
 * A waiting connection holds a place: a lock (an open file description
 * lock, F_OFD_SETLK) on byte K of DIR/waiting, K below the number of
 * places.  The kernel drops the lock when the descriptor is closed, at
 * the latest when the process ends however it ends (exit, crash,
 * SIGKILL), so the locks are the truth and a dead holder cannot keep
 * its place.
 *
 * Trying each lock in turn would cost a system call per place (and the
 * kernel walks every lock of the file for each): far too much at 500
 * waiting.  So the file also holds a bitmap of the places taken, shared
 * through mmap: a taker looks for a clear bit, locks that byte and sets
 * the bit; a leaver clears its bit, then unlocks.  The count is the
 * number of bits set, a few dozen instructions for a thousand places.
 * A process killed while waiting leaves its bit set over a free lock;
 * such a stale bit is found, and cleared under its lock so that no taker
 * can race the repair, whenever the count would turn a client away or
 * shorten its wait, unless that was checked in the last
 * WAITERS_CHECK_MS: a killed holder's place is counted free again within
 * that time, and a flood costs one check of every lock per period, not
 * per connection.
 *
 * The directory and the file are checked before use as the cache's are:
 * the directory owned by root or the effective user and not writable by
 * group or others, the file a regular file of ours with one link, made
 * with O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC and mode 0600, never
 * followed (waiters_open_state(), the one place that does it).
 *
 * Contract: no logging, no allocation (one mmap), no signals.  The
 * descriptor is O_CLOEXEC; release the place before an exec all the
 * same, or its bit stays set until the next check.
 */
#ifndef SENDWRAP_WAITERS_H
#define SENDWRAP_WAITERS_H

#include <stddef.h>

#define WAITERS_MAX 100000	/* places: more than any host can hold */
#define WAITERS_CHECK_MS 1000	/* stale bits are looked for this often */
#define WAITERS_FILE "waiting"	/* in the state directory */

/* Outcomes of waiters_join(). */
#define WAITERS_IN 0		/* a place is held */
#define WAITERS_FULL 1		/* every place is held */
#define WAITERS_ERROR (-1)	/* the state directory cannot be used */

struct waiters_map;

/* One connection's place. */
struct waiters {
	int fd;				/* -1: none held */
	struct waiters_map *map;
	unsigned place;
};

/*
 * Take one of places (1 to WAITERS_MAX) in dir for this connection.
 * WAITERS_IN with *others the places held by others (exact but for
 * holders killed in the last WAITERS_CHECK_MS), checked for stale bits
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

/*
 * The state file dir/name, opened read and write, made if missing
 * (create); the checks above.  A descriptor, or -1 with errno and why.
 */
int waiters_open_state(const char *dir, const char *name, int create,
    char *why, size_t size);

#endif
