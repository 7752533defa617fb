/*
 * allowdb.h - the compiled allowlist: a file made once by --compile from
 * a text allowlist and looked up by every connection without reading
 * the list.
 *
 * A lookup answers what a walk of the text would: the first entry, in
 * the text's order, that covers the address.
 *
 * Contract: no logging and no allocation beyond the handle; a damaged or
 * foreign file is an error return, never a crash.  The caller opens and
 * closes the descriptor (O_CLOEXEC); the handle must be closed first.
 */
#ifndef SENDWRAP_ALLOWDB_H
#define SENDWRAP_ALLOWDB_H

#include "whitelist.h"

struct allowdb;
struct allowdb_writer;

/*
 * Map the compiled allowlist open on fd.  NULL with *why (a static
 * message) if it cannot be mapped or is not one; errno is then set too.
 */
struct allowdb *allowdb_open(int fd, const char **why);

/* How many entries the text had. */
size_t allowdb_count(const struct allowdb *db);

/*
 * The first entry covering a: 1 with m->found, delay_ms and rule set;
 * 0 if none; -1 if the file is damaged (*why set).
 */
int allowdb_find(struct allowdb *db, const struct addr *a,
    struct wl_match *m, const char **why);

void allowdb_close(struct allowdb *db);

/* Write a compiled allowlist to fd: start, add in text order, finish. */
struct allowdb_writer *allowdb_write_start(int fd);
int allowdb_write_add(struct allowdb_writer *w, const struct wl_entry *e);

/* Complete the file; 0, or -1 with errno.  Frees w either way. */
int allowdb_write_finish(struct allowdb_writer *w);

/* Give up on a file being written; frees w. */
void allowdb_write_abort(struct allowdb_writer *w);

#endif
