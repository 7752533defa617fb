/* duration.c - DURATION parsing; see duration.h for the contract. */
#include "duration.h"

#include <string.h>

struct unit {
	const char *name;
	uint64_t ms;
};

/* "ms" must come before "m" so that the longer suffix is tried first. */
static const struct unit units[] = {
	{ "ms", 1 },
	{ "s", 1000 },
	{ "m", 60 * 1000 },
	{ "h", 3600 * 1000 },
	{ "d", 24 * 3600 * 1000 },
	{ "", 1000 },
};

static const struct unit *
find_unit(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof units / sizeof units[0]; i++)
		if (strlen(units[i].name) == len &&
		    memcmp(s, units[i].name, len) == 0)
			return &units[i];
	return NULL;
}

int
duration_parse(const char *s, size_t len, uint64_t *ms, const char **why)
{
	uint64_t whole = 0, frac = 0, scale = 1, total;
	size_t i = 0, ndigits = 0, nfrac = 0;
	const struct unit *u;

	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, ndigits++) {
		if (whole > DURATION_MAX_MS)
			goto toolong;
		whole = whole * 10 + (uint64_t)(s[i] - '0');
	}
	if (i < len && s[i] == '.') {
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
			if (++nfrac > 9) {
				*why = "too many decimals";
				return -1;
			}
			frac = frac * 10 + (uint64_t)(s[i] - '0');
			scale *= 10;
		}
		if (nfrac == 0) {
			*why = "a digit must follow the decimal point";
			return -1;
		}
	}
	if (ndigits == 0) {
		*why = "not a duration (expected e.g. 5, 2.5, 750ms, 5s, 10m, 1h, 1d)";
		return -1;
	}
	if ((u = find_unit(s + i, len - i)) == NULL) {
		*why = "unknown unit (use ms, s, m, h or d)";
		return -1;
	}
	if (whole > DURATION_MAX_MS / u->ms)
		goto toolong;
	total = whole * u->ms;
	if ((frac * u->ms) % scale != 0) {
		*why = "finer than a millisecond";
		return -1;
	}
	total += frac * u->ms / scale;
	if (total > DURATION_MAX_MS)
		goto toolong;
	*ms = total;
	return 0;
toolong:
	*why = "too long";
	return -1;
}

int
duration_parse_str(const char *s, uint64_t *ms, const char **why)
{
	return duration_parse(s, strlen(s), ms, why);
}

size_t
duration_format(uint64_t ms, char *buf, size_t size)
{
	char tmp[32];
	size_t n = 0, i;
	uint64_t secs = ms / 1000;
	unsigned rem = (unsigned)(ms % 1000);

	do {
		tmp[n++] = (char)('0' + secs % 10);
		secs /= 10;
	} while (secs != 0);
	if (size < n + 5) {
		if (size > 0)
			buf[0] = '\0';
		return 0;
	}
	for (i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	buf[n++] = '.';
	buf[n++] = (char)('0' + rem / 100);
	buf[n++] = (char)('0' + rem / 10 % 10);
	buf[n++] = (char)('0' + rem % 10);
	buf[n] = '\0';
	return n;
}
