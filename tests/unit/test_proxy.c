/*
 * test_proxy.c - cmocka tests for proxy.c: the PROXY protocol's v1 and
 * v2 headers, parsed (the spec's examples, its limits, every way a header
 * can be wrong, every prefix of a good one), built (and parsed back), and
 * read off a socket without taking a byte of the client's.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy.h"

#define V2_SIG "\r\n\r\n\0\r\nQUIT\n"

/* Parse len bytes; fail unless the result is want (why: its message). */
static enum proxy_result
parse(const void *buf, size_t len, struct proxy_header *h, size_t *need,
    const char **why)
{
	*need = 0;
	*why = NULL;
	memset(h, 0xa5, sizeof *h);
	return proxy_parse(buf, len, h, need, why);
}

/* a is the address text (of its family: IPv4 has no ':'). */
static void
addr_is(const struct addr *a, const char *text)
{
	char buf[ADDR_TEXT_MAX];

	assert_int_equal(a->family, strchr(text, ':') ? AF_INET6 : AF_INET);
	assert_string_equal(addr_format(a, buf, sizeof buf), text);
}

/* A good header of len bytes whose every proper prefix needs more. */
static void
every_prefix_needs_more(const void *buf, size_t len)
{
	struct proxy_header h;
	const char *why;
	size_t i, need;

	for (i = 0; i < len; i++) {
		if (parse(buf, i, &h, &need, &why) != PROXY_NEED_MORE) {
			print_error("prefix of %zu bytes: %s\n", i,
			    why ? why : "not NEED_MORE");
			fail();
		}
		assert_true(need > i && need <= len);
	}
}

/* h, of len bytes, names the client src:sport, which reached dst:dport. */
static void
names_client(const struct proxy_header *h, int version, size_t len,
    const char *src, unsigned sport, const char *dst, unsigned dport)
{
	assert_int_equal(h->version, version);
	assert_int_equal(h->command, PROXY_CMD_PROXY);
	assert_int_equal(h->len, len);
	assert_int_equal(h->known, 1);
	addr_is(&h->src, src);
	addr_is(&h->dst, dst);
	assert_int_equal(h->src_port, sport);
	assert_int_equal(h->dst_port, dport);
}

/* A v1 line that parses: known, its addresses and ports. */
static void
v1_ok(const char *line, const char *src, const char *dst,
    unsigned sport, unsigned dport)
{
	size_t len = strlen(line), need;
	struct proxy_header h;
	const char *why;

	if (parse(line, len, &h, &need, &why) != PROXY_OK) {
		print_error("%s: %s\n", line, why ? why : "not OK");
		fail();
	}
	names_client(&h, 1, len, src, sport, dst, dport);
	every_prefix_needs_more(line, len);
}

/* Refused with a message containing frag. */
static void
bad_len(const void *buf, size_t len, const char *frag)
{
	struct proxy_header h;
	const char *why;
	size_t need;

	if (parse(buf, len, &h, &need, &why) != PROXY_BAD || why == NULL ||
	    strstr(why, frag) == NULL) {
		print_error("%.*s: why=%s, want BAD and \"%s\"\n", (int)len,
		    (const char *)buf, why ? why : "(null)", frag);
		fail();
	}
}

static void
bad(const char *line, const char *frag)
{
	bad_len(line, strlen(line), frag);
}

static void
test_v1_spec_example(void **state)
{
	static const char in[] = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 "
	    "443\r\nGET / HTTP/1.1\r\nHost: 192.168.0.11\r\n\r\n";
	struct proxy_header h;
	const char *why;
	size_t need;

	(void)state;
	assert_int_equal(parse(in, sizeof in - 1, &h, &need, &why), PROXY_OK);
	assert_int_equal(h.len, strlen("PROXY TCP4 192.168.0.1 192.168.0.11 "
	    "56324 443\r\n"));
	addr_is(&h.src, "192.168.0.1");
	addr_is(&h.dst, "192.168.0.11");
	assert_int_equal(h.src_port, 56324);
	assert_int_equal(h.dst_port, 443);
}

