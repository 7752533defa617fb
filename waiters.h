/*
 * waiters.h - how many connections are waiting out their delay at once,
 * across every sendwrap process that names the same --state-dir: the
 * count behind --stress, and behind --slots in delay mode.
 *
 * The count is a System V semaphore: a set of one semaphore, FREE, that
 * starts at WAITERS_MAX (the kernel's largest semaphore value).  A
 * waiting connection takes one from it with SEM_UNDO, so the kernel
 * gives it back when the process ends, however it ends (exit, crash,
 * SIGKILL): a dead holder cannot keep its place, and the count, WAITERS_MAX
 * less FREE, is exact at every moment, with nothing to repair.  Taking a
 * place under a cap of N is one semop(2) of three operations, applied
 * together or not at all: take WAITERS_MAX - N + 1 (which fails,
 * IPC_NOWAIT, when N are held), put them back, take one.  A connection
 * costs the same at 5 or 5000 waiting.
 *
 * The state directory holds the set's name: DIR/count, a symbolic link
 * that is read (readlink), never followed, whose text is "ID:CTIME", the
 * set's id and the time it was made (sem_ctime), in decimal.  The set
 * has no key (IPC_PRIVATE): nobody can make one in its stead, and only
 * who may write DIR can say which set counts.  A set is used only if it
 * still is the one named (its time matches), was made and is owned by
 * the effective user, mode 0600, with one semaphore.  The set is made,
 * filled, then named (symlink: the first namer wins, a loser removes its
 * own set); a link naming a set that is gone (a reboot, ipcrm) or is not
 * as it must be is replaced (rename).  Two processes replacing the same
 * stale link at once can leave one set behind, unused (ipcrm removes
 * it).  Every sendwrap sharing a count must share the IPC namespace
 * (systemd's PrivateIPC=); RemoveIPC= would remove the set under it.
 *
 * The directory is checked as the cache's is (safefile.h): owned by root
 * or the effective user, not writable by group or others, so only they
 * can make or change the link.
 *
 * Contract: no logging, no allocation, no signals.  The place is held by
 * the process: give it back before an exec, or the program run holds it
 * until it ends.
 */
#ifndef SENDWRAP_WAITERS_H
#define SENDWRAP_WAITERS_H

#include <stddef.h>

#define WAITERS_MAX 32767	/* places: SEMVMX, a semaphore's top */
#define WAITERS_LINK "count"	/* in the state directory */

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
 * Check dir as waiters_join() would, making and changing nothing (for
 * -n): 0 with the number waiting now in *waiting (0 when dir names no
 * set in use), or -1 with one line in why.
 */
int waiters_check(const char *dir, unsigned *waiting, char *why,
    size_t size);

#endif
