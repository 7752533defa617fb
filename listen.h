/*
 * listen.h - the listener's own sockets and process: addresses parsed
 * and bound, or listening sockets inherited from systemd (LISTEN_FDS,
 * a socket unit with Accept=no); privileges given up once bound; the
 * descriptor limit raised to what the client limits need.
 *
 * An address is "IPv4:PORT" or "[IPv6]:PORT" with a numeric port
 * ("0.0.0.0:25", "[::]:25", "127.0.0.1:2525"; port 0: any free one),
 * or the word "systemd".
 * An IPv6 socket is bound IPV6_V6ONLY, so "0.0.0.0:25" and "[::]:25" can
 * be given together and IPv4 clients always arrive as IPv4.
 *
 * Contract: no logging; failures are returned with a one-line reason.
 * Every descriptor made here is close-on-exec and non-blocking.
 */
#ifndef SENDWRAP_LISTEN_H
#define SENDWRAP_LISTEN_H

#include <stddef.h>
#include <sys/socket.h>

#define LISTEN_MAX 16		/* listening sockets, given or inherited */
#define LISTEN_SYSTEMD "systemd"

/* Parse "ADDR:PORT" into ss.  0, or -1 with *why a static message. */
int listen_parse(const char *s, struct sockaddr_storage *ss,
    socklen_t *len, const char **why);

/*
 * Open what spec names (an address, or "systemd") and add its sockets to
 * fds[*n...max).  0, or -1 with the reason in err.
 */
int listen_open(const char *spec, int *fds, size_t *n, size_t max,
    char *err, size_t errsize);

/* "127.0.0.1:2525" or "[::1]:2525": where fd listens.  Its length. */
size_t listen_name(int fd, char *buf, size_t size);

/*
 * Give up root for uid and gid, both or neither (-1, -1: keep): gid
 * becomes the one group (the supplementary groups are exactly it), then
 * uid; then setuid(0), setgid(0) and setgroups must fail, or root was
 * not given up (uid or gid 0, a capability kept).  0, or -1 with the
 * reason in err.
 */
int drop_privileges(long uid, long gid, char *err, size_t errsize);

/* Raise the soft descriptor limit to at least need.  0, or -1 (err). */
int raise_fd_limit(unsigned long need, char *err, size_t errsize);

#endif
