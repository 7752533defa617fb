/* timers.c - a binary min-heap of deadlines; see timers.h. */
#include "timers.h"

#include <stdlib.h>

static void
place(struct timers *h, size_t i, struct timer *t)
{
	h->heap[i] = t;
	t->slot = i + 1;
}

static void
sift_up(struct timers *h, size_t i)
{
	struct timer *t = h->heap[i];

	while (i > 0 && h->heap[(i - 1) / 2]->deadline > t->deadline) {
		place(h, i, h->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	place(h, i, t);
}

static void
sift_down(struct timers *h, size_t i)
{
	struct timer *t = h->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n &&
		    h->heap[c + 1]->deadline < h->heap[c]->deadline)
			c++;
		if (h->heap[c]->deadline >= t->deadline)
			break;
		place(h, i, h->heap[c]);
		i = c;
	}
	place(h, i, t);
}

int
timers_set(struct timers *h, struct timer *t, uint64_t deadline)
{
	if (t->slot) {
		t->deadline = deadline;
		sift_up(h, t->slot - 1);
		sift_down(h, t->slot - 1);
		return 0;
	}
	if (h->n == h->cap) {
		size_t cap = h->cap ? 2 * h->cap : 64;
		struct timer **more = realloc(h->heap, cap * sizeof *more);

		if (more == NULL)
			return -1;
		h->heap = more;
		h->cap = cap;
	}
	t->deadline = deadline;
	place(h, h->n++, t);
	sift_up(h, h->n - 1);
	return 0;
}

void
timers_cancel(struct timers *h, struct timer *t)
{
	struct timer *last;
	size_t i;

	if (t->slot == 0)
		return;
	i = t->slot - 1;
	t->slot = 0;
	if (i == --h->n)
		return;
	last = h->heap[h->n];
	place(h, i, last);
	sift_up(h, i);
	sift_down(h, last->slot - 1);
}

struct timer *
timers_first(const struct timers *h)
{
	return h->n ? h->heap[0] : NULL;
}

void
timers_free(struct timers *h)
{
	free(h->heap);
	h->heap = NULL;
	h->n = h->cap = 0;
}
