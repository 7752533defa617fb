#!/usr/bin/env bash
# bench/stress.sh - what counting the waiting connections (--stress,
# --slots in delay mode) adds to a connection while 500 others wait.
#
#   bench/stress.sh           the full run (about 1 minute on 2 cores)
#   bench/stress.sh --quick   fewer invocations, for development
#
# 500 sendwrap processes wait out a 300 s delay, each holding a place in
# the count of one state directory (--stress 500: every place of 500
# taken; the count is a System V semaphore the directory names,
# waiters.h).  Then
# passbench (bench/passbench.c: fork, exec with a connected loopback
# socket on fds 0 and 1, reap) times, interleaved invocation by
# invocation:
#   floor 0   the bare target (bench/target220.c);
#   floor 1   bench/floor1.c, built with sendwrap's flags: one extra exec;
#   plain     sendwrap -d 1ms: a wait, no count;
#   A         --stress 1000,1ms: a free place is taken (500 of 1000 held);
#   B         --stress 500,1ms: every place is held: the client is
#             stressed;
#   C         --stress 500,1ms --slots 1000: a place is taken and the 500
#             others reach the threshold.
# What counting adds is A, B or C less plain, paired round by round, in
# wall time and in CPU time (wait4's user + system); it is compared with
# floor 1's added cost (floor 1 less floor 0), the cost of one exec.  The
# target: at most 0.1 of it.
#
# Loopback and socketpairs only; every wait bounded; the holders are
# killed on any exit, and the count's semaphore set removed.  Results:
# printed, and build/bench-stress/results.json.
. "$(dirname "$0")/prelude.sh" stress "$@"
echo "bench/stress.sh: building sendwrap, floor 1, the target, passbench" >&2
make -s build/default/sendwrap >&2
build_floor1 "$W"
cc -O2 -Wall -Wextra -static -o "$W/target220" bench/target220.c
cc -O2 -Wall -Wextra -static -o "$W/passbench" bench/passbench.c
ulimit -n 4096 2>/dev/null || true

exec /usr/bin/python3 - "$W" "$ROOT/build/default/sendwrap" "$QUICK" "$ROOT" <<'EOF'
import json, os, shutil, signal, socket, subprocess, sys
import statistics, time

W, SENDWRAP, QUICK = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
sys.path.insert(0, os.path.join(sys.argv[4], "tests"))
import semcount  # noqa: E402  (tests/semcount.py: the count, from the kernel)
HOLDERS = 500
ROUNDS, N = (3, 100) if QUICK else (7, 300)
STATE = os.path.join(W, "state")
TARGET, FLOOR1 = os.path.join(W, "target220"), os.path.join(W, "floor1")


def held():
    """Places held, asked of the kernel (tests/semcount.py)."""
    return semcount.waiting(STATE)


def passbench(cmds):
    argv = [os.path.join(W, "passbench"), "-n", str(N), "-t", "300", "--"]
    for i, c in enumerate(cmds):
        argv += ([":::"] if i else []) + c
    r = subprocess.run(argv, capture_output=True, text=True, timeout=400)
    out = []
    for line in r.stdout.splitlines():
        f = dict(kv.split("=", 1) for kv in line.split())
        if int(f.get("failed", 1)) != 0 or int(f.get("n", 0)) == 0:
            raise SystemExit("passbench failed: %s %s" % (line, r.stderr))
        out.append((float(f["median_us"]), float(f["cpu_us"])))
    if r.returncode != 0 or len(out) != len(cmds):
        raise SystemExit("passbench failed: %s %s" % (r.stdout, r.stderr))
    return out


def sw(*opts):
    return [SENDWRAP, "-l", "none", "-d", "1ms"] + list(opts) + [TARGET]


PROGS = {
    "floor0": ("floor 0: bare target", [TARGET]),
    "floor1": ("floor 1: one extra exec", [FLOOR1, "0", TARGET]),
    "plain": ("sendwrap -d 1ms (no count)", sw()),
    "A": ("A: --stress 1000,1ms (a free place of 1000)",
          sw("--stress", "1000,1ms", "--state-dir", STATE)),
    "B": ("B: --stress 500,1ms (all 500 held: stressed)",
          sw("--stress", "500,1ms", "--state-dir", STATE)),
    "C": ("C: --stress 500,1ms --slots 1000 (500 others)",
          sw("--stress", "500,1ms", "--slots", "1000", "--state-dir", STATE)),
}

if os.path.isdir(STATE):
    semcount.remove(STATE)
shutil.rmtree(STATE, ignore_errors=True)
os.mkdir(STATE, 0o700)
holders, ends = [], []


