/*
 * fuzz_logescape.c - libFuzzer target for log_escape() and
 * log_escape_word() (log.c): what keeps client bytes and file text from
 * breaking or forging a log line.
 *
 *   build/fuzz/fuzz_logescape -max_total_time=30 tests/fuzz/corpus/logescape
 *
 * The first byte picks the output buffer's size (1 to 256); the rest is
 * the text.  Beyond "no crash": the output ends in NUL where the return
 * value says, holds only printable ASCII with every quote escaped (and
 * every space, for a word), and unescapes to a prefix of the input, cut
 * only where the next escape would not fit: all of it when the buffer
 * has room for four bytes an input byte.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Undo the escaping of out into raw; returns its length. */
static size_t
unescape(const char *out, size_t n, int word, unsigned char *raw)
{
	static const char hex[] = "0123456789abcdef";
	size_t i = 0, k = 0;

	while (i < n) {
		if (out[i] != '\\') {
			/* A bare quote would end a "..." value early; a bare
			 * space would end a word. */
			if (out[i] == '"' || (word && out[i] == ' '))
				abort();
			raw[k++] = (unsigned char)out[i++];
			continue;
		}
		switch (out[i + 1]) {
		case 'r': raw[k++] = '\r'; break;
		case 'n': raw[k++] = '\n'; break;
		case 't': raw[k++] = '\t'; break;
		case '\\': raw[k++] = '\\'; break;
		case '"': raw[k++] = '"'; break;
		case 'x':
			if (i + 3 >= n || !strchr(hex, out[i + 2]) ||
			    !strchr(hex, out[i + 3]) || !out[i + 2] || !out[i + 3])
				abort();
			raw[k++] = (unsigned char)((strchr(hex, out[i + 2]) -
			    hex) * 16 + (strchr(hex, out[i + 3]) - hex));
			i += 2;
			break;
		default:
			abort();
		}
		i += 2;
	}
	return k;
}

static void
check(const uint8_t *in, size_t len, size_t size, int word)
{
	char *out = malloc(size);
	unsigned char *raw = malloc(size);
	size_t n, i, k;

	if (out == NULL || raw == NULL)
		abort();
	n = word ? log_escape_word(out, size, (const char *)in, len) :
	    log_escape(out, size, (const char *)in, len);
	if (n >= size || out[n] != '\0' || strlen(out) != n)
		abort();
	for (i = 0; i < n; i++)
		if (out[i] < 0x20 || out[i] > 0x7e)
			abort();
	k = unescape(out, n, word, raw);
	if (k > len || memcmp(raw, in, k) != 0)
		abort();
	/* It stops only at an escape that would not fit. */
	if (k < len && n + 4 < size - 1)
		abort();
	if (size >= 4 * len + 1 && k != len)
		abort();
	free(out);
	free(raw);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t out_size;

	if (size < 1)
		return 0;
	out_size = (size_t)data[0] + 1;
	check(data + 1, size - 1, out_size, 0);
	check(data + 1, size - 1, out_size, 1);
	check(data + 1, size - 1, 4 * (size - 1) + 1, 0);
	return 0;
}
