/* tally.c - a report's counts; see tally.h. */
#include "tally.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define UNDATED_WHEN INT64_MAX	/* an undated line: after every dated one */

/* ------------------------------------------------------------ setting up */

void
tally_init(struct tally *t, enum report_by by, const struct cache_net *cut)
{
	size_t i;

	memset(t, 0, sizeof *t);
	t->by = by;
	t->cut = *cut;
	/* Keys no log line can know: no set of lines can fill one chain. */
	if (getrandom(t->keys, sizeof t->keys, GRND_NONBLOCK) !=
	    (ssize_t)sizeof t->keys)
		for (i = 0; i < sizeof t->keys / sizeof t->keys[0]; i++)
			t->keys[i] = ((uint64_t)time(NULL) + i) *
			    0x9e3779b97f4a7c15ULL ^ (uintptr_t)t;
}

static void
index_free(struct tally_index *ix)
{
	free(ix->head);
	free(ix->next);
	free(ix->hash);
}

void
tally_free(struct tally *t)
{
	free(t->early.ms);
	free(t->hangup.ms);
	free(t->waited.ms);
	free(t->grey.back.ms);
	free(t->fwd.length.ms);
	free(t->periods);
	index_free(&t->period_index);
	free(t->nets);
	index_free(&t->net_index);
	free(t->grey.peers);
	index_free(&t->grey.peer_index);
	free(t->grey.firsts);
	memset(t, 0, sizeof *t);
}

/* ------------------------------------------------------------ indexes */

/*
 * Hashing by multiply-add-shift (Dietzfelbinger; Thorup for vectors):
 * with random keys, two distinct inputs share a hash about as often as
 * chance has it, whatever the inputs, so chains stay short on average
 * for any log.
 */
static uint32_t
hash_day(const struct tally *t, int32_t key)
{
	return (uint32_t)((t->keys[0] * (uint32_t)key + t->keys[1]) >> 32);
}

static uint32_t
hash_addr(const struct tally *t, const struct addr *a)
{
	uint64_t h = t->keys[5] + t->keys[4] * (uint32_t)a->family;
	uint32_t w;
	int i;

	for (i = 0; i < 4; i++) {
		memcpy(&w, a->bytes + 4 * i, 4);
		h += t->keys[i] * w;
	}
	return (uint32_t)(h >> 32);
}

/* Grow an array of records to hold one more; 0, or -1. */
static int
room_for(void **records, size_t *cap, size_t n, size_t size)
{
	size_t want = *cap ? *cap * 2 : 64;
	void *p;

	if (n < *cap)
		return 0;
	if ((p = realloc(*records, want * size)) == NULL)
		return -1;
	*records = p;
	*cap = want;
	return 0;
}

/* The first record of a hash's chain: 1 + its number, or 0. */
static uint32_t
index_first(const struct tally_index *ix, uint32_t h)
{
	return ix->head ? ix->head[h >> (32 - ix->bits)] : 0;
}

/* Chain records 0 to n - 1 anew into 1 << bits buckets; 0, or -1. */
static int
index_rebucket(struct tally_index *ix, size_t n, unsigned bits)
{
	uint32_t *head = calloc((size_t)1 << bits, sizeof *head), b;
	size_t i;

	if (head == NULL)
		return -1;
	free(ix->head);
	ix->head = head;
	ix->bits = bits;
	for (i = 0; i < n; i++) {
		b = ix->hash[i] >> (32 - bits);
		ix->next[i] = head[b];
		head[b] = (uint32_t)i + 1;
	}
	return 0;
}

/* Index record n (those before it are) under hash h; 0, or -1. */
static int
index_add(struct tally_index *ix, size_t n, uint32_t h)
{
	uint32_t b;

	if (n == ix->room) {
		size_t room = ix->room ? ix->room * 2 : 64;
		uint32_t *next = realloc(ix->next, room * sizeof *next);
		uint32_t *hash;

		if (next == NULL)
			return -1;
		ix->next = next;
		if ((hash = realloc(ix->hash, room * sizeof *hash)) == NULL)
			return -1;
		ix->hash = hash;
		ix->room = room;
	}
	ix->hash[n] = h;
	/* At most one record a bucket on average. */
	if (ix->head == NULL || n + 1 > (size_t)1 << ix->bits)
		return index_rebucket(ix, n + 1, ix->head ? ix->bits + 1 : 6);
	b = h >> (32 - ix->bits);
	ix->next[n] = ix->head[b];
	ix->head[b] = (uint32_t)n + 1;
	return 0;
}

