/*
 * store.h - the pass cache's stores: the LMDB file of this host (-c,
 * cache.h) and Redis, shared by several hosts (--redis, redis.h).  One of
 * them, or both:
 *  - a lookup asks LMDB, then Redis; an entry found in Redis is copied
 *    into LMDB (with its own recorded and expiry times), so the next
 *    lookup of that client on this host needs no Redis.  A grey entry
 *    found in LMDB is the exception: Redis is asked too, since another
 *    host may have seen the client pass, or trapped it, or seen its
 *    first attempt earlier, and then Redis's entry wins;
 *  - a record (a pass, a bad verdict, --cache-add) goes to both.
 * A hit in LMDB never touches Redis, and the password file is read only
 * when Redis is about to be asked.
 *
 * In Redis an entry is one key, expiring by Redis's own TTL (SET ... PX):
 *   sendwrap:1:NETWORK/LEN  ->  "KIND RECORDED EXPIRES"
 * e.g. "sendwrap:1:192.0.2.0/24" -> "pass 1764493200000 1764579600000":
 * the prefix, the format version, the key as cache_key_format() writes
 * it; KIND pass, bad or grey (cache_kind_name()), the times in
 * milliseconds since the epoch.
 *
 * Failures: each store's first failure on a connection is reported once
 * (report()), and that store is left alone for the rest of the
 * connection; the other one still serves.  So a Redis that is down costs
 * a connection at most one --redis-timeout.  In keep mode handles stay
 * open between clients; the listener's loop goes further and never waits
 * for Redis at all (store_go_async(), below), and after a failure Redis
 * is not asked again for STORE_RETRY_MS.
 *
 * Contract: no logging and no output (reasons go to report() or err);
 * every descriptor is close-on-exec, and store_close() closes them all.
 */
#ifndef SENDWRAP_STORE_H
#define SENDWRAP_STORE_H

#include <stdint.h>

#include "cache.h"
#include "options.h"
#include "redis.h"
#include "redisloop.h"

#define STORE_LMDB 1
#define STORE_REDIS 2
#define STORE_PREFIX "sendwrap:1:"	/* name and format version */
#define STORE_VALUE_MAX 64		/* "KIND RECORDED EXPIRES" and NUL */
#define STORE_RETRY_MS 3000		/* keep mode, after a Redis failure */
#define STORE_MAINT_MS_MIN 1000		/* per command, for the commands */

struct store {
	const struct cache_config *cc;
	int keep;			/* keep handles open (the listener) */
	int hold;			/* store_hold(): LMDB's till the close */
	struct cache *lmdb;		/* kept open */
	struct redis *redis;		/* kept connected */
	uint64_t redis_retry_at;	/* keep mode: mono_ms() */
	char redis_why[400];		/* ... and why */
	int password_read;		/* 1: in password */
	char password[REDIS_PASSWORD_MAX + 1];
	struct redis_setup setup;	/* for the loop's connection */
	struct redisloop *loop;		/* store_go_async(): Redis's */
	void (*loop_report)(void *ctx, const char *why);
	void *loop_ctx;
};

/* How to tell a connection's failures: once per store. */
struct store_use {
	unsigned failed;		/* STORE_LMDB, STORE_REDIS: told */
	void (*report)(void *ctx, const char *why);
	void *ctx;
};

/* Which stores cc names: STORE_LMDB, STORE_REDIS or both. */
unsigned store_kinds(const struct cache_config *cc);

void store_init(struct store *s, const struct cache_config *cc, int keep);

/*
 * From now on the LMDB file is opened for writing at its first use and
 * kept until store_close(): for a connection that looks a client up and
 * then records it (a greylisted first attempt), one opening, not two
 * (each costs more than the lookup or the write).  No lock is held
 * between uses.
 */
void store_hold(struct store *s);

/* Close every handle (before exec: only descriptors matter). */
void store_close(struct store *s);

