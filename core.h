/*
 * core.h - the decision about one client, and the log line that ends its
 * connection.  Every front end (one process per connection under inetd
 * or tcpserver, the listener that holds many) uses this, so a client is
 * judged and logged the same way whichever runs it.
 *
 * The decision: $GREETDELAY, then $RELAYCLIENT, then the allowlist, then
 * the pass cache, then -d.  A front end asks core_decide() what to do,
 * does it (waits, replies, runs the program), and reports the outcome
 * with one of the core_*() verdict calls, which write the verdict line
 * and record the client in the cache where that is due.
 *
 * Contract: no exit, no exec, no sleep and no I/O with the client in
 * here; the only waits are the pass cache's, each bounded: the file
 * locks (cache.h) and Redis (--redis-timeout, redis.h).  The cache never
 * costs mail: the first failure of each of its stores on a connection
 * is logged and the connection goes on as without that store (store.h).
 */
#ifndef SENDWRAP_CORE_H
#define SENDWRAP_CORE_H

#include <stdint.h>

#include "dialog.h"
#include "dnsl.h"
#include "greytrap.h"
#include "names.h"
#include "options.h"
#include "peer.h"
#include "relay.h"
#include "store.h"
#include "whitelist.h"

#define CORE_ERRORS_PER_FILE 10	/* per load of a text list; -n shows all */

/* What the environment says of this client: tcprules' marks. */
struct marks {
	const char *greetdelay;		/* $GREETDELAY, or NULL */
	int relayclient;		/* $RELAYCLIENT is set */
};

/* What to do with the client. */
enum step {
	STEP_ALLOW,		/* no wait: run the program (decoys: 421) */
	STEP_CACHED,		/* passed before: run the program at once */
	STEP_KNOWN_EARLY,	/* talked early before: turn away at once */
	STEP_WAIT		/* hold the greeting for delay_ms */
};

/* What the cache says of a client under --greylist. */
enum grey_state {
	GREY_NEW,		/* no first attempt remembered */
	GREY_TOO_SOON,		/* a first attempt under --grey-pass old */
	GREY_RIPE		/* a first attempt old enough: it passes */
};

struct decision {
	enum step step;
	uint64_t delay_ms;
	enum reason reason;
	struct wl_match match;		/* the allowlist entry, if any */
	uint64_t age_ms;		/* STEP_CACHED, STEP_KNOWN_EARLY */
	unsigned cache_failed;		/* stores logged once: left alone now */
	const struct dnsl_lookup *dns;	/* the DNS lists asked, if they were */
	int stressed;			/* --stress shortened the wait */
	enum grey_state grey;		/* --greylist */
	uint64_t grey_age_ms;		/* GREY_TOO_SOON, GREY_RIPE */
};

/* What the DNS lists' answers so far say of a waiting client. */
enum dns_verdict {
	DNS_UNDECIDED,		/* answers still out could change it */
	DNS_BLOCK,		/* at or above --dnsbl-threshold: refuse now */
	DNS_ALLOW,		/* at or below --dnswl-threshold: greet now */
	DNS_NEUTRAL		/* all in, neither: the wait goes on */
};

/* How a wait ended, for core_early() and core_hangup(). */
struct early {
	uint64_t after_ms;		/* into the wait */
	const char *input;		/* bytes read from the client */
	size_t len;			/* of which these were peeked */
	size_t bytes;			/* of which the client sent this many */
};

/* Loaded state, kept for as many connections as the front end likes. */
struct core {
	const struct config *cfg;
	struct dnsl_config dns;		/* the resolver's settings */
	struct allowlist *allow;	/* NULL: loaded per decision */
	struct store store;		/* the pass cache's stores */
	struct greytraps *traps;	/* --greytrap, once loaded */
	int keep;			/* keep allow and cache loaded */
};

/*
 * Set up c for cfg.  keep = 0 (one connection per process): lists are
 * read when needed and the cache opened for each use and closed at once,
 * so nothing is held through a wait or into an exec (but for --greylist,
 * whose first attempts are looked up before the wait and recorded after
 * it: the LMDB file is then opened once, and held, with no lock, until
 * core_close()).  keep = 1 (many
 * connections): lists loaded now and by core_reload(), the cache opened
 * once (for writing) and kept.  Returns the problems reported.
 */
unsigned long core_init(struct core *c, const struct config *cfg, int keep);

/*
 * Read the allowlist files again (keep mode).  On any problem the old
 * list is kept and the problems reported; returns their number.  The
 * greytrap list is read again too: its good lines are used whatever
 * the bad ones (reported, not counted here).
 */
unsigned long core_reload(struct core *c);

/* Close what c holds (before exec in a child: only descriptors). */
void core_close(struct core *c);

/* Decide for client p.  Decoy modes never consult the cache. */
void core_decide(struct core *c, const struct peer *p, const struct marks *m,
    struct decision *d);

/*
 * Decide for a load balancer's own connection (its health check, a
 * PROXY header's LOCAL command): no wait (STEP_ALLOW, reason
 * proxy-local), whatever the marks, the allowlist or the cache say; it
 * is never recorded.  A decoy takes it for one of our own hosts.
 */
void core_decide_local(struct decision *d);

/* Is p one of the --proxy-from load balancers? */
int core_from_balancer(const struct config *cfg, const struct peer *p);

/*
 * --stress: a client that waits -d (STEP_WAIT, no other reason) while
 * waiting others are waiting already, as counted by the front end
 * (the state directory, or the listener's own clients), waits the
 * stress delay instead if it is shorter, and its verdict line says
 * stress=1.  Does nothing for the others, or without --stress.
 */
void core_stress(const struct core *c, struct decision *d,
    unsigned long waiting);

