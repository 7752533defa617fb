/*
 * test_redis.c - cmocka tests for redis.c and store.c's format: the
 * --redis URL, the password file's checks, the reply reader with its
 * limits, the key and value stored in Redis, and the time budget with a
 * server that accepts and never answers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "conn.h"
#include "redis.h"
#include "store.h"
#include "testlib.h"

static void
url_ok(const char *s, int family, unsigned port, const char *user,
    unsigned db)
{
	struct redis_url u;
	const char *why = NULL;

	if (redis_url_parse(s, &u, &why) != 0) {
		print_error("%s: refused (%s)\n", s, why);
		fail();
	}
	assert_int_equal(u.addr.ss_family, family);
	assert_string_equal(u.text, s);
	assert_string_equal(u.user, user);
	assert_int_equal(u.db, db);
	if (family == AF_INET)
		assert_int_equal(ntohs(((struct sockaddr_in *)&u.addr)->sin_port),
		    port);
	else if (family == AF_INET6)
		assert_int_equal(ntohs(((struct sockaddr_in6 *)&u.addr)->
		    sin6_port), port);
}

static void
url_bad(const char *s, const char *frag)
{
	struct redis_url u;
	const char *why = NULL;

	if (redis_url_parse(s, &u, &why) == 0) {
		print_error("%s: accepted\n", s);
		fail();
	}
	if (why == NULL || strstr(why, frag) == NULL) {
		print_error("%s: '%s', want '%s'\n", s, why ? why : "", frag);
		fail();
	}
}

static void
test_urls(void **state)
{
	(void)state;
	url_ok("redis://127.0.0.1", AF_INET, 6379, "", 0);
	url_ok("redis://localhost:6380/2", AF_INET, 6380, "", 2);
	url_ok("redis://sendwrap@10.0.0.5", AF_INET, 6379, "sendwrap", 0);
	url_ok("redis://@10.0.0.5/", AF_INET, 6379, "", 0);
	url_ok("redis://[::1]:7000/15", AF_INET6, 7000, "", 15);
	url_ok("redis://mx-1.user_x@[2001:db8::5]", AF_INET6, 6379,
	    "mx-1.user_x", 0);
	url_ok("unix:/run/redis/redis.sock", AF_UNIX, 0, "", 0);
	url_ok("unix:/run/redis.sock?db=3&user=exim", AF_UNIX, 0, "exim", 3);
	url_ok("unix:/run/redis.sock?user=exim&db=1000000", AF_UNIX, 0,
	    "exim", 1000000);

	url_bad("redis://:pw@127.0.0.1", "no password in the URL");
	url_bad("redis://u:pw@127.0.0.1/0", "no password in the URL");
	url_bad("redis://redis.example.org", "no names are looked up");
	url_bad("redis://127.0.0.1:0", "bad PORT");
	url_bad("redis://127.0.0.1:65536", "bad PORT");
	url_bad("redis://127.0.0.1:", "bad PORT");
	url_bad("redis://127.0.0.1/1000001", "bad DB");
	url_bad("redis://127.0.0.1/-1", "bad DB");
	url_bad("redis://[::1", "HOST is");
	url_bad("redis://[::1]x", "HOST is");
	url_bad("redis://a b@127.0.0.1", "bad USER");
	url_bad("unix:run.sock", "absolute PATH");
	url_bad("unix:/", "absolute PATH");
	url_bad("unix:/r.sock?db=", "db=N");
	url_bad("unix:/r.sock?pass=x", "db=N");
	url_bad("http://127.0.0.1", "not redis://");
	url_bad("", "not redis://");
}

static const char *
put(const char *name, const char *text, mode_t mode)
{
	static char path[PATH_MAX + 64];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", scratch_dir, name);
	unlink(path);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
	return path;
}

static void
test_password_file(void **state)
{
	char pw[REDIS_PASSWORD_MAX + 1], err[512], link[PATH_MAX + 64];
	char big[REDIS_PASSWORD_MAX + 10];
	const char *p;

	(void)state;
	p = put("pw1", "s3cret\r\nsecond line\n", 0600);
	assert_int_equal(redis_password_read(p, pw, sizeof pw, err,
	    sizeof err), 0);
	assert_string_equal(pw, "s3cret");
	p = put("pw2", "no-newline", 0400);
	assert_int_equal(redis_password_read(p, pw, sizeof pw, err,
	    sizeof err), 0);
	assert_string_equal(pw, "no-newline");

	p = put("pw3", "s3cret\n", 0640);
	assert_int_equal(redis_password_read(p, pw, sizeof pw, err,
	    sizeof err), -1);
	assert_non_null(strstr(err, "group or others"));
	assert_null(strstr(err, "s3cret"));
	p = put("pw4", "s3cret\n", 0602);
	assert_int_equal(redis_password_read(p, pw, sizeof pw, err,
	    sizeof err), -1);
	p = put("pw5", "\nafter\n", 0600);
	assert_int_equal(redis_password_read(p, pw, sizeof pw, err,
	    sizeof err), -1);
	assert_non_null(strstr(err, "no password"));
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	p = put("pw6", big, 0600);
	assert_int_equal(redis_password_read(p, pw, sizeof pw, err,
	    sizeof err), -1);
	assert_non_null(strstr(err, "too long"));

	p = put("pw7", "s3cret\n", 0600);
	snprintf(link, sizeof link, "%s/pwlink", scratch_dir);
	unlink(link);
	assert_int_equal(symlink(p, link), 0);
	assert_int_equal(redis_password_read(link, pw, sizeof pw, err,
	    sizeof err), -1);
	assert_non_null(strstr(err, "symbolic link"));
	assert_int_equal(redis_password_read(scratch_dir, pw, sizeof pw, err,
	    sizeof err), -1);
	assert_non_null(strstr(err, "not a regular file"));
}

struct got {
	int n;
	struct redis_reply *r[8];
};

static void
keep(void *ctx, struct redis_reply *r)
{
	struct got *g = ctx;

	if (g->n < 8)
		g->r[g->n++] = r;
	else
		redis_reply_free(r);
}

static void
drop_all(struct got *g)
{
	while (g->n > 0)
		redis_reply_free(g->r[--g->n]);
}

static void
test_replies(void **state)
{
	static const char wire[] = "+OK\r\n-WRONGPASS no\r\n:42\r\n$-1\r\n"
	    "$5\r\nhe\0lo\r\n*2\r\n$1\r\n0\r\n*1\r\n$3\r\nabc\r\n*-1\r\n$3\r\nab";
	struct got g = { 0, { NULL } };
	char huge[64];

	(void)state;
	assert_int_equal(redis_parse(wire, sizeof wire - 1, keep, &g), 7);
	assert_int_equal(g.r[0]->type, REDIS_STATUS);
	assert_string_equal(g.r[0]->str, "OK");
	assert_int_equal(g.r[1]->type, REDIS_ERROR);
	assert_int_equal(g.r[2]->type, REDIS_INTEGER);
	assert_int_equal(g.r[2]->integer, 42);
	assert_int_equal(g.r[3]->type, REDIS_NIL);
	assert_int_equal(g.r[4]->type, REDIS_STRING);
	assert_int_equal(g.r[4]->len, 5);
	assert_memory_equal(g.r[4]->str, "he\0lo", 5);
	assert_int_equal(g.r[5]->type, REDIS_ARRAY);
	assert_int_equal(g.r[5]->elements, 2);
	assert_string_equal(g.r[5]->element[1]->element[0]->str, "abc");
	assert_int_equal(g.r[6]->type, REDIS_NIL);
	drop_all(&g);

	/* Over the limits, or not the protocol: an error, nothing leaks. */
	snprintf(huge, sizeof huge, "*%d\r\n", REDIS_REPLY_ELEMENTS_MAX + 1);
	assert_int_equal(redis_parse(huge, strlen(huge), keep, &g), -1);
	assert_int_equal(redis_parse("?what\r\n", 7, keep, &g), -1);
	assert_int_equal(redis_parse("*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n"
	    "*1\r\n*1\r\n*1\r\n:1\r\n", 43, keep, &g), -1);
	drop_all(&g);
}

