/* allowdb.c - the compiled allowlist, an interval table in LMDB; see
 * allowdb.h. */
#include "allowdb.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guard.h"
#include "intervals.h"
#include "smtp.h"

/*
 * Layout: one LMDB file (no lock file) holding two databases.
 *
 *   main       "sendwrap-allowlist" -> the meta record: the format
 *              version (4 bytes), then the entries of the text, the
 *              repeats dropped, the entries shadowed and the intervals
 *              (8 bytes each), little-endian; and LMDB's own record of
 *              the database below.
 *   intervals  one record for each address interval in which an entry
 *              wins: key = family (4 or 6), then the interval's last
 *              address, big-endian, so that key order is address order;
 *              value = its first address (same width), the winner's
 *              delay in ms (4 bytes, little-endian), its rule text.
 *
 * Intervals are disjoint; an address in none of them matches nothing.
 * A lookup is one MDB_SET_RANGE: the first interval ending at or after
 * the address holds it if it also starts at or before it.  The file is
 * only ever replaced by rename, never written in place, so readers open
 * it MDB_RDONLY | MDB_NOLOCK and keep one read transaction open.
 */
#define META_KEY "sendwrap-allowlist"
#define INTERVALS "intervals"
#define FORMAT_VERSION 2
#define META_SIZE (4 + 4 * 8)
#define KEY_MAX (1 + 16)
#define VALUE_FIXED_MAX (16 + 4)
#define VALUE_MAX (VALUE_FIXED_MAX + WL_RULE_MAX - 1)

static const char not_ours[] =
    "not a compiled sendwrap allowlist (make one with sendwrap --compile)";
static const char corrupt[] = "corrupt compiled allowlist";

/* Far more key comparisons than any lookup makes (a few levels of a
 * binary search in a page). */
#define COMPARE_BUDGET 4096

/* Codes of our own, beside GUARD_FAULT, LMDB's (-30800 and up) and
 * errno values. */
#define RC_NOT_OURS (-2)
#define RC_CORRUPT (-3)
#define RC_REPLACED (-4)

static unsigned char
family_byte(int family)
{
	return family == AF_INET ? 4 : 6;
}

/* ------------------------------------------------ the meta pages */

/*
 * LMDB trusts its file.  A page size of 0 in a meta page divides by zero
 * (SIGFPE, which the guard does not catch); a last page past the end of
 * the file, or a node offset near the end of the mapping, reads past it;
 * a database record with a fixed key size (md_pad) makes LMDB read keys
 * anywhere.  So before LMDB opens a file, both meta pages are checked
 * here, as LMDB 0.9 (data version 1) lays them out in native byte order:
 * a page header (page number, 2 bytes, 2 bytes of flags, 4 bytes), then
 * magic, version, map address, map size, the records of the free and the
 * main database (each: md_pad, which is the page size in the first,
 * 4 bytes; flags, 2; depth, 2; five words), the last page number.  The
 * record of our named database is checked the same way once LMDB is
 * open, and the mapping runs MAP_SLACK past the file, further than any
 * offset in a page reaches, so that a damaged one lands in it (SIGBUS,
 * which the guard catches).  tests/unit/test_allowdb.c checks the
 * layout against LMDB.
 */
#define LMDB_MAGIC 0xBEEFC0DEu
#define LMDB_DATA_VERSION 1u
#define LMDB_P_META 0x08u
#define AT_FLAGS (sizeof(size_t) + 2)
#define AT_MAGIC (sizeof(size_t) + 8)
#define AT_PSIZE (AT_MAGIC + 8 + sizeof(void *) + sizeof(size_t))
#define DB_RECORD (8 + 5 * sizeof(size_t))
#define AT_MAIN_DB (AT_PSIZE + DB_RECORD)
#define AT_LAST_PAGE (AT_PSIZE + 2 * DB_RECORD)
#define META_READ (AT_LAST_PAGE + sizeof(size_t))
#define PSIZE_MIN 512u
#define PSIZE_MAX 65536u
#define MAP_SLACK ((size_t)256 << 10)	/* > 2 * 64 KiB + a value */

