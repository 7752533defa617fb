/*
 * test_report.c - cmocka tests for report.c (log lines read back) and
 * tally.c (their counts): dates and ISO weeks, the year of an RFC 3164
 * date, TAI64N times, each form of a line, what makes a sendwrap line
 * malformed, the greylist's lines, the forwarded lines (no connections),
 * and the shares and percentiles the report prints, which first attempts
 * never came back, and what a report of more days than it keeps rows for
 * says.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "report.h"
#include "reportfmt.h"
#include "tally.h"

/* 2026-11-30 12:00 UTC: "now" for the tests (TZ=UTC, set in main). */
#define NOW ((time_t)1796040000)

static enum line_kind
parse(const char *line, struct report_event *ev)
{
	struct report_clock clk;

	report_clock_init(&clk, NOW);
	return report_parse(&clk, line, strlen(line), ev);
}

/* Every one of n lines is of kind k (what: how to say it is not). */
static void
all_of_kind(const char *const *lines, size_t n, enum line_kind k,
    const char *what)
{
	struct report_event ev;
	size_t i;

	for (i = 0; i < n; i++)
		if (parse(lines[i], &ev) != k) {
			print_error("not %s: %s\n", what, lines[i]);
			fail();
		}
}

static int32_t
day(int y, int m, int d)
{
	return report_days(y, m, d);
}

static void
test_days_round_trip(void **state)
{
	int32_t k;
	int y, m, d;

	(void)state;
	assert_int_equal(day(1970, 1, 1), 0);
	assert_int_equal(day(2000, 3, 1), 11017);
	assert_int_equal(day(2026, 11, 30), (int32_t)(NOW / 86400));
	for (k = -800000; k < 800000; k += 7) {
		report_date(k, &y, &m, &d);
		assert_int_equal(day(y, m, d), k);
	}
}

static void
test_iso_weeks(void **state)
{
	static const struct cache_net cut = { 32, 64 };
	static const struct { int y, m, d; const char *week; } cases[] = {
		{ 2026, 11, 30, "2026-W49" }, { 2025, 12, 29, "2026-W01" },
		{ 2027, 1, 3, "2026-W53" }, { 2021, 1, 3, "2020-W53" },
		{ 2024, 12, 30, "2025-W01" }, { 2023, 1, 1, "2022-W52" },
	};
	struct tally t;
	char buf[32];
	size_t i;

	(void)state;
	tally_init(&t, BY_WEEK, &cut);
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		tally_label(&t, day(cases[i].y, cases[i].m, cases[i].d), buf,
		    sizeof buf);
		assert_string_equal(buf, cases[i].week);
	}
	tally_label(&t, REPORT_UNDATED, buf, sizeof buf);
	assert_string_equal(buf, "undated");
	tally_free(&t);
}

static void
test_every_form(void **state)
{
	static const struct { const char *line; int32_t day; } cases[] = {
		{ "Nov 29 10:00:01 mx sendwrap[12]: hangup ip=192.0.2.1 "
		    "port=1 after=1.204 how=eof", 0 },
		{ "Nov  3 10:00:01 mx sendwrap: hangup ip=192.0.2.1 "
		    "port=1 after=1.204 how=eof", 1 },
		{ "2026-11-29T10:00:03.123456+01:00 mx sendwrap[1]: hangup "
		    "ip=192.0.2.1 port=1 after=1.204 how=eof", 0 },
		{ "<22>1 2026-11-29T10:00:04.003Z mx sendwrap 12 - "
		    "[a b=\"c\\]\"] hangup ip=192.0.2.1 port=1 after=1.204 "
		    "how=eof", 0 },
		{ "2026-11-29T10:00:05+0000 mx sendwrap[127]: sendwrap: "
		    "hangup ip=192.0.2.1 port=1 after=1.204 how=eof", 0 },
		/* 2026-11-29 10:00:00 UTC */
		{ "@400000006b0bf7aa0a1b2c3d sendwrap: hangup ip=192.0.2.1 "
		    "port=1 after=1.204 how=eof", 0 },
		{ "2026-11-29 10:00:00.123456789  sendwrap: hangup "
		    "ip=192.0.2.1 port=1 after=1.204 how=eof\r", 0 },
		{ "sendwrap: hangup ip=192.0.2.1 port=1 after=1.204 how=eof",
		    2 },
	};
	struct report_event ev;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		if (parse(cases[i].line, &ev) != LINE_EVENT) {
			print_error("not an event: %s\n", cases[i].line);
			fail();
		}
		assert_int_equal(ev.verdict, VERDICT_HANGUP);
		assert_int_equal(ev.ms, 1204);
		assert_true(ev.known);
		assert_int_equal(ev.day, cases[i].day == 0 ?
		    day(2026, 11, 29) : cases[i].day == 1 ? day(2026, 11, 3) :
		    REPORT_UNDATED);
	}
}

