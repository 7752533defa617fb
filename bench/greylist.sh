#!/usr/bin/env bash
# bench/greylist.sh - what a greylisted client costs (--greylist), each
# figure a ratio against a reference measured in the same run: the
# listener's CPU per greylisted first attempt against one per-connection
# exec of sendwrap; the memory of a client in the dialog beyond a waiting
# one; a greylisted session run once per connection against a tempfail
# decoy session.  `make bench-greylist` runs it; see BENCHMARKS.md and
# bench/greylist.py.
#
#   bench/greylist.sh           the full run (5 rounds; about 80 s)
#   bench/greylist.sh --quick   small sizes, one round, for development
#
# As root on Debian it installs what it lacks (tests/deps bench).  It
# builds sendwrap and, into build/bench-greylist/, bench/passbench.c (the
# per-connection launcher, whose client speaks the session), the static
# bench/target220.c (the program) and floor 1 (bench/floor1.c, built as
# sendwrap is).  Loopback only, every client from a 127.x.y.z address of
# its own; every wait is bounded; every server runs in a process group of
# its own, killed on any way out.  Results: printed, and in
# build/bench-greylist/ (results.json, report.md).  Exit status 1 if a
# target is missed.
. "$(dirname "$0")/prelude.sh" greylist "$@"
echo "bench/greylist.sh: building sendwrap" >&2
make -s build/default/sendwrap >&2
mkdir -p "$W/default"
build_floor1 "$W/default"
cc -O2 -Wall -Wextra -static -o "$W/target220" bench/target220.c
cc -O2 -Wall -Wextra -static -o "$W/passbench" bench/passbench.c

# the held clients and the listener's own: a descriptor each
ulimit -n "$(ulimit -Hn)"
exec /usr/bin/python3 bench/greylist.py "$ROOT" "$W" "$QUICK"
