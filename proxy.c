/* proxy.c - the PROXY protocol's header; see proxy.h for the contract. */
#include "proxy.h"

#include <stdio.h>
#include <stdlib.h>

#include "duration.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "smtp.h"		/* SMTP_XSTR */

#define V1_SHORTEST 15		/* "PROXY UNKNOWN\r\n" */
#define V1_FIELD_MAX 45		/* the longest address text inet_pton takes */

static const unsigned char v2_signature[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};
static const char v1_start[] = "PROXY ";

/* v2's family and transport protocol numbers (the 14th byte's halves). */
enum { V2_UNSPEC, V2_INET, V2_INET6, V2_UNIX };
enum { V2_STREAM = 1, V2_DGRAM = 2 };

static size_t
min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

static enum proxy_result
bad(const char **why, const char *msg)
{
	*why = msg;
	return PROXY_BAD;
}

static enum proxy_result
need_more(size_t *need, size_t n)
{
	*need = n;
	return PROXY_NEED_MORE;
}

/* -------------------------------------------------------------- v1 */

/* A port as v1 writes it: decimal, 0 to 65535, no leading zero. */
static int
v1_port(const char *s, size_t len, unsigned *port)
{
	unsigned v = 0;
	size_t i;

	if (len == 0 || len > 5 || (s[0] == '0' && len > 1))
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port = v;
	return 0;
}

/* An address of the line's family (inet_pton's syntax), unmapped. */
static int
v1_addr(const char *s, size_t len, int family, struct addr *a)
{
	char text[V1_FIELD_MAX + 1];
	unsigned char bytes[16];

	if (len == 0 || len > V1_FIELD_MAX)
		return -1;
	memcpy(text, s, len);
	text[len] = '\0';
	if (inet_pton(family, text, bytes) != 1)
		return -1;
	if (family == AF_INET6) {
		addr_set_v6(a, bytes);
		return 0;
	}
	memset(a, 0, sizeof *a);
	a->family = AF_INET;
	memcpy(a->bytes, bytes, 4);
	return 0;
}

/*
 * Split s (len bytes) into exactly n words, one space between two: 0,
 * or -1 (a word too many or too few, an empty word).
 */
static int
v1_words(const char *s, size_t len, const char **w, size_t *wlen, size_t n)
{
	size_t k = 0, start = 0, i;

	for (i = 0; i <= len; i++) {
		if (i < len && s[i] != ' ')
			continue;
		if (k == n || i == start)
			return -1;
		w[k] = s + start;
		wlen[k++] = i - start;
		start = i + 1;
	}
	return k == n ? 0 : -1;
}

/* The protocol word, "TCP4", "TCP6" or "UNKNOWN", at the line's start
 * (after "PROXY "): its length, or 0. */
static size_t
v1_protocol(const char *s, size_t len, int *family)
{
	static const struct { const char *word; int family; } protos[] = {
		{ "TCP4", AF_INET }, { "TCP6", AF_INET6 },
		{ "UNKNOWN", AF_UNSPEC } };
	size_t i, n;

	for (i = 0; i < sizeof protos / sizeof protos[0]; i++) {
		n = strlen(protos[i].word);
		if (len >= n && memcmp(s, protos[i].word, n) == 0 &&
		    (len == n || s[n] == ' ')) {
			*family = protos[i].family;
			return n;
		}
	}
	return 0;
}

/* The line without "PROXY " and its CRLF. */
static enum proxy_result
v1_line(const char *s, size_t len, struct proxy_header *h, const char **why)
{
	const char *w[4];
	size_t wlen[4], n;
	int family;

	if ((n = v1_protocol(s, len, &family)) == 0)
		return bad(why, "v1: unknown protocol (not TCP4, TCP6 or "
		    "UNKNOWN)");
	/* UNKNOWN: whatever follows up to the CRLF is ignored. */
	if (family == AF_UNSPEC)
		return PROXY_OK;
	if (n == len || v1_words(s + n + 1, len - n - 1, w, wlen, 4) != 0)
		return bad(why, "v1: malformed line (want TCPn SRC DST SPORT "
		    "DPORT)");
	if (v1_addr(w[0], wlen[0], family, &h->src) != 0)
		return bad(why, "v1: bad source address");
	if (v1_addr(w[1], wlen[1], family, &h->dst) != 0)
		return bad(why, "v1: bad destination address");
	if (v1_port(w[2], wlen[2], &h->src_port) != 0)
		return bad(why, "v1: bad source port");
	if (v1_port(w[3], wlen[3], &h->dst_port) != 0)
		return bad(why, "v1: bad destination port");
	h->known = 1;
	return PROXY_OK;
}

