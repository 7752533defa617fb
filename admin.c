/* admin.c - the commands run by hand; see admin.h for the contract. */
#include "admin.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "conn.h"
#include "duration.h"
#include "fairq.h"
#include "greytrap.h"
#include "relay.h"
#include "reportfmt.h"
#include "safefile.h"
#include "spf.h"
#include "store.h"
#include "waiters.h"

#define CACHE_MAINT_LOCK_MS 10000	/* an operator can wait for writers */
#define SPF_TRY_MS 2000		/* a query's first try: a recursive
				 * resolver may need more than a second */
#define SPF_WALK_MS 30000	/* --spf-walk's whole walk */

static void
report_to_stderr(void *ctx, const char *path, unsigned long line,
    const char *msg)
{
	(void)ctx;
	if (line)
		fprintf(stderr, "%s:%lu: %s\n", path, line, msg);
	else
		fprintf(stderr, "%s: %s\n", path, msg);
}

/* ------------------------------------------------------------- -n */

/* The decoy part of -n; returns the number of problems. */
static unsigned long
check_decoy(const struct config *cfg)
{
	const struct decoy_config *dc = &cfg->decoy;
	char a[32], b[32], why[PATH_MAX + 200];

	if (cfg->mode == MODE_WRAP)
		return 0;
	printf("mode: %s (no program)\n", mode_names[cfg->mode]);
	if (cfg->mode == MODE_TARPIT) {
		duration_format(dc->interval_ms, a, sizeof a);
		duration_format(dc->tarpit_max_ms, b, sizeof b);
		printf("tarpit: a 220- line every %s s, for at most %s s "
		    "(delay and early not used)\n", a, b);
	} else {
		duration_format(dc->tempfail_max_ms, a, sizeof a);
		printf("tempfail: at most %u commands in %s s\n",
		    dc->max_commands, a);
	}
	if (cfg->slots == 0) {
		printf("slots: no cap\n");
		return 0;
	}
	printf("slots: %u in %s\n", cfg->slots, cfg->slots_dir);
	/* Lock files are made there on first use: safe, and writable. */
	if (safe_dir(cfg->slots_dir, why, sizeof why) != 0) {
		fprintf(stderr, "cannot hold slots there: %s\n", why);
		return 1;
	}
	if (access(cfg->slots_dir, W_OK | X_OK) == 0)
		return 0;
	fprintf(stderr, "%s: cannot hold slots there: %s\n", cfg->slots_dir,
	    strerror(errno));
	return 1;
}

/* The delay mode's count of waiting clients (--stress, --slots). */
static unsigned long
check_waiting(const struct config *cfg)
{
	char delay[32], why[320];
	unsigned waiting;

	if (cfg->mode != MODE_WRAP)
		return 0;
	if (cfg->stress) {
		duration_format(cfg->stress_delay_ms, delay, sizeof delay);
		printf("stress: %s s for a client when %u are waiting\n", delay,
		    cfg->stress);
	}
	if (cfg->slots)
		printf("slots: %u waiting at most\n", cfg->slots);
	if (cfg->state_dir == NULL)
		return 0;
	if (waiters_check(cfg->state_dir, &waiting, why, sizeof why) == 0) {
		printf("state-dir: %s (%u waiting now)\n", cfg->state_dir,
		    waiting);
		return 0;
	}
	printf("state-dir: %s\n", cfg->state_dir);
	fprintf(stderr, "%s\n", why);
	return 1;
}

/* No cache file yet: can the first writer make one there, safely? */
static unsigned long
check_cache_dir(const char *path, int data)
{
	char dir[PATH_MAX], why[PATH_MAX + 200], *slash;

	snprintf(dir, sizeof dir, "%s", path);
	if ((slash = strrchr(dir, '/')) != NULL)
		slash[slash == dir] = '\0';
	else
		strcpy(dir, ".");
	if (safe_dir(dir, why, sizeof why) != 0) {
		fprintf(stderr, "cannot make the cache there: %s\n", why);
		return 1;
	}
	if (access(dir, W_OK | X_OK) != 0) {
		fprintf(stderr, "%s: cannot make the cache there: %s\n", dir,
		    strerror(errno));
		return 1;
	}
	printf("cache entries: %s\n", data ? "not counted (no lock file "
	    "yet: the first connection makes it)" : "none yet (the first "
	    "client to pass makes the file)");
	return 0;
}

