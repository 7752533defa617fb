/*
 * static/nss.c - linked into the static build only (make STATIC=1).
 *
 * c-ares's getaddrinfo and getnameinfo, which sendwrap never calls but a
 * static link pulls in beside ares_parse_a_reply, look services up by
 * name (getservbyname, getservbyport_r).  In a static glibc those go
 * through NSS, which needs the shared libraries of the glibc linked
 * against at run time: the linker warns, and the binary would not be
 * self-contained.  These stand-ins find no service, so the static
 * binary needs nothing at run time, and nothing sendwrap does changes.
 */
#include <errno.h>
#include <netdb.h>
#include <stddef.h>

struct servent *
getservbyname(const char *name, const char *proto)
{
	(void)name;
	(void)proto;
	return NULL;
}

int
getservbyport_r(int port, const char *proto, struct servent *result,
    char *buf, size_t buflen, struct servent **out)
{
	(void)port;
	(void)proto;
	(void)result;
	(void)buf;
	(void)buflen;
	*out = NULL;
	return ENOENT;
}
