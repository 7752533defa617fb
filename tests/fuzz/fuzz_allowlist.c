/*
 * fuzz_allowlist.c - libFuzzer target for whitelist.c.
 *
 *   make fuzz builds it (build/fuzz/fuzz_allowlist: clang with libFuzzer,
 *   ASan and UBSan, every module of the Makefile, liblmdb.a) and runs it
 *   on tests/fuzz/corpus/allowlist.
 *
 * Each input is used three ways:
 *   1. as one line for wl_parse_line and as a CIDR for wl_parse_cidr,
 *      checking every accepted entry is well formed and re-parses the same;
 *   2. as a whole allowlist file (through a memfd) for wl_check_file and
 *      wl_lookup, whose counts and line numbers must agree with splitting
 *      the input into lines here and parsing each with wl_parse_line;
 *   3. when the file is valid, compiled with wl_compile to a .cdb in a
 *      fresh scratch directory (under /dev/shm when it is writable),
 *      whose answers must equal the text file's; the directory must then
 *      hold nothing else, and is removed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* memfd_create */
#endif
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "duration.h"
#include "peers.h"
#include "whitelist.h"

static const char *scratch_base = "/tmp";

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (access("/dev/shm", W_OK) == 0)
		scratch_base = "/dev/shm";
	return 0;
}

struct tally {
	unsigned long reports, maxline;
};

static void
report(void *ctx, const char *path, unsigned long line, const char *msg)
{
	struct tally *t = ctx;

	if (path == NULL || msg == NULL || *msg == '\0')
		abort();
	t->reports++;
	if (line > t->maxline)
		t->maxline = line;
}

static void
check_entry(const struct wl_entry *e)
{
	unsigned bits, i;
	size_t rlen;
	struct wl_entry again;
	const char *why = NULL;

	if (e->net.family != AF_INET && e->net.family != AF_INET6)
		abort();
	bits = e->net.family == AF_INET ? 32 : 128;
	if (e->prefix > bits || e->delay_ms > 300000)
		abort();
	rlen = strnlen(e->rule, WL_RULE_MAX);
	if (rlen == 0 || rlen >= WL_RULE_MAX)
		abort();
	/* No host bits, and the entry covers its own network address. */
	for (i = e->prefix; i < bits; i++)
		if (e->net.bytes[i / 8] & (0x80 >> (i % 8)))
			abort();
	if (!wl_entry_matches(e, &e->net))
		abort();
	/* The rule text parses back to the same network. */
	if (wl_parse_cidr(e->rule, rlen, &again, &why) != 0 ||
	    again.net.family != e->net.family || again.prefix != e->prefix ||
	    memcmp(again.net.bytes, e->net.bytes, bits / 8) != 0)
		abort();
}

/* The peers each file is looked up with: some fixed, some from entries. */
#define NPEERS 8

struct expect {
	unsigned long entries, problems, lines;
	int found[NPEERS];
	unsigned long line[NPEERS];
	uint64_t delay[NPEERS];
	char rule[NPEERS][WL_RULE_MAX];
};

static void
ref_scan(const char *s, size_t size, const struct addr *peers,
    struct expect *x)
{
	size_t pos = 0;
	unsigned long lineno = 0;

	memset(x, 0, sizeof *x);
	while (pos < size) {
		const char *nl = memchr(s + pos, '\n', size - pos);
		size_t len = (nl ? (size_t)(nl - s) : size) - pos;
		struct wl_entry e;
		const char *why;
		int k;

		lineno++;
		if (len > WL_LINE_MAX) {
			x->problems++;
		} else {
			switch (wl_parse_line(s + pos, len, &e, &why)) {
			case -1:
				x->problems++;
				break;
			case 1:
				x->entries++;
				for (k = 0; k < NPEERS; k++) {
					if (x->found[k] ||
					    !wl_entry_matches(&e, &peers[k]))
						continue;
					x->found[k] = 1;
					x->line[k] = lineno;
					x->delay[k] = e.delay_ms;
					memcpy(x->rule[k], e.rule, WL_RULE_MAX);
				}
				break;
			}
		}
		pos += len + (nl != NULL);
	}
	x->lines = lineno;
}

