/*
 * fuzz_redis.c - libFuzzer target for what sendwrap reads from outside
 * about Redis: the --redis URL (redis.c), the server's replies (hiredis's
 * reader with redis.c's objects and limits), and the entries stored under
 * sendwrap's keys (store.c).
 *
 *   make build/fuzz/fuzz_redis
 *   build/fuzz/fuzz_redis -max_total_time=60 tests/fuzz/corpus/redis
 *
 * The first byte picks the parser; the rest is its input.  Beyond "no
 * crash, no leak", it checks what the headers promise: an accepted URL
 * is kept as given and names a usable address; every reply is a
 * well-formed tree within the limits; an accepted entry formats to a key
 * and value that parse back to the same entry.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>

#include "redis.h"
#include "store.h"

static void
check_tree(const struct redis_reply *r, int depth)
{
	size_t i;

	if (r == NULL || depth > 9)
		abort();
	switch (r->type) {
	case REDIS_STRING:
	case REDIS_STATUS:
	case REDIS_ERROR:
		if (r->str == NULL || r->str[r->len] != '\0' ||
		    r->len > REDIS_REPLY_BYTES_MAX)
			abort();
		break;
	case REDIS_ARRAY:
		if (r->elements > REDIS_REPLY_ELEMENTS_MAX ||
		    (r->elements > 0 && r->element == NULL))
			abort();
		for (i = 0; i < r->elements; i++)
			check_tree(r->element[i], depth + 1);
		break;
	case REDIS_INTEGER:
	case REDIS_NIL:
		break;
	default:
		abort();
	}
}

static void
take(void *ctx, struct redis_reply *r)
{
	(*(long *)ctx)++;
	check_tree(r, 0);
	redis_reply_free(r);
}

static void
fuzz_url(const char *s)
{
	struct redis_url u;
	const char *why = NULL;

	if (redis_url_parse(s, &u, &why) != 0) {
		if (why == NULL || why[0] == '\0')
			abort();
		return;
	}
	if (strcmp(u.text, s) != 0 || u.addrlen == 0 ||
	    u.db > REDIS_DB_MAX || strlen(u.user) > REDIS_USER_MAX)
		abort();
	switch (u.addr.ss_family) {
	case AF_INET:
		if (((struct sockaddr_in *)&u.addr)->sin_port == 0)
			abort();
		break;
	case AF_INET6:
		if (((struct sockaddr_in6 *)&u.addr)->sin6_port == 0)
			abort();
		break;
	case AF_UNIX:
		if (((struct sockaddr_un *)&u.addr)->sun_path[0] != '/')
			abort();
		break;
	default:
		abort();
	}
	/* A password never gets through: nothing before '@' has a ':'. */
	if (strncmp(s, "redis://", 8) == 0) {
		const char *at = strchr(s + 8, '@'), *slash = strchr(s + 8, '/');

		if (at && (slash == NULL || at < slash) &&
		    memchr(s + 8, ':', (size_t)(at - s - 8)) != NULL)
			abort();
	}
}

static void
fuzz_entry(const char *s, size_t len)
{
	const char *nl = memchr(s, '\n', len);
	char key[CACHE_KEY_TEXT_MAX + 16], value[STORE_VALUE_MAX];
	struct cache_entry e, back;
	size_t klen, vlen;

	if (nl == NULL)
		return;
	if (store_entry_parse(s, (size_t)(nl - s), nl + 1,
	    len - (size_t)(nl - s) - 1, &e) != 0)
		return;
	if (e.kind != CACHE_PASS && e.kind != CACHE_BAD)
		abort();
	klen = store_redis_key(&e.key, key, sizeof key);
	vlen = store_value_format(&e, value, sizeof value);
	if (klen >= sizeof key || vlen >= sizeof value ||
	    store_entry_parse(key, klen, value, vlen, &back) != 0 ||
	    memcmp(&back, &e, sizeof e) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;
	long n = 0, got;

	if (size == 0)
		return 0;
	/* An exact-size copy (plus a NUL for the URL): ASan sees overreads. */
	if ((s = malloc(size)) == NULL)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	switch (data[0] % 3) {
	case 0:
		if (memchr(s, '\0', size - 1) == NULL)
			fuzz_url(s);
		break;
	case 1:
		got = redis_parse(s, size - 1, take, &n);
		if (got >= 0 && got != n)
			abort();
		break;
	default:
		fuzz_entry(s, size - 1);
	}
	free(s);
	return 0;
}
