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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "admin.h"
#include "conn.h"
#include "log.h"
#include "smtp.h"
#include "ucspi.h"

extern char **environ;

static char **base;		/* our environment, UCSPI variables left out */
static size_t nbase;
static struct rlimit fd_limit;	/* the descriptor limit we were given */
static int have_fd_limit;

int
spawn_init(void)
{
	size_t n = 0, i;

	while (environ[n])
		n++;
	if ((base = calloc(n + UCSPI_VARS + 1, sizeof *base)) == NULL)
		return -1;
	have_fd_limit = getrlimit(RLIMIT_NOFILE, &fd_limit) == 0;
	for (i = 0; i < n; i++)
		if (!ucspi_is_var(environ[i]))
			base[nbase++] = environ[i];
	return 0;
}

/* The UCSPI variables for a client on fd (local: the socket's own
 * address, unless given); their number. */
static size_t
ucspi_env(char vars[UCSPI_VARS][UCSPI_VAR_MAX], int fd,
    const struct peer *remote, const struct peer *local)
{
	struct peer own;
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;

	if (local)
		return ucspi_vars(vars, remote, local);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
		peer_from_sockaddr(&own, (struct sockaddr *)&ss);
	else
		memset(&own, 0, sizeof own);
	return ucspi_vars(vars, remote, &own);
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
	if (have_fd_limit)	/* not the listener's, raised for its clients */
		setrlimit(RLIMIT_NOFILE, &fd_limit);
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
spawn_program(char **program, int fd, const struct peer *remote,
    const struct peer *local)
{
	char vars[UCSPI_VARS][UCSPI_VAR_MAX];
	int report[2];
	size_t k, i;
	pid_t pid;

	if (pipe2(report, O_CLOEXEC) != 0)
		return -1;
	k = ucspi_env(vars, fd, remote, local);
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
