/*
 * children.h - the programs the listener runs, each with the address of
 * the client it serves, so that the address's running programs count
 * against --per-ip and --per-ip-children until each ends (the listener
 * has let go of the socket by then: only the pid is left to go by).
 *
 * Contract: memory only, sized once for --max-children; no I/O.
 */
#ifndef SENDWRAP_CHILDREN_H
#define SENDWRAP_CHILDREN_H

#include <sys/types.h>

#include "peer.h"

struct children;

/* Room for max running at once; NULL when out of memory. */
struct children *children_new(unsigned max);

/* pid serves p: 0, or -1 when max are in (the caller's bug). */
int children_add(struct children *ch, pid_t pid, const struct peer *p);

/*
 * pid has ended: 1 with the peer it served in *p, or 0 if it was not
 * one of ours (a child of a child, say).
 */
int children_remove(struct children *ch, pid_t pid, struct peer *p);

void children_free(struct children *ch);

#endif
