/* addr.c - IP addresses and prefixes; see addr.h for the contract. */
#include "addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

unsigned
addr_bits(int family)
{
	return family == AF_INET ? 32 : 128;
}

/* ::ffff:0:0/96, compared bytewise: v6 may sit anywhere in a header. */
static const unsigned char v4mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

void
addr_set_v6(struct addr *a, const unsigned char *v6)
{
	memset(a->bytes, 0, sizeof a->bytes);
	if (memcmp(v6, v4mapped, sizeof v4mapped) == 0) {
		a->family = AF_INET;
		memcpy(a->bytes, v6 + 12, 4);
	} else {
		a->family = AF_INET6;
		memcpy(a->bytes, v6, 16);
	}
}

void
addr_as_v6(const struct addr *a, unsigned char *v6)
{
	if (a->family == AF_INET6) {
		memcpy(v6, a->bytes, 16);
		return;
	}
	memcpy(v6, v4mapped, sizeof v4mapped);
	memcpy(v6 + sizeof v4mapped, a->bytes, 4);
}

int
addr_parse(const char *s, struct addr *a)
{
	struct in6_addr a6;

	if (strchr(s, ':') == NULL) {
		a->family = AF_INET;
		memset(a->bytes, 0, sizeof a->bytes);
		return inet_pton(AF_INET, s, a->bytes) == 1 ? 0 : -1;
	}
	if (inet_pton(AF_INET6, s, &a6) != 1)
		return -1;
	addr_set_v6(a, a6.s6_addr);
	return 0;
}

int
addr_from_sockaddr(const struct sockaddr *sa, struct addr *a)
{
	if (sa->sa_family == AF_INET) {
		a->family = AF_INET;
		memset(a->bytes, 0, sizeof a->bytes);
		memcpy(a->bytes,
		    &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family != AF_INET6)
		return -1;
	addr_set_v6(a,
	    ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr);
	return 0;
}

int
addr_cut(struct addr *a, unsigned prefix)
{
	unsigned nbytes = addr_bits(a->family) / 8, i;
	int had = 0;

	for (i = 0; i < nbytes; i++) {
		unsigned char keep;

		if (prefix >= 8 * (i + 1))
			continue;
		keep = prefix <= 8 * i ? 0 :
		    (unsigned char)(0xff << (8 - (prefix - 8 * i)));
		if (a->bytes[i] & (unsigned char)~keep)
			had = 1;
		a->bytes[i] &= keep;
	}
	return had;
}

int
addr_in_prefix(const struct addr *net, unsigned prefix, const struct addr *a)
{
	unsigned full = prefix / 8, rest = prefix % 8;
	unsigned char mask;

	if (net->family != a->family)
		return 0;
	if (memcmp(net->bytes, a->bytes, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (unsigned char)(0xff << (8 - rest));
	return (a->bytes[full] & mask) == net->bytes[full];
}

/* The length after the slash: 1 to 3 digits, at most bits. */
static int
parse_length(const char *s, size_t len, unsigned bits, unsigned *prefix,
    const char **why)
{
	unsigned n = 0;
	size_t i;

	if (len == 0 || len > 3) {
		*why = "bad prefix length";
		return -1;
	}
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9') {
			*why = "bad prefix length";
			return -1;
		}
		n = n * 10 + (unsigned)(s[i] - '0');
	}
	if (n > bits) {
		*why = bits == 32 ? "prefix length out of range (0-32 for IPv4)" :
		    "prefix length out of range (0-128 for IPv6)";
		return -1;
	}
	*prefix = n;
	return 0;
}

int
addr_parse_prefix(const char *s, size_t len, struct addr *net,
    unsigned *prefix, const char **why)
{
	char text[PREFIX_TEXT_MAX];
	const char *slash;
	size_t alen;

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
	net->family = strchr(text, ':') ? AF_INET6 : AF_INET;
	memset(net->bytes, 0, sizeof net->bytes);
	if (inet_pton(net->family, text, net->bytes) != 1)
		goto badaddr;
	*prefix = addr_bits(net->family);
	if (slash && parse_length(s + alen + 1, len - alen - 1,
	    addr_bits(net->family), prefix, why) != 0)
		return -1;
	if (addr_cut(net, *prefix)) {
		*why = "host bits set beyond the prefix length";
		return -1;
	}
	return 0;
badaddr:
	*why = "not an IPv4 or IPv6 address";
	return -1;
}

const char *
addr_format(const struct addr *a, char *buf, size_t size)
{
	if (inet_ntop(a->family, a->bytes, buf, (socklen_t)size) == NULL &&
	    size > 0)
		buf[0] = '\0';
	return buf;
}

uint64_t
get_le(const unsigned char *p, unsigned n)
{
	uint64_t v = 0;

	while (n-- > 0)
		v = v << 8 | p[n];
	return v;
}

void
put_le(unsigned char *p, uint64_t v, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++, v >>= 8)
		p[i] = (unsigned char)v;
}

uint64_t
get_be(const unsigned char *p, unsigned n)
{
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

void
put_be(unsigned char *p, uint64_t v, unsigned n)
{
	while (n-- > 0) {
		p[n] = (unsigned char)v;
		v >>= 8;
	}
}
