/* spf.c - SPF records into allowlist networks; see spf.h. */
#include "spf.h"

#include <arpa/inet.h>
#include <ares.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/select.h>

#include "conn.h"
#include "dnsl.h"
#include "log.h"
#include "smtp.h"

/* ------------------------------------------------------------ parsing */

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Is s (len bytes) the word w, in any case? */
static int
word_is(const char *s, size_t len, const char *w)
{
	size_t i;

	if (strlen(w) != len)
		return 0;
	for (i = 0; i < len; i++)
		if (lower((unsigned char)s[i]) != w[i])
			return 0;
	return 1;
}

static int
is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* Is c one of set's characters (NUL never is)? */
static int
in_set(int c, const char *set)
{
	return c != '\0' && strchr(set, c) != NULL;
}

int
spf_is_record(const char *s, size_t len)
{
	return len >= 6 && word_is(s, 6, "v=spf1") && (len == 6 || s[6] == ' ');
}

int
spf_domain_ok(const char *s, size_t len)
{
	size_t i, label = 0, last = 0;
	int digits_only = 1;

	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0 || len > SPF_NAME_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		int c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			last = i + 1;
			continue;
		}
		if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_')
			return 0;
		if ((c == '-' && label == 0) || ++label > 63)
			return 0;
	}
	if (label == 0 || s[len - 1] == '-')
		return 0;
	for (i = last; i < len; i++)
		if (!is_digit((unsigned char)s[i]))
			digits_only = 0;
	return !digits_only;
}

/* A macro-expand at s[0] == '%' (RFC 7208 7.1); its length, or 0. */
static size_t
macro_len(const char *s, size_t len)
{
	size_t i = 2;

	if (len >= 2 && (s[1] == '%' || s[1] == '_' || s[1] == '-'))
		return 2;
	if (len < 4 || s[1] != '{' ||
	    !in_set(lower((unsigned char)s[2]), "slodiphcrtv"))
		return 0;
	for (i = 3; i < len && is_digit((unsigned char)s[i]); i++)
		;
	if (i < len && lower((unsigned char)s[i]) == 'r')
		i++;
	while (i < len && in_set(s[i], ".-+,/_="))
		i++;
	return i < len && s[i] == '}' ? i + 1 : 0;
}

/*
 * A domain-spec of len bytes: a name (spf_domain_ok), or one with macros
 * (then *macro is set; its literal parts are visible characters).
 */
static int
domain_spec(const char *s, size_t len, int *macro)
{
	size_t i, m;

	*macro = memchr(s, '%', len) != NULL;
	if (!*macro)
		return spf_domain_ok(s, len);
	for (i = 0; i < len; i += m) {
		if (s[i] != '%')
			m = s[i] > ' ' && s[i] <= '~' ? 1 : 0;
		else
			m = macro_len(s + i, len - i);
		if (m == 0)
			return 0;
	}
	return len > 0;
}

/* "/N" with N from 0 to max at s (len bytes); its length, or 0. */
static size_t
cidr_len(const char *s, size_t len, unsigned max, unsigned *v)
{
	size_t i;
	unsigned n = 0;

	if (len < 2 || s[0] != '/' || !is_digit((unsigned char)s[1]))
		return 0;
	for (i = 1; i < len && i < 5 && is_digit((unsigned char)s[i]); i++)
		n = n * 10 + (unsigned)(s[i] - '0');
	if (n > max || (i < len && is_digit((unsigned char)s[i])))
		return 0;
	*v = n;
	return i;
}

/* A dual-cidr-length "/N", "//M" or "/N//M" making up all of s. */
static int
dual_cidr(const char *s, size_t len, struct spf_term *t)
{
	size_t n = 0;

	if (len == 0)
		return 0;
	if (!(len >= 2 && s[0] == '/' && s[1] == '/')) {
		if ((n = cidr_len(s, len, 32, &t->len4)) == 0)
			return -1;
		s += n;
		len -= n;
		if (len == 0)
			return 0;
	}
	if (len < 2 || s[0] != '/' || s[1] != '/' ||
	    cidr_len(s + 1, len - 1, 128, &t->len6) != len - 1)
		return -1;
	return 0;
}

/* Where the domain-spec of an a or mx ends: at the first '/' outside a
 * macro's braces. */
