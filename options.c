/* options.c - the option table and its parser; see options.h. */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "dialog.h"
#include "duration.h"
#include "log.h"
#include "relay.h"
#include "slots.h"
#include "smtp.h"
#include "spf.h"
#include "waiters.h"

/* The kind of an option's argument, which says how it is parsed. */
enum kind {
	K_FLAG,			/* no argument: int set to 1 */
	K_COMMAND,		/* what this run does (min); max arguments */
	K_MODE,			/* --tarpit, --tempfail: the mode (min) */
	K_DURATION,		/* uint64_t ms, min to max */
	K_COUNT,		/* unsigned, min to max */
	K_CHOICE,		/* int: index in choices */
	K_TEXT,			/* printable ASCII, min to max characters */
	K_PATH,			/* a file or directory name */
	K_ALLOWLIST,		/* -a: a source */
	K_CIDR,			/* -A: a source */
	K_NET,			/* --cache-net V4LEN,V6LEN */
	K_SIZE,			/* bytes with K, M, G or T; at least min */
	K_LISTEN,		/* --listen: one more address */
	K_REDIS,		/* --redis: one more server */
	K_ID,			/* -u, -g: a number, min to max; long */
	K_DNSL,			/* --dnsbl, --dnswl (min: 1 for an allow list) */
	K_SCORE,		/* a whole number, -DNSL_SCORE_MAX to it; int */
	K_DNS_SERVER,		/* --dns-server ADDR[:PORT] */
	K_STRESS,		/* --stress N[,DELAY]: N min to max */
	K_HOST,			/* a host name: letters, digits, '.', '-' */
	K_TESTS,		/* --grey-tests: names, or "none"; unsigned */
	K_PROXY_FROM,		/* --proxy-from: one more balancer network */
	K_FORWARD		/* --forward: a target (relay.h) */
};

#define DNSL_SCORE_MAX 1000

/* What an option given needs of the rest of the command line. */
enum needs {
	NEEDS_TARPIT = 1, NEEDS_TEMPFAIL = 2, NEEDS_DECOY = 4,
	NEEDS_CACHE = 8, NEEDS_CACHE_OR_COMMAND = 16, NEEDS_WRAP = 32,
	NEEDS_LISTEN = 64, NOT_LISTEN = 128, NEEDS_REDIS = 256, NEEDS_ADD = 512,
	NEEDS_DNSL = 2048, NEEDS_REPORT = 4096, NEEDS_GREYLIST = 8192,
	NEEDS_GREYTRAP = 16384, NEEDS_DNSL_OR_SPF = 32768, NEEDS_PROXY = 65536,
	NEEDS_FORWARD = 131072,
	/* not a need: a command whose first word (a cache FILE) may be left
	 * out, when -c or --redis names the stores */
	FILE_OPTIONAL = 1024
};

struct optdef {
	const char *name;		/* the long form, without "--" */
	int letter;			/* the short form, or 0 */
	enum kind kind;
	const char *arg;		/* the argument's name in --help */
	uint64_t min, max;		/* limits; K_MODE: the mode; K_COMMAND:
					 * the command, then its words */
	size_t at;			/* offset of the value in struct config */
	const char *const *choices;	/* K_CHOICE */
	const char *dflt;		/* the default, as it would be written */
	unsigned needs;
	const char *help;
};

#define AT(field) offsetof(struct config, field)
#define MS_HOUR ((uint64_t)3600 * 1000)
#define STRESS_DELAY_MS 2000	/* --stress N without a DELAY */

