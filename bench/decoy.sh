#!/usr/bin/env bash
# bench/decoy.sh - what a decoy MX connection costs while it is held.
#
#   bench/decoy.sh           the full run (about 3 minutes on 2 cores)
#   bench/decoy.sh --quick   small sizes, for development
#
# 1. Memory per held connection: 500 connections held at once through
#    tcpserver (ucspi-tcp-ipv6, -c 600) by sendwrap --tarpit, against
#    floor 1 (bench/floor1.c: getpeername + select + exec, built with
#    sendwrap's very flags through bench/flags.mk) waiting in its select,
#    and against sendwrap waiting in a plain greeting delay; dynamic and
#    static builds.  Pss, Private_Dirty and Rss are summed from
#    /proc/PID/smaps_rollup over the held processes, and their page tables
#    (VmPTE of /proc/PID/status), kernel memory that smaps does not show
#    (add the kernel stack: 16 kB a process on x86-64).
# 2. CPU per held connection-hour: 200 tarpit connections held for 30 s
#    with a 1 s interval (ten times the default rate), utime + stime from
#    /proc/PID/stat (and the nanosecond sum_exec_runtime of
#    /proc/PID/schedstat) read at the start and the end of the window, so
#    process start-up is not counted; extrapolated to an hour, and to the
#    default 10 s interval (the cost is per line sent).  floor 1 is held
#    the same way for comparison.
#
# If bench/floor1.c is missing, floor 1 is left out and the plain
# greeting delay is the baseline (the tables say so).  Loopback only;
# every wait is bounded; every server runs in a process group of its own,
# recorded, and the trap below kills what is left on any exit.  Results:
# printed, and build/bench-decoy/results.json.  Needs root only to
# install ucspi-tcp-ipv6 when it is missing.
. "$(dirname "$0")/prelude.sh" decoy "$@"
PGIDS=$W/pgids
: > "$PGIDS"
py_pid=
cleanup() {
	trap - EXIT INT TERM HUP
	if [ -n "$py_pid" ]; then
		kill "$py_pid" 2>/dev/null || true
		wait "$py_pid" 2>/dev/null || true
	fi
	while read -r pg; do
		case $pg in ''|*[!0-9]*) continue ;; esac
		kill -KILL -- "-$pg" 2>/dev/null || true
	done < "$PGIDS"
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

echo "bench/decoy.sh: building sendwrap (default and STATIC=1)" >&2
make -s build/default/sendwrap >&2
make -s STATIC=1 build/static/sendwrap >&2
FLOOR=yes
[ -f bench/floor1.c ] || FLOOR=no
for v in default static; do
	mkdir -p "$W/$v"
	[ "$FLOOR" = yes ] || continue
	if [ "$v" = static ]; then flags=(STATIC=1); else flags=(); fi
	eval "$(make -s --no-print-directory -f Makefile -f bench/flags.mk \
		bench-flags "${flags[@]}" | sed 's/^\([A-Z]*\)=\(.*\)$/\1="\2"/')"
	$COMPILE -c -o "$W/$v/floor1.o" bench/floor1.c
	$LINK -o "$W/$v/floor1" "$W/$v/floor1.o"
done

ulimit -n 4096 2>/dev/null || true
cat > "$W/decoybench.py" <<'EOF'
import json, os, selectors, signal, socket, subprocess, sys, threading, time

ROOT, W, QUICK, FLOOR = sys.argv[1], sys.argv[2], sys.argv[3] == "1", \
    sys.argv[4] == "yes"
sys.path.insert(0, os.path.join(ROOT, "tests"))
import proclib  # noqa: E402  (tests/proclib.py: /proc for tests and bench)

N_MEM = 100 if QUICK else 500
N_CPU = 50 if QUICK else 200
CPU_SECS = 10 if QUICK else 30
CPU_INTERVAL = 1.0                  # seconds between two 220- lines
DEFAULT_INTERVAL = 10.0
T0 = time.monotonic()


