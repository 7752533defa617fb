/* waiters.c - the count of waiting connections; see waiters.h. */
#include "waiters.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "safefile.h"

#define FREE 0			/* the set's one semaphore */
#define LINK_TEXT_MAX 72	/* "ID:CTIME:NS"; longer: not a name */
#define LINK_NEW "count.new"	/* a new link, before it is put in place */
#define LOOKS 3			/* named meanwhile by another: look again */
#define RENAMING_MS 500		/* the longest wait for another's renaming */

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

int
waiters_parse_name(const char *text, size_t n, struct waiters_name *nm)
{
	const char *p = text, *end = text + n;
	unsigned long long id;

	if (decimal(&p, end, INT_MAX, &id) != 0 || p == end || *p++ != ':' ||
	    decimal(&p, end, ULLONG_MAX, &nm->made) != 0 || p == end ||
	    *p++ != ':' || decimal(&p, end, ULLONG_MAX, &nm->ns) != 0 ||
	    p != end)
		return -1;
	nm->id = (int)id;
	return 0;
}

/* The inode of this process's IPC namespace; 0 if it cannot be told. */
static unsigned long long
this_ns(void)
{
	struct stat st;

	return stat("/proc/self/ns/ipc", &st) == 0 ?
	    (unsigned long long)st.st_ino : 0;
}

/*
 * Is set nm->id still the one named (made at nm->made) and ours, as
 * waiters.h says?  If not, the set named is gone (a reboot, ipcrm) and
 * the id is free or another's: the link is stale.
 */
static int
in_use(const struct waiters_name *nm)
{
	struct semid_ds ds;
	union semun arg = { .buf = &ds };
	uid_t me = geteuid();

	return semctl(nm->id, 0, IPC_STAT, arg) == 0 &&
	    (unsigned long long)ds.sem_ctime == nm->made &&
	    ds.sem_perm.cuid == me && ds.sem_perm.uid == me &&
	    (ds.sem_perm.mode & 0777) == 0600 && ds.sem_nsems == 1;
}

/* Remove a set of ours that was never named, keeping errno. */
static void
drop_set(int id)
{
	int err = errno;

	semctl(id, 0, IPC_RMID);
	errno = err;
}

/* A new set, filled: its id, with the time it was made in *made; or -1
 * with errno. */
static int
make_set(unsigned long long *made)
{
	struct sembuf fill = { FREE, WAITERS_MAX, 0 };
	struct semid_ds ds;
	union semun arg = { .buf = &ds };
	int id;

	if ((id = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600)) < 0)
		return -1;
	if (semop(id, &fill, 1) == 0 && semctl(id, 0, IPC_STAT, arg) == 0) {
		*made = (unsigned long long)ds.sem_ctime;
		return id;
	}
	drop_set(id);
	return -1;
}

/* The link's text into text (LINK_TEXT_MAX bytes): its length; 0 if
 * there is none; or -1 with errno (EINVAL: not a symbolic link). */
static ssize_t
read_link(const char *path, char *text)
{
	ssize_t n = readlink(path, text, LINK_TEXT_MAX);

	if (n < 0 && errno == ENOENT)
		return 0;
	return n;
}

/* A new set, filled, and a new link at at naming it: the set's id, or
 * -1 with errno (no set left behind). */
static int
make_linked(const char *at, unsigned long long ns)
{
	char text[LINK_TEXT_MAX];
	unsigned long long made;
	int id;

	if ((id = make_set(&made)) < 0)
		return -1;
	snprintf(text, sizeof text, "%d:%llu:%llu", id, made, ns);
	if (symlink(text, at) == 0)
		return id;
	drop_set(id);
	return -1;
}

/* A new set, named by a new link at path: its id; -2 if a link was made
 * meanwhile (look again); or -1 with errno. */
static int
name_new(const char *path, unsigned long long ns)
{
	int id = make_linked(path, ns);

	return id < 0 && errno == EEXIST ? -2 : id;
}

/* Lock dir (flock on it) for a rename, waiting RENAMING_MS at most: its
 * descriptor, or -1 with errno. */
static int
lock_dir(const char *dir)
{
	struct timespec nap = { 0, 2 * 1000 * 1000 };
	int fd, tries, err;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	for (tries = 0; tries < RENAMING_MS / 2; tries++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		if (errno != EWOULDBLOCK && errno != EINTR)
			break;
		nanosleep(&nap, NULL);
	}
	err = errno == EWOULDBLOCK ? ETIMEDOUT : errno;
	close(fd);
	errno = err;
	return -1;
}

/*
 * Replace the stale link at path (whose text was stale, n bytes) by a
 * new set's, renamed over it while dir is locked, so that of those who
 * found it stale only the first makes a set: its id; -2 if the link
 * changed meanwhile (look again); or -1 with errno.
 */
static int
name_again(const char *dir, const char *path, const char *stale, ssize_t n,
    unsigned long long ns)
{
	char text[LINK_TEXT_MAX], tmp[PATH_MAX], why[8];
	int lock, id = -2, err;

	if ((lock = lock_dir(dir)) < 0)
		return -1;
	if (read_link(path, text) != n || memcmp(text, stale, (size_t)n) != 0)
		goto done;
	id = -1;
	if (dir_path(tmp, dir, LINK_NEW, why, sizeof why) != 0)
		goto done;
	unlink(tmp);		/* left by one killed here, or failed */
	if ((id = make_linked(tmp, ns)) >= 0 && rename(tmp, path) != 0) {
		drop_set(id);
		id = -1;
	}
done:
	err = errno;
	close(lock);
	errno = err;
	return id;
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
	unsigned long long ns;
	struct waiters_name nm;
	int id, look, named;
	ssize_t n;

	if (safe_dir_mine(dir, why, size) != 0 ||
	    dir_path(path, dir, WAITERS_LINK, why, size) != 0)
		return -1;
	for (look = 0; look < LOOKS; look++) {
		if ((n = read_link(path, text)) < 0)
			return safe_fail(why, size, errno, "%s: %s", path,
			    errno == EINVAL ? "not a symbolic link (not made "
			    "by sendwrap)" : strerror(errno));
		named = n > 0 && n < LINK_TEXT_MAX &&
		    waiters_parse_name(text, (size_t)n, &nm) == 0;
		if (named && in_use(&nm))
			return nm.id;	/* the common case */
		ns = this_ns();
		/* Another namespace's set cannot be seen from here, and two
		 * namespaces replacing each other's would leave sets behind
		 * for ever: one of them must be told. */
		if (named && nm.ns != ns && nm.ns != 0 && ns != 0)
			return safe_fail(why, size, EXDEV, "%s: names a set of "
			    "another IPC namespace (ipc:[%llu], this is "
			    "ipc:[%llu]); remove it if that one is gone", path,
			    nm.ns, ns);
		if (!create)
			return -2;
		id = n == 0 ? name_new(path, ns) :
		    name_again(dir, path, text, n, ns);
		if (id >= 0)
			return id;
		if (id == -1)
			return safe_fail(why, size, errno, "%s: cannot name a "
			    "new semaphore set: %s", path, strerror(errno));
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
