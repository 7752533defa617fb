/*
 * cache-fill - fill a pass cache for bench/cache-bench through the real
 * write path (cache_record, one transaction each, as sendwrap does).
 *
 *   cache-fill PATH N [SEED [ADDRESS ...]]
 *
 * N random keys: 70% IPv4 /32, 30% IPv6 /64 (in 2001:db8::/32), 95% pass
 * and 5% bad.  The first 97% are recorded now with a TTL between 1 hour
 * and 2 days (live, their expiry times spread); the last 3% two days ago
 * with a TTL of 1 day: expired, the backlog every write then removes two
 * of (recorded last, and as of two days ago, so that the fill's own
 * writes leave them).  Then each ADDRESS, as a pass for 1 day (the
 * clients whose cached path is measured).  Linked with sendwrap's
 * objects (cache.o and what it uses: addr.o, conn.o, guard.o, safefile.o)
 * and LMDB.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cache.h"

#define DAY_MS (24 * 3600000ULL)

static unsigned long long state;

static unsigned long
next(void)
{
	state = state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned long)(state >> 33);
}

int
main(int argc, char **argv)
{
	struct cache_options o = { 1, 0, 0 };
	struct cache_net net = { CACHE_V4LEN_DEFAULT, CACHE_V6LEN_DEFAULT };
	unsigned long n, i;
	struct cache *c;
	char err[512];
	uint64_t now;

	if (argc < 3) {
		fprintf(stderr, "usage: cache-fill PATH N [SEED]\n");
		return 2;
	}
	n = strtoul(argv[2], NULL, 10);
	state = argc > 3 ? strtoull(argv[3], NULL, 10) : 1;
	if ((c = cache_open(argv[1], &o, err, sizeof err)) == NULL) {
		fprintf(stderr, "cache-fill: %s\n", err);
		return 1;
	}
	now = cache_now_ms();
	for (i = 0; i < n; i++) {
		struct addr a;
		struct cache_key k;
		uint64_t ttl = 3600000 + (uint64_t)next() % (47 * 3600000ULL);
		uint64_t at = now;
		size_t j;

		if (i >= n - n * 3 / 100) {
			at = now - 2 * DAY_MS;
			ttl = DAY_MS;
		}

		memset(&a, 0, sizeof a);
		if (next() % 10 < 7) {
			a.family = AF_INET;
			for (j = 0; j < 4; j++)
				a.bytes[j] = (unsigned char)next();
			a.bytes[0] = (unsigned char)(a.bytes[0] % 223 + 1);
		} else {
			a.family = AF_INET6;
			a.bytes[0] = 0x20;
			a.bytes[1] = 0x01;
			a.bytes[2] = 0x0d;
			a.bytes[3] = 0xb8;
			for (j = 4; j < 16; j++)
				a.bytes[j] = (unsigned char)next();
		}
		cache_key_make(&k, &a, &net);
		if (cache_record(c, &k, next() % 20 ? CACHE_PASS : CACHE_BAD,
		    at, ttl) != 0) {
			fprintf(stderr, "cache-fill: %s\n", cache_error(c));
			cache_close(c);
			return 1;
		}
	}
	for (i = 4; i < (unsigned long)argc; i++) {
		struct addr a;
		struct cache_key k;

		if (addr_parse(argv[i], &a) != 0) {
			fprintf(stderr, "cache-fill: bad address %s\n", argv[i]);
			cache_close(c);
			return 2;
		}
		cache_key_make(&k, &a, &net);
		if (cache_record(c, &k, CACHE_PASS, now, DAY_MS) != 0) {
			fprintf(stderr, "cache-fill: %s\n", cache_error(c));
			cache_close(c);
			return 1;
		}
	}
	cache_close(c);
	return 0;
}
