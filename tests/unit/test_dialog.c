/*
 * test_dialog.c - cmocka tests for dialog.c (the greylisting dialog, fed
 * from memory, and served on a socketpair standing in for the client),
 * smtpline.c (lines and their flags) and greytrap.c (the trap list).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "dialog.h"
#include "greytrap.h"
#include "smtpline.h"
#include "testlib.h"

#define ALL_TESTS (GREY_TEST_BIT(GREY_PIPELINING) | \
    GREY_TEST_BIT(GREY_NON_SMTP) | GREY_TEST_BIT(GREY_BARE_NEWLINE))

static struct dialog_config
config(unsigned tests, int end_on_fault)
{
	struct dialog_config dc;

	memset(&dc, 0, sizeof dc);
	dc.host = "mx.example";
	dc.text = "Come back later";
	dc.tests = tests;
	dc.end_on_fault = end_on_fault;
	return dc;
}

/* Feed the input, then take every step: the replies, concatenated. */
static enum dialog_step
feed(struct dialog *d, const char *input, char *out, size_t size)
{
	char reply[DIALOG_REPLY_MAX];
	enum dialog_step step;
	size_t room, len, n = strlen(input), used = 0;
	char *at = dialog_room(d, &room);

	assert_true(n <= room);
	memcpy(at, input, n);
	dialog_received(d, n);
	out[0] = '\0';
	while ((step = dialog_next(d, reply, &len)) != DIALOG_READ) {
		assert_true(used + len < size);
		memcpy(out + used, reply, len);
		used += len;
		out[used] = '\0';
		if (step == DIALOG_CLOSE)
			break;
	}
	return step;
}

/* ------------------------------------------------------------ lines */

static void
test_lines_flags(void **state)
{
	struct smtp_lines in = { "", 0, 0 };
	char line[SMTP_LINE_MAX];
	const char *text = "EHLO a\r\nMAIL\nRC";
	unsigned how;
	size_t len, room;

	(void)state;
	memcpy(smtp_lines_room(&in, &room), text, strlen(text));
	in.len = strlen(text);
	assert_int_equal(smtp_take_line(&in, line, &len, &how), 1);
	assert_int_equal(len, 6);
	assert_memory_equal(line, "EHLO a", 6);
	assert_int_equal(how, LINE_MORE);
	assert_int_equal(smtp_take_line(&in, line, &len, &how), 1);
	assert_int_equal(how, LINE_BARE_LF | LINE_MORE);
	assert_int_equal(smtp_take_line(&in, line, &len, &how), 0);
	assert_int_equal(in.len, 2);
}

static void
test_lines_overlong(void **state)
{
	struct smtp_lines in = { "", 0, 0 };
	char line[SMTP_LINE_MAX];
	unsigned how;
	size_t len, room;
	char *at = smtp_lines_room(&in, &room);

	(void)state;
	assert_int_equal(room, SMTP_LINE_MAX);
	memset(at, 'x', room);
	in.len = room;
	/* Full and no line end: thrown away, the line marked long. */
	assert_int_equal(smtp_take_line(&in, line, &len, &how), 0);
	assert_int_equal(in.len, 0);
	memcpy(in.buf, "tail\r\n", 6);
	in.len = 6;
	assert_int_equal(smtp_take_line(&in, line, &len, &how), 1);
	assert_int_equal(how, LINE_LONG);
	/* The next line is whole again. */
	memcpy(in.buf, "QUIT\r\n", 6);
	in.len = 6;
	assert_int_equal(smtp_take_line(&in, line, &len, &how), 1);
	assert_int_equal(how, 0);
}

/* ------------------------------------------------------------ dialog */

static void
test_dialog_replies(void **state)
{
	struct dialog_config dc = config(ALL_TESTS, 1);
	struct dialog d;
	char out[2048];
	size_t n;

	(void)state;
	dialog_init(&d, &dc);
	n = dialog_greeting(&d, out, sizeof out);
	assert_string_equal(out, "220 mx.example ESMTP\r\n");
	assert_int_equal(n, strlen(out));
	assert_int_equal(feed(&d, "EHLO client.example\r\n", out, sizeof out),
	    DIALOG_READ);
	assert_string_equal(out, "250 mx.example\r\n");
	feed(&d, "MAIL FROM:<a@example.org> SIZE=100\r\n", out, sizeof out);
	assert_string_equal(out, "250 2.1.0 Ok\r\n");
	feed(&d, "RCPT TO:<b@example.org>\r\n", out, sizeof out);
	assert_string_equal(out, "250 2.1.5 Ok\r\n");
	feed(&d, "rcpt to: <c@example.org>\r\n", out, sizeof out);
	feed(&d, "DATA\r\n", out, sizeof out);
	assert_string_equal(out, "451 4.7.1 Come back later\r\n");
	feed(&d, "RSET\r\n", out, sizeof out);
	assert_string_equal(out, "250 2.0.0 Ok\r\n");
	feed(&d, "VRFY root\r\n", out, sizeof out);
	assert_string_equal(out, "502 5.5.2 Command not recognized\r\n");
	assert_int_equal(feed(&d, "QUIT\r\n", out, sizeof out), DIALOG_CLOSE);
	assert_string_equal(out, "221 2.0.0 Bye\r\n");
	assert_int_equal(d.end, END_QUIT);
	assert_true(d.quit);
	assert_int_equal(d.commands, 8);
	assert_int_equal(d.rcpts, 2);
	assert_int_equal(d.fault, -1);
	assert_false(dialog_failed(&d));
	assert_int_equal(d.helo.len, strlen("client.example"));
	assert_int_equal(d.from.len, strlen("<a@example.org>"));
	assert_memory_equal(d.from.text, "<a@example.org>", d.from.len);
	assert_memory_equal(d.rcpt.text, "<b@example.org>", d.rcpt.len);
}

