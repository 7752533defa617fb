/*
 * proxyfuzz.h - what the PROXY protocol's fuzz targets (fuzz_proxy_v1,
 * fuzz_proxy_v2) ask of proxy.c, whatever the input.  Each target is one
 * source file: this is included, not linked.
 *
 *  - proxy_parse() decides once: over the input's prefixes, the result is
 *    NEED_MORE up to some length, then the same for every longer one (BAD
 *    stays BAD with a reason; OK stays OK with the same header), so that
 *    a reader may parse what it has so far and ask again as more comes.
 *    NEED_MORE names a length past what it had, within PROXY_MAX.
 *  - an OK header is no longer than its version's bound, parses the same
 *    on its own, and is NEED_MORE one byte short;
 *  - parse(build(x)) == x: what a header says, built again as v1 and v2,
 *    and any header made from the input's bytes;
 *  - proxy_read() on a socket, the input arriving in pieces, says what
 *    proxy_parse() says of the whole, and leaves exactly the bytes after
 *    the header unread.
 */
#ifndef SENDWRAP_FUZZ_PROXYFUZZ_H
#define SENDWRAP_FUZZ_PROXYFUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy.h"

#define PREFIXES_MAX (PROXY_MAX + 16)	/* prefixes looked at, each input */

/* Do a and b say the same (the addresses only where they are known)? */
static int
same_header(const struct proxy_header *a, const struct proxy_header *b)
{
	if (a->version != b->version || a->command != b->command ||
	    a->known != b->known || a->len != b->len)
		return 0;
	return !a->known || (memcmp(&a->src, &b->src, sizeof a->src) == 0 &&
	    memcmp(&a->dst, &b->dst, sizeof a->dst) == 0 &&
	    a->src_port == b->src_port && a->dst_port == b->dst_port);
}

/* build_vN(x) parses back to x, or (v1 LOCAL) cannot be built. */
static void
check_built(const struct proxy_header *x, int version)
{
	unsigned char buf[PROXY_MAX + 1];
	struct proxy_header want = *x, got;
	const char *why = NULL;
	size_t len, need;

	len = version == 1 ? proxy_build_v1((char *)buf, sizeof buf, x) :
	    proxy_build_v2(buf, sizeof buf, x);
	if (version == 1 && x->command == PROXY_CMD_LOCAL) {
		if (len != 0)
			abort();
		return;
	}
	if (len == 0 || proxy_parse(buf, len, &got, &need, &why) != PROXY_OK)
		abort();
	want.version = version;
	want.len = len;
	if (!same_header(&got, &want))
		abort();
}

/* A canonical address (an IPv6 one unmapped, unused bytes 0) from p. */
static void
address_from(const unsigned char *p, int v6, struct addr *a)
{
	memset(a, 0, sizeof *a);
	if (v6) {
		addr_set_v6(a, p);
		return;
	}
	a->family = AF_INET;
	memcpy(a->bytes, p, 4);
}

/* x made from the first 37 bytes of p (n at least that): flags, two
 * addresses of 16 bytes, two ports. */
static int
header_from(const unsigned char *p, size_t n, struct proxy_header *x)
{
	if (n < 37)
		return 0;
	memset(x, 0, sizeof *x);
	x->command = p[0] & 1 ? PROXY_CMD_PROXY : PROXY_CMD_LOCAL;
	x->known = x->command == PROXY_CMD_PROXY && (p[0] & 2);
	if (x->known) {
		address_from(p + 1, p[0] & 4, &x->src);
		address_from(p + 17, p[0] & 8, &x->dst);
		x->src_port = (unsigned)get_be(p + 33, 2);
		x->dst_port = (unsigned)get_be(p + 35, 2);
	}
	return 1;
}

