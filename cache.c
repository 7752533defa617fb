/* cache.c - the pass cache on LMDB; see cache.h for the contract. */
#include "cache.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "guard.h"
#include "safefile.h"

/*
 * Layout of the one (unnamed) LMDB database:
 *   'n' KEY            -> value (below): the entry of a network
 *   'x' EXPIRES KEY    -> empty: the index by expiry, EXPIRES big-endian
 *                         so that key order is time order
 *   'c' "bad"          -> the number of bad entries, 8 bytes
 *                         little-endian (the cap costs a read, not a
 *                         scan); a file from before it is counted once
 * KEY is struct cache_key's data.  A value is 24 bytes: a format version,
 * the kind, 6 zero bytes, then recorded and expires as little-endian
 * 64-bit milliseconds since the epoch.
 */
#define TAG_COUNT 'c'
#define TAG_ENTRY 'n'
#define TAG_EXPIRY 'x'
#define VALUE_VERSION 1
#define VALUE_SIZE 24
#define DBKEY_MAX (1 + 8 + sizeof ((struct cache_key *)0)->data)

#define MAX_READERS 1022	/* slots are held for microseconds, but... */
#define PURGE_CHUNK 64		/* index keys collected, then deleted */
#define PURGE_BATCH 10000	/* entries per transaction of cache_purge */
#define PURGE_FULL_TXNS 4	/* transactions of the purge on a full map */
#define OPEN_FDS 4		/* LMDB opens at most 3: lock, data, meta */
#define GRAVES 8		/* dead environments kept (cache_close) */
#define LOCK_PAUSE_MIN_US 50
#define LOCK_PAUSE_MAX_US 2000

/* Codes of our own beside LMDB's (-30800 and up) and errno values. */
#define RC_FAULT GUARD_FAULT	/* LMDB faulted; the message is set */
#define RC_LOCK_TIMEOUT (-2)	/* no write lock within lock_ms */

struct cache {
	MDB_env *env;
	int write;
	int dead;			/* LMDB faulted: see cache_close() */
	MDB_txn *txn;			/* the one begun, until it ends */
	int txn_write;			/* ... and it is a write txn */
	size_t map_size;		/* as configured */
	unsigned lock_ms;		/* longest wait for any lock */
	int fds[OPEN_FDS];		/* where LMDB's descriptors can be */
	struct stat files[2];		/* PATH and PATH-lock, as checked */
	char err[320];
	char path[];
};

struct dbkey {
	size_t len;
	unsigned char data[DBKEY_MAX];
};

/* ------------------------------------------------------------ helpers */

static const char *const kind_names[] = { NULL, "pass", "bad", "grey" };

const char *
cache_kind_name(enum cache_kind kind)
{
	return kind >= CACHE_PASS && kind <= CACHE_GREY ? kind_names[kind] :
	    "unknown";
}

int
cache_kind_parse(const char *s, size_t len, enum cache_kind *kind)
{
	int k;

	for (k = CACHE_PASS; k <= CACHE_GREY; k++)
		if (strlen(kind_names[k]) == len &&
		    memcmp(s, kind_names[k], len) == 0) {
			*kind = (enum cache_kind)k;
			return 0;
		}
	return -1;
}

void
cache_counts_add(struct cache_counts *n, enum cache_kind kind)
{
	if (kind == CACHE_PASS)
		n->pass++;
	else if (kind == CACHE_GREY)
		n->grey++;
	else
		n->bad++;
}

uint64_t
cache_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void __attribute__((format(printf, 2, 3)))
set_error(struct cache *c, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(c->err, sizeof c->err, "%s: %s", c->path, msg);
}

/* An LMDB or errno code as text, with a hint where one helps. */
static const char *
rc_text(int rc)
{
	if (rc == RC_LOCK_TIMEOUT)
		return "another writer holds the write lock";
	if (rc == MDB_MAP_FULL)
		return "the map is full of live entries (raise --cache-size)";
	return mdb_strerror(rc);
}

static void
entry_dbkey(struct dbkey *d, const struct cache_key *k)
{
	d->data[0] = TAG_ENTRY;
	memcpy(d->data + 1, k->data, k->len);
	d->len = 1 + (size_t)k->len;
}

static void
expiry_dbkey(struct dbkey *d, uint64_t expires, const struct cache_key *k)
{
	d->data[0] = TAG_EXPIRY;
	put_be(d->data + 1, expires, 8);
	memcpy(d->data + 9, k->data, k->len);
	d->len = 9 + (size_t)k->len;
}

/* Is this a well-formed key (family, length, no bits past the prefix)? */
static int
key_valid(const unsigned char *p, size_t len)
{
	unsigned bits, nbytes;

	if (len < 2 || (p[0] != 4 && p[0] != 6))
		return 0;
	bits = p[0] == 4 ? 32 : 128;
	nbytes = (p[1] + 7) / 8;
	if (p[1] > bits || len != 2 + nbytes)
		return 0;
	return p[1] % 8 == 0 || (p[len - 1] & (0xff >> (p[1] % 8))) == 0;
}

