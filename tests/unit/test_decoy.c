/*
 * test_decoy.c - cmocka tests for decoy.c (the tarpit and the tempfail
 * responder, on a socketpair standing in for the client) and slots.c
 * (several holders in one process, and one that dies by SIGKILL).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "decoy.h"
#include "slots.h"
#include "conn.h"

#define LATER "451 4.7.1 Service temporarily unavailable, try again later\r\n"

/* ------------------------------------------------------ classification */

static void
test_classify_verbs(void **state)
{
	static const struct { const char *line; enum smtp_cmd want; } cases[] = {
		{ "HELO client.example", CMD_HELO },
		{ "helo client.example", CMD_HELO },
		{ "EHLO client.example", CMD_EHLO },
		{ "eHlO x", CMD_EHLO },
		{ "MAIL FROM:<a@example.org>", CMD_MAIL },
		{ "mail from:<>", CMD_MAIL },
		{ "RSET", CMD_RSET },
		{ "NOOP", CMD_NOOP },
		{ "NOOP anything", CMD_NOOP },
		{ "RCPT TO:<b@example.org>", CMD_RCPT },
		{ "DATA", CMD_DATA },
		{ "QUIT", CMD_QUIT },
		{ "quit", CMD_QUIT },
		{ "QUIT ", CMD_QUIT },
		{ "QUITE", CMD_UNKNOWN },	/* the verb must stand alone */
		{ "QUI", CMD_UNKNOWN },
		{ "", CMD_UNKNOWN },
		{ "VRFY root", CMD_UNKNOWN },
		{ "STARTTLS", CMD_UNKNOWN },
		{ "HELO\tx", CMD_UNKNOWN },
		{ " QUIT", CMD_UNKNOWN },
		{ "Subject: spam", CMD_UNKNOWN },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum smtp_cmd got = smtp_classify(cases[i].line,
		    strlen(cases[i].line));

		if (got != cases[i].want) {
			print_error("smtp_classify(\"%s\") = %d, want %d\n",
			    cases[i].line, (int)got, (int)cases[i].want);
			fail();
		}
	}
	/* A NUL inside the verb is no verb; the length is what counts. */
	assert_int_equal(smtp_classify("QU\0T", 4), CMD_UNKNOWN);
	assert_int_equal(smtp_classify("QUIT\0junk", 4), CMD_QUIT);
	assert_int_equal(smtp_classify("DATAX", 4), CMD_DATA);
}

static void
check_reply(enum smtp_cmd cmd, const char *want)
{
	char buf[DECOY_LINE_MAX];
	size_t n = decoy_reply(cmd, "mx.example", buf, sizeof buf);

	assert_int_equal(n, strlen(want));
	assert_string_equal(buf, want);
}

static void
test_replies(void **state)
{
	char small[8];

	(void)state;
	check_reply(CMD_HELO, "250 mx.example\r\n");
	check_reply(CMD_EHLO, "250 mx.example\r\n");
	check_reply(CMD_MAIL, "250 2.1.0 Ok\r\n");
	check_reply(CMD_RSET, "250 2.0.0 Ok\r\n");
	check_reply(CMD_NOOP, "250 2.0.0 Ok\r\n");
	check_reply(CMD_RCPT, LATER);
	check_reply(CMD_DATA, LATER);
	check_reply(CMD_QUIT, "221 2.0.0 Bye\r\n");
	check_reply(CMD_UNKNOWN, "500 5.5.2 Command not recognized\r\n");
	check_reply(CMD_TOO_LONG, "500 5.5.2 Line too long\r\n");
	/* Never a truncated reply line. */
	assert_int_equal(decoy_reply(CMD_RCPT, "mx", small, sizeof small), 0);
	assert_int_equal(decoy_reply(CMD_HELO, "mx.example", small,
	    sizeof small), 0);
}

static void
test_end_names(void **state)
{
	(void)state;
	assert_string_equal(tarpit_end_name(TARPIT_CLOSED), "client-closed");
	assert_string_equal(tarpit_end_name(TARPIT_MAX), "max-reached");
	assert_string_equal(tarpit_end_name(TARPIT_RESET), "reset");
	assert_string_equal(decoy_end_name(END_QUIT), "quit");
	assert_string_equal(decoy_end_name(END_CLOSED), "client-closed");
	assert_string_equal(decoy_end_name(END_COMMANDS), "max-commands");
	assert_string_equal(decoy_end_name(END_TIME), "max-time");
}

static void
test_hostname_is_safe(void **state)
{
	char buf[256];
	size_t i;

	(void)state;
	assert_ptr_equal(decoy_hostname(NULL, buf, sizeof buf), buf);
	assert_true(buf[0] != '\0');
	for (i = 0; buf[i]; i++)
		assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-", buf[i]));
	/* --hostname's, as it was checked when given. */
	assert_string_equal(decoy_hostname("mx.example", buf, sizeof buf),
	    "mx.example");
}

