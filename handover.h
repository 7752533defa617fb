/*
 * handover.h - hand a client the listener accepted to the program, as
 * tcpserver would: the socket on fds 0 and 1, fd 2 as it is (the log),
 * the UCSPI environment (PROTO, TCPREMOTEIP, TCPREMOTEPORT, TCPLOCALIP,
 * TCPLOCALPORT, and ucspi-tcp6's TCP6 twins), every signal at its
 * default and none blocked, no other descriptor (all of the listener's
 * are close-on-exec).  vfork, so the cost of a child does not grow
 * with the listener's memory.  A program that cannot be run answers the
 * client 421 4.3.0 from the child, which exits 111.
 *
 * Contract: no logging; the caller reaps the child.
 */
#ifndef SENDWRAP_HANDOVER_H
#define SENDWRAP_HANDOVER_H

#include <sys/types.h>

#include "decoy.h"
#include "peer.h"

/*
 * Build the environment children start from: ours, less any UCSPI
 * variables of our own; and note the descriptor limit they get back (the
 * listener raises its own for its clients).  0, or -1 when out of memory.
 */
int spawn_init(void);

/* Run program for the client on fd, which reached local (NULL: the
 * socket's own address; a PROXY header's, behind a balancer).  The pid,
 * or -1 with errno; when the program could not be run the client has
 * been told 421 already. */
pid_t spawn_program(char **program, int fd, const struct peer *remote,
    const struct peer *local);

/*
 * Serve the tempfail responder to the client on fd in a forked child
 * (no exec: the child lets go of every other descriptor first, then
 * logs its decoy line and exits).  The pid, or -1 with errno.
 */
pid_t spawn_responder(const struct decoy_config *dc, int fd,
    const struct peer *p);

#endif