static size_t
spec_end(const char *s, size_t len)
{
	size_t i;
	int in_macro = 0;

	for (i = 0; i < len; i++) {
		if (s[i] == '{' && i > 0 && s[i - 1] == '%')
			in_macro = 1;
		else if (s[i] == '}')
			in_macro = 0;
		else if (s[i] == '/' && !in_macro)
			break;
	}
	return i;
}

/* ip4:NETWORK[/LEN] or ip6:NETWORK[/LEN]: the rest after the colon. */
static int
ip_network(const char *s, size_t len, int family, struct spf_term *t,
    const char **why)
{
	const char *slash = memchr(s, '/', len);
	size_t alen = slash ? (size_t)(slash - s) : len;
	char text[ADDR_TEXT_MAX];
	unsigned *plen = family == AF_INET ? &t->len4 : &t->len6;

	*why = family == AF_INET ? "bad ip4 network" : "bad ip6 network";
	if (alen == 0 || alen >= sizeof text)
		return -1;
	memcpy(text, s, alen);
	text[alen] = '\0';
	memset(&t->net, 0, sizeof t->net);
	t->net.family = family;
	if (inet_pton(family, text, t->net.bytes) != 1)
		return -1;
	if (alen < len && cidr_len(s + alen, len - alen, addr_bits(family),
	    plen) != len - alen) {
		*why = "bad prefix length";
		return -1;
	}
	addr_cut(&t->net, *plen);
	return 0;
}

/* The mechanisms: each with whether it takes a domain-spec (1: it must
 * have one, 2: it may), and a dual-cidr-length. */
static const struct {
	const char *name;
	enum spf_mech mech;
	int domain, cidr;
} mechs[] = {
	{ "all", SPF_ALL, 0, 0 }, { "include", SPF_INCLUDE, 1, 0 },
	{ "a", SPF_A, 2, 1 }, { "mx", SPF_MX, 2, 1 },
	{ "ptr", SPF_PTR, 2, 0 }, { "exists", SPF_EXISTS, 1, 0 },
	{ "ip4", SPF_IP4, 0, 0 }, { "ip6", SPF_IP6, 0, 0 },
};

/* A mechanism, the qualifier already taken. */
static int
mechanism(const char *s, size_t len, struct spf_term *t, const char **why)
{
	size_t name = 0, i, end;

	while (name < len && s[name] != ':' && s[name] != '/')
		name++;
	for (i = 0; i < sizeof mechs / sizeof mechs[0]; i++)
		if (word_is(s, name, mechs[i].name))
			break;
	*why = "unknown mechanism";
	if (i == sizeof mechs / sizeof mechs[0])
		return -1;
	t->mech = mechs[i].mech;
	if (t->mech == SPF_IP4 || t->mech == SPF_IP6) {
		if (name == len || s[name] != ':') {
			*why = "ip4: and ip6: need a network";
			return -1;
		}
		return ip_network(s + name + 1, len - name - 1, t->mech ==
		    SPF_IP4 ? AF_INET : AF_INET6, t, why);
	}
	s += name;
	len -= name;
	end = mechs[i].cidr ? spec_end(s, len) : len;
	if (end > 0 && s[0] == ':') {
		t->domain = s + 1;
		t->domain_len = end - 1;
		*why = "bad domain";
		if (mechs[i].domain == 0 || !domain_spec(t->domain,
		    t->domain_len, &t->macro))
			return -1;
	} else if (mechs[i].domain == 1 || end > 0) {
		*why = mechs[i].domain == 1 ? "a domain is needed" :
		    "junk after the mechanism";
		return -1;
	}
	*why = "bad prefix length";
	return dual_cidr(s + end, len - end, t);
}

/* name=value. */
static int
modifier(const char *s, size_t len, size_t eq, struct spf_record *r,
    struct spf_term *t, const char **why)
{
	size_t i;

	*why = "bad modifier name";
	if (!is_alpha((unsigned char)s[0]))
		return -1;
	for (i = 1; i < eq; i++)
		if (!is_alpha((unsigned char)s[i]) &&
		    !is_digit((unsigned char)s[i]) && !in_set(s[i], "-_."))
			return -1;
	t->domain = s + eq + 1;
	t->domain_len = len - eq - 1;
	if (word_is(s, eq, "redirect"))
		t->mech = SPF_REDIRECT;
	else if (word_is(s, eq, "exp"))
		t->mech = SPF_EXP;
	else
		t->mech = SPF_MODIFIER;
	if (t->mech == SPF_MODIFIER) {
		/* A macro-string: not walked, so not checked further. */
		t->domain = NULL;
		t->domain_len = 0;
		return 0;
	}
	*why = "bad domain";
	if (!domain_spec(t->domain, t->domain_len, &t->macro))
		return -1;
	if (t->mech == SPF_REDIRECT) {
		*why = "two redirect= modifiers";
		if (r->redirect)
			return -1;
		r->redirect = t;
	}
	return 0;
}

