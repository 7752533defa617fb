/*
 * ipcount.h - what each address has in the listener, for --per-ip and
 * --per-ip-children: connections held (waiting, in a dialog, queued for
 * a program, or served by a running program), queued for a program, and
 * programs running.  An IPv4 client counts under its address, an IPv6
 * client under its /64 (one host has a whole /64 to pick from).
 *
 * Contract: no I/O; memory grows with the addresses present, and an
 * entry is freed when all its counts are back to 0.  The hash is keyed
 * with a random value per process, so that clients cannot choose
 * addresses that fall in one chain.
 */
#ifndef SENDWRAP_IPCOUNT_H
#define SENDWRAP_IPCOUNT_H

#include "addr.h"

enum ipcount_kind {
	IPC_HELD,		/* every connection of the address */
	IPC_QUEUED,		/* passed, waiting for a program */
	IPC_RUNNING,		/* programs serving it */
	IPC_KINDS
};

struct ipcount;

struct ipcount *ipcount_new(void);

/* One more of kind for a: the new count, or 0 when out of memory. */
unsigned ipcount_add(struct ipcount *ic, const struct addr *a,
    enum ipcount_kind kind);

/* One fewer of kind for a. */
void ipcount_remove(struct ipcount *ic, const struct addr *a,
    enum ipcount_kind kind);

/* How many of kind a has. */
unsigned ipcount_get(const struct ipcount *ic, const struct addr *a,
    enum ipcount_kind kind);

void ipcount_free(struct ipcount *ic);

#endif
