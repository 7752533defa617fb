/* reportfmt.c - sendwrap --report; see reportfmt.h. */
#include "reportfmt.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "admin.h"
#include "duration.h"

#define READ_CHUNK (1 << 16)
#define CATCH_MAX (7 + TALLY_DELAYS)
#define TOP_MAX 1000

/* ------------------------------------------------------------ reading */

/* What a file is read into. */
struct reader {
	struct report_clock clock;
	struct tally *t;
	char line[REPORT_LINE_MAX];	/* a line split across reads */
	size_t len;
};

static void
feed(struct reader *r, const char *s, size_t n)
{
	struct report_event ev;

	tally_add(r->t, report_parse(&r->clock, s, n, &ev), &ev);
}

/* Keep n more bytes of a line that goes on (cut at REPORT_LINE_MAX). */
static void
keep(struct reader *r, const char *s, size_t n)
{
	if (n > sizeof r->line - r->len)
		n = sizeof r->line - r->len;
	memcpy(r->line + r->len, s, n);
	r->len += n;
}

/* Every whole line in buf; the rest is kept for the next read. */
static void
lines(struct reader *r, const char *buf, size_t n)
{
	const char *p = buf, *end = buf + n, *nl;

	while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		if (r->len == 0) {
			feed(r, p, (size_t)(nl - p));
		} else {
			keep(r, p, (size_t)(nl - p));
			feed(r, r->line, r->len);
			r->len = 0;
		}
		p = nl + 1;
	}
	keep(r, p, (size_t)(end - p));
}

/* Read one file (or standard input): 0, or -1 (said on stderr). */
static int
read_file(struct reader *r, const char *path)
{
	static char buf[READ_CHUNK];
	int fd = strcmp(path, "-") == 0 ? dup(0) : open(path, O_RDONLY |
	    O_CLOEXEC | O_NOCTTY), n, err;
	const char *why;
	gzFile z;

	if (fd < 0 || (z = gzdopen(fd, "rb")) == NULL) {
		fprintf(stderr, "sendwrap: %s: %s\n", path, fd < 0 ?
		    strerror(errno) : "out of memory");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	gzbuffer(z, 1 << 17);
	r->len = 0;
	while ((n = gzread(z, buf, sizeof buf)) > 0)
		lines(r, buf, (size_t)n);
	if (r->len > 0)
		feed(r, r->line, r->len);
	/* A gzip'd file cut short ends like any other, but for its error
	 * (Z_BUF_ERROR): the lines before the cut are counted all the same. */
	why = gzerror(z, &err);
	if (n < 0 || err != Z_OK)
		fprintf(stderr, "sendwrap: %s: %s\n", path, err == Z_ERRNO ?
		    strerror(errno) : err == Z_BUF_ERROR ? "cut short "
		    "(unexpected end of file)" : why);
	gzclose(z);
	return n < 0 || err != Z_OK ? -1 : 0;
}

int
report_run(const struct config *cfg)
{
	static char *stdin_only[] = { "-", NULL };
	char **files = cfg->program ? cfg->program : stdin_only;
	static struct reader r;
	struct tally t;
	int status = 0;

	tally_init(&t, cfg->report_by, &cfg->cache.net);
	report_clock_init(&r.clock, time(NULL));
	r.t = &t;
	for (; *files; files++)
		if (read_file(&r, *files) != 0)
			status = EXIT_TEMP;
	tally_finish(&t);
	if (t.failed) {
		fprintf(stderr, "sendwrap: out of memory: the report is "
		    "short\n");
		status = EXIT_TEMP;
	}
	report_print(stdout, &t, cfg->report_format, cfg->report_top);
	tally_free(&t);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "sendwrap: cannot write: %s\n", strerror(errno));
		status = EXIT_TEMP;
	}
	return status;
}

/* ------------------------------------------------------------ figures */

static double
pct(unsigned long n, unsigned long of)
{
	return of ? 100.0 * (double)n / (double)of : 0.0;
}

/* Seconds as the log writes them ("5.001"), or whole ("30"). */
static void
secs(uint64_t ms, char *buf, size_t size)
{
	duration_format(ms, buf, size);
}

static void
whole_secs(uint64_t ms, char *buf, size_t size)
{
	if (ms % 1000 == 0)
		snprintf(buf, size, "%llu", (unsigned long long)(ms / 1000));
	else
		duration_format(ms, buf, size);
}

