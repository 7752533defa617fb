/* ipcount.c - what each address has in the listener; see ipcount.h. */
#include "ipcount.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define BUCKETS 8192		/* a power of two */

struct node {
	struct node *next;
	struct addr key;
	unsigned count[IPC_KINDS];
};

struct ipcount {
	uint64_t seed;
	struct node *bucket[BUCKETS];
};

static void
key_of(const struct addr *a, struct addr *k)
{
	*k = *a;
	if (k->family == AF_INET6)
		addr_cut(k, 64);
}

/* Multiply and add with the process's own odd keys, one 32-bit word at
 * a time, the top bits taken: a pick from a universal family. */
static size_t
hash(const struct ipcount *ic, const struct addr *k)
{
	uint64_t h = ic->seed, m = ic->seed | 1;
	size_t i, n = addr_bits(k->family) / 8;

	for (i = 0; i < n; i += 4) {
		uint32_t w;

		memcpy(&w, k->bytes + i, 4);
		h = (h + w) * m;
		m = m * 6364136223846793005u + 1442695040888963407u;
	}
	return (size_t)(h >> 40) & (BUCKETS - 1);
}

static struct node **
find(const struct ipcount *ic, const struct addr *k)
{
	struct node *const *np = &ic->bucket[hash(ic, k)];

	while (*np && ((*np)->key.family != k->family ||
	    memcmp((*np)->key.bytes, k->bytes, sizeof k->bytes) != 0))
		np = &(*np)->next;
	return (struct node **)np;
}

struct ipcount *
ipcount_new(void)
{
	struct ipcount *ic = calloc(1, sizeof *ic);

	/* A fixed key would do too, only worse under attack. */
	if (ic && getrandom(&ic->seed, sizeof ic->seed, GRND_NONBLOCK) !=
	    (ssize_t)sizeof ic->seed)
		ic->seed = (uint64_t)(uintptr_t)ic * 0x9e3779b97f4a7c15u;
	return ic;
}

unsigned
ipcount_add(struct ipcount *ic, const struct addr *a, enum ipcount_kind kind)
{
	struct addr k;
	struct node **np, *n;

	key_of(a, &k);
	np = find(ic, &k);
	if (*np)
		return ++(*np)->count[kind];
	if ((n = calloc(1, sizeof *n)) == NULL)
		return 0;
	n->key = k;
	n->count[kind] = 1;
	*np = n;
	return 1;
}

void
ipcount_remove(struct ipcount *ic, const struct addr *a,
    enum ipcount_kind kind)
{
	struct addr k;
	struct node **np, *n;
	int i;

	key_of(a, &k);
	np = find(ic, &k);
	if ((n = *np) == NULL || n->count[kind] == 0)
		return;
	n->count[kind]--;
	for (i = 0; i < IPC_KINDS; i++)
		if (n->count[i] > 0)
			return;
	*np = n->next;
	free(n);
}

unsigned
ipcount_get(const struct ipcount *ic, const struct addr *a,
    enum ipcount_kind kind)
{
	struct addr k;
	struct node **np;

	key_of(a, &k);
	np = find(ic, &k);
	return *np ? (*np)->count[kind] : 0;
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