static void
test_rfc3164_year(void **state)
{
	struct report_event ev;

	(void)state;
	/* Dec 31 read on 2026-11-30: last year's; Dec 1: within a day of
	 * now, this year's. */
	assert_int_equal(parse("Dec 31 23:59:59 mx sendwrap: cached "
	    "ip=1.2.3.4 port=1 age=1.000", &ev), LINE_EVENT);
	assert_int_equal(ev.day, day(2025, 12, 31));
	assert_int_equal(parse("Dec  1 00:00:01 mx sendwrap: cached "
	    "ip=1.2.3.4 port=1 age=1.000", &ev), LINE_EVENT);
	assert_int_equal(ev.day, day(2026, 12, 1));
	/* Feb 29: the last leap year. */
	assert_int_equal(parse("Feb 29 00:00:01 mx sendwrap: cached "
	    "ip=1.2.3.4 port=1 age=1.000", &ev), LINE_EVENT);
	assert_int_equal(ev.day, day(2024, 2, 29));
}

static void
test_fields_of_each_verdict(void **state)
{
	struct report_event ev;

	(void)state;
	assert_int_equal(parse("sendwrap: pass ip=2001:db8::1 port=1 "
	    "delay=30.000 waited=30.002 stress=1", &ev), LINE_EVENT);
	assert_int_equal(ev.verdict, VERDICT_PASS);
	assert_int_equal(ev.ms, 30002);
	assert_int_equal(ev.delay_ms, 30000);
	assert_true(ev.stress && ev.known);
	assert_int_equal(parse("sendwrap: early ip=unknown port=unknown "
	    "after=0.1 bytes=3 first=\"a \\\"b\\\" c\" action=tempfail",
	    &ev), LINE_EVENT);
	assert_int_equal(ev.detail, EARLY_TEMPFAIL);
	assert_int_equal(ev.ms, 100);
	assert_false(ev.known);
	assert_int_equal(parse("sendwrap: allow ip=1.2.3.4 port=1 "
	    "reason=RELAYCLIENT", &ev), LINE_EVENT);
	assert_int_equal(ev.detail, REASON_RELAYCLIENT);
	assert_int_equal(parse("sendwrap: tarpit ip=1.2.3.4 port=1 "
	    "held=1800.004 bytes=1 end=max-reached", &ev), LINE_EVENT);
	assert_int_equal(ev.ms, 1800004);
	assert_int_equal(parse("sendwrap: error ip=1.2.3.4 anything at "
	    "all \"", &ev), LINE_EVENT);
	assert_int_equal(ev.verdict, VERDICT_ERROR);
	assert_int_equal(parse("sendwrap: listening on=127.0.0.1:25", &ev),
	    LINE_NOTICE);
}

static void
test_malformed_and_other(void **state)
{
	static const char *const malformed[] = {
		"sendwrap: bogus ip=1.2.3.4",
		"sendwrap: pass ip=1.2.3.4 port=1 delay=5.000",
		"sendwrap: pass port=1 delay=5.000 waited=5.000",
		"sendwrap: early ip=1 port=1 after=x action=reject",
		"sendwrap: early ip=1 port=1 after=1.000 action=maybe",
		"sendwrap: early ip=1 port=1 after=1.000 first=\"open",
		"sendwrap: hangup ip=1 port=1 after=1.000 how=eof junk",
		"sendwrap: hangup ip=1 port=1 after=99999999999.000",
		"sendwrap: allow ip=1.2.3.4 port=1 reason=whim",
		"sendwrap: Pass ip=1 port=1 delay=1 waited=1",
	};
	static const char *const other[] = {
		"", "Nov 29 10:00:01 mx postfix/smtpd[12]: connect from x",
		"Nov 29 10:00:01 mx sendwrapper[12]: pass ip=1 port=1",
		"Nov 31 10:00:01 mx sendwrap[12]: pass ip=1 port=1",
		"2026-02-30T10:00:00Z mx sendwrap[1]: pass ip=1",
		"@400000006a2acf2a0a1b2c3 sendwrap: pass ip=1",
		"@400000006a2acf2a0a1b2c3d tcpserver: status: 1/40",
		"<22>1 2026-11-29T10:00:04Z mx exim 12 - - hangup ip=1",
		"xsendwrap: pass ip=1 port=1 delay=1.000 waited=1.000",
	};
	(void)state;
	all_of_kind(malformed, sizeof malformed / sizeof malformed[0],
	    LINE_MALFORMED, "malformed");
	all_of_kind(other, sizeof other / sizeof other[0], LINE_OTHER,
	    "another program's");
}

