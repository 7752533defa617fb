/*
 * test_cache.c - cmocka tests for cache.c: option parsing, network keys
 * (IPv4, IPv6, mapped, various --cache-net), record and lookup, expiry,
 * bad entries, list/count/delete/purge, the purge on writes and on a full
 * map, file modes, descriptors and signal state, the write-lock time
 * limit, stale reader slots, writers killed with -9, and the failure
 * modes: missing or unwritable directory, permission denied (checked as
 * "nobody" when run as root), garbage files and corrupt pages.
 *
 * Files are made in a mkdtemp() directory that the group teardown removes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "whitelist.h"
#include "testlib.h"

#define DAY ((uint64_t)24 * 3600 * 1000)
#define T0 ((uint64_t)1700000000000)	/* a fixed "now" */
#define NOBODY 65534

static const struct cache_net net_default = { 32, 64 };

/* ------------------------------------------------------------------ */
/* Scratch directory, helpers                                           */

/* A fresh path in the scratch directory (static buffer per call site). */
static void
tpath(char *buf, size_t size, const char *name)
{
	static unsigned serial;

	if ((size_t)snprintf(buf, size, "%s/%u-%s", scratch_dir, ++serial, name) >=
	    size)
		fail_msg("path too long");
}

static void
join(char *buf, size_t size, const char *dir, const char *name)
{
	if ((size_t)snprintf(buf, size, "%s/%s", dir, name) >= size)
		fail_msg("path too long");
}

static struct cache *
open_w(const char *path)
{
	struct cache_options o = { 1, 0, 0 };
	char err[512];
	struct cache *c = cache_open(path, &o, err, sizeof err);

	if (c == NULL)
		fail_msg("cache_open(%s) for writing: %s", path, err);
	return c;
}

static struct cache *
open_r(const char *path)
{
	struct cache_options o = { 0, 0, 0 };
	char err[512];
	struct cache *c = cache_open(path, &o, err, sizeof err);

	if (c == NULL)
		fail_msg("cache_open(%s) for reading: %s", path, err);
	return c;
}

static struct cache_key
key(const char *addr, const struct cache_net *net)
{
	struct cache_key k;

	if (cache_key_parse(addr, net ? net : &net_default, &k) != 0)
		fail_msg("bad key %s", addr);
	return k;
}

static const char *
key_text(const struct cache_key *k)
{
	static char buf[CACHE_KEY_TEXT_MAX];

	cache_key_format(k, buf, sizeof buf);
	return buf;
}

static void
record(struct cache *c, const char *addr, enum cache_kind kind,
    uint64_t now, uint64_t ttl)
{
	struct cache_key k = key(addr, NULL);

	if (cache_record(c, &k, kind, now, ttl) != 0)
		fail_msg("record %s: %s", addr, cache_error(c));
}

/* 1 and the entry's kind in *kind, or 0. */
static int
lookup(struct cache *c, const char *addr, const struct cache_net *net,
    uint64_t now, enum cache_kind *kind)
{
	struct cache_key k = key(addr, net);
	struct cache_entry e;
	int r = cache_lookup(c, &k, now, &e);

	if (r < 0)
		fail_msg("lookup %s: %s", addr, cache_error(c));
	if (r == 1) {
		assert_memory_equal(&e.key, &k, sizeof k);
		if (kind)
			*kind = e.kind;
	}
	return r;
}

static struct cache_counts
counts(struct cache *c, uint64_t now)
{
	struct cache_counts n;

	if (cache_count(c, now, &n) != 0)
		fail_msg("count: %s", cache_error(c));
	return n;
}

/* Raw LMDB: the number of entries and of index records ('n' and 'x'). */
static void
raw_census(const char *path, unsigned long *entries, unsigned long *index)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	*entries = *index = 0;
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_open(env, path, MDB_NOSUBDIR | MDB_RDONLY,
	    0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
	assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		char tag = *(char *)k.mv_data;

		if (tag == 'n')
			++*entries;
		else if (tag == 'x')
			++*index;
	}
	assert_int_equal(rc, MDB_NOTFOUND);
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	mdb_env_close(env);
}

/* Open descriptors whose target starts with prefix. */
static int
fds_on(const char *prefix, int *cloexec_all)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	*cloexec_all = 1;
	while ((de = readdir(d)) != NULL) {
		char link[64], target[PATH_MAX];
		ssize_t len;
		int fd = atoi(de->d_name);

		if (de->d_name[0] == '.' || fd == dirfd(d))
			continue;
		snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
		if ((len = readlink(link, target, sizeof target - 1)) < 0)
			continue;
		target[len] = '\0';
		if (strncmp(target, prefix, strlen(prefix)) != 0)
			continue;
		n++;
		if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC))
			*cloexec_all = 0;
	}
	closedir(d);
	return n;
}

/* Run fn(arg) in a child, as "nobody" if drop; returns its exit status. */
static int
in_child(int (*fn)(const char *), const char *arg, int drop)
{
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (drop && geteuid() == 0 && (setgid(NOBODY) != 0 ||
		    setuid(NOBODY) != 0))
			_exit(90);
		_exit(fn(arg));
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status))
		fail_msg("child for %s killed by signal %d", arg,
		    WTERMSIG(status));
	return WEXITSTATUS(status);
}

/*
 * Permission checks do not apply to root: run fn as "nobody" when we
 * are root, as ourselves otherwise.
 */
static int
as_nobody(int (*fn)(const char *), const char *arg)
{
	return in_child(fn, arg, 1);
}

static void
write_bytes(const char *path, const void *data, size_t len, off_t at,
    int truncate)
{
	int fd = open(path, O_WRONLY | O_CREAT | (truncate ? O_TRUNC : 0),
	    0600);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, data, len, at), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

/* ------------------------------------------------------------------ */
/* Parsing and keys                                                     */

