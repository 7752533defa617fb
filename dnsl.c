/* dnsl.c - DNS block and allow lists on c-ares; see dnsl.h. */
#include "dnsl.h"

#include <arpa/inet.h>
#include <ares.h>
#include <arpa/nameser.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRIES 2			/* a lost packet is retried once */
#define WEIGHT_MAX 1000

struct dnsl_resolver {
	ares_channel channel;
	const struct dnsl_config *cfg;
};

struct dnsl_lookup {
	struct dnsl_resolver *r;
	const struct dnsl_config *cfg;
	struct dnsl_score s;
	dnsl_news_fn news;
	void *ctx;
	int ended, starting;
	unsigned out;			/* queries c-ares still holds */
	uint32_t answered;		/* bit i: list i's answer is in */
};

/* One query's callback argument: its lookup, and which list. */
struct query {
	struct dnsl_lookup *l;
	size_t list;
};

/* ------------------------------------------------------------ parsing */

/* A number from 0 to max at *p; moves *p past it. */
static int
number(const char **p, unsigned max, unsigned *v)
{
	const char *s = *p;
	unsigned n = 0;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++)
		if ((n = n * 10 + (unsigned)(*s - '0')) > max)
			return -1;
	*p = s;
	*v = n;
	return 0;
}

static void
set_range(unsigned char *bits, unsigned lo, unsigned hi)
{
	for (; lo <= hi; lo++)
		bits[lo / 8] |= (unsigned char)(1u << (lo % 8));
}

/* One octet of a filter: "2", or "[2..11]", "[1;2;3]", "[0..9;20]". */
static int
octet(const char **p, unsigned char *bits)
{
	unsigned lo, hi;

	if (**p != '[') {
		if (number(p, 255, &lo) != 0)
			return -1;
		set_range(bits, lo, lo);
		return 0;
	}
	(*p)++;
	for (;;) {
		if (number(p, 255, &lo) != 0)
			return -1;
		hi = lo;
		if ((*p)[0] == '.' && (*p)[1] == '.') {
			*p += 2;
			if (number(p, 255, &hi) != 0 || hi < lo)
				return -1;
		}
		set_range(bits, lo, hi);
		if (**p == ']') {
			(*p)++;
			return 0;
		}
		if (*(*p)++ != ';')
			return -1;
	}
}

static int
parse_filter(const char *s, const char *end, struct dnsl_list *l)
{
	int i;

	for (i = 0; i < 4; i++) {
		if (octet(&s, l->filter[i]) != 0)
			return -1;
		if (i < 3 && *s++ != '.')
			return -1;
	}
	l->filtered = 1;
	return s == end ? 0 : -1;
}

static int
zone_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > DNSL_ZONE_MAX || s[0] == '.' || s[0] == '-')
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		    s[i] == '.' || s[i] == '_'))
			return 0;
	return 1;
}

int
dnsl_parse(const char *spec, int allow, struct dnsl_list *l,
    const char **why)
{
	const char *star = strchr(spec, '*'), *eq = strchr(spec, '=');
	const char *zend = eq ? eq : star ? star : spec + strlen(spec);
	unsigned w;

	memset(l, 0, sizeof *l);
	l->allow = allow;
	l->weight = allow ? -1 : 1;
	if (eq && star && star < eq) {
		*why = "the =FILTER comes before the *WEIGHT";
		return -1;
	}
	if (!zone_ok(spec, (size_t)(zend - spec))) {
		*why = "not a DNS zone";
		return -1;
	}
	memcpy(l->zone, spec, (size_t)(zend - spec));
	if (eq && parse_filter(eq + 1, star ? star : eq + strlen(eq), l)) {
		*why = "bad FILTER (e.g. 127.0.0.2, 127.0.0.[2..11], "
		    "127.0.[0..255].[1;2;3])";
		return -1;
	}
	if (star) {
		const char *p = star + 1 + (star[1] == '-');

		if (number(&p, WEIGHT_MAX, &w) != 0 || *p != '\0') {
			*why = "bad WEIGHT (a whole number, -1000 to 1000)";
			return -1;
		}
		l->weight = star[1] == '-' ? -(int)w : (int)w;
	}
	return 0;
}

