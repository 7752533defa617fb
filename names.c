/* names.c - the name tables; see names.h. */
#include "names.h"

#include <string.h>

const char *const verdict_names[VERDICT_COUNT + 1] = { "pass", "allow",
	"early", "hangup", "cached", "known-early", "tarpit", "decoy", "busy",
	"dnsbl", "grey", "trapped", "pipelining", "non-smtp", "bare-newline",
	"error", NULL };
const char *const reason_names[REASON_COUNT + 1] = { "delay", "allowlist",
	"GREETDELAY", "RELAYCLIENT", "dnswl", "proxy-local", NULL };
const char *const early_names[EARLY_COUNT + 1] = { "reject", "tempfail",
	"drop", "pass", NULL };
const char *const mode_names[MODE_COUNT + 1] = { "wrap", "tarpit",
	"tempfail", NULL };
const char *const log_mode_names[LOGTO_COUNT + 1] = { "auto", "stderr",
	"syslog", "none", NULL };
const char *const report_by_names[BY_COUNT + 1] = { "day", "week", NULL };
const char *const forward_proxy_names[FORWARD_PROXY_COUNT + 1] = { "none",
	"v1", "v2", NULL };
const char *const report_format_names[FORMAT_COUNT + 1] = { "text", "csv",
	"prometheus", NULL };
const char *const grey_test_names[GREY_TEST_COUNT + 1] = { "pipelining",
	"non-smtp", "bare-newline", NULL };

const char *
tarpit_end_name(enum tarpit_end end)
{
	static const char *const names[] = { "client-closed", "max-reached",
	    "reset", "error" };

	return names[end];
}

const char *
decoy_end_name(enum decoy_end end)
{
	static const char *const names[] = { "quit", "client-closed", "reset",
	    "max-commands", "max-time", "error" };

	return names[end];
}

const char *
relay_end_name(enum relay_end end)
{
	static const char *const names[] = { "client-closed", "mta-closed",
	    "client-reset", "mta-reset", "client-error", "mta-error", "idle",
	    "unreachable", "error" };

	return names[end];
}

int
name_index(const char *const *table, const char *s)
{
	int i;

	for (i = 0; table[i] != NULL; i++)
		if (strcmp(table[i], s) == 0)
			return i;
	return -1;
}
