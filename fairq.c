/* fairq.c - the listener's programs and their fair queue; see fairq.h. */
#include "fairq.h"

#include <string.h>

unsigned
fairq_default_share(unsigned max)
{
	return max / 4 > 0 ? max / 4 : 1;
}

int
fairq_init(struct fairq *q, unsigned max, unsigned share,
    struct ipcount *counts)
{
	memset(q, 0, sizeof *q);
	q->max = max;
	q->share = share;
	q->counts = counts;
	return (q->pids = children_new(max)) == NULL ? -1 : 0;
}

void
fairq_free(struct fairq *q)
{
	children_free(q->pids);
	q->pids = NULL;
}

static unsigned
running_for(const struct fairq *q, const struct peer *p)
{
	return p->known ? ipcount_get(q->counts, &p->addr, IPC_RUNNING) : 0;
}

int
fairq_may_run(const struct fairq *q, const struct peer *p)
{
	return q->running < q->max && running_for(q, p) < q->share;
}

void
fairq_took(struct fairq *q, const struct peer *p)
{
	q->running++;
	if (p->known)
		ipcount_add(q->counts, &p->addr, IPC_RUNNING);
}

void
fairq_gave_back(struct fairq *q, const struct peer *p)
{
	if (q->running > 0)
		q->running--;
	if (p->known)
		ipcount_remove(q->counts, &p->addr, IPC_RUNNING);
}

void
fairq_started(struct fairq *q, pid_t pid, const struct peer *p)
{
	/* Out of memory: the program still runs, its address uncounted. */
	if (children_add(q->pids, pid, p) == 0)
		fairq_took(q, p);
	else
		q->running++;
}

int
fairq_ended(struct fairq *q, pid_t pid, struct peer *p)
{
	if (!children_remove(q->pids, pid, p)) {
		if (q->running > 0)
			q->running--;
		return 0;
	}
	fairq_gave_back(q, p);
	return 1;
}

int
fairq_push(struct fairq *q, struct fairq_item *it)
{
	const struct peer *p = it->peer;

	if (p->known) {
		if (ipcount_get(q->counts, &p->addr, IPC_QUEUED) >= q->share ||
		    ipcount_add(q->counts, &p->addr, IPC_QUEUED) == 0)
			return -1;
	}
	it->next = NULL;
	it->prev = q->tail;
	if (q->tail)
		q->tail->next = it;
	else
		q->head = it;
	q->tail = it;
	q->queued++;
	return 0;
}

void
fairq_remove(struct fairq *q, struct fairq_item *it)
{
	if (it->prev)
		it->prev->next = it->next;
	else
		q->head = it->next;
	if (it->next)
		it->next->prev = it->prev;
	else
		q->tail = it->prev;
	it->prev = it->next = NULL;
	q->queued--;
	if (it->peer->known)
		ipcount_remove(q->counts, &it->peer->addr, IPC_QUEUED);
}

struct fairq_item *
fairq_next(struct fairq *q)
{
	struct fairq_item *it, *best = NULL;
	unsigned least = q->share;

	if (q->running >= q->max)
		return NULL;
	/* The first of those whose address runs the fewest, if below its
	 * share; none running is as good as it gets. */
	for (it = q->head; it && least > 0; it = it->next) {
		unsigned n = running_for(q, it->peer);

		if (n < least) {
			least = n;
			best = it;
		}
	}
	if (best)
		fairq_remove(q, best);
	return best;
}