/*
 * A line after "PROXY ", ended or not yet (then: can it still become a
 * header?).  Its protocol word so far must begin one of the three, and
 * a TCP line holds only what addresses and ports are written with.
 * NULL, or why not.
 */
static const char *
v1_prefix_fault(const char *s, size_t len)
{
	static const char *const words[] = { "TCP4 ", "TCP6 ", "UNKNOWN" };
	size_t i, n;
	int family;

	if (v1_protocol(s, len, &family) == 0) {
		for (i = 0; i < sizeof words / sizeof words[0]; i++) {
			n = strlen(words[i]);
			if (memcmp(s, words[i], min_size(len, n)) == 0)
				return NULL;
		}
		return "v1: unknown protocol (not TCP4, TCP6 or UNKNOWN)";
	}
	if (family == AF_UNSPEC)
		return NULL;
	for (i = 4; i < len; i++)
		if (strchr("0123456789abcdefABCDEF.: \r", s[i]) == NULL ||
		    s[i] == '\0')
			return "v1: malformed line (want TCPn SRC DST SPORT "
			    "DPORT)";
	return NULL;
}

static enum proxy_result
parse_v1(const unsigned char *buf, size_t len, struct proxy_header *h,
    size_t *need, const char **why)
{
	const char *s = (const char *)buf;
	size_t n = min_size(len, PROXY_V1_MAX), end;
	const char *fault;

	if (memcmp(s, v1_start, min_size(len, sizeof v1_start - 1)) != 0)
		return bad(why, "not a PROXY header");
	/* The line ends at the first LF, and only a CR may come before it. */
	for (end = 0; end < n && s[end] != '\n'; end++)
		if (s[end] == '\r' && end + 1 < len && s[end + 1] != '\n')
			return bad(why, "v1: a CR without LF");
	if (end == n) {
		if (len >= PROXY_V1_MAX)
			return bad(why, "v1: oversized (no CRLF in "
			    SMTP_XSTR(PROXY_V1_MAX) " bytes)");
		if (len > sizeof v1_start - 1 &&
		    (fault = v1_prefix_fault(s + sizeof v1_start - 1,
		    len - (sizeof v1_start - 1))) != NULL)
			return bad(why, fault);
		return need_more(need, len + 1 > V1_SHORTEST ? len + 1 :
		    V1_SHORTEST);
	}
	if (s[end - 1] != '\r')
		return bad(why, "v1: a LF without CR");
	/* Whole, the line is held to what held its beginning. */
	s += sizeof v1_start - 1;
	len = end - 1 - (sizeof v1_start - 1);
	if ((fault = v1_prefix_fault(s, len)) != NULL)
		return bad(why, fault);
	memset(h, 0, sizeof *h);
	h->version = 1;
	h->command = PROXY_CMD_PROXY;
	h->len = end + 1;
	return v1_line(s, len, h, why);
}

/* -------------------------------------------------------------- v2 */

/* The fixed part so far (up to 16 bytes): NULL, or what is wrong. */
static const char *
v2_fixed_fault(const unsigned char *buf, size_t len)
{
	if (memcmp(buf, v2_signature, min_size(len, sizeof v2_signature)))
		return "not a PROXY header";
	if (len > 12 && buf[12] >> 4 != 2)
		return "v2: unsupported version";
	if (len > 12 && (buf[12] & 0x0f) > PROXY_CMD_PROXY)
		return "v2: unknown command";
	/* LOCAL: the family is to be ignored. */
	if (len > 13 && (buf[12] & 0x0f) == PROXY_CMD_PROXY &&
	    buf[13] >> 4 > V2_UNIX)
		return "v2: unsupported address family";
	if (len > 13 && (buf[12] & 0x0f) == PROXY_CMD_PROXY &&
	    (buf[13] & 0x0f) > V2_DGRAM)
		return "v2: unsupported transport protocol";
	if (len > 15 && get_be(buf + 14, 2) > PROXY_V2_LEN_MAX)
		return "v2: oversized (length over "
		    SMTP_XSTR(PROXY_V2_LEN_MAX) ")";
	return NULL;
}