static void
test_dialog_limits(void **state)
{
	struct dialog_config dc = config(0, 1);
	struct dialog d;
	char out[DIALOG_REPLY_MAX * 2], big[SMTP_LINE_MAX + 1];
	unsigned i;
	size_t n;

	(void)state;
	dialog_init(&d, &dc);
	memset(big, 'y', SMTP_LINE_MAX);
	big[SMTP_LINE_MAX] = '\0';
	feed(&d, big, out, sizeof out);
	feed(&d, "z\r\n", out, sizeof out);
	assert_string_equal(out, "500 5.5.2 Line too long\r\n");
	for (i = 2; i < DIALOG_COMMANDS_MAX; i++)
		assert_int_equal(feed(&d, "NOOP\r\n", out, sizeof out),
		    DIALOG_READ);
	assert_int_equal(feed(&d, "NOOP\r\n", out, sizeof out), DIALOG_CLOSE);
	assert_string_equal(out, "250 2.0.0 Ok\r\n"
	    "421 4.7.0 Too many commands, closing connection\r\n");
	assert_int_equal(d.end, END_COMMANDS);
	n = dialog_time_up(&d, out, sizeof out);
	out[n] = '\0';
	assert_string_equal(out, "421 4.4.2 Session time limit reached, "
	    "closing connection\r\n");
	assert_int_equal(d.end, END_TIME);
}

static void
test_dialog_pipelining(void **state)
{
	struct dialog_config dc = config(ALL_TESTS, 1);
	struct dialog d;
	char out[1024];

	(void)state;
	dialog_init(&d, &dc);
	feed(&d, "EHLO x\r\n", out, sizeof out);
	assert_int_equal(feed(&d, "MAIL FROM:<>\r\nRCPT TO:<a@b>\r\n", out,
	    sizeof out), DIALOG_CLOSE);
	assert_string_equal(out, "");	/* no reply: -x decides */
	assert_true(dialog_failed(&d));
	assert_int_equal(d.fault, GREY_PIPELINING);
	assert_int_equal(d.fault_at, 1);
	/* The evidence is what came too soon. */
	assert_memory_equal(d.faulty.text, "RCPT TO:<a@b>\r\n", d.faulty.len);
}

static void
test_dialog_tests_off_or_passed(void **state)
{
	struct dialog_config off = config(0, 1), pass = config(ALL_TESTS, 0);
	struct dialog d;
	char out[1024];

	(void)state;
	dialog_init(&d, &off);
	assert_int_equal(feed(&d, "GET / HTTP/1.0\r\nHost: x\n", out,
	    sizeof out), DIALOG_READ);
	assert_string_equal(out, "502 5.5.2 Command not recognized\r\n"
	    "502 5.5.2 Command not recognized\r\n");
	assert_int_equal(d.fault, -1);
	/* -x pass: the first test failed is noted, the dialog goes on. */
	dialog_init(&d, &pass);
	assert_int_equal(feed(&d, "HELO x\n", out, sizeof out), DIALOG_READ);
	assert_string_equal(out, "250 mx.example\r\n");
	assert_int_equal(d.fault, GREY_BARE_NEWLINE);
	assert_false(dialog_failed(&d));
	feed(&d, "GET / HTTP/1.1\r\n", out, sizeof out);
	assert_int_equal(d.fault, GREY_BARE_NEWLINE);
}

