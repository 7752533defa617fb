/* textfile.c - reading a file of lines; see textfile.h. */
#include "textfile.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void
textfile_problem(struct textfile_problems *tp, unsigned long line,
    const char *msg)
{
	tp->problems++;
	if (tp->max_errors == 0 || tp->problems <= tp->max_errors)
		tp->report(tp->ctx, tp->path, line, msg);
}

void
textfile_problem_errno(struct textfile_problems *tp, const char *what,
    int err)
{
	char msg[160];

	snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
	textfile_problem(tp, 0, msg);
}

void
textfile_problems_end(struct textfile_problems *tp)
{
	char msg[96];

	if (tp->max_errors == 0 || tp->problems <= tp->max_errors)
		return;
	snprintf(msg, sizeof msg, "%lu more problems not shown (run "
	    "sendwrap -n to see all)", tp->problems - tp->max_errors);
	tp->report(tp->ctx, tp->path, 0, msg);
}

void
textfile_init(struct textfile *r, int fd)
{
	r->fd = fd;
	r->pos = r->end = 0;
	r->eof = r->err = 0;
}

/* Refill an empty buffer: 1 with bytes, 0 at end of file, -1 on error. */
static int
refill(struct textfile *r)
{
	ssize_t got;

	if (r->eof)
		return 0;
	do
		got = read(r->fd, r->buf, sizeof r->buf);
	while (got < 0 && errno == EINTR);
	if (got < 0) {
		r->err = errno;
		return -1;
	}
	if (got == 0) {
		r->eof = 1;
		return 0;
	}
	r->pos = 0;
	r->end = (size_t)got;
	return 1;
}

int
textfile_line(struct textfile *r, char *line, size_t size, size_t *len,
    int *toolong)
{
	size_t n = 0;
	int any = 0, got;

	*toolong = 0;
	for (;;) {
		char *nl;
		size_t take;

		if (r->pos == r->end && (got = refill(r)) <= 0) {
			if (got < 0)
				return -1;
			break;
		}
		any = 1;
		nl = memchr(r->buf + r->pos, '\n', r->end - r->pos);
		take = (nl ? (size_t)(nl - r->buf) : r->end) - r->pos;
		if (n + take > size) {
			*toolong = 1;
			take = n < size ? size - n : 0;
		}
		memcpy(line + n, r->buf + r->pos, take);
		n += take;
		if (nl) {
			r->pos = (size_t)(nl - r->buf) + 1;
			break;
		}
		r->pos = r->end;
	}
	*len = n;
	return any;
}
