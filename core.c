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
#define DNS_TRY_MS 1000		/* a DNS query's first try; one more follows */
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
cache_trouble(void *ctx, const char *why)
{
	const struct peer *p = ctx;

	log_error("ip=%s port=%s cache %s", p->ip, peer_port(p), why);
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
	struct store_use u = { d->cache_failed, cache_trouble, (void *)p };
	struct cache_key k, bad;

	if (ttl == 0 || !p->known)
		return;
	cache_key_make(&k, &p->addr, &cc->net);
	if (kind == CACHE_PASS)
		store_record(&c->store, &k, kind, cache_now_ms(), ttl, &u);
	else {
		cache_key_make_bad(&bad, &p->addr, &cc->net);
		store_record_bad(&c->store, &bad, &k, cache_now_ms(), ttl, &u);
	}
	d->cache_failed = u.failed;
}

/*
 * The live entry for p: its own key first (a pass of its own outweighs
 * a bad entry of its wider network), then, with --bad-ttl, the bad key.
 * 1 with *e filled, or 0.
 */
static int
look_up(struct core *c, const struct peer *p, uint64_t now,
    struct cache_entry *e, struct store_use *u)
{
	const struct cache_config *cc = &c->cfg->cache;
	struct cache_key k, bad;

	cache_key_make(&k, &p->addr, &cc->net);
	if (store_lookup(&c->store, &k, now, e, u))
		return 1;
	if (cc->bad_ttl_ms == 0)
		return 0;
	cache_key_make_bad(&bad, &p->addr, &cc->net);
	if (bad.len == k.len && memcmp(bad.data, k.data, k.len) == 0)
		return 0;
	return store_lookup(&c->store, &bad, now, e, u) && e->kind == CACHE_BAD;
}

/* A client the cache knows skips the wait. */
static void
consult_cache(struct core *c, const struct peer *p, struct decision *d)
{
	struct store_use u = { d->cache_failed, cache_trouble, (void *)p };
	uint64_t now = cache_now_ms();
	struct cache_entry e;
	int found;

	if (!p->known || store_kinds(&c->cfg->cache) == 0)
		return;
	memset(&e, 0, sizeof e);
	found = look_up(c, p, now, &e, &u);
	d->cache_failed = u.failed;
	if (!found)
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
	c->dns.lists = cfg->dns.lists;
	c->dns.n = cfg->dns.n;
	c->dns.server = cfg->dns.server;
	c->dns.timeout_ms = DNS_TRY_MS;
	store_init(&c->store, &cfg->cache, keep);
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
	store_close(&c->store);
	c->allow = NULL;
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
 * " dnsbl=a:1,b:2 dnswl=c:-1 score=N" when the lists were asked: what a
 * verdict line adds (empty otherwise).
 */
static const char *
dns_fields(const struct decision *d, char *buf, size_t size)
{
	char bl[LOG_FIELDS_MAX / 2 - 16], wl[LOG_FIELDS_MAX / 2 - 16];

	buf[0] = '\0';
	if (d == NULL || d->dns == NULL)
		return buf;
	dnsl_listed_text(d->dns, 0, bl, sizeof bl);
	dnsl_listed_text(d->dns, 1, wl, sizeof wl);
	snprintf(buf, size, "%s%s%s%s score=%d", bl[0] ? " dnsbl=" : "", bl,
	    wl[0] ? " dnswl=" : "", wl, dnsl_result(d->dns)->score);
	return buf;
}

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
	char delay[32], took[32], dns[LOG_FIELDS_MAX], rule[RULE_SHOWN];

	duration_format(d->delay_ms, delay, sizeof delay);
	duration_format(waited_ms, took, sizeof took);
	log_info("pass ip=%s port=%s delay=%s waited=%s%s%s%s", p->ip,
	    peer_port(p), delay, took,
	    d->match.found ? " rule=" : d->reason != REASON_DELAY ?
	    " reason=" : "",
	    d->match.found ? rule_text(d, rule, sizeof rule) :
	    d->reason != REASON_DELAY ? reason_names[d->reason] : "",
	    dns_fields(d, dns, sizeof dns));
	remember(c, p, d, CACHE_PASS);
}