/* Every prefix of buf: NEED_MORE, then one decision that holds. */
static void
check_prefixes(const unsigned char *buf, size_t len)
{
	struct proxy_header first, h;
	enum proxy_result decided = PROXY_NEED_MORE, r;
	const char *why;
	size_t n, need, top = len < PREFIXES_MAX ? len : PREFIXES_MAX;

	memset(&h, 0, sizeof h);
	for (n = 0; n <= top; n++) {
		why = NULL;
		need = 0;
		r = proxy_parse(buf, n, &h, &need, &why);
		if (r == PROXY_NEED_MORE && (need <= n || need > PROXY_MAX))
			abort();
		if (r == PROXY_BAD && (why == NULL || *why == '\0'))
			abort();
		if (decided == PROXY_NEED_MORE) {
			decided = r;
			first = h;
			continue;
		}
		if (r != decided || (r == PROXY_OK && !same_header(&h, &first)))
			abort();
	}
}

/* An OK header on its own, one byte short, and built again. */
static void
check_header(const unsigned char *buf, const struct proxy_header *h)
{
	struct proxy_header again;
	const char *why;
	size_t need;

	if (h->len == 0 || (h->version == 1 && h->len > PROXY_V1_MAX) ||
	    (h->version == 2 && h->len > PROXY_MAX) ||
	    (h->version != 1 && h->version != 2))
		abort();
	if (proxy_parse(buf, h->len, &again, &need, &why) != PROXY_OK ||
	    !same_header(&again, h))
		abort();
	if (proxy_parse(buf, h->len - 1, &again, &need, &why) !=
	    PROXY_NEED_MORE || need > h->len)
		abort();
	check_built(h, 1);
	check_built(h, 2);
}

/* The result proxy_read() comes to, buf sent in pieces of the sizes the
 * bytes of cuts say; what it leaves unread goes to rest. */
static enum proxy_result
read_in_pieces(const unsigned char *buf, size_t len,
    const unsigned char *cuts, size_t ncuts, struct proxy_header *h,
    unsigned char *rest, size_t *nrest)
{
	enum proxy_result r = PROXY_NEED_MORE;
	struct proxy_reader reader;
	const char *why;
	size_t at = 0, k = 0, piece;
	ssize_t got;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		abort();
	proxy_reader_init(&reader);
	while (r == PROXY_NEED_MORE && at < len) {
		piece = ncuts ? 1 + cuts[k++ % ncuts] : len;
		if (piece > len - at)
			piece = len - at;
		if (send(sv[0], buf + at, piece, 0) != (ssize_t)piece)
			abort();
		at += piece;
		r = proxy_read(&reader, sv[1], h, &why);
	}
	/* The rest of the input, then what is left to read. */
	if (at < len && send(sv[0], buf + at, len - at, 0) !=
	    (ssize_t)(len - at))
		abort();
	got = recv(sv[1], rest, len + 1, MSG_DONTWAIT);
	*nrest = got < 0 ? 0 : (size_t)got;
	close(sv[0]);
	close(sv[1]);
	return r;
}

/* proxy_read() agrees with proxy_parse() of the whole, and takes off
 * exactly the header. */
static void
check_reader(const unsigned char *buf, size_t len, const unsigned char *cuts,
    size_t ncuts)
{
	struct proxy_header whole, h;
	unsigned char *rest = malloc(len + 1);
	enum proxy_result want, got;
	const char *why;
	size_t need, nrest;

	if (rest == NULL)
		return;
	want = proxy_parse(buf, len, &whole, &need, &why);
	got = read_in_pieces(buf, len, cuts, ncuts, &h, rest, &nrest);
	if (got != want)
		abort();
	if (want == PROXY_OK && (!same_header(&h, &whole) ||
	    nrest != len - whole.len ||
	    memcmp(rest, buf + whole.len, nrest) != 0))
		abort();
	if (want == PROXY_NEED_MORE && nrest != 0)
		abort();
	free(rest);
}

/* All of the above for buf; built = 1 or 2: that version built from the
 * input's own bytes (raw) too. */
static void
check_proxy(const unsigned char *buf, size_t len, const unsigned char *raw,
    size_t nraw, int built)
{
	struct proxy_header h, x;
	const char *why;
	size_t need;

	check_prefixes(buf, len);
	if (proxy_parse(buf, len, &h, &need, &why) == PROXY_OK)
		check_header(buf, &h);
	if (header_from(raw, nraw, &x))
		check_built(&x, built);
	check_reader(buf, len, raw, nraw < 8 ? nraw : 8);
}

#endif
