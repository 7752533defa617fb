/* relay.c - a client relayed to the MTA with splice(2); see relay.h. */
#define _GNU_SOURCE		/* splice, pipe2, F_SETPIPE_SZ */
#include "relay.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/un.h>
#include <unistd.h>

#include "conn.h"
#include "listen.h"
#include "smtp.h"

#define CAN_READ 1		/* relay.ready: until a read says EAGAIN */
#define CAN_WRITE 2		/* until a write says EAGAIN */
#define SPLICE_FLAGS (SPLICE_F_NONBLOCK | SPLICE_F_MOVE)
#define SPLICE_ASK (1 << 20)	/* a read takes what the empty pipe holds */
#define BURST_BYTES (256 * 1024)	/* a direction's per call: fairness */
#define WATCH_UNKNOWN 0xffffffffu	/* the client's, before relay_watch() */

static const char bad_target[] = "not ADDR:PORT (a port 1 to 65535) nor "
    "unix:/PATH (e.g. 127.0.0.1:10025, [::1]:10025, unix:/run/mta.sock)";

static enum relay_side
other(enum relay_side side)
{
	return side == RELAY_CLIENT ? RELAY_MTA : RELAY_CLIENT;
}

/* ------------------------------------------------------------ target */

static int
parse_unix(const char *path, struct relay_target *t, const char **why)
{
	struct sockaddr_un *un = (struct sockaddr_un *)&t->addr;
	size_t n = strlen(path);

	*why = "unix:/PATH needs an absolute path";
	if (path[0] != '/')
		return -1;
	*why = "unix:/PATH: the path is too long for a socket";
	if (n >= sizeof un->sun_path)
		return -1;
	un->sun_family = AF_UNIX;
	memcpy(un->sun_path, path, n + 1);
	t->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return 0;
}

