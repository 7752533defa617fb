"""bench/listener.py - the listener mode (sendwrap --listen) against one
process per connection (tcpserver + sendwrap), measured in one run.  Run
by bench/listener.sh (make bench-listener); see BENCHMARKS.md.

    listener.py ROOT WORKDIR QUICK

1. Memory per waiting client, the kernel's included: the drop of
   MemAvailable while N clients (bench/crowd.c -H) are held, divided by
   N; for the listener (-d 300), tcpserver + sendwrap -d 300 (dynamic and
   static builds), and bench/sink.c (accepts and holds, the floor: the
   kernel's sockets, both ends, and a descriptor).
2. CPU per refused bot: bots (a pipelined transaction written at once)
   against -d 5; the server's CPU (its own, from /proc/PID/schedstat, and
   its reaped children's, cutime + cstime) per bot.
3. A passing client at delay 0, the program the static bench/target220.c:
   throughput with 50 in flight and CPU per connection; latency to the
   greeting one at a time; against tcpserver + sendwrap and tcpserver
   alone.
4. 10 000 clients waiting at once in the listener (-d 15), 2 000 bots
   arriving meanwhile: every client greeted, every bot refused.

Rounds take the configurations in turn, shuffled, so that a burst of
load from elsewhere falls on all of them alike; tables give the median
of the rounds [min-max] and ratios paired round by round.  Everything is
on loopback; every server runs in a process group of its own, and every
group still there is killed on the way out (also on Ctrl-C or SIGTERM).
"""

import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests"))
import proclib  # noqa: E402  (tests/proclib.py: /proc for tests and bench)
import benchlib  # noqa: E402  (bench/benchlib.py)

ROOT, W, QUICK = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
N_MEM = int(os.environ.get("BENCH_LISTENER_HELD", 1000 if QUICK else 5000))
N_BOTS = 1000 if QUICK else 5000
N_PASS = 1000 if QUICK else 5000
N_LAT = 100 if QUICK else 500
N_BIG = 2000 if QUICK else 10000
N_BIG_BOTS = N_BIG // 5
ROUNDS = 1 if QUICK else 3
MEM_ROUNDS = 1 if QUICK else 7      # MemAvailable is the noisiest
CROWD = os.path.join(W, "crowd")
SINK = os.path.join(W, "sink")
TARGET = os.path.join(W, "target220")
DYN = os.path.join(ROOT, "build", "default", "sendwrap")
STATIC = os.path.join(ROOT, "build", "static", "sendwrap")
SINK_NAME = "sink (accept and hold)"
GROUPS = []                         # the servers' process groups
# what a held client's memory is made of (SReclaimable is part of Slab)
ATTRIBUTED = ("Pss", "Slab", "KernelStack", "PageTables", "TCP buffers")
T0 = time.monotonic()


def log(msg):
    print("[%6.1fs] %s" % (time.monotonic() - T0, msg), file=sys.stderr,
          flush=True)


# ------------------------------------------------------------ /proc

def cpu_s(pid):
    """CPU seconds of pid (schedstat, in ns) and of the children it has
    reaped (cutime + cstime)."""
    st = proclib.stat(pid)
    if st is None:
        raise ProcessLookupError(pid)
    return proclib.cpu_seconds(pid)[1] + (st.cutime + st.cstime) / proclib.HZ


def children(ppid):
    return [p.pid for p in proclib.children(ppid)]


def nfds(pid):
    try:
        return len(proclib.fd_numbers(pid))
    except OSError:
        return 0


def waiting_children(pid, exe):
    return len(proclib.waiting_children(pid, exe))


def pss_kb(pids):
    return proclib.memory_totals(pids, ["Pss"])[0]["Pss"]


wait_for = proclib.wait_for


# ------------------------------------------------------------ servers

class Server:
    """A server in a process group of its own; its port from its first
    line of output (tcpserver -1, sink) or sendwrap's 'listening on='."""

    def __init__(self, name, argv, listener=False):
        self.name = name
        self.logpath = os.path.join(W, "server.log")
        logf = open(self.logpath, "wb")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=logf, start_new_session=True)
        logf.close()
        GROUPS.append(self.proc.pid)
        self.pid = self.proc.pid
        if listener:
            wait_for(lambda: "listening on=" in self.log(), 10,
                     "%s to listen" % name)
            self.port = int(re.search(r"listening on=127\.0\.0\.1:(\d+)",
                                      self.log()).group(1))
        else:
            line = self.proc.stdout.readline()
            if not line:
                raise SystemExit("%s did not start: %s" % (name, self.log()))
            self.port = int(line)

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=20)
                break
            except subprocess.TimeoutExpired:
                pass
        # the group's last members (children finishing)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(self.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)


