/* redis.c - a small Redis client with deadlines; see redis.h. */
#include "redis.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/read.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "conn.h"

#define READ_CHUNK 16384
#define PRELUDE_MAX 2		/* AUTH, SELECT */
#define SERVER_TEXT_MAX 120	/* of a server's error, in a message */

struct redis {
	int fd;
	size_t url;			/* index in the setup's urls */
	const char *name;		/* its text */
	const char *prelude[PRELUDE_MAX];	/* replies still due: AUTH... */
	size_t npre;
	char *out;			/* to be sent */
	size_t outlen, outcap;
	size_t sent;			/* of out, already */
	redisReader *reader;
	size_t got;			/* bytes read for this command */
	char err[200];
};

/* ------------------------------------------------------------ URLs */

static int
digits(const char *s, size_t len, unsigned long max, unsigned long *v)
{
	size_t i;

	if (len == 0 || len > 9)
		return -1;
	for (*v = 0, i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*v = *v * 10 + (unsigned long)(s[i] - '0');
	}
	return *v <= max ? 0 : -1;
}

static int
user_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > REDIS_USER_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' &&
		    s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		    strchr("._-", s[i]) != NULL))
			return 0;
	return 1;
}

/* HOST[:PORT] of a redis:// URL, len bytes at s. */
static int
parse_host(const char *s, size_t len, struct redis_url *u, const char **why)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&u->addr;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&u->addr;
	const char *port = NULL;
	unsigned long p = REDIS_PORT_DEFAULT;
	char host[64];
	size_t hlen;

	*why = "HOST is an IPv4 address, [IPv6 address] or localhost "
	    "(no names are looked up)";
	if (len > 0 && s[0] == '[') {
		const char *end = memchr(s, ']', len);

		if (end == NULL)
			return -1;
		hlen = (size_t)(end - s) - 1;
		if (end + 1 < s + len) {
			if (end[1] != ':')
				return -1;
			port = end + 2;
		}
		if (hlen == 0 || hlen >= sizeof host)
			return -1;
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		s6->sin6_family = AF_INET6;
		u->addrlen = sizeof *s6;
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return -1;
	} else {
		const char *colon = memchr(s, ':', len);

		hlen = colon ? (size_t)(colon - s) : len;
		if (colon)
			port = colon + 1;
		if (hlen == 0 || hlen >= sizeof host)
			return -1;
		memcpy(host, s, hlen);
		host[hlen] = '\0';
		s4->sin_family = AF_INET;
		u->addrlen = sizeof *s4;
		if (strcmp(host, "localhost") == 0)
			strcpy(host, "127.0.0.1");
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -1;
	}
	if (port && digits(port, (size_t)(s + len - port), 65535, &p) != 0) {
		*why = "bad PORT (1 to 65535)";
		return -1;
	}
	if (p == 0) {
		*why = "bad PORT (1 to 65535)";
		return -1;
	}
	if (u->addr.ss_family == AF_INET)
		s4->sin_port = htons((uint16_t)p);
	else
		s6->sin6_port = htons((uint16_t)p);
	return 0;
}

static int
parse_tcp(const char *s, struct redis_url *u, const char **why)
{
	const char *at, *slash, *end = s + strlen(s);
	unsigned long db = 0;

	slash = strchr(s, '/');
	if (slash == NULL)
		slash = end;
	at = memchr(s, '@', (size_t)(slash - s));
	if (at) {
		if (memchr(s, ':', (size_t)(at - s)) != NULL) {
			*why = "no password in the URL (ps shows it to every "
			    "user): use --redis-password-file";
			return -1;
		}
		if (at > s && !user_ok(s, (size_t)(at - s))) {
			*why = "bad USER (1 to 64 letters, digits, '.', '_', "
			    "'-')";
			return -1;
		}
		memcpy(u->user, s, (size_t)(at - s));
		u->user[at - s] = '\0';
		s = at + 1;
	}
	if (parse_host(s, (size_t)(slash - s), u, why) != 0)
		return -1;
	if (*slash == '/' && slash[1] != '\0' &&
	    digits(slash + 1, strlen(slash + 1), REDIS_DB_MAX, &db) != 0) {
		*why = "bad DB (a number, 0 to 1000000)";
		return -1;
	}
	u->db = (unsigned)db;
	return 0;
}

