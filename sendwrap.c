/*
 * sendwrap - hold the SMTP greeting back, turn away clients that talk
 * first, and exec the real MTA on the untouched socket.
 *
 * Launched once per connection by inetd, xinetd, systemd or tcpserver
 * with the client on fds 0 and 1.  See sendwrap.8.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "decoy.h"
#include "duration.h"
#include "log.h"
#include "peer.h"
#include "slots.h"
#include "wait.h"
#include "whitelist.h"

#define VERSION "1.0.0"

#define EXIT_PERM 100		/* usage or configuration error */
#define EXIT_TEMP 111		/* temporary failure */

#define DELAY_DEFAULT_MS 5000
#define DELAY_MAX_MS (300 * 1000)	/* RFC 5321 4.5.3.2.1 */
#define BANNER_MAX 200
#define PEEK_MAX 256		/* bytes of early input looked at */
#define FIRST_MAX 64		/* of which the log shows this many */
#define DRAIN_MS 2000
#define DRAIN_MAX (64 * 1024)
#define ERRORS_PER_FILE 10	/* per connection; -n shows them all */

/* Decoy MX modes (decoy.h): defaults, then the accepted ranges. */
#define TARPIT_INTERVAL_MS 10000
#define TARPIT_MAX_MS (30 * 60 * 1000)
#define TEMPFAIL_COMMANDS 20	/* a real MTA needs 4: EHLO MAIL RCPT QUIT */
#define TEMPFAIL_MAX_MS 60000
#define INTERVAL_RANGE_MS 100, (3600 * 1000)
#define TARPIT_MAX_RANGE_MS 1000, ((uint64_t)7 * 24 * 3600 * 1000)
#define TEMPFAIL_MAX_RANGE_MS 1000, (3600 * 1000)
#define COMMANDS_MAX 1000

#define PASS_TTL_DEFAULT_MS ((uint64_t)24 * 3600 * 1000)	/* -c: 1 day */
#define CACHE_MAINT_LOCK_MS 10000	/* an operator can wait for writers */

static const char reply_unavailable[] =
    "421 4.3.0 Service temporarily unavailable\r\n";
static const char reply_reject[] =
    "554 5.5.1 SMTP protocol violation: input before greeting\r\n";
static const char reply_tempfail[] =
    "421 4.5.1 SMTP protocol violation: input before greeting, "
    "try again later\r\n";
static const char reply_busy[] = "421 4.7.0 Too busy, try again later\r\n";
static const char reply_own_host[] =
    "421 4.7.0 Not a mail server for this client, try another MX\r\n";

static const char usage_text[] =
    "usage: sendwrap [-n] [-d delay] [-a file] [-A cidr] [-b banner]\n"
    "                [-x reject|tempfail|drop|pass] [-l auto|stderr|syslog|none]\n"
    "                [--] program [arg ...]\n"
    "       sendwrap --tarpit [--tarpit-interval d] [--tarpit-max d] [-b text]\n"
    "                [--slots n --slots-dir dir] [-a file] [-A cidr] [-l where]\n"
    "       sendwrap --tempfail [--tempfail-commands n] [--tempfail-max d]\n"
    "                [-d delay] [-x reject|tempfail|drop] [-b banner]\n"
    "                [--slots n --slots-dir dir] [-a file] [-A cidr] [-l where]\n"
    "       decoy MX modes, no program: --tarpit holds the client (220- lines\n"
    "       every 10s, for 30m), --tempfail answers RCPT/DATA with 451 (at\n"
    "       most 20 commands, 60s); allowlisted clients get 421 at once\n"
    "       pass cache: -c file [--pass-ttl d (1d)] [--bad-ttl d (0: off)]\n"
    "                [--cache-net v4len,v6len (32,64)] [--cache-size bytes (1G)]\n"
    "       sendwrap [--cache-size bytes] --cache-list|--cache-count|--cache-purge file\n"
    "       sendwrap [--cache-net v4len,v6len] --cache-delete file address|net/len\n"
    "       sendwrap --compile allowlist.txt allowlist.cdb\n";

enum early_action { EARLY_REJECT, EARLY_TEMPFAIL, EARLY_DROP, EARLY_PASS };
static const char *const early_names[] = { "reject", "tempfail", "drop", "pass" };

enum cache_command { CACHE_CMD_NONE, CACHE_CMD_LIST, CACHE_CMD_COUNT,
	CACHE_CMD_DELETE, CACHE_CMD_PURGE };

/* The pass cache (cache.h): -c, its options, the maintenance commands. */
struct cache_use {
	const char *path;		/* -c; NULL: no cache */
	struct cache_net net;		/* --cache-net */
	size_t map_size;		/* --cache-size; 0: the default */
	uint64_t pass_ttl_ms, bad_ttl_ms;	/* bad 0: off */
	const char *ttl_opt, *tune_opt;	/* given, for errors */
	enum cache_command command;
	const char *command_path, *command_key;
};