/*
 * The cache part of -n; returns the number of problems.  It looks
 * without making anything: files made by -n run as root would shut
 * sendwrap's own user out of them.
 */
static unsigned long
check_cache(const struct config *cfg)
{
	const struct cache_config *cc = &cfg->cache;
	struct cache_options o = { 0, cc->map_size, 0 };
	char pass[32], bad[32], err[320], lock[PATH_MAX + 8];
	struct cache_counts n;
	struct cache *c;
	struct stat st;
	int data;

	if (cc->path == NULL)
		return 0;
	duration_format(cc->pass_ttl_ms, pass, sizeof pass);
	duration_format(cc->bad_ttl_ms, bad, sizeof bad);
	printf("cache: %s (keys /%u and /%u, map %zu MiB)\npass-ttl: %s s\n"
	    "bad-ttl: %s s%s\n", cc->path, cc->net.v4len, cc->net.v6len,
	    (cc->map_size ? cc->map_size : CACHE_MAP_DEFAULT) >> 20, pass, bad,
	    cc->bad_ttl_ms ? "" : " (off)");
	if (cc->bad_ttl_ms)
		printf("bad-max: %u (IPv6 keys at most /%u)\n", cc->bad_max,
		    cc->net.v6len < CACHE_BAD_V6LEN ? cc->net.v6len :
		    CACHE_BAD_V6LEN);
	snprintf(lock, sizeof lock, "%s-lock", cc->path);
	if ((data = stat(cc->path, &st) == 0) && stat(lock, &st) == 0) {
		if ((c = cache_open(cc->path, &o, err, sizeof err)) != NULL &&
		    cache_count(c, cache_now_ms(), &n) == 0) {
			printf("cache entries: %lu (%lu pass, %lu bad, %lu "
			    "grey, %lu expired)\n", n.total, n.pass, n.bad,
			    n.grey, n.expired);
			cache_close(c);
			return 0;
		}
		fprintf(stderr, "%s\n", c ? cache_error(c) : err);
		cache_close(c);
		return 1;
	}
	if (errno != ENOENT) {
		fprintf(stderr, "%s: %s\n", data ? lock : cc->path,
		    strerror(errno));
		return 1;
	}
	return check_cache_dir(cc->path, data);
}

/*
 * The Redis part of -n: the servers, the password file, and one PING
 * to each server within --redis-timeout.  Returns the number of problems.
 */
static unsigned long
check_redis(const struct config *cfg)
{
	const struct cache_config *cc = &cfg->cache;
	char t[32], server[REDIS_URL_TEXT_MAX], err[512];
	unsigned long problems = 0;
	struct store s;
	uint64_t start;
	size_t i;
	int r;

	if (cc->nredis == 0)
		return 0;
	for (i = 0; i < cc->nredis; i++)
		printf("redis: %s%s%s\n", cc->redis[i].text, cc->redis[i].user[0] ?
		    " as user " : "", cc->redis[i].user);
	duration_format(cc->redis_timeout_ms, t, sizeof t);
	printf("redis-timeout: %s s\nredis-password-file: %s\n", t,
	    cc->redis_password_file ? cc->redis_password_file : "(none)");
	if (cc->path == NULL) {
		duration_format(cc->pass_ttl_ms, t, sizeof t);
		printf("pass-ttl: %s s\n", t);
		duration_format(cc->bad_ttl_ms, t, sizeof t);
		printf("bad-ttl: %s s%s\n", t, cc->bad_ttl_ms ? "" : " (off)");
	}
	/* Each server on its own, so that a broken fallback shows too. */
	for (i = 0; i < cc->nredis; i++) {
		struct cache_config one = *cc;

		one.redis[0] = cc->redis[i];
		one.nredis = 1;
		store_init(&s, &one, 0);
		start = mono_ms();
		r = store_redis_ping(&s, cc->redis_timeout_ms, server,
		    sizeof server, err, sizeof err);
		duration_format(mono_ms() - start, t, sizeof t);
		store_close(&s);
		if (r != 0) {
			fprintf(stderr, "%s\n", err);
			problems++;
		} else {
			printf("redis ping: PONG from %s in %s s\n", server, t);
		}
	}
	return problems;
}

