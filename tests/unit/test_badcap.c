/*
 * test_badcap.c - cmocka tests for what outsiders can add to the pass
 * cache (cache.h): bad entries keyed by an IPv6 /48 at the widest, at
 * most bad_max of them, the count behind the cap kept right by every
 * kind of write (replacement, deletion, purge, a pass over a bad entry)
 * and made for a file from before it, and a client's own pass removed
 * when its wider network is recorded as bad.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <lmdb.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "cache.h"
#include "testlib.h"

#define T0 ((uint64_t)1700000000000)
#define HOUR ((uint64_t)3600 * 1000)
#define CAP 3

static const struct cache_net net = { 32, 64 };

static struct addr
address(const char *ip)
{
	struct addr a;

	assert_int_equal(addr_parse(ip, &a), 0);
	return a;
}

static void
scratch_path(char *path, size_t size, const char *name)
{
	if ((size_t)snprintf(path, size, "%s/%s", scratch_dir, name) >= size)
		fail_msg("path too long");
}

/* The cache name in the scratch directory, made if need be. */
static struct cache *
fresh(const char *name)
{
	struct cache_options o = { 1, 0, 0 };
	char path[PATH_MAX], err[512];
	struct cache *c;

	scratch_path(path, sizeof path, name);
	if ((c = cache_open(path, &o, err, sizeof err)) == NULL)
		fail_msg("cache_open: %s", err);
	return c;
}

/* Record ip as an early talker at now, as core.c does. */
static int
bad(struct cache *c, const char *ip, uint64_t now)
{
	struct addr a = address(ip);
	struct cache_key k, b;

	cache_key_make(&k, &a, &net);
	cache_key_make_bad(&b, &a, &net);
	return cache_record_bad(c, &b, &k, now, HOUR, CAP);
}

static void
pass(struct cache *c, const char *ip, uint64_t now)
{
	struct addr a = address(ip);
	struct cache_key k;

	cache_key_make(&k, &a, &net);
	assert_int_equal(cache_record(c, &k, CACHE_PASS, now, HOUR), 0);
}

/* The live entry under ip's own key (kind, or 0). */
static int
own(struct cache *c, const char *ip, uint64_t now)
{
	struct addr a = address(ip);
	struct cache_entry e;
	struct cache_key k;
	int r;

	cache_key_make(&k, &a, &net);
	r = cache_lookup(c, &k, now, &e);
	assert_true(r >= 0);
	return r ? (int)e.kind : 0;
}

static unsigned long
bad_entries(struct cache *c, uint64_t now)
{
	struct cache_counts n;

	assert_int_equal(cache_count(c, now, &n), 0);
	return n.bad;
}

static void
test_bad_keys(void **state)
{
	char text[CACHE_KEY_TEXT_MAX];
	struct cache_net wide = { 24, 32 };
	struct addr a = address("2001:db8:1:2:3::4");
	struct cache_key k;

	(void)state;
	cache_key_make_bad(&k, &a, &net);
	cache_key_format(&k, text, sizeof text);
	assert_string_equal(text, "2001:db8:1::/48");
	/* Never narrower than the pass key. */
	cache_key_make_bad(&k, &a, &wide);
	cache_key_format(&k, text, sizeof text);
	assert_string_equal(text, "2001:db8::/32");
	a = address("192.0.2.7");
	cache_key_make_bad(&k, &a, &net);
	cache_key_format(&k, text, sizeof text);
	assert_string_equal(text, "192.0.2.7/32");
}

static void
test_one_48_one_entry(void **state)
{
	struct cache *c = fresh("v6.mdb");
	char ip[64];
	int i;

	(void)state;
	for (i = 0; i < 50; i++) {
		snprintf(ip, sizeof ip, "2001:db8:7:%x::1", i);
		assert_int_equal(bad(c, ip, T0), 0);
	}
	assert_int_equal(bad_entries(c, T0), 1);
	cache_close(c);
}