static int
key_from_db(struct cache_key *k, const MDB_val *v, size_t skip)
{
	const unsigned char *p = (const unsigned char *)v->mv_data + skip;
	size_t len = v->mv_size - skip;

	if (v->mv_size < skip || !key_valid(p, len))
		return -1;
	memcpy(k->data, p, len);
	k->len = (unsigned char)len;
	return 0;
}

static void
encode_value(unsigned char *v, enum cache_kind kind, uint64_t recorded,
    uint64_t expires)
{
	memset(v, 0, VALUE_SIZE);
	v[0] = VALUE_VERSION;
	v[1] = (unsigned char)kind;
	put_le(v + 8, recorded, 8);
	put_le(v + 16, expires, 8);
}

static int
decode_value(const MDB_val *v, struct cache_entry *e)
{
	const unsigned char *p = v->mv_data;

	if (v->mv_size != VALUE_SIZE || p[0] != VALUE_VERSION ||
	    (p[1] != CACHE_PASS && p[1] != CACHE_BAD && p[1] != CACHE_GREY))
		return -1;
	e->kind = (enum cache_kind)p[1];
	e->recorded_ms = get_le(p + 8, 8);
	e->expires_ms = get_le(p + 16, 8);
	return 0;
}

/* ------------------------------------------------------------- keys */

static int
parse_uint(const char *s, const char **end, unsigned long max,
    unsigned long *v)
{
	unsigned long n = 0;
	const char *p = s;

	for (; *p >= '0' && *p <= '9'; p++) {
		n = n * 10 + (unsigned long)(*p - '0');
		if (n > max)
			return -1;
	}
	if (p == s)
		return -1;
	*end = p;
	*v = n;
	return 0;
}

int
cache_net_parse(const char *s, struct cache_net *net)
{
	unsigned long v4, v6;
	const char *p;

	if (parse_uint(s, &p, 32, &v4) != 0 || *p != ',' ||
	    parse_uint(p + 1, &p, 128, &v6) != 0 || *p != '\0' ||
	    v4 < CACHE_V4LEN_MIN || v6 < CACHE_V6LEN_MIN)
		return -1;
	net->v4len = (unsigned)v4;
	net->v6len = (unsigned)v6;
	return 0;
}

int
cache_size_parse(const char *s, size_t *bytes)
{
	static const char units[] = "KMGT";
	unsigned long long n = 0, limit = SIZE_MAX;
	const char *p = s, *u;
	int shift = 0;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > (limit - 9) / 10)
			return -1;
		n = n * 10 + (unsigned long long)(*p - '0');
	}
	if (*p != '\0') {
		if ((u = strchr(units, *p >= 'a' ? *p - 32 : *p)) == NULL ||
		    *u == '\0')
			return -1;
		shift = 10 * (int)(u - units + 1);
		p++;
		if (*p == 'i' && p[1] == 'B')
			p += 2;
		else if (*p == 'B')
			p++;
		if (*p != '\0')
			return -1;
	}
	if (n > limit >> shift)
		return -1;
	n <<= shift;
	if (n < CACHE_MAP_MIN)
		return -1;
	*bytes = (size_t)n;
	return 0;
}

/* The key of a cut to prefix. */
static void
key_set(struct cache_key *k, const struct addr *a, unsigned prefix)
{
	struct addr cut = *a;
	unsigned nbytes = (prefix + 7) / 8;

	addr_cut(&cut, prefix);
	memset(k, 0, sizeof *k);	/* keys compare with memcmp */
	k->data[0] = (unsigned char)(a->family == AF_INET ? 4 : 6);
	k->data[1] = (unsigned char)prefix;
	memcpy(k->data + 2, cut.bytes, nbytes);
	k->len = (unsigned char)(2 + nbytes);
}

void
cache_key_make(struct cache_key *k, const struct addr *a,
    const struct cache_net *net)
{
	key_set(k, a, a->family == AF_INET ? net->v4len : net->v6len);
}

void
cache_key_make_bad(struct cache_key *k, const struct addr *a,
    const struct cache_net *net)
{
	key_set(k, a, a->family == AF_INET ? net->v4len :
	    net->v6len < CACHE_BAD_V6LEN ? net->v6len : CACHE_BAD_V6LEN);
}

int
cache_key_parse(const char *s, const struct cache_net *net,
    struct cache_key *k)
{
	struct addr a;
	unsigned prefix;
	const char *why;

	if (strchr(s, '/') == NULL) {
		if (addr_parse(s, &a) != 0)
			return -1;
		cache_key_make(k, &a, net);
		return 0;
	}
	if (addr_parse_prefix(s, strlen(s), &a, &prefix, &why) != 0)
		return -1;
	key_set(k, &a, prefix);
	return 0;
}