/* A database record LMDB may use as it is: no fixed key size, no
 * flags (ours are made with none). */
static int
plain_db(const unsigned char *rec)
{
	return get_le(rec, 4) == 0 && get_le(rec + 4, 2) == 0;
}

/* One meta page at off: 0 with *psize and *pages, or a code. */
static int
read_meta(int fd, off_t off, uint32_t *psize, size_t *pages)
{
	unsigned char buf[META_READ];
	uint32_t magic, version;
	uint16_t flags;
	size_t last;
	ssize_t got = pread(fd, buf, sizeof buf, off);

	if (got < 0)
		return errno;
	if ((size_t)got < sizeof buf)
		return RC_NOT_OURS;
	memcpy(&flags, buf + AT_FLAGS, sizeof flags);
	memcpy(&magic, buf + AT_MAGIC, sizeof magic);
	memcpy(&version, buf + AT_MAGIC + 4, sizeof version);
	memcpy(psize, buf + AT_PSIZE, sizeof *psize);
	memcpy(&last, buf + AT_LAST_PAGE, sizeof last);
	if (!(flags & LMDB_P_META) || magic != LMDB_MAGIC ||
	    version != LMDB_DATA_VERSION)
		return RC_NOT_OURS;
	if (*psize < PSIZE_MIN || *psize > PSIZE_MAX ||
	    (*psize & (*psize - 1)) != 0 || last >= SIZE_MAX / *psize ||
	    !plain_db(buf + AT_MAIN_DB))
		return RC_CORRUPT;
	*pages = last + 1;
	return 0;
}

/* Both meta pages of the file open on fd, against its size. */
static int
check_head(int fd, const struct stat *st)
{
	uint32_t psize0, psize1;
	size_t pages0, pages1;
	int rc;

	if ((rc = read_meta(fd, 0, &psize0, &pages0)) != 0 ||
	    (rc = read_meta(fd, psize0, &psize1, &pages1)) != 0)
		return rc;
	if (psize1 != psize0 || pages0 < 2 || pages1 < 2 ||
	    (uintmax_t)st->st_size / psize0 < pages0 ||
	    (uintmax_t)st->st_size / psize0 < pages1)
		return RC_CORRUPT;
	return 0;
}

/* Open path, check its head, note which file it is: 0 or a code. */
static int
precheck(const char *path, struct stat *st, const char **why)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY), rc;

	*why = "cannot open allowlist";
	if (fd < 0)
		return errno;
	*why = "cannot read compiled allowlist";
	rc = fstat(fd, st) != 0 ? errno : check_head(fd, st);
	close(fd);
	return rc;
}

/* ------------------------------------------------------ reading */

struct allowdb {
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_cursor *cur;		/* on dbi, for every lookup */
	int dead;			/* LMDB faulted: see allowdb_close() */
	struct allowdb_stats st;
};

/*
 * The order of keys, LMDB's own (bytes, then length), with a budget: a damaged page can make LMDB's binary search loop for ever (a
 * key count past 2^30 overflows its indices), and every step of it
 * compares.  Past the budget the lookup faults on purpose, inside
 * guard_run(), which then returns GUARD_FAULT.
 */
static unsigned compares_left;

static int
key_cmp(const MDB_val *a, const MDB_val *b)
{
	size_t n = a->mv_size < b->mv_size ? a->mv_size : b->mv_size;
	int c = 0;

	if (compares_left-- == 0)
		raise(SIGSEGV);
	if (n > 0)
		c = memcmp(a->mv_data, b->mv_data, n);
	if (c == 0)
		c = a->mv_size < b->mv_size ? -1 : a->mv_size > b->mv_size;
	return c;
}

