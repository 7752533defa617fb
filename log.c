/* log.c - logging; see log.h for the contract. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 1024
#define HEADER_MAX 64		/* "<PRI>Mmm dd hh:mm:ss sendwrap[PID]: " */
#define RECONNECT_S 1		/* no log socket: try again after */

static enum log_mode mode = LOGTO_STDERR;
static int syslog_open;
static int fd2_was_closed;
static int wait_ms = LOG_WAIT_MS;	/* for room on standard error */
static unsigned long dropped;		/* lines it had no room for */
static int own_client;			/* syslog through log_fd, not syslog(3) */
static int log_fd = -1;			/* connected to _PATH_LOG */
static struct timespec retry_at;	/* no connect before then */

void
log_init(void)
{
	int fd, got;

	/* In order: each open takes the lowest free number, the one due. */
	for (fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		if (fd == 2)
			fd2_was_closed = 1;
		got = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY);
		if (got >= 0 && got != fd)
			close(got);
	}
}

int
log_mode_parse(const char *s, enum log_mode *m)
{
	int i = name_index(log_mode_names, s);

	if (i < 0)
		return -1;
	*m = (enum log_mode)i;
	return 0;
}

/* Would a line on fd 2 reach a network peer, or nobody at all? */
static int
stderr_unusable(void)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	struct stat st;

	if (fd2_was_closed || fstat(2, &st) != 0)
		return 1;
	if (!S_ISSOCK(st.st_mode))
		return 0;
	if (getsockname(2, (struct sockaddr *)&ss, &len) != 0)
		return 1;
	return ss.ss_family == AF_INET || ss.ss_family == AF_INET6;
}

void
log_open(enum log_mode m)
{
	if (m == LOGTO_AUTO || m == LOGTO_STDERR)
		m = stderr_unusable() ? LOGTO_SYSLOG : LOGTO_STDERR;
	mode = m;
}

void
log_never_wait(void)
{
	wait_ms = 0;
	own_client = 1;
}

/* Is there room on fd 2 for a line, within wait_ms?  (A pipe with a free
 * page takes a line of LINE_MAX_BYTES without blocking.) */
static int
room(void)
{
	struct pollfd p;
	int r;

	p.fd = 2;
	p.events = POLLOUT;
	do
		r = poll(&p, 1, wait_ms);
	while (r < 0 && errno == EINTR);
	return r > 0 && !(p.revents & POLLNVAL);
}

/* One line on standard error, or none when the reader does not keep up:
 * a stuck log reader must not stop the connections. */
static void
put_line(const char *line, size_t n)
{
	char note[96];
	int len;

	if (!room()) {
		dropped++;
		return;
	}
	if (dropped) {
		len = snprintf(note, sizeof note, "sendwrap: error %lu log lines "
		    "dropped: standard error was full\n", dropped);
		dropped = 0;
		while (write(2, note, (size_t)len) < 0 && errno == EINTR)
			;
	}
	while (write(2, line, n) < 0 && errno == EINTR)
		;
}

/* ------------------------------------------------ our own syslog client */

/* Is it time to try connecting again?  If so, the next try is later. */
static int
may_connect(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec < retry_at.tv_sec || (now.tv_sec == retry_at.tv_sec &&
	    now.tv_nsec < retry_at.tv_nsec))
		return 0;
	retry_at = now;
	retry_at.tv_sec += RECONNECT_S;
	return 1;
}

/* A datagram socket connected to the log daemon's, non-blocking, in
 * log_fd: 0, or -1 (none; tried again no sooner than RECONNECT_S). */
static int
connect_log(void)
{
	struct sockaddr_un sun;

	if (log_fd >= 0)
		return 0;
	if (!may_connect())
		return -1;
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	strncpy(sun.sun_path, _PATH_LOG, sizeof sun.sun_path - 1);
	log_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (log_fd >= 0 &&
	    connect(log_fd, (struct sockaddr *)&sun, sizeof sun) == 0)
		return 0;
	/* A stream socket there: syslog(3) knows its framing; it may wait. */
	if (errno == EPROTOTYPE)
		own_client = 0;
	if (log_fd >= 0)
		close(log_fd);
	log_fd = -1;
	return -1;
}

/* Send one datagram without waiting: 0, or -1.  A daemon that went away
 * (restarted) is connected to again, once. */
