/*
 * test_allowdb.c - cmocka tests for allowdb.c with damaged and hostile
 * compiled allowlists: whatever the bytes, opening and looking up end in
 * an error or in an answer whose rule covers the address; never a crash,
 * a leaked descriptor, or the fault guard left in place.  (The answers of
 * good files are tested in test_whitelist.c, against the text.)
 *
 * Files are made in a mkdtemp() directory that the group teardown removes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "allowdb.h"
#include "smtp.h"
#include "testlib.h"

static void
no_report(void *ctx, const char *path, unsigned long line, const char *msg)
{
	(void)ctx;
	print_error("unexpected report: %s:%lu: %s\n", path, line, msg);
	fail();
}

/* Compile text into the compiled file name; its path, to be freed. */
static char *
compiled(const char *name, const char *text)
{
	char *txt = scratch_file("source.txt"), *out = scratch_file(name);
	FILE *f = fopen(txt, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) < 0, 0);
	assert_int_equal(fclose(f), 0);
	assert_true(wl_compile(txt, out, no_report, NULL) >= 0);
	unlink(txt);
	free(txt);
	return out;
}

static unsigned char *
slurp(const char *path, size_t *len)
{
	struct stat st;
	unsigned char *buf;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

static void
put_bytes(const char *path, off_t off, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, p, n, off), (ssize_t)n);
	close(fd);
}

/* The peers every damaged file is asked about. */
static const char *const peers[] = {
	"10.1.2.3", "10.200.0.1", "192.0.2.77", "198.51.100.1", "0.0.0.0",
	"255.255.255.255", "2001:db8::1", "2001:db8:1::5", "::", "::1",
	"fe80::1",
};
#define NPEERS (sizeof peers / sizeof peers[0])

/* What the lookups of one file came to. */
struct tally {
	unsigned long refused, found, missed, errors;
};

/* Nothing from the file in a message: one of allowdb.c's own. */
static int
known_message(const char *why)
{
	static const char *const known[] = {
		("not a compiled sendwrap allowlist "
		    "(make one with sendwrap --compile)"),
		"corrupt compiled allowlist",
		"cannot open allowlist",
		"cannot read compiled allowlist",
		"cannot map compiled allowlist",
		"compiled allowlist replaced while being opened",
	};
	size_t i;

	for (i = 0; i < sizeof known / sizeof known[0]; i++)
		if (strcmp(why, known[i]) == 0)
			return 1;
	print_error("unexpected message: %s\n", why);
	return 0;
}

/* An answer must be a rule covering the peer, with a delay in range. */
static void
check_match(const struct wl_match *m, const struct addr *a, const char *peer)
{
	struct wl_entry e;
	const char *why;

	if (wl_parse_cidr(m->rule, strlen(m->rule), &e, &why) != 0 ||
	    !wl_entry_matches(&e, a) || m->delay_ms > SMTP_GREETING_WAIT_MS) {
		print_error("%s: bad answer (delay %llu)\n", peer,
		    (unsigned long long)m->delay_ms);
		fail();
	}
}

/* Open path and ask about every peer; nothing may go wrong but errors. */
static void
ask(const char *path, struct tally *t)
{
	const char *why = NULL;
	struct allowdb *db = allowdb_open(path, &why);
	size_t i;

	if (db == NULL) {
		assert_non_null(why);
		assert_true(known_message(why));
		t->refused++;
		return;
	}
	for (i = 0; i < NPEERS; i++) {
		struct wl_match m;
		struct addr a;
		int r;

		assert_int_equal(addr_parse(peers[i], &a), 0);
		memset(&m, 0x5a, sizeof m);
		why = NULL;
		r = allowdb_find(db, &a, &m, &why);
		if (r == 1) {
			check_match(&m, &a, peers[i]);
			t->found++;
		} else if (r == 0) {
			assert_int_equal(m.found, 0);
			t->missed++;
		} else {
			assert_int_equal(r, -1);
			assert_non_null(why);
			assert_true(known_message(why));
			t->errors++;
		}
	}
	allowdb_close(db);
}

