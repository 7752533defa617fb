/*
 * waiters.h - how many connections are waiting out their delay at once,
 * across every sendwrap process that names the same --state-dir: the
 * count behind --stress, and behind --slots in delay mode.
 *
 * The count is a System V semaphore that belongs to the state directory:
 * a set of one semaphore, FREE, whose key is made from the directory's
 * device and inode numbers (below).  FREE starts at WAITERS_MAX (the
 * kernel's largest semaphore value); a waiting connection takes one from
 * it with SEM_UNDO, so the kernel gives it back when the process ends,
 * however it ends (exit, crash, SIGKILL): a dead holder cannot keep its
 * place, and the count, WAITERS_MAX less FREE, is exact at every moment,
 * with nothing to repair.  Taking a place under a cap of N is one
 * semop(2) of three operations, applied together or not at all: take
 * WAITERS_MAX - N + 1 (which fails, IPC_NOWAIT, when N are held), put
 * them back, take one.  A connection costs the same at 5 or 5000
 * waiting.  Nothing is written in the directory.
 *
 * The key: FNV-1a (32 bits) of the directory's st_dev then st_ino, each
 * as 8 bytes, least significant first; 0 (IPC_PRIVATE) becomes 1.  Every
 * sendwrap sharing a count must share the IPC namespace (systemd's
 * PrivateIPC= gives a service one of its own); a directory made anew
 * starts a count of its own, and the old set stays until ipcrm(1) or a
 * reboot.
 *
 * The directory is checked as the cache's is (safefile.h): owned by root
 * or the effective user, not writable by group or others.  The set must
 * be the effective user's (creator and owner), mode 0600, with one
 * semaphore: a set someone else made first under the key is refused, not
 * used.  A set made and not yet filled (its maker died in between) is
 * filled by whoever finds it so: the kernel refuses a second filling
 * (ERANGE), so it happens once.
 *
 * Contract: no logging, no allocation, no signals.  The place is held by
 * the process: give it back before an exec, or the program run holds it
 * until it ends.
 */
#ifndef SENDWRAP_WAITERS_H
#define SENDWRAP_WAITERS_H

#include <stddef.h>

#define WAITERS_MAX 32767	/* places: SEMVMX, a semaphore's top */

/* Outcomes of waiters_join(). */
#define WAITERS_IN 0		/* a place is held */
#define WAITERS_FULL 1		/* every place is held */
#define WAITERS_ERROR (-1)	/* the state directory cannot be used */

/* One connection's place. */
struct waiters {
	int set;		/* the semaphore set; -1: no place held */
};

#define WAITERS_NONE { -1 }

/*
 * Take one of places (1 to WAITERS_MAX) in dir for this connection.
 * WAITERS_IN with *others the places held by others; WAITERS_FULL
 * (nothing held, *others = places); or WAITERS_ERROR with errno and one
 * line in why.
 */
int waiters_join(struct waiters *w, const char *dir, unsigned places,
    unsigned *others, char *why, size_t size);

/* Give the place back (nothing if none is held). */
void waiters_leave(struct waiters *w);

/*
 * Check dir as waiters_join() would, creating nothing (for -n): 0 with
 * the number waiting now in *waiting (0 if no count was ever kept
 * there), or -1 with one line in why.
 */
int waiters_check(const char *dir, unsigned *waiting, char *why,
    size_t size);

#endif