static int
term(const char *s, size_t len, struct spf_record *r, struct spf_term *t,
    const char **why)
{
	size_t eq = 0;

	memset(t, 0, sizeof *t);
	t->text = s;
	t->text_len = len;
	t->len4 = 32;
	t->len6 = 128;
	while (eq < len && s[eq] != '=' && s[eq] != ':' && s[eq] != '/')
		eq++;
	if (eq < len && s[eq] == '=' && eq > 0)
		return modifier(s, len, eq, r, t, why);
	t->qualifier = '+';
	if (in_set(s[0], "+-~?")) {
		t->qualifier = s[0];
		s++;
		len--;
	}
	if (mechanism(s, len, t, why) != 0)
		return -1;
	if (t->mech == SPF_ALL)
		r->has_all = 1;
	return 0;
}

int
spf_parse(const char *s, size_t len, struct spf_record *r, const char **why,
    size_t *at)
{
	size_t i, start;

	memset(r, 0, sizeof *r);
	*at = 0;
	*why = "not an SPF record (v=spf1)";
	if (!spf_is_record(s, len))
		return -1;
	*why = "longer than " SMTP_XSTR(SPF_RECORD_MAX) " bytes";
	if (len > SPF_RECORD_MAX)
		return -1;
	for (i = 0; i < len; i++)
		if (s[i] < ' ' || s[i] > '~') {
			*at = i;
			*why = "a character that is not printable ASCII";
			return -1;
		}
	for (i = 6; i < len; ) {
		while (i < len && s[i] == ' ')
			i++;
		if (i == len)
			break;
		start = i;
		while (i < len && s[i] != ' ')
			i++;
		*at = start;
		if (r->n == SPF_TERMS_MAX) {
			*why = "more than " SMTP_XSTR(SPF_TERMS_MAX) " terms";
			return -1;
		}
		if (term(s + start, i - start, r, &r->term[r->n], why) != 0)
			return -1;
		r->n++;
	}
	return 0;
}

/* ------------------------------------------------------------ walking */

struct walker {
	struct dnsl_resolver *r;
	int ending;			/* the resolver is going: ask nothing */
};

/* The walk of one top domain. */
struct top {
	struct walker *w;
	struct spf_result *res;
	char *walked[SPF_LOOKUPS_MAX];	/* names whose record was asked */
	size_t nwalked;
	size_t cap;			/* of res->nets */
	unsigned lookups, out;		/* queries asked, and still out */
	int failed;
};

#define NOT_WANTED 255		/* a query's len4 or len6: not that family */

/* One query out. */
struct query {
	struct top *t;
	int type;			/* T_TXT, T_A, T_AAAA or T_MX */
	unsigned depth;			/* of the record asked, or holding
					 * the a or mx asked for */
	unsigned len4, len6;		/* a, mx: the prefixes to keep */
	char name[SPF_NAME_MAX + 2];
};

static void __attribute__((format(printf, 2, 3)))
fail(struct top *t, const char *fmt, ...)
{
	va_list ap;

	if (t->failed)
		return;
	t->failed = 1;
	va_start(ap, fmt);
	vsnprintf(t->res->error, sizeof t->res->error, fmt, ap);
	va_end(ap);
}

/* A note, once however often it comes. */
static void __attribute__((format(printf, 2, 3)))
note(struct top *t, const char *fmt, ...)
{
	struct spf_result *res = t->res;
	char msg[SPF_MESSAGE_MAX];
	va_list ap;
	size_t i;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	for (i = 0; i < res->nnotes; i++)
		if (strcmp(res->notes[i], msg) == 0)
			return;
	if (res->nnotes == SPF_NOTES_MAX ||
	    (res->notes[res->nnotes] = strdup(msg)) == NULL)
		res->notes_dropped = 1;
	else
		res->nnotes++;
}

