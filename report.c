/* report.c - sendwrap's log lines read back; see report.h. */
#include "report.h"

#include <string.h>

#define TAI64_EPOCH 4611686018427387914ULL	/* 2^62 + 10: 1970, UTC */
#define SECS_MAX 1000000000LL			/* in a duration field */

/* A place in the line being read. */
struct cur {
	const char *p, *end;
};

/* The keys a report reads, or a greylist line must carry; durations
 * last. */
enum key {
	K_IP, K_PORT, K_ACTION, K_REASON, K_STRESS, K_FIRST, K_HELO, K_FROM,
	K_RCPT, K_RCPTS, K_QUIT, K_END, K_TEST, K_COMMANDS, K_LINE, K_TRAP,
	K_IN, K_OUT,
	K_AFTER, K_WAITED, K_DELAY, K_HELD, K_AGE, K_GREY, K_LENGTH, K_COUNT
};
#define K_TIMES K_AFTER

#define KEY(s) { s, sizeof s - 1 }
static const struct { const char *name; size_t len; } keys[K_COUNT] = {
	KEY("ip"), KEY("port"), KEY("action"), KEY("reason"), KEY("stress"),
	KEY("first"), KEY("helo"), KEY("from"), KEY("rcpt"), KEY("rcpts"),
	KEY("quit"), KEY("end"), KEY("test"), KEY("commands"), KEY("line"),
	KEY("trap"), KEY("in"), KEY("out"), KEY("after"), KEY("waited"),
	KEY("delay"), KEY("held"), KEY("age"), KEY("grey"), KEY("length")
};

#define HAS(k) (1u << (k))
/* What the greylist's lines always carry (greylist-spec: log lines). */
#define GREY_KEYS (HAS(K_IP) | HAS(K_PORT) | HAS(K_FIRST) | HAS(K_AGE) | \
	HAS(K_HELO) | HAS(K_FROM) | HAS(K_RCPT) | HAS(K_RCPTS) | \
	HAS(K_QUIT) | HAS(K_END))
#define TRAPPED_KEYS (HAS(K_IP) | HAS(K_PORT) | HAS(K_AGE) | HAS(K_TRAP) | \
	HAS(K_HELO) | HAS(K_FROM) | HAS(K_RCPTS) | HAS(K_QUIT) | HAS(K_END))
#define TEST_KEYS (HAS(K_IP) | HAS(K_PORT) | HAS(K_AFTER) | \
	HAS(K_COMMANDS) | HAS(K_LINE) | HAS(K_ACTION))
/* What a forwarded line always carries (listener.c, relay_over()). */
#define FORWARDED_KEYS (HAS(K_IP) | HAS(K_PORT) | HAS(K_IN) | HAS(K_OUT) | \
	HAS(K_LENGTH) | HAS(K_END))

struct value {
	const char *s;
	size_t n;
};

/* The fields of a verdict line that a report reads. */
struct fields {
	struct value v[K_TIMES];	/* as written (quotes and all) */
	int64_t ms[K_COUNT - K_TIMES];	/* durations; -1 if not there */
	unsigned seen;			/* HAS(key) */
};
#define MS(f, k) ((f)->ms[(k) - K_TIMES])

/* ------------------------------------------------------------ dates */

int32_t
report_days(int year, int month, int day)
{
	/* Counted from 1 March, so that the leap day comes last. */
	int64_t y = (int64_t)year - (month <= 2);
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return (int32_t)(era * 146097 + doe - 719468);
}

void
report_date(int32_t days, int *year, int *month, int *day)
{
	int64_t z = (int64_t)days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;

	*day = (int)(doy - (153 * mp + 2) / 5 + 1);
	*month = (int)(mp < 10 ? mp + 3 : mp - 9);
	*year = (int)(yoe + era * 400 + (*month <= 2));
}

static int
days_in_month(int year, int month)
{
	static const int n[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30,
	    31 };

	if (month == 2 && year % 4 == 0 && (year % 100 != 0 || year % 400 == 0))
		return 29;
	return n[month - 1];
}

