/*
 * intervals.h - an allowlist's first-match order resolved into disjoint
 * address intervals.  Networks go in in text order; out come, in address
 * order, the intervals in which one of them is the first to match, each
 * with that network's place in the text.  An address no network covers
 * is in no interval; neighbouring intervals of one winner are joined.
 *
 * CIDR networks either nest or are disjoint, so this is one sweep over
 * them sorted by address: O(n log n) time, O(n) memory, at most 2n
 * intervals, whatever the prefix lengths.
 *
 * Contract: no I/O, no logging; memory from malloc, freed by iv_free().
 */
#ifndef SENDWRAP_INTERVALS_H
#define SENDWRAP_INTERVALS_H

#include <stddef.h>

#include "addr.h"

struct iv_set;

struct iv_interval {
	int family;			/* AF_INET or AF_INET6 */
	unsigned char first[16];	/* 4 used for AF_INET */
	unsigned char last[16];
	size_t winner;			/* its network's place, from 0 */
};

struct iv_counts {
	size_t networks;
	size_t repeats;		/* the same network as an earlier one */
	size_t shadowed;	/* first nowhere (not counting repeats) */
	size_t intervals;
};

struct iv_set *iv_new(void);

/* Add the next network (no bits set past prefix): 0, or -1 with errno
 * ENOMEM, or EFBIG past 2^32 - 1 networks. */
int iv_add(struct iv_set *s, const struct addr *net, unsigned prefix);

/*
 * Call out for each interval, in address order (IPv4 first), until it
 * returns non-zero: that value, or 0.  *c is filled (intervals: those
 * handed out).  May be called again.
 */
int iv_resolve(struct iv_set *s,
    int (*out)(void *ctx, const struct iv_interval *iv), void *ctx,
    struct iv_counts *c);

void iv_free(struct iv_set *s);

#endif
