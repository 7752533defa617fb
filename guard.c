/* guard.c - faults and endless waits inside LMDB become errors; see
 * guard.h. */
#include "guard.h"

#include <lmdb.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define NSIGNALS 3

static const int signals[NSIGNALS] = { SIGSEGV, SIGBUS, SIGALRM };
static sigjmp_buf fault_jump;
static volatile sig_atomic_t fault_armed, wait_armed;
static char assert_msg[128];
static unsigned users, wait_ms;
static struct sigaction saved[NSIGNALS];
static sigset_t were_blocked;
static int any_were_blocked;
static timer_t timer;
static int have_timer;

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

/* Only a bounded wait inside guard_run() is cut short. */
static void
on_alarm(int sig)
{
	if (fault_armed && wait_armed) {
		fault_armed = 0;
		wait_armed = 0;
		siglongjmp(fault_jump, sig);
	}
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
	sigset_t ours, old;
	int i;

	if (users++ > 0)
		return;
	sigemptyset(&ours);
	sigemptyset(&were_blocked);
	for (i = 0; i < NSIGNALS; i++) {
		memset(&sa, 0, sizeof sa);
		sigemptyset(&sa.sa_mask);
		sa.sa_handler = signals[i] == SIGALRM ? on_alarm : on_fault;
		/* A stray alarm that returns must not make a call fail. */
		sa.sa_flags = signals[i] == SIGALRM ? SA_RESTART : 0;
		sigaction(signals[i], &sa, &saved[i]);
		sigaddset(&ours, signals[i]);
	}
	/* A blocked fault signal would kill outright: unblock them. */
	sigprocmask(SIG_UNBLOCK, &ours, &old);
	any_were_blocked = 0;
	for (i = 0; i < NSIGNALS; i++)
		if (sigismember(&old, signals[i])) {
			sigaddset(&were_blocked, signals[i]);
			any_were_blocked = 1;
		}
}

void
guard_release(void)
{
	int i;

	if (--users > 0)
		return;
	if (have_timer) {
		timer_delete(timer);
		have_timer = 0;
	}
	if (any_were_blocked)
		sigprocmask(SIG_BLOCK, &were_blocked, NULL);
	for (i = 0; i < NSIGNALS; i++)
		sigaction(signals[i], &saved[i], NULL);
}

static void
set_timer(unsigned ms)
{
	struct itimerspec its;

	memset(&its, 0, sizeof its);
	its.it_value.tv_sec = (time_t)(ms / 1000);
	its.it_value.tv_nsec = (long)(ms % 1000) * 1000000;
	timer_settime(timer, 0, &its, NULL);
}

void
guard_wait(unsigned ms)
{
	struct sigevent ev;

	if (!have_timer) {
		memset(&ev, 0, sizeof ev);
		ev.sigev_notify = SIGEV_SIGNAL;
		ev.sigev_signo = SIGALRM;
		if (timer_create(CLOCK_MONOTONIC, &ev, &timer) != 0)
			return;
		have_timer = 1;
	}
	wait_ms = ms ? ms : 1;
	wait_armed = 1;
	set_timer(wait_ms);
}

void
guard_waited(void)
{
	wait_armed = 0;
	if (have_timer)
		set_timer(0);
}

/* What made guard_run() jump back, as a reason. */
static void
jumped(int sig, char *why, size_t size)
{
	sigset_t s;

	if (sig < 0) {
		snprintf(why, size, "LMDB assertion failed (%s): corrupt file?",
		    assert_msg);
		return;
	}
	/* The handler's jump left its signal blocked. */
	sigemptyset(&s);
	sigaddset(&s, sig);
	sigprocmask(SIG_UNBLOCK, &s, NULL);
	if (sig == SIGALRM)
		snprintf(why, size, "LMDB waited %u ms for a lock another "
		    "process holds (stopped or hung?)", wait_ms);
	else
		snprintf(why, size, "%s reading the file: corrupt file?",
		    sig == SIGBUS ? "SIGBUS" : "SIGSEGV");
}

int
guard_run(int (*fn)(void *arg), void *arg, char *why, size_t size)
{
	int rc, sig;

	if ((sig = sigsetjmp(fault_jump, 0)) == 0) {
		fault_armed = 1;
		rc = fn(arg);
		fault_armed = 0;
		if (wait_armed)		/* fn left a wait bounded */
			guard_waited();
		return rc;
	}
	guard_waited();
	jumped(sig, why, size);
	return GUARD_FAULT;
}
