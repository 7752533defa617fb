/*
 * names.h - the words sendwrap writes and reads: verdicts, reasons,
 * early actions, modes and log destinations, each an enum with its name
 * table, in one place.
 *
 * A verdict is the first word of the one log line that ends each
 * connection; sendwrap.8 (LOGGING) lists them all, and a test checks
 * that it does.
 */
#ifndef SENDWRAP_NAMES_H
#define SENDWRAP_NAMES_H

#include <stddef.h>

enum verdict {
	VERDICT_PASS,		/* waited out the delay; the program runs */
	VERDICT_ALLOW,		/* no wait: allowlist, tcprules, -d 0 */
	VERDICT_EARLY,		/* talked during the wait */
	VERDICT_HANGUP,		/* closed or reset during the wait */
	VERDICT_CACHED,		/* passed before: the program runs at once */
	VERDICT_KNOWN_EARLY,	/* talked early before: turned away at once */
	VERDICT_TARPIT,		/* held by the tar pit */
	VERDICT_DECOY,		/* served by the tempfail responder */
	VERDICT_BUSY,		/* no slot free */
	VERDICT_DNSBL,		/* refused for its DNS lists' score */
	VERDICT_GREY,		/* greylisted: a first attempt or too soon */
	VERDICT_TRAPPED,	/* greylisted, and named a trap address */
	VERDICT_PIPELINING,	/* greylist dialog: talked before the reply */
	VERDICT_NON_SMTP,	/* greylist dialog: HTTP or a header line */
	VERDICT_BARE_NEWLINE,	/* greylist dialog: LF without CR */
	VERDICT_ERROR,		/* a problem, beside the verdict */
	VERDICT_COUNT
};

/* Why a client waits what it waits (reason= in pass and allow lines). */
enum reason {
	REASON_DELAY,		/* -d: nothing else said */
	REASON_ALLOWLIST,	/* an allowlist entry */
	REASON_GREETDELAY,	/* $GREETDELAY from tcprules */
	REASON_RELAYCLIENT,	/* $RELAYCLIENT from tcprules */
	REASON_DNSWL,		/* the DNS allow lists */
	REASON_PROXY_LOCAL,	/* a balancer's own connection (PROXY LOCAL) */
	REASON_COUNT
};

/* -x: what happens to a client that talks during the wait. */
enum early_action {
	EARLY_REJECT, EARLY_TEMPFAIL, EARLY_DROP, EARLY_PASS, EARLY_COUNT
};

/* What sendwrap is for on this connection. */
enum mode { MODE_WRAP, MODE_TARPIT, MODE_TEMPFAIL, MODE_COUNT };

/* -l: where the log goes. */
enum log_mode { LOGTO_AUTO, LOGTO_STDERR, LOGTO_SYSLOG, LOGTO_NONE,
	LOGTO_COUNT };

/* --by: what a report's rows are. */
enum report_by { BY_DAY, BY_WEEK, BY_COUNT };

/* --forward-proxy: the PROXY header sent to the MTA, if any. */
enum forward_proxy { FORWARD_PROXY_NONE, FORWARD_PROXY_V1, FORWARD_PROXY_V2,
	FORWARD_PROXY_COUNT };

/* --report-format. */
enum report_format { FORMAT_TEXT, FORMAT_CSV, FORMAT_PROMETHEUS,
	FORMAT_COUNT };

/* How a tar-pit hold ended (end= in tarpit lines). */
enum tarpit_end { TARPIT_CLOSED, TARPIT_MAX, TARPIT_RESET, TARPIT_ERROR };

/* How a tempfail responder session ended (end= in decoy lines). */
enum decoy_end {
	END_QUIT, END_CLOSED, END_RESET, END_COMMANDS, END_TIME, END_ERROR
};

/* How a relayed session ended (--forward; relay.h): by which side, for
 * the three that have one (RELAY_CLIENT_x + side). */
enum relay_end {
	RELAY_CLIENT_CLOSED, RELAY_MTA_CLOSED,	/* whose EOF came first */
	RELAY_CLIENT_RESET, RELAY_MTA_RESET,
	RELAY_CLIENT_ERROR, RELAY_MTA_ERROR,
	RELAY_IDLE,		/* no byte either way for --forward-idle */
	RELAY_UNREACHABLE,	/* the connect failed or timed out */
	RELAY_LOCAL_ERROR	/* out of descriptors or memory; cut short */
};
#define RELAY_END_COUNT (RELAY_LOCAL_ERROR + 1)

/*
 * The after-greeting tests of the greylisting dialog (--grey-tests).  A
 * client that fails one is logged with the test's name as its verdict.
 */
enum grey_test { GREY_PIPELINING, GREY_NON_SMTP, GREY_BARE_NEWLINE,
	GREY_TEST_COUNT };
#define GREY_TEST_BIT(t) (1u << (t))

extern const char *const verdict_names[VERDICT_COUNT + 1];
extern const char *const reason_names[REASON_COUNT + 1];
extern const char *const early_names[EARLY_COUNT + 1];
extern const char *const mode_names[MODE_COUNT + 1];
extern const char *const log_mode_names[LOGTO_COUNT + 1];
extern const char *const report_by_names[BY_COUNT + 1];
extern const char *const report_format_names[FORMAT_COUNT + 1];
extern const char *const forward_proxy_names[FORWARD_PROXY_COUNT + 1];
extern const char *const grey_test_names[GREY_TEST_COUNT + 1];

/* "client-closed", "max-reached", "reset", "error". */
const char *tarpit_end_name(enum tarpit_end end);

/* "quit", "client-closed", "reset", "max-commands", "max-time", "error". */
const char *decoy_end_name(enum decoy_end end);

/* "client-closed", "mta-closed", "client-reset", "mta-reset",
 * "client-error", "mta-error", "idle", "unreachable", "error": end= of
 * the forwarded line that follows a relayed client's verdict. */
const char *relay_end_name(enum relay_end end);

/* The index of s in a NULL-terminated table, or -1. */
int name_index(const char *const *table, const char *s);

#endif