int
relay_target_parse(const char *s, struct relay_target *t, const char **why)
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&t->addr;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&t->addr;

	memset(t, 0, sizeof *t);
	if (strncmp(s, RELAY_UNIX, sizeof RELAY_UNIX - 1) == 0)
		return parse_unix(s + sizeof RELAY_UNIX - 1, t, why);
	if (listen_parse(s, &t->addr, &t->len, why) != 0) {
		*why = bad_target;
		return -1;
	}
	/* Port 0 is "any free one" to bind, nothing to connect to. */
	if ((t->addr.ss_family == AF_INET ? s4->sin_port : s6->sin6_port) == 0) {
		*why = bad_target;
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ pipes */

/*
 * Empty pipes kept for the next session while other sessions run: in a
 * burst of short sessions, making two pipes a session and closing them
 * is work the next one can be spared (BENCHMARKS.md).  A pipe is kept
 * only when the kernel says it is empty, so no byte of one session can
 * reach another; the pool is closed when the last pipe comes back, so
 * a listener with no session holds none.  Pipes are made only when the
 * pool has none, so the pipes in use and kept together are never more
 * than the sessions had at once: the descriptors --max-children counts.
 */
#define POOL_MAX 64		/* pipes kept at most */

static struct pooled_pipe {
	int fd[2];
	int size;		/* as made: relay_config's pipe_size */
} pool[POOL_MAX];
static int pooled;		/* in pool[] */
static int pipes_out;		/* in sessions */

static int
open_pipe(struct relay_way *w, int size)
{
	if (pooled > 0 && pool[pooled - 1].size == size) {
		pooled--;
		w->pipe[0] = pool[pooled].fd[0];
		w->pipe[1] = pool[pooled].fd[1];
	} else {
		if (pipe2(w->pipe, O_NONBLOCK | O_CLOEXEC) != 0)
			return -1;
		/* A hint: a user past fs.pipe-user-pages-soft gets pipes
		 * of two pages, and may not grow them. */
		if (size > 0)
			fcntl(w->pipe[1], F_SETPIPE_SZ, size);
	}
	pipes_out++;
	return 0;
}

static void
close_pipe(const int fd[2])
{
	close(fd[0]);
	close(fd[1]);
}

/* w's pipe back to the pool, or closed; again is harmless. */
static void
give_back_pipe(struct relay_way *w, int size)
{
	int held;

	if (w->pipe[0] < 0)
		return;
	if (pooled < POOL_MAX && ioctl(w->pipe[0], FIONREAD, &held) == 0 &&
	    held == 0) {
		pool[pooled].fd[0] = w->pipe[0];
		pool[pooled].fd[1] = w->pipe[1];
		pool[pooled].size = size;
		pooled++;
	} else {
		close_pipe(w->pipe);
	}
	w->pipe[0] = w->pipe[1] = -1;
	if (--pipes_out == 0)
		while (pooled > 0)
			close_pipe(pool[--pooled].fd);
}

/* ------------------------------------------------------------ ending */

/* Close what the engine opened; again is harmless. */
static void
release(struct relay *r)
{
	give_back_pipe(&r->way[0], r->cfg->pipe_size);
	give_back_pipe(&r->way[1], r->cfg->pipe_size);
	if (r->fd[RELAY_MTA] >= 0)
		close(r->fd[RELAY_MTA]);	/* out of every epoll set */
	r->fd[RELAY_MTA] = -1;
	r->watched[RELAY_MTA] = 0;
	free(r->first);
	r->first = NULL;
}

static enum relay_status
finish(struct relay *r, enum relay_end end, int err)
{
	r->phase = RELAY_DONE;
	r->end = end;
	r->err = err;
	r->ended = mono_ms();
	release(r);
	return RELAY_OVER;
}

/* A read or write on side failed with err. */
static enum relay_status
failed(struct relay *r, enum relay_side side, int err)
{
	enum relay_end base = err == ECONNRESET || err == EPIPE ?
	    RELAY_CLIENT_RESET : RELAY_CLIENT_ERROR;

	return finish(r, (enum relay_end)(base + side), err);
}

/* ------------------------------------------------------------ relaying */

/*
 * Move what can be moved from side from to the other: the pipe emptied
 * into the other side, then filled from this one, until one of them
 * would wait or the burst is spent.  0, or -1 once the session is over.
 */
static int
move(struct relay *r, enum relay_side from, uint64_t now)
{
	struct relay_way *w = &r->way[from];
	enum relay_side to = other(from);
	size_t burst = BURST_BYTES;
	ssize_t n;

	while (!w->shut) {
		if (w->held > 0) {
			if (!(r->ready[to] & CAN_WRITE))
				return 0;
			n = splice(w->pipe[0], NULL, r->fd[to], NULL, w->held,
			    SPLICE_FLAGS);
			if (n > 0) {
				w->held -= (size_t)n;
				w->bytes += (uint64_t)n;
				r->last = now;
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN) {
				r->ready[to] &= ~CAN_WRITE;
				return 0;
			}
			failed(r, to, n < 0 ? errno : EPIPE);
			return -1;
		}
		if (w->eof) {
			/* An MTA gone before its greeting: the client, still
			 * open, is told 421. */
			if (from == RELAY_MTA && w->bytes == 0) {
				finish(r, RELAY_MTA_CLOSED, 0);
				return -1;
			}
			/* Whatever shutdown says, the direction is done: a
			 * peer that is gone shows in the other one. */
			shutdown(r->fd[to], SHUT_WR);
			w->shut = 1;
			return 0;
		}
		if (burst == 0 || !(r->ready[from] & CAN_READ))
			return 0;
		n = splice(r->fd[from], NULL, w->pipe[1], NULL, SPLICE_ASK,
		    SPLICE_FLAGS);
		if (n > 0) {
			w->held = (size_t)n;
			burst = (size_t)n < burst ? burst - (size_t)n : 0;
			r->last = now;
		} else if (n == 0) {
			w->eof = 1;
			if (r->eof_first < 0)
				r->eof_first = (int)from;
		} else if (errno == EAGAIN) {
			r->ready[from] &= ~CAN_READ;
			return 0;
		} else if (errno != EINTR) {
			failed(r, from, errno);
			return -1;
		}
	}
	return 0;
}

/* The bytes to send first: 0 once sent, 1 while they wait, -1 if over. */
static int
send_first(struct relay *r)
{
	while (r->first_sent < r->first_len) {
		ssize_t n = send(r->fd[RELAY_MTA], r->first + r->first_sent,
		    r->first_len - r->first_sent, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0)
			r->first_sent += (size_t)n;
		else if (n < 0 && errno == EAGAIN) {
			r->ready[RELAY_MTA] &= ~CAN_WRITE;
			return 1;
		} else if (n == 0 || errno != EINTR) {
			failed(r, RELAY_MTA, n < 0 ? errno : EPIPE);
			return -1;
		}
	}
	free(r->first);
	r->first = NULL;
	r->phase = RELAY_RELAYING;
	return 0;
}

/* Do all there is to do now. */
static enum relay_status
pump(struct relay *r)
{
	uint64_t now = mono_ms();
	int s;

	if (r->phase == RELAY_FIRST && (s = send_first(r)) != 0)
		return s < 0 ? RELAY_OVER : RELAY_GOING;
	if (move(r, RELAY_CLIENT, now) != 0 || move(r, RELAY_MTA, now) != 0)
		return RELAY_OVER;
	if (r->way[RELAY_CLIENT].shut && r->way[RELAY_MTA].shut)
		return finish(r, r->eof_first == RELAY_MTA ? RELAY_MTA_CLOSED :
		    RELAY_CLIENT_CLOSED, 0);
	return RELAY_GOING;
}

/* ------------------------------------------------------------ connecting */

static enum relay_status
connected(struct relay *r)
{
	r->connected = r->last = mono_ms();
	r->phase = r->first ? RELAY_FIRST : RELAY_RELAYING;
	/* Until a read or write says otherwise: epoll tells us when to try
	 * again, and what the client sent in the wait is there already. */
	r->ready[RELAY_CLIENT] = CAN_READ | CAN_WRITE;
	r->ready[RELAY_MTA] = CAN_WRITE;
	return pump(r);
}

static enum relay_status
try_connect(struct relay *r)
{
	const struct relay_target *t = &r->cfg->target;

	r->retry = 0;
	if (connect(r->fd[RELAY_MTA], (const struct sockaddr *)&t->addr,
	    t->len) == 0)
		return connected(r);
	switch (errno) {
	case EINPROGRESS:
	case EINTR:		/* goes on without us, as EINPROGRESS */
		return RELAY_GOING;
	case EAGAIN:		/* a unix socket's backlog is full */
		r->retry = mono_ms() + RELAY_RETRY_MS;
		return RELAY_GOING;
	default:
		return finish(r, RELAY_UNREACHABLE, errno);
	}
}

/* The MTA's socket had events while connecting: how did it go? */
static enum relay_status
connect_result(struct relay *r)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(r->fd[RELAY_MTA], SOL_SOCKET, SO_ERROR, &err,
	    &len) != 0)
		err = errno;
	if (err != 0)
		return finish(r, RELAY_UNREACHABLE, err);
	len = sizeof ss;
	if (getpeername(r->fd[RELAY_MTA], (struct sockaddr *)&ss, &len) != 0)
		return RELAY_GOING;	/* not yet, after all */
	return connected(r);
}

