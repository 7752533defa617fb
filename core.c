/* core.c - the decision and the verdict lines; see core.h. */
#include "core.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "decoy.h"
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
 * Record a client that passed, or was caught talking early or naming a
 * greytrap (bad), or was greylisted for the first time, for ttl.  A bad
 * entry goes under the wider bad key, within --bad-max: outsiders must
 * not be able to grow the cache.  One kept out is no failure: that bot
 * only waits the delay next time.  Returns the stores it went to.
 */
static unsigned
remember(struct core *c, const struct peer *p, struct decision *d,
    enum cache_kind kind, uint64_t ttl)
{
	const struct cache_config *cc = &c->cfg->cache;
	struct store_use u = { d->cache_failed, cache_trouble, (void *)p };
	struct cache_key k, bad;
	unsigned done;

	if (ttl == 0 || !p->known)
		return 0;
	cache_key_make(&k, &p->addr, &cc->net);
	if (kind != CACHE_BAD)
		done = store_record(&c->store, &k, kind, cache_now_ms(), ttl,
		    &u);
	else {
		cache_key_make_bad(&bad, &p->addr, &cc->net);
		done = store_record_bad(&c->store, &bad, &k, cache_now_ms(),
		    ttl, &u);
	}
	d->cache_failed = u.failed;
	return done;
}

/*
 * A first attempt that does not count (its client failed a test): its
 * grey entry goes, so that coming back after --grey-pass is a first
 * attempt again.
 */
static void
forget(struct core *c, const struct peer *p, struct decision *d)
{
	struct store_use u = { d->cache_failed, cache_trouble, (void *)p };
	struct cache_key k;

	cache_key_make(&k, &p->addr, &c->cfg->cache.net);
	store_forget(&c->store, &k, &u);
	d->cache_failed = u.failed;
}

/* Are bad entries asked about: early talkers, or trapped networks? */
static int
bad_remembered(const struct config *cfg)
{
	return cfg->cache.bad_ttl_ms > 0 ||
	    (cfg->grey.on && cfg->grey.traps != NULL);
}

/*
 * The live entry for p: its own key first (a pass of its own outweighs
 * a bad entry of its wider network), then, if bad entries are kept, the
 * bad key, which outweighs a grey entry (a network that named a
 * greytrap at another host must not pass for having come back).
 * 1 with *e filled, or 0.
 */
static int
look_up(struct core *c, const struct peer *p, uint64_t now,
    struct cache_entry *e, struct store_use *u)
{
	const struct cache_config *cc = &c->cfg->cache;
	struct cache_key k, bad;
	struct cache_entry b;
	int own;

	cache_key_make(&k, &p->addr, &cc->net);
	own = store_lookup(&c->store, &k, now, e, u);
	if (own && e->kind == CACHE_GREY && !c->cfg->grey.on)
		own = 0;	/* greylisting was turned off: forgotten */
	if ((own && e->kind != CACHE_GREY) || !bad_remembered(c->cfg))
		return own;
	cache_key_make_bad(&bad, &p->addr, &cc->net);
	if (bad.len == k.len && memcmp(bad.data, k.data, k.len) == 0)
		return own;
	if (store_lookup(&c->store, &bad, now, &b, u) && b.kind == CACHE_BAD) {
		*e = b;
		return 1;
	}
	return own;
}

/* What a live entry of p's says of it, into d. */
static void
apply_entry(const struct core *c, struct decision *d,
    const struct cache_entry *e, uint64_t now)
{
	d->age_ms = now > e->recorded_ms ? now - e->recorded_ms : 0;
	if (e->kind == CACHE_PASS)
		d->step = STEP_CACHED;
	else if (e->kind == CACHE_BAD) {
		if (bad_remembered(c->cfg))
			d->step = STEP_KNOWN_EARLY;
	} else {
		/* Grey: it waits as any client; after that, its age says. */
		d->grey_age_ms = d->age_ms;
		d->grey = d->age_ms >= c->cfg->grey.pass_ms ? GREY_RIPE :
		    GREY_TOO_SOON;
	}
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
	if (found)
		apply_entry(c, d, &e, now);
}