static void
test_tally_shares_and_quantiles(void **state)
{
	static const struct cache_net cut = { 24, 64 };
	struct report_event ev;
	struct tally_period sum;
	struct tally_net top[3];
	struct tally t;
	char line[160];
	int i;

	(void)state;
	tally_init(&t, BY_DAY, &cut);
	for (i = 1; i <= 10; i++) {	/* waits 1..10 s */
		snprintf(line, sizeof line, "sendwrap: pass ip=10.0.0.%d "
		    "port=1 delay=1.000 waited=%d.000", i, i);
		tally_add(&t, parse(line, &ev), &ev);
		snprintf(line, sizeof line, "sendwrap: early ip=192.0.%d.%d "
		    "port=1 after=%d.%03d bytes=1 first=\"x\" action=reject",
		    i % 2, i, i / 10, i % 10 * 100);
		tally_add(&t, parse(line, &ev), &ev);
	}
	tally_add(&t, parse("junk", &ev), &ev);
	tally_finish(&t);
	tally_total(&t, &sum);
	assert_int_equal(tally_connections(&sum), 20);
	assert_int_equal(t.lines, 21);
	assert_int_equal(t.other, 1);
	assert_int_equal(tally_quantile(&t.waited, 0.5), 5000);
	assert_int_equal(tally_quantile(&t.waited, 0.9), 9000);
	assert_int_equal(t.waited.max_ms, 10000);
	assert_int_equal(tally_within(&t.early, 500), 5);
	assert_int_equal(tally_within(&t.early, 1000), 10);
	assert_int_equal(tally_within(&t.early, 99), 0);
	/* /24: two networks of five each; ties in address order */
	assert_int_equal(tally_top(&t, top, 3), 2);
	assert_int_equal(top[0].n, 5);
	assert_int_equal(top[0].net.bytes[2], 0);
	assert_int_equal(top[1].net.bytes[2], 1);
	tally_free(&t);
}

static void
test_greylist_lines(void **state)
{
	struct report_event ev;

	(void)state;
	assert_int_equal(parse("2026-11-29T10:00:05+01:00 mx sendwrap[3]: "
	    "grey ip=192.0.2.2 port=4002 first=yes age=0.000 helo=\"b \\\"q"
	    "\\\"\" from=\"\" rcpt=\"<a@b>\" rcpts=0 quit=no "
	    "end=client-closed test=bare-newline stress=1 dnsbl=a:1 score=1",
	    &ev), LINE_EVENT);
	assert_int_equal(ev.verdict, VERDICT_GREY);
	assert_int_equal(ev.first, 1);
	assert_int_equal(ev.detail, 2);
	assert_int_equal(ev.ms, 0);
	assert_int_equal(ev.secs, 36005);
	assert_true(ev.stress && ev.known);
	assert_int_equal(parse("sendwrap: grey ip=192.0.2.2 port=1 first=no "
	    "age=61.5 helo=\"\" from=\"\" rcpt=\"\" rcpts=3 quit=yes "
	    "end=max-commands", &ev), LINE_EVENT);
	assert_int_equal(ev.first, 0);
	assert_int_equal(ev.detail, -1);
	assert_int_equal(ev.ms, 61500);
	assert_int_equal(ev.secs, -1);
	assert_int_equal(parse("sendwrap: trapped ip=2001:db8::1 port=1 "
	    "age=600.000 trap=\"t@b\" helo=\"h\" from=\"\" rcpts=1 quit=no "
	    "end=reset", &ev), LINE_EVENT);
	assert_int_equal(ev.verdict, VERDICT_TRAPPED);
	assert_int_equal(ev.ms, 600000);
	assert_int_equal(parse("sendwrap: non-smtp ip=1.2.3.4 port=1 "
	    "after=0.004 commands=0 line=\"GET / HTTP/1.0\" action=drop", &ev),
	    LINE_EVENT);
	assert_int_equal(ev.verdict, VERDICT_NON_SMTP);
	assert_int_equal(ev.detail, EARLY_DROP);
	assert_int_equal(ev.ms, 4);
	assert_int_equal(parse("sendwrap: pass ip=1.2.3.4 port=1 delay=5.000 "
	    "waited=5.001 grey=312.456", &ev), LINE_EVENT);
	assert_int_equal(ev.grey_ms, 312456);
	assert_int_equal(parse("sendwrap: pass ip=1.2.3.4 port=1 delay=5.000 "
	    "waited=5.001", &ev), LINE_EVENT);
	assert_int_equal(ev.grey_ms, -1);
}

