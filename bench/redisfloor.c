/*
 * redisfloor - the least a wrapper that asks Redis for every connection
 * can pay: floor1's work (getpeername, a select of zero time, exec) plus
 * one round trip to Redis: connect, AUTH and GET in one write, read both
 * replies, close.  No options, no files, no checks, no library.  It is
 * the reference bench/redis-bench measures the Redis round trip itself
 * with, in the same run, so that sendwrap's share of a Redis hit can be
 * told from what any client pays.  Built with sendwrap's very flags.
 *
 *   redisfloor 127.0.0.1:PORT|/PATH USER PASSWORD KEY program [arg ...]
 *
 * Exits 111 if Redis does not answer +OK and a bulk string within 1 s.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int
dial(const char *where)
{
	struct sockaddr_un un;
	struct sockaddr_in in;
	const char *colon = strrchr(where, ':');
	int s;

	if (where[0] == '/') {
		memset(&un, 0, sizeof un);
		un.sun_family = AF_UNIX;
		snprintf(un.sun_path, sizeof un.sun_path, "%s", where);
		s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		return s >= 0 && connect(s, (struct sockaddr *)&un,
		    sizeof un) == 0 ? s : -1;
	}
	memset(&in, 0, sizeof in);
	in.sin_family = AF_INET;
	in.sin_port = htons(colon ? atoi(colon + 1) : 6379);
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	return s >= 0 && connect(s, (struct sockaddr *)&in, sizeof in) == 0 ?
	    s : -1;
}

/* Have "+OK\r\n" and a whole bulk string ("$N\r\n" N bytes "\r\n") come? */
static int
answered(const char *buf, size_t n)
{
	const char *end;
	long len;

	if (n < 5 || memcmp(buf, "+OK\r\n", 5) != 0 || n < 6 || buf[5] != '$')
		return 0;
	if ((end = memchr(buf + 5, '\n', n - 5)) == NULL)
		return 0;
	len = atol(buf + 6);
	return len < 0 || (size_t)(end + 1 - buf) + (size_t)len + 2 <= n;
}

int
main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	struct timeval tv = { 0, 0 };
	struct pollfd p;
	fd_set rfds;
	char out[512], in[512];
	size_t got = 0;
	ssize_t r;
	int s, n;

	if (argc < 6)
		return 100;
	if (getpeername(0, (struct sockaddr *)&ss, &len) != 0)
		len = 0;
	n = snprintf(out, sizeof out, "*3\r\n$4\r\nAUTH\r\n$%zu\r\n%s\r\n"
	    "$%zu\r\n%s\r\n*2\r\n$3\r\nGET\r\n$%zu\r\n%s\r\n",
	    strlen(argv[2]), argv[2], strlen(argv[3]), argv[3],
	    strlen(argv[4]), argv[4]);
	if (n <= 0 || (size_t)n >= sizeof out || (s = dial(argv[1])) < 0 ||
	    write(s, out, (size_t)n) != n)
		return 111;
	while (!answered(in, got)) {
		p.fd = s;
		p.events = POLLIN;
		if (poll(&p, 1, 1000) != 1 || got == sizeof in ||
		    (r = read(s, in + got, sizeof in - got)) <= 0)
			return 111;
		got += (size_t)r;
	}
	close(s);
	FD_ZERO(&rfds);
	FD_SET(0, &rfds);
	if (select(1, &rfds, NULL, NULL, &tv) > 0)
		return 0;
	execv(argv[5], argv + 5);
	return 111;
}
