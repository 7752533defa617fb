/* whitelist.c - the CIDR allowlist; see whitelist.h for the contract. */
#include "whitelist.h"
#include "duration.h"

#include <arpa/inet.h>
#include <cdb.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char compiled_meta_key[] = "\377sendwrap-allowlist-v1";
#define PREFIX_BITMAP_BYTES 17	/* one bit for each of prefixes 0..128 */
#define KEY_MAX (2 + 16)
#define VALUE_FIXED (4 + 8)

static int
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

int
wl_addr_parse(const char *s, struct wl_addr *a)
{
	struct in6_addr a6;

	if (strchr(s, ':') == NULL) {
		a->family = AF_INET;
		memset(a->bytes, 0, sizeof a->bytes);
		return inet_pton(AF_INET, s, a->bytes) == 1 ? 0 : -1;
	}
	if (inet_pton(AF_INET6, s, &a6) != 1)
		return -1;
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		a->family = AF_INET;
		memset(a->bytes, 0, sizeof a->bytes);
		memcpy(a->bytes, a6.s6_addr + 12, 4);
	} else {
		a->family = AF_INET6;
		memcpy(a->bytes, a6.s6_addr, 16);
	}
	return 0;
}

int
wl_addr_from_sockaddr(const struct sockaddr *sa, struct wl_addr *a)
{
	const struct sockaddr_in6 *s6;

	memset(a->bytes, 0, sizeof a->bytes);
	if (sa->sa_family == AF_INET) {
		a->family = AF_INET;
		memcpy(a->bytes, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family != AF_INET6)
		return -1;
	s6 = (const struct sockaddr_in6 *)(const void *)sa;
	if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		a->family = AF_INET;
		memcpy(a->bytes, s6->sin6_addr.s6_addr + 12, 4);
	} else {
		a->family = AF_INET6;
		memcpy(a->bytes, s6->sin6_addr.s6_addr, 16);
	}
	return 0;
}

static unsigned
family_bits(int family)
{
	return family == AF_INET ? 32 : 128;
}

/* Zero every bit past prefix; returns whether any was set. */
static int
clear_host_bits(unsigned char *bytes, unsigned nbytes, unsigned prefix)
{
	int had = 0;
	unsigned i;

	for (i = 0; i < nbytes; i++) {
		unsigned char keep;

		if (prefix >= 8 * (i + 1))
			continue;
		keep = prefix <= 8 * i ? 0 :
		    (unsigned char)(0xff << (8 - (prefix - 8 * i)));
		if (bytes[i] & (unsigned char)~keep)
			had = 1;
		bytes[i] &= keep;
	}
	return had;
}

int
wl_parse_cidr(const char *s, size_t len, struct wl_entry *e, const char **why)
{
	char text[WL_RULE_MAX];
	const char *slash;
	unsigned prefix = 0, bits;
	size_t alen, i;

	if (len == 0 || len >= sizeof text) {
		*why = len ? "address too long" : "missing address";
		return -1;
	}
	if (memchr(s, '\0', len) != NULL)	/* inet_pton would stop there */
		goto badaddr;
	memcpy(text, s, len);
	text[len] = '\0';
	slash = memchr(text, '/', len);
	alen = slash ? (size_t)(slash - text) : len;
	text[alen] = '\0';
	if (strchr(text, ':') == NULL) {
		e->net.family = AF_INET;
		memset(e->net.bytes, 0, sizeof e->net.bytes);
		if (inet_pton(AF_INET, text, e->net.bytes) != 1)
			goto badaddr;
	} else {
		e->net.family = AF_INET6;
		if (inet_pton(AF_INET6, text, e->net.bytes) != 1)
			goto badaddr;
	}
	bits = family_bits(e->net.family);
	if (slash == NULL) {
		prefix = bits;
	} else {
		size_t plen = len - alen - 1;

		if (plen == 0 || plen > 3) {
			*why = "bad prefix length";
			return -1;
		}
		for (i = alen + 1; i < len; i++) {
			if (s[i] < '0' || s[i] > '9') {
				*why = "bad prefix length";
				return -1;
			}
			prefix = prefix * 10 + (unsigned)(s[i] - '0');
		}
		if (prefix > bits) {
			*why = e->net.family == AF_INET ?
			    "prefix length out of range (0-32 for IPv4)" :
			    "prefix length out of range (0-128 for IPv6)";
			return -1;
		}
	}
	if (clear_host_bits(e->net.bytes, bits / 8, prefix)) {
		*why = "host bits set beyond the prefix length";
		return -1;
	}
	e->prefix = prefix;
	e->delay_ms = 0;
	memcpy(e->rule, s, len);
	e->rule[len] = '\0';
	return 0;
badaddr:
	*why = "not an IPv4 or IPv6 address";
	return -1;
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
		if (e->delay_ms > 300 * 1000) {
			*why = "delay out of range (0 to 300 s)";
			return -1;
		}
	}
	return 1;
}

