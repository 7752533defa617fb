"""bench/relays.py - sendwrap's relay (--forward) against HAProxy in TCP
mode, on the same traffic.  Run by bench/relay-vs-haproxy (make
bench-relay-haproxy); see BENCHMARKS.md, "Against HAProxy".

    relays.py ROOT WORKDIR QUICK

The rows, each a relay on 127.0.0.1 in front of the same sink (bench/bulk.c
sink: greets, reads and discards everything, closes at the client's EOF):
  sendwrap --listen -d 0 --forward 127.0.0.1:SINK   (one process, the relay
      engine: splice(2) through a pipe each way, of 16 KiB)
  HAProxy, mode tcp                                 (as the e2e tests run it,
      tests/e2e/daemons.py: nbthread 1, option tcplog to a file; recv/send
      through its buffers of 16 KiB, Debian's configuration has no splice)
  HAProxy, mode tcp, splice both ways               (the same, and option
      splice-request, option splice-response)
  direct: the client to the sink, no relay          (for scale)
sendwrap logs two lines a session to a file (pass, forwarded), HAProxy
one.  BENCH_RELAYS_TRIAL=PATH adds a sendwrap row for a trial build.

1. A 50 MB message: bulk send (connect, read the greeting, send 50 MiB,
   shut its side, read to the end): its wall time, and the CPU of the
   relay's process (every thread's schedstat) per MB relayed.
2. Memory per idle relayed session: N sessions held through the relay
   (bulk hold: each greeted, then idle), the relay started afresh each
   round; the growth of the relay's Pss and of the kernel's Slab,
   KernelStack, PageTables and TCP buffer pages, per session.  Both
   count the client's and the sink's sockets too, as does the direct
   row: a relay's own part is its row less the direct row's, paired
   round by round.

Rounds take the rows in turn, shuffled; tables give the median of the
rounds [min-max] and ratios against HAProxy's paired round by round.
"""

import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT, W, QUICK = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import daemons  # noqa: E402
import e2elib  # noqa: E402
import proclib  # noqa: E402
import benchlib  # noqa: E402  (bench/benchlib.py)

MB = 50
# BENCH_RELAYS_ROUNDS, BENCH_RELAYS_N: for development
ROUNDS = int(os.environ.get("BENCH_RELAYS_ROUNDS") or (5 if QUICK else 41))
MEM_ROUNDS = int(os.environ.get("BENCH_RELAYS_ROUNDS") or (1 if QUICK else 7))
N_IDLE = int(os.environ.get("BENCH_RELAYS_N") or (500 if QUICK else 2000))
ATTRIBUTED = ("Pss", "Slab", "KernelStack", "PageTables", "TCP buffers")
BULK = os.path.join(W, "bulk")
SENDWRAP = os.path.join(ROOT, "build", "default", "sendwrap")
SERVERS_DIR = os.path.join(W, "servers")
SENDWRAP_NAME = "sendwrap --listen -d 0 --forward"
HAPROXY_NAME = "HAProxy, mode tcp"
SPLICE_NAME = "HAProxy, mode tcp, splice both ways"
DIRECT_NAME = "(direct: no relay)"
REFERENCES = (HAPROXY_NAME, SPLICE_NAME)
T0 = time.monotonic()


def log(msg):
    print("[%6.1fs] %s" % (time.monotonic() - T0, msg), file=sys.stderr,
          flush=True)


# ------------------------------------------------------------ the servers

class Sink:
    """bulk sink, the MTA's place: its port."""

    def __init__(self):
        self.proc = e2elib.start_group([BULK, "sink"],
                                       stdout=subprocess.PIPE)
        line = self.proc.stdout.readline().decode().split()
        if line[:1] != ["port"]:
            raise SystemExit("bulk sink did not start: %r" % line)
        self.port = int(line[1])

    def stop(self):
        e2elib.stop_group(self.proc)


class SendwrapRelay:
    """sendwrap --listen -d 0 --forward to the sink, on self.port."""

    def __init__(self, sink, sessions, binary=SENDWRAP):
        self.dir = e2elib.make_workdir(SERVERS_DIR, "sendwrap")
        self.logpath = os.path.join(self.dir, "sendwrap.log")
        with open(self.logpath, "wb") as logf:
            self.proc = e2elib.start_group(
                [binary, "--listen", "127.0.0.1:0", "-l", "stderr",
                 "-d", "0", "--max-clients", str(sessions + 100),
                 "--max-children", str(sessions + 100),
                 "--forward", "127.0.0.1:%d" % sink.port],
                stdout=logf, stderr=logf)
        m = e2elib.wait_until(lambda: re.search(
            r"listening on=127\.0\.0\.1:(\d+)", self._log()), 10)
        if not m:
            raise SystemExit("sendwrap did not listen: " + self._log())
        self.port = int(m.group(1))

    def _log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def processes(self):
        return proclib.tree(self.proc.pid)

    def stop(self):
        e2elib.stop_group(self.proc)