def log(msg):
    print("[%6.1fs] %s" % (time.monotonic() - T0, msg), file=sys.stderr,
          flush=True)


def sendwrap(v):
    return os.path.join(ROOT, "build", v, "sendwrap")


def floor1(v):
    return os.path.join(W, v, "floor1")


def start_server(argv):
    logf = open(os.path.join(W, "tcpserver.log"), "ab")
    p = subprocess.Popen(
        ["tcpserver", "-1", "-R", "-H", "-l0", "-c600", "-b600",
         "127.0.0.1", "0"] + argv,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=logf,
        start_new_session=True)
    logf.close()
    with open(os.path.join(W, "pgids"), "a") as f:
        f.write("%d\n" % p.pid)
    line = p.stdout.readline()
    if not line:
        raise SystemExit("tcpserver did not start: %s" % argv)
    return p, int(line)


def stop_server(p):
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            break
        try:
            p.wait(timeout=5)
            break
        except subprocess.TimeoutExpired:
            pass


class Holder:
    """n client connections, held open; a thread reads and counts lines."""

    def __init__(self, port, n):
        self.socks, self.lines = [], 0
        self.sel = selectors.DefaultSelector()
        deadline = time.monotonic() + 60
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ)
            self.socks.append(s)
            if time.monotonic() > deadline:
                raise SystemExit("connecting took over 60 s")
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.drain, daemon=True)
        self.thread.start()

    def drain(self):
        while not self.stop.is_set():
            for key, _ in self.sel.select(0.2):
                try:
                    data = key.fileobj.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    self.sel.unregister(key.fileobj)
                self.lines += data.count(b"\n")

    def close(self):
        self.stop.set()
        self.thread.join(5)
        for s in self.socks:
            s.close()


def hold(argv, exe, n):
    """Start the server, hold n connections until all n wait in select."""
    p, port = start_server(argv)
    h = Holder(port, n)
    kids = proclib.wait_waiting_children(p.pid, os.path.realpath(exe), n, 60,
                                         step=0.2)
    if len(kids) < n:
        log("only %d of %d waiting: %s" % (len(kids), n, argv))
    time.sleep(1)
    return p, h, kids


def release(p, h):
    h.close()
    proclib.wait_childless(p.pid, 15)
    stop_server(p)


def memory(label, build, argv, exe):
    p, h, kids = hold(argv, exe, N_MEM)
    try:
        tot, counted = proclib.memory_totals(
            kids, ("Pss", "Private_Dirty", "Rss", "VmPTE"))
    finally:
        release(p, h)
    row = {"label": label, "build": build, "held": counted}
    row.update({k: v / max(counted, 1) for k, v in tot.items()})
    log("memory %-28s %-7s %d held: Pss %.1f kB, Private_Dirty %.1f kB"
        % (label, build, counted, row["Pss"], row["Private_Dirty"]))
    return row


def cpu_hold(label, argv, exe):
    p, h, kids = hold(argv, exe, N_CPU)
    try:
        before = {k: proclib.cpu_seconds(k) for k in kids}
        lines0, t0 = h.lines, time.monotonic()
        time.sleep(CPU_SECS)
        secs, lines = time.monotonic() - t0, h.lines - lines0
        after = {}
        for k in kids:
            try:
                after[k] = proclib.cpu_seconds(k)
            except OSError:
                pass
    finally:
        release(p, h)
    same = [k for k in kids if k in after]
    ticks = sum(after[k][0] - before[k][0] for k in same)
    run = sum(after[k][1] - before[k][1] for k in same)
    conn_hours = len(same) * secs / 3600.0
    row = {"label": label, "held": len(same), "seconds": secs,
           "lines": lines, "stat_cpu_s": ticks, "sched_cpu_s": run,
           "stat_per_conn_hour_ms": 1000 * ticks / conn_hours,
           "sched_per_conn_hour_ms": 1000 * run / conn_hours}
    log("cpu %-30s %d held %.0f s, %d lines: stat %.3f s, schedstat %.4f s"
        % (label, len(same), secs, lines, ticks, run))
    return row


