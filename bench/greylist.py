#!/usr/bin/python3
"""greylist.py - what a greylisted client costs; run by bench/greylist.sh
(make bench-greylist), see its header and BENCHMARKS.md.

    greylist.py ROOT WORKDIR QUICK

Each round measures, one after the other:

1. One process per connection (bench/passbench: fork, exec on a
   connected loopback socket, reaped with wait4; its client speaks the
   same SMTP session, dialog=1, with each): the CPU and wall time of
   - a greylisted first attempt: sendwrap -d 1ms --greylist -c FILE
     (a new client address each time: a grey entry written each time);
   - the tempfail decoy: sendwrap --tempfail -d 1ms, the same dialog;
   - a passing client: sendwrap -d 1ms -- target220 (no cache): one
     per-connection exec, the reference of 2;
   - the same with -c FILE, every client new to it: what the pass cache
     costs a client's first visit without --greylist, for scale;
   - floor 1 (bench/floor1.c, built as sendwrap is): one bare exec, for
     scale;
   all interleaved invocation by invocation.
2. The listener's CPU per greylisted first attempt: N clients (50 at
   once, each from an address of its own) each wait -d 100ms, get the
   220 and do EHLO, MAIL, RCPT, DATA (451), QUIT; the listener's CPU
   (/proc/PID/stat utime + stime, and schedstat's run time in ns) over
   them, per client.
3. Memory per client in the dialog: K clients held in one listener
   (-d 5s), first waiting, then in the dialog (each has had the 220,
   sent EHLO and had the 250); the growth of the machine's free memory
   and of the memory attributed to the listener and the kernel (as
   bench/listener.py measures it), per client, from the idle listener
   to each state and from the one to the other.

Rounds take their parts in a shuffled order; tables give the median of
the rounds [min-max], ratios paired round by round.  Loopback only,
every wait bounded; servers run in process groups of their own, killed
on any way out (bench/bench.py's).
"""

import errno
import json
import os
import random
import re
import selectors
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
sys.path.insert(0, HERE)
import bench  # noqa: E402  (bench/bench.py: passbench, servers, cleanup)
import proclib  # noqa: E402  (tests/proclib.py: /proc for tests and bench)

ROOT, W, QUICK = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
ROUNDS = 1 if QUICK else 5
N_EXEC = 40 if QUICK else 200       # invocations per command and round
N_LISTEN = 200 if QUICK else 1000   # greylisted clients per round
K_HELD = 300 if QUICK else 2000     # clients held per round
MEM_ROUNDS = 1 if QUICK else 7      # free memory is the noisiest
WAIT_S = 5                          # the delay of the memory rounds
bench.W = W                         # floor 1 is built into W/default
bench.PASSBENCH = os.path.join(W, "passbench")
SENDWRAP = os.path.join(ROOT, "build", "default", "sendwrap")
TARGET = os.path.join(W, "target220")
HOST = "mx.bench.invalid"
T0 = time.monotonic()

# The client's side of every session: what it sends, the reply wanted.
SCRIPT = ((None, "220"), (b"EHLO client.bench.invalid\r\n", "250"),
          (b"MAIL FROM:<sender@client.bench.invalid>\r\n", "250"),
          (b"RCPT TO:<user@bench.invalid>\r\n", "250"),
          (b"DATA\r\n", "451"), (b"QUIT\r\n", "221"))
AFTER_EHLO = 2                      # steps done once EHLO had its 250


def log(msg):
    print("[%6.1fs] %s" % (time.monotonic() - T0, msg), file=sys.stderr,
          flush=True)


