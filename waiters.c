/* waiters.c - the count of waiting connections; see waiters.h. */
#include "waiters.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <unistd.h>

#include "safefile.h"

#define FREE 0			/* the set's one semaphore */
#define LINK_TEXT_MAX 48	/* "ID:CTIME"; longer: not ours */
#define LOOKS 3			/* named meanwhile by another: look again */

/* semctl(2)'s fourth argument, which the caller must declare. */
union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

/* dir/name into path (PATH_MAX bytes), or -1 with why.  (No printf on
 * the way: its first use in a process costs more than the count.) */
static int
dir_path(char *path, const char *dir, const char *name, char *why,
    size_t size)
{
	size_t d = strlen(dir), n = strlen(name);

	if (d + 1 + n + 1 > PATH_MAX)
		return safe_fail(why, size, ENAMETOOLONG, "%s: %s", dir,
		    strerror(ENAMETOOLONG));
	memcpy(path, dir, d);
	path[d] = '/';
	memcpy(path + d + 1, name, n + 1);
	return 0;
}

/* The decimal digits at *p (before end), at most max: 0 with the value
 * in *v and *p past them, or -1. */
static int
decimal(const char **p, const char *end, unsigned long long max,
    unsigned long long *v)
{
	const char *s = *p;

	for (*v = 0; s < end && *s >= '0' && *s <= '9'; s++) {
		if (*v > (max - (unsigned)(*s - '0')) / 10)
			return -1;
		*v = *v * 10 + (unsigned)(*s - '0');
	}
	if (s == *p)
		return -1;
	*p = s;
	return 0;
}

/* The link's text, "ID:CTIME" (n bytes): 0 with *id and *made, or -1. */
static int
parse_name(const char *text, size_t n, int *id, unsigned long long *made)
{
	const char *p = text, *end = text + n;
	unsigned long long v;

	if (decimal(&p, end, INT_MAX, &v) != 0 || p == end || *p++ != ':' ||
	    decimal(&p, end, ULLONG_MAX, made) != 0 || p != end)
		return -1;
	*id = (int)v;
	return 0;
}

/* What a link names. */
enum named { NAMED_OURS, NAMED_GONE, NAMED_FOREIGN };

/*
 * Is set id, named as made at made, still there and ours (waiters.h)?
 * Gone: no such set, or another made since under its id (a reboot,
 * ipcrm); the link may be replaced.  Foreign: the set is there but not
 * ours (why says how); it is not used, and not replaced either, lest two
 * users sharing a directory replace each other's sets for ever.
 */
static enum named
named(int id, unsigned long long made, const char *path, char *why,
    size_t size)
{
	struct semid_ds ds;
	union semun arg = { .buf = &ds };
	uid_t me = geteuid();

	if (semctl(id, 0, IPC_STAT, arg) != 0) {
		if (errno == EINVAL || errno == EIDRM)
			return NAMED_GONE;
		safe_fail(why, size, errno, "%s: set %d: %s", path, id,
		    strerror(errno));
		return NAMED_FOREIGN;
	}
	if ((unsigned long long)ds.sem_ctime != made)
		return NAMED_GONE;
	if (ds.sem_perm.cuid != me || ds.sem_perm.uid != me ||
	    (ds.sem_perm.mode & 0777) != 0600 || ds.sem_nsems != 1) {
		safe_fail(why, size, EACCES, "%s: set %d is not ours (made by "
		    "uid %lu, owned by uid %lu, mode %03o, %lu semaphores; "
		    "sendwrap runs as uid %lu)", path, id,
		    (unsigned long)ds.sem_perm.cuid,
		    (unsigned long)ds.sem_perm.uid,
		    (unsigned)(ds.sem_perm.mode & 0777),
		    (unsigned long)ds.sem_nsems, (unsigned long)me);
		return NAMED_FOREIGN;
	}
	return NAMED_OURS;
}

/* A new set, filled: its id, with the time it was made in *made; or -1
 * with errno. */
static int
make_set(unsigned long long *made)
{
	struct sembuf fill = { FREE, WAITERS_MAX, 0 };
	struct semid_ds ds;
	union semun arg = { .buf = &ds };
	int id, err;

	if ((id = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600)) < 0)
		return -1;
	if (semop(id, &fill, 1) == 0 && semctl(id, 0, IPC_STAT, arg) == 0) {
		*made = (unsigned long long)ds.sem_ctime;
		return id;
	}
	err = errno;
	semctl(id, 0, IPC_RMID);
	errno = err;
	return -1;
}

