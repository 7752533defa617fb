/*
 * tally.h - what a report counts: the events of report.h added up per
 * day or week, and over the whole, in the form every output (reportfmt.h)
 * reads.
 *
 *  - per period: connections by verdict (every verdict line but error),
 *    allow by reason, early and known-early by action, stress=1,
 *    error lines, the tar pit's hours held;
 *  - over the whole: the times into the wait at which early talkers
 *    talked and hang-ups hung up, and the waits of clients that passed,
 *    each kept to the millisecond and sorted by tally_finish() (so that
 *    any share or percentile is exact: four bytes a time),
 *    the delays seen in pass lines, and the early talkers counted per
 *    network (cut as --cache-net cuts a cache key).
 *
 * Contract: memory only, no I/O.  Running out of memory sets failed (the
 * report is then short), never a crash.  Call tally_finish() once
 * everything is added, before reading the times.
 */
#ifndef SENDWRAP_TALLY_H
#define SENDWRAP_TALLY_H

#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "names.h"
#include "report.h"

#define TALLY_DELAYS 8		/* distinct delays remembered */
#define TALLY_NETS_MAX (1u << 22)	/* networks counted; more: untracked */

struct tally_period {
	int32_t key;		/* the day, or the Monday of the week */
	unsigned long n[VERDICT_COUNT];	/* lines by verdict (error too) */
	unsigned long allow_by[REASON_COUNT];
	unsigned long early_by[EARLY_COUNT];
	unsigned long known_by[EARLY_COUNT];
	unsigned long stressed;
	uint64_t held_ms;	/* tar pit */
};

/* Times, to the millisecond. */
struct tally_hist {
	uint32_t *ms;		/* sorted by tally_finish() */
	unsigned long n, cap;
	uint64_t sum_ms;
	uint64_t max_ms;
};

struct tally_net {
	struct addr net;	/* cut to its prefix; family 0: empty slot */
	unsigned long n;
};

struct tally {
	enum report_by by;
	struct cache_net cut;
	struct tally_period *periods;	/* sorted by key */
	size_t nperiods, cap;
	unsigned long lines, events, notices, malformed, other;
	unsigned long untracked;	/* early talkers of no network kept */
	struct tally_hist early, hangup, waited;
	uint64_t delays[TALLY_DELAYS];	/* seen in pass lines, sorted */
	size_t ndelays;
	struct tally_net *nets;		/* open addressing */
	size_t nnets, netcap;
	int failed;			/* out of memory: the report is short */
};

void tally_init(struct tally *t, enum report_by by,
    const struct cache_net *cut);

void tally_free(struct tally *t);

/* Count one line of the kind report_parse() said (ev for LINE_EVENT). */
void tally_add(struct tally *t, enum line_kind kind,
    const struct report_event *ev);

/* Sort the times: after the last tally_add(), before what follows. */
void tally_finish(struct tally *t);

/* Every period added into one (key: the first period's, or
 * REPORT_UNDATED). */
void tally_total(const struct tally *t, struct tally_period *sum);

/* Connections in a period: every verdict line but error. */
unsigned long tally_connections(const struct tally_period *p);

/* Of h, how many took at most ms. */
unsigned long tally_within(const struct tally_hist *h, uint64_t ms);

/* The time below which a share q (0 to 1) of h falls. */
uint64_t tally_quantile(const struct tally_hist *h, double q);

/*
 * The n networks that talked early most, most first, into out (room for
 * n); returns how many.
 */
size_t tally_top(const struct tally *t, struct tally_net *out, size_t n);

/* "2026-11-30", "2026-W48" (ISO week) or "undated". */
void tally_label(const struct tally *t, int32_t key, char *buf,
    size_t size);

#endif