struct config {
	uint64_t delay_ms;
	struct wl_source *sources;	/* -A and -a in command-line order */
	size_t nsources;
	const char *banner;
	enum early_action early;
	enum log_mode log;
	int check;
	int help, version;
	const char *compile_in, *compile_out;
	char **program;			/* NULL-terminated, or NULL */
	struct decoy_config decoy;	/* --tarpit, --tempfail */
	unsigned slots;			/* --slots; 0: no cap */
	const char *slots_dir;
	const char *tarpit_opt, *tempfail_opt;	/* given, for errors */
	struct cache_use cache;		/* -c, --cache-list, ... */
};

static const char *const mode_names[] = { "wrap", "tarpit", "tempfail" };

/* How long this client waits, and why. */
struct decision {
	uint64_t delay_ms;
	const char *reason;		/* GREETDELAY, RELAYCLIENT, allowlist, delay */
	struct wl_match match;
};

static const char *
port_text(const struct peer *p)
{
	return p->port[0] ? p->port : "unknown";
}

static int
is_socket(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

/*
 * Say 421 and leave; mail is delayed, never refused, by our mistakes.
 * Usage errors answer only a socket: an operator at a terminal or a
 * script reading a pipe wants the message, not an SMTP reply.
 */
static void __attribute__((noreturn))
fail_temporarily(int status, int socket_only)
{
	if (socket_only ? is_socket(1) : !isatty(1)) {
		send_all(1, reply_unavailable, sizeof reply_unavailable - 1);
		close_gently(0, 1, DRAIN_MS, DRAIN_MAX);
	}
	exit(status);
}

static void __attribute__((noreturn))
usage_error(const struct config *cfg, const char *fmt, const char *arg)
{
	char msg[512], shown[256];

	/* The value is the operator's, but a line break would still split
	 * the one-line log format. */
	log_escape(shown, sizeof shown, arg, strlen(arg));
	snprintf(msg, sizeof msg, fmt, shown);
	if (cfg->check || isatty(2)) {
		fprintf(stderr, "sendwrap: %s\n%s", msg, usage_text);
		exit(EXIT_PERM);
	}
	log_open(cfg->log);
	log_error("usage: %s", msg);
	fail_temporarily(EXIT_PERM, 1);
}

/* getopt leaves a bad short option in optopt; a long one in argv. */
static const char *
option_name(int opt, const char *word, char *buf)
{
	if (opt <= 0 || opt > 127 || (word[0] == '-' && word[1] == '-'))
		return word;
	buf[0] = '-';
	buf[1] = (char)opt;
	buf[2] = '\0';
	return buf;
}

static int
parse_delay(const char *s, uint64_t *ms)
{
	const char *why;

	return duration_parse_str(s, ms, &why) == 0 && *ms <= DELAY_MAX_MS ?
	    0 : -1;
}

static int
banner_ok(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++)
		if (s[n] < 0x20 || s[n] > 0x7e)
			return 0;
	return n > 0 && n <= BANNER_MAX;
}

static int
parse_early(const char *s, enum early_action *a)
{
	size_t i;

	for (i = 0; i < sizeof early_names / sizeof early_names[0]; i++)
		if (strcmp(s, early_names[i]) == 0) {
			*a = (enum early_action)i;
			return 0;
		}
	return -1;
}

/* Long options of the decoy modes, numbered apart from the others. */
enum { OPT_TARPIT = 512, OPT_TARPIT_INTERVAL, OPT_TARPIT_MAX, OPT_TEMPFAIL,
	OPT_TEMPFAIL_COMMANDS, OPT_TEMPFAIL_MAX, OPT_SLOTS, OPT_SLOTS_DIR };

static int
parse_range(const char *s, uint64_t min, uint64_t max, uint64_t *ms)
{
	const char *why;

	return duration_parse_str(s, ms, &why) == 0 && *ms >= min &&
	    *ms <= max ? 0 : -1;
}

/* A count from 1 to max, in decimal digits only. */
static int
parse_count(const char *s, unsigned long max, unsigned *n)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1 || v > max)
		return -1;
	*n = (unsigned)v;
	return 0;
}

static void
set_mode(struct config *cfg, enum decoy_mode mode)
{
	if (cfg->decoy.mode != DECOY_OFF && cfg->decoy.mode != mode)
		usage_error(cfg, "%s", "--tarpit and --tempfail exclude each "
		    "other");
	cfg->decoy.mode = mode;
}

