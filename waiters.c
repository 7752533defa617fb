/* waiters.c - the count of waiting connections; see waiters.h. */
#include "waiters.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conn.h"
#include "safefile.h"

#define CHECKED 0		/* the time of the last check */
#define MARKS 8			/* the mark of place K: byte MARKS + K */
#define CHUNK 4096		/* marks read at once */

/* ------------------------------------------------------ the state file */

/* dir/name into path (PATH_MAX bytes), or -1 with why.  (No printf on
 * the way: its first use in a process costs more than the join.) */
static int
state_path(char *path, const char *dir, const char *name, char *why,
    size_t size)
{
	size_t d = strlen(dir), n = strlen(name);

	if (d + 1 + n + 1 > PATH_MAX) {
		snprintf(why, size, "%s: name too long", dir);
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(path, dir, d);
	path[d] = '/';
	memcpy(path + d + 1, name, n + 1);
	return 0;
}

/* DIR/waiting, made if missing, after checking DIR and it as safefile.h
 * says: open for reading and writing, or -1 with errno and why. */
static int
open_state(const char *dir, char *why, size_t size)
{
	char path[PATH_MAX];

	if (safe_dir(dir, why, size) != 0 ||
	    state_path(path, dir, WAITERS_FILE, why, size) != 0)
		return -1;
	return safe_open_rw(path, why, size);
}

int
waiters_check(const char *dir, char *why, size_t size)
{
	char path[PATH_MAX];

	if (safe_dir(dir, why, size) != 0 ||
	    state_path(path, dir, WAITERS_FILE, why, size) != 0)
		return -1;
	/* The files are made on first use: missing is as it should be. */
	return safe_file(path, 0, NULL, why, size) == 0 || errno == ENOENT ?
	    0 : -1;
}

/* ------------------------------------------------------------ places */

/* Lock fd (flock, not waiting): 0, or -1 (EWOULDBLOCK: held). */
static int
try_lock(int fd)
{
	int r;

	do
		r = flock(fd, LOCK_EX | LOCK_NB);
	while (r != 0 && errno == EINTR);
	return r;
}

/* Lock place k of dir: its descriptor, or -1 (EWOULDBLOCK: held). */
static int
lock_place(const char *dir, unsigned k)
{
	char name[32] = "place.", digits[12], why[8], path[PATH_MAX];
	size_t n = 0;
	int fd, err;

	do
		digits[n++] = (char)('0' + k % 10);
	while ((k /= 10) != 0);
	for (k = 6; n > 0; )
		name[k++] = digits[--n];
	name[k] = '\0';
	/* The directory was checked with the state file; a place is only
	 * locked, and read-only does for flock. */
	if (state_path(path, dir, name, why, sizeof why) != 0 ||
	    (fd = safe_open_lock(path, why, sizeof why)) < 0)
		return -1;
	if (try_lock(fd) == 0)
		return fd;
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

/* Mark place k taken (1) or free (0), holding its lock: 0 or -1. */
static int
mark(int fd, unsigned k, char taken)
{
	ssize_t r;

	do
		r = pwrite(fd, &taken, 1, MARKS + (off_t)k);
	while (r < 0 && errno == EINTR);
	return r == 1 ? 0 : -1;
}

/* The marks of places from to from + n - 1 (past the end of the file:
 * free).  0 or -1. */
static int
read_marks(int fd, unsigned from, unsigned n, unsigned char *buf)
{
	ssize_t r;

	do
		r = pread(fd, buf, n, MARKS + (off_t)from);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -1;
	memset(buf + r, 0, n - (size_t)r);
	return 0;
}

/* Take place k, marked free: 1 if it is ours now, 0 if another has it,
 * -1 on an error. */
static int
take(struct waiters *w, const char *dir, unsigned k)
{
	int fd = lock_place(dir, k);

	if (fd < 0)
		return errno == EWOULDBLOCK ? 0 : -1;
	if (mark(w->fd, k, 1) != 0) {
		close(fd);
		return -1;
	}
	w->lock = fd;
	w->place = k;
	return 1;
}

/*
 * Count the places marked taken, and take a free one if w holds none
 * (try).  The marks counted are the others'.  0, or -1.
 */
static int
scan(struct waiters *w, const char *dir, unsigned places, int try,
    unsigned *marked)
{
	unsigned char buf[CHUNK];
	unsigned from, i, n;
	int got;

	*marked = 0;
	for (from = 0; from < places; from += n) {
		n = places - from < CHUNK ? places - from : CHUNK;
		if (read_marks(w->fd, from, n, buf) != 0)
			return -1;
		for (i = 0; i < n; i++) {
			if (buf[i])
				*marked += from + i != w->place;
			else if (try && (got = take(w, dir, from + i)) != 0) {
				if (got < 0)
					return -1;
				try = 0;
			}
		}
	}
	return 0;
}

/* Is the last check more than WAITERS_CHECK_MS ago (or from before a
 * reboot, or never made)? */
static int
check_due(int fd, uint64_t now)
{
	uint64_t last = 0;

	if (pread(fd, &last, sizeof last, CHECKED) != (ssize_t)sizeof last)
		return 1;
	return last == 0 || now < last || now - last >= WAITERS_CHECK_MS;
}

/* Clear the mark of place k if nobody holds its lock: 0, or -1. */
static int
clear_if_stale(struct waiters *w, const char *dir, unsigned k)
{
	int fd = lock_place(dir, k), r;

	if (fd < 0)
		return errno == EWOULDBLOCK ? 0 : -1;
	/* Ours for the moment: nobody can take it meanwhile. */
	r = mark(w->fd, k, 0);
	close(fd);
	return r;
}

/*
 * Clear every mark whose lock nobody holds, if a check is due and nobody
 * else is making one (the flock of DIR/waiting).  1 if it was made, 0 if
 * not, -1 on an error.
 */
static int
clear_stale(struct waiters *w, const char *dir, unsigned places)
{
	unsigned char buf[CHUNK];
	uint64_t now = mono_ms();
	unsigned from, i, n;
	int r = 0;

	if (!check_due(w->fd, now))
		return 0;
	if (try_lock(w->fd) != 0)
		return errno == EWOULDBLOCK ? 0 : -1;
	if (!check_due(w->fd, now))
		goto done;
	for (from = 0; r == 0 && from < places; from += n) {
		n = places - from < CHUNK ? places - from : CHUNK;
		r = read_marks(w->fd, from, n, buf);
		for (i = 0; r == 0 && i < n; i++)
			if (buf[i] && from + i != w->place)
				r = clear_if_stale(w, dir, from + i);
	}
	if (r == 0 && pwrite(w->fd, &now, sizeof now, CHECKED) !=
	    (ssize_t)sizeof now)
		r = -1;
	else if (r == 0)
		r = 1;
done:
	flock(w->fd, LOCK_UN);
	return r;
}

int
waiters_join(struct waiters *w, const char *dir, unsigned places,
    unsigned threshold, unsigned *others, char *why, size_t size)
{
	unsigned marked = 0;
	int r;

	w->lock = -1;
	w->place = places;	/* none */
	if (places == 0 || places > WAITERS_MAX) {
		snprintf(why, size, "%u places", places);
		errno = EINVAL;
		return WAITERS_ERROR;
	}
	if ((w->fd = open_state(dir, why, size)) < 0)
		return WAITERS_ERROR;
	r = scan(w, dir, places, 1, &marked);
	/* Counted again only if stale marks were looked for. */
	if (r == 0 && (w->lock < 0 || marked >= threshold) &&
	    (r = clear_stale(w, dir, places)) > 0)
		r = scan(w, dir, places, w->lock < 0, &marked);
	*others = marked;
	if (r == 0 && w->lock >= 0)
		return WAITERS_IN;
	if (r != 0)
		snprintf(why, size, "%s: %s", dir, strerror(errno));
	waiters_leave(w);
	*others = places;
	return r != 0 ? WAITERS_ERROR : WAITERS_FULL;
}

void
waiters_leave(struct waiters *w)
{
	int err = errno;

	if (w->fd < 0)
		return;
	/* The mark first, under the lock: a taker who sees it clear finds
	 * the lock still held and moves on. */
	if (w->lock >= 0) {
		mark(w->fd, w->place, 0);
		close(w->lock);
	}
	close(w->fd);
	w->fd = w->lock = -1;
	errno = err;
}
