/* slots.c - a shared cap on held connections; see slots.h. */
#include "slots.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "safefile.h"

/* Open (creating if need be, safely: safefile.h) slot k's lock file. */
static int
open_slot(const char *dir, unsigned k, char *why, size_t size)
{
	char path[4096];
	int n = snprintf(path, sizeof path, "%s/slot.%u", dir, k);

	if (n < 0 || (size_t)n >= sizeof path) {
		snprintf(why, size, "%s: %s", dir, strerror(ENAMETOOLONG));
		errno = ENAMETOOLONG;
		return -1;
	}
	return safe_open_lock(path, why, size);
}

/* 1 if we now hold fd's lock, 0 if another process does, -1 on error. */
static int
try_lock(int fd)
{
	int r;

	do
		r = flock(fd, LOCK_EX | LOCK_NB);
	while (r != 0 && errno == EINTR);
	if (r == 0)
		return 1;
	return errno == EWOULDBLOCK ? 0 : -1;
}

int
slots_take(const char *dir, unsigned n, unsigned *slot, char *why,
    size_t size)
{
	unsigned start = n ? (unsigned)getpid() % n : 0, i;

	if (safe_dir(dir, why, size) != 0)
		return SLOTS_ERROR;
	for (i = 0; i < n; i++) {
		unsigned k = (start + i) % n;
		int fd = open_slot(dir, k, why, size), got;

		if (fd < 0)
			return SLOTS_ERROR;
		got = try_lock(fd);
		if (got == 1) {
			*slot = k;
			return fd;
		}
		if (got < 0) {
			int err = errno;

			snprintf(why, size, "%s/slot.%u: %s", dir, k,
			    strerror(err));
			close(fd);
			errno = err;
			return SLOTS_ERROR;
		}
		close(fd);
	}
	return SLOTS_NONE;
}

void
slots_release(int fd)
{
	if (fd >= 0)
		close(fd);
}
