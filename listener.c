/* listener.c - the listener front end; see listener.h. */
#define _GNU_SOURCE		/* accept4 */
#include "listener.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "admin.h"
#include "conn.h"
#include "core.h"
#include "decoy.h"
#include "dialog.h"
#include "dnsl.h"
#include "duration.h"
#include "fairq.h"
#include "ipcount.h"
#include "proxy.h"
#include "relay.h"
#include "listen.h"
#include "log.h"
#include "smtp.h"
#include "handover.h"
#include "timers.h"

#define ACCEPT_BATCH 64		/* accepts per wakeup, for fairness */
#define EVENTS_MAX 256
#define FD_MARGIN 64		/* descriptors beyond the clients' */
#define PAUSE_MS 100		/* out of descriptors: accept again after */

enum source { SRC_LISTENER, SRC_SIGNALS, SRC_CLIENT, SRC_DNS, SRC_REDIS,
	SRC_MTA };

#define DNS_SOCKETS_MAX 16	/* the resolver's: one a server, and TCP */

/* What a client is waiting for. */
enum state {
	ST_PROXY,		/* from a balancer: its PROXY header */
	ST_WAIT,		/* the greeting delay */
	ST_QUEUED,		/* passed; a child to run the program */
	ST_TARPIT,		/* held by the tar pit */
	ST_DIALOG,		/* greylisted: in sendwrap's own dialog */
	ST_RELAY,		/* passed: relayed to the MTA (--forward) */
	ST_DRAIN,		/* our last reply sent: reading until it is out */
	ST_DEAD			/* dropped: freed once this turn's events are done */
};

/* Every epoll source starts with its kind. */
struct listener {
	enum source kind;
	int fd;
	struct timer pause;		/* out of descriptors: until then */
};

struct client {
	enum source kind;		/* SRC_CLIENT */
	int fd;
	enum state state;
	struct timer timer;
	struct client *prev_all, *next_all;	/* every client held */
	struct client *next;		/* among the dead */
	struct fairq_item queued;	/* ST_QUEUED: in the queue */
	uint64_t start;			/* accepted; or the tar pit's first line */
	uint64_t next_line;		/* the tar pit's next line */
	uint64_t bytes;			/* read and thrown away */
	int waiting;			/* counted in the loop's waiting */
	struct peer peer;
	struct decision d;
	struct dnsl_lookup *dns;	/* the DNS lists being asked */
	struct loop *loop;		/* for the lists' news */
	struct dialog *dialog;		/* ST_DIALOG (start: its greeting) */
	struct store_ask ask;		/* Redis asked about it, if asking */
	int asking;
	struct relay *relay;		/* ST_RELAY */
	struct mta_side {		/* the MTA's socket, in the epoll set */
		enum source kind;	/* SRC_MTA */
		struct client *c;
	} mta;
	struct proxy_reader *proxy;	/* ST_PROXY */
	int counted;			/* in its address's --per-ip count */
	struct peer local;		/* what it reached, from its header */
};

struct loop {
	const struct config *cfg;
	struct core core;
	int ep;
	struct listener listeners[LISTEN_MAX];
	size_t nlisteners;
	struct listener signals;
	struct timers timers;
	struct ipcount *per_ip;		/* held per address; fairq's counts */
	struct fairq programs;		/* the programs, and their queue */
	unsigned long clients;
	unsigned long waiting;		/* clients in the delay: --stress */
	struct client *all;		/* every client held */
	struct client *dead;		/* dropped this turn */
	int stopping;
	struct decoy_config decoy;
	char line[DECOY_TARPIT_LINE_MAX];	/* the tar pit's */
	size_t line_len;
	struct dnsl_resolver *resolver;	/* with --dnsbl, --dnswl */
	struct listener dns[DNS_SOCKETS_MAX];
	struct listener redis;		/* the cache's Redis socket, watched */
	uint32_t redis_events;		/* ... for these */
	struct dialog_config dialog;	/* --greylist */
	struct relay_config relay;	/* --forward */
	char host[DIALOG_HOST_MAX];
};

/* ------------------------------------------------------------ clients */

static void
watch(struct loop *l, struct client *c, uint32_t events, int op)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof ev);
	ev.events = events;
	ev.data.ptr = c;
	/* A relay's end may have left the client out of the set. */
	if (epoll_ctl(l->ep, op, c->fd, &ev) != 0 && errno == ENOENT)
		epoll_ctl(l->ep, EPOLL_CTL_ADD, c->fd, &ev);
}

/* c's wait is over, however it ended: what Redis says comes too late. */
static void
unwait(struct loop *l, struct client *c)
{
	if (c->waiting)
		l->waiting--;
	c->waiting = 0;
	if (c->asking) {
		store_unask(&l->core.store, &c->ask);
		c->asking = 0;
		c->d.cache_failed |= STORE_REDIS;
	}
}

/* c's relayed session, if any, closed and freed: its place is free. */
static void
relay_end(struct loop *l, struct client *c)
{
	if (c->relay == NULL)
		return;
	relay_close(c->relay);
	free(c->relay);
	c->relay = NULL;
	fairq_gave_back(&l->programs, &c->peer);
}

/* Forget the client: its descriptor, its timer, its place.  It is
 * freed at the end of the turn: events for it may still be pending. */
