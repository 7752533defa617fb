/* store.c - the pass cache's stores, LMDB then Redis; see store.h. */
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"

#define SCAN_COUNT "1000"	/* keys asked for per SCAN */

unsigned
store_kinds(const struct cache_config *cc)
{
	return (cc->path ? STORE_LMDB : 0) | (cc->nredis ? STORE_REDIS : 0);
}

void
store_init(struct store *s, const struct cache_config *cc, int keep)
{
	memset(s, 0, sizeof *s);
	s->cc = cc;
	s->keep = keep;
}

void
store_hold(struct store *s)
{
	s->hold = 1;
}

void
store_close(struct store *s)
{
	cache_close(s->lmdb);
	redis_close(s->redis);
	redisloop_free(s->loop);
	s->lmdb = NULL;
	s->redis = NULL;
	s->loop = NULL;
}

static void
trouble(struct store_use *u, unsigned which, const char *why)
{
	if (!(u->failed & which) && u->report)
		u->report(u->ctx, why);
	u->failed |= which;
}

/* ------------------------------------------------------------ values */

size_t
store_redis_key(const struct cache_key *k, char *buf, size_t size)
{
	char text[CACHE_KEY_TEXT_MAX];

	cache_key_format(k, text, sizeof text);
	return (size_t)snprintf(buf, size, STORE_PREFIX "%s", text);
}

size_t
store_value_format(const struct cache_entry *e, char *buf, size_t size)
{
	return (size_t)snprintf(buf, size, "%s %llu %llu",
	    cache_kind_name(e->kind),
	    (unsigned long long)e->recorded_ms,
	    (unsigned long long)e->expires_ms);
}

/* Decimal digits up to a blank or the end: 1 to 19 of them. */
static int
number(const char **p, const char *end, uint64_t *v)
{
	const char *s = *p;

	*v = 0;
	while (s < end && *s >= '0' && *s <= '9' && s - *p < 19)
		*v = *v * 10 + (uint64_t)(*s++ - '0');
	if (s == *p || (s < end && *s != ' '))
		return -1;
	*p = s;
	return 0;
}

int
store_entry_parse(const char *key, size_t klen, const char *value,
    size_t vlen, struct cache_entry *e)
{
	static const struct cache_net any = { 32, 128 };
	size_t plen = strlen(STORE_PREFIX);
	const char *p = value, *end = value + vlen;
	char text[CACHE_KEY_TEXT_MAX];

	memset(e, 0, sizeof *e);
	if (klen <= plen || klen - plen >= sizeof text ||
	    memcmp(key, STORE_PREFIX, plen) != 0)
		return -1;
	memcpy(text, key + plen, klen - plen);
	text[klen - plen] = '\0';
	/* Only the NETWORK/LEN form: a bare address is not a stored key. */
	if (strchr(text, '/') == NULL || cache_key_parse(text, &any,
	    &e->key) != 0)
		return -1;
	while (p < end && *p != ' ')
		p++;
	if (p == end || cache_kind_parse(value, (size_t)(p - value),
	    &e->kind) != 0)
		return -1;
	p++;
	if (number(&p, end, &e->recorded_ms) != 0 || p == end || *p++ != ' ' ||
	    number(&p, end, &e->expires_ms) != 0 || p != end)
		return -1;
	return 0;
}

/* ------------------------------------------------------------- LMDB */

/*
 * The LMDB file for one use; NULL if there is none to be had.  Kept open
 * in keep mode; otherwise the caller closes it with lmdb_done().
 */
static struct cache *
lmdb_for(struct store *s, struct store_use *u, int write)
{
	struct cache_options o = { write || s->keep || s->hold,
	    s->cc->map_size, 0 };
	struct cache *h;
	char err[320];

	if (s->cc->path == NULL || (u->failed & STORE_LMDB))
		return NULL;
	if (s->lmdb)
		return s->lmdb;
	h = cache_open(s->cc->path, &o, err, sizeof err);
	/* Nothing to read before the first record: not a failure. */
	if (h == NULL && (o.write || errno != ENOENT))
		trouble(u, STORE_LMDB, err);
	if (s->keep || s->hold)
		s->lmdb = h;
	return h;
}