def addresses(second, n):
    """n distinct loopback addresses 127.SECOND.x.y (y 1 to 250)."""
    return ["127.%d.%d.%d" % (second, i // 250, i % 250 + 1)
            for i in range(n)]


# ------------------------------------------------------------ clients

class Session:
    """One client: connects from its own address, then follows SCRIPT up
    to step stop (len(SCRIPT): the whole session, then the close)."""

    def __init__(self, sel, src, port, stop):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sock.bind((src, 0))
        self.step, self.stop, self.buf = 0, stop, b""
        self.state = "connecting"
        err = self.sock.connect_ex(("127.0.0.1", port))
        if err not in (0, errno.EINPROGRESS):
            raise OSError(err, "connect from %s" % src)
        self.sel = sel
        sel.register(self.sock, selectors.EVENT_WRITE, self)

    def ready(self):
        """Connected, or input: the session's next move.  Returns the
        state once it is no longer moving: held, done or wrong."""
        if self.state == "connecting":
            if self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                return self.end("wrong")
            self.state = "open"
            if self.stop == 0:
                return self.hold()
            self.sel.modify(self.sock, selectors.EVENT_READ, self)
            return None
        try:
            data = self.sock.recv(4096)
        except BlockingIOError:
            return None
        except OSError:
            return self.end("wrong")
        if not data:
            return self.end("wrong")
        self.buf += data
        return self.replies()

    def replies(self):
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            if len(line) >= 4 and line[3:4] == b"-":
                continue
            if not line.startswith(SCRIPT[self.step][1].encode()):
                return self.end("wrong")
            self.step += 1
            if self.step == len(SCRIPT):
                return self.end("done")     # the 221: closes, as MTAs do
            if self.step == self.stop:
                return self.hold()
            self.sock.send(SCRIPT[self.step][0])
        return None

    def resume(self, sel, stop):
        """A held session goes on, now up to step stop."""
        self.sel, self.stop, self.state = sel, stop, "open"
        sel.register(self.sock, selectors.EVENT_READ, self)

    def hold(self):
        self.sel.unregister(self.sock)
        self.state = "held"
        return "held"

    def end(self, how):
        if self.state != "held":
            self.sel.unregister(self.sock)
        self.sock.close()
        self.state = how
        return how


def run_clients(port, srcs, stop, inflight, limit, resume=()):
    """A session from each address of srcs, at most inflight at once, each
    up to step stop (and the held sessions of resume, on from where they
    are); within limit seconds.  Returns (counts by end state, the
    sessions held: the caller closes them)."""
    sel = selectors.DefaultSelector()
    counts = {"done": 0, "held": 0, "wrong": 0}
    held, active, todo = [], len(resume), list(srcs)
    deadline = time.monotonic() + limit
    for s in resume:
        s.resume(sel, stop)
    try:
        while (todo or active) and time.monotonic() < deadline:
            while todo and active < inflight:
                Session(sel, todo.pop(), port, stop)
                active += 1
            for key, _ in sel.select(0.1):
                s = key.data
                how = s.ready()
                if how:
                    counts[how] += 1
                    active -= 1
                    if how == "held":
                        held.append(s)
        counts["unfinished"] = active + len(todo)
    finally:
        for key in list(sel.get_map().values()):
            key.data.end("wrong")
        sel.close()
    return counts, held


def release(held):
    for s in held:
        s.sock.close()


# ------------------------------------------------------------ listener

class Listener:
    """sendwrap --listen on a free loopback port, its log in a file."""

    def __init__(self, delay, tag):
        self.port = bench.free_port()
        self.cache = os.path.join(W, "listener-%s.lmdb" % tag)
        for f in (self.cache, self.cache + "-lock"):
            if os.path.exists(f):
                os.unlink(f)
        self.logpath = os.path.join(W, "listener-%s.log" % tag)
        with open(self.logpath, "wb") as logf:
            self.proc = bench.start_server(
                [SENDWRAP, "--listen", "127.0.0.1:%d" % self.port, "-d",
                 delay, "--greylist", "-c", self.cache, "--hostname", HOST,
                 "--max-clients", "12000", "--", TARGET],
                bench.env_with({}), self.port, stderr=logf)
        self.pid = self.proc.pid

    def verdicts(self, word):
        with open(self.logpath, "rb") as f:
            return len(re.findall(rb"^sendwrap: %s " % word.encode(),
                                  f.read(), re.M))

    def stop(self):
        bench.stop_tcpserver(self.proc)


# ------------------------------------------------------------ 1. per process

def per_process(rnd):
    """The five commands interleaved, N_EXEC invocations each; their
    median invocation's CPU and wall time, in ms."""
    cache = os.path.join(W, "per-process.lmdb")
    passes = os.path.join(W, "per-process-pass.lmdb")
    for f in (cache, cache + "-lock", passes, passes + "-lock"):
        if os.path.exists(f):
            os.unlink(f)
    cmds = {
        "grey": ["dialog=1", SENDWRAP, "-d", "1ms", "--greylist", "-c",
                 cache, "--hostname", HOST, "--", TARGET],
        "tempfail": ["dialog=1", SENDWRAP, "--tempfail", "-d", "1ms",
                     "--hostname", HOST],
        "pass": [SENDWRAP, "-d", "1ms", "--", TARGET],
        "pass-cache": [SENDWRAP, "-d", "1ms", "-c", passes, "--", TARGET],
        "floor1": [bench.floor1("default"), "0", TARGET],
    }
    order = random.sample(list(cmds), len(cmds))
    lines = bench.passbench_run(
        [(cmds[k], {}, 1) for k in order], N_EXEC, limit=300,
        extra=("-s", "127.%d.0.1" % (20 + rnd)))
    row = {}
    for d in lines:
        k = order[int(d["cmd"])]
        row[k] = {"cpu": float(d["cpu_us"]) / 1000,
                  "wall": float(d["median_us"]) / 1000,
                  "faults": int(d["minflt"]), "rss": int(d["maxrss_kb"])}
    # every greylisted invocation a first attempt: one grey entry each
    count = subprocess.run([SENDWRAP, "--cache-count", cache],
                           capture_output=True, text=True).stdout
    m = re.search(r"(\d+) grey", count)
    row["grey_entries"] = int(m.group(1)) if m else 0
    if row["grey_entries"] != N_EXEC:
        raise SystemExit("per process: %d grey entries for %d sessions: %s"
                         % (row["grey_entries"], N_EXEC, count))
    log("per process: grey %.3f ms CPU, tempfail %.3f, pass %.3f, floor 1 "
        "%.3f" % tuple(row[k]["cpu"] for k in
                       ("grey", "tempfail", "pass", "floor1")))
    return row


# ------------------------------------------------------------ 2. listener CPU

def listener_cpu(rnd):
    srv = Listener("100ms", "cpu")
    try:
        time.sleep(0.3)
        st0, ns0 = proclib.cpu_seconds(srv.pid)
        counts, _ = run_clients(srv.port, addresses(60 + rnd, N_LISTEN),
                                len(SCRIPT), 50, 120)
        proclib.wait_for(lambda: srv.verdicts("grey") >= N_LISTEN, 10,
                         "the grey lines")
        st1, ns1 = proclib.cpu_seconds(srv.pid)
        first = srv.verdicts(r"grey ip=\S+ port=\d+ first=yes")
    finally:
        srv.stop()
    if counts["done"] != N_LISTEN or first != N_LISTEN:
        raise SystemExit("listener: %r, %d first attempts logged"
                         % (counts, first))
    row = {"stat_ms": 1000 * (st1 - st0) / N_LISTEN,
           "sched_ms": 1000 * (ns1 - ns0) / N_LISTEN}
    log("listener: %.4f ms CPU a greylisted client (schedstat; stat %.4f)"
        % (row["sched_ms"], row["stat_ms"]))
    return row


# ------------------------------------------------------------ 3. memory

ATTRIBUTED = ("Pss", "Slab", "KernelStack", "PageTables", "TCP buffers")


def socket_kb(port):
    """The memory the kernel holds for the connections to port, both
    ends (ss -m: received, forward-allocated, queued to send, options and
    backlog bytes), in kB; and their number."""
    out = subprocess.run(
        ["ss", "-tmnH", "state", "established",
         "( sport = :%d or dport = :%d )" % (port, port)],
        capture_output=True, text=True, timeout=30).stdout
    total, n = 0, 0
    for m in re.finditer(r"skmem:\(([^)]*)\)", out):
        f = dict(re.match(r"([a-z]+)(\d+)", x).groups()
                 for x in m.group(1).split(","))
        total += sum(int(f.get(k, 0)) for k in ("r", "f", "w", "o", "bl"))
        n += 1
    return total / 1024, n


class Snapshot:
    """The machine's free memory, the kernel's and the listener's, now."""

    def __init__(self, srv):
        self.free = proclib.free_kb()
        self.kernel = proclib.kernel_kb()
        self.objects = proclib.slab_objects_kb()
        self.own = proclib.memory_totals([srv.pid], ["Pss", "Rss"])[0]
        self.sockets, self.connections = socket_kb(srv.port)

    def growth(self, before, n):
        """kB per client from before to this one, for n clients."""
        row = {"drop": (before.free[0] - self.free[0]) / n,
               "free": (before.free[1] - self.free[1]) / n,
               "sockets": (self.sockets - before.sockets) / n,
               "objects": float("nan") if before.objects is None else
               (self.objects - before.objects) / n}
        row.update({k: (self.own[k] - before.own[k]) / n for k in self.own})
        row.update({k: (self.kernel[k] - before.kernel[k]) / n
                    for k in self.kernel})
        row["attributed"] = sum(row[k] for k in ATTRIBUTED)
        row["own"] = row["Pss"] + row["sockets"]
        return row


def memory_round(rnd):
    """K_HELD clients held in one listener (-d WAIT_S), first waiting,
    then, once the delay is over, in the dialog (each has had the 220,
    sent EHLO and had the 250): the growth per client from the idle
    listener to each state, and from one state to the other."""
    srv = Listener("%ds" % WAIT_S, "memory")
    held = []
    try:
        time.sleep(0.5)
        idle = Snapshot(srv)
        t = time.monotonic()
        counts, held = run_clients(srv.port, addresses(100 + rnd, K_HELD),
                                   0, K_HELD, WAIT_S)
        if counts["held"] != K_HELD:
            raise SystemExit("memory: waiting: %r" % counts)
        # all accepted: the listener holds a descriptor for each
        proclib.wait_for(lambda: len(proclib.fd_numbers(srv.pid)) >= K_HELD,
                         WAIT_S, "the listener to hold them")
        time.sleep(0.3)
        waiting = Snapshot(srv)
        if waiting.connections != 2 * K_HELD:
            raise SystemExit("memory: %d connection ends seen, not %d" % (
                waiting.connections, 2 * K_HELD))
        waited = time.monotonic() - t
        if waited > WAIT_S - 0.5:
            raise SystemExit("memory: the waiting state measured %.1f s "
                             "after the first came, -d is %d s" % (
                                 waited, WAIT_S))
        counts, held = run_clients(srv.port, (), AFTER_EHLO, K_HELD,
                                   WAIT_S + 30, resume=held)
        if counts["held"] != K_HELD:
            raise SystemExit("memory: dialog: %r" % counts)
        time.sleep(0.3)
        dialog = Snapshot(srv)
        within = time.monotonic() - t - WAIT_S
    finally:
        release(held)
        srv.stop()
    if within > 50:
        raise SystemExit("memory: the dialog measured %.0f s into it: past "
                         "the session's limit" % within)
    row = {"wait": waiting.growth(idle, K_HELD),
           "dialog": dialog.growth(idle, K_HELD),
           "diff": dialog.growth(waiting, K_HELD), "secs": within}
    log("memory: %.2f kB a client in the dialog beyond a waiting one "
        "(Pss %.2f, sockets %.2f); system-wide %.2f attributed, %.2f by "
        "free memory" % tuple(row["diff"][k] for k in (
            "own", "Pss", "sockets", "attributed", "free")))
    return row


# ------------------------------------------------------------ extras

def instructions():
    """Instructions of one whole session of each kind (callgrind: the
    process from its start to its exit), and its system calls."""
    out = {}
    cache = os.path.join(W, "extras.lmdb")
    for f in (cache, cache + "-lock"):
        if os.path.exists(f):
            os.unlink(f)
    kinds = {"grey": [SENDWRAP, "-d", "1ms", "--greylist", "-c", cache,
                      "--hostname", HOST, "--", TARGET],
             "tempfail": [SENDWRAP, "--tempfail", "-d", "1ms",
                          "--hostname", HOST]}
    for n, (k, argv) in enumerate(kinds.items()):
        cg = os.path.join(W, "callgrind.%s" % k)
        st = os.path.join(W, "strace.%s" % k)
        for tool in (["/usr/bin/valgrind", "--tool=callgrind",
                      "--callgrind-out-file=" + cg],
                     ["/usr/bin/strace", "-f", "-c", "-o", st, "--"]):
            bench.passbench_run([(["dialog=1"] + tool + argv, {}, 1)], 1,
                                limit=60, extra=("-s", "127.250.%d.%d" % (
                                    n, 1 + len(tool))))
        with open(cg) as f:
            ir = [int(line.split()[1]) for line in f
                  if line.startswith("summary:")]
        with open(st) as f:
            calls = [int(line.split()[3]) for line in f
                     if line.split() and line.split()[-1] == "total"]
        out[k] = {"instructions": ir[0], "syscalls": calls[0]}
    return out


# ------------------------------------------------------------ report

def fmt(vals, f="%.3f"):
    m = statistics.median(vals)
    return (f + " [" + f + "–" + f + "]") % (m, min(vals), max(vals))


def report(res, info):
    out = []
    p = out.append
    pp, lc, mem = res["per_process"], res["listener"], res["memory"]
    p("Measured %s on %s, commit %s. %s run, %d round%s (memory: %d); "
      "load average (1, 5, 15 min) before each round: %s; at the end: %s."
      % (info["date"], info["machine"], info["commit"],
         "Quick" if QUICK else "Full", ROUNDS, "s" if ROUNDS > 1 else "",
         len(mem), "; ".join(info["loads"]), info["load_end"]))

    def col(key, what):
        return [r[key][what] for r in pp]

    def ratio(a, b, what):
        return [r[a][what] / r[b][what] for r in pp]

    p("\n#### 1. One process per connection\n")
    p("%d invocations of each command per round, interleaved; per round "
      "the median invocation; the median of the rounds [min–max], ratios "
      "paired round by round. CPU: user + system time of the invocation "
      "(wait4), the program's and what it exec'd." % N_EXEC)
    p("\n| command | CPU ms | ÷ tempfail | wall ms | ÷ tempfail | minor "
      "faults | peak RSS kB |")
    p("|---|---|---|---|---|---|---|")
    names = (("grey", "greylisted first attempt: `-d 1ms --greylist -c "
              "FILE`, the session, a grey entry written"),
             ("tempfail", "`--tempfail -d 1ms`, the same session"),
             ("pass", "passing client: `-d 1ms -- target220` (no cache)"),
             ("pass-cache", "passing client, new to the cache: `-d 1ms -c "
              "FILE -- target220` (a lookup, a pass written)"),
             ("floor1", "floor 1: `floor1 0 target220`"))
    for k, label in names:
        p("| %s | %s | %s | %s | %s | %d | %d |" % (
            label, fmt(col(k, "cpu")), fmt(ratio(k, "tempfail", "cpu"),
                                           "%.2f"),
            fmt(col(k, "wall")), fmt(ratio(k, "tempfail", "wall"), "%.2f"),
            statistics.median(col(k, "faults")),
            statistics.median(col(k, "rss"))))

    p("\n#### 2. The listener's CPU per greylisted first attempt\n")
    p("%d clients a round, 50 at once, each from an address of its own: "
      "waits `-d 100ms`, reads the 220, EHLO, MAIL, RCPT, DATA (451), QUIT "
      "(221), and closes; the listener's CPU over them, per client: "
      "schedstat's run time (ns) and /proc/PID/stat's utime + stime "
      "(clock ticks: coarse at these totals). The reference: the CPU of "
      "one per-connection `sendwrap -d 1ms -- target220` for a passing "
      "client (row *pass* of 1), the same round." % N_LISTEN)
    ref = col("pass", "cpu")
    p("\n| | ms per client | ÷ one per-connection exec | ÷ floor 1 |")
    p("|---|---|---|---|")
    for key, label in (("sched_ms", "listener, schedstat"),
                       ("stat_ms", "listener, utime + stime")):
        p("| %s | %s | %s | %s |" % (
            label, fmt([r[key] for r in lc], "%.4f"),
            fmt([r[key] / x for r, x in zip(lc, ref)]),
            fmt([r[key] / x for r, x in zip(lc, col("floor1", "cpu"))])))

    p("\n#### 3. Memory per client in the dialog\n")
    p("%d clients a round (%d rounds), each from an address of its own, "
      "held in one listener (`-d %ds`): first *waiting* (all connected, "
      "the delay running), then *in the dialog* (each had the 220, sent "
      "EHLO and had the 250; measured %s s into the dialog, within its "
      "60 s). kB per client: the growth from the idle listener to each "
      "state, and from the one state to the other (*difference*), median "
      "of the rounds [min–max]. *Attributed*: the listener's Pss and the "
      "kernel's Slab, KernelStack, PageTables and TCP buffer pages; *free "
      "memory*: the drop of MemAvailable and the per-CPU free lists "
      "(bench/listener.py's two measures; system-wide, so other work "
      "moves it); *slab objects in use*: /proc/slabinfo's active objects "
      "times their size (meminfo's Slab also counts the free objects a "
      "slab keeps after traffic). Both ends of each connection are on "
      "this machine: the kernel's figures count the client's socket too. "
      "Other work on a shared machine moves the system-wide figures (free "
      "memory, Slab, TCP buffers) by megabytes; what is the listener's "
      "alone is *the listener's and its connections'*: the growth of its "
      "Pss and of the memory the kernel holds for the connections to its "
      "port (`ss -tm`'s skmem: received, forward-allocated, queued to "
      "send, options, backlog; both ends), which the target is judged on."
      % (K_HELD, len(mem), WAIT_S, fmt([r["secs"] for r in mem], "%.1f")))
    cols = ("own", "Pss", "sockets", "attributed", "free", "Slab",
            "objects", "TCP buffers")
    p("\n| | **the listener's and its connections'** | listener's Pss | "
      "socket memory (ss -m) | attributed | free memory | Slab | slab "
      "objects in use | TCP buffers |")
    p("|---|---|---|---|---|---|---|---|---|")
    for label, key in (("waiting", "wait"), ("in the dialog", "dialog"),
                       ("**difference**", "diff")):
        p("| %s | %s |" % (label, " | ".join(
            fmt([r[key][k] for r in mem], "%.2f") for k in cols)))

    x = res["extras"]
    p("\n#### Deterministic extras\n")
    p("One whole session of each (callgrind: instructions from the "
      "process's start to its exit, the dynamic loader's included; strace "
      "-f -c: system calls).\n")
    p("| | instructions | ÷ tempfail | system calls |")
    p("|---|---|---|---|")
    for k in ("grey", "tempfail"):
        p("| %s | %d | %.2f | %d |" % (
            k, x[k]["instructions"],
            x[k]["instructions"] / x["tempfail"]["instructions"],
            x[k]["syscalls"]))

    p("\n#### Targets\n")
    p("| target | measured | verdict |")
    p("|---|---|---|")
    verdicts = {}

    def target(key, what, value, ok):
        verdicts[key] = ok
        p("| %s | %s | **%s** |" % (what, value, "PASS" if ok else "FAIL"))
    r1 = statistics.median(r["sched_ms"] / x for r, x in zip(lc, ref))
    target("listener", "The listener's CPU per greylisted first attempt "
           "≤ 0.1× one per-connection exec (a passing client's `sendwrap "
           "-d ... program`)", "%.3f×" % r1, r1 <= 0.1)
    o2 = statistics.median(r["diff"]["own"] for r in mem)
    d2 = statistics.median(r["diff"]["attributed"] for r in mem)
    f2 = statistics.median(r["diff"]["free"] for r in mem)
    target("memory", "Memory per client in the dialog ≤ 8 kB beyond a "
           "waiting one (the listener's Pss and its connections' socket "
           "memory)", "%.2f kB (system-wide: %.2f kB attributed, %.2f kB "
           "by free memory)" % (o2, d2, f2), o2 <= 8)
    c3 = statistics.median(ratio("grey", "tempfail", "cpu"))
    w3 = statistics.median(ratio("grey", "tempfail", "wall"))
    target("per-process", "A greylisted session, one process per "
           "connection, ≤ 1.1× a tempfail decoy session", "%.2f× CPU, "
           "%.2f× wall" % (c3, w3), c3 <= 1.1 and w3 <= 1.1)
    return "\n".join(out) + "\n", verdicts


def main():
    info = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": "Linux %s, %s, %d cores" % (
                os.uname().release, proclib.cpu_model(), os.cpu_count()),
            "commit": subprocess.run(
                ["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                capture_output=True, text=True).stdout.strip(),
            "loads": []}
    res = {"per_process": [], "listener": [], "memory": []}
    for rnd in range(max(ROUNDS, MEM_ROUNDS)):
        info["loads"].append(proclib.loadavg())
        log("round %d, load %s" % (rnd + 1, info["loads"][-1]))
        parts = [("memory", memory_round)]
        if rnd < ROUNDS:
            parts += [("per_process", per_process),
                      ("listener", listener_cpu)]
        for key, fn in random.sample(parts, len(parts)):
            res[key].append(fn(rnd))
    log("extras: callgrind and strace")
    res["extras"] = instructions()
    info["load_end"] = proclib.loadavg()
    res["info"] = info
    text, verdicts = report(res, info)
    res["verdicts"] = verdicts
    with open(os.path.join(W, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    with open(os.path.join(W, "report.md"), "w") as f:
        f.write(text)
    print(text)
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