static int
send_log(const char *msg, size_t n)
{
	int tries;

	for (tries = 0; tries < 2 && connect_log() == 0; tries++) {
		if (send(log_fd, msg, n, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
			return 0;
		if (errno != ECONNREFUSED && errno != ENOTCONN &&
		    errno != ECONNRESET && errno != EPIPE)
			return -1;	/* full (EAGAIN, ENOBUFS): dropped */
		close(log_fd);
		log_fd = -1;
		retry_at.tv_sec = 0;	/* reconnect now, once */
	}
	return -1;
}

/* msg as glibc's syslog(3) sends it to the daemon (RFC 3164), with our
 * facility and ident: "<PRI>Mmm dd hh:mm:ss sendwrap[PID]: msg". */
static size_t
frame(char *buf, size_t size, int priority, const char *msg, size_t n)
{
	static const char month[12][4] = { "Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t now = time(NULL);
	struct tm tm;
	int h;

	if (localtime_r(&now, &tm) == NULL)
		memset(&tm, 0, sizeof tm);
	h = snprintf(buf, size, "<%d>%s %2d %02d:%02d:%02d sendwrap[%ld]: ",
	    LOG_MAIL | priority, month[tm.tm_mon % 12], tm.tm_mday,
	    tm.tm_hour, tm.tm_min, tm.tm_sec, (long)getpid());
	if (h < 0 || (size_t)h >= size)
		return 0;
	if (n > size - (size_t)h)
		n = size - (size_t)h;
	memcpy(buf + h, msg, n);
	return (size_t)h + n;
}

/*
 * One line to syslog, or none when the daemon cannot take it at once:
 * dropped and counted, the count sent first when one gets through.  0;
 * or -1, the line not sent, when the log socket is a stream one: then
 * syslog(3) is used from now on.
 */
static int
put_syslog(int priority, const char *line, size_t n)
{
	char buf[HEADER_MAX + LINE_MAX_BYTES], note[96];
	int sent = 0;

	if (dropped) {
		snprintf(note, sizeof note, "error %lu log lines dropped: "
		    "syslog was full or not there", dropped);
		if (send_log(buf, frame(buf, sizeof buf, LOG_ERR, note,
		    strlen(note))) == 0)
			dropped = 0;
	}
	if (!dropped)
		sent = send_log(buf, frame(buf, sizeof buf, priority, line,
		    n)) == 0;
	if (!own_client)
		return -1;
	if (!sent)
		dropped++;
	return 0;
}

/* ------------------------------------------------------------ lines */

static void
emit(int priority, const char *prefix, const char *fmt, va_list ap)
{
	static const char tag[] = "sendwrap: ";
	char line[LINE_MAX_BYTES];
	size_t n = 0, plen = strlen(prefix);
	int r, saved = errno;

	if (mode == LOGTO_NONE)
		return;
	if (mode == LOGTO_STDERR) {
		memcpy(line, tag, sizeof tag - 1);
		n = sizeof tag - 1;
	}
	memcpy(line + n, prefix, plen);
	n += plen;
	r = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
	if (r < 0)
		r = 0;
	n += (size_t)r < sizeof line - n - 1 ? (size_t)r : sizeof line - n - 2;
	if (mode == LOGTO_STDERR) {
		line[n++] = '\n';
		put_line(line, n);
	} else if (!own_client || put_syslog(priority, line, n) != 0) {
		line[n] = '\0';
		if (!syslog_open) {
			openlog("sendwrap", LOG_PID, LOG_MAIL);
			syslog_open = 1;
		}
		syslog(priority, "%s", line);
	}
	errno = saved;
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(LOG_INFO, "", fmt, ap);
	va_end(ap);
}

void
log_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(LOG_ERR, "error ", fmt, ap);
	va_end(ap);
}

/* log_escape(), and with word set log_escape_word(). */
static size_t
escape(char *dst, size_t size, const char *src, size_t len, int word)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0, i;

	if (size == 0)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];
		char esc[5];
		size_t elen = 2;

		esc[0] = '\\';
		switch (c) {
		case '\r': esc[1] = 'r'; break;
		case '\n': esc[1] = 'n'; break;
		case '\t': esc[1] = 't'; break;
		case '\\': esc[1] = '\\'; break;
		case '"': esc[1] = '"'; break;
		default:
			if (c >= 0x20 && c < 0x7f && !(word && c == ' ')) {
				esc[0] = (char)c;
				elen = 1;
			} else {
				esc[1] = 'x';
				esc[2] = hex[c >> 4];
				esc[3] = hex[c & 15];
				elen = 4;
			}
		}
		if (n + elen >= size)
			break;
		memcpy(dst + n, esc, elen);
		n += elen;
	}
	dst[n] = '\0';
	return n;
}

size_t
log_escape(char *dst, size_t size, const char *src, size_t len)
{
	return escape(dst, size, src, len, 0);
}

size_t
log_escape_word(char *dst, size_t size, const char *src, size_t len)
{
	return escape(dst, size, src, len, 1);
}

void
log_close(void)
{
	if (syslog_open) {
		closelog();
		syslog_open = 0;
	}
	if (log_fd >= 0) {
		close(log_fd);
		log_fd = -1;
	}
}
