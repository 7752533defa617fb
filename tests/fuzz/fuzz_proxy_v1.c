/*
 * fuzz_proxy_v1.c - libFuzzer target for the PROXY protocol's version 1
 * header (proxy.c): the text line "PROXY TCP4|TCP6|UNKNOWN ...\r\n".
 *
 *   build/fuzz/fuzz_proxy_v1 -max_total_time=30 tests/fuzz/corpus/proxy_v1
 *
 * The input is what follows "PROXY " on the connection (the target puts
 * the word in front, so that every run is a v1 header's): the line, and
 * whatever the client sends after it.  What is asked of it is in
 * proxyfuzz.h: one decision over the prefixes, an OK header that parses
 * alone and builds back to itself, the socket reader in agreement and
 * leaving the client's bytes; and parse(build_v1(x)) == x for a header x
 * made from the input's first bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxyfuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy: a read past the end is caught by ASan. */
	unsigned char *buf = malloc(size + 6);

	if (buf == NULL)
		return 0;
	memcpy(buf, "PROXY ", 6);
	memcpy(buf + 6, data, size);
	check_proxy(buf, size + 6, data, size, 1);
	free(buf);
	return 0;
}
