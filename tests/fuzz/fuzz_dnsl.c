/*
 * fuzz_dnsl.c - libFuzzer target for the DNS list parsers of dnsl.c:
 * ZONE[=FILTER][*WEIGHT] and --dns-server ADDR[:PORT].
 *
 * Beyond "no crash": an accepted list has a zone of the allowed
 * characters and length, a weight in range, a filter that accepts what
 * it was written to accept; a name made for it fits its buffer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dnsl.h"

static void
check_list(const struct dnsl_list *l, int allow)
{
	size_t i, n = strlen(l->zone);
	struct addr a;
	char name[DNSL_ZONE_MAX + 80];

	if (n == 0 || n > DNSL_ZONE_MAX || l->allow != allow)
		abort();
	for (i = 0; i < n; i++)
		if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "0123456789-._", l->zone[i]) == NULL)
			abort();
	if (l->weight < -1000 || l->weight > 1000)
		abort();
	addr_parse("2001:db8::1", &a);
	if (dnsl_query_name(&a, l->zone, name, sizeof name) == 0 ||
	    strlen(name) >= sizeof name)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	struct dnsl_list l;
	const char *why;

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (dnsl_parse(s, size & 1, &l, &why) == 0)
		check_list(&l, size & 1);
	else if (why == NULL)
		abort();
	dnsl_server_parse(s, &why);
	free(s);
	return 0;
}