static void
drop(struct loop *l, struct client *c)
{
	unwait(l, c);
	if (c->state == ST_QUEUED)
		fairq_remove(&l->programs, &c->queued);
	timers_cancel(&l->timers, &c->timer);
	dnsl_end(c->dns);
	c->dns = NULL;
	free(c->dialog);
	c->dialog = NULL;
	free(c->proxy);
	c->proxy = NULL;
	relay_end(l, c);
	/* Explicitly: a child holding the socket keeps it in epoll. */
	epoll_ctl(l->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (c->peer.known && c->counted)
		ipcount_remove(l->per_ip, &c->peer.addr, IPC_HELD);
	if (c->prev_all)
		c->prev_all->next_all = c->next_all;
	else
		l->all = c->next_all;
	if (c->next_all)
		c->next_all->prev_all = c->prev_all;
	l->clients--;
	c->state = ST_DEAD;
	c->next = l->dead;
	l->dead = c;
}

static void
bury(struct loop *l)
{
	while (l->dead) {
		struct client *c = l->dead;

		l->dead = c->next;
		free(c);
	}
}

/* A reply that fits the empty socket buffer goes out whole or not at all:
 * a client that cannot take a hundred bytes has stopped reading. */
static void
say(const struct client *c, const char *reply)
{
	if (reply)
		while (send(c->fd, reply, strlen(reply),
		    MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno == EINTR)
			;
}

/*
 * Say reply (if any), then close gently: shut the write side and read
 * what the client still sends for a while, so that a reset does not
 * destroy the reply in flight.
 */
static void
say_and_drain(struct loop *l, struct client *c, const char *reply)
{
	unwait(l, c);
	say(c, reply);
	shutdown(c->fd, SHUT_WR);
	if (c->state == ST_QUEUED)
		fairq_remove(&l->programs, &c->queued);
	c->state = ST_DRAIN;
	c->bytes = 0;
	watch(l, c, EPOLLIN, EPOLL_CTL_MOD);
	timers_set(&l->timers, &c->timer, mono_ms() + CONN_DRAIN_MS);
}

/* ------------------------------------------------------------ children */

/* Start the program (or the responder) for c now; 0, or -1 (logged). */
static int
start_child(struct loop *l, struct client *c)
{
	int fl = fcntl(c->fd, F_GETFL);
	pid_t pid;

	/* The program gets the socket blocking, as from tcpserver or inetd
	 * (the flag is the socket's: the parent's copy goes right after). */
	if (fl >= 0)
		fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK);
	if (l->cfg->mode == MODE_TEMPFAIL)
		pid = spawn_responder(&l->decoy, c->fd, &c->peer);
	else
		pid = spawn_program(l->cfg->program, c->fd, &c->peer,
		    c->local.known ? &c->local : NULL);
	if (pid < 0) {
		log_error("ip=%s port=%s cannot run %s: %s", c->peer.ip,
		    peer_port(&c->peer), l->cfg->mode == MODE_TEMPFAIL ?
		    "the responder" : l->cfg->program[0], strerror(errno));
		return -1;
	}
	fairq_started(&l->programs, pid, &c->peer);
	return 0;
}

/* Hold c until a program is free for it: 0, or -1 (its address has its
 * share of the queue: it has been told 421). */
static int
queue(struct loop *l, struct client *c)
{
	c->queued.peer = &c->peer;
	if (fairq_push(&l->programs, &c->queued) != 0) {
		core_limit(&l->core, &c->peer, "per-ip-children");
		say_and_drain(l, c, REPLY_PER_IP);
		return -1;
	}
	c->state = ST_QUEUED;
	/* Its input is the program's: watch only for a hang-up. */
	watch(l, c, EPOLLRDHUP, EPOLL_CTL_MOD);
	timers_set(&l->timers, &c->timer, mono_ms() + LISTENER_QUEUE_MS);
	return 0;
}

static void relay_begin(struct loop *l, struct client *c);

/* Give c to a child (or to the MTA's daemon), or queue it until a place
 * is free for it. */
static void
hand_over(struct loop *l, struct client *c)
{
	unwait(l, c);
	if (!fairq_may_run(&l->programs, &c->peer)) {
		queue(l, c);
		return;
	}
	if (l->cfg->forward) {
		relay_begin(l, c);
		return;
	}
	/* A program that cannot run has answered 421 from the child. */
	if (start_child(l, c) != 0 && l->cfg->mode == MODE_TEMPFAIL) {
		say_and_drain(l, c, REPLY_UNAVAILABLE);
		return;
	}
	drop(l, c);
}

static void serve_queue(struct loop *l);

/* Children ended: their places go to the queue, fairly. */
static void
reap(struct loop *l)
{
	struct peer served;
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		fairq_ended(&l->programs, pid, &served);
	serve_queue(l);
}

/* Places freed: they go to the queue, fairly. */
static void
serve_queue(struct loop *l)
{
	struct fairq_item *it;

	while ((it = fairq_next(&l->programs)) != NULL) {
		struct client *c = (struct client *)((char *)it -
		    offsetof(struct client, queued));

		c->state = ST_WAIT;
		hand_over(l, c);
	}
}

/* ------------------------------------------------------------ relaying */

/* The relayed session is over: its line, and 421 if the MTA never
 * spoke; its place goes to the queue. */
static void
relay_over(struct loop *l, struct client *c)
{
	struct relay *r = c->relay;
	const char *reply = relay_reply(r);

	core_forwarded(&l->core, &c->peer, r);
	relay_end(l, c);
	if (reply)
		say_and_drain(l, c, reply);
	else
		drop(l, c);
	serve_queue(l);
}

/* After each call into the engine: its descriptors and its deadline. */
static void
relay_step(struct loop *l, struct client *c, enum relay_status s)
{
	if (s == RELAY_OVER) {
		relay_over(l, c);
		return;
	}
	relay_watch(c->relay, l->ep, c, &c->mta);
	timers_set(&l->timers, &c->timer, relay_deadline(c->relay));
}

/* The PROXY header that names c to the MTA (--forward-proxy): its
 * length in buf, 0 for none.  The address c reached is its balancer's
 * header's, or the socket's own. */
static size_t
forward_header(const struct loop *l, const struct client *c,
    unsigned char *buf, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	struct peer local = c->local;

	if (l->cfg->forward_proxy == FORWARD_PROXY_NONE)
		return 0;
	if (!local.known && getsockname(c->fd, (struct sockaddr *)&ss,
	    &len) == 0)
		peer_from_sockaddr(&local, (struct sockaddr *)&ss);
	return proxy_header_for(l->cfg->forward_proxy == FORWARD_PROXY_V1 ?
	    1 : 2, &c->peer, &local, buf, size);
}

/* c passed: to the MTA's daemon, in the loop (relay.h). */
static void
relay_begin(struct loop *l, struct client *c)
{
	unsigned char first[RELAY_FIRST_MAX];
	size_t n = forward_header(l, c, first, sizeof first);

	if ((c->relay = malloc(sizeof *c->relay)) == NULL) {
		log_error("ip=%s port=%s cannot forward: out of memory",
		    c->peer.ip, peer_port(&c->peer));
		say_and_drain(l, c, REPLY_UNAVAILABLE);
		return;
	}
	fairq_took(&l->programs, &c->peer);
	c->state = ST_RELAY;
	c->mta.kind = SRC_MTA;
	c->mta.c = c;
	relay_step(l, c, relay_start(c->relay, &l->relay, c->fd,
	    n ? first : NULL, n));
}

/* An event on a relayed client's socket, or on its MTA's. */
static void
on_relay(struct loop *l, struct client *c, enum relay_side side,
    uint32_t events)
{
	if (c->state == ST_RELAY)
		relay_step(l, c, relay_ready(c->relay, side, events));
}

/* ------------------------------------------------------------ verdicts */

/* c talked during the wait: the early verdict, then -x. */
static void
early(struct loop *l, struct client *c, const char *input, size_t copied,
    size_t waiting)
{
	struct early e = { mono_ms() - c->start, input, copied, waiting };

	core_early(&l->core, &c->peer, &c->d, &e);
	if (l->cfg->early == EARLY_PASS && l->cfg->mode == MODE_WRAP)
		hand_over(l, c);
	else if (l->cfg->early == EARLY_DROP)
		drop(l, c);
	else
		say_and_drain(l, c, core_early_reply(&l->core));
}

/* ------------------------------------------------------------ greylisting */

/* The dialog is over: its verdict, and its last word if it has one. */
static void
dialog_over(struct loop *l, struct client *c)
{
	const struct dialog *dg = c->dialog;
	const char *reply = core_grey_end(&l->core, &c->peer, &c->d, dg,
	    mono_ms() - c->start);

	if ((dialog_failed(dg) && reply == NULL) || dg->end == END_CLOSED ||
	    dg->end == END_RESET)
		drop(l, c);
	else
		say_and_drain(l, c, reply);
}

/* Greet c with sendwrap's own dialog (dialog.h), bounded in time. */
static void
dialog_begin(struct loop *l, struct client *c)
{
	unwait(l, c);
	if ((c->dialog = malloc(sizeof *c->dialog)) == NULL) {
		log_error("ip=%s port=%s greylisting: out of memory",
		    c->peer.ip, peer_port(&c->peer));
		say_and_drain(l, c, REPLY_UNAVAILABLE);
		return;
	}
	dialog_init(c->dialog, &l->dialog);
	c->state = ST_DIALOG;
	c->start = mono_ms();
	if (!dialog_start(c->dialog, c->fd)) {
		dialog_over(l, c);
		return;
	}
	timers_set(&l->timers, &c->timer, c->start + DIALOG_SESSION_MS);
}

static void
dialog_input(struct loop *l, struct client *c)
{
	if (!dialog_pump(c->dialog, c->fd, c->fd))
		dialog_over(l, c);
}

static void
dialog_timeout(struct loop *l, struct client *c)
{
	char reply[DIALOG_REPLY_MAX];
	size_t len = dialog_time_up(c->dialog, reply, sizeof reply);

	send(c->fd, reply, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	dialog_over(l, c);
}

/* The delay is over and c kept quiet. */
static void
passed(struct loop *l, struct client *c)
{
	uint64_t waited = mono_ms() - c->start;

	/* A cache lookup still out is a failed one from here on. */
	unwait(l, c);
	if (l->cfg->mode == MODE_WRAP &&
	    core_grey_start(&l->core, &c->peer, &c->d)) {
		dialog_begin(l, c);
		return;
	}
	if (l->cfg->mode != MODE_TEMPFAIL)
		core_pass(&l->core, &c->peer, &c->d, waited);
	hand_over(l, c);
}

/* ------------------------------------------------------------ tar pit */

static void
tarpit_end(struct loop *l, struct client *c, enum tarpit_end end, int err)
{
	struct tarpit_result r;

	memset(&r, 0, sizeof r);
	r.held_ms = mono_ms() - c->start;
	r.bytes = c->bytes;
	r.end = end;
	r.err = err;
	decoy_log_tarpit(&c->peer, &r);
	if (end == TARPIT_MAX)
		say_and_drain(l, c, NULL);
	else
		drop(l, c);
}

/* The tar pit's timer: the next line, or the end of the hold. */
static void
tarpit_tick(struct loop *l, struct client *c)
{
	uint64_t now = mono_ms(), stop = c->start + l->decoy.tarpit_max_ms;

	if (now >= stop) {
		tarpit_end(l, c, TARPIT_MAX, 0);
		return;
	}
	if (now >= c->next_line) {
		/* A client that stopped reading gets no more lines. */
		if (conn_unsent(c->fd) <= DECOY_UNSENT_MAX &&
		    send(c->fd, l->line, l->line_len,
		    MSG_NOSIGNAL | MSG_DONTWAIT) < 0 &&
		    errno != EAGAIN && errno != EINTR) {
			tarpit_end(l, c, errno == EPIPE || errno == ECONNRESET ?
			    TARPIT_RESET : TARPIT_ERROR, errno);
			return;
		}
		c->next_line += l->decoy.interval_ms;
		if (c->next_line <= now)
			c->next_line = now + l->decoy.interval_ms;
	}
	timers_set(&l->timers, &c->timer,
	    c->next_line < stop ? c->next_line : stop);
}

/* Read what the client sent and forget it: 1 while there is more to come. */
static int
discard(struct client *c, int *err)
{
	char sink[4096];
	ssize_t got = recv(c->fd, sink, sizeof sink, MSG_DONTWAIT);

	*err = got < 0 ? errno : 0;
	if (got > 0) {
		c->bytes += (uint64_t)got;
		return 1;
	}
	return got < 0 && (errno == EAGAIN || errno == EINTR);
}

/* ------------------------------------------------------------ Redis */

/* Keep the loop watching the Redis connection's socket as it changes. */
static void
watch_redis(struct loop *l)
{
	struct redisloop *rl = l->core.store.loop;
	int fd = rl ? redisloop_fd(rl) : -1;
	short want = rl ? redisloop_events(rl) : 0;
	struct epoll_event ev;

	if (fd == l->redis.fd && (uint32_t)want == l->redis_events)
		return;
	if (l->redis.fd >= 0 && fd != l->redis.fd)
		epoll_ctl(l->ep, EPOLL_CTL_DEL, l->redis.fd, NULL);
	memset(&ev, 0, sizeof ev);
	ev.events = (want & POLLIN ? EPOLLIN : 0) |
	    (want & POLLOUT ? EPOLLOUT : 0);
	ev.data.ptr = &l->redis;
	if (fd >= 0 && epoll_ctl(l->ep, fd == l->redis.fd ? EPOLL_CTL_MOD :
	    EPOLL_CTL_ADD, fd, &ev) != 0)
		fd = -1;	/* not watched: its deadline ends it */
	l->redis.fd = fd;
	l->redis_events = fd >= 0 ? (uint32_t)want : 0;
}

static void
redis_down(void *ctx, const char *why)
{
	(void)ctx;
	log_error("cache %s", why);
}

/* What Redis said of a waiting client: it may end the wait. */
static void
on_cache_news(void *ctx, const struct cache_entry *e, const int *found,
    size_t n, int failed)
{
	struct client *c = ctx;
	struct loop *l = c->loop;
	const char *reply;

	c->asking = 0;
	core_redis_answer(&l->core, &c->peer, &c->d, e, found, n, failed,
	    cache_now_ms());
	if (c->d.step == STEP_CACHED) {
		core_cached(&l->core, &c->peer, &c->d);
		hand_over(l, c);
	} else if (c->d.step == STEP_KNOWN_EARLY) {
		if ((reply = core_known_early(&l->core, &c->peer, &c->d)) ==
		    NULL)
			hand_over(l, c);	/* -x pass */
		else
			say_and_drain(l, c, reply);
	}
}

/* Ask Redis about a client that is to wait, if it could change that. */
static void
ask_cache(struct loop *l, struct client *c)
{
	c->ask.n = core_redis_keys(&l->core, &c->peer, &c->d, c->ask.keys);
	if (c->ask.n == 0)
		return;
	c->loop = l;
	c->ask.now = cache_now_ms();
	c->ask.fn = on_cache_news;
	c->ask.ctx = c;
	if (store_ask(&l->core.store, &c->ask) == 0)
		c->asking = 1;
	else
		c->d.cache_failed |= STORE_REDIS;	/* down for now */
}

/* ------------------------------------------------------------ DNS lists */

/* The resolver opened, changed or closed a socket: watch it. */
static void
dns_socket(void *ctx, int fd, int want_read, int want_write)
{
	struct loop *l = ctx;
	struct listener *s = NULL;
	struct epoll_event ev;
	size_t i;

	for (i = 0; i < DNS_SOCKETS_MAX; i++)
		if (l->dns[i].kind == SRC_DNS && l->dns[i].fd == fd)
			s = &l->dns[i];
	if (!want_read && !want_write) {
		if (s) {
			epoll_ctl(l->ep, EPOLL_CTL_DEL, fd, NULL);
			s->kind = SRC_LISTENER;	/* free again */
		}
		return;
	}
	for (i = 0; s == NULL && i < DNS_SOCKETS_MAX; i++)
		if (l->dns[i].kind != SRC_DNS)
			s = &l->dns[i];
	if (s == NULL)
		return;		/* its queries will time out: not listed */
	memset(&ev, 0, sizeof ev);
	ev.events = (want_read ? EPOLLIN : 0) | (want_write ? EPOLLOUT : 0);
	ev.data.ptr = s;
	if (epoll_ctl(l->ep, EPOLL_CTL_MOD, fd, &ev) != 0)
		epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev);
	s->kind = SRC_DNS;
	s->fd = fd;
}

static void
on_dns(struct loop *l, struct listener *s, uint32_t events)
{
	dnsl_process_fd(l->resolver, events & (EPOLLIN | EPOLLERR | EPOLLHUP) ?
	    s->fd : -1, events & EPOLLOUT ? s->fd : -1);
}

/* What the lists' answers so far mean for a client still waiting. */
static void
judge_lists(struct loop *l, struct client *c)
{
	char buf[SMTP_LINE_MAX];
	const char *reply;

	if (c->state != ST_WAIT)
		return;
	switch (core_dns_judge(&l->core, &c->d)) {
	case DNS_BLOCK:
		reply = core_dnsbl(&l->core, &c->peer, &c->d,
		    mono_ms() - c->start, buf, sizeof buf);
		if (reply == NULL)
			drop(l, c);
		else
			say_and_drain(l, c, reply);
		return;
	case DNS_ALLOW:
		core_dnswl(&l->core, &c->peer, &c->d);
		hand_over(l, c);
		return;
	default:
		return;
	}
}

static void
on_lists_news(void *ctx)
{
	struct client *c = ctx;

	judge_lists(c->loop, c);
}

/* Ask the lists about a client that is to wait, if they are to be asked. */
static void
ask_lists(struct loop *l, struct client *c)
{
	if (l->resolver == NULL || !c->peer.known ||
	    !core_wants_dns(&l->core, &c->d))
		return;
	c->loop = l;
	c->dns = dnsl_start(l->resolver, &c->peer.addr, on_lists_news, c);
	c->d.dns = c->dns;
	judge_lists(l, c);	/* answers that came at once */
}

/* ------------------------------------------------------------ events */

/* A balancer's header: admission, below. */
static void header_input(struct loop *l, struct client *c);
static void header_timeout(struct loop *l, struct client *c);

static void
on_input(struct loop *l, struct client *c)
{
	char input[CONN_PEEK_MAX];
	size_t copied, waiting;
	enum input_kind k;
	int err;

	switch (c->state) {
	case ST_PROXY:
		header_input(l, c);
		return;
	case ST_WAIT:
		k = peek_input(c->fd, input, sizeof input, &copied, &waiting);
		if (k == INPUT_DATA)
			early(l, c, input, copied, waiting);
		else if (k == INPUT_EOF || k == INPUT_RESET) {
			core_hangup(&l->core, &c->peer, &c->d,
			    mono_ms() - c->start, k == INPUT_RESET);
			drop(l, c);
		} else {
			log_error("ip=%s port=%s cannot read from the client: "
			    "%s", c->peer.ip, peer_port(&c->peer),
			    strerror(errno));
			drop(l, c);
		}
		return;
	case ST_TARPIT:
		if (!discard(c, &err))
			tarpit_end(l, c, err == 0 ? TARPIT_CLOSED :
			    err == ECONNRESET ? TARPIT_RESET : TARPIT_ERROR, err);
		return;
	case ST_DIALOG:
		dialog_input(l, c);
		return;
	case ST_DRAIN:
		if (!discard(c, &err) || c->bytes > CONN_DRAIN_MAX)
			drop(l, c);
		return;
	case ST_QUEUED:
		drop(l, c);	/* it hung up before its turn */
		return;
	case ST_RELAY:		/* on_relay() has them */
	case ST_DEAD:
		return;
	}
}

static void
on_timer(struct loop *l, struct client *c)
{
	switch (c->state) {
	case ST_PROXY:
		header_timeout(l, c);
		return;
	case ST_WAIT:
		passed(l, c);
		return;
	case ST_QUEUED:
		core_limit(&l->core, &c->peer, "max-children");
		say_and_drain(l, c, REPLY_TOO_MANY);
		return;
	case ST_TARPIT:
		tarpit_tick(l, c);
		return;
	case ST_DIALOG:
		dialog_timeout(l, c);
		return;
	case ST_RELAY:
		relay_step(l, c, relay_timeout(c->relay));
		return;
	case ST_DRAIN:
		drop(l, c);
		return;
	case ST_DEAD:
		return;
	}
}

/* What to do with a client just accepted, once it is decided. */
static void
begin(struct loop *l, struct client *c)
{
	const struct config *cfg = l->cfg;
	uint64_t now = mono_ms();

	if (cfg->mode != MODE_WRAP && core_own_host(&c->d)) {
		core_allow(&l->core, &c->peer, &c->d);
		say_and_drain(l, c, REPLY_OWN_HOST);
	} else if (cfg->mode == MODE_TARPIT) {
		c->state = ST_TARPIT;
		c->next_line = now;
		tarpit_tick(l, c);
	} else if (cfg->mode == MODE_WRAP && c->d.step == STEP_ALLOW) {
		core_allow(&l->core, &c->peer, &c->d);
		hand_over(l, c);
	} else if (c->d.step == STEP_CACHED) {
		core_cached(&l->core, &c->peer, &c->d);
		hand_over(l, c);
	} else if (c->d.step == STEP_KNOWN_EARLY) {
		const char *reply = core_known_early(&l->core, &c->peer, &c->d);

		if (reply == NULL)
			hand_over(l, c);	/* -x pass */
		else
			say_and_drain(l, c, reply);
	} else {
		/* The wait (-d 0 in --tempfail: none, and the responder). */
		if (cfg->banner) {
			char line[GREETING_TEXT_MAX + 8];

			snprintf(line, sizeof line, "220-%s\r\n", cfg->banner);
			say(c, line);
		}
		c->waiting = 1;
		l->waiting++;
		timers_set(&l->timers, &c->timer, now + c->d.delay_ms);
		ask_lists(l, c);
		ask_cache(l, c);
	}
}

/* Turn a client away at once for a limit. */
static void
refuse(struct loop *l, int fd, const struct peer *p, const char *limit,
    const char *reply)
{
	core_limit(&l->core, p, limit);
	send(fd, reply, strlen(reply), MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

/*
 * Would one more connection from p's address be over --per-ip?  Every
 * connection counts, in whatever state: held here, or served by a
 * program.  Counted in if not.
 */
static int
over_per_ip(struct loop *l, const struct peer *p)
{
	unsigned held = ipcount_get(l->per_ip, &p->addr, IPC_HELD) +
	    ipcount_get(l->per_ip, &p->addr, IPC_RUNNING);

	return held >= l->cfg->per_ip ||
	    ipcount_add(l->per_ip, &p->addr, IPC_HELD) == 0;
}

/* Hold the client of fd: c, or NULL (told why, and closed). */
static struct client *
hold(struct loop *l, int fd, const struct peer *p)
{
	struct client *c;

	if ((c = calloc(1, sizeof *c)) == NULL) {
		refuse(l, fd, p, "memory", REPLY_TOO_MANY);
		return NULL;
	}
	c->kind = SRC_CLIENT;
	c->fd = fd;
	c->state = ST_WAIT;
	c->peer = *p;
	c->counted = p->known && !core_from_balancer(l->cfg, p);
	c->start = mono_ms();
	c->next_all = l->all;
	if (l->all)
		l->all->prev_all = c;
	l->all = c;
	l->clients++;
	watch(l, c, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_ADD);
	return c;
}

/* Decide for c, whose address is known now, and begin. */
static void
judge(struct loop *l, struct client *c)
{
	static const struct marks none = { NULL, 0 };

	core_decide(&l->core, &c->peer, &none, &c->d);
	core_stress(&l->core, &c->d, l->waiting);
	begin(l, c);
}

/* No header from a balancer (bad, or not in time): 421, and why. */
static void
header_failed(struct loop *l, struct client *c, const char *why)
{
	log_error("ip=%s port=%s no valid PROXY header: %s", c->peer.ip,
	    peer_port(&c->peer), why);
	say_and_drain(l, c, REPLY_UNAVAILABLE);
}

/* The balancer's header, as much of it as has come: once it is whole,
 * the client it names is judged (the wait starts now), or the
 * balancer's own health check greeted. */
static void
header_input(struct loop *l, struct client *c)
{
	struct proxy_header h;
	const char *why = NULL;

	switch (proxy_read(c->proxy, c->fd, &h, &why)) {
	case PROXY_NEED_MORE:
		return;
	case PROXY_BAD:
		header_failed(l, c, why);
		return;
	case PROXY_OK:
		break;
	}
	free(c->proxy);
	c->proxy = NULL;
	timers_cancel(&l->timers, &c->timer);
	c->state = ST_WAIT;
	c->start = mono_ms();
	if (h.command == PROXY_CMD_LOCAL) {
		core_decide_local(&c->d);
		begin(l, c);
		return;
	}
	if (h.known) {
		peer_from_addr(&c->peer, &h.src, h.src_port);
		peer_from_addr(&c->local, &h.dst, h.dst_port);
		if (over_per_ip(l, &c->peer)) {
			core_limit(&l->core, &c->peer, "per-ip");
			say_and_drain(l, c, REPLY_PER_IP);
			return;
		}
		c->counted = 1;
	}
	judge(l, c);
}

static void
header_timeout(struct loop *l, struct client *c)
{
	char late[64];

	header_failed(l, c, proxy_why_late(c->proxy, l->cfg->proxy.timeout_ms,
	    late, sizeof late));
}

/* From a balancer: its header first, within --proxy-timeout. */
static void
await_header(struct loop *l, struct client *c)
{
	if ((c->proxy = malloc(sizeof *c->proxy)) == NULL) {
		log_error("ip=%s port=%s no valid PROXY header: out of memory",
		    c->peer.ip, peer_port(&c->peer));
		say_and_drain(l, c, REPLY_UNAVAILABLE);
		return;
	}
	proxy_reader_init(c->proxy);
	c->state = ST_PROXY;
	timers_set(&l->timers, &c->timer, c->start + l->cfg->proxy.timeout_ms);
}

static void
admit(struct loop *l, int fd, const struct sockaddr *sa)
{
	struct client *c;
	struct peer p;
	int balancer;

	peer_from_sockaddr(&p, sa);
	if (l->clients >= l->cfg->max_clients) {
		refuse(l, fd, &p, "max-clients", REPLY_TOO_MANY);
		return;
	}
	/* A balancer's clients count by their own addresses, once known. */
	balancer = core_from_balancer(l->cfg, &p);
	if (p.known && !balancer && over_per_ip(l, &p)) {
		refuse(l, fd, &p, "per-ip", REPLY_PER_IP);
		return;
	}
	if ((c = hold(l, fd, &p)) == NULL) {
		if (p.known && !balancer)
			ipcount_remove(l->per_ip, &p.addr, IPC_HELD);
		return;
	}
	if (balancer)
		await_header(l, c);
	else
		judge(l, c);
}

static void
on_accept(struct loop *l, struct listener *s)
{
	int i;

	for (i = 0; i < ACCEPT_BATCH && !l->stopping; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;
		int fd = accept4(s->fd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			admit(l, fd, (struct sockaddr *)&ss);
			continue;
		}
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			/* Leave them in the queue a moment, not in a spin. */
			log_error("cannot accept: %s", strerror(errno));
			epoll_ctl(l->ep, EPOLL_CTL_DEL, s->fd, NULL);
			timers_set(&l->timers, &s->pause, mono_ms() + PAUSE_MS);
		}
		return;
	}
}

/* ------------------------------------------------------------ stopping */

static void
stop(struct loop *l)
{
	struct client *c, *next;
	size_t i;

	l->stopping = 1;
	for (i = 0; i < l->nlisteners; i++) {
		timers_cancel(&l->timers, &l->listeners[i].pause);
		close(l->listeners[i].fd);
	}
	for (c = l->all; c; c = next) {
		next = c->next_all;
		if (c->state == ST_RELAY)
			continue;	/* a session: it finishes, as a child */
		if (c->state != ST_DRAIN) {
			core_limit(&l->core, &c->peer, "shutdown");
			say(c, REPLY_SHUTDOWN);
		}
		drop(l, c);
	}
}

/* SIGHUP: the allowlists and greytraps read again. */
static void
reload(struct loop *l)
{
	if (core_reload(&l->core) == 0)
		log_info("reload allowlists=%zu", l->cfg->nsources);
	else
		log_error("allowlists not reloaded: the old ones stay in use");
	/* Dialogs under way see the greytraps read now. */
	l->dialog.traps = l->core.traps;
}

static int
on_signals(struct loop *l)
{
	struct signalfd_siginfo si;

	while (read(l->signals.fd, &si, sizeof si) == sizeof si) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			reap(l);
			break;
		case SIGHUP:
			reload(l);
			break;
		default:
			if (l->stopping)
				return 1;
			log_info("stopping clients=%lu children=%lu",
			    l->clients, l->programs.running);
			stop(l);
		}
	}
	return 0;
}