void
report_clock_init(struct report_clock *c, time_t now)
{
	struct tm tm;

	memset(c, 0, sizeof *c);
	if (localtime_r(&now, &tm) == NULL)
		gmtime_r(&now, &tm);
	c->year = tm.tm_year + 1900;
	c->today = report_days(c->year, tm.tm_mon + 1, tm.tm_mday);
}

/* The local date of a Unix time, as tai64nlocal gives it, and the
 * seconds into it (an hour off after a DST change in the cached day: the
 * order of lines within a day is all they are read for). */
static int
local_day(struct report_clock *c, time_t t, int32_t *day, int32_t *secs)
{
	struct tm tm;
	time_t into;

	if (t >= c->cached_from && t < c->cached_to) {
		*day = c->cached_day;
		*secs = (int32_t)(t - c->cached_midnight);
		return 0;
	}
	if (localtime_r(&t, &tm) == NULL)
		return -1;
	*day = report_days(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
	/* A range safely inside the day, even on a DST change. */
	into = tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
	*secs = (int32_t)into;
	c->cached_midnight = t - into;
	c->cached_from = t - into + 3600;
	c->cached_to = t - into + 79200;
	c->cached_day = *day;
	return 0;
}

/* ------------------------------------------------------------ reading */

static int
eat(struct cur *c, char ch)
{
	if (c->p < c->end && *c->p == ch) {
		c->p++;
		return 1;
	}
	return 0;
}

static int
eat_str(struct cur *c, const char *s)
{
	size_t n = strlen(s);

	if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n) != 0)
		return 0;
	c->p += n;
	return 1;
}

static int
is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

/* Exactly n decimal digits: 0 with *v, or -1. */
static int
number(struct cur *c, int n, int *v)
{
	int i;

	if (c->end - c->p < n)
		return -1;
	for (*v = 0, i = 0; i < n; i++) {
		if (!is_digit(c->p[i]))
			return -1;
		*v = *v * 10 + (c->p[i] - '0');
	}
	c->p += n;
	return 0;
}

/* A run of bytes up to a space (at least one), and the space. */
static int
token(struct cur *c, const char **s, size_t *n)
{
	const char *start = c->p;

	while (c->p < c->end && *c->p != ' ')
		c->p++;
	*s = start;
	*n = (size_t)(c->p - start);
	return *n > 0 && eat(c, ' ') ? 0 : -1;
}

/* Past the close that ends a run with backslash escapes: 0, or -1 if
 * the line ends first. */
static int
past(struct cur *c, char close)
{
	while (c->p < c->end && *c->p != close)
		c->p += *c->p == '\\' && c->p + 1 < c->end ? 2 : 1;
	return eat(c, close) ? 0 : -1;
}

static void
skip_spaces(struct cur *c)
{
	while (c->p < c->end && *c->p == ' ')
		c->p++;
}

/* ------------------------------------------------------------ stamps */

/* "2026-11-30": the day. */
static int
iso_date(struct cur *c, int32_t *day)
{
	int y, m, d;

	if (number(c, 4, &y) || !eat(c, '-') || number(c, 2, &m) ||
	    !eat(c, '-') || number(c, 2, &d) || m < 1 || m > 12 || d < 1 ||
	    d > days_in_month(y, m))
		return -1;
	*day = report_days(y, m, d);
	return 0;
}

/* "12:34:56": the seconds into the day. */
static int
clock_time(struct cur *c, int32_t *secs)
{
	int h, m, s;

	if (number(c, 2, &h) || !eat(c, ':') || number(c, 2, &m) ||
	    !eat(c, ':') || number(c, 2, &s) || h > 23 || m > 59 || s > 60)
		return -1;
	*secs = h * 3600 + m * 60 + s;
	return 0;
}

/* "T12:34:56[.frac][Z|+hh:mm|+hhmm]" or with a space for the T; then at
 * least one space. */
static int
iso_time(struct cur *c, int32_t *secs)
{
	int v;

	if (!eat(c, 'T') && !eat(c, ' '))
		return -1;
	if (clock_time(c, secs) != 0)
		return -1;
	if (eat(c, '.') || eat(c, ','))
		while (c->p < c->end && is_digit(*c->p))
			c->p++;
	if (!eat(c, 'Z') && (eat(c, '+') || eat(c, '-'))) {
		if (number(c, 2, &v) != 0)
			return -1;
		eat(c, ':');
		if (number(c, 2, &v) != 0)
			return -1;
	}
	if (!eat(c, ' '))
		return -1;
	skip_spaces(c);
	return 0;
}