static unsigned long
check_sources(const struct config *cfg)
{
	unsigned long problems = 0;
	size_t i, count;

	for (i = 0; i < cfg->nsources; i++) {
		if (cfg->sources[i].path == NULL) {
			printf("allow: %s\n", cfg->sources[i].entry.rule);
			continue;
		}
		problems += wl_check_file(cfg->sources[i].path, &count,
		    report_to_stderr, NULL);
		printf("allowlist: %s: %zu entries\n", cfg->sources[i].path,
		    count);
	}
	return problems;
}

static unsigned long
check_program(const struct config *cfg)
{
	size_t i;

	if (cfg->forward)	/* relayed, not run */
		return 0;
	printf("program:");
	if (cfg->program)
		for (i = 0; cfg->program[i]; i++)
			printf(" %s", cfg->program[i]);
	else
		printf(" (none)");
	printf("\n");
	if (cfg->program && strchr(cfg->program[0], '/') &&
	    access(cfg->program[0], X_OK) != 0) {
		fprintf(stderr, "%s: cannot run: %s\n", cfg->program[0],
		    strerror(errno));
		return 1;
	}
	return 0;
}

/* The listener part of -n: the addresses parse (nothing is bound). */
static unsigned long
check_listener(const struct config *cfg)
{
	size_t i;

	if (cfg->nlisten == 0)
		return 0;
	for (i = 0; i < cfg->nlisten; i++)
		printf("listen: %s\n", cfg->listen[i]);
	printf("max-clients: %u\nmax-children: %u\nper-ip: %u\n"
	    "per-ip-children: %u\n", cfg->max_clients, cfg->max_children,
	    cfg->per_ip, cfg->per_ip_children ? cfg->per_ip_children :
	    fairq_default_share(cfg->max_children));
	if (cfg->envuidgid)
		printf("user: $UID, group: $GID\n");
	else if (cfg->uid >= 0 || cfg->gid >= 0)
		printf("user: %ld, group: %ld\n", cfg->uid, cfg->gid);
	return 0;
}

/* The load balancers of -n (--proxy-from). */
static unsigned long
check_proxy(const struct config *cfg)
{
	char timeout[32];
	size_t i;

	if (cfg->proxy.nfrom == 0)
		return 0;
	for (i = 0; i < cfg->proxy.nfrom; i++)
		printf("proxy-from: %s\n", cfg->proxy.from[i].rule);
	duration_format(cfg->proxy.timeout_ms, timeout, sizeof timeout);
	printf("proxy-timeout: %s s\n", timeout);
	return 0;
}

/*
 * --forward's part of -n: the target, and one connect to it within
 * --forward-timeout.  An MTA that does not answer is reported but not
 * counted: it may be down for maintenance, and while it is the listener
 * answers 421 4.3.0, which costs no mail.
 */
static unsigned long
check_forward(const struct config *cfg)
{
	struct relay_config rc;
	char timeout[32], idle[32], took[32];
	uint64_t ms;

	if (cfg->forward == NULL)
		return 0;
	memset(&rc, 0, sizeof rc);
	rc.target = cfg->forward_target;
	rc.connect_ms = cfg->forward_timeout_ms;
	duration_format(cfg->forward_timeout_ms, timeout, sizeof timeout);
	duration_format(cfg->forward_idle_ms, idle, sizeof idle);
	printf("forward: %s (connect within %s s, idle %s s)\n", cfg->forward,
	    timeout, idle);
	fflush(stdout);
	if (relay_probe(&rc, &ms) == 0) {
		duration_format(ms, took, sizeof took);
		printf("forward connect: %s in %s s\n", cfg->forward, took);
	} else
		fprintf(stderr, "sendwrap: forward: cannot connect to %s: %s "
		    "(not counted as a problem: clients get 421 4.3.0 until it "
		    "answers)\n", cfg->forward, strerror(errno));
	return 0;
}