/* Close h unless it is kept; a kept handle that failed is closed too,
 * so that the next client opens the file afresh. */
static void
lmdb_done(struct store *s, struct cache *h, struct store_use *u, int failed)
{
	if (failed)
		trouble(u, STORE_LMDB, cache_error(h));
	if (h != s->lmdb || failed) {
		cache_close(h);
		if (h == s->lmdb)
			s->lmdb = NULL;
	}
}

static int
lmdb_lookup(struct store *s, const struct cache_key *k, uint64_t now,
    struct cache_entry *e, struct store_use *u)
{
	struct cache *h = lmdb_for(s, u, 0);
	int found;

	if (h == NULL)
		return 0;
	found = cache_lookup(h, k, now, e);
	lmdb_done(s, h, u, found < 0);	/* before exec, before a long wait */
	return found > 0;
}

/*
 * Record k in LMDB.  An early talker's (own: its own key) goes through
 * cache_record_bad(): at the wider bad key, within --bad-max.
 */
static int
lmdb_record(struct store *s, const struct cache_key *k,
    const struct cache_key *own, enum cache_kind kind, uint64_t now,
    uint64_t ttl_ms, struct store_use *u)
{
	struct cache *h = lmdb_for(s, u, 1);
	int failed;

	if (h == NULL)
		return 0;
	failed = (own ? cache_record_bad(h, k, own, now, ttl_ms,
	    s->cc->bad_max) : cache_record(h, k, kind, now, ttl_ms)) < 0;
	lmdb_done(s, h, u, failed);
	return !failed;
}

/* ------------------------------------------------------------ Redis */

/* The servers and the password; -1 (reported) if there is no password. */
static int
setup(struct store *s, struct redis_setup *rs, char *err, size_t errsize)
{
	const struct cache_config *cc = s->cc;

	rs->urls = cc->redis;
	rs->nurls = cc->nredis;
	rs->password = NULL;
	if (cc->redis_password_file == NULL)
		return 0;
	if (!s->password_read) {
		if (redis_password_read(cc->redis_password_file, s->password,
		    sizeof s->password, err, errsize) != 0)
			return -1;
		s->password_read = 1;
	}
	rs->password = s->password;
	return 0;
}

/*
 * One command on Redis within timeout_ms: the reply, or NULL with the
 * reason in err; an error reply is a failure too.  The server that
 * answered goes in server.  The connection is kept in keep mode, else
 * closed.
 */
static struct redis_reply *
call(struct store *s, uint64_t timeout_ms, int write, int argc,
    const char *const *argv, const size_t *lens, char *server,
    size_t serversize, char *err, size_t errsize)
{
	struct redis_reply *r = NULL;
	struct redis_setup rs;
	char why[280];

	if (setup(s, &rs, why, sizeof why) != 0) {
		snprintf(err, errsize, "redis password: %s", why);
		return NULL;
	}
	if (redis_run(&s->redis, &rs, mono_ms() + timeout_ms, write, argc,
	    argv, lens, &r, why, sizeof why) != 0) {
		snprintf(err, errsize, "redis %s", why);
		return NULL;
	}
	snprintf(server, serversize, "%s", redis_server(s->redis));
	if (!s->keep) {
		redis_close(s->redis);
		s->redis = NULL;
	}
	if (r->type == REDIS_ERROR) {
		redis_clean(why, sizeof why, r->str, r->len);
		snprintf(err, errsize, "redis %s: %s: %s", server, argv[0],
		    why);
		redis_reply_free(r);
		return NULL;
	}
	return r;
}