/* ------------------------------------------------------------ the loop */

static void
expire(struct loop *l)
{
	struct timer *t;
	uint64_t now = mono_ms();
	size_t i;

	while ((t = timers_first(&l->timers)) != NULL && t->deadline <= now) {
		timers_cancel(&l->timers, t);
		for (i = 0; i < l->nlisteners; i++)
			if (t == &l->listeners[i].pause)
				break;
		if (i < l->nlisteners) {
			struct epoll_event ev = { EPOLLIN,
			    { .ptr = &l->listeners[i] } };

			epoll_ctl(l->ep, EPOLL_CTL_ADD, l->listeners[i].fd,
			    &ev);
			continue;
		}
		on_timer(l, (struct client *)((char *)t -
		    offsetof(struct client, timer)));
	}
}

static int
next_timeout(const struct loop *l)
{
	struct timer *t = timers_first(&l->timers);
	uint64_t now = mono_ms();
	int64_t ms = -1;

	if (t)
		ms = t->deadline <= now ? 0 : t->deadline - now > 60000 ?
		    60000 : (int64_t)(t->deadline - now);
	if (l->resolver) {
		int64_t dns = dnsl_timeout_ms(l->resolver);

		if (dns >= 0 && (ms < 0 || dns < ms))
			ms = dns;
	}
	if (l->core.store.loop) {
		uint64_t due = redisloop_deadline(l->core.store.loop);
		int64_t r = due == UINT64_MAX ? -1 : due <= now ? 0 :
		    (int64_t)(due - now);

		if (r >= 0 && (ms < 0 || r < ms))
			ms = r;
	}
	return (int)ms;
}

