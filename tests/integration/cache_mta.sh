#!/bin/sh
# Stand-in MTA for tests/integration/test_cache.py (the pass cache).
#
# sendwrap execs this on the client socket.  When CACHE_MTA_DIR is set it
# first lists the descriptors it was handed, one "FD TARGET" a line, in
# $CACHE_MTA_DIR/fds.PID: none may point at the cache or its lock file.
# Then it greets, waits for one line (or end of file), says bye and
# exits.  Nothing goes to fd 2.
if [ -n "${CACHE_MTA_DIR:-}" ]; then
	for fd in /proc/$$/fd/*; do
		printf '%s %s\n' "${fd##*/}" "$(readlink "$fd" 2>/dev/null)"
	done >"$CACHE_MTA_DIR/fds.$$"
fi
printf '220 cache-mta\r\n'
IFS= read -r line || exit 0
printf '221 bye\r\n'
