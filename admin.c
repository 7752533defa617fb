/* admin.c - the commands run by hand; see admin.h for the contract. */
#include "admin.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "duration.h"
#include "safefile.h"

#define CACHE_MAINT_LOCK_MS 10000	/* an operator can wait for writers */

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
			    "expired)\n", n.total, n.pass, n.bad, n.expired);
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

static int
check_config(const struct config *cfg)
{
	unsigned long problems = 0;
	char delay[32];

	duration_format(cfg->delay_ms, delay, sizeof delay);
	printf("delay: %s s\nearly: %s\nbanner: %s\n", delay,
	    early_names[cfg->early], cfg->banner ? cfg->banner : "(none)");
	problems += check_decoy(cfg);
	problems += check_cache(cfg);
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
	printf("%s %s %s %s %s\n", key, e->kind == CACHE_PASS ? "pass" : "bad",
	    utc(e->expires_ms, expires, sizeof expires),
	    utc(e->recorded_ms, recorded, sizeof recorded),
	    e->expires_ms > now ? "live" : "expired");
	return 0;
}

/* Run one maintenance command on the open cache c; 0 or -1. */
static int
maintain(const struct config *cfg, struct cache *c, const struct cache_key *k)
{
	uint64_t now = cache_now_ms();
	char key[CACHE_KEY_TEXT_MAX];
	struct cache_counts n;
	long purged;
	int r = 0;

	switch (cfg->command) {
	case COMMAND_CACHE_LIST:
		r = cache_list(c, print_entry, &now);
		break;
	case COMMAND_CACHE_COUNT:
		if ((r = cache_count(c, now, &n)) == 0)
			printf("%lu entries: %lu pass, %lu bad, %lu expired\n",
			    n.total, n.pass, n.bad, n.expired);
		break;
	case COMMAND_CACHE_DELETE:
		cache_key_format(k, key, sizeof key);
		if ((r = cache_delete(c, k)) >= 0)
			printf("%s: %s\n", key, r ? "deleted" :
			    "not in the cache");
		break;
	default:
		if ((purged = cache_purge(c, now)) >= 0)
			printf("%ld expired entries purged\n", purged);
		r = purged < 0 ? -1 : 0;
	}
	return r < 0 ? -1 : 0;
}

static int
cache_maintenance(const struct config *cfg)
{
	const struct cache_config *cc = &cfg->cache;
	struct cache_options o = { 0, cc->map_size, CACHE_MAINT_LOCK_MS };
	const char *path = cfg->args[0];
	struct cache_key k;
	struct cache *c;
	char err[320];
	int r;

	if (cfg->command == COMMAND_CACHE_DELETE &&
	    cache_key_parse(cfg->args[1], &cc->net, &k) != 0) {
		fprintf(stderr, "sendwrap: bad key '%s' (an address, or "
		    "NETWORK/LEN as --cache-list shows it)\n", cfg->args[1]);
		return EXIT_PERM;
	}
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
	if ((r = maintain(cfg, c, &k)) < 0)
		fprintf(stderr, "sendwrap: %s\n", cache_error(c));
	cache_close(c);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "sendwrap: cannot write: %s\n", strerror(errno));
		return EXIT_TEMP;
	}
	return r < 0 ? EXIT_TEMP : 0;
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

int
admin_run(const struct config *cfg)
{
	switch (cfg->command) {
	case COMMAND_HELP:
		options_help(stdout);
		return 0;
	case COMMAND_VERSION:
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
	default:
		return cache_maintenance(cfg);
	}
}