static int
decode_meta(const MDB_val *v, struct allowdb_stats *st)
{
	const unsigned char *p = v->mv_data;

	if (v->mv_size != META_SIZE || get_le(p, 4) != FORMAT_VERSION)
		return RC_NOT_OURS;
	st->entries = (size_t)get_le(p + 4, 8);
	st->repeats = (size_t)get_le(p + 12, 8);
	st->shadowed = (size_t)get_le(p + 20, 8);
	st->intervals = (size_t)get_le(p + 28, 8);
	return 0;
}

struct open_arg {
	struct allowdb *db;
	const char *path;
	const struct stat *checked;
};

/* Is LMDB's descriptor the file precheck() looked at? */
static int
same_file(MDB_env *env, const struct stat *checked)
{
	struct stat st;
	int fd;

	if (mdb_env_get_fd(env, &fd) != 0 || fstat(fd, &st) != 0)
		return errno ? errno : EBADF;
	/* LMDB may leave its descriptor inheritable. */
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	return st.st_dev == checked->st_dev && st.st_ino == checked->st_ino ?
	    0 : RC_REPLACED;
}

/* Under the guard: open, begin the read transaction, check the meta. */
static int
do_open(void *p)
{
	struct open_arg *a = p;
	struct allowdb *db = a->db;
	MDB_val key = { sizeof META_KEY - 1, (void *)META_KEY }, val;
	MDB_dbi main;
	int rc;

	mdb_env_set_mapsize(db->env, (size_t)a->checked->st_size + MAP_SLACK);
	if ((rc = mdb_env_open(db->env, a->path, MDB_RDONLY | MDB_NOLOCK |
	    MDB_NOSUBDIR, 0)) != 0 || (rc = same_file(db->env, a->checked)) != 0)
		return rc;
	compares_left = COMPARE_BUDGET;
	if ((rc = mdb_txn_begin(db->env, NULL, MDB_RDONLY, &db->txn)) != 0 ||
	    (rc = mdb_dbi_open(db->txn, NULL, 0, &main)) != 0 ||
	    (rc = mdb_set_compare(db->txn, main, key_cmp)) != 0)
		return rc;
	if ((rc = mdb_get(db->txn, main, &key, &val)) != 0)
		return rc == MDB_NOTFOUND ? RC_NOT_OURS : rc;
	if ((rc = decode_meta(&val, &db->st)) != 0)
		return rc;
	key.mv_size = sizeof INTERVALS - 1;
	key.mv_data = (void *)INTERVALS;
	if ((rc = mdb_get(db->txn, main, &key, &val)) != 0)
		return rc == MDB_NOTFOUND ? RC_NOT_OURS : rc;
	if (val.mv_size != DB_RECORD || !plain_db(val.mv_data))
		return RC_CORRUPT;
	if ((rc = mdb_dbi_open(db->txn, INTERVALS, 0, &db->dbi)) != 0)
		return rc == MDB_INCOMPATIBLE ? RC_NOT_OURS : rc;
	if ((rc = mdb_set_compare(db->txn, db->dbi, key_cmp)) != 0)
		return rc;
	return mdb_cursor_open(db->txn, db->dbi, &db->cur);
}

/* The message for a code of our own or LMDB's from opening. */
static const char *
open_error(int rc)
{
	if (rc == RC_NOT_OURS || rc == MDB_INVALID ||
	    rc == MDB_VERSION_MISMATCH)
		return not_ours;
	if (rc == RC_REPLACED)
		return "compiled allowlist replaced while being opened";
	return corrupt;
}

static struct allowdb *
new_handle(void)
{
	struct allowdb *db = calloc(1, sizeof *db);

	if (db == NULL)
		return NULL;
	if (mdb_env_create(&db->env) != 0) {
		free(db);
		return NULL;
	}
	mdb_env_set_assert(db->env, guard_on_assert);
	mdb_env_set_maxdbs(db->env, 1);
	return db;
}

/* One try at opening: the handle, or NULL with *rc (an errno value with
 * *why, or a code of our own or LMDB's). */