/* Why a query failed, in words. */
static const char *
status_words(int status)
{
	switch (status) {
	case ARES_ENOTFOUND:
		return "no such domain (NXDOMAIN)";
	case ARES_ESERVFAIL:
		return "the DNS server failed (SERVFAIL)";
	case ARES_EREFUSED:
		return "the DNS server refused (REFUSED)";
	case ARES_ETIMEOUT:
		return "no answer from the DNS server (timed out)";
	case ARES_ECONNREFUSED:
		/* c-ares's word for SERVFAIL and REFUSED too, once every
		 * try had one. */
		return "the DNS server failed, refused or cannot be reached";
	default:
		return ares_strerror(status);
	}
}

static const char *
type_name(int type)
{
	return type == T_TXT ? "TXT" : type == T_A ? "A" : type == T_AAAA ?
	    "AAAA" : "MX";
}

static void on_answer(void *arg, int status, int timeouts,
    unsigned char *abuf, int alen);

/* Ask name's record of type, within the top domain's bounds. */
static void
ask(struct top *t, int type, const char *name, size_t len, unsigned depth,
    unsigned len4, unsigned len6)
{
	struct query *q;

	if (t->failed || t->w->ending)
		return;
	if (t->lookups == SPF_LOOKUPS_MAX) {
		fail(t, "more than %d DNS lookups", SPF_LOOKUPS_MAX);
		return;
	}
	if ((q = calloc(1, sizeof *q)) == NULL) {
		fail(t, "out of memory");
		return;
	}
	q->t = t;
	q->type = type;
	q->depth = depth;
	q->len4 = len4;
	q->len6 = len6;
	memcpy(q->name, name, len);
	t->lookups++;
	t->out++;
	dnsl_query(t->w->r, q->name, type, on_answer, q);
}

/* Is name walked already for this top domain?  If not, now it is. */
static int
walked(struct top *t, const char *name, size_t len)
{
	char *copy;
	size_t i;

	if (len > 0 && name[len - 1] == '.')
		len--;
	for (i = 0; i < t->nwalked; i++)
		if (word_is(name, len, t->walked[i]))
			return 1;
	if (t->nwalked == SPF_LOOKUPS_MAX || (copy = malloc(len + 1)) == NULL)
		return 0;
	for (i = 0; i < len; i++)
		copy[i] = (char)lower((unsigned char)name[i]);
	copy[len] = '\0';
	t->walked[t->nwalked++] = copy;
	return 0;
}

/* Walk name's SPF record (an include, a redirect, the top domain). */
static void
walk(struct top *t, const char *name, size_t len, unsigned depth,
    const char *from)
{
	if (depth > SPF_DEPTH_MAX) {
		fail(t, "%s: includes and redirects nested deeper than %d", from,
		    SPF_DEPTH_MAX);
		return;
	}
	if (!walked(t, name, len))
		ask(t, T_TXT, name, len, depth, 32, 128);
}

static void
add_net(struct top *t, const struct addr *a, unsigned prefix)
{
	struct spf_result *res = t->res;

	if (res->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		struct spf_net *nets;

		if (res->n == SPF_NETS_MAX) {
			fail(t, "more than %d networks", SPF_NETS_MAX);
			return;
		}
		if (cap > SPF_NETS_MAX)
			cap = SPF_NETS_MAX;
		if ((nets = realloc(res->nets, cap * sizeof *nets)) == NULL) {
			fail(t, "out of memory");
			return;
		}
		res->nets = nets;
		t->cap = cap;
	}
	res->nets[res->n].net = *a;
	res->nets[res->n].prefix = prefix;
	addr_cut(&res->nets[res->n].net, prefix);
	res->n++;
}

/* A and AAAA for an a or an mx's exchange, the families wanted. */
static void
ask_addresses(struct top *t, const char *name, size_t len, unsigned depth,
    unsigned len4, unsigned len6)
{
	if (len4 != NOT_WANTED)
		ask(t, T_A, name, len, depth, len4, len6);
	if (len6 != NOT_WANTED)
		ask(t, T_AAAA, name, len, depth, len4, len6);
}

/* Would term m of q's record allowlist networks of family wider than
 * any one sender holds?  Then it is skipped there, with a note. */
static int
too_wide(struct query *q, const struct spf_term *m, int family,
    unsigned len)
{
	unsigned min = family == AF_INET ? SPF_V4LEN_MIN : SPF_V6LEN_MIN;
	int shown = m->text_len > 80 ? 80 : (int)m->text_len;

	if (len >= min)
		return 0;
	note(q->t, "%s: %.*s skipped%s: wider than /%u", q->name, shown,
	    m->text, m->mech == SPF_IP4 || m->mech == SPF_IP6 ? "" :
	    family == AF_INET ? " for IPv4" : " for IPv6", min);
	return 1;
}

