/*
 * fuzz_cachekey.c - libFuzzer target for the pass cache's text parsers
 * (cache.c): keys as --cache-delete takes them, --cache-net and
 * --cache-size.
 *
 *   build/fuzz/fuzz_cachekey -max_total_time=30 tests/fuzz/corpus/cachekey
 *
 * The first byte picks the network lengths a bare address is keyed
 * with; the rest is the text.  Beyond "no crash": a key accepted is
 * well formed (family, length, no bits past the prefix), formats to text
 * that parses back to the same key, and its bad key is as wide or wider
 * and covers it; accepted --cache-net and --cache-size values are in
 * their documented ranges.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"

static void
check_key(const struct cache_key *k)
{
	unsigned bits = k->data[0] == 4 ? 32 : 128, prefix = k->data[1];

	if ((k->data[0] != 4 && k->data[0] != 6) || prefix > bits ||
	    k->len != 2 + (prefix + 7) / 8)
		abort();
	if (prefix % 8 && (k->data[k->len - 1] & (0xff >> (prefix % 8))))
		abort();
}

/* Does wide (a shorter or equal prefix) cover narrow? */
static void
check_covers(const struct cache_key *wide, const struct cache_key *narrow)
{
	unsigned p = wide->data[1], i;

	if (wide->data[0] != narrow->data[0] || p > narrow->data[1])
		abort();
	for (i = 0; i < p / 8; i++)
		if (wide->data[2 + i] != narrow->data[2 + i])
			abort();
}

static void
check_round_trip(const struct cache_key *k, const struct cache_net *net)
{
	char text[CACHE_KEY_TEXT_MAX];
	struct cache_key again;

	cache_key_format(k, text, sizeof text);
	if (cache_key_parse(text, net, &again) != 0 || again.len != k->len ||
	    memcmp(again.data, k->data, k->len) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cache_net net = { CACHE_V4LEN_MIN, CACHE_V6LEN_MIN }, parsed;
	struct cache_key k;
	size_t bytes;
	char *s;

	if (size < 1 || size > 4096)
		return 0;
	net.v4len += data[0] % (32 - CACHE_V4LEN_MIN + 1);
	net.v6len += data[0] * 7u % (128 - CACHE_V6LEN_MIN + 1);
	if ((s = malloc(size)) == NULL)
		abort();
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	if (cache_key_parse(s, &net, &k) == 0) {
		check_key(&k);
		check_round_trip(&k, &net);
	}
	if (cache_net_parse(s, &parsed) == 0 &&
	    (parsed.v4len < CACHE_V4LEN_MIN || parsed.v4len > 32 ||
	    parsed.v6len < CACHE_V6LEN_MIN || parsed.v6len > 128))
		abort();
	if (cache_size_parse(s, &bytes) == 0 && bytes < CACHE_MAP_MIN)
		abort();
	if (size >= 17) {
		struct addr a;
		struct cache_key own, bad;

		/* Any 16 bytes as an IPv6 address, any 4 as IPv4. */
		memset(&a, 0, sizeof a);
		a.family = data[0] & 1 ? AF_INET6 : AF_INET;
		memcpy(a.bytes, data + 1, data[0] & 1 ? 16 : 4);
		cache_key_make(&own, &a, &net);
		cache_key_make_bad(&bad, &a, &net);
		check_key(&own);
		check_key(&bad);
		check_covers(&bad, &own);
		check_round_trip(&own, &net);
	}
	free(s);
	return 0;
}
