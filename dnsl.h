/*
 * dnsl.h - DNS block and allow lists, asked while the client waits.
 *
 * A list is given as postscreen's dnsbl sites are: ZONE[=FILTER][*WEIGHT].
 * The client 192.0.2.1 is looked up as 1.2.0.192.ZONE (an IPv6 client as
 * its 32 nibbles, reversed, then ZONE), type A; it is listed when an
 * answer matches FILTER (any answer when there is none).  FILTER is four
 * octets, each a number or a bracketed set of numbers and ranges:
 * 127.0.0.2, 127.0.0.[2..11], 127.0.[0..255].[1;2;3].  A listed client
 * scores WEIGHT (default 1 for a block list, -1 for an allow list), once
 * per list however many answers match.
 *
 * The queries of one client run in parallel on a c-ares channel that the
 * caller drives from its own loop (dnsl_fds, dnsl_process); a query that
 * fails (timeout, SERVFAIL, no server) counts as not listed, and so does
 * one still out when the caller stops waiting.
 *
 * The resolver also carries the queries of --spf-walk (spf.h), set up
 * the same way (dnsl_query).
 *
 * Contract: no logging; parsing is pure; a lookup allocates its channel
 * and its state, freed by dnsl_end(), which cancels what is still out.
 * The channel's sockets are close-on-exec.
 */
#ifndef SENDWRAP_DNSL_H
#define SENDWRAP_DNSL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/select.h>

#include "addr.h"

#define DNSL_MAX 16		/* lists given at most */
#define DNSL_ZONE_MAX 200	/* a zone's length */
#define DNSL_TEXT_MAX (DNSL_MAX * (DNSL_ZONE_MAX + 8))

struct dnsl_list {
	char zone[DNSL_ZONE_MAX + 1];
	int weight;
	int allow;			/* an allow list (--dnswl) */
	int filtered;			/* answers must match filter */
	unsigned char filter[4][32];	/* a bit per value of each octet */
};

/* Called when a socket of the resolver opens (want_read/want_write say
 * for what) or closes (both 0): for callers that watch with epoll. */
typedef void (*dnsl_socket_fn)(void *ctx, int fd, int want_read,
    int want_write);

/* Called when a lookup has news: a list answered, or all are in. */
typedef void (*dnsl_news_fn)(void *ctx);

struct dnsl_config {
	const struct dnsl_list *lists;
	size_t n;
	const char *server;		/* --dns-server "ADDR[:PORT]", or NULL:
					 * /etc/resolv.conf */
	uint64_t timeout_ms;		/* a query's first try */
	dnsl_socket_fn on_socket;	/* or NULL */
	void *socket_ctx;
};

/* What the lists said so far. */
struct dnsl_score {
	int score;			/* sum of the weights of lists that listed */
	unsigned pending;		/* queries still out */
	uint32_t listed;		/* bit i: list i listed the client */
	int min_left, max_left;		/* what the pending lists may still add */
};

struct dnsl_resolver;
struct dnsl_lookup;

/*
 * Parse "ZONE[=FILTER][*WEIGHT]"; allow gives the default weight -1.
 * 0, or -1 with *why a static message.
 */
int dnsl_parse(const char *spec, int allow, struct dnsl_list *l,
    const char **why);

/* Check "ADDR[:PORT]" or "[ADDR6]:PORT" as --dns-server takes it. */
int dnsl_server_parse(const char *s, const char **why);

/* The name to look up for a in zone ("2.0.0.127.zone").  Its length,
 * or 0 if it does not fit. */
size_t dnsl_query_name(const struct addr *a, const char *zone, char *buf,
    size_t size);

/* Does an A answer (4 bytes) count for list l? */
int dnsl_answer_counts(const struct dnsl_list *l, const unsigned char *a4);

/* A resolver for cfg (kept by reference); NULL with *why. */
struct dnsl_resolver *dnsl_resolver_new(const struct dnsl_config *cfg,
    const char **why);

/* Free r, with its memory given back to the system.  Lookups made on r
 * that were not ended keep their results (a query still out counts as
 * not listed). */
void dnsl_resolver_free(struct dnsl_resolver *r);

/* For select: the resolver's sockets into rfds/wfds, the highest + 1
 * into *nfds; and the milliseconds until its next timeout (-1: none). */
void dnsl_fds(struct dnsl_resolver *r, fd_set *rfds, fd_set *wfds,
    int *nfds);
int64_t dnsl_timeout_ms(struct dnsl_resolver *r);

/* After select: read what came, send what is due, handle timeouts. */
void dnsl_process(struct dnsl_resolver *r, fd_set *rfds, fd_set *wfds);

/* For epoll: process one socket (-1: none, timeouts only). */
void dnsl_process_fd(struct dnsl_resolver *r, int rfd, int wfd);

/*
 * Look a up in every list, all at once; news(ctx), if not NULL, is called
 * as answers come.  NULL when out of memory.
 */
struct dnsl_lookup *dnsl_start(struct dnsl_resolver *r,
    const struct addr *a, dnsl_news_fn news, void *ctx);

/* The score so far. */
const struct dnsl_score *dnsl_result(const struct dnsl_lookup *l);

/*
 * "zen.example:3,bl.example:1": the allow lists (allow = 1) or block
 * lists (allow = 0) that listed the client.  Its length.
 */
size_t dnsl_listed_text(const struct dnsl_lookup *l, int allow, char *buf,
    size_t size);

/* The zone of the heaviest block list that listed the client, or NULL. */
const char *dnsl_top_zone(const struct dnsl_lookup *l);

/*
 * A query of another kind on r's channel (spf.h asks TXT, A, AAAA and
 * MX): fn(arg, status, timeouts, abuf, alen) is called once, as c-ares
 * calls it, maybe before this returns; with ARES_EDESTRUCTION when r is
 * freed first.
 */
typedef void (*dnsl_answer_fn)(void *arg, int status, int timeouts,
    unsigned char *abuf, int alen);
void dnsl_query(struct dnsl_resolver *r, const char *name, int type,
    dnsl_answer_fn fn, void *arg);

/* Stop caring about l: answers still out are dropped as they come, and
 * l goes with the last of them.  NULL is fine; news is never called
 * again. */
void dnsl_end(struct dnsl_lookup *l);

#endif
