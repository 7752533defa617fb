/*
 * test_whitelist.c - cmocka tests for whitelist.c: address parsing,
 * CIDR and line parsing, matching, lookup order, error reporting with
 * line numbers, the error cap, wl_check_file and the compiled (.cdb) form
 * (tests/unit/test_allowdb.c has its damaged and hostile files).
 *
 * Files are made in a mkdtemp() directory that the group teardown removes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "allowdb.h"
#include "duration.h"
#include "whitelist.h"
#include "testlib.h"

/* ------------------------------------------------------------------ */
/* Scratch directory and files                                          */

static char *
write_file_len(const char *name, const char *data, size_t len)
{
	char *p = scratch_file(name);
	FILE *f = fopen(p, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	return p;
}

static char *
write_file(const char *name, const char *text)
{
	return write_file_len(name, text, strlen(text));
}

static char *
read_whole(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0, got;

	assert_non_null(f);
	do {
		if (n == cap) {
			cap = cap ? 2 * cap : 4096;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	fclose(f);
	*len = n;
	return buf;
}

/* ------------------------------------------------------------------ */
/* Collecting reports                                                   */

#define MAX_REPS 64

struct rep {
	char path[PATH_MAX];
	unsigned long line;
	char msg[256];
};

struct reports {
	size_t n, dropped;
	struct rep r[MAX_REPS];
};

static void
collect(void *ctx, const char *path, unsigned long line, const char *msg)
{
	struct reports *rs = ctx;

	assert_non_null(msg);
	if (rs->n == MAX_REPS) {
		rs->dropped++;
		return;
	}
	snprintf(rs->r[rs->n].path, sizeof rs->r[0].path, "%s",
	    path ? path : "(null)");
	rs->r[rs->n].line = line;
	snprintf(rs->r[rs->n].msg, sizeof rs->r[0].msg, "%s", msg);
	rs->n++;
}

static void
dump_reports(const struct reports *rs)
{
	size_t i;

	for (i = 0; i < rs->n; i++)
		print_error("  report %zu: %s:%lu: %s\n", i, rs->r[i].path,
		    rs->r[i].line, rs->r[i].msg);
}

/* Report i must be path:line with a message containing frag. */
static void
expect_rep(const struct reports *rs, size_t i, const char *path,
    unsigned long line, const char *frag)
{
	if (i >= rs->n || strcmp(rs->r[i].path, path) != 0 ||
	    rs->r[i].line != line || strstr(rs->r[i].msg, frag) == NULL) {
		print_error("expected report %zu to be %s:%lu: ...%s...\n", i,
		    path, line, frag);
		dump_reports(rs);
		fail();
	}
}

/* A reporter for calls that must not report anything. */
static void
no_report(void *ctx, const char *path, unsigned long line, const char *msg)
{
	(void)ctx;
	print_error("unexpected report: %s:%lu: %s\n", path ? path : "(null)",
	    line, msg);
	fail();
}

/* ------------------------------------------------------------------ */
/* Helpers for entries and lookups                                      */

static struct addr
addr(const char *s)
{
	struct addr a;

	memset(&a, 0x5a, sizeof a);
	if (addr_parse(s, &a) != 0) {
		print_error("addr_parse(\"%s\") failed\n", s);
		fail();
	}
	return a;
}

static struct wl_entry
cidr(const char *s)
{
	struct wl_entry e;
	const char *why = NULL;

	memset(&e, 0x5a, sizeof e);
	if (wl_parse_cidr(s, strlen(s), &e, &why) != 0) {
		print_error("wl_parse_cidr(\"%s\"): %s\n", s, why);
		fail();
	}
	return e;
}

static struct wl_source
src_allow(const char *s)
{
	struct wl_source src;

	memset(&src, 0, sizeof src);
	src.path = NULL;
	src.entry = cidr(s);
	return src;
}

static struct wl_source
src_file(const char *path)
{
	struct wl_source src;

	memset(&src, 0, sizeof src);
	src.path = path;
	return src;
}

static int
matches(const char *rule, const char *peer)
{
	struct wl_entry e = cidr(rule);
	struct addr a = addr(peer);

	return wl_entry_matches(&e, &a);
}

/* Look peer up; no problem may be reported. */
static struct wl_match
look(const struct wl_source *src, size_t n, const char *peer)
{
	struct wl_match m;
	struct addr a = addr(peer);

	memset(&m, 0x5a, sizeof m);
	assert_int_equal(wl_lookup(src, n, &a, &m, 0, no_report, NULL), 0);
	return m;
}

static void
expect_match(const struct wl_match *m, const char *rule, uint64_t delay_ms,
    const char *path, unsigned long line)
{
	if (!m->found || strcmp(m->rule, rule) != 0 || m->delay_ms != delay_ms ||
	    (path == NULL) != (m->path == NULL) ||
	    (path && strcmp(path, m->path) != 0) || m->line != line) {
		print_error("match: found=%d rule=%s delay=%llu path=%s line=%lu;"
		    " want rule=%s delay=%llu path=%s line=%lu\n", m->found,
		    m->found ? m->rule : "-", (unsigned long long)m->delay_ms,
		    m->path ? m->path : "(null)", m->line, rule,
		    (unsigned long long)delay_ms, path ? path : "(null)", line);
		fail();
	}
}

/* ------------------------------------------------------------------ */
/* Addresses                                                            */

static void
test_addr_parse(void **state)
{
	static const unsigned char v6[16] = {
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
	};
	static const unsigned char v4[4] = { 192, 0, 2, 1 };
	static const char *badv[] = {
		"", "1.2.3", "1.2.3.256", "1.2.3.4 ", " 1.2.3.4", "01.2.3.4",
		"1.2.3.4/32", "::g", "1::2::3", "[::1]", "fe80::1%lo",
		"localhost", "1.2.3.4.5", ":",
	};
	struct addr a;
	size_t i;

	(void)state;
	a = addr("192.0.2.1");
	assert_int_equal(a.family, AF_INET);
	assert_memory_equal(a.bytes, v4, 4);

	a = addr("2001:db8::1");
	assert_int_equal(a.family, AF_INET6);
	assert_memory_equal(a.bytes, v6, 16);

	/* IPv4-mapped IPv6, in both spellings, is the IPv4 peer. */
	a = addr("::ffff:192.0.2.1");
	assert_int_equal(a.family, AF_INET);
	assert_memory_equal(a.bytes, v4, 4);
	a = addr("::FFFF:c000:201");
	assert_int_equal(a.family, AF_INET);
	assert_memory_equal(a.bytes, v4, 4);

	/* The deprecated IPv4-compatible form is not mapped: stays IPv6. */
	a = addr("::192.0.2.1");
	assert_int_equal(a.family, AF_INET6);
	/* Neither is NAT64 or 6to4. */
	assert_int_equal(addr("64:ff9b::192.0.2.1").family, AF_INET6);
	assert_int_equal(addr("::ffff:0:192.0.2.1").family, AF_INET6);

	for (i = 0; i < sizeof badv / sizeof badv[0]; i++) {
		if (addr_parse(badv[i], &a) == 0) {
			print_error("addr_parse(\"%s\") accepted\n", badv[i]);
			fail();
		}
	}
}

static void
test_addr_from_sockaddr(void **state)
{
	static const unsigned char v4[4] = { 198, 51, 100, 7 };
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct sockaddr_un sun;
	struct addr a;

	(void)state;
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons(25);
	assert_int_equal(inet_pton(AF_INET, "198.51.100.7", &sin.sin_addr), 1);
	memset(&a, 0x5a, sizeof a);
	assert_int_equal(addr_from_sockaddr((struct sockaddr *)&sin, &a), 0);
	assert_int_equal(a.family, AF_INET);
	assert_memory_equal(a.bytes, v4, 4);

	memset(&sin6, 0, sizeof sin6);
	sin6.sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::25", &sin6.sin6_addr), 1);
	memset(&a, 0x5a, sizeof a);
	assert_int_equal(addr_from_sockaddr((struct sockaddr *)&sin6, &a), 0);
	assert_int_equal(a.family, AF_INET6);
	assert_memory_equal(a.bytes, sin6.sin6_addr.s6_addr, 16);

	/* What a dual-stack listener reports for an IPv4 client. */
	assert_int_equal(inet_pton(AF_INET6, "::ffff:198.51.100.7",
	    &sin6.sin6_addr), 1);
	memset(&a, 0x5a, sizeof a);
	assert_int_equal(addr_from_sockaddr((struct sockaddr *)&sin6, &a), 0);
	assert_int_equal(a.family, AF_INET);
	assert_memory_equal(a.bytes, v4, 4);
	/* ...and it matches IPv4 entries only. */
	{
		struct wl_entry e4 = cidr("198.51.100.0/24");
		struct wl_entry e6 = cidr("::/0");
		struct wl_entry em = cidr("::ffff:0:0/96");

		assert_true(wl_entry_matches(&e4, &a));
		assert_false(wl_entry_matches(&e6, &a));
		assert_false(wl_entry_matches(&em, &a));
	}

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	assert_int_equal(addr_from_sockaddr((struct sockaddr *)&sun, &a), -1);
}

/* ------------------------------------------------------------------ */
/* CIDR parsing                                                         */

static void
bad_cidr_len(const char *s, size_t len, const char *frag)
{
	struct wl_entry e;
	const char *why = NULL;

	if (wl_parse_cidr(s, len, &e, &why) != -1 || why == NULL ||
	    strstr(why, frag) == NULL) {
		print_error("wl_parse_cidr(\"%.*s\"): why=%s, want \"%s\"\n",
		    (int)len, s, why ? why : "(accepted)", frag);
		fail();
	}
}

static void
bad_cidr(const char *s, const char *frag)
{
	bad_cidr_len(s, strlen(s), frag);
}

static void
test_parse_cidr(void **state)
{
	static const unsigned char net24[4] = { 10, 0, 1, 0 };
	static const unsigned char zero[16] = { 0 };
	struct wl_entry e;
	const char *why = NULL;

	(void)state;
	e = cidr("10.0.1.0/24");
	assert_int_equal(e.net.family, AF_INET);
	assert_int_equal(e.prefix, 24);
	assert_memory_equal(e.net.bytes, net24, 4);
	assert_true(e.delay_ms == 0);
	assert_string_equal(e.rule, "10.0.1.0/24");

	e = cidr("192.0.2.1");
	assert_int_equal(e.net.family, AF_INET);
	assert_int_equal(e.prefix, 32);
	assert_string_equal(e.rule, "192.0.2.1");

	e = cidr("192.0.2.1/32");
	assert_int_equal(e.prefix, 32);

	e = cidr("0.0.0.0/0");
	assert_int_equal(e.net.family, AF_INET);
	assert_int_equal(e.prefix, 0);
	assert_memory_equal(e.net.bytes, zero, 4);

	e = cidr("2001:db8::/32");
	assert_int_equal(e.net.family, AF_INET6);
	assert_int_equal(e.prefix, 32);
	assert_string_equal(e.rule, "2001:db8::/32");

	e = cidr("2001:db8::1");
	assert_int_equal(e.net.family, AF_INET6);
	assert_int_equal(e.prefix, 128);

	e = cidr("::/0");
	assert_int_equal(e.net.family, AF_INET6);
	assert_int_equal(e.prefix, 0);
	assert_memory_equal(e.net.bytes, zero, 16);

	/* Prefixes that do not fall on a byte boundary. */
	e = cidr("10.0.0.128/25");
	assert_int_equal(e.prefix, 25);
	cidr("10.0.0.0/7");		/* 10 = 0000101|0 */
	cidr("2001:db8:8000::/33");
	cidr("2001:db8::fffe/127");

	/* Only the len bytes given are read; no terminator is needed. */
	assert_int_equal(wl_parse_cidr("10.0.0.0/8junk", 10, &e, &why), 0);
	assert_int_equal(e.prefix, 8);
	assert_string_equal(e.rule, "10.0.0.0/8");
	assert_int_equal(wl_parse_cidr("10.0.0.0/24", 9, &e, &why), -1);

	/* The longest IPv6 text fits in the rule. */
	e = cidr("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128");
	assert_string_equal(e.rule,
	    "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128");
}

static void
test_parse_cidr_bad(void **state)
{
	char longtext[80];

	(void)state;
	bad_cidr("", "missing address");

	bad_cidr("10.0.1.1/24", "host bits");
	bad_cidr("10.0.0.64/25", "host bits");
	bad_cidr("11.0.0.0/7", "host bits");
	bad_cidr("0.0.0.1/0", "host bits");
	bad_cidr("2001:db8::1/64", "host bits");
	bad_cidr("2001:db8::1/127", "host bits");
	bad_cidr("::1/0", "host bits");

	bad_cidr("10.0.0.0/33", "out of range (0-32 for IPv4)");
	bad_cidr("10.0.0.0/999", "out of range (0-32 for IPv4)");
	bad_cidr("2001:db8::/129", "out of range (0-128 for IPv6)");

	bad_cidr("10.0.0.0/", "bad prefix length");
	bad_cidr("10.0.0.0/x", "bad prefix length");
	bad_cidr("10.0.0.0/-1", "bad prefix length");
	bad_cidr("10.0.0.0/+8", "bad prefix length");
	bad_cidr("10.0.0.0/ 8", "bad prefix length");
	bad_cidr("10.0.0.0/1234", "bad prefix length");
	bad_cidr("10.0.0.0/24/8", "bad prefix length");
	bad_cidr("10.0.0.0/8junk", "bad prefix length");
	bad_cidr("10.0.0.0/0x8", "bad prefix length");

	bad_cidr("10.0.0/8", "not an IPv4 or IPv6 address");
	bad_cidr("10.0.300.0/24", "not an IPv4 or IPv6 address");
	bad_cidr("010.0.0.0/8", "not an IPv4 or IPv6 address");
	bad_cidr("/8", "not an IPv4 or IPv6 address");
	bad_cidr("example.org", "not an IPv4 or IPv6 address");
	bad_cidr("10.0.0.1junk", "not an IPv4 or IPv6 address");
	bad_cidr("2001:db8:::/48", "not an IPv4 or IPv6 address");
	bad_cidr("fe80::1%eth0", "not an IPv4 or IPv6 address");
	bad_cidr("[2001:db8::]/32", "not an IPv4 or IPv6 address");

	/* Too long to be any address: refused, never overrunning rule[]. */
	memset(longtext, '1', sizeof longtext);
	bad_cidr_len(longtext, WL_RULE_MAX, "too long");
	bad_cidr_len(longtext, sizeof longtext, "too long");

	/* A NUL inside the given length is not an end of string. */
	bad_cidr_len("10.0.0.1\0junk", 13, "");
	bad_cidr_len("10.0.0.0\0/8", 11, "");
	bad_cidr_len("10.0.0.0/8\0", 11, "");
}

/* ------------------------------------------------------------------ */
/* Line parsing                                                         */

static int
parse_line(const char *s, struct wl_entry *e, const char **why)
{
	*why = NULL;
	return wl_parse_line(s, strlen(s), e, why);
}

static void
line_ok(const char *s, const char *rule, uint64_t delay_ms)
{
	struct wl_entry e;
	const char *why;
	int rc;

	memset(&e, 0x5a, sizeof e);
	rc = parse_line(s, &e, &why);
	if (rc != 1 || strcmp(e.rule, rule) != 0 || e.delay_ms != delay_ms) {
		print_error("wl_parse_line(\"%s\"): rc=%d why=%s\n", s, rc,
		    why ? why : "-");
		fail();
	}
}

static void
line_empty(const char *s)
{
	struct wl_entry e;
	const char *why;

	if (parse_line(s, &e, &why) != 0) {
		print_error("wl_parse_line(\"%s\") is not blank\n", s);
		fail();
	}
}

static void
line_bad_len(const char *s, size_t len, const char *frag)
{
	struct wl_entry e;
	const char *why = NULL;

	if (wl_parse_line(s, len, &e, &why) != -1 || why == NULL ||
	    strstr(why, frag) == NULL) {
		print_error("wl_parse_line(\"%.*s\"): why=%s, want \"%s\"\n",
		    (int)len, s, why ? why : "(accepted)", frag);
		fail();
	}
}

static void
line_bad(const char *s, const char *frag)
{
	line_bad_len(s, strlen(s), frag);
}

static void
test_parse_line(void **state)
{
	(void)state;
	line_ok("10.0.1.0/24", "10.0.1.0/24", 0);
	line_ok("10.0.1.0/24 5", "10.0.1.0/24", 5000);
	line_ok("10.0.1.0/24 2.5", "10.0.1.0/24", 2500);
	line_ok("10.0.1.0/24 750ms", "10.0.1.0/24", 750);
	line_ok("10.0.1.0/24 0", "10.0.1.0/24", 0);
	line_ok("10.0.1.0/24 300", "10.0.1.0/24", 300000);
	line_ok("10.0.1.0/24 5m", "10.0.1.0/24", 300000);
	line_ok("10.0.1.0/24 300000ms", "10.0.1.0/24", 300000);
	line_ok("  \t10.0.1.0/24 \t 5s  ", "10.0.1.0/24", 5000);
	line_ok("10.0.1.0/24 5 # trailing comment", "10.0.1.0/24", 5000);
	line_ok("10.0.1.0/24#comment", "10.0.1.0/24", 0);
	line_ok("10.0.1.0/24 5#comment 1 2 3", "10.0.1.0/24", 5000);
	line_ok("10.0.1.0/24 5\r", "10.0.1.0/24", 5000);
	line_ok("10.0.1.0/24\r", "10.0.1.0/24", 0);
	line_ok("192.0.2.7", "192.0.2.7", 0);
	line_ok("2001:db8::/32 1.5", "2001:db8::/32", 1500);
	line_ok("::1 10", "::1", 10000);

	line_empty("");
	line_empty("   ");
	line_empty("\t \r");
	line_empty("\r");
	line_empty("#");
	line_empty("# 10.0.0.0/8 5");
	line_empty("   # indented comment");
	line_empty("#10.0.0.0/8 junk junk junk");
}

static void
test_parse_line_bad(void **state)
{
	(void)state;
	line_bad("10.0.1.1/24", "host bits");
	line_bad("10.0.0.0/33 5", "out of range");
	line_bad("10.0.0.0/x", "bad prefix length");
	line_bad("10.0.0.0/8 5 junk", "trailing junk");
	line_bad("10.0.0.0/8 5 6", "trailing junk");
	line_bad("10.0.0.0/8 5 6 7 8 9", "trailing junk");
	line_bad("10.0.0.0/8 5s x # comment", "trailing junk");
	line_bad("10.0.300.0/24", "not an IPv4 or IPv6 address");
	line_bad("junk", "not an IPv4 or IPv6 address");
	line_bad("10.0.0.0/8 junk", "not a duration");
	line_bad("10.0.0.0/8 5x", "unknown unit");
	line_bad("10.0.0.0/8 -5", "not a duration");
	line_bad("10.0.0.0/8 0.0001", "finer than a millisecond");
	line_bad("10.0.0.0/8 300.001", "delay out of range (0 to 300 s)");
	line_bad("10.0.0.0/8 301", "delay out of range");
	line_bad("10.0.0.0/8 6m", "delay out of range");
	line_bad("10.0.0.0/8 1h", "delay out of range");
	line_bad("10.0.0.0/8 3661d", "too long");
	line_bad_len("10.0.0.0/8\0", 11, "NUL byte");
	line_bad_len("\0", 1, "NUL byte");
	line_bad_len("10.0.0.0/8 5\0 ", 14, "NUL byte");
	/* Even in a comment: a NUL means the file is not text. */
	line_bad_len("10.0.0.0/8 # \0", 14, "NUL byte");
}

/* ------------------------------------------------------------------ */
/* Matching                                                             */

static void
test_entry_matches(void **state)
{
	(void)state;
	/* IPv4 */
	assert_true(matches("10.0.1.0/24", "10.0.1.0"));
	assert_true(matches("10.0.1.0/24", "10.0.1.255"));
	assert_false(matches("10.0.1.0/24", "10.0.2.0"));
	assert_false(matches("10.0.1.0/24", "10.0.0.255"));
	assert_true(matches("10.0.0.128/25", "10.0.0.200"));
	assert_false(matches("10.0.0.128/25", "10.0.0.127"));
	assert_true(matches("10.0.0.0/7", "11.255.255.255"));
	assert_false(matches("10.0.0.0/7", "12.0.0.0"));
	assert_false(matches("10.0.0.0/7", "9.255.255.255"));
	assert_true(matches("128.0.0.0/1", "200.1.2.3"));
	assert_false(matches("128.0.0.0/1", "127.255.255.255"));
	/* /32 and a bare address: that address only. */
	assert_true(matches("192.0.2.1/32", "192.0.2.1"));
	assert_false(matches("192.0.2.1/32", "192.0.2.0"));
	assert_false(matches("192.0.2.1/32", "192.0.2.3"));
	assert_true(matches("192.0.2.1", "192.0.2.1"));
	assert_false(matches("192.0.2.1", "192.0.2.129"));
	/* /0: every IPv4 address, no IPv6 one. */
	assert_true(matches("0.0.0.0/0", "0.0.0.0"));
	assert_true(matches("0.0.0.0/0", "255.255.255.255"));
	assert_true(matches("0.0.0.0/0", "198.51.100.7"));
	assert_false(matches("0.0.0.0/0", "2001:db8::1"));
	assert_false(matches("0.0.0.0/0", "::"));

	/* IPv6 */
	assert_true(matches("2001:db8::/32", "2001:db8::1"));
	assert_true(matches("2001:db8::/32", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"));
	assert_false(matches("2001:db8::/32", "2001:db9::"));
	assert_false(matches("2001:db8::/32", "2001:db7:ffff::"));
	assert_true(matches("2001:db8:8000::/33", "2001:db8:ffff::1"));
	assert_false(matches("2001:db8:8000::/33", "2001:db8:7fff::1"));
	assert_true(matches("2001:db8::fffe/127", "2001:db8::ffff"));
	assert_false(matches("2001:db8::fffe/127", "2001:db8::fffd"));
	/* /128 and a bare address */
	assert_true(matches("2001:db8::1/128", "2001:db8::1"));
	assert_false(matches("2001:db8::1/128", "2001:db8::"));
	assert_false(matches("2001:db8::1/128", "2001:db8::3"));
	assert_true(matches("::1", "::1"));
	assert_false(matches("::1", "::"));
	/* ::/0: every IPv6 address, no IPv4 one, not even a mapped one. */
	assert_true(matches("::/0", "::"));
	assert_true(matches("::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
	assert_false(matches("::/0", "192.0.2.1"));
	assert_false(matches("::/0", "::ffff:192.0.2.1"));
	assert_false(matches("::ffff:0:0/96", "::ffff:192.0.2.1"));
	/* A mapped peer is an IPv4 peer. */
	assert_true(matches("192.0.2.0/24", "::ffff:192.0.2.1"));
	assert_false(matches("192.0.2.0/24", "::ffff:192.0.3.1"));
	/* Same bytes, different family: no match. */
	assert_false(matches("10.0.0.0/8", "a00::"));
	assert_false(matches("a00::/8", "10.0.0.0"));
}

/* ------------------------------------------------------------------ */
/* Lookup                                                               */

static void
test_lookup_allow_entries(void **state)
{
	struct wl_source src[3];
	struct wl_match m;
	struct reports rs;
	struct addr a;

	(void)state;
	src[0] = src_allow("10.0.0.0/8");
	src[1] = src_allow("10.1.0.0/16");
	src[2] = src_allow("2001:db8::/32");

	m = look(src, 3, "10.1.2.3");
	expect_match(&m, "10.0.0.0/8", 0, NULL, 0);
	m = look(src + 1, 2, "10.1.2.3");
	expect_match(&m, "10.1.0.0/16", 0, NULL, 0);
	m = look(src, 3, "2001:db8::25");
	expect_match(&m, "2001:db8::/32", 0, NULL, 0);
	m = look(src, 3, "::ffff:10.9.9.9");
	expect_match(&m, "10.0.0.0/8", 0, NULL, 0);
	m = look(src, 3, "192.0.2.1");
	assert_false(m.found);
	m = look(src, 3, "2001:db9::1");
	assert_false(m.found);
	m = look(src, 0, "10.1.2.3");
	assert_false(m.found);

	/* A NULL peer matches nothing. */
	memset(&rs, 0, sizeof rs);
	memset(&m, 0x5a, sizeof m);
	assert_int_equal(wl_lookup(src, 3, NULL, &m, 0, collect, &rs), 0);
	assert_false(m.found);
	assert_int_equal(rs.n, 0);

	/* The match is reset: a miss after a hit says "not found". */
	a = addr("10.1.2.3");
	assert_int_equal(wl_lookup(src, 3, &a, &m, 0, no_report, NULL), 0);
	assert_true(m.found);
	a = addr("192.0.2.1");
	assert_int_equal(wl_lookup(src, 3, &a, &m, 0, no_report, NULL), 0);
	assert_false(m.found);
}

static void
test_lookup_first_match(void **state)
{
	char *f1 = write_file("order1.txt",
	    "# broad first, then narrower: the broad one wins\n"
	    "10.0.0.0/8 1\n"
	    "10.1.0.0/16 2\n"
	    "\n"
	    "# narrow first, then broader: the narrow one wins\n"
	    "192.0.2.128/25 3\n"
	    "192.0.2.0/24 4\n"
	    "2001:db8:1::/48 5\n"
	    "2001:db8::/32 6\n"
	    "::/0 7\n"
	    "0.0.0.0/0 8\n");
	char *f2 = write_file("order2.txt",
	    "10.1.0.0/16 20\n"
	    "198.51.100.0/24 21\n"
	    "2001:db8::/32 22\n");
	struct wl_source src[4];
	struct wl_match m;

	(void)state;
	/* Within a file: the first matching line, not the longest prefix. */
	src[0] = src_file(f1);
	m = look(src, 1, "10.1.2.3");
	expect_match(&m, "10.0.0.0/8", 1000, f1, 2);
	m = look(src, 1, "192.0.2.200");
	expect_match(&m, "192.0.2.128/25", 3000, f1, 6);
	m = look(src, 1, "192.0.2.100");
	expect_match(&m, "192.0.2.0/24", 4000, f1, 7);
	m = look(src, 1, "2001:db8:1::9");
	expect_match(&m, "2001:db8:1::/48", 5000, f1, 8);
	m = look(src, 1, "2001:db8:2::9");
	expect_match(&m, "2001:db8::/32", 6000, f1, 9);
	m = look(src, 1, "2001:db9::9");
	expect_match(&m, "::/0", 7000, f1, 10);
	m = look(src, 1, "203.0.113.1");
	expect_match(&m, "0.0.0.0/0", 8000, f1, 11);
	m = look(src, 1, "::ffff:203.0.113.1");
	expect_match(&m, "0.0.0.0/0", 8000, f1, 11);

	/* Across files: the file given first wins. */
	src[0] = src_file(f2);
	src[1] = src_file(f1);
	m = look(src, 2, "10.1.2.3");
	expect_match(&m, "10.1.0.0/16", 20000, f2, 1);
	m = look(src, 2, "10.2.2.3");
	expect_match(&m, "10.0.0.0/8", 1000, f1, 2);
	m = look(src, 2, "198.51.100.1");
	expect_match(&m, "198.51.100.0/24", 21000, f2, 2);
	m = look(src, 2, "2001:db8:1::1");
	expect_match(&m, "2001:db8::/32", 22000, f2, 3);
	src[0] = src_file(f1);
	src[1] = src_file(f2);
	m = look(src, 2, "10.1.2.3");
	expect_match(&m, "10.0.0.0/8", 1000, f1, 2);
	m = look(src, 2, "198.51.100.1");
	expect_match(&m, "0.0.0.0/0", 8000, f1, 11);

	/* -A entries and files interleave in command-line order. */
	src[0] = src_allow("10.1.2.0/24");
	src[1] = src_file(f2);
	src[2] = src_allow("198.51.100.7");
	src[3] = src_file(f1);
	m = look(src, 4, "10.1.2.3");
	expect_match(&m, "10.1.2.0/24", 0, NULL, 0);
	m = look(src, 4, "10.1.3.3");
	expect_match(&m, "10.1.0.0/16", 20000, f2, 1);
	m = look(src, 4, "198.51.100.7");
	expect_match(&m, "198.51.100.0/24", 21000, f2, 2);
	m = look(src + 2, 2, "198.51.100.7");
	expect_match(&m, "198.51.100.7", 0, NULL, 0);
	m = look(src + 2, 2, "198.51.100.8");
	expect_match(&m, "0.0.0.0/0", 8000, f1, 11);
	m = look(src, 3, "203.0.113.1");
	assert_false(m.found);

	free(f1);
	free(f2);
}

static void
test_lookup_per_entry_delay(void **state)
{
	char *f = write_file("delays.txt",
	    "192.0.2.1 0\n"
	    "192.0.2.2 2.5\n"
	    "192.0.2.3 750ms\n"
	    "192.0.2.4 5s\n"
	    "192.0.2.5 1m\n"
	    "192.0.2.6 300\n"
	    "192.0.2.7\n"
	    "2001:db8::1 0.001\n");
	struct wl_source src = src_file(f);
	struct wl_match m;

	(void)state;
	m = look(&src, 1, "192.0.2.1");
	expect_match(&m, "192.0.2.1", 0, f, 1);
	m = look(&src, 1, "192.0.2.2");
	expect_match(&m, "192.0.2.2", 2500, f, 2);
	m = look(&src, 1, "192.0.2.3");
	expect_match(&m, "192.0.2.3", 750, f, 3);
	m = look(&src, 1, "192.0.2.4");
	expect_match(&m, "192.0.2.4", 5000, f, 4);
	m = look(&src, 1, "192.0.2.5");
	expect_match(&m, "192.0.2.5", 60000, f, 5);
	m = look(&src, 1, "192.0.2.6");
	expect_match(&m, "192.0.2.6", 300000, f, 6);
	m = look(&src, 1, "192.0.2.7");
	expect_match(&m, "192.0.2.7", 0, f, 7);
	m = look(&src, 1, "2001:db8::1");
	expect_match(&m, "2001:db8::1", 1, f, 8);
	m = look(&src, 1, "192.0.2.8");
	assert_false(m.found);
	free(f);
}

/* Every kind of bad line, each reported once with its own line number. */
static void
test_bad_lines_reported(void **state)
{
	char *buf = malloc(64 * 1024), *p = buf, *f;
	struct wl_source src;
	struct wl_match m;
	struct addr a;
	struct reports rs;
	size_t count;
	int i;

	(void)state;
	assert_non_null(buf);
#define ADD(s) (memcpy(p, s, sizeof s - 1), p += sizeof s - 1)
	ADD("# allowlist with every kind of bad line\n");	/* 1 */
	ADD("\n");						/* 2 */
	ADD("10.0.1.1/24\n");					/* 3 */
	ADD("10.0.0.0/33\n");					/* 4 */
	ADD("2001:db8::/129 5\n");				/* 5 */
	ADD("10.0.0.0/x\n");					/* 6 */
	ADD("10.0.0.0/\n");					/* 7 */
	ADD("10.0.0.0/8 5 junk\n");				/* 8 */
	for (i = 0; i < 1001; i++)				/* 9 */
		*p++ = i < 10 ? "10.9.0.0/16"[i] : ' ';
	ADD("\n");
	ADD("10.0.0.0/8\0\n");					/* 10 */
	ADD("10.0.300.0/24\n");					/* 11 */
	ADD("10.0.0.0/8 5x\n");					/* 12 */
	ADD("10.0.0.0/8 301\n");				/* 13 */
	ADD("   # indented comment\n");				/* 14 */
	ADD("192.0.2.0/24 2.5 # trailing comment\n");		/* 15 */
	ADD("198.51.100.0/24 7");				/* 16 */
	for (i = 17; i < 1000; i++)	/* exactly 1000 bytes: fine */
		*p++ = ' ';
	ADD("\n");
	ADD("2001:db8::/32 1s\r\n");				/* 17 */
	ADD("\t \r\n");						/* 18 */
	for (i = 0; i < 10000; i++)	/* spans reader buffers */	/* 19 */
		*p++ = i < 12 ? "10.10.0.0/16"[i] : (i % 2 ? ' ' : '#');
	ADD("\n");
	ADD("203.0.113.0/24 10m\n");				/* 20 */
	ADD("203.0.113.0/24 0.0001\n");				/* 21 */
	ADD("2001:db8::1/64\n");				/* 22 */
	ADD("10.11.0.0/16#no space before the comment\n");	/* 23 */
	ADD("203.0.113.5");			/* 24, no newline at the end */
#undef ADD
	f = write_file_len("bad.txt", buf, (size_t)(p - buf));
	free(buf);

	memset(&rs, 0, sizeof rs);
	assert_int_equal(wl_check_file(f, &count, collect, &rs), 15);
	assert_int_equal(rs.n, 15);
	expect_rep(&rs, 0, f, 3, "host bits");
	expect_rep(&rs, 1, f, 4, "out of range (0-32 for IPv4)");
	expect_rep(&rs, 2, f, 5, "out of range (0-128 for IPv6)");
	expect_rep(&rs, 3, f, 6, "bad prefix length");
	expect_rep(&rs, 4, f, 7, "bad prefix length");
	expect_rep(&rs, 5, f, 8, "trailing junk");
	expect_rep(&rs, 6, f, 9, "line too long (over 1000 bytes)");
	expect_rep(&rs, 7, f, 10, "NUL byte");
	expect_rep(&rs, 8, f, 11, "not an IPv4 or IPv6 address");
	expect_rep(&rs, 9, f, 12, "unknown unit");
	expect_rep(&rs, 10, f, 13, "delay out of range (0 to 300 s)");
	expect_rep(&rs, 11, f, 19, "line too long");
	expect_rep(&rs, 12, f, 20, "delay out of range");
	expect_rep(&rs, 13, f, 21, "finer than a millisecond");
	expect_rep(&rs, 14, f, 22, "host bits");
	/* Lines 15, 16, 17, 23 and 24 are entries. */
	assert_int_equal(count, 5);

	/* The good lines still work, and lookup reports the same problems. */
	src = src_file(f);
	memset(&rs, 0, sizeof rs);
	a = addr("192.0.2.9");
	assert_int_equal(wl_lookup(&src, 1, &a, &m, 0, collect, &rs), 15);
	assert_int_equal(rs.n, 15);
	expect_rep(&rs, 6, f, 9, "line too long");
	expect_rep(&rs, 14, f, 22, "host bits");
	expect_match(&m, "192.0.2.0/24", 2500, f, 15);

	memset(&rs, 0, sizeof rs);
	a = addr("198.51.100.200");
	wl_lookup(&src, 1, &a, &m, 0, collect, &rs);
	expect_match(&m, "198.51.100.0/24", 7000, f, 16);
	a = addr("2001:db8::77");
	wl_lookup(&src, 1, &a, &m, 0, collect, &rs);
	expect_match(&m, "2001:db8::/32", 1000, f, 17);
	a = addr("10.11.1.1");
	wl_lookup(&src, 1, &a, &m, 0, collect, &rs);
	expect_match(&m, "10.11.0.0/16", 0, f, 23);
	a = addr("203.0.113.5");
	wl_lookup(&src, 1, &a, &m, 0, collect, &rs);
	expect_match(&m, "203.0.113.5", 0, f, 24);
	/* No entry was made of a bad or over-long line. */
	a = addr("10.0.0.1");
	wl_lookup(&src, 1, &a, &m, 0, collect, &rs);
	assert_false(m.found);
	a = addr("10.9.0.1");
	wl_lookup(&src, 1, &a, &m, 0, collect, &rs);
	assert_false(m.found);
	a = addr("10.10.0.1");
	wl_lookup(&src, 1, &a, &m, 0, collect, &rs);
	assert_false(m.found);
	a = addr("203.0.113.6");
	wl_lookup(&src, 1, &a, &m, 0, collect, &rs);
	assert_false(m.found);
	free(f);
}

static void
test_long_lines(void **state)
{
	char line[1200];
	char *f;
	struct reports rs;
	size_t count;

	(void)state;
	/* 1000 bytes: the longest line allowed. */
	memset(line, ' ', sizeof line);
	memcpy(line, "10.0.0.0/8 5", 12);
	line[1000] = '\n';
	f = write_file_len("len1000.txt", line, 1001);
	memset(&rs, 0, sizeof rs);
	assert_int_equal(wl_check_file(f, &count, collect, &rs), 0);
	assert_int_equal(count, 1);
	free(f);

	/* 1001 bytes: too long, even as a comment, with or without newline. */
	line[1000] = ' ';
	line[1001] = '\n';
	f = write_file_len("len1001.txt", line, 1002);
	memset(&rs, 0, sizeof rs);
	assert_int_equal(wl_check_file(f, &count, collect, &rs), 1);
	assert_int_equal(count, 0);
	expect_rep(&rs, 0, f, 1, "line too long");
	free(f);

	f = write_file_len("len1001-nonl.txt", line, 1001);
	memset(&rs, 0, sizeof rs);
	assert_int_equal(wl_check_file(f, &count, collect, &rs), 1);
	expect_rep(&rs, 0, f, 1, "line too long");
	free(f);

	line[0] = '#';
	f = write_file_len("len1001-comment.txt", line, 1002);
	memset(&rs, 0, sizeof rs);
	assert_int_equal(wl_check_file(f, &count, collect, &rs), 1);
	expect_rep(&rs, 0, f, 1, "line too long");
	free(f);
}

/* Many short lines: every line number stays right across buffer edges. */
static void
test_many_lines(void **state)
{
	enum { N = 700 };
	char *buf = malloc(N * 32), *p = buf, *f;
	struct wl_source src;
	int i;

	(void)state;
	assert_non_null(buf);
	for (i = 0; i < N; i++)
		p += sprintf(p, i % 7 == 3 ? "# comment %d\n" :
		    "10.%d.%d.0/24 %d\n", i / 256, i % 256, i % 300);
	f = write_file_len("many.txt", buf, (size_t)(p - buf));
	src = src_file(f);
	for (i = 0; i < N; i++) {
		char peer[32], rule[32];
		struct wl_match m;

		snprintf(peer, sizeof peer, "10.%d.%d.77", i / 256, i % 256);
		snprintf(rule, sizeof rule, "10.%d.%d.0/24", i / 256, i % 256);
		m = look(&src, 1, peer);
		if (i % 7 == 3)
			assert_false(m.found);
		else
			expect_match(&m, rule, (uint64_t)(i % 300) * 1000, f,
			    (unsigned long)i + 1);
	}
	free(buf);
	free(f);
}

static void
test_comments_blank_crlf(void **state)
{
	char *f = write_file("crlf.txt",
	    "# CRLF file\r\n"
	    "\r\n"
	    "10.0.0.0/8 5\r\n"
	    "  # comment\r\n"
	    "192.0.2.0/24   # no delay, trailing comment\r\n"
	    "\t\r\n"
	    "2001:db8::/32 250ms\r\n"
	    "198.51.100.0/24 3 junk\r\n"
	    "203.0.113.0/24\r\n");
	struct wl_source src = src_file(f);
	struct wl_match m;
	struct reports rs;
	struct addr a;
	size_t count;

	(void)state;
	memset(&rs, 0, sizeof rs);
	assert_int_equal(wl_check_file(f, &count, collect, &rs), 1);
	assert_int_equal(count, 4);
	expect_rep(&rs, 0, f, 8, "trailing junk");

	a = addr("10.1.1.1");
	memset(&rs, 0, sizeof rs);
	assert_int_equal(wl_lookup(&src, 1, &a, &m, 0, collect, &rs), 1);
	expect_match(&m, "10.0.0.0/8", 5000, f, 3);
	a = addr("192.0.2.1");
	wl_lookup(&src, 1, &a, &m, 0, collect, &rs);
	expect_match(&m, "192.0.2.0/24", 0, f, 5);
	a = addr("2001:db8::1");
	wl_lookup(&src, 1, &a, &m, 0, collect, &rs);
	expect_match(&m, "2001:db8::/32", 250, f, 7);
	a = addr("203.0.113.1");
	wl_lookup(&src, 1, &a, &m, 0, collect, &rs);
	expect_match(&m, "203.0.113.0/24", 0, f, 9);
	free(f);

	/* Comments and blanks only; and an empty file. */
	f = write_file("comments.txt", "# one\n\n   \n#two 10.0.0.0/8\n\t# three\n");
	memset(&rs, 0, sizeof rs);
	assert_int_equal(wl_check_file(f, &count, collect, &rs), 0);
	assert_int_equal(count, 0);
	assert_int_equal(rs.n, 0);
	free(f);
	f = write_file("empty.txt", "");
	count = 99;
	assert_int_equal(wl_check_file(f, &count, no_report, NULL), 0);
	assert_int_equal(count, 0);
	free(f);
}

static void
test_unreadable_files(void **state)
{
	char *missing = scratch_file("no-such-file.txt");
	char *dir = scratch_file("a-directory");
	char *missing_cdb = scratch_file("no-such-file.cdb");
	char *good = write_file("good.txt", "192.0.2.0/24 4\n");
	struct wl_source src[4];
	struct wl_match m;
	struct addr a = addr("192.0.2.1");
	struct reports rs;
	size_t count;

	(void)state;
	assert_int_equal(mkdir(dir, 0700), 0);

	src[0] = src_file(missing);
	src[1] = src_file(dir);
	src[2] = src_file(missing_cdb);
	src[3] = src_file(good);
	memset(&rs, 0, sizeof rs);
	assert_int_equal(wl_lookup(src, 4, &a, &m, 0, collect, &rs), 3);
	assert_int_equal(rs.n, 3);
	expect_rep(&rs, 0, missing, 0, "cannot open allowlist");
	expect_rep(&rs, 0, missing, 0, strerror(ENOENT));
	expect_rep(&rs, 1, dir, 0, strerror(EISDIR));
	expect_rep(&rs, 2, missing_cdb, 0, "cannot open allowlist");
	/* ...and the lookup carried on to the good file. */
	expect_match(&m, "192.0.2.0/24", 4000, good, 1);

	/* With a match found before, later files are still checked. */
	src[0] = src_allow("192.0.2.1");
	src[1] = src_file(missing);
	memset(&rs, 0, sizeof rs);
	assert_int_equal(wl_lookup(src, 2, &a, &m, 0, collect, &rs), 1);
	expect_rep(&rs, 0, missing, 0, "cannot open allowlist");
	expect_match(&m, "192.0.2.1", 0, NULL, 0);

	memset(&rs, 0, sizeof rs);
	count = 99;
	assert_int_equal(wl_check_file(missing, &count, collect, &rs), 1);
	assert_int_equal(count, 0);
	expect_rep(&rs, 0, missing, 0, "cannot open allowlist");

	/* Unreadable by permissions (root reads anything: then not tested). */
	assert_int_equal(chmod(good, 0), 0);
	if (access(good, R_OK) != 0) {
		src[0] = src_file(good);
		src[1] = src_allow("192.0.2.0/25");
		memset(&rs, 0, sizeof rs);
		assert_int_equal(wl_lookup(src, 2, &a, &m, 0, collect, &rs), 1);
		expect_rep(&rs, 0, good, 0, strerror(EACCES));
		expect_match(&m, "192.0.2.0/25", 0, NULL, 0);
	}
	assert_int_equal(chmod(good, 0644), 0);

	free(missing);
	free(dir);
	free(missing_cdb);
	free(good);
}

static void
test_max_errors(void **state)
{
	char *f1 = write_file("five-bad.txt",
	    "bad1\n"
	    "10.0.0.1/8\n"
	    "# fine\n"
	    "bad3\n"
	    "10.0.0.0/8 999\n"
	    "192.0.2.0/24 1\n"
	    "bad5 # the last one\n");
	char *f2 = write_file("three-bad.txt", "x\ny\nz\n198.51.100.0/24 2\n");
	struct wl_source src[2];
	struct wl_match m;
	struct addr a = addr("192.0.2.1");
	struct reports rs;

	(void)state;
	src[0] = src_file(f1);
	src[1] = src_file(f2);

	/* Cap 2: two problems shown, then one summary line for the rest. */
	memset(&rs, 0, sizeof rs);
	assert_int_equal(wl_lookup(src, 1, &a, &m, 2, collect, &rs), 5);
	assert_int_equal(rs.n, 3);
	expect_rep(&rs, 0, f1, 1, "not an IPv4 or IPv6 address");
	expect_rep(&rs, 1, f1, 2, "host bits");
	expect_rep(&rs, 2, f1, 0, "3 more problems not shown");
	/* Entries past the cap are still used. */
	expect_match(&m, "192.0.2.0/24", 1000, f1, 6);

	/* The cap is per file. */
	memset(&rs, 0, sizeof rs);
	a = addr("198.51.100.1");
	assert_int_equal(wl_lookup(src, 2, &a, &m, 2, collect, &rs), 8);
	assert_int_equal(rs.n, 6);
	expect_rep(&rs, 0, f1, 1, "");
	expect_rep(&rs, 1, f1, 2, "");
	expect_rep(&rs, 2, f1, 0, "3 more problems not shown");
	expect_rep(&rs, 3, f2, 1, "");
	expect_rep(&rs, 4, f2, 2, "");
	expect_rep(&rs, 5, f2, 0, "1 more problems not shown");
	expect_match(&m, "198.51.100.0/24", 2000, f2, 4);

	/* At the cap exactly: all shown, no summary. */
	memset(&rs, 0, sizeof rs);
	assert_int_equal(wl_lookup(src, 1, &a, &m, 5, collect, &rs), 5);
	assert_int_equal(rs.n, 5);
	expect_rep(&rs, 4, f1, 7, "");

	/* No cap. */
	memset(&rs, 0, sizeof rs);
	assert_int_equal(wl_lookup(src, 2, NULL, &m, 0, collect, &rs), 8);
	assert_int_equal(rs.n, 8);
	expect_rep(&rs, 0, f1, 1, "");
	expect_rep(&rs, 1, f1, 2, "");
	expect_rep(&rs, 2, f1, 4, "");
	expect_rep(&rs, 3, f1, 5, "delay out of range");
	expect_rep(&rs, 4, f1, 7, "");
	expect_rep(&rs, 5, f2, 1, "");
	expect_rep(&rs, 7, f2, 3, "");
	assert_false(m.found);

	/* Cap 1 */
	memset(&rs, 0, sizeof rs);
	assert_int_equal(wl_lookup(src, 1, NULL, &m, 1, collect, &rs), 5);
	assert_int_equal(rs.n, 2);
	expect_rep(&rs, 0, f1, 1, "");
	expect_rep(&rs, 1, f1, 0, "4 more problems not shown");

	/* wl_check_file shows everything. */
	{
		size_t count;

		memset(&rs, 0, sizeof rs);
		assert_int_equal(wl_check_file(f1, &count, collect, &rs), 5);
		assert_int_equal(rs.n, 5);
		assert_int_equal(count, 1);
	}
	free(f1);
	free(f2);
}

static void
test_check_file_counts(void **state)
{
	char *f = write_file("count.txt",
	    "10.0.0.0/8\n"
	    "10.0.0.0/8 5\n"		/* a duplicate is still an entry */
	    "# c\n"
	    "\n"
	    "2001:db8::/32 1\n"
	    "bad\n"
	    "::/0\n"
	    "0.0.0.0/0");
	struct reports rs;
	size_t count = 0;

	(void)state;
	memset(&rs, 0, sizeof rs);
	assert_int_equal(wl_check_file(f, &count, collect, &rs), 1);
	assert_int_equal(count, 5);
	expect_rep(&rs, 0, f, 6, "not an IPv4 or IPv6 address");
	free(f);
}

static void
test_no_descriptor_leak(void **state)
{
	char *txt = write_file("fd.txt", "192.0.2.0/24 1\n");
	char *cdb = scratch_file("fd.cdb");
	char *missing = scratch_file("fd-missing.txt");
	struct wl_source src[3];
	struct wl_match m;
	struct addr a = addr("192.0.2.1");
	struct reports rs;
	int before;
	size_t count;

	(void)state;
	memset(&rs, 0, sizeof rs);
	before = count_fds();
	assert_true(before > 0);
	assert_int_equal(wl_compile(txt, cdb, collect, &rs), 1);
	src[0] = src_file(txt);
	src[1] = src_file(cdb);
	src[2] = src_file(missing);
	wl_lookup(src, 3, &a, &m, 0, collect, &rs);
	wl_lookup(src, 3, NULL, &m, 0, collect, &rs);
	wl_check_file(txt, &count, collect, &rs);
	wl_check_file(cdb, &count, collect, &rs);
	assert_int_equal(count_fds(), before);
	free(txt);
	free(cdb);
	free(missing);
}

/* ------------------------------------------------------------------ */
/* Compiled allowlists                                                  */

static void
test_is_compiled(void **state)
{
	(void)state;
	assert_true(wl_is_compiled("allow.cdb"));
	assert_true(wl_is_compiled("/etc/sendwrap/allow.cdb"));
	assert_true(wl_is_compiled("a.cdb"));
	assert_false(wl_is_compiled(".cdb"));
	assert_false(wl_is_compiled("cdb"));
	assert_false(wl_is_compiled(""));
	assert_false(wl_is_compiled("allow.txt"));
	assert_false(wl_is_compiled("allow.cdb.txt"));
	assert_false(wl_is_compiled("allow.CDB"));
	assert_false(wl_is_compiled("allowcdb"));
}

/* Compare text and compiled answers for one peer; both must be want. */
static void
same_answer(const char *txt, const char *cdb, const char *peer,
    const char *want_rule, uint64_t want_delay)
{
	struct wl_source st = src_file(txt), sc = src_file(cdb);
	struct wl_match mt = look(&st, 1, peer), mc = look(&sc, 1, peer);

	if (want_rule == NULL) {
		if (mt.found || mc.found) {
			print_error("%s: expected no match (text %s, cdb %s)\n",
			    peer, mt.found ? mt.rule : "-",
			    mc.found ? mc.rule : "-");
			fail();
		}
		return;
	}
	if (!mt.found || !mc.found || strcmp(mt.rule, want_rule) != 0 ||
	    strcmp(mc.rule, want_rule) != 0 || mt.delay_ms != want_delay ||
	    mc.delay_ms != want_delay) {
		print_error("%s: want %s/%llu, text %s/%llu, cdb %s/%llu\n",
		    peer, want_rule, (unsigned long long)want_delay,
		    mt.found ? mt.rule : "-", (unsigned long long)mt.delay_ms,
		    mc.found ? mc.rule : "-", (unsigned long long)mc.delay_ms);
		fail();
	}
	assert_string_equal(mc.path, cdb);
	assert_int_equal(mc.line, 0);
	assert_string_equal(mt.path, txt);
	assert_true(mt.line > 0);
}

static void
test_compile_same_answers(void **state)
{
	char *txt = write_file("ordered.txt",
	    "# overlapping entries in both orders\n"
	    "10.1.2.0/24 3\n"
	    "10.0.0.0/8 1\n"
	    "10.1.0.0/16 2\n"		/* wholly shadowed by 10/8 */
	    "\n"
	    "192.0.2.0/24\n"
	    "192.0.2.128/25 4\n"	/* shadowed */
	    "2001:db8:1::/48 6 # comment\n"
	    "2001:db8::/32 5\r\n"
	    "198.51.100.7 9\n"
	    "198.51.100.7 10\n"		/* the same key again: first wins */
	    "198.51.100.0/24 11\n"
	    "2001:db8:1::1 12\n"	/* shadowed by the /48 */
	    "::/0 8\n"
	    "0.0.0.0/0 7\n"
	    "203.0.113.0/24 13\n");	/* shadowed by /0 */
	char *cdb = scratch_file("ordered.cdb");
	struct reports rs;
	size_t count;

	(void)state;
	memset(&rs, 0, sizeof rs);
	assert_int_equal(wl_compile(txt, cdb, collect, &rs), 14);
	assert_int_equal(rs.n, 0);
	assert_int_equal(wl_check_file(cdb, &count, no_report, NULL), 0);
	assert_int_equal(count, 14);

	same_answer(txt, cdb, "10.1.2.3", "10.1.2.0/24", 3000);
	same_answer(txt, cdb, "10.1.3.3", "10.0.0.0/8", 1000);
	same_answer(txt, cdb, "10.200.3.3", "10.0.0.0/8", 1000);
	same_answer(txt, cdb, "::ffff:10.1.2.3", "10.1.2.0/24", 3000);
	same_answer(txt, cdb, "192.0.2.1", "192.0.2.0/24", 0);
	same_answer(txt, cdb, "192.0.2.200", "192.0.2.0/24", 0);
	same_answer(txt, cdb, "2001:db8:1::1", "2001:db8:1::/48", 6000);
	same_answer(txt, cdb, "2001:db8:2::1", "2001:db8::/32", 5000);
	same_answer(txt, cdb, "2001:db9::1", "::/0", 8000);
	same_answer(txt, cdb, "::", "::/0", 8000);
	same_answer(txt, cdb, "198.51.100.7", "198.51.100.7", 9000);
	same_answer(txt, cdb, "198.51.100.8", "198.51.100.0/24", 11000);
	same_answer(txt, cdb, "203.0.113.1", "0.0.0.0/0", 7000);
	same_answer(txt, cdb, "255.255.255.255", "0.0.0.0/0", 7000);
	free(txt);

	/* Without the catch-alls, misses are misses in both forms. */
	txt = write_file("nocatch.txt",
	    "10.0.0.0/8\n192.0.2.1\n2001:db8::/32 1\n2001:db8::1 2\n");
	assert_int_equal(wl_compile(txt, cdb, no_report, NULL), 4);
	same_answer(txt, cdb, "11.0.0.0", NULL, 0);
	same_answer(txt, cdb, "192.0.2.2", NULL, 0);
	same_answer(txt, cdb, "::ffff:192.0.2.2", NULL, 0);
	same_answer(txt, cdb, "2001:db9::", NULL, 0);
	same_answer(txt, cdb, "::1", NULL, 0);
	same_answer(txt, cdb, "192.0.2.1", "192.0.2.1", 0);
	same_answer(txt, cdb, "2001:db8::1", "2001:db8::/32", 1000);
	free(txt);

	/* An empty allowlist compiles to a file that matches nothing. */
	txt = write_file("nothing.txt", "# nothing here\n");
	assert_int_equal(wl_compile(txt, cdb, no_report, NULL), 0);
	same_answer(txt, cdb, "10.0.0.1", NULL, 0);
	same_answer(txt, cdb, "2001:db8::1", NULL, 0);
	assert_int_equal(wl_check_file(cdb, &count, no_report, NULL), 0);
	assert_int_equal(count, 0);
	free(txt);
	free(cdb);
}

/* Order of sources still holds with a compiled file among them. */
static void
test_compiled_in_source_order(void **state)
{
	char *txt = write_file("src-order.txt", "10.0.0.0/8 1\n192.0.2.0/24 2\n");
	char *other = write_file("src-other.txt", "10.1.0.0/16 3\n");
	char *cdb = scratch_file("src-order.cdb");
	struct wl_source src[3];
	struct wl_match m;

	(void)state;
	assert_int_equal(wl_compile(txt, cdb, no_report, NULL), 2);
	src[0] = src_allow("10.1.2.0/24");
	src[1] = src_file(cdb);
	src[2] = src_file(other);
	m = look(src, 3, "10.1.2.3");
	expect_match(&m, "10.1.2.0/24", 0, NULL, 0);
	m = look(src, 3, "10.1.3.3");
	expect_match(&m, "10.0.0.0/8", 1000, cdb, 0);
	m = look(src + 2, 1, "10.1.3.3");
	expect_match(&m, "10.1.0.0/16", 3000, other, 1);
	src[0] = src_file(other);
	src[1] = src_file(cdb);
	m = look(src, 2, "10.1.3.3");
	expect_match(&m, "10.1.0.0/16", 3000, other, 1);
	m = look(src, 2, "10.2.3.3");
	expect_match(&m, "10.0.0.0/8", 1000, cdb, 0);
	m = look(src, 2, "192.0.2.3");
	expect_match(&m, "192.0.2.0/24", 2000, cdb, 0);
	free(txt);
	free(other);
	free(cdb);
}

/* A tiny deterministic PRNG, so that a failure can be replayed. */
static uint32_t rng_state = 12345;

static uint32_t
rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

struct ref_entry {
	int family;
	unsigned char bytes[16];
	unsigned prefix;
	uint64_t delay;
	char rule[WL_RULE_MAX];
};

/* Random address near a few bases, so entries and peers overlap. */
static void
rand_addr(int family, unsigned char *b)
{
	static const unsigned char b4[3][4] = {
		{ 10, 0, 0, 0 }, { 192, 0, 2, 0 }, { 198, 51, 100, 0 },
	};
	static const unsigned char b6[2][16] = {
		{ 0x20, 0x01, 0x0d, 0xb8 }, { 0xfd, 0x00 },
	};
	unsigned n = family == AF_INET ? 4 : 16, i;

	memcpy(b, family == AF_INET ? b4[rnd() % 3] : b6[rnd() % 2], n);
	/* Vary a few bits at various depths. */
	for (i = 0; i < 3; i++) {
		unsigned bit = (family == AF_INET ? 8 : 24) + rnd() % (8 * n - (family == AF_INET ? 8 : 24));

		if (rnd() % 2)
			b[bit / 8] ^= (unsigned char)(0x80 >> (bit % 8));
	}
	if (rnd() % 4 == 0)
		b[n - 1] = (unsigned char)rnd();
}

static int
ref_match(const struct ref_entry *e, int family, const unsigned char *b)
{
	unsigned i;

	if (e->family != family)
		return 0;
	for (i = 0; i < e->prefix; i++) {
		unsigned char m = (unsigned char)(0x80 >> (i % 8));

		if ((e->bytes[i / 8] & m) != (b[i / 8] & m))
			return 0;
	}
	return 1;
}

/*
 * Random overlapping allowlists: the text file, the compiled file and a
 * plain first-match loop written here must all give the same answer.
 */
static void
test_compile_random(void **state)
{
	enum { NENT = 400, NPEER = 3000 };
	static struct ref_entry ent[NENT];
	char *buf = malloc(NENT * 80), *p = buf, *txt, *cdb;
	struct wl_source st, sc;
	unsigned not_longest = 0, hits = 0, misses = 0;
	int i, round;

	(void)state;
	assert_non_null(buf);
	cdb = scratch_file("random.cdb");
	for (round = 0; round < 3; round++) {
		p = buf;
		for (i = 0; i < NENT; i++) {
			struct ref_entry *e = &ent[i];
			unsigned n, j;
			char a[INET6_ADDRSTRLEN], d[32];

			e->family = rnd() % 3 ? AF_INET : AF_INET6;
			n = e->family == AF_INET ? 4 : 16;
			memset(e->bytes, 0, sizeof e->bytes);
			rand_addr(e->family, e->bytes);
			e->prefix = rnd() % 8 == 0 ? rnd() % (8 * n + 1) :
			    (n == 4 ? 16 + rnd() % 17 : 32 + rnd() % 97);
			for (j = e->prefix; j < 8 * n; j++)
				e->bytes[j / 8] &= (unsigned char)~(0x80 >> (j % 8));
			inet_ntop(e->family, e->bytes, a, sizeof a);
			if (rnd() % 3 == 0)
				snprintf(e->rule, sizeof e->rule, "%s", a);
			else
				snprintf(e->rule, sizeof e->rule, "%s/%u", a, e->prefix);
			if (strchr(e->rule, '/') == NULL)
				e->prefix = 8 * n;	/* bare: /32 or /128 */
			e->delay = (uint64_t)(rnd() % 300001);
			duration_format(e->delay, d, sizeof d);
			p += sprintf(p, rnd() % 5 ? "%s %s\n" : "%s %s # c\n",
			    e->rule, d);
		}
		txt = write_file_len("random.txt", buf, (size_t)(p - buf));
		assert_int_equal(wl_compile(txt, cdb, no_report, NULL), NENT);
		st = src_file(txt);
		sc = src_file(cdb);
		for (i = 0; i < NPEER; i++) {
			int fam = rnd() % 3 ? AF_INET : AF_INET6;
			unsigned char b[16] = { 0 };
			char peer[INET6_ADDRSTRLEN];
			struct wl_match mt, mc;
			int k, first = -1;
			unsigned longest = 0;

			rand_addr(fam, b);
			inet_ntop(fam, b, peer, sizeof peer);
			for (k = 0; k < NENT; k++) {
				if (!ref_match(&ent[k], fam, b))
					continue;
				if (first < 0)
					first = k;
				if (ent[k].prefix > longest)
					longest = ent[k].prefix;
			}
			mt = look(&st, 1, peer);
			mc = look(&sc, 1, peer);
			if (first < 0) {
				misses++;
				if (mt.found || mc.found) {
					print_error("%s: no entry, but text %s "
					    "cdb %s\n", peer,
					    mt.found ? mt.rule : "-",
					    mc.found ? mc.rule : "-");
					fail();
				}
				continue;
			}
			hits++;
			if (ent[first].prefix != longest)
				not_longest++;
			if (!mt.found || !mc.found ||
			    strcmp(mt.rule, ent[first].rule) != 0 ||
			    strcmp(mc.rule, ent[first].rule) != 0 ||
			    mt.delay_ms != ent[first].delay ||
			    mc.delay_ms != ent[first].delay ||
			    mt.line != (unsigned long)first + 1) {
				print_error("round %d peer %s: want line %d %s "
				    "%llu; text %s %llu line %lu; cdb %s %llu\n",
				    round, peer, first + 1, ent[first].rule,
				    (unsigned long long)ent[first].delay,
				    mt.found ? mt.rule : "-",
				    (unsigned long long)mt.delay_ms, mt.line,
				    mc.found ? mc.rule : "-",
				    (unsigned long long)mc.delay_ms);
				fail();
			}
		}
		free(txt);
	}
	/* The data really exercised first-match against longest-match. */
	assert_true(hits > 1000);
	assert_true(misses > 100);
	assert_true(not_longest > 100);
	free(buf);
	free(cdb);
}

/* What the compiled file at path says of its text. */
static struct allowdb_stats
compiled_stats(const char *path)
{
	struct allowdb_stats st;
	const char *why = NULL;
	struct allowdb *db = allowdb_open(path, &why);

	if (db == NULL) {
		print_error("allowdb_open(%s): %s\n", path, why);
		fail();
	}
	allowdb_stats(db, &st);
	assert_int_equal(allowdb_count(db), st.entries);
	allowdb_close(db);
	return st;
}

/* The edges of the interval table: neighbours, nesting both ways, the
 * first and last addresses, whole families, repeats. */
static void
test_compile_edges(void **state)
{
	static const char *top6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
	char *txt = write_file("edges.txt",
	    "10.0.0.0/25 1\n"
	    "10.0.0.128/25 2\n"		/* a neighbour, another delay */
	    "10.0.1.0/25 3\n"
	    "10.0.1.128/25 3\n"		/* a neighbour, the same delay */
	    "172.16.0.0/12 4\n"		/* shorter and earlier: wins over */
	    "172.16.5.0/24 5\n"		/* a longer later one everywhere */
	    "192.168.1.0/24 6\n"	/* longer and earlier: wins where */
	    "192.168.0.0/16 7\n"	/* it holds, the shorter elsewhere */
	    "198.51.100.0/24 8\n"
	    "198.51.100.0/24 9\n"	/* an exact repeat */
	    "0.0.0.0 10\n"		/* the first address */
	    "255.255.255.255 11\n"	/* the last */
	    "::ffff:192.0.2.0/120 12\n"	/* IPv6 as written: no IPv4 peer */
	    "::\n"
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 13\n"
	    "2001:db8::/32 14\n"
	    "2001:db8:0:1::/64 15\n"	/* inside an earlier one: shadowed */
	    "2001:db8:0:1::1 16\n"	/* likewise */
	    "::/0 17\n"
	    "0.0.0.0/0 18\n");
	char *cdb = scratch_file("edges.cdb");
	struct allowdb_stats st;

	(void)state;
	assert_int_equal(wl_compile(txt, cdb, no_report, NULL), 20);
	same_answer(txt, cdb, "10.0.0.127", "10.0.0.0/25", 1000);
	same_answer(txt, cdb, "10.0.0.128", "10.0.0.128/25", 2000);
	same_answer(txt, cdb, "10.0.1.127", "10.0.1.0/25", 3000);
	same_answer(txt, cdb, "10.0.1.128", "10.0.1.128/25", 3000);
	same_answer(txt, cdb, "10.0.2.0", "0.0.0.0/0", 18000);
	same_answer(txt, cdb, "172.16.5.1", "172.16.0.0/12", 4000);
	same_answer(txt, cdb, "172.31.255.255", "172.16.0.0/12", 4000);
	same_answer(txt, cdb, "172.32.0.0", "0.0.0.0/0", 18000);
	same_answer(txt, cdb, "192.168.1.255", "192.168.1.0/24", 6000);
	same_answer(txt, cdb, "192.168.0.255", "192.168.0.0/16", 7000);
	same_answer(txt, cdb, "192.168.2.0", "192.168.0.0/16", 7000);
	same_answer(txt, cdb, "198.51.100.1", "198.51.100.0/24", 8000);
	same_answer(txt, cdb, "0.0.0.0", "0.0.0.0", 10000);
	same_answer(txt, cdb, "0.0.0.1", "0.0.0.0/0", 18000);
	same_answer(txt, cdb, "255.255.255.255", "255.255.255.255", 11000);
	same_answer(txt, cdb, "255.255.255.254", "0.0.0.0/0", 18000);
	same_answer(txt, cdb, "::ffff:192.0.2.1", "0.0.0.0/0", 18000);
	same_answer(txt, cdb, "::", "::", 0);
	same_answer(txt, cdb, "::1", "::/0", 17000);
	same_answer(txt, cdb, top6, top6, 13000);
	same_answer(txt, cdb, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe",
	    "::/0", 17000);
	same_answer(txt, cdb, "2001:db8:0:1::1", "2001:db8::/32", 14000);
	same_answer(txt, cdb, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
	    "2001:db8::/32", 14000);
	same_answer(txt, cdb, "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
	    "::/0", 17000);
	same_answer(txt, cdb, "2001:db9::", "::/0", 17000);
	st = compiled_stats(cdb);
	assert_int_equal(st.entries, 20);
	assert_int_equal(st.repeats, 1);
	assert_int_equal(st.shadowed, 3);
	free(txt);

	/* Only IPv6, only IPv4, nothing but one whole family. */
	txt = write_file("edges6.txt", "::/0 1\n");
	assert_int_equal(wl_compile(txt, cdb, no_report, NULL), 1);
	same_answer(txt, cdb, "::", "::/0", 1000);
	same_answer(txt, cdb, top6, "::/0", 1000);
	same_answer(txt, cdb, "0.0.0.0", NULL, 0);
	same_answer(txt, cdb, "255.255.255.255", NULL, 0);
	free(txt);
	txt = write_file("edges4.txt", "0.0.0.0/0 1\n");
	assert_int_equal(wl_compile(txt, cdb, no_report, NULL), 1);
	same_answer(txt, cdb, "255.255.255.255", "0.0.0.0/0", 1000);
	same_answer(txt, cdb, "::", NULL, 0);
	same_answer(txt, cdb, top6, NULL, 0);
	free(txt);

	/* A network split by a later one inside it is one interval again. */
	txt = write_file("edges-join.txt",
	    "10.0.0.0/8 1\n10.5.0.0/16 2\n10.5.0.0/16 3\n10.0.0.0/8 4\n");
	assert_int_equal(wl_compile(txt, cdb, no_report, NULL), 4);
	same_answer(txt, cdb, "10.5.0.1", "10.0.0.0/8", 1000);
	st = compiled_stats(cdb);
	assert_int_equal(st.entries, 4);
	assert_int_equal(st.repeats, 2);
	assert_int_equal(st.shadowed, 1);
	assert_int_equal(st.intervals, 1);
	free(txt);
	free(cdb);
}

static int
tmp_leftovers(void)
{
	DIR *d = opendir(scratch_dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strstr(de->d_name, ".tmp.") != NULL)
			n++;
	closedir(d);
	return n;
}

static void
test_compile_refused(void **state)
{
	char *good = write_file("refuse-good.txt", "192.0.2.0/24 2\n");
	char *bad = write_file("refuse-bad.txt",
	    "# one bad line makes the whole file refused\n"
	    "10.0.0.0/8 1\n"
	    "10.0.0.1/8\n"
	    "198.51.100.0/24 400\n");
	char *missing = scratch_file("refuse-missing.txt");
	char *cdb = scratch_file("refuse.cdb");
	char *nodir = scratch_file("no-such-dir/x.cdb");
	char *before, *after;
	size_t blen, alen;
	struct stat sb, sa;
	struct reports rs;
	struct wl_source src;
	struct wl_match m;

	(void)state;
	assert_int_equal(wl_compile(good, cdb, no_report, NULL), 1);
	before = read_whole(cdb, &blen);
	assert_int_equal(stat(cdb, &sb), 0);

	memset(&rs, 0, sizeof rs);
	assert_int_equal(wl_compile(bad, cdb, collect, &rs), -1);
	assert_int_equal(rs.n, 2);
	expect_rep(&rs, 0, bad, 3, "host bits");
	expect_rep(&rs, 1, bad, 4, "delay out of range");

	/* The old database is still there, the same file, unchanged. */
	after = read_whole(cdb, &alen);
	assert_int_equal(stat(cdb, &sa), 0);
	assert_int_equal(alen, blen);
	assert_memory_equal(after, before, blen);
	assert_true(sa.st_ino == sb.st_ino);
	free(after);
	src = src_file(cdb);
	m = look(&src, 1, "192.0.2.1");
	expect_match(&m, "192.0.2.0/24", 2000, cdb, 0);
	m = look(&src, 1, "10.1.1.1");
	assert_false(m.found);

	/* A missing source: refused, reported, old file kept. */
	memset(&rs, 0, sizeof rs);
	assert_int_equal(wl_compile(missing, cdb, collect, &rs), -1);
	assert_true(rs.n >= 1);
	expect_rep(&rs, 0, missing, 0, "");
	after = read_whole(cdb, &alen);
	assert_int_equal(alen, blen);
	assert_memory_equal(after, before, blen);
	free(after);

	/* An output that cannot be written: reported, no stray files. */
	memset(&rs, 0, sizeof rs);
	assert_int_equal(wl_compile(good, nodir, collect, &rs), -1);
	assert_true(rs.n >= 1);
	assert_int_equal(rs.r[0].line, 0);
	assert_int_equal(tmp_leftovers(), 0);

	free(before);
	free(good);
	free(bad);
	free(missing);
	free(cdb);
	free(nodir);
}

/* An LMDB file at path with one record in the main database, or in a
 * database named db; key and value are strings. */
static void
make_lmdb(const char *path, const char *db, const char *key, const char *val,
    size_t vlen)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { strlen(key), (void *)key }, v = { vlen, (void *)val };

	unlink(path);
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 2), 0);
	assert_int_equal(mdb_env_open(env, path, MDB_NOSUBDIR | MDB_NOLOCK,
	    0644), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, db, MDB_CREATE, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static void
test_foreign_cdb(void **state)
{
	/* Made by an earlier sendwrap, on tinycdb: the old format. */
	const char *old = TEST_DATA "/old-format.cdb";
	char *foreign = scratch_file("foreign.cdb");
	char *wrongmeta = scratch_file("wrongmeta.cdb");
	char *nointervals = scratch_file("nointervals.cdb");
	char *tiny = write_file("tiny.cdb", "10.0.0.0/8\n");
	char *empty = write_file("empty.cdb", "");
	char *text_named_cdb = scratch_file("text.cdb");
	char *good = write_file("after-foreign.txt", "10.0.0.0/8 3\n");
	static const char meta[36] = { 2 };
	struct wl_source src[6];
	struct wl_match m;
	struct addr a = addr("10.1.1.1");
	struct reports rs;
	size_t count, i;
	char *big;

	(void)state;
	/* A valid LMDB file from someone else (say, a pass cache). */
	make_lmdb(foreign, NULL, "n\004\010\012", "xxxxxxxxxxxxxxxx", 16);
	/* Our meta key with the wrong record size. */
	make_lmdb(wrongmeta, NULL, "sendwrap-allowlist", "x", 1);
	/* The right meta record, but no table of intervals. */
	make_lmdb(nointervals, NULL, "sendwrap-allowlist", meta, sizeof meta);

	/* A text allowlist large enough to be mapped, but named .cdb. */
	big = malloc(4096);
	assert_non_null(big);
	memset(big, '#', 4096);
	big[4095] = '\n';
	free(write_file_len("text.cdb", big, 4096));
	free(big);

	src[0] = src_file(old);
	src[1] = src_file(foreign);
	src[2] = src_file(wrongmeta);
	src[3] = src_file(nointervals);
	src[4] = src_file(text_named_cdb);
	src[5] = src_file(good);
	memset(&rs, 0, sizeof rs);
	assert_int_equal(wl_lookup(src, 6, &a, &m, 0, collect, &rs), 5);
	assert_int_equal(rs.n, 5);
	for (i = 0; i < 5; i++)
		expect_rep(&rs, i, src[i].path, 0, "not a compiled sendwrap "
		    "allowlist (make one with sendwrap --compile)");
	expect_match(&m, "10.0.0.0/8", 3000, good, 1);

	/* Too small to be any compiled file: reported too, lookup carries on. */
	src[0] = src_file(tiny);
	src[1] = src_file(empty);
	src[2] = src_file(good);
	memset(&rs, 0, sizeof rs);
	assert_int_equal(wl_lookup(src, 3, &a, &m, 0, collect, &rs), 2);
	expect_rep(&rs, 0, tiny, 0, "");
	expect_rep(&rs, 1, empty, 0, "");
	expect_match(&m, "10.0.0.0/8", 3000, good, 1);

	memset(&rs, 0, sizeof rs);
	assert_int_equal(wl_check_file(old, &count, collect, &rs), 1);
	expect_rep(&rs, 0, old, 0, "not a compiled sendwrap allowlist");
	assert_int_equal(count, 0);

	free(foreign);
	free(wrongmeta);
	free(nointervals);
	free(tiny);
	free(empty);
	free(text_named_cdb);
	free(good);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_parse),
		cmocka_unit_test(test_addr_from_sockaddr),
		cmocka_unit_test(test_parse_cidr),
		cmocka_unit_test(test_parse_cidr_bad),
		cmocka_unit_test(test_parse_line),
		cmocka_unit_test(test_parse_line_bad),
		cmocka_unit_test(test_entry_matches),
		cmocka_unit_test(test_lookup_allow_entries),
		cmocka_unit_test(test_lookup_first_match),
		cmocka_unit_test(test_lookup_per_entry_delay),
		cmocka_unit_test(test_bad_lines_reported),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_many_lines),
		cmocka_unit_test(test_comments_blank_crlf),
		cmocka_unit_test(test_unreadable_files),
		cmocka_unit_test(test_max_errors),
		cmocka_unit_test(test_check_file_counts),
		cmocka_unit_test(test_no_descriptor_leak),
		cmocka_unit_test(test_is_compiled),
		cmocka_unit_test(test_compile_same_answers),
		cmocka_unit_test(test_compiled_in_source_order),
		cmocka_unit_test(test_compile_random),
		cmocka_unit_test(test_compile_edges),
		cmocka_unit_test(test_compile_refused),
		cmocka_unit_test(test_foreign_cdb),
	};

	return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