/* Four fixed peers, four more from the input's own bytes. */
static void
make_peers(const uint8_t *data, size_t size, struct addr *p)
{
	static const char *const fixed[] = { "10.0.0.1", "192.0.2.1", "::1",
	    "2001:db8::1" };

	fuzz_peers(data, size, fixed, 4, 16, p, NPEERS);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size ? size : 1);
	struct wl_entry e;
	struct addr peers[NPEERS];
	struct expect x;
	const char *why;
	char path[64];
	int rc, fd, k;

	if (s == NULL)
		return 0;
	if (size)
		memcpy(s, data, size);

	/* 1. The input as one line and as one CIDR. */
	why = NULL;
	rc = wl_parse_line(s, size, &e, &why);
	if (rc < -1 || rc > 1 || (rc == -1 && why == NULL))
		abort();
	if (rc == 1)
		check_entry(&e);
	why = NULL;
	rc = wl_parse_cidr(s, size, &e, &why);
	if (rc == 0) {
		check_entry(&e);
		if (e.delay_ms != 0 || strlen(e.rule) != size)
			abort();
	} else if (rc != -1 || why == NULL) {
		abort();
	}

	/* 2. The input as a whole file. */
	fd = memfd_create("allowlist", MFD_CLOEXEC);
	if (fd < 0) {
		free(s);
		return 0;
	}
	if (size && write(fd, s, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	make_peers(data, size, peers);
	ref_scan(s, size, peers, &x);
	{
		struct tally t = { 0, 0 };
		size_t count = 0;
		unsigned long problems;

		problems = wl_check_file(path, &count, report, &t);
		if (problems != x.problems || count != x.entries ||
		    t.reports != problems || t.maxline > x.lines)
			abort();
	}
	for (k = 0; k < NPEERS; k++) {
		struct wl_source src;
		struct wl_match m;
		struct tally t = { 0, 0 };

		memset(&src, 0, sizeof src);
		src.path = path;
		if (wl_lookup(&src, 1, &peers[k], &m, 3, report, &t) !=
		    x.problems)
			abort();
		/* At most 3 shown, plus one summary line. */
		if (t.reports != (x.problems > 3 ? 4 : x.problems))
			abort();
		if (m.found != x.found[k])
			abort();
		if (m.found && (m.line != x.line[k] ||
		    m.delay_ms != x.delay[k] || strcmp(m.rule, x.rule[k]) != 0 ||
		    m.path != path))
			abort();
	}

	/* 3. A valid file compiles, and the .cdb answers the same. */
	if (x.problems == 0) {
		/* A fresh directory each time, so a crash leaves little behind. */
		char dir[256], cdb_path[300];
		struct tally t = { 0, 0 };
		size_t count = 0;
		long n;

		snprintf(dir, sizeof dir, "%s/fuzz-allowlist-XXXXXX",
		    scratch_base);
		if (mkdtemp(dir) == NULL)
			abort();
		snprintf(cdb_path, sizeof cdb_path, "%s/a.cdb", dir);
		n = wl_compile(path, cdb_path, report, &t);
		if (n < 0 || (unsigned long)n != x.entries || t.reports != 0)
			abort();
		if (wl_check_file(cdb_path, &count, report, &t) != 0 ||
		    count != x.entries)
			abort();
		for (k = 0; k < NPEERS; k++) {
			struct wl_source src;
			struct wl_match m;

			memset(&src, 0, sizeof src);
			src.path = cdb_path;
			if (wl_lookup(&src, 1, &peers[k], &m, 0, report, &t) != 0)
				abort();
			if (m.found != x.found[k] || (m.found &&
			    (m.delay_ms != x.delay[k] ||
			    strcmp(m.rule, x.rule[k]) != 0 || m.line != 0)))
				abort();
		}
		unlink(cdb_path);
		if (rmdir(dir) != 0)	/* a stray temporary file left behind */
			abort();
	}
	close(fd);
	free(s);
	return 0;
}
