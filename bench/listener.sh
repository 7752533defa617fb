#!/usr/bin/env bash
# bench/listener.sh - the listener mode (sendwrap --listen) against one
# process per connection (tcpserver + sendwrap), in one run: memory per
# waiting client (5 000 held), CPU per refused bot, a passing client's
# cost and throughput at delay 0, and 10 000 clients waiting at once.
# `make bench-listener` runs it; see BENCHMARKS.md and bench/listener.py.
#
#   bench/listener.sh           the full run (about 5 minutes on 2 cores)
#   bench/listener.sh --quick   small sizes, for development
#
# As root on Debian it installs what it lacks (tests/deps bench).  It
# builds sendwrap (default and STATIC=1) and, into build/bench-listener/,
# bench/crowd.c (the clients), bench/sink.c (a server that only holds)
# and the static bench/target220.c (the program).  Loopback only, the
# clients from 127.0.x.y source addresses; every wait is bounded; every
# server runs in a process group of its own, which bench/listener.py
# kills on any way out.  Results: printed, and in build/bench-listener/
# (results.json, report.md).
. "$(dirname "$0")/prelude.sh" listener "$@"
echo "bench/listener.sh: building sendwrap (default and STATIC=1)" >&2
make -s build/default/sendwrap >&2
make -s STATIC=1 build/static/sendwrap >&2
cc -O2 -Wall -Wextra -o "$W/crowd" bench/crowd.c
cc -O2 -Wall -Wextra -o "$W/sink" bench/sink.c
cc -O2 -Wall -Wextra -static -o "$W/target220" bench/target220.c

# 10 000 clients and 2 000 bots at once, and the listener's own: as many
# descriptors as the hard limit allows (crowd and sink raise their own).
ulimit -n "$(ulimit -Hn)"
exec /usr/bin/python3 bench/listener.py "$ROOT" "$W" "$QUICK"
