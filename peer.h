/*
 * peer.h - find the address of the client on the other end of fd 0.
 *
 * The UCSPI contract comes first: when PROTO is set and ${PROTO}REMOTEIP
 * holds an address (tcpserver: TCP, ucspi-tcp6: TCP6, s6-tcpserver: TCP
 * for both families), that address and ${PROTO}REMOTEPORT are used.
 * Otherwise getpeername() on the descriptor (inetd, xinetd, systemd).
 * An IPv4-mapped IPv6 address is reported as IPv4.  When neither gives
 * an address the peer is "unknown".
 *
 * Contract: reads the environment and calls getpeername(); nothing else.
 */
#ifndef SENDWRAP_PEER_H
#define SENDWRAP_PEER_H

#include "addr.h"

struct peer {
	int known;			/* addr is valid */
	struct addr addr;
	char ip[ADDR_TEXT_MAX];		/* "unknown" when !known */
	char port[8];			/* "" when not known */
};

void peer_find(struct peer *p, int fd);

/* The peer of a connection accepted by sendwrap itself (listener mode). */
void peer_from_sockaddr(struct peer *p, const struct sockaddr *sa);

/* A peer named otherwise (a PROXY header): a, unmapped, and port. */
void peer_from_addr(struct peer *p, const struct addr *a, unsigned port);

/* The port for a log line: "unknown" when not known. */
const char *peer_port(const struct peer *p);

#endif
