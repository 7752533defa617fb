/*
 * listener.h - the listener front end (--listen): one process accepts
 * every connection and holds every waiting client in one event loop, as
 * Postfix's postscreen does, so that a bot costs a few kilobytes and no
 * fork.  Only a client that passes (or is allowlisted or cached) is
 * handed to a child that runs the program (spawn.h).
 *
 * Each client is judged by the same core (core.h) as under inetd or
 * tcpserver, with the same verdict lines; what differs is only how the
 * waiting is done.  Limits: --max-clients held at once (over it: 421
 * 4.3.2), --per-ip from one address, --max-children programs running
 * (a client that passes beyond it waits, bounded, then gets 421).
 *
 * Signals: SIGHUP reads the allowlists again (a bad file keeps the old
 * list); SIGTERM and SIGINT stop accepting, tell every waiting client
 * 421 4.3.2, let running children finish, then exit (a second one exits
 * at once); children are reaped as they end.
 *
 * Contract: nothing in the loop blocks: sockets are non-blocking and
 * every state a client can be in has a deadline.
 */
#ifndef SENDWRAP_LISTENER_H
#define SENDWRAP_LISTENER_H

#include "options.h"

/* How long a client that passed may wait for a child before its 421. */
#define LISTENER_QUEUE_MS 30000

/* Run the listener for cfg; the exit status. */
int listener_main(const struct config *cfg);

#endif
