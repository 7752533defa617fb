/* slots.c - a shared cap on held connections; see slots.h. */
#include "slots.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

/* Open (creating if need be) the lock file of slot k. */
static int
open_slot(const char *dir, unsigned k)
{
	char path[4096];
	int fd, n = snprintf(path, sizeof path, "%s/slot.%u", dir, k);

	if (n < 0 || (size_t)n >= sizeof path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	do
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
		    O_NOCTTY, 0600);
	while (fd < 0 && errno == EINTR);
	return fd;
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
slots_take(const char *dir, unsigned n, unsigned *slot)
{
	unsigned start = n ? (unsigned)getpid() % n : 0, i;

	for (i = 0; i < n; i++) {
		unsigned k = (start + i) % n;
		int fd = open_slot(dir, k), got;

		if (fd < 0)
			return SLOTS_ERROR;
		got = try_lock(fd);
		if (got == 1) {
			*slot = k;
			return fd;
		}
		if (got < 0) {
			int err = errno;

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
