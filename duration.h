/*
 * duration.h - parse the DURATION arguments of sendwrap.
 *
 * A DURATION is a decimal number with an optional unit: "5", "2.5",
 * "750ms", "5s", "10m", "1h", "1d".  A bare number means seconds.
 * The result is in milliseconds; anything finer than a millisecond,
 * a negative value, junk after the unit or an overflow is an error.
 *
 * Contract: pure functions, no allocation, no I/O, no global state.
 */
#ifndef SENDWRAP_DURATION_H
#define SENDWRAP_DURATION_H

#include <stddef.h>
#include <stdint.h>

/* Longest duration accepted at all: 10 years, far past any sane TTL. */
#define DURATION_MAX_MS ((uint64_t)10 * 366 * 24 * 3600 * 1000)

/*
 * Parse the len bytes at s (no terminator needed) into *ms.
 * Return 0 on success, or -1 with *why set to a static message.
 */
int duration_parse(const char *s, size_t len, uint64_t *ms, const char **why);

/* Same, for a NUL-terminated string. */
int duration_parse_str(const char *s, uint64_t *ms, const char **why);

/*
 * Format ms as seconds with three decimals ("5.000") into buf.
 * Returns the number of bytes written, not counting the NUL.
 */
size_t duration_format(uint64_t ms, char *buf, size_t size);

#endif