static const struct optdef table[] = {
	{ "delay", 'd', K_DURATION, "DURATION", 0, SMTP_GREETING_WAIT_MS,
	    AT(delay_ms), NULL, "5s", 0,
	    "how long to hold the greeting back" },
	{ "allowlist", 'a', K_ALLOWLIST, "FILE", 0, 0, 0, NULL, NULL, 0,
	    "allowlist entries from FILE, \"CIDR [DURATION]\" a line "
	    "(repeatable; a FILE ending in .cdb is compiled)" },
	{ "allow", 'A', K_CIDR, "CIDR", 0, 0, 0, NULL, NULL, 0,
	    "one allowlist entry, no delay (repeatable)" },
	{ "banner", 'b', K_TEXT, "TEXT", 1, GREETING_TEXT_MAX, AT(banner),
	    NULL, NULL, 0,
	    "send \"220-TEXT\" at once to a client made to wait "
	    "(--tarpit: the text of its lines)" },
	{ "early", 'x', K_CHOICE, "ACTION", 0, 0, AT(early), early_names,
	    "reject", 0,
	    "for a client that talks during the wait: reject (554), "
	    "tempfail (421), drop, or pass (log it, run the program)" },
	{ "log", 'l', K_CHOICE, "WHERE", 0, 0, AT(log), log_mode_names,
	    "auto", 0,
	    "auto: syslog when fd 2 is closed or a network socket, else "
	    "standard error" },
	{ "check", 'n', K_FLAG, NULL, 0, 0, AT(check), NULL, NULL, 0,
	    "check the configuration, print the settings, exit 0 or 100" },
	{ "help", 'h', K_COMMAND, NULL, COMMAND_HELP, 0, 0, NULL, NULL, 0,
	    "print this help" },
	{ "version", 'V', K_COMMAND, NULL, COMMAND_VERSION, 0, 0, NULL, NULL,
	    0, "print the version" },
	{ "list-options", 0, K_COMMAND, NULL, COMMAND_LIST_OPTIONS, 0, 0,
	    NULL, NULL, 0, "list every option, one a line" },
	{ "compile", 0, K_COMMAND, "TEXT CDB", COMMAND_COMPILE, 2, 0, NULL,
	    NULL, 0, "compile the text allowlist TEXT into CDB" },
	{ "spf-walk", 0, K_COMMAND, "DOMAIN...", COMMAND_SPF_WALK, 0, 0, NULL,
	    NULL, 0, "print allowlist lines \"CIDR # DOMAIN\" for the "
	    "networks the SPF records of the DOMAINs after the options send "
	    "mail from" },

	{ "cache", 'c', K_PATH, "FILE", 0, 0, AT(cache.path), NULL, NULL,
	    NEEDS_WRAP, "the pass cache, an LMDB file: a client that waited "
	    "once is greeted at once until --pass-ttl" },
	{ "redis", 0, K_REDIS, "URL", 0, 0, 0, NULL, NULL, NEEDS_WRAP,
	    "the pass cache in Redis (or Valkey), shared by several hosts: "
	    "redis://[USER@]HOST[:PORT][/DB] or unix:/PATH[?db=N]; "
	    "repeatable: fallbacks, tried in order; with -c, the LMDB file "
	    "is asked first" },
	{ "redis-password-file", 0, K_PATH, "FILE", 0, 0,
	    AT(cache.redis_password_file), NULL, NULL, NEEDS_REDIS,
	    "the Redis password: the first line of FILE, which group and "
	    "others must not read" },
	{ "redis-timeout", 0, K_DURATION, "DURATION", 1, 10000,
	    AT(cache.redis_timeout_ms), NULL, "100ms", NEEDS_REDIS,
	    "the most one exchange with Redis may take, connect included" },
	{ "pass-ttl", 0, K_DURATION, "DURATION", 1, DURATION_MAX_MS,
	    AT(cache.pass_ttl_ms), NULL, "1d", NEEDS_CACHE,
	    "how long a pass is remembered" },
	{ "bad-ttl", 0, K_DURATION, "DURATION", 0, DURATION_MAX_MS,
	    AT(cache.bad_ttl_ms), NULL, "0", NEEDS_CACHE,
	    "how long an early talker is remembered (0: not at all)" },
	{ "bad-max", 0, K_COUNT, "N", 1, 10000000, AT(cache.bad_max), NULL,
	    SMTP_XSTR(CACHE_BAD_MAX_DEFAULT), NEEDS_CACHE,
	    "the most early talkers remembered at once (IPv6 ones by /48); "
	    "past it new ones are not" },
	{ "cache-net", 0, K_NET, "V4LEN,V6LEN", 0, 0, AT(cache.net), NULL,
	    "32,64", NEEDS_CACHE_OR_COMMAND,
	    "the network a cache entry covers" },
	{ "cache-size", 0, K_SIZE, "BYTES", CACHE_MAP_MIN, SIZE_MAX,
	    AT(cache.map_size), NULL, NULL, NEEDS_CACHE_OR_COMMAND,
	    "the most the cache file may grow to; default 1G (256M on "
	    "32-bit systems)" },
	{ "cache-list", 0, K_COMMAND, "[FILE]", COMMAND_CACHE_LIST, 1, 0,
	    NULL, NULL, FILE_OPTIONAL, "print every entry of the cache FILE "
	    "(or of -c and --redis)" },
	{ "cache-count", 0, K_COMMAND, "[FILE]", COMMAND_CACHE_COUNT, 1, 0,
	    NULL, NULL, FILE_OPTIONAL, "count the entries of the cache FILE "
	    "(or of -c and --redis)" },
	{ "cache-delete", 0, K_COMMAND, "[FILE] KEY", COMMAND_CACHE_DELETE, 2,
	    0, NULL, NULL, FILE_OPTIONAL, "delete KEY (an address, or "
	    "NETWORK/LEN as listed) from FILE (or from -c and --redis)" },
	{ "cache-purge", 0, K_COMMAND, "[FILE]", COMMAND_CACHE_PURGE, 1, 0,
	    NULL, NULL, FILE_OPTIONAL, "remove every expired entry of the "
	    "cache FILE (or of -c)" },
	{ "cache-add", 0, K_COMMAND, "KIND ADDRESS", COMMAND_CACHE_ADD, 2, 0,
	    NULL, NULL, 0, "record ADDRESS (or NETWORK/LEN) as pass or bad in "
	    "-c and --redis, e.g. for fail2ban or the MTA" },
	{ "ttl", 0, K_DURATION, "DURATION", 1, DURATION_MAX_MS,
	    AT(cache.add_ttl_ms), NULL, NULL, NEEDS_ADD, "how long the entry "
	    "of --cache-add lasts; default --pass-ttl or --bad-ttl" },

	{ "report", 0, K_COMMAND, NULL, COMMAND_REPORT, 0, 0, NULL, NULL, 0,
	    "what sendwrap did, from its log lines in the FILEs after the "
	    "options (gzip'd or not; none or -: standard input)" },
	{ "by", 0, K_CHOICE, "PERIOD", 0, 0, AT(report_by), report_by_names,
	    "day", NEEDS_REPORT, "a report's rows: day or week" },
	{ "report-format", 0, K_CHOICE, "FORMAT", 0, 0, AT(report_format),
	    report_format_names, "text", NEEDS_REPORT,
	    "text, csv, or prometheus (for node_exporter's textfile "
	    "collector)" },
	{ "top", 0, K_COUNT, "N", 0, 1000, AT(report_top), NULL, "10",
	    NEEDS_REPORT, "the N networks (keyed as --cache-net) that talked "
	    "early most" },

	{ "tarpit", 0, K_MODE, NULL, MODE_TARPIT, 0, 0, NULL, NULL, 0,
	    "decoy MX: hold the client with 220- lines, run no program" },
	{ "tarpit-interval", 0, K_DURATION, "DURATION", 100, MS_HOUR,
	    AT(decoy.interval_ms), NULL, "10s", NEEDS_TARPIT,
	    "between two 220- lines" },
	{ "tarpit-max", 0, K_DURATION, "DURATION", 1000, 7 * 24 * MS_HOUR,
	    AT(decoy.tarpit_max_ms), NULL, "30m", NEEDS_TARPIT,
	    "the longest hold" },
	{ "tempfail", 0, K_MODE, NULL, MODE_TEMPFAIL, 0, 0, NULL, NULL, 0,
	    "decoy MX: answer RCPT and DATA with 451, run no program" },
	{ "tempfail-commands", 0, K_COUNT, "N", 1, 1000,
	    AT(decoy.max_commands), NULL, "20", NEEDS_TEMPFAIL,
	    "command lines answered before 421 and close" },
	{ "tempfail-max", 0, K_DURATION, "DURATION", 1000, MS_HOUR,
	    AT(decoy.tempfail_max_ms), NULL, "60s", NEEDS_TEMPFAIL,
	    "the longest session, from the greeting" },
	{ "slots", 0, K_COUNT, "N", 1, SLOTS_MAX, AT(slots), NULL, NULL,
	    NOT_LISTEN, "at most N connections held at once, across every "
	    "sendwrap using --slots-dir (decoys) or --state-dir (the "
	    "delay: N waiting, at most " SMTP_XSTR(WAITERS_MAX) ")" },
	{ "slots-dir", 0, K_PATH, "DIR", 0, 0, AT(slots_dir), NULL, NULL,
	    NEEDS_DECOY | NOT_LISTEN, "where the slots' lock files live" },
	{ "stress", 0, K_STRESS, "N[,DELAY]", 1, WAITERS_MAX, AT(stress),
	    NULL, NULL, NEEDS_WRAP, "when N connections are waiting already, "
	    "wait DELAY instead of -d (default 2s)" },
	{ "state-dir", 0, K_PATH, "DIR", 0, 0, AT(state_dir), NULL, NULL,
	    NEEDS_WRAP | NOT_LISTEN, "the directory that names the count of "
	    "waiting connections (a System V semaphore), shared by every "
	    "sendwrap naming DIR (--stress, --slots)" },

	{ "dnsbl", 0, K_DNSL, "ZONE[=FILTER][*WEIGHT]", 0, 0, 0, NULL, NULL,
	    NEEDS_WRAP, "a DNS block list, asked while the client waits; "
	    "a listed client adds WEIGHT (default 1) to its score "
	    "(repeatable)" },
	{ "dnswl", 0, K_DNSL, "ZONE[=FILTER][*WEIGHT]", 1, 0, 0, NULL, NULL,
	    NEEDS_WRAP, "a DNS allow list: as --dnsbl, WEIGHT -1 by default "
	    "(repeatable)" },
	{ "dnsbl-threshold", 0, K_SCORE, "N", 0, 0, AT(dns.block_at), NULL,
	    "1", NEEDS_DNSL, "a score at or above N is refused at once" },
	{ "dnswl-threshold", 0, K_SCORE, "N", 0, 0, AT(dns.allow_at), NULL,
	    "-1", NEEDS_DNSL, "a score at or below N ends the wait as soon as "
	    "the answers are in" },
	{ "dnsbl-action", 0, K_CHOICE, "ACTION", 0, 0, AT(dns.action),
	    early_names, "reject", NEEDS_DNSL, "for a client over "
	    "--dnsbl-threshold: reject (554 5.7.1), tempfail (421 4.7.1), "
	    "drop, or pass (log its score only)" },
	{ "dns-server", 0, K_DNS_SERVER, "ADDR[:PORT]", 0, 0, AT(dns.server),
	    NULL, NULL, NEEDS_DNSL_OR_SPF, "ask this server, not those of "
	    "/etc/resolv.conf" },
	{ "dnsbl-reply", 0, K_TEXT, "TEXT", 1, GREETING_TEXT_MAX,
	    AT(dns.reply), NULL, NULL, NEEDS_DNSL, "the list named to a "
	    "refused client, in place of its zone" },

	{ "greylist", 0, K_FLAG, NULL, 0, 0, AT(grey.on), NULL, NULL,
	    NEEDS_CACHE | NEEDS_WRAP, "a client not known to have passed "
	    "meets sendwrap's own SMTP dialog after the wait, which turns "
	    "its message away at DATA (451) until it comes back after "
	    "--grey-pass" },
	{ "grey-pass", 0, K_DURATION, "DURATION", 1000, 24 * MS_HOUR,
	    AT(grey.pass_ms), NULL, "5m", NEEDS_GREYLIST,
	    "how long after its first attempt a client may pass" },
	{ "grey-expire", 0, K_DURATION, "DURATION", 1000, 7 * 24 * MS_HOUR,
	    AT(grey.expire_ms), NULL, "4h", NEEDS_GREYLIST,
	    "how long a first attempt is remembered (at least --grey-pass)" },
	{ "grey-tests", 0, K_TESTS, "LIST", 0, 0, AT(grey.tests),
	    grey_test_names, "pipelining,non-smtp", NEEDS_GREYLIST,
	    "the tests of the dialog that fail a client as -x says: "
	    "pipelining, non-smtp, bare-newline, separated by commas, or "
	    "none" },
	{ "grey-reply", 0, K_TEXT, "TEXT", 1, GREETING_TEXT_MAX,
	    AT(grey.text), NULL, DIALOG_TEXT_DEFAULT, NEEDS_GREYLIST,
	    "the text of the dialog's \"451 4.7.1\" reply to DATA" },
	{ "greytrap", 0, K_PATH, "FILE", 0, 0, AT(grey.traps), NULL, NULL,
	    NEEDS_GREYLIST, "addresses no one writes to, one a line: a "
	    "client that names one in the dialog is remembered as bad for "
	    "--trap-ttl" },
	{ "trap-ttl", 0, K_DURATION, "DURATION", 1, DURATION_MAX_MS,
	    AT(grey.trap_ttl_ms), NULL, "1d", NEEDS_GREYTRAP,
	    "how long a network that named a greytrap is remembered" },
	{ "hostname", 0, K_HOST, "NAME", 1, DIALOG_HOST_MAX - 1, AT(hostname),
	    NULL, NULL, 0, "the name in sendwrap's own greetings (--greylist, "
	    "--tempfail, --tarpit); default this host's name" },

	{ "proxy-from", 0, K_PROXY_FROM, "CIDR", 0, 0, 0, NULL, NULL, 0,
	    "a load balancer's address or network: a connection from it "
	    "must begin with a PROXY header (v1 or v2), and the client it "
	    "names is judged in its place (repeatable)" },
	{ "proxy-timeout", 0, K_DURATION, "DURATION", 100, 60000,
	    AT(proxy.timeout_ms), NULL, "5s", NEEDS_PROXY,
	    "how long a balancer has to send its PROXY header" },

	{ "listen", 0, K_LISTEN, "ADDR:PORT", 0, 0, 0, NULL, NULL, 0,
	    "listener mode: accept on ADDR:PORT (0.0.0.0:25, [::]:25; "
	    "repeatable), or on the sockets systemd passes (systemd); one "
	    "process holds every waiting client" },
	{ "max-clients", 0, K_COUNT, "N", 1, 1000000, AT(max_clients), NULL,
	    "10000", NEEDS_LISTEN, "clients held at once; more get 421" },
	{ "max-children", 0, K_COUNT, "N", 1, 100000, AT(max_children),
	    NULL, "40", NEEDS_LISTEN,
	    "programs running at once; a client that passes waits for one" },
	{ "per-ip", 0, K_COUNT, "N", 1, 1000000, AT(per_ip), NULL, "20",
	    NEEDS_LISTEN, "connections at once from one IPv4 address or "
	    "IPv6 /64, waiting, queued or served by a program; more get "
	    "421" },
	{ "per-ip-children", 0, K_COUNT, "N", 1, 100000, AT(per_ip_children),
	    NULL, NULL, NEEDS_LISTEN, "programs running at once for one "
	    "address or /64, and clients of it queued for one; default a "
	    "quarter of --max-children (at least 1)" },
	{ "forward", 0, K_FORWARD, "TARGET", 0, 0, AT(forward), NULL, NULL,
	    NEEDS_WRAP | NEEDS_LISTEN, "in place of a program: relay a client "
	    "that passes to the MTA's daemon at TARGET (ADDR:PORT, "
	    "[IPv6]:PORT or unix:/PATH), both ways in the loop" },
	{ "forward-timeout", 0, K_DURATION, "DURATION", 100,
	    SMTP_GREETING_WAIT_MS, AT(forward_timeout_ms), NULL, "10s",
	    NEEDS_FORWARD, "the most a connect to the MTA may take; a client "
	    "it fails for gets 421 4.3.0" },
	{ "forward-idle", 0, K_DURATION, "DURATION", 1000, 24 * MS_HOUR,
	    AT(forward_idle_ms), NULL, "10m", NEEDS_FORWARD,
	    "a relayed session with no byte either way for this long is "
	    "closed" },
	{ "forward-proxy", 0, K_CHOICE, "VERSION", 0, 0, AT(forward_proxy),
	    forward_proxy_names, "none", NEEDS_FORWARD, "send the MTA a PROXY "
	    "protocol header (v1 or v2) naming the client before its first "
	    "byte, or none" },
	{ "uid", 'u', K_ID, "UID", 0, 4294967294u, AT(uid), NULL, NULL,
	    NEEDS_LISTEN, "run as this user id once the sockets are bound "
	    "(with -g)" },
	{ "gid", 'g', K_ID, "GID", 0, 4294967294u, AT(gid), NULL, NULL,
	    NEEDS_LISTEN, "run as this group id (the only group) once the "
	    "sockets are bound (with -u)" },
	{ "envuidgid", 'U', K_FLAG, NULL, 0, 0, AT(envuidgid), NULL, NULL,
	    NEEDS_LISTEN, "-u $UID -g $GID, as envuidgid sets them" },
};