/* "Nov 30 12:34:56 " (RFC 3164): the latest such date not in the future
 * (a day of slack for clocks and time zones). */
static int
rfc3164_date(struct report_clock *clk, struct cur *c, int32_t *day,
    int32_t *secs)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	int m, d, y;

	if (c->end - c->p < 4 || c->p[3] != ' ')
		return -1;
	for (m = 0; m < 12 && memcmp(c->p, months + 3 * m, 3) != 0; m++)
		;
	if (m == 12)
		return -1;
	c->p += 4;
	eat(c, ' ');		/* "Nov  5" */
	if (number(c, c->end - c->p > 1 && is_digit(c->p[1]) ? 2 : 1,
	    &d) != 0 || !eat(c, ' ') || clock_time(c, secs) != 0 ||
	    !eat(c, ' '))
		return -1;
	/* Feb 29 goes back to the last leap year. */
	for (y = clk->year; y > clk->year - 8; y--)
		if (d >= 1 && d <= days_in_month(y, m + 1) &&
		    (*day = report_days(y, m + 1, d)) <= clk->today + 1)
			return 0;
	return -1;
}

/* "@4000000065a1b2c30a1b2c3d " (TAI64N): the local date. */
static int
tai64n_date(struct report_clock *clk, struct cur *c, int32_t *day,
    int32_t *secs)
{
	uint64_t label = 0;
	int i;

	if (!eat(c, '@') || c->end - c->p < 25)
		return -1;
	for (i = 0; i < 24; i++) {
		char ch = c->p[i];
		int v = is_digit(ch) ? ch - '0' : ch >= 'a' && ch <= 'f' ?
		    ch - 'a' + 10 : -1;

		if (v < 0)
			return -1;
		if (i < 16)
			label = label << 4 | (uint64_t)v;
	}
	c->p += 24;
	if (!eat(c, ' ') || label < TAI64_EPOCH ||
	    label - TAI64_EPOCH > (uint64_t)1 << 40)
		return -1;
	skip_spaces(c);
	return local_day(clk, (time_t)(label - TAI64_EPOCH), day, secs);
}

/* ------------------------------------------------------------ tags */

/* "sendwrap: " as standard error starts every line. */
static int
stderr_prefix(struct cur *c)
{
	return eat_str(c, "sendwrap: ");
}

/* "host sendwrap[123]: " or "host sendwrap: " (syslog, the journal);
 * then the "sendwrap: " of standard error under the journal, if any. */
static int
syslog_tag(struct cur *c)
{
	const char *host;
	size_t n;

	if (token(c, &host, &n) != 0 || !eat_str(c, "sendwrap"))
		return -1;
	if (eat(c, '[')) {
		while (c->p < c->end && is_digit(*c->p))
			c->p++;
		if (!eat(c, ']'))
			return -1;
	}
	if (!eat(c, ':') || !eat(c, ' '))
		return -1;
	stderr_prefix(c);
	return 0;
}

/* RFC 5424 after "<PRI>1 ": TIMESTAMP HOST APP PROCID MSGID SD [MSG]. */
static int
rfc5424(struct cur *c, int32_t *day, int32_t *secs)
{
	const char *s;
	size_t n;

	if (eat(c, '-')) {
		*day = REPORT_UNDATED;
		if (!eat(c, ' '))
			return -1;
	} else if (iso_date(c, day) != 0 || iso_time(c, secs) != 0)
		return -1;
	if (token(c, &s, &n) != 0 || token(c, &s, &n) != 0 ||
	    n != 8 || memcmp(s, "sendwrap", 8) != 0 ||
	    token(c, &s, &n) != 0 || token(c, &s, &n) != 0)
		return -1;
	if (!eat(c, '-')) {
		/* Structured data: [id param="value\]"]... */
		while (eat(c, '['))
			if (past(c, ']') != 0)
				return -1;
	}
	if (!eat(c, ' '))
		return -1;
	eat_str(c, "\xef\xbb\xbf");	/* a BOM before UTF-8 text */
	stderr_prefix(c);
	return 0;
}