/* The DNS lists part of -n. */
static unsigned long
check_lists(const struct config *cfg)
{
	const struct dns_config *dc = &cfg->dns;
	size_t i;

	if (dc->n == 0)
		return 0;
	for (i = 0; i < dc->n; i++)
		printf("%s: %s%s weight %d\n", dc->lists[i].allow ? "dnswl" :
		    "dnsbl", dc->lists[i].zone, dc->lists[i].filtered ?
		    " (filtered)" : "", dc->lists[i].weight);
	printf("dns: refuse (%s) at score %d or more, greet at %d or less; "
	    "server %s\n", early_names[dc->action], dc->block_at,
	    dc->allow_at, dc->server ? dc->server : "from /etc/resolv.conf");
	return 0;
}

/* The greylisting part of -n: its settings, the greytrap list read. */
static unsigned long
check_greylist(const struct config *cfg)
{
	const struct grey_config *g = &cfg->grey;
	unsigned long problems = 0;
	char pass[32], expire[32], trap[32];
	struct greytraps *t;
	int i, n = 0;

	if (!g->on)
		return 0;
	duration_format(g->pass_ms, pass, sizeof pass);
	duration_format(g->expire_ms, expire, sizeof expire);
	printf("greylist: pass after %s s, first attempts kept %s s, "
	    "tests", pass, expire);
	for (i = 0; i < GREY_TEST_COUNT; i++)
		if (g->tests & GREY_TEST_BIT(i))
			printf("%s%s", n++ ? "," : " ", grey_test_names[i]);
	printf("%s\n", n ? "" : " none");
	if (g->traps == NULL)
		return 0;
	t = greytraps_load(g->traps, 0, report_to_stderr, NULL, &problems);
	duration_format(g->trap_ttl_ms, trap, sizeof trap);
	printf("greytrap: %s: %zu addresses, remembered %s s\n", g->traps,
	    greytraps_count(t), trap);
	greytraps_free(t);
	return problems;
}

static int
check_config(const struct config *cfg)
{
	unsigned long problems = 0;
	char delay[32];

	duration_format(cfg->delay_ms, delay, sizeof delay);
	printf("delay: %s s\nearly: %s\nbanner: %s\n", delay,
	    early_names[cfg->early], cfg->banner ? cfg->banner : "(none)");
	problems += check_listener(cfg);
	problems += check_proxy(cfg);
	problems += check_forward(cfg);
	problems += check_lists(cfg);
	problems += check_greylist(cfg);
	problems += check_decoy(cfg);
	problems += check_waiting(cfg);
	problems += check_cache(cfg);
	problems += check_redis(cfg);
	problems += check_sources(cfg);
	problems += check_program(cfg);
	printf("%s\n", problems ? "configuration has errors" :
	    "configuration ok");
	return problems ? EXIT_PERM : 0;
}

/* ------------------------------------------------ cache maintenance */

/* A time for --cache-list: ISO 8601 in UTC, to the second. */
static const char *
utc(uint64_t ms, char *buf, size_t size)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	/* Past 9999-12-31 (a TTL of years given in ms, say): never. */
	if (ms / 1000 > (uint64_t)253402300799 || gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, size, "never");
	return buf;
}

/* One --cache-list line: KEY KIND EXPIRES RECORDED live|expired. */
static int
print_entry(void *ctx, const struct cache_entry *e)
{
	uint64_t now = *(const uint64_t *)ctx;
	char key[CACHE_KEY_TEXT_MAX], expires[32], recorded[32];

	cache_key_format(&e->key, key, sizeof key);
	printf("%s %s %s %s %s\n", key, cache_kind_name(e->kind),
	    utc(e->expires_ms, expires, sizeof expires),
	    utc(e->recorded_ms, recorded, sizeof recorded),
	    e->expires_ms > now ? "live" : "expired");
	return 0;
}