static void
test_greylist_lines_malformed(void **state)
{
	static const char *const malformed[] = {
		/* each lacks, or bends, one field the spec gives */
		"sendwrap: grey ip=1 first=yes age=0.000 helo=\"\" from=\"\" "
		    "rcpt=\"\" rcpts=0 quit=yes end=quit",
		"sendwrap: grey ip=1 port=1 first=yes age=0.000 helo=\"\" "
		    "from=\"\" rcpt=\"\" quit=yes end=quit",
		"sendwrap: grey ip=1 port=1 first=maybe age=0.000 helo=\"\" "
		    "from=\"\" rcpt=\"\" rcpts=0 quit=yes end=quit",
		"sendwrap: grey ip=1 port=1 first=yes age=soon helo=\"\" "
		    "from=\"\" rcpt=\"\" rcpts=0 quit=yes end=quit",
		"sendwrap: grey ip=1 port=1 first=yes age=0.000 helo=\"\" "
		    "from=\"\" rcpt=\"\" rcpts=x quit=yes end=quit",
		"sendwrap: grey ip=1 port=1 first=yes age=0.000 helo=\"\" "
		    "from=\"\" rcpt=\"\" rcpts=0 quit=yes end=bye",
		"sendwrap: grey ip=1 port=1 first=yes age=0.000 helo=\"\" "
		    "from=\"\" rcpt=\"\" rcpts=0 quit=yes end=quit test=tls",
		"sendwrap: trapped ip=1 port=1 age=0.000 helo=\"\" from=\"\" "
		    "rcpts=0 quit=yes end=quit",
		"sendwrap: trapped ip=1 port=1 age=0.000 trap=\"t\" helo=\"\" "
		    "from=\"\" rcpts=0 quit=perhaps end=quit",
		"sendwrap: pipelining ip=1 port=1 after=0.1 commands=1 "
		    "line=\"x\" action=pass",
		"sendwrap: bare-newline ip=1 port=1 after=0.1 line=\"x\" "
		    "action=reject",
		"sendwrap: non-smtp ip=1 port=1 after=0.1 commands=1 "
		    "action=reject",
		"sendwrap: pass ip=1 port=1 delay=5.000 waited=5.000 grey=x",
	};
	(void)state;
	all_of_kind(malformed, sizeof malformed / sizeof malformed[0],
	    LINE_MALFORMED, "malformed");
}

static void
test_time_of_day_of_each_form(void **state)
{
	static const char *const lines[] = {
		"Nov 29 10:00:01 mx sendwrap: cached ip=1 port=1 age=1.0",
		"2026-11-29T10:00:01.5+05:00 mx sendwrap: cached ip=1 port=1 "
		    "age=1.0",
		"<22>1 2026-11-29T10:00:01Z mx sendwrap 1 - - cached ip=1 "
		    "port=1 age=1.0",
		"@400000006b0bf7ab00000000 sendwrap: cached ip=1 port=1 age=1.0",
		"2026-11-29 10:00:01.1  sendwrap: cached ip=1 port=1 age=1.0",
	};
	struct report_clock clk;
	struct report_event ev;
	size_t i;

	(void)state;
	report_clock_init(&clk, NOW);
	for (i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		assert_int_equal(report_parse(&clk, lines[i], strlen(lines[i]),
		    &ev), LINE_EVENT);
		assert_int_equal(ev.secs, 36001);
		/* a TAI64N time again, from the clock's cached day */
		assert_int_equal(report_parse(&clk, lines[3], strlen(lines[3]),
		    &ev), LINE_EVENT);
		assert_int_equal(ev.secs, 36001);
	}
}