/* Find where the message starts, the day and the seconds into it: 1 if
 * the line is sendwrap's (a date out of shape makes it another
 * program's). */
static int
locate(struct report_clock *clk, struct cur *c, int32_t *day, int32_t *secs)
{
	int v;

	*day = REPORT_UNDATED;
	*secs = -1;
	if (c->p < c->end && *c->p == '@')
		return tai64n_date(clk, c, day, secs) == 0 &&
		    stderr_prefix(c);
	if (eat(c, '<')) {
		if (number(c, 1, &v) != 0)
			return 0;
		while (c->p < c->end && is_digit(*c->p))
			c->p++;
		if (!eat(c, '>'))
			return 0;
		if (eat_str(c, "1 "))
			return rfc5424(c, day, secs) == 0;
	}
	if (c->p < c->end && is_digit(*c->p)) {
		if (iso_date(c, day) != 0 || iso_time(c, secs) != 0)
			return 0;
		return stderr_prefix(c) || syslog_tag(c) == 0;
	}
	if (rfc3164_date(clk, c, day, secs) == 0)
		return syslog_tag(c) == 0;
	*day = REPORT_UNDATED;
	*secs = -1;
	return stderr_prefix(c);
}

/* ------------------------------------------------------------ fields */

/* "5.001" (seconds, as duration_format writes them): ms, or -1. */
static int64_t
seconds(const char *s, size_t n)
{
	int64_t secs = 0, ms = 0;
	size_t i = 0, frac = 0;

	if (n == 0 || !is_digit(s[0]))
		return -1;
	for (; i < n && is_digit(s[i]); i++)
		if ((secs = secs * 10 + (s[i] - '0')) > SECS_MAX)
			return -1;
	if (i < n && s[i] == '.')
		for (i++; i < n && is_digit(s[i]); i++, frac++)
			if (frac < 3)
				ms = ms * 10 + (s[i] - '0');
	if (i != n)
		return -1;
	for (; frac < 3; frac++)
		ms *= 10;
	return secs * 1000 + ms;
}

static int
key_is(const char *k, size_t n, const char *name)
{
	return strlen(name) == n && memcmp(k, name, n) == 0;
}

/* The index of the n bytes at s in a name table, or -1. */
static int
index_of(const char *const *table, const char *s, size_t n)
{
	int i;

	for (i = 0; s && table[i] != NULL; i++)
		if (key_is(s, n, table[i]))
			return i;
	return -1;
}

/* A whole number, as the counts of the greylist lines. */
static int
is_count(const struct value *v)
{
	size_t i;

	for (i = 0; i < v->n && is_digit(v->s[i]); i++)
		;
	return v->n > 0 && v->n < 20 && i == v->n;
}

/* yes 1, no 0, else -1. */
static int
yes_no(const struct value *v)
{
	return key_is(v->s, v->n, "yes") ? 1 : key_is(v->s, v->n, "no") ?
	    0 : -1;
}

/* An end= of the greylist dialog: the responder's words. */
static int
is_end(const struct value *v)
{
	int e;

	for (e = END_QUIT; e <= END_ERROR; e++)
		if (key_is(v->s, v->n, decoy_end_name((enum decoy_end)e)))
			return 1;
	return 0;
}

/* A count of the forwarded line (decimal, 64 bits): 0 with *n, or -1. */
static int
count64(const struct value *v, uint64_t *n)
{
	size_t i;
	unsigned d;

	if (v->n == 0)
		return -1;
	for (*n = 0, i = 0; i < v->n; i++) {
		if (!is_digit(v->s[i]))
			return -1;
		d = (unsigned)(v->s[i] - '0');
		if (*n > (UINT64_MAX - d) / 10)
			return -1;
		*n = *n * 10 + d;
	}
	return 0;
}

/* An end= of a relayed session: its enum relay_end, or -1. */
static int
relay_end(const struct value *v)
{
	int e;

	for (e = 0; e < RELAY_END_COUNT; e++)
		if (key_is(v->s, v->n, relay_end_name((enum relay_end)e)))
			return e;
	return -1;
}