/* --cache-count over Redis's entries. */
struct entry_count {
	uint64_t now;
	struct cache_counts n;
};

static int
count_entry(void *ctx, const struct cache_entry *e)
{
	struct entry_count *t = ctx;

	t->n.total++;
	if (e->expires_ms <= t->now)
		t->n.expired++;
	else
		cache_counts_add(&t->n, e->kind);
	return 0;
}

/* The store a line is about, when there are two: "FILE: ", "redis: ". */
static const char *
store_word(const struct config *cfg, unsigned which, char *buf, size_t size)
{
	if (store_kinds(&cfg->cache) != (STORE_LMDB | STORE_REDIS))
		buf[0] = '\0';
	else
		snprintf(buf, size, "%s: ", which == STORE_LMDB ?
		    cfg->cache.path : "redis");
	return buf;
}

static void
print_counts(const char *store, const struct cache_counts *n)
{
	printf("%s%lu entries: %lu pass, %lu bad, %lu grey, %lu expired\n",
	    store, n->total, n->pass, n->bad, n->grey, n->expired);
}

/* Run one maintenance command on the open LMDB file c; 0 or -1. */
static int
maintain(const struct config *cfg, struct cache *c, const struct cache_key *k)
{
	uint64_t now = cache_now_ms();
	char key[CACHE_KEY_TEXT_MAX], store[PATH_MAX + 8];
	struct cache_counts n;
	long purged;
	int r = 0;

	store_word(cfg, STORE_LMDB, store, sizeof store);
	switch (cfg->command) {
	case COMMAND_CACHE_LIST:
		if (store[0])
			printf("# %s\n", cfg->cache.path);
		r = cache_list(c, print_entry, &now);
		break;
	case COMMAND_CACHE_COUNT:
		if ((r = cache_count(c, now, &n)) == 0)
			print_counts(store, &n);
		break;
	case COMMAND_CACHE_DELETE:
		cache_key_format(k, key, sizeof key);
		if ((r = cache_delete(c, k)) >= 0)
			printf("%s%s: %s\n", store, key, r ? "deleted" :
			    "not in the cache");
		break;
	default:
		if ((purged = cache_purge(c, now)) >= 0)
			printf("%ld expired entries purged\n", purged);
		r = purged < 0 ? -1 : 0;
	}
	return r < 0 ? -1 : 0;
}

/* The command on the LMDB file: 0 or EXIT_TEMP. */
static int
lmdb_maintenance(const struct config *cfg, const struct cache_key *k)
{
	const struct cache_config *cc = &cfg->cache;
	struct cache_options o = { 0, cc->map_size, CACHE_MAINT_LOCK_MS };
	const char *path = cc->path;
	struct cache *c;
	char err[320];
	int r;

	o.write = cfg->command == COMMAND_CACHE_DELETE ||
	    cfg->command == COMMAND_CACHE_PURGE;
	/* Maintenance never makes a cache (reading never does). */
	if (o.write && access(path, F_OK) != 0) {
		fprintf(stderr, "sendwrap: %s: %s\n", path, strerror(errno));
		return EXIT_TEMP;
	}
	if ((c = cache_open(path, &o, err, sizeof err)) == NULL) {
		fprintf(stderr, "sendwrap: %s\n", err);
		return EXIT_TEMP;
	}
	if ((r = maintain(cfg, c, k)) < 0)
		fprintf(stderr, "sendwrap: %s\n", cache_error(c));
	cache_close(c);
	return r < 0 ? EXIT_TEMP : 0;
}

