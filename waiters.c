/* waiters.c - the count of waiting connections; see waiters.h. */
#define _GNU_SOURCE		/* F_OFD_SETLK */
#include "waiters.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conn.h"

#define MAGIC 0x31575753u	/* "SWW1" in the file's first bytes */
#define WORDS ((WAITERS_MAX + 63) / 64)

/* DIR/waiting as mapped; the locks are on bytes 0 to places - 1. */
struct waiters_map {
	uint32_t magic;
	uint32_t unused;
	uint64_t checked_ms;		/* mono_ms() of the last check */
	uint64_t bits[WORDS];		/* place K taken: bit K % 64 of K / 64 */
};

/* ------------------------------------------------------ the state file */

static int __attribute__((format(printf, 4, 5)))
fail(char *why, size_t size, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, size, fmt, ap);
	va_end(ap);
	errno = err;
	return -1;
}

/*
 * The one place that checks the state directory and opens a file in it.
 * (safefile.h, when it lands, says the same: safe_dir() and a read-write
 * open of a checked file take the place of this body.)
 */
int
waiters_open_state(const char *dir, const char *name, int create, char *why,
    size_t size)
{
	uid_t me = geteuid();
	char path[PATH_MAX];
	struct stat st;
	int fd, err;

	if (stat(dir, &st) != 0)
		return fail(why, size, errno, "%s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return fail(why, size, ENOTDIR, "%s: not a directory", dir);
	if ((st.st_uid != me && st.st_uid != 0) ||
	    (st.st_mode & (S_IWGRP | S_IWOTH)))
		return fail(why, size, EACCES, "%s: must be owned by root or "
		    "uid %lu and not writable by group or others", dir,
		    (unsigned long)me);
	if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >=
	    sizeof path)
		return fail(why, size, ENAMETOOLONG, "%s: name too long", dir);
	fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK);
	if (fd < 0 && errno == ENOENT && create)
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0 && errno == EEXIST)	/* made meanwhile by another */
		fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
		    O_NONBLOCK);
	if (fd < 0)
		return fail(why, size, errno, "%s: %s", path, errno == ELOOP ?
		    "a symbolic link (never followed)" : strerror(errno));
	if (fstat(fd, &st) != 0)
		err = fail(why, size, errno, "%s: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode) || st.st_uid != me || st.st_nlink != 1)
		err = fail(why, size, EINVAL, "%s: must be a regular file of "
		    "uid %lu with one link", path, (unsigned long)me);
	else
		return fd;
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

int
waiters_check(const char *dir, char *why, size_t size)
{
	int fd = waiters_open_state(dir, WAITERS_FILE, 0, why, size);

	if (fd >= 0)
		close(fd);
	return fd >= 0 || errno == ENOENT ? 0 : -1;
}

/* Open and map the state file: 0, or -1 with why. */
static int
attach(struct waiters *w, const char *dir, char *why, size_t size)
{
	uint32_t none = 0;
	struct stat st;
	void *m;

	if ((w->fd = waiters_open_state(dir, WAITERS_FILE, 1, why,
	    size)) < 0)
		return -1;
	if (fstat(w->fd, &st) != 0 || (st.st_size < (off_t)sizeof *w->map &&
	    ftruncate(w->fd, sizeof *w->map) != 0))
		return fail(why, size, errno, "%s/%s: %s", dir, WAITERS_FILE,
		    strerror(errno));
	m = mmap(NULL, sizeof *w->map, PROT_READ | PROT_WRITE, MAP_SHARED,
	    w->fd, 0);
	if (m == MAP_FAILED)
		return fail(why, size, errno, "%s/%s: %s", dir, WAITERS_FILE,
		    strerror(errno));
	w->map = m;
	if (!__atomic_compare_exchange_n(&w->map->magic, &none, MAGIC, 0,
	    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST) && none != MAGIC)
		return fail(why, size, EINVAL, "%s/%s: not sendwrap's count "
		    "of waiting connections", dir, WAITERS_FILE);
	return 0;
}

static void
detach(struct waiters *w)
{
	int err = errno;

	if (w->map)
		munmap(w->map, sizeof *w->map);
	if (w->fd >= 0)
		close(w->fd);
	w->map = NULL;
	w->fd = -1;
	errno = err;
}

/* ------------------------------------------------------------ places */

/* Lock (F_WRLCK) or unlock (F_UNLCK) byte k: 0, or -1 (EAGAIN: held). */
static int
lock_byte(int fd, unsigned k, short type)
{
	struct flock fl;
	int r;

	memset(&fl, 0, sizeof fl);
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)k;
	fl.l_len = 1;
	do
		r = fcntl(fd, F_OFD_SETLK, &fl);
	while (r != 0 && errno == EINTR);
	if (r != 0 && errno == EACCES)
		errno = EAGAIN;
	return r;
}