int
wl_entry_matches(const struct wl_entry *e, const struct wl_addr *a)
{
	unsigned full = e->prefix / 8, rest = e->prefix % 8;
	unsigned char mask;

	if (e->net.family != a->family)
		return 0;
	if (memcmp(e->net.bytes, a->bytes, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (unsigned char)(0xff << (8 - rest));
	return (a->bytes[full] & mask) == e->net.bytes[full];
}

/* Line-at-a-time reading without stdio, so no buffer outlives the call. */
struct reader {
	int fd;
	size_t pos, end;
	int eof, err;
	char buf[4096];
};

/*
 * Read the next line into line[] (WL_LINE_MAX bytes kept).  Returns 1
 * with *len, *toolong; 0 at end of file; -1 on a read error.
 */
static int
next_line(struct reader *r, char *line, size_t *len, int *toolong)
{
	size_t n = 0;
	int any = 0;

	*toolong = 0;
	for (;;) {
		char *nl;
		size_t take;

		if (r->pos == r->end) {
			ssize_t got;

			if (r->eof)
				break;
			do
				got = read(r->fd, r->buf, sizeof r->buf);
			while (got < 0 && errno == EINTR);
			if (got < 0) {
				r->err = errno;
				return -1;
			}
			if (got == 0) {
				r->eof = 1;
				break;
			}
			r->pos = 0;
			r->end = (size_t)got;
		}
		any = 1;
		nl = memchr(r->buf + r->pos, '\n', r->end - r->pos);
		take = (nl ? (size_t)(nl - r->buf) : r->end) - r->pos;
		if (n + take > WL_LINE_MAX) {
			*toolong = 1;
			take = n < WL_LINE_MAX ? WL_LINE_MAX - n : 0;
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

struct scan {
	const char *path;
	const struct wl_addr *peer;
	struct wl_match *m;
	unsigned max_errors;
	wl_report_fn report;
	void *ctx;
	unsigned long problems;
	size_t entries;
};

static void
problem(struct scan *sc, unsigned long line, const char *msg)
{
	sc->problems++;
	if (sc->max_errors == 0 || sc->problems <= sc->max_errors)
		sc->report(sc->ctx, sc->path, line, msg);
}

static void
report_errno(struct scan *sc, const char *what, int err)
{
	char msg[160];

	snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
	problem(sc, 0, msg);
}

static void
scan_text(struct scan *sc, int fd)
{
	struct reader r;
	char line[WL_LINE_MAX];
	unsigned long lineno = 0;
	size_t len;
	int toolong, got;

	r.fd = fd;
	r.pos = r.end = 0;
	r.eof = r.err = 0;
	while ((got = next_line(&r, line, &len, &toolong)) == 1) {
		struct wl_entry e;
		const char *why;

		lineno++;
		if (toolong) {
			problem(sc, lineno, "line too long (over 1000 bytes)");
			continue;
		}
		switch (wl_parse_line(line, len, &e, &why)) {
		case -1:
			problem(sc, lineno, why);
			break;
		case 1:
			sc->entries++;
			if (sc->peer && !sc->m->found &&
			    wl_entry_matches(&e, sc->peer)) {
				sc->m->found = 1;
				sc->m->delay_ms = e.delay_ms;
				memcpy(sc->m->rule, e.rule, sizeof e.rule);
				sc->m->path = sc->path;
				sc->m->line = lineno;
			}
			break;
		}
	}
	if (got < 0)
		report_errno(sc, "read error", r.err);
}

static void
set_bit(unsigned char *map, unsigned bit)
{
	map[bit / 8] |= (unsigned char)(1u << (bit % 8));
}

static int
get_bit(const unsigned char *map, unsigned bit)
{
	return (map[bit / 8] >> (bit % 8)) & 1;
}

static size_t
make_key(unsigned char *key, const struct wl_addr *a, unsigned prefix)
{
	unsigned nbytes = family_bits(a->family) / 8;

	key[0] = a->family == AF_INET ? 4 : 6;
	key[1] = (unsigned char)prefix;
	memcpy(key + 2, a->bytes, nbytes);
	clear_host_bits(key + 2, nbytes, prefix);
	return 2 + nbytes;
}

static uint64_t
get_le(const unsigned char *p, unsigned n)
{
	uint64_t v = 0;

	while (n-- > 0)
		v = v << 8 | p[n];
	return v;
}

static void
put_le(unsigned char *p, uint64_t v, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++, v >>= 8)
		p[i] = (unsigned char)v;
}

static void
scan_compiled(struct scan *sc, int fd)
{
	struct cdb db;
	const unsigned char *meta, *val;
	unsigned char key[KEY_MAX];
	uint64_t best = UINT64_MAX;
	unsigned prefix, bits, vlen;
	size_t klen;

	if (cdb_init(&db, fd) != 0) {
		report_errno(sc, "cannot map compiled allowlist", errno);
		return;
	}
	if (cdb_find(&db, compiled_meta_key, sizeof compiled_meta_key - 1) <= 0 ||
	    cdb_datalen(&db) != 2 * PREFIX_BITMAP_BYTES + 8) {
		problem(sc, 0, "not a compiled sendwrap allowlist "
		    "(make one with sendwrap --compile)");
		goto out;
	}
	meta = cdb_get(&db, cdb_datalen(&db), cdb_datapos(&db));
	sc->entries = (size_t)get_le(meta + 2 * PREFIX_BITMAP_BYTES, 8);
	if (sc->peer == NULL || sc->m->found)
		goto out;
	if (sc->peer->family == AF_INET6)
		meta += PREFIX_BITMAP_BYTES;
	bits = family_bits(sc->peer->family);
	for (prefix = 0; prefix <= bits; prefix++) {
		uint64_t order;

		if (!get_bit(meta, prefix))
			continue;
		klen = make_key(key, sc->peer, prefix);
		switch (cdb_find(&db, key, (unsigned)klen)) {
		case 0:
			continue;
		case -1:
			problem(sc, 0, "corrupt compiled allowlist");
			goto out;
		}
		vlen = cdb_datalen(&db);
		val = cdb_get(&db, vlen, cdb_datapos(&db));
		if (val == NULL || vlen < VALUE_FIXED ||
		    vlen - VALUE_FIXED >= WL_RULE_MAX) {
			problem(sc, 0, "corrupt compiled allowlist");
			break;
		}
		order = get_le(val, 4);
		if (order >= best)
			continue;
		best = order;
		sc->m->delay_ms = get_le(val + 4, 8);
		memcpy(sc->m->rule, val + VALUE_FIXED, vlen - VALUE_FIXED);
		sc->m->rule[vlen - VALUE_FIXED] = '\0';
	}
	if (best != UINT64_MAX) {
		sc->m->found = 1;
		sc->m->path = sc->path;
		sc->m->line = 0;
	}
out:
	cdb_free(&db);
}

int
wl_is_compiled(const char *path)
{
	size_t len = strlen(path);

	return len > 4 && strcmp(path + len - 4, ".cdb") == 0;
}

static void
scan_file(struct scan *sc)
{
	int fd = open(sc->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0) {
		report_errno(sc, "cannot open allowlist", errno);
		return;
	}
	if (wl_is_compiled(sc->path))
		scan_compiled(sc, fd);
	else
		scan_text(sc, fd);
	close(fd);
	if (sc->max_errors != 0 && sc->problems > sc->max_errors) {
		char msg[96];

		snprintf(msg, sizeof msg, "%lu more problems not shown "
		    "(run sendwrap -n to see all)",
		    sc->problems - sc->max_errors);
		sc->report(sc->ctx, sc->path, 0, msg);
	}
}

unsigned long
wl_lookup(const struct wl_source *src, size_t n, const struct wl_addr *peer,
    struct wl_match *m, unsigned max_errors, wl_report_fn report, void *ctx)
{
	unsigned long problems = 0;
	size_t i;

	memset(m, 0, sizeof *m);
	for (i = 0; i < n; i++) {
		struct scan sc;

		if (src[i].path == NULL) {
			if (peer && !m->found &&
			    wl_entry_matches(&src[i].entry, peer)) {
				m->found = 1;
				m->delay_ms = src[i].entry.delay_ms;
				memcpy(m->rule, src[i].entry.rule, WL_RULE_MAX);
			}
			continue;
		}
		memset(&sc, 0, sizeof sc);
		sc.path = src[i].path;
		sc.peer = peer;
		sc.m = m;
		sc.max_errors = max_errors;
		sc.report = report;
		sc.ctx = ctx;
		scan_file(&sc);
		problems += sc.problems;
	}
	return problems;
}

unsigned long
wl_check_file(const char *path, size_t *count, wl_report_fn report, void *ctx)
{
	struct wl_match m;
	struct scan sc;

	memset(&sc, 0, sizeof sc);
	memset(&m, 0, sizeof m);
	sc.path = path;
	sc.m = &m;
	sc.report = report;
	sc.ctx = ctx;
	scan_file(&sc);
	*count = sc.entries;
	return sc.problems;
}

struct compiler {
	struct cdb_make cm;
	unsigned char bitmap[2 * PREFIX_BITMAP_BYTES];
	uint64_t order;
	int failed;
};

static int
compile_entry(struct compiler *c, const struct wl_entry *e)
{
	unsigned char key[KEY_MAX], val[VALUE_FIXED + WL_RULE_MAX];
	size_t klen = make_key(key, &e->net, e->prefix);
	size_t rlen = strlen(e->rule);

	put_le(val, c->order, 4);
	put_le(val + 4, e->delay_ms, 8);
	memcpy(val + VALUE_FIXED, e->rule, rlen);
	set_bit(c->bitmap + (e->net.family == AF_INET6 ? PREFIX_BITMAP_BYTES : 0),
	    e->prefix);
	c->order++;
	/* A repeated key keeps its first record: cdb_find returns that one. */
	return cdb_make_add(&c->cm, key, (unsigned)klen, val,
	    (unsigned)(VALUE_FIXED + rlen));
}

static void
compile_report(void *ctx, const char *path, unsigned long line, const char *msg)
{
	struct scan *outer = ctx;

	outer->problems++;
	outer->report(outer->ctx, path, line, msg);
}

long
wl_compile(const char *in, const char *out, wl_report_fn report, void *ctx)
{
	struct compiler c;
	struct scan outer;
	struct reader r;
	char tmp[4096], line[WL_LINE_MAX];
	unsigned char meta[2 * PREFIX_BITMAP_BYTES + 8];
	unsigned long lineno = 0;
	size_t len;
	int ifd, ofd, toolong, got;

	memset(&outer, 0, sizeof outer);
	outer.report = report;
	outer.ctx = ctx;
	outer.path = in;
	/* Validate first, so a bad source never replaces a good database. */
	{
		size_t count;

		if (wl_check_file(in, &count, compile_report, &outer) != 0)
			return -1;
	}
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", out,
	    (long)getpid()) >= sizeof tmp) {
		report(ctx, out, 0, "file name too long");
		return -1;
	}
	if ((ifd = open(in, O_RDONLY | O_CLOEXEC)) < 0) {
		outer.path = in;
		report_errno(&outer, "cannot open", errno);
		return -1;
	}
	ofd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (ofd < 0) {
		outer.path = tmp;
		report_errno(&outer, "cannot create", errno);
		close(ifd);
		return -1;
	}
	memset(&c, 0, sizeof c);
	cdb_make_start(&c.cm, ofd);
	r.fd = ifd;
	r.pos = r.end = 0;
	r.eof = r.err = 0;
	while (!c.failed && (got = next_line(&r, line, &len, &toolong)) == 1) {
		struct wl_entry e;
		const char *why;

		lineno++;
		switch (toolong ? -1 : wl_parse_line(line, len, &e, &why)) {
		case -1:
			/* It was valid a moment ago: someone is editing it. */
			c.failed = EAGAIN;
			break;
		case 1:
			if (compile_entry(&c, &e) != 0)
				c.failed = errno ? errno : EIO;
			break;
		}
	}
	memcpy(meta, c.bitmap, sizeof c.bitmap);
	put_le(meta + sizeof c.bitmap, c.order, 8);
	if (!c.failed && r.err)
		c.failed = r.err;
	if (!c.failed && (cdb_make_add(&c.cm, compiled_meta_key,
	    sizeof compiled_meta_key - 1, meta, sizeof meta) != 0 ||
	    cdb_make_finish(&c.cm) != 0 || fsync(ofd) != 0))
		c.failed = errno ? errno : EIO;
	close(ifd);
	if (close(ofd) != 0 && !c.failed)
		c.failed = errno;
	if (!c.failed && rename(tmp, out) != 0)
		c.failed = errno;
	if (c.failed == EAGAIN) {
		report(ctx, in, lineno, "file changed while being compiled; "
		    "run again");
		unlink(tmp);
		return -1;
	}
	if (c.failed) {
		outer.path = out;
		report_errno(&outer, "cannot write compiled allowlist", c.failed);
		unlink(tmp);
		return -1;
	}
	return (long)c.order;
}
