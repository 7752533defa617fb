/*
 * smtpfuzz.h - what the fuzz targets of sendwrap's two speakers of SMTP
 * (fuzz_decoy, fuzz_dialog) ask of their input.  Each target is one
 * source file: this is included, not linked.
 */
#ifndef SENDWRAP_FUZZ_SMTPFUZZ_H
#define SENDWRAP_FUZZ_SMTPFUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "smtpline.h"

static size_t
count_byte(const uint8_t *p, size_t n, uint8_t b)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		k += p[i] == b;
	return k;
}

/* Is there a whole line (ending in a line feed) that says QUIT? */
static int
says_quit(const uint8_t *p, size_t n)
{
	size_t start = 0, i, len;

	for (i = 0; i < n; i++) {
		if (p[i] != '\n')
			continue;
		len = i - start;
		if (len > 0 && p[i - 1] == '\r')
			len--;
		if (smtp_classify((const char *)p + start, len) == CMD_QUIT)
			return 1;
		start = i + 1;
	}
	return 0;
}

#endif
