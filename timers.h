/*
 * timers.h - a heap of deadlines: the listener's one clock for thousands
 * of clients.  Each timer is embedded in its owner; the heap keeps
 * pointers to them, earliest deadline first, and each timer knows its
 * place so that it can be moved or removed in O(log n).
 *
 * Contract: no I/O; the heap grows by realloc (timers_add fails with -1
 * when memory runs out) and never shrinks below what it held.
 */
#ifndef SENDWRAP_TIMERS_H
#define SENDWRAP_TIMERS_H

#include <stddef.h>
#include <stdint.h>

struct timer {
	uint64_t deadline;		/* mono_ms() */
	size_t slot;			/* place in the heap + 1; 0: not in it */
};

struct timers {
	struct timer **heap;
	size_t n, cap;
};

/* Put t in the heap at deadline, or move it there if it is in already. */
int timers_set(struct timers *h, struct timer *t, uint64_t deadline);

/* Take t out of the heap; nothing if it is not in it. */
void timers_cancel(struct timers *h, struct timer *t);

/* The earliest timer, or NULL. */
struct timer *timers_first(const struct timers *h);

void timers_free(struct timers *h);

#endif
