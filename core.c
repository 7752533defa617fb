/* core.c - the decision and the verdict lines; see core.h. */
#include "core.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "duration.h"
#include "log.h"
#include "smtp.h"

#define FIRST_MAX 64		/* early input shown in the log, in bytes */
#define RULE_SHOWN (WL_RULE_MAX * 4 + 1)	/* a rule, every byte escaped */

static void
report_to_log(void *ctx, const char *path, unsigned long line, const char *msg)
{
	(void)ctx;
	if (line)
		log_error("%s:%lu: %s", path, line, msg);
	else
		log_error("%s: %s", path, msg);
}

/* ------------------------------------------------------------ cache */

static void
cache_trouble(const struct peer *p, struct decision *d, const char *why)
{
	if (!d->cache_failed)
		log_error("ip=%s port=%s cache %s", p->ip, peer_port(p), why);
	d->cache_failed = 1;
}

/*
 * The cache for one use; NULL if there is none to be had.  Kept open in
 * keep mode; otherwise the caller closes it with done_with().
 */
static struct cache *
cache_for(struct core *c, const struct peer *p, struct decision *d,
    int write)
{
	const struct cache_config *cc = &c->cfg->cache;
	struct cache_options o = { write || c->keep, cc->map_size, 0 };
	struct cache *h;
	char err[320];

	if (cc->path == NULL || !p->known || d->cache_failed)
		return NULL;
	if (c->cache)
		return c->cache;
	h = cache_open(cc->path, &o, err, sizeof err);
	/* Nothing to read before the first record: not a failure. */
	if (h == NULL && (o.write || errno != ENOENT))
		cache_trouble(p, d, err);
	if (c->keep)
		c->cache = h;
	return h;
}

static void
done_with(struct core *c, struct cache *h)
{
	if (h != c->cache)
		cache_close(h);
}

/*
 * Record a client that passed, or was caught talking early.  A bad
 * entry goes under the wider bad key, within --bad-max: outsiders must
 * not be able to grow the cache.  One kept out is no failure: that bot
 * only waits the delay next time.
 */
static void
remember(struct core *c, const struct peer *p, struct decision *d,
    enum cache_kind kind)
{
	const struct cache_config *cc = &c->cfg->cache;
	uint64_t ttl = kind == CACHE_PASS ? cc->pass_ttl_ms : cc->bad_ttl_ms;
	struct cache_key k, bad;
	struct cache *h;
	int r;

	if (ttl == 0 || (h = cache_for(c, p, d, 1)) == NULL)
		return;
	cache_key_make(&k, &p->addr, &cc->net);
	if (kind == CACHE_PASS) {
		r = cache_record(h, &k, kind, cache_now_ms(), ttl);
	} else {
		cache_key_make_bad(&bad, &p->addr, &cc->net);
		r = cache_record_bad(h, &bad, &k, cache_now_ms(), ttl,
		    cc->bad_max);
	}
	if (r < 0)
		cache_trouble(p, d, cache_error(h));
	done_with(c, h);
}

/*
 * The live entry for p: its own key first (a pass of its own outweighs
 * a bad entry of its wider network), then, with --bad-ttl, the bad key.
 * 1 with *e filled, 0, or -1.
 */
static int
look_up(struct cache *h, const struct peer *p, const struct config *cfg,
    uint64_t now, struct cache_entry *e)
{
	struct cache_key k, bad;
	int found;

	cache_key_make(&k, &p->addr, &cfg->cache.net);
	if ((found = cache_lookup(h, &k, now, e)) != 0 ||
	    cfg->cache.bad_ttl_ms == 0)
		return found;
	cache_key_make_bad(&bad, &p->addr, &cfg->cache.net);
	if (bad.len == k.len && memcmp(bad.data, k.data, k.len) == 0)
		return 0;
	found = cache_lookup(h, &bad, now, e);
	return found > 0 && e->kind != CACHE_BAD ? 0 : found;
}

