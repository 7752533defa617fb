/* handover.c - a child for a client; see handover.h. */
#include "handover.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

#define UCSPI_VARS 9		/* PROTO and 4 x TCP*, 4 x TCP6* */
#define VAR_MAX 80

static char **base;		/* our environment, UCSPI variables left out */
static size_t nbase;

/* Is e one of the variables a UCSPI server sets for its child? */
static int
ucspi_var(const char *e)
{
	return strncmp(e, "PROTO=", 6) == 0 || strncmp(e, "TCP", 3) == 0;
}

int
spawn_init(void)
{
	size_t n = 0, i;

	while (environ[n])
		n++;
	if ((base = calloc(n + UCSPI_VARS + 1, sizeof *base)) == NULL)
		return -1;
	for (i = 0; i < n; i++)
		if (!ucspi_var(environ[i]))
			base[nbase++] = environ[i];
	return 0;
}

/* "TCPLOCALIP=..." and its TCP6 twin (an IPv4 address mapped in it). */
static void
pair(char vars[][VAR_MAX], size_t *k, const char *name, const char *v4or6,
    int mapped)
{
	snprintf(vars[(*k)++], VAR_MAX, "TCP%s=%s", name, v4or6);
	snprintf(vars[(*k)++], VAR_MAX, "TCP6%s=%s%s", name,
	    mapped ? "::ffff:" : "", v4or6);
}

/* The UCSPI variables for a client on fd; their number. */
static size_t
ucspi_env(char vars[][VAR_MAX], int fd, const struct peer *remote)
{
	struct peer local;
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	int v4 = remote->addr.family == AF_INET;
	size_t k = 0;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
		peer_from_sockaddr(&local, (struct sockaddr *)&ss);
	else
		memset(&local, 0, sizeof local);
	snprintf(vars[k++], VAR_MAX, "PROTO=%s", v4 ? "TCP" : "TCP6");
	if (local.known) {
		pair(vars, &k, "LOCALIP", local.ip, v4);
		pair(vars, &k, "LOCALPORT", local.port, 0);
	}
	pair(vars, &k, "REMOTEIP", remote->ip, v4);
	pair(vars, &k, "REMOTEPORT", remote->port, 0);
	return k;
}

pid_t
spawn_program(char **program, int fd, const struct peer *remote)
{
	char vars[UCSPI_VARS][VAR_MAX];
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	size_t k, i;
	pid_t pid;
	int r;

	k = ucspi_env(vars, fd, remote);
	for (i = 0; i < k; i++)
		base[nbase + i] = vars[i];
	base[nbase + k] = NULL;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fd, 0);
	posix_spawn_file_actions_adddup2(&fa, fd, 1);
	posix_spawnattr_init(&at);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK |
	    POSIX_SPAWN_SETSIGDEF);
	r = posix_spawnp(&pid, program[0], &fa, &at, program, base);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	base[nbase] = NULL;
	if (r != 0) {
		errno = r;
		return -1;
	}
	return pid;
}
