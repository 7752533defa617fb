/*
 * test_spf.c - cmocka tests for spf.c's parser: which TXT records are
 * SPF, each mechanism and modifier with its domain and lengths, the
 * qualifiers, macros, what is a syntax error (and where), the bounds,
 * and the domain names the walker takes.  The walk itself is tested
 * against a real DNS server (tests/integration/test_spf.py).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>

#include "spf.h"

static struct spf_record rec;

/* Parse text, which must be a good record. */
static const struct spf_record *
parsed(const char *text)
{
	const char *why = NULL;
	size_t at;

	if (spf_parse(text, strlen(text), &rec, &why, &at) != 0) {
		print_error("spf_parse(\"%s\"): %s at %zu\n", text, why, at);
		fail();
	}
	return &rec;
}

/* Parse text, which must be refused at offset at. */
static const char *
refused(const char *text, size_t want_at)
{
	const char *why = NULL;
	size_t at = 999;

	if (spf_parse(text, strlen(text), &rec, &why, &at) == 0) {
		print_error("spf_parse(\"%s\") accepted\n", text);
		fail();
	}
	assert_non_null(why);
	if (at != want_at) {
		print_error("spf_parse(\"%s\"): %s at %zu, want %zu\n", text,
		    why, at, want_at);
		fail();
	}
	return why;
}

static void
assert_domain(const struct spf_term *t, const char *want)
{
	if (want == NULL) {
		assert_null(t->domain);
		return;
	}
	assert_non_null(t->domain);
	assert_int_equal(t->domain_len, strlen(want));
	assert_memory_equal(t->domain, want, t->domain_len);
}

static void
assert_net(const struct spf_term *t, const char *want)
{
	char text[ADDR_TEXT_MAX];

	assert_string_equal(addr_format(&t->net, text, sizeof text), want);
}

static void
test_which_records_are_spf(void **state)
{
	static const char *const yes[] = { "v=spf1", "v=spf1 -all",
	    "V=SPF1 a", "v=spf1  ", NULL };
	static const char *const no[] = { "", "v=spf", "v=spf10",
	    "v=spf1-all", " v=spf1 a", "spf2.0/pra a", "v=DKIM1; k=rsa",
	    NULL };
	size_t i;

	(void)state;
	for (i = 0; yes[i]; i++)
		assert_true(spf_is_record(yes[i], strlen(yes[i])));
	for (i = 0; no[i]; i++)
		assert_false(spf_is_record(no[i], strlen(no[i])));
	/* Only len bytes count. */
	assert_false(spf_is_record("v=spf1 a", 5));
}

static void
test_ip_networks(void **state)
{
	const struct spf_record *r = parsed("v=spf1 ip4:192.0.2.1 "
	    "ip4:198.51.100.77/24 ip6:2001:db8::1 ip6:2001:DB8:abcd:12::/56 "
	    "ip4:10.1.2.3/0 ip6:::/0 -ip4:192.0.2.9/32");

	(void)state;
	assert_int_equal(r->n, 7);
	assert_int_equal(r->term[0].mech, SPF_IP4);
	assert_int_equal(r->term[0].qualifier, '+');
	assert_net(&r->term[0], "192.0.2.1");
	assert_int_equal(r->term[0].len4, 32);
	/* Host bits past the length are cleared. */
	assert_net(&r->term[1], "198.51.100.0");
	assert_int_equal(r->term[1].len4, 24);
	assert_int_equal(r->term[2].mech, SPF_IP6);
	assert_net(&r->term[2], "2001:db8::1");
	assert_int_equal(r->term[2].len6, 128);
	assert_net(&r->term[3], "2001:db8:abcd::");
	assert_int_equal(r->term[3].len6, 56);
	assert_net(&r->term[4], "0.0.0.0");
	assert_int_equal(r->term[4].len4, 0);
	assert_int_equal(r->term[5].len6, 0);
	assert_int_equal(r->term[6].qualifier, '-');
	assert_null(r->term[0].domain);
}

