/*
 * ipcount.h - how many clients each address has in the listener, for
 * --per-ip.  An IPv4 client counts under its address, an IPv6 client
 * under its /64 (one host has a whole /64 to pick from).
 *
 * Contract: no I/O; memory grows with the addresses present, and an
 * entry is freed when its count drops to 0.
 */
#ifndef SENDWRAP_IPCOUNT_H
#define SENDWRAP_IPCOUNT_H

#include "addr.h"

struct ipcount;

struct ipcount *ipcount_new(void);

/* One more client from a: the new count, or 0 when out of memory. */
unsigned ipcount_add(struct ipcount *ic, const struct addr *a);

/* One client fewer from a. */
void ipcount_remove(struct ipcount *ic, const struct addr *a);

void ipcount_free(struct ipcount *ic);

#endif
