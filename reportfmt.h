/*
 * reportfmt.h - sendwrap --report: read log files (report.h), count
 * (tally.h), print in one of three forms:
 *
 *  - text, for people: aligned tables, as pflogsumm prints Postfix's;
 *  - csv, for spreadsheets and gnuplot: one header line, then one row per
 *    figure, "table,period,name,detail,value,percent";
 *  - prometheus, the text exposition format, for node_exporter's
 *    textfile collector: counters of the lines read (a new set of logs
 *    is a reset, as rate() expects of a counter) and histograms of the
 *    times.
 *
 * Files are read through zlib: gzip'd rotated logs and plain files alike
 * (zlib passes a file that is not gzip'd through), "-" or no file at all
 * being standard input.  A file that cannot be read is said on stderr
 * and the report is of the rest.
 *
 * Contract: the report on stdout, problems on stderr; returns the exit
 * status (0, 111 when a file could not be read or the output written).
 */
#ifndef SENDWRAP_REPORTFMT_H
#define SENDWRAP_REPORTFMT_H

#include <stdio.h>

#include "options.h"
#include "tally.h"

/* The catch curve's fixed points, in seconds (the delays seen are added). */
#define REPORT_CATCH_POINTS { 1, 2, 5, 10, 20, 30, 60 }

int report_run(const struct config *cfg);

/* Print t in fmt, with the top networks (top of them at most). */
void report_print(FILE *f, const struct tally *t, enum report_format fmt,
    unsigned top);

#endif