void
core_early(struct core *c, const struct peer *p, struct decision *d,
    const struct early *e)
{
	char first[FIRST_MAX * 4 + 1], when[32], dns[LOG_FIELDS_MAX];

	duration_format(e->after_ms, when, sizeof when);
	log_escape(first, sizeof first, e->input,
	    e->len < FIRST_MAX ? e->len : FIRST_MAX);
	log_info("early ip=%s port=%s after=%s bytes=%zu first=\"%s\" "
	    "action=%s%s", p->ip, peer_port(p), when, e->bytes, first,
	    early_names[c->cfg->early], dns_fields(d, dns, sizeof dns));
	remember(c, p, d, CACHE_BAD);
}

void
core_hangup(const struct core *c, const struct peer *p,
    const struct decision *d, uint64_t after_ms, int reset)
{
	char when[32], dns[LOG_FIELDS_MAX];

	(void)c;
	duration_format(after_ms, when, sizeof when);
	log_info("hangup ip=%s port=%s after=%s how=%s%s", p->ip,
	    peer_port(p), when, reset ? "reset" : "eof",
	    dns_fields(d, dns, sizeof dns));
}

void
core_busy(const struct core *c, const struct peer *p)
{
	log_info("busy ip=%s port=%s mode=%s slots=%u", p->ip, peer_port(p),
	    mode_names[c->cfg->mode], c->cfg->slots);
}

void
core_limit(const struct core *c, const struct peer *p, const char *limit)
{
	(void)c;
	log_info("busy ip=%s port=%s limit=%s", p->ip, peer_port(p), limit);
}

const char *
core_early_reply(const struct core *c)
{
	switch (c->cfg->early) {
	case EARLY_REJECT:
		return REPLY_REJECT;
	case EARLY_TEMPFAIL:
		return REPLY_TEMPFAIL;
	default:
		return NULL;
	}
}

/* ---------------------------------------------------------- DNS lists */

int
core_wants_dns(const struct core *c, const struct decision *d)
{
	return c->dns.n > 0 && d->step == STEP_WAIT &&
	    c->cfg->mode == MODE_WRAP;
}

enum dns_verdict
core_dns_judge(const struct core *c, const struct decision *d)
{
	const struct dnsl_score *s;

	if (d->dns == NULL)
		return DNS_NEUTRAL;
	s = dnsl_result(d->dns);
	/* Decided once the answers still out cannot change it. */
	if (s->score + s->min_left >= c->cfg->dns.block_at)
		return c->cfg->dns.action == EARLY_PASS ? DNS_NEUTRAL :
		    DNS_BLOCK;
	if (s->score + s->max_left <= c->cfg->dns.allow_at)
		return DNS_ALLOW;
	return s->pending ? DNS_UNDECIDED : DNS_NEUTRAL;
}

const char *
core_dnsbl(const struct core *c, const struct peer *p,
    const struct decision *d, uint64_t after_ms, char *buf, size_t size)
{
	const struct dns_config *dc = &c->cfg->dns;
	const char *zone = dc->reply ? dc->reply : dnsl_top_zone(d->dns);
	char when[32], dns[LOG_FIELDS_MAX];

	duration_format(after_ms, when, sizeof when);
	log_info("dnsbl ip=%s port=%s after=%s action=%s%s", p->ip,
	    peer_port(p), when, early_names[dc->action],
	    dns_fields(d, dns, sizeof dns));
	if (dc->action != EARLY_REJECT && dc->action != EARLY_TEMPFAIL)
		return NULL;
	snprintf(buf, size, "%s Service unavailable; client [%s] blocked "
	    "using %s\r\n", dc->action == EARLY_REJECT ? "554 5.7.1" :
	    "421 4.7.1", p->ip, zone ? zone : "a DNS list");
	return buf;
}

void
core_dnswl(struct core *c, const struct peer *p, struct decision *d)
{
	char dns[LOG_FIELDS_MAX];

	log_info("allow ip=%s port=%s reason=dnswl%s", p->ip, peer_port(p),
	    dns_fields(d, dns, sizeof dns));
	remember(c, p, d, CACHE_PASS);
}