/* A line into t, as the report reads it. */
static void
add(struct tally *t, const char *line)
{
	struct report_event ev;

	tally_add(t, parse(line, &ev), &ev);
}

static void
test_never_came_back_by_time_not_order(void **state)
{
	static const struct cache_net cut = { 32, 64 };
	struct tally t;

	(void)state;
	tally_init(&t, BY_DAY, &cut);
	/* back the next day, read first; back before it; back the same
	 * second, later in the file; back the same second, earlier */
	add(&t, "2026-11-30T00:05:00Z mx sendwrap: pass ip=10.0.0.1 port=1 "
	    "delay=1 waited=1 grey=360");
	add(&t, "2026-11-29T09:00:00Z mx sendwrap: pass ip=10.0.0.2 port=1 "
	    "delay=1 waited=1 grey=360");
	add(&t, "2026-11-29T09:00:00Z mx sendwrap: grey ip=10.0.0.4 port=1 "
	    "first=no age=1 helo=\"\" from=\"\" rcpt=\"\" rcpts=0 quit=yes "
	    "end=quit");
	add(&t, "2026-11-29T23:59:00Z mx sendwrap: grey ip=10.0.0.1 port=1 "
	    "first=yes age=0 helo=\"\" from=\"\" rcpt=\"\" rcpts=0 quit=yes "
	    "end=quit");
	add(&t, "2026-11-29T10:00:00Z mx sendwrap: grey ip=10.0.0.2 port=1 "
	    "first=yes age=0 helo=\"\" from=\"\" rcpt=\"\" rcpts=0 quit=yes "
	    "end=quit");
	add(&t, "2026-11-29T10:00:00Z mx sendwrap: grey ip=10.0.0.3 port=1 "
	    "first=yes age=0 helo=\"\" from=\"\" rcpt=\"\" rcpts=0 quit=yes "
	    "end=quit");
	add(&t, "2026-11-29T10:00:00Z mx sendwrap: grey ip=10.0.0.3 port=1 "
	    "first=no age=0 helo=\"\" from=\"\" rcpt=\"\" rcpts=0 quit=yes "
	    "end=quit");
	add(&t, "2026-11-29T09:00:00Z mx sendwrap: grey ip=10.0.0.4 port=1 "
	    "first=yes age=0 helo=\"\" from=\"\" rcpt=\"\" rcpts=0 quit=yes "
	    "end=quit");
	tally_finish(&t);
	assert_int_equal(t.grey.first, 4);
	assert_int_equal(t.grey.nfirsts, 4);
	assert_int_equal(t.grey.too_soon, 2);
	assert_int_equal(t.grey.back.n, 2);
	assert_int_equal(t.grey.never, 2);	/* .2 and .4 */
	tally_free(&t);
}

static void
test_forwarded_lines(void **state)
{
	struct report_event ev;

	(void)state;
	assert_int_equal(parse("2026-11-29T10:00:05+00:00 mx sendwrap[3]: "
	    "forwarded ip=2001:db8::7 port=4002 in=1234 out=56789 "
	    "length=12.034 end=mta-closed", &ev), LINE_FORWARDED);
	assert_int_equal(ev.verdict, VERDICT_COUNT);
	assert_int_equal(ev.day, day(2026, 11, 29));
	assert_int_equal(ev.secs, 36005);
	assert_true(ev.in == 1234 && ev.out == 56789);
	assert_int_equal(ev.ms, 12034);
	assert_int_equal(ev.detail, RELAY_MTA_CLOSED);
	assert_true(ev.known);
	assert_false(ev.stress);
	/* the largest 64-bit counts; a field the report does not read */
	assert_int_equal(parse("sendwrap: forwarded ip=unknown port=unknown "
	    "in=18446744073709551615 out=0018446744073709551615 length=0.000 "
	    "end=unreachable proxy=v2", &ev), LINE_FORWARDED);
	assert_true(ev.in == UINT64_MAX && ev.out == UINT64_MAX);
	assert_int_equal(ev.detail, RELAY_UNREACHABLE);
	assert_int_equal(ev.ms, 0);
	assert_false(ev.known);
	assert_int_equal(ev.day, REPORT_UNDATED);
}

