/*
 * fairq.h - the listener's programs (or, with --forward, its relayed
 * sessions): at most --max-children running at
 * once, at most --per-ip-children of them (the share) serving one
 * address (IPv4) or /64 (IPv6), and a fair queue for clients that passed
 * while there was no place for them.
 *
 * Fair means: an address cannot hold more than its share of the
 * programs, nor more than its share of the queue (one more is refused);
 * and when a place frees, the queued client whose address has the
 * fewest programs running goes next (the longest waiting of those), so a
 * client of an address with none is served before the next client of an
 * address that has several, wherever they stand in the queue.
 *
 * The counts per address live in an ipcount (IPC_QUEUED, IPC_RUNNING)
 * that the listener shares (it counts IPC_HELD there for --per-ip).
 * Items are the listener's, linked in here by a struct fairq_item of
 * theirs.  Contract: no I/O, no allocation after fairq_init().
 */
#ifndef SENDWRAP_FAIRQ_H
#define SENDWRAP_FAIRQ_H

#include <sys/types.h>

#include "children.h"
#include "ipcount.h"
#include "peer.h"

struct fairq_item {
	struct fairq_item *prev, *next;
	const struct peer *peer;	/* whose place this is */
};

struct fairq {
	struct fairq_item *head, *tail;
	unsigned long queued;
	unsigned long running;
	unsigned max;			/* --max-children */
	unsigned share;			/* --per-ip-children */
	struct ipcount *counts;
	struct children *pids;
};

/* The share when --per-ip-children is not given: a quarter of max. */
unsigned fairq_default_share(unsigned max);

/* 0, or -1 when out of memory. */
int fairq_init(struct fairq *q, unsigned max, unsigned share,
    struct ipcount *counts);

void fairq_free(struct fairq *q);

/* May a client of p start its program now: a place free, and its
 * address under its share? */
int fairq_may_run(const struct fairq *q, const struct peer *p);

/* p's program started as pid. */
void fairq_started(struct fairq *q, pid_t pid, const struct peer *p);

/* pid ended: 1 with the peer it served in *p, 0 if not ours. */
int fairq_ended(struct fairq *q, pid_t pid, struct peer *p);

/* A place taken, and given back, by a session with no process (a
 * client relayed to the MTA's daemon, --forward). */
void fairq_took(struct fairq *q, const struct peer *p);
void fairq_gave_back(struct fairq *q, const struct peer *p);

/* Queue it (it->peer set): 0, or -1 if its address has its share of
 * the queue already (then it is not queued). */
int fairq_push(struct fairq *q, struct fairq_item *it);

/* Take it out of the queue (it hung up, or waited too long). */
void fairq_remove(struct fairq *q, struct fairq_item *it);

/* The queued item to start now, taken out of the queue; NULL if there
 * is no place, or none whose address is under its share. */
struct fairq_item *fairq_next(struct fairq *q);

#endif