/*
 * The record of a (cut) address among n records of size bytes that each
 * start with a struct addr, added if new and below max: its number, or
 * -1 (at max, or out of memory: *failed set).
 */
static long
by_addr(struct tally *t, struct tally_index *ix, void **records,
    size_t *n, size_t *cap, size_t size, size_t max, const struct addr *a,
    int *failed)
{
	uint32_t h = hash_addr(t, a), i;
	struct addr *rec;

	for (i = index_first(ix, h); i != 0; i = ix->next[i - 1]) {
		rec = (struct addr *)((char *)*records + (i - 1) * size);
		if (ix->hash[i - 1] == h && rec->family == a->family &&
		    memcmp(rec->bytes, a->bytes, sizeof a->bytes) == 0)
			return (long)i - 1;
	}
	if (*n >= max)
		return -1;
	if (room_for(records, cap, *n, size) != 0 ||
	    index_add(ix, *n, h) != 0) {
		*failed = 1;
		return -1;
	}
	rec = (struct addr *)((char *)*records + *n * size);
	memset(rec, 0, size);
	*rec = *a;
	return (long)(*n)++;
}

/* ------------------------------------------------------------ periods */

/* Monday of the week of day (1970-01-01 was a Thursday). */
static int32_t
monday(int32_t day)
{
	return day - (int32_t)((((int64_t)day + 3) % 7 + 7) % 7);
}

/* The period key falls in, made if need be (past TALLY_PERIODS_MAX, the
 * overflow row); NULL if out of memory. */
static struct tally_period *
period(struct tally *t, int32_t key)
{
	struct tally_index *ix = &t->period_index;
	uint32_t h = hash_day(t, key), i;
	struct tally_period *p;
	int dated;

	for (i = index_first(ix, h); i != 0; i = ix->next[i - 1])
		if (t->periods[i - 1].key == key)
			return &t->periods[i - 1];
	dated = key != TALLY_OVERFLOW && key != REPORT_UNDATED;
	if (dated && t->ndated >= TALLY_PERIODS_MAX) {
		t->overflow++;
		return period(t, TALLY_OVERFLOW);
	}
	if (room_for((void **)&t->periods, &t->cap, t->nperiods,
	    sizeof *p) != 0 || index_add(ix, t->nperiods, h) != 0)
		return NULL;
	t->ndated += dated;
	p = &t->periods[t->nperiods++];
	memset(p, 0, sizeof *p);
	p->key = key;
	return p;
}

static int
by_key(const void *a, const void *b)
{
	int32_t x = ((const struct tally_period *)a)->key;
	int32_t y = ((const struct tally_period *)b)->key;

	return x < y ? -1 : x > y;
}

/* In order of their keys, the index made again for the new places. */
static void
sort_periods(struct tally *t)
{
	size_t i;

	if (t->nperiods < 2)
		return;
	qsort(t->periods, t->nperiods, sizeof *t->periods, by_key);
	for (i = 0; i < t->nperiods; i++)
		t->period_index.hash[i] = hash_day(t, t->periods[i].key);
	if (index_rebucket(&t->period_index, t->nperiods,
	    t->period_index.bits) != 0)
		t->failed = 1;
}

/* ------------------------------------------------------------ times */

static void
hist_add(struct tally *t, struct tally_hist *h, int64_t ms)
{
	uint32_t v = ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;

	if (ms < 0)
		return;
	if (h->n == h->cap) {
		unsigned long cap = h->cap ? h->cap * 2 : 1024;
		uint32_t *p = realloc(h->ms, cap * sizeof *p);

		if (p == NULL) {
			t->failed = 1;
			return;
		}
		h->ms = p;
		h->cap = cap;
	}
	h->ms[h->n++] = v;
	h->sum_ms += v;
	if (v > h->max_ms)
		h->max_ms = v;
}

