/* greytrap.c - the greytrap addresses; see greytrap.h. */
#include "greytrap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "textfile.h"

#define LINE_MAX_BYTES 1000

struct greytraps {
	char **addr;			/* lower case, sorted, no duplicates */
	size_t n, cap;
};

static int
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static char
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/*
 * An address as the file holds it, cut to the line's one word: NULL if
 * it is one (lower-cased into out, a NUL after it), else why not.
 */
static const char *
parse_address(const char *s, size_t len, char *out)
{
	const char *at = NULL;
	size_t i;

	if (len > GREYTRAP_ADDR_MAX)
		return "address too long";
	for (i = 0; i < len; i++) {
		if (is_blank(s[i]))
			return "one address a line";
		if (s[i] < 0x21 || s[i] > 0x7e || s[i] == '<' || s[i] == '>')
			return "not an address (printable ASCII, no brackets)";
		if (s[i] == '@')
			at = s + i;
		out[i] = lower(s[i]);
	}
	out[len] = '\0';
	if (at == NULL || at == s || at == s + len - 1)
		return "not an address (local@domain)";
	return NULL;
}

static int
add(struct greytraps *t, const char *addr)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 64;
		char **more = realloc(t->addr, cap * sizeof *more);

		if (more == NULL)
			return -1;
		t->addr = more;
		t->cap = cap;
	}
	if ((t->addr[t->n] = strdup(addr)) == NULL)
		return -1;
	t->n++;
	return 0;
}

/* One line of the file: 0, 1 to stop reading, or -1 when out of memory. */
static int
take_line(struct greytraps *t, struct textfile_problems *ld,
    unsigned long lineno, char *line, size_t len)
{
	char addr[GREYTRAP_ADDR_MAX + 1];
	const char *why;
	char *hash = memchr(line, '#', len);

	if (hash)
		len = (size_t)(hash - line);
	while (len > 0 && is_blank(line[len - 1]))
		len--;
	while (len > 0 && is_blank(*line)) {
		line++;
		len--;
	}
	if (len == 0)
		return 0;
	if ((why = parse_address(line, len, addr)) != NULL) {
		textfile_problem(ld, lineno, why);
		return 0;
	}
	if (t->n == GREYTRAP_FILE_MAX) {
		textfile_problem(ld, lineno, "too many addresses (at most 100000): "
		    "the rest are not used");
		return 1;	/* stop reading */
	}
	return add(t, addr);
}

static void
read_lines(struct greytraps *t, struct textfile_problems *ld, int fd)
{
	struct textfile r;
	char line[LINE_MAX_BYTES];
	unsigned long lineno = 0;
	size_t len;
	int toolong, got, r2 = 0;

	textfile_init(&r, fd);
	while (r2 == 0 && (got = textfile_line(&r, line, sizeof line, &len,
	    &toolong)) == 1) {
		lineno++;
		if (toolong)
			textfile_problem(ld, lineno, "line too long");
		else if ((r2 = take_line(t, ld, lineno, line, len)) < 0)
			textfile_problem(ld, 0, "out of memory");
	}
	if (r2 == 0 && got < 0)
		textfile_problem_errno(ld, "read error", r.err);
}

static int
by_text(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort, and keep one of each address. */
static void
settle(struct greytraps *t)
{
	size_t i, n = 0;

	if (t->n == 0)
		return;
	qsort(t->addr, t->n, sizeof t->addr[0], by_text);
	for (i = 1; i < t->n; i++) {
		if (strcmp(t->addr[i], t->addr[n]) == 0)
			free(t->addr[i]);
		else
			t->addr[++n] = t->addr[i];
	}
	t->n = n + 1;
}

/* Open path for reading, only if it is a regular file: a FIFO or a
 * device must not hang or feed the reader. */
static int
open_list(struct textfile_problems *ld)
{
	struct stat st;
	int fd = open(ld->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		return fd;
	if (fd < 0)
		textfile_problem_errno(ld, "cannot read greytrap list", errno);
	else
		textfile_problem(ld, 0, "cannot read greytrap list: not a "
		    "regular file");
	if (fd >= 0)
		close(fd);
	return -1;
}

struct greytraps *
greytraps_load(const char *path, unsigned max_errors, wl_report_fn report,
    void *ctx, unsigned long *problems)
{
	struct textfile_problems ld = { path, max_errors, report, ctx, 0 };
	struct greytraps *t = calloc(1, sizeof *t);
	int fd;

	*problems = 0;
	if (t == NULL)
		return NULL;
	if ((fd = open_list(&ld)) >= 0) {
		read_lines(t, &ld, fd);
		close(fd);
	}
	settle(t);
	textfile_problems_end(&ld);
	*problems = ld.problems;
	return t;
}

size_t
greytraps_count(const struct greytraps *t)
{
	return t ? t->n : 0;
}

/* The address in an RCPT argument, lower-cased into out: its length, or
 * 0 if there is none that could be a trap's. */
static size_t
rcpt_address(const char *arg, size_t len, char *out)
{
	const char *end = arg + len, *p = arg;
	size_t n = 0;

	while (p < end && is_blank(*p))
		p++;
	if (end - p >= 3 && lower(p[0]) == 't' && lower(p[1]) == 'o' &&
	    p[2] == ':')
		p += 3;
	while (p < end && is_blank(*p))
		p++;
	if (p < end && *p == '<')
		p++;
	for (; p < end && *p != '>' && !is_blank(*p); p++) {
		if (n == GREYTRAP_ADDR_MAX)
			return 0;
		out[n++] = lower(*p);
	}
	out[n] = '\0';
	return n;
}

const char *
greytraps_match(const struct greytraps *t, const char *arg, size_t len)
{
	char addr[GREYTRAP_ADDR_MAX + 1], **found;
	const char *key = addr;

	if (t == NULL || t->n == 0 || rcpt_address(arg, len, addr) == 0)
		return NULL;
	found = bsearch(&key, t->addr, t->n, sizeof t->addr[0], by_text);
	return found ? *found : NULL;
}

void
greytraps_free(struct greytraps *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++)
		free(t->addr[i]);
	free(t->addr);
	free(t);
}