/* unix:/PATH[?db=N][&user=NAME] */
static int
parse_unix(const char *s, struct redis_url *u, const char **why)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&u->addr;
	const char *q = strchr(s, '?');
	size_t plen = q ? (size_t)(q - s) : strlen(s);
	unsigned long db;

	*why = "unix:/PATH needs an absolute PATH of at most 107 bytes";
	if (plen < 2 || s[0] != '/' || plen >= sizeof sun->sun_path)
		return -1;
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, s, plen);
	u->addrlen = (socklen_t)sizeof *sun;
	while (q != NULL) {
		const char *p = q + 1, *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);

		q = amp;
		if (len > 3 && strncmp(p, "db=", 3) == 0 &&
		    digits(p + 3, len - 3, REDIS_DB_MAX, &db) == 0) {
			u->db = (unsigned)db;
		} else if (len > 5 && strncmp(p, "user=", 5) == 0 &&
		    user_ok(p + 5, len - 5)) {
			memcpy(u->user, p + 5, len - 5);
			u->user[len - 5] = '\0';
		} else {
			*why = "after '?': db=N (0 to 1000000) or user=NAME, "
			    "joined by '&'";
			return -1;
		}
	}
	return 0;
}

int
redis_url_parse(const char *s, struct redis_url *u, const char **why)
{
	size_t len = strlen(s);

	memset(u, 0, sizeof *u);
	*why = "not redis://[USER@]HOST[:PORT][/DB] or unix:/PATH[?db=N]";
	if (len >= sizeof u->text)
		return -1;
	memcpy(u->text, s, len + 1);
	if (strncmp(s, "redis://", 8) == 0)
		return parse_tcp(s + 8, u, why);
	if (strncmp(s, "unix:", 5) == 0)
		return parse_unix(s + 5, u, why);
	return -1;
}

/* ------------------------------------------------------- password */

int
redis_password_read(const char *path, char *buf, size_t size, char *err,
    size_t errsize)
{
	char data[REDIS_PASSWORD_MAX + 3];
	const char *why = NULL;
	struct stat st;
	ssize_t n = 0, got;
	size_t len;
	int fd;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK |
	    O_NOCTTY);
	if (fd < 0) {
		snprintf(err, errsize, "%s: %s", path, errno == ELOOP ?
		    "a symbolic link (name the file itself)" :
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	else if (st.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH))
		why = "group or others can read or write it (chmod 600)";
	while (why == NULL && (size_t)n < sizeof data &&
	    (got = read(fd, data + n, sizeof data - (size_t)n)) != 0) {
		if (got < 0 && errno != EINTR)
			why = strerror(errno);
		else if (got > 0)
			n += got;
	}
	close(fd);
	if (why == NULL) {
		const char *nl = memchr(data, '\n', (size_t)n);

		len = nl ? (size_t)(nl - data) : (size_t)n;
		if (len > 0 && data[len - 1] == '\r')
			len--;
		if (len == 0)
			why = "no password on its first line";
		else if (len > REDIS_PASSWORD_MAX || len >= size)
			why = "the password is too long (at most 512 bytes)";
		else if (memchr(data, '\0', len) != NULL)
			why = "a NUL byte in the password";
	}
	if (why) {
		snprintf(err, errsize, "%s: %s", path, why);
		memset(data, 0, sizeof data);
		return -1;
	}
	memcpy(buf, data, len);
	buf[len] = '\0';
	memset(data, 0, sizeof data);
	return 0;
}

/* ------------------------------------------------------- replies */