static void
test_forwarded_lines_malformed(void **state)
{
	static const char *const malformed[] = {
		/* each lacks, or bends, one field */
		"sendwrap: forwarded port=1 in=1 out=1 length=1.000 end=idle",
		"sendwrap: forwarded ip=1 in=1 out=1 length=1.000 end=idle",
		"sendwrap: forwarded ip=1 port=1 out=1 length=1.000 end=idle",
		"sendwrap: forwarded ip=1 port=1 in=1 length=1.000 end=idle",
		"sendwrap: forwarded ip=1 port=1 in=1 out=1 end=idle",
		"sendwrap: forwarded ip=1 port=1 in=1 out=1 length=1.000",
		"sendwrap: forwarded ip=1 port=1 in= out=1 length=1.000 "
		    "end=idle",
		"sendwrap: forwarded ip=1 port=1 in=1k out=1 length=1.000 "
		    "end=idle",
		"sendwrap: forwarded ip=1 port=1 in=-1 out=1 length=1.000 "
		    "end=idle",
		"sendwrap: forwarded ip=1 port=1 in=\"1\" out=1 length=1.000 "
		    "end=idle",
		"sendwrap: forwarded ip=1 port=1 in=1 out=18446744073709551616 "
		    "length=1.000 end=idle",
		"sendwrap: forwarded ip=1 port=1 in=1 out=1 length=soon "
		    "end=idle",
		"sendwrap: forwarded ip=1 port=1 in=1 out=1 length=1.0.0 "
		    "end=idle",
		"sendwrap: forwarded ip=1 port=1 in=1 out=1 length=1.000 "
		    "end=bye",
		"sendwrap: forwarded ip=1 port=1 in=1 out=1 length=1.000 "
		    "end=Idle",
		"sendwrap: forwarded ip=1 port=1 in=1 out=1 length=1.000 "
		    "end=quit",
		"sendwrap: forwarded ip=1 port=1 in=1 out=1 length=1.000 "
		    "end=idle junk",
		"sendwrap: forwarded",
		"sendwrap: forwarded-to ip=1 port=1 in=1 out=1 length=1.000 "
		    "end=idle",
	};
	(void)state;
	all_of_kind(malformed, sizeof malformed / sizeof malformed[0],
	    LINE_MALFORMED, "malformed");
}

static void
test_forwarded_are_no_connections(void **state)
{
	static const struct cache_net cut = { 32, 64 };
	struct tally_period sum;
	struct tally t;

	(void)state;
	tally_init(&t, BY_DAY, &cut);
	add(&t, "2026-11-29T10:00:00Z mx sendwrap: pass ip=10.0.0.1 port=1 "
	    "delay=1 waited=1");
	add(&t, "2026-11-29T10:00:09Z mx sendwrap: forwarded ip=10.0.0.1 "
	    "port=1 in=100 out=2000 length=9.000 end=client-closed");
	add(&t, "2026-11-29T11:00:00Z mx sendwrap: cached ip=10.0.0.2 port=1 "
	    "age=1");
	add(&t, "2026-11-29T11:00:00Z mx sendwrap: error ip=10.0.0.2 port=1 "
	    "cannot forward to 127.0.0.1:2525: Connection refused");
	add(&t, "2026-11-29T11:00:00Z mx sendwrap: forwarded ip=10.0.0.2 "
	    "port=1 in=0 out=0 length=0.000 end=unreachable");
	/* gone before its greeting: 421; the client's own end: none */
	add(&t, "2026-11-30T00:00:01Z mx sendwrap: forwarded ip=10.0.0.3 "
	    "port=1 in=18446744073709551615 out=0 length=1.000 "
	    "end=mta-reset");
	add(&t, "2026-11-30T00:00:02Z mx sendwrap: forwarded ip=10.0.0.4 "
	    "port=1 in=5 out=0 length=3.000 end=client-closed");
	add(&t, "sendwrap: forwarded ip=10.0.0.5 port=1 in=1 out=1 "
	    "length=1.000 end=bogus");
	tally_finish(&t);
	tally_total(&t, &sum);
	assert_int_equal(tally_connections(&sum), 2);
	assert_int_equal(sum.n[VERDICT_ERROR], 1);
	assert_int_equal(t.events, 3);
	assert_int_equal(t.forwarded, 4);
	assert_int_equal(t.malformed, 1);
	assert_int_equal(t.nperiods, 2);
	assert_int_equal(t.periods[0].forwarded, 2);
	assert_int_equal(t.periods[0].unreachable, 1);
	assert_true(t.periods[0].in == 100 && t.periods[0].out == 2000);
	assert_int_equal(tally_connections(&t.periods[1]), 0);
	assert_int_equal(t.periods[1].forwarded, 2);
	assert_true(t.periods[1].in == UINT64_MAX);	/* at most */
	assert_true(sum.in == UINT64_MAX && sum.out == 2000);
	assert_int_equal(sum.forwarded, 4);
	assert_int_equal(t.fwd.ends[RELAY_CLIENT_CLOSED], 2);
	assert_int_equal(t.fwd.ends[RELAY_UNREACHABLE], 1);
	assert_int_equal(t.fwd.ends[RELAY_MTA_RESET], 1);
	assert_int_equal(t.fwd.deferred, 2);
	/* the lengths of the three that reached the MTA */
	assert_int_equal(t.fwd.length.n, 3);
	assert_int_equal(tally_quantile(&t.fwd.length, 0.5), 3000);
	assert_int_equal(t.fwd.length.max_ms, 9000);
	tally_free(&t);
}