def haproxy(sink, sessions, splice=False):
    """HAProxy as the e2e tests run it (tests/e2e/daemons.py: mode tcp,
    nbthread 1, option tcplog to a file), in front of the sink."""
    return daemons.HAProxy(SERVERS_DIR, sink.port, maxconn=2 * sessions + 100,
                           options=("option splice-request",
                                    "option splice-response")
                           if splice else ())


class Direct:
    """No relay: the client to the sink."""

    def __init__(self, sink, sessions):
        self.port = sink.port

    def processes(self):
        return []

    def stop(self):
        pass


ROWS = [(SENDWRAP_NAME, SendwrapRelay),
        (HAPROXY_NAME, haproxy),
        (SPLICE_NAME, lambda sink, n: haproxy(sink, n, splice=True)),
        (DIRECT_NAME, Direct)]
# BENCH_RELAYS_TRIAL=PATH[:PATH...]: a row more for each, the sendwrap at
# PATH (a trial build), named by its file name
for path in filter(None, os.environ.get("BENCH_RELAYS_TRIAL", "").split(":")):
    ROWS.insert(1, ("trial: " + os.path.basename(path),
                    lambda sink, n, path=path: SendwrapRelay(sink, n, path)))


def pids(relay):
    return [p.pid for p in relay.processes()]


def own_cpu(procs):
    """CPU seconds of the live processes procs (pids), every thread's."""
    return sum(benchlib.threads_cpu(pid) for pid in procs)


def bulk(*args, timeout=150):
    r = subprocess.run([BULK] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=timeout)
    if r.returncode != 0:
        raise SystemExit("bulk %r failed: %s" % (args, r.stderr))
    return benchlib.parse_crowd(r.stdout)


# ------------------------------------------------------------ 1. 50 MB

def transfer(relay):
    procs = pids(relay)
    c0 = own_cpu(procs)
    out = bulk("send", relay.port, MB)
    time.sleep(0.05)        # the relay's last close and log line
    return {"ms": 1000 * out["secs"], "mb_s": MB / out["secs"],
            "cpu_ms_mb": 1000 * (own_cpu(procs) - c0) / MB,
            "client_ms": out["cpums"]}


def message_measure(sink):
    relays = {name: start(sink, 10) for name, start in ROWS}
    res = {name: [] for name, _ in ROWS}
    try:
        for relay in relays.values():
            transfer(relay)             # warm-up
        for r in range(ROUNDS):
            for name in random.sample(list(relays), len(relays)):
                res[name].append(transfer(relays[name]))
            log("message round %d: %s; load %s" % (r + 1, ", ".join(
                "%s %.1f ms %.3f ms/MB" % (n, v[-1]["ms"], v[-1]["cpu_ms_mb"])
                for n, v in res.items()), proclib.loadavg()))
    finally:
        for relay in relays.values():
            relay.stop()
    return res


# ------------------------------------------------------------ 2. idle

