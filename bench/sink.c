/*
 * sink - the floor of a held connection's memory, for bench/listener.py:
 * listens on 127.0.0.1:PORT (0: any free port, printed on stdout), then
 * accepts every connection and holds it, reading nothing, until the
 * client hangs up; runs until it is killed.  What a held client costs
 * here is the kernel's (the accepted socket, its epoll entry, and the
 * client's own socket on this same machine) and a descriptor.
 *
 *   sink PORT
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof sin;
	struct epoll_event ev, evs[256];
	struct rlimit rl;
	int fd, ep, one = 1, n, i;

	if (argc != 2) {
		fprintf(stderr, "usage: sink PORT\n");
		return 2;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)atoi(argv[1]));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 ||
	    listen(fd, 4096) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) != 0 ||
	    (ep = epoll_create1(0)) < 0) {
		perror("sink");
		return 2;
	}
	ev.events = EPOLLIN;
	ev.data.fd = fd;
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	printf("%u\n", ntohs(sin.sin_port));
	fflush(stdout);
	for (;;) {
		n = epoll_wait(ep, evs, 256, -1);
		for (i = 0; i < n; i++) {
			int c;

			if (evs[i].data.fd != fd) {
				/* A hang-up (nothing else comes here). */
				close(evs[i].data.fd);
				continue;
			}
			while ((c = accept4(fd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
				ev.events = EPOLLRDHUP;
				ev.data.fd = c;
				epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
			}
		}
	}
}