def main():
    res = {"n_mem": N_MEM, "n_cpu": N_CPU, "cpu_secs": CPU_SECS,
           "floor1": FLOOR, "memory": [], "cpu": []}
    tarpit = ["--tarpit", "--tarpit-max", "10m"]
    for v, build in (("default", "dynamic"), ("static", "static")):
        res["memory"].append(memory("sendwrap --tarpit", build,
                                    [sendwrap(v)] + tarpit, sendwrap(v)))
        if FLOOR:
            res["memory"].append(memory("floor 1 (select 600 s)", build,
                                        [floor1(v), "600", "/bin/true"],
                                        floor1(v)))
        res["memory"].append(memory("sendwrap -d 300 (delay)", build,
                                    [sendwrap(v), "-d", "300", "/bin/true"],
                                    sendwrap(v)))
    res["cpu"].append(cpu_hold("sendwrap --tarpit, 1 s interval",
                               [sendwrap("default")] + tarpit +
                               ["--tarpit-interval", "%gs" % CPU_INTERVAL],
                               sendwrap("default")))
    if FLOOR:
        res["cpu"].append(cpu_hold("floor 1 (select 600 s)",
                                   [floor1("default"), "600", "/bin/true"],
                                   floor1("default")))
    else:
        res["cpu"].append(cpu_hold("sendwrap -d 300 (delay)",
                                   [sendwrap("default"), "-d", "300",
                                    "/bin/true"], sendwrap("default")))
    with open(os.path.join(W, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    report(res)


def report(res):
    base = "floor 1" if res["floor1"] else \
        "sendwrap -d 300 (bench/floor1.c absent: the plain delay is the base)"
    print("\nMemory per held connection, %d held (kB; VmPTE: page tables, "
          "plus a 16 kB kernel stack not shown)" % res["n_mem"])
    print("| program | build | held | Pss | Private_Dirty | Rss | VmPTE | "
          "Pss ÷ %s |" % base.split(" (")[0])
    print("|---|---|---|---|---|---|---|---|")
    for r in res["memory"]:
        ref = [b for b in res["memory"] if b["build"] == r["build"] and
               b["label"].startswith("floor 1" if res["floor1"] else
                                     "sendwrap -d")]
        ratio = r["Pss"] / ref[0]["Pss"] if ref and ref[0]["Pss"] else 0
        print("| %s | %s | %d | %.1f | %.1f | %.1f | %.1f | %.2f |" % (
            r["label"], r["build"], r["held"], r["Pss"], r["Private_Dirty"],
            r["Rss"], r["VmPTE"], ratio))
    print("\nCPU per held connection-hour (%d held for %d s, start-up not "
          "counted)" % (res["n_cpu"], res["cpu_secs"]))
    print("| program | lines sent | utime+stime | schedstat | per conn-hour "
          "(stat) | per conn-hour (schedstat) | at the 10 s default |")
    print("|---|---|---|---|---|---|---|")
    for r in res["cpu"]:
        default = r["sched_per_conn_hour_ms"] * CPU_INTERVAL / \
            DEFAULT_INTERVAL if "tarpit" in r["label"] else \
            r["sched_per_conn_hour_ms"]
        print("| %s | %d | %.2f s | %.4f s | %.1f ms | %.2f ms | %.2f ms |" % (
            r["label"], r["lines"], r["stat_cpu_s"], r["sched_cpu_s"],
            r["stat_per_conn_hour_ms"], r["sched_per_conn_hour_ms"],
            default))


main()
EOF
/usr/bin/python3 "$W/decoybench.py" "$ROOT" "$W" "$QUICK" "$FLOOR" &
py_pid=$!
wait "$py_pid"
rc=$?
py_pid=
exit "$rc"
