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
 *    any share or percentile is exact), the delays seen in pass lines,
 *    and the early talkers counted per network (cut as --cache-net cuts
 *    a cache key);
 *  - the greylist's figures (struct tally_grey): first attempts, how
 *    many came back and passed and after how long, how many never came
 *    back, the failed tests.  A first attempt came back if a grey
 *    first=no or a pass grey= line of its network (cut as the cache
 *    cuts it) is later: by the lines' date and time, then their order
 *    (undated lines after all dated ones), so that files may be given
 *    in any order.
 *
 * Time: each line costs the same whatever the lines before it (periods,
 * networks and greylisted networks are found through hash indexes keyed
 * at random per run, so that no set of log lines can make them slow);
 * tally_finish() sorts once.
 *
 * Memory, in bytes on a 64-bit system (each array doubles as it grows,
 * so up to twice this, briefly three times):
 *  - a time: 4;
 *  - a period (a day or week): 296 (struct tally_period) and 16 of
 *    index; at most TALLY_PERIODS_MAX (78 MB and 4 MB): the lines of any
 *    further period are counted in one row, TALLY_OVERFLOW ("overflow"),
 *    and in t->overflow;
 *  - a network that talked early: 32, and 16 of index; at most
 *    TALLY_NETS_MAX (134 MB and 67 MB), early talkers of further
 *    networks counted in t->untracked;
 *  - a greylisted network: 40 and 16 of index, and a first attempt: 24;
 *    at most TALLY_PEERS_MAX and TALLY_FIRSTS_MAX (235 MB and 101 MB),
 *    lines past them (and of no address) counted in grey.untracked and
 *    left out of "never came back";
 *  - the relayed sessions (struct tally_forward) of the forwarded lines,
 *    which are no connections (tally_connections() leaves them out):
 *    per period their number, the unreachable ones and the bytes each
 *    way; over the whole their ends by kind, the ones told to come back
 *    later, and the lengths of those that reached the MTA.
 *
 * Contract: memory only, no I/O (getrandom() for the indexes' keys).
 * Running out of memory sets failed (the report is then short), never a
 * crash.  Call tally_finish() once everything is added, before reading
 * the periods, the times or the greylist's figures.
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
#define TALLY_PERIODS_MAX (1u << 18)	/* days or weeks; more: overflow */
#define TALLY_OVERFLOW (REPORT_UNDATED - 1)	/* their row's key */
#define TALLY_PEERS_MAX (1u << 22)	/* greylisted networks followed */
#define TALLY_FIRSTS_MAX (1u << 22)	/* first attempts followed */

struct tally_period {
	int32_t key;		/* the day, the Monday of the week, or
				 * TALLY_OVERFLOW or REPORT_UNDATED */
	unsigned long n[VERDICT_COUNT];	/* lines by verdict (error too) */
	unsigned long allow_by[REASON_COUNT];
	unsigned long early_by[EARLY_COUNT];
	unsigned long known_by[EARLY_COUNT];
	unsigned long stressed;
	uint64_t held_ms;	/* tar pit */
	unsigned long forwarded;	/* forwarded lines: relayed sessions */
	unsigned long unreachable;	/* of them, end=unreachable */
	uint64_t in, out;	/* their bytes (at most UINT64_MAX) */
};

/* Times, to the millisecond. */
struct tally_hist {
	uint32_t *ms;		/* sorted by tally_finish() */
	unsigned long n, cap;
	uint64_t sum_ms;
	uint64_t max_ms;
};

/* Records found by a hash: chains of record numbers. */
struct tally_index {
	uint32_t *head;		/* by bucket: 1 + the first record, or 0 */
	uint32_t *next;		/* by record: 1 + the next in its chain */
	uint32_t *hash;		/* by record */
	unsigned bits;		/* 1 << bits buckets */
	size_t room;		/* records next and hash hold */
};

struct tally_net {
	struct addr net;	/* cut to its prefix; first, for by_addr() */
	unsigned long n;
};

/* A greylisted network: when it last came back (a grey first=no or a
 * pass grey= line), as (when, line); when INT64_MIN: never. */
struct tally_peer {
	struct addr net;	/* cut to its prefix; first, for by_addr() */
	int64_t back;
	uint64_t back_line;
};

/* A first attempt: when, and of which peer. */
struct tally_first {
	int64_t when;		/* seconds of its day and time, or INT64_MAX */
	uint64_t line;		/* its number among the lines read */
	uint32_t peer;
};

struct tally_grey {
	unsigned long first;	/* grey first=yes */
	unsigned long too_soon;	/* grey first=no */
	struct tally_hist back;	/* the grey= of pass lines: came back */
	/* Failed tests by kind (grey_test_names) and -x action: the
	 * pipelining, non-smtp, bare-newline lines, and EARLY_PASS: grey
	 * and trapped lines with test=. */
	unsigned long tests[GREY_TEST_COUNT][EARLY_COUNT];
	unsigned long never;	/* first attempts never back (finish) */
	unsigned long untracked;	/* lines not followed (see above) */
	struct tally_peer *peers;
	size_t npeers, peercap;
	struct tally_index peer_index;
	struct tally_first *firsts;
	size_t nfirsts, firstcap;
};

/* The relayed sessions of the forwarded lines (per period: struct
 * tally_period). */
struct tally_forward {
	unsigned long ends[RELAY_END_COUNT];	/* by end= */
	unsigned long deferred;	/* told 421 4.3.0 to come back later */
	struct tally_hist length;	/* of those that reached the MTA */
};

struct tally {
	enum report_by by;
	struct cache_net cut;
	uint64_t keys[6];		/* the indexes' hash keys */
	struct tally_period *periods;	/* sorted by key by tally_finish() */
	size_t nperiods, cap;
	size_t ndated;			/* periods but overflow and undated */
	struct tally_index period_index;
	unsigned long overflow;		/* lines in the overflow row */
	unsigned long lines, events, notices, malformed, other;
	unsigned long forwarded;	/* forwarded lines */
	unsigned long untracked;	/* early talkers of no network kept */
	struct tally_hist early, hangup, waited;
	uint64_t delays[TALLY_DELAYS];	/* seen in pass lines, sorted */
	size_t ndelays;
	struct tally_net *nets;
	size_t nnets, netcap;
	struct tally_index net_index;
	struct tally_grey grey;
	struct tally_forward fwd;
	int failed;			/* out of memory: the report is short */
};

void tally_init(struct tally *t, enum report_by by,
    const struct cache_net *cut);

void tally_free(struct tally *t);

/* Count one line of the kind report_parse() said (ev for LINE_EVENT). */
void tally_add(struct tally *t, enum line_kind kind,
    const struct report_event *ev);

/* Sort the periods and times, and count the first attempts that never
 * came back: after the last tally_add(), before what follows. */
void tally_finish(struct tally *t);

/* Every period added into one (key: the first period's, or
 * REPORT_UNDATED). */
void tally_total(const struct tally *t, struct tally_period *sum);

/* Connections in a period: every verdict line but error (forwarded
 * lines are none). */
unsigned long tally_connections(const struct tally_period *p);

/* Whether the lines read had any of the greylist's (sum: the total). */
int tally_greylisted(const struct tally *t, const struct tally_period *sum);

/* Of h, how many took at most ms. */
unsigned long tally_within(const struct tally_hist *h, uint64_t ms);

/* The time below which a share q (0 to 1) of h falls. */
uint64_t tally_quantile(const struct tally_hist *h, double q);

/*
 * The n networks that talked early most, most first, into out (room for
 * n); returns how many.
 */
size_t tally_top(const struct tally *t, struct tally_net *out, size_t n);

/* "2026-11-30", "2026-W48" (ISO week), "overflow" or "undated". */
void tally_label(const struct tally *t, int32_t key, char *buf,
    size_t size);

#endif