#define NOPTS (sizeof table / sizeof table[0])

static const char synopsis[] =
    "usage: sendwrap [options] [--] program [arg ...]\n"
    "       sendwrap --tarpit|--tempfail [options]\n"
    "       sendwrap --listen addr:port [...] [options] [--] program [arg ...]\n"
    "       sendwrap --listen addr:port [...] [options] --forward target\n"
    "       sendwrap -n [options] [program [arg ...]]\n"
    "       sendwrap --compile allowlist.txt allowlist.cdb\n"
    "       sendwrap --cache-list|--cache-count|--cache-purge file\n"
    "       sendwrap --cache-delete file address|net/len\n"
    "       sendwrap [-c file] [--redis url ...] --cache-list|--cache-count\n"
    "       sendwrap [-c file] [--redis url ...] --cache-delete address|net/len\n"
    "       sendwrap [-c file] [--redis url ...] --cache-add pass|bad "
    "address[/len]\n"
    "           [--ttl duration]\n"
    "       sendwrap --report [--by day|week] [--report-format text|csv|"
    "prometheus]\n"
    "                [file ...]\n"
    "       sendwrap [--dns-server addr[:port]] --spf-walk domain ...\n";

/* ------------------------------------------------------------ words */

/* "-d (--delay)" or "--tarpit": how a message names an option. */
static const char *
display(const struct optdef *o, char *buf, size_t size)
{
	if (o->letter)
		snprintf(buf, size, "-%c (--%s)", o->letter, o->name);
	else
		snprintf(buf, size, "--%s", o->name);
	return buf;
}

