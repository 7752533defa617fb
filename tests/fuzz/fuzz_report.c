/*
 * fuzz_report.c - libFuzzer target for --report's reading of log lines
 * (report.c) and its counting and printing (tally.c, reportfmt.c).
 *
 *   make fuzz        (every tests/fuzz/fuzz_*.c, sharing 300 s)
 *
 * The input is split at newlines, as a log file is read; every line goes
 * through report_parse() and tally_add(), then the tally is printed in
 * each format to /dev/null.  Beyond "no crash" (ASan, UBSan), it checks
 * what report.h promises: a line is exactly one kind; an event carries a
 * verdict in range, a detail in range for its verdict, times only
 * where its verdict has them, a time of day exactly when it has a date;
 * a forwarded line an end in range and a length; every line is counted
 * once, forwarded lines never as connections, and the greylist's and the
 * relayed sessions' figures add up.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reportfmt.h"

static void
check_event(const struct report_event *ev)
{
	if ((unsigned)ev->verdict >= VERDICT_COUNT)
		abort();
	switch (ev->verdict) {
	case VERDICT_ALLOW:
		if (ev->detail < 0 || ev->detail >= REASON_COUNT)
			abort();
		break;
	case VERDICT_EARLY:
	case VERDICT_KNOWN_EARLY:
		if (ev->detail < 0 || ev->detail >= EARLY_COUNT || ev->ms < 0)
			abort();
		break;
	case VERDICT_PASS:
		if (ev->ms < 0 || ev->delay_ms < 0)
			abort();
		break;
	case VERDICT_HANGUP:
	case VERDICT_CACHED:
	case VERDICT_TARPIT:
		if (ev->ms < 0 || ev->detail != -1)
			abort();
		break;
	case VERDICT_TRAPPED:
	case VERDICT_GREY:
		if (ev->ms < 0 || ev->detail < -1 ||
		    ev->detail >= GREY_TEST_COUNT || ev->first > 1)
			abort();
		break;
	case VERDICT_PIPELINING:
	case VERDICT_NON_SMTP:
	case VERDICT_BARE_NEWLINE:
		if (ev->ms < 0 || ev->detail < 0 || ev->detail >= EARLY_PASS)
			abort();
		break;
	default:
		if (ev->detail != -1 || ev->ms != -1)
			abort();
	}
	if ((ev->verdict == VERDICT_GREY) != (ev->first >= 0) ||
	    (ev->verdict != VERDICT_PASS && ev->grey_ms != -1) ||
	    ev->secs < -1 || ev->secs > 86400 ||
	    (ev->secs < 0) != (ev->day == REPORT_UNDATED))
		abort();
	if (ev->known && ev->addr.family != AF_INET &&
	    ev->addr.family != AF_INET6)
		abort();
	if (ev->in != 0 || ev->out != 0)
		abort();
}

static void
check_forwarded(const struct report_event *ev)
{
	if (ev->verdict != VERDICT_COUNT || ev->detail < 0 ||
	    ev->detail >= RELAY_END_COUNT || ev->ms < 0 || ev->first != -1 ||
	    ev->stress || ev->secs < -1 || ev->secs > 86400 ||
	    (ev->secs < 0) != (ev->day == REPORT_UNDATED))
		abort();
}

/* The relayed sessions add up: by end, per period, and no connections
 * among them (sum: the total). */
static void
check_forward_sums(const struct tally *t, const struct tally_period *sum)
{
	unsigned long ends = 0, conns = 0;
	size_t i;
	int v;

	for (i = 0; i < RELAY_END_COUNT; i++)
		ends += t->fwd.ends[i];
	for (v = 0; v < VERDICT_COUNT; v++)
		conns += v == VERDICT_ERROR ? 0 : sum->n[v];
	if (ends != t->forwarded || sum->forwarded != t->forwarded ||
	    sum->unreachable != t->fwd.ends[RELAY_UNREACHABLE] ||
	    t->fwd.length.n + sum->unreachable != t->forwarded ||
	    t->fwd.deferred > t->forwarded || tally_connections(sum) != conns ||
	    conns + sum->n[VERDICT_ERROR] != t->events)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct cache_net cut = { 24, 48 };
	static FILE *null;
	struct report_clock clk;
	struct report_event ev;
	struct tally_period sum;
	struct tally t;
	size_t start = 0, i, nlines = 0;

	if (null == NULL && (null = fopen("/dev/null", "w")) == NULL)
		abort();
	tally_init(&t, size % 2 ? BY_WEEK : BY_DAY, &cut);
	report_clock_init(&clk, (time_t)1795000000);
	for (i = 0; i <= size; i++) {
		char *line;
		size_t len = i - start;
		enum line_kind k;

		if (i < size && data[i] != '\n')
			continue;
		/* An exact-size copy: any read past the line is caught. */
		if ((line = malloc(len ? len : 1)) == NULL)
			abort();
		memcpy(line, data + start, len);
		k = report_parse(&clk, line, len, &ev);
		if (k == LINE_EVENT)
			check_event(&ev);
		else if (k == LINE_FORWARDED)
			check_forwarded(&ev);
		else if (k != LINE_OTHER && k != LINE_MALFORMED &&
		    k != LINE_NOTICE)
			abort();
		tally_add(&t, k, &ev);
		nlines++;
		free(line);
		start = i + 1;
	}
	if (t.lines != nlines || t.events + t.forwarded + t.notices +
	    t.malformed + t.other != t.lines)
		abort();
	tally_finish(&t);
	if (t.grey.never > t.grey.nfirsts || t.grey.nfirsts > t.grey.first)
		abort();
	tally_total(&t, &sum);
	if (!t.failed)
		check_forward_sums(&t, &sum);
	report_print(null, &t, FORMAT_TEXT, 5);
	report_print(null, &t, FORMAT_CSV, 5);
	report_print(null, &t, FORMAT_PROMETHEUS, 5);
	tally_free(&t);
	return 0;
}
