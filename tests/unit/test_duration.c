/*
 * test_duration.c - cmocka tests for duration.c (DURATION parsing and
 * formatting).  Every case names the input, so a failure says which.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "duration.h"

/* Parse a NUL-terminated string; fail the test unless it gives want. */
static void
ok(const char *s, uint64_t want)
{
	uint64_t ms = 12345;
	const char *why = NULL;
	int rc = duration_parse(s, strlen(s), &ms, &why);

	if (rc != 0 || ms != want) {
		print_error("duration_parse(\"%s\"): rc=%d ms=%llu why=%s, "
		    "want %llu\n", s, rc, (unsigned long long)ms,
		    why ? why : "(null)", (unsigned long long)want);
		fail();
	}
	/* The _str variant must agree. */
	ms = 12345;
	assert_int_equal(duration_parse_str(s, &ms, &why), 0);
	assert_true(ms == want);
}

/* Fail the test unless s is refused with a message containing frag. */
static void
bad_len(const char *s, size_t len, const char *frag)
{
	uint64_t ms = 0;
	const char *why = NULL;
	int rc = duration_parse(s, len, &ms, &why);

	if (rc != -1 || why == NULL || strstr(why, frag) == NULL) {
		print_error("duration_parse(\"%.*s\", %zu): rc=%d ms=%llu "
		    "why=%s, want -1 and \"%s\"\n", (int)len, s, len, rc,
		    (unsigned long long)ms, why ? why : "(null)", frag);
		fail();
	}
}

static void
bad(const char *s, const char *frag)
{
	bad_len(s, strlen(s), frag);
}

static void
test_integers(void **state)
{
	(void)state;
	ok("0", 0);
	ok("1", 1000);
	ok("5", 5000);
	ok("30", 30000);
	ok("300", 300000);
	ok("007", 7000);
	ok("0000000000000000000000000000005", 5000);
}

static void
test_decimals(void **state)
{
	(void)state;
	ok("2.5", 2500);
	ok("0.5", 500);
	ok("0.001", 1);
	ok("0.010", 10);
	ok("1.250", 1250);
	ok("0.0", 0);
	ok("0.000", 0);
	ok("299.999", 299999);
	/* Nine decimals are allowed when they are whole milliseconds. */
	ok("1.000000000", 1000);
	ok("1.500000000", 1500);
	ok("2.5s", 2500);
	ok("1.5m", 90000);
	ok("0.5h", 1800000);
	ok("0.25d", 21600000);
	ok("1.0ms", 1);
	ok("0.00001h", 36);
	bad("0.000001h", "finer than a millisecond");	/* 3.6 ms */
}

static void
test_units(void **state)
{
	(void)state;
	ok("750ms", 750);
	ok("0ms", 0);
	ok("1ms", 1);
	ok("5s", 5000);
	ok("0s", 0);
	ok("10m", 600000);
	ok("5m", 300000);
	ok("1h", 3600000);
	ok("2h", 7200000);
	ok("1d", 86400000);
	ok("7d", 7 * 86400000ULL);
}

static void
test_bad_syntax(void **state)
{
	(void)state;
	bad("", "not a duration");
	bad(" 5", "not a duration");
	bad("-1", "not a duration");
	bad("+1", "not a duration");
	bad(".5", "not a duration");
	bad("s", "not a duration");
	bad("ms", "not a duration");
	bad("abc", "not a duration");
	bad("0x10", "unknown unit");
	bad("5 ", "unknown unit");
	bad("5 s", "unknown unit");
	bad("5S", "unknown unit");
	bad("5MS", "unknown unit");
	bad("5sec", "unknown unit");
	bad("5mss", "unknown unit");
	bad("5sm", "unknown unit");
	bad("5ms ", "unknown unit");
	bad("5us", "unknown unit");
	bad("5w", "unknown unit");
	bad("1e3", "unknown unit");
	bad("1,5", "unknown unit");
	bad("5.5.5", "unknown unit");
	bad("5..0", "a digit must follow");
	bad("5.", "a digit must follow");
	bad("5.s", "a digit must follow");
	bad("1.0000000000", "too many decimals");
	/* An embedded NUL is a byte like any other, not an end. */
	bad_len("5\0", 2, "unknown unit");
	bad_len("5s\0", 3, "unknown unit");
}

static void
test_finer_than_ms(void **state)
{
	(void)state;
	bad("0.0001", "finer than a millisecond");
	bad("1.0005", "finer than a millisecond");
	bad("0.0005s", "finer than a millisecond");
	bad("1.5ms", "finer than a millisecond");
	bad("0.1ms", "finer than a millisecond");
	bad("0.000000001d", "finer than a millisecond");
	bad("0.0000001h", "finer than a millisecond");
	bad("0.00001m", "finer than a millisecond");	/* 0.6 ms */
	ok("0.00005m", 3);				/* 3 ms exactly */
}