/*
 * A duration as a person writes it: ms below a second, seconds up to
 * ten minutes (so the 300 s limit reads as such), then the largest unit
 * that divides it.
 */
static const char *
duration_words(uint64_t ms, char *buf, size_t size)
{
	static const struct { uint64_t ms; const char *unit; } units[] = {
		{ 24 * MS_HOUR, "d" }, { MS_HOUR, "h" }, { 60000, "m" } };
	size_t i;

	if (ms == 0 || ms % 1000 != 0) {
		snprintf(buf, size, ms ? "%llums" : "0",
		    (unsigned long long)ms);
		return buf;
	}
	for (i = 0; ms > 600000 && i < sizeof units / sizeof units[0]; i++)
		if (ms % units[i].ms == 0) {
			snprintf(buf, size, "%llu%s",
			    (unsigned long long)(ms / units[i].ms),
			    units[i].unit);
			return buf;
		}
	snprintf(buf, size, "%llus", (unsigned long long)(ms / 1000));
	return buf;
}

/* What a value of this option must be, for messages and --help. */
static const char *
range_words(const struct optdef *o, char *buf, size_t size)
{
	char a[32], b[32];
	size_t i, n;

	switch (o->kind) {
	case K_DURATION:
		if (o->max == DURATION_MAX_MS)
			snprintf(buf, size, "a duration%s, e.g. 30m, 12h, 7d",
			    o->min ? " above 0" : "");
		else
			snprintf(buf, size, "a duration from %s to %s",
			    duration_words(o->min, a, sizeof a),
			    duration_words(o->max, b, sizeof b));
		break;
	case K_COUNT:
	case K_TEXT:
		snprintf(buf, size, "%llu to %llu%s",
		    (unsigned long long)o->min, (unsigned long long)o->max,
		    o->kind == K_TEXT ? " printable ASCII characters" : "");
		break;
	case K_CHOICE:
		for (i = 0, n = 0; o->choices[i] && n < size; i++)
			n += (size_t)snprintf(buf + n, size - n, "%s%s",
			    i == 0 ? "" : o->choices[i + 1] ? ", " : " or ",
			    o->choices[i]);
		break;
	case K_NET:
		snprintf(buf, size, "V4LEN %u to 32, V6LEN %u to 128, e.g. 24,64",
		    CACHE_V4LEN_MIN, CACHE_V6LEN_MIN);
		break;
	case K_SIZE:
		snprintf(buf, size, "bytes, or with K, M, G or T, at least %lluM",
		    (unsigned long long)(o->min >> 20));
		break;
	case K_CIDR:
	case K_PROXY_FROM:
		snprintf(buf, size, "an IPv4 or IPv6 address or network");
		break;
	case K_STRESS:
		snprintf(buf, size, "N %llu to %llu, DELAY %s",
		    (unsigned long long)o->min, (unsigned long long)o->max,
		    SMTP_GREETING_WAIT_TEXT);
		break;
	case K_SCORE:
		snprintf(buf, size, "a whole number, -%d to %d", DNSL_SCORE_MAX,
		    DNSL_SCORE_MAX);
		break;
	case K_HOST:
		snprintf(buf, size, "a host name of letters, digits, '.' and "
		    "'-', %llu to %llu characters", (unsigned long long)o->min,
		    (unsigned long long)o->max);
		break;
	case K_TESTS:
		for (i = 0, n = 0; o->choices[i] && n < size; i++)
			n += (size_t)snprintf(buf + n, size - n, "%s%s",
			    i == 0 ? "" : ", ", o->choices[i]);
		if (n < size)
			snprintf(buf + n, size - n, " (separated by commas), "
			    "or none");
		break;
	default:
		buf[0] = '\0';
	}
	return buf;
}

/* ------------------------------------------------------------ values */

struct parse {
	struct config *cfg;
	unsigned char given[NOPTS];
	char *err;
	size_t errsize;
};