int
dnsl_server_parse(const char *s, const char **why)
{
	struct addr a;
	char host[64];
	const char *port = NULL, *close;
	size_t len;
	unsigned v;

	*why = "not ADDR[:PORT] or [ADDR6]:PORT";
	if (s[0] == '[') {
		if ((close = strchr(s, ']')) == NULL)
			return -1;
		len = (size_t)(close - s - 1);
		if (close[1] == ':')
			port = close + 2;
		else if (close[1] != '\0')
			return -1;
		s++;
	} else {
		const char *colon = strchr(s, ':');

		len = colon ? (size_t)(colon - s) : strlen(s);
		port = colon ? colon + 1 : NULL;
	}
	if (len == 0 || len >= sizeof host)
		return -1;
	memcpy(host, s, len);
	host[len] = '\0';
	if (addr_parse(host, &a) != 0)
		return -1;
	if (port && (number(&port, 65535, &v) != 0 || *port != '\0' ||
	    v == 0)) {
		*why = "bad port (1 to 65535)";
		return -1;
	}
	return 0;
}

size_t
dnsl_query_name(const struct addr *a, const char *zone, char *buf,
    size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;
	int i, r;

	if (a->family == AF_INET)
		r = snprintf(buf, size, "%u.%u.%u.%u.%s", a->bytes[3],
		    a->bytes[2], a->bytes[1], a->bytes[0], zone);
	else {
		if (size < 64 + 1)
			return 0;
		for (i = 15; i >= 0; i--) {
			buf[n++] = hex[a->bytes[i] & 15];
			buf[n++] = '.';
			buf[n++] = hex[a->bytes[i] >> 4];
			buf[n++] = '.';
		}
		r = snprintf(buf + n, size - n, "%s", zone);
		if (r >= 0)
			r += (int)n;
	}
	return r > 0 && (size_t)r < size ? (size_t)r : 0;
}

int
dnsl_answer_counts(const struct dnsl_list *l, const unsigned char *a4)
{
	int i;

	if (!l->filtered)
		return 1;
	for (i = 0; i < 4; i++)
		if (!(l->filter[i][a4[i] / 8] & (1u << (a4[i] % 8))))
			return 0;
	return 1;
}

/* ------------------------------------------------------------ resolver */

/* c-ares leaves its sockets inheritable; ours must never reach a child. */
static int
on_new_socket(ares_socket_t fd, int type, void *ctx)
{
	(void)type;
	(void)ctx;
	return fcntl(fd, F_SETFD, FD_CLOEXEC) == 0 ? ARES_SUCCESS : -1;
}

static void
on_socket_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dnsl_resolver *r = data;

	if (r->cfg->on_socket)
		r->cfg->on_socket(r->cfg->socket_ctx, fd, readable, writable);
}

struct dnsl_resolver *
dnsl_resolver_new(const struct dnsl_config *cfg, const char **why)
{
	struct dnsl_resolver *r = calloc(1, sizeof *r);
	struct ares_options o;
	int mask = ARES_OPT_FLAGS | ARES_OPT_TRIES | ARES_OPT_TIMEOUTMS |
	    ARES_OPT_LOOKUPS | ARES_OPT_SOCK_STATE_CB;

	*why = "out of memory";
	if (r == NULL)
		return NULL;
	r->cfg = cfg;
	memset(&o, 0, sizeof o);
	o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	o.tries = TRIES;
	o.timeout = (int)(cfg->timeout_ms ? cfg->timeout_ms : 1000);
	o.lookups = (char *)"b";	/* DNS only: no /etc/hosts */
	o.sock_state_cb = on_socket_state;
	o.sock_state_cb_data = r;
	if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS ||
	    ares_init_options(&r->channel, &o, mask) != ARES_SUCCESS) {
		*why = "cannot set up the resolver";
		free(r);
		return NULL;
	}
	ares_set_socket_callback(r->channel, on_new_socket, NULL);
	if (cfg->server &&
	    ares_set_servers_ports_csv(r->channel, cfg->server) != ARES_SUCCESS) {
		*why = "bad --dns-server";
		dnsl_resolver_free(r);
		return NULL;
	}
	return r;
}

void
dnsl_resolver_free(struct dnsl_resolver *r)
{
	if (r == NULL)
		return;
	ares_destroy(r->channel);	/* every query's callback runs */
	ares_library_cleanup();
	free(r);
	/* c-ares's channel is 74 kB of hash tables: give the pages back to
	 * the system, not only to malloc, for a process that waits on. */
	malloc_trim(0);
}

void
dnsl_fds(struct dnsl_resolver *r, fd_set *rfds, fd_set *wfds, int *nfds)
{
	int n = ares_fds(r->channel, rfds, wfds);

	if (n > *nfds)
		*nfds = n;
}

int64_t
dnsl_timeout_ms(struct dnsl_resolver *r)
{
	struct timeval tv, *t = ares_timeout(r->channel, NULL, &tv);

	return t ? (int64_t)t->tv_sec * 1000 + (t->tv_usec + 999) / 1000 : -1;
}

void
dnsl_process(struct dnsl_resolver *r, fd_set *rfds, fd_set *wfds)
{
	ares_process(r->channel, rfds, wfds);
}