static struct allowdb *
try_open(const char *path, int *rc, const char **why)
{
	struct stat st;
	struct open_arg a;
	char fault[200];
	struct allowdb *db;

	if ((*rc = precheck(path, &st, why)) != 0)
		return NULL;
	*why = "cannot map compiled allowlist";
	if ((db = new_handle()) == NULL) {
		*rc = ENOMEM;
		return NULL;
	}
	a.db = db;
	a.path = path;
	a.checked = &st;
	guard_hold();
	if ((*rc = guard_run(do_open, &a, fault, sizeof fault)) == 0)
		return db;
	db->dead = *rc == GUARD_FAULT;
	allowdb_close(db);
	return NULL;
}

struct allowdb *
allowdb_open(const char *path, const char **why)
{
	struct allowdb *db;
	int rc, tries;

	/* A rename between our look at the file and LMDB's: look again. */
	for (tries = 0; tries < 3; tries++) {
		if ((db = try_open(path, &rc, why)) != NULL)
			return db;
		if (rc != RC_REPLACED)
			break;
	}
	if (rc > 0) {
		errno = rc;
	} else {
		errno = EINVAL;
		*why = open_error(rc);
	}
	return NULL;
}

size_t
allowdb_count(const struct allowdb *db)
{
	return db->st.entries;
}

void
allowdb_stats(const struct allowdb *db, struct allowdb_stats *st)
{
	*st = db->st;
}

/* Does the rule text parse as a network of a's family covering a? */
static int
rule_covers(const unsigned char *text, size_t len, const struct addr *a)
{
	struct addr net;
	unsigned prefix;
	const char *why;

	return addr_parse_prefix((const char *)text, len, &net, &prefix,
	    &why) == 0 && addr_in_prefix(&net, prefix, a);
}

struct find_arg {
	struct allowdb *db;
	const struct addr *a;
	struct wl_match *m;
};

/* The interval SET_RANGE found for a: 1 if it holds a, 0 if not. */
static int
take(const struct find_arg *f, const MDB_val *key, const MDB_val *val)
{
	const unsigned char *k = key->mv_data, *v = val->mv_data;
	size_t n = addr_bits(f->a->family) / 8, rlen;
	uint64_t delay;

	if (key->mv_size != 1 + 4 && key->mv_size != 1 + 16)
		return RC_CORRUPT;
	if (k[0] != family_byte(f->a->family))
		return 0;		/* past the last interval of the family */
	if (key->mv_size != 1 + n || val->mv_size <= n + 4 ||
	    val->mv_size > n + 4 + WL_RULE_MAX - 1)
		return RC_CORRUPT;
	if (memcmp(v, f->a->bytes, n) > 0)
		return 0;		/* in a gap before the interval */
	rlen = val->mv_size - n - 4;
	delay = get_le(v + n, 4);
	/* Only a rule that really covers the address is ever handed back. */
	if (delay > SMTP_GREETING_WAIT_MS || !rule_covers(v + n + 4, rlen,
	    f->a))
		return RC_CORRUPT;
	f->m->delay_ms = delay;
	memcpy(f->m->rule, v + n + 4, rlen);
	f->m->rule[rlen] = '\0';
	return 1;
}