/* What one term of q's record (from domain q->name) adds to the walk. */
static void
follow(struct query *q, const struct spf_record *r, const struct spf_term *m)
{
	struct top *t = q->t;
	const char *name = m->domain ? m->domain : q->name;
	size_t len = m->domain ? m->domain_len : strlen(q->name);
	int shown = m->text_len > 80 ? 80 : (int)m->text_len;
	unsigned len4, len6;

	switch (m->mech) {
	case SPF_EXP:
	case SPF_MODIFIER:
		return;
	case SPF_ALL:
		if (m->qualifier == '+')
			note(t, "%s: %.*s skipped: it passes every address",
			    q->name, shown, m->text);
		return;
	case SPF_PTR:
	case SPF_EXISTS:
		note(t, "%s: %.*s skipped: not a network", q->name, shown,
		    m->text);
		return;
	case SPF_REDIRECT:
		if (r->has_all)
			return;		/* RFC 7208 6.1 */
		break;
	default:
		break;
	}
	if (m->qualifier != '+' && m->qualifier != 0) {
		note(t, "%s: %.*s skipped: not a pass", q->name, shown, m->text);
		return;
	}
	if (m->macro) {
		note(t, "%s: %.*s skipped: a macro", q->name, shown, m->text);
		return;
	}
	switch (m->mech) {
	case SPF_IP4:
		if (!too_wide(q, m, AF_INET, m->len4))
			add_net(t, &m->net, m->len4);
		break;
	case SPF_IP6:
		if (!too_wide(q, m, AF_INET6, m->len6))
			add_net(t, &m->net, m->len6);
		break;
	case SPF_A:
	case SPF_MX:
		len4 = too_wide(q, m, AF_INET, m->len4) ? NOT_WANTED : m->len4;
		len6 = too_wide(q, m, AF_INET6, m->len6) ? NOT_WANTED :
		    m->len6;
		if (m->mech == SPF_MX)
			ask(t, T_MX, name, len, q->depth, len4, len6);
		else
			ask_addresses(t, name, len, q->depth, len4, len6);
		break;
	default:	/* include, redirect */
		walk(t, name, len, q->depth + 1, q->name);
	}
}

/* The record's text, the TXT strings of each record joined (RFC 7208
 * 3.3): the one SPF record among them into buf, or fail. */
static int
spf_text(struct query *q, const struct ares_txt_ext *txt, char *buf,
    size_t *len)
{
	const struct ares_txt_ext *s = txt;
	size_t found = 0, total, n;
	char head[SPF_RECORD_MAX + 1];

	while (s) {
		total = n = 0;
		do {
			size_t room = sizeof head - n, take = s->length < room ?
			    s->length : room;

			memcpy(head + n, s->txt, take);
			n += take;
			total += s->length;
			s = s->next;
		} while (s && !s->record_start);
		if (!spf_is_record(head, n))
			continue;
		if (found++ > 0) {
			fail(q->t, "%s: two SPF records", q->name);
			return -1;
		}
		if (total > SPF_RECORD_MAX) {
			fail(q->t, "%s: an SPF record longer than %d bytes",
			    q->name, SPF_RECORD_MAX);
			return -1;
		}
		memcpy(buf, head, n);
		*len = n;
	}
	if (found == 0)
		fail(q->t, "%s: no SPF record", q->name);
	return found == 1 ? 0 : -1;
}

static void
txt_answer(struct query *q, unsigned char *abuf, int alen)
{
	struct ares_txt_ext *txt = NULL;
	struct spf_record *r = NULL;
	char *text = malloc(SPF_RECORD_MAX), shown[100];
	const char *why;
	size_t len, at, i;
	int status = ares_parse_txt_reply_ext(abuf, alen, &txt);

	if (status == ARES_ENODATA)
		fail(q->t, "%s: no SPF record", q->name);
	else if (status != ARES_SUCCESS)
		fail(q->t, "%s: bad TXT answer: %s", q->name,
		    ares_strerror(status));
	else if (text == NULL || (r = malloc(sizeof *r)) == NULL)
		fail(q->t, "out of memory");
	else if (spf_text(q, txt, text, &len) == 0) {
		if (spf_parse(text, len, r, &why, &at) != 0) {
			const char *end = memchr(text + at, ' ', len - at);

			log_escape(shown, sizeof shown, text + at, end ?
			    (size_t)(end - text - at) : len - at);
			fail(q->t, "%s: bad SPF record at \"%s\": %s", q->name,
			    shown, why);
		} else {
			for (i = 0; i < r->n; i++)
				follow(q, r, &r->term[i]);
		}
	}
	ares_free_data(txt);
	free(text);
	free(r);
}