size_t
cache_key_format(const struct cache_key *k, char *buf, size_t size)
{
	unsigned char bytes[16];
	char addr[INET6_ADDRSTRLEN];
	int n;

	memset(bytes, 0, sizeof bytes);
	memcpy(bytes, k->data + 2, k->len - 2u);
	if (inet_ntop(k->data[0] == 4 ? AF_INET : AF_INET6, bytes, addr,
	    sizeof addr) == NULL)
		strcpy(addr, "?");
	n = snprintf(buf, size, "%s/%u", addr, k->data[1]);
	return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size ? size - 1 : 0;
}

/* ------------------------------------------------------- the guard */

/* Every call into LMDB runs under the guard (guard.h): a fault or an
 * assertion in it makes the handle dead and the call an error. */
typedef int (*op_fn)(struct cache *c, void *arg);

struct op_call {
	struct cache *c;
	op_fn op;
	void *arg;
};

static int
call_op(void *p)
{
	struct op_call *oc = p;

	return oc->op(oc->c, oc->arg);
}

/* Run op(c, arg) armed: its code, or RC_FAULT after a fault. */
static int
guarded(struct cache *c, const char *what, op_fn op, void *arg)
{
	struct op_call oc = { c, op, arg };
	char why[200];
	int rc = guard_run(call_op, &oc, why, sizeof why);

	if (rc == GUARD_FAULT) {
		c->dead = 1;
		set_error(c, "%s: %s", what, why);
	}
	return rc;
}

/* ------------------------------------------- the count of bad entries */

static const unsigned char bad_count_key[] = { TAG_COUNT, 'b', 'a', 'd' };

static int
bad_count_get(MDB_txn *txn, MDB_dbi dbi, uint64_t *n)
{
	MDB_val key = { sizeof bad_count_key, (void *)bad_count_key }, val;
	int rc = mdb_get(txn, dbi, &key, &val);

	*n = rc == 0 && val.mv_size == 8 ? get_le(val.mv_data, 8) : 0;
	return rc;
}

static int
bad_count_put(MDB_txn *txn, MDB_dbi dbi, uint64_t n)
{
	unsigned char v[8];
	MDB_val key = { sizeof bad_count_key, (void *)bad_count_key };
	MDB_val val = { sizeof v, v };

	put_le(v, n, 8);
	return mdb_put(txn, dbi, &key, &val, 0);
}

/* One bad entry more (delta 1) or less (-1); never below zero. */
static int
bad_count_add(MDB_txn *txn, MDB_dbi dbi, int delta)
{
	uint64_t n;
	int rc = bad_count_get(txn, dbi, &n);

	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	if (delta < 0 && n == 0)
		return 0;
	return bad_count_put(txn, dbi, delta < 0 ? n - 1 : n + 1);
}

static int scan_in(MDB_txn *txn, MDB_dbi dbi,
    int (*fn)(void *ctx, const struct cache_entry *e), void *ctx);

static int
count_bad(void *ctx, const struct cache_entry *e)
{
	if (e->kind == CACHE_BAD)
		++*(uint64_t *)ctx;
	return 0;
}

/* Every write begins here: a file from before the count is counted. */
static int
bad_count_ready(MDB_txn *txn, MDB_dbi dbi)
{
	uint64_t n = 0;
	int rc = bad_count_get(txn, dbi, &n);

	if (rc != MDB_NOTFOUND)
		return rc;
	if ((rc = scan_in(txn, dbi, count_bad, &n)) != 0)
		return rc;
	return bad_count_put(txn, dbi, n);
}

/* ---------------------------------------------------- transactions */

/* End the transaction begin() started: commit it, or abort it. */
static int
end(struct cache *c, int commit)
{
	MDB_txn *txn = c->txn;
	int rc = 0;

	if (commit)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	c->txn = NULL;
	return rc;
}

/* Free the reader slots of dead processes (under the table's mutex). */
static void
check_readers(struct cache *c)
{
	int dead;

	guard_wait(c->lock_ms);
	mdb_reader_check(c->env, &dead);
	guard_waited();
}

static int
begin(struct cache *c, unsigned flags, MDB_txn **txn, MDB_dbi *dbi)
{
	int rc, tries;

	for (tries = 0; tries < 2; tries++) {
		/* The reader table's mutex, or the writer's. */
		guard_wait(c->lock_ms);
		rc = mdb_txn_begin(c->env, NULL, flags, txn);
		guard_waited();
		if (rc == MDB_MAP_RESIZED)	/* grown by another process */
			mdb_env_set_mapsize(c->env, 0);
		else if (rc == MDB_READERS_FULL)	/* slots of dead ones? */
			check_readers(c);
		else
			break;
	}
	if (rc != 0)
		return rc;
	c->txn = *txn;
	c->txn_write = !(flags & MDB_RDONLY);
	if ((rc = mdb_dbi_open(*txn, NULL, 0, dbi)) != 0)
		end(c, 0);
	return rc;
}

