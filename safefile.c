/* safefile.c - files in a directory, safe to open as root; see safefile.h. */
#include "safefile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Open flags for a file of ours: never through a link, never a tty. */
#define OURS (O_NOFOLLOW | O_CLOEXEC | O_NOCTTY)

int
safe_fail(char *why, size_t size, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, size, fmt, ap);
	va_end(ap);
	errno = err;
	return -1;
}

/* dir checked; the owner allowed besides the effective user is root if
 * root_too. */
static int
check_dir(const char *dir, int root_too, char *why, size_t size)
{
	struct stat st;
	uid_t me = geteuid();

	if (stat(dir, &st) != 0)
		return safe_fail(why, size, errno, "%s: %s", dir,
		    strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return safe_fail(why, size, ENOTDIR, "%s: %s", dir,
		    strerror(ENOTDIR));
	if (st.st_uid != me && !(root_too && st.st_uid == 0))
		return safe_fail(why, size, EACCES, "%s: %s (the directory is "
		    "owned by uid %lu, %s uid %lu that sendwrap runs as)", dir,
		    strerror(EACCES), (unsigned long)st.st_uid,
		    root_too ? "neither root nor" : "not by",
		    (unsigned long)me);
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return safe_fail(why, size, EACCES, "%s: %s (the directory is "
		    "writable by group or others)", dir, strerror(EACCES));
	return 0;
}

int
safe_dir(const char *dir, char *why, size_t size)
{
	return check_dir(dir, 1, why, size);
}

int
safe_dir_mine(const char *dir, char *why, size_t size)
{
	return check_dir(dir, 0, why, size);
}

int
safe_dir_of(const char *path, char *why, size_t size)
{
	char dir[PATH_MAX];
	char *slash;

	if (strlen(path) >= sizeof dir)
		return safe_fail(why, size, ENAMETOOLONG, "%s: %s", path,
		    strerror(ENAMETOOLONG));
	strcpy(dir, path);
	if ((slash = strrchr(dir, '/')) == NULL)
		return safe_dir(".", why, size);
	slash[slash == dir] = '\0';	/* "/name" lives in "/" */
	return safe_dir(dir, why, size);
}

/* Is st, found at path, a file we may open? */
static int
check_file(const char *path, const struct stat *st, char *why, size_t size)
{
	uid_t me = geteuid();

	if (S_ISLNK(st->st_mode))
		return safe_fail(why, size, ELOOP, "%s: a symbolic link (never "
		    "followed)", path);
	if (!S_ISREG(st->st_mode))
		return safe_fail(why, size, EINVAL, "%s: not a regular file",
		    path);
	if (st->st_uid != me)
		return safe_fail(why, size, EACCES, "%s: %s (owned by uid %lu, "
		    "not by uid %lu that sendwrap runs as)", path,
		    strerror(EACCES), (unsigned long)st->st_uid,
		    (unsigned long)me);
	if (st->st_nlink != 1)
		return safe_fail(why, size, EINVAL, "%s: %lu links (a hard "
		    "link to another file?)", path,
		    (unsigned long)st->st_nlink);
	return 0;
}

/* Make path, empty, mode 0600; 0, or -1 with errno (EEXIST: raced). */
static int
create_empty(const char *path)
{
	int fd;

	do
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | OURS, 0600);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

int
safe_file(const char *path, int create, struct stat *st, char *why,
    size_t size)
{
	struct stat mine;

	if (st == NULL)
		st = &mine;
	if (lstat(path, st) == 0)
		return check_file(path, st, why, size);
	/* Missing: made here (or meanwhile by another), then looked at. */
	if (errno == ENOENT && create &&
	    (create_empty(path) == 0 || errno == EEXIST) &&
	    lstat(path, st) == 0)
		return check_file(path, st, why, size);
	return safe_fail(why, size, errno, "%s: %s", path, strerror(errno));
}

/* Open path read-only, creating it if it is missing; -1 with errno. */
static int
open_made(const char *path)
{
	int fd = -1, tries;

	for (tries = 0; tries < 2; tries++) {
		do
			fd = open(path, O_RDONLY | O_NONBLOCK | OURS);
		while (fd < 0 && errno == EINTR);
		if (fd >= 0 || errno != ENOENT)
			return fd;
		do
			fd = open(path, O_RDONLY | O_CREAT | O_EXCL |
			    O_NONBLOCK | OURS, 0600);
		while (fd < 0 && errno == EINTR);
		if (fd >= 0 || errno != EEXIST)
			return fd;
	}
	return fd;
}

int
safe_open_lock(const char *path, char *why, size_t size)
{
	struct stat st;
	int fd = open_made(path), err;

	if (fd < 0) {
		if (errno == ELOOP)
			return safe_fail(why, size, ELOOP, "%s: a symbolic "
			    "link (never followed)", path);
		return safe_fail(why, size, errno, "%s: %s", path,
		    strerror(errno));
	}
	if (fstat(fd, &st) != 0)
		err = safe_fail(why, size, errno, "%s: %s", path,
		    strerror(errno));
	else
		err = check_file(path, &st, why, size);
	if (err == 0)
		return fd;
	err = errno;
	close(fd);
	errno = err;
	return -1;
}
