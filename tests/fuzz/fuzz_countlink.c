/*
 * fuzz_countlink.c - libFuzzer target for waiters_parse_name()
 * (waiters.c): the text of the state directory's count link, read with
 * readlink(2), "ID:CTIME:NS".
 *
 *   build/fuzz/fuzz_countlink -max_total_time=30 tests/fuzz/corpus/countlink
 *
 * Beyond "no crash" (the text is an exact-size copy with no NUL, so a
 * read past its end is caught): a text is taken exactly when it is three
 * runs of digits joined by ':', the first at most INT_MAX and the others
 * at most ULLONG_MAX, as worked out here on the digits themselves; what
 * it gives is what the digits say, and the link sendwrap would write for
 * it ("%d:%llu:%llu") reads back the same, and is the text itself when
 * that has no leading zeros.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "waiters.h"

/* Does the run of digits s (n bytes) stay at or below max, the digits of
 * the largest value?  Leading zeros do not count. */
static int
within(const char *s, size_t n, const char *max)
{
	size_t m = strlen(max);

	while (n > 1 && *s == '0')
		s++, n--;
	return n < m || (n == m && memcmp(s, max, n) <= 0);
}

/* The value of a run of digits known to be within range. */
static unsigned long long
value(const char *s, size_t n)
{
	unsigned long long v = 0;

	while (n-- > 0)
		v = v * 10 + (unsigned)(*s++ - '0');
	return v;
}

/* Split s into three runs of digits joined by ':' (start and length of
 * each); 0, or -1 if it is not that. */
static int
fields(const char *s, size_t size, size_t start[3], size_t len[3])
{
	size_t i, f = 0;

	start[0] = 0;
	for (i = 0; i < size; i++) {
		if (s[i] == ':') {
			if (f == 2)
				return -1;
			len[f] = i - start[f];
			start[++f] = i + 1;
		} else if (s[i] < '0' || s[i] > '9')
			return -1;
	}
	if (f != 2)
		return -1;
	len[2] = size - start[2];
	return len[0] && len[1] && len[2] ? 0 : -1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const max[3] = { "2147483647",
	    "18446744073709551615", "18446744073709551615" };
	char *s = malloc(size ? size : 1), out[80];
	struct waiters_name nm, back;
	size_t start[3], len[3], k;
	int want, rc, n;

	if (s == NULL)
		return 0;
	if (size)
		memcpy(s, data, size);
	want = fields(s, size, start, len) == 0;
	for (k = 0; want && k < 3; k++)
		want = within(s + start[k], len[k], max[k]);
	memset(&nm, 0, sizeof nm);
	rc = waiters_parse_name(s, size, &nm);
	if (rc != 0 && rc != -1)
		abort();
	if ((rc == 0) != want)
		abort();
	if (rc == 0) {
		if ((unsigned long long)nm.id != value(s + start[0], len[0]) ||
		    nm.made != value(s + start[1], len[1]) ||
		    nm.ns != value(s + start[2], len[2]) || nm.id < 0)
			abort();
		n = snprintf(out, sizeof out, "%d:%llu:%llu", nm.id, nm.made,
		    nm.ns);
		if (n <= 0 || (size_t)n >= sizeof out ||
		    waiters_parse_name(out, (size_t)n, &back) != 0 ||
		    back.id != nm.id || back.made != nm.made ||
		    back.ns != nm.ns)
			abort();
		for (k = 0; k < 3 && (len[k] == 1 || s[start[k]] != '0'); k++)
			;
		if (k == 3 && ((size_t)n != size || memcmp(out, s, size) != 0))
			abort();
	}
	free(s);
	return 0;
}
