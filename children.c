/* children.c - the listener's programs and whom they serve; see children.h. */
#include "children.h"

#include <stdlib.h>

/* Open addressing on the pid, at most half full; 0 marks a free slot. */
struct slot {
	pid_t pid;
	struct peer peer;
};

struct children {
	size_t mask;			/* slots - 1 */
	unsigned n, max;
	struct slot slot[];
};

static size_t
home(const struct children *ch, pid_t pid)
{
	return ((size_t)pid * 2654435761u) & ch->mask;
}

struct children *
children_new(unsigned max)
{
	size_t slots = 2;
	struct children *ch;

	while (slots < 2 * (size_t)max)
		slots *= 2;
	if ((ch = calloc(1, sizeof *ch + slots * sizeof ch->slot[0])) == NULL)
		return NULL;
	ch->mask = slots - 1;
	ch->max = max;
	return ch;
}

int
children_add(struct children *ch, pid_t pid, const struct peer *p)
{
	size_t i;

	if (ch->n >= ch->max || pid <= 0)
		return -1;
	for (i = home(ch, pid); ch->slot[i].pid != 0; i = (i + 1) & ch->mask)
		;
	ch->slot[i].pid = pid;
	ch->slot[i].peer = *p;
	ch->n++;
	return 0;
}

/* Close the gap at i: move back every later entry of the run that would
 * no longer be found past it. */
static void
close_gap(struct children *ch, size_t i)
{
	size_t j = i;

	for (;;) {
		size_t k;

		j = (j + 1) & ch->mask;
		if (ch->slot[j].pid == 0)
			break;
		k = home(ch, ch->slot[j].pid);
		/* Leave it if its home lies cyclically in (i, j]. */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		ch->slot[i] = ch->slot[j];
		i = j;
	}
	ch->slot[i].pid = 0;
}

int
children_remove(struct children *ch, pid_t pid, struct peer *p)
{
	size_t i;

	if (pid <= 0)
		return 0;
	for (i = home(ch, pid); ch->slot[i].pid != pid; i = (i + 1) & ch->mask)
		if (ch->slot[i].pid == 0)
			return 0;
	*p = ch->slot[i].peer;
	close_gap(ch, i);
	ch->n--;
	return 1;
}

void
children_free(struct children *ch)
{
	free(ch);
}