/* ------------------------------------------------------------ Redis */

size_t
core_redis_keys(const struct core *c, const struct peer *p,
    const struct decision *d, struct cache_key *keys)
{
	const struct cache_config *cc = &c->cfg->cache;
	size_t n = 0;

	if (c->store.loop == NULL || !p->known || d->step != STEP_WAIT ||
	    c->cfg->mode != MODE_WRAP)
		return 0;
	cache_key_make(&keys[n++], &p->addr, &cc->net);
	if (bad_remembered(c->cfg)) {
		cache_key_make_bad(&keys[n], &p->addr, &cc->net);
		if (keys[n].len != keys[0].len ||
		    memcmp(keys[n].data, keys[0].data, keys[0].len) != 0)
			n++;
	}
	return n;
}

/* Does e say more of the client than what d holds already?  Anything
 * but a grey entry newer than the one LMDB gave. */
static int
says_more(const struct decision *d, const struct cache_entry *e,
    uint64_t now)
{
	return e->kind != CACHE_GREY || d->grey == GREY_NEW ||
	    (now > e->recorded_ms && now - e->recorded_ms > d->grey_age_ms);
}

void
core_redis_answer(struct core *c, const struct peer *p, struct decision *d,
    const struct cache_entry *e, const int *found, size_t n, int failed,
    uint64_t now)
{
	struct store_use u = { d->cache_failed, cache_trouble, (void *)p };
	size_t i;

	if (failed) {
		d->cache_failed |= STORE_REDIS;
		return;
	}
	/* Its own key first (a pass of its own outweighs a bad network);
	 * the bad key over a grey entry. */
	for (i = 0; i < n && d->step == STEP_WAIT; i++) {
		if (!found[i] || (i > 0 && e[i].kind != CACHE_BAD) ||
		    (e[i].kind == CACHE_GREY && !c->cfg->grey.on) ||
		    !says_more(d, &e[i], now))
			continue;
		store_copy(&c->store, &e[i], &u);
		apply_entry(c, d, &e[i], now);
	}
	d->cache_failed = u.failed;
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

/* --greytrap's list, read now; the problems reported. */
static unsigned long
load_traps(struct core *c)
{
	unsigned long problems = 0;
	struct greytraps *t;

	if (!c->cfg->grey.on || c->cfg->grey.traps == NULL)
		return 0;
	t = greytraps_load(c->cfg->grey.traps, CORE_ERRORS_PER_FILE,
	    report_to_log, NULL, &problems);
	if (t == NULL)
		return problems + 1;	/* out of memory: the old list stays */
	greytraps_free(c->traps);
	c->traps = t;
	return problems;
}

unsigned long
core_reload(struct core *c)
{
	unsigned long problems;
	struct allowlist *l;

	load_traps(c);
	l = wl_load(c->cfg->sources, c->cfg->nsources, 0, report_to_log, NULL,
	    &problems);
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
	greytraps_free(c->traps);
	store_close(&c->store);
	c->allow = NULL;
	c->traps = NULL;
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
	/* A first attempt is recorded after the wait: one opening of the
	 * cache for the lookup and the record. */
	if (d->step == STEP_WAIT && cfg->grey.on && !c->keep)
		store_hold(&c->store);
	if (d->step == STEP_WAIT && cfg->mode == MODE_WRAP)
		consult_cache(c, p, d);
}

void
core_decide_local(struct decision *d)
{
	memset(d, 0, sizeof *d);
	d->reason = REASON_PROXY_LOCAL;
	d->step = STEP_ALLOW;
}

int
core_from_balancer(const struct config *cfg, const struct peer *p)
{
	size_t i;

	for (i = 0; p->known && i < cfg->proxy.nfrom; i++)
		if (wl_entry_matches(&cfg->proxy.from[i], &p->addr))
			return 1;
	return 0;
}

void
core_stress(const struct core *c, struct decision *d, unsigned long waiting)
{
	const struct config *cfg = c->cfg;

	if (cfg->stress == 0 || waiting < cfg->stress ||
	    d->step != STEP_WAIT || d->reason != REASON_DELAY ||
	    cfg->mode != MODE_WRAP)
		return;
	if (cfg->stress_delay_ms < d->delay_ms)
		d->delay_ms = cfg->stress_delay_ms;
	d->stressed = 1;
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
	char grey[40] = "";

	duration_format(d->delay_ms, delay, sizeof delay);
	duration_format(waited_ms, took, sizeof took);
	if (d->grey == GREY_RIPE && c->cfg->grey.on) {
		memcpy(grey, " grey=", 6);
		duration_format(d->grey_age_ms, grey + 6, sizeof grey - 6);
	}
	log_info("pass ip=%s port=%s delay=%s waited=%s%s%s%s%s%s", p->ip,
	    peer_port(p), delay, took,
	    d->match.found ? " rule=" : d->reason != REASON_DELAY ?
	    " reason=" : "",
	    d->match.found ? rule_text(d, rule, sizeof rule) :
	    d->reason != REASON_DELAY ? reason_names[d->reason] : "",
	    grey, d->stressed ? " stress=1" : "",
	    dns_fields(d, dns, sizeof dns));
	remember(c, p, d, CACHE_PASS, c->cfg->cache.pass_ttl_ms);
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
	    "action=%s%s%s", p->ip, peer_port(p), when, e->bytes, first,
	    early_names[c->cfg->early], d->stressed ? " stress=1" : "",
	    dns_fields(d, dns, sizeof dns));
	remember(c, p, d, CACHE_BAD, c->cfg->cache.bad_ttl_ms);
}

