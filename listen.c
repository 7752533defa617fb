/* listen.c - listening sockets, privileges, limits; see listen.h. */
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* "25" into a port number. */
static int
parse_port(const char *s, unsigned short *port)
{
	unsigned long v = 0;
	const char *p = s;

	for (; *p >= '0' && *p <= '9' && v <= 65535; p++)
		v = v * 10 + (unsigned long)(*p - '0');
	if (p == s || *p != '\0' || v > 65535)
		return -1;
	*port = htons((unsigned short)v);
	return 0;
}

int
listen_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len,
    const char **why)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	const char *colon = strrchr(s, ':');
	char host[64];
	size_t hlen;

	memset(ss, 0, sizeof *ss);
	*why = "not ADDR:PORT (e.g. 0.0.0.0:25, [::]:25)";
	if (colon == NULL || (hlen = (size_t)(colon - s)) == 0 ||
	    hlen >= sizeof host)
		return -1;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (host[0] == '[' && host[hlen - 1] == ']') {
		host[hlen - 1] = '\0';
		s6->sin6_family = AF_INET6;
		*len = sizeof *s6;
		if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
			return -1;
	} else {
		s4->sin_family = AF_INET;
		*len = sizeof *s4;
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -1;
	}
	*why = "bad port (0 to 65535; 0: any free port)";
	return parse_port(colon + 1, ss->ss_family == AF_INET ?
	    &s4->sin_port : &s6->sin6_port);
}

static int
set_flags(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 ? -1 : 0;
}

static int
bind_one(const char *spec, int *fd, char *err, size_t errsize)
{
	struct sockaddr_storage ss;
	const char *why;
	socklen_t len;
	int one = 1;

	if (listen_parse(spec, &ss, &len, &why) != 0) {
		snprintf(err, errsize, "%s: %s", spec, why);
		return -1;
	}
	*fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (*fd < 0 ||
	    setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    (ss.ss_family == AF_INET6 && setsockopt(*fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &one, sizeof one) != 0) ||
	    bind(*fd, (struct sockaddr *)&ss, len) != 0 ||
	    listen(*fd, SOMAXCONN) != 0) {
		snprintf(err, errsize, "%s: cannot listen: %s", spec,
		    strerror(errno));
		if (*fd >= 0)
			close(*fd);
		return -1;
	}
	return 0;
}

/* The sockets systemd passed: LISTEN_PID is us, LISTEN_FDS of them
 * from fd 3.  The variables go, so that no child takes them as its own. */
static int
inherit(int *fds, size_t *n, size_t max, char *err, size_t errsize)
{
	const char *pid = getenv("LISTEN_PID"), *count = getenv("LISTEN_FDS");
	long i, k;
	struct stat st;

	if (pid == NULL || count == NULL || atol(pid) != (long)getpid() ||
	    (k = atol(count)) < 1) {
		snprintf(err, errsize, "systemd: no listening sockets passed "
		    "(LISTEN_FDS, LISTEN_PID)");
		return -1;
	}
	for (i = 0; i < k; i++) {
		int fd = 3 + (int)i;

		if (*n >= max) {
			snprintf(err, errsize, "systemd: more than %d sockets",
			    LISTEN_MAX);
			return -1;
		}
		if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode) ||
		    set_flags(fd) != 0) {
			snprintf(err, errsize, "systemd: fd %d is not a socket",
			    fd);
			return -1;
		}
		fds[(*n)++] = fd;
	}
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return 0;
}

int
listen_open(const char *spec, int *fds, size_t *n, size_t max, char *err,
    size_t errsize)
{
	if (strcmp(spec, LISTEN_SYSTEMD) == 0)
		return inherit(fds, n, max, err, errsize);
	if (*n >= max) {
		snprintf(err, errsize, "more than %d listening sockets",
		    LISTEN_MAX);
		return -1;
	}
	if (bind_one(spec, &fds[*n], err, errsize) != 0)
		return -1;
	(*n)++;
	return 0;
}

size_t
listen_name(int fd, char *buf, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char host[INET6_ADDRSTRLEN];
	int v6, n;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
	    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
		n = snprintf(buf, size, "fd%d", fd);
	else {
		v6 = ss.ss_family == AF_INET6;
		inet_ntop(ss.ss_family, v6 ?
		    (void *)&((struct sockaddr_in6 *)&ss)->sin6_addr :
		    (void *)&((struct sockaddr_in *)&ss)->sin_addr, host,
		    sizeof host);
		n = snprintf(buf, size, v6 ? "[%s]:%u" : "%s:%u", host,
		    ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port :
		    ((struct sockaddr_in *)&ss)->sin_port));
	}
	return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

/* Once root is given up: the first call that would take it back and
 * worked, or NULL when none does, as it must. */
static const char *
regains_root(void)
{
	gid_t root = 0;

	if (setuid(0) == 0)
		return "setuid(0)";
	if (setgid(0) == 0)
		return "setgid(0)";
	if (setgroups(1, &root) == 0)
		return "setgroups(0)";
	return NULL;
}

int
drop_privileges(long uid, long gid, char *err, size_t errsize)
{
	gid_t g = (gid_t)gid;
	const char *way;

	if (uid < 0 && gid < 0)
		return 0;
	if (uid < 0 || gid < 0) {
		snprintf(err, errsize, "a user and a group to run as: both "
		    "or neither");
		return -1;
	}
	/* The groups first: a process that is no longer root cannot. */
	if (setgroups(1, &g) != 0 || setgid(g) != 0) {
		snprintf(err, errsize, "cannot become group %ld: %s", gid,
		    strerror(errno));
		return -1;
	}
	if (setuid((uid_t)uid) != 0) {
		snprintf(err, errsize, "cannot become user %ld: %s", uid,
		    strerror(errno));
		return -1;
	}
	if ((way = regains_root()) != NULL) {
		snprintf(err, errsize, "root not given up: %s still works "
		    "as user %ld group %ld (give a user and a group other "
		    "than root's)", way, uid, gid);
		return -1;
	}
	return 0;
}

int
raise_fd_limit(unsigned long need, char *err, size_t errsize)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		snprintf(err, errsize, "cannot read the descriptor limit: %s",
		    strerror(errno));
		return -1;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= need)
		return 0;
	if (rl.rlim_cur == RLIM_INFINITY)
		return 0;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
		snprintf(err, errsize, "the descriptor limit is %llu and the "
		    "client limits need %lu: raise it (ulimit -n, systemd's "
		    "LimitNOFILE=) or lower --max-clients",
		    (unsigned long long)rl.rlim_max, need);
		return -1;
	}
	rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
		snprintf(err, errsize, "cannot raise the descriptor limit to "
		    "%lu: %s", need, strerror(errno));
		return -1;
	}
	return 0;
}