/*
 * Name set id (made at made) in path: a new link, or (replace) one put
 * over a stale link.  0 if it is named; 1 if another set was named
 * first (look again); -1 with errno.
 */
static int
name_set(const char *path, int id, unsigned long long made, int replace)
{
	char text[LINK_TEXT_MAX], tmp[PATH_MAX + 32];

	snprintf(text, sizeof text, "%d:%llu", id, made);
	if (!replace) {
		if (symlink(text, path) == 0)
			return 0;
		return errno == EEXIST ? 1 : -1;
	}
	/* Made aside, then put over the stale one in one step. */
	snprintf(tmp, sizeof tmp, "%s.%ld", path, (long)getpid());
	unlink(tmp);
	if (symlink(text, tmp) != 0)
		return -1;
	if (rename(tmp, path) == 0)
		return 0;
	unlink(tmp);
	return -1;
}

/*
 * The set dir names, if it is in use; if not, and create, a new one,
 * named there.  Its id; -2 if none is in use (and not create); or -1
 * with errno and why.
 */
static int
open_set(const char *dir, int create, char *why, size_t size)
{
	char path[PATH_MAX], text[LINK_TEXT_MAX];
	unsigned long long made;
	int id, look, r;
	ssize_t n;

	if (safe_dir(dir, why, size) != 0 ||
	    dir_path(path, dir, WAITERS_LINK, why, size) != 0)
		return -1;
	for (look = 0; look < LOOKS; look++) {
		if ((n = readlink(path, text, sizeof text)) < 0 &&
		    errno != ENOENT)
			return safe_fail(why, size, errno, "%s: %s", path,
			    errno == EINVAL ? "not a symbolic link (not made "
			    "by sendwrap)" : strerror(errno));
		if (n >= 0 && (size_t)n < sizeof text &&
		    parse_name(text, (size_t)n, &id, &made) == 0)
			switch (named(id, made, path, why, size)) {
			case NAMED_OURS:
				return id;	/* the common case */
			case NAMED_FOREIGN:
				return -1;
			case NAMED_GONE:
				break;
			}
		if (!create)
			return -2;
		if ((id = make_set(&made)) < 0)
			return safe_fail(why, size, errno, "%s: cannot make a "
			    "semaphore set: %s", dir, strerror(errno));
		if ((r = name_set(path, id, made, n >= 0)) == 0)
			return id;
		semctl(id, 0, IPC_RMID);
		if (r < 0)
			return safe_fail(why, size, errno, "%s: %s", path,
			    strerror(errno));
	}
	return safe_fail(why, size, EAGAIN, "%s: changed %d times while "
	    "read", path, LOOKS);
}

int
waiters_join(struct waiters *w, const char *dir, unsigned places,
    unsigned *others, char *why, size_t size)
{
	struct sembuf take[3];
	short room;
	int left;

	w->set = -1;
	*others = places;
	if (places == 0 || places > WAITERS_MAX) {
		safe_fail(why, size, EINVAL, "%u places", places);
		return WAITERS_ERROR;
	}
	if ((w->set = open_set(dir, 1, why, size)) < 0)
		return WAITERS_ERROR;
	/* Applied together or not at all: taking room is possible only
	 * while fewer than places are held; it is given back, and one is
	 * taken for this connection, for the kernel to undo at its end.
	 * (IPC_NOWAIT: semop never sleeps here, so no EINTR.) */
	room = (short)(WAITERS_MAX - places + 1);
	take[0] = (struct sembuf){ FREE, (short)-room, IPC_NOWAIT };
	take[1] = (struct sembuf){ FREE, room, 0 };
	take[2] = (struct sembuf){ FREE, -1, IPC_NOWAIT | SEM_UNDO };
	if (semop(w->set, take, 3) != 0) {
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
	/* A positive operation never sleeps.  Failing (the set removed by
	 * hand), there is nothing left to give back. */
	semop(w->set, &give, 1);
	w->set = -1;
	errno = err;
}

int
waiters_check(const char *dir, unsigned *waiting, char *why, size_t size)
{
	int id, left;

	*waiting = 0;
	if ((id = open_set(dir, 0, why, size)) < 0)
		return id == -2 ? 0 : -1;	/* made on first use */
	if ((left = semctl(id, FREE, GETVAL)) < 0)
		return safe_fail(why, size, errno, "%s: %s", dir,
		    strerror(errno));
	*waiting = WAITERS_MAX - (unsigned)left;
	return 0;
}
