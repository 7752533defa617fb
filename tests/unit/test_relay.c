/*
 * test_relay.c - cmocka tests for relay.c (--forward's engine), driven
 * by a small epoll loop of the test's own as the listener would drive
 * it.  The far ends are real sockets on loopback: the client's a TCP
 * connection or a socketpair, the MTA a listening TCP or unix socket
 * whose accepted side the test reads and writes, all in the same loop.
 */
#define _GNU_SOURCE		/* accept4 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "conn.h"
#include "relay.h"
#include "smtp.h"
#include "testlib.h"

#define STEP_MS 2000		/* a step that should take a moment */
#define BULK (4u << 20)		/* bytes each way for the bulk tests */

/* ------------------------------------------------------------ far ends */

/* The byte at offset i of a stream seeded with seed: any loss, repeat
 * or reordering shows. */
static unsigned char
pattern(uint32_t seed, uint64_t i)
{
	uint64_t x = (i >> 3) * 0x9e3779b97f4a7c15ull ^ seed;

	return (unsigned char)(x >> (8 * (i & 7)) ^ x >> 61);
}

/* A far end: the remote client, or the MTA's side of its connection. */
struct far {
	int fd;
	uint64_t to_send, sent;		/* pattern bytes to write */
	uint32_t seed_out, seed_in;
	const char *text;		/* or these first, once */
	size_t text_len;
	int shut_after;			/* shutdown(SHUT_WR) once all is sent */
	int shut;
	int paused;			/* not reading */
	uint64_t got;			/* pattern bytes read */
	uint64_t bad;			/* of which not as they should be */
	char head[256];			/* the first bytes read, as text */
	size_t head_len;
	int eof, err;
	int checked;			/* read bytes checked against seed_in */
};

static void
far_init(struct far *f, int fd)
{
	memset(f, 0, sizeof *f);
	f->fd = fd;
	f->checked = 1;
}

/* f is to send text (a string) once, before any pattern bytes. */
static void
far_say(struct far *f, const char *text)
{
	f->text = text;
	f->text_len = strlen(text);
}

static void
far_write(struct far *f)
{
	char buf[65536];
	ssize_t n;

	while (f->text_len > 0) {
		n = send(f->fd, f->text, f->text_len, MSG_NOSIGNAL |
		    MSG_DONTWAIT);
		if (n <= 0)
			return;
		f->text += n;
		f->text_len -= (size_t)n;
	}
	while (f->sent < f->to_send) {
		size_t len = f->to_send - f->sent < sizeof buf ?
		    (size_t)(f->to_send - f->sent) : sizeof buf, i;

		for (i = 0; i < len; i++)
			buf[i] = (char)pattern(f->seed_out, f->sent + i);
		n = send(f->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n <= 0)
			return;
		f->sent += (uint64_t)n;
	}
	if (f->shut_after && !f->shut) {
		shutdown(f->fd, SHUT_WR);
		f->shut = 1;
	}
}

static void
far_read(struct far *f)
{
	char buf[65536];
	ssize_t n, i;

	while (!f->paused && !f->eof) {
		n = recv(f->fd, buf, sizeof buf, MSG_DONTWAIT);
		if (n == 0)
			f->eof = 1;
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			f->err = errno;
			f->eof = 1;
		}
		if (n <= 0)
			return;
		if (f->head_len + (size_t)n < sizeof f->head) {
			memcpy(f->head + f->head_len, buf, (size_t)n);
			f->head_len += (size_t)n;
		}
		for (i = 0; f->checked && i < n; i++)
			f->bad += (unsigned char)buf[i] !=
			    pattern(f->seed_in, f->got + (uint64_t)i);
		f->got += (uint64_t)n;
	}
}

/* ------------------------------------------------------------ the loop */

static const enum relay_side tags[2] = { RELAY_CLIENT, RELAY_MTA };
static int far_tag;		/* the far ends' events just wake the loop */

struct rig {
	int ep;
	struct relay r;
	struct relay_config cfg;
	int client;			/* the engine's client side */
	int mta_listener;
	struct far c, m;		/* the far client, the MTA */
	int have_m;			/* m accepted */
	enum relay_status status;
	uint64_t sent, since;		/* stalled(): when sending stopped */
	unsigned long woken;		/* events for the engine's descriptors */
};

static void
far_watch(struct rig *g, struct far *f, int add)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof ev);
	ev.events = (f->paused || f->eof ? 0 : EPOLLIN) |
	    (f->sent < f->to_send || f->text_len ? EPOLLOUT : 0);
	ev.data.ptr = &far_tag;
	epoll_ctl(g->ep, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, f->fd, &ev);
}

/* Both far ends do what they can. */
static void
far_turn(struct rig *g)
{
	if (!g->have_m && g->mta_listener >= 0 && g->r.connected) {
		int fd = accept4(g->mta_listener, NULL, NULL,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			g->m.fd = fd;	/* what the test set for it stays */
			g->have_m = 1;
			far_watch(g, &g->m, 1);
		}
	}
	far_write(&g->c);
	far_read(&g->c);
	far_watch(g, &g->c, 0);
	if (g->have_m) {
		far_write(&g->m);
		far_read(&g->m);
		far_watch(g, &g->m, 0);
	}
}

/*
 * Run the loop until the session is over and (if wait_fars) both far
 * ends saw EOF, until done(g) says so, or for at most ms.  Returns the
 * session's status.
 */