def stop_holders():
    for p in holders:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for p in holders:
        p.wait()


def measure(keys):
    wall = {k: [] for k in keys}
    cpu = {k: [] for k in keys}
    for r in range(ROUNDS):
        order = keys[r % len(keys):] + keys[:r % len(keys)]
        for k, (w, c) in zip(order, passbench([PROGS[k][1] for k in order])):
            wall[k].append(w)
            cpu[k].append(c)
        print("bench/stress.sh: round %d/%d" % (r + 1, ROUNDS),
              file=sys.stderr)
    return wall, cpu


# Nobody waiting yet: what a free place costs with no other holder.
print("bench/stress.sh: nobody waiting", file=sys.stderr)
wall0, cpu0 = measure(["floor0", "floor1", "plain", "A"])
try:
    for i in range(HOLDERS):
        a, b = socket.socketpair()
        p = subprocess.Popen([SENDWRAP, "-l", "none", "-d", "300", "--stress",
                              "500,1ms", "--state-dir", STATE, "/bin/true"],
                             stdin=b, stdout=b, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        b.close()
        holders.append(p)
        ends.append(a)
    deadline = time.monotonic() + 120
    while held() < HOLDERS:
        if time.monotonic() > deadline:
            raise SystemExit("only %d of %d holders in place" %
                             (held(), HOLDERS))
        time.sleep(0.2)
    print("bench/stress.sh: %d waiting, every place of 500 held" % HOLDERS,
          file=sys.stderr)
    keys = list(PROGS)
    wall, cpu = measure(keys)
    still = held()
finally:
    stop_holders()
    semcount.remove(STATE)

res = {"holders": HOLDERS, "rounds": ROUNDS, "n": N, "held_at_end": still,
       "rows": {}}
f1_wall = [a - b for a, b in zip(wall["floor1"], wall["floor0"])]
f1_cpu = [a - b for a, b in zip(cpu["floor1"], cpu["floor0"])]
res["state_dir"] = STATE
print("\n%d sendwrap processes waiting (all 500 places of --stress 500 held);"
      " %d rounds x %d invocations, interleaved; "
      "medians of the rounds [min-max]; us\n" % (HOLDERS, ROUNDS, N))
print("| program | wall us | CPU us | added by the count, wall | "
      "added, CPU | added / floor 1's added (wall) | (CPU) |")
print("|---|---|---|---|---|---|---|")


def fmt(xs, nd=1):
    return "%.*f [%.*f-%.*f]" % (nd, statistics.median(xs), nd, min(xs),
                                 nd, max(xs))


for k in keys:
    label = PROGS[k][0]
    row = {"label": label, "wall_us": wall[k], "cpu_us": cpu[k]}
    cells = [label, fmt(wall[k]), fmt(cpu[k])]
    if k in ("A", "B", "C"):
        aw = [a - b for a, b in zip(wall[k], wall["plain"])]
        ac = [a - b for a, b in zip(cpu[k], cpu["plain"])]
        rw = [a / f for a, f in zip(aw, f1_wall)]
        rc = [a / f for a, f in zip(ac, f1_cpu)]
        row.update(added_wall_us=aw, added_cpu_us=ac, ratio_wall=rw,
                   ratio_cpu=rc)
        cells += [fmt(aw), fmt(ac), fmt(rw, 3), fmt(rc, 3)]
    elif k == "floor1":
        cells += [fmt(f1_wall) + " (its own)", fmt(f1_cpu) + " (its own)",
                  "1", "1"]
    else:
        cells += ["", "", "", ""]
    res["rows"][k] = row
    print("| " + " | ".join(cells) + " |")
print("\nplaces still held by the %d waiting at the end: %d" % (HOLDERS, still))
aw0 = [a - b for a, b in zip(wall0["A"], wall0["plain"])]
ac0 = [a - b for a, b in zip(cpu0["A"], cpu0["plain"])]
f0w = [a - b for a, b in zip(wall0["floor1"], wall0["floor0"])]
f0c = [a - b for a, b in zip(cpu0["floor1"], cpu0["floor0"])]
res["nobody_waiting"] = {"added_wall_us": aw0, "added_cpu_us": ac0,
                         "floor1_added_wall_us": f0w,
                         "floor1_added_cpu_us": f0c}
print("with nobody waiting, A adds %s us wall, %s us CPU (%s and %s of "
      "floor 1's added cost)" % (fmt(aw0), fmt(ac0),
                                 fmt([a / f for a, f in zip(aw0, f0w)], 3),
                                 fmt([a / f for a, f in zip(ac0, f0c)], 3)))
with open(os.path.join(W, "results.json"), "w") as f:
    json.dump(res, f, indent=1)
EOF