/*
 * Is there a live entry for k at now?  1 with *e filled, 0 if not
 * (and when no store could be asked).
 */
int store_lookup(struct store *s, const struct cache_key *k, uint64_t now,
    struct cache_entry *e, struct store_use *u);

/*
 * Record k as kind from now until now + ttl_ms, in every store that has
 * not failed on u.  Returns the stores it was recorded in.
 */
unsigned store_record(struct store *s, const struct cache_key *k,
    enum cache_kind kind, uint64_t now, uint64_t ttl_ms,
    struct store_use *u);

/*
 * Record an early talker: a bad entry at bad (cache_key_make_bad(): its
 * network, IPv6 at most a /48), removing the LMDB entry of its own key
 * own, and kept out of LMDB beyond --bad-max (cache_record_bad()).
 */
unsigned store_record_bad(struct store *s, const struct cache_key *bad,
    const struct cache_key *own, uint64_t now, uint64_t ttl_ms,
    struct store_use *u);

/*
 * Forget k in every store that has not failed on u (a first attempt
 * that does not count).  Returns the stores it is gone from.
 */
unsigned store_forget(struct store *s, const struct cache_key *k,
    struct store_use *u);

/* ------------------------------------------- Redis, in an event loop */

/*
 * The listener's loop must never wait for Redis (redisloop.h).  After
 * store_go_async() (keep mode, with --redis): store_lookup() asks LMDB
 * only, and the caller asks Redis with store_ask(), whose answer comes
 * through the loop; records and forgets go to Redis without waiting for
 * its answer (store_record() counts Redis in when it is being asked);
 * failures go to report, once a connection for a lost one.  0, or -1
 * with the reason in err (the password file, memory): Redis is then
 * asked as without the loop.
 */
int store_go_async(struct store *s, void (*report)(void *ctx,
    const char *why), void *ctx, char *err, size_t errsize);

/* The keys of one lookup, and where its answer goes. */
struct store_ask {
	struct cache_key keys[2];
	size_t n;
	uint64_t now;
	/* found[i]: a live entry for keys[i] in e[i]; failed: Redis did
	 * not answer (then nothing is found). */
	void (*fn)(void *ctx, const struct cache_entry *e, const int *found,
	    size_t n, int failed);
	void *ctx;
};

/* Ask Redis about q's keys: 0 (q->fn will be called, once), or -1 (not
 * asked: Redis is down for now). */
int store_ask(struct store *s, struct store_ask *q);

/* q's answer is no longer wanted. */
void store_unask(struct store *s, struct store_ask *q);

/* Copy an entry Redis gave into LMDB, with its own times. */
void store_copy(struct store *s, const struct cache_entry *e,
    struct store_use *u);

/* ------------------------------------------- Redis, for the commands */

/*
 * Each command gets the larger of --redis-timeout and STORE_MAINT_MS_MIN.
 * 0 (delete: 1 if it was there), or -1 with the reason in err.
 */
int store_redis_ping(struct store *s, uint64_t timeout_ms, char *server,
    size_t serversize, char *err, size_t errsize);
int store_redis_list(struct store *s,
    int (*fn)(void *ctx, const struct cache_entry *e), void *ctx,
    unsigned long *foreign, char *err, size_t errsize);
int store_redis_delete(struct store *s, const struct cache_key *k,
    char *err, size_t errsize);

/* ------------------------------------------------ the value format */

/* "sendwrap:1:" and the key's text; returns the length. */
size_t store_redis_key(const struct cache_key *k, char *buf, size_t size);

/* "KIND RECORDED EXPIRES"; returns the length. */
size_t store_value_format(const struct cache_entry *e, char *buf,
    size_t size);

/* The reverse (key and value as stored): 0, or -1 if not an entry. */
int store_entry_parse(const char *key, size_t klen, const char *value,
    size_t vlen, struct cache_entry *e);

#endif