/* A decoy option c with its argument; -1 if c is none of them. */
static int
parse_decoy_option(struct config *cfg, int c, const char *arg)
{
	struct decoy_config *dc = &cfg->decoy;

	switch (c) {
	case OPT_TARPIT:
		set_mode(cfg, DECOY_TARPIT);
		return 0;
	case OPT_TEMPFAIL:
		set_mode(cfg, DECOY_TEMPFAIL);
		return 0;
	case OPT_TARPIT_INTERVAL:
		cfg->tarpit_opt = "--tarpit-interval";
		if (parse_range(arg, INTERVAL_RANGE_MS, &dc->interval_ms) != 0)
			usage_error(cfg, "bad --tarpit-interval '%s' (a "
			    "duration from 100ms to 1h)", arg);
		return 0;
	case OPT_TARPIT_MAX:
		cfg->tarpit_opt = "--tarpit-max";
		if (parse_range(arg, TARPIT_MAX_RANGE_MS, &dc->tarpit_max_ms))
			usage_error(cfg, "bad --tarpit-max '%s' (a duration "
			    "from 1s to 7d)", arg);
		return 0;
	case OPT_TEMPFAIL_COMMANDS:
		cfg->tempfail_opt = "--tempfail-commands";
		if (parse_count(arg, COMMANDS_MAX, &dc->max_commands) != 0)
			usage_error(cfg, "bad --tempfail-commands '%s' (1 to "
			    "1000)", arg);
		return 0;
	case OPT_TEMPFAIL_MAX:
		cfg->tempfail_opt = "--tempfail-max";
		if (parse_range(arg, TEMPFAIL_MAX_RANGE_MS,
		    &dc->tempfail_max_ms) != 0)
			usage_error(cfg, "bad --tempfail-max '%s' (a duration "
			    "from 1s to 1h)", arg);
		return 0;
	case OPT_SLOTS:
		if (parse_count(arg, SLOTS_MAX, &cfg->slots) != 0)
			usage_error(cfg, "bad --slots '%s' (1 to 100000)", arg);
		return 0;
	case OPT_SLOTS_DIR:
		cfg->slots_dir = arg;
		return 0;
	}
	return -1;
}

/* What the decoy options need of each other and of the rest. */
static void
check_decoy_options(struct config *cfg)
{
	struct decoy_config *dc = &cfg->decoy;

	if (cfg->tarpit_opt && dc->mode != DECOY_TARPIT)
		usage_error(cfg, "%s needs --tarpit", cfg->tarpit_opt);
	if (cfg->tempfail_opt && dc->mode != DECOY_TEMPFAIL)
		usage_error(cfg, "%s needs --tempfail", cfg->tempfail_opt);
	if ((cfg->slots || cfg->slots_dir) && dc->mode == DECOY_OFF)
		usage_error(cfg, "%s", "--slots needs --tarpit or --tempfail");
	if ((cfg->slots == 0) != (cfg->slots_dir == NULL))
		usage_error(cfg, "%s", "--slots and --slots-dir go together");
	if (dc->mode == DECOY_OFF)
		return;
	/* A program here is a mistake worth stopping at: it would not run. */
	if (cfg->program)
		usage_error(cfg, "the decoy modes run no program (got '%s')",
		    cfg->program[0]);
	if (dc->mode == DECOY_TEMPFAIL && cfg->early == EARLY_PASS)
		usage_error(cfg, "%s", "-x pass needs a program: not with "
		    "--tempfail");
	dc->text = cfg->banner;
	if (!dc->interval_ms)
		dc->interval_ms = TARPIT_INTERVAL_MS;
	if (!dc->tarpit_max_ms)
		dc->tarpit_max_ms = TARPIT_MAX_MS;
	if (!dc->max_commands)
		dc->max_commands = TEMPFAIL_COMMANDS;
	if (!dc->tempfail_max_ms)
		dc->tempfail_max_ms = TEMPFAIL_MAX_MS;
}

/* Long options of the pass cache, numbered apart from the others. */
enum { OPT_PASS_TTL = 768, OPT_BAD_TTL, OPT_CACHE_NET, OPT_CACHE_SIZE,
	OPT_CACHE_LIST, OPT_CACHE_COUNT, OPT_CACHE_DELETE, OPT_CACHE_PURGE };

/* A cache option c with its argument; -1 if c is none of them. */
static int
parse_cache_option(struct config *cfg, int c, const char *arg, int argc,
    char **argv)
{
	static const enum cache_command commands[] = { CACHE_CMD_LIST,
	    CACHE_CMD_COUNT, CACHE_CMD_DELETE, CACHE_CMD_PURGE };
	struct cache_use *cu = &cfg->cache;
	const char *why;

	switch (c) {
	case 'c':
		cu->path = arg;
		return 0;
	case OPT_PASS_TTL:
		cu->ttl_opt = "--pass-ttl";
		if (duration_parse_str(arg, &cu->pass_ttl_ms, &why) != 0 ||
		    cu->pass_ttl_ms == 0)
			usage_error(cfg, "bad --pass-ttl '%s' (a duration above "
			    "0, e.g. 1d, 12h)", arg);
		return 0;
	case OPT_BAD_TTL:
		cu->ttl_opt = "--bad-ttl";
		if (duration_parse_str(arg, &cu->bad_ttl_ms, &why) != 0)
			usage_error(cfg, "bad --bad-ttl '%s' (a duration, e.g. "
			    "1h; 0 is off)", arg);
		return 0;
	case OPT_CACHE_NET:
		cu->tune_opt = "--cache-net";
		if (cache_net_parse(arg, &cu->net) != 0)
			usage_error(cfg, "bad --cache-net '%s' (V4LEN,V6LEN: 8 "
			    "to 32 and 16 to 128, e.g. 24,64)", arg);
		return 0;
	case OPT_CACHE_SIZE:
		cu->tune_opt = "--cache-size";
		if (cache_size_parse(arg, &cu->map_size) != 0)
			usage_error(cfg, "bad --cache-size '%s' (bytes, or with "
			    "K, M, G or T, at least 1M)", arg);
		return 0;
	case OPT_CACHE_LIST:
	case OPT_CACHE_COUNT:
	case OPT_CACHE_DELETE:
	case OPT_CACHE_PURGE:
		if (cu->command)
			usage_error(cfg, "%s", "one cache maintenance command at "
			    "a time");
		cu->command = commands[c - OPT_CACHE_LIST];
		cu->command_path = arg;
		if (c != OPT_CACHE_DELETE)
			return 0;
		if (optind >= argc)
			usage_error(cfg, "%s", "--cache-delete needs the cache "
			    "and a key (an address, or NETWORK/LEN as listed)");
		cu->command_key = argv[optind++];
		return 0;
	}
	return -1;
}