/* call() for a connection: once per connection, and (keep mode) not
 * again for a while after a failure. */
static struct redis_reply *
call_for(struct store *s, struct store_use *u, int write, int argc,
    const char *const *argv, const size_t *lens)
{
	char err[512], server[REDIS_URL_TEXT_MAX];
	struct redis_reply *r;
	uint64_t now;

	if (s->cc->nredis == 0 || (u->failed & STORE_REDIS))
		return NULL;
	if (s->keep && (now = mono_ms()) < s->redis_retry_at) {
		snprintf(err, sizeof err, "%.400s; not asked again for %llu ms",
		    s->redis_why, (unsigned long long)(s->redis_retry_at -
		    now));
		trouble(u, STORE_REDIS, err);
		return NULL;
	}
	r = call(s, s->cc->redis_timeout_ms, write, argc, argv, lens, server,
	    sizeof server, err, sizeof err);
	if (r == NULL) {
		trouble(u, STORE_REDIS, err);
		if (s->keep) {
			snprintf(s->redis_why, sizeof s->redis_why, "%.399s",
			    err);
			s->redis_retry_at = mono_ms() + STORE_RETRY_MS;
			redis_close(s->redis);
			s->redis = NULL;
		}
	}
	return r;
}

static int
redis_lookup(struct store *s, const struct cache_key *k, uint64_t now,
    struct cache_entry *e, struct store_use *u)
{
	char key[CACHE_KEY_TEXT_MAX + 16], why[CACHE_KEY_TEXT_MAX + 200];
	const char *argv[2] = { "GET", key };
	struct redis_reply *r;
	int found = 0;

	if (s->cc->nredis == 0)
		return 0;	/* and no key formatted for nothing */
	store_redis_key(k, key, sizeof key);
	if ((r = call_for(s, u, 0, 2, argv, NULL)) == NULL)
		return 0;
	if (r->type == REDIS_STRING) {
		if (store_entry_parse(key, strlen(key), r->str, r->len, e) == 0)
			found = e->expires_ms > now;
		else {
			snprintf(why, sizeof why, "redis: %s is not an entry "
			    "of this format", key);
			trouble(u, STORE_REDIS, why);
		}
	} else if (r->type != REDIS_NIL) {
		snprintf(why, sizeof why, "redis: GET %s: not a string", key);
		trouble(u, STORE_REDIS, why);
	}
	redis_reply_free(r);
	return found;
}

/* A write's answer through the loop: only an error reply is news (a
 * lost connection was reported as it went). */
static void
told(void *ctx, const struct redis_reply *r, const char *why)
{
	struct store *s = ctx;
	char text[200], msg[300];

	if (r && r->type == REDIS_ERROR) {
		redis_clean(text, sizeof text, r->str, r->len);
		snprintf(msg, sizeof msg, "redis: %s", text);
		s->loop_report(s->loop_ctx, msg);
	} else if (r == NULL && why && strncmp(why, "READONLY", 8) == 0) {
		snprintf(msg, sizeof msg, "redis: %s", why);
		s->loop_report(s->loop_ctx, msg);
	}
}

/* A write through the loop, not waited for: 1 if it went out. */
static int
tell_loop(struct store *s, int argc, const char *const *argv)
{
	return redisloop_command(s->loop, 1, argc, argv, NULL, told, s) == 0;
}

static int
redis_record(struct store *s, const struct cache_key *k,
    enum cache_kind kind, uint64_t now, uint64_t ttl_ms, struct store_use *u)
{
	char key[CACHE_KEY_TEXT_MAX + 16], value[STORE_VALUE_MAX], px[24];
	const char *argv[5] = { "SET", key, value, "PX", px };
	struct cache_entry e = { *k, kind, now, now + ttl_ms };
	struct redis_reply *r;