static int
do_find(void *p)
{
	struct find_arg *f = p;
	unsigned char k[KEY_MAX];
	MDB_val key = { 1 + addr_bits(f->a->family) / 8, k }, val = { 0, NULL };
	int rc;

	k[0] = family_byte(f->a->family);
	memcpy(k + 1, f->a->bytes, key.mv_size - 1);
	compares_left = COMPARE_BUDGET;
	rc = mdb_cursor_get(f->db->cur, &key, &val, MDB_SET_RANGE);
	if (rc == 0)
		return take(f, &key, &val);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int
allowdb_find(struct allowdb *db, const struct addr *a, struct wl_match *m,
    const char **why)
{
	struct find_arg f = { db, a, m };
	char fault[200];
	int rc;

	m->found = 0;
	if (db->dead) {
		*why = corrupt;
		return -1;
	}
	rc = guard_run(do_find, &f, fault, sizeof fault);
	if (rc == GUARD_FAULT)
		db->dead = 1;
	if (rc < 0 || rc > 1) {
		*why = corrupt;
		return -1;
	}
	m->found = rc;
	return rc;
}

static int
do_cleanup(void *p)
{
	struct allowdb *db = p;

	if (db->cur)
		mdb_cursor_close(db->cur);
	if (db->txn)
		mdb_txn_abort(db->txn);
	mdb_env_close(db->env);
	return 0;
}

/*
 * A handle that faulted is closed under the guard; if that faults too,
 * its memory is left and its descriptor closed (the process is about to
 * exec or exit anyway).
 */
void
allowdb_close(struct allowdb *db)
{
	char fault[200];
	int fd;

	if (db == NULL)
		return;
	if (!db->dead) {
		do_cleanup(db);
	} else if (guard_run(do_cleanup, db, fault, sizeof fault) != 0) {
		if (mdb_env_get_fd(db->env, &fd) == 0 && fd >= 0)
			close(fd);
	}
	guard_release();
	free(db);
}

/* ------------------------------------------------------ writing */

/* What the file says of an entry: its delay and rule text. */
struct said {
	uint32_t delay_ms;
	uint32_t rule_at;		/* in the writer's text */
	unsigned char rule_len;
};

struct allowdb_writer {
	struct iv_set *set;
	struct said *said;		/* by place in the text */
	size_t n, cap;
	char *text;
	size_t text_len, text_cap;
};

struct allowdb_writer *
allowdb_write_start(void)
{
	struct allowdb_writer *w = calloc(1, sizeof *w);

	if (w != NULL && (w->set = iv_new()) == NULL) {
		free(w);
		w = NULL;
	}
	return w;
}

/* Room for need elements of size in a growing array: 0 or -1. */
static int
grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t n = *cap ? *cap : 64;
	void *more;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	if (n > SIZE_MAX / size || (more = realloc(*p, n * size)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	*p = more;
	*cap = n;
	return 0;
}

int
allowdb_write_add(struct allowdb_writer *w, const struct wl_entry *e)
{
	size_t rlen = strlen(e->rule);
	struct said *sd;

	if (w->text_len + rlen > UINT32_MAX) {
		errno = EFBIG;
		return -1;
	}
	if (grow((void **)&w->said, &w->cap, w->n + 1, sizeof *sd) != 0 ||
	    grow((void **)&w->text, &w->text_cap, w->text_len + rlen, 1) != 0 ||
	    iv_add(w->set, &e->net, e->prefix) != 0)
		return -1;
	sd = &w->said[w->n++];
	sd->delay_ms = (uint32_t)e->delay_ms;
	sd->rule_at = (uint32_t)w->text_len;
	sd->rule_len = (unsigned char)rlen;
	memcpy(w->text + w->text_len, e->rule, rlen);
	w->text_len += rlen;
	return 0;
}

void
allowdb_write_abort(struct allowdb_writer *w)
{
	if (w == NULL)
		return;
	iv_free(w->set);
	free(w->said);
	free(w->text);
	free(w);
}

struct out_db {
	const struct allowdb_writer *w;
	MDB_txn *txn;
	MDB_dbi dbi;
};

/* One interval into the database, in key order. */
static int
put_interval(void *ctx, const struct iv_interval *iv)
{
	struct out_db *o = ctx;
	const struct said *sd = &o->w->said[iv->winner];
	unsigned char k[KEY_MAX], v[VALUE_MAX];
	size_t n = addr_bits(iv->family) / 8;
	MDB_val key = { 1 + n, k }, val = { n + 4 + sd->rule_len, v };

	k[0] = family_byte(iv->family);
	memcpy(k + 1, iv->last, n);
	memcpy(v, iv->first, n);
	put_le(v + n, sd->delay_ms, 4);
	memcpy(v + n + 4, o->w->text + sd->rule_at, sd->rule_len);
	return mdb_put(o->txn, o->dbi, &key, &val, MDB_APPEND);
}

static int
put_meta(MDB_txn *txn, const struct allowdb_stats *st)
{
	unsigned char m[META_SIZE];
	MDB_val key = { sizeof META_KEY - 1, (void *)META_KEY };
	MDB_val val = { sizeof m, m };
	MDB_dbi main;
	int rc;

	put_le(m, FORMAT_VERSION, 4);
	put_le(m + 4, st->entries, 8);
	put_le(m + 12, st->repeats, 8);
	put_le(m + 20, st->shadowed, 8);
	put_le(m + 28, st->intervals, 8);
	if ((rc = mdb_dbi_open(txn, NULL, 0, &main)) != 0)
		return rc;
	return mdb_put(txn, main, &key, &val, 0);
}

/* The whole table in one transaction. */
static int
write_table(struct allowdb_writer *w, MDB_env *env, struct allowdb_stats *st)
{
	struct out_db o;
	struct iv_counts c;
	int rc;

	o.w = w;
	if ((rc = mdb_txn_begin(env, NULL, 0, &o.txn)) != 0)
		return rc;
	rc = mdb_dbi_open(o.txn, INTERVALS, MDB_CREATE, &o.dbi);
	if (rc == 0 && (rc = iv_resolve(w->set, put_interval, &o, &c)) == 0) {
		st->entries = c.networks;
		st->repeats = c.repeats;
		st->shadowed = c.shadowed;
		st->intervals = c.intervals;
		rc = put_meta(o.txn, st);
	}
	if (rc != 0) {
		mdb_txn_abort(o.txn);
		return rc;
	}
	return mdb_txn_commit(o.txn);
}

/*
 * A map size that surely holds the file: each entry makes at most two
 * intervals, each a leaf node (8 bytes, a 2-byte slot, key and value,
 * padded to even) on a page filled in key order, and some branch pages.
 */
static size_t
map_size_for(const struct allowdb_writer *w)
{
	size_t per = 8 + 2 + KEY_MAX + VALUE_MAX + 1;

	if (w->n > SIZE_MAX / 4 / per)
		return SIZE_MAX;
	return (2 * w->n + 1) * per / 2 * 3 + ((size_t)1 << 20);
}

/* LMDB's own codes are no errno values: the nearest that says it. */
static int
as_errno(int rc)
{
	if (rc > 0)
		return rc;
	return rc == MDB_MAP_FULL ? EFBIG : EIO;
}

/* Is LMDB's descriptor the file open on fd? */
static int
same_as_fd(MDB_env *env, int fd)
{
	struct stat mine, its;
	int lfd;

	if (fstat(fd, &mine) != 0 || mdb_env_get_fd(env, &lfd) != 0 ||
	    fstat(lfd, &its) != 0)
		return errno ? errno : EBADF;
	return its.st_dev == mine.st_dev && its.st_ino == mine.st_ino ?
	    0 : EEXIST;
}

int
allowdb_write_finish(struct allowdb_writer *w, int fd, const char *path,
    struct allowdb_stats *st)
{
	MDB_env *env = NULL;
	int rc;

	memset(st, 0, sizeof *st);
	if ((rc = mdb_env_create(&env)) != 0)
		goto done;
	mdb_env_set_maxdbs(env, 1);
	if ((rc = mdb_env_set_mapsize(env, map_size_for(w))) == 0 &&
	    (rc = mdb_env_open(env, path, MDB_NOSUBDIR | MDB_NOLOCK |
	    MDB_NOSYNC, 0644)) == 0 && (rc = same_as_fd(env, fd)) == 0)
		rc = write_table(w, env, st);
	mdb_env_close(env);
done:
	allowdb_write_abort(w);
	if (rc != 0)
		errno = as_errno(rc);
	return rc != 0 ? -1 : 0;
}
