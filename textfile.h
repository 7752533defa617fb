/*
 * textfile.h - a file of lines, read one line at a time (the allowlist,
 * the greytrap list): no stdio, so no buffer outlives the reading, and a
 * line too long for the caller is cut and said to be, never split into
 * two.
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