/* Do the TLVs in p (len bytes) each fit?  0, or -1. */
static int
v2_tlvs_fit(const unsigned char *p, size_t len)
{
	size_t at = 0, value;

	while (at < len) {
		if (len - at < 3)
			return -1;
		value = (size_t)get_be(p + at + 1, 2);
		if (len - at - 3 < value)
			return -1;
		at += 3 + value;
	}
	return 0;
}

/* The source and destination of an AF_INET or AF_INET6 block. */
static void
v2_addresses(const unsigned char *p, int family, struct proxy_header *h)
{
	size_t n = family == V2_INET ? 4 : 16;

	if (family == V2_INET6) {
		addr_set_v6(&h->src, p);
		addr_set_v6(&h->dst, p + 16);
	} else {
		h->src.family = h->dst.family = AF_INET;
		memcpy(h->src.bytes, p, 4);
		memcpy(h->dst.bytes, p + 4, 4);
	}
	h->src_port = (unsigned)get_be(p + 2 * n, 2);
	h->dst_port = (unsigned)get_be(p + 2 * n + 2, 2);
	h->known = 1;
}

/* A whole header, its fixed part checked: body bytes follow the 16. */
static enum proxy_result
v2_body(const unsigned char *buf, size_t body, struct proxy_header *h,
    const char **why)
{
	static const size_t block[] = { 0, 12, 36, 216 };
	int family = buf[13] >> 4, proto = buf[13] & 0x0f;

	memset(h, 0, sizeof *h);
	h->version = 2;
	h->len = PROXY_V2_HEAD + body;
	h->command = (buf[12] & 0x0f) == PROXY_CMD_PROXY ? PROXY_CMD_PROXY :
	    PROXY_CMD_LOCAL;
	/* LOCAL, or UNSPEC: the block is skipped whatever it holds. */
	if (h->command == PROXY_CMD_LOCAL || family == V2_UNSPEC ||
	    proto == V2_UNSPEC)
		return PROXY_OK;
	if (block[family] > body)
		return bad(why, "v2: addresses longer than the header");
	if (v2_tlvs_fit(buf + PROXY_V2_HEAD + block[family],
	    body - block[family]) != 0)
		return bad(why, "v2: a TLV runs past the header's end");
	/* AF_UNIX and datagrams fall back to UNSPEC: nothing to judge. */
	if ((family == V2_INET || family == V2_INET6) && proto == V2_STREAM)
		v2_addresses(buf + PROXY_V2_HEAD, family, h);
	return PROXY_OK;
}

static enum proxy_result
parse_v2(const unsigned char *buf, size_t len, struct proxy_header *h,
    size_t *need, const char **why)
{
	const char *fault = v2_fixed_fault(buf, len);
	size_t body;

	if (fault != NULL)
		return bad(why, fault);
	if (len < PROXY_V2_HEAD)
		return need_more(need, PROXY_V2_HEAD);
	body = (size_t)get_be(buf + 14, 2);
	if (len < PROXY_V2_HEAD + body)
		return need_more(need, PROXY_V2_HEAD + body);
	return v2_body(buf, body, h, why);
}

enum proxy_result
proxy_parse(const unsigned char *buf, size_t len, struct proxy_header *h,
    size_t *need, const char **why)
{
	if (len == 0)
		return need_more(need, 1);
	if (buf[0] == v1_start[0])
		return parse_v1(buf, len, h, need, why);
	if (buf[0] == v2_signature[0])
		return parse_v2(buf, len, h, need, why);
	return bad(why, "not a PROXY header");
}

/* -------------------------------------------------------- building */

/* Will h go out as IPv6 (either address is)? */
static int
goes_as_v6(const struct proxy_header *h)
{
	return h->src.family == AF_INET6 || h->dst.family == AF_INET6;
}

/* a as v1 writes it: IPv6 in hexadecimal groups, a mapped IPv4 too. */
static const char *
v1_text(const struct addr *a, int v6, char *buf, size_t size)
{
	if (v6 && a->family == AF_INET)
		snprintf(buf, size, "::ffff:%x:%x",
		    (unsigned)a->bytes[0] << 8 | a->bytes[1],
		    (unsigned)a->bytes[2] << 8 | a->bytes[3]);
	else
		addr_format(a, buf, size);
	return buf;
}

