/* intervals.c - first-match order as disjoint address intervals; see
 * intervals.h. */
#include "intervals.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* An address as a 128-bit number; IPv4 in the low 32 bits. */
struct u128 {
	uint64_t hi, lo;
};

static int
u128_cmp(struct u128 a, struct u128 b)
{
	if (a.hi != b.hi)
		return a.hi < b.hi ? -1 : 1;
	return a.lo < b.lo ? -1 : a.lo > b.lo;
}

static struct u128
u128_inc(struct u128 a)
{
	a.lo++;
	a.hi += a.lo == 0;
	return a;
}

static struct u128
u128_dec(struct u128 a)
{
	a.hi -= a.lo == 0;
	a.lo--;
	return a;
}

/* The last address of the family. */
static struct u128
u128_top(int six)
{
	struct u128 v = { six ? UINT64_MAX : 0, six ? UINT64_MAX : 0xffffffffu };

	return v;
}

/* The address with its last h bits set. */
static struct u128
fill_host(struct u128 v, unsigned h)
{
	v.lo |= h >= 64 ? UINT64_MAX : (UINT64_C(1) << h) - 1;
	if (h > 64)
		v.hi |= h >= 128 ? UINT64_MAX : (UINT64_C(1) << (h - 64)) - 1;
	return v;
}

static struct u128
from_addr(const struct addr *a)
{
	struct u128 v;
	int six = a->family == AF_INET6;

	v.hi = six ? get_be(a->bytes, 8) : 0;
	v.lo = six ? get_be(a->bytes + 8, 8) : get_be(a->bytes, 4);
	return v;
}

static void
to_bytes(unsigned char *b, struct u128 v, int six)
{
	memset(b, 0, 16);
	if (six) {
		put_be(b, v.hi, 8);
		put_be(b + 8, v.lo, 8);
	} else {
		put_be(b, v.lo, 4);
	}
}

/* One network, as the set keeps it. */
struct item {
	struct u128 first, last;
	uint32_t order;
	unsigned char six, prefix;
	unsigned char fate;		/* below */
};

enum { FATE_NONE, FATE_WINS, FATE_REPEAT };

struct iv_set {
	struct item *items;
	size_t n, cap;
	int sorted;
};

struct iv_set *
iv_new(void)
{
	return calloc(1, sizeof(struct iv_set));
}

int
iv_add(struct iv_set *s, const struct addr *net, unsigned prefix)
{
	struct item *it;

	if (s->n >= UINT32_MAX) {
		errno = EFBIG;
		return -1;
	}
	if (s->n == s->cap) {
		size_t n = s->cap ? 2 * s->cap : 64;

		if (n > SIZE_MAX / sizeof *it ||
		    (it = realloc(s->items, n * sizeof *it)) == NULL) {
			errno = ENOMEM;
			return -1;
		}
		s->items = it;
		s->cap = n;
	}
	it = &s->items[s->n];
	it->six = net->family == AF_INET6;
	it->prefix = (unsigned char)prefix;
	it->first = from_addr(net);
	it->last = fill_host(it->first, addr_bits(net->family) - prefix);
	it->order = (uint32_t)s->n++;
	s->sorted = 0;
	return 0;
}

void
iv_free(struct iv_set *s)
{
	if (s == NULL)
		return;
	free(s->items);
	free(s);
}

static int
item_cmp(const void *pa, const void *pb)
{
	const struct item *a = pa, *b = pb;
	int c;

	if (a->six != b->six)
		return a->six - b->six;
	if ((c = u128_cmp(a->first, b->first)) != 0)
		return c;
	if (a->prefix != b->prefix)	/* the wider network first */
		return a->prefix - b->prefix;
	return a->order < b->order ? -1 : a->order > b->order;
}

/*
 * The sweep over the networks sorted by (family, first address, prefix
 * length, order).  The open ones form a chain, each inside the one below
 * it: the stack.  An address is won by the earliest network of the chain
 * holding it, which each frame carries.  The sweep paints the address
 * space left to right with the winner of the innermost open network and
 * joins neighbouring runs of one winner.
 */