static int
run(struct loop *l)
{
	struct epoll_event ev[EVENTS_MAX];

	while (!l->stopping || l->programs.running > 0) {
		int n, i;

		watch_redis(l);
		n = epoll_wait(l->ep, ev, EVENTS_MAX, next_timeout(l));

		if (n < 0 && errno != EINTR) {
			log_error("epoll_wait: %s", strerror(errno));
			return EXIT_TEMP;
		}
		for (i = 0; i < n; i++) {
			enum source *kind = ev[i].data.ptr;

			if (*kind == SRC_LISTENER)
				on_accept(l, ev[i].data.ptr);
			else if (*kind == SRC_SIGNALS) {
				if (on_signals(l))
					return 0;
			} else if (*kind == SRC_DNS)
				on_dns(l, ev[i].data.ptr, ev[i].events);
			else if (*kind == SRC_MTA)
				on_relay(l, ((struct mta_side *)ev[i].data.ptr)->c,
				    RELAY_MTA, ev[i].events);
			else if (*kind == SRC_CLIENT &&
			    ((struct client *)ev[i].data.ptr)->state == ST_RELAY)
				on_relay(l, ev[i].data.ptr, RELAY_CLIENT,
				    ev[i].events);
			else if (*kind == SRC_REDIS)
				redisloop_io(l->core.store.loop,
				    (ev[i].events & (EPOLLIN | EPOLLERR |
				    EPOLLHUP)) != 0, (ev[i].events &
				    (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0);
			else
				on_input(l, ev[i].data.ptr);
		}
		if (l->resolver)	/* its timeouts */
			dnsl_process_fd(l->resolver, -1, -1);
		if (l->core.store.loop)
			redisloop_expire(l->core.store.loop);
		expire(l);
		bury(l);
	}
	return 0;
}

/* ------------------------------------------------------------ setting up */

static int
open_sockets(struct loop *l, char *err, size_t errsize)
{
	int fds[LISTEN_MAX];
	size_t i;

	for (i = 0; i < l->cfg->nlisten; i++)
		if (listen_open(l->cfg->listen[i], fds, &l->nlisteners,
		    LISTEN_MAX, err, errsize) != 0)
			return -1;
	for (i = 0; i < l->nlisteners; i++) {
		l->listeners[i].kind = SRC_LISTENER;
		l->listeners[i].fd = fds[i];
	}
	return 0;
}

static int
ids(const struct config *cfg, long *uid, long *gid)
{
	const char *u = getenv("UID"), *g = getenv("GID");

	*uid = cfg->uid;
	*gid = cfg->gid;
	if (!cfg->envuidgid)
		return 0;
	if (u == NULL || g == NULL || *u < '0' || *u > '9' || *g < '0' ||
	    *g > '9')
		return -1;
	*uid = atol(u);
	*gid = atol(g);
	return 0;
}

/* --per-ip-children, or its default. */
static unsigned
share(const struct config *cfg)
{
	return cfg->per_ip_children ? cfg->per_ip_children :
	    fairq_default_share(cfg->max_children);
}

static int
set_up(struct loop *l, long uid, long gid, char *err, size_t errsize)
{
	sigset_t sigs;
	size_t i;

	if (open_sockets(l, err, errsize) != 0)
		return -1;
	/* Before the limit is raised: children get the one we were given. */
	if (spawn_init() != 0) {
		snprintf(err, errsize, "out of memory");
		return -1;
	}
	/* A relayed client (--forward, at most --max-children) holds five
	 * more: the MTA's socket and two pipes. */
	if (raise_fd_limit(l->cfg->max_clients + FD_MARGIN +
	    (l->cfg->forward ? 5 * l->cfg->max_children : 0), err,
	    errsize) != 0)
		return -1;
	if (drop_privileges(uid, gid, err, errsize) != 0)
		return -1;
	if ((l->per_ip = ipcount_new()) == NULL ||
	    fairq_init(&l->programs, l->cfg->max_children, share(l->cfg),
	    l->per_ip) != 0) {
		snprintf(err, errsize, "out of memory");
		return -1;
	}
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGCHLD);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	l->signals.kind = SRC_SIGNALS;
	l->signals.fd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	if (l->signals.fd < 0 || l->ep < 0) {
		snprintf(err, errsize, "cannot set up the loop: %s",
		    strerror(errno));
		return -1;
	}
	for (i = 0; i <= l->nlisteners; i++) {
		struct listener *s = i < l->nlisteners ? &l->listeners[i] :
		    &l->signals;
		struct epoll_event ev = { EPOLLIN, { .ptr = s } };

		epoll_ctl(l->ep, EPOLL_CTL_ADD, s->fd, &ev);
	}
	return 0;
}

static int
set_up_lists(struct loop *l, char *err, size_t errsize)
{
	const char *why;

	l->core.dns.on_socket = dns_socket;
	l->core.dns.socket_ctx = l;
	if ((l->resolver = dnsl_resolver_new(&l->core.dns, &why)) == NULL) {
		snprintf(err, errsize, "DNS lists: %s", why);
		return -1;
	}
	return 0;
}

/* --forward's target and its limits. */
static void
set_up_relay(struct loop *l)
{
	l->relay.target = l->cfg->forward_target;
	l->relay.connect_ms = l->cfg->forward_timeout_ms;
	l->relay.idle_ms = l->cfg->forward_idle_ms;
	l->relay.pipe_size = RELAY_PIPE_SIZE;
}

/* One line to say where we listen and with which limits. */
static void
log_listening(const struct loop *l)
{
	char names[LISTEN_MAX * 56] = "";
	size_t i, n = 0;

	for (i = 0; i < l->nlisteners && n + 56 < sizeof names; i++) {
		if (i > 0)
			names[n++] = ',';
		n += listen_name(l->listeners[i].fd, names + n,
		    sizeof names - n);
	}
	log_info("listening on=%s clients=%u children=%u perip=%u "
	    "share=%u", names, l->cfg->max_clients,
	    l->cfg->max_children, l->cfg->per_ip, share(l->cfg));
}

int
listener_main(const struct config *cfg)
{
	static struct loop l;	/* static: its arrays are large */
	char err[320];
	long uid, gid;

	l.cfg = cfg;
	/* One process for every client: a stuck log reader must not stop it. */
	log_never_wait();
	l.decoy = cfg->decoy;
	l.decoy.mode = cfg->mode;
	l.decoy.text = cfg->banner;
	l.decoy.host = cfg->hostname;
	if (cfg->forward)
		set_up_relay(&l);
	/* -U's ids are read here: a usage error, as -u without -g. */
	if (ids(cfg, &uid, &gid) != 0) {
		log_error("usage: -U needs $UID and $GID, as envuidgid sets "
		    "them");
		return EXIT_PERM;
	}
	if (set_up(&l, uid, gid, err, sizeof err) != 0) {
		log_error("listener: %s", err);
		return EXIT_TEMP;
	}
	/* Loaded after giving up root, as the reloads on SIGHUP will be. */
	core_init(&l.core, cfg, 1);
	core_dialog_config(&l.core, &l.dialog, l.host, sizeof l.host);
	/* Redis through the loop, never waited for. */
	l.redis.kind = SRC_REDIS;
	l.redis.fd = -1;
	if (store_go_async(&l.core.store, redis_down, &l, err, sizeof err) !=
	    0)
		log_error("listener: cache %s", err);
	/* Without a resolver the clients wait as without lists. */
	if (cfg->dns.n > 0 && set_up_lists(&l, err, sizeof err) != 0)
		log_error("listener: %s; the lists are not asked", err);
	if (cfg->mode == MODE_TARPIT)
		l.line_len = decoy_tarpit_line(&l.decoy, l.line, sizeof l.line);
	log_listening(&l);
	return run(&l);
}
