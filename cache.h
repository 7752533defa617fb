/*
 * cache.h - the pass cache: networks whose clients waited out their
 * greeting delay once (kind "pass"), and, optionally, networks whose
 * clients were caught talking early or naming a greytrap (kind "bad"),
 * and, with --greylist, networks whose first attempt was turned away to
 * come back later (kind "grey": recorded is the time of that first
 * attempt), each with the time it was recorded and the time it expires.
 *
 * A key is the client's network: the address cut to /32 (IPv4) and /64
 * (IPv6) by default, other lengths with a struct cache_net.  IPv4-mapped
 * IPv6 addresses arrive here as IPv4 (peer.h), so they are keyed as IPv4.
 * One entry per key: recording a key replaces what it held.  Times are
 * wall-clock milliseconds since the epoch (the file outlives processes
 * and reboots); callers pass "now" in, so nothing here reads the clock
 * but cache_now_ms().
 *
 * Backend: one LMDB file (MDB_NOSUBDIR: PATH, and LMDB's PATH-lock),
 * both created mode 0600 by the first writer.  Before LMDB is given the
 * path, the directory and both files are checked (safefile.h: a
 * directory only we or root can write, regular files of ours with one
 * link, never a link followed) and a writer makes missing ones itself;
 * anything else is a failure of cache_open().  A reader makes nothing:
 * without a lock file it reads without LMDB's locks.  Every process
 * opens the file, does one short transaction and closes it again:
 *  - readers never wait: LMDB readers see a snapshot and take no lock;
 *  - writers are serialised, one short write transaction each, behind a
 *    lock with a time limit (flock on the data file, polled), so a stuck
 *    writer costs the others at most lock_ms, never their connection;
 *  - LMDB's own waits (its lock file's fcntl lock while the first opener
 *    sets it up, the mutexes of its reader table and writer) are bounded
 *    by lock_ms too: a holder that is stopped or hung makes the call fail
 *    like a fault (guard.h), and the handle dead;
 *  - MDB_NOSYNC: a commit reaches the page cache, not the disk.  A crash
 *    or kill -9 of any process loses nothing (the kernel has the pages)
 *    and LMDB's copy-on-write keeps the file consistent at every instant;
 *    only a crash of the whole machine can lose recent entries or, in the
 *    worst case, leave a file that fails to open (an error, see below);
 *  - reader slots of processes killed with -9 are freed (mdb_reader_check)
 *    before every write and when the reader table is full;
 *  - bad entries are what outsiders can add (one early line each), so
 *    they are capped: IPv6 ones keyed by /48 at the widest, and at most
 *    bad_max of them (a count kept in the file makes the check a read);
 *  - expired entries are removed by every write, at most two each (an
 *    index by expiry time makes finding them cheap), and on a full map
 *    before the one retry of the write.  A write adds at most one entry,
 *    so two keep the file at the size of the live entries and shrink a
 *    backlog; each removal dirties pages, so more would make every pass
 *    pay for the backlog (--cache-purge clears one at once).
 * A corrupt file can make LMDB fault or assert: every call into LMDB runs
 * under the guard (guard.h) that turns SIGSEGV, SIGBUS and LMDB's assertions into an
 * error (the handle is then dead).  Its handlers are in place (and those
 * two signals unblocked) only while a handle is open: the last
 * cache_close() puts back the caller's dispositions and mask, so none of
 * ours outlives the cache.
 *
 * Contract: no logging and no output; every failure is a return value
 * with a one-line reason (cache_error(), or the err buffer of
 * cache_open()).  Every descriptor is close-on-exec, and cache_close()
 * closes them all, even those of a handle that died (a fault or a
 * timeout inside LMDB, cache_open() included): close the cache before
 * exec.
 */
#ifndef SENDWRAP_CACHE_H
#define SENDWRAP_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define CACHE_V4LEN_DEFAULT 32
#define CACHE_V6LEN_DEFAULT 64
#define CACHE_V4LEN_MIN 8		/* wider would lump strangers together */
#define CACHE_V6LEN_MIN 16
/* Map size: the most the file can grow to (address space, not memory). */
#define CACHE_MAP_DEFAULT ((size_t)1 << (sizeof(size_t) >= 8 ? 30 : 28))
#define CACHE_MAP_MIN ((size_t)1 << 20)
#define CACHE_LOCK_MS_DEFAULT 1000	/* longest wait for the write lock */
#define CACHE_PURGE_PER_WRITE 2	/* expired entries removed per write */
#define CACHE_PURGE_MAP_FULL 4096	/* ... before the retry on a full map */
#define CACHE_KEY_TEXT_MAX 64		/* "ADDRESS/LEN" with its NUL */
#define CACHE_BAD_V6LEN 48		/* IPv6 bad entries: at most /48 */
#define CACHE_BAD_MAX_DEFAULT 100000	/* --bad-max */
#define CACHE_CAPPED 1		/* cache_record(): kept out by bad_max */

enum cache_kind { CACHE_PASS = 1, CACHE_BAD = 2, CACHE_GREY = 3 };

/* Prefix lengths that make an address a key. */
struct cache_net {
	unsigned v4len;			/* CACHE_V4LEN_MIN to 32 */
	unsigned v6len;			/* CACHE_V6LEN_MIN to 128 */
};

