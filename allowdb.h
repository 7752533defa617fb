/*
 * allowdb.h - the compiled allowlist: a file made once by --compile from
 * a text allowlist and looked up by every connection without reading
 * the list.
 *
 * A lookup answers what a walk of the text would: the first entry, in
 * the text's order, that covers the address.  That order is resolved
 * when the file is written: the file holds disjoint address intervals,
 * each with the entry that wins in it, so a lookup is one search however
 * many entries and prefix lengths the text has.
 *
 * Contract: no logging; a damaged, foreign or hostile file is an error
 * return, never a crash, and a match handed back always carries a rule
 * text that parses as a network covering the address (no raw bytes from
 * the file reach a log).  The handle holds one descriptor (O_CLOEXEC)
 * and the fault guard (guard.h) until allowdb_close().
 */
#ifndef SENDWRAP_ALLOWDB_H
#define SENDWRAP_ALLOWDB_H

#include "whitelist.h"

struct allowdb;
struct allowdb_writer;

/* What a compiled file says of the text it was made from. */
struct allowdb_stats {
	size_t entries;		/* entries in the text */
	size_t repeats;		/* exact repeats of an earlier entry, dropped */
	size_t shadowed;	/* entries that win nowhere (earlier ones cover
				 * them); repeats not counted */
	size_t intervals;	/* records in the file */
};

/*
 * Open the compiled allowlist at path.  NULL with *why (a static
 * message) and errno: EINVAL when the file is not one or is damaged
 * (*why says which, whole); otherwise *why is what failed, to be
 * followed by strerror(errno).
 */
struct allowdb *allowdb_open(const char *path, const char **why);

/* How many entries the text had, and the rest of what the file says. */
size_t allowdb_count(const struct allowdb *db);
void allowdb_stats(const struct allowdb *db, struct allowdb_stats *st);

/*
 * The first entry covering a: 1 with m->found, delay_ms and rule set;
 * 0 if none; -1 if the file is damaged (*why set).
 */
int allowdb_find(struct allowdb *db, const struct addr *a,
    struct wl_match *m, const char **why);

/* Close the handle; db may be NULL. */
void allowdb_close(struct allowdb *db);

/*
 * Write a compiled allowlist: start, add the entries in text order,
 * finish.  The entries are kept in memory until finish.
 */
struct allowdb_writer *allowdb_write_start(void);

/* 0, or -1 with errno (ENOMEM, or EFBIG past 2^32 - 1 entries). */
int allowdb_write_add(struct allowdb_writer *w, const struct wl_entry *e);

/*
 * Write the file at path, which the caller has just created empty and
 * holds open on fd (the file written must be that one: EEXIST if not).
 * Nothing is synced.  0 with *st filled, or -1 with errno.  Frees w
 * either way.
 */
int allowdb_write_finish(struct allowdb_writer *w, int fd, const char *path,
    struct allowdb_stats *st);

/* Give up on a file being written; frees w. */
void allowdb_write_abort(struct allowdb_writer *w);

#endif
