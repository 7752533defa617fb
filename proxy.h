/*
 * proxy.h - the PROXY protocol (HAProxy's, versions 1 and 2): a load
 * balancer in front of sendwrap sends, before any byte of its client,
 * a header that names the client's address and port (the source) and
 * the address and port the client connected to (the destination).
 *
 * Parsing: proxy_parse() looks at the start of what a connection sent
 * and says one of
 *   PROXY_NEED_MORE  what is there may still become a valid header:
 *                    *need is a lower bound on the bytes it takes;
 *   PROXY_OK         a whole header: *h filled, h->len its bytes;
 *   PROXY_BAD        never a valid header: *why says why, in one line.
 * The version is told by the first byte: 'P' (v1, a line of text) or
 * CR (v2, binary).  A header is bounded: a v1 line is at most
 * PROXY_V1_MAX bytes with its CRLF, a v2 header at most 16 +
 * PROXY_V2_LEN_MAX (its length field; larger is "oversized").  v2 TLVs
 * are walked only to check that they fit their header, then skipped.
 *
 * What a header says: h->known is 1 when it names a TCP client over
 * IPv4 or IPv6 (v1 TCP4 and TCP6; v2 PROXY over AF_INET or AF_INET6
 * with STREAM).  It is 0, and the connection's own addresses stand,
 * for v1 UNKNOWN and for v2 PROXY over UNSPEC, AF_UNIX or DGRAM (the
 * spec's fall-back to UNSPEC: nothing an SMTP server can judge), and
 * for v2 LOCAL: the balancer's own connection (its health check),
 * h->command PROXY_CMD_LOCAL.  Addresses are struct addr as the rest
 * of the program has them: an IPv4-mapped IPv6 address comes out as
 * IPv4 (addr.h).
 *
 * Building: proxy_build_v1() and proxy_build_v2() write the header for
 * a struct proxy_header, so that proxy_parse() of it gives the same
 * (version, command, known, and when known the addresses and ports).
 *
 * Reading from a socket: proxy_read() takes the header off a
 * connection and not one byte more; see below.
 *
 * Contract: proxy_parse() and the builders are pure: no I/O, no
 * allocation, caller memory only.  proxy_read() does recv(2) on the
 * descriptor it is given and nothing else: no waiting, no logging, no
 * change to the descriptor's flags.
 */
#ifndef SENDWRAP_PROXY_H
#define SENDWRAP_PROXY_H

#include <stddef.h>

#include "addr.h"
#include "peer.h"

#define PROXY_V1_MAX 107	/* the longest v1 line, CRLF included */
#define PROXY_V2_HEAD 16	/* signature, version/command, family, length */
#define PROXY_V2_LEN_MAX 1024	/* the most address and TLV bytes taken */
#define PROXY_MAX (PROXY_V2_HEAD + PROXY_V2_LEN_MAX)	/* any header */

enum proxy_result { PROXY_NEED_MORE, PROXY_OK, PROXY_BAD };

enum proxy_command {
	PROXY_CMD_LOCAL,	/* v2: the balancer's own connection */
	PROXY_CMD_PROXY		/* on behalf of a client (v1: always) */
};

struct proxy_header {
	int version;			/* 1 or 2 */
	enum proxy_command command;
	int known;			/* src and dst below are set */
	struct addr src, dst;		/* the client's, and the one it reached */
	unsigned src_port, dst_port;
	size_t len;			/* the bytes the header takes */
};

/*
 * Parse the header at the start of buf (len bytes).  PROXY_OK with *h
 * filled; PROXY_NEED_MORE with *need (more than len); PROXY_BAD with
 * *why, a static message.  h, need and why are written only as said.
 */
enum proxy_result proxy_parse(const unsigned char *buf, size_t len,
    struct proxy_header *h, size_t *need, const char **why);

/*
 * Write h as a v1 line ("PROXY TCP4 ...\r\n", or "PROXY UNKNOWN\r\n"
 * when !h->known) into buf, NUL-terminated; PROXY_V1_MAX + 1 bytes are
 * enough.  Addresses of two families go out as TCP6, the IPv4 one
 * mapped.  Returns the header's length, or 0 when it does not fit or v1
 * cannot say it (LOCAL).
 */
size_t proxy_build_v1(char *buf, size_t size, const struct proxy_header *h);

/*
 * Write h as a v2 header (LOCAL, PROXY over UNSPEC when !h->known, or
 * TCP over AF_INET or AF_INET6, two families as AF_INET6 with the IPv4
 * one mapped; no TLVs) into buf; PROXY_V2_HEAD + 36 bytes are enough.
 * Returns the header's length, or 0 when it does not fit.
 */
size_t proxy_build_v2(unsigned char *buf, size_t size,
    const struct proxy_header *h);

/*
 * The header that names remote, who reached local, to a server we pass
 * the connection on to (--forward-proxy): version 1 or 2 into buf
 * (PROXY_MAX bytes are enough), UNKNOWN / UNSPEC when either is not
 * known.  Its length, or 0 when it does not fit.
 */
size_t proxy_header_for(int version, const struct peer *remote,
    const struct peer *local, unsigned char *buf, size_t size);

/* ------------------------------------------------- reading a socket */

/*
 * The header of one connection, read as it arrives without blocking:
 * an event loop calls proxy_read() each time the socket is readable.
 * Each call peeks (MSG_PEEK) at what has arrived, and consumes (recv)
 * only bytes known to be the header's: the whole header once it is
 * complete, or all that has come while it is not (a header's prefix:
 * none of it can be the client's).  So a socket that proxy_read() left
 * at PROXY_NEED_MORE is readable again only when more bytes come, and
 * after PROXY_OK the next byte to be read is the client's first.
 */
struct proxy_reader {
	unsigned char buf[PROXY_MAX];
	size_t have;			/* header bytes consumed so far */
};

void proxy_reader_init(struct proxy_reader *r);

/*
 * Read on from fd (a stream socket, blocking or not: every recv here is
 * MSG_DONTWAIT).  PROXY_NEED_MORE: nothing more to do until fd is
 * readable again (also when it was not readable after all).  PROXY_OK:
 * *h filled, and exactly h->len bytes consumed.  PROXY_BAD: *why says
 * why, a static message or strerror()'s: not a header, a malformed or
 * oversized one, or the connection ended or failed before its end (the
 * caller closes it: what was consumed is lost).
 */
/*
 * Why a header was not had by its deadline (timeout_ms after the
 * connection): "none within 5.000s", or "incomplete after 5.000s" when
 * r holds the start of one.  Returns buf.
 */
const char *proxy_why_late(const struct proxy_reader *r, uint64_t timeout_ms,
    char *buf, size_t size);

enum proxy_result proxy_read(struct proxy_reader *r, int fd,
    struct proxy_header *h, const char **why);

#endif