/* The command on Redis: 0 or EXIT_TEMP. */
static int
redis_maintenance(const struct config *cfg, const struct cache_key *k)
{
	struct entry_count t = { cache_now_ms(), { 0, 0, 0, 0, 0 } };
	char key[CACHE_KEY_TEXT_MAX], store[16], err[512];
	unsigned long foreign = 0;
	struct store s;
	int r;

	store_init(&s, &cfg->cache, 0);
	store_word(cfg, STORE_REDIS, store, sizeof store);
	switch (cfg->command) {
	case COMMAND_CACHE_LIST:
		if (store[0])
			printf("# redis\n");
		r = store_redis_list(&s, print_entry, &t.now, &foreign, err,
		    sizeof err);
		break;
	case COMMAND_CACHE_COUNT:
		if ((r = store_redis_list(&s, count_entry, &t, &foreign, err,
		    sizeof err)) == 0)
			print_counts(store, &t.n);
		break;
	default:
		cache_key_format(k, key, sizeof key);
		if ((r = store_redis_delete(&s, k, err, sizeof err)) >= 0)
			printf("%s%s: %s\n", store, key, r ? "deleted" :
			    "not in the cache");
	}
	store_close(&s);
	if (foreign)
		fprintf(stderr, "sendwrap: redis: %lu keys under " STORE_PREFIX
		    " are not entries of this format (left alone)\n", foreign);
	if (r < 0) {
		fprintf(stderr, "sendwrap: %s\n", err);
		return EXIT_TEMP;
	}
	return 0;
}

static void
to_stderr(void *ctx, const char *why)
{
	(void)ctx;
	fprintf(stderr, "sendwrap: %s\n", why);
}

/* --cache-add KIND KEY [--ttl DURATION]: into every store given. */
static int
cache_add(const struct config *cfg, const struct cache_key *k)
{
	const struct cache_config *cc = &cfg->cache;
	struct store_use u = { 0, to_stderr, NULL };
	enum cache_kind kind;
	char key[CACHE_KEY_TEXT_MAX], until[32];
	uint64_t ttl, now = cache_now_ms();
	unsigned done, want = store_kinds(cc);
	struct store s;

	if (strcmp(cfg->args[0], "pass") == 0)
		kind = CACHE_PASS;
	else if (strcmp(cfg->args[0], "bad") == 0)
		kind = CACHE_BAD;
	else {
		fprintf(stderr, "sendwrap: --cache-add: KIND is pass or bad, "
		    "not '%.40s'\n", cfg->args[0]);
		return EXIT_PERM;
	}
	ttl = cc->add_ttl_ms ? cc->add_ttl_ms : kind == CACHE_PASS ?
	    cc->pass_ttl_ms : cc->bad_ttl_ms;
	if (ttl == 0) {
		fprintf(stderr, "sendwrap: --cache-add bad needs --ttl (or "
		    "--bad-ttl)\n");
		return EXIT_PERM;
	}
	/* Maintenance never makes a cache file. */
	if (cc->path && access(cc->path, F_OK) != 0) {
		fprintf(stderr, "sendwrap: %s: %s\n", cc->path,
		    strerror(errno));
		u.failed |= STORE_LMDB;
	}
	store_init(&s, cc, 0);
	done = store_record(&s, k, kind, now, ttl, &u);
	store_close(&s);
	cache_key_format(k, key, sizeof key);
	utc(now + ttl, until, sizeof until);
	if (done & STORE_LMDB)
		printf("%s %s until %s: %s\n", key, cfg->args[0], until,
		    cc->path);
	if (done & STORE_REDIS)
		printf("%s %s until %s: redis\n", key, cfg->args[0], until);
	return done == want ? 0 : EXIT_TEMP;
}