struct sweep {
	struct {
		const struct item *it;
		struct item *winner;
	} stack[129];			/* nested networks: one per length */
	size_t depth;
	int six;
	struct u128 pos;		/* the first address not painted */
	int full;			/* painted to the family's last address */
	int pending;			/* a run being extended: */
	struct u128 run_first, run_last;
	struct item *run_winner;
	int (*out)(void *ctx, const struct iv_interval *iv);
	void *ctx;
	size_t intervals;
	int rc;
};

static void
flush(struct sweep *s)
{
	struct iv_interval iv;

	if (!s->pending || s->rc != 0)
		return;
	s->pending = 0;
	s->intervals++;
	iv.family = s->six ? AF_INET6 : AF_INET;
	to_bytes(iv.first, s->run_first, s->six);
	to_bytes(iv.last, s->run_last, s->six);
	iv.winner = s->run_winner->order;
	s->rc = s->out(s->ctx, &iv);
}

static void
paint(struct sweep *s, struct u128 first, struct u128 last,
    struct item *winner)
{
	if (s->full || u128_cmp(first, last) > 0)
		return;
	winner->fate = FATE_WINS;
	if (s->pending && s->run_winner == winner &&
	    u128_cmp(u128_inc(s->run_last), first) == 0) {
		s->run_last = last;
		return;
	}
	flush(s);
	s->pending = 1;
	s->run_first = first;
	s->run_last = last;
	s->run_winner = winner;
}

static void
close_top(struct sweep *s)
{
	const struct item *it = s->stack[--s->depth].it;

	paint(s, s->pos, it->last, s->stack[s->depth].winner);
	if (u128_cmp(it->last, u128_top(it->six)) == 0)
		s->full = 1;		/* pos would wrap round */
	else
		s->pos = u128_inc(it->last);
}

static void
close_all(struct sweep *s)
{
	while (s->depth > 0)
		close_top(s);
	flush(s);
}

static void
open_item(struct sweep *s, struct item *it)
{
	struct item *winner = it;

	if (s->depth > 0) {
		struct item *below = s->stack[s->depth - 1].winner;

		if (u128_cmp(s->pos, it->first) < 0)
			paint(s, s->pos, u128_dec(it->first), below);
		if (below->order < it->order)
			winner = below;
	}
	s->pos = it->first;
	s->stack[s->depth].it = it;
	s->stack[s->depth++].winner = winner;
}

static void
sweep_item(struct sweep *s, struct item *it)
{
	const struct item *top;

	if (it->six != s->six) {
		close_all(s);
		s->six = it->six;
		s->pos.hi = s->pos.lo = 0;
		s->full = 0;
	}
	/* Sorted, so an open network not ending after it cannot hold it. */
	while (s->depth > 0 &&
	    u128_cmp(s->stack[s->depth - 1].it->last, it->last) < 0)
		close_top(s);
	top = s->depth > 0 ? s->stack[s->depth - 1].it : NULL;
	if (top && top->prefix == it->prefix &&
	    u128_cmp(top->first, it->first) == 0) {
		it->fate = FATE_REPEAT;	/* can never match */
		return;
	}
	open_item(s, it);
}

static void
count(const struct iv_set *set, struct iv_counts *c)
{
	size_t i, wins = 0;

	c->networks = set->n;
	c->repeats = 0;
	for (i = 0; i < set->n; i++) {
		c->repeats += set->items[i].fate == FATE_REPEAT;
		wins += set->items[i].fate == FATE_WINS;
	}
	c->shadowed = set->n - c->repeats - wins;
}

int
iv_resolve(struct iv_set *set,
    int (*out)(void *ctx, const struct iv_interval *iv), void *ctx,
    struct iv_counts *c)
{
	struct sweep s;
	size_t i;

	if (!set->sorted && set->n > 1)
		qsort(set->items, set->n, sizeof *set->items, item_cmp);
	set->sorted = 1;
	memset(&s, 0, sizeof s);
	s.out = out;
	s.ctx = ctx;
	for (i = 0; i < set->n; i++)
		set->items[i].fate = FATE_NONE;
	for (i = 0; i < set->n && s.rc == 0; i++)
		sweep_item(&s, &set->items[i]);
	close_all(&s);
	count(set, c);
	c->intervals = s.intervals;
	return s.rc;
}
