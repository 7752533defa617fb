/*
 * admin.h - the commands an administrator runs by hand: -n (check a
 * configuration), --compile, the pass cache's maintenance (--cache-list,
 * --cache-count, --cache-delete, --cache-purge), --report (reportfmt.h),
 * --spf-walk (spf.h), --help, --version and --list-options.
 *
 * Contract: output on stdout, problems on stderr as "FILE:LINE: ..." or
 * "sendwrap: ...", nothing to a client and nothing to the log.  Each
 * returns the exit status: 0, 100 (a configuration or usage problem) or
 * 111 (a temporary failure).  -n looks and creates nothing.
 */
#ifndef SENDWRAP_ADMIN_H
#define SENDWRAP_ADMIN_H

#include "options.h"

/* Exit statuses, as ucspi-tcp's programs have them. */
#define EXIT_PERM 100		/* usage or configuration error */
#define EXIT_TEMP 111		/* temporary failure */

/* Run cfg->command (anything but COMMAND_CONNECTION). */
int admin_run(const struct config *cfg);

#endif