def listener(delay, extra=()):
    return Server("listener", [DYN, "--listen", "127.0.0.1:0", "-d", delay,
                               "--max-clients", "12000"] + list(extra) +
                  ["--", TARGET], listener=True)


def tcpserver(prog, conc):
    return ["tcpserver", "-1", "-R", "-H", "-l0", "-c%d" % conc,
            "-b%d" % min(conc, 4096), "127.0.0.1", "0"] + prog


def per_process(build, delay, conc=200):
    return Server("tcpserver + sendwrap (%s)" % build, tcpserver(
        [DYN if build == "dynamic" else STATIC, "-d", delay, "--", TARGET],
        conc))


def crowd(port, total, *opts, timeout=300):
    return benchlib.run_crowd(CROWD, port, total, *opts, timeout=timeout)


def median_range(vals):
    return statistics.median(vals), min(vals), max(vals)


# ------------------------------------------------------------ 1. memory

def hold(port, n, source):
    """Start crowd -H: n clients connected and held; returns the Popen
    once it says they are."""
    p = subprocess.Popen([CROWD, "-H", "-s", source, "127.0.0.1", str(port),
                          str(n)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().split()
    if not line or line[0] != "held" or int(line[1]) != n:
        p.kill()
        raise SystemExit("crowd could not hold %d: %r" % (n, line))
    return p


def release(p):
    p.stdin.close()
    p.wait(60)


def in_rounds(cfgs, measure, rounds):
    """measure(name, server) for each (name, start) of cfgs, each round in
    a shuffled order; {name: [row of each round]}."""
    res = {name: [] for name, _ in cfgs}
    for _ in range(rounds):
        for name, start in random.sample(cfgs, len(cfgs)):
            srv = start()
            try:
                res[name].append(measure(name, srv))
            finally:
                srv.stop()
    return res


# Clients held by each server: its descriptors less its own, or its
# sendwrap children waiting in select.
HELD = {
    SINK_NAME: lambda s: nfds(s.pid) - 5,
    "listener -d 300": lambda s: nfds(s.pid) - 6,
    "tcpserver + sendwrap -d 300 (dynamic)":
        lambda s: waiting_children(s.pid, DYN),
    "tcpserver + sendwrap -d 300 (static)":
        lambda s: waiting_children(s.pid, STATIC),
}


def memory_round(name, srv):
    """MemAvailable with the server idle (m0) and with N_MEM clients held
    (m1): the drop, the issue's measure; beside it the growth of what the
    kernel and the server's processes hold (attributed)."""
    held = HELD[name]
    wait_for(lambda: held(srv) == 0, 10, name + " to start")
    time.sleep(1)
    m0, k0 = proclib.free_kb(), proclib.kernel_kb()
    p0 = pss_kb([srv.pid])
    c = hold(srv.port, N_MEM, "127.0.5.1/250")
    try:
        wait_for(lambda: held(srv) >= N_MEM, 120, name + " to hold")
        time.sleep(0.5)
        m1, k1 = proclib.free_kb(), proclib.kernel_kb()
        p1 = pss_kb([srv.pid] + children(srv.pid))
    finally:
        release(c)
    # the next one starts from a machine where these are gone
    wait_for(lambda: held(srv) == 0 and not children(srv.pid), 60,
             name + " to let go")
    row = {"drop": (m0[0] - m1[0]) / N_MEM, "free": (m0[1] - m1[1]) / N_MEM,
           "Pss": (p1 - p0) / N_MEM}
    row.update({k: (k1[k] - k0[k]) / N_MEM for k in k0})
    row["attributed"] = sum(row[k] for k in ATTRIBUTED)
    log("memory %-38s %.2f kB a client (%.2f with the per-CPU lists; "
        "attributed %.2f: Pss %.2f, slab %.2f)" % (
            name, row["drop"], row["free"], row["attributed"], row["Pss"],
            row["Slab"]))
    return row


def contenders(delay, conc=200):
    """(name, start) of the listener and of tcpserver + sendwrap, both
    builds, at -d delay."""
    return [("listener -d %s" % delay, lambda: listener(delay))] + [
        ("tcpserver + sendwrap -d %s (%s)" % (delay, build),
         lambda build=build: per_process(build, delay, conc))
        for build in ("dynamic", "static")]


def memory():
    return in_rounds([(SINK_NAME, lambda: Server("sink", [SINK, "0"]))] +
                     contenders("300", N_MEM + 100), memory_round,
                     MEM_ROUNDS)


# ------------------------------------------------------------ 2. bots

def bot_round(name, srv):
    time.sleep(0.5)
    c0 = cpu_s(srv.pid)
    out = crowd(srv.port, N_BOTS, "-s", "127.0.6.1/200", "-c", "50", "-b",
                "1", "-w", "120")
    time.sleep(0.5)
    c1 = cpu_s(srv.pid)
    if out["right"] != N_BOTS:
        raise SystemExit("%s: bots not all refused: %r" % (name, out))
    row = {"cpu_ms": 1000 * (c1 - c0) / N_BOTS,
           "client_cpu_ms": out["cpums"] / N_BOTS, "rate": out["rate"]}
    log("bots %-36s %.4f ms CPU a bot, %.0f bots/s"
        % (name, row["cpu_ms"], row["rate"]))
    return row


def bots():
    return in_rounds(contenders("5"), bot_round, ROUNDS)


# ------------------------------------------------------------ 3. passing

def pass_round(name, srv):
    time.sleep(0.5)
    lat = crowd(srv.port, N_LAT, "-s", "127.0.7.1/200", "-c", "1")
    c0 = cpu_s(srv.pid)
    out = crowd(srv.port, N_PASS, "-s", "127.0.7.1/200", "-c", "50", "-w",
                "120")
    time.sleep(0.5)
    c1 = cpu_s(srv.pid)
    for o in (lat, out):
        if o["right"] != o["total"]:
            raise SystemExit("%s: not all greeted: %r" % (name, o))
    row = {"rate": out["rate"], "cpu_ms": 1000 * (c1 - c0) / N_PASS,
           "p50_ms": lat["p50ms"], "p99_ms": lat["p99ms"]}
    log("pass %-36s %.0f/s, %.3f ms CPU, greeting after %.3f ms"
        % (name, row["rate"], row["cpu_ms"], row["p50_ms"]))
    return row


def passing():
    return in_rounds(contenders("0") + [
        ("tcpserver alone",
         lambda: Server("tcpserver alone", tcpserver([TARGET], 200)))],
        pass_round, ROUNDS)


# ------------------------------------------------------------ 4. 10 000

def crowd_thread(out, key, *args):
    def run():
        out[key] = crowd(*args)
    t = threading.Thread(target=run)
    t.start()
    return t


def big():
    delay = 15
    srv = listener(str(delay))
    peak = {"fds": 0, "rss_kb": 0}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak["fds"] = max(peak["fds"], nfds(srv.pid))
            try:
                rss = int(proclib.status(srv.pid)["VmRSS"].split()[0])
                peak["rss_kb"] = max(peak["rss_kb"], rss)
            except (OSError, KeyError):
                pass
            time.sleep(0.1)

    sampler = threading.Thread(target=sample)
    try:
        time.sleep(1)
        m0, c0 = proclib.free_kb(), cpu_s(srv.pid)
        sampler.start()
        out = {}
        t_start = time.monotonic()
        waiters = crowd_thread(out, "waiters", srv.port, N_BIG, "-s",
                               "127.0.8.1/%d" % (N_BIG // 10), "-w", "120")
        wait_for(lambda: nfds(srv.pid) >= N_BIG, 60, "the crowd to connect")
        connected = time.monotonic() - t_start
        m1 = proclib.free_kb()
        bots = crowd_thread(out, "bots", srv.port, N_BIG_BOTS, "-s",
                            "127.0.200.1/%d" % (N_BIG_BOTS // 10), "-c",
                            "200", "-b", "1", "-w", "60")
        bots.join(120)
        bots_done = time.monotonic() - t_start
        waiters.join(180)
        served = time.monotonic() - t_start
        c1 = cpu_s(srv.pid)
    finally:
        stop.set()
        if sampler.is_alive():
            sampler.join()
        srv.stop()
    verdicts = {}
    for line in srv.log().splitlines():
        m = re.match(r"sendwrap: (\S+) ", line)
        if m:
            verdicts[m.group(1)] = verdicts.get(m.group(1), 0) + 1
    row = {"clients": N_BIG, "bots": N_BIG_BOTS, "delay": delay,
           "waiters": out.get("waiters"), "bot_run": out.get("bots"),
           "connected_s": connected, "bots_done_s": bots_done,
           "served_s": served, "peak_fds": peak["fds"],
           "peak_rss_kb": peak["rss_kb"],
           "memavail_drop_kb": m0[0] - m1[0],
           "free_drop_kb": m0[1] - m1[1],
           "cpu_s": c1 - c0, "verdicts": verdicts}
    log("10k: %r" % row)
    return row


# ------------------------------------------------------------ report

fmt = benchlib.fmt


def paired(res, name, ref, key):
    return [a[key] / b[key] for a, b in zip(res[name], res[ref])]


def server_side(mem, name, key="attributed"):
    """Memory per client (key: attributed, or free: the drop of
    MemAvailable with the per-CPU lists) less the client's end: half the
    sink's (its two sockets are the same kind), paired round by round."""
    return [r[key] - s[key] / 2 for r, s in zip(mem[name], mem[SINK_NAME])]


def report(res, info):
    out = []
    p = out.append
    p("Measured %s on %s, load average at start %s, at end %s. %s run, "
      "%d round%s." % (info["date"], info["machine"], info["load_start"],
                       info["load_end"], "Quick" if QUICK else "Full",
                       ROUNDS, "s" if ROUNDS > 1 else ""))
    mem = res["memory"]
    ref = "tcpserver + sendwrap -d 300 (dynamic)"
    p("\n### 1. Memory per waiting client, the kernel's included\n")
    p("%d clients held at once (-d 300), %d rounds; kB per client, "
      "median [min–max], ratios paired round by round against tcpserver "
      "+ sendwrap (dynamic).\n\n"
      "- *MemAvailable drop*: /proc/meminfo's MemAvailable with the server "
      "idle, less while the clients are held, divided by %d: the issue's "
      "measure. *With the per-CPU lists*: the same, counting as free the "
      "pages on the kernel's per-CPU free lists (/proc/zoneinfo), which "
      "MemAvailable counts as used: an allocation that takes them (the "
      "pages of the last round's sockets, freed there) lowers "
      "MemAvailable by nothing.\n"
      "- *Attributed*: the growth of the server's processes' Pss and of "
      "the kernel's Slab, KernelStack, PageTables and TCP buffer pages "
      "(sockstat), per client; its parts beside it, and the part of the "
      "slab that is reclaimable (a socket's dentry and inode), which "
      "MemAvailable counts as available in part.\n"
      "- The clients' sockets are on this machine too: the sink (accepts "
      "and holds, no program) shows what a connection takes, both ends; "
      "*server side* is the attributed figure less half the sink's (the "
      "client's end).\n" % (N_MEM, MEM_ROUNDS, N_MEM))
    p("| server | MemAvailable drop | with the per-CPU lists | ÷ per "
      "process | attributed | server side | ÷ per process (server side) "
      "| Pss | Slab | of it reclaimable | KernelStack | PageTables | TCP "
      "buffers |")
    p("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, rows in mem.items():
        side = server_side(mem, name)
        ref_side = server_side(mem, ref)
        p("| %s | %s | %s | %s | %s | %s | %s | %.1f | %.1f | %.1f | %.1f "
          "| %.1f | %.1f |" % (
              name, fmt([r["drop"] for r in rows], "%.1f"),
              fmt([r["free"] for r in rows], "%.1f"),
              fmt(paired(mem, name, ref, "free")),
              fmt([r["attributed"] for r in rows], "%.1f"),
              fmt(side, "%.1f"),
              fmt([a / b for a, b in zip(side, ref_side)], "%.3f"),
              *(statistics.median(r[k] for r in rows) for k in (
                  "Pss", "Slab", "SReclaimable", "KernelStack",
                  "PageTables", "TCP buffers"))))

    b = res["bots"]
    ref = "tcpserver + sendwrap -d 5 (dynamic)"
    p("\n### 2. CPU per refused bot\n")
    p("%d bots per server and round, 50 at once, each writing a pipelined "
      "transaction as soon as it is connected and reading the 554 and the "
      "close; the server's CPU (its own, schedstat, and its reaped "
      "children's) per bot. *client CPU* is the bots' own (bench/crowd.c), "
      "for scale: on loopback much of the kernel's TCP work is done in "
      "the sender's time.\n" % N_BOTS)
    p("| server | server CPU ms per bot | ÷ per process (dynamic) | "
      "client CPU ms per bot | bots/s |")
    p("|---|---|---|---|---|")
    for name, rows in b.items():
        p("| %s | %s | %s | %s | %s |" % (
            name, fmt([r["cpu_ms"] for r in rows], "%.4f"),
            fmt(paired(b, name, ref, "cpu_ms"), "%.3f"),
            fmt([r["client_cpu_ms"] for r in rows], "%.4f"),
            fmt([r["rate"] for r in rows], "%.0f")))

    ps = res["passing"]
    ref = "tcpserver + sendwrap -d 0 (dynamic)"
    p("\n### 3. A passing client at delay 0\n")
    p("The program is bench/target220.c (static: writes a 220 line, "
      "exits). Throughput: %d connections, 50 at once, each reading the "
      "220 line and the close; the server's CPU (its own and its "
      "children's) per connection. Latency: %d connections one at a time, "
      "from connect() to the first byte of the greeting.\n"
      % (N_PASS, N_LAT))
    p("| server | connections/s | ÷ per process (dynamic) | CPU ms per "
      "connection | ÷ per process (dynamic) | greeting p50 ms | ÷ per "
      "process (dynamic) | greeting p99 ms |")
    p("|---|---|---|---|---|---|---|---|")
    for name, rows in ps.items():
        p("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            name, fmt([r["rate"] for r in rows], "%.0f"),
            fmt(paired(ps, name, ref, "rate")),
            fmt([r["cpu_ms"] for r in rows], "%.3f"),
            fmt(paired(ps, name, ref, "cpu_ms")),
            fmt([r["p50_ms"] for r in rows], "%.3f"),
            fmt(paired(ps, name, ref, "p50_ms")),
            fmt([r["p99_ms"] for r in rows], "%.3f")))

    g = res["big"]
    w, bt = g["waiters"], g["bot_run"]
    p("\n### 4. %d clients waiting at once\n" % g["clients"])
    p("One listener (-d %d, --max-clients 12000) in front of target220; "
      "%d quiet clients from %d addresses connect at once, and while they "
      "wait %d bots (200 at once) write at once.\n" % (
          g["delay"], g["clients"], g["clients"] // 10, g["bots"]))
    p("| | |")
    p("|---|---|")
    p("| all %d connected and held after | %.2f s |" % (g["clients"],
                                                        g["connected_s"]))
    p("| peak descriptors of the listener | %d |" % g["peak_fds"])
    p("| peak RSS of the listener | %.1f MB (%.2f kB a client) |" % (
        g["peak_rss_kb"] / 1024, g["peak_rss_kb"] / g["clients"]))
    p("| MemAvailable drop with all held (and with the per-CPU lists) | "
      "%.1f MB (%.1f MB): %.2f kB (%.2f kB) a client, the client sockets "
      "included |" % (g["memavail_drop_kb"] / 1024, g["free_drop_kb"] / 1024,
                      g["memavail_drop_kb"] / g["clients"],
                      g["free_drop_kb"] / g["clients"]))
    p("| bots refused with 554 | %d of %d, %d wrong, %d errors, %d resets, "
      "done %.2f s after the start |" % (
          bt["right"], bt["total"], bt["wrong"], bt["errors"], bt["resets"],
          g["bots_done_s"]))
    p("| clients greeted (220 from target220) | %d of %d, %d wrong, %d "
      "errors, %d resets, all done %.2f s after the start |" % (
          w["right"], w["total"], w["wrong"], w["errors"], w["resets"],
          g["served_s"]))
    p("| greeting latency p50 / max | %.2f s / %.2f s |" % (
        w["p50ms"] / 1000, w["maxms"] / 1000))
    p("| listener CPU, the whole run | %.2f s |" % g["cpu_s"])
    p("| verdict lines | %s |" % ", ".join(
        "%s %d" % kv for kv in sorted(g["verdicts"].items())))

    p("\n### Targets (issue 13)\n")
    p("| target | measured | verdict |")
    p("|---|---|---|")

    def target(what, value, ok):
        p("| %s | %s | **%s** |" % (what, value, "PASS" if ok else "FAIL"))
    ref = "tcpserver + sendwrap -d 300 (dynamic)"
    lst = mem["listener -d 300"]
    drop = statistics.median(r["drop"] for r in lst)
    free = statistics.median(r["free"] for r in lst)
    side = statistics.median(server_side(mem, "listener -d 300"))
    free_side = statistics.median(server_side(mem, "listener -d 300",
                                              "free"))
    target("Memory per waiting client, kernel included, ≤ 8 kB (the server "
           "side: less the client's end, half the sink's)",
           "%.1f kB by MemAvailable with the per-CPU lists (%.1f kB with "
           "the client's end; %.1f kB by MemAvailable alone); %.1f kB "
           "attributed" % (free_side, free, drop, side),
           free_side <= 8 and side <= 8)
    per = statistics.median(paired(mem, "listener -d 300", ref, "free"))
    per_side = statistics.median(
        a / b for a, b in zip(server_side(mem, "listener -d 300"),
                              server_side(mem, ref)))
    target("… 10× or more below one process per connection (dynamic)",
           "%.0f× below (MemAvailable with the per-CPU lists), %.0f× "
           "(server side, attributed)" % (1 / per, 1 / per_side),
           per <= 0.1 and per_side <= 0.1)
    def against_tcpserver(res, delay, key):
        """The listener's key over tcpserver + sendwrap's at delay, paired
        round by round: the median."""
        return statistics.median(paired(
            res, "listener -d %d" % delay,
            "tcpserver + sendwrap -d %d (dynamic)" % delay, key))

    bot = against_tcpserver(b, 5, "cpu_ms")
    target("A refused bot's CPU ≤ 0.1× tcpserver + sendwrap's",
           "%.3f×" % bot, bot <= 0.1)
    cpu = against_tcpserver(ps, 0, "cpu_ms")
    target("A passing client's CPU ≤ tcpserver + sendwrap's", "%.2f×" % cpu,
           cpu <= 1)
    lat = against_tcpserver(ps, 0, "p50_ms")
    target("Its latency to the greeting ≤ tcpserver + sendwrap's",
           "%.2f× (p50)" % lat, lat <= 1)
    rate = against_tcpserver(ps, 0, "rate")
    target("Throughput at delay 0 ≥ tcpserver + sendwrap's", "%.2f×" % rate,
           rate >= 1)
    ok = (w["right"] == w["total"] == g["clients"] and
          bt["right"] == bt["total"] == g["bots"] and
          g["peak_fds"] >= g["clients"])
    target("%d clients waiting at once, all served or refused correctly"
           % g["clients"], "%d greeted, %d refused, peak %d descriptors"
           % (w["right"], bt["right"], g["peak_fds"]), ok)
    return "\n".join(out) + "\n"


def main():
    info = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": "Linux %s, %d cores" % (os.uname().release,
                                               os.cpu_count()),
            "load_start": proclib.loadavg()}
    res = {}
    # BENCH_LISTENER_ONLY=memory,bots,... for development: no report
    only = os.environ.get("BENCH_LISTENER_ONLY", "").split(",")
    for key, what, fn in (
            ("memory", "%d clients held" % N_MEM, memory),
            ("bots", "%d bots a server and round" % N_BOTS, bots),
            ("passing", "%d clients a server and round" % N_PASS, passing),
            ("big", "%d clients at once" % N_BIG, big)):
        if only != [""] and key not in only:
            continue
        log("%s: %s, %d round(s)" % (key, what, ROUNDS))
        res[key] = fn()
    if only != [""]:
        print(json.dumps(res, indent=1))
        return
    benchlib.save(W, res, info, report)


def kill_groups():
    for pg in GROUPS:
        try:
            os.killpg(pg, signal.SIGKILL)
        except ProcessLookupError:
            pass


benchlib.run_main(main, kill_groups)