/* A client the cache knows skips the wait. */
static void
consult_cache(struct core *c, const struct peer *p, struct decision *d)
{
	uint64_t now = cache_now_ms();
	struct cache_entry e;
	struct cache *h;
	int found;

	if ((h = cache_for(c, p, d, 0)) == NULL)
		return;
	if ((found = look_up(h, p, c->cfg, now, &e)) < 0)
		cache_trouble(p, d, cache_error(h));
	done_with(c, h);	/* before exec, and before a long wait */
	if (found <= 0)
		return;
	d->age_ms = now > e.recorded_ms ? now - e.recorded_ms : 0;
	if (e.kind == CACHE_PASS)
		d->step = STEP_CACHED;
	else if (c->cfg->cache.bad_ttl_ms > 0)
		d->step = STEP_KNOWN_EARLY;
}

/* ------------------------------------------------------------ state */

unsigned long
core_init(struct core *c, const struct config *cfg, int keep)
{
	unsigned long problems = 0;

	memset(c, 0, sizeof *c);
	c->cfg = cfg;
	c->keep = keep;
	if (keep)
		problems = core_reload(c);
	return problems;
}

unsigned long
core_reload(struct core *c)
{
	unsigned long problems;
	struct allowlist *l = wl_load(c->cfg->sources, c->cfg->nsources, 0,
	    report_to_log, NULL, &problems);

	if (l == NULL)
		return problems + 1;
	if (problems && c->allow) {
		wl_free(l);
		return problems;
	}
	wl_free(c->allow);
	c->allow = l;
	return problems;
}

void
core_close(struct core *c)
{
	wl_free(c->allow);
	cache_close(c->cache);
	c->allow = NULL;
	c->cache = NULL;
}

/* ---------------------------------------------------------- deciding */

/* The allowlist's word on p, loaded for the occasion unless kept. */
static void
find_in_allowlist(struct core *c, const struct peer *p, struct wl_match *m)
{
	const struct config *cfg = c->cfg;

	memset(m, 0, sizeof *m);
	if (c->allow)
		wl_find(c->allow, &p->addr, m);
	else
		wl_lookup(cfg->sources, cfg->nsources, p->known ? &p->addr :
		    NULL, m, CORE_ERRORS_PER_FILE, report_to_log, NULL);
}

/* $GREETDELAY, if it is a valid delay: 1 with d set. */
static int
from_greetdelay(const struct marks *mk, struct decision *d)
{
	const char *why;
	char shown[128];

	if (mk->greetdelay == NULL || *mk->greetdelay == '\0')
		return 0;
	if (duration_parse_str(mk->greetdelay, &d->delay_ms, &why) == 0 &&
	    d->delay_ms <= SMTP_GREETING_WAIT_MS) {
		d->reason = REASON_GREETDELAY;
		return 1;
	}
	log_escape(shown, sizeof shown, mk->greetdelay,
	    strlen(mk->greetdelay));
	log_error("GREETDELAY=\"%s\" ignored: not a duration from "
	    SMTP_GREETING_WAIT_TEXT, shown);
	return 0;
}

void
core_decide(struct core *c, const struct peer *p, const struct marks *mk,
    struct decision *d)
{
	const struct config *cfg = c->cfg;

	memset(d, 0, sizeof *d);
	if (!from_greetdelay(mk, d)) {
		if (mk->relayclient) {
			d->reason = REASON_RELAYCLIENT;
		} else if (cfg->nsources > 0 &&
		    (find_in_allowlist(c, p, &d->match), d->match.found)) {
			d->delay_ms = d->match.delay_ms;
			d->reason = REASON_ALLOWLIST;
		} else {
			d->delay_ms = cfg->delay_ms;
			d->reason = REASON_DELAY;
		}
	}
	d->step = d->delay_ms == 0 ? STEP_ALLOW : STEP_WAIT;
	if (d->step == STEP_WAIT && cfg->mode == MODE_WRAP)
		consult_cache(c, p, d);
}