static int __attribute__((format(printf, 2, 3)))
fail(struct parse *ps, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ps->err, ps->errsize, fmt, ap);
	va_end(ap);
	return -1;
}

/* "bad -d (--delay) 'x' (a duration ...: unknown unit ...)" */
static int
bad_value(struct parse *ps, const struct optdef *o, const char *arg,
    const char *why)
{
	char name[64], range[160], shown[256];

	log_escape(shown, sizeof shown, arg, strlen(arg));
	range_words(o, range, sizeof range);
	return fail(ps, "bad %s '%s' (%s%s%s)", display(o, name, sizeof name),
	    shown, range, why && range[0] ? ": " : "", why ? why : "");
}

/* A count in decimal digits only. */
static int
parse_count(const char *s, uint64_t *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno != 0 || *end != '\0' ? -1 : 0;
}

static int
printable(const char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			return 0;
	return 1;
}

/* The value of a K_DURATION or K_COUNT option, checked against its range. */
static int
set_number(struct parse *ps, const struct optdef *o, const char *arg,
    void *field)
{
	const char *why = NULL;
	uint64_t v;

	if (o->kind == K_DURATION ? duration_parse_str(arg, &v, &why) != 0 :
	    parse_count(arg, &v) != 0)
		return bad_value(ps, o, arg, why);
	if (v < o->min || v > o->max)
		return bad_value(ps, o, arg, "out of range");
	if (o->kind == K_DURATION)
		*(uint64_t *)field = v;
	else
		*(unsigned *)field = (unsigned)v;
	return 0;
}

static int
add_source(struct parse *ps, const struct optdef *o, const char *arg)
{
	struct wl_source *src = &ps->cfg->sources[ps->cfg->nsources];
	const char *why;

	memset(src, 0, sizeof *src);
	if (o->kind == K_ALLOWLIST)
		src->path = arg;
	else if (wl_parse_cidr(arg, strlen(arg), &src->entry, &why) != 0)
		return bad_value(ps, o, arg, why);
	ps->cfg->nsources++;
	return 0;
}

static int
add_proxy_from(struct parse *ps, const struct optdef *o, const char *arg)
{
	struct proxy_config *pc = &ps->cfg->proxy;
	const char *why;

	if (pc->nfrom == PROXY_FROM_MAX)
		return fail(ps, "--proxy-from: at most %d networks",
		    PROXY_FROM_MAX);
	if (wl_parse_cidr(arg, strlen(arg), &pc->from[pc->nfrom], &why) != 0)
		return bad_value(ps, o, arg, why);
	pc->nfrom++;
	return 0;
}

static int
add_listen(struct parse *ps, const struct optdef *o, const char *arg)
{
	struct sockaddr_storage ss;
	const char *why = NULL;
	socklen_t len;

	if (strcmp(arg, LISTEN_SYSTEMD) != 0 &&
	    listen_parse(arg, &ss, &len, &why) != 0)
		return bad_value(ps, o, arg, why);
	if (ps->cfg->nlisten == LISTEN_MAX)
		return fail(ps, "--listen: at most %d addresses", LISTEN_MAX);
	ps->cfg->listen[ps->cfg->nlisten++] = arg;
	return 0;
}

/* --stress N[,DELAY]: N waiting at once, then DELAY for the next. */
static int
set_stress(struct parse *ps, const struct optdef *o, const char *arg)
{
	const char *comma = strchr(arg, ','), *why = NULL;
	size_t len = comma ? (size_t)(comma - arg) : strlen(arg);
	char n[24];
	uint64_t v;

	/* No printf here: its first use costs a connection 10 us. */
	if (len >= sizeof n)
		return bad_value(ps, o, arg, NULL);
	memcpy(n, arg, len);
	n[len] = '\0';
	if (parse_count(n, &v) != 0 || v < o->min || v > o->max)
		return bad_value(ps, o, arg, "N out of range");
	ps->cfg->stress = (unsigned)v;
	ps->cfg->stress_delay_ms = STRESS_DELAY_MS;
	if (comma && (duration_parse_str(comma + 1, &ps->cfg->stress_delay_ms,
	    &why) != 0 || ps->cfg->stress_delay_ms > SMTP_GREETING_WAIT_MS))
		return bad_value(ps, o, arg, why ? why : "DELAY out of range");
	return 0;
}

static int
add_dnsl(struct parse *ps, const struct optdef *o, const char *arg)
{
	struct dns_config *dc = &ps->cfg->dns;
	const char *why;

	if (dc->n == DNSL_MAX)
		return fail(ps, "at most %d DNS lists", DNSL_MAX);
	if (dnsl_parse(arg, (int)o->min, &dc->lists[dc->n], &why) != 0)
		return bad_value(ps, o, arg, why);
	dc->n++;
	return 0;
}

static int
set_score(struct parse *ps, const struct optdef *o, const char *arg,
    void *field)
{
	const char *p = arg + (arg[0] == '-');
	uint64_t v;

	if (parse_count(p, &v) != 0 || v > DNSL_SCORE_MAX)
		return bad_value(ps, o, arg, NULL);
	*(int *)field = arg[0] == '-' ? -(int)v : (int)v;
	return 0;
}

/* A user or group id: a number, as tcpserver takes it. */
static int
set_id(struct parse *ps, const struct optdef *o, const char *arg, void *field)
{
	uint64_t v;

	if (parse_count(arg, &v) != 0 || v > o->max)
		return bad_value(ps, o, arg, "a number (e.g. $(id -u mail))");
	*(long *)field = (long)v;
	return 0;
}

static int
set_command(struct parse *ps, const struct optdef *o, int argc, char **argv)
{
	struct config *cfg = ps->cfg;
	enum command c = (enum command)o->min;
	char name[64];
	size_t n, i;

	/* Help and version answer whatever else was asked. */
	if (cfg->command == COMMAND_HELP || cfg->command == COMMAND_VERSION)
		return 0;
	if (cfg->command != COMMAND_CONNECTION && cfg->command != c &&
	    c != COMMAND_HELP && c != COMMAND_VERSION)
		return fail(ps, "one command at a time (%s with another)",
		    display(o, name, sizeof name));
	cfg->command = c;
	/*
	 * Its words follow it, up to max of them and up to the next option;
	 * with FILE_OPTIONAL the first, a cache FILE, may be left out.
	 */
	for (n = 0; n < o->max && optind + (int)n < argc &&
	    argv[optind + n][0] != '-'; n++)
		;
	if (n < o->max && !((o->needs & FILE_OPTIONAL) && n + 1 == o->max))
		return fail(ps, "--%s needs %s", o->name, o->arg);
	argv += optind;
	optind += (int)n;
	if ((o->needs & FILE_OPTIONAL) && n == o->max) {
		cfg->file = *argv++;
		n--;
	}
	for (i = 0; i < n; i++)
		cfg->args[i] = argv[i];
	return 0;
}