/* A or AAAA: the addresses of an a, or of an mx's exchange. */
static void
addr_answer(struct query *q, unsigned char *abuf, int alen)
{
	int family = q->type == T_A ? AF_INET : AF_INET6;
	struct hostent *host = NULL;
	struct addr a;
	int status;
	char **p;

	status = family == AF_INET ?
	    ares_parse_a_reply(abuf, alen, &host, NULL, NULL) :
	    ares_parse_aaaa_reply(abuf, alen, &host, NULL, NULL);
	if (status == ARES_ENODATA)
		return;		/* no address: the mechanism matches none */
	if (status != ARES_SUCCESS || host->h_addrtype != family) {
		fail(q->t, "%s: bad %s answer", q->name, type_name(q->type));
		if (host)
			ares_free_hostent(host);
		return;
	}
	memset(&a, 0, sizeof a);
	a.family = family;
	for (p = host->h_addr_list; *p && !q->t->failed; p++) {
		memcpy(a.bytes, *p, family == AF_INET ? 4 : 16);
		add_net(q->t, &a, family == AF_INET ? q->len4 : q->len6);
	}
	ares_free_hostent(host);
}

static void
mx_answer(struct query *q, unsigned char *abuf, int alen)
{
	struct ares_mx_reply *mx = NULL, *m;
	int status = ares_parse_mx_reply(abuf, alen, &mx);
	size_t n = 0;

	if (status == ARES_ENODATA)
		return;
	if (status != ARES_SUCCESS) {
		fail(q->t, "%s: bad MX answer", q->name);
		return;
	}
	for (m = mx; m; m = m->next)
		n++;
	if (n > SPF_MX_MAX)
		fail(q->t, "%s: more than %d MX hosts", q->name, SPF_MX_MAX);
	for (m = mx; m && !q->t->failed; m = m->next) {
		size_t len = strlen(m->host);

		if (len == 0 || strcmp(m->host, ".") == 0)
			continue;	/* a null MX (RFC 7505): no host */
		if (!spf_domain_ok(m->host, len)) {
			note(q->t, "%s: an MX host that is not a name skipped",
			    q->name);
			continue;
		}
		ask_addresses(q->t, m->host, len, q->depth, q->len4, q->len6);
	}
	ares_free_data(mx);
}

static void
on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct query *q = arg;
	struct top *t = q->t;

	(void)timeouts;
	t->out--;
	if (t->failed || t->w->ending || status == ARES_EDESTRUCTION ||
	    status == ARES_ECANCELLED) {
		free(q);
		return;
	}
	if (status == ARES_SUCCESS && q->type == T_TXT)
		txt_answer(q, abuf, alen);
	else if (status == ARES_SUCCESS && q->type == T_MX)
		mx_answer(q, abuf, alen);
	else if (status == ARES_SUCCESS)
		addr_answer(q, abuf, alen);
	else if (q->type == T_TXT && status == ARES_ENODATA)
		fail(t, "%s: no SPF record", q->name);
	else if (q->type == T_TXT || (status != ARES_ENOTFOUND &&
	    status != ARES_ENODATA))
		fail(t, "%s: %s: %s", q->name, type_name(q->type),
		    status_words(status));
	/* An a or mx naming no host matches nothing (RFC 7208 4.6.4). */
	free(q);
}

/* ------------------------------------------------------------ the run */

static int
net_order(const void *a, const void *b)
{
	const struct spf_net *x = a, *y = b;
	int c;

	if (x->net.family != y->net.family)
		return x->net.family == AF_INET ? -1 : 1;
	if ((c = memcmp(x->net.bytes, y->net.bytes, 16)) != 0)
		return c;
	return x->prefix < y->prefix ? -1 : x->prefix > y->prefix;
}

