/*
 * fuzz_dialog.c - libFuzzer target for the greylisting dialog's command
 * reader (dialog.c, smtpline.c): whatever a client sends, in whatever
 * pieces, the dialog answers line by line within its limits and ends.
 *
 *   make fuzz   (or build as the Makefile's build/fuzz/fuzz_% rule does)
 *   build/fuzz/fuzz_dialog -max_total_time=30 tests/fuzz/corpus/dialog
 *
 * The first byte chooses the tests and whether a failed one ends the
 * session; the second, the size of the pieces the rest arrives in (a
 * front end hands over what one read gave).  Beyond "no crash": every
 * reply is whole lines each ending in CRLF, no more commands are
 * answered than the limit or than there were line feeds, what is kept
 * for the log is within its bounds, QUIT is seen only if a line said it,
 * a failed test ends the session exactly when it is to, the greytrap
 * kept for the log is the list's own, and nothing is answered after the
 * end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "dialog.h"
#include "greytrap.h"
#include "smtpfuzz.h"

/* A reply is one or more whole lines: each ends in CRLF, none is bare. */
static void
check_reply(const char *r, size_t len)
{
	size_t i;

	if (len < 2 || r[len - 2] != '\r' || r[len - 1] != '\n')
		abort();
	for (i = 0; i < len; i++)
		if (r[i] == '\n' && (i == 0 || r[i - 1] != '\r'))
			abort();
}

static void
check_kept(const struct dialog *d)
{
	if (d->helo.len > DIALOG_ARG_MAX || d->from.len > DIALOG_ARG_MAX ||
	    d->rcpt.len > DIALOG_ARG_MAX || d->trap.len > DIALOG_ARG_MAX ||
	    d->faulty.len > DIALOG_ARG_MAX || d->commands > DIALOG_COMMANDS_MAX)
		abort();
	if (d->trapped && d->trap.len == 0)
		abort();
}

static void
no_report(void *ctx, const char *path, unsigned long line, const char *msg)
{
	(void)ctx;
	(void)path;
	(void)line;
	(void)msg;
}

/* The list of one trap, from a file made for the occasion. */
static struct greytraps *
one_trap(const char *addr)
{
	char path[] = "/tmp/fuzz_dialog.XXXXXX";
	unsigned long problems;
	struct greytraps *t;
	int fd = mkstemp(path);

	if (fd < 0 || write(fd, addr, strlen(addr)) != (ssize_t)strlen(addr))
		abort();
	close(fd);
	t = greytraps_load(path, 0, no_report, NULL, &problems);
	unlink(path);
	if (t == NULL || problems != 0 || greytraps_count(t) != 1)
		abort();
	return t;
}

/* Does the input name addr anywhere, in any case? */
static int
names(const uint8_t *p, size_t n, const char *addr)
{
	size_t len = strlen(addr), i;

	for (i = 0; i + len <= n; i++)
		if (strncasecmp((const char *)p + i, addr, len) == 0)
			return 1;
	return 0;
}

/* Hand the input over in pieces; returns 1 once the session is over. */
static int
run(struct dialog *d, const uint8_t *data, size_t size, size_t piece)
{
	char reply[DIALOG_REPLY_MAX];
	enum dialog_step step;
	size_t at = 0, len;

	while (at < size) {
		size_t room, n = piece;
		char *to = dialog_room(d, &room);

		if (n > room)
			n = room;
		if (n > size - at)
			n = size - at;
		memcpy(to, data + at, n);
		dialog_received(d, n);
		at += n;
		while ((step = dialog_next(d, reply, &len)) != DIALOG_READ) {
			if (len > 0)
				check_reply(reply, len);
			else if (!dialog_failed(d))
				abort();	/* only a test ends mute */
			if (step == DIALOG_CLOSE)
				return 1;
		}
		check_kept(d);
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char trap[] = "trap@example.org";
	static struct greytraps *traps;
	struct dialog_config dc;
	struct dialog d;
	size_t piece;
	int over;

	if (size < 2 || size > 65536)
		return 0;
	if (traps == NULL)
		traps = one_trap(trap);
	memset(&dc, 0, sizeof dc);
	dc.host = "fuzz.example";
	dc.text = "later";
	dc.tests = data[0] & 7;
	dc.end_on_fault = data[0] >> 7;
	dc.traps = traps;
	piece = 1 + data[1] % 700;
	dialog_init(&d, &dc);
	over = run(&d, data + 2, size - 2, piece);
	check_kept(&d);
	if (d.commands > count_byte(data + 2, size - 2, '\n'))
		abort();
	if (d.quit && !says_quit(data + 2, size - 2))
		abort();
	if (over && !dialog_failed(&d) && d.end != END_QUIT &&
	    d.end != END_COMMANDS)
		abort();
	if (d.fault >= 0 && !(dc.tests & GREY_TEST_BIT(d.fault)))
		abort();
	if (dialog_failed(&d) != (over && d.fault >= 0 && dc.end_on_fault))
		abort();
	if (d.trapped && !names(data + 2, size - 2, trap))
		abort();
	/* The log names the list's address, whatever the line looked like. */
	if (d.trapped && (d.trap.len != strlen(trap) ||
	    memcmp(d.trap.text, trap, d.trap.len) != 0))
		abort();
	return 0;
}