/* What the cache options need of each other and of the rest. */
static void
check_cache_options(struct config *cfg)
{
	struct cache_use *cu = &cfg->cache;

	if (cu->ttl_opt && !cu->path)
		usage_error(cfg, "%s needs -c (--cache)", cu->ttl_opt);
	if (cu->tune_opt && !cu->path && !cu->command)
		usage_error(cfg, "%s needs -c (--cache) or a cache maintenance "
		    "command", cu->tune_opt);
	if (cu->path && cfg->decoy.mode != DECOY_OFF)
		usage_error(cfg, "%s", "-c is for wrapping a program: not with "
		    "--tarpit or --tempfail");
	if (cu->net.v4len == 0) {
		cu->net.v4len = CACHE_V4LEN_DEFAULT;
		cu->net.v6len = CACHE_V6LEN_DEFAULT;
	}
	if (cu->pass_ttl_ms == 0)
		cu->pass_ttl_ms = PASS_TTL_DEFAULT_MS;
}

static void
parse_options(int argc, char **argv, struct config *cfg)
{
	enum { OPT_COMPILE = 256 };
	static const struct option longopts[] = {
		{ "delay", required_argument, NULL, 'd' },
		{ "allowlist", required_argument, NULL, 'a' },
		{ "allow", required_argument, NULL, 'A' },
		{ "banner", required_argument, NULL, 'b' },
		{ "early", required_argument, NULL, 'x' },
		{ "log", required_argument, NULL, 'l' },
		{ "check", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "compile", required_argument, NULL, OPT_COMPILE },
		{ "tarpit", no_argument, NULL, OPT_TARPIT },
		{ "tarpit-interval", required_argument, NULL,
		    OPT_TARPIT_INTERVAL },
		{ "tarpit-max", required_argument, NULL, OPT_TARPIT_MAX },
		{ "tempfail", no_argument, NULL, OPT_TEMPFAIL },
		{ "tempfail-commands", required_argument, NULL,
		    OPT_TEMPFAIL_COMMANDS },
		{ "tempfail-max", required_argument, NULL, OPT_TEMPFAIL_MAX },
		{ "slots", required_argument, NULL, OPT_SLOTS },
		{ "slots-dir", required_argument, NULL, OPT_SLOTS_DIR },
		{ "cache", required_argument, NULL, 'c' },
		{ "pass-ttl", required_argument, NULL, OPT_PASS_TTL },
		{ "bad-ttl", required_argument, NULL, OPT_BAD_TTL },
		{ "cache-net", required_argument, NULL, OPT_CACHE_NET },
		{ "cache-size", required_argument, NULL, OPT_CACHE_SIZE },
		{ "cache-list", required_argument, NULL, OPT_CACHE_LIST },
		{ "cache-count", required_argument, NULL, OPT_CACHE_COUNT },
		{ "cache-delete", required_argument, NULL, OPT_CACHE_DELETE },
		{ "cache-purge", required_argument, NULL, OPT_CACHE_PURGE },
		{ NULL, 0, NULL, 0 }
	};
	const char *why;
	char shortopt[3];
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:d:a:A:b:x:l:nhVc:", longopts,
	    NULL)) != -1) {
		struct wl_source *src = &cfg->sources[cfg->nsources];

		switch (c) {
		case 'd':
			if (parse_delay(optarg, &cfg->delay_ms) != 0)
				usage_error(cfg, "bad delay '%s' (a duration "
				    "from 0 to 300 s, e.g. 5, 2.5, 750ms)", optarg);
			break;
		case 'a':
			src->path = optarg;
			cfg->nsources++;
			break;
		case 'A':
			if (wl_parse_cidr(optarg, strlen(optarg), &src->entry,
			    &why) != 0)
				usage_error(cfg, "bad -A address '%s'", optarg);
			src->path = NULL;
			cfg->nsources++;
			break;
		case 'b':
			if (!banner_ok(optarg))
				usage_error(cfg, "bad banner '%s' (1 to 200 "
				    "printable ASCII characters)", optarg);
			cfg->banner = optarg;
			break;
		case 'x':
			if (parse_early(optarg, &cfg->early) != 0)
				usage_error(cfg, "bad early action '%s' (reject, "
				    "tempfail, drop or pass)", optarg);
			break;
		case 'l':
			if (log_mode_parse(optarg, &cfg->log) != 0)
				usage_error(cfg, "bad log destination '%s' (auto, "
				    "stderr, syslog or none)", optarg);
			break;
		case 'n':
			cfg->check = 1;
			break;
		case 'h':
			cfg->help = 1;
			break;
		case 'V':
			cfg->version = 1;
			break;
		case OPT_COMPILE:
			if (optind >= argc)
				usage_error(cfg, "%s", "--compile needs a text "
				    "allowlist and the .cdb file to write");
			cfg->compile_in = optarg;
			cfg->compile_out = argv[optind++];
			break;
		case ':':
			usage_error(cfg, "option '%s' needs an argument",
			    option_name(optopt, argv[optind - 1], shortopt));
		default:
			if (parse_decoy_option(cfg, c, optarg) == 0 ||
			    parse_cache_option(cfg, c, optarg, argc, argv) == 0)
				break;
			usage_error(cfg, "unknown option '%s'",
			    option_name(optopt, argv[optind - 1], shortopt));
		}
	}
	if (optind < argc)
		cfg->program = argv + optind;
	check_decoy_options(cfg);
	check_cache_options(cfg);
}

