/* waiters.c - the count of waiting connections; see waiters.h. */
#include "waiters.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safefile.h"

#define FREE 0			/* the set's one semaphore */

/* The key of dir's set, from its stat: see waiters.h. */
static key_t
set_key(const struct stat *st)
{
	uint64_t parts[2] = { (uint64_t)st->st_dev, (uint64_t)st->st_ino };
	uint32_t h = 2166136261u;
	unsigned i, b;

	for (i = 0; i < 2; i++)
		for (b = 0; b < 8; b++) {
			h ^= (uint32_t)(parts[i] >> (8 * b)) & 0xff;
			h *= 16777619u;
		}
	return h == IPC_PRIVATE ? 1 : (key_t)h;
}

/* Is set (key) ours, as waiters.h says?  0, or -1 with why.  Fills *ds. */
static int
check_set(int set, key_t key, struct semid_ds *ds, char *why, size_t size)
{
	uid_t me = geteuid(), theirs;

	if (semctl(set, 0, IPC_STAT, ds) != 0)
		return safe_fail(why, size, errno, "semaphore key 0x%08x: %s",
		    (unsigned)key, strerror(errno));
	/* Its maker can give it to anyone: both must be us. */
	theirs = ds->sem_perm.cuid != me ? ds->sem_perm.cuid : ds->sem_perm.uid;
	if (theirs != me)
		return safe_fail(why, size, EACCES, "semaphore key 0x%08x: "
		    "made or owned by uid %lu, not by uid %lu that sendwrap "
		    "runs as", (unsigned)key, (unsigned long)theirs,
		    (unsigned long)me);
	if ((ds->sem_perm.mode & 0777) != 0600 || ds->sem_nsems != 1)
		return safe_fail(why, size, EINVAL, "semaphore key 0x%08x: "
		    "mode %03o with %lu semaphores, not 600 with 1",
		    (unsigned)key, (unsigned)(ds->sem_perm.mode & 0777),
		    (unsigned long)ds->sem_nsems);
	return 0;
}

/* Fill a set nobody has used yet; a second filling is refused (ERANGE). */
static int
fill(int set)
{
	struct sembuf op = { FREE, WAITERS_MAX, 0 };
	int r;

	do
		r = semop(set, &op, 1);
	while (r != 0 && errno == EINTR);
	return r == 0 || errno == ERANGE ? 0 : -1;
}

/* dir's set, checked (*ds: its state), made and filled if need be
 * (create): its id, or -1 with errno and why (ENOENT from semget: there
 * is none, and not create). */
static int
open_set(const char *dir, int create, struct semid_ds *ds, char *why,
    size_t size)
{
	struct stat st;
	key_t key;
	int set;

	if (safe_dir(dir, &st, why, size) != 0)
		return -1;
	key = set_key(&st);
	if ((set = semget(key, 1, create ? IPC_CREAT | 0600 : 0)) < 0)
		return safe_fail(why, size, errno, "%s: semaphore key "
		    "0x%08x: %s", dir, (unsigned)key, strerror(errno));
	if (check_set(set, key, ds, why, size) != 0)
		return -1;
	/* Never used: made just now, or its maker died before filling it. */
	if (ds->sem_otime == 0 && create && fill(set) != 0)
		return safe_fail(why, size, errno, "%s: semaphore key "
		    "0x%08x: %s", dir, (unsigned)key, strerror(errno));
	return set;
}

int
waiters_join(struct waiters *w, const char *dir, unsigned places,
    unsigned *others, char *why, size_t size)
{
	/* Applied together or not at all: taking room is possible only
	 * while fewer than places are held; it is given back, and one is
	 * taken for this connection, for the kernel to undo at its end. */
	short room = (short)(WAITERS_MAX - places + 1);
	struct sembuf take[3] = {
		{ FREE, (short)-room, IPC_NOWAIT },
		{ FREE, room, 0 },
		{ FREE, -1, IPC_NOWAIT | SEM_UNDO },
	};
	struct semid_ds ds;
	int left, r;

	w->set = -1;
	*others = places;
	if (places == 0 || places > WAITERS_MAX) {
		safe_fail(why, size, EINVAL, "%u places", places);
		return WAITERS_ERROR;
	}
	if ((w->set = open_set(dir, 1, &ds, why, size)) < 0)
		return WAITERS_ERROR;
	do
		r = semop(w->set, take, 3);
	while (r != 0 && errno == EINTR);
	if (r != 0) {
		w->set = -1;
		if (errno == EAGAIN)
			return WAITERS_FULL;
		safe_fail(why, size, errno, "%s: %s", dir, strerror(errno));
		return WAITERS_ERROR;
	}
	if ((left = semctl(w->set, FREE, GETVAL)) < 0) {
		safe_fail(why, size, errno, "%s: %s", dir, strerror(errno));
		waiters_leave(w);
		return WAITERS_ERROR;
	}
	*others = WAITERS_MAX - (unsigned)left - 1;
	return WAITERS_IN;
}

void
waiters_leave(struct waiters *w)
{
	struct sembuf give = { FREE, 1, SEM_UNDO };
	int err = errno;

	if (w->set < 0)
		return;
	/* A positive operation never waits.  Failing (the set removed by
	 * hand), there is nothing left to give back. */
	while (semop(w->set, &give, 1) != 0 && errno == EINTR)
		;
	w->set = -1;
	errno = err;
}

int
waiters_check(const char *dir, unsigned *waiting, char *why, size_t size)
{
	struct semid_ds ds;
	int set, left;

	*waiting = 0;
	if (safe_dir(dir, NULL, why, size) != 0)
		return -1;
	if ((set = open_set(dir, 0, &ds, why, size)) < 0)
		/* Made on first use: missing is as it should be. */
		return errno == ENOENT ? 0 : -1;
	if (ds.sem_otime == 0)
		return 0;	/* never filled: nobody has waited */
	if ((left = semctl(set, FREE, GETVAL)) < 0)
		return safe_fail(why, size, errno, "%s: %s", dir,
		    strerror(errno));
	*waiting = WAITERS_MAX - (unsigned)left;
	return 0;
}
