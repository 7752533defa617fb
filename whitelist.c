/* whitelist.c - the CIDR allowlist; see whitelist.h for the contract. */
#include "whitelist.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "allowdb.h"
#include "duration.h"
#include "smtp.h"
#include "textfile.h"

struct wl_item {
	struct wl_entry e;
	unsigned long line;
};

/* One source, loaded: entries parsed from text (or the -A entry), or a
 * compiled file mapped. */
struct loaded {
	const char *path;		/* NULL for -A */
	struct wl_item *items;		/* text: its entries, in order */
	size_t nitems;
	const struct wl_entry *single;	/* -A: the source's own entry */
	struct allowdb *db;		/* compiled */
};

struct allowlist {
	size_t n;
	struct loaded src[];
};

static int
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

int
wl_parse_cidr(const char *s, size_t len, struct wl_entry *e, const char **why)
{
	if (addr_parse_prefix(s, len, &e->net, &e->prefix, why) != 0)
		return -1;
	e->delay_ms = 0;
	memcpy(e->rule, s, len);
	e->rule[len] = '\0';
	return 0;
}

int
wl_parse_line(const char *s, size_t len, struct wl_entry *e, const char **why)
{
	const char *tok[3];
	size_t toklen[3], ntok = 0, i = 0;
	const char *hash = memchr(s, '#', len);

	if (memchr(s, '\0', len) != NULL) {
		*why = "NUL byte in line";
		return -1;
	}
	if (hash)
		len = (size_t)(hash - s);
	while (i < len) {
		size_t start;

		while (i < len && is_space(s[i]))
			i++;
		if (i == len)
			break;
		start = i;
		while (i < len && !is_space(s[i]))
			i++;
		if (ntok == 3)
			break;
		tok[ntok] = s + start;
		toklen[ntok++] = i - start;
	}
	if (ntok == 0)
		return 0;
	if (ntok > 2) {
		*why = "trailing junk after the delay";
		return -1;
	}
	if (wl_parse_cidr(tok[0], toklen[0], e, why) != 0)
		return -1;
	if (ntok == 2) {
		if (duration_parse(tok[1], toklen[1], &e->delay_ms, why) != 0)
			return -1;
		if (e->delay_ms > SMTP_GREETING_WAIT_MS) {
			*why = "delay out of range (" SMTP_GREETING_WAIT_TEXT ")";
			return -1;
		}
	}
	return 1;
}

int
wl_entry_matches(const struct wl_entry *e, const struct addr *a)
{
	return addr_in_prefix(&e->net, e->prefix, a);
}

static int
add_item(struct loaded *ld, size_t *cap, const struct wl_entry *e,
    unsigned long line)
{
	if (ld->nitems == *cap) {
		size_t n = *cap ? 2 * *cap : 16;
		struct wl_item *more = realloc(ld->items, n * sizeof *more);

		if (more == NULL)
			return -1;
		ld->items = more;
		*cap = n;
	}
	ld->items[ld->nitems].e = *e;
	ld->items[ld->nitems++].line = line;
	return 0;
}

/* Parse a text file into ld; every bad line is a problem. */
static void
load_text(struct textfile_problems *sc, struct loaded *ld, int fd)
{
	struct textfile r;
	char line[WL_LINE_MAX];
	unsigned long lineno = 0;
	size_t len, cap = 0;
	int toolong, got;

	textfile_init(&r, fd);
	while ((got = textfile_line(&r, line, sizeof line, &len, &toolong)) == 1) {
		struct wl_entry e;
		const char *why;

		lineno++;
		if (toolong) {
			textfile_problem(sc, lineno, "line too long (over 1000 bytes)");
			continue;
		}
		switch (wl_parse_line(line, len, &e, &why)) {
		case -1:
			textfile_problem(sc, lineno, why);
			break;
		case 1:
			if (add_item(ld, &cap, &e, lineno) != 0) {
				textfile_problem_errno(sc, "cannot load allowlist", ENOMEM);
				return;
			}
			break;
		}
	}
	if (got < 0)
		textfile_problem_errno(sc, "read error", r.err);
}

