/*
 * fuzz_forward.c - libFuzzer target for relay_target_parse() (relay.c):
 * the --forward argument, "IPv4:PORT", "[IPv6]:PORT" or "unix:/PATH".
 *
 *   build/fuzz/fuzz_forward -max_total_time=30 tests/fuzz/corpus/forward
 *
 * The input is the argument (up to its first NUL, as from argv).  Beyond
 * "no crash": a refusal says why; "unix:" and an absolute path shorter
 * than a socket address holds is taken as exactly that path, with the
 * length of its address; anything else is taken exactly when --listen's
 * parser (listen_parse, fuzzed by fuzz_listen) takes it with a port
 * other than 0, and gives the same address.
 */
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "listen.h"
#include "relay.h"

/* Does t hold the unix path p (the text after "unix:")? */
static int
holds_path(const struct relay_target *t, const char *p)
{
	const struct sockaddr_un *un = (const struct sockaddr_un *)&t->addr;
	size_t n = strlen(p);

	return un->sun_family == AF_UNIX && p[0] == '/' &&
	    n < sizeof un->sun_path && strcmp(un->sun_path, p) == 0 &&
	    t->len == offsetof(struct sockaddr_un, sun_path) + n + 1;
}

/* What --listen's parser makes of s, if it takes it with a port. */
static int
as_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	const char *why;

	if (listen_parse(s, ss, len, &why) != 0)
		return 0;
	return (ss->ss_family == AF_INET ?
	    ((struct sockaddr_in *)ss)->sin_port :
	    ((struct sockaddr_in6 *)ss)->sin6_port) != 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy: any read past the NUL is caught by ASan. */
	char *s = malloc(size + 1);
	struct relay_target t;
	struct sockaddr_storage ss;
	const char *why = NULL;
	socklen_t len = 0;
	int rc, unix_form, want;

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	rc = relay_target_parse(s, &t, &why);
	if (rc != 0 && rc != -1)
		abort();
	if (rc == -1 && (why == NULL || *why == '\0'))
		abort();
	unix_form = strncmp(s, "unix:", 5) == 0;
	if (unix_form) {
		const char *p = s + 5;

		want = p[0] == '/' && strlen(p) < sizeof
		    ((struct sockaddr_un *)0)->sun_path;
		if ((rc == 0) != want || (rc == 0 && !holds_path(&t, p)))
			abort();
	} else {
		want = as_listen(s, &ss, &len);
		if ((rc == 0) != want || (rc == 0 && (t.len != len ||
		    memcmp(&t.addr, &ss, len) != 0)))
			abort();
	}
	free(s);
	return 0;
}
