#!/usr/bin/env bash
# bench/scenarios.sh - what each defence stops: bot behaviours and a
# legitimate sender against sendwrap's plain delay, the delay with a DNS
# list, and --greylist, each in the listener (--listen) and behind
# tcpserver.  `make bench-scenarios` runs it; see BENCHMARKS.md and
# bench/scenarios.py.
#
#   bench/scenarios.sh                  the full run (20 clients per
#                                       behaviour; about 2 minutes)
#   bench/scenarios.sh --quick          2 clients per behaviour (a smoke run)
#   bench/scenarios.sh -n 5 --only greylist-listener   ... and so on
#
# As root on Debian it installs what it lacks (tests/deps bench: tcpserver,
# dnsmasq).  It builds sendwrap and, into build/bench-scenarios/,
# bench/mta.c (the program: takes every message, records who reached it).
# Results: printed, and in build/bench-scenarios/ (report.md,
# results.json).  Exit status 1 if a --greylist target is missed.
. "$(dirname "$0")/prelude.sh" scenarios
echo "bench/scenarios.sh: building sendwrap" >&2
make -s build/default/sendwrap >&2
cc -O2 -Wall -Wextra -o "$W/mta" bench/mta.c
# the listener's default --max-clients needs 10 000 descriptors and more
ulimit -n "$(ulimit -Hn)"
exec /usr/bin/python3 bench/scenarios.py "$ROOT" "$W" "$@"