static void
test_entries(void **state)
{
	static const struct cache_net net = { 24, 64 };
	char key[CACHE_KEY_TEXT_MAX + 16], value[STORE_VALUE_MAX];
	struct cache_entry e, back;
	struct addr a;
	size_t klen, vlen;

	(void)state;
	memset(&e, 0, sizeof e);
	assert_int_equal(addr_parse("192.0.2.77", &a), 0);
	cache_key_make(&e.key, &a, &net);
	e.kind = CACHE_BAD;
	e.recorded_ms = 1764493200000ULL;
	e.expires_ms = 1764496800000ULL;
	klen = store_redis_key(&e.key, key, sizeof key);
	vlen = store_value_format(&e, value, sizeof value);
	assert_string_equal(key, "sendwrap:1:192.0.2.0/24");
	assert_string_equal(value, "bad 1764493200000 1764496800000");
	assert_int_equal(store_entry_parse(key, klen, value, vlen, &back), 0);
	assert_memory_equal(&back, &e, sizeof e);

	assert_int_equal(store_entry_parse("sendwrap:1:2001:db8:5:1::/64", 28,
	    "pass 1 2", 8, &back), 0);
	assert_int_equal(back.kind, CACHE_PASS);
	assert_true(back.expires_ms == 2);
	/* Not entries of this format. */
	assert_int_equal(store_entry_parse("sendwrap:2:192.0.2.0/24", 23,
	    "pass 1 2", 8, &back), -1);
	assert_int_equal(store_entry_parse("sendwrap:1:192.0.2.1", 20,
	    "pass 1 2", 8, &back), -1);
	assert_int_equal(store_entry_parse("sendwrap:1:192.0.2.1/24", 23,
	    "pass 1 2", 8, &back), -1);
	assert_int_equal(store_entry_parse(key, klen, "good 1 2", 8, &back),
	    -1);
	assert_int_equal(store_entry_parse(key, klen, "pass 1", 6, &back), -1);
	assert_int_equal(store_entry_parse(key, klen, "pass 1 2 ", 9, &back),
	    -1);
	assert_int_equal(store_entry_parse(key, klen, "pass 1  2", 9, &back),
	    -1);
	assert_int_equal(store_entry_parse(key, klen, "pass -1 2", 9, &back),
	    -1);
	assert_int_equal(store_entry_parse(key, klen,
	    "pass 12345678901234567890 2", 27, &back), -1);
}