/* ------------------------------------------------------- the client end */

/* sv[0]: ours (the server side), sv[1]: the client's. */
static void
pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

static void
client_send(int fd, const char *s, size_t len)
{
	assert_int_equal(send_all(fd, s, len, mono_ms() + 10000), 0);
}

/* Everything the server sent, up to its close (or nothing more). */
static size_t
client_read(int fd, char *buf, size_t size)
{
	size_t n = 0;
	ssize_t got;

	shutdown(fd, SHUT_WR);
	while (n + 1 < size &&
	    wait_readable(fd, mono_ms() + 2000) == WAIT_READABLE &&
	    (got = read(fd, buf + n, size - 1 - n)) > 0)
		n += (size_t)got;
	buf[n] = '\0';
	return n;
}

static size_t
count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (; (hay = strstr(hay, needle)) != NULL; hay += strlen(needle))
		n++;
	return n;
}

/* ------------------------------------------------------------- tarpit */

static void
test_tarpit_until_max(void **state)
{
	static const char line[] = "220-wait\r\n";
	struct tarpit_result r;
	char got[4096];
	int sv[2];

	(void)state;
	pair(sv);
	client_send(sv[1], "EHLO bot\r\n", 10);
	tarpit_hold(sv[0], sv[0], line, 100, 450, &r);
	assert_int_equal(r.end, TARPIT_MAX);
	assert_true(r.held_ms >= 450);
	assert_true(r.bytes == 10);
	close(sv[0]);
	client_read(sv[1], got, sizeof got);
	/* At once, then at 100, 200, 300, 400 ms: 5; a loaded machine may
	 * lose some (no burst to catch up), never add one. */
	assert_true(count(got, line) >= 2 && count(got, line) <= 5);
	assert_int_equal(strlen(got), count(got, line) * strlen(line));
	close(sv[1]);
}

static void
test_tarpit_client_closes(void **state)
{
	struct tarpit_result r;
	char got[256];
	int sv[2];

	(void)state;
	pair(sv);
	client_send(sv[1], "hello", 5);
	shutdown(sv[1], SHUT_WR);
	tarpit_hold(sv[0], sv[0], "220-x\r\n", 1000, 60000, &r);
	assert_int_equal(r.end, TARPIT_CLOSED);
	assert_true(r.bytes == 5);
	assert_true(r.held_ms < 1000);
	close(sv[0]);
	client_read(sv[1], got, sizeof got);
	assert_string_equal(got, "220-x\r\n");
	close(sv[1]);
}

static void
test_tarpit_client_gone(void **state)
{
	struct tarpit_result r;
	int sv[2];

	(void)state;
	pair(sv);
	close(sv[1]);
	/* The first line cannot be sent (EPIPE), and no SIGPIPE kills us. */
	tarpit_hold(sv[0], sv[0], "220-x\r\n", 1000, 60000, &r);
	assert_int_equal(r.end, TARPIT_RESET);
	close(sv[0]);
}

static void
test_tarpit_client_not_reading(void **state)
{
	char line[210];
	struct tarpit_result r;
	uint64_t t0 = mono_ms();
	int sv[2];

	(void)state;
	/* A line every millisecond to a client that never reads would fill
	 * any socket buffer in well under the max, and a blocked send would
	 * hold the process past it. */
	memset(line, 'x', sizeof line);
	memcpy(line, "220-", 4);
	memcpy(line + sizeof line - 3, "\r\n", 3);
	pair(sv);
	tarpit_hold(sv[0], sv[0], line, 1, 1500, &r);
	assert_int_equal(r.end, TARPIT_MAX);
	assert_true(mono_ms() - t0 < 1500 + 3000);
	close(sv[0]);
	close(sv[1]);
}

/* ------------------------------------------------------------ tempfail */

static struct decoy_config
limits(unsigned commands, uint64_t max_ms)
{
	struct decoy_config cfg;

	memset(&cfg, 0, sizeof cfg);
	cfg.mode = MODE_TEMPFAIL;
	cfg.max_commands = commands;
	cfg.tempfail_max_ms = max_ms;
	return cfg;
}

/* Run a whole session on input, return the transcript in out. */
static void
serve(const char *input, size_t len, const struct decoy_config *cfg,
    struct decoy_result *r, char *out, size_t size)
{
	int sv[2];

	pair(sv);
	client_send(sv[1], input, len);
	shutdown(sv[1], SHUT_WR);
	decoy_serve(sv[0], sv[0], "mx.example", cfg, r);
	close(sv[0]);
	client_read(sv[1], out, size);
	close(sv[1]);
}