static void
test_a_and_mx_lengths(void **state)
{
	const struct spf_record *r = parsed("v=spf1 a mx a/24 mx//64 "
	    "a:mail.example.com/24//64 MX:example.org//48 a:x.example/0");

	(void)state;
	assert_int_equal(r->n, 7);
	assert_int_equal(r->term[0].mech, SPF_A);
	assert_domain(&r->term[0], NULL);
	assert_int_equal(r->term[0].len4, 32);
	assert_int_equal(r->term[0].len6, 128);
	assert_int_equal(r->term[1].mech, SPF_MX);
	assert_int_equal(r->term[2].len4, 24);
	assert_int_equal(r->term[2].len6, 128);
	assert_int_equal(r->term[3].len4, 32);
	assert_int_equal(r->term[3].len6, 64);
	assert_domain(&r->term[4], "mail.example.com");
	assert_int_equal(r->term[4].len4, 24);
	assert_int_equal(r->term[4].len6, 64);
	assert_int_equal(r->term[5].mech, SPF_MX);
	assert_domain(&r->term[5], "example.org");
	assert_int_equal(r->term[5].len4, 32);
	assert_int_equal(r->term[5].len6, 48);
	assert_int_equal(r->term[6].len4, 0);
}

static void
test_include_redirect_and_the_rest(void **state)
{
	const struct spf_record *r = parsed("v=spf1 include:_spf.example.com "
	    "?include:b.example. ptr ptr:example.net exists:x.example ~all "
	    "exp=explain.example redirect=other.example foo=bar%{i} x-y.z=");

	(void)state;
	assert_int_equal(r->n, 10);
	assert_int_equal(r->term[0].mech, SPF_INCLUDE);
	assert_domain(&r->term[0], "_spf.example.com");
	assert_int_equal(r->term[1].qualifier, '?');
	assert_domain(&r->term[1], "b.example.");
	assert_int_equal(r->term[2].mech, SPF_PTR);
	assert_domain(&r->term[2], NULL);
	assert_domain(&r->term[3], "example.net");
	assert_int_equal(r->term[4].mech, SPF_EXISTS);
	assert_int_equal(r->term[5].mech, SPF_ALL);
	assert_int_equal(r->term[5].qualifier, '~');
	assert_true(r->has_all);
	assert_int_equal(r->term[6].mech, SPF_EXP);
	assert_int_equal(r->term[6].qualifier, 0);
	assert_int_equal(r->term[7].mech, SPF_REDIRECT);
	assert_domain(&r->term[7], "other.example");
	assert_ptr_equal(r->redirect, &r->term[7]);
	assert_int_equal(r->term[8].mech, SPF_MODIFIER);
	assert_int_equal(r->term[9].mech, SPF_MODIFIER);
	/* Each term's text as written. */
	assert_int_equal(r->term[1].text_len, strlen("?include:b.example."));
	assert_memory_equal(r->term[1].text, "?include:b.example.",
	    r->term[1].text_len);
	r = parsed("v=spf1 redirect=x.example");
	assert_false(r->has_all);
	assert_non_null(r->redirect);
}

static void
test_macros(void **state)
{
	const struct spf_record *r = parsed("v=spf1 exists:%{i}.%{h}.x.example "
	    "include:%{d2r}.y.example a:%{l1r-}.z.example/24 "
	    "redirect=%{ir.-+,/_=}._spf.example ptr:%%.%_.%-.example");

	(void)state;
	assert_int_equal(r->n, 5);
	assert_true(r->term[0].macro);
	assert_true(r->term[1].macro);
	assert_true(r->term[2].macro);
	assert_domain(&r->term[2], "%{l1r-}.z.example");
	assert_int_equal(r->term[2].len4, 24);
	assert_true(r->term[3].macro);
	assert_true(r->term[4].macro);
	r = parsed("v=spf1 include:plain.example");
	assert_false(r->term[0].macro);
}

