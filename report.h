/*
 * report.h - sendwrap's log lines read back (--report): one line of a
 * log, as the places sendwrap logs to write it, made into one event.
 *
 * The forms of a line:
 *  - syslog files: "Nov 30 12:34:56 host sendwrap[123]: MSG" (RFC 3164;
 *    the year is the latest that does not put the line in the future),
 *    "2026-11-30T12:34:56.123456+01:00 host sendwrap[123]: MSG" (RFC 3339
 *    timestamps, rsyslog's default), and RFC 5424 records
 *    ("<22>1 2026-11-30T12:34:56Z host sendwrap 123 - - MSG");
 *  - journalctl -o short-iso: "2026-11-30T12:34:56+0100 host
 *    sendwrap[123]: sendwrap: MSG" (stderr under systemd);
 *  - multilog and s6-log: "@4000000065a1b2c30a1b2c3d sendwrap: MSG"
 *    (TAI64N), or s6-log's "2026-11-30 12:34:56.123456789  sendwrap: MSG";
 *  - standard error as it is: "sendwrap: MSG" (no date).
 * MSG is a verdict line (sendwrap.8, LOGGING): its word, then key=value
 * fields, a value bare or "quoted" with backslash escapes.  A line whose
 * tag is not sendwrap's is another program's; a sendwrap line that does
 * not parse (an unknown word, a field out of shape, a field the verdict
 * must have missing or bad) is malformed.  The greylist lines (grey,
 * trapped, pipelining, non-smtp, bare-newline) must have every field
 * the greylist's log lines always carry.
 *
 * A client the listener relays (--forward) has a second line when its
 * session is over: "forwarded ip=IP port=PORT in=BYTES out=BYTES
 * length=DURATION end=END" (END a word of relay_end_name()).  It is no
 * verdict (the connection was counted by its verdict line), but a kind of
 * its own; a forwarded line without one of these fields, or with a count
 * that is not a 64-bit decimal, a length that is not a duration or an end
 * that is not one of the words, is malformed.
 *
 * Days are the date as the line writes it (local time in syslog files
 * and the journal); a TAI64N time is made a local date as tai64nlocal
 * would.
 *
 * Contract: pure parsing of caller memory, no allocation, no I/O;
 * localtime_r() for TAI64N times only.  Any byte sequence is safe
 * input (a fuzz target checks).
 */
#ifndef SENDWRAP_REPORT_H
#define SENDWRAP_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "addr.h"
#include "names.h"

#define REPORT_UNDATED INT32_MAX	/* a line without a date (last) */
#define REPORT_LINE_MAX 8192		/* longer lines are cut here */

enum line_kind {
	LINE_OTHER,		/* not sendwrap's */
	LINE_EVENT,		/* a verdict (or error) line: ev is filled */
	LINE_FORWARDED,		/* a relayed session's end: ev is filled */
	LINE_NOTICE,		/* listening, reload, stopping */
	LINE_MALFORMED		/* sendwrap's, but not as sendwrap writes */
};

/* A LINE_EVENT's fields by verdict; a LINE_FORWARDED's are day, secs,
 * detail (end=, enum relay_end), ms (length=), in, out, known and addr,
 * and its verdict is VERDICT_COUNT. */
struct report_event {
	int32_t day;		/* days since 1970-01-01, or REPORT_UNDATED */
	int32_t secs;		/* into the day, as the line writes it (0 to
				 * 86400); -1 if undated */
	enum verdict verdict;
	int detail;		/* allow: reason; early, known-early,
				 * pipelining, non-smtp, bare-newline: action;
				 * grey, trapped: the test failed (test=,
				 * enum grey_test), -1 if none; else -1 */
	int first;		/* grey: first=yes 1, first=no 0; else -1 */
	int64_t ms;		/* early, hangup, pipelining, non-smtp,
				 * bare-newline: after; pass: waited;
				 * tarpit: held; cached, known-early, grey,
				 * trapped: age; else -1 */
	uint64_t in, out;	/* forwarded: bytes client to MTA, MTA to
				 * client; else 0 */
	int64_t delay_ms;	/* pass: delay; else -1 */
	int64_t grey_ms;	/* pass: grey= (a greylisted client's first
				 * attempt's age), if there; else -1 */
	int stress;		/* stress=1 */
	int known;		/* addr holds ip= */
	struct addr addr;
};

/* What the year of an RFC 3164 date and the local date of a TAI64N time
 * are judged by; set once per run. */
struct report_clock {
	int32_t today;		/* days since 1970-01-01, local */
	int year;		/* this year, local */
	time_t cached_from;	/* TAI64N: [from, to) is cached_day */
	time_t cached_to;
	time_t cached_midnight;	/* its start (the wall clock's 00:00) */
	int32_t cached_day;
};

/* Days since 1970-01-01 of a date; month 1 to 12. */
int32_t report_days(int year, int month, int day);

/* The civil date of a day number. */
void report_date(int32_t days, int *year, int *month, int *day);

void report_clock_init(struct report_clock *c, time_t now);

/*
 * Make the len bytes of line (without its newline; no NUL needed) into
 * ev.  ev is filled only for LINE_EVENT and LINE_FORWARDED.
 */
enum line_kind report_parse(struct report_clock *c, const char *line,
    size_t len, struct report_event *ev);

#endif
