/* smtpline.c - an SMTP client's lines and verbs; see smtpline.h. */
#include "smtpline.h"

#include <string.h>
#include <strings.h>

int
smtp_take_line(struct smtp_lines *in, char *line, size_t *len, unsigned *how)
{
	char *nl = memchr(in->buf, '\n', in->len);
	size_t used;

	if (nl == NULL) {
		if (in->len == sizeof in->buf) {
			in->overlong = 1;
			in->len = 0;
		}
		return 0;
	}
	used = (size_t)(nl - in->buf) + 1;
	*len = used - 1;
	*how = in->overlong ? LINE_LONG : 0;
	if (*len > 0 && in->buf[*len - 1] == '\r')
		(*len)--;
	else
		*how |= LINE_BARE_LF;
	memcpy(line, in->buf, *len);
	memmove(in->buf, in->buf + used, in->len - used);
	in->len -= used;
	if (in->len > 0)
		*how |= LINE_MORE;
	in->overlong = 0;
	return 1;
}

char *
smtp_lines_room(struct smtp_lines *in, size_t *room)
{
	*room = sizeof in->buf - in->len;
	return in->buf + in->len;
}

/* ------------------------------------------------------------ verbs */

enum smtp_cmd
smtp_classify(const char *line, size_t len)
{
	static const char *const verbs[] = { "HELO", "EHLO", "MAIL", "RSET",
	    "NOOP", "RCPT", "DATA", "QUIT" };
	size_t i;

	if (len < 4 || (len > 4 && line[4] != ' '))
		return CMD_UNKNOWN;
	for (i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
		if (strncasecmp(line, verbs[i], 4) == 0)
			return (enum smtp_cmd)i;
	return CMD_UNKNOWN;
}
