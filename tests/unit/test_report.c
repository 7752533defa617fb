/*
 * test_report.c - cmocka tests for report.c (log lines read back) and
 * tally.c (their counts): dates and ISO weeks, the year of an RFC 3164
 * date, TAI64N times, each form of a line, what makes a sendwrap line
 * malformed, and the shares and percentiles the report prints.
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
	struct report_event ev;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof malformed / sizeof malformed[0]; i++)
		if (parse(malformed[i], &ev) != LINE_MALFORMED) {
			print_error("not malformed: %s\n", malformed[i]);
			fail();
		}
	for (i = 0; i < sizeof other / sizeof other[0]; i++)
		if (parse(other[i], &ev) != LINE_OTHER) {
			print_error("not another program's: %s\n", other[i]);
			fail();
		}
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
	};

	setenv("TZ", "UTC", 1);
	tzset();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
