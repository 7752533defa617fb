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
 * that is read (readlink), never followed, whose text is "ID:CTIME:NS",
 * the set's id, the time it was made (sem_ctime) and the inode of the
 * IPC namespace it lives in, in decimal.  The set has no key
 * (IPC_PRIVATE), so nobody can make it first, and only the directory's
 * owner (or root) can say which set counts: DIR must belong to the
 * effective user itself (safe_dir_mine), so that sendwrap processes of
 * two users never take turns replacing each other's sets.  A set is used
 * only while it is still the one named (its time matches) and is ours:
 * made and owned by the effective user, mode 0600, one semaphore.
 *
 * A set is made, filled, then named: by symlink(2) when there is no link
 * (the first namer wins, a loser removes its own set and looks again),
 * or, when the link is stale (its set gone after a reboot or ipcrm, its
 * id another's, or its text no name), by a new link renamed over it
 * while DIR is locked (flock, waited for RENAMING_MS at most), so that
 * one of those who found it stale replaces it and the others use the
 * new set.  A link from another IPC namespace is not replaced: the
 * namespaces would take turns for ever.  A sendwrap killed between
 * making a set and naming it leaves the set behind (ipcrm).  Every
 * sendwrap sharing a count must share the IPC namespace (systemd's
 * PrivateIPC=); RemoveIPC= would remove the set under the waiting.
 *
 * The directory is checked as the cache's is (safefile.h), and owned by
 * the effective user.
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

/* A link's text, "ID:CTIME:NS": what it says. */
struct waiters_name {
	int id;				/* the set */
	unsigned long long made;	/* its sem_ctime */
	unsigned long long ns;		/* its IPC namespace's inode */
};

/*
 * Parse a link's text, n bytes (no NUL needed): three decimal numbers
 * joined by ':', the first at most INT_MAX, the others at most
 * ULLONG_MAX, nothing else.  0, or -1: not a name (a stale link).  The
 * text comes from the file system, whatever left the link there: public
 * for its fuzz target (tests/fuzz/fuzz_countlink.c), of no other use
 * outside this module.
 */
int waiters_parse_name(const char *text, size_t n, struct waiters_name *nm);

#endif
