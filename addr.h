/*
 * addr.h - an IP address as the whole program sees it: parsed from text
 * or a socket address, cut to a prefix, written back as text; and the
 * byte-order helpers of the file formats.
 *
 * An IPv4-mapped IPv6 address (::ffff:192.0.2.1, as a dual-stack socket
 * reports an IPv4 client) is made AF_INET on the way in, so that IPv4
 * rules and keys cover IPv4 clients however they arrive.  A prefix is
 * parsed as written: an IPv4 network never covers an IPv6 address or the
 * other way round.
 *
 * Contract: pure functions on caller memory; no allocation, no I/O.
 */
#ifndef SENDWRAP_ADDR_H
#define SENDWRAP_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define ADDR_TEXT_MAX 46	/* INET6_ADDRSTRLEN */
#define PREFIX_TEXT_MAX 64	/* longest "ADDRESS/LEN" we keep, with NUL */

struct addr {
	int family;			/* AF_INET or AF_INET6 */
	unsigned char bytes[16];	/* 4 used for AF_INET */
};

/* 32 for AF_INET, 128 for AF_INET6. */
unsigned addr_bits(int family);

/* Parse a textual address (as inet_pton would), then unmap.  0 or -1. */
int addr_parse(const char *s, struct addr *a);

/* Set *a from the 16 bytes of an IPv6 address, unmapped. */
void addr_set_v6(struct addr *a, const unsigned char *v6);

/* The other way: a as the 16 bytes of IPv6, an IPv4 address mapped. */
void addr_as_v6(const struct addr *a, unsigned char *v6);

/* Set *a from a socket address, unmapped.  0, or -1 for another family. */
int addr_from_sockaddr(const struct sockaddr *sa, struct addr *a);

/*
 * Parse "ADDRESS[/LEN]" in len bytes (no terminator needed), exactly as
 * written (no unmapping); a bare address is one host.  Host bits set past
 * LEN are an error.  0, or -1 with *why a static message.
 */
int addr_parse_prefix(const char *s, size_t len, struct addr *net,
    unsigned *prefix, const char **why);

/* Zero every bit of a past prefix; returns 1 if any was set. */
int addr_cut(struct addr *a, unsigned prefix);

/* Is a inside net/prefix?  Families must agree. */
int addr_in_prefix(const struct addr *net, unsigned prefix,
    const struct addr *a);

/* inet_ntop into buf (ADDR_TEXT_MAX is enough); buf is returned. */
const char *addr_format(const struct addr *a, char *buf, size_t size);

/* Little- and big-endian integers of n bytes (n at most 8). */
uint64_t get_le(const unsigned char *p, unsigned n);
void put_le(unsigned char *p, uint64_t v, unsigned n);
uint64_t get_be(const unsigned char *p, unsigned n);
void put_be(unsigned char *p, uint64_t v, unsigned n);

#endif
