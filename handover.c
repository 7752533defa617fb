/* handover.c - a child for a client; see handover.h. */
#define _GNU_SOURCE		/* execvpe */
#include "handover.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "admin.h"
#include "conn.h"
#include "log.h"
#include "smtp.h"

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

/* Every signal at its default, none blocked, as a program expects. */
static void
default_signals(void)
{
	struct sigaction dfl;
	sigset_t none;
	int sig;

	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* In the child, between vfork and exec: only what is safe there.  An
 * exec that fails sends its errno down report. */
static void __attribute__((noreturn))
become(char **program, int fd, char **env, int report)
{
	int err;

	default_signals();
	if (dup2(fd, 0) == 0 && dup2(fd, 1) == 1)
		execvpe(program[0], program, env);
	err = errno;
	/* The client hears what inetd's sendwrap would say: try later. */
	send(fd, REPLY_UNAVAILABLE, sizeof REPLY_UNAVAILABLE - 1,
	    MSG_NOSIGNAL | MSG_DONTWAIT);
	if (write(report, &err, sizeof err) < 0)
		_exit(EXIT_TEMP);
	_exit(EXIT_TEMP);
}

/* Did the child exec?  0, or -1 with its errno (the child is reaped). */
static int
exec_result(pid_t pid, int report)
{
	int err, status;
	ssize_t got;

	/* Our copy of the write end is gone: the read ends at the child's
	 * exec (close-on-exec) or its exit. */
	do
		got = read(report, &err, sizeof err);
	while (got < 0 && errno == EINTR);
	close(report);
	if (got != sizeof err)
		return 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	errno = err;
	return -1;
}

pid_t
spawn_program(char **program, int fd, const struct peer *remote)
{
	char vars[UCSPI_VARS][VAR_MAX];
	int report[2];
	size_t k, i;
	pid_t pid;

	if (pipe2(report, O_CLOEXEC) != 0)
		return -1;
	k = ucspi_env(vars, fd, remote);
	for (i = 0; i < k; i++)
		base[nbase + i] = vars[i];
	base[nbase + k] = NULL;
	/* vfork: the child borrows our memory until it execs, so a child
	 * costs the same however large the listener has grown. */
	if ((pid = vfork()) == 0)
		become(program, fd, base, report[1]);
	base[nbase] = NULL;
	close(report[1]);
	if (pid < 0) {
		close(report[0]);
		return -1;
	}
	return exec_result(pid, report[0]) == 0 ? pid : -1;
}

pid_t
spawn_responder(const struct decoy_config *dc, int fd, const struct peer *p)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	default_signals();
	log_close();
	if (dup2(fd, 0) < 0 || dup2(fd, 1) < 0)
		_exit(EXIT_TEMP);
	closefrom(3);
	decoy_tempfail(dc, p);
	close_gently(0, 1, CONN_DRAIN_MS, CONN_DRAIN_MAX);
	_exit(0);
}