def idle_round(sink, name, start):
    relay = start(sink, N_IDLE)
    try:
        bulk("send", relay.port, 1)     # the first session's allocations
        time.sleep(1)
        procs = pids(relay)
        k0 = proclib.kernel_kb()
        p0 = proclib.memory_totals(procs, ["Pss"])[0]["Pss"]
        h = subprocess.Popen([BULK, "hold", str(relay.port), str(N_IDLE)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
        try:
            line = h.stdout.readline().split()
            if line[:2] != ["held", str(N_IDLE)]:
                raise SystemExit("%s: could not hold %d sessions: %r" % (
                    name, N_IDLE, line))
            time.sleep(1)           # RCU-freed objects settle
            k1 = proclib.kernel_kb()
            p1 = proclib.memory_totals(procs, ["Pss"])[0]["Pss"]
        finally:
            h.stdin.close()
            h.wait(60)
    finally:
        relay.stop()
    row = {k: (k1[k] - k0[k]) / N_IDLE for k in k0}
    row["Pss"] = (p1 - p0) / N_IDLE
    row["attributed"] = sum(row[k] for k in ATTRIBUTED)
    row["load"] = proclib.loadavg()
    log("idle %-38s %.2f kB a session (Pss %.2f, Slab %.2f); load %s" % (
        name, row["attributed"], row["Pss"], row["Slab"], row["load"]))
    return row


def idle_measure(sink):
    res = {name: [] for name, _ in ROWS}
    for _ in range(MEM_ROUNDS):
        for name, start in random.sample(ROWS, len(ROWS)):
            res[name].append(idle_round(sink, name, start))
    for name, rows in res.items():
        for row, direct in zip(rows, res[DIRECT_NAME]):
            row["own"] = row["attributed"] - direct["attributed"]
    return res


# ------------------------------------------------------------ report

fmt = benchlib.fmt


def cells(res, name, key, f="%.2f"):
    """key's median [min-max], then its ratios against each reference's,
    paired round by round: three table cells ("–" for the direct row)."""
    if name == DIRECT_NAME and key in ("cpu_ms_mb", "own"):
        return "– | – | –"
    rows = res[name]
    return " | ".join([fmt([r[key] for r in rows], f)] + [
        fmt([a[key] / b[key] for a, b in zip(rows, res[ref])])
        for ref in REFERENCES])


def versions():
    r = subprocess.run([SENDWRAP, "--version"], capture_output=True,
                       text=True)
    h = subprocess.run([daemons.HAPROXY, "-v"], capture_output=True,
                       text=True)
    return {"sendwrap": (r.stdout or r.stderr).split("\n")[0],
            "haproxy": h.stdout.split("\n")[0]}


def report(res, info):
    out = []
    p = out.append
    p("Measured %s on %s, load average at start %s, at end %s. %s run. %s"
      % (info["date"], info["machine"], info["load_start"],
         info["load_end"], "Quick" if QUICK else "Full", "; ".join(
             "%s: %s" % kv for kv in info["versions"].items())))
    if "message" in res:
        m = res["message"]
        p("\n### 1. A %d MB message (%d rounds)\n" % (MB, ROUNDS))
        p("*Time*: from the client's connect() to the end of the session "
          "(the sink has read all and closed); *relay CPU*: the relay "
          "process's, every thread's, per MB relayed.\n")
        p("| relay | time ms | ÷ HAProxy's | ÷ HAProxy splice's | MB/s | "
          "relay CPU ms/MB | ÷ HAProxy's | ÷ HAProxy splice's |")
        p("|---|---|---|---|---|---|---|---|")
        for name in m:
            p("| %s | %s | %s | %s |" % (
                name, cells(m, name, "ms", "%.1f"),
                fmt([r["mb_s"] for r in m[name]], "%.0f"),
                cells(m, name, "cpu_ms_mb", "%.3f")))
    if "idle" in res:
        d = res["idle"]
        p("\n### 2. Memory per idle relayed session (%d held, %d round%s)\n"
          % (N_IDLE, MEM_ROUNDS, "s" if MEM_ROUNDS > 1 else ""))
        p("kB per session. *Attributed*: the growth of the relay process's "
          "Pss and of the kernel's Slab, KernelStack, PageTables and TCP "
          "buffer pages (the client's and the sink's sockets included); "
          "*the relay's own*: that less the direct row's, paired round by "
          "round.\n")
        p("| relay | attributed | ÷ HAProxy's | ÷ HAProxy splice's | the "
          "relay's own | ÷ HAProxy's | ÷ HAProxy splice's | Pss | Slab |")
        p("|---|---|---|---|---|---|---|---|---|")
        for name, rows in d.items():
            p("| %s | %s | %s | %.2f | %.2f |" % (
                name, cells(d, name, "attributed"), cells(d, name, "own"),
                statistics.median(r["Pss"] for r in rows),
                statistics.median(r["Slab"] for r in rows)))
    return "\n".join(out) + "\n"


def main():
    shutil.rmtree(SERVERS_DIR, ignore_errors=True)
    os.makedirs(SERVERS_DIR)
    info = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": "Linux %s, %d cores" % (os.uname().release,
                                               os.cpu_count()),
            "load_start": proclib.loadavg(), "versions": versions()}
    res = {}
    only = os.environ.get("BENCH_RELAYS_ONLY", "").split(",")
    sink = Sink()
    try:
        for key, fn in (("message", message_measure),
                        ("idle", idle_measure)):
            if only == [""] or key in only:
                log(key)
                res[key] = fn(sink)
    finally:
        sink.stop()
    benchlib.save(W, res, info, report)


benchlib.run_main(main, e2elib.stop_all)
