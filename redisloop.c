/* redisloop.c - Redis for an event loop; see redisloop.h. */
#include "redisloop.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"

/* A command whose answer is due, in the order sent. */
struct due {
	redisloop_fn fn;		/* NULL: cancelled */
	void *ctx;
	uint64_t deadline;
	int write;
};

struct redisloop {
	const struct redis_setup *setup;
	uint64_t timeout_ms, retry_ms;
	void (*on_down)(void *ctx, const char *why);
	void *down_ctx;
	struct redis *c;		/* the connection, or NULL */
	int connecting;			/* its connect is under way */
	size_t server;			/* the one to connect to next */
	uint64_t down_until;		/* mono_ms(): none asked till then */
	size_t left;			/* bytes queued, not yet sent */
	char readonly[160];		/* a write was refused: a replica */
	struct due *due;		/* a ring */
	size_t head, n, cap;
};

struct redisloop *
redisloop_new(const struct redis_setup *s, uint64_t timeout_ms,
    uint64_t retry_ms, void (*on_down)(void *ctx, const char *why),
    void *down_ctx)
{
	struct redisloop *rl = calloc(1, sizeof *rl);

	if (rl == NULL)
		return NULL;
	rl->setup = s;
	rl->timeout_ms = timeout_ms;
	rl->retry_ms = retry_ms;
	rl->on_down = on_down;
	rl->down_ctx = down_ctx;
	return rl;
}

static struct due *
due_at(const struct redisloop *rl, size_t i)
{
	return &rl->due[(rl->head + i) % rl->cap];
}

static int
push_due(struct redisloop *rl, const struct due *d)
{
	if (rl->n == rl->cap) {
		size_t cap = rl->cap ? 2 * rl->cap : 64, i;
		struct due *more = malloc(cap * sizeof *more);

		if (more == NULL)
			return -1;
		for (i = 0; i < rl->n; i++)
			more[i] = *due_at(rl, i);
		free(rl->due);
		rl->due = more;
		rl->cap = cap;
		rl->head = 0;
	}
	*due_at(rl, rl->n++) = *d;
	return 0;
}

/* The oldest answer due, taken off the ring. */
static struct due
pop_due(struct redisloop *rl)
{
	struct due d = rl->due[rl->head];

	rl->head = (rl->head + 1) % rl->cap;
	rl->n--;
	return d;
}

/*
 * Every answer due fails.  The ring is let go of first: a callback may
 * ask again, and that goes on a new one.
 */
static void
fail_all(struct redisloop *rl, const char *why)
{
	struct redisloop old = *rl;

	rl->due = NULL;
	rl->head = rl->n = rl->cap = 0;
	while (old.n > 0) {
		struct due d = pop_due(&old);

		if (d.fn)
			d.fn(d.ctx, NULL, why);
	}
	free(old.due);
}

/*
 * The connection is lost: every answer due fails, and the next server
 * is for what comes next; after the last one, none for retry_ms.
 */
static void
lose(struct redisloop *rl, const char *why)
{
	char text[300];

	snprintf(text, sizeof text, "redis %s: %s",
	    rl->c ? redis_server(rl->c) : "", why);
	redis_close(rl->c);
	rl->c = NULL;
	rl->connecting = 0;
	rl->left = 0;
	if (++rl->server >= rl->setup->nurls) {
		rl->server = 0;
		rl->down_until = mono_ms() + rl->retry_ms;
	}
	if (rl->on_down)
		rl->on_down(rl->down_ctx, text);
	fail_all(rl, text);
}

/* A connection to the next server, if one can be started at once. */
static int
connect_next(struct redisloop *rl)
{
	char why[200];

	while (rl->c == NULL && mono_ms() >= rl->down_until) {
		rl->c = redis_connect_start(rl->setup, rl->server,
		    &rl->connecting, why, sizeof why);
		if (rl->c == NULL)
			lose(rl, why);
	}
	return rl->c ? 0 : -1;
}

static void
flush(struct redisloop *rl)
{
	char why[200];

	if (rl->c && !rl->connecting && redis_flush(rl->c, &rl->left, why,
	    sizeof why) != 0)
		lose(rl, why);
}