static enum relay_status
drive(struct rig *g, uint64_t ms, int wait_fars, int (*done)(struct rig *))
{
	uint64_t end = mono_ms() + ms;

	for (;;) {
		struct epoll_event ev[8];
		uint64_t now, at;
		int n, i, wait;

		far_turn(g);
		if (g->status == RELAY_GOING)
			assert_int_equal(relay_watch(&g->r, g->ep, (void *)&tags[0],
			    (void *)&tags[1]), 0);
		if (done && done(g))
			break;
		if (!done && g->status == RELAY_OVER && (!wait_fars ||
		    (g->c.eof && (!g->have_m || g->m.eof))))
			break;
		now = mono_ms();
		if (now >= end)
			break;
		at = g->status == RELAY_GOING ? relay_deadline(&g->r) : end;
		if (at > end)
			at = end;
		wait = at > now ? (int)(at - now) : 0;
		/* The MTA's side is accepted by polling the listener, and
		 * done() looks at the clock. */
		if (((!g->have_m && g->mta_listener >= 0) || done) && wait > 10)
			wait = 10;
		n = epoll_wait(g->ep, ev, 8, wait);
		for (i = 0; i < n && g->status == RELAY_GOING; i++)
			if (ev[i].data.ptr != &far_tag && ++g->woken)
				g->status = relay_ready(&g->r,
				    *(const enum relay_side *)ev[i].data.ptr,
				    ev[i].events);
		if (g->status == RELAY_GOING &&
		    mono_ms() >= relay_deadline(&g->r))
			g->status = relay_timeout(&g->r);
		/* As the listener would: the client is its own again. */
		if (g->status == RELAY_OVER)
			epoll_ctl(g->ep, EPOLL_CTL_DEL, g->client, NULL);
	}
	return g->status;
}

/* ------------------------------------------------------------ sockets */

static int
tcp_listener(int backlog, struct sockaddr_in *sin)
{
	socklen_t len = sizeof *sin;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);

	memset(sin, 0, sizeof *sin);
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)sin, sizeof *sin), 0);
	if (backlog >= 0)
		assert_int_equal(listen(fd, backlog), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)sin, &len), 0);
	return fd;
}

static int
unix_listener(const char *path, int backlog)
{
	struct sockaddr_un un;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);

	assert_true(fd >= 0);
	memset(&un, 0, sizeof un);
	un.sun_family = AF_UNIX;
	snprintf(un.sun_path, sizeof un.sun_path, "%s", path);
	unlink(path);
	assert_int_equal(bind(fd, (struct sockaddr *)&un, sizeof un), 0);
	if (backlog >= 0)
		assert_int_equal(listen(fd, backlog), 0);
	return fd;
}

/* A connected TCP pair on loopback: *near non-blocking, as accept4 in
 * the listener gives it; *far_fd non-blocking too. */
static void
tcp_pair(int *near, int *far_fd)
{
	struct sockaddr_in sin;
	int l = tcp_listener(1, &sin);

	*far_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(*far_fd, (struct sockaddr *)&sin, sizeof sin),
	    0);
	fcntl(*far_fd, F_SETFL, O_NONBLOCK);
	do
		*near = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	while (*near < 0 && errno == EAGAIN);
	assert_true(*near >= 0);
	close(l);
}

static void
target_text(struct relay_config *cfg, const char *text)
{
	const char *why;

	assert_int_equal(relay_target_parse(text, &cfg->target, &why), 0);
}

/* A rig whose MTA listens on TCP loopback; the client over TCP (tcp=1)
 * or a socketpair. */
static void
rig_init(struct rig *g, int tcp_client)
{
	struct sockaddr_in sin;
	struct epoll_event ev;
	char text[64];
	int pair[2];

	memset(g, 0, sizeof *g);
	g->ep = epoll_create1(EPOLL_CLOEXEC);
	assert_true(g->ep >= 0);
	g->mta_listener = tcp_listener(16, &sin);
	snprintf(text, sizeof text, "127.0.0.1:%u", ntohs(sin.sin_port));
	target_text(&g->cfg, text);
	g->cfg.connect_ms = STEP_MS;
	g->cfg.idle_ms = 30000;
	g->cfg.pipe_size = RELAY_PIPE_SIZE;
	if (tcp_client)
		tcp_pair(&g->client, pair);
	else {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM |
		    SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair), 0);
		g->client = pair[1];
	}
	far_init(&g->c, pair[0]);
	far_init(&g->m, -1);
	/* As in the listener: the client is watched already. */
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN | EPOLLRDHUP;
	ev.data.ptr = (void *)&tags[0];
	assert_int_equal(epoll_ctl(g->ep, EPOLL_CTL_ADD, g->client, &ev), 0);
	memset(&ev, 0, sizeof ev);
	ev.data.ptr = &far_tag;
	epoll_ctl(g->ep, EPOLL_CTL_ADD, g->c.fd, &ev);
}

/* A rig for a short SMTP-like exchange: text, not pattern bytes. */
static void
rig_text(struct rig *g)
{
	rig_init(g, 1);
	g->c.checked = g->m.checked = 0;
}

static void
rig_start(struct rig *g, const void *first, size_t len)
{
	g->status = relay_start(&g->r, &g->cfg, g->client, first, len);
}