static void
test_overflow(void **state)
{
	char buf[64];

	(void)state;
	/* The limit itself is accepted in every unit that reaches it... */
	snprintf(buf, sizeof buf, "%llums", (unsigned long long)DURATION_MAX_MS);
	ok(buf, DURATION_MAX_MS);
	snprintf(buf, sizeof buf, "%llu", (unsigned long long)(DURATION_MAX_MS / 1000));
	ok(buf, DURATION_MAX_MS);
	ok("3660d", DURATION_MAX_MS);
	ok("87840h", DURATION_MAX_MS);
	ok("5270400m", DURATION_MAX_MS);
	/* ...and one step past it is not. */
	snprintf(buf, sizeof buf, "%llums", (unsigned long long)DURATION_MAX_MS + 1);
	bad(buf, "too long");
	snprintf(buf, sizeof buf, "%llu.001", (unsigned long long)(DURATION_MAX_MS / 1000));
	bad(buf, "too long");
	bad("3660.001d", "too long");
	bad("3661d", "too long");
	bad("87841h", "too long");
	/* Values that would wrap a 64-bit integer. */
	bad("18446744073709551616", "too long");
	bad("18446744073709551616ms", "too long");
	bad("18446744073709551615ms", "too long");
	bad("213503982335d", "too long");	/* * 86400000 wraps */
	bad("99999999999999999999999999999999999999999", "too long");
	bad("99999999999999999999999999999999999999999.5d", "too long");
}

static void
test_length_bound(void **state)
{
	/* No terminator: parse only the len bytes given. */
	char raw[8] = { '1', '2', '3', 'm', 's', 'x', 'x', 'x' };
	uint64_t ms = 0;
	const char *why = NULL;

	(void)state;
	assert_int_equal(duration_parse(raw, 1, &ms, &why), 0);
	assert_true(ms == 1000);
	assert_int_equal(duration_parse(raw, 3, &ms, &why), 0);
	assert_true(ms == 123000);
	assert_int_equal(duration_parse(raw, 4, &ms, &why), 0);
	assert_true(ms == 123 * 60000ULL);
	assert_int_equal(duration_parse(raw, 5, &ms, &why), 0);
	assert_true(ms == 123);
	assert_int_equal(duration_parse(raw, 6, &ms, &why), -1);
	assert_int_equal(duration_parse(raw, 0, &ms, &why), -1);
	assert_non_null(why);
}

static void
fmt(uint64_t ms, const char *want)
{
	char buf[40];
	size_t n;

	memset(buf, 'X', sizeof buf);
	n = duration_format(ms, buf, sizeof buf);
	assert_string_equal(buf, want);
	assert_int_equal(n, strlen(want));
}

static void
test_format(void **state)
{
	(void)state;
	fmt(0, "0.000");
	fmt(1, "0.001");
	fmt(10, "0.010");
	fmt(100, "0.100");
	fmt(750, "0.750");
	fmt(999, "0.999");
	fmt(1000, "1.000");
	fmt(2500, "2.500");
	fmt(5000, "5.000");
	fmt(5001, "5.001");
	fmt(300000, "300.000");
	fmt(DURATION_MAX_MS, "316224000.000");
	fmt(UINT64_MAX, "18446744073709551.615");
}

static void
test_format_small_buffer(void **state)
{
	char buf[8];

	(void)state;
	/* "5.000" needs 6 bytes with its NUL. */
	memset(buf, 'X', sizeof buf);
	assert_int_equal(duration_format(5000, buf, 6), 5);
	assert_string_equal(buf, "5.000");
	assert_int_equal(buf[6], 'X');

	/* One byte short: nothing but an empty string, no overrun. */
	memset(buf, 'X', sizeof buf);
	assert_int_equal(duration_format(5000, buf, 5), 0);
	assert_int_equal(buf[0], '\0');
	assert_int_equal(buf[5], 'X');

	memset(buf, 'X', sizeof buf);
	assert_int_equal(duration_format(12345, buf, 7), 6);
	assert_string_equal(buf, "12.345");
	memset(buf, 'X', sizeof buf);
	assert_int_equal(duration_format(12345, buf, 6), 0);
	assert_int_equal(buf[0], '\0');

	/* Size 0: not a byte written. */
	memset(buf, 'X', sizeof buf);
	assert_int_equal(duration_format(5000, buf, 0), 0);
	assert_int_equal(buf[0], 'X');
	assert_int_equal(duration_format(0, NULL, 0), 0);
}

/* Whatever is formatted parses back to the same value, and vice versa. */
static void
test_round_trip(void **state)
{
	static const uint64_t v[] = {
		0, 1, 9, 10, 99, 100, 999, 1000, 1001, 2500, 5000, 299999,
		300000, 86400000, 123456789, DURATION_MAX_MS - 1,
		DURATION_MAX_MS,
	};
	static const char *text[] = {
		"0", "5", "2.5", "0.001", "750ms", "5s", "10m", "1h", "1d",
		"1.5m", "0.25d", "299.999",
	};
	char buf[40], again[40];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof v / sizeof v[0]; i++) {
		uint64_t ms = ~(uint64_t)0;
		const char *why = NULL;

		assert_true(duration_format(v[i], buf, sizeof buf) > 0);
		assert_int_equal(duration_parse_str(buf, &ms, &why), 0);
		assert_true(ms == v[i]);
	}
	for (i = 0; i < sizeof text / sizeof text[0]; i++) {
		uint64_t ms = 0, ms2 = 1;
		const char *why = NULL;

		assert_int_equal(duration_parse_str(text[i], &ms, &why), 0);
		duration_format(ms, buf, sizeof buf);
		assert_int_equal(duration_parse_str(buf, &ms2, &why), 0);
		assert_true(ms == ms2);
		duration_format(ms2, again, sizeof again);
		assert_string_equal(buf, again);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_decimals),
		cmocka_unit_test(test_units),
		cmocka_unit_test(test_bad_syntax),
		cmocka_unit_test(test_finer_than_ms),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_length_bound),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_format_small_buffer),
		cmocka_unit_test(test_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