void
redis_clean(char *dst, size_t size, const char *src, size_t len)
{
	size_t i, n = 0;

	if (size == 0)
		return;
	for (i = 0; i < len && n + 1 < size; i++)
		dst[n++] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
	dst[n] = '\0';
}

void
redis_reply_free(struct redis_reply *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->elements; i++)
		redis_reply_free(r->element[i]);
	free(r->element);
	free(r->str);
	free(r);
}

/* A new reply object, put in its place in the parent array. */
static struct redis_reply *
new_reply(const redisReadTask *t, enum redis_type type)
{
	struct redis_reply *r = calloc(1, sizeof *r);

	if (r == NULL)
		return NULL;
	r->type = type;
	if (t->parent) {
		struct redis_reply *up = t->parent->obj;

		if (t->idx < 0 || (size_t)t->idx >= up->elements) {
			free(r);
			return NULL;
		}
		up->element[t->idx] = r;
	}
	return r;
}

static void *
make_string(const redisReadTask *t, char *s, size_t len)
{
	enum redis_type type = t->type == REDIS_REPLY_ERROR ? REDIS_ERROR :
	    t->type == REDIS_REPLY_STATUS ? REDIS_STATUS : REDIS_STRING;
	struct redis_reply *r;
	char *copy;

	if (len > REDIS_REPLY_BYTES_MAX || (copy = malloc(len + 1)) == NULL)
		return NULL;
	memcpy(copy, s, len);
	copy[len] = '\0';
	if ((r = new_reply(t, type)) == NULL) {
		free(copy);
		return NULL;
	}
	r->str = copy;
	r->len = len;
	return r;
}

static void *
make_array(const redisReadTask *t, int elements)
{
	struct redis_reply *r;
	struct redis_reply **e = NULL;

	if (elements < 0 || elements > REDIS_REPLY_ELEMENTS_MAX)
		return NULL;
	if (elements > 0 && (e = calloc((size_t)elements, sizeof *e)) == NULL)
		return NULL;
	if ((r = new_reply(t, REDIS_ARRAY)) == NULL) {
		free(e);
		return NULL;
	}
	r->element = e;
	r->elements = (size_t)elements;
	return r;
}

static void *
make_integer(const redisReadTask *t, long long v)
{
	struct redis_reply *r = new_reply(t, REDIS_INTEGER);

	if (r)
		r->integer = v;
	return r;
}

static void *
make_nil(const redisReadTask *t)
{
	return new_reply(t, REDIS_NIL);
}

static void
free_object(void *obj)
{
	redis_reply_free(obj);
}

static redisReplyObjectFunctions functions = {
	make_string, make_array, make_integer, make_nil, free_object
};

long
redis_parse(const char *buf, size_t len,
    void (*fn)(void *ctx, struct redis_reply *r), void *ctx)
{
	redisReader *rd = redisReaderCreateWithFunctions(&functions);
	void *reply;
	long n = 0;

	if (rd == NULL)
		return -1;
	if (redisReaderFeed(rd, buf, len) != REDIS_OK) {
		redisReaderFree(rd);
		return -1;
	}
	for (;;) {
		if (redisReaderGetReply(rd, &reply) != REDIS_OK) {
			n = -1;
			break;
		}
		if (reply == NULL)
			break;
		fn(ctx, reply);
		n++;
	}
	redisReaderFree(rd);
	return n;
}

/* ---------------------------------------------------- connections */

static int __attribute__((format(printf, 2, 3)))
fail(struct redis *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof c->err, fmt, ap);
	va_end(ap);
	return -1;
}

/* Wait for events on c's socket until deadline: 0, or -1 (timed out). */
static int
wait_for(struct redis *c, short events, uint64_t deadline, const char *what)
{
	struct pollfd p = { c->fd, events, 0 };
	uint64_t now;
	int r;

	for (;;) {
		now = mono_ms();
		if (now >= deadline)
			return fail(c, "timed out (%s)", what);
		r = poll(&p, 1, (int)(deadline - now > 60000 ? 60000 :
		    deadline - now));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return fail(c, "poll: %s", strerror(errno));
	}
}

