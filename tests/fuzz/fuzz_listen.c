/*
 * fuzz_listen.c - libFuzzer target for listen_parse() (listen.c): the
 * --listen argument, "IPv4:PORT" or "[IPv6]:PORT".
 *
 *   build/fuzz/fuzz_listen -max_total_time=30 tests/fuzz/corpus/listen
 *
 * The input is the argument (up to its first NUL, as from argv).  Beyond
 * "no crash": a refusal says why; an address is taken exactly when the
 * text before the last ':' is an IPv4 address, or an IPv6 one in
 * brackets, and the text after it a run of digits worth at most 65535;
 * what it gives is that family, length, address and port, and the
 * address written back out ("%s:%u", "[%s]:%u") parses to the same.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "listen.h"

/* A run of digits worth at most 65535 (leading zeros allowed): its value,
 * or -1. */
static long
port_value(const char *s)
{
	long v = 0;

	if (*s == '\0')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
		if (v > 65535)
			return -1;
	}
	return v;
}

/* What s should give, worked out apart from listen_parse: 0 with the
 * family, address (in addr) and port, or -1. */
static int
expect(const char *s, int *family, unsigned char addr[16], long *port)
{
	const char *colon = strrchr(s, ':');
	char host[64];
	size_t hlen;

	if (colon == NULL || (hlen = (size_t)(colon - s)) == 0 ||
	    hlen >= sizeof host || (*port = port_value(colon + 1)) < 0)
		return -1;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
		host[hlen - 1] = '\0';
		*family = AF_INET6;
		return inet_pton(AF_INET6, host + 1, addr) == 1 ? 0 : -1;
	}
	*family = AF_INET;
	return inet_pton(AF_INET, host, addr) == 1 ? 0 : -1;
}

/* ss, written as --listen takes it, into buf. */
static void
write_back(const struct sockaddr_storage *ss, char *buf, size_t size)
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
	char host[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
		snprintf(buf, size, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else {
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
		snprintf(buf, size, "%s:%u", host, ntohs(s4->sin_port));
	}
}

/* Does ss hold family, addr and port, in a sockaddr of the right size? */
static int
holds(const struct sockaddr_storage *ss, socklen_t len, int family,
    const unsigned char addr[16], long port)
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

	if (ss->ss_family != family)
		return 0;
	if (family == AF_INET6)
		return len == sizeof *s6 && ntohs(s6->sin6_port) == port &&
		    memcmp(&s6->sin6_addr, addr, 16) == 0;
	return len == sizeof *s4 && ntohs(s4->sin_port) == port &&
	    memcmp(&s4->sin_addr, addr, 4) == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy: any read past the NUL is caught by ASan. */
	char *s = malloc(size + 1), text[80];
	struct sockaddr_storage ss, again;
	unsigned char addr[16];
	const char *why = NULL;
	socklen_t len = 0, len2 = 0;
	int rc, want, family = 0;
	long port = -1;

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	want = expect(s, &family, addr, &port) == 0;
	rc = listen_parse(s, &ss, &len, &why);
	if (rc != 0 && rc != -1)
		abort();
	if ((rc == 0) != want)
		abort();
	if (rc == -1 && (why == NULL || *why == '\0'))
		abort();
	if (rc == 0) {
		if (!holds(&ss, len, family, addr, port))
			abort();
		write_back(&ss, text, sizeof text);
		if (listen_parse(text, &again, &len2, &why) != 0 ||
		    len2 != len || memcmp(&again, &ss, len) != 0)
			abort();
	}
	free(s);
	return 0;
}