/* Keep the value of key k if the report reads it; -1 if it is bad. */
static int
keep(struct fields *f, const char *k, size_t kn, const char *v, size_t vn)
{
	int i;

	for (i = 0; i < K_COUNT; i++)
		if (keys[i].len == kn && memcmp(keys[i].name, k, kn) == 0)
			break;
	if (i == K_COUNT)
		return 0;
	f->seen |= HAS(i);
	if (i >= K_TIMES)
		return (f->ms[i - K_TIMES] = seconds(v, vn)) < 0 ? -1 : 0;
	f->v[i].s = v;
	f->v[i].n = vn;
	return 0;
}

/* " key=value" repeated to the end of the line: 0, or -1. */
static int
read_fields(struct cur *c, struct fields *f)
{
	while (c->p < c->end) {
		const char *k, *v;

		if (!eat(c, ' '))
			return -1;
		for (k = c->p; c->p < c->end && *c->p >= 'a' && *c->p <= 'z';)
			c->p++;
		if (c->p == k || !eat(c, '='))
			return -1;
		v = c->p;
		if (eat(c, '"')) {
			if (past(c, '"') != 0)
				return -1;
		} else
			while (c->p < c->end && *c->p != ' ' && *c->p != '"')
				c->p++;
		if (keep(f, k, (size_t)(v - 1 - k), v, (size_t)(c->p - v)) != 0)
			return -1;
	}
	return 0;
}

/* A greylist line: every field of need there, those the report reads in
 * shape; 0 or -1. */
static int
greylist_fields(struct report_event *ev, const struct fields *f,
    unsigned need)
{
	if ((f->seen & need) != need ||
	    ((need & HAS(K_RCPTS)) && !is_count(&f->v[K_RCPTS])) ||
	    ((need & HAS(K_COMMANDS)) && !is_count(&f->v[K_COMMANDS])) ||
	    ((need & HAS(K_QUIT)) && yes_no(&f->v[K_QUIT]) < 0) ||
	    ((need & HAS(K_END)) && !is_end(&f->v[K_END])))
		return -1;
	/* test=: a test failed under -x pass, the dialog went on */
	if (ev->verdict == VERDICT_GREY || ev->verdict == VERDICT_TRAPPED) {
		ev->ms = MS(f, K_AGE);
		if (f->seen & HAS(K_TEST) && (ev->detail = index_of(
		    grey_test_names, f->v[K_TEST].s, f->v[K_TEST].n)) < 0)
			return -1;
	}
	switch (ev->verdict) {
	case VERDICT_GREY:
		return (ev->first = yes_no(&f->v[K_FIRST])) < 0 ? -1 : 0;
	case VERDICT_TRAPPED:
		return 0;
	default:		/* a failed test: not -x pass, it goes on */
		ev->ms = MS(f, K_AFTER);
		ev->detail = index_of(early_names, f->v[K_ACTION].s,
		    f->v[K_ACTION].n);
		return ev->detail < 0 || ev->detail == EARLY_PASS ? -1 : 0;
	}
}

/* The client's address, if ip= is one: 0, or -1 if there is no ip=. */
static int
address(struct report_event *ev, const struct fields *f)
{
	const struct value *ip = &f->v[K_IP];
	char text[ADDR_TEXT_MAX];

	if (!(f->seen & HAS(K_IP)))
		return -1;
	if (ip->n < sizeof text) {
		memcpy(text, ip->s, ip->n);
		text[ip->n] = '\0';
		ev->known = addr_parse(text, &ev->addr) == 0;
	}
	return 0;
}

/* A forwarded line's fields, into ev: 0, or -1 (malformed). */
static int
forwarded(struct report_event *ev, const struct fields *f)
{
	ev->verdict = VERDICT_COUNT;
	if ((f->seen & FORWARDED_KEYS) != FORWARDED_KEYS ||
	    address(ev, f) != 0 || count64(&f->v[K_IN], &ev->in) != 0 ||
	    count64(&f->v[K_OUT], &ev->out) != 0)
		return -1;
	ev->ms = MS(f, K_LENGTH);
	return (ev->detail = relay_end(&f->v[K_END])) < 0 ? -1 : 0;
}