static void
rig_free(struct rig *g)
{
	relay_close(&g->r);
	close(g->client);
	if (g->c.fd >= 0)
		close(g->c.fd);
	if (g->have_m)
		close(g->m.fd);
	if (g->mta_listener >= 0)
		close(g->mta_listener);
	close(g->ep);
}

/* ------------------------------------------------------------ target */

static void
test_target_parse(void **state)
{
	static const char *const bad[] = { "", "127.0.0.1", "127.0.0.1:0",
	    "127.0.0.1:65536", "localhost:25", "[::1]", "::1:25", "[::1]:0",
	    "unix:", "unix:relative/path", "unix", "1.2.3.4:25x", NULL };
	struct relay_target t;
	struct sockaddr_un *un = (struct sockaddr_un *)&t.addr;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t.addr;
	char longpath[200];
	const char *why;
	size_t i;

	(void)state;
	assert_int_equal(relay_target_parse("127.0.0.1:10025", &t, &why), 0);
	assert_int_equal(t.addr.ss_family, AF_INET);
	assert_int_equal(t.len, sizeof(struct sockaddr_in));
	assert_int_equal(relay_target_parse("[::1]:25", &t, &why), 0);
	assert_int_equal(t.addr.ss_family, AF_INET6);
	assert_int_equal(ntohs(s6->sin6_port), 25);
	assert_int_equal(relay_target_parse("unix:/run/mta.sock", &t, &why),
	    0);
	assert_int_equal(t.addr.ss_family, AF_UNIX);
	assert_string_equal(un->sun_path, "/run/mta.sock");
	assert_int_equal(t.len, offsetof(struct sockaddr_un, sun_path) +
	    sizeof "/run/mta.sock");
	for (i = 0; bad[i]; i++) {
		why = NULL;
		assert_int_equal(relay_target_parse(bad[i], &t, &why), -1);
		assert_non_null(why);
	}
	memset(longpath, 'a', sizeof longpath);
	memcpy(longpath, "unix:/", 6);
	longpath[sizeof longpath - 1] = '\0';
	assert_int_equal(relay_target_parse(longpath, &t, &why), -1);
	assert_non_null(strstr(why, "too long"));
}

/* ------------------------------------------------------------ relaying */