static void
test_serve_command_by_command(void **state)
{
	static const char in[] =
	    "EHLO bot.example\r\nMAIL FROM:<a@example.org>\r\n"
	    "RCPT TO:<b@example.org>\r\nDATA\r\nSubject: x\r\nrset\r\n"
	    "NOOP\nHELO again\r\nQUIT\r\nNOOP\r\n";
	static const char want[] =
	    "220 mx.example ESMTP\r\n"
	    "250 mx.example\r\n"
	    "250 2.1.0 Ok\r\n"
	    LATER
	    LATER
	    "500 5.5.2 Command not recognized\r\n"
	    "250 2.0.0 Ok\r\n"
	    "250 2.0.0 Ok\r\n"		/* a bare LF ends a line too */
	    "250 mx.example\r\n"
	    "221 2.0.0 Bye\r\n";	/* and nothing after QUIT */
	struct decoy_config cfg = limits(20, 10000);
	struct decoy_result r;
	char out[4096];

	(void)state;
	serve(in, sizeof in - 1, &cfg, &r, out, sizeof out);
	assert_string_equal(out, want);
	assert_int_equal(r.commands, 9);
	assert_int_equal(r.quit, 1);
	assert_int_equal(r.end, END_QUIT);
	/* The first name it gave, not the second. */
	assert_int_equal(r.helo_len, strlen("bot.example"));
	assert_memory_equal(r.helo, "bot.example", r.helo_len);
}

static void
test_serve_no_quit(void **state)
{
	static const char in[] = "HELO x\r\nRCPT TO:<a@b>\r\npartial";
	struct decoy_config cfg = limits(20, 10000);
	struct decoy_result r;
	char out[4096];

	(void)state;
	serve(in, sizeof in - 1, &cfg, &r, out, sizeof out);
	assert_string_equal(out, "220 mx.example ESMTP\r\n250 mx.example\r\n"
	    LATER);
	assert_int_equal(r.commands, 2);
	assert_int_equal(r.quit, 0);
	assert_int_equal(r.end, END_CLOSED);
}

static void
test_serve_command_limit(void **state)
{
	static const char in[] = "NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nQUIT\r\n";
	struct decoy_config cfg = limits(3, 10000);
	struct decoy_result r;
	char out[4096];

	(void)state;
	serve(in, sizeof in - 1, &cfg, &r, out, sizeof out);
	assert_string_equal(out, "220 mx.example ESMTP\r\n"
	    "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n"
	    "421 4.7.0 Too many commands, closing connection\r\n");
	assert_int_equal(r.commands, 3);
	assert_int_equal(r.quit, 0);
	assert_int_equal(r.end, END_COMMANDS);
}

static void
test_serve_time_limit(void **state)
{
	struct decoy_config cfg = limits(20, 300);
	struct decoy_result r;
	uint64_t t0;
	char out[512];
	int sv[2];

	(void)state;
	pair(sv);
	client_send(sv[1], "HELO slow\r\n", 11);	/* and then nothing */
	t0 = mono_ms();
	decoy_serve(sv[0], sv[0], "mx.example", &cfg, &r);
	assert_true(mono_ms() - t0 >= 300);
	assert_int_equal(r.end, END_TIME);
	assert_int_equal(r.commands, 1);
	close(sv[0]);
	client_read(sv[1], out, sizeof out);
	assert_string_equal(out, "220 mx.example ESMTP\r\n250 mx.example\r\n"
	    "421 4.4.2 Session time limit reached, closing connection\r\n");
	close(sv[1]);
}

static void
test_serve_line_limits(void **state)
{
	/* 510 bytes and CRLF is the longest line; one more is too long,
	 * and so is a line far past the buffer, which is thrown away up to
	 * its end and then the session goes on. */
	char in[4096], out[4096], *p = in;
	struct decoy_config cfg = limits(20, 10000);
	struct decoy_result r;

	(void)state;
	memset(p, 'a', 510);
	memcpy(p + 510, "\r\n", 2);
	p += 512;
	memset(p, 'b', 511);
	memcpy(p + 511, "\r\n", 2);
	p += 513;
	memcpy(p, "NOOP ", 5);
	memset(p + 5, 'c', 1995);
	memcpy(p + 2000, "\r\nQUIT\r\n", 8);
	p += 2008;
	serve(in, (size_t)(p - in), &cfg, &r, out, sizeof out);
	assert_string_equal(out, "220 mx.example ESMTP\r\n"
	    "500 5.5.2 Command not recognized\r\n"
	    "500 5.5.2 Line too long\r\n"
	    "500 5.5.2 Line too long\r\n"
	    "221 2.0.0 Bye\r\n");
	assert_int_equal(r.commands, 4);
	assert_int_equal(r.end, END_QUIT);
}