static void
report_to_log(void *ctx, const char *path, unsigned long line, const char *msg)
{
	(void)ctx;
	if (line)
		log_error("%s:%lu: %s", path, line, msg);
	else
		log_error("%s: %s", path, msg);
}

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

/* Precedence: GREETDELAY, then RELAYCLIENT, then the allowlist, then -d. */
static void
decide_delay(const struct config *cfg, const struct peer *p,
    struct decision *d)
{
	const char *greetdelay = getenv("GREETDELAY");

	memset(d, 0, sizeof *d);
	if (greetdelay != NULL && *greetdelay != '\0') {
		if (parse_delay(greetdelay, &d->delay_ms) == 0) {
			d->reason = "GREETDELAY";
			return;
		} else {
			char shown[128];

			log_escape(shown, sizeof shown, greetdelay,
			    strlen(greetdelay));
			log_error("GREETDELAY=\"%s\" ignored: not a duration "
			    "from 0 to 300 s", shown);
		}
	}
	if (getenv("RELAYCLIENT") != NULL) {
		d->delay_ms = 0;
		d->reason = "RELAYCLIENT";
		return;
	}
	if (cfg->nsources > 0) {
		wl_lookup(cfg->sources, cfg->nsources,
		    p->known ? &p->addr : NULL, &d->match, ERRORS_PER_FILE,
		    report_to_log, NULL);
		if (d->match.found) {
			d->delay_ms = d->match.delay_ms;
			d->reason = "allowlist";
			return;
		}
	}
	d->delay_ms = cfg->delay_ms;
	d->reason = "delay";
}

static void __attribute__((noreturn))
run_program(char **program)
{
	int err;

	log_close();
	execvp(program[0], program);
	err = errno;
	log_error("cannot run %s: %s", program[0], strerror(err));
	fail_temporarily(EXIT_TEMP, 0);
}

static void
log_allow(const struct peer *p, const struct decision *d)
{
	if (d->match.found)
		log_info("allow ip=%s port=%s reason=allowlist rule=%s",
		    p->ip, port_text(p), d->match.rule);
	else
		log_info("allow ip=%s port=%s reason=%s", p->ip, port_text(p),
		    d->reason);
}

static void
log_pass(const struct peer *p, const struct decision *d, uint64_t waited)
{
	char delay[32], took[32];

	duration_format(d->delay_ms, delay, sizeof delay);
	duration_format(waited, took, sizeof took);
	if (d->match.found)
		log_info("pass ip=%s port=%s delay=%s waited=%s rule=%s", p->ip,
		    port_text(p), delay, took, d->match.rule);
	else if (strcmp(d->reason, "delay") != 0)
		log_info("pass ip=%s port=%s delay=%s waited=%s reason=%s",
		    p->ip, port_text(p), delay, took, d->reason);
	else
		log_info("pass ip=%s port=%s delay=%s waited=%s", p->ip,
		    port_text(p), delay, took);
}

/*
 * The pass cache's part in a connection (cache.h).  The cache can never
 * cost mail: its first failure is logged, it is left alone for the rest
 * of the connection, and the connection goes on as without a cache.
 */
static int cache_failed;

static void
cache_trouble(const struct peer *p, const char *why)
{
	if (!cache_failed)
		log_error("ip=%s port=%s cache %s", p->ip, port_text(p), why);
	cache_failed = 1;
}

/* The cache, opened for one lookup or one record; NULL if not to be had. */
static struct cache *
cache_for(const struct config *cfg, const struct peer *p, int write)
{
	struct cache_options o = { write, cfg->cache.map_size, 0 };
	struct cache *c;
	char err[320];

	if (cfg->cache.path == NULL || !p->known || cache_failed)
		return NULL;
	c = cache_open(cfg->cache.path, &o, err, sizeof err);
	/* Nothing to read before the first record: not a failure. */
	if (c == NULL && (write || errno != ENOENT))
		cache_trouble(p, err);
	return c;
}

/* Record a client that passed, or was caught talking early. */
static void
remember(const struct config *cfg, const struct peer *p, enum cache_kind kind)
{
	uint64_t ttl = kind == CACHE_PASS ? cfg->cache.pass_ttl_ms :
	    cfg->cache.bad_ttl_ms;
	struct cache_key k;
	struct cache *c;

	if (ttl == 0 || (c = cache_for(cfg, p, 1)) == NULL)
		return;
	cache_key_make(&k, &p->addr, &cfg->cache.net);
	if (cache_record(c, &k, kind, cache_now_ms(), ttl) != 0)
		cache_trouble(p, cache_error(c));
	cache_close(c);
}