/* The bits of word i that stand for one of places. */
static uint64_t
valid(unsigned i, unsigned places)
{
	unsigned past = places - i * 64;

	return past >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << past) - 1;
}

/* Take a place whose bit is clear: 0, 1 if none could be had, -1. */
static int
take(struct waiters *w, unsigned places)
{
	unsigned words = (places + 63) / 64, i;
	unsigned start = (unsigned)getpid() % words;

	for (i = 0; i < words; i++) {
		unsigned n = (start + i) % words;
		uint64_t *word = &w->map->bits[n];
		uint64_t clear = ~__atomic_load_n(word, __ATOMIC_ACQUIRE) &
		    valid(n, places);

		for (; clear; clear &= clear - 1) {
			unsigned bit = (unsigned)__builtin_ctzll(clear);

			if (lock_byte(w->fd, n * 64 + bit, F_WRLCK) == 0) {
				__atomic_fetch_or(word, (uint64_t)1 << bit,
				    __ATOMIC_SEQ_CST);
				w->place = n * 64 + bit;
				return 0;
			}
			if (errno != EAGAIN)
				return -1;
		}
	}
	return 1;
}

/* The places whose bit is set. */
static unsigned
count(const struct waiters_map *m, unsigned places)
{
	unsigned words = (places + 63) / 64, i, n = 0;

	for (i = 0; i < words; i++)
		n += (unsigned)__builtin_popcountll(__atomic_load_n(&m->bits[i],
		    __ATOMIC_ACQUIRE) & valid(i, places));
	return n;
}

/* Is a check for stale bits due?  Claimed by the first who asks. */
static int
check_due(struct waiters_map *m)
{
	uint64_t now = mono_ms(), last = __atomic_load_n(&m->checked_ms,
	    __ATOMIC_ACQUIRE);

	/* A time from before a reboot is later than now: due. */
	if (last != 0 && now >= last && now - last < WAITERS_CHECK_MS)
		return 0;
	return __atomic_compare_exchange_n(&m->checked_ms, &last, now ? now : 1,
	    0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

/* Clear every set bit whose lock nobody holds (held = w's own place, or
 * none).  0, or -1. */
static int
clear_stale(struct waiters *w, unsigned places, int held)
{
	unsigned words = (places + 63) / 64, i;

	for (i = 0; i < words; i++) {
		uint64_t *word = &w->map->bits[i];
		uint64_t set = __atomic_load_n(word, __ATOMIC_ACQUIRE) &
		    valid(i, places);

		for (; set; set &= set - 1) {
			unsigned bit = (unsigned)__builtin_ctzll(set);
			unsigned k = i * 64 + bit;

			if (held && k == w->place)
				continue;
			if (lock_byte(w->fd, k, F_WRLCK) != 0) {
				if (errno != EAGAIN)
					return -1;
				continue;
			}
			/* Ours for the moment: nobody can take it meanwhile. */
			__atomic_fetch_and(word, ~((uint64_t)1 << bit),
			    __ATOMIC_SEQ_CST);
			lock_byte(w->fd, k, F_UNLCK);
		}
	}
	return 0;
}

int
waiters_join(struct waiters *w, const char *dir, unsigned places,
    unsigned threshold, unsigned *others, char *why, size_t size)
{
	int got;

	w->fd = -1;
	w->map = NULL;
	if (places == 0 || places > WAITERS_MAX)
		return fail(why, size, EINVAL, "%u places", places);
	if (attach(w, dir, why, size) != 0) {
		detach(w);
		return WAITERS_ERROR;
	}
	got = take(w, places);
	*others = count(w->map, places) - (got == 0);
	if (got >= 0 && (got == 1 || *others >= threshold) &&
	    check_due(w->map)) {
		if (clear_stale(w, places, got == 0) != 0)
			got = -1;
		else if (got == 1)
			got = take(w, places);
		*others = count(w->map, places) - (got == 0);
	}
	if (got == 0)
		return WAITERS_IN;
	if (got < 0)
		fail(why, size, errno, "%s/%s: %s", dir, WAITERS_FILE,
		    strerror(errno));
	*others = places;
	detach(w);
	return got < 0 ? WAITERS_ERROR : WAITERS_FULL;
}

void
waiters_leave(struct waiters *w)
{
	if (w->fd < 0)
		return;
	/* The bit first: a taker who sees it clear finds the lock held and
	 * moves on, where the other order could wipe a new holder's bit. */
	__atomic_fetch_and(&w->map->bits[w->place / 64],
	    ~((uint64_t)1 << (w->place % 64)), __ATOMIC_SEQ_CST);
	detach(w);	/* closing drops the lock */
}
