/*
 * test_core.c - cmocka tests for core.c's verdict lines: text that comes
 * from a file (the matching allowlist rule, which a damaged or hostile
 * compiled list may make anything) never breaks or forges a log line;
 * and a known early talker is turned away for now only (421), whatever
 * -x says, or let through with -x pass.
 *
 * Lines are logged to standard error, here a file read back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "log.h"
#include "smtp.h"
#include "testlib.h"

/* A rule as a damaged .cdb could hand it over: CR, LF, a quote, a
 * space, a byte past ASCII, and the start of a forged line. */
static const char hostile[] = "10.0.0.0/8\r\nsendwrap: allow ip=6.6.6.6 "
    "\"x\"\xff";
static const char escaped[] = "10.0.0.0/8\\r\\nsendwrap:\\x20allow\\x20"
    "ip=6.6.6.6\\x20\\\"x\\\"\\xff";

static char log_path[PATH_MAX];
static int saved_stderr = -1;

/* Standard error to a fresh file until read_log(). */
static void
capture(void)
{
	int fd;

	if ((size_t)snprintf(log_path, sizeof log_path, "%s/log",
	    scratch_dir) >= sizeof log_path)
		fail_msg("path too long");
	fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	saved_stderr = dup(2);
	assert_int_equal(dup2(fd, 2), 2);
	close(fd);
	log_open(LOGTO_STDERR);
}

static void
read_log(char *buf, size_t size)
{
	int fd;
	ssize_t n;

	dup2(saved_stderr, 2);
	close(saved_stderr);
	fd = open(log_path, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, buf, size - 1);
	close(fd);
	assert_true(n > 0);
	buf[n] = '\0';
}

static void
setup_core(struct core *c, struct config *cfg, struct peer *p,
    struct decision *d)
{
	memset(cfg, 0, sizeof *cfg);
	memset(p, 0, sizeof *p);
	memset(d, 0, sizeof *d);
	core_init(c, cfg, 0);
	snprintf(p->ip, sizeof p->ip, "192.0.2.1");
	snprintf(p->port, sizeof p->port, "25");
	p->known = 1;
	d->match.found = 1;
	d->reason = REASON_ALLOWLIST;
	assert_true(sizeof hostile <= sizeof d->match.rule);
	memcpy(d->match.rule, hostile, sizeof hostile);
}

/* One line, ending in the escaped rule. */
static void
expect_one_line_with_rule(const char *text)
{
	char want[512];
	const char *nl = strchr(text, '\n');

	assert_non_null(nl);
	assert_int_equal(nl[1], '\0');		/* one line */
	assert_null(strchr(text, '\r'));
	snprintf(want, sizeof want, " rule=%s\n", escaped);
	if (strstr(text, want) == NULL)
		fail_msg("line %s lacks %s", text, want);
}

/* The two lines with a rule= field: allow and pass. */
static void
test_rule_escaped(void **state)
{
	struct config cfg;
	struct decision d;
	struct core c;
	struct peer p;
	char text[1024];
	int pass;

	(void)state;
	for (pass = 0; pass < 2; pass++) {
		setup_core(&c, &cfg, &p, &d);
		d.delay_ms = pass ? 1000 : 0;
		capture();
		if (pass)
			core_pass(&c, &p, &d, 1000);
		else
			core_allow(&c, &p, &d);
		read_log(text, sizeof text);
		assert_true(strncmp(text, pass ? "sendwrap: pass ip=192.0.2.1 " :
		    "sendwrap: allow ip=192.0.2.1 ", 28) == 0);
		expect_one_line_with_rule(text);
	}
}

static void
test_known_early_is_temporary(void **state)
{
	struct config cfg;
	struct decision d;
	struct core c;
	struct peer p;
	char text[1024];
	int x;

	(void)state;
	for (x = 0; x < EARLY_COUNT; x++) {
		setup_core(&c, &cfg, &p, &d);
		cfg.early = (enum early_action)x;
		capture();
		if (x == EARLY_PASS)
			assert_null(core_known_early(&c, &p, &d));
		else
			assert_string_equal(core_known_early(&c, &p, &d),
			    REPLY_KNOWN_EARLY);
		read_log(text, sizeof text);
		assert_non_null(strstr(text, x == EARLY_PASS ?
		    " action=pass\n" : " action=tempfail\n"));
	}
	assert_int_equal(REPLY_KNOWN_EARLY[0], '4');
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rule_escaped),
		cmocka_unit_test(test_known_early_is_temporary),
	};

	return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