static const char list[] =
    "10.0.0.0/8 1\n"
    "10.1.0.0/16 2\n"
    "192.0.2.0/25\n"
    "192.0.2.64/26 3\n"
    "198.51.100.0/24 4s\n"
    "2001:db8::/32 5\n"
    "2001:db8:1::/48 6\n"
    "::/0 7\n";

/* The handlers in place before, to compare with after. */
static void
fault_handlers(struct sigaction *segv, struct sigaction *bus)
{
	sigaction(SIGSEGV, NULL, segv);
	sigaction(SIGBUS, NULL, bus);
}

static void
same_handlers(const struct sigaction *segv, const struct sigaction *bus)
{
	struct sigaction s, b;

	fault_handlers(&s, &b);
	assert_ptr_equal(s.sa_handler, segv->sa_handler);
	assert_ptr_equal(b.sa_handler, bus->sa_handler);
}

/* Every byte of a small file changed in turn, three ways. */
static void
test_every_byte(void **state)
{
	static const unsigned char flips[] = { 0x01, 0x80, 0xff };
	char *path = compiled("bytes.cdb", list);
	struct sigaction segv, bus;
	struct tally t;
	unsigned char *good;
	size_t len, i, k;
	int fds = count_fds();

	(void)state;
	memset(&t, 0, sizeof t);
	good = slurp(path, &len);
	ask(path, &t);
	assert_int_equal(t.found, NPEERS - 2);	/* 0.0.0.0, 255.255.255.255 */
	fault_handlers(&segv, &bus);
	memset(&t, 0, sizeof t);
	for (i = 0; i < len; i++) {
		for (k = 0; k < sizeof flips; k++) {
			unsigned char b = good[i] ^ flips[k];

			put_bytes(path, (off_t)i, &b, 1);
			ask(path, &t);
		}
		put_bytes(path, (off_t)i, good + i, 1);
	}
	same_handlers(&segv, &bus);
	assert_int_equal(count_fds(), fds);
	/* The damage was seen, and most changes were in unused bytes. */
	assert_true(t.refused > 0);
	assert_true(t.found > t.missed);
	print_message("      %zu bytes: %lu refused, %lu found, %lu missed, "
	    "%lu errors\n", len, t.refused, t.found, t.missed, t.errors);
	free(good);
	free(path);
}

/*
 * Where allowdb.c expects LMDB's page size and last page number in a
 * meta page (see there); test_meta_pages checks them against LMDB.
 */
#define AT_PSIZE (2 * sizeof(size_t) + 8 + 8 + sizeof(void *))
#define AT_LAST_PAGE (AT_PSIZE + 2 * (8 + 5 * sizeof(size_t)))

static size_t
word_at(const unsigned char *buf, size_t off, size_t size)
{
	size_t w = 0;

	memcpy(&w, buf + off, size);
	return w;
}

/* The page size and last page as LMDB reports them. */
static void
lmdb_geometry(const char *path, size_t *psize, size_t *last)
{
	MDB_env *env;
	MDB_stat st;
	MDB_envinfo info;

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_open(env, path, MDB_RDONLY | MDB_NOLOCK |
	    MDB_NOSUBDIR, 0), 0);
	assert_int_equal(mdb_env_stat(env, &st), 0);
	assert_int_equal(mdb_env_info(env, &info), 0);
	*psize = st.ms_psize;
	*last = info.me_last_pgno;
	mdb_env_close(env);
}

/*
 * The meta pages LMDB trusts: a page size of 0 (a division by zero in
 * LMDB) or a last page past the end of the file, in either meta page or
 * both, is refused as corrupt.
 */