static int
note_order(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
drop_notes(struct spf_result *res)
{
	size_t i;

	for (i = 0; i < res->nnotes; i++)
		free(res->notes[i]);
	res->nnotes = 0;
	res->notes_dropped = 0;
}

/* The walk's end for t: sorted, no repeats; or nothing but its error. */
static void
finish(struct top *t)
{
	struct spf_result *res = t->res;
	size_t i, n = 0;

	while (t->nwalked > 0)
		free(t->walked[--t->nwalked]);
	if (t->failed) {
		free(res->nets);
		res->nets = NULL;
		res->n = 0;
		drop_notes(res);
		return;
	}
	qsort(res->notes, res->nnotes, sizeof *res->notes, note_order);
	if (res->n == 0)	/* no array: qsort must not see NULL */
		return;
	qsort(res->nets, res->n, sizeof *res->nets, net_order);
	for (i = 0; i < res->n; i++)
		if (n == 0 || net_order(&res->nets[n - 1], &res->nets[i]) != 0)
			res->nets[n++] = res->nets[i];
	res->n = n;
}

static unsigned
queries_out(const struct top *tops, size_t n)
{
	unsigned out = 0;
	size_t i;

	for (i = 0; i < n; i++)
		out += tops[i].out;
	return out;
}

/* Drive the resolver until every answer is in or the deadline passes. */
static void
run(struct walker *w, struct top *tops, size_t n, uint64_t deadline)
{
	uint64_t now;
	int64_t wait;
	fd_set rfds, wfds;
	struct timeval tv;
	int nfds;

	while (queries_out(tops, n) > 0 && (now = mono_ms()) < deadline) {
		FD_ZERO(&rfds);
		FD_ZERO(&wfds);
		nfds = 0;
		dnsl_fds(w->r, &rfds, &wfds, &nfds);
		wait = dnsl_timeout_ms(w->r);
		if (wait < 0 || (uint64_t)wait > deadline - now)
			wait = (int64_t)(deadline - now);
		tv.tv_sec = wait / 1000;
		tv.tv_usec = (wait % 1000) * 1000;
		if (select(nfds, &rfds, &wfds, NULL, &tv) < 0) {
			if (errno != EINTR)
				break;
			continue;
		}
		dnsl_process(w->r, &rfds, &wfds);
	}
}

/* Was the top domain i named before?  Then it is not walked again. */
static int
named_before(const char *const *domains, size_t i)
{
	size_t j, len = strlen(domains[i]);

	if (len > 0 && domains[i][len - 1] == '.')
		len--;
	for (j = 0; j < i; j++) {
		size_t l = strlen(domains[j]);

		if (l > 0 && domains[j][l - 1] == '.')
			l--;
		if (l == len && strncasecmp(domains[i], domains[j], len) == 0)
			return 1;
	}
	return 0;
}

int
spf_walk(const char *const *domains, size_t n, const struct spf_config *cfg,
    struct spf_result *res, const char **why)
{
	struct dnsl_config dc;
	struct walker w;
	struct top *tops;
	size_t i;

	memset(res, 0, n * sizeof *res);
	memset(&dc, 0, sizeof dc);
	dc.server = cfg->server;
	dc.timeout_ms = cfg->try_ms;
	*why = "out of memory";
	if ((tops = calloc(n ? n : 1, sizeof *tops)) == NULL)
		return -1;
	if ((w.r = dnsl_resolver_new(&dc, why)) == NULL) {
		free(tops);
		return -1;
	}
	w.ending = 0;
	for (i = 0; i < n; i++) {
		tops[i].w = &w;
		tops[i].res = &res[i];
		if (named_before(domains, i))
			note(&tops[i], "named before: walked once");
		else
			walk(&tops[i], domains[i], strlen(domains[i]), 0,
			    domains[i]);
	}
	run(&w, tops, n, mono_ms() + cfg->total_ms);
	for (i = 0; i < n; i++)
		if (tops[i].out > 0)
			fail(&tops[i], "not walked within %llu.%03llu s",
			    (unsigned long long)(cfg->total_ms / 1000),
			    (unsigned long long)(cfg->total_ms % 1000));
	w.ending = 1;
	dnsl_resolver_free(w.r);	/* the queries still out end */
	for (i = 0; i < n; i++)
		finish(&tops[i]);
	free(tops);
	return 0;
}

void
spf_results_free(struct spf_result *res, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(res[i].nets);
		res[i].nets = NULL;
		res[i].n = 0;
		drop_notes(&res[i]);
	}
}
