/* guard.c - faults inside LMDB become errors; see guard.h. */
#include "guard.h"

#include <lmdb.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static sigjmp_buf fault_jump;
static volatile sig_atomic_t fault_armed;
static char assert_msg[128];
static unsigned users;
static struct sigaction saved_segv, saved_bus;
static sigset_t were_blocked;

static void
on_fault(int sig)
{
	if (fault_armed) {
		fault_armed = 0;
		siglongjmp(fault_jump, sig);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

void
guard_on_assert(MDB_env *env, const char *msg)
{
	(void)env;
	if (fault_armed) {
		snprintf(assert_msg, sizeof assert_msg, "%s", msg);
		fault_armed = 0;
		siglongjmp(fault_jump, -1);
	}
}

void
guard_hold(void)
{
	struct sigaction sa;
	sigset_t faults, old;

	if (users++ > 0)
		return;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_fault;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &saved_segv);
	sigaction(SIGBUS, &sa, &saved_bus);
	/* A blocked fault signal would kill outright: unblock them. */
	sigemptyset(&faults);
	sigaddset(&faults, SIGSEGV);
	sigaddset(&faults, SIGBUS);
	sigprocmask(SIG_UNBLOCK, &faults, &old);
	sigemptyset(&were_blocked);
	if (sigismember(&old, SIGSEGV))
		sigaddset(&were_blocked, SIGSEGV);
	if (sigismember(&old, SIGBUS))
		sigaddset(&were_blocked, SIGBUS);
}

void
guard_release(void)
{
	if (--users > 0)
		return;
	if (sigismember(&were_blocked, SIGSEGV) ||
	    sigismember(&were_blocked, SIGBUS))
		sigprocmask(SIG_BLOCK, &were_blocked, NULL);
	sigaction(SIGSEGV, &saved_segv, NULL);
	sigaction(SIGBUS, &saved_bus, NULL);
}

int
guard_run(int (*fn)(void *arg), void *arg, char *why, size_t size)
{
	int rc, sig;

	if ((sig = sigsetjmp(fault_jump, 0)) == 0) {
		fault_armed = 1;
		rc = fn(arg);
		fault_armed = 0;
		return rc;
	}
	if (sig < 0) {
		snprintf(why, size, "LMDB assertion failed (%s): corrupt file?",
		    assert_msg);
	} else {
		sigset_t s;

		/* The handler's jump left its signal blocked. */
		sigemptyset(&s);
		sigaddset(&s, sig);
		sigprocmask(SIG_UNBLOCK, &s, NULL);
		snprintf(why, size, "%s reading the file: corrupt file?",
		    sig == SIGBUS ? "SIGBUS" : "SIGSEGV");
	}
	return GUARD_FAULT;
}