/*
 * The write lock, with a time limit: LMDB's own writer lock has none.
 * Every writer takes this one first, so LMDB's is never contended.
 */
static int
lock_writer(struct cache *c, int fd)
{
	uint64_t deadline = mono_ms() + c->lock_ms;
	long pause = LOCK_PAUSE_MIN_US;

	while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		struct timespec ts;

		if (errno != EWOULDBLOCK && errno != EINTR)
			return errno;
		if (mono_ms() >= deadline)
			return RC_LOCK_TIMEOUT;
		ts.tv_sec = 0;
		ts.tv_nsec = pause * 1000;
		nanosleep(&ts, NULL);
		if ((pause *= 2) > LOCK_PAUSE_MAX_US)
			pause = LOCK_PAUSE_MAX_US;
	}
	return 0;
}

/* One write transaction running fn, under the write lock. */
static int
write_txn(struct cache *c, int (*fn)(MDB_txn *, MDB_dbi, void *),
    void *arg)
{
	MDB_txn *txn;
	MDB_dbi dbi;
	int fd, rc;

	if ((rc = mdb_env_get_fd(c->env, &fd)) != 0)
		return rc;
	if ((rc = lock_writer(c, fd)) != 0)
		return rc;
	/* Slots left by readers killed with -9 would pin old pages. */
	check_readers(c);
	if ((rc = begin(c, 0, &txn, &dbi)) == 0) {
		if ((rc = bad_count_ready(txn, dbi)) == 0)
			rc = fn(txn, dbi, arg);
		rc = rc == 0 ? end(c, 1) : (end(c, 0), rc);
	}
	flock(fd, LOCK_UN);
	return rc;
}

/* ------------------------------------------------------------ entries */

/*
 * The entry of k: 0 with *e filled, 1 if it is there but not ours (not
 * decodable), or MDB_NOTFOUND, or an LMDB error.
 */
static int
peek_entry(MDB_txn *txn, MDB_dbi dbi, const struct cache_key *k,
    struct cache_entry *e)
{
	struct dbkey ek;
	MDB_val key, val;
	int rc;

	entry_dbkey(&ek, k);
	key.mv_size = ek.len;
	key.mv_data = ek.data;
	if ((rc = mdb_get(txn, dbi, &key, &val)) != 0)
		return rc;
	return decode_value(&val, e) == 0 ? 0 : 1;
}

/*
 * Remove k's entry and its index key, keeping the count of bad entries.
 * *found says whether there was one.  0 or an LMDB error.
 */
static int
remove_entry(MDB_txn *txn, MDB_dbi dbi, const struct cache_key *k,
    int *found)
{
	struct cache_entry e;
	struct dbkey ek, xk;
	MDB_val key, ikey;
	int rc = peek_entry(txn, dbi, k, &e);

	*found = rc == 0 || rc == 1;
	if (!*found)
		return rc == MDB_NOTFOUND ? 0 : rc;
	if (rc == 0) {
		expiry_dbkey(&xk, e.expires_ms, k);
		ikey.mv_size = xk.len;
		ikey.mv_data = xk.data;
		rc = mdb_del(txn, dbi, &ikey, NULL);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return rc;
		if (e.kind == CACHE_BAD &&
		    (rc = bad_count_add(txn, dbi, -1)) != 0)
			return rc;
	}
	entry_dbkey(&ek, k);
	key.mv_size = ek.len;
	key.mv_data = ek.data;
	return mdb_del(txn, dbi, &key, NULL);
}