static void
test_v1_lines(void **state)
{
	(void)state;
	v1_ok("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n",
	    "255.255.255.255", "255.255.255.255", 65535, 65535);
	v1_ok("PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n", "0.0.0.0",
	    "0.0.0.0", 0, 0);
	v1_ok("PROXY TCP6 2001:db8::1 2001:DB8::25 40000 25\r\n",
	    "2001:db8::1", "2001:db8::25", 40000, 25);
	/* The longest TCP6 line the spec counts: 104 bytes. */
	v1_ok("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535, 65535);
	/* An IPv4-mapped source is IPv4, as peer.h has it. */
	v1_ok("PROXY TCP6 ::ffff:192.0.2.7 ::ffff:c000:201 1 2\r\n",
	    "192.0.2.7", "192.0.2.1", 1, 2);
}

static void
test_v1_unknown(void **state)
{
	/* The worst case the spec counts: 107 bytes with the CRLF. */
	static const char longest[] = "PROXY UNKNOWN "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
	static const char *const lines[] = { "PROXY UNKNOWN\r\n",
	    "PROXY UNKNOWN whatever the sender likes\r\n", longest };
	struct proxy_header h;
	const char *why;
	size_t i, need;

	(void)state;
	assert_int_equal(strlen(longest), PROXY_V1_MAX);
	for (i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		assert_int_equal(parse(lines[i], strlen(lines[i]), &h, &need,
		    &why), PROXY_OK);
		assert_int_equal(h.version, 1);
		assert_int_equal(h.command, PROXY_CMD_PROXY);
		assert_int_equal(h.known, 0);
		assert_int_equal(h.len, strlen(lines[i]));
		every_prefix_needs_more(lines[i], strlen(lines[i]));
	}
}

static void
test_v1_bad(void **state)
{
	char line[200];

	(void)state;
	bad("EHLO client.example\r\n", "not a PROXY header");
	bad("GET / HTTP/1.0\r\n", "not a PROXY header");
	bad("PROXI", "not a PROXY header");
	bad("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "not a PROXY header");
	bad("PROXY\r\n", "not a PROXY header");
	bad("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "unknown protocol");
	bad("PROXY UDP4", "unknown protocol");	/* before its end */
	bad("PROXY UNKNOWNS\r\n", "unknown protocol");
	bad("PROXY TCP4\r\n", "malformed");
	bad("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "malformed");
	bad("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "malformed");
	bad("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", "malformed");
	bad("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "malformed");
	bad("PROXY TCP4 1.2.3.4 5.6.7.8 1 2x", "malformed");	/* early */
	bad("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", "source address");
	bad("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", "source address");
	bad("PROXY TCP4 ::1 5.6.7.8 1 2\r\n", "source address");
	bad("PROXY TCP6 ::1 5.6.7.8 1 2\r\n", "destination address");
	bad("PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "source address");
	bad("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", "source port");
	bad("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "source port");
	bad("PROXY TCP4 1.2.3.4 5.6.7.8 1 100000\r\n", "destination port");
	bad("PROXY TCP4 1.2.3.4 5.6.7.8 1 :\r\n", "destination port");
	/* Only CRLF ends the line. */
	bad("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "LF without CR");
	bad("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", "CR without LF");
	bad("PROXY UNKNOWN\r\r\n", "CR without LF");
	/* 108 bytes with no CRLF in the first 107. */
	memset(line, 'f', sizeof line);
	memcpy(line, "PROXY UNKNOWN ", 14);
	memcpy(line + 106, "\r\n", 2);
	bad_len(line, 108, "oversized");
	bad_len(line, PROXY_V1_MAX, "oversized");
	bad_len("PROXY TCP4 1.2.3.4\0", 19, "malformed");
	/* A NUL is no end of an address, in a whole line either. */
	bad_len("PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n", 33, "malformed");
}

/* ------------------------------------------------------------- v2 */

/* A v2 header: the 16 bytes, then body (blen bytes). */
static size_t
v2(unsigned char *out, unsigned char ver_cmd, unsigned char fam,
    const void *body, size_t blen)
{
	memcpy(out, V2_SIG, 12);
	out[12] = ver_cmd;
	out[13] = fam;
	out[14] = (unsigned char)(blen >> 8);
	out[15] = (unsigned char)blen;
	memcpy(out + 16, body, blen);
	return 16 + blen;
}

static const unsigned char v4_block[12] = { 192, 0, 2, 1, 198, 51, 100, 25,
	0xc3, 0x50, 0x00, 0x19 };	/* ports 50000 and 25 */

static void
test_v2_ipv4_with_tlvs(void **state)
{
	unsigned char body[64], hdr[100], all[120];
	/* NOOP of 2 bytes, then a custom one of none. */
	static const unsigned char tlvs[] = { 0x04, 0, 2, 'x', 'y', 0xe0, 0,
	    0 };
	struct proxy_header h;
	const char *why;
	size_t len, need;

	(void)state;
	memcpy(body, v4_block, 12);
	memcpy(body + 12, tlvs, sizeof tlvs);
	len = v2(hdr, 0x21, 0x11, body, 12 + sizeof tlvs);
	memcpy(all, hdr, len);
	memcpy(all + len, "EHLO x\r\n", 8);
	assert_int_equal(parse(all, len + 8, &h, &need, &why), PROXY_OK);
	names_client(&h, 2, len, "192.0.2.1", 50000, "198.51.100.25", 25);
	every_prefix_needs_more(hdr, len);
}

static void
test_v2_ipv6(void **state)
{
	unsigned char body[36], hdr[100];
	struct proxy_header h;
	const char *why;
	size_t len, need;

	(void)state;
	memset(body, 0, sizeof body);
	inet_pton(AF_INET6, "2001:db8::7", body);
	inet_pton(AF_INET6, "::ffff:192.0.2.25", body + 16);
	body[32] = 0x12;
	body[33] = 0x34;
	body[35] = 25;
	len = v2(hdr, 0x21, 0x21, body, sizeof body);
	assert_int_equal(parse(hdr, len, &h, &need, &why), PROXY_OK);
	names_client(&h, 2, len, "2001:db8::7", 0x1234, "192.0.2.25", 25);
	every_prefix_needs_more(hdr, len);
}

/* Headers that are good but name no client: the connection's own
 * addresses stand. */
static void
test_v2_nothing_to_judge(void **state)
{
	static const struct { unsigned char ver_cmd, fam; size_t blen;
	    enum proxy_command cmd; } cases[] = {
		{ 0x20, 0x00, 0, PROXY_CMD_LOCAL },	/* health check */
		{ 0x20, 0x11, 12, PROXY_CMD_LOCAL },	/* with addresses */
		{ 0x20, 0xff, 5, PROXY_CMD_LOCAL },	/* family ignored */
		{ 0x21, 0x00, 0, PROXY_CMD_PROXY },	/* UNSPEC */
		{ 0x21, 0x10, 12, PROXY_CMD_PROXY },	/* INET, UNSPEC */
		{ 0x21, 0x00, 7, PROXY_CMD_PROXY },	/* UNSPEC, some bytes */
		{ 0x21, 0x31, 216, PROXY_CMD_PROXY },	/* AF_UNIX stream */
		{ 0x21, 0x32, 216, PROXY_CMD_PROXY },	/* AF_UNIX dgram */
		{ 0x21, 0x12, 12, PROXY_CMD_PROXY },	/* UDP over IPv4 */
		{ 0x21, 0x22, 36, PROXY_CMD_PROXY },	/* UDP over IPv6 */
	};
	unsigned char body[300], hdr[400];
	struct proxy_header h;
	const char *why;
	size_t i, len, need;

	(void)state;
	memset(body, 0, sizeof body);
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		len = v2(hdr, cases[i].ver_cmd, cases[i].fam, body,
		    cases[i].blen);
		assert_int_equal(parse(hdr, len, &h, &need, &why), PROXY_OK);
		assert_int_equal(h.command, cases[i].cmd);
		assert_int_equal(h.known, 0);
		assert_int_equal(h.len, len);
	}
}

static void
test_v2_bad(void **state)
{
	unsigned char body[PROXY_V2_LEN_MAX + 1], hdr[PROXY_MAX + 20];
	struct proxy_header h;
	const char *why;
	size_t len, need;

	(void)state;
	memset(body, 0, sizeof body);
	memcpy(body, v4_block, 12);
	len = v2(hdr, 0x11, 0x11, body, 12);
	bad_len(hdr, len, "unsupported version");
	bad_len(hdr, 13, "unsupported version");	/* at once */
	len = v2(hdr, 0x22, 0x11, body, 12);
	bad_len(hdr, len, "unknown command");
	len = v2(hdr, 0x21, 0x41, body, 12);
	bad_len(hdr, len, "unsupported address family");
	bad_len(hdr, 14, "unsupported address family");
	len = v2(hdr, 0x21, 0x13, body, 12);
	bad_len(hdr, len, "unsupported transport protocol");
	len = v2(hdr, 0x21, 0x11, body, 8);
	bad_len(hdr, len, "addresses longer");
	len = v2(hdr, 0x21, 0x21, body, 35);
	bad_len(hdr, len, "addresses longer");
	len = v2(hdr, 0x21, 0x31, body, 215);
	bad_len(hdr, len, "addresses longer");
	/* A TLV must fit: 2 bytes are no TLV, nor is one longer than left. */
	len = v2(hdr, 0x21, 0x11, body, 14);
	bad_len(hdr, len, "TLV");
	body[12] = 0x04;
	body[14] = 3;
	len = v2(hdr, 0x21, 0x11, body, 17);
	bad_len(hdr, len, "TLV");
	/* The length bound: 1024 is taken, 1025 is oversized at once. */
	memset(body + 12, 0, sizeof body - 12);
	body[12] = 0x04;
	body[13] = (PROXY_V2_LEN_MAX - 15) >> 8;
	body[14] = (PROXY_V2_LEN_MAX - 15) & 0xff;
	len = v2(hdr, 0x21, 0x11, body, PROXY_V2_LEN_MAX);
	assert_int_equal(len, PROXY_MAX);
	assert_int_equal(parse(hdr, 16, &h, &need, &why), PROXY_NEED_MORE);
	assert_int_equal(need, PROXY_MAX);
	assert_int_equal(parse(hdr, len, &h, &need, &why), PROXY_OK);
	assert_int_equal(h.len, PROXY_MAX);
	len = v2(hdr, 0x21, 0x11, body, PROXY_V2_LEN_MAX + 1);
	bad_len(hdr, 16, "oversized");
	/* Not the signature, from its first differing byte. */
	memcpy(hdr, "\r\n\r\nQUIT", 8);
	bad_len(hdr, 5, "not a PROXY header");
	bad_len("\r\n\r\n\r", 5, "not a PROXY header");
}

static void
test_v2_needs(void **state)
{
	unsigned char hdr[100];
	struct proxy_header h;
	const char *why;
	size_t need;

	(void)state;
	v2(hdr, 0x21, 0x11, v4_block, 12);
	assert_int_equal(parse(hdr, 0, &h, &need, &why), PROXY_NEED_MORE);
	assert_int_equal(need, 1);
	assert_int_equal(parse(hdr, 3, &h, &need, &why), PROXY_NEED_MORE);
	assert_int_equal(need, 16);
	assert_int_equal(parse(hdr, 16, &h, &need, &why), PROXY_NEED_MORE);
	assert_int_equal(need, 28);
	assert_int_equal(parse("PROX", 4, &h, &need, &why), PROXY_NEED_MORE);
	assert_int_equal(need, 15);
}

/* -------------------------------------------------------- building */

static struct proxy_header
header(int command, const char *src, unsigned sport, const char *dst,
    unsigned dport)
{
	struct proxy_header h;

	memset(&h, 0, sizeof h);
	h.command = command;
	if (src) {
		assert_int_equal(addr_parse(src, &h.src), 0);
		assert_int_equal(addr_parse(dst, &h.dst), 0);
		h.known = 1;
		h.src_port = sport;
		h.dst_port = dport;
	}
	return h;
}

/* build, then parse: the same header back. */
static void
round_trip(const struct proxy_header *x, int version, const char *text)
{
	unsigned char buf[PROXY_MAX + 1];
	struct proxy_header h;
	const char *why;
	size_t len, need;

	len = version == 1 ? proxy_build_v1((char *)buf, sizeof buf, x) :
	    proxy_build_v2(buf, sizeof buf, x);
	assert_true(len > 0);
	if (text)
		assert_string_equal((char *)buf, text);
	assert_int_equal(parse(buf, len, &h, &need, &why), PROXY_OK);
	assert_int_equal(h.version, version);
	assert_int_equal(h.command, x->command);
	assert_int_equal(h.known, x->known);
	assert_int_equal(h.len, len);
	if (!x->known)
		return;
	assert_memory_equal(&h.src, &x->src, sizeof h.src);
	assert_memory_equal(&h.dst, &x->dst, sizeof h.dst);
	assert_int_equal(h.src_port, x->src_port);
	assert_int_equal(h.dst_port, x->dst_port);
}

static void
test_build(void **state)
{
	struct proxy_header h;
	char small[20];
	unsigned char v2buf[40];

	(void)state;
	h = header(PROXY_CMD_PROXY, "192.0.2.1", 50000, "198.51.100.25", 25);
	round_trip(&h, 1, "PROXY TCP4 192.0.2.1 198.51.100.25 50000 25\r\n");
	round_trip(&h, 2, NULL);
	assert_int_equal(proxy_build_v2(v2buf, sizeof v2buf, &h), 28);
	h = header(PROXY_CMD_PROXY, "2001:db8::1", 1, "2001:db8::25", 25);
	round_trip(&h, 1, "PROXY TCP6 2001:db8::1 2001:db8::25 1 25\r\n");
	round_trip(&h, 2, NULL);
	assert_int_equal(proxy_build_v2(v2buf, sizeof v2buf, &h), 0);
	/* Two families: IPv6, the IPv4 one mapped and written in hex. */
	h = header(PROXY_CMD_PROXY, "192.0.2.1", 65535, "2001:db8::25", 0);
	round_trip(&h, 1, "PROXY TCP6 ::ffff:c000:201 2001:db8::25 65535 "
	    "0\r\n");
	round_trip(&h, 2, NULL);
	h = header(PROXY_CMD_PROXY, NULL, 0, NULL, 0);
	round_trip(&h, 1, "PROXY UNKNOWN\r\n");
	round_trip(&h, 2, NULL);
	h = header(PROXY_CMD_LOCAL, NULL, 0, NULL, 0);
	round_trip(&h, 2, NULL);
	assert_int_equal(proxy_build_v1(small, sizeof small, &h), 0);
	/* Too small a buffer, a port out of range: nothing. */
	h = header(PROXY_CMD_PROXY, "192.0.2.1", 50000, "198.51.100.25", 25);
	assert_int_equal(proxy_build_v1(small, sizeof small, &h), 0);
	assert_int_equal(proxy_build_v2(v2buf, 27, &h), 0);
	h.src_port = 65536;
	assert_int_equal(proxy_build_v2(v2buf, sizeof v2buf, &h), 0);
	assert_int_equal(proxy_build_v1((char *)v2buf, sizeof v2buf, &h), 0);
}

/* --------------------------------------------------------- reading */

/* What is left to read on fd, without waiting (up to size bytes). */
static size_t
rest(int fd, char *buf, size_t size)
{
	ssize_t n = recv(fd, buf, size, MSG_DONTWAIT);

	return n < 0 ? 0 : (size_t)n;
}

/* Send in, cut after each of cuts' offsets, reading as it goes: the
 * header, and the client's bytes left unread. */
static void
read_in_pieces(const char *in, size_t len, const size_t *cuts, size_t ncuts,
    size_t header_len)
{
	struct proxy_reader r;
	struct proxy_header h;
	const char *why = NULL;
	size_t i, at = 0;
	char left[256];
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	proxy_reader_init(&r);
	/* Nothing there yet: nothing to do. */
	assert_int_equal(proxy_read(&r, sv[1], &h, &why), PROXY_NEED_MORE);
	for (i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : len;
		enum proxy_result res;

		assert_int_equal(send(sv[0], in + at, end - at, 0),
		    (ssize_t)(end - at));
		at = end;
		res = proxy_read(&r, sv[1], &h, &why);
		if (at < header_len) {
			assert_int_equal(res, PROXY_NEED_MORE);
			/* All that came was the header's: taken. */
			assert_int_equal(rest(sv[1], left, sizeof left), 0);
			continue;
		}
		assert_int_equal(res, PROXY_OK);
		break;
	}
	assert_int_equal(h.len, header_len);
	for (; at < len; at++)
		assert_int_equal(send(sv[0], in + at, 1, 0), 1);
	assert_int_equal(rest(sv[1], left, sizeof left), len - header_len);
	assert_memory_equal(left, in + header_len, len - header_len);
	close(sv[0]);
	close(sv[1]);
}

static void
test_read_v1(void **state)
{
	static const char in[] = "PROXY TCP4 192.0.2.1 198.51.100.25 50000 "
	    "25\r\nEHLO client\r\n";
	static const size_t whole[] = { sizeof in - 1 };
	static const size_t pieces[] = { 1, 6, 20, 43, 44 };
	static const size_t at_crlf[] = { 44 };	/* CR in one, LF in next */

	(void)state;
	read_in_pieces(in, sizeof in - 1, whole, 0, 45);
	read_in_pieces(in, sizeof in - 1, pieces, 5, 45);
	read_in_pieces(in, sizeof in - 1, at_crlf, 1, 45);
}

static void
test_read_v2(void **state)
{
	unsigned char hdr[100];
	static const size_t pieces[] = { 5, 13, 16, 20 };
	size_t len;

	(void)state;
	len = v2(hdr, 0x21, 0x11, v4_block, 12);
	memcpy(hdr + len, "QUIT\r\n", 6);
	read_in_pieces((char *)hdr, len + 6, pieces, 0, len);
	read_in_pieces((char *)hdr, len + 6, pieces, 4, len);
}

static void
test_read_bad(void **state)
{
	struct proxy_reader r;
	struct proxy_header h;
	const char *why = NULL;
	char left[64];
	int sv[2];

	(void)state;
	/* Not a header: refused, and nothing taken. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	proxy_reader_init(&r);
	assert_int_equal(send(sv[0], "EHLO x\r\n", 8, 0), 8);
	assert_int_equal(proxy_read(&r, sv[1], &h, &why), PROXY_BAD);
	assert_string_equal(why, "not a PROXY header");
	assert_int_equal(rest(sv[1], left, sizeof left), 8);
	/* The end inside a header. */
	proxy_reader_init(&r);
	assert_int_equal(send(sv[0], "PROXY TCP", 9, 0), 9);
	assert_int_equal(proxy_read(&r, sv[1], &h, &why), PROXY_NEED_MORE);
	shutdown(sv[0], SHUT_WR);
	assert_int_equal(proxy_read(&r, sv[1], &h, &why), PROXY_BAD);
	assert_non_null(strstr(why, "ended inside"));
	close(sv[0]);
	/* A descriptor that is no socket. */
	proxy_reader_init(&r);
	assert_int_equal(proxy_read(&r, -1, &h, &why), PROXY_BAD);
	assert_string_equal(why, strerror(EBADF));
	close(sv[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_spec_example),
		cmocka_unit_test(test_v1_lines),
		cmocka_unit_test(test_v1_unknown),
		cmocka_unit_test(test_v1_bad),
		cmocka_unit_test(test_v2_ipv4_with_tlvs),
		cmocka_unit_test(test_v2_ipv6),
		cmocka_unit_test(test_v2_nothing_to_judge),
		cmocka_unit_test(test_v2_bad),
		cmocka_unit_test(test_v2_needs),
		cmocka_unit_test(test_build),
		cmocka_unit_test(test_read_v1),
		cmocka_unit_test(test_read_v2),
		cmocka_unit_test(test_read_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
