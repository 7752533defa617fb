/*
 * fuzz_duration.c - libFuzzer target for duration.c.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_DEFAULT_SOURCE -I. \
 *       tests/fuzz/fuzz_duration.c duration.c -o fuzz_duration
 *   ./fuzz_duration -max_total_time=60 tests/fuzz/corpus/duration
 *
 * Beyond "no crash", it checks what duration.h promises: an accepted
 * DURATION has the documented shape and is at most DURATION_MAX_MS, it
 * formats and parses back to itself, and the units scale consistently.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"

static const struct {
	const char *name;
	uint64_t ms;
} units[] = {
	{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
	{ "d", 86400000 },
};

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* digits [. digits] [unit]: return the length of the number part or 0. */
static size_t
number_part(const char *s, size_t len)
{
	size_t i = 0, d = 0;

	while (i < len && is_digit(s[i]))
		i++, d++;
	if (d == 0)
		return 0;
	if (i < len && s[i] == '.') {
		size_t f = 0;

		for (i++; i < len && is_digit(s[i]); i++)
			f++;
		if (f == 0 || f > 9)
			return 0;
	}
	return i;
}

static uint64_t
unit_ms(const char *s, size_t len)
{
	size_t k;

	if (len == 0)
		return 1000;
	for (k = 0; k < sizeof units / sizeof units[0]; k++)
		if (strlen(units[k].name) == len &&
		    memcmp(s, units[k].name, len) == 0)
			return units[k].ms;
	return 0;
}

/* Parse number part num (nlen bytes) with unit u; 0 or -1. */
static int
parse_with(const char *num, size_t nlen, const char *u, uint64_t *ms)
{
	char buf[64];
	const char *why = NULL;
	size_t ulen = strlen(u);
	int rc;

	if (nlen + ulen > sizeof buf)
		return -2;
	memcpy(buf, num, nlen);
	memcpy(buf + nlen, u, ulen);
	rc = duration_parse(buf, nlen + ulen, ms, &why);
	if (rc != 0 && why == NULL)
		abort();
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy: any read past len is caught by ASan. */
	char *s = malloc(size ? size : 1);
	const char *why = NULL;
	uint64_t ms = 0, back = 0;
	char fmt[32];
	size_t n, num, k;
	int rc;

	if (s == NULL)
		return 0;
	if (size)
		memcpy(s, data, size);
	rc = duration_parse(s, size, &ms, &why);
	if (rc != 0 && rc != -1)
		abort();
	if (rc == -1 && (why == NULL || *why == '\0'))
		abort();

	num = number_part(s, size);
	if (rc == 0) {
		/* The shape: number, then nothing or a known unit. */
		if (num == 0 || unit_ms(s + num, size - num) == 0)
			abort();
		if (ms > DURATION_MAX_MS)
			abort();
		/* Formats to "S.mmm" and parses back to the same value. */
		n = duration_format(ms, fmt, sizeof fmt);
		if (n == 0 || n != strlen(fmt) || n < 5 || fmt[n - 4] != '.')
			abort();
		why = NULL;
		if (duration_parse(fmt, n, &back, &why) != 0 || back != ms)
			abort();
		/* Too small a buffer gives 0 and an empty string, no overrun. */
		{
			char *tight = malloc(n);

			if (tight != NULL) {
				if (duration_format(ms, tight, n) != 0 ||
				    tight[0] != '\0')
					abort();
				free(tight);
			}
		}
	}

	/*
	 * Unit consistency for a well-formed number: if "X<u>" parses to v,
	 * then "X<bigger u>" parses to v * ratio whenever that is in range,
	 * and a bare X is the same as "Xs".
	 */
	if (num > 0 && num <= 48) {
		uint64_t v[5], bare;
		int ok[5];

		for (k = 0; k < 5; k++)
			ok[k] = parse_with(s, num, units[k].name, &v[k]) == 0;
		if ((parse_with(s, num, "", &bare) == 0) != ok[1] ||
		    (ok[1] && bare != v[1]))
			abort();
		for (k = 0; k + 1 < 5; k++) {
			uint64_t ratio = units[k + 1].ms / units[k].ms;

			if (ok[k] && v[k] <= DURATION_MAX_MS / ratio &&
			    (!ok[k + 1] || v[k + 1] != v[k] * ratio))
				abort();
			if (ok[k + 1] && ok[k] && v[k + 1] != v[k] * ratio)
				abort();
		}
	}

	/* duration_format with whatever size the input suggests. */
	if (size >= 9) {
		uint64_t any;
		size_t sz = (unsigned char)s[8] % 32;
		char *out = malloc(sz ? sz : 1);

		memcpy(&any, s, sizeof any);
		if (out != NULL) {
			n = duration_format(any, out, sz);
			if (sz > 0 && (n >= sz || strlen(out) != n))
				abort();
			if (sz == 0 && n != 0)
				abort();
			free(out);
		}
	}
	free(s);
	return 0;
}
