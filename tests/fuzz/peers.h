/*
 * peers.h - the peers a fuzz target looks its input up with: the fixed
 * ones first, then the rest made of the input's own bytes (taken every
 * stride bytes), so that they fall inside what the input lists.  Each
 * target is one source file: this is included, not linked.
 */
#ifndef SENDWRAP_FUZZ_PEERS_H
#define SENDWRAP_FUZZ_PEERS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

static void
fuzz_peers(const uint8_t *data, size_t size, const char *const *fixed,
    unsigned nfixed, size_t stride, struct addr *p, unsigned n)
{
	unsigned k;

	for (k = 0; k < nfixed && k < n; k++)
		if (addr_parse(fixed[k], &p[k]) != 0)
			abort();
	for (; k < n; k++) {
		size_t i;

		memset(&p[k], 0, sizeof p[k]);
		p[k].family = k % 2 ? AF_INET6 : AF_INET;
		for (i = 0; i < 16 && size > 0; i++)
			p[k].bytes[i] = data[(k * stride + i) % size];
		if (p[k].family == AF_INET)
			memset(p[k].bytes + 4, 0, 12);
	}
}

#endif