static int
add_redis(struct parse *ps, const struct optdef *o, const char *arg)
{
	struct cache_config *cc = &ps->cfg->cache;
	const char *why;

	if (cc->nredis == REDIS_URLS_MAX)
		return fail(ps, "--redis: at most %d servers", REDIS_URLS_MAX);
	if (redis_url_parse(arg, &cc->redis[cc->nredis], &why) == 0) {
		cc->nredis++;
		return 0;
	}
	/* Whatever stands before an '@' may be a password: not shown. */
	if (strchr(arg, '@') != NULL)
		return fail(ps, "bad --redis (%s)", why);
	return bad_value(ps, o, arg, why);
}

/* A host name for a greeting: nothing that could end or bend a reply. */
static int
set_host(struct parse *ps, const struct optdef *o, const char *arg,
    void *field)
{
	size_t len = strlen(arg), i;

	if (len < o->min || len > o->max)
		return bad_value(ps, o, arg, NULL);
	for (i = 0; i < len; i++)
		if (!((arg[i] >= 'a' && arg[i] <= 'z') ||
		    (arg[i] >= 'A' && arg[i] <= 'Z') ||
		    (arg[i] >= '0' && arg[i] <= '9') || arg[i] == '.' ||
		    arg[i] == '-'))
			return bad_value(ps, o, arg, NULL);
	*(const char **)field = arg;
	return 0;
}