/* Family (4 or 6), prefix length, then the address bytes it covers. */
struct cache_key {
	unsigned char len;		/* bytes of data in use */
	unsigned char data[2 + 16];
};

struct cache_entry {
	struct cache_key key;
	enum cache_kind kind;
	uint64_t recorded_ms;
	uint64_t expires_ms;
};

struct cache_counts {
	unsigned long total, pass, bad, grey, expired;
};

struct cache_options {
	int write;			/* open for writing; may create PATH */
	size_t map_size;		/* 0: CACHE_MAP_DEFAULT */
	unsigned lock_ms;		/* any lock; 0: CACHE_LOCK_MS_DEFAULT */
};

struct cache;

/* "pass", "bad" or "grey". */
const char *cache_kind_name(enum cache_kind kind);

/* The kind named by the len bytes at s: 0 with *kind set, or -1. */
int cache_kind_parse(const char *s, size_t len, enum cache_kind *kind);

/* Count one entry of kind in n's pass, bad or grey. */
void cache_counts_add(struct cache_counts *n, enum cache_kind kind);

/* The wall clock in milliseconds since the epoch. */
uint64_t cache_now_ms(void);

/* "V4LEN,V6LEN" (e.g. "24,64").  0, or -1 if malformed or out of range. */
int cache_net_parse(const char *s, struct cache_net *net);

/* Bytes, with an optional K, M, G or T (powers of 1024): "512M". */
int cache_size_parse(const char *s, size_t *bytes);

/* The key of address a under net. */
void cache_key_make(struct cache_key *k, const struct addr *a,
    const struct cache_net *net);

/*
 * The key a bad entry for a goes under: as cache_key_make(), but an
 * IPv6 network at most CACHE_BAD_V6LEN long, so that one attacker's
 * /48 adds one bad entry, not 65 536.
 */
void cache_key_make_bad(struct cache_key *k, const struct addr *a,
    const struct cache_net *net);

/*
 * A key as cache_key_format() writes it ("192.0.2.0/24", no host bits),
 * or a bare address, keyed under net.  0, or -1 if neither.
 */
int cache_key_parse(const char *s, const struct cache_net *net,
    struct cache_key *k);

/* "192.0.2.0/24" or "2001:db8:1:2::/64"; returns the length written. */
size_t cache_key_format(const struct cache_key *k, char *buf, size_t size);

/*
 * Open the cache at path.  Reading never creates anything: a file that
 * does not exist yet gives NULL with errno ENOENT (nothing recorded yet,
 * not a failure for a lookup).  Writing creates path and path-lock, mode
 * 0600, when they do not exist.  A directory or file that is not safe to
 * use (see above) is a failure: NULL with errno EACCES, ELOOP or EINVAL.
 * NULL otherwise too, with the reason in err and errno set (EIO for an
 * LMDB error).
 */
struct cache *cache_open(const char *path, const struct cache_options *o,
    char *err, size_t errsize);

/* The reason for the last failure on c. */
const char *cache_error(const struct cache *c);

/*
 * Is there an entry for k that has not expired at now?  1 with *e filled,
 * 0 if not, -1 on failure.  Expired entries are left for the writers.
 */
int cache_lookup(struct cache *c, const struct cache_key *k, uint64_t now,
    struct cache_entry *e);

/*
 * Record k as kind at now, expiring at now + ttl_ms, replacing whatever
 * k held, and remove up to CACHE_PURGE_PER_WRITE expired entries.  On a
 * full map: remove up to CACHE_PURGE_MAP_FULL expired entries and try
 * once more.  Needs a cache opened for writing.  0, or -1 on failure.
 */
int cache_record(struct cache *c, const struct cache_key *k,
    enum cache_kind kind, uint64_t now, uint64_t ttl_ms);

/*
 * Record an early talker: a bad entry at bad (cache_key_make_bad()), as
 * cache_record() does, and in the same transaction remove the entry of
 * the client's own key own, if that is another key: a pass of its own
 * no longer stands.  A new bad entry is not recorded while bad_max (0:
 * no cap) are there after the purge: outsiders must not grow the file,
 * and a bot left out only waits the delay.  0, CACHE_CAPPED or -1.
 */
int cache_record_bad(struct cache *c, const struct cache_key *bad,
    const struct cache_key *own, uint64_t now, uint64_t ttl_ms,
    unsigned long bad_max);

/* Close the cache and every descriptor it holds.  c may be NULL. */
void cache_close(struct cache *c);

/*
 * Maintenance.  cache_list() calls fn for every entry, expired or not,
 * in key order, until fn returns nonzero; 0, or -1 on failure.
 */
int cache_list(struct cache *c,
    int (*fn)(void *ctx, const struct cache_entry *e), void *ctx);

/* Count the entries; expired ones are also counted by kind.  0 or -1. */
int cache_count(struct cache *c, uint64_t now, struct cache_counts *n);

/* Delete k: 1 if it was there, 0 if not, -1 on failure. */
int cache_delete(struct cache *c, const struct cache_key *k);

/*
 * Remove every entry expired at now, in transactions of a bounded size.
 * Returns how many, or -1 on failure.
 */
long cache_purge(struct cache *c, uint64_t now);

#endif