/* Delete the entry index key ik points to, if it is still its entry. */
static int
drop_expired(MDB_txn *txn, MDB_dbi dbi, const MDB_val *ik)
{
	struct cache_entry e;
	struct cache_key k;
	int rc, found;

	if (key_from_db(&k, ik, 9) == 0) {
		rc = peek_entry(txn, dbi, &k, &e);
		if (rc == 1 || (rc == 0 && e.expires_ms ==
		    get_be((unsigned char *)ik->mv_data + 1, 8)))
			rc = remove_entry(txn, dbi, &k, &found);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return rc;
	}
	rc = mdb_del(txn, dbi, (MDB_val *)ik, NULL);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/*
 * Remove up to limit entries expired at now, oldest first; the count
 * goes to *removed.  Index keys are collected a chunk at a time, then
 * deleted with no cursor open.
 */
static int
purge_in(MDB_txn *txn, MDB_dbi dbi, uint64_t now, unsigned long limit,
    unsigned long *removed)
{
	struct dbkey chunk[PURGE_CHUNK];
	unsigned char start = TAG_EXPIRY;
	unsigned long total = 0;
	size_t n, i;
	int rc = 0;

	while (total < limit) {
		MDB_cursor *cur;
		MDB_val key, val;

		if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
			break;
		key.mv_size = 1;
		key.mv_data = &start;
		rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
		for (n = 0; rc == 0 && n < PURGE_CHUNK && total + n < limit;
		    n++) {
			const unsigned char *p = key.mv_data;

			if (key.mv_size < 9 || key.mv_size > DBKEY_MAX ||
			    p[0] != TAG_EXPIRY || get_be(p + 1, 8) > now)
				break;
			memcpy(chunk[n].data, p, key.mv_size);
			chunk[n].len = key.mv_size;
			rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
		}
		mdb_cursor_close(cur);
		if (rc != 0 && rc != MDB_NOTFOUND)
			break;
		for (i = 0, rc = 0; i < n && rc == 0; i++) {
			key.mv_size = chunk[i].len;
			key.mv_data = chunk[i].data;
			rc = drop_expired(txn, dbi, &key);
		}
		total += n;
		if (rc != 0 || n < PURGE_CHUNK)
			break;
	}
	*removed = total;
	return rc;
}

/* ----------------------------------------------------------- open */

struct open_arg {
	unsigned flags;
};

static int
do_open(struct cache *c, void *arg)
{
	struct open_arg *a = arg;
	int rc, fd;

	/* The lock file's fcntl lock, while another process sets it up. */
	guard_wait(c->lock_ms);
	rc = mdb_env_open(c->env, c->path, a->flags, 0600);
	guard_waited();
	if (rc != 0)
		return rc;
	/* LMDB leaves its data file descriptor inheritable. */
	if (mdb_env_get_fd(c->env, &fd) == 0)
		fcntl(fd, F_SETFD, FD_CLOEXEC);
	return 0;
}

/*
 * The directory and both files, checked (and for writing made, empty)
 * before LMDB sees the path: it opens PATH and PATH-lock with O_CREAT,
 * following links, and the first opener truncates and writes the lock
 * file.  So nothing but a file of ours in a directory only we (or root)
 * can change ever reaches it, and a reader makes nothing: a missing data
 * file is ENOENT, nothing recorded yet.  0; 1 for a reader when only the
 * lock file is missing; or -1 with errno and err set.
 */
static int
check_files(const char *path, int write, struct stat *files, char *err,
    size_t errsize)
{
	char lock[PATH_MAX], why[PATH_MAX + 200];
	const char *rest = why;
	size_t len = strlen(path);
	int saved;

	if ((size_t)snprintf(lock, sizeof lock, "%s-lock", path) >= sizeof lock) {
		snprintf(err, errsize, "%s: %s", path, strerror(ENAMETOOLONG));
		errno = ENAMETOOLONG;
		return -1;
	}
	memset(&files[1], 0, sizeof files[1]);
	if (safe_dir_of(path, why, sizeof why) == 0 &&
	    safe_file(path, write, &files[0], why, sizeof why) == 0) {
		if (safe_file(lock, write, &files[1], why, sizeof why) == 0)
			return 0;
		if (errno == ENOENT && !write)
			return 1;
	}
	saved = errno;
	/* why starts with the name at fault: left out when it is path. */
	if (strncmp(why, path, len) == 0 && strncmp(why + len, ": ", 2) == 0)
		rest = why + len + 2;
	snprintf(err, errsize, "%s: %s%s", path, saved == ENOENT && !write ?
	    "" : "cannot open: ", rest);
	errno = saved;
	return -1;
}

/*
 * The lowest free descriptors, before LMDB opens its files: its
 * descriptors will be among them (it opens nothing else meanwhile, and
 * no thread of ours opens anything).
 */
static void
note_free_fds(int *fds)
{
	int fd, n = 0;

	for (fd = 0; n < OPEN_FDS && fd < 65536; fd++)
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
			fds[n++] = fd;
	while (n < OPEN_FDS)
		fds[n++] = -1;
}

static int
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino != 0 && a->st_dev == b->st_dev &&
	    a->st_ino == b->st_ino;
}

/*
 * Close every descriptor LMDB holds on our files.  After a fault or a
 * timeout its own close cannot be trusted, and its data file descriptor
 * is not close-on-exec until do_open() sets it: without this it could
 * reach the program, or hold the write lock through a long wait.
 */
static void
close_lmdb_fds(const struct cache *c)
{
	struct stat st;
	int i;

	for (i = 0; i < OPEN_FDS; i++)
		if (c->fds[i] >= 0 && fstat(c->fds[i], &st) == 0 &&
		    (same_file(&c->files[0], &st) ||
		    same_file(&c->files[1], &st)))
			close(c->fds[i]);
}

/*
 * A dead environment is never freed: what a fault left half done cannot
 * be, and its mapping of the lock file must outlive us, for the kernel
 * to mark a robust mutex we held when we exit or exec.  Kept here (a few
 * per process at most) rather than lost.  A write transaction LMDB had
 * allocated when a wait was cut short is lost all the same (a few
 * hundred bytes, once per dead handle: nothing refers to it).
 */