int
wl_is_compiled(const char *path)
{
	size_t len = strlen(path);

	return len > 4 && strcmp(path + len - 4, ".cdb") == 0;
}

static void
load_compiled(struct textfile_problems *sc, struct loaded *ld)
{
	const char *why;

	if ((ld->db = allowdb_open(sc->path, &why)) != NULL)
		return;
	if (errno == EINVAL)
		textfile_problem(sc, 0, why);
	else
		textfile_problem_errno(sc, why, errno);
}

static void
load_file(struct textfile_problems *sc, struct loaded *ld)
{
	int fd;

	if (wl_is_compiled(sc->path)) {
		load_compiled(sc, ld);
	} else if ((fd = open(sc->path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		textfile_problem_errno(sc, "cannot open allowlist", errno);
	} else {
		load_text(sc, ld, fd);
		close(fd);
	}
	textfile_problems_end(sc);
}

/* ------------------------------------------------------------ the list */

struct allowlist *
wl_load(const struct wl_source *src, size_t n, unsigned max_errors,
    wl_report_fn report, void *ctx, unsigned long *problems)
{
	struct allowlist *l = calloc(1, sizeof *l + n * sizeof l->src[0]);
	size_t i;

	*problems = 0;
	if (l == NULL)
		return NULL;
	l->n = n;
	for (i = 0; i < n; i++) {
		struct loaded *ld = &l->src[i];
		struct textfile_problems sc = { src[i].path, max_errors, report, ctx, 0 };

		ld->path = src[i].path;
		if (src[i].path == NULL) {
			ld->single = &src[i].entry;
			continue;
		}
		load_file(&sc, ld);
		*problems += sc.problems;
	}
	return l;
}

static void
set_match(struct wl_match *m, const struct wl_entry *e, const char *path,
    unsigned long line)
{
	m->found = 1;
	m->delay_ms = e->delay_ms;
	memcpy(m->rule, e->rule, sizeof e->rule);
	m->path = path;
	m->line = line;
}

/* The first match in one source: 1 if found. */
static int
find_in(const struct loaded *ld, const struct addr *peer, struct wl_match *m)
{
	const char *why;
	size_t i;

	if (ld->single) {
		if (!wl_entry_matches(ld->single, peer))
			return 0;
		set_match(m, ld->single, NULL, 0);
		return 1;
	}
	for (i = 0; i < ld->nitems; i++)
		if (wl_entry_matches(&ld->items[i].e, peer)) {
			set_match(m, &ld->items[i].e, ld->path,
			    ld->items[i].line);
			return 1;
		}
	if (ld->db == NULL || allowdb_find(ld->db, peer, m, &why) <= 0)
		return 0;
	m->path = ld->path;
	m->line = 0;
	return 1;
}

void
wl_find(const struct allowlist *l, const struct addr *peer,
    struct wl_match *m)
{
	size_t i;

	memset(m, 0, sizeof *m);
	for (i = 0; i < l->n; i++)
		if (find_in(&l->src[i], peer, m))
			return;
	memset(m, 0, sizeof *m);
}

size_t
wl_count(const struct allowlist *l)
{
	size_t i, n = 0;

	for (i = 0; i < l->n; i++)
		n += l->src[i].single ? 1 : l->src[i].db ?
		    allowdb_count(l->src[i].db) : l->src[i].nitems;
	return n;
}

void
wl_free(struct allowlist *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++) {
		allowdb_close(l->src[i].db);
		free(l->src[i].items);
	}
	free(l);
}

unsigned long
wl_lookup(const struct wl_source *src, size_t n, const struct addr *peer,
    struct wl_match *m, unsigned max_errors, wl_report_fn report, void *ctx)
{
	unsigned long problems;
	struct allowlist *l = wl_load(src, n, max_errors, report, ctx,
	    &problems);

	memset(m, 0, sizeof *m);
	if (l != NULL && peer != NULL)
		wl_find(l, peer, m);
	wl_free(l);
	return problems;
}

unsigned long
wl_check_file(const char *path, size_t *count, wl_report_fn report, void *ctx)
{
	struct wl_source src;
	unsigned long problems;
	struct allowlist *l;

	memset(&src, 0, sizeof src);
	src.path = path;
	l = wl_load(&src, 1, 0, report, ctx, &problems);
	*count = l ? wl_count(l) : 0;
	wl_free(l);
	return problems;
}

/* ---------------------------------------------------------- compiling */

static void
compile_report(void *ctx, const char *path, unsigned long line, const char *msg)
{
	struct textfile_problems *outer = ctx;

	outer->problems++;
	outer->report(outer->ctx, path, line, msg);
}

/* Copy the entries of in (open on ifd) to w; 0, EAGAIN if in changed,
 * or an errno. */
static int
copy_entries(int ifd, struct allowdb_writer *w, unsigned long *lineno,
    long *count)
{
	struct textfile r;
	char line[WL_LINE_MAX];
	size_t len;
	int toolong, got;

	textfile_init(&r, ifd);
	while ((got = textfile_line(&r, line, sizeof line, &len, &toolong)) == 1) {
		struct wl_entry e;
		const char *why;

		++*lineno;
		switch (toolong ? -1 : wl_parse_line(line, len, &e, &why)) {
		case -1:
			/* It was valid a moment ago: someone is editing it. */
			return EAGAIN;
		case 1:
			if (allowdb_write_add(w, &e) != 0)
				return errno ? errno : EIO;
			++*count;
			break;
		}
	}
	return got < 0 ? r.err : 0;
}

/* Write the compiled form of in (open on ifd) to tmp (just created,
 * open on ofd), sync and close it; 0 or an errno. */
static int
write_compiled(int ifd, int ofd, const char *tmp, unsigned long *lineno,
    long *count)
{
	struct allowdb_writer *w;
	struct allowdb_stats st;
	int err = 0;

	if ((w = allowdb_write_start()) == NULL)
		err = ENOMEM;
	else if ((err = copy_entries(ifd, w, lineno, count)) != 0)
		allowdb_write_abort(w);
	else if (allowdb_write_finish(w, ofd, tmp, &st) != 0 ||
	    fsync(ofd) != 0)
		err = errno ? errno : EIO;
	if (close(ofd) != 0 && err == 0)
		err = errno;
	return err;
}

long
wl_compile(const char *in, const char *out, wl_report_fn report, void *ctx)
{
	struct textfile_problems outer = { in, 0, report, ctx, 0 };
	char tmp[4096];
	unsigned long lineno = 0;
	size_t count;
	long entries = 0;
	int ifd, ofd, err;

	/* Validate first, so a bad source never replaces a good database. */
	if (wl_check_file(in, &count, compile_report, &outer) != 0)
		return -1;
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", out,
	    (long)getpid()) >= sizeof tmp) {
		report(ctx, out, 0, "file name too long");
		return -1;
	}
	if ((ifd = open(in, O_RDONLY | O_CLOEXEC)) < 0) {
		textfile_problem_errno(&outer, "cannot open", errno);
		return -1;
	}
	ofd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (ofd < 0) {
		outer.path = tmp;
		textfile_problem_errno(&outer, "cannot create", errno);
		close(ifd);
		return -1;
	}
	err = write_compiled(ifd, ofd, tmp, &lineno, &entries);
	close(ifd);
	if (err == 0 && rename(tmp, out) != 0)
		err = errno;
	if (err == EAGAIN)
		report(ctx, in, lineno, "file changed while being compiled; "
		    "run again");
	else if (err != 0) {
		outer.path = out;
		textfile_problem_errno(&outer, "cannot write compiled allowlist", err);
	}
	if (err != 0)
		unlink(tmp);
	return err ? -1 : entries;
}