/* A splice from a blocking socket would wait for its input, whatever the
 * flags: the client's must not be. */
static int
nonblocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -1;
	return fl & O_NONBLOCK ? 0 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

enum relay_status
relay_start(struct relay *r, const struct relay_config *cfg, int client_fd,
    const void *first, size_t first_len)
{
	int i;

	memset(r, 0, sizeof *r);
	r->cfg = cfg;
	r->fd[RELAY_CLIENT] = client_fd;
	r->fd[RELAY_MTA] = -1;
	for (i = 0; i < 2; i++)
		r->way[i].pipe[0] = r->way[i].pipe[1] = -1;
	r->watched[RELAY_CLIENT] = WATCH_UNKNOWN;
	r->eof_first = -1;
	r->start = r->last = mono_ms();
	r->phase = RELAY_CONNECTING;
	if (nonblocking(client_fd) != 0)
		return finish(r, RELAY_CLIENT_ERROR, errno);
	if (first_len > RELAY_FIRST_MAX)
		return finish(r, RELAY_LOCAL_ERROR, EMSGSIZE);
	if (first_len > 0) {
		if ((r->first = malloc(first_len)) == NULL)
			return finish(r, RELAY_LOCAL_ERROR, ENOMEM);
		memcpy(r->first, first, first_len);
		r->first_len = first_len;
	}
	if (open_pipe(&r->way[0], cfg->pipe_size) != 0 ||
	    open_pipe(&r->way[1], cfg->pipe_size) != 0 ||
	    (r->fd[RELAY_MTA] = socket(cfg->target.addr.ss_family,
	    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return finish(r, RELAY_LOCAL_ERROR, errno);
	return try_connect(r);
}

/* ------------------------------------------------------------ the loop */

uint32_t
relay_events(const struct relay *r, enum relay_side side)
{
	uint32_t ev = 0;

	switch (r->phase) {
	case RELAY_CONNECTING:
		return side == RELAY_MTA && r->retry == 0 ? EPOLLOUT : 0;
	case RELAY_FIRST:
		return side == RELAY_MTA ? EPOLLOUT : 0;
	case RELAY_RELAYING:
		if (!r->way[side].eof && r->way[side].held == 0)
			ev |= EPOLLIN;
		if (r->way[other(side)].held > 0)
			ev |= EPOLLOUT;
		return ev;
	default:
		return 0;
	}
}

enum relay_status
relay_ready(struct relay *r, enum relay_side side, uint32_t events)
{
	/* An error or hang-up: the next read or write says which. */
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		r->ready[side] |= CAN_READ;
	if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
		r->ready[side] |= CAN_WRITE;
	switch (r->phase) {
	case RELAY_CONNECTING:
		if (side == RELAY_MTA && r->retry == 0)
			return connect_result(r);
		return RELAY_GOING;
	case RELAY_DONE:
		return RELAY_OVER;
	default:
		return pump(r);
	}
}

uint64_t
relay_deadline(const struct relay *r)
{
	uint64_t give_up = r->start + r->cfg->connect_ms;

	switch (r->phase) {
	case RELAY_CONNECTING:
		return r->retry && r->retry < give_up ? r->retry : give_up;
	case RELAY_DONE:
		return 0;
	default:
		return r->last + r->cfg->idle_ms;
	}
}

enum relay_status
relay_timeout(struct relay *r)
{
	uint64_t now = mono_ms();

	switch (r->phase) {
	case RELAY_CONNECTING:
		if (now >= r->start + r->cfg->connect_ms)
			return finish(r, RELAY_UNREACHABLE, ETIMEDOUT);
		if (r->retry && now >= r->retry)
			return try_connect(r);
		return RELAY_GOING;
	case RELAY_DONE:
		return RELAY_OVER;
	default:
		if (now >= r->last + r->cfg->idle_ms)
			return finish(r, RELAY_IDLE, 0);
		return RELAY_GOING;
	}
}

/* ep watches fd for want (0: not at all); *watched is what it does now. */
static int
watch(int ep, int fd, uint32_t want, uint32_t *watched, void *ptr)
{
	struct epoll_event ev;
	int op = *watched == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;

	if (want == *watched)
		return 0;
	memset(&ev, 0, sizeof ev);
	ev.events = want;
	ev.data.ptr = ptr;
	if (want == 0) {
		if (epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL) != 0 &&
		    errno != ENOENT)
			return -1;
	} else if (epoll_ctl(ep, op, fd, &ev) != 0) {
		/* The client's, whose state we were not told: the other op. */
		if (errno != (op == EPOLL_CTL_ADD ? EEXIST : ENOENT) ||
		    epoll_ctl(ep, op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD :
		    EPOLL_CTL_ADD, fd, &ev) != 0)
			return -1;
	}
	*watched = want;
	return 0;
}

int
relay_watch(struct relay *r, int ep, void *client_ptr, void *mta_ptr)
{
	if (watch(ep, r->fd[RELAY_CLIENT], relay_events(r, RELAY_CLIENT),
	    &r->watched[RELAY_CLIENT], client_ptr) != 0)
		return -1;
	if (r->fd[RELAY_MTA] < 0)
		return 0;
	return watch(ep, r->fd[RELAY_MTA], relay_events(r, RELAY_MTA),
	    &r->watched[RELAY_MTA], mta_ptr);
}

/* ------------------------------------------------------------ the end */

const char *
relay_reply(const struct relay *r)
{
	if (r->phase != RELAY_DONE || r->way[RELAY_MTA].bytes > 0)
		return NULL;
	switch (r->end) {
	case RELAY_CLIENT_CLOSED:
	case RELAY_CLIENT_RESET:
	case RELAY_CLIENT_ERROR:
		return NULL;
	default:
		return REPLY_UNAVAILABLE;
	}
}

uint64_t
relay_length_ms(const struct relay *r)
{
	if (r->connected == 0)
		return 0;
	return (r->phase == RELAY_DONE ? r->ended : mono_ms()) - r->connected;
}

void
relay_close(struct relay *r)
{
	if (r->phase != RELAY_DONE)
		finish(r, RELAY_LOCAL_ERROR, ECANCELED);
	release(r);
}

/* ------------------------------------------------------------ -n */

int
relay_probe(const struct relay_config *cfg, uint64_t *took_ms)
{
	struct relay r;
	enum relay_status s;
	int pair[2], err, ok;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    pair) != 0)
		return -1;
	/* The engine's own connect, with a stand-in for the client. */
	s = relay_start(&r, cfg, pair[0], NULL, 0);
	while (s == RELAY_GOING && r.phase == RELAY_CONNECTING) {
		struct pollfd p = { r.fd[RELAY_MTA], POLLOUT, 0 };
		uint64_t now = mono_ms(), at = relay_deadline(&r);
		int wait = at > now ? (int)(at - now) : 0;

		if (relay_events(&r, RELAY_MTA) == 0)
			p.fd = -1;
		if (poll(&p, 1, wait) > 0)
			s = relay_ready(&r, RELAY_MTA, EPOLLOUT);
		else
			s = relay_timeout(&r);
	}
	*took_ms = mono_ms() - r.start;
	ok = r.connected != 0;
	err = r.err;
	relay_close(&r);
	close(pair[0]);
	close(pair[1]);
	errno = err;
	return ok ? 0 : -1;
}