static int
cache_maintenance(const struct config *cfg)
{
	const struct cache_config *cc = &cfg->cache;
	struct cache_key k;
	int r = 0, rr = 0;

	memset(&k, 0, sizeof k);
	if (cfg->command == COMMAND_CACHE_DELETE ||
	    cfg->command == COMMAND_CACHE_ADD) {
		const char *key = cfg->args[cfg->command == COMMAND_CACHE_ADD];

		if (cache_key_parse(key, &cc->net, &k) != 0) {
			fprintf(stderr, "sendwrap: bad key '%.80s' (an address, "
			    "or NETWORK/LEN as --cache-list shows it)\n", key);
			return EXIT_PERM;
		}
	}
	if (cfg->command == COMMAND_CACHE_ADD)
		r = cache_add(cfg, &k);
	else {
		if (cc->path)
			r = lmdb_maintenance(cfg, &k);
		if (cc->nredis && cfg->command != COMMAND_CACHE_PURGE)
			rr = redis_maintenance(cfg, &k);
	}
	if (fflush(stdout) != 0) {
		fprintf(stderr, "sendwrap: cannot write: %s\n", strerror(errno));
		return EXIT_TEMP;
	}
	return r > rr ? r : rr;
}

/* ------------------------------------------------------------ the rest */

static int
compile_allowlist(const struct config *cfg)
{
	long n = wl_compile(cfg->args[0], cfg->args[1], report_to_stderr, NULL);

	if (n < 0)
		return EXIT_PERM;
	printf("%s: %ld entries\n", cfg->args[1], n);
	return 0;
}

/* One top domain's lines: its networks on stdout, or its error. */
static int
print_walk(const char *domain, const struct spf_result *res)
{
	char text[ADDR_TEXT_MAX];
	size_t i;

	if (res->error[0]) {
		fprintf(stderr, "sendwrap: spf-walk: %s: %s\n", domain,
		    res->error);
		return EXIT_TEMP;
	}
	for (i = 0; i < res->nnotes; i++)
		fprintf(stderr, "sendwrap: spf-walk: %s: note: %s\n", domain,
		    res->notes[i]);
	if (res->notes_dropped)
		fprintf(stderr, "sendwrap: spf-walk: %s: note: more notes "
		    "left out\n", domain);
	if (res->n == 0 && res->nnotes == 0)
		fprintf(stderr, "sendwrap: spf-walk: %s: note: no networks\n",
		    domain);
	for (i = 0; i < res->n; i++)
		printf("%s/%u # %s\n", addr_format(&res->nets[i].net, text,
		    sizeof text), res->nets[i].prefix, domain);
	return 0;
}

/* --spf-walk DOMAIN...: allowlist lines from the domains' SPF records. */
static int
spf_walk_command(const struct config *cfg)
{
	struct spf_config sc = { cfg->dns.server, SPF_TRY_MS, SPF_WALK_MS };
	const char *const *domains = (const char *const *)cfg->program;
	struct spf_result *res;
	const char *why;
	size_t n, i;
	int status = 0;

	for (n = 0; domains[n]; n++)
		;
	if ((res = calloc(n, sizeof *res)) == NULL ||
	    spf_walk(domains, n, &sc, res, &why) != 0) {
		fprintf(stderr, "sendwrap: spf-walk: %s\n", res ? why :
		    "out of memory");
		free(res);
		return EXIT_TEMP;
	}
	for (i = 0; i < n; i++)
		if (print_walk(domains[i], &res[i]) != 0)
			status = EXIT_TEMP;
	spf_results_free(res, n);
	free(res);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "sendwrap: spf-walk: cannot write: %s\n",
		    strerror(errno));
		return EXIT_TEMP;
	}
	return status;
}

int
admin_run(const struct config *cfg)
{
	switch (cfg->command) {
	case COMMAND_HELP:
		options_help(stdout);
		return 0;
	case COMMAND_VERSION:
		/* The Makefile's, from debian/changelog. */
		puts("sendwrap " SENDWRAP_VERSION);
		return 0;
	case COMMAND_LIST_OPTIONS:
		options_list(stdout);
		return 0;
	case COMMAND_CHECK:
		return check_config(cfg);
	case COMMAND_COMPILE:
		return compile_allowlist(cfg);
	case COMMAND_CONNECTION:
		return EXIT_PERM;
	case COMMAND_REPORT:
		return report_run(cfg);
	case COMMAND_SPF_WALK:
		return spf_walk_command(cfg);
	default:
		return cache_maintenance(cfg);
	}
}