/* What -x says to do with a client that talks first. */
static void __attribute__((noreturn))
act_on_early(const struct config *cfg)
{
	switch (cfg->early) {
	case EARLY_PASS:
		run_program(cfg->program);
	case EARLY_REJECT:
		send_all(1, reply_reject, sizeof reply_reject - 1);
		break;
	case EARLY_TEMPFAIL:
		send_all(1, reply_tempfail, sizeof reply_tempfail - 1);
		break;
	case EARLY_DROP:
		exit(0);
	}
	close_gently(0, 1, DRAIN_MS, DRAIN_MAX);
	exit(0);
}

static void __attribute__((noreturn))
handle_early(const struct config *cfg, const struct peer *p, uint64_t after,
    const char *input, size_t n)
{
	char first[FIRST_MAX * 4 + 1], when[32];

	duration_format(after, when, sizeof when);
	log_escape(first, sizeof first, input, n < FIRST_MAX ? n : FIRST_MAX);
	log_info("early ip=%s port=%s after=%s bytes=%zu first=\"%s\" action=%s",
	    p->ip, port_text(p), when, n, first, early_names[cfg->early]);
	remember(cfg, p, CACHE_BAD);
	act_on_early(cfg);
}

/*
 * A client the cache knows skips the wait: one that passed before is
 * let through at once (cached), a known early talker gets the -x action
 * at once (known-early, with --bad-ttl only).  Returns otherwise.
 */
static void
consult_cache(const struct config *cfg, const struct peer *p)
{
	uint64_t now = cache_now_ms();
	struct cache_entry e;
	struct cache_key k;
	struct cache *c;
	char age[32];
	int found;

	if ((c = cache_for(cfg, p, 0)) == NULL)
		return;
	cache_key_make(&k, &p->addr, &cfg->cache.net);
	if ((found = cache_lookup(c, &k, now, &e)) < 0)
		cache_trouble(p, cache_error(c));
	cache_close(c);		/* before exec, and before a long wait */
	if (found <= 0)
		return;
	duration_format(now > e.recorded_ms ? now - e.recorded_ms : 0, age,
	    sizeof age);
	if (e.kind == CACHE_PASS) {
		log_info("cached ip=%s port=%s age=%s", p->ip, port_text(p), age);
		run_program(cfg->program);
	}
	if (e.kind == CACHE_BAD && cfg->cache.bad_ttl_ms > 0) {
		log_info("known-early ip=%s port=%s age=%s action=%s", p->ip,
		    port_text(p), age, early_names[cfg->early]);
		act_on_early(cfg);
	}
}

/* The greeting delay proper: returns only if the client kept quiet. */
static uint64_t
wait_out_delay(const struct config *cfg, const struct peer *p,
    const struct decision *d)
{
	uint64_t start = mono_ms(), after;
	char input[PEEK_MAX], when[32];
	size_t n;

	if (cfg->banner) {
		char line[BANNER_MAX + 8];
		int len = snprintf(line, sizeof line, "220-%s\r\n", cfg->banner);

		send_all(1, line, (size_t)len);
	}
	switch (wait_readable(0, start + d->delay_ms)) {
	case WAIT_TIMEOUT:
		return mono_ms() - start;
	case WAIT_ERROR:
		/* We cannot watch this descriptor; let the MTA have it. */
		log_error("ip=%s port=%s cannot wait on the client: %s",
		    p->ip, port_text(p), strerror(errno));
		return mono_ms() - start;
	case WAIT_READABLE:
		break;
	}
	after = mono_ms() - start;
	duration_format(after, when, sizeof when);
	switch (peek_input(0, input, sizeof input, &n)) {
	case INPUT_DATA:
		handle_early(cfg, p, after, input, n);
	case INPUT_EOF:
		log_info("hangup ip=%s port=%s after=%s how=eof", p->ip,
		    port_text(p), when);
		exit(0);
	case INPUT_RESET:
		log_info("hangup ip=%s port=%s after=%s how=reset", p->ip,
		    port_text(p), when);
		exit(0);
	case INPUT_ERROR:
		break;
	}
	log_error("ip=%s port=%s cannot read from the client: %s", p->ip,
	    port_text(p), strerror(errno));
	exit(EXIT_TEMP);
}

/*
 * Our own hosts must never be held by a decoy: any allowlist match, or
 * no delay for them from tcprules (GREETDELAY=0, RELAYCLIENT).  -d 0 says
 * nothing about the client and does not count.
 */
static int
own_host(const struct decision *d)
{
	return d->match.found ||
	    (d->delay_ms == 0 && strcmp(d->reason, "delay") != 0);
}

/* Send an own host away at once: a real MTA then tries another MX. */
static void __attribute__((noreturn))
spare_own_host(const struct config *cfg, const struct peer *p,
    const struct decision *d)
{
	log_info("allow ip=%s port=%s reason=%s%s%s mode=%s reply=421", p->ip,
	    port_text(p), d->reason, d->match.found ? " rule=" : "",
	    d->match.found ? d->match.rule : "", mode_names[cfg->decoy.mode]);
	send_all(1, reply_own_host, sizeof reply_own_host - 1);
	close_gently(0, 1, DRAIN_MS, DRAIN_MAX);
	exit(0);
}