static int
append(struct redis *c, const char *s, size_t len)
{
	if (c->outlen + len > c->outcap) {
		size_t cap = (c->outlen + len) * 2 + 256;
		char *p = realloc(c->out, cap);

		if (p == NULL)
			return fail(c, "out of memory");
		c->out = p;
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, s, len);
	c->outlen += len;
	return 0;
}

/* A command in the protocol's array form. */
static int
format(struct redis *c, int argc, const char *const *argv,
    const size_t *lens)
{
	char head[32];
	int i, n;

	n = snprintf(head, sizeof head, "*%d\r\n", argc);
	if (append(c, head, (size_t)n) != 0)
		return -1;
	for (i = 0; i < argc; i++) {
		size_t len = lens ? lens[i] : strlen(argv[i]);

		n = snprintf(head, sizeof head, "$%zu\r\n", len);
		if (append(c, head, (size_t)n) != 0 ||
		    append(c, argv[i], len) != 0 || append(c, "\r\n", 2) != 0)
			return -1;
	}
	return 0;
}

void
redis_close(struct redis *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	if (c->reader)
		redisReaderFree(c->reader);
	if (c->out)
		memset(c->out, 0, c->outcap);	/* AUTH's password */
	free(c->out);
	free(c);
}

const char *
redis_server(const struct redis *c)
{
	return c->name;
}

struct redis *
redis_connect_start(const struct redis_setup *s, size_t i, int *pending,
    char *err, size_t errsize)
{
	const struct redis_url *u = &s->urls[i];
	struct redis *c = calloc(1, sizeof *c);
	int one = 1;

	*pending = 0;
	if (c == NULL || (c->reader = redisReaderCreateWithFunctions(
	    &functions)) == NULL) {
		snprintf(err, errsize, "out of memory");
		free(c);
		return NULL;
	}
	c->url = i;
	c->name = u->text;
	c->fd = socket(u->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		fail(c, "socket: %s", strerror(errno));
		goto out;
	}
	if (u->addr.ss_family != AF_UNIX)
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(c->fd, (const struct sockaddr *)&u->addr, u->addrlen) !=
	    0) {
		if (errno != EINPROGRESS && errno != EINTR) {
			fail(c, "connect: %s", strerror(errno));
			goto out;
		}
		*pending = 1;
	}
	if (s->password) {
		const char *argv[3] = { "AUTH", u->user, s->password };

		if (u->user[0])
			format(c, 3, argv, NULL);
		else
			format(c, 2, (const char *const[]){ "AUTH",
			    s->password }, NULL);
		c->prelude[c->npre++] = "AUTH";
	}
	if (u->db != 0) {
		char db[16];

		snprintf(db, sizeof db, "%u", u->db);
		format(c, 2, (const char *const[]){ "SELECT", db }, NULL);
		c->prelude[c->npre++] = "SELECT";
	}
	if (c->err[0] == '\0')
		return c;
out:
	snprintf(err, errsize, "%s", c->err);
	redis_close(c);
	return NULL;
}

int
redis_connect_done(struct redis *c, char *err, size_t errsize)
{
	int soerr = 0;
	socklen_t olen = sizeof soerr;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &olen) != 0)
		soerr = errno;
	if (soerr == 0)
		return 0;
	snprintf(err, errsize, "connect: %s", strerror(soerr));
	return -1;
}

int
redis_fd(const struct redis *c)
{
	return c->fd;
}

/*
 * Connect to server i of s by deadline, and queue AUTH and SELECT.  The
 * connection, or NULL with the reason in err.
 */
