/* peer.c - peer discovery; see peer.h for the contract. */
#include "peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static void
set_port(struct peer *p, const char *s)
{
	size_t n = s ? strspn(s, "0123456789") : 0;

	if (n > 0 && n <= 5 && s[n] == '\0')
		memcpy(p->port, s, n + 1);
}

/* Look up ${PROTO}NAME, e.g. TCPREMOTEIP. */
static const char *
ucspi_var(const char *proto, const char *name)
{
	char var[64];

	if ((size_t)snprintf(var, sizeof var, "%s%s", proto, name) >= sizeof var)
		return NULL;
	return getenv(var);
}

static int
from_ucspi(struct peer *p)
{
	const char *proto = getenv("PROTO"), *ip;

	if (proto == NULL || *proto == '\0' ||
	    (ip = ucspi_var(proto, "REMOTEIP")) == NULL ||
	    addr_parse(ip, &p->addr) != 0)
		return -1;
	set_port(p, ucspi_var(proto, "REMOTEPORT"));
	return 0;
}

static int
from_sockaddr(struct peer *p, const struct sockaddr *sa)
{
	unsigned port;
	char buf[8];

	if (addr_from_sockaddr(sa, &p->addr) != 0)
		return -1;
	port = ntohs(sa->sa_family == AF_INET ?
	    ((const struct sockaddr_in *)(const void *)sa)->sin_port :
	    ((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
	snprintf(buf, sizeof buf, "%u", port);
	set_port(p, buf);
	return 0;
}

static int
from_socket(struct peer *p, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;

	if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
		return -1;
	return from_sockaddr(p, (struct sockaddr *)&ss);
}

static void
set_known(struct peer *p, int known)
{
	p->known = known;
	if (known)
		addr_format(&p->addr, p->ip, sizeof p->ip);
	else
		strcpy(p->ip, "unknown");
}

void
peer_find(struct peer *p, int fd)
{
	memset(p, 0, sizeof *p);
	set_known(p, from_ucspi(p) == 0 || from_socket(p, fd) == 0);
}

void
peer_from_sockaddr(struct peer *p, const struct sockaddr *sa)
{
	memset(p, 0, sizeof *p);
	set_known(p, from_sockaddr(p, sa) == 0);
}

void
peer_from_addr(struct peer *p, const struct addr *a, unsigned port)
{
	unsigned char v6[16];

	memset(p, 0, sizeof *p);
	p->addr = *a;
	if (a->family == AF_INET6) {
		memcpy(v6, a->bytes, 16);
		addr_set_v6(&p->addr, v6);
	}
	snprintf(p->port, sizeof p->port, "%u", port & 0xffff);
	set_known(p, 1);
}

const char *
peer_port(const struct peer *p)
{
	return p->port[0] ? p->port : "unknown";
}