static MDB_env *volatile graves[GRAVES];	/* volatile: kept, never read */
static unsigned buried;

static void
bury(struct cache *c)
{
	close_lmdb_fds(c);
	graves[buried++ % GRAVES] = c->env;
	c->env = NULL;
}

struct cache *
cache_open(const char *path, const struct cache_options *o, char *err,
    size_t errsize)
{
	struct stat files[2];
	struct open_arg a;
	struct cache *c;
	size_t len = strlen(path);
	int rc, nolock;

	if ((nolock = check_files(path, o->write, files, err, errsize)) < 0)
		return NULL;
	if ((c = calloc(1, sizeof *c + len + 1)) == NULL) {
		snprintf(err, errsize, "%s: %s", path, strerror(ENOMEM));
		errno = ENOMEM;
		return NULL;
	}
	memcpy(c->path, path, len + 1);
	memcpy(c->files, files, sizeof files);
	c->write = o->write;
	c->lock_ms = o->lock_ms ? o->lock_ms : CACHE_LOCK_MS_DEFAULT;
	a.flags = MDB_NOSUBDIR | MDB_NOSYNC | (o->write ? 0 : MDB_RDONLY);
	/*
	 * No lock file: LMDB would make one, and a reader makes nothing.  No
	 * process has the cache open (each makes it on opening), so read
	 * without LMDB's locks.  A writer that starts meanwhile cannot see
	 * this reader, and could reuse pages it reads only after two commits
	 * of its own; a lookup is over long before, and garbage read would be
	 * an error, not a crash (guard.h).
	 */
	if (nolock)
		a.flags |= MDB_NOLOCK;
	if ((rc = mdb_env_create(&c->env)) != 0) {
		set_error(c, "cannot open: %s", mdb_strerror(rc));
		goto fail;
	}
	mdb_env_set_assert(c->env, guard_on_assert);
	c->map_size = o->map_size ? o->map_size : CACHE_MAP_DEFAULT;
	/*
	 * Readers map the whole size too, not just the pages in use: that
	 * saves a few microseconds, but a damaged page number would then
	 * point outside the mapping, not into it (past the end of the file:
	 * SIGBUS), and valgrind reports such a read although the guard
	 * catches it.
	 */
	mdb_env_set_mapsize(c->env, c->map_size);
	mdb_env_set_maxreaders(c->env, MAX_READERS);
	note_free_fds(c->fds);
	guard_hold();
	rc = guarded(c, "open", do_open, &a);
	if (rc == 0)
		return c;
	if (rc != RC_FAULT)
		set_error(c, "cannot open: %s", rc_text(rc));
	if (c->dead)
		bury(c);
	else
		mdb_env_close(c->env);
	guard_release();
	c->env = NULL;
fail:
	snprintf(err, errsize, "%s", c->err);
	free(c);
	errno = rc > 0 ? rc : EIO;
	return NULL;
}

const char *
cache_error(const struct cache *c)
{
	return c->err;
}

/* After a fault in a read: let go of the reader slot, then the rest. */
static int
do_cleanup(struct cache *c, void *arg)
{
	(void)arg;
	if (c->txn)
		end(c, 0);
	mdb_env_close(c->env);
	return 0;
}

/*
 * A dead handle is closed only if it died reading (LMDB's heap and locks
 * are then as they were), and under the guard.  One that died writing,
 * or faults again, is buried: its descriptors closed (the write lock
 * goes at once), the rest left as it is.
 */
void
cache_close(struct cache *c)
{
	if (c == NULL)
		return;
	if (!c->dead)
		mdb_env_close(c->env);
	else if ((c->txn && c->txn_write) ||
	    guarded(c, "close", do_cleanup, NULL) != 0)
		bury(c);
	guard_release();
	free(c);
}

/* A public operation: refused on a dead handle, reported on failure. */
static int
run(struct cache *c, const char *what, op_fn op, void *arg)
{
	int rc;

	if (c->dead)
		return -1;
	rc = guarded(c, what, op, arg);
	if (rc != 0 && rc != RC_FAULT)
		set_error(c, "%s: %s", what, rc_text(rc));
	return rc == 0 ? 0 : -1;
}

/* ----------------------------------------------------------- lookup */

struct lookup_arg {
	const struct cache_key *k;
	uint64_t now;
	struct cache_entry *e;
	int found;
};