static struct redis *
connect_one(const struct redis_setup *s, size_t i, uint64_t deadline,
    char *err, size_t errsize)
{
	int pending;
	struct redis *c = redis_connect_start(s, i, &pending, err, errsize);

	if (c == NULL || !pending)
		return c;
	if (wait_for(c, POLLOUT, deadline, "connect") != 0) {
		snprintf(err, errsize, "%s", c->err);
		redis_close(c);
		return NULL;
	}
	if (redis_connect_done(c, err, errsize) != 0) {
		redis_close(c);
		return NULL;
	}
	return c;
}

int
redis_queue(struct redis *c, int argc, const char *const *argv,
    const size_t *lens)
{
	return format(c, argc, argv, lens);
}

/* Send what can go now: 0 (*left bytes are still to go), or -1. */
static int
send_some(struct redis *c, size_t *left)
{
	ssize_t n = 0;

	while (c->sent < c->outlen) {
		n = send(c->fd, c->out + c->sent, c->outlen - c->sent,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0)
			c->sent += (size_t)n;
		else if (n < 0 && errno == EINTR)
			continue;
		else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		else
			return fail(c, "send: %s", strerror(errno));
	}
	*left = c->outlen - c->sent;
	if (*left == 0) {
		memset(c->out, 0, c->outlen);	/* AUTH's password */
		c->outlen = c->sent = 0;
	}
	return 0;
}

int
redis_flush(struct redis *c, size_t *left, char *err, size_t errsize)
{
	if (send_some(c, left) == 0)
		return 0;
	snprintf(err, errsize, "%s", c->err);
	return -1;
}

static int
send_out(struct redis *c, uint64_t deadline)
{
	size_t left;

	for (;;) {
		if (send_some(c, &left) != 0)
			return -1;
		if (left == 0)
			return 0;
		if (wait_for(c, POLLOUT, deadline, "sending") != 0)
			return -1;
	}
}

/* A reply to AUTH or SELECT: 0 if it is the status it must be. */
static int
prelude_ok(struct redis *c, struct redis_reply *pre, const char *what)
{
	char text[SERVER_TEXT_MAX];

	if (pre->type == REDIS_STATUS) {
		redis_reply_free(pre);
		return 0;
	}
	redis_clean(text, sizeof text, pre->str ? pre->str : "",
	    pre->str ? pre->len : 0);
	redis_reply_free(pre);
	return fail(c, "%s refused: %s", what, text[0] ? text : "not OK");
}

/* What has come, into the reader: 1 with bytes, 0 with none now, -1. */
static int
read_some(struct redis *c)
{
	char buf[READ_CHUNK];
	ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);

	if (n == 0)
		return fail(c, "closed the connection");
	if (n < 0 && (errno == EINTR || errno == EAGAIN ||
	    errno == EWOULDBLOCK))
		return 0;
	if (n < 0)
		return fail(c, "recv: %s", strerror(errno));
	c->got += (size_t)n;
	if (c->got > REDIS_REPLY_BYTES_MAX)
		return fail(c, "bad reply: over %d bytes",
		    REDIS_REPLY_BYTES_MAX);
	if (redisReaderFeed(c->reader, buf, (size_t)n) != REDIS_OK)
		return fail(c, "out of memory");
	return 1;
}

/* The next whole reply already read: 1 with *r, 0 if none yet, -1. */
static int
next_reply(struct redis *c, struct redis_reply **r)
{
	void *reply;

	if (redisReaderGetReply(c->reader, &reply) != REDIS_OK)
		return fail(c, "bad reply (%s)", c->reader->errstr[0] ?
		    c->reader->errstr : "over the limits");
	*r = reply;
	return reply != NULL;
}