/* --grey-tests: "none", or names from o->choices separated by commas. */
static int
set_tests(struct parse *ps, const struct optdef *o, const char *arg,
    void *field)
{
	unsigned bits = 0;
	const char *p = arg;
	char word[32];

	if (strcmp(arg, "none") == 0) {
		*(unsigned *)field = 0;
		return 0;
	}
	for (;;) {
		size_t len = strcspn(p, ",");
		int i;

		if (len == 0 || len >= sizeof word)
			return bad_value(ps, o, arg, NULL);
		memcpy(word, p, len);
		word[len] = '\0';
		if ((i = name_index(o->choices, word)) < 0)
			return bad_value(ps, o, arg, "unknown test");
		bits |= GREY_TEST_BIT(i);
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
	*(unsigned *)field = bits;
	return 0;
}

/* Give option o its argument. */
static int
apply(struct parse *ps, const struct optdef *o, const char *arg, int argc,
    char **argv)
{
	struct config *cfg = ps->cfg;
	void *field = (char *)cfg + o->at;
	const char *why;
	int i;

	switch (o->kind) {
	case K_FLAG:
		*(int *)field = 1;
		return 0;
	case K_COMMAND:
		return set_command(ps, o, argc, argv);
	case K_MODE:
		if (cfg->mode != MODE_WRAP && cfg->mode != (enum mode)o->min)
			return fail(ps, "--tarpit and --tempfail exclude each "
			    "other");
		cfg->mode = (enum mode)o->min;
		return 0;
	case K_DURATION:
	case K_COUNT:
		return set_number(ps, o, arg, field);
	case K_CHOICE:
		if ((i = name_index(o->choices, arg)) < 0)
			return bad_value(ps, o, arg, NULL);
		*(int *)field = i;
		return 0;
	case K_TEXT:
		if (strlen(arg) < o->min || strlen(arg) > o->max ||
		    !printable(arg))
			return bad_value(ps, o, arg, NULL);
		*(const char **)field = arg;
		return 0;
	case K_PATH:
		*(const char **)field = arg;
		return 0;
	case K_ALLOWLIST:
	case K_CIDR:
		return add_source(ps, o, arg);
	case K_NET:
		return cache_net_parse(arg, field) == 0 ? 0 :
		    bad_value(ps, o, arg, NULL);
	case K_SIZE:
		return cache_size_parse(arg, field) == 0 ? 0 :
		    bad_value(ps, o, arg, NULL);
	case K_LISTEN:
		return add_listen(ps, o, arg);
	case K_PROXY_FROM:
		return add_proxy_from(ps, o, arg);
	case K_REDIS:
		return add_redis(ps, o, arg);
	case K_ID:
		return set_id(ps, o, arg, field);
	case K_STRESS:
		return set_stress(ps, o, arg);
	case K_DNSL:
		return add_dnsl(ps, o, arg);
	case K_SCORE:
		return set_score(ps, o, arg, field);
	case K_HOST:
		return set_host(ps, o, arg, field);
	case K_TESTS:
		return set_tests(ps, o, arg, field);
	case K_FORWARD:
		if (relay_target_parse(arg, &cfg->forward_target, &why) != 0)
			return bad_value(ps, o, arg, why);
		*(const char **)field = arg;
		return 0;
	case K_DNS_SERVER:
		if (dnsl_server_parse(arg, &why) != 0)
			return bad_value(ps, o, arg, why);
		*(const char **)field = arg;
		return 0;
	}
	return -1;
}

/* ------------------------------------------------ checks after parsing */

static const struct optdef *
row(const char *name)
{
	size_t i;

	for (i = 0; i < NOPTS; i++)
		if (strcmp(table[i].name, name) == 0)
			return &table[i];
	return NULL;
}

static int
given(const struct parse *ps, const char *name)
{
	return ps->given[row(name) - table];
}

/* Does cfg have what option o needs?  NULL, or what is missing. */
static const char *
missing_need(const struct config *cfg, const struct optdef *o)
{
	int maintenance = cfg->command >= COMMAND_CACHE_LIST ||
	    cfg->command == COMMAND_REPORT;	/* --cache-net: the top's cut */
	int stores = cfg->cache.path != NULL || cfg->cache.nredis > 0;

	if ((o->needs & NEEDS_TARPIT) && cfg->mode != MODE_TARPIT)
		return "needs --tarpit";
	if ((o->needs & NEEDS_TEMPFAIL) && cfg->mode != MODE_TEMPFAIL)
		return "needs --tempfail";
	if ((o->needs & NEEDS_DECOY) && cfg->mode == MODE_WRAP)
		return "needs --tarpit or --tempfail";
	if ((o->needs & NEEDS_CACHE) && !stores)
		return "needs -c (--cache) or --redis";
	if ((o->needs & NEEDS_CACHE_OR_COMMAND) && !stores && !maintenance)
		return "needs -c (--cache), --redis or a cache maintenance "
		    "command";
	if ((o->needs & NEEDS_REDIS) && cfg->cache.nredis == 0)
		return "needs --redis";
	if ((o->needs & NEEDS_ADD) && cfg->command != COMMAND_CACHE_ADD)
		return "needs --cache-add";
	if ((o->needs & NEEDS_WRAP) && cfg->mode != MODE_WRAP)
		return "is for wrapping a program: not with --tarpit or "
		    "--tempfail";
	if ((o->needs & NEEDS_LISTEN) && cfg->nlisten == 0)
		return "needs --listen";
	if ((o->needs & NEEDS_DNSL) && cfg->dns.n == 0)
		return "needs --dnsbl or --dnswl";
	if ((o->needs & NEEDS_DNSL_OR_SPF) && cfg->dns.n == 0 &&
	    cfg->command != COMMAND_SPF_WALK)
		return "needs --dnsbl, --dnswl or --spf-walk";
	if ((o->needs & NOT_LISTEN) && cfg->nlisten > 0)
		return "is for one process per connection: with --listen, "
		    "--max-clients is the cap and the loop counts its own";
	if ((o->needs & NEEDS_REPORT) && cfg->command != COMMAND_REPORT)
		return "needs --report";
	if ((o->needs & NEEDS_GREYLIST) && !cfg->grey.on)
		return "needs --greylist";
	if ((o->needs & NEEDS_GREYTRAP) && cfg->grey.traps == NULL)
		return "needs --greytrap";
	if ((o->needs & NEEDS_PROXY) && cfg->proxy.nfrom == 0)
		return "needs --proxy-from";
	if ((o->needs & NEEDS_FORWARD) && cfg->forward == NULL)
		return "needs --forward";
	return NULL;
}

/* --slots, --stress and the directories they count in. */
static int
cross_check_counts(struct parse *ps)
{
	const struct config *cfg = ps->cfg;

	if (cfg->mode != MODE_WRAP) {
		if (given(ps, "slots") != given(ps, "slots-dir"))
			return fail(ps, "--slots and --slots-dir go together");
		return 0;
	}
	if (given(ps, "slots") && cfg->state_dir == NULL)
		return fail(ps, "--slots in delay mode needs --state-dir");
	if (cfg->slots > WAITERS_MAX)
		return fail(ps, "--slots in delay mode counts at most %u",
		    WAITERS_MAX);
	if (cfg->stress && cfg->state_dir == NULL && cfg->nlisten == 0)
		return fail(ps, "--stress needs --state-dir (or --listen, "
		    "whose loop counts its own)");
	if (cfg->state_dir && !cfg->stress && !cfg->slots)
		return fail(ps, "--state-dir goes with --stress or --slots");
	if (cfg->stress && cfg->slots && cfg->slots <= cfg->stress)
		return fail(ps, "--slots (%u) must be above --stress's N (%u)",
		    cfg->slots, cfg->stress);
	return 0;
}

/* The cache commands' FILE is -c's; the stores they work on. */
static int
command_stores(struct parse *ps)
{
	struct config *cfg = ps->cfg;
	const struct optdef *o;
	char name[64];

	if (cfg->command < COMMAND_CACHE_LIST)
		return 0;
	for (o = table; (enum command)o->min != cfg->command ||
	    o->kind != K_COMMAND; o++)
		;
	display(o, name, sizeof name);
	if (cfg->file && cfg->cache.path)
		return fail(ps, "%s: the cache FILE, or -c FILE: not both", name);
	if (cfg->file)
		cfg->cache.path = cfg->file;
	if (cfg->cache.path == NULL && cfg->cache.nredis == 0)
		return fail(ps, "%s needs a cache: %s-c FILE or --redis URL",
		    name, o->needs & FILE_OPTIONAL ? "FILE, " : "");
	if (cfg->command == COMMAND_CACHE_PURGE && cfg->cache.path == NULL)
		return fail(ps, "%s is for the LMDB file (Redis removes expired "
		    "entries itself): give FILE or -c FILE", name);
	return 0;
}

/* --spf-walk's domains: the words after the options. */
static int
spf_domains(struct parse *ps)
{
	char *const *d = ps->cfg->program;
	char shown[256];

	if (ps->cfg->command != COMMAND_SPF_WALK)
		return 0;
	if (d == NULL)
		return fail(ps, "--spf-walk needs DOMAIN...");
	for (; *d; d++) {
		if (spf_domain_ok(*d, strlen(*d)))
			continue;
		log_escape(shown, sizeof shown, *d, strlen(*d));
		return fail(ps, (*d)[0] == '-' ? "--spf-walk: the options go "
		    "before the domains ('%s')" : "--spf-walk: '%s' is not a "
		    "domain name", shown);
	}
	return 0;
}

/* What the options given need of each other and of the rest. */
static int
cross_check(struct parse *ps)
{
	const struct config *cfg = ps->cfg;
	char name[64];
	const char *why;
	size_t i;

	for (i = 0; i < cfg->cache.nredis; i++)
		if (cfg->cache.redis[i].user[0] &&
		    cfg->cache.redis_password_file == NULL)
			return fail(ps, "--redis %s names a user: its password "
			    "goes in --redis-password-file",
			    cfg->cache.redis[i].text);

	for (i = 0; i < NOPTS; i++)
		if (ps->given[i] && (why = missing_need(cfg, &table[i])) != NULL)
			return fail(ps, "%s %s", display(&table[i], name,
			    sizeof name), why);
	/* After the needs: a command's FILE does not make -c's options
	 * (--pass-ttl...) mean anything. */
	if (command_stores(ps) != 0 || spf_domains(ps) != 0)
		return -1;
	if (cfg->dns.allow_at >= cfg->dns.block_at)
		return fail(ps, "--dnswl-threshold must be below "
		    "--dnsbl-threshold");
	if (cfg->grey.expire_ms < cfg->grey.pass_ms)
		return fail(ps, "--grey-expire must be at least --grey-pass");
	if (cross_check_counts(ps) != 0)
		return -1;
	if (cfg->envuidgid && (given(ps, "uid") || given(ps, "gid")))
		return fail(ps, "-U takes the ids from $UID and $GID: not with "
		    "-u or -g");
	/* Either alone leaves root's powers: a user in root's groups, or
	 * root in another group. */
	if (given(ps, "uid") && !given(ps, "gid"))
		return fail(ps, "-u needs -g: without it the listener and its "
		    "programs keep root's groups");
	if (given(ps, "gid") && !given(ps, "uid"))
		return fail(ps, "-g needs -u: without it the listener and its "
		    "programs stay root");
	if (cfg->forward && cfg->program)
		return fail(ps, "--forward relays in place of a program: not both "
		    "(got '%.200s')", cfg->program[0]);
	if (cfg->mode == MODE_WRAP)
		return 0;
	/* A program here is a mistake worth stopping at: it would not run. */
	if (cfg->program)
		return fail(ps, "the decoy modes run no program (got '%.200s')",
		    cfg->program[0]);
	if (cfg->mode == MODE_TEMPFAIL && cfg->early == EARLY_PASS)
		return fail(ps, "-x pass needs a program: not with --tempfail");
	return 0;
}

/* Every default, from the table, before the command line is read. */
static void
set_defaults(struct parse *ps)
{
	size_t i;

	for (i = 0; i < NOPTS; i++)
		if (table[i].dflt)
			apply(ps, &table[i], table[i].dflt, 0, NULL);
}

/* ------------------------------------------------------------ parsing */

/* The getopt_long tables, made from the option table. */
static void
getopt_tables(char *shortopts, struct option *longopts)
{
	size_t i, n = 0;

	shortopts[n++] = '+';	/* stop at the program: its options are its own */
	shortopts[n++] = ':';	/* a missing argument is ':' */
	for (i = 0; i < NOPTS; i++) {
		/* A command takes its words itself (set_command). */
		int has_arg = table[i].arg != NULL &&
		    table[i].kind != K_COMMAND;

		longopts[i].name = table[i].name;
		longopts[i].has_arg = has_arg ? required_argument : no_argument;
		longopts[i].flag = NULL;
		longopts[i].val = 256 + (int)i;
		if (table[i].letter) {
			shortopts[n++] = (char)table[i].letter;
			if (has_arg)
				shortopts[n++] = ':';
		}
	}
	shortopts[n] = '\0';
	memset(&longopts[NOPTS], 0, sizeof longopts[NOPTS]);
}

/* The table row getopt_long returned c for, or NULL. */
static const struct optdef *
row_of(int c)
{
	size_t i;

	if (c >= 256 && (size_t)(c - 256) < NOPTS)
		return &table[c - 256];
	for (i = 0; i < NOPTS; i++)
		if (c > 0 && table[i].letter == c)
			return &table[i];
	return NULL;
}

/* getopt leaves a bad short option in optopt; a long one in argv. */
static const char *
option_word(const char *word, char *buf)
{
	if (optopt <= 0 || optopt > 127 || (word[0] == '-' && word[1] == '-'))
		return word;
	buf[0] = '-';
	buf[1] = (char)optopt;
	buf[2] = '\0';
	return buf;
}

int
options_parse(int argc, char **argv, struct config *cfg,
    struct wl_source *sources, char *err, size_t errsize)
{
	char shortopts[2 + 2 * NOPTS + 1], word[3], shown[256];
	struct option longopts[NOPTS + 1];
	struct parse ps;
	int c;

	memset(cfg, 0, sizeof *cfg);
	memset(&ps, 0, sizeof ps);
	cfg->uid = cfg->gid = -1;
	cfg->sources = sources;
	ps.cfg = cfg;
	ps.err = err;
	ps.errsize = errsize;
	set_defaults(&ps);
	getopt_tables(shortopts, longopts);
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		const struct optdef *o = row_of(c);

		if (c == ':' || o == NULL) {
			log_escape(shown, sizeof shown, argv[optind - 1],
			    strlen(argv[optind - 1]));
			return fail(&ps, c == ':' ? "option '%s' needs an "
			    "argument" : "unknown option '%s'",
			    option_word(shown, word));
		}
		ps.given[o - table] = 1;
		if (apply(&ps, o, optarg, argc, argv) != 0)
			return -1;
	}
	if (optind < argc)
		cfg->program = argv + optind;
	if (cfg->check && cfg->command == COMMAND_CONNECTION)
		cfg->command = COMMAND_CHECK;
	return cross_check(&ps);
}