static void
test_net_parse(void **state)
{
	static const char *const bad[] = { "", "24", "24,", ",64", "24,64x",
	    "24;64", "7,64", "33,64", "24,15", "24,129", "-1,64", "24,+64",
	    " 24,64", "024x,64", "99999999999999999999,64" };
	struct cache_net n;
	size_t i;

	(void)state;
	assert_int_equal(cache_net_parse("24,64", &n), 0);
	assert_int_equal(n.v4len, 24);
	assert_int_equal(n.v6len, 64);
	assert_int_equal(cache_net_parse("32,128", &n), 0);
	assert_int_equal(n.v4len, 32);
	assert_int_equal(n.v6len, 128);
	assert_int_equal(cache_net_parse("8,16", &n), 0);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (cache_net_parse(bad[i], &n) != -1)
			fail_msg("--cache-net '%s' accepted", bad[i]);
}

static void
test_size_parse(void **state)
{
	static const char *const bad[] = { "", "x", "1Q", "-1", "1 G", "1GG",
	    "0", "1K", "1048575", "99999999999999999999", "17179869184T",
	    "1Gb", "G" };
	size_t b;
	size_t i;

	(void)state;
	assert_int_equal(cache_size_parse("1G", &b), 0);
	assert_true(b == (size_t)1 << 30);
	assert_int_equal(cache_size_parse("512M", &b), 0);
	assert_true(b == (size_t)512 << 20);
	assert_int_equal(cache_size_parse("512m", &b), 0);
	assert_true(b == (size_t)512 << 20);
	assert_int_equal(cache_size_parse("1048576", &b), 0);
	assert_true(b == 1048576);
	assert_int_equal(cache_size_parse("1024K", &b), 0);
	assert_true(b == 1048576);
	assert_int_equal(cache_size_parse("2GiB", &b), 0);
	assert_true(b == (size_t)2 << 30);
	assert_int_equal(cache_size_parse("3MB", &b), 0);
	assert_true(b == (size_t)3 << 20);
	assert_int_equal(cache_size_parse("1T", &b), 0);
	assert_true(b == (size_t)1 << 40);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (cache_size_parse(bad[i], &b) != -1)
			fail_msg("--cache-size '%s' accepted", bad[i]);
}