/* Every descriptor the engine holds: close-on-exec and non-blocking. */
static void
assert_own_fds_flags(const struct relay *r)
{
	int fds[5] = { r->fd[RELAY_MTA], r->way[0].pipe[0], r->way[0].pipe[1],
	    r->way[1].pipe[0], r->way[1].pipe[1] };
	size_t i;

	for (i = 0; i < 5; i++) {
		assert_true(fds[i] >= 0);
		assert_true(fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
		assert_true(fcntl(fds[i], F_GETFL) & O_NONBLOCK);
	}
}

static void
bulk_both_ways(struct rig *g)
{
	g->c.to_send = g->m.to_send = BULK;
	g->c.seed_out = g->m.seed_in = 11;
	g->m.seed_out = g->c.seed_in = 22;
	g->c.shut_after = g->m.shut_after = 1;
	rig_start(g, NULL, 0);
	assert_int_equal(g->status, RELAY_GOING);
	assert_own_fds_flags(&g->r);
	assert_int_equal(drive(g, 60000, 1, NULL), RELAY_OVER);
	assert_true(g->r.end == RELAY_CLIENT_CLOSED ||
	    g->r.end == RELAY_MTA_CLOSED);
	assert_int_equal(g->m.got, BULK);
	assert_int_equal(g->c.got, BULK);
	assert_int_equal(g->m.bad, 0);
	assert_int_equal(g->c.bad, 0);
	assert_int_equal(g->r.way[RELAY_CLIENT].bytes, BULK);
	assert_int_equal(g->r.way[RELAY_MTA].bytes, BULK);
	assert_null(relay_reply(&g->r));
	assert_true(g->r.connected >= g->r.start);
	assert_true(g->r.ended >= g->r.connected);
	/* Over: the engine's descriptors are closed, the client's is not. */
	assert_int_equal(g->r.fd[RELAY_MTA], -1);
	assert_int_equal(g->r.way[0].pipe[0], -1);
	assert_true(fcntl(g->client, F_GETFD) >= 0);
}

static void
test_bulk_tcp(void **state)
{
	struct rig g;

	(void)state;
	rig_init(&g, 1);
	bulk_both_ways(&g);
	rig_free(&g);
}

static void
test_bulk_unix_target(void **state)
{
	char *path = scratch_file("mta.sock");
	struct rig g;

	(void)state;
	rig_init(&g, 0);
	close(g.mta_listener);
	g.mta_listener = unix_listener(path, 16);
	{
		char text[300];

		snprintf(text, sizeof text, "unix:%s", path);
		target_text(&g.cfg, text);
	}
	bulk_both_ways(&g);
	rig_free(&g);
	free(path);
}

/* The bytes to send first go before the client's, even those the
 * client sent before the relay started (-x pass). */
static void
test_first_bytes(void **state)
{
	static const char proxy[] = "PROXY TCP4 192.0.2.1 192.0.2.2 4000 25\r\n";
	struct rig g;

	(void)state;
	rig_init(&g, 1);
	far_say(&g.c, "EHLO early\r\n");
	g.c.shut_after = 1;
	far_write(&g.c);
	g.m.shut_after = 1;
	g.m.to_send = 1;
	g.m.checked = g.c.checked = 0;
	rig_start(&g, proxy, sizeof proxy - 1);
	assert_int_equal(drive(&g, STEP_MS * 5, 1, NULL), RELAY_OVER);
	assert_int_equal(g.m.head_len, sizeof proxy - 1 + 12);
	assert_memory_equal(g.m.head, proxy, sizeof proxy - 1);
	assert_memory_equal(g.m.head + sizeof proxy - 1, "EHLO early\r\n", 12);
	/* Our header is not the client's: it is not counted. */
	assert_int_equal(g.r.way[RELAY_CLIENT].bytes, 12);
	assert_null(g.r.first);
	rig_free(&g);
}

/* ------------------------------------------------------------ backpressure */

/* Neither far end has sent a byte for a while. */
static int
stalled(struct rig *g)
{
	uint64_t now = mono_ms(), sent = g->c.sent + g->m.sent;

	if (sent != g->sent || g->since == 0) {
		g->sent = sent;
		g->since = now;
		return 0;
	}
	return now - g->since > 300;
}

/* The receiving far end stops reading: the sending side is read no
 * further than the pipe holds; once it reads again, nothing is lost. */
static void
backpressure(enum relay_side from)
{
	struct rig g;
	struct far *src = from == RELAY_CLIENT ? &g.c : &g.m;
	struct far *dst = from == RELAY_CLIENT ? &g.m : &g.c;
	uint64_t total = 64u << 20;	/* more than the buffers hold */
	int unread = 0;
	int sending_fd;

	rig_init(&g, 1);
	g.cfg.pipe_size = 0;	/* the kernel's: more to hold */
	if (from == RELAY_MTA) {
		g.m.to_send = total;
		g.m.seed_out = 5;
	} else {
		far_say(&g.m, "220 mx\r\n");
		g.c.checked = 0;
		g.c.to_send = total;
		g.c.seed_out = 5;
	}
	dst->paused = 1;
	rig_start(&g, NULL, 0);
	drive(&g, 15000, 0, stalled);
	assert_int_equal(g.status, RELAY_GOING);
	assert_true(src->sent < total);
	/* The pipe holds bytes the destination has not taken, its source is
	 * not read meanwhile, and input waits there unread. */
	assert_true(g.r.way[from].held > 0);
	assert_false(relay_events(&g.r, from) & EPOLLIN);
	assert_true(relay_events(&g.r, from == RELAY_CLIENT ? RELAY_MTA :
	    RELAY_CLIENT) & EPOLLOUT);
	sending_fd = g.r.fd[from];
	assert_int_equal(ioctl(sending_fd, FIONREAD, &unread), 0);
	assert_true(unread > 0);
	assert_int_equal(g.r.way[from].bytes + g.r.way[from].held +
	    (uint64_t)unread <= src->sent, 1);
	/* Reading again: all of it arrives, in order. */
	dst->paused = 0;
	src->shut_after = 1;
	if (from == RELAY_CLIENT) {
		g.m.seed_in = 5;
		g.m.shut_after = 1;
	} else {
		g.c.seed_in = 5;
		g.c.shut_after = 1;
	}
	assert_int_equal(drive(&g, 60000, 1, NULL), RELAY_OVER);
	assert_int_equal(dst->got, total);
	assert_int_equal(dst->bad, 0);
	assert_int_equal(g.r.way[from].bytes, total);
	rig_free(&g);
}

static void
test_backpressure_mta_stops(void **state)
{
	(void)state;
	backpressure(RELAY_CLIENT);
}

static void
test_backpressure_client_stops(void **state)
{
	(void)state;
	backpressure(RELAY_MTA);
}

/*
 * The MTA's end of input, and our own end of output to it, while the
 * pipe to the client is full: its descriptor hangs up (EPOLLHUP, which
 * no mask keeps out) while the engine is not reading it.  The loop must
 * not be woken for it over and over; once the client reads, all of it
 * arrives, then the end.
 */
static void
test_no_spin_on_a_hang_up_not_read(void **state)
{
	uint64_t total = 100 * 1024;
	int small = 4096;
	struct rig g;

	(void)state;
	rig_init(&g, 1);
	/* Small buffers on the client's side: the pipe fills soon. */
	setsockopt(g.client, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
	setsockopt(g.c.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	g.c.paused = 1;
	g.c.shut_after = 1;		/* at once: its EOF comes first */
	g.m.to_send = total;
	g.m.seed_out = g.c.seed_in = 9;
	g.m.shut_after = 1;
	rig_start(&g, NULL, 0);
	drive(&g, 15000, 0, stalled);
	assert_int_equal(g.status, RELAY_GOING);
	assert_true(g.m.shut);
	assert_true(g.r.way[RELAY_MTA].held > 0);
	assert_int_equal(relay_events(&g.r, RELAY_MTA), 0);
	g.woken = 0;
	drive(&g, 300, 0, NULL);
	assert_true(g.woken <= 2);
	g.c.paused = 0;
	assert_int_equal(drive(&g, STEP_MS * 5, 1, NULL), RELAY_OVER);
	assert_int_equal(g.r.end, RELAY_CLIENT_CLOSED);
	assert_int_equal(g.c.got, total);
	assert_int_equal(g.c.bad, 0);
	rig_free(&g);
}

/* ------------------------------------------------------------ endings */

static int
mta_saw_eof(struct rig *g)
{
	return g->have_m && g->m.eof;
}

static int
client_saw_eof(struct rig *g)
{
	return g->c.eof;
}

/* The client says QUIT and shuts its side: the MTA sees the EOF, and
 * its reply still reaches the client. */
static void
test_half_close_client(void **state)
{
	struct rig g;

	(void)state;
	rig_text(&g);
	far_say(&g.m, "220 mx\r\n");
	far_say(&g.c, "QUIT\r\n");
	g.c.shut_after = 1;
	rig_start(&g, NULL, 0);
	drive(&g, STEP_MS, 0, mta_saw_eof);
	assert_true(mta_saw_eof(&g));
	assert_int_equal(g.status, RELAY_GOING);
	assert_false(g.c.eof);
	assert_int_equal(g.r.eof_first, RELAY_CLIENT);
	far_say(&g.m, "221 bye\r\n");
	g.m.shut_after = 1;
	assert_int_equal(drive(&g, STEP_MS, 1, NULL), RELAY_OVER);
	assert_int_equal(g.r.end, RELAY_CLIENT_CLOSED);
	assert_int_equal(g.c.head_len, 17);
	assert_memory_equal(g.c.head, "220 mx\r\n221 bye\r\n", 17);
	assert_memory_equal(g.m.head, "QUIT\r\n", 6);
	assert_int_equal(g.r.way[RELAY_CLIENT].bytes, 6);
	assert_int_equal(g.r.way[RELAY_MTA].bytes, 17);
	assert_null(relay_reply(&g.r));
	rig_free(&g);
}

/* The MTA shuts its side first: the client sees the EOF, and what it
 * sends after still reaches the MTA. */
static void
test_half_close_mta(void **state)
{
	struct rig g;

	(void)state;
	rig_text(&g);
	far_say(&g.m, "421 going\r\n");
	g.m.shut_after = 1;
	rig_start(&g, NULL, 0);
	drive(&g, STEP_MS, 0, client_saw_eof);
	assert_true(g.c.eof);
	assert_int_equal(g.status, RELAY_GOING);
	assert_memory_equal(g.c.head, "421 going\r\n", 11);
	far_say(&g.c, "QUIT\r\n");
	g.c.shut_after = 1;
	assert_int_equal(drive(&g, STEP_MS, 1, NULL), RELAY_OVER);
	assert_int_equal(g.r.end, RELAY_MTA_CLOSED);
	assert_memory_equal(g.m.head, "QUIT\r\n", 6);
	rig_free(&g);
}

/* Close fd so that its peer gets a reset. */
static void
reset(int fd)
{
	struct linger lg = { 1, 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(fd);
}

static int
greeted(struct rig *g)
{
	return g->c.head_len > 0;
}

static void
test_reset_client(void **state)
{
	struct rig g;

	(void)state;
	rig_text(&g);
	far_say(&g.m, "220 mx\r\n");
	rig_start(&g, NULL, 0);
	drive(&g, STEP_MS, 0, greeted);
	assert_true(greeted(&g));
	epoll_ctl(g.ep, EPOLL_CTL_DEL, g.c.fd, NULL);
	reset(g.c.fd);
	g.c.fd = -1;
	g.c.eof = 1;
	assert_int_equal(drive(&g, STEP_MS, 0, NULL), RELAY_OVER);
	assert_int_equal(g.r.end, RELAY_CLIENT_RESET);
	assert_int_equal(g.r.err, ECONNRESET);
	assert_null(relay_reply(&g.r));
	rig_free(&g);
}

static int
mta_accepted(struct rig *g)
{
	return g->have_m;
}

static void
test_reset_mta(void **state)
{
	struct rig g;
	int greet;

	(void)state;
	/* After its greeting: the client has heard from it, no 421; before
	 * it: the client is told 421. */
	for (greet = 1; greet >= 0; greet--) {
		rig_text(&g);
		if (greet) {
			far_say(&g.m, "220 mx\r\n");
		}
		rig_start(&g, NULL, 0);
		drive(&g, STEP_MS, 0, greet ? greeted : mta_accepted);
		assert_int_equal(g.status, RELAY_GOING);
		epoll_ctl(g.ep, EPOLL_CTL_DEL, g.m.fd, NULL);
		reset(g.m.fd);
		g.have_m = 0;
		assert_int_equal(drive(&g, STEP_MS, 0, NULL), RELAY_OVER);
		assert_int_equal(g.r.end, RELAY_MTA_RESET);
		if (greet)
			assert_null(relay_reply(&g.r));
		else
			assert_string_equal(relay_reply(&g.r), REPLY_UNAVAILABLE);
		rig_free(&g);
	}
}

/* An MTA that closes before its greeting: the client is still open for
 * its 421. */
static void
test_mta_gone_before_greeting(void **state)
{
	struct rig g;

	(void)state;
	rig_init(&g, 1);
	g.m.shut_after = 1;
	rig_start(&g, NULL, 0);
	assert_int_equal(drive(&g, STEP_MS, 0, NULL), RELAY_OVER);
	assert_int_equal(g.r.end, RELAY_MTA_CLOSED);
	assert_string_equal(relay_reply(&g.r), REPLY_UNAVAILABLE);
	assert_int_equal(send(g.client, REPLY_UNAVAILABLE,
	    sizeof REPLY_UNAVAILABLE - 1, MSG_NOSIGNAL), 
	    (ssize_t)sizeof REPLY_UNAVAILABLE - 1);
	g.c.checked = 0;
	drive(&g, STEP_MS, 0, greeted);
	assert_memory_equal(g.c.head, "421 4.3.0", 9);
	rig_free(&g);
}

static void
test_idle(void **state)
{
	struct rig g;
	uint64_t t0, before;

	(void)state;
	rig_init(&g, 1);
	g.cfg.idle_ms = 300;
	g.c.checked = 0;
	far_say(&g.m, "220 mx\r\n");
	rig_start(&g, NULL, 0);
	drive(&g, STEP_MS, 0, greeted);
	assert_true(greeted(&g));
	/* A byte moves the deadline on. */
	before = relay_deadline(&g.r);
	usleep(20000);
	far_say(&g.c, "N");
	drive(&g, 100, 0, mta_saw_eof);
	assert_true(relay_deadline(&g.r) > before);
	t0 = mono_ms();
	g.woken = 0;
	assert_int_equal(drive(&g, 10000, 0, NULL), RELAY_OVER);
	assert_int_equal(g.r.end, RELAY_IDLE);
	/* Quiet: no descriptor woke the loop in vain meanwhile. */
	assert_true(g.woken <= 2);
	assert_true(mono_ms() - t0 >= 150);
	assert_true(mono_ms() - t0 < 5000);
	assert_null(relay_reply(&g.r));
	/* Its descriptors are closed: the MTA sees the end. */
	drive(&g, STEP_MS, 0, mta_saw_eof);
	assert_true(g.m.eof);
	rig_free(&g);
}

/* ------------------------------------------------------------ connecting */

static void
assert_unreachable(struct rig *g, int err, uint64_t ms_at_least)
{
	uint64_t t0 = mono_ms();
	int unread = 0;

	if (g->status == RELAY_GOING)
		drive(g, 10000, 0, NULL);
	assert_int_equal(g->status, RELAY_OVER);
	assert_int_equal(g->r.end, RELAY_UNREACHABLE);
	assert_int_equal(g->r.err, err);
	assert_true(mono_ms() - t0 + 50 >= ms_at_least);
	assert_string_equal(relay_reply(&g->r), REPLY_UNAVAILABLE);
	assert_int_equal(g->r.way[RELAY_CLIENT].bytes, 0);
	/* What the client sent is all still there: nothing was read. */
	assert_int_equal(ioctl(g->client, FIONREAD, &unread), 0);
	assert_int_equal(unread, 6);
}

/* A rig whose client has sent "EHLO\r\n", to a target given. */
static void
rig_for(struct rig *g, const char *target, uint64_t connect_ms)
{
	rig_init(g, 1);
	close(g->mta_listener);
	g->mta_listener = -1;
	target_text(&g->cfg, target);
	g->cfg.connect_ms = connect_ms;
	far_say(&g->c, "EHLO\r\n");
	g->c.checked = 0;
	far_write(&g->c);
	usleep(10000);
}

static void
test_connect_refused(void **state)
{
	struct sockaddr_in sin;
	char target[64], *path = scratch_file("nobody.sock");
	struct rig g;
	int bound = tcp_listener(-1, &sin), ubound;

	(void)state;
	/* Bound, never listening: refused. */
	snprintf(target, sizeof target, "127.0.0.1:%u", ntohs(sin.sin_port));
	rig_for(&g, target, STEP_MS);
	rig_start(&g, NULL, 0);
	assert_unreachable(&g, ECONNREFUSED, 0);
	rig_free(&g);
	close(bound);

	ubound = unix_listener(path, -1);
	snprintf(target, sizeof target, "unix:%s", path);
	rig_for(&g, target, STEP_MS);
	rig_start(&g, NULL, 0);
	assert_unreachable(&g, ECONNREFUSED, 0);
	rig_free(&g);
	close(ubound);
	unlink(path);

	rig_for(&g, target, STEP_MS);
	rig_start(&g, NULL, 0);
	assert_unreachable(&g, ENOENT, 0);
	rig_free(&g);
	free(path);
}

/*
 * A TCP listener whose backlog of 0 holds one connection never accepted
 * (*filler): the next SYN is dropped, and a connect to target waits.
 */
static int
full_tcp_backlog(int *filler, char *target, size_t size)
{
	struct sockaddr_in sin;
	int full = tcp_listener(0, &sin);

	*filler = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(*filler, (struct sockaddr *)&sin, sizeof sin),
	    0);
	snprintf(target, size, "127.0.0.1:%u", ntohs(sin.sin_port));
	return full;
}

/* The same on a unix socket at path: a connect says EAGAIN. */
static int
full_unix_backlog(const char *path, int *filler, char *target, size_t size)
{
	struct sockaddr_un un;
	int full = unix_listener(path, 0);

	*filler = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&un, 0, sizeof un);
	un.sun_family = AF_UNIX;
	snprintf(un.sun_path, sizeof un.sun_path, "%s", path);
	assert_int_equal(connect(*filler, (struct sockaddr *)&un, sizeof un), 0);
	snprintf(target, size, "unix:%s", path);
	return full;
}

static void
test_connect_timeout(void **state)
{
	char target[300], *path = scratch_file("full.sock");
	struct rig g;
	int full, filler;

	(void)state;
	full = full_tcp_backlog(&filler, target, sizeof target);
	rig_for(&g, target, 400);
	rig_start(&g, NULL, 0);
	assert_int_equal(g.status, RELAY_GOING);
	assert_int_equal(relay_deadline(&g.r), g.r.start + 400);
	assert_unreachable(&g, ETIMEDOUT, 400);
	rig_free(&g);
	close(filler);
	close(full);

	/* The same on a unix socket: tried again until the time is up. */
	full = full_unix_backlog(path, &filler, target, sizeof target);
	rig_for(&g, target, 400);
	rig_start(&g, NULL, 0);
	assert_int_equal(g.status, RELAY_GOING);
	assert_true(g.r.retry > 0);
	assert_int_equal(relay_events(&g.r, RELAY_MTA), 0);
	assert_unreachable(&g, ETIMEDOUT, 400);
	rig_free(&g);
	close(filler);
	close(full);
	free(path);
}

/* A unix socket's backlog that frees up while we retry: connected. */
static void
test_unix_retry_connects(void **state)
{
	char target[300], *path = scratch_file("busy.sock");
	struct rig g;
	int filler, queued;

	(void)state;
	rig_init(&g, 1);
	close(g.mta_listener);
	g.mta_listener = full_unix_backlog(path, &filler, target,
	    sizeof target);
	target_text(&g.cfg, target);
	rig_start(&g, NULL, 0);
	assert_int_equal(g.status, RELAY_GOING);
	assert_true(g.r.retry > 0);
	queued = accept(g.mta_listener, NULL, NULL);
	assert_true(queued >= 0);
	g.c.checked = 0;
	g.m.text_len = 0;
	drive(&g, STEP_MS, 0, mta_accepted);
	assert_true(g.have_m);
	assert_int_equal(g.r.phase, RELAY_RELAYING);
	close(queued);
	close(filler);
	rig_free(&g);
	free(path);
}

/* ------------------------------------------------------------ resources */

/* One short session over a unix socket, ended as i says. */
static void
short_session(const char *target, const char *path, int i)
{
	struct relay_config cfg;
	struct relay r;
	enum relay_status s;
	int pair[2], l = -1, m = -1;

	memset(&cfg, 0, sizeof cfg);
	target_text(&cfg, target);
	cfg.connect_ms = STEP_MS;
	cfg.idle_ms = STEP_MS;
	cfg.pipe_size = RELAY_PIPE_SIZE;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0, pair), 0);
	if (i % 4 != 3)
		l = unix_listener(path, 4);
	s = relay_start(&r, &cfg, pair[1], "PROXY\r\n", 7);
	if (i % 4 == 3) {			/* refused */
		assert_int_equal(s, RELAY_OVER);
	} else {
		assert_int_equal(s, RELAY_GOING);
		m = accept(l, NULL, NULL);
		assert_true(m >= 0);
		assert_int_equal(write(pair[0], "HELO\r\n", 6), 6);
		if (i % 4 == 2)
			assert_int_equal(write(m, "220 x\r\n", 7), 7);
		s = relay_ready(&r, RELAY_CLIENT, EPOLLIN);
		if (i % 4 == 0)
			relay_close(&r);	/* cut short */
		else {
			shutdown(m, SHUT_WR);
			shutdown(pair[0], SHUT_WR);
			s = relay_ready(&r, RELAY_MTA, EPOLLIN);
			if (s == RELAY_GOING)
				s = relay_ready(&r, RELAY_CLIENT, EPOLLIN);
			assert_int_equal(s, RELAY_OVER);
		}
	}
	relay_close(&r);
	relay_close(&r);
	if (m >= 0)
		close(m);
	if (l >= 0)
		close(l);
	close(pair[0]);
	close(pair[1]);
}