/* ------------------------------------------------------------ output */

void
options_usage(FILE *f)
{
	fputs(synopsis, f);
}

/*
 * --help's text column; a name that leaves fewer than HELP_GAP spaces
 * before it has its text start on the next line.
 */
#define HELP_COLUMN	30
#define HELP_GAP	2

/* Print text from column indent, folded before column 79. */
static void
fold(FILE *f, const char *text, int col, int indent)
{
	while (*text) {
		size_t word = strcspn(text, " ");

		if (col > indent && col + 1 + (int)word > 78) {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
		} else if (col > indent) {
			fputc(' ', f);
			col++;
		}
		fwrite(text, 1, word, f);
		col += (int)word;
		text += word;
		text += strspn(text, " ");
	}
	fputc('\n', f);
}

/* "(default 5s; 0 to 300s)": what --help adds to an option's text. */
static void
limits_words(const struct optdef *o, char *buf, size_t size)
{
	char range[160], a[32], b[32];

	range[0] = '\0';
	if (o->kind == K_DURATION && o->max != DURATION_MAX_MS)
		snprintf(range, sizeof range, "%s to %s",
		    duration_words(o->min, a, sizeof a),
		    duration_words(o->max, b, sizeof b));
	else if (o->kind == K_COUNT || o->kind == K_TEXT || o->kind == K_NET ||
	    o->kind == K_SIZE || o->kind == K_STRESS || o->kind == K_HOST)
		range_words(o, range, sizeof range);
	if (o->dflt == NULL && range[0] == '\0')
		buf[0] = '\0';
	else
		snprintf(buf, size, " (%s%s%s%s)", o->dflt ? "default " : "",
		    o->dflt ? o->dflt : "", o->dflt && range[0] ? "; " : "",
		    range);
}

void
options_help(FILE *f)
{
	char left[64], text[512], limits[200];
	size_t i;

	fputs(synopsis, f);
	fputs("options:\n", f);
	for (i = 0; i < NOPTS; i++) {
		const struct optdef *o = &table[i];
		if (o->letter)
			snprintf(left, sizeof left, "  -%c, --%s%s%s", o->letter,
			    o->name, o->arg ? " " : "", o->arg ? o->arg : "");
		else
			snprintf(left, sizeof left, "      --%s%s%s", o->name,
			    o->arg ? " " : "", o->arg ? o->arg : "");
		limits_words(o, limits, sizeof limits);
		snprintf(text, sizeof text, "%s%s", o->help, limits);
		fputs(left, f);
		if (strlen(left) + HELP_GAP > HELP_COLUMN)
			fprintf(f, "\n%*s", HELP_COLUMN, "");
		else
			fprintf(f, "%*s", HELP_COLUMN - (int)strlen(left), "");
		fold(f, text, HELP_COLUMN, HELP_COLUMN);
	}
	fputs("A DURATION is seconds (5, 2.5) or a number with a unit: "
	    "750ms, 5s, 10m, 1h, 1d.\nSee sendwrap(8).\n", f);
}

void
options_list(FILE *f)
{
	size_t i;

	for (i = 0; i < NOPTS; i++) {
		if (table[i].letter)
			fprintf(f, "-%c ", table[i].letter);
		fprintf(f, "--%s%s%s\n", table[i].name, table[i].arg ? " " : "",
		    table[i].arg ? table[i].arg : "");
	}
}