/*
 * Hold one of the --slots for the rest of this process (the descriptor
 * is the slot: exit, or any death, gives it back), or turn the client
 * away.  A broken slots directory must not let the decoy clog the host,
 * so it fails closed.
 */
static void
take_slot(const struct config *cfg, const struct peer *p)
{
	unsigned slot;
	int fd;

	if (cfg->slots == 0)
		return;
	fd = slots_take(cfg->slots_dir, cfg->slots, &slot);
	if (fd >= 0)
		return;
	if (fd == SLOTS_ERROR) {
		log_error("ip=%s port=%s cannot take a slot in %s: %s", p->ip,
		    port_text(p), cfg->slots_dir, strerror(errno));
		fail_temporarily(EXIT_TEMP, 0);
	}
	log_info("busy ip=%s port=%s mode=%s slots=%u", p->ip, port_text(p),
	    mode_names[cfg->decoy.mode], cfg->slots);
	send_all(1, reply_busy, sizeof reply_busy - 1);
	close_gently(0, 1, DRAIN_MS, DRAIN_MAX);
	exit(0);
}

/* A decoy MX (decoy.h): no program; the connection ends here. */
static void __attribute__((noreturn))
run_decoy(const struct config *cfg, const struct peer *p,
    const struct decision *d)
{
	if (own_host(d))
		spare_own_host(cfg, p, d);
	take_slot(cfg, p);
	if (cfg->decoy.mode == DECOY_TARPIT)
		decoy_tarpit(&cfg->decoy, p);
	else {
		/* Early talkers and hang-ups end in wait_out_delay. */
		wait_out_delay(cfg, p, d);
		decoy_tempfail(&cfg->decoy, p);
	}
	close_gently(0, 1, DRAIN_MS, DRAIN_MAX);
	exit(0);
}

