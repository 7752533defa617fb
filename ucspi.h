/*
 * ucspi.h - the environment a UCSPI server (tcpserver, ucspi-tcp6) gives
 * the program it runs for a client: PROTO, TCPREMOTEIP, TCPREMOTEPORT,
 * TCPLOCALIP, TCPLOCALPORT and ucspi-tcp6's TCP6 twins of the four.
 * PROTO is TCP for an IPv4 client and TCP6 for an IPv6 one; each TCP6
 * address variable holds an IPv4 address mapped (::ffff:a.b.c.d).  The
 * listener hands its clients over with these (handover.h), and a client
 * named by a PROXY header reaches the program with them in either front
 * end, so the program sees the same whichever runs it.
 *
 * Contract: ucspi_vars() and ucspi_is_var() are pure; ucspi_export()
 * changes this process's environment and nothing else.
 */
#ifndef SENDWRAP_UCSPI_H
#define SENDWRAP_UCSPI_H

#include <stddef.h>

#include "peer.h"

#define UCSPI_VARS 9		/* PROTO, 4 x TCP*, 4 x TCP6* */
#define UCSPI_VAR_MAX 80	/* "NAME=value" with its NUL */

/* Is entry ("NAME=value") one a UCSPI server sets: PROTO or TCP*? */
int ucspi_is_var(const char *entry);

/*
 * The variables for a client remote that reached local ("NAME=value"
 * each); the local ones only when local->known.  Their number.
 */
size_t ucspi_vars(char vars[UCSPI_VARS][UCSPI_VAR_MAX],
    const struct peer *remote, const struct peer *local);

/*
 * Make this process's environment say remote and local: every variable
 * ucspi_is_var() names is removed (the connection's own, and what
 * tcpserver adds: TCPREMOTEHOST, TCPREMOTEINFO, TCPLOCALHOST), then
 * ucspi_vars()' set.  0, or -1 when out of memory.
 */
int ucspi_export(const struct peer *remote, const struct peer *local);

#endif