static void
test_keys(void **state)
{
	static const struct {
		const char *addr;
		unsigned v4, v6;
		const char *want;
	} cases[] = {
		{ "192.0.2.7", 32, 64, "192.0.2.7/32" },
		{ "192.0.2.7", 24, 64, "192.0.2.0/24" },
		{ "192.0.2.255", 20, 64, "192.0.0.0/20" },
		{ "198.51.100.77", 27, 64, "198.51.100.64/27" },
		{ "10.1.2.3", 8, 64, "10.0.0.0/8" },
		{ "::ffff:192.0.2.7", 32, 64, "192.0.2.7/32" },
		{ "::ffff:192.0.2.7", 24, 48, "192.0.2.0/24" },
		{ "2001:db8:1:2:3:4:5:6", 32, 64, "2001:db8:1:2::/64" },
		{ "2001:db8:1:2:3:4:5:6", 32, 48, "2001:db8:1::/48" },
		{ "2001:db8:1:2:3:4:5:6", 32, 128, "2001:db8:1:2:3:4:5:6/128" },
		{ "2001:db8:1:2:3:4:5:6", 32, 60, "2001:db8:1::/60" },
		{ "2001:db8:1:fedc::1", 32, 60, "2001:db8:1:fed0::/60" },
		{ "::1", 32, 64, "::/64" },
		{ "::1", 32, 128, "::1/128" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct cache_net net = { cases[i].v4, cases[i].v6 };
		struct cache_key k = key(cases[i].addr, &net), back;

		if (strcmp(key_text(&k), cases[i].want) != 0)
			fail_msg("%s under %u,%u: %s, want %s", cases[i].addr,
			    net.v4len, net.v6len, key_text(&k), cases[i].want);
		/* The text form parses back to the same key. */
		assert_int_equal(cache_key_parse(cases[i].want, &net_default,
		    &back), 0);
		assert_int_equal(back.len, k.len);
		assert_memory_equal(back.data, k.data, k.len);
	}
}

static void
test_key_make_from_addr(void **state)
{
	struct cache_net net = { 24, 64 };
	struct cache_key a, b, m;
	struct addr x, y, mapped;

	(void)state;
	assert_int_equal(addr_parse("203.0.113.9", &x), 0);
	assert_int_equal(addr_parse("203.0.113.200", &y), 0);
	assert_int_equal(addr_parse("::ffff:203.0.113.50", &mapped), 0);
	cache_key_make(&a, &x, &net);
	cache_key_make(&b, &y, &net);
	cache_key_make(&m, &mapped, &net);
	assert_int_equal(a.len, 2 + 3);
	assert_memory_equal(&a, &b, sizeof a);
	assert_memory_equal(&a, &m, sizeof a);
	assert_int_equal(a.data[0], 4);
	assert_int_equal(a.data[1], 24);
	/* IPv4 and IPv6 keys never meet, even for the same bytes. */
	assert_int_equal(addr_parse("cb00:7109::", &y), 0);
	cache_key_make(&b, &y, &net);
	assert_int_not_equal(a.data[0], b.data[0]);
}

static void
test_key_parse_bad(void **state)
{
	static const char *const bad[] = { "", "x", "192.0.2.7/", "192.0.2.7/33",
	    "192.0.2.7/24", "2001:db8::1/64", "192.0.2.0/24x", "1.2.3",
	    "2001:db8::/129", "192.0.2.0 /24" };
	struct cache_key k;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (cache_key_parse(bad[i], &net_default, &k) != -1)
			fail_msg("key '%s' accepted", bad[i]);
}

/* ------------------------------------------------------------------ */
/* Record, lookup, expiry                                               */

static void
test_record_lookup(void **state)
{
	char path[PATH_MAX];
	struct cache_key k = key("198.51.100.7", NULL);
	struct cache_entry e;
	struct cache *c;
	struct stat st;
	enum cache_kind kind = 0;

	(void)state;
	tpath(path, sizeof path, "basic.mdb");
	c = open_w(path);
	/* The data file and LMDB's lock file, both 0600 whatever the umask. */
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	{
		char lock[PATH_MAX + 8];

		snprintf(lock, sizeof lock, "%s-lock", path);
		assert_int_equal(stat(lock, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0600);
	}
	assert_int_equal(lookup(c, "198.51.100.7", NULL, T0, NULL), 0);
	assert_int_equal(cache_record(c, &k, CACHE_PASS, T0, DAY), 0);
	assert_int_equal(cache_lookup(c, &k, T0 + 1, &e), 1);
	assert_int_equal(e.kind, CACHE_PASS);
	assert_true(e.recorded_ms == T0);
	assert_true(e.expires_ms == T0 + DAY);
	assert_string_equal(key_text(&e.key), "198.51.100.7/32");
	assert_int_equal(lookup(c, "198.51.100.8", NULL, T0, NULL), 0);
	cache_close(c);

	/* Another process's view: a read-only open sees it. */
	c = open_r(path);
	assert_int_equal(lookup(c, "198.51.100.7", NULL, T0 + 5, &kind), 1);
	assert_int_equal(kind, CACHE_PASS);
	/* A read-only handle cannot write. */
	assert_int_equal(cache_record(c, &k, CACHE_PASS, T0, DAY), -1);
	assert_non_null(strstr(cache_error(c), "reading only"));
	cache_close(c);
}

static void
test_expiry(void **state)
{
	char path[PATH_MAX];
	struct cache_key k = key("192.0.2.1", NULL);
	struct cache_entry e;
	struct cache *c;
	uint64_t now;

	(void)state;
	tpath(path, sizeof path, "expiry.mdb");
	c = open_w(path);
	record(c, "192.0.2.1", CACHE_PASS, T0, 1000);
	assert_int_equal(lookup(c, "192.0.2.1", NULL, T0 + 999, NULL), 1);
	assert_int_equal(lookup(c, "192.0.2.1", NULL, T0 + 1000, NULL), 0);
	assert_int_equal(lookup(c, "192.0.2.1", NULL, T0 + DAY, NULL), 0);

	/* Entries are not extended on use. */
	record(c, "192.0.2.2", CACHE_PASS, T0, 5000);
	assert_int_equal(lookup(c, "192.0.2.2", NULL, T0 + 1000, NULL), 1);
	assert_int_equal(lookup(c, "192.0.2.2", NULL, T0 + 4000, NULL), 1);
	assert_int_equal(lookup(c, "192.0.2.2", NULL, T0 + 5000, NULL), 0);

	/* A TTL past the end of time does not wrap around. */
	record(c, "192.0.2.3", CACHE_PASS, T0, UINT64_MAX);
	assert_int_equal(lookup(c, "192.0.2.3", NULL, UINT64_MAX - 1, NULL), 1);

	/* On the real clock, with a short TTL. */
	now = cache_now_ms();
	assert_true(now > T0);
	assert_int_equal(cache_record(c, &k, CACHE_PASS, now, 150), 0);
	assert_int_equal(cache_lookup(c, &k, cache_now_ms(), &e), 1);
	usleep(200 * 1000);
	assert_int_equal(cache_lookup(c, &k, cache_now_ms(), &e), 0);
	cache_close(c);
}

static void
test_network_keys(void **state)
{
	struct cache_net n24 = { 24, 64 }, n32 = { 32, 64 }, n48 = { 32, 48 },
	    n128 = { 32, 128 };
	char path[PATH_MAX];
	struct cache_key k;
	struct cache *c;

	(void)state;
	tpath(path, sizeof path, "net.mdb");
	c = open_w(path);
	/* Recorded under 24,64, as sendwrap --cache-net 24,64 would. */
	k = key("192.0.2.7", &n24);
	assert_int_equal(cache_record(c, &k, CACHE_PASS, T0, DAY), 0);
	assert_int_equal(lookup(c, "192.0.2.200", &n24, T0, NULL), 1);
	assert_int_equal(lookup(c, "::ffff:192.0.2.9", &n24, T0, NULL), 1);
	assert_int_equal(lookup(c, "192.0.3.7", &n24, T0, NULL), 0);
	/* Keys of another length are other keys. */
	assert_int_equal(lookup(c, "192.0.2.7", &n32, T0, NULL), 0);

	/* IPv6: a /64 covers the hosts inside it. */
	k = key("2001:db8:1:2::1", &n32);
	assert_int_equal(cache_record(c, &k, CACHE_PASS, T0, DAY), 0);
	assert_int_equal(lookup(c, "2001:db8:1:2:ffff:eeee:dddd:9", &n32, T0,
	    NULL), 1);
	assert_int_equal(lookup(c, "2001:db8:1:3::1", &n32, T0, NULL), 0);
	assert_int_equal(lookup(c, "2001:db8:1:2::1", &n48, T0, NULL), 0);
	assert_int_equal(lookup(c, "2001:db8:1:2::1", &n128, T0, NULL), 0);

	/* Mapped addresses are IPv4 clients: the same key. */
	k = key("::ffff:203.0.113.5", &n32);
	assert_int_equal(cache_record(c, &k, CACHE_PASS, T0, DAY), 0);
	assert_int_equal(lookup(c, "203.0.113.5", &n32, T0, NULL), 1);
	assert_int_equal(lookup(c, "203.0.113.6", &n32, T0, NULL), 0);
	/* ... and IPv4 never matches IPv6. */
	assert_int_equal(lookup(c, "::cb00:7105", &n128, T0, NULL), 0);
	cache_close(c);
}

static void
test_bad_entries(void **state)
{
	char path[PATH_MAX];
	enum cache_kind kind = 0;
	struct cache *c;

	(void)state;
	tpath(path, sizeof path, "bad.mdb");
	c = open_w(path);
	record(c, "203.0.113.9", CACHE_BAD, T0, 3600 * 1000);
	assert_int_equal(lookup(c, "203.0.113.9", NULL, T0 + 10, &kind), 1);
	assert_int_equal(kind, CACHE_BAD);
	assert_int_equal(lookup(c, "203.0.113.9", NULL, T0 + 3600 * 1000,
	    NULL), 0);
	/* A later pass replaces a bad entry, and the other way round. */
	record(c, "203.0.113.9", CACHE_PASS, T0 + 20, DAY);
	assert_int_equal(lookup(c, "203.0.113.9", NULL, T0 + 30, &kind), 1);
	assert_int_equal(kind, CACHE_PASS);
	record(c, "203.0.113.9", CACHE_BAD, T0 + 40, 1000);
	assert_int_equal(lookup(c, "203.0.113.9", NULL, T0 + 50, &kind), 1);
	assert_int_equal(kind, CACHE_BAD);
	/* Its old expiry is no longer indexed: one entry, one index record. */
	assert_int_equal(counts(c, T0).total, 1);
	cache_close(c);
	{
		unsigned long entries, index;

		raw_census(path, &entries, &index);
		assert_int_equal(entries, 1);
		assert_int_equal(index, 1);
	}
}

/* ------------------------------------------------------------------ */
/* Maintenance                                                          */

struct listed {
	char keys[8][CACHE_KEY_TEXT_MAX];
	struct cache_entry e[8];
	int n;
	int stop_after;
};

static int
collect(void *ctx, const struct cache_entry *e)
{
	struct listed *l = ctx;

	assert_true(l->n < 8);
	cache_key_format(&e->key, l->keys[l->n], sizeof l->keys[0]);
	l->e[l->n++] = *e;
	return l->stop_after && l->n >= l->stop_after;
}

static void
test_list_count_delete(void **state)
{
	char path[PATH_MAX];
	struct cache_counts n;
	struct cache_key k;
	struct listed l;
	struct cache *c;
	unsigned long entries, index;

	(void)state;
	tpath(path, sizeof path, "maint.mdb");
	c = open_w(path);
	record(c, "192.0.2.20", CACHE_PASS, T0, DAY);
	record(c, "2001:db8::5", CACHE_PASS, T0, 1000);	/* expired below */
	record(c, "192.0.2.10", CACHE_BAD, T0, DAY);
	memset(&l, 0, sizeof l);
	assert_int_equal(cache_list(c, collect, &l), 0);
	assert_int_equal(l.n, 3);
	/* Key order: IPv4 before IPv6, then by address. */
	assert_string_equal(l.keys[0], "192.0.2.10/32");
	assert_int_equal(l.e[0].kind, CACHE_BAD);
	assert_string_equal(l.keys[1], "192.0.2.20/32");
	assert_int_equal(l.e[1].kind, CACHE_PASS);
	assert_true(l.e[1].expires_ms == T0 + DAY);
	assert_true(l.e[1].recorded_ms == T0);
	assert_string_equal(l.keys[2], "2001:db8::/64");
	/* The callback can stop the walk. */
	memset(&l, 0, sizeof l);
	l.stop_after = 1;
	assert_int_equal(cache_list(c, collect, &l), 0);
	assert_int_equal(l.n, 1);

	n = counts(c, T0 + 5000);
	assert_int_equal(n.total, 3);
	assert_int_equal(n.pass, 2);
	assert_int_equal(n.bad, 1);
	assert_int_equal(n.expired, 1);

	k = key("192.0.2.20", NULL);
	assert_int_equal(cache_delete(c, &k), 1);
	assert_int_equal(cache_delete(c, &k), 0);
	assert_int_equal(lookup(c, "192.0.2.20", NULL, T0, NULL), 0);
	k = key("2001:db8::/64", NULL);
	assert_int_equal(cache_delete(c, &k), 1);
	assert_int_equal(counts(c, T0).total, 1);
	cache_close(c);
	/* Deleting took the index records with the entries. */
	raw_census(path, &entries, &index);
	assert_int_equal(entries, 1);
	assert_int_equal(index, 1);

	/* An empty cache lists nothing and counts zero. */
	tpath(path, sizeof path, "empty.mdb");
	c = open_w(path);
	memset(&l, 0, sizeof l);
	assert_int_equal(cache_list(c, collect, &l), 0);
	assert_int_equal(l.n, 0);
	assert_int_equal(counts(c, T0).total, 0);
	assert_int_equal(cache_purge(c, T0), 0);
	cache_close(c);
}

static void
test_purge(void **state)
{
	char path[PATH_MAX], addr[64];
	struct cache_key k;
	struct cache *c;
	unsigned long entries, index;
	int i;

	(void)state;
	tpath(path, sizeof path, "purge.mdb");
	c = open_w(path);
	/* 25000 expiring at T0+1s (more than one purge batch), 50 live. */
	for (i = 0; i < 25000; i++) {
		snprintf(addr, sizeof addr, "10.%d.%d.%d", i >> 16 & 255,
		    i >> 8 & 255, i & 255);
		k = key(addr, NULL);
		assert_int_equal(cache_record(c, &k, i % 3 ? CACHE_PASS :
		    CACHE_BAD, T0, 1000), 0);
	}
	for (i = 0; i < 50; i++) {
		snprintf(addr, sizeof addr, "2001:db8:%x::1", i);
		record(c, addr, CACHE_PASS, T0, DAY);
	}
	/* Nothing has expired yet. */
	assert_int_equal(cache_purge(c, T0 + 999), 0);
	assert_int_equal(counts(c, T0).total, 25050);
	assert_int_equal(cache_purge(c, T0 + 1000), 25000);
	assert_int_equal(counts(c, T0).total, 50);
	assert_int_equal(lookup(c, "2001:db8:31::1", NULL, T0 + 1000, NULL), 1);
	assert_int_equal(cache_purge(c, T0 + 2000), 0);
	cache_close(c);
	raw_census(path, &entries, &index);
	assert_int_equal(entries, 50);
	assert_int_equal(index, 50);
}

static void
test_purge_on_write(void **state)
{
	char path[PATH_MAX], addr[64];
	struct cache *c;
	int i;

	(void)state;
	tpath(path, sizeof path, "opportunistic.mdb");
	c = open_w(path);
	for (i = 0; i < 100; i++) {
		snprintf(addr, sizeof addr, "10.0.0.%d", i);
		record(c, addr, CACHE_PASS, T0, 1000);
	}
	/* Writes before the expiry remove nothing. */
	record(c, "10.0.1.1", CACHE_PASS, T0 + 999, DAY);
	assert_int_equal(counts(c, T0).total, 101);
	/* Each later write removes a bounded number of expired entries. */
	record(c, "10.0.1.2", CACHE_PASS, T0 + 2000, DAY);
	assert_int_equal(counts(c, T0).total, 102 - CACHE_PURGE_PER_WRITE);
	for (i = 3; counts(c, T0 + 2000).expired > 0 && i < 100; i++) {
		snprintf(addr, sizeof addr, "10.0.1.%d", i);
		record(c, addr, CACHE_PASS, T0 + 2000, DAY);
	}
	/* All expired entries are gone after a few writes; live ones stay. */
	assert_int_equal(counts(c, T0).total, i - 1);
	assert_int_equal(lookup(c, "10.0.1.1", NULL, T0 + 2000, NULL), 1);
	/* 100 expired, a few a write: the last went with the write due. */
	assert_int_equal(i, 3 + (100 - 1) / CACHE_PURGE_PER_WRITE);
	cache_close(c);
}

/* Writes 300 entries (the file grows), for test_reader_sees_growth. */
static int
grow(const char *path)
{
	struct cache *c = open_w(path);
	char addr[64];
	int i;

	for (i = 0; i < 300; i++) {
		snprintf(addr, sizeof addr, "10.2.%d.%d", i / 256, i % 256);
		record(c, addr, CACHE_PASS, T0, DAY);
	}
	cache_close(c);
	return 0;
}

/*
 * A reader opened before a writer grows the file sees what was written
 * (LMDB remaps a reader whose mapping the file outgrew: begin()).
 */
static void
test_reader_sees_growth(void **state)
{
	char path[PATH_MAX];
	struct stat before, after;
	struct cache *c, *r;

	(void)state;
	tpath(path, sizeof path, "growth.mdb");
	c = open_w(path);
	record(c, "10.1.0.1", CACHE_PASS, T0, DAY);
	cache_close(c);
	assert_int_equal(stat(path, &before), 0);
	r = open_r(path);
	assert_int_equal(in_child(grow, path, 0), 0);
	assert_int_equal(stat(path, &after), 0);
	assert_true(after.st_size > before.st_size);
	assert_int_equal(lookup(r, "10.2.1.43", NULL, T0 + 1, NULL), 1);
	assert_int_equal(lookup(r, "10.1.0.1", NULL, T0 + 1, NULL), 1);
	assert_int_equal(lookup(r, "10.3.0.1", NULL, T0 + 1, NULL), 0);
	cache_close(r);
}

static void
test_map_full(void **state)
{
	struct cache_options o = { 1, CACHE_MAP_MIN, 0 };
	char path[PATH_MAX], addr[64], err[512];
	struct cache_key k;
	struct cache *c;
	int i, r = 0;

	(void)state;
	tpath(path, sizeof path, "full.mdb");
	c = cache_open(path, &o, err, sizeof err);
	assert_non_null(c);
	for (i = 0; i < 1000000; i++) {
		snprintf(addr, sizeof addr, "2001:db8:%x:%x::", i >> 16,
		    i & 0xffff);
		k = key(addr, NULL);
		if ((r = cache_record(c, &k, CACHE_PASS, T0, 1000)) != 0)
			break;
	}
	assert_int_equal(r, -1);
	assert_true(i > 1000);
	assert_non_null(strstr(cache_error(c), "full"));
	assert_non_null(strstr(cache_error(c), "--cache-size"));
	/* The handle still works: reading, and writing once room is made. */
	cache_close(c);
	c = cache_open(path, &o, err, sizeof err);
	assert_non_null(c);
	assert_int_equal(lookup(c, "2001:db8:0:5::1", NULL, T0, NULL), 1);
	k = key("192.0.2.1", NULL);
	/* Nothing expired: still full. */
	assert_int_equal(cache_record(c, &k, CACHE_PASS, T0 + 10, DAY), -1);
	/* Everything expired: the write purges, then succeeds. */
	if (cache_record(c, &k, CACHE_PASS, T0 + 1000, DAY) != 0)
		fail_msg("%s", cache_error(c));
	assert_int_equal(lookup(c, "192.0.2.1", NULL, T0 + 1000, NULL), 1);
	cache_close(c);
}

/* ------------------------------------------------------------------ */
/* Processes: descriptors, signals, locks, readers, kill -9             */

static void
test_descriptors(void **state)
{
	char path[PATH_MAX], dir[PATH_MAX];
	struct cache *c;
	int cloexec;

	(void)state;
	tpath(dir, sizeof dir, "fds");
	assert_int_equal(mkdir(dir, 0700), 0);
	join(path, sizeof path, dir, "c.mdb");
	c = open_w(path);
	record(c, "192.0.2.1", CACHE_PASS, T0, DAY);
	assert_true(fds_on(dir, &cloexec) >= 2);
	assert_true(cloexec);
	cache_close(c);
	assert_int_equal(fds_on(dir, &cloexec), 0);
	c = open_r(path);
	assert_int_equal(lookup(c, "192.0.2.1", NULL, T0, NULL), 1);
	assert_true(fds_on(dir, &cloexec) >= 2);
	assert_true(cloexec);
	cache_close(c);
	assert_int_equal(fds_on(dir, &cloexec), 0);
}

static void
test_signal_state_kept(void **state)
{
	struct sigaction now, mine, bus_before;
	char path[PATH_MAX];
	sigset_t block, cur;
	struct cache *c;

	(void)state;
	/* A handler of the caller's, and SIGBUS blocked, survive any call. */
	memset(&mine, 0, sizeof mine);
	mine.sa_handler = SIG_IGN;
	sigaction(SIGSEGV, &mine, NULL);
	sigaction(SIGBUS, NULL, &bus_before);	/* cmocka's, as it happens */
	sigemptyset(&block);
	sigaddset(&block, SIGBUS);
	sigprocmask(SIG_BLOCK, &block, NULL);
	tpath(path, sizeof path, "signals.mdb");
	c = open_w(path);
	record(c, "192.0.2.1", CACHE_PASS, T0, DAY);
	assert_int_equal(lookup(c, "192.0.2.1", NULL, T0, NULL), 1);
	cache_close(c);
	sigaction(SIGSEGV, NULL, &now);
	assert_true(now.sa_handler == SIG_IGN);
	sigaction(SIGBUS, NULL, &now);
	assert_true(now.sa_handler == bus_before.sa_handler);
	sigprocmask(SIG_SETMASK, NULL, &cur);
	assert_true(sigismember(&cur, SIGBUS));
	assert_false(sigismember(&cur, SIGSEGV));
	sigprocmask(SIG_UNBLOCK, &block, NULL);
	mine.sa_handler = SIG_DFL;
	sigaction(SIGSEGV, &mine, NULL);
}

static void
test_lock_timeout(void **state)
{
	struct cache_options o = { 1, 0, 200 };
	char path[PATH_MAX], err[512];
	struct cache_key k = key("192.0.2.9", NULL);
	struct timespec a, b;
	struct cache *c;
	double took;
	int fd;

	(void)state;
	tpath(path, sizeof path, "lock.mdb");
	c = cache_open(path, &o, err, sizeof err);
	assert_non_null(c);
	record(c, "192.0.2.8", CACHE_PASS, T0, DAY);
	/* Another writer holds the write lock and does not let go. */
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(cache_record(c, &k, CACHE_PASS, T0, DAY), -1);
	clock_gettime(CLOCK_MONOTONIC, &b);
	took = (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
	assert_true(took >= 0.19 && took < 2.0);
	assert_non_null(strstr(cache_error(c), "write lock"));
	/* Readers do not wait for writers. */
	assert_int_equal(lookup(c, "192.0.2.8", NULL, T0, NULL), 1);
	assert_int_equal(flock(fd, LOCK_UN), 0);
	/* Once the lock is free, writing works again. */
	assert_int_equal(cache_record(c, &k, CACHE_PASS, T0, DAY), 0);
	close(fd);
	cache_close(c);
}

static void
test_stale_reader_slots(void **state)
{
	char path[PATH_MAX];
	struct cache *c;
	MDB_env *env;
	int i, dead = -1;

	(void)state;
	tpath(path, sizeof path, "readers.mdb");
	c = open_w(path);
	record(c, "192.0.2.1", CACHE_PASS, T0, DAY);
	/* Readers killed with -9 in the middle of a read transaction. */
	for (i = 0; i < 5; i++) {
		pid_t pid = fork();
		int status;

		assert_true(pid >= 0);
		if (pid == 0) {
			MDB_txn *txn;

			if (mdb_env_create(&env) != 0 ||
			    mdb_env_open(env, path, MDB_NOSUBDIR | MDB_RDONLY,
			    0600) != 0 ||
			    mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0)
				_exit(1);
			raise(SIGKILL);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status));
	}
	/* A write clears their slots (our handle keeps the env open). */
	record(c, "192.0.2.2", CACHE_PASS, T0, DAY);
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_open(env, path, MDB_NOSUBDIR | MDB_RDONLY,
	    0600), 0);
	assert_int_equal(mdb_reader_check(env, &dead), 0);
	assert_int_equal(dead, 0);
	mdb_env_close(env);
	cache_close(c);
}

/* Writers in a loop, killed with -9 at random moments, many times over. */
static void
test_writers_killed(void **state)
{
	enum { WRITERS = 8, ROUNDS = 25 };
	char path[PATH_MAX];
	struct cache *c;
	unsigned long entries, index;
	int round, i;

	(void)state;
	tpath(path, sizeof path, "killed.mdb");
	c = open_w(path);
	cache_close(c);
	srand(12345);
	for (round = 0; round < ROUNDS; round++) {
		pid_t pids[WRITERS];
		struct timespec ts = { 0, 0 };

		for (i = 0; i < WRITERS; i++) {
			pids[i] = fork();
			assert_true(pids[i] >= 0);
			if (pids[i] == 0) {
				unsigned n = (unsigned)(round * WRITERS + i) << 16;

				struct cache_options o = { 1, 0, 0 };
				char err[512];

				for (;; n++) {
					char addr[64];
					struct cache_key k;

					snprintf(addr, sizeof addr, "10.%u.%u.%u",
					    n >> 16 & 255, n >> 8 & 255, n & 255);
					k = key(addr, NULL);
					c = cache_open(path, &o, err, sizeof err);
					if (c == NULL)
						continue;
					/* Short TTLs: writes purge as well. */
					cache_record(c, &k, n % 5 ? CACHE_PASS :
					    CACHE_BAD, cache_now_ms(), n % 7 * 5);
					cache_close(c);
				}
			}
		}
		ts.tv_nsec = (long)(rand() % 40 + 5) * 1000000;
		nanosleep(&ts, NULL);
		for (i = 0; i < WRITERS; i++) {
			ts.tv_nsec = (long)(rand() % 500) * 1000;
			nanosleep(&ts, NULL);
			kill(pids[i], SIGKILL);
		}
		for (i = 0; i < WRITERS; i++)
			waitpid(pids[i], NULL, 0);
	}
	/* The database opens, answers, takes writes, and is consistent. */
	c = open_w(path);
	record(c, "192.0.2.77", CACHE_PASS, cache_now_ms(), DAY);
	assert_int_equal(lookup(c, "192.0.2.77", NULL, cache_now_ms(), NULL), 1);
	assert_true(counts(c, 0).total >= 1);
	assert_true(cache_purge(c, cache_now_ms() + DAY) >= 1);
	assert_int_equal(counts(c, 0).total, 0);
	cache_close(c);
	raw_census(path, &entries, &index);
	assert_int_equal(entries, index);
}

/* ------------------------------------------------------------------ */
/* Failure modes                                                        */

static void
expect_open_fails(const char *path, int write, int want_errno,
    const char *want_text)
{
	struct cache_options o = { write, 0, 0 };
	char err[512];
	struct cache *c;

	errno = 0;
	c = cache_open(path, &o, err, sizeof err);
	if (c != NULL)
		fail_msg("cache_open(%s, write=%d) succeeded", path, write);
	if (want_errno && errno != want_errno)
		fail_msg("cache_open(%s): errno %d, want %d (%s)", path, errno,
		    want_errno, err);
	assert_non_null(strstr(err, path));
	if (want_text && strstr(err, want_text) == NULL)
		fail_msg("error '%s' lacks '%s'", err, want_text);
}

static void
test_missing(void **state)
{
	char path[PATH_MAX], lock[PATH_MAX + 8], file[PATH_MAX];
	struct stat st;

	(void)state;
	/* Reading a cache not yet made: ENOENT, and nothing is created. */
	tpath(path, sizeof path, "never.mdb");
	expect_open_fails(path, 0, ENOENT, NULL);
	snprintf(lock, sizeof lock, "%s-lock", path);
	assert_int_equal(stat(lock, &st), -1);
	/* A directory that does not exist, for writing. */
	tpath(path, sizeof path, "nodir/c.mdb");
	expect_open_fails(path, 1, ENOENT, "cannot open");
	/* A file where a directory should be. */
	tpath(file, sizeof file, "plainfile");
	write_bytes(file, "x", 1, 0, 1);
	join(path, sizeof path, file, "c.mdb");
	expect_open_fails(path, 1, ENOTDIR, "cannot open");
	expect_open_fails(path, 0, ENOTDIR, NULL);
}

static int
open_in_dir_child(const char *path)
{
	struct cache_options o = { 1, 0, 0 };
	char err[512];
	struct cache *c = cache_open(path, &o, err, sizeof err);

	if (c != NULL)
		return 1;
	if (errno != EACCES || strstr(err, "Permission denied") == NULL)
		return 2;
	/* Reading: the file is not there yet, which is no failure. */
	o.write = 0;
	if (cache_open(path, &o, err, sizeof err) != NULL || errno != ENOENT)
		return 3;
	return 0;
}

static void
test_unwritable_dir(void **state)
{
	char dir[PATH_MAX], path[PATH_MAX];

	(void)state;
	tpath(dir, sizeof dir, "ro");
	assert_int_equal(mkdir(dir, 0755), 0);
	join(path, sizeof path, dir, "c.mdb");
	if (geteuid() != 0)
		assert_int_equal(chmod(dir, 0555), 0);
	assert_int_equal(as_nobody(open_in_dir_child, path), 0);
	chmod(dir, 0755);
}

static int
open_denied_child(const char *path)
{
	struct cache_options o = { 0, 0, 0 };
	char err[512];

	if (cache_open(path, &o, err, sizeof err) != NULL)
		return 1;
	if (errno != EACCES || strstr(err, "Permission denied") == NULL)
		return 2;
	o.write = 1;
	if (cache_open(path, &o, err, sizeof err) != NULL)
		return 3;
	return errno == EACCES ? 0 : 4;
}

static void
test_permission_denied(void **state)
{
	char path[PATH_MAX];
	struct cache *c;

	(void)state;
	/* A cache made by another user (0600): "nobody" may not use it. */
	tpath(path, sizeof path, "theirs.mdb");
	c = open_w(path);
	record(c, "192.0.2.1", CACHE_PASS, T0, DAY);
	cache_close(c);
	if (geteuid() != 0) {
		char lock[PATH_MAX + 8];

		assert_int_equal(chmod(path, 0), 0);
		snprintf(lock, sizeof lock, "%s-lock", path);
		assert_int_equal(chmod(lock, 0), 0);
	}
	assert_int_equal(as_nobody(open_denied_child, path), 0);
}

static void
test_garbage_file(void **state)
{
	char path[PATH_MAX], garbage[65536];
	struct cache *c;
	size_t i;

	(void)state;
	srand(4242);
	for (i = 0; i < sizeof garbage; i++)
		garbage[i] = (char)rand();
	tpath(path, sizeof path, "garbage.mdb");
	write_bytes(path, garbage, sizeof garbage, 0, 1);
	expect_open_fails(path, 0, 0, "not an LMDB file");
	expect_open_fails(path, 1, 0, "not an LMDB file");
	/* Text, as if a wrong file were named. */
	tpath(path, sizeof path, "text.mdb");
	write_bytes(path, "192.0.2.0/24\n", 13, 0, 1);
	expect_open_fails(path, 0, 0, NULL);
	expect_open_fails(path, 1, 0, NULL);
	/* An empty file (a writer killed as it created it) is taken over. */
	tpath(path, sizeof path, "empty0.mdb");
	write_bytes(path, "", 0, 0, 1);
	c = open_w(path);
	record(c, "192.0.2.1", CACHE_PASS, T0, DAY);
	assert_int_equal(lookup(c, "192.0.2.1", NULL, T0, NULL), 1);
	cache_close(c);
}

/*
 * Valid meta pages over garbage (or zeroed) data pages: whatever LMDB
 * makes of them, every call returns an answer or an error, never a
 * crash, and leaves no signal handler behind.  Each try runs in a child
 * so that a crash shows as a failure rather than ending the run.
 */
static int
corrupt_child(const char *path)
{
	struct cache_options o = { 0, 0, 0 };
	struct cache_counts n;
	struct sigaction sa, segv_before, bus_before;
	struct listed l;
	char err[512];
	struct cache *c;
	int i, errors = 0;

	sigaction(SIGSEGV, NULL, &segv_before);
	sigaction(SIGBUS, NULL, &bus_before);
	c = cache_open(path, &o, err, sizeof err);
	if (c == NULL)
		return 0;
	for (i = 0; i < 300; i++) {
		char addr[64];
		struct cache_key k;
		struct cache_entry e;

		snprintf(addr, sizeof addr, "10.0.%d.%d", i / 256, i % 256);
		k = key(addr, NULL);
		if (cache_lookup(c, &k, T0, &e) < 0)
			errors++;
	}
	memset(&l, 0, sizeof l);
	l.stop_after = 8;
	if (cache_list(c, collect, &l) < 0)
		errors++;
	if (cache_count(c, T0, &n) < 0)
		errors++;
	cache_close(c);
	sigaction(SIGSEGV, NULL, &sa);
	if (sa.sa_handler != segv_before.sa_handler)
		return 10;
	sigaction(SIGBUS, NULL, &sa);
	if (sa.sa_handler != bus_before.sa_handler)
		return 11;
	(void)errors;	/* errors are fine; crashing is not */
	return 0;
}

static void
test_corrupt_pages(void **state)
{
	char good[PATH_MAX], path[PATH_MAX], addr[64];
	static char data[1 << 20];
	struct cache *c;
	struct stat st;
	long psize = sysconf(_SC_PAGESIZE);
	int fd, seed;
	ssize_t len;

	(void)state;
	tpath(good, sizeof good, "good.mdb");
	c = open_w(good);
	for (seed = 0; seed < 3000; seed++) {
		snprintf(addr, sizeof addr, "10.0.%d.%d", seed / 256, seed % 256);
		record(c, addr, CACHE_PASS, T0, DAY);
	}
	cache_close(c);
	assert_int_equal(stat(good, &st), 0);
	assert_true(st.st_size <= (off_t)sizeof data);
	fd = open(good, O_RDONLY);
	len = read(fd, data, sizeof data);
	close(fd);
	assert_true(len == st.st_size && len > 4 * psize);
	for (seed = 0; seed < 40; seed++) {
		static char copy[1 << 20];
		long p;

		memcpy(copy, data, (size_t)len);
		srand((unsigned)seed);
		/* Keep the two meta pages; spoil the rest. */
		for (p = 2 * psize; p < len; p++)
			copy[p] = seed % 4 == 0 ? 0 : seed % 4 == 1 ?
			    (char)rand() : (rand() % 16 == 0 ? (char)rand() :
			    copy[p]);
		if (seed % 4 == 3)	/* truncated as well */
			len = len * 2 / 3;
		snprintf(addr, sizeof addr, "corrupt-%d.mdb", seed);
		tpath(path, sizeof path, addr);
		write_bytes(path, copy, (size_t)len, 0, 1);
		if (in_child(corrupt_child, path, 0) != 0)
			fail_msg("seed %d: a signal handler was left", seed);
		len = st.st_size;
	}
}

/* The guard turns a fault inside a call into an error, in this process. */
static void
test_fault_is_an_error(void **state)
{
	char good[PATH_MAX], addr[64];
	struct cache_key k;
	struct cache_entry e;
	struct cache *c;
	struct stat st;
	struct sigaction before, after;
	int i, fd;

	(void)state;
	sigaction(SIGBUS, NULL, &before);
	tpath(good, sizeof good, "shrunk.mdb");
	c = open_w(good);
	for (i = 0; i < 2000; i++) {
		snprintf(addr, sizeof addr, "10.1.%d.%d", i / 256, i % 256);
		record(c, addr, CACHE_PASS, T0, DAY);
	}
	cache_close(c);
	c = open_r(good);
	/* Cut the file under the mapping: pages past the end raise SIGBUS. */
	assert_int_equal(stat(good, &st), 0);
	fd = open(good, O_WRONLY);
	assert_int_equal(ftruncate(fd, 2 * sysconf(_SC_PAGESIZE)), 0);
	close(fd);
	k = key("10.1.3.3", NULL);
	assert_int_equal(cache_lookup(c, &k, T0, &e), -1);
	assert_non_null(strstr(cache_error(c), "SIGBUS"));
	/* The handle is dead from now on, and says why. */
	assert_int_equal(cache_lookup(c, &k, T0, &e), -1);
	assert_non_null(strstr(cache_error(c), "corrupt"));
	cache_close(c);
	sigaction(SIGBUS, NULL, &after);
	assert_true(after.sa_handler == before.sa_handler);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_net_parse),
		cmocka_unit_test(test_size_parse),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_key_make_from_addr),
		cmocka_unit_test(test_key_parse_bad),
		cmocka_unit_test(test_record_lookup),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_network_keys),
		cmocka_unit_test(test_bad_entries),
		cmocka_unit_test(test_list_count_delete),
		cmocka_unit_test(test_purge),
		cmocka_unit_test(test_purge_on_write),
		cmocka_unit_test(test_map_full),
		cmocka_unit_test(test_reader_sees_growth),
		cmocka_unit_test(test_descriptors),
		cmocka_unit_test(test_signal_state_kept),
		cmocka_unit_test(test_lock_timeout),
		cmocka_unit_test(test_stale_reader_slots),
		cmocka_unit_test(test_writers_killed),
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_unwritable_dir),
		cmocka_unit_test(test_permission_denied),
		cmocka_unit_test(test_garbage_file),
		cmocka_unit_test(test_corrupt_pages),
		cmocka_unit_test(test_fault_is_an_error),
	};

	umask(022);
	return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