static int
do_lookup(struct cache *c, void *arg)
{
	struct lookup_arg *a = arg;
	struct dbkey d;
	MDB_val key, val;
	MDB_txn *txn;
	MDB_dbi dbi;
	int rc;

	if ((rc = begin(c, MDB_RDONLY, &txn, &dbi)) != 0)
		return rc;
	entry_dbkey(&d, a->k);
	key.mv_size = d.len;
	key.mv_data = d.data;
	rc = mdb_get(txn, dbi, &key, &val);
	if (rc == 0) {
		if (decode_value(&val, a->e) != 0)
			rc = MDB_CORRUPTED;
		else
			a->found = a->e->expires_ms > a->now;
	} else if (rc == MDB_NOTFOUND)
		rc = 0;
	end(c, 0);
	return rc;
}

int
cache_lookup(struct cache *c, const struct cache_key *k, uint64_t now,
    struct cache_entry *e)
{
	struct lookup_arg a = { k, now, e, 0 };

	if (run(c, "lookup", do_lookup, &a) != 0)
		return -1;
	if (a.found)
		e->key = *k;
	return a.found;
}

/* ----------------------------------------------------------- record */

struct record_arg {
	const struct cache_key *k;
	enum cache_kind kind;
	uint64_t now, ttl;
	unsigned long purge;		/* expired entries to remove */
	const struct cache_key *drop;	/* also removed, if not NULL */
	unsigned long bad_max;		/* 0: no cap */
	int capped;			/* a bad entry kept out by bad_max */
};

/* Would a bad entry at k be one too many? */
static int
over_cap(MDB_txn *txn, MDB_dbi dbi, const struct record_arg *a, int *rc)
{
	struct cache_entry old;
	uint64_t n;

	*rc = 0;
	if (a->kind != CACHE_BAD || a->bad_max == 0 ||
	    (peek_entry(txn, dbi, a->k, &old) == 0 && old.kind == CACHE_BAD))
		return 0;
	if ((*rc = bad_count_get(txn, dbi, &n)) != 0)
		return 0;
	return n >= a->bad_max;
}

static int
record_in(MDB_txn *txn, MDB_dbi dbi, void *arg)
{
	struct record_arg *a = arg;
	unsigned char value[VALUE_SIZE];
	struct dbkey ek, xk;
	MDB_val key, val, none = { 0, NULL };
	uint64_t expires = a->ttl > UINT64_MAX - a->now ? UINT64_MAX :
	    a->now + a->ttl;
	unsigned long removed;
	int rc, found;

	/* Expired entries first: they may make room under the cap. */
	if ((rc = purge_in(txn, dbi, a->now, a->purge, &removed)) != 0)
		return rc;
	if ((a->capped = over_cap(txn, dbi, a, &rc)) || rc != 0)
		return rc;
	if ((a->drop && (rc = remove_entry(txn, dbi, a->drop, &found)) != 0) ||
	    (rc = remove_entry(txn, dbi, a->k, &found)) != 0)
		return rc;
	encode_value(value, a->kind, a->now, expires);
	entry_dbkey(&ek, a->k);
	key.mv_size = ek.len;
	key.mv_data = ek.data;
	val.mv_size = sizeof value;
	val.mv_data = value;
	if ((rc = mdb_put(txn, dbi, &key, &val, 0)) != 0)
		return rc;
	expiry_dbkey(&xk, expires, a->k);
	key.mv_size = xk.len;
	key.mv_data = xk.data;
	if ((rc = mdb_put(txn, dbi, &key, &none, 0)) != 0)
		return rc;
	return a->kind == CACHE_BAD ? bad_count_add(txn, dbi, 1) : 0;
}

struct purge_arg {
	uint64_t now;
	unsigned long limit, removed;
};

static int
purge_txn_in(MDB_txn *txn, MDB_dbi dbi, void *arg)
{
	struct purge_arg *a = arg;

	return purge_in(txn, dbi, a->now, a->limit, &a->removed);
}

/*
 * A full map.  Deleting needs fresh pages too (copy-on-write), and LMDB
 * reuses the pages a transaction frees only two transactions later, so:
 * lend the purge some room past the map size (at most 1/16 of it, once:
 * the file never grows past that), purge in a few transactions, then
 * retry at the configured size (LMDB keeps at least what is in use).
 */
static int
do_record(struct cache *c, void *arg)
{
	struct record_arg *a = arg;
	struct purge_arg p;
	size_t room = c->map_size / 16 > CACHE_MAP_MIN ? c->map_size / 16 :
	    CACHE_MAP_MIN;
	int rc, i;

	if ((rc = write_txn(c, record_in, a)) != MDB_MAP_FULL)
		return rc;
	mdb_env_set_mapsize(c->env, c->map_size + room);
	for (i = 0; i < PURGE_FULL_TXNS; i++) {
		p.now = a->now;
		p.limit = CACHE_PURGE_MAP_FULL / PURGE_FULL_TXNS;
		p.removed = 0;
		if ((rc = write_txn(c, purge_txn_in, &p)) != 0 ||
		    p.removed < p.limit)
			break;
	}
	mdb_env_set_mapsize(c->env, c->map_size);
	if (rc != 0)
		return rc;
	a->purge = 0;
	return write_txn(c, record_in, a);
}