/* A count of bytes in the unit that suits it: "512 B", "12.3 MB" (SI). */
static void
human_bytes(uint64_t n, char *buf, size_t size)
{
	static const char units[][3] = { "kB", "MB", "GB", "TB", "PB", "EB" };
	double v = (double)n / 1000;
	size_t u = 0;

	if (n < 1000) {
		snprintf(buf, size, "%llu B", (unsigned long long)n);
		return;
	}
	/* 999.95 would print as 1000.0 */
	for (; v >= 999.95 && u + 1 < sizeof units / sizeof units[0]; u++)
		v /= 1000;
	snprintf(buf, size, "%.1f %s", v, units[u]);
}

/* The catch curve's points: the fixed ones and the delays seen, in ms,
 * sorted, each once; returns how many. */
static size_t
catch_points(const struct tally *t, uint64_t *pt)
{
	static const unsigned fixed[] = REPORT_CATCH_POINTS;
	size_t n = 0, i, j, k;

	for (i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		pt[n++] = (uint64_t)fixed[i] * 1000;
	for (i = 0; i < t->ndelays; i++) {
		for (j = 0; j < n && pt[j] < t->delays[i]; j++)
			;
		if (j < n && pt[j] == t->delays[i])
			continue;
		for (k = n++; k > j; k--)
			pt[k] = pt[k - 1];
		pt[j] = t->delays[i];
	}
	return n;
}

static int
is_delay(const struct tally *t, uint64_t ms)
{
	size_t i;

	for (i = 0; i < t->ndelays; i++)
		if (t->delays[i] == ms)
			return 1;
	return 0;
}

/* "203.0.113.9", "2001:db8:1:2::/64" */
static void
net_name(const struct tally *t, const struct addr *a, char *buf, size_t size)
{
	unsigned len = a->family == AF_INET ? t->cut.v4len : t->cut.v6len;
	char ip[ADDR_TEXT_MAX];

	addr_format(a, ip, sizeof ip);
	if (len == addr_bits(a->family))
		snprintf(buf, size, "%s", ip);
	else
		snprintf(buf, size, "%s/%u", ip, len);
}

/* ------------------------------------------------------------ text */

/* The verdict columns of the text table, in order. */
static const enum verdict columns[] = { VERDICT_PASS, VERDICT_ALLOW,
	VERDICT_CACHED, VERDICT_EARLY, VERDICT_KNOWN_EARLY, VERDICT_HANGUP,
	VERDICT_TARPIT, VERDICT_DECOY, VERDICT_BUSY, VERDICT_ERROR };
#define NCOLUMNS (sizeof columns / sizeof columns[0])

/* The greylist dialog's connections: grey, trapped and the tests. */
static unsigned long
greylisted(const struct tally_period *p)
{
	unsigned long n = 0;
	int v;

	for (v = VERDICT_GREY; v <= VERDICT_BARE_NEWLINE; v++)
		n += p->n[v];
	return n;
}

/* grey: with a column of the greylist dialog's connections; fwd: of the
 * relayed sessions. */
static void
text_row(FILE *f, const char *label, const struct tally_period *p, int grey,
    int fwd)
{
	size_t i;

	fprintf(f, "%-11s %11lu", label, tally_connections(p));
	for (i = 0; i < NCOLUMNS; i++)
		fprintf(f, " %*lu", i == 4 ? 11 : 7, p->n[columns[i]]);
	if (grey)
		fprintf(f, " %8lu", greylisted(p));
	if (fwd)
		fprintf(f, " %9lu", p->forwarded);
	fprintf(f, " %8lu\n", p->stressed);
}

static void
text_verdicts(FILE *f, const struct tally *t, const struct tally_period *sum)
{
	unsigned long all = tally_connections(sum);
	int grey = tally_greylisted(t, sum), fwd = t->forwarded > 0;
	char label[32];
	size_t i;

	fprintf(f, "\nConnections by verdict (by %s; error lines%s are "
	    "beside the verdicts)\n\n%-11s %11s", report_by_names[t->by],
	    fwd ? " and forwarded sessions" : "",
	    t->by == BY_DAY ? "date" : "week", "connections");
	for (i = 0; i < NCOLUMNS; i++)
		fprintf(f, " %*s", i == 4 ? 11 : 7, verdict_names[columns[i]]);
	fprintf(f, "%s%s %8s\n", grey ? " greylist" : "",
	    fwd ? " forwarded" : "", "stressed");
	for (i = 0; i < t->nperiods; i++) {
		tally_label(t, t->periods[i].key, label, sizeof label);
		text_row(f, label, &t->periods[i], grey, fwd);
	}
	text_row(f, "total", sum, grey, fwd);
	fprintf(f, "%-11s %10.1f%%", "share", all ? 100.0 : 0.0);
	for (i = 0; i < NCOLUMNS; i++)
		fprintf(f, " %*.1f%%", i == 4 ? 10 : 6,
		    pct(sum->n[columns[i]], all));
	if (grey)
		fprintf(f, " %7.1f%%", pct(greylisted(sum), all));
	if (fwd)
		fprintf(f, " %8.1f%%", pct(sum->forwarded, all));
	fprintf(f, " %7.1f%%\n", pct(sum->stressed, all));
}

/* A breakdown: count and share of all connections, one line each. */
static void
text_breakdown(FILE *f, const char *title, const char *const *names,
    const unsigned long *n, size_t count, unsigned long all)
{
	size_t i;

	fprintf(f, "\n%-36s %9s %7s\n", title, "count", "share");
	for (i = 0; i < count; i++)
		fprintf(f, "  %-34s %9lu %6.1f%%\n", names[i], n[i],
		    pct(n[i], all));
}

static void
text_catch(FILE *f, const struct tally *t)
{
	uint64_t pt[CATCH_MAX];
	size_t n = catch_points(t, pt), i;
	char s[32];

	fprintf(f, "\nCatch curve: talked (early) or hung up within each time "
	    "into the wait\n(* a delay configured; clients still waiting at "
	    "the end of the delay passed, so\nno share past it is seen)\n\n"
	    "%12s %9s %10s %9s %12s\n", "within", "early", "of early",
	    "hangup", "of hangups");
	for (i = 0; i < n; i++) {
		unsigned long e = tally_within(&t->early, pt[i]);
		unsigned long h = tally_within(&t->hangup, pt[i]);

		whole_secs(pt[i], s, sizeof s);
		fprintf(f, "%9s s%s %9lu %9.1f%% %9lu %11.1f%%\n", s,
		    is_delay(t, pt[i]) ? "*" : " ", e, pct(e, t->early.n), h,
		    pct(h, t->hangup.n));
	}
	fprintf(f, "%12s %9lu %9.1f%% %9lu %11.1f%%\n", "all", t->early.n,
	    t->early.n ? 100.0 : 0.0, t->hangup.n, t->hangup.n ? 100.0 : 0.0);
}

static void
text_cost(FILE *f, const struct tally *t, const struct tally_period *sum)
{
	char med[32], p90[32], max[32];

	secs(tally_quantile(&t->waited, 0.5), med, sizeof med);
	secs(tally_quantile(&t->waited, 0.9), p90, sizeof p90);
	secs(t->waited.max_ms, max, sizeof max);
	fprintf(f, "\nCost to good senders\n\n"
	    "  waited, then passed               %9lu\n"
	    "    their wait: median %s s, 90th percentile %s s, max %s s\n"
	    "  spared the wait by the pass cache %9lu (cached)\n"
	    "  let in at once                    %9lu (allow)\n",
	    t->waited.n, med, p90, max, sum->n[VERDICT_CACHED],
	    sum->n[VERDICT_ALLOW]);
	if (sum->n[VERDICT_TARPIT] || sum->n[VERDICT_DECOY])
		fprintf(f, "\nDecoys: the tar pit held %lu connections for "
		    "%.2f connection-hours; the responder had %lu sessions\n",
		    sum->n[VERDICT_TARPIT], (double)sum->held_ms / 3.6e6,
		    sum->n[VERDICT_DECOY]);
}

/* Of the first attempts, what came of them; the failed tests. */
static void
text_grey(FILE *f, const struct tally *t, const struct tally_period *sum)
{
	const struct tally_grey *g = &t->grey;
	char med[32], p90[32];
	size_t k, a;

	secs(tally_quantile(&g->back, 0.5), med, sizeof med);
	secs(tally_quantile(&g->back, 0.9), p90, sizeof p90);
	fprintf(f, "\nGreylisting\n\n"
	    "  first attempts                    %9lu\n"
	    "  came back and passed              %9lu %6.1f%% of first "
	    "attempts\n"
	    "    after: median %s s, 90th percentile %s s\n"
	    "  never came back                   %9lu %6.1f%% of %lu first "
	    "attempts followed\n"
	    "  retries too soon                  %9lu\n"
	    "  trapped                           %9lu\n",
	    g->first, g->back.n, pct(g->back.n, g->first), med, p90,
	    g->never, pct(g->never, g->nfirsts), (unsigned long)g->nfirsts,
	    g->too_soon, sum->n[VERDICT_TRAPPED]);
	if (g->untracked)
		fprintf(f, "  (%lu lines of no address, or past %u networks "
		    "or %u first attempts, not followed)\n", g->untracked,
		    TALLY_PEERS_MAX, TALLY_FIRSTS_MAX);
	fprintf(f, "\n  %-32s", "failed tests, by action");
	for (a = 0; a < EARLY_COUNT; a++)
		fprintf(f, " %8s", early_names[a]);
	for (k = 0; k < GREY_TEST_COUNT; k++) {
		fprintf(f, "\n    %-30s", grey_test_names[k]);
		for (a = 0; a < EARLY_COUNT; a++)
			fprintf(f, " %8lu", g->tests[k][a]);
	}
	fprintf(f, "\n");
}

/* The relayed sessions: how they ended, their lengths, the bytes. */
static void
text_forward(FILE *f, const struct tally *t, const struct tally_period *sum)
{
	const struct tally_forward *fw = &t->fwd;
	char med[32], p90[32], max[32], in[32], out[32];
	size_t k;

	secs(tally_quantile(&fw->length, 0.5), med, sizeof med);
	secs(tally_quantile(&fw->length, 0.9), p90, sizeof p90);
	secs(fw->length.max_ms, max, sizeof max);
	human_bytes(sum->in, in, sizeof in);
	human_bytes(sum->out, out, sizeof out);
	fprintf(f, "\nForwarded to the MTA\n\n"
	    "  sessions                          %9lu\n"
	    "  could not reach it (unreachable)  %9lu %6.1f%% of sessions\n"
	    "  told 421 4.3.0 to come back later %9lu %6.1f%% of sessions\n"
	    "  reached the MTA                   %9lu\n"
	    "    their length: median %s s, 90th percentile %s s, max %s s\n"
	    "  bytes from clients to the MTA     %9s\n"
	    "  bytes from the MTA to clients     %9s\n"
	    "\n  %-33s %9s %7s\n", sum->forwarded, sum->unreachable,
	    pct(sum->unreachable, sum->forwarded), fw->deferred,
	    pct(fw->deferred, sum->forwarded), fw->length.n, med, p90, max,
	    in, out, "sessions by end", "count", "share");
	for (k = 0; k < RELAY_END_COUNT; k++)
		fprintf(f, "    %-31s %9lu %6.1f%%\n",
		    relay_end_name((enum relay_end)k), fw->ends[k],
		    pct(fw->ends[k], sum->forwarded));
}

static void
text_top(FILE *f, const struct tally *t, unsigned top)
{
	static struct tally_net best[TOP_MAX];
	size_t n = tally_top(t, best, top < TOP_MAX ? top : TOP_MAX), i;
	char name[PREFIX_TEXT_MAX];

	if (top == 0)
		return;
	fprintf(f, "\nTop %u networks by early talk\n\n%9s %7s  %s\n", top,
	    "early", "share", "network");
	for (i = 0; i < n; i++) {
		net_name(t, &best[i].net, name, sizeof name);
		fprintf(f, "%9lu %6.1f%%  %s\n", best[i].n,
		    pct(best[i].n, t->early.n), name);
	}
	if (t->untracked)
		fprintf(f, "%9lu          (networks past %u not counted)\n",
		    t->untracked, TALLY_NETS_MAX);
}

static void
print_text(FILE *f, const struct tally *t, unsigned top)
{
	struct tally_period sum;
	char first[32], last[32];
	unsigned long all;
	size_t n;

	tally_total(t, &sum);
	all = tally_connections(&sum);
	fprintf(f, "sendwrap report\n\n%lu lines read: %lu sendwrap verdicts "
	    "and errors, ", t->lines, t->events);
	if (t->forwarded)
		fprintf(f, "%lu forwarded sessions, ", t->forwarded);
	fprintf(f, "%lu notices, %lu malformed, %lu of other programs\n",
	    t->notices, t->malformed, t->other);
	n = t->nperiods;
	if (n > 0 && t->periods[n - 1].key == REPORT_UNDATED)
		n--;		/* last, and no date to tell */
	if (n > 0 && t->periods[n - 1].key == TALLY_OVERFLOW)
		n--;		/* before it */
	if (n > 0) {
		tally_label(t, t->periods[0].key, first, sizeof first);
		tally_label(t, t->periods[n - 1].key, last, sizeof last);
		fprintf(f, "from %s to %s", first, last);
	}
	fprintf(f, "%s%lu connections\n", n ? ": " : "", all);
	if (t->overflow)
		fprintf(f, "%lu lines of %ss past the first %u are counted "
		    "together in the row overflow\n", t->overflow,
		    report_by_names[t->by], TALLY_PERIODS_MAX);
	text_verdicts(f, t, &sum);
	text_breakdown(f, "Let in at once (allow), by reason", reason_names,
	    sum.allow_by, REASON_COUNT, all);
	text_breakdown(f, "Early talkers, by action", early_names,
	    sum.early_by, EARLY_COUNT, all);
	text_breakdown(f, "Known early talkers, by action", early_names,
	    sum.known_by, EARLY_COUNT, all);
	text_catch(f, t);
	text_cost(f, t, &sum);
	if (tally_greylisted(t, &sum))
		text_grey(f, t, &sum);
	if (t->forwarded)
		text_forward(f, t, &sum);
	text_top(f, t, top);
}

/* ------------------------------------------------------------ csv */

/* A verdict's rows by reason or action (names: NULL-terminated). */
static void
csv_by(FILE *f, const char *label, const char *verdict,
    const char *const *names, const unsigned long *n, unsigned long all)
{
	size_t i;

	for (i = 0; names[i]; i++)
		fprintf(f, "verdicts,%s,%s,%s,%lu,%.1f\n", label, verdict,
		    names[i], n[i], pct(n[i], all));
}

/* fwd: with the rows of the relayed sessions. */
static void
csv_period(FILE *f, const char *label, const struct tally_period *p, int fwd)
{
	unsigned long all = tally_connections(p);
	size_t i;

	fprintf(f, "verdicts,%s,connections,,%lu,100.0\n", label, all);
	for (i = 0; i < VERDICT_COUNT; i++)
		fprintf(f, "verdicts,%s,%s,,%lu,%.1f\n", label,
		    verdict_names[i], p->n[i], pct(p->n[i], all));
	csv_by(f, label, "allow", reason_names, p->allow_by, all);
	csv_by(f, label, "early", early_names, p->early_by, all);
	csv_by(f, label, "known-early", early_names, p->known_by, all);
	fprintf(f, "verdicts,%s,stressed,,%lu,%.1f\n", label, p->stressed,
	    pct(p->stressed, all));
	fprintf(f, "held,%s,tarpit,hours,%.3f,\n", label,
	    (double)p->held_ms / 3.6e6);
	if (!fwd)
		return;
	fprintf(f, "forwarded,%s,sessions,,%lu,%.1f\n"
	    "forwarded,%s,unreachable,,%lu,%.1f\n"
	    "forwarded,%s,in,bytes,%llu,\nforwarded,%s,out,bytes,%llu,\n",
	    label, p->forwarded, pct(p->forwarded, all), label,
	    p->unreachable, pct(p->unreachable, p->forwarded), label,
	    (unsigned long long)p->in, label, (unsigned long long)p->out);
}

/* One curve's rows, together (a plot reads them as one line). */
static void
csv_catch(FILE *f, const struct tally *t, const char *name,
    const struct tally_hist *h)
{
	uint64_t pt[CATCH_MAX];
	size_t n = catch_points(t, pt), i;
	char s[32];

	for (i = 0; i < n; i++) {
		unsigned long k = tally_within(h, pt[i]);

		secs(pt[i], s, sizeof s);
		fprintf(f, "catch,total,%s,%s,%lu,%.1f\n", name, s, k,
		    pct(k, h->n));
	}
}

static void
csv_grey(FILE *f, const struct tally *t)
{
	const struct tally_grey *g = &t->grey;
	char s[32];
	size_t k, a;

	fprintf(f, "grey,total,first,,%lu,\ngrey,total,passed,,%lu,%.1f\n",
	    g->first, g->back.n, pct(g->back.n, g->first));
	secs(tally_quantile(&g->back, 0.5), s, sizeof s);
	fprintf(f, "grey,total,passed,median,%s,\n", s);
	secs(tally_quantile(&g->back, 0.9), s, sizeof s);
	fprintf(f, "grey,total,passed,p90,%s,\n", s);
	fprintf(f, "grey,total,never,,%lu,%.1f\ngrey,total,followed,,%lu,\n"
	    "grey,total,untracked,,%lu,\ngrey,total,too-soon,,%lu,\n",
	    g->never, pct(g->never, g->nfirsts), (unsigned long)g->nfirsts,
	    g->untracked, g->too_soon);
	for (k = 0; k < GREY_TEST_COUNT; k++)
		for (a = 0; a < EARLY_COUNT; a++)
			fprintf(f, "grey,total,%s,%s,%lu,\n",
			    grey_test_names[k], early_names[a],
			    g->tests[k][a]);
}

/* Times' rows: how many, median, p90, max (what: "table,period,name"). */
static void
csv_times(FILE *f, const char *what, const struct tally_hist *h)
{
	char s[32];

	fprintf(f, "%s,count,%lu,\n", what, h->n);
	secs(tally_quantile(h, 0.5), s, sizeof s);
	fprintf(f, "%s,median,%s,\n", what, s);
	secs(tally_quantile(h, 0.9), s, sizeof s);
	fprintf(f, "%s,p90,%s,\n", what, s);
	secs(h->max_ms, s, sizeof s);
	fprintf(f, "%s,max,%s,\n", what, s);
}

/* The relayed sessions of the whole (by period: csv_period()). */
static void
csv_forward(FILE *f, const struct tally *t, const struct tally_period *sum)
{
	const struct tally_forward *fw = &t->fwd;
	size_t k;

	for (k = 0; k < RELAY_END_COUNT; k++)
		fprintf(f, "forwarded,total,end,%s,%lu,%.1f\n",
		    relay_end_name((enum relay_end)k), fw->ends[k],
		    pct(fw->ends[k], sum->forwarded));
	fprintf(f, "forwarded,total,deferred,,%lu,%.1f\n", fw->deferred,
	    pct(fw->deferred, sum->forwarded));
	csv_times(f, "forwarded,total,length", &fw->length);
}

static void
print_csv(FILE *f, const struct tally *t, unsigned top)
{
	static struct tally_net best[TOP_MAX];
	struct tally_period sum;
	char label[32], name[PREFIX_TEXT_MAX];
	size_t i, n;

	fprintf(f, "table,period,name,detail,value,percent\n");
	fprintf(f, "lines,total,read,,%lu,\nlines,total,sendwrap,,%lu,\n"
	    "lines,total,notices,,%lu,\nlines,total,malformed,,%lu,\n"
	    "lines,total,other,,%lu,\nlines,total,overflow,,%lu,\n"
	    "lines,total,forwarded,,%lu,\n",
	    t->lines, t->events, t->notices, t->malformed, t->other,
	    t->overflow, t->forwarded);
	for (i = 0; i < t->nperiods; i++) {
		tally_label(t, t->periods[i].key, label, sizeof label);
		csv_period(f, label, &t->periods[i], t->forwarded > 0);
	}
	tally_total(t, &sum);
	csv_period(f, "total", &sum, t->forwarded > 0);
	csv_catch(f, t, "early", &t->early);
	csv_catch(f, t, "hangup", &t->hangup);
	csv_times(f, "waits,total,pass", &t->waited);
	if (tally_greylisted(t, &sum))
		csv_grey(f, t);
	if (t->forwarded)
		csv_forward(f, t, &sum);
	n = tally_top(t, best, top < TOP_MAX ? top : TOP_MAX);
	for (i = 0; i < n; i++) {
		net_name(t, &best[i].net, name, sizeof name);
		fprintf(f, "top,total,early,%s,%lu,%.1f\n", name, best[i].n,
		    pct(best[i].n, t->early.n));
	}
}

/* ------------------------------------------------------------ prometheus */

static void
prom_family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
prom_histogram(FILE *f, const char *name, const char *help,
    const struct tally_hist *h)
{
	static const unsigned le[] = { 1, 2, 5, 10, 20, 30, 60, 120, 300 };
	char sum[32];
	size_t i;

	prom_family(f, name, "histogram", help);
	for (i = 0; i < sizeof le / sizeof le[0]; i++)
		fprintf(f, "%s_bucket{le=\"%u\"} %lu\n", name, le[i],
		    tally_within(h, (uint64_t)le[i] * 1000));
	secs(h->sum_ms, sum, sizeof sum);
	fprintf(f, "%s_bucket{le=\"+Inf\"} %lu\n%s_sum %s\n%s_count %lu\n",
	    name, h->n, name, sum, name, h->n);
}

/* sendwrap_connections_total, by verdict and reason or action. */
static void
prom_connections(FILE *f, const struct tally_period *sum)
{
	size_t i, k;

	prom_family(f, "sendwrap_connections_total", "counter",
	    "Connections by verdict in the logs read (error lines are "
	    "sendwrap_errors_total).");
	for (i = 0; i < VERDICT_COUNT; i++) {
		const unsigned long *by = i == VERDICT_ALLOW ? sum->allow_by :
		    i == VERDICT_EARLY ? sum->early_by :
		    i == VERDICT_KNOWN_EARLY ? sum->known_by : NULL;
		const char *const *names = i == VERDICT_ALLOW ? reason_names :
		    early_names;

		if (i == VERDICT_ERROR)
			continue;
		if (by == NULL) {
			fprintf(f, "sendwrap_connections_total{verdict=\"%s\"} "
			    "%lu\n", verdict_names[i], sum->n[i]);
			continue;
		}
		for (k = 0; names[k]; k++)
			fprintf(f, "sendwrap_connections_total{verdict=\"%s\","
			    "%s=\"%s\"} %lu\n", verdict_names[i],
			    i == VERDICT_ALLOW ? "reason" : "action", names[k],
			    by[k]);
	}
}

/* A counter family of one sample. */
static void
prom_counter(FILE *f, const char *name, const char *help, unsigned long n)
{
	prom_family(f, name, "counter", help);
	fprintf(f, "%s %lu\n", name, n);
}

static void
prom_grey(FILE *f, const struct tally *t, const struct tally_period *sum)
{
	const struct tally_grey *g = &t->grey;
	char s[32];
	size_t k, a;

	prom_counter(f, "sendwrap_grey_first_attempts_total", "Greylisted "
	    "first attempts (grey first=yes).", g->first);
	prom_counter(f, "sendwrap_grey_passed_total", "Greylisted clients "
	    "that came back and passed (pass grey=).", g->back.n);
	prom_counter(f, "sendwrap_grey_never_back_total", "First attempts "
	    "followed of which no return is in the logs read.", g->never);
	prom_counter(f, "sendwrap_grey_followed_total", "First attempts "
	    "followed to see whether they came back.", g->nfirsts);
	prom_counter(f, "sendwrap_grey_untracked_total", "Greylisting lines "
	    "not followed (no address, or past the limits).", g->untracked);
	prom_counter(f, "sendwrap_grey_too_soon_total", "Greylisted retries "
	    "before --grey-pass (grey first=no).", g->too_soon);
	prom_counter(f, "sendwrap_grey_trapped_total", "Greylisted clients "
	    "that named a trap address.", sum->n[VERDICT_TRAPPED]);
	prom_family(f, "sendwrap_grey_failed_tests_total", "counter",
	    "Failed tests of the greylist dialog, by -x action (pass: the "
	    "session went on).");
	for (k = 0; k < GREY_TEST_COUNT; k++)
		for (a = 0; a < EARLY_COUNT; a++)
			fprintf(f, "sendwrap_grey_failed_tests_total{test=\"%s\","
			    "action=\"%s\"} %lu\n", grey_test_names[k],
			    early_names[a], g->tests[k][a]);
	prom_family(f, "sendwrap_grey_back_seconds", "summary", "How long "
	    "greylisted clients that passed took to come back.");
	secs(tally_quantile(&g->back, 0.5), s, sizeof s);
	fprintf(f, "sendwrap_grey_back_seconds{quantile=\"0.5\"} %s\n", s);
	secs(tally_quantile(&g->back, 0.9), s, sizeof s);
	fprintf(f, "sendwrap_grey_back_seconds{quantile=\"0.9\"} %s\n", s);
	secs(g->back.sum_ms, s, sizeof s);
	fprintf(f, "sendwrap_grey_back_seconds_sum %s\n"
	    "sendwrap_grey_back_seconds_count %lu\n", s, g->back.n);
}

static void
prom_forward(FILE *f, const struct tally *t, const struct tally_period *sum)
{
	const struct tally_forward *fw = &t->fwd;
	char s[32];
	size_t k;

	prom_family(f, "sendwrap_forwarded_sessions_total", "counter",
	    "Sessions relayed to the MTA (--forward), by how they ended "
	    "(unreachable: it could not be connected to).");
	for (k = 0; k < RELAY_END_COUNT; k++)
		fprintf(f, "sendwrap_forwarded_sessions_total{end=\"%s\"} %lu\n",
		    relay_end_name((enum relay_end)k), fw->ends[k]);
	prom_counter(f, "sendwrap_forwarded_deferred_total", "Relayed "
	    "clients told 421 4.3.0 to come back later (the MTA unreachable "
	    "or gone before its greeting).", fw->deferred);
	prom_family(f, "sendwrap_forwarded_bytes_total", "counter", "Bytes "
	    "relayed: direction in, from clients to the MTA; out, back.");
	fprintf(f, "sendwrap_forwarded_bytes_total{direction=\"in\"} %llu\n"
	    "sendwrap_forwarded_bytes_total{direction=\"out\"} %llu\n",
	    (unsigned long long)sum->in, (unsigned long long)sum->out);
	prom_family(f, "sendwrap_forwarded_length_seconds", "summary", "How "
	    "long the relayed sessions that reached the MTA lasted (quantile "
	    "1: the longest).");
	secs(tally_quantile(&fw->length, 0.5), s, sizeof s);
	fprintf(f, "sendwrap_forwarded_length_seconds{quantile=\"0.5\"} %s\n",
	    s);
	secs(tally_quantile(&fw->length, 0.9), s, sizeof s);
	fprintf(f, "sendwrap_forwarded_length_seconds{quantile=\"0.9\"} %s\n",
	    s);
	secs(fw->length.max_ms, s, sizeof s);
	fprintf(f, "sendwrap_forwarded_length_seconds{quantile=\"1\"} %s\n", s);
	secs(fw->length.sum_ms, s, sizeof s);
	fprintf(f, "sendwrap_forwarded_length_seconds_sum %s\n"
	    "sendwrap_forwarded_length_seconds_count %lu\n", s, fw->length.n);
}

static void
print_prometheus(FILE *f, const struct tally *t)
{
	struct tally_period sum;
	char held[32];

	tally_total(t, &sum);
	prom_connections(f, &sum);
	prom_family(f, "sendwrap_stressed_total", "counter",
	    "Connections given the short delay of --stress.");
	fprintf(f, "sendwrap_stressed_total %lu\n", sum.stressed);
	prom_family(f, "sendwrap_errors_total", "counter", "Error lines.");
	fprintf(f, "sendwrap_errors_total %lu\n", sum.n[VERDICT_ERROR]);
	prom_family(f, "sendwrap_tarpit_held_seconds_total", "counter",
	    "Time the tar pit held its connections.");
	secs(sum.held_ms, held, sizeof held);
	fprintf(f, "sendwrap_tarpit_held_seconds_total %s\n", held);
	prom_family(f, "sendwrap_log_lines_total", "counter",
	    "Log lines read, by kind.");
	fprintf(f, "sendwrap_log_lines_total{kind=\"sendwrap\"} %lu\n"
	    "sendwrap_log_lines_total{kind=\"notice\"} %lu\n"
	    "sendwrap_log_lines_total{kind=\"malformed\"} %lu\n"
	    "sendwrap_log_lines_total{kind=\"other\"} %lu\n"
	    "sendwrap_log_lines_total{kind=\"forwarded\"} %lu\n", t->events,
	    t->notices, t->malformed, t->other, t->forwarded);
	prom_histogram(f, "sendwrap_wait_seconds", "How long clients that "
	    "passed waited.", &t->waited);
	prom_histogram(f, "sendwrap_early_seconds", "When early talkers "
	    "talked, into the wait.", &t->early);
	prom_histogram(f, "sendwrap_hangup_seconds", "When clients hung up, "
	    "into the wait.", &t->hangup);
	if (tally_greylisted(t, &sum))
		prom_grey(f, t, &sum);
	if (t->forwarded)
		prom_forward(f, t, &sum);
}

void
report_print(FILE *f, const struct tally *t, enum report_format fmt,
    unsigned top)
{
	if (fmt == FORMAT_CSV)
		print_csv(f, t, top);
	else if (fmt == FORMAT_PROMETHEUS)
		print_prometheus(f, t);
	else
		print_text(f, t, top);
}