static int
by_ms(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

unsigned long
tally_within(const struct tally_hist *h, uint64_t ms)
{
	unsigned long lo = 0, hi = h->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (h->ms[mid] <= ms)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

uint64_t
tally_quantile(const struct tally_hist *h, double q)
{
	unsigned long want;

	if (h->n == 0)
		return 0;
	want = (unsigned long)(q * (double)h->n + 0.5);
	return h->ms[(want < 1 ? 1 : want > h->n ? h->n : want) - 1];
}

/* Remember a delay of the pass lines (the first TALLY_DELAYS seen). */
static void
delay_seen(struct tally *t, int64_t ms)
{
	size_t i;

	if (ms <= 0)
		return;
	for (i = 0; i < t->ndelays && t->delays[i] < (uint64_t)ms; i++)
		;
	if ((i < t->ndelays && t->delays[i] == (uint64_t)ms) ||
	    t->ndelays == TALLY_DELAYS)
		return;
	memmove(&t->delays[i + 1], &t->delays[i],
	    (t->ndelays - i) * sizeof t->delays[0]);
	t->delays[i] = (uint64_t)ms;
	t->ndelays++;
}

/* ------------------------------------------------------------ networks */

/* The address cut as --cache-net cuts a cache key. */
static struct addr
cut(const struct tally *t, const struct addr *a)
{
	struct addr net = *a;

	addr_cut(&net, net.family == AF_INET ? t->cut.v4len : t->cut.v6len);
	return net;
}

static void
count_net(struct tally *t, const struct addr *a)
{
	struct addr net = cut(t, a);
	long i = by_addr(t, &t->net_index, (void **)&t->nets, &t->nnets,
	    &t->netcap, sizeof *t->nets, TALLY_NETS_MAX, &net, &t->failed);

	if (i < 0)
		t->untracked++;
	else
		t->nets[i].n++;
}

static int
by_count(const void *a, const void *b)
{
	const struct tally_net *x = a, *y = b;

	if (x->n != y->n)
		return x->n < y->n ? 1 : -1;
	if (x->net.family != y->net.family)
		return x->net.family < y->net.family ? -1 : 1;
	return memcmp(x->net.bytes, y->net.bytes, sizeof x->net.bytes);
}

size_t
tally_top(const struct tally *t, struct tally_net *out, size_t n)
{
	size_t i, k = 0;

	/* A selection of the n largest, each pass a scan: n is small. */
	for (k = 0; k < n; k++) {
		const struct tally_net *best = NULL;

		for (i = 0; i < t->nnets; i++) {
			const struct tally_net *c = &t->nets[i];

			if (best && by_count(c, best) >= 0)
				continue;
			if (k > 0 && by_count(c, &out[k - 1]) <= 0)
				continue;	/* taken already */
			best = c;
		}
		if (best == NULL)
			break;
		out[k] = *best;
	}
	return k;
}

/* ------------------------------------------------------------ greylist */

/* When a line was, to compare two lines: (when, line). */
static int64_t
when(const struct report_event *ev)
{
	return ev->day == REPORT_UNDATED || ev->secs < 0 ? UNDATED_WHEN :
	    (int64_t)ev->day * 86400 + ev->secs;
}

/* The greylisted network of ev, followed: its number, or -1 (counted as
 * untracked). */
static long
peer(struct tally *t, const struct report_event *ev)
{
	struct tally_grey *g = &t->grey;
	struct addr net;
	long i = -1;

	if (ev->known) {
		net = cut(t, &ev->addr);
		if ((i = by_addr(t, &g->peer_index, (void **)&g->peers,
		    &g->npeers, &g->peercap, sizeof *g->peers, TALLY_PEERS_MAX,
		    &net, &t->failed)) >= 0 && g->peers[i].back_line == 0)
			g->peers[i].back = INT64_MIN;
	}
	if (i < 0)
		g->untracked++;
	return i;
}

static void
first_attempt(struct tally *t, const struct report_event *ev)
{
	struct tally_grey *g = &t->grey;
	struct tally_first *f;
	long i;

	g->first++;
	if ((i = peer(t, ev)) < 0)
		return;
	if (g->nfirsts >= TALLY_FIRSTS_MAX || room_for((void **)&g->firsts,
	    &g->firstcap, g->nfirsts, sizeof *f) != 0) {
		g->untracked++;
		t->failed |= g->nfirsts < TALLY_FIRSTS_MAX;
		return;
	}
	f = &g->firsts[g->nfirsts++];
	f->when = when(ev);
	f->line = t->lines;
	f->peer = (uint32_t)i;
}

/* A grey first=no or a pass grey= line: the network came back. */
static void
came_back(struct tally *t, const struct report_event *ev)
{
	struct tally_peer *p;
	int64_t w = when(ev);
	long i;

	if ((i = peer(t, ev)) < 0)
		return;
	p = &t->grey.peers[i];
	if (w > p->back || (w == p->back && t->lines > p->back_line)) {
		p->back = w;
		p->back_line = t->lines;
	}
}

/* The first attempts with no return after them. */
static void
count_never(struct tally_grey *g)
{
	size_t i;

	g->never = 0;
	for (i = 0; i < g->nfirsts; i++) {
		const struct tally_first *f = &g->firsts[i];
		const struct tally_peer *p = &g->peers[f->peer];

		g->never += p->back < f->when || (p->back == f->when &&
		    p->back_line < f->line);
	}
}

static void
add_grey(struct tally *t, const struct report_event *ev)
{
	struct tally_grey *g = &t->grey;

	/* test=: failed, and let go on (-x pass) */
	if ((ev->verdict == VERDICT_GREY || ev->verdict == VERDICT_TRAPPED) &&
	    ev->detail >= 0)
		g->tests[ev->detail][EARLY_PASS]++;
	switch (ev->verdict) {
	case VERDICT_GREY:
		if (ev->first)
			first_attempt(t, ev);
		else {
			g->too_soon++;
			came_back(t, ev);
		}
		break;
	case VERDICT_PASS:
		if (ev->grey_ms >= 0) {
			hist_add(t, &g->back, ev->grey_ms);
			came_back(t, ev);
		}
		break;
	case VERDICT_PIPELINING:
	case VERDICT_NON_SMTP:
	case VERDICT_BARE_NEWLINE:
		g->tests[ev->verdict - VERDICT_PIPELINING][ev->detail]++;
		break;
	default:
		break;
	}
}

int
tally_greylisted(const struct tally *t, const struct tally_period *sum)
{
	int v;

	for (v = VERDICT_GREY; v <= VERDICT_BARE_NEWLINE; v++)
		if (sum->n[v])
			return 1;
	return t->grey.back.n > 0;
}

/* ------------------------------------------------------------ relaying */

/* a + b, at most UINT64_MAX. */
static uint64_t
add_bytes(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Whether the client of a session was told 421 4.3.0, as relay_reply()
 * decides: nothing came from the MTA, and the client did not end it. */
static int
deferred(const struct report_event *ev)
{
	return ev->out == 0 && ev->detail != RELAY_CLIENT_CLOSED &&
	    ev->detail != RELAY_CLIENT_RESET && ev->detail != RELAY_CLIENT_ERROR;
}

static void
add_forwarded(struct tally *t, struct tally_period *p,
    const struct report_event *ev)
{
	struct tally_forward *fw = &t->fwd;

	p->forwarded++;
	p->in = add_bytes(p->in, ev->in);
	p->out = add_bytes(p->out, ev->out);
	fw->ends[ev->detail]++;
	fw->deferred += deferred(ev);
	/* an unreachable MTA: no session, and a length of 0 */
	if (ev->detail == RELAY_UNREACHABLE)
		p->unreachable++;
	else
		hist_add(t, &fw->length, ev->ms);
}

/* ------------------------------------------------------------ adding */

void
tally_finish(struct tally *t)
{
	struct tally_hist *h[] = { &t->early, &t->hangup, &t->waited,
	    &t->grey.back, &t->fwd.length };
	size_t i;

	sort_periods(t);
	for (i = 0; i < sizeof h / sizeof h[0]; i++)
		if (h[i]->n > 1)
			qsort(h[i]->ms, h[i]->n, sizeof *h[i]->ms, by_ms);
	count_never(&t->grey);
}

static void
add_event(struct tally *t, struct tally_period *p,
    const struct report_event *ev)
{
	p->n[ev->verdict]++;
	p->stressed += ev->stress != 0;
	switch (ev->verdict) {
	case VERDICT_PASS:
		hist_add(t, &t->waited, ev->ms);
		delay_seen(t, ev->delay_ms);
		break;
	case VERDICT_ALLOW:
		p->allow_by[ev->detail]++;
		break;
	case VERDICT_EARLY:
		p->early_by[ev->detail]++;
		hist_add(t, &t->early, ev->ms);
		if (ev->known)
			count_net(t, &ev->addr);
		break;
	case VERDICT_KNOWN_EARLY:
		p->known_by[ev->detail]++;
		break;
	case VERDICT_HANGUP:
		hist_add(t, &t->hangup, ev->ms);
		break;
	case VERDICT_TARPIT:
		p->held_ms += (uint64_t)ev->ms;
		break;
	default:
		break;
	}
	add_grey(t, ev);
}

void
tally_add(struct tally *t, enum line_kind kind, const struct report_event *ev)
{
	struct tally_period *p;

	t->lines++;
	if (kind == LINE_OTHER) {
		t->other++;
		return;
	}
	if (kind == LINE_MALFORMED) {
		t->malformed++;
		return;
	}
	if (kind == LINE_NOTICE) {
		t->notices++;
		return;
	}
	if (kind == LINE_FORWARDED)
		t->forwarded++;
	else
		t->events++;
	p = period(t, ev->day == REPORT_UNDATED || t->by == BY_DAY ? ev->day :
	    monday(ev->day));
	if (p == NULL) {
		t->failed = 1;
		return;
	}
	if (kind == LINE_FORWARDED)
		add_forwarded(t, p, ev);
	else
		add_event(t, p, ev);
}

void
tally_total(const struct tally *t, struct tally_period *sum)
{
	size_t i, k;

	memset(sum, 0, sizeof *sum);
	sum->key = t->nperiods ? t->periods[0].key : REPORT_UNDATED;
	for (i = 0; i < t->nperiods; i++) {
		const struct tally_period *p = &t->periods[i];

		for (k = 0; k < VERDICT_COUNT; k++)
			sum->n[k] += p->n[k];
		for (k = 0; k < REASON_COUNT; k++)
			sum->allow_by[k] += p->allow_by[k];
		for (k = 0; k < EARLY_COUNT; k++) {
			sum->early_by[k] += p->early_by[k];
			sum->known_by[k] += p->known_by[k];
		}
		sum->stressed += p->stressed;
		sum->held_ms += p->held_ms;
		sum->forwarded += p->forwarded;
		sum->unreachable += p->unreachable;
		sum->in = add_bytes(sum->in, p->in);
		sum->out = add_bytes(sum->out, p->out);
	}
}

unsigned long
tally_connections(const struct tally_period *p)
{
	unsigned long n = 0;
	int k;

	for (k = 0; k < VERDICT_COUNT; k++)
		if (k != VERDICT_ERROR)
			n += p->n[k];
	return n;
}

void
tally_label(const struct tally *t, int32_t key, char *buf, size_t size)
{
	int y, m, d, wy, wm, wd;
	int32_t thursday;

	if (key == REPORT_UNDATED || key == TALLY_OVERFLOW) {
		snprintf(buf, size, key == REPORT_UNDATED ? "undated" :
		    "overflow");
		return;
	}
	report_date(key, &y, &m, &d);
	if (t->by == BY_DAY) {
		snprintf(buf, size, "%04d-%02d-%02d", y, m, d);
		return;
	}
	/* ISO 8601: the week belongs to the year of its Thursday. */
	thursday = monday(key) + 3;
	report_date(thursday, &wy, &wm, &wd);
	snprintf(buf, size, "%04d-W%02d", wy,
	    (thursday - report_days(wy, 1, 1)) / 7 + 1);
}