static void
test_meta_pages(void **state)
{
	char *path = compiled("meta.cdb", list);
	const size_t zero = 0, huge = (size_t)1 << 40;
	unsigned char *good;
	size_t len, psize, last, m;
	struct tally t;
	int which;

	(void)state;
	good = slurp(path, &len);
	lmdb_geometry(path, &psize, &last);
	assert_int_equal(len, (last + 1) * psize);
	/* The layout: both pages agree on the size; the newer (the second,
	 * after one commit) has the last page. */
	for (m = 0; m < 2; m++) {
		assert_int_equal(word_at(good, m * psize + AT_PSIZE, 4), psize);
		assert_true(word_at(good, m * psize + AT_LAST_PAGE,
		    sizeof last) <= last);
	}
	assert_int_equal(word_at(good, psize + AT_LAST_PAGE, sizeof last), last);
	for (which = 1; which <= 3; which++) {
		for (m = 0; m < 2; m++) {
			const char *why = NULL;

			if (which & 1)
				put_bytes(path, (off_t)(m * psize + AT_PSIZE),
				    &zero, 4);
			if (which & 2)
				put_bytes(path, (off_t)(m * psize +
				    AT_LAST_PAGE), &huge, sizeof huge);
			assert_null(allowdb_open(path, &why));
			assert_int_equal(errno, EINVAL);
			assert_string_equal(why, "corrupt compiled allowlist");
			put_bytes(path, 0, good, len);
		}
	}
	/* One page short: LMDB would map past the end of the file. */
	assert_int_equal(truncate(path, (off_t)(len - psize)), 0);
	memset(&t, 0, sizeof t);
	ask(path, &t);
	assert_int_equal(t.refused, 1);
	free(good);
	free(path);
}

/* A file cut anywhere is refused or answers; never a fault. */
static void
test_truncated(void **state)
{
	char *big = malloc(3000 * 32), *p = big, *path;
	unsigned char *good;
	size_t len, cut;
	struct tally t;
	int i;

	(void)state;
	assert_non_null(big);
	for (i = 0; i < 3000; i++)
		p += sprintf(p, "10.%d.%d.0/24 %d\n", i / 256, i % 256, i % 300);
	path = compiled("cut.cdb", big);
	good = slurp(path, &len);
	assert_true(len > 16 * 4096);
	memset(&t, 0, sizeof t);
	for (cut = 0; cut < len; cut += cut < 64 ? 7 : 1021) {
		assert_int_equal(truncate(path, (off_t)cut), 0);
		ask(path, &t);
		put_bytes(path, 0, good, len);
	}
	assert_true(t.refused > 0);
	free(good);
	free(big);
	free(path);
}

/*
 * A page with a key count past 2^30 (its lower bound below the header)
 * and fixed-size keys (P_LEAF2) sends LMDB's binary search round for
 * ever: the lookup must give up with an error.  A hang fails by alarm.
 */
static void
test_looping_page(void **state)
{
	char *big = malloc(600 * 32), *p = big, *path;
	unsigned char *good;
	size_t len, psize, last, pg;
	struct tally t;
	int i;

	(void)state;
	assert_non_null(big);
	for (i = 0; i < 600; i++)
		p += sprintf(p, "10.%d.%d.0/24 %d\n", i / 256, i % 256, i % 300);
	path = compiled("loop.cdb", big);
	good = slurp(path, &len);
	lmdb_geometry(path, &psize, &last);
	memset(&t, 0, sizeof t);
	alarm(20);
	for (pg = 2; pg <= last; pg++) {
		/* The page header: number, 2 bytes, flags, lower, upper. */
		size_t at = pg * psize + sizeof(size_t) + 2;
		uint16_t flags = (uint16_t)(good[at] | good[at + 1] << 8);
		unsigned char head[4] = { 0, 0, 10, 0 };

		flags |= 0x20;		/* P_LEAF2 */
		head[0] = (unsigned char)flags;
		head[1] = (unsigned char)(flags >> 8);
		put_bytes(path, (off_t)at, head, sizeof head);
		ask(path, &t);
		put_bytes(path, 0, good, len);
	}
	alarm(0);
	/* Each page was on the way of some lookup, or of opening. */
	assert_true(t.errors + t.refused >= last - 1);
	free(good);
	free(big);
	free(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_byte),
		cmocka_unit_test(test_meta_pages),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_looping_page),
	};

	return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