	if (s->cc->nredis == 0)
		return 0;
	store_redis_key(k, key, sizeof key);
	store_value_format(&e, value, sizeof value);
	snprintf(px, sizeof px, "%llu", (unsigned long long)ttl_ms);
	if (s->loop)
		return tell_loop(s, 5, argv);
	if ((r = call_for(s, u, 1, 5, argv, NULL)) == NULL)
		return 0;
	redis_reply_free(r);
	return 1;
}

/* ------------------------------------------------------------- both */

/*
 * Does Redis's entry r say more than the grey entry e of this host?  A
 * pass or bad recorded since (the client passed, or named a greytrap,
 * at another host), or a first attempt made earlier at another host.
 */
static int
says_more(const struct cache_entry *r, const struct cache_entry *e)
{
	return r->kind != CACHE_GREY || r->recorded_ms < e->recorded_ms;
}

int
store_lookup(struct store *s, const struct cache_key *k, uint64_t now,
    struct cache_entry *e, struct store_use *u)
{
	struct cache_entry r;

	if (s->loop)
		return lmdb_lookup(s, k, now, e, u);	/* store_ask() */
	if (lmdb_lookup(s, k, now, e, u)) {
		/* Only a grey entry is worth a Redis exchange: it is the
		 * one a fleet's other hosts may have moved on. */
		if (e->kind != CACHE_GREY || !redis_lookup(s, k, now, &r, u) ||
		    !says_more(&r, e))
			return 1;
		*e = r;
	} else if (!redis_lookup(s, k, now, e, u))
		return 0;
	/* Copied as it is: recorded then, expiring when it does there. */
	lmdb_record(s, k, NULL, e->kind, e->recorded_ms, e->expires_ms -
	    e->recorded_ms, u);
	return 1;
}

/* Record k in every store; own: an early talker's own key (see
 * lmdb_record()). */
static unsigned
record(struct store *s, const struct cache_key *k,
    const struct cache_key *own, enum cache_kind kind, uint64_t now,
    uint64_t ttl_ms, struct store_use *u)
{
	unsigned done = 0;

	if (lmdb_record(s, k, own, kind, now, ttl_ms, u))
		done |= STORE_LMDB;
	/* Redis keeps its size by its own maxmemory policy. */
	if (redis_record(s, k, kind, now, ttl_ms, u))
		done |= STORE_REDIS;
	return done;
}

unsigned
store_record(struct store *s, const struct cache_key *k,
    enum cache_kind kind, uint64_t now, uint64_t ttl_ms, struct store_use *u)
{
	return record(s, k, NULL, kind, now, ttl_ms, u);
}

unsigned
store_forget(struct store *s, const struct cache_key *k, struct store_use *u)
{
	char key[CACHE_KEY_TEXT_MAX + 16];
	const char *argv[2] = { "DEL", key };
	struct redis_reply *r;
	struct cache *h = lmdb_for(s, u, 1);
	unsigned done = 0;
	int failed;

	if (h != NULL) {
		failed = cache_delete(h, k) < 0;
		lmdb_done(s, h, u, failed);
		done |= failed ? 0 : STORE_LMDB;
	}
	store_redis_key(k, key, sizeof key);
	if (s->loop) {
		if (tell_loop(s, 2, argv))
			done |= STORE_REDIS;
	} else if ((r = call_for(s, u, 1, 2, argv, NULL)) != NULL) {
		redis_reply_free(r);
		done |= STORE_REDIS;
	}
	return done;
}

unsigned
store_record_bad(struct store *s, const struct cache_key *bad,
    const struct cache_key *own, uint64_t now, uint64_t ttl_ms,
    struct store_use *u)
{
	return record(s, bad, own, CACHE_BAD, now, ttl_ms, u);
}

/* ------------------------------------------------- in an event loop */