static void
test_no_descriptor_leaked(void **state)
{
	char *path = scratch_file("leak.sock"), target[300];
	int before = count_fds(), i;

	(void)state;
	snprintf(target, sizeof target, "unix:%s", path);
	for (i = 0; i < 1000; i++)
		short_session(target, path, i);
	assert_int_equal(count_fds(), before);
	free(path);
}

/* The inode of each of r's pipes (the read end's), or 0. */
static void
pipe_inodes(const struct relay *r, ino_t ino[2])
{
	struct stat st;
	int i;

	for (i = 0; i < 2; i++)
		ino[i] = fstat(r->way[i].pipe[0], &st) == 0 ? st.st_ino : 0;
}

/* Both of r's pipes are empty. */
static void
assert_pipes_empty(const struct relay *r)
{
	int i, held;

	for (i = 0; i < 2; i++) {
		assert_int_equal(ioctl(r->way[i].pipe[0], FIONREAD, &held), 0);
		assert_int_equal(held, 0);
	}
}

/*
 * The pipes of a session that ends while another runs serve the next
 * session; a pipe that still held bytes when its session was cut short
 * is closed, never kept; once no session holds a pipe, none is open.
 */
static void
test_pipes_kept_while_others_run(void **state)
{
	struct rig a, b, c, d, e;
	ino_t b_ino[2], c_ino[2], d_ino[2], e_ino[2];
	int before = count_fds(), i;

	(void)state;
	rig_init(&a, 1);		/* runs throughout */
	rig_start(&a, NULL, 0);
	assert_int_equal(a.status, RELAY_GOING);

	rig_init(&b, 1);		/* a whole session, emptied */
	b.c.to_send = b.m.to_send = 1u << 16;
	b.c.seed_out = b.m.seed_in = 3;
	b.m.seed_out = b.c.seed_in = 4;
	b.c.shut_after = b.m.shut_after = 1;
	rig_start(&b, NULL, 0);
	pipe_inodes(&b.r, b_ino);
	assert_int_equal(drive(&b, 60000, 1, NULL), RELAY_OVER);
	assert_int_equal(b.m.got, 1u << 16);
	assert_int_equal(b.c.bad + b.m.bad, 0);

	rig_init(&c, 1);		/* takes b's pipes */
	rig_start(&c, NULL, 0);
	pipe_inodes(&c.r, c_ino);
	assert_true((c_ino[0] == b_ino[0] && c_ino[1] == b_ino[1]) ||
	    (c_ino[0] == b_ino[1] && c_ino[1] == b_ino[0]));
	assert_pipes_empty(&c.r);

	rig_init(&d, 1);		/* cut short with bytes in a pipe */
	d.cfg.pipe_size = 0;
	far_say(&d.m, "220 mx\r\n");
	d.c.checked = 0;
	d.c.to_send = 64u << 20;
	d.c.seed_out = 5;
	d.m.paused = 1;
	rig_start(&d, NULL, 0);
	drive(&d, 15000, 0, stalled);
	assert_true(d.r.way[RELAY_CLIENT].held > 0);
	pipe_inodes(&d.r, d_ino);
	relay_close(&d.r);

	rig_init(&e, 1);		/* d's empty pipe at most */
	e.cfg.pipe_size = 0;
	rig_start(&e, NULL, 0);
	pipe_inodes(&e.r, e_ino);
	for (i = 0; i < 2; i++)
		assert_true(e_ino[i] != d_ino[RELAY_CLIENT]);
	assert_pipes_empty(&e.r);

	rig_free(&e);
	rig_free(&d);
	rig_free(&c);
	rig_free(&b);
	rig_free(&a);
	assert_int_equal(count_fds(), before);
}