/* What each verdict must carry, into ev: 0, or -1 (malformed). */
static int
fill(struct report_event *ev, const struct fields *f)
{
	if (address(ev, f) != 0)
		return -1;
	ev->stress = key_is(f->v[K_STRESS].s, f->v[K_STRESS].n, "1");
	switch (ev->verdict) {
	case VERDICT_PASS:
		ev->ms = MS(f, K_WAITED);
		ev->delay_ms = MS(f, K_DELAY);
		ev->grey_ms = MS(f, K_GREY);
		return ev->ms < 0 || ev->delay_ms < 0 ? -1 : 0;
	case VERDICT_ALLOW:
		ev->detail = index_of(reason_names, f->v[K_REASON].s,
		    f->v[K_REASON].n);
		return ev->detail < 0 ? -1 : 0;
	case VERDICT_EARLY:
	case VERDICT_KNOWN_EARLY:
		ev->detail = index_of(early_names, f->v[K_ACTION].s,
		    f->v[K_ACTION].n);
		ev->ms = MS(f, ev->verdict == VERDICT_EARLY ? K_AFTER : K_AGE);
		return ev->detail < 0 || ev->ms < 0 ? -1 : 0;
	case VERDICT_HANGUP:
		return (ev->ms = MS(f, K_AFTER)) < 0 ? -1 : 0;
	case VERDICT_CACHED:
		return (ev->ms = MS(f, K_AGE)) < 0 ? -1 : 0;
	case VERDICT_TARPIT:
		return (ev->ms = MS(f, K_HELD)) < 0 ? -1 : 0;
	case VERDICT_GREY:
		return greylist_fields(ev, f, GREY_KEYS);
	case VERDICT_TRAPPED:
		return greylist_fields(ev, f, TRAPPED_KEYS);
	case VERDICT_PIPELINING:
	case VERDICT_NON_SMTP:
	case VERDICT_BARE_NEWLINE:
		return greylist_fields(ev, f, TEST_KEYS);
	default:
		return 0;
	}
}

/* The fields after the word: 0, or -1. */
static int
fields(struct cur *c, struct fields *f)
{
	int k;

	memset(f, 0, sizeof *f);
	for (k = 0; k < K_COUNT - K_TIMES; k++)
		f->ms[k] = -1;
	return read_fields(c, f);
}

/* The message: its word, then its fields. */
static enum line_kind
message(struct cur *c, struct report_event *ev)
{
	static const char *const notices[] = { "listening", "reload",
	    "stopping", NULL };
	struct fields f;
	const char *w = c->p;
	size_t n;
	int v;

	while (c->p < c->end && ((*c->p >= 'a' && *c->p <= 'z') ||
	    *c->p == '-'))
		c->p++;
	if (c->p < c->end && *c->p != ' ')
		return LINE_MALFORMED;
	n = (size_t)(c->p - w);
	if (index_of(notices, w, n) >= 0)
		return LINE_NOTICE;
	if (key_is(w, n, "forwarded"))
		return fields(c, &f) != 0 || forwarded(ev, &f) != 0 ?
		    LINE_MALFORMED : LINE_FORWARDED;
	if ((v = index_of(verdict_names, w, n)) < 0)
		return LINE_MALFORMED;
	ev->verdict = (enum verdict)v;
	if (ev->verdict == VERDICT_ERROR)
		return LINE_EVENT;	/* free text after the word */
	return fields(c, &f) != 0 || fill(ev, &f) != 0 ? LINE_MALFORMED :
	    LINE_EVENT;
}

enum line_kind
report_parse(struct report_clock *clk, const char *line, size_t len,
    struct report_event *ev)
{
	struct cur c = { line, line + len };
	int32_t day, secs;

	if (len > 0 && line[len - 1] == '\r')
		c.end--;
	if (!locate(clk, &c, &day, &secs))
		return LINE_OTHER;
	memset(ev, 0, sizeof *ev);
	ev->day = day;
	ev->secs = secs;
	ev->detail = ev->first = -1;
	ev->ms = ev->delay_ms = ev->grey_ms = -1;
	return message(&c, ev);
}
