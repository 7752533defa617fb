/*
 * fuzz_allowdb.c - libFuzzer target for damaged and hostile compiled
 * allowlists (allowdb.c, through whitelist.c): the input is the whole
 * file.
 *
 *   make fuzz builds it (build/fuzz/fuzz_allowdb: clang with libFuzzer,
 *   ASan and UBSan, every module of the Makefile, liblmdb.a) and runs it
 *   on tests/fuzz/corpus/allowdb: files made by --compile, and one made
 *   by an older sendwrap (tinycdb).
 *
 * Each input is written to a .cdb file in a scratch directory (under
 * /dev/shm when it is writable), then
 *   1. checked as -n checks it (wl_check_file), and
 *   2. looked up (wl_lookup) with fixed peers and peers from the input's
 *      own bytes.
 * No crash, no sanitizer report, and: every message reported is
 * printable; a match carries a rule that parses as a network covering
 * the peer, a delay in range, the file's path and line 0; afterwards no
 * descriptor is left open and the fault handlers are the ones before.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peers.h"
#include "smtp.h"
#include "whitelist.h"

static char dir[256], path[300];
static int started;
static struct sigaction segv_before, bus_before;

static int
lowest_free_fd(void)
{
	int fd = dup(0);

	if (fd < 0)
		abort();
	close(fd);
	return fd;
}

static void
cleanup(void)
{
	unlink(path);
	rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

	(void)argc;
	(void)argv;
	snprintf(dir, sizeof dir, "%s/fuzz-allowdb-XXXXXX", base);
	if (mkdtemp(dir) == NULL)
		abort();
	atexit(cleanup);
	snprintf(path, sizeof path, "%s/a.cdb", dir);
	return 0;
}

static int
printable(const char *s)
{
	while (*s != '\0' && isprint((unsigned char)*s) && isascii(*s))
		s++;
	return *s == '\0';
}

static void
report(void *ctx, const char *where, unsigned long line, const char *msg)
{
	(void)ctx;
	if (where == NULL || strcmp(where, path) != 0 || line != 0 ||
	    msg == NULL || *msg == '\0' || !printable(msg))
		abort();
}

/* The peers of each file: some fixed, some from the input's bytes. */
#define NPEERS 8

static void
make_peers(const uint8_t *data, size_t size, struct addr *p)
{
	static const char *const fixed[] = { "10.1.2.3", "192.0.2.1", "::1",
	    "2001:db8::1" };

	fuzz_peers(data, size, fixed, 4, 977, p, NPEERS);
}

static void
check_match(const struct wl_match *m, const struct addr *peer)
{
	struct wl_entry e;
	const char *why;
	size_t len = strnlen(m->rule, sizeof m->rule);

	if (len == 0 || len == sizeof m->rule || !printable(m->rule) ||
	    wl_parse_cidr(m->rule, len, &e, &why) != 0 ||
	    !wl_entry_matches(&e, peer) ||
	    m->delay_ms > SMTP_GREETING_WAIT_MS || m->path != path ||
	    m->line != 0)
		abort();
}

static void
write_input(const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size) ||
	    close(fd) != 0)
		abort();
}

static void
same_handlers(void)
{
	struct sigaction segv, bus;

	sigaction(SIGSEGV, NULL, &segv);
	sigaction(SIGBUS, NULL, &bus);
	if (segv.sa_handler != segv_before.sa_handler ||
	    bus.sa_handler != bus_before.sa_handler)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct addr peers[NPEERS];
	struct wl_source src;
	size_t count = 0;
	int k, free_fd = lowest_free_fd();

	/* libFuzzer's own handlers are in place by the first input. */
	if (!started) {
		started = 1;
		sigaction(SIGSEGV, NULL, &segv_before);
		sigaction(SIGBUS, NULL, &bus_before);
	}
	write_input(data, size);
	make_peers(data, size, peers);
	if (wl_check_file(path, &count, report, NULL) > 1)
		abort();
	memset(&src, 0, sizeof src);
	src.path = path;
	for (k = 0; k < NPEERS; k++) {
		struct wl_match m;

		if (wl_lookup(&src, 1, &peers[k], &m, 3, report, NULL) > 1)
			abort();
		if (m.found)
			check_match(&m, &peers[k]);
	}
	if (lowest_free_fd() != free_fd)
		abort();
	same_handlers();
	return 0;
}
