/* conn.c - the client's connection; see conn.h for the contract. */
#include "conn.h"

#include "dnsl.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Wait until fd has one of events (POLLIN, POLLOUT; an error or hang-up
 * counts too: the next read or write says which) or mono_ms() reaches
 * deadline.  1, 0 at the deadline, or -1 with errno.
 */
static int
wait_for(int fd, short events, uint64_t deadline)
{
	for (;;) {
		uint64_t now = mono_ms(), left = deadline > now ? deadline - now : 0;
		struct pollfd p;
		int r;

		p.fd = fd;
		p.events = events;
		p.revents = 0;
		r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (r > 0 && (p.revents & POLLNVAL)) {
			errno = EBADF;
			return -1;
		}
		if (r > 0)
			return 1;
		if (r == 0) {
			/* Only the clock decides, never a wake-up a hair early. */
			if (mono_ms() >= deadline)
				return 0;
			continue;
		}
		if (errno != EINTR)
			return -1;
	}
}

enum wait_result
wait_readable(int fd, uint64_t deadline)
{
	int r = wait_for(fd, POLLIN, deadline);

	return r > 0 ? WAIT_READABLE : r == 0 ? WAIT_TIMEOUT : WAIT_ERROR;
}

enum client_wait
wait_client(int fd, uint64_t deadline, struct dnsl_resolver *r)
{
	fd_set rfds, wfds;
	struct timeval tv;
	uint64_t now, left;
	int64_t dns_ms;
	int nfds, n;

	if (r == NULL)
		/* The same values, one for one. */
		return (enum client_wait)wait_readable(fd, deadline);
	FD_ZERO(&rfds);
	FD_ZERO(&wfds);
	FD_SET(fd, &rfds);
	nfds = fd + 1;
	dnsl_fds(r, &rfds, &wfds, &nfds);
	now = mono_ms();
	left = deadline > now ? deadline - now : 0;
	if ((dns_ms = dnsl_timeout_ms(r)) >= 0 && (uint64_t)dns_ms < left)
		left = (uint64_t)dns_ms;
	tv.tv_sec = (time_t)(left / 1000);
	tv.tv_usec = (suseconds_t)(left % 1000 * 1000);
	n = select(nfds, &rfds, &wfds, NULL, &tv);
	if (n < 0) {
		if (errno != EINTR)
			return CLIENT_ERROR;
		FD_ZERO(&rfds);
		FD_ZERO(&wfds);
	} else if (FD_ISSET(fd, &rfds))
		return CLIENT_READABLE;
	dnsl_process(r, &rfds, &wfds);
	return mono_ms() >= deadline ? CLIENT_TIMEOUT : CLIENT_DNS;
}

enum input_kind
peek_input(int fd, char *buf, size_t size, size_t *copied, size_t *waiting)
{
	ssize_t got;
	int avail;

	*copied = *waiting = 0;
	do
		got = recv(fd, buf, size, MSG_PEEK | MSG_DONTWAIT);
	while (got < 0 && errno == EINTR);
	if (got > 0) {
		*copied = *waiting = (size_t)got;
		return INPUT_DATA;
	}
	if (got == 0)
		return INPUT_EOF;
	if (errno == ECONNRESET)
		return INPUT_RESET;
	if (errno != ENOTSOCK)
		return INPUT_ERROR;
	if (ioctl(fd, FIONREAD, &avail) != 0)
		return INPUT_ERROR;
	if (avail == 0)
		return INPUT_EOF;
	*waiting = (size_t)avail;
	return INPUT_DATA;
}

/* Wait until fd can take some output: 0, or -1 (ETIMEDOUT). */
static int
wait_writable(int fd, uint64_t deadline)
{
	int r = wait_for(fd, POLLOUT, deadline);

	if (r == 0)
		errno = ETIMEDOUT;
	return r > 0 ? 0 : -1;
}

int
conn_unsent(int fd)
{
	int pending;

	return ioctl(fd, TIOCOUTQ, &pending) == 0 ? pending : 0;
}

int
send_all(int fd, const char *buf, size_t len, uint64_t deadline)
{
	int is_socket = 1;

	while (len > 0) {
		ssize_t w;

		if (is_socket)
			w = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		else if (wait_writable(fd, deadline) != 0)
			return -1;
		else	/* at most what a writable pipe takes without blocking */
			w = write(fd, buf, len < PIPE_BUF ? len : PIPE_BUF);
		if (w < 0 && errno == ENOTSOCK && is_socket) {
			is_socket = 0;
			continue;
		}
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_writable(fd, deadline) != 0)
				return -1;
			continue;
		}
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

void
close_gently(int in, int out, uint64_t drain_ms, size_t drain_max)
{
	uint64_t deadline = mono_ms() + drain_ms;
	char sink[4096];
	size_t drained = 0;

	shutdown(out, SHUT_WR);
	while (drained < drain_max && wait_readable(in, deadline) == WAIT_READABLE) {
		ssize_t got = read(in, sink, sizeof sink);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		drained += (size_t)got;
	}
	close(in);
	if (out != in)
		close(out);
}