void
dnsl_process_fd(struct dnsl_resolver *r, int rfd, int wfd)
{
	ares_process_fd(r->channel, rfd < 0 ? ARES_SOCKET_BAD : rfd,
	    wfd < 0 ? ARES_SOCKET_BAD : wfd);
}

void
dnsl_query(struct dnsl_resolver *r, const char *name, int type,
    dnsl_answer_fn fn, void *arg)
{
	ares_query(r->channel, name, C_IN, type, fn, arg);
}

/* ------------------------------------------------------------ lookups */

/* What the lists still out could add to the score, both ways. */
static void
bounds(struct dnsl_lookup *l)
{
	size_t i;

	l->s.min_left = l->s.max_left = 0;
	for (i = 0; i < l->cfg->n; i++) {
		int w = l->cfg->lists[i].weight;

		if (l->answered & (1u << i))
			continue;
		if (w < 0)
			l->s.min_left += w;
		else
			l->s.max_left += w;
	}
}

static int
listed(const struct dnsl_list *list, const unsigned char *abuf, int alen)
{
	struct ares_addrttl ttl[16];
	int n = 16, i;

	if (ares_parse_a_reply(abuf, alen, NULL, ttl, &n) != ARES_SUCCESS)
		return 0;
	for (i = 0; i < n; i++)
		if (dnsl_answer_counts(list,
		    (const unsigned char *)&ttl[i].ipaddr.s_addr))
			return 1;
	return 0;
}

static void
on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct query *q = arg;
	struct dnsl_lookup *l = q->l;
	const struct dnsl_list *list = &l->cfg->lists[q->list];

	(void)timeouts;
	l->out--;
	if (l->ended) {
		/* The last answer out takes the lookup with it. */
		if (l->out == 0)
			free(l);
		free(q);
		return;
	}
	if (status == ARES_SUCCESS && listed(list, abuf, alen)) {
		l->s.listed |= 1u << q->list;
		l->s.score += list->weight;
	}
	l->s.pending--;
	l->answered |= 1u << q->list;
	free(q);
	bounds(l);
	if (!l->starting && l->news)
		l->news(l->ctx);
}

struct dnsl_lookup *
dnsl_start(struct dnsl_resolver *r, const struct addr *a, dnsl_news_fn news,
    void *ctx)
{
	struct dnsl_lookup *l = calloc(1, sizeof *l);
	char name[DNSL_ZONE_MAX + 80];
	size_t i;

	if (l == NULL)
		return NULL;
	l->r = r;
	l->cfg = r->cfg;
	l->news = news;
	l->ctx = ctx;
	/* c-ares may answer at once (no server, say): no news until the
	 * caller has the lookup in hand; it reads the result after this. */
	l->starting = 1;
	for (i = 0; i < r->cfg->n; i++) {
		struct query *q = calloc(1, sizeof *q);

		if (q == NULL ||
		    dnsl_query_name(a, r->cfg->lists[i].zone, name,
		    sizeof name) == 0) {
			/* Not asked: as if the list had not listed it. */
			free(q);
			l->answered |= 1u << i;
			continue;
		}
		q->l = l;
		q->list = i;
		l->s.pending++;
		l->out++;
		ares_query(r->channel, name, C_IN, T_A, on_answer, q);
	}
	l->starting = 0;
	bounds(l);
	return l;
}

const struct dnsl_score *
dnsl_result(const struct dnsl_lookup *l)
{
	return &l->s;
}

size_t
dnsl_listed_text(const struct dnsl_lookup *l, int allow, char *buf,
    size_t size)
{
	size_t i, n = 0;

	buf[0] = '\0';
	for (i = 0; i < l->cfg->n && n < size; i++) {
		const struct dnsl_list *list = &l->cfg->lists[i];
		int r;

		if (!(l->s.listed & (1u << i)) || list->allow != allow)
			continue;
		r = snprintf(buf + n, size - n, "%s%s:%d", n ? "," : "",
		    list->zone, list->weight);
		if (r < 0 || (size_t)r >= size - n)
			break;
		n += (size_t)r;
	}
	return n;
}

const char *
dnsl_top_zone(const struct dnsl_lookup *l)
{
	const struct dnsl_list *top = NULL;
	size_t i;

	for (i = 0; i < l->cfg->n; i++) {
		const struct dnsl_list *list = &l->cfg->lists[i];

		if ((l->s.listed & (1u << i)) && !list->allow &&
		    (top == NULL || list->weight > top->weight))
			top = list;
	}
	return top ? top->zone : NULL;
}

void
dnsl_end(struct dnsl_lookup *l)
{
	if (l == NULL)
		return;
	l->ended = 1;
	if (l->out == 0)
		free(l);
}