/* relay_close() closes what the engine opened, never the client's
 * descriptor (short_session() cuts relaying sessions short too). */
static void
test_close_while_connecting(void **state)
{
	char target[64];
	struct rig g;
	int full, filler, before = count_fds();

	(void)state;
	full = full_tcp_backlog(&filler, target, sizeof target);
	rig_for(&g, target, STEP_MS);
	rig_start(&g, "x", 1);
	assert_int_equal(g.r.phase, RELAY_CONNECTING);
	relay_close(&g.r);
	assert_int_equal(g.r.end, RELAY_LOCAL_ERROR);
	assert_int_equal(g.r.err, ECANCELED);
	assert_int_equal(g.r.fd[RELAY_MTA], -1);
	assert_null(g.r.first);
	assert_true(fcntl(g.client, F_GETFD) >= 0);
	assert_int_equal(relay_ready(&g.r, RELAY_CLIENT, EPOLLIN), RELAY_OVER);
	assert_int_equal(relay_timeout(&g.r), RELAY_OVER);
	assert_int_equal(relay_deadline(&g.r), 0);
	rig_free(&g);
	close(filler);
	close(full);
	assert_int_equal(count_fds(), before);
}

static void
test_probe(void **state)
{
	struct relay_config cfg;
	struct sockaddr_in sin;
	char target[64];
	uint64_t took;
	int l = tcp_listener(4, &sin), bound;

	(void)state;
	memset(&cfg, 0, sizeof cfg);
	cfg.connect_ms = STEP_MS;
	snprintf(target, sizeof target, "127.0.0.1:%u", ntohs(sin.sin_port));
	target_text(&cfg, target);
	assert_int_equal(relay_probe(&cfg, &took), 0);
	assert_true(took < STEP_MS);
	close(l);
	bound = tcp_listener(-1, &sin);
	snprintf(target, sizeof target, "127.0.0.1:%u", ntohs(sin.sin_port));
	target_text(&cfg, target);
	assert_int_equal(relay_probe(&cfg, &took), -1);
	assert_int_equal(errno, ECONNREFUSED);
	close(bound);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_target_parse),
		cmocka_unit_test(test_bulk_tcp),
		cmocka_unit_test(test_bulk_unix_target),
		cmocka_unit_test(test_first_bytes),
		cmocka_unit_test(test_backpressure_mta_stops),
		cmocka_unit_test(test_backpressure_client_stops),
		cmocka_unit_test(test_no_spin_on_a_hang_up_not_read),
		cmocka_unit_test(test_half_close_client),
		cmocka_unit_test(test_half_close_mta),
		cmocka_unit_test(test_reset_client),
		cmocka_unit_test(test_reset_mta),
		cmocka_unit_test(test_mta_gone_before_greeting),
		cmocka_unit_test(test_idle),
		cmocka_unit_test(test_connect_refused),
		cmocka_unit_test(test_connect_timeout),
		cmocka_unit_test(test_unix_retry_connects),
		cmocka_unit_test(test_no_descriptor_leaked),
		cmocka_unit_test(test_pipes_kept_while_others_run),
		cmocka_unit_test(test_close_while_connecting),
		cmocka_unit_test(test_probe),
	};

	if (getenv("RELAY_TEST"))
		cmocka_set_test_filter(getenv("RELAY_TEST"));
	/* As in the listener: a splice to a reset peer raises SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
