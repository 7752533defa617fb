/* ucspi.c - the UCSPI environment; see ucspi.h for the contract. */
#include "ucspi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

extern char **environ;

int
ucspi_is_var(const char *e)
{
	return strncmp(e, "PROTO=", 6) == 0 || strncmp(e, "TCP", 3) == 0;
}

/* "TCPNAME=..." and its TCP6 twin (an IPv4 address mapped in it). */
static void
pair(char vars[][UCSPI_VAR_MAX], size_t *k, const char *name,
    const char *value, int mapped)
{
	snprintf(vars[(*k)++], UCSPI_VAR_MAX, "TCP%s=%s", name, value);
	snprintf(vars[(*k)++], UCSPI_VAR_MAX, "TCP6%s=%s%s", name,
	    mapped ? "::ffff:" : "", value);
}

size_t
ucspi_vars(char vars[UCSPI_VARS][UCSPI_VAR_MAX], const struct peer *remote,
    const struct peer *local)
{
	int v4 = remote->addr.family == AF_INET;
	size_t k = 0;

	snprintf(vars[k++], UCSPI_VAR_MAX, "PROTO=%s", v4 ? "TCP" : "TCP6");
	if (local->known) {
		pair(vars, &k, "LOCALIP", local->ip,
		    local->addr.family == AF_INET);
		pair(vars, &k, "LOCALPORT", local->port, 0);
	}
	pair(vars, &k, "REMOTEIP", remote->ip, v4);
	pair(vars, &k, "REMOTEPORT", remote->port, 0);
	return k;
}

/* Remove the first UCSPI variable of the environment: 1, or 0 if none. */
static int
unset_one(void)
{
	char **e, *name;

	for (e = environ; *e; e++) {
		if (!ucspi_is_var(*e))
			continue;
		if ((name = strndup(*e, strcspn(*e, "="))) == NULL)
			return 0;
		unsetenv(name);
		free(name);
		return 1;
	}
	return 0;
}

int
ucspi_export(const struct peer *remote, const struct peer *local)
{
	static char vars[UCSPI_VARS][UCSPI_VAR_MAX];	/* putenv keeps them */
	size_t k, i;

	while (unset_one())	/* each pass removes one */
		;
	k = ucspi_vars(vars, remote, local);
	for (i = 0; i < k; i++)
		if (putenv(vars[i]) != 0)
			return -1;
	return 0;
}