int
core_own_host(const struct decision *d)
{
	return d->match.found ||
	    (d->delay_ms == 0 && d->reason != REASON_DELAY);
}

/* ---------------------------------------------------------- verdicts */

/*
 * The matching rule's text for a rule= field, escaped: it comes from a
 * file (a compiled list may be damaged, or not made by --compile), and
 * must not break or forge a line.
 */
static const char *
rule_text(const struct decision *d, char *buf, size_t size)
{
	const char *rule = d->match.rule;

	log_escape_word(buf, size, rule, strnlen(rule, sizeof d->match.rule));
	return buf;
}

void
core_allow(const struct core *c, const struct peer *p,
    const struct decision *d)
{
	enum mode mode = c->cfg->mode;
	char rule[RULE_SHOWN];

	log_info("allow ip=%s port=%s reason=%s%s%s%s%s%s", p->ip,
	    peer_port(p), reason_names[d->reason],
	    d->match.found ? " rule=" : "",
	    d->match.found ? rule_text(d, rule, sizeof rule) : "",
	    mode != MODE_WRAP ? " mode=" : "",
	    mode != MODE_WRAP ? mode_names[mode] : "",
	    mode != MODE_WRAP ? " reply=421" : "");
}

void
core_cached(const struct core *c, const struct peer *p,
    const struct decision *d)
{
	char age[32];

	(void)c;
	duration_format(d->age_ms, age, sizeof age);
	log_info("cached ip=%s port=%s age=%s", p->ip, peer_port(p), age);
}

const char *
core_known_early(const struct core *c, const struct peer *p,
    const struct decision *d)
{
	enum early_action done = c->cfg->early == EARLY_PASS ? EARLY_PASS :
	    EARLY_TEMPFAIL;
	char age[32];

	duration_format(d->age_ms, age, sizeof age);
	log_info("known-early ip=%s port=%s age=%s action=%s", p->ip,
	    peer_port(p), age, early_names[done]);
	return done == EARLY_PASS ? NULL : REPLY_KNOWN_EARLY;
}

void
core_pass(struct core *c, const struct peer *p, struct decision *d,
    uint64_t waited_ms)
{
	char delay[32], took[32], rule[RULE_SHOWN];

	duration_format(d->delay_ms, delay, sizeof delay);
	duration_format(waited_ms, took, sizeof took);
	log_info("pass ip=%s port=%s delay=%s waited=%s%s%s", p->ip,
	    peer_port(p), delay, took,
	    d->match.found ? " rule=" : d->reason != REASON_DELAY ?
	    " reason=" : "",
	    d->match.found ? rule_text(d, rule, sizeof rule) :
	    d->reason != REASON_DELAY ? reason_names[d->reason] : "");
	remember(c, p, d, CACHE_PASS);
}

void
core_early(struct core *c, const struct peer *p, struct decision *d,
    const struct early *e)
{
	char first[FIRST_MAX * 4 + 1], when[32];

	duration_format(e->after_ms, when, sizeof when);
	log_escape(first, sizeof first, e->input,
	    e->len < FIRST_MAX ? e->len : FIRST_MAX);
	log_info("early ip=%s port=%s after=%s bytes=%zu first=\"%s\" "
	    "action=%s", p->ip, peer_port(p), when, e->bytes, first,
	    early_names[c->cfg->early]);
	remember(c, p, d, CACHE_BAD);
}

void
core_hangup(const struct core *c, const struct peer *p, uint64_t after_ms,
    int reset)
{
	char when[32];

	(void)c;
	duration_format(after_ms, when, sizeof when);
	log_info("hangup ip=%s port=%s after=%s how=%s", p->ip, peer_port(p),
	    when, reset ? "reset" : "eof");
}

void
core_busy(const struct core *c, const struct peer *p)
{
	log_info("busy ip=%s port=%s mode=%s slots=%u", p->ip, peer_port(p),
	    mode_names[c->cfg->mode], c->cfg->slots);
}
