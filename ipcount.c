/* ipcount.c - clients per address; see ipcount.h. */
#include "ipcount.h"

#include <stdlib.h>
#include <string.h>

#define BUCKETS 8192		/* a power of two */

struct node {
	struct node *next;
	struct addr key;
	unsigned count;
};

struct ipcount {
	struct node *bucket[BUCKETS];
};

static void
key_of(const struct addr *a, struct addr *k)
{
	*k = *a;
	if (k->family == AF_INET6)
		addr_cut(k, 64);
}

/* FNV-1a over the address bytes. */
static size_t
hash(const struct addr *k)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < addr_bits(k->family) / 8; i++)
		h = (h ^ k->bytes[i]) * 16777619u;
	return h & (BUCKETS - 1);
}

static struct node **
find(struct ipcount *ic, const struct addr *k)
{
	struct node **np = &ic->bucket[hash(k)];

	while (*np && ((*np)->key.family != k->family ||
	    memcmp((*np)->key.bytes, k->bytes, sizeof k->bytes) != 0))
		np = &(*np)->next;
	return np;
}

struct ipcount *
ipcount_new(void)
{
	return calloc(1, sizeof(struct ipcount));
}

unsigned
ipcount_add(struct ipcount *ic, const struct addr *a)
{
	struct addr k;
	struct node **np, *n;

	key_of(a, &k);
	np = find(ic, &k);
	if (*np)
		return ++(*np)->count;
	if ((n = calloc(1, sizeof *n)) == NULL)
		return 0;
	n->key = k;
	n->count = 1;
	*np = n;
	return 1;
}

void
ipcount_remove(struct ipcount *ic, const struct addr *a)
{
	struct addr k;
	struct node **np, *n;

	key_of(a, &k);
	np = find(ic, &k);
	if ((n = *np) == NULL || --n->count > 0)
		return;
	*np = n->next;
	free(n);
}

void
ipcount_free(struct ipcount *ic)
{
	size_t i;

	if (ic == NULL)
		return;
	for (i = 0; i < BUCKETS; i++)
		while (ic->bucket[i]) {
			struct node *n = ic->bucket[i];

			ic->bucket[i] = n->next;
			free(n);
		}
	free(ic);
}
