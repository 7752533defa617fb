/*
 * safefile.h - the files sendwrap keeps in a directory it is given (the
 * pass cache and its lock file, the slots' lock files), checked so that
 * opening them is safe when sendwrap runs as root.
 *
 * Whoever can write a directory decides what its names point to: a
 * symbolic or hard link to /etc/shadow (which root would then truncate
 * and write), a FIFO (an open() that never returns), a file of theirs
 * that they go on changing.  So before a file is opened:
 *  - its directory must be owned by the effective user or by root and
 *    not be writable by group or others.  Then nobody else can add,
 *    remove or rename anything in it, and what was checked is what is
 *    opened, even by a library (LMDB) that takes a path;
 *  - the file must be a regular file (lstat: a symbolic link is refused,
 *    never followed), owned by the effective user, with one link;
 *  - a missing file is made here, with O_CREAT | O_EXCL | O_NOFOLLOW |
 *    O_CLOEXEC and mode 0600, never by following a name.
 * The directories above it are not checked: they are the administrator's
 * (sendwrap.8, SECURITY).
 *
 * Contract: no logging, no allocation, no signals.  A failure is -1 with
 * errno set and one line in why ("PATH: reason"); EACCES for a file or
 * directory that is someone else's, ELOOP for a symbolic link, EINVAL
 * for anything else that is not as it must be.  Descriptors returned
 * are close-on-exec.
 */
#ifndef SENDWRAP_SAFEFILE_H
#define SENDWRAP_SAFEFILE_H

#include <stddef.h>
#include <sys/stat.h>

/* Is the directory holding path (or "." for a bare name) safe?  0 or -1. */
int safe_dir_of(const char *path, char *why, size_t size);

/* Is the directory dir itself safe?  0 or -1. */
int safe_dir(const char *dir, char *why, size_t size);

/* The same, and owned by the effective user itself, root's or not: a
 * directory that sendwrap, not the administrator, writes (--state-dir),
 * so that only one user ever does.  0 or -1. */
int safe_dir_mine(const char *dir, char *why, size_t size);

/*
 * Is path a safe file?  Checked with lstat, without opening it.  Missing:
 * made empty (mode 0600) if create, else -1 with ENOENT.  0 with *st
 * filled (if st is not NULL), or -1.  The directory is not checked here:
 * see safe_dir_of().
 */
int safe_file(const char *path, int create, struct stat *st, char *why,
    size_t size);

/*
 * Open path read-only for flock(), made (mode 0600) if missing, checked
 * on the descriptor itself (fstat after an O_NOFOLLOW | O_NONBLOCK open:
 * a FIFO does not block it).  Returns the descriptor, or -1.
 */
int safe_open_lock(const char *path, char *why, size_t size);

/* A failure as this header makes them: one line in why (printf's fmt),
 * errno = err; returns -1.  For modules that keep to the same contract
 * (waiters.c). */
int safe_fail(char *why, size_t size, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