int
redis_take(struct redis *c, void (*fn)(void *ctx, struct redis_reply *r),
    void *ctx, char *err, size_t errsize)
{
	struct redis_reply *r = NULL;
	size_t i = 0;
	int got = 0;

	/* A bounded number of reads a turn: one server must not keep the
	 * loop from its other work. */
	while (i++ < 16 && (got = read_some(c)) > 0)
		;
	if (got < 0)
		goto failed;
	while ((got = next_reply(c, &r)) > 0) {
		/* What is over the limit is the replies' bytes in the
		 * reader, not the connection's life. */
		c->got = 0;
		if (c->npre > 0) {
			const char *what = c->prelude[0];

			memmove(c->prelude, c->prelude + 1,
			    --c->npre * sizeof c->prelude[0]);
			if (prelude_ok(c, r, what) != 0)
				goto failed;
			continue;
		}
		fn(ctx, r);
	}
	if (got == 0)
		return 0;
failed:
	snprintf(err, errsize, "%s", c->err);
	return -1;
}

/* The next reply by deadline: 0 with *r, or -1. */
static int
receive(struct redis *c, uint64_t deadline, struct redis_reply **r)
{
	int got;

	for (;;) {
		if ((got = next_reply(c, r)) != 0)
			return got > 0 ? 0 : -1;
		if (wait_for(c, POLLIN, deadline, "waiting for the reply") != 0)
			return -1;
		if (read_some(c) < 0)
			return -1;
	}
}

/* One command on c, after what is still due for AUTH and SELECT. */
static int
exchange(struct redis *c, uint64_t deadline, int argc,
    const char *const *argv, const size_t *lens, struct redis_reply **r)
{
	struct redis_reply *pre;
	size_t i;

	c->got = 0;
	if (format(c, argc, argv, lens) != 0 || send_out(c, deadline) != 0)
		return -1;
	for (i = 0; i < c->npre; i++)
		if (receive(c, deadline, &pre) != 0 ||
		    prelude_ok(c, pre, c->prelude[i]) != 0)
			return -1;
	c->npre = 0;
	return receive(c, deadline, r);
}

static int
readonly(const struct redis_reply *r)
{
	return r->type == REDIS_ERROR && strncmp(r->str, "READONLY", 8) == 0;
}

/* "; URL: reason" after what err holds already. */
static void
add_reason(char *err, size_t errsize, const char *url, const char *why)
{
	size_t n = strlen(err);

	if (n + 1 < errsize)
		snprintf(err + n, errsize - n, "%s%s: %s", n ? "; " : "", url,
		    why);
}

int
redis_run(struct redis **conn, const struct redis_setup *s,
    uint64_t deadline, int write, int argc, const char *const *argv,
    const size_t *lens, struct redis_reply **reply, char *err,
    size_t errsize)
{
	char why[200], text[SERVER_TEXT_MAX];
	struct redis *c = *conn;
	size_t i = 0;
	int reused = c != NULL;

	err[0] = '\0';
	*reply = NULL;
	*conn = NULL;
	while (c != NULL || i < s->nurls) {
		uint64_t now = mono_ms(), until = deadline;

		if (c == NULL && now >= deadline && err[0] != '\0')
			break;		/* out of time: the reasons so far */
		if (c == NULL) {
			/* A share of the time left, so a hung server leaves
			 * time for the next one. */
			if (now < deadline)
				until = now + (deadline - now) /
				    (s->nurls - i);
			c = connect_one(s, i, until, why, sizeof why);
			i++;
			if (c == NULL) {
				add_reason(err, errsize, s->urls[i - 1].text,
				    why);
				continue;
			}
		} else if (reused) {
			i = c->url + 1;
		}
		if (exchange(c, until, argc, argv, lens, reply) == 0) {
			if (!(write && readonly(*reply))) {
				*conn = c;
				return 0;
			}
			redis_clean(text, sizeof text, (*reply)->str,
			    (*reply)->len);
			redis_reply_free(*reply);
			*reply = NULL;
			add_reason(err, errsize, c->name, text);
		} else {
			add_reason(err, errsize, c->name, c->err);
			/* A kept connection that failed: start again from
			 * the first server. */
			if (reused)
				i = 0;
		}
		reused = 0;
		redis_close(c);
		c = NULL;
	}
	if (err[0] == '\0')
		snprintf(err, errsize, "no server");
	return -1;
}