/* A server that accepts (the kernel does) and never answers: the call
 * returns by its deadline, with the reason. */
static void
test_deadline(void **state)
{
	struct sockaddr_in sin = { AF_INET, 0, { htonl(INADDR_LOOPBACK) },
	    { 0 } };
	socklen_t len = sizeof sin;
	struct redis_url u;
	struct redis_setup s = { &u, 1, "pw" };
	struct redis_reply *r = NULL;
	struct redis *c = NULL;
	const char *why, *argv[2] = { "GET", "k" };
	char url[64], err[512];
	uint64_t t0, took;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	snprintf(url, sizeof url, "redis://127.0.0.1:%u", ntohs(sin.sin_port));
	assert_int_equal(redis_url_parse(url, &u, &why), 0);
	t0 = mono_ms();
	assert_int_equal(redis_run(&c, &s, t0 + 200, 0, 2, argv, NULL, &r, err,
	    sizeof err), -1);
	took = mono_ms() - t0;
	assert_null(c);
	assert_null(r);
	assert_true(took >= 190 && took < 1000);
	assert_non_null(strstr(err, "timed out (waiting for the reply)"));
	close(fd);
	/* Nothing listens there now. */
	assert_int_equal(redis_run(&c, &s, mono_ms() + 200, 0, 2, argv, NULL,
	    &r, err, sizeof err), -1);
	assert_non_null(strstr(err, "Connection refused"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_urls),
		cmocka_unit_test(test_password_file),
		cmocka_unit_test(test_replies),
		cmocka_unit_test(test_entries),
		cmocka_unit_test(test_deadline),
	};

	return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
