/* log.c - logging; see log.h for the contract. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#define LINE_MAX_BYTES 1024

static enum log_mode mode = LOGTO_STDERR;
static int syslog_open;
static int fd2_was_closed;

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
	if (mode == LOGTO_SYSLOG) {
		line[n] = '\0';
		if (!syslog_open) {
			openlog("sendwrap", LOG_PID, LOG_MAIL);
			syslog_open = 1;
		}
		syslog(priority, "%s", line);
	} else {
		line[n++] = '\n';
		while (write(2, line, n) < 0 && errno == EINTR)
			;
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
}