static void
test_serve_helo_truncated(void **state)
{
	char in[256], out[1024];
	struct decoy_config cfg = limits(20, 10000);
	struct decoy_result r;
	int n;

	(void)state;
	n = snprintf(in, sizeof in, "EHLO   %0100d\r\nQUIT\r\n", 7);
	serve(in, (size_t)n, &cfg, &r, out, sizeof out);
	assert_int_equal(r.helo_len, DECOY_HELO_MAX);
	assert_int_equal(r.helo[0], '0');
	assert_int_equal(r.quit, 1);
}

/* -------------------------------------------------------------- slots */

static char slot_dir[] = "/tmp/test_decoy_slots.XXXXXX";
static char why[512];		/* slots_take()'s reason for an error */

static int
slots_setup(void **state)
{
	(void)state;
	return mkdtemp(slot_dir) ? 0 : -1;
}

static int
slots_teardown(void **state)
{
	char path[sizeof slot_dir + 32];
	unsigned k;

	(void)state;
	for (k = 0; k < 8; k++) {
		snprintf(path, sizeof path, "%s/slot.%u", slot_dir, k);
		unlink(path);
	}
	snprintf(path, sizeof path, "%s/target", slot_dir);
	unlink(path);
	return rmdir(slot_dir);
}

static void
test_slots_several_holders(void **state)
{
	int fds[3], again;
	unsigned slot, seen = 0, i;

	(void)state;
	for (i = 0; i < 3; i++) {
		fds[i] = slots_take(slot_dir, 3, &slot, why, sizeof why);
		assert_true(fds[i] >= 0);
		assert_true(slot < 3);
		assert_false(seen & (1u << slot));	/* each a slot of its own */
		seen |= 1u << slot;
		/* Never handed on to an exec'd program. */
		assert_true(fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
	}
	assert_int_equal(slots_take(slot_dir, 3, &slot, why, sizeof why),
	    SLOTS_NONE);
	slots_release(fds[1]);
	again = slots_take(slot_dir, 3, &slot, why, sizeof why);
	assert_true(again >= 0);
	assert_int_equal(slots_take(slot_dir, 3, &slot, why, sizeof why),
	    SLOTS_NONE);
	/* A larger cap over the same directory has room again. */
	fds[1] = slots_take(slot_dir, 4, &slot, why, sizeof why);
	assert_true(fds[1] >= 0);
	assert_int_equal(slot, 3);
	for (i = 0; i < 3; i++)
		slots_release(fds[i]);
	slots_release(again);
}

static void
test_slots_freed_when_holder_killed(void **state)
{
	int ready[2], fd;
	unsigned slot;
	char c;
	pid_t pid;

	(void)state;
	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (slots_take(slot_dir, 1, &slot, why, sizeof why) < 0)
			_exit(1);
		if (write(ready[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(ready[1]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	assert_int_equal(slots_take(slot_dir, 1, &slot, why, sizeof why),
	    SLOTS_NONE);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	fd = slots_take(slot_dir, 1, &slot, why, sizeof why);
	assert_true(fd >= 0);
	assert_int_equal(slot, 0);
	slots_release(fd);
}

static void
test_slots_errors(void **state)
{
	char path[sizeof slot_dir + 32], target[sizeof slot_dir + 32];
	unsigned slot;

	(void)state;
	errno = 0;
	assert_int_equal(slots_take("/nonexistent/slots", 2, &slot, why,
	    sizeof why), SLOTS_ERROR);
	assert_int_equal(errno, ENOENT);
	/* A lock file planted as a symlink is not followed. */
	snprintf(path, sizeof path, "%s/slot.0", slot_dir);
	snprintf(target, sizeof target, "%s/target", slot_dir);
	unlink(path);
	assert_int_equal(symlink(target, path), 0);
	errno = 0;
	assert_int_equal(slots_take(slot_dir, 1, &slot, why, sizeof why),
	    SLOTS_ERROR);
	assert_int_equal(errno, ELOOP);
	assert_int_equal(access(target, F_OK), -1);
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify_verbs),
		cmocka_unit_test(test_replies),
		cmocka_unit_test(test_end_names),
		cmocka_unit_test(test_hostname_is_safe),
		cmocka_unit_test(test_tarpit_until_max),
		cmocka_unit_test(test_tarpit_client_closes),
		cmocka_unit_test(test_tarpit_client_gone),
		cmocka_unit_test(test_tarpit_client_not_reading),
		cmocka_unit_test(test_serve_command_by_command),
		cmocka_unit_test(test_serve_no_quit),
		cmocka_unit_test(test_serve_command_limit),
		cmocka_unit_test(test_serve_time_limit),
		cmocka_unit_test(test_serve_line_limits),
		cmocka_unit_test(test_serve_helo_truncated),
		cmocka_unit_test(test_slots_several_holders),
		cmocka_unit_test(test_slots_freed_when_holder_killed),
		cmocka_unit_test(test_slots_errors),
	};

	return cmocka_run_group_tests(tests, slots_setup, slots_teardown);
}