static void
test_non_smtp(void **state)
{
	static const struct { const char *line; int want; } cases[] = {
		{ "GET / HTTP/1.0", 1 }, { "post /x HTTP/1.1", 1 },
		{ "CONNECT mx.example:25 HTTP/1.1", 1 }, { "HEAD /", 1 },
		{ "Host: mx.example", 1 }, { "User-Agent: bot", 1 },
		{ "X-Mailer:x", 1 }, { "GET", 1 },
		{ "MAIL FROM:<a@b>", 0 }, { "RCPT TO:<get@b>", 0 },
		{ "EHLO get.example", 0 }, { "GETS x", 0 }, { "", 0 },
		{ ":", 0 }, { "QUIT", 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
		if (dialog_non_smtp(cases[i].line, strlen(cases[i].line)) !=
		    cases[i].want)
			fail_msg("dialog_non_smtp(\"%s\") != %d", cases[i].line,
			    cases[i].want);
}

/* ------------------------------------------------------------ serving */

static void
test_serve_on_a_socket(void **state)
{
	struct dialog_config dc = config(ALL_TESTS, 1);
	const char *script = "HELO c\r\n";
	struct dialog d;
	char buf[1024];
	ssize_t got;
	size_t n = 0;
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	/* What the client sent at once, then its end of file. */
	assert_int_equal(write(sv[1], script, strlen(script)),
	    (ssize_t)strlen(script));
	shutdown(sv[1], SHUT_WR);
	dialog_init(&d, &dc);
	dialog_serve(&d, sv[0], sv[0], mono_ms() + 5000);
	assert_int_equal(d.end, END_CLOSED);
	assert_int_equal(d.commands, 1);
	close(sv[0]);
	while ((got = read(sv[1], buf + n, sizeof buf - 1 - n)) > 0)
		n += (size_t)got;
	buf[n] = '\0';
	assert_string_equal(buf, "220 mx.example ESMTP\r\n250 mx.example\r\n");
	close(sv[1]);
}

static void
test_serve_time_limit(void **state)
{
	struct dialog_config dc = config(ALL_TESTS, 1);
	struct dialog d;
	uint64_t t0 = mono_ms();
	char buf[512];
	ssize_t n;
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	dialog_init(&d, &dc);
	dialog_serve(&d, sv[0], sv[0], t0 + 200);
	assert_true(mono_ms() - t0 >= 200);
	assert_int_equal(d.end, END_TIME);
	n = read(sv[1], buf, sizeof buf - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "421 4.4.2"));
	close(sv[0]);
	close(sv[1]);
}

/* ------------------------------------------------------------ traps */

static void
no_report(void *ctx, const char *path, unsigned long line, const char *msg)
{
	unsigned long *lines = ctx;

	(void)path;
	(void)msg;
	if (line > 0 && line < 8)
		lines[line] = 1;
}

static void
test_greytraps(void **state)
{
	char *path = scratch_file("traps");
	FILE *f = fopen(path, "w");
	unsigned long bad[8] = { 0 }, problems;
	struct greytraps *t;

	(void)state;
	assert_non_null(f);
	fputs("# trap addresses\n"
	    "  Spam.Trap@Example.ORG   # a comment\n"
	    "two words@example.org\n"
	    "<bracket@example.org>\n"
	    "nodomain@\n"
	    "\n"
	    "spam.trap@example.org\n"
	    "other@example.net", f);
	fclose(f);
	t = greytraps_load(path, 0, no_report, bad, &problems);
	assert_non_null(t);
	assert_int_equal(problems, 3);
	assert_true(bad[3] && bad[4] && bad[5] && !bad[2] && !bad[7]);
	assert_int_equal(greytraps_count(t), 2);	/* one of each */
	assert_string_equal(greytraps_match(t, " TO:<spam.trap@example.org>",
	    27), "spam.trap@example.org");
	assert_string_equal(greytraps_match(t,
	    " to: <SPAM.TRAP@EXAMPLE.ORG> NOTIFY=NEVER", 41),
	    "spam.trap@example.org");
	assert_string_equal(greytraps_match(t, " TO:other@example.net", 21),
	    "other@example.net");
	assert_null(greytraps_match(t, " TO:<spam.trap@example.org.x>", 29));
	assert_null(greytraps_match(t, " TO:<>", 6));
	assert_null(greytraps_match(NULL, " TO:<a@b>", 9));
	greytraps_free(t);
	/* A file that is not there: reported, an empty list. */
	unlink(path);
	t = greytraps_load(path, 0, no_report, bad, &problems);
	assert_non_null(t);
	assert_int_equal(problems, 1);
	assert_int_equal(greytraps_count(t), 0);
	greytraps_free(t);
	free(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines_flags),
		cmocka_unit_test(test_lines_overlong),
		cmocka_unit_test(test_dialog_replies),
		cmocka_unit_test(test_dialog_limits),
		cmocka_unit_test(test_dialog_pipelining),
		cmocka_unit_test(test_dialog_tests_off_or_passed),
		cmocka_unit_test(test_non_smtp),
		cmocka_unit_test(test_serve_on_a_socket),
		cmocka_unit_test(test_serve_time_limit),
		cmocka_unit_test(test_greytraps),
	};

	return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
