/*
 * fuzz_proxy_v2.c - libFuzzer target for the PROXY protocol's version 2
 * header (proxy.c): the binary block after its 12-byte signature.
 *
 *   build/fuzz/fuzz_proxy_v2 -max_total_time=30 tests/fuzz/corpus/proxy_v2
 *
 * The input is what follows the signature on the connection (the target
 * puts it in front): the version and command byte, the family and
 * protocol byte, the length, the addresses and TLVs, and whatever the
 * client sends after them.  What is asked of it is in proxyfuzz.h: one
 * decision over the prefixes, an OK header that parses alone and builds
 * back to itself, the socket reader in agreement and leaving the
 * client's bytes; and parse(build_v2(x)) == x for a header x made from
 * the input's first bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxyfuzz.h"

static const unsigned char signature[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy: a read past the end is caught by ASan. */
	unsigned char *buf = malloc(size + sizeof signature);

	if (buf == NULL)
		return 0;
	memcpy(buf, signature, sizeof signature);
	memcpy(buf + sizeof signature, data, size);
	check_proxy(buf, size + sizeof signature, data, size, 2);
	free(buf);
	return 0;
}
