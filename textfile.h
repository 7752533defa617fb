/*
 * textfile.h - a file of lines, read one line at a time (the allowlist,
 * the greytrap list): no stdio, so no buffer outlives the reading, and a
 * line too long for the caller is cut and said to be, never split into
 * two.
 *
 * A file's problems (a bad line, a read error) go to a report function
 * as (path, line, message), line 0 for the whole file, at most
 * max_errors of them (0: no cap), and one line at the end for those not
 * shown.
 *
 * Contract: no allocation, no logging; the descriptor is the caller's
 * (opened and closed there).
 */
#ifndef SENDWRAP_TEXTFILE_H
#define SENDWRAP_TEXTFILE_H

#include <stddef.h>

struct textfile {
	int fd;
	size_t pos, end;
	int eof, err;			/* err: errno of a read error */
	char buf[4096];
};

typedef void (*textfile_report_fn)(void *ctx, const char *path,
    unsigned long line, const char *msg);

/* Where one file's problems go, and how many there were. */
struct textfile_problems {
	const char *path;
	unsigned max_errors;
	textfile_report_fn report;
	void *ctx;
	unsigned long problems;
};

/* Count a problem, and report it unless max_errors were reported. */
void textfile_problem(struct textfile_problems *tp, unsigned long line,
    const char *msg);

/* The same, "WHAT: strerror(err)" for the whole file. */
void textfile_problem_errno(struct textfile_problems *tp, const char *what,
    int err);

/* Done with the file: say how many problems were not shown, if any. */
void textfile_problems_end(struct textfile_problems *tp);

void textfile_init(struct textfile *r, int fd);

/*
 * Read the next line, without its newline, into line (size bytes kept,
 * no NUL added).  Returns 1 with *len and *toolong (the line was longer
 * than size: the rest was skipped), 0 at end of file, -1 on a read error
 * (r->err).
 */
int textfile_line(struct textfile *r, char *line, size_t size, size_t *len,
    int *toolong);

#endif