static void
test_periods_past_the_limit(void **state)
{
	static const struct cache_net cut = { 32, 64 };
	struct tally t;
	char line[160], *text = NULL;
	size_t size = 0;
	FILE *f;
	int32_t d, from = day(1500, 1, 1);
	int y, m, dd;

	(void)state;
	tally_init(&t, BY_DAY, &cut);
	/* descending, two lines a day, past the limit by 10 days */
	for (d = from + TALLY_PERIODS_MAX + 9; d >= from; d--) {
		report_date(d, &y, &m, &dd);
		snprintf(line, sizeof line, "%04d-%02d-%02d 10:00:00  "
		    "sendwrap: hangup ip=1.2.3.4 port=1 after=1 how=eof",
		    y, m, dd);
		add(&t, line);
		add(&t, line);
	}
	add(&t, "sendwrap: hangup ip=1.2.3.4 port=1 after=1 how=eof");
	tally_finish(&t);
	assert_false(t.failed);
	assert_int_equal(t.nperiods, TALLY_PERIODS_MAX + 1 + 1);
	assert_int_equal(t.overflow, 2 * 10);
	assert_int_equal(t.periods[0].key, from + 10);
	assert_int_equal(t.periods[TALLY_PERIODS_MAX - 1].key,
	    from + TALLY_PERIODS_MAX + 9);
	assert_int_equal(t.periods[TALLY_PERIODS_MAX].key, TALLY_OVERFLOW);
	assert_int_equal(t.periods[TALLY_PERIODS_MAX].n[VERDICT_HANGUP], 20);
	assert_int_equal(t.periods[TALLY_PERIODS_MAX + 1].key,
	    REPORT_UNDATED);
	assert_non_null(f = open_memstream(&text, &size));
	report_print(f, &t, FORMAT_TEXT, 0);
	fclose(f);
	assert_non_null(strstr(text, "20 lines of days past the first "
	    "262144 are counted together in the row overflow"));
	assert_non_null(strstr(text, "\noverflow             20 "));
	assert_non_null(strstr(text, "from 1500-01-11 to "));
	free(text);
	tally_free(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_days_round_trip),
		cmocka_unit_test(test_iso_weeks),
		cmocka_unit_test(test_every_form),
		cmocka_unit_test(test_rfc3164_year),
		cmocka_unit_test(test_fields_of_each_verdict),
		cmocka_unit_test(test_malformed_and_other),
		cmocka_unit_test(test_tally_shares_and_quantiles),
		cmocka_unit_test(test_greylist_lines),
		cmocka_unit_test(test_greylist_lines_malformed),
		cmocka_unit_test(test_time_of_day_of_each_form),
		cmocka_unit_test(test_never_came_back_by_time_not_order),
		cmocka_unit_test(test_periods_past_the_limit),
		cmocka_unit_test(test_forwarded_lines),
		cmocka_unit_test(test_forwarded_lines_malformed),
		cmocka_unit_test(test_forwarded_are_no_connections),
	};

	setenv("TZ", "UTC", 1);
	tzset();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