int
store_go_async(struct store *s, void (*report)(void *ctx, const char *why),
    void *ctx, char *err, size_t errsize)
{
	char why[280];

	if (s->cc->nredis == 0 || !s->keep)
		return 0;
	if (setup(s, &s->setup, why, sizeof why) != 0) {
		snprintf(err, errsize, "redis password: %s", why);
		return -1;
	}
	s->loop_report = report;
	s->loop_ctx = ctx;
	s->loop = redisloop_new(&s->setup, s->cc->redis_timeout_ms,
	    STORE_RETRY_MS, report, ctx);
	if (s->loop == NULL) {
		snprintf(err, errsize, "out of memory");
		return -1;
	}
	return 0;
}

/* Redis's answer to an MGET (or a GET, for one key). */
static void
asked(void *ctx, const struct redis_reply *r, const char *why)
{
	struct store_ask *q = ctx;
	struct cache_entry e[2];
	int found[2] = { 0, 0 };
	char key[CACHE_KEY_TEXT_MAX + 16];
	size_t i;

	(void)why;
	memset(e, 0, sizeof e);
	if (r == NULL || r->type != REDIS_ARRAY || r->elements != q->n) {
		q->fn(q->ctx, e, found, q->n, 1);
		return;
	}
	for (i = 0; i < q->n; i++) {
		const struct redis_reply *v = r->element[i];

		if (v->type != REDIS_STRING)
			continue;
		store_redis_key(&q->keys[i], key, sizeof key);
		found[i] = store_entry_parse(key, strlen(key), v->str, v->len,
		    &e[i]) == 0 && e[i].expires_ms > q->now;
	}
	q->fn(q->ctx, e, found, q->n, 0);
}

int
store_ask(struct store *s, struct store_ask *q)
{
	char keys[2][CACHE_KEY_TEXT_MAX + 16];
	const char *argv[3] = { "MGET", keys[0], keys[1] };
	size_t i;

	for (i = 0; i < q->n && i < 2; i++)
		store_redis_key(&q->keys[i], keys[i], sizeof keys[i]);
	return redisloop_command(s->loop, 0, 1 + (int)q->n, argv, NULL, asked,
	    q);
}

void
store_unask(struct store *s, struct store_ask *q)
{
	redisloop_cancel(s->loop, q);
}

void
store_copy(struct store *s, const struct cache_entry *e, struct store_use *u)
{
	lmdb_record(s, &e->key, NULL, e->kind, e->recorded_ms,
	    e->expires_ms - e->recorded_ms, u);
}

/* ------------------------------------------------- for the commands */

static uint64_t
maint_ms(const struct store *s)
{
	return s->cc->redis_timeout_ms > STORE_MAINT_MS_MIN ?
	    s->cc->redis_timeout_ms : STORE_MAINT_MS_MIN;
}

/* call() for a command run by hand. */
static struct redis_reply *
maint_call(struct store *s, int write, int argc, const char *const *argv,
    const size_t *lens, char *err, size_t errsize)
{
	char server[REDIS_URL_TEXT_MAX];

	return call(s, maint_ms(s), write, argc, argv, lens, server,
	    sizeof server, err, errsize);
}

int
store_redis_ping(struct store *s, uint64_t timeout_ms, char *server,
    size_t serversize, char *err, size_t errsize)
{
	const char *argv[1] = { "PING" };
	struct redis_reply *r;
	char text[160];
	int rc = 0;

	r = call(s, timeout_ms, 0, 1, argv, NULL, server, serversize, err,
	    errsize);
	if (r == NULL)
		return -1;
	if (r->type != REDIS_STATUS || strcmp(r->str, "PONG") != 0) {
		redis_clean(text, sizeof text, r->str ? r->str : "",
		    r->str ? r->len : 0);
		snprintf(err, errsize, "redis %s: PING: %s", server, text[0] ?
		    text : "no PONG");
		rc = -1;
	}
	redis_reply_free(r);
	return rc;
}

