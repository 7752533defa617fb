/*
 * testlib.h - what the cmocka suites share: a scratch directory made for
 * a group of tests and removed with everything in it afterwards.
 *
 * Use: cmocka_run_group_tests(tests, scratch_setup, scratch_teardown),
 * then build paths under scratch_dir.
 */
#ifndef SENDWRAP_TESTLIB_H
#define SENDWRAP_TESTLIB_H

#include <limits.h>

extern char scratch_dir[PATH_MAX];

/* Make scratch_dir under $TMPDIR (or /tmp), mode 0755 so that a test
 * running as root can hand files to "nobody". */
int scratch_setup(void **state);

/* The path of name in scratch_dir, from malloc (the caller frees it);
 * aborts when out of memory. */
char *scratch_file(const char *name);

/* Remove scratch_dir and everything below it. */
int scratch_teardown(void **state);

/* The descriptors this process has open (/proc/self/fd), or -1. */
int count_fds(void);

/* Remove a directory tree; 0 or -1. */
int remove_tree(const char *dir);

#endif
