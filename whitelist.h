/*
 * whitelist.h - the CIDR allowlist: parse entries, match a peer.
 *
 * Entries come from -A arguments and from -a files, one "CIDR [DURATION]"
 * a line, '#' to end of line a comment.  A file whose name ends in ".cdb"
 * is a compiled allowlist made by wl_compile(): looked up through mmap
 * with one hash probe per prefix length in use, so its size does not
 * matter.  Lookup walks the sources in order and the first matching
 * entry wins; within a compiled file "first" is the order of the text it
 * was compiled from.  IPv4 and IPv6 never match each other; callers pass
 * IPv4-mapped IPv6 peers as IPv4 (see wl_addr_from_sockaddr).
 *
 * Contract: no socket code, no logging of its own.  Problems are handed
 * to a wl_report_fn as (path, line, message); line 0 means the whole
 * file.  Every descriptor it opens is O_CLOEXEC and closed before return.
 */
#ifndef SENDWRAP_WHITELIST_H
#define SENDWRAP_WHITELIST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define WL_LINE_MAX 1000	/* longest allowlist line, without newline */
#define WL_RULE_MAX 64		/* longest CIDR text kept for the log */

struct wl_addr {
	int family;			/* AF_INET or AF_INET6 */
	unsigned char bytes[16];	/* 4 used for AF_INET */
};

struct wl_entry {
	struct wl_addr net;
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

typedef void (*wl_report_fn)(void *ctx, const char *path,
    unsigned long line, const char *msg);

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
int wl_entry_matches(const struct wl_entry *e, const struct wl_addr *a);

/*
 * Set *a from a socket address; an IPv4-mapped IPv6 address becomes
 * AF_INET.  Returns 0, or -1 for any other family.
 */
int wl_addr_from_sockaddr(const struct sockaddr *sa, struct wl_addr *a);

/* Parse a textual address (as inet_pton would, then unmapped). */
int wl_addr_parse(const char *s, struct wl_addr *a);

/*
 * Walk the sources in order and fill *m with the first match for peer
 * (peer NULL: match nothing, only check).  Every unreadable file and
 * every bad line is reported, at most max_errors per file (0: no cap),
 * then one summary line.  Returns the number of problems reported.
 */
unsigned long wl_lookup(const struct wl_source *src, size_t n,
    const struct wl_addr *peer, struct wl_match *m, unsigned max_errors,
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
 * Compile the text allowlist in to the cdb file out, through a temporary
 * file renamed into place, so readers see the old or the new file, never
 * half of one.  A text file with any bad line is refused and out is left
 * alone.  Returns the number of entries, or -1 after reporting why.
 */
long wl_compile(const char *in, const char *out, wl_report_fn report,
    void *ctx);

#endif
