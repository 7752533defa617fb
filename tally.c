/* tally.c - a report's counts; see tally.h. */
#include "tally.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ setting up */

void
tally_init(struct tally *t, enum report_by by, const struct cache_net *cut)
{
	memset(t, 0, sizeof *t);
	t->by = by;
	t->cut = *cut;
}

void
tally_free(struct tally *t)
{
	free(t->early.ms);
	free(t->hangup.ms);
	free(t->waited.ms);
	free(t->periods);
	free(t->nets);
	memset(t, 0, sizeof *t);
}

/* ------------------------------------------------------------ periods */

/* Monday of the week of day (1970-01-01 was a Thursday). */
static int32_t
monday(int32_t day)
{
	return day - (int32_t)((((int64_t)day + 3) % 7 + 7) % 7);
}

/* The period key falls in, made if need be; NULL if out of memory. */
static struct tally_period *
period(struct tally *t, int32_t key)
{
	size_t lo = 0, hi = t->nperiods, mid;
	struct tally_period *p;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (t->periods[mid].key < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < t->nperiods && t->periods[lo].key == key)
		return &t->periods[lo];
	if (t->nperiods == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;

		if ((p = realloc(t->periods, cap * sizeof *p)) == NULL)
			return NULL;
		t->periods = p;
		t->cap = cap;
	}
	p = &t->periods[lo];
	memmove(p + 1, p, (t->nperiods - lo) * sizeof *p);
	t->nperiods++;
	memset(p, 0, sizeof *p);
	p->key = key;
	return p;
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

void
tally_finish(struct tally *t)
{
	struct tally_hist *h[] = { &t->early, &t->hangup, &t->waited };
	size_t i;

	for (i = 0; i < sizeof h / sizeof h[0]; i++)
		if (h[i]->n > 1)
			qsort(h[i]->ms, h[i]->n, sizeof *h[i]->ms, by_ms);
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

static size_t
net_hash(const struct addr *a, size_t cap)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)a->family;
	int i;

	for (i = 0; i < 16; i++)
		h = (h ^ a->bytes[i]) * 1099511628211ULL;
	return (size_t)(h ^ (h >> 29)) & (cap - 1);
}

static struct tally_net *
net_slot(struct tally_net *nets, size_t cap, const struct addr *a)
{
	size_t i = net_hash(a, cap);

	while (nets[i].net.family != 0 &&
	    (nets[i].net.family != a->family ||
	    memcmp(nets[i].net.bytes, a->bytes, sizeof a->bytes) != 0))
		i = (i + 1) & (cap - 1);
	return &nets[i];
}

/* Twice the room (or the first); 0, or -1. */
static int
nets_grow(struct tally *t)
{
	size_t cap = t->netcap ? t->netcap * 2 : 1024, i;
	struct tally_net *n = calloc(cap, sizeof *n);

	if (n == NULL)
		return -1;
	for (i = 0; i < t->netcap; i++)
		if (t->nets[i].net.family != 0)
			*net_slot(n, cap, &t->nets[i].net) = t->nets[i];
	free(t->nets);
	t->nets = n;
	t->netcap = cap;
	return 0;
}

static void
count_net(struct tally *t, const struct addr *a)
{
	struct addr net = *a;
	struct tally_net *slot;

	addr_cut(&net, net.family == AF_INET ? t->cut.v4len : t->cut.v6len);
	if (t->nets != NULL) {
		slot = net_slot(t->nets, t->netcap, &net);
		if (slot->net.family != 0) {
			slot->n++;
			return;
		}
	}
	if (t->nnets >= TALLY_NETS_MAX ||
	    ((t->nnets + 1) * 10 > t->netcap * 7 && nets_grow(t) != 0)) {
		t->untracked++;
		return;
	}
	slot = net_slot(t->nets, t->netcap, &net);
	slot->net = net;
	slot->n = 1;
	t->nnets++;
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

		for (i = 0; i < t->netcap; i++) {
			const struct tally_net *c = &t->nets[i];

			if (c->net.family == 0 || (best && by_count(c, best) >= 0))
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

/* ------------------------------------------------------------ adding */

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
	t->events++;
	p = period(t, ev->day == REPORT_UNDATED || t->by == BY_DAY ? ev->day :
	    monday(ev->day));
	if (p == NULL) {
		t->failed = 1;
		return;
	}
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

	if (key == REPORT_UNDATED) {
		snprintf(buf, size, "undated");
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
