/*
 * greytrap.h - the greytrap addresses (--greytrap FILE): addresses that
 * no one sends mail to but a harvester.  A greylisted client that names
 * one in RCPT TO is remembered as bad (core.h), having seen the same
 * replies as any other client, so it learns nothing.
 *
 * The file: one address a line ("local@domain"), matched without regard
 * to case; '#' to the end of a line is a comment; blank lines are
 * skipped.  A line that is not one address is a problem reported as
 * (path, line, message) and skipped; the rest of the file is used.
 *
 * Contract: no logging and no socket code; problems go to the report
 * function (whitelist.h's type).  The file is read at once and closed;
 * the set lives in memory until greytraps_free().
 */
#ifndef SENDWRAP_GREYTRAP_H
#define SENDWRAP_GREYTRAP_H

#include <stddef.h>

#include "whitelist.h"

#define GREYTRAP_ADDR_MAX 254	/* RFC 5321's longest path, brackets off */
#define GREYTRAP_FILE_MAX 100000	/* addresses kept from one file */

struct greytraps;

/*
 * Read path.  Every bad line, and a file that cannot be read, is
 * reported (at most max_errors, 0: no cap, then one summary line) and
 * counted in *problems.  Returns the set (empty if nothing could be
 * read), or NULL only when out of memory.
 */
struct greytraps *greytraps_load(const char *path, unsigned max_errors,
    wl_report_fn report, void *ctx, unsigned long *problems);

/* The number of addresses in t. */
size_t greytraps_count(const struct greytraps *t);

/*
 * Is the address of an RCPT command's argument (what follows "RCPT",
 * e.g. " TO:<Trap@Example.org> NOTIFY=NEVER") one of t's?  The list's
 * own address (lower case, t's while t lives) if it is, NULL if not; t
 * may be NULL (none are).
 */
const char *greytraps_match(const struct greytraps *t, const char *arg,
    size_t len);

/* Free t; NULL is fine. */
void greytraps_free(struct greytraps *t);

#endif