void
core_hangup(const struct core *c, const struct peer *p,
    const struct decision *d, uint64_t after_ms, int reset)
{
	char when[32], dns[LOG_FIELDS_MAX];

	(void)c;
	duration_format(after_ms, when, sizeof when);
	log_info("hangup ip=%s port=%s after=%s how=%s%s%s", p->ip,
	    peer_port(p), when, reset ? "reset" : "eof",
	    d->stressed ? " stress=1" : "", dns_fields(d, dns, sizeof dns));
}

void
core_forwarded(const struct core *c, const struct peer *p,
    const struct relay *r)
{
	char took[32];

	if (r->end == RELAY_UNREACHABLE || r->end == RELAY_LOCAL_ERROR)
		log_error("ip=%s port=%s cannot forward to %s: %s", p->ip,
		    peer_port(p), c->cfg->forward, strerror(r->err));
	duration_format(relay_length_ms(r), took, sizeof took);
	log_info("forwarded ip=%s port=%s in=%llu out=%llu length=%s end=%s",
	    p->ip, peer_port(p), (unsigned long long)r->way[RELAY_CLIENT].bytes,
	    (unsigned long long)r->way[RELAY_MTA].bytes, took,
	    relay_end_name(r->end));
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

/* ---------------------------------------------------------- greylisting */

int
core_grey_start(struct core *c, const struct peer *p, struct decision *d)
{
	const struct config *cfg = c->cfg;
	unsigned stores = store_kinds(&cfg->cache);

	if (!cfg->grey.on || cfg->mode != MODE_WRAP || !p->known ||
	    d->grey == GREY_RIPE || (d->reason != REASON_DELAY &&
	    d->reason != REASON_GREETDELAY))
		return 0;
	/* A store that could not say whether the client was seen (it may
	 * have passed there), or cannot keep its first attempt, must not
	 * delay it: it is served as without --greylist. */
	if (d->cache_failed & stores)
		return 0;
	if (d->grey == GREY_NEW && (remember(c, p, d, CACHE_GREY,
	    cfg->grey.expire_ms) != stores || (d->cache_failed & stores)))
		return 0;
	if (!c->keep)
		load_traps(c);
	return 1;
}

void
core_dialog_config(const struct core *c, struct dialog_config *dc,
    char *host, size_t hostsize)
{
	const struct config *cfg = c->cfg;

	memset(dc, 0, sizeof *dc);
	dc->host = decoy_hostname(cfg->hostname, host, hostsize);
	dc->text = cfg->grey.text;
	dc->tests = cfg->grey.tests;
	dc->end_on_fault = cfg->early != EARLY_PASS;
	dc->traps = c->traps;
}

/* " test=NAME" for a test failed under -x pass (the session went on). */
static const char *
passed_fault(const struct dialog *dg, char *buf, size_t size)
{
	buf[0] = '\0';
	if (dg->fault >= 0)
		snprintf(buf, size, " test=%s", grey_test_names[dg->fault]);
	return buf;
}

/* A failed test ended the dialog: its line, its record, -x's reply. */
static const char *
grey_failed(struct core *c, const struct peer *p, struct decision *d,
    const struct dialog *dg, uint64_t after_ms)
{
	enum early_action action = c->cfg->early;
	char when[32], line[DIALOG_ARG_MAX * 4 + 1];

	duration_format(after_ms, when, sizeof when);
	log_escape(line, sizeof line, dg->faulty.text, dg->faulty.len);
	log_info("%s ip=%s port=%s after=%s commands=%u line=\"%s\" "
	    "action=%s", grey_test_names[dg->fault], p->ip, peer_port(p), when,
	    dg->fault_at, line, early_names[action]);
	if (c->cfg->cache.bad_ttl_ms > 0)
		remember(c, p, d, CACHE_BAD, c->cfg->cache.bad_ttl_ms);
	else
		forget(c, p, d);
	return action == EARLY_REJECT ? REPLY_PROTOCOL_REJECT :
	    action == EARLY_TEMPFAIL ? REPLY_PROTOCOL_TEMPFAIL : NULL;
}

const char *
core_grey_end(struct core *c, const struct peer *p, struct decision *d,
    const struct dialog *dg, uint64_t after_ms)
{
	char age[32], helo[DIALOG_ARG_MAX * 4 + 1], from[DIALOG_ARG_MAX * 4 + 1];
	char rcpt[DIALOG_ARG_MAX * 4 + 1], test[40], dns[LOG_FIELDS_MAX];

	if (dialog_failed(dg))
		return grey_failed(c, p, d, dg, after_ms);
	if (dg->end == END_ERROR)
		log_error("ip=%s port=%s greylisting: %s", p->ip, peer_port(p),
		    strerror(dg->err));
	duration_format(d->grey_age_ms, age, sizeof age);
	log_escape(helo, sizeof helo, dg->helo.text, dg->helo.len);
	log_escape(from, sizeof from, dg->from.text, dg->from.len);
	passed_fault(dg, test, sizeof test);
	if (dg->trapped) {
		log_escape(rcpt, sizeof rcpt, dg->trap.text, dg->trap.len);
		log_info("trapped ip=%s port=%s age=%s trap=\"%s\" "
		    "helo=\"%s\" from=\"%s\" rcpts=%u quit=%s end=%s%s",
		    p->ip, peer_port(p), age, rcpt, helo, from, dg->rcpts,
		    dg->quit ? "yes" : "no", decoy_end_name(dg->end), test);
		remember(c, p, d, CACHE_BAD, c->cfg->grey.trap_ttl_ms);
		return NULL;
	}
	log_escape(rcpt, sizeof rcpt, dg->rcpt.text, dg->rcpt.len);
	log_info("grey ip=%s port=%s first=%s age=%s helo=\"%s\" "
	    "from=\"%s\" rcpt=\"%s\" rcpts=%u quit=%s end=%s%s%s%s", p->ip,
	    peer_port(p), d->grey == GREY_NEW ? "yes" : "no", age, helo, from,
	    rcpt, dg->rcpts, dg->quit ? "yes" : "no", decoy_end_name(dg->end),
	    test, d->stressed ? " stress=1" : "",
	    dns_fields(d, dns, sizeof dns));
	return NULL;
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
	remember(c, p, d, CACHE_PASS, c->cfg->cache.pass_ttl_ms);
}