/* The values of one SCAN batch of keys, through MGET. */
static int
list_batch(struct store *s, const struct redis_reply *keys,
    int (*fn)(void *ctx, const struct cache_entry *e), void *ctx,
    unsigned long *foreign, char *err, size_t errsize)
{
	const char **argv = calloc(keys->elements + 1, sizeof *argv);
	size_t *lens = calloc(keys->elements + 1, sizeof *lens);
	struct redis_reply *r = NULL;
	struct cache_entry e;
	size_t i;
	int rc = -1, stop = 0;

	if (argv == NULL || lens == NULL) {
		snprintf(err, errsize, "out of memory");
		goto out;
	}
	argv[0] = "MGET";
	lens[0] = 4;
	for (i = 0; i < keys->elements; i++) {
		if (keys->element[i]->type != REDIS_STRING) {
			snprintf(err, errsize, "redis: SCAN: not a key");
			goto out;
		}
		argv[i + 1] = keys->element[i]->str;
		lens[i + 1] = keys->element[i]->len;
	}
	r = maint_call(s, 0, (int)keys->elements + 1, argv, lens, err,
	    errsize);
	if (r == NULL)
		goto out;
	if (r->type != REDIS_ARRAY || r->elements != keys->elements) {
		snprintf(err, errsize, "redis: MGET: not an array of %zu",
		    keys->elements);
		goto out;
	}
	for (i = 0; i < r->elements && !stop; i++) {
		const struct redis_reply *v = r->element[i];

		if (v->type == REDIS_NIL)
			continue;	/* expired since the SCAN */
		if (v->type != REDIS_STRING || store_entry_parse(argv[i + 1],
		    lens[i + 1], v->str, v->len, &e) != 0)
			(*foreign)++;
		else
			stop = fn(ctx, &e);
	}
	rc = stop ? 1 : 0;
out:
	redis_reply_free(r);
	free(argv);
	free(lens);
	return rc;
}

int
store_redis_list(struct store *s,
    int (*fn)(void *ctx, const struct cache_entry *e), void *ctx,
    unsigned long *foreign, char *err, size_t errsize)
{
	char cursor[32] = "0";
	const char *argv[6] = { "SCAN", cursor, "MATCH", STORE_PREFIX "*",
	    "COUNT", SCAN_COUNT };
	int keep = s->keep, rc = 0;

	*foreign = 0;
	s->keep = 1;		/* one connection for the whole listing */
	do {
		struct redis_reply *r = maint_call(s, 0, 6, argv, NULL, err,
		    errsize);

		if (r == NULL) {
			rc = -1;
			break;
		}
		if (r->type != REDIS_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_STRING ||
		    r->element[0]->len >= sizeof cursor ||
		    r->element[1]->type != REDIS_ARRAY) {
			snprintf(err, errsize, "redis: SCAN: unexpected reply");
			redis_reply_free(r);
			rc = -1;
			break;
		}
		memcpy(cursor, r->element[0]->str, r->element[0]->len + 1);
		if (r->element[1]->elements > 0)
			rc = list_batch(s, r->element[1], fn, ctx, foreign,
			    err, errsize);
		redis_reply_free(r);
	} while (rc == 0 && strcmp(cursor, "0") != 0);
	s->keep = keep;
	if (!keep) {
		redis_close(s->redis);
		s->redis = NULL;
	}
	return rc < 0 ? -1 : 0;
}

int
store_redis_delete(struct store *s, const struct cache_key *k, char *err,
    size_t errsize)
{
	char key[CACHE_KEY_TEXT_MAX + 16];
	const char *argv[2] = { "DEL", key };
	struct redis_reply *r;
	int rc;

	store_redis_key(k, key, sizeof key);
	if ((r = maint_call(s, 1, 2, argv, NULL, err, errsize)) == NULL)
		return -1;
	if (r->type != REDIS_INTEGER) {
		snprintf(err, errsize, "redis: DEL: not a number");
		rc = -1;
	} else {
		rc = r->integer > 0;
	}
	redis_reply_free(r);
	return rc;
}
