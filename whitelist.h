/*
 * whitelist.h - the CIDR allowlist: parse entries, load the sources,
 * match a peer.
 *
 * Entries come from -A arguments and from -a files, one "CIDR [DURATION]"
 * a line, '#' to end of line a comment.  A file whose name ends in ".cdb"
 * is a compiled allowlist made by wl_compile() (allowdb.h), looked up
 * without reading the list.  Lookup walks the sources in command-line
 * order and the first matching entry wins; within a compiled file
 * "first" is the order of the text it was compiled from.  IPv4 and IPv6
 * never match each other; peers arrive unmapped (addr.h).
 *
 * A loaded allowlist (wl_load) is an object that can answer for many
 * connections: text files parsed into memory, compiled files mapped.
 * Load again to see changed files.
 *
 * Contract: no socket code, no logging of its own.  Problems are handed
 * to a wl_report_fn as (path, line, message); line 0 means the whole
 * file.  Every descriptor it opens is O_CLOEXEC; wl_free() closes them.
 */
#ifndef SENDWRAP_WHITELIST_H
#define SENDWRAP_WHITELIST_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "textfile.h"

#define WL_LINE_MAX 1000	/* longest allowlist line, without newline */
#define WL_RULE_MAX PREFIX_TEXT_MAX	/* longest CIDR text kept for the log */

struct wl_entry {
	struct addr net;
	unsigned prefix;
	uint64_t delay_ms;
	char rule[WL_RULE_MAX];		/* the CIDR as written */
};

/* One place entries come from, in command-line order. */
struct wl_source {
	const char *path;		/* -a FILE; NULL for an -A entry */
	struct wl_entry entry;		/* the -A entry when path is NULL */
};

struct wl_match {
	int found;
	uint64_t delay_ms;
	char rule[WL_RULE_MAX];
	const char *path;		/* NULL for an -A entry */
	unsigned long line;		/* 0 for -A and compiled entries */
};

typedef textfile_report_fn wl_report_fn;

struct allowlist;

/* Parse "CIDR" (no duration).  0 on success, -1 with *why. */
int wl_parse_cidr(const char *s, size_t len, struct wl_entry *e,
    const char **why);

/*
 * Parse one line (without its newline).  Returns 1 and fills *e for an
 * entry, 0 for a blank or comment line, -1 with *why for a bad line.
 */
int wl_parse_line(const char *s, size_t len, struct wl_entry *e,
    const char **why);

/* Does the entry cover the address?  Families must agree. */
int wl_entry_matches(const struct wl_entry *e, const struct addr *a);

/*
 * Load the n sources (kept by reference: they must outlive the list).
 * Every unreadable file and every bad line is reported, at most
 * max_errors per file (0: no cap), then one summary line; their number
 * goes to *problems.  What could be read is kept.  NULL only when out of
 * memory.
 */
struct allowlist *wl_load(const struct wl_source *src, size_t n,
    unsigned max_errors, wl_report_fn report, void *ctx,
    unsigned long *problems);

/* Fill *m with the first entry that covers peer, if any. */
void wl_find(const struct allowlist *l, const struct addr *peer,
    struct wl_match *m);

/* Entries in all the sources (compiled files count theirs). */
size_t wl_count(const struct allowlist *l);

/* Close what the list holds and free it.  l may be NULL. */
void wl_free(struct allowlist *l);

/*
 * Load, find (peer NULL: match nothing, only check) and free in one:
 * returns the number of problems reported.
 */
unsigned long wl_lookup(const struct wl_source *src, size_t n,
    const struct addr *peer, struct wl_match *m, unsigned max_errors,
    wl_report_fn report, void *ctx);

/*
 * Check one file as -n does: count its entries into *count and report
 * every problem.  Returns the number of problems.
 */
unsigned long wl_check_file(const char *path, size_t *count,
    wl_report_fn report, void *ctx);

/* Is path a compiled allowlist (by its ".cdb" suffix)? */
int wl_is_compiled(const char *path);

/*
 * Compile the text allowlist in to the compiled file out, through a
 * temporary file renamed into place, so readers see the old or the new
 * file, never half of one.  A text file with any bad line is refused and
 * out is left alone.  Returns the number of entries, or -1 after
 * reporting why.
 */
long wl_compile(const char *in, const char *out, wl_report_fn report,
    void *ctx);

#endif