size_t
proxy_build_v1(char *buf, size_t size, const struct proxy_header *h)
{
	char src[ADDR_TEXT_MAX], dst[ADDR_TEXT_MAX];
	int n, v6 = goes_as_v6(h);

	if (h->command != PROXY_CMD_PROXY)
		return 0;
	if (!h->known)
		n = snprintf(buf, size, "PROXY UNKNOWN\r\n");
	else if (h->src_port > 65535 || h->dst_port > 65535)
		return 0;
	else
		n = snprintf(buf, size, "PROXY TCP%c %s %s %u %u\r\n",
		    v6 ? '6' : '4', v1_text(&h->src, v6, src, sizeof src),
		    v1_text(&h->dst, v6, dst, sizeof dst), h->src_port,
		    h->dst_port);
	return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

size_t
proxy_build_v2(unsigned char *buf, size_t size,
    const struct proxy_header *h)
{
	int addresses = h->command == PROXY_CMD_PROXY && h->known;
	int v6 = goes_as_v6(h);
	size_t block = !addresses ? 0 : v6 ? 36 : 12, n = v6 ? 16 : 4;

	if (size < PROXY_V2_HEAD + block ||
	    (addresses && (h->src_port > 65535 || h->dst_port > 65535)))
		return 0;
	memcpy(buf, v2_signature, sizeof v2_signature);
	buf[12] = 0x20 | (h->command == PROXY_CMD_PROXY);
	buf[13] = !addresses ? 0 : (unsigned char)(v6 ? 0x21 : 0x11);
	put_be(buf + 14, block, 2);
	if (addresses) {
		unsigned char *p = buf + PROXY_V2_HEAD;

		if (v6) {
			addr_as_v6(&h->src, p);
			addr_as_v6(&h->dst, p + 16);
		} else {
			memcpy(p, h->src.bytes, 4);
			memcpy(p + 4, h->dst.bytes, 4);
		}
		put_be(p + 2 * n, h->src_port, 2);
		put_be(p + 2 * n + 2, h->dst_port, 2);
	}
	return PROXY_V2_HEAD + block;
}

/* --------------------------------------------------------- reading */

void
proxy_reader_init(struct proxy_reader *r)
{
	r->have = 0;
}

/* Take n bytes off fd (peeked already, so there) into p: 0, or -1. */
static int
consume(int fd, unsigned char *p, size_t n)
{
	ssize_t got;

	while (n > 0) {
		got = recv(fd, p, n, MSG_DONTWAIT);
		if (got < 0 && errno == EINTR)
			continue;
		if (got == 0)
			errno = 0;	/* an end, not an error */
		if (got <= 0)
			return -1;
		p += got;
		n -= (size_t)got;
	}
	return 0;
}

enum proxy_result
proxy_read(struct proxy_reader *r, int fd, struct proxy_header *h,
    const char **why)
{
	enum proxy_result res;
	size_t need, take;
	ssize_t got;

	got = recv(fd, r->buf + r->have, sizeof r->buf - r->have,
	    MSG_PEEK | MSG_DONTWAIT);
	if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		return PROXY_NEED_MORE;
	if (got < 0)
		return bad(why, strerror(errno));
	if (got == 0)
		return bad(why, r->have ? "the connection ended inside the "
		    "header" : "the connection ended before a header");
	res = proxy_parse(r->buf, r->have + (size_t)got, h, &need, why);
	if (res == PROXY_BAD)
		return res;
	/* Complete: its bytes and no more.  Not yet: all of it is its. */
	take = res == PROXY_OK ? h->len - r->have : (size_t)got;
	if (consume(fd, r->buf + r->have, take) != 0)
		return bad(why, errno ? strerror(errno) : "the connection "
		    "ended inside the header");
	r->have += take;
	return res;
}

const char *
proxy_why_late(const struct proxy_reader *r, uint64_t timeout_ms, char *buf,
    size_t size)
{
	char took[32];

	duration_format(timeout_ms, took, sizeof took);
	snprintf(buf, size, r->have ? "incomplete after %ss" :
	    "none within %ss", took);
	return buf;
}

size_t
proxy_header_for(int version, const struct peer *remote,
    const struct peer *local, unsigned char *buf, size_t size)
{
	struct proxy_header h;

	memset(&h, 0, sizeof h);
	h.command = PROXY_CMD_PROXY;
	h.known = remote->known && local->known;
	if (h.known) {
		h.src = remote->addr;
		h.dst = local->addr;
		h.src_port = (unsigned)strtoul(remote->port, NULL, 10);
		h.dst_port = (unsigned)strtoul(local->port, NULL, 10);
	}
	return version == 1 ? proxy_build_v1((char *)buf, size, &h) :
	    proxy_build_v2(buf, size, &h);
}
