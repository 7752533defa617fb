/*
 * fuzz_decoy.c - libFuzzer target for the tempfail decoy's command
 * reader (decoy.c): whatever a client sends, decoy_serve() answers line
 * by line within its limits and ends.
 *
 *   make fuzz   (or build as the Makefile's build/fuzz/fuzz_% rule does)
 *   build/fuzz/fuzz_decoy -max_total_time=30 tests/fuzz/corpus/decoy
 *
 * The input is the whole of what the client sends, then end of file; the
 * replies go to /dev/null.  Beyond "no crash": every answered command
 * ended with a line feed, no more are answered than the limit, the HELO
 * argument kept is within its bound, QUIT is only seen if sent, and the
 * session ends as the input says (QUIT, end of file, or the limit),
 * never by the clock.  smtp_classify() is checked on each input too.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "decoy.h"
#include "smtpfuzz.h"

#define MAX_COMMANDS 50

/* smtp_classify() matches a known verb alone or before a space. */
static void
check_classify(const char *line, size_t len)
{
	static const char *const verbs[] = { "HELO", "EHLO", "MAIL", "RSET",
	    "NOOP", "RCPT", "DATA", "QUIT" };
	enum smtp_cmd cmd = smtp_classify(line, len);

	if (cmd == CMD_UNKNOWN)
		return;
	if (len < 4 || (len > 4 && line[4] != ' ') || (int)cmd > CMD_QUIT ||
	    strncasecmp(line, verbs[cmd], 4) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int devnull = -1;
	struct decoy_config cfg;
	struct decoy_result r;
	int sv[2];

	if (size > 65536)
		return 0;
	check_classify((const char *)data, size);
	if (devnull < 0 && (devnull = open("/dev/null", O_WRONLY)) < 0)
		abort();
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		abort();
	if (write(sv[0], data, size) != (ssize_t)size)
		abort();
	shutdown(sv[0], SHUT_WR);
	memset(&cfg, 0, sizeof cfg);
	cfg.mode = MODE_TEMPFAIL;
	cfg.max_commands = MAX_COMMANDS;
	cfg.tempfail_max_ms = 10000;
	decoy_serve(sv[1], devnull, "fuzz.example", &cfg, &r);
	close(sv[0]);
	close(sv[1]);
	if (r.commands > MAX_COMMANDS ||
	    r.commands > count_byte(data, size, '\n') ||
	    r.helo_len > sizeof r.helo)
		abort();
	if (r.quit && !says_quit(data, size))
		abort();
	if (r.end != END_QUIT && r.end != END_CLOSED && r.end != END_COMMANDS)
		abort();
	if ((r.end == END_QUIT) != (r.quit != 0))
		abort();
	return 0;
}
