/*
 * slots.h - at most N connections held at once, across every sendwrap
 * process (the cap that keeps a tarpit from clogging its host).
 *
 * A slot is a lock file DIR/slot.K (K from 0 to N-1), created when
 * missing (mode 0600) and held with flock(LOCK_EX | LOCK_NB) on a
 * read-only descriptor of our own.  DIR and the files are checked first
 * (safefile.h): anyone who could write DIR could otherwise pin every
 * slot, or have root open what they like.  The kernel drops the lock when that descriptor
 * is closed, which happens at the latest when the process ends however
 * it ends (exit, crash, SIGKILL): a slot can never be leaked by a dead
 * holder, and no cleanup or shared counter is needed.  The files are
 * never removed; their contents are never read or written.
 *
 * Contract: no logging, no allocation, no signals.  The descriptor is
 * O_CLOEXEC, so a slot never outlives an exec.  Symbolic links are never
 * followed, and a FIFO never blocks the open.
 */
#ifndef SENDWRAP_SLOTS_H
#define SENDWRAP_SLOTS_H

#include <stddef.h>

#define SLOTS_MAX 100000	/* more than any host can hold anyway */

/* Outcome of slots_take() besides a descriptor (>= 0). */
#define SLOTS_NONE (-1)		/* every slot is held */
#define SLOTS_ERROR (-2)	/* a lock file could not be opened: errno */

/*
 * Take one of the n slots in dir.  Tries each slot once, starting at one
 * picked from the process id (so that concurrent takers do not all race
 * for slot 0).  Returns the held descriptor (keep it open for as long as
 * the connection is held; slots_release() or exit gives it back), and
 * the slot number in *slot; or SLOTS_NONE; or SLOTS_ERROR with errno
 * and one line in why.
 */
int slots_take(const char *dir, unsigned n, unsigned *slot, char *why,
    size_t size);

/* Give a slot back before the process ends. */
void slots_release(int fd);

#endif
