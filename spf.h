/*
 * spf.h - the networks a domain's SPF record (RFC 7208) sends mail from,
 * as allowlist entries: for --spf-walk.
 *
 * Two parts.  spf_parse() reads one record's text into its terms: pure,
 * no I/O, no allocation (unit-tested and fuzzed).  spf_walk() asks DNS
 * (c-ares, through dnsl.h's resolver) for the records of some domains
 * and follows them: ip4: and ip6: are networks as written, a and mx are
 * looked up (A and AAAA; mx: each exchange's), include: and redirect=
 * are walked; exists:, ptr, macros and mechanisms that do not pass
 * (-ip4:..., ~include:...) cannot become networks and are skipped with
 * a note, as is a network wider than SPF_V4LEN_MIN or SPF_V6LEN_MIN.
 * A domain is walked once however often it is named, include loops
 * included.  A fail mechanism does not carve its network out of a pass
 * one: the allowlist gets every network that can pass, ordered, not
 * SPF's evaluation.
 *
 * Bounds, for each domain named (its "top" domain): includes and
 * redirects nested at most SPF_DEPTH_MAX deep, at most SPF_LOOKUPS_MAX
 * DNS queries (RFC 7208's limit of 10 is for evaluating one message; a
 * walker that builds a list once may ask more), at most SPF_NETS_MAX
 * networks; and the whole walk at most cfg->total_ms.  A top domain
 * whose walk fails anywhere (no record, two records, a syntax error,
 * NXDOMAIN or SERVFAIL for a record, a timeout, a bound passed) has an
 * error and no networks: a list built from half a walk would drop
 * senders without saying so.
 *
 * Contract: spf_walk() neither prints nor logs: notes and errors are in
 * the results, as text (outside text escaped).  Every query has a
 * deadline; the resolver's sockets are close-on-exec.
 */
#ifndef SENDWRAP_SPF_H
#define SENDWRAP_SPF_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define SPF_RECORD_MAX 4096	/* a longer record is an error */
#define SPF_TERMS_MAX 128	/* terms in one record */
#define SPF_NAME_MAX 253	/* a domain name, without its final dot */
#define SPF_DEPTH_MAX 10	/* includes and redirects nested */
#define SPF_LOOKUPS_MAX 100	/* DNS queries for one top domain */
#define SPF_MX_MAX 10		/* exchanges of one mx (RFC 7208 4.6.4) */
#define SPF_NETS_MAX 10000	/* networks of one top domain */
#define SPF_NOTES_MAX 20	/* notes kept for one top domain */
#define SPF_V4LEN_MIN 8		/* wider networks are not allowlisted */
#define SPF_V6LEN_MIN 16
#define SPF_MESSAGE_MAX 320	/* a note or an error, with its NUL */

enum spf_mech {
	SPF_ALL, SPF_INCLUDE, SPF_A, SPF_MX, SPF_PTR, SPF_IP4, SPF_IP6,
	SPF_EXISTS,
	SPF_REDIRECT, SPF_EXP, SPF_MODIFIER	/* modifiers: name=value */
};

struct spf_term {
	enum spf_mech mech;
	char qualifier;			/* '+', '-', '~' or '?'; 0: a modifier */
	const char *text;		/* the term as written, in the record */
	size_t text_len;
	const char *domain;		/* the domain-spec, or NULL: none */
	size_t domain_len;
	int macro;			/* the domain-spec holds a macro (%) */
	struct addr net;		/* ip4, ip6: host bits cleared */
	unsigned len4, len6;		/* ip4: len4; ip6: len6; a, mx: both
					 * (default 32 and 128) */
};

struct spf_record {
	struct spf_term term[SPF_TERMS_MAX];
	size_t n;
	int has_all;			/* an all mechanism: redirect= is ignored */
	const struct spf_term *redirect;	/* or NULL */
};

/* Does this TXT record's text claim to be SPF ("v=spf1", then a space
 * or its end; any case)? */
int spf_is_record(const char *s, size_t len);

/*
 * Parse an SPF record (text of spf_is_record) into r; the terms point
 * into s.  0, or -1 with *why a static message and *at the offset of
 * the term at fault.
 */
int spf_parse(const char *s, size_t len, struct spf_record *r,
    const char **why, size_t *at);

/* Is s (len bytes) a domain name that can be looked up: letters,
 * digits, '-' and '_' in dot-separated labels of 1 to 63 that neither
 * start nor end with '-', at most SPF_NAME_MAX in all (a final dot
 * aside), the last label not a number? */
int spf_domain_ok(const char *s, size_t len);

/* One network, as the allowlist takes it. */
struct spf_net {
	struct addr net;		/* host bits cleared */
	unsigned prefix;
};

/* What the walk found for one top domain. */
struct spf_result {
	struct spf_net *nets;		/* IPv4 first, each by address then
					 * prefix; no exact repeats */
	size_t n;
	char *notes[SPF_NOTES_MAX];	/* sorted; "ptr in b.example: ..." */
	size_t nnotes;
	int notes_dropped;		/* more notes than SPF_NOTES_MAX */
	char error[SPF_MESSAGE_MAX];	/* "" or why the walk failed; then
					 * no networks and no notes */
};

struct spf_config {
	const char *server;		/* --dns-server, or NULL:
					 * /etc/resolv.conf */
	uint64_t try_ms;		/* a query's first try; one more,
					 * twice as long, follows */
	uint64_t total_ms;		/* the whole walk */
};

/*
 * Walk the n top domains (names of spf_domain_ok), all at once, into
 * res[0..n-1]; a domain named twice is walked once, and its second
 * result says so in a note.  0, or -1 with *why when no resolver could
 * be set up (res is then empty, to be freed all the same).
 */
int spf_walk(const char *const *domains, size_t n,
    const struct spf_config *cfg, struct spf_result *res, const char **why);

/* Free what spf_walk() put in res[0..n-1]. */
void spf_results_free(struct spf_result *res, size_t n);

#endif