static void
test_syntax_errors_name_their_term(void **state)
{
	(void)state;
	refused("v=spf1 ip4:192.0.2.300", 7);
	refused("v=spf1 a ip4:192.0.2.1/33", 9);
	refused("v=spf1 a ip6:2001:db8::/129", 9);
	refused("v=spf1 ip4:2001:db8::1", 7);
	refused("v=spf1 ip6:192.0.2.1", 7);
	refused("v=spf1 ip4", 7);
	refused("v=spf1 ip4:", 7);
	refused("v=spf1 ip4:192.0.2.1/", 7);
	refused("v=spf1 ip4:192.0.2.1//64", 7);
	refused("v=spf1 a:", 7);
	refused("v=spf1 a/33", 7);
	refused("v=spf1 a//129", 7);
	refused("v=spf1 a/24/64", 7);
	refused("v=spf1 a/24//", 7);
	refused("v=spf1 a:x.example/2x", 7);
	refused("v=spf1 mx:bad..example", 7);
	refused("v=spf1 mx:x.123", 7);
	refused("v=spf1 include", 7);
	refused("v=spf1 include:", 7);
	refused("v=spf1 include:x.example/24", 7);
	refused("v=spf1 exists", 7);
	refused("v=spf1 all/24", 7);
	refused("v=spf1 allx", 7);
	refused("v=spf1 +", 7);
	refused("v=spf1 -a -foo:bar", 10);
	refused("v=spf1 +redirect=x.example", 7);
	refused("v=spf1 redirect=", 7);
	refused("v=spf1 redirect=x.example redirect=y.example", 26);
	refused("v=spf1 1x=y", 7);
	refused("v=spf1 exists:%{q}.example", 7);
	refused("v=spf1 exists:%{i", 7);
	refused("v=spf1 exists:%x.example", 7);
	/* Characters that are not printable ASCII, anywhere. */
	refused("v=spf1 a\tmx", 8);
	refused("v=spf1 a:\x80.example", 9);
	refused("v=spf0", 0);
}

static void
test_bounds(void **state)
{
	char *text = malloc(SPF_RECORD_MAX + 2);
	size_t i, n;
	const char *why;

	(void)state;
	assert_non_null(text);
	/* SPF_TERMS_MAX terms are fine, one more is not. */
	n = (size_t)snprintf(text, SPF_RECORD_MAX, "v=spf1");
	for (i = 0; i < SPF_TERMS_MAX; i++)
		n += (size_t)snprintf(text + n, SPF_RECORD_MAX - n, " a");
	parsed(text);
	assert_int_equal(rec.n, SPF_TERMS_MAX);
	strcat(text, " mx");
	why = refused(text, n + 1);
	assert_non_null(strstr(why, "terms"));
	/* SPF_RECORD_MAX bytes are fine, one more is not. */
	memset(text, ' ', SPF_RECORD_MAX + 1);
	memcpy(text, "v=spf1 a", 8);
	text[SPF_RECORD_MAX] = '\0';
	parsed(text);
	text[SPF_RECORD_MAX] = ' ';
	text[SPF_RECORD_MAX + 1] = '\0';
	why = refused(text, 0);
	assert_non_null(strstr(why, "longer"));
	free(text);
}

static void
test_domain_names(void **state)
{
	static const char *const good[] = { "example.com", "example.com.",
	    "_spf.example.com", "a-b.example", "x", "xn--bcher-kva.example",
	    "1.2.3.example", "a.b2", NULL };
	static const char *const bad[] = { "", ".", "a..b", ".example",
	    "-a.example", "a-.example", "a.-b", "192.0.2.1", "a b.example",
	    "a/b.example", "%{d}.example", "example.com..", NULL };
	char name[SPF_NAME_MAX + 3];
	size_t i;

	(void)state;
	for (i = 0; good[i]; i++)
		if (!spf_domain_ok(good[i], strlen(good[i]))) {
			print_error("\"%s\" refused\n", good[i]);
			fail();
		}
	for (i = 0; bad[i]; i++)
		if (spf_domain_ok(bad[i], strlen(bad[i]))) {
			print_error("\"%s\" accepted\n", bad[i]);
			fail();
		}
	/* Labels up to 63, names up to SPF_NAME_MAX (a final dot aside). */
	memset(name, 'a', 64);
	assert_false(spf_domain_ok(name, 64));
	assert_true(spf_domain_ok(name, 63));
	for (i = 0; i < SPF_NAME_MAX + 1; i++)
		name[i] = i % 50 == 49 ? '.' : 'a';
	assert_true(spf_domain_ok(name, SPF_NAME_MAX));
	assert_false(spf_domain_ok(name, SPF_NAME_MAX + 1));
	name[SPF_NAME_MAX] = '.';
	assert_true(spf_domain_ok(name, SPF_NAME_MAX + 1));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_which_records_are_spf),
		cmocka_unit_test(test_ip_networks),
		cmocka_unit_test(test_a_and_mx_lengths),
		cmocka_unit_test(test_include_redirect_and_the_rest),
		cmocka_unit_test(test_macros),
		cmocka_unit_test(test_syntax_errors_name_their_term),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_domain_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