static void
test_cap(void **state)
{
	struct cache *c = fresh("cap.mdb");

	(void)state;
	assert_int_equal(bad(c, "192.0.2.1", T0), 0);
	assert_int_equal(bad(c, "192.0.2.2", T0), 0);
	assert_int_equal(bad(c, "192.0.2.3", T0), 0);
	assert_int_equal(bad(c, "192.0.2.4", T0), CACHE_CAPPED);
	assert_int_equal(own(c, "192.0.2.4", T0), 0);
	/* A bad entry renewed is no new one; passes are not capped. */
	assert_int_equal(bad(c, "192.0.2.2", T0 + 1), 0);
	pass(c, "192.0.2.9", T0);
	assert_int_equal(bad_entries(c, T0), CAP);
	/* A pass over a bad entry, and a deletion, each make room. */
	pass(c, "192.0.2.1", T0 + 2);
	assert_int_equal(bad(c, "192.0.2.4", T0 + 2), 0);
	assert_int_equal(bad(c, "192.0.2.5", T0 + 2), CACHE_CAPPED);
	{
		struct addr a = address("192.0.2.3");
		struct cache_key k;

		cache_key_make(&k, &a, &net);
		assert_int_equal(cache_delete(c, &k), 1);
	}
	assert_int_equal(bad(c, "192.0.2.5", T0 + 3), 0);
	assert_int_equal(bad(c, "192.0.2.6", T0 + 3), CACHE_CAPPED);
	/* Once they expire, the writes' purge makes room again. */
	assert_int_equal(bad(c, "192.0.2.6", T0 + 2 * HOUR), 0);
	assert_int_equal(bad(c, "192.0.2.7", T0 + 2 * HOUR), 0);
	/* .5 (expired, not yet purged), .6 and .7 */
	assert_int_equal(bad_entries(c, T0 + 2 * HOUR), 3);
	assert_int_equal(cache_purge(c, T0 + 4 * HOUR), 3);
	assert_int_equal(bad(c, "192.0.2.8", T0 + 4 * HOUR), 0);
	assert_int_equal(bad(c, "192.0.2.9", T0 + 4 * HOUR), 0);
	assert_int_equal(bad(c, "192.0.2.10", T0 + 4 * HOUR), 0);
	assert_int_equal(bad(c, "192.0.2.11", T0 + 4 * HOUR), CACHE_CAPPED);
	cache_close(c);
}

/* A file written before the count: the first write counts its entries. */
static void
test_file_without_count(void **state)
{
	char path[PATH_MAX];
	struct cache *c = fresh("old.mdb");
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val key = { 4, (void *)"cbad" };

	(void)state;
	assert_int_equal(bad(c, "192.0.2.1", T0), 0);
	assert_int_equal(bad(c, "192.0.2.2", T0), 0);
	cache_close(c);
	scratch_path(path, sizeof path, "old.mdb");
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_open(env, path, MDB_NOSUBDIR, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
	assert_int_equal(mdb_del(txn, dbi, &key, NULL), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	c = fresh("old.mdb");
	assert_int_equal(bad(c, "192.0.2.3", T0), 0);
	assert_int_equal(bad(c, "192.0.2.4", T0), CACHE_CAPPED);
	cache_close(c);
}

/* A client recorded as bad loses its own pass (another, wider key). */
static void
test_bad_replaces_own_pass(void **state)
{
	struct cache *c = fresh("own.mdb");

	(void)state;
	pass(c, "2001:db8:5:1::7", T0);
	pass(c, "2001:db8:5:2::7", T0);
	assert_int_equal(bad(c, "2001:db8:5:1::7", T0), 0);
	assert_int_equal(own(c, "2001:db8:5:1::7", T0), 0);
	/* Its neighbour's pass is its own, and stands. */
	assert_int_equal(own(c, "2001:db8:5:2::7", T0), CACHE_PASS);
	/* IPv4: one key; the bad entry replaces the pass. */
	pass(c, "192.0.2.1", T0);
	assert_int_equal(bad(c, "192.0.2.1", T0), 0);
	assert_int_equal(own(c, "192.0.2.1", T0), CACHE_BAD);
	cache_close(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_keys),
		cmocka_unit_test(test_one_48_one_entry),
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_file_without_count),
		cmocka_unit_test(test_bad_replaces_own_pass),
	};

	return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