/* The decoy part of -n; returns the number of problems. */
static unsigned long
check_decoy_config(const struct config *cfg)
{
	const struct decoy_config *dc = &cfg->decoy;
	char a[32], b[32];
	const char *why;
	struct stat st;

	if (dc->mode == DECOY_OFF)
		return 0;
	printf("mode: %s (no program)\n", mode_names[dc->mode]);
	if (dc->mode == DECOY_TARPIT) {
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
	/* Lock files are made there on first use: it must be writable. */
	if (stat(cfg->slots_dir, &st) != 0)
		why = strerror(errno);
	else if (!S_ISDIR(st.st_mode))
		why = "not a directory";
	else if (access(cfg->slots_dir, W_OK | X_OK) != 0)
		why = strerror(errno);
	else
		return 0;
	fprintf(stderr, "%s: cannot hold slots there: %s\n", cfg->slots_dir,
	    why);
	return 1;
}

/*
 * The cache part of -n; returns the number of problems.  It looks
 * without making anything: files made by -n run as root would shut
 * sendwrap's own user out of them.
 */
static unsigned long
check_cache_config(const struct config *cfg)
{
	const struct cache_use *cu = &cfg->cache;
	struct cache_options o = { 0, cu->map_size, 0 };
	char pass[32], bad[32], err[320], dir[PATH_MAX], lock[PATH_MAX + 8];
	struct cache_counts n;
	struct cache *c;
	struct stat st;
	char *slash;
	int data;

	if (cu->path == NULL)
		return 0;
	duration_format(cu->pass_ttl_ms, pass, sizeof pass);
	duration_format(cu->bad_ttl_ms, bad, sizeof bad);
	printf("cache: %s (keys /%u and /%u, map %zu MiB)\npass-ttl: %s s\n"
	    "bad-ttl: %s s%s\n", cu->path, cu->net.v4len, cu->net.v6len,
	    (cu->map_size ? cu->map_size : CACHE_MAP_DEFAULT) >> 20, pass, bad,
	    cu->bad_ttl_ms ? "" : " (off)");
	snprintf(lock, sizeof lock, "%s-lock", cu->path);
	if ((data = stat(cu->path, &st) == 0) && stat(lock, &st) == 0) {
		if ((c = cache_open(cu->path, &o, err, sizeof err)) != NULL &&
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
		fprintf(stderr, "%s: %s\n", data ? lock : cu->path,
		    strerror(errno));
		return 1;
	}
	/* No file yet, or no lock file yet: the first writer makes them. */
	snprintf(dir, sizeof dir, "%s", cu->path);
	if ((slash = strrchr(dir, '/')) != NULL)
		slash[slash == dir] = '\0';
	else
		strcpy(dir, ".");
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

static int
check_config(const struct config *cfg)
{
	unsigned long problems = 0;
	char delay[32];
	size_t i;

	duration_format(cfg->delay_ms, delay, sizeof delay);
	printf("delay: %s s\nearly: %s\nbanner: %s\n", delay,
	    early_names[cfg->early], cfg->banner ? cfg->banner : "(none)");
	problems += check_decoy_config(cfg);
	problems += check_cache_config(cfg);
	for (i = 0; i < cfg->nsources; i++) {
		size_t count;

		if (cfg->sources[i].path == NULL) {
			printf("allow: %s\n", cfg->sources[i].entry.rule);
			continue;
		}
		problems += wl_check_file(cfg->sources[i].path, &count,
		    report_to_stderr, NULL);
		printf("allowlist: %s: %zu entries\n", cfg->sources[i].path,
		    count);
	}
	printf("program:");
	if (cfg->program)
		for (i = 0; cfg->program[i]; i++)
			printf(" %s", cfg->program[i]);
	else
		printf(" (none)");
	if (cfg->program && strchr(cfg->program[0], '/') &&
	    access(cfg->program[0], X_OK) != 0) {
		fprintf(stderr, "%s: cannot run: %s\n", cfg->program[0],
		    strerror(errno));
		problems++;
	}
	printf("\n%s\n", problems ? "configuration has errors" :
	    "configuration ok");
	return problems ? EXIT_PERM : 0;
}

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

/* --cache-list, --cache-count, --cache-delete, --cache-purge. */
static int
cache_maintenance(const struct config *cfg)
{
	const struct cache_use *cu = &cfg->cache;
	struct cache_options o = { 0, cu->map_size, CACHE_MAINT_LOCK_MS };
	uint64_t now = cache_now_ms();
	char err[320], key[CACHE_KEY_TEXT_MAX];
	struct cache_counts n;
	struct cache_key k;
	struct cache *c;
	long purged;
	int r = 0;

	if (cu->command == CACHE_CMD_DELETE &&
	    cache_key_parse(cu->command_key, &cu->net, &k) != 0) {
		fprintf(stderr, "sendwrap: bad key '%s' (an address, or "
		    "NETWORK/LEN as --cache-list shows it)\n", cu->command_key);
		return EXIT_PERM;
	}
	o.write = cu->command == CACHE_CMD_DELETE ||
	    cu->command == CACHE_CMD_PURGE;
	/* Maintenance never makes a cache (reading never does). */
	if (o.write && access(cu->command_path, F_OK) != 0) {
		fprintf(stderr, "sendwrap: %s: %s\n", cu->command_path,
		    strerror(errno));
		return EXIT_TEMP;
	}
	if ((c = cache_open(cu->command_path, &o, err, sizeof err)) == NULL) {
		fprintf(stderr, "sendwrap: %s\n", err);
		return EXIT_TEMP;
	}
	switch (cu->command) {
	case CACHE_CMD_LIST:
		r = cache_list(c, print_entry, &now);
		break;
	case CACHE_CMD_COUNT:
		if ((r = cache_count(c, now, &n)) == 0)
			printf("%lu entries: %lu pass, %lu bad, %lu expired\n",
			    n.total, n.pass, n.bad, n.expired);
		break;
	case CACHE_CMD_DELETE:
		cache_key_format(&k, key, sizeof key);
		if ((r = cache_delete(c, &k)) >= 0)
			printf("%s: %s\n", key, r ? "deleted" :
			    "not in the cache");
		break;
	case CACHE_CMD_PURGE:
		if ((purged = cache_purge(c, now)) >= 0)
			printf("%ld expired entries purged\n", purged);
		r = purged < 0 ? -1 : 0;
		break;
	case CACHE_CMD_NONE:
		break;
	}
	if (r < 0)
		fprintf(stderr, "sendwrap: %s\n", cache_error(c));
	cache_close(c);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "sendwrap: cannot write: %s\n", strerror(errno));
		return EXIT_TEMP;
	}
	return r < 0 ? EXIT_TEMP : 0;
}

static int
compile_allowlist(const struct config *cfg)
{
	long n = wl_compile(cfg->compile_in, cfg->compile_out,
	    report_to_stderr, NULL);

	if (n < 0)
		return EXIT_PERM;
	printf("%s: %ld entries\n", cfg->compile_out, n);
	return 0;
}

int
main(int argc, char **argv)
{
	struct wl_source sources[argc > 0 ? argc : 1];
	struct config cfg;
	struct decision d;
	struct peer p;
	uint64_t waited;

	memset(&cfg, 0, sizeof cfg);
	cfg.delay_ms = DELAY_DEFAULT_MS;
	cfg.sources = sources;
	parse_options(argc, argv, &cfg);
	if (cfg.help) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (cfg.version) {
		puts("sendwrap " VERSION);
		return 0;
	}
	if (cfg.compile_in)
		return compile_allowlist(&cfg);
	if (cfg.cache.command)
		return cache_maintenance(&cfg);
	if (cfg.check)
		return check_config(&cfg);
	if (cfg.program == NULL && cfg.decoy.mode == DECOY_OFF)
		usage_error(&cfg, "%s", "no program to run");

	log_open(cfg.log);
	peer_find(&p, 0);
	decide_delay(&cfg, &p, &d);
	if (cfg.decoy.mode != DECOY_OFF)
		run_decoy(&cfg, &p, &d);
	if (d.delay_ms == 0) {
		log_allow(&p, &d);
		run_program(cfg.program);
	}
	consult_cache(&cfg, &p);
	waited = wait_out_delay(&cfg, &p, &d);
	log_pass(&p, &d, waited);
	remember(&cfg, &p, CACHE_PASS);
	run_program(cfg.program);
}