int
redisloop_command(struct redisloop *rl, int write, int argc,
    const char *const *argv, const size_t *lens, redisloop_fn fn,
    void *ctx)
{
	struct due d = { fn, ctx, mono_ms() + rl->timeout_ms, write };

	if (connect_next(rl) != 0 || push_due(rl, &d) != 0)
		return -1;
	if (redis_queue(rl->c, argc, argv, lens) != 0) {
		rl->n--;	/* never sent: nothing is due */
		return -1;
	}
	rl->left = 1;
	/* The callbacks never run from here: a failure waits for the loop. */
	if (!rl->connecting) {
		char why[200];

		if (redis_flush(rl->c, &rl->left, why, sizeof why) != 0)
			rl->left = 1;	/* redisloop_io() finds it out */
	}
	return 0;
}

void
redisloop_cancel(struct redisloop *rl, void *ctx)
{
	size_t i;

	for (i = 0; i < rl->n; i++)
		if (due_at(rl, i)->ctx == ctx)
			due_at(rl, i)->fn = NULL;
}

int
redisloop_fd(const struct redisloop *rl)
{
	return rl->c ? redis_fd(rl->c) : -1;
}

short
redisloop_events(const struct redisloop *rl)
{
	if (rl->c == NULL)
		return 0;
	if (rl->connecting)
		return POLLOUT;
	return (short)(POLLIN | (rl->left > 0 ? POLLOUT : 0));
}

/* A reply read: the answer of the oldest command due. */
static void
answer(void *ctx, struct redis_reply *r)
{
	struct redisloop *rl = ctx;
	char text[150];
	struct due d;

	if (rl->n == 0) {
		redis_reply_free(r);
		return;		/* one we did not ask for: lose() follows */
	}
	d = pop_due(rl);
	if (d.write && r->type == REDIS_ERROR &&
	    strncmp(r->str, "READONLY", 8) == 0) {
		redis_clean(text, sizeof text, r->str, r->len);
		/* A replica: the next server, once this read is done. */
		snprintf(rl->readonly, sizeof rl->readonly, "%s", text);
		if (d.fn)
			d.fn(d.ctx, NULL, text);
	} else if (d.fn)
		d.fn(d.ctx, r, NULL);
	redis_reply_free(r);
}

/* The server closed a connection nothing was waiting on (its idle
 * timeout, say): no failure, the next command connects again. */
static void
idle_close(struct redisloop *rl)
{
	redis_close(rl->c);
	rl->c = NULL;
	rl->connecting = 0;
	rl->left = 0;
}

void
redisloop_io(struct redisloop *rl, int readable, int writable)
{
	char why[200];

	if (rl->c == NULL)
		return;
	if (rl->connecting && writable) {
		if (redis_connect_done(rl->c, why, sizeof why) != 0) {
			lose(rl, why);
			return;
		}
		rl->connecting = 0;
	}
	if (!rl->connecting && (writable || rl->left > 0))
		flush(rl);
	if (rl->c && readable && !rl->connecting &&
	    redis_take(rl->c, answer, rl, why, sizeof why) != 0) {
		if (rl->n > 0)
			lose(rl, why);
		else
			idle_close(rl);
	}
	if (rl->c && rl->readonly[0]) {
		snprintf(why, sizeof why, "%s", rl->readonly);
		rl->readonly[0] = '\0';
		lose(rl, why);
	}
}

uint64_t
redisloop_deadline(const struct redisloop *rl)
{
	return rl->n > 0 ? rl->due[rl->head].deadline : UINT64_MAX;
}

void
redisloop_expire(struct redisloop *rl)
{
	if (rl->n > 0 && mono_ms() >= rl->due[rl->head].deadline)
		lose(rl, rl->connecting ? "timed out (connect)" :
		    "timed out (waiting for the reply)");
}

int
redisloop_up(const struct redisloop *rl)
{
	return mono_ms() >= rl->down_until;
}

void
redisloop_free(struct redisloop *rl)
{
	if (rl == NULL)
		return;
	rl->on_down = NULL;
	if (rl->c)
		lose(rl, "closing");
	free(rl->due);
	free(rl);
}
