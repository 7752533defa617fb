/*
 * options.h - the command line.  One table (options.c) holds every
 * option: its long and short form, the kind of its argument, its default,
 * its limits, what it needs of the others, and its help text.  Parsing,
 * range checks, error messages, --help and --list-options all read it.
 *
 * Adding an option: a row in the table, a field in struct config for its
 * value, and its use.  A limit is written in its row, once.
 *
 * Contract: options_parse() fills a config or returns an error message;
 * it neither logs nor exits, so the caller decides how a usage error is
 * told (to a terminal, or to the log and the client).
 */
#ifndef SENDWRAP_OPTIONS_H
#define SENDWRAP_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cache.h"
#include "decoy.h"
#include "dnsl.h"
#include "listen.h"
#include "names.h"
#include "redis.h"
#include "relay.h"
#include "whitelist.h"

/* What this run of sendwrap does. */
enum command {
	COMMAND_CONNECTION,	/* handle the connection on fds 0 and 1 */
	COMMAND_CHECK,		/* -n */
	COMMAND_HELP, COMMAND_VERSION, COMMAND_LIST_OPTIONS,
	COMMAND_COMPILE,	/* --compile TEXT CDB */
	COMMAND_REPORT,		/* --report [FILE ...]: the files in program */
	COMMAND_SPF_WALK,	/* --spf-walk DOMAIN...: the domains in program */
	COMMAND_CACHE_LIST, COMMAND_CACHE_COUNT, COMMAND_CACHE_DELETE,
	COMMAND_CACHE_PURGE, COMMAND_CACHE_ADD	/* the cache's: last */
};

/* The DNS lists (--dnsbl, --dnswl and the options that tune them). */
struct dns_config {
	struct dnsl_list lists[DNSL_MAX];
	size_t n;
	int block_at;			/* --dnsbl-threshold */
	int allow_at;			/* --dnswl-threshold */
	enum early_action action;	/* --dnsbl-action */
	const char *server;		/* --dns-server */
	const char *reply;		/* --dnsbl-reply, or NULL: the zone */
};

/* The pass cache's settings (-c, --redis and the options that tune it). */
struct cache_config {
	const char *path;		/* -c; NULL: no LMDB file */
	struct cache_net net;		/* --cache-net */
	size_t map_size;		/* --cache-size; 0: CACHE_MAP_DEFAULT */
	uint64_t pass_ttl_ms;		/* --pass-ttl */
	uint64_t bad_ttl_ms;		/* --bad-ttl; 0: off */
	struct redis_url redis[REDIS_URLS_MAX];	/* --redis, in order */
	size_t nredis;			/* 0: no Redis */
	const char *redis_password_file;	/* --redis-password-file */
	uint64_t redis_timeout_ms;	/* --redis-timeout */
	uint64_t add_ttl_ms;		/* --ttl (--cache-add); 0: the kind's */
	unsigned bad_max;		/* --bad-max */
};

/* Greylisting (--greylist and the options that tune it). */
struct grey_config {
	int on;				/* --greylist */
	uint64_t pass_ms;		/* --grey-pass */
	uint64_t expire_ms;		/* --grey-expire */
	unsigned tests;			/* --grey-tests: GREY_TEST_BIT()s */
	const char *text;		/* --grey-reply */
	const char *traps;		/* --greytrap FILE, or NULL */
	uint64_t trap_ttl_ms;		/* --trap-ttl */
};

#define PROXY_FROM_MAX 32	/* --proxy-from networks */

/* Load balancers that speak the PROXY protocol (--proxy-from). */
struct proxy_config {
	struct wl_entry from[PROXY_FROM_MAX];	/* net and prefix used */
	size_t nfrom;
	uint64_t timeout_ms;		/* --proxy-timeout */
};

struct config {
	enum command command;
	const char *args[2];		/* the command's own arguments */
	const char *file;		/* a cache command's FILE, if given */
	int check;			/* -n, with or without a command */
	enum mode mode;
	uint64_t delay_ms;		/* -d */
	struct wl_source *sources;	/* -A and -a in command-line order */
	size_t nsources;
	const char *banner;		/* -b */
	const char *hostname;		/* --hostname, or NULL: this host's */
	enum early_action early;	/* -x */
	enum log_mode log;		/* -l */
	struct decoy_config decoy;	/* --tarpit..., --tempfail... */
	unsigned slots;			/* --slots; 0: no cap */
	const char *slots_dir;		/* --slots-dir (decoy modes) */
	unsigned stress;		/* --stress N; 0: off */
	uint64_t stress_delay_ms;	/* --stress N,DELAY */
	const char *state_dir;		/* --state-dir: counts the waiting */
	struct cache_config cache;
	struct dns_config dns;
	struct grey_config grey;
	struct proxy_config proxy;
	const char *listen[LISTEN_MAX];	/* --listen: the listener mode */
	size_t nlisten;
	unsigned max_clients;		/* --max-clients */
	unsigned max_children;		/* --max-children */
	unsigned per_ip;		/* --per-ip */
	unsigned per_ip_children;	/* --per-ip-children; 0: a quarter */
	const char *forward;		/* --forward TARGET (relay.h), or NULL */
	struct relay_target forward_target;	/* ... parsed */
	uint64_t forward_timeout_ms;	/* --forward-timeout */
	uint64_t forward_idle_ms;	/* --forward-idle */
	enum forward_proxy forward_proxy;	/* --forward-proxy */
	long uid, gid;			/* -u, -g, -U; -1: keep */
	int envuidgid;			/* -U */
	enum report_by report_by;	/* --by */
	enum report_format report_format;	/* --report-format */
	unsigned report_top;		/* --top */
	char **program;			/* NULL-terminated, or NULL; the
					 * files of --report, the domains of
					 * --spf-walk */
};

/*
 * Parse argv into cfg (sources: room for argc entries).  0, or -1 with
 * a one-line message in err (the offending value escaped).
 */
int options_parse(int argc, char **argv, struct config *cfg,
    struct wl_source *sources, char *err, size_t errsize);

/* The synopsis, for a usage error. */
void options_usage(FILE *f);

/* The synopsis and every option with its default and limits. */
void options_help(FILE *f);

/* One line per option: "-d --delay DURATION", "--tarpit" (for tests). */
void options_list(FILE *f);

#endif
