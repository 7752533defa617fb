/* allowdb.c - the compiled allowlist on tinycdb; see allowdb.h. */
#include "allowdb.h"

#include <cdb.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * Layout: one record per entry, keyed by family (4 or 6), prefix length
 * and the address cut to it; the value is the entry's place in the text
 * (4 bytes), its delay in ms (8 bytes), both little-endian, then its rule
 * text.  A repeated key keeps its first record (cdb_find returns that
 * one).  A meta record under a key no entry can have holds a bitmap of
 * the IPv4 prefix lengths in use, one of IPv6's, then the entry count.
 * A lookup probes each prefix length in use and keeps the match that
 * came first in the text.
 */
static const char meta_key[] = "\377sendwrap-allowlist-v1";
#define BITMAP_BYTES 17		/* one bit for each of prefixes 0..128 */
#define META_SIZE (2 * BITMAP_BYTES + 8)
#define KEY_MAX (2 + 16)
#define VALUE_FIXED (4 + 8)

struct allowdb {
	struct cdb db;
	const unsigned char *meta;
	size_t count;
};

struct allowdb_writer {
	struct cdb_make cm;
	unsigned char bitmap[2 * BITMAP_BYTES];
	uint64_t order;
};

static void
set_bit(unsigned char *map, unsigned bit)
{
	map[bit / 8] |= (unsigned char)(1u << (bit % 8));
}

static int
get_bit(const unsigned char *map, unsigned bit)
{
	return (map[bit / 8] >> (bit % 8)) & 1;
}

static size_t
make_key(unsigned char *key, const struct addr *a, unsigned prefix)
{
	struct addr cut = *a;
	unsigned nbytes = addr_bits(a->family) / 8;

	addr_cut(&cut, prefix);
	key[0] = a->family == AF_INET ? 4 : 6;
	key[1] = (unsigned char)prefix;
	memcpy(key + 2, cut.bytes, nbytes);
	return 2 + nbytes;
}

struct allowdb *
allowdb_open(int fd, const char **why)
{
	struct allowdb *db = calloc(1, sizeof *db);

	if (db == NULL) {
		*why = "cannot map compiled allowlist";
		return NULL;
	}
	if (cdb_init(&db->db, fd) != 0) {
		*why = "cannot map compiled allowlist";
		goto fail;
	}
	if (cdb_find(&db->db, meta_key, sizeof meta_key - 1) <= 0 ||
	    cdb_datalen(&db->db) != META_SIZE ||
	    (db->meta = cdb_get(&db->db, META_SIZE,
	    cdb_datapos(&db->db))) == NULL) {
		cdb_free(&db->db);
		*why = "not a compiled sendwrap allowlist "
		    "(make one with sendwrap --compile)";
		errno = EINVAL;
		goto fail;
	}
	db->count = (size_t)get_le(db->meta + 2 * BITMAP_BYTES, 8);
	return db;
fail:
	free(db);
	return NULL;
}

size_t
allowdb_count(const struct allowdb *db)
{
	return db->count;
}

/* The record of one probe: 1 if it came before *best, -1 if damaged. */
static int
take_record(struct allowdb *db, uint64_t *best, struct wl_match *m)
{
	unsigned vlen = cdb_datalen(&db->db);
	const unsigned char *val = cdb_get(&db->db, vlen, cdb_datapos(&db->db));
	uint64_t order;

	if (val == NULL || vlen < VALUE_FIXED ||
	    vlen - VALUE_FIXED >= WL_RULE_MAX)
		return -1;
	order = get_le(val, 4);
	if (order >= *best)
		return 0;
	*best = order;
	m->delay_ms = get_le(val + 4, 8);
	memcpy(m->rule, val + VALUE_FIXED, vlen - VALUE_FIXED);
	m->rule[vlen - VALUE_FIXED] = '\0';
	return 1;
}

int
allowdb_find(struct allowdb *db, const struct addr *a, struct wl_match *m,
    const char **why)
{
	const unsigned char *map = db->meta +
	    (a->family == AF_INET6 ? BITMAP_BYTES : 0);
	unsigned char key[KEY_MAX];
	uint64_t best = UINT64_MAX;
	unsigned prefix;

	for (prefix = 0; prefix <= addr_bits(a->family); prefix++) {
		size_t klen;
		int r;

		if (!get_bit(map, prefix))
			continue;
		klen = make_key(key, a, prefix);
		r = cdb_find(&db->db, key, (unsigned)klen);
		if (r > 0)
			r = take_record(db, &best, m);
		if (r < 0) {
			*why = "corrupt compiled allowlist";
			return -1;
		}
	}
	m->found = best != UINT64_MAX;
	return m->found;
}

void
allowdb_close(struct allowdb *db)
{
	if (db == NULL)
		return;
	cdb_free(&db->db);
	free(db);
}

struct allowdb_writer *
allowdb_write_start(int fd)
{
	struct allowdb_writer *w = calloc(1, sizeof *w);

	if (w != NULL && cdb_make_start(&w->cm, fd) != 0) {
		free(w);
		return NULL;
	}
	return w;
}

int
allowdb_write_add(struct allowdb_writer *w, const struct wl_entry *e)
{
	unsigned char key[KEY_MAX], val[VALUE_FIXED + WL_RULE_MAX];
	size_t klen = make_key(key, &e->net, e->prefix);
	size_t rlen = strlen(e->rule);

	put_le(val, w->order, 4);
	put_le(val + 4, e->delay_ms, 8);
	memcpy(val + VALUE_FIXED, e->rule, rlen);
	set_bit(w->bitmap + (e->net.family == AF_INET6 ? BITMAP_BYTES : 0),
	    e->prefix);
	w->order++;
	return cdb_make_add(&w->cm, key, (unsigned)klen, val,
	    (unsigned)(VALUE_FIXED + rlen));
}

int
allowdb_write_finish(struct allowdb_writer *w)
{
	unsigned char meta[META_SIZE];
	int r;

	memcpy(meta, w->bitmap, sizeof w->bitmap);
	put_le(meta + sizeof w->bitmap, w->order, 8);
	r = cdb_make_add(&w->cm, meta_key, sizeof meta_key - 1, meta,
	    sizeof meta) != 0 || cdb_make_finish(&w->cm) != 0 ? -1 : 0;
	free(w);
	return r;
}

void
allowdb_write_abort(struct allowdb_writer *w)
{
	/* tinycdb frees what it holds only in finish; the file goes anyway. */
	cdb_make_finish(&w->cm);
	free(w);
}