static int
record(struct cache *c, struct record_arg *a)
{
	if (!c->write) {
		set_error(c, "record: %s", "opened for reading only");
		return -1;
	}
	if (run(c, "record", do_record, a) != 0)
		return -1;
	return a->capped ? CACHE_CAPPED : 0;
}

int
cache_record(struct cache *c, const struct cache_key *k,
    enum cache_kind kind, uint64_t now, uint64_t ttl_ms)
{
	struct record_arg a = { k, kind, now, ttl_ms, CACHE_PURGE_PER_WRITE,
	    NULL, 0, 0 };

	return record(c, &a);
}

int
cache_record_bad(struct cache *c, const struct cache_key *bad,
    const struct cache_key *own, uint64_t now, uint64_t ttl_ms,
    unsigned long bad_max)
{
	int same = own->len == bad->len &&
	    memcmp(own->data, bad->data, own->len) == 0;
	struct record_arg a = { bad, CACHE_BAD, now, ttl_ms,
	    CACHE_PURGE_PER_WRITE, same ? NULL : own, bad_max, 0 };

	return record(c, &a);
}

/* ------------------------------------------------------ maintenance */

struct scan_arg {
	int (*fn)(void *ctx, const struct cache_entry *e);
	void *ctx;
};

/* Call fn for every entry of ours, in key order, until it returns
 * nonzero.  0 or an LMDB error. */
static int
scan_in(MDB_txn *txn, MDB_dbi dbi,
    int (*fn)(void *ctx, const struct cache_entry *e), void *ctx)
{
	unsigned char start = TAG_ENTRY;
	struct cache_entry e;
	MDB_cursor *cur;
	MDB_val key, val;
	int rc;

	if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
		return rc;
	key.mv_size = 1;
	key.mv_data = &start;
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (((unsigned char *)key.mv_data)[0] != TAG_ENTRY)
			break;
		/* Anything else is not ours: leave it out. */
		if (key_from_db(&e.key, &key, 1) != 0 ||
		    decode_value(&val, &e) != 0)
			continue;
		if (fn(ctx, &e) != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int
do_scan(struct cache *c, void *arg)
{
	struct scan_arg *a = arg;
	MDB_txn *txn;
	MDB_dbi dbi;
	int rc;

	if ((rc = begin(c, MDB_RDONLY, &txn, &dbi)) != 0)
		return rc;
	rc = scan_in(txn, dbi, a->fn, a->ctx);
	end(c, 0);
	return rc;
}

int
cache_list(struct cache *c, int (*fn)(void *ctx, const struct cache_entry *e),
    void *ctx)
{
	struct scan_arg a = { fn, ctx };

	return run(c, "list", do_scan, &a);
}

struct count_ctx {
	uint64_t now;
	struct cache_counts *n;
};

static int
count_one(void *ctx, const struct cache_entry *e)
{
	struct count_ctx *cc = ctx;

	cc->n->total++;
	cache_counts_add(cc->n, e->kind);
	if (e->expires_ms <= cc->now)
		cc->n->expired++;
	return 0;
}

int
cache_count(struct cache *c, uint64_t now, struct cache_counts *n)
{
	struct count_ctx cc = { now, n };
	struct scan_arg a = { count_one, &cc };

	memset(n, 0, sizeof *n);
	return run(c, "count", do_scan, &a);
}

struct delete_arg {
	const struct cache_key *k;
	int found;
};

static int
delete_in(MDB_txn *txn, MDB_dbi dbi, void *arg)
{
	struct delete_arg *a = arg;

	return remove_entry(txn, dbi, a->k, &a->found);
}

static int
do_delete(struct cache *c, void *arg)
{
	return write_txn(c, delete_in, arg);
}

int
cache_delete(struct cache *c, const struct cache_key *k)
{
	struct delete_arg a = { k, 0 };

	if (!c->write) {
		set_error(c, "delete: %s", "opened for reading only");
		return -1;
	}
	return run(c, "delete", do_delete, &a) != 0 ? -1 : a.found;
}

struct purge_all_arg {
	uint64_t now;
	long total;
};

static int
do_purge(struct cache *c, void *arg)
{
	struct purge_all_arg *a = arg;
	struct purge_arg p;
	int rc;

	do {
		p.now = a->now;
		p.limit = PURGE_BATCH;
		p.removed = 0;
		if ((rc = write_txn(c, purge_txn_in, &p)) != 0)
			return rc;
		a->total += (long)p.removed;
	} while (p.removed == PURGE_BATCH);
	return 0;
}

long
cache_purge(struct cache *c, uint64_t now)
{
	struct purge_all_arg a = { now, 0 };

	if (!c->write) {
		set_error(c, "purge: %s", "opened for reading only");
		return -1;
	}
	return run(c, "purge", do_purge, &a) != 0 ? -1 : a.total;
}
