/*
 * test_dnsl.c - cmocka tests for dnsl.c's pure parts: list specs
 * (ZONE[=FILTER][*WEIGHT]), filters, the names looked up, --dns-server.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "dnsl.h"

static struct dnsl_list
parsed(const char *spec, int allow)
{
	struct dnsl_list l;
	const char *why = NULL;

	if (dnsl_parse(spec, allow, &l, &why) != 0) {
		print_error("dnsl_parse(\"%s\"): %s\n", spec, why);
		fail();
	}
	return l;
}

static int
counts(const struct dnsl_list *l, const char *ip)
{
	unsigned a, b, c, d;
	unsigned char a4[4];

	assert_int_equal(sscanf(ip, "%u.%u.%u.%u", &a, &b, &c, &d), 4);
	a4[0] = (unsigned char)a;
	a4[1] = (unsigned char)b;
	a4[2] = (unsigned char)c;
	a4[3] = (unsigned char)d;
	return dnsl_answer_counts(l, a4);
}

static void
test_zone_weight_defaults(void **state)
{
	struct dnsl_list l = parsed("zen.example.org", 0);

	(void)state;
	assert_string_equal(l.zone, "zen.example.org");
	assert_int_equal(l.weight, 1);
	assert_false(l.allow);
	assert_true(counts(&l, "127.0.0.2") && counts(&l, "10.1.2.3"));
	l = parsed("list.dnswl.example", 1);
	assert_int_equal(l.weight, -1);
	assert_true(l.allow);
	assert_int_equal(parsed("bl.example*3", 0).weight, 3);
	assert_int_equal(parsed("wl.example*-5", 1).weight, -5);
	assert_int_equal(parsed("bl.example*0", 0).weight, 0);
}

static void
test_filters(void **state)
{
	struct dnsl_list l = parsed("bl.example=127.0.0.2", 0);

	(void)state;
	assert_true(counts(&l, "127.0.0.2"));
	assert_false(counts(&l, "127.0.0.3"));
	l = parsed("bl.example=127.0.0.[2..11]*2", 0);
	assert_int_equal(l.weight, 2);
	assert_true(counts(&l, "127.0.0.2") && counts(&l, "127.0.0.11"));
	assert_false(counts(&l, "127.0.0.1") || counts(&l, "127.0.0.12"));
	l = parsed("bl.example=127.0.[0..255].[1;2;3]", 0);
	assert_true(counts(&l, "127.0.200.3") && counts(&l, "127.0.0.1"));
	assert_false(counts(&l, "127.0.5.4") || counts(&l, "127.1.5.1"));
	l = parsed("bl.example=127.[0;2..3;9].0.[0..1;255]", 0);
	assert_true(counts(&l, "127.2.0.255") && counts(&l, "127.9.0.0"));
	assert_false(counts(&l, "127.1.0.0") || counts(&l, "127.9.0.2"));
}

static void
test_bad_specs(void **state)
{
	static const char *const bad[] = { "", "bl example", "bl.example=",
	    "bl.example=127.0.0", "bl.example=127.0.0.256",
	    "bl.example=127.0.0.[5..2]", "bl.example=127.0.0.[1;]",
	    "bl.example=127.0.0.[1", "bl.example=127.0.0.1.1", "bl.example*",
	    "bl.example*x", "bl.example*1001", "bl.example*2=127.0.0.2",
	    ".bl.example", "-bl.example", "bl.example\n", NULL };
	struct dnsl_list l;
	const char *why;
	size_t i;

	(void)state;
	for (i = 0; bad[i]; i++) {
		why = NULL;
		if (dnsl_parse(bad[i], 0, &l, &why) == 0) {
			print_error("\"%s\" accepted\n", bad[i]);
			fail();
		}
		assert_non_null(why);
	}
}

static void
test_query_names(void **state)
{
	struct addr a;
	char buf[300];

	(void)state;
	assert_int_equal(addr_parse("192.0.2.1", &a), 0);
	assert_int_equal(dnsl_query_name(&a, "bl.example", buf, sizeof buf),
	    strlen("1.2.0.192.bl.example"));
	assert_string_equal(buf, "1.2.0.192.bl.example");
	assert_int_equal(addr_parse("2001:db8::1", &a), 0);
	dnsl_query_name(&a, "bl.example", buf, sizeof buf);
	assert_string_equal(buf, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	    "0.0.0.0.8.b.d.0.1.0.0.2.bl.example");
	/* Too small a buffer: nothing half made. */
	assert_int_equal(dnsl_query_name(&a, "bl.example", buf, 40), 0);
}

static void
test_servers(void **state)
{
	static const char *const good[] = { "127.0.0.1", "127.0.0.1:5353",
	    "[::1]:53", "[2001:db8::1]", NULL };
	static const char *const bad[] = { "", "localhost", "127.0.0.1:",
	    "127.0.0.1:0", "127.0.0.1:65536", "[::1", "::1:53", "[::1]x",
	    NULL };
	const char *why;
	size_t i;

	(void)state;
	for (i = 0; good[i]; i++)
		assert_int_equal(dnsl_server_parse(good[i], &why), 0);
	for (i = 0; bad[i]; i++)
		if (dnsl_server_parse(bad[i], &why) == 0) {
			print_error("\"%s\" accepted\n", bad[i]);
			fail();
		}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_zone_weight_defaults),
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_bad_specs),
		cmocka_unit_test(test_query_names),
		cmocka_unit_test(test_servers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