/*
 * Is p one of our own hosts, which a decoy must never hold?  Any
 * allowlist match, or no delay from tcprules; -d 0 does not count.
 */
int core_own_host(const struct decision *d);

/* ------------------------------------------------- verdict lines */

/* allow: no wait (STEP_ALLOW).  In a decoy mode: turned away with 421. */
void core_allow(const struct core *c, const struct peer *p,
    const struct decision *d);

/* cached: the cache knows p passed; run the program at once. */
void core_cached(const struct core *c, const struct peer *p,
    const struct decision *d);

/*
 * known-early: the cache knows p's network talked early.  Returns the
 * reply to send before closing: REPLY_KNOWN_EARLY (421) whatever -x
 * says, since it judges an earlier client, not this one; or NULL for -x
 * pass: run the program at once.  The line says which (action=).
 */
const char *core_known_early(const struct core *c, const struct peer *p,
    const struct decision *d);

/* pass: waited out the delay; recorded as passed.  A greylisted
 * client's retry after --grey-pass says grey=AGE. */
void core_pass(struct core *c, const struct peer *p, struct decision *d,
    uint64_t waited_ms);

/* early: talked during the wait; recorded as bad with --bad-ttl. */
void core_early(struct core *c, const struct peer *p, struct decision *d,
    const struct early *e);

/* hangup: closed (reset = 0) or reset the connection during the wait. */
void core_hangup(const struct core *c, const struct peer *p,
    const struct decision *d, uint64_t after_ms, int reset);

/* ------------------------------------------------- Redis in a loop */

/*
 * With the stores in an event loop (store_go_async(): the listener),
 * core_decide() asks LMDB only, and the front end asks Redis itself
 * while the client waits.  core_redis_keys(): the keys to ask about p
 * (room for 2; 0: none, Redis cannot change what happens to it).
 * core_redis_answer(): what Redis said of them (found[i]: e[i] is the
 * live entry of keys[i]; failed: it did not answer), at now on the wall
 * clock: d's step and grey state made again with it, as if it had been
 * asked in core_decide(), and what counted copied into LMDB.  An answer
 * that comes after the wait is over is not wanted: the client is then
 * judged as a miss (a failed Redis, for greylisting).
 */
size_t core_redis_keys(const struct core *c, const struct peer *p,
    const struct decision *d, struct cache_key *keys);
void core_redis_answer(struct core *c, const struct peer *p,
    struct decision *d, const struct cache_entry *e, const int *found,
    size_t n, int failed, uint64_t now);

/* ------------------------------------------------- greylisting */

/*
 * After the wait, does p meet sendwrap's own dialog (dialog.h) rather
 * than the program?  Only with --greylist, only a client that waited
 * the delay for no other reason (not allowlisted, not $RELAYCLIENT, not
 * let in by the DNS allow lists: they never come here), and not a retry
 * after --grey-pass.  A first attempt is recorded now as grey in every
 * store.  A store that could not be asked, or cannot keep that, costs
 * the client nothing: 0 then, and it passes as without --greylist.
 * 1: run the dialog.
 */
int core_grey_start(struct core *c, const struct peer *p,
    struct decision *d);

/* The dialog's settings: the name to greet with goes into host. */
void core_dialog_config(const struct core *c, struct dialog_config *dc,
    char *host, size_t hostsize);

/*
 * The dialog is over (after_ms from its greeting): its verdict line,
 * one of
 *  - the failed test's (end_on_fault: -x is not pass): recorded as bad
 *    for --bad-ttl, or without it its first attempt forgotten (it does
 *    not count towards passing); returns -x's reply (NULL: drop);
 *  - trapped: a greytrap was named; recorded as bad for --trap-ttl;
 *  - grey: a first attempt, or a retry too soon.
 * Returns the reply to send before closing, or NULL.
 */
const char *core_grey_end(struct core *c, const struct peer *p,
    struct decision *d, const struct dialog *dg, uint64_t after_ms);

/* ------------------------------------------------- DNS lists */

/*
 * Ask the DNS lists about this client?  Only one that is to wait (not
 * allowlisted, not cached: their lists cannot change what happens), and
 * only in the wrapper.
 */
int core_wants_dns(const struct core *c, const struct decision *d);

/* What the answers so far mean (lists asked with d->dns). */
enum dns_verdict core_dns_judge(const struct core *c,
    const struct decision *d);

/*
 * dnsbl: refused for its score (DNS_BLOCK).  The reply for
 * --dnsbl-action goes into buf; NULL for drop and pass (pass: the front
 * end lets the wait go on, and the score shows in the final line).
 */
const char *core_dnsbl(const struct core *c, const struct peer *p,
    const struct decision *d, uint64_t after_ms, char *buf, size_t size);

/* allow reason=dnswl: the wait ends (DNS_ALLOW); recorded as passed. */
void core_dnswl(struct core *c, const struct peer *p, struct decision *d);

/*
 * forwarded: a relayed session (--forward) is over: the bytes each way,
 * its length, how it ended; an error line beside it when the MTA could
 * not be reached.  The client's verdict came when its wait ended.
 */
void core_forwarded(const struct core *c, const struct peer *p,
    const struct relay *r);

/* busy: no slot was free (decoys), no place to wait (--slots, delay). */
void core_busy(const struct core *c, const struct peer *p);

/* busy in the listener: a limit ("max-clients", "per-ip", "max-children",
 * "shutdown") turned the client away with 421. */
void core_limit(const struct core *c, const struct peer *p,
    const char *limit);

/*
 * The reply an early talker gets (-x): NULL for drop, and for pass
 * (then the front end runs the program with the input unread).
 */
const char *core_early_reply(const struct core *c);

#endif
