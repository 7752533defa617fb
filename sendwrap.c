/*
 * sendwrap - hold the SMTP greeting back, turn away clients that talk
 * first, and exec the real MTA on the untouched socket.
 *
 * Launched once per connection by inetd, xinetd, systemd or tcpserver
 * with the client on fds 0 and 1.  See sendwrap.8.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "duration.h"
#include "log.h"
#include "peer.h"
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

static const char reply_unavailable[] =
    "421 4.3.0 Service temporarily unavailable\r\n";
static const char reply_reject[] =
    "554 5.5.1 SMTP protocol violation: input before greeting\r\n";
static const char reply_tempfail[] =
    "421 4.5.1 SMTP protocol violation: input before greeting, "
    "try again later\r\n";

static const char usage_text[] =
    "usage: sendwrap [-n] [-d delay] [-a file] [-A cidr] [-b banner]\n"
    "                [-x reject|tempfail|drop|pass] [-l auto|stderr|syslog|none]\n"
    "                [--] program [arg ...]\n"
    "       sendwrap --compile allowlist.txt allowlist.cdb\n";

enum early_action { EARLY_REJECT, EARLY_TEMPFAIL, EARLY_DROP, EARLY_PASS };
static const char *const early_names[] = { "reject", "tempfail", "drop", "pass" };

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
};

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
	char msg[512];

	snprintf(msg, sizeof msg, fmt, arg);
	if (cfg->check || isatty(2)) {
		fprintf(stderr, "sendwrap: %s\n%s", msg, usage_text);
		exit(EXIT_PERM);
	}
	log_open(cfg->log);
	log_error("usage: %s", msg);
	fail_temporarily(EXIT_PERM, 1);
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
		{ NULL, 0, NULL, 0 }
	};
	const char *why;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:d:a:A:b:x:l:nhV", longopts,
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
			    argv[optind - 1]);
		default:
			usage_error(cfg, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		cfg->program = argv + optind;
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

static void __attribute__((noreturn))
handle_early(const struct config *cfg, const struct peer *p, uint64_t after,
    const char *input, size_t n)
{
	char first[FIRST_MAX * 4 + 1], when[32];

	duration_format(after, when, sizeof when);
	log_escape(first, sizeof first, input, n < FIRST_MAX ? n : FIRST_MAX);
	log_info("early ip=%s port=%s after=%s bytes=%zu first=\"%s\" action=%s",
	    p->ip, port_text(p), when, n, first, early_names[cfg->early]);
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

static int
check_config(const struct config *cfg)
{
	unsigned long problems = 0;
	char delay[32];
	size_t i;

	duration_format(cfg->delay_ms, delay, sizeof delay);
	printf("delay: %s s\nearly: %s\nbanner: %s\n", delay,
	    early_names[cfg->early], cfg->banner ? cfg->banner : "(none)");
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
	if (cfg.check)
		return check_config(&cfg);
	if (cfg.program == NULL)
		usage_error(&cfg, "%s", "no program to run");

	log_open(cfg.log);
	peer_find(&p, 0);
	decide_delay(&cfg, &p, &d);
	if (d.delay_ms == 0) {
		log_allow(&p, &d);
		run_program(cfg.program);
	}
	waited = wait_out_delay(&cfg, &p, &d);
	log_pass(&p, &d, waited);
	run_program(cfg.program);
}
