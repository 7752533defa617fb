"""bench/peers.py - sendwrap's listener against the greeting delays that
MTAs have of their own, Postfix postscreen and Exim's connect-ACL delay,
on the same work.  Run by bench/peers (make bench-peers); see
BENCHMARKS.md, "Against Postfix postscreen and Exim".

    peers.py ROOT WORKDIR QUICK

The rows, each up to the MTA's greeting:
  sendwrap --listen -d D --forward 127.0.0.1:PORT -> Postfix smtpd
      (where sendwrap can forward: --forward in its --help; a private
      Postfix, at most 100 smtpd; the two counted together; the listener
      relays at most 100 sessions at once, --max-children 100)
  sendwrap --listen -d D --forward unix:PATH -> Postfix smtpd
      (the same, the smtpd on a unix socket of Postfix's queue,
      private/smtpfwd: no second TCP connection)
  sendwrap --listen -d D -- exim -bs   (Debian's exim4-daemon-light; the
      listener runs at most 100 exims at once, --max-children 100)
  Postfix postscreen -> smtpd          (greet wait D, greet action enforce,
      no client exempted, no cache of passed clients; at most 100 smtpd)
  exim -bd, connect ACL delay = D      (exim4-daemon-heavy, smtp_enforce_sync,
      no PIPE_CONNECT; one process per connection, no limit)
  sendwrap --listen -d D -- target220  (for scale: bench/target220.c writes
      a 220 line and exits; what the listener itself costs, no MTA)
The MTAs run as tests/e2e/daemons.py starts them (private instances on
loopback).  The work, measured on each:

1. Memory per held client: N clients connect and are held (crowd -H,
   D = 300 s); what the server's processes (Pss) and the kernel (slab,
   stacks, page tables, TCP buffers) grew by, and the drop of
   MemAvailable (the kernel's per-CPU free lists counted as free,
   proclib.free_kb), divided by N.
2. CPU per refused bot: bots (crowd -b 1 -R: a pipelined transaction
   written at once; right when its message is not taken: no 354, no 421)
   at D = 2 s; the CPU of all the server's processes (each live one's,
   and what they reaped) per bot.
3. A passing client at D = 1 s: crowd -Q (waits for the greeting's last
   line, says QUIT); CPU per client, the greeting's latency beyond D at
   200 in flight, and one at a time.  The CPU is counted every way
   (CpuWatch): the server's processes, every thread, and what they
   reaped; the kernel's softirq threads; the whole machine's busy time;
   and by process name.
4. A burst: N clients at once, D = 5 s; how late each was greeted
   (latency from its connect() less D: min, percentiles, the last).

Every client comes from an address of its own (127.4.0.1 and up, one
range a measure): postscreen remembers a client that passed for at least
a second (postscreen_greet_ttl, 1 s here, its least; Postfix's default is
a day) and lets it through at once, as sendwrap's pass cache (-c, not
used here) would.

Rounds take the rows in turn, shuffled; tables give the median of the
rounds [min-max] and ratios against the first row's (sendwrap's, with
--forward where it can) paired round by round.  Everything is on
loopback; each server is a process group of its own, stopped after its
round and killed on any way out.
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

# BENCH_PEERS_N=100: every measure's clients, for development
N_MEM = N_BOTS = N_BURST = int(
    os.environ.get("BENCH_PEERS_N") or (1000 if QUICK else 5000))
N_PASS = int(os.environ.get("BENCH_PEERS_N") or (1000 if QUICK else 2000))
N_LAT = 10 if QUICK else 20
# the listener's bound, above the most clients a measure holds
MAX_CLIENTS = max(N_MEM, N_BURST) + 1000
# BENCH_PEERS_ROUNDS=5: every measure's rounds, for development
ROUNDS = int(os.environ.get("BENCH_PEERS_ROUNDS") or (1 if QUICK else 3))
MEM_ROUNDS = int(os.environ.get("BENCH_PEERS_ROUNDS") or
                 (1 if QUICK else 5))   # MemAvailable is the noisiest
BURST_DELAY = 5
# the most sessions the forwarding listener relays at once (--max-children:
# a relayed session is no process); Postfix runs at most 100 smtpd
FORWARD_CHILDREN = int(os.environ.get("BENCH_PEERS_FORWARD_CHILDREN") or 100)
# what a held client's memory is made of (SReclaimable is part of Slab)
ATTRIBUTED = ("Pss", "Slab", "KernelStack", "PageTables", "TCP buffers")
CROWD = os.path.join(W, "crowd")
SENDWRAP = os.path.join(ROOT, "build", "default", "sendwrap")
SENDWRAP_NAME = "sendwrap --listen → exim -bs"
POSTSCREEN_NAME = "Postfix postscreen → smtpd"
EXIM_NAME = "Exim connect-ACL delay"
ALONE_NAME = "(sendwrap --listen → target220: no MTA)"
FORWARD_NAME = "sendwrap --listen --forward → Postfix smtpd"
FORWARD_UNIX_NAME = "sendwrap --listen --forward unix: → Postfix smtpd"
TARGET = os.path.join(W, "target220")
# the servers' directories (configurations, spools, logs), this run's only
SERVERS_DIR = os.path.join(W, "servers")
T0 = time.monotonic()


def log(msg):
    print("[%6.1fs] %s" % (time.monotonic() - T0, msg), file=sys.stderr,
          flush=True)


# ------------------------------------------------------------ the servers

class Sendwrap:
    """sendwrap --listen in front of program (argv), or with opts (say
    --forward HOST:PORT) and no program, its log in a file."""

    def __init__(self, delay, program=(), opts=(), children=100,
                 binary=SENDWRAP):
        self.dir = e2elib.make_workdir(SERVERS_DIR, "sendwrap")
        self.logpath = os.path.join(self.dir, "sendwrap.log")
        with open(self.logpath, "wb") as logf:
            self.proc = e2elib.start_group(
                [binary, "--listen", "127.0.0.1:0", "-l", "stderr", "-d",
                 str(delay), "--max-clients", str(MAX_CLIENTS), "--per-ip",
                 "100", "--max-children", str(children)] + list(opts) +
                (["--"] + list(program) if program else []),
                stdout=logf, stderr=logf)
        self.pid = self.proc.pid
        m = e2elib.wait_until(lambda: re.search(
            r"listening on=127\.0\.0\.1:(\d+)", self.log()), 10)
        if not m:
            raise SystemExit("sendwrap did not listen: " + self.log())
        self.port = int(m.group(1))

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def processes(self):
        return proclib.tree(self.pid)

    def stop(self):
        e2elib.stop_group(self.proc)


class Forwarding(Sendwrap):
    """sendwrap --listen --forward to a private Postfix's smtpd: its
    processes, CPU and memory are the two together."""

    def __init__(self, delay, binary=SENDWRAP):
        self.postfix = daemons.PostfixServer(SERVERS_DIR, smtpd=True,
                                             process_limit=100)
        try:
            Sendwrap.__init__(self, delay, children=FORWARD_CHILDREN,
                              binary=binary, opts=[
                "--forward", "127.0.0.1:%d" % self.postfix.port])
        except BaseException:
            self.postfix.stop()
            raise

    def processes(self):
        return Sendwrap.processes(self) + self.postfix.processes()

    def stop(self):
        Sendwrap.stop(self)
        self.postfix.stop()


class UnixPostfix(daemons.PostfixServer):
    """A private Postfix whose smtpd listens on a unix socket of its queue
    (private/smtpfwd) as well: self.socket."""

    def _write_config(self, ports):
        daemons.PostfixServer._write_config(self, ports)
        with open(os.path.join(self.conf, "master.cf"), "a") as f:
            f.write("smtpfwd   unix  -       -       n       -       %d"
                    "     smtpd\n" % self.settings["process_limit"])
        self.socket = os.path.join(self.dir, "queue", "private", "smtpfwd")


class UnixForwarding(Forwarding):
    """sendwrap --listen --forward unix:PATH to Postfix's smtpd on a unix
    socket: no second TCP connection."""

    def __init__(self, delay, binary=SENDWRAP):
        self.postfix = UnixPostfix(SERVERS_DIR, smtpd=True,
                                   process_limit=100)
        try:
            wait_for(lambda: os.path.exists(self.postfix.socket), 10,
                     "smtpd's unix socket")
            Sendwrap.__init__(self, delay, children=FORWARD_CHILDREN,
                              binary=binary,
                              opts=["--forward", "unix:" + self.postfix.socket])
        except BaseException:
            self.postfix.stop()
            raise


def forwards():
    """Can this sendwrap forward (--forward in its --help)?"""
    r = subprocess.run([SENDWRAP, "--help"], capture_output=True, text=True)
    return "--forward" in r.stdout + r.stderr


def sendwrap_exim(delay):
    """In front of exim -bs: a queue-only exim of e2elib's."""
    mta = e2elib.EximReceiver(SERVERS_DIR, name="exim-bs")
    return Sendwrap(delay, mta.argv())


def sendwrap_alone(delay):
    """In front of bench/target220.c (writes a 220 line and exits): what
    sendwrap's listener itself costs, without an MTA."""
    return Sendwrap(delay, [TARGET])


def postscreen(delay):
    pf = daemons.PostfixServer(SERVERS_DIR, smtpd=False, postscreen=True,
                               greet_wait=delay, process_limit=100,
                               queue_limit=20000)
    pf.port = pf.postscreen_port
    return pf


def exim_delay(delay):
    return daemons.EximDaemon(SERVERS_DIR, delay=delay,
                              name="exim-delay")


SERVERS = [("exim-bs", SENDWRAP_NAME, sendwrap_exim),
           ("postscreen", POSTSCREEN_NAME, postscreen),
           ("exim-delay", EXIM_NAME, exim_delay),
           ("alone", ALONE_NAME, sendwrap_alone)]
if forwards():
    SERVERS[:0] = [("forward", FORWARD_NAME, Forwarding),
                   ("forward-unix", FORWARD_UNIX_NAME, UnixForwarding)]
# BENCH_PEERS_TRIAL=PATH[:PATH...]: a forwarding row more for each, the
# sendwrap at PATH (a trial build), named by its file name
for path in filter(None, os.environ.get("BENCH_PEERS_TRIAL", "").split(":")):
    SERVERS.insert(1, ("trial", "trial: " + os.path.basename(path),
                       lambda d, path=path: Forwarding(d, path)))
# BENCH_PEERS_ROWS=forward,postscreen: only those rows (forward,
# forward-unix, exim-bs, postscreen, exim-delay, alone, trial), for
# development
ROWS = os.environ.get("BENCH_PEERS_ROWS", "").split(",")
SERVERS = [(name, start) for key, name, start in SERVERS
           if ROWS == [""] or key in ROWS]
REFERENCE = SERVERS[0][0]           # the ratios' denominator, the first row


# ------------------------------------------------------------ /proc

def members(srv):
    """The server's processes: the one started and its descendants
    (Postfix's postscreen is in a session of its own), and for a
    forwarding sendwrap, the MTA's."""
    return [p.pid for p in srv.processes()]


def group_cpu(srv):
    """CPU seconds of the server's processes: each live one's own
    (schedstat) and what it has reaped (cutime + cstime)."""
    total = 0.0
    for pid in members(srv):
        st = proclib.stat(pid)
        try:
            own = benchlib.threads_cpu(pid)
        except OSError:
            continue
        total += own + (st.cutime + st.cstime) / proclib.HZ
    return total


def cpu_by_process(procs):
    """{pid: (name, CPU seconds)} of the live processes procs
    (proclib.Stat)."""
    out = {}
    for p in procs:
        try:
            out[p.pid] = (p.comm, benchlib.threads_cpu(p.pid))
        except OSError:
            pass
    return out


def ksoftirqd_cpu():
    """CPU seconds of the kernel's softirq threads (ksoftirqd/N): the
    network work the kernel defers from the processes' own context (this
    kernel has no IRQ time accounting: the rest is in the process that
    was running, the sender on loopback)."""
    return sum(benchlib.threads_cpu(p.pid) for p in proclib.processes()
               if p.comm.startswith("ksoftirqd/"))


def machine_busy():
    """The whole machine's busy CPU seconds (/proc/stat: every state but
    idle and iowait), in clock ticks' resolution."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v) - v[3] - v[4]) / proclib.HZ


class CpuWatch:
    """The CPU a server spends over a measure, every way it can be
    counted: its processes' (group_cpu), the softirq threads', the whole
    machine's, and by process name (sampled every poll(): a process that
    exits is counted up to its last sample)."""

    def __init__(self, srv):
        self.srv = srv
        self.seen = {pid: [name, c, c] for pid, (name, c)
                     in cpu_by_process(srv.processes()).items()}
        self.c0, self.k0, self.m0 = (group_cpu(srv), ksoftirqd_cpu(),
                                     machine_busy())
        self.peak = 0

    def poll(self):
        """Sample the server's processes: their CPU, and how many."""
        procs = self.srv.processes()
        self.peak = max(self.peak, len(procs))
        for pid, (name, c) in cpu_by_process(procs).items():
            self.seen.setdefault(pid, [name, 0.0, 0.0])[2] = c

    def end(self, clients, crowd_ms):
        """ms per client: processes, softirq threads, their total, the
        whole machine less the clients' own (crowd's cpums), and
        {process name: ms}."""
        self.poll()
        procs = 1000 * (group_cpu(self.srv) - self.c0) / clients
        soft = 1000 * (ksoftirqd_cpu() - self.k0) / clients
        parts = {}
        for name, c0, c1 in self.seen.values():
            parts[name] = parts.get(name, 0) + 1000 * (c1 - c0) / clients
        return {"cpu_ms": procs, "softirqd_ms": soft, "total_ms": procs + soft,
                "machine_ms": (1000 * (machine_busy() - self.m0) - crowd_ms)
                / clients, "crowd_ms": crowd_ms / clients,
                "parts": {k: v for k, v in parts.items() if v >= 0.0005}}


def crowd_watched(watch, args, timeout=300):
    """crowd ARGS, calling watch() every 0.5 s meanwhile (each call reads
    /proc: the bench's own CPU, taken from the servers'); its result."""
    p = subprocess.Popen([CROWD] + list(args), stdout=subprocess.PIPE,
                         text=True)
    end = time.monotonic() + timeout
    while p.poll() is None:
        watch()
        if time.monotonic() > end:
            p.kill()
            raise SystemExit("crowd timed out: %r" % (args,))
        time.sleep(0.5)
    if p.returncode != 0:
        raise SystemExit("crowd failed: %r" % (args,))
    return benchlib.parse_crowd(p.stdout.read())


def held(srv):
    """Established connections to the server's port whose socket one of
    its processes holds (accepted, not waiting in the backlog)."""
    return len(proclib.tcp_sockets(srv.port, "01") &
               proclib.socket_inodes(members(srv)))


def wait_for(pred, timeout, what):
    if not e2elib.wait_until(pred, timeout, 0.2):
        raise SystemExit("bench/peers: timed out waiting for " + what)


def crowd(port, total, *opts, timeout=300):
    return benchlib.run_crowd(CROWD, port, total, *opts, timeout=timeout)


def in_rounds(delay, measure, rounds):
    """measure(name, server) for each server at this delay, each round in
    a shuffled order; {name: [row of each round]}."""
    res = {name: [] for name, _ in SERVERS}
    for _ in range(rounds):
        for name, start in random.sample(SERVERS, len(SERVERS)):
            srv = start(delay)
            try:
                res[name].append(measure(name, srv))
                if srv.proc.poll() is not None:
                    raise SystemExit("%s ended during the measure" % name)
            finally:
                srv.stop()
    return res


def warm_up(srv):
    """One client through, so that the processes a first client starts
    (postscreen, smtpd, anvil) are there before a measure."""
    out = crowd(srv.port, 1, "-Q", "-s", "127.0.9.1/1", "-w", "30")
    if out["right"] != 1:
        raise SystemExit("warm-up client not greeted: %r" % out)


# ------------------------------------------------------------ 1. memory

def memory_round(name, srv):
    wait_for(lambda: held(srv) == 0, 10, name + " to start")
    time.sleep(1)
    m0, k0 = proclib.free_kb(), proclib.kernel_kb()
    p0 = proclib.memory_totals(members(srv), ["Pss"])[0]["Pss"]
    c = subprocess.Popen([CROWD, "-H", "-s", "127.4.0.1/%d" % N_MEM,
                          "127.0.0.1", str(srv.port), str(N_MEM)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    try:
        line = c.stdout.readline().split()
        if not line or line[0] != "held":
            raise SystemExit("crowd could not hold %d: %r" % (N_MEM, line))
        wait_for(lambda: held(srv) >= N_MEM, 180, name + " to hold")
        time.sleep(0.5)
        m1, k1 = proclib.free_kb(), proclib.kernel_kb()
        p1 = proclib.memory_totals(members(srv), ["Pss"])[0]["Pss"]
        procs = len(members(srv))
    finally:
        c.stdin.close()
        c.wait(60)
    row = {"free": (m0[1] - m1[1]) / N_MEM, "drop": (m0[0] - m1[0]) / N_MEM,
           "Pss": (p1 - p0) / N_MEM, "processes": procs}
    row.update({k: (k1[k] - k0[k]) / N_MEM for k in k0})
    row["attributed"] = sum(row[k] for k in ATTRIBUTED)
    log("memory %-32s %.2f kB a client by MemAvailable, %.2f attributed "
        "(Pss %.2f), %d processes" % (name, row["free"], row["attributed"],
                                     row["Pss"], procs))
    return row


# ------------------------------------------------------------ 2. bots

def bot_round(name, srv):
    warm_up(srv)
    time.sleep(0.5)
    c0 = group_cpu(srv)
    out = crowd(srv.port, N_BOTS, "-s", "127.5.0.1/%d" % N_BOTS, "-c", "500",
                "-b", "1", "-R", "-w", "240")
    time.sleep(0.5)
    c1 = group_cpu(srv)
    if out["right"] != N_BOTS:
        raise SystemExit("%s: bots not all refused: %r" % (name, out))
    row = {"cpu_ms": 1000 * (c1 - c0) / N_BOTS, "rate": out["rate"],
           "secs": out["secs"]}
    log("bots %-34s %.3f ms CPU a bot, %.0f bots/s"
        % (name, row["cpu_ms"], row["rate"]))
    return row


# ------------------------------------------------------------ 3. passing

def pass_round(name, srv):
    warm_up(srv)
    time.sleep(0.5)
    one = crowd(srv.port, N_LAT, "-Q", "-s", "127.6.0.1/%d" % N_LAT, "-c", "1",
                "-w", "120")
    cw = CpuWatch(srv)
    out = crowd_watched(cw.poll, [
        "-Q", "-s", "127.7.0.1/%d" % N_PASS, "-c", "200", "-w", "240",
        "127.0.0.1", str(srv.port), str(N_PASS)])
    time.sleep(0.5)
    for o in (one, out):
        if o["right"] != o["total"]:
            raise SystemExit("%s: not all greeted: %r" % (name, o))
    row = cw.end(N_PASS, out["cpums"])
    row.update({"rate": out["rate"], "p50_ms": out["p50ms"] - 1000,
                "p99_ms": out["p99ms"] - 1000, "one_ms": one["p50ms"] - 1000,
                "load": proclib.loadavg()})
    log("pass %-34s %.3f ms CPU a client (%.3f processes, %.3f ksoftirqd; "
        "machine %.3f; %s), %.1f ms beyond the wait (p50), %.1f ms one at a "
        "time; load %s" % (
            name, row["total_ms"], row["cpu_ms"], row["softirqd_ms"],
            row["machine_ms"], " ".join(
                "%s %.3f" % kv for kv in sorted(row["parts"].items())),
            row["p50_ms"], row["one_ms"], row["load"]))
    return row


# ------------------------------------------------------------ 4. burst

def burst_round(name, srv):
    warm_up(srv)
    time.sleep(0.5)
    cw = CpuWatch(srv)
    out = crowd_watched(cw.poll, [
        "-Q", "-s", "127.8.0.1/%d" % N_BURST, "-w", "240", "127.0.0.1",
        str(srv.port), str(N_BURST)])
    cpu = cw.end(1, out["cpums"])
    row = {"right": out["right"], "total": out["total"],
           "errors": out["errors"], "last_s": out["maxms"] / 1000,
           "p50_s": out["p50ms"] / 1000, "secs": out["secs"],
           "cpu_s": cpu["total_ms"] / 1000, "peak_processes": cw.peak,
           "span_s": out["spanms"] / 1000, "load": proclib.loadavg(),
           "parts_s": {k: v / 1000 for k, v in cpu["parts"].items()},
           "softirqd_s": cpu["softirqd_ms"] / 1000,
           "machine_s": cpu["machine_ms"] / 1000,
           "crowd_s": cpu["crowd_ms"] / 1000}
    # lateness: the greeting's latency beyond the delay, s
    for q in ("min", "p10", "p50", "p90", "p99", "max"):
        row["late_" + q] = out[q + "ms"] / 1000 - BURST_DELAY
    log("burst %-33s %d of %d greeted (connects over %.2f s), late by "
        "%s s, %.2f s CPU (%s), %d processes at most; load %s" % (
            name, row["right"], row["total"], row["span_s"], " ".join(
                "%s %.2f" % (q, row["late_" + q]) for q in (
                    "min", "p10", "p50", "p90", "p99", "max")),
            row["cpu_s"], " ".join("%s %.2f" % kv for kv in sorted(
                row["parts_s"].items())), row["peak_processes"],
            row["load"]))
    return row


# ------------------------------------------------------------ report

fmt = benchlib.fmt


def ratio(res, name, key):
    return fmt([a[key] / b[key] for a, b in zip(res[name],
                                                  res[REFERENCE])])


def parts(rows):
    """The CPU by process name, the median of the rounds, the largest
    first."""
    names = {k for r in rows for k in r["parts"]}
    med = {k: statistics.median(r["parts"].get(k, 0) for r in rows)
           for k in names}
    return ", ".join("%s %.3f" % (k, v) for k, v in sorted(
        med.items(), key=lambda kv: -kv[1]) if v >= 0.001)


def versions():
    v = {}
    r = subprocess.run([SENDWRAP, "--version"], capture_output=True,
                       text=True)
    v["sendwrap"] = (r.stdout or r.stderr).split("\n")[0]
    for name, binary in (("exim -bs (light)", e2elib.EXIM),
                         ("exim -bd (heavy)", daemons.EXIM_HEAVY)):
        r = subprocess.run([binary, "-bV"], capture_output=True, text=True)
        v[name] = r.stdout.split("\n")[0]
    v["postfix"] = daemons.postfix_version()
    return v


def report(res, info):
    out = []
    p = out.append
    p("Measured %s on %s, load average at start %s, at end %s. %s run, "
      "%d round%s. %s" % (
          info["date"], info["machine"], info["load_start"],
          info["load_end"], "Quick" if QUICK else "Full", ROUNDS,
          "s" if ROUNDS > 1 else "", "; ".join(
              "%s: %s" % kv for kv in info["versions"].items())))
    if "memory" in res:
        m = res["memory"]
        p("\n### 1. Memory per held client (%d held, D = 300 s, %d "
          "round%s)\n" % (N_MEM, MEM_ROUNDS, "s" if MEM_ROUNDS > 1 else ""))
        p("kB per client. *Attributed*: the growth of the server's "
          "processes' Pss and of the kernel's Slab, KernelStack, PageTables "
          "and TCP buffer pages; *MemAvailable*: its drop, the per-CPU free "
          "lists counted as free. Both count the clients' ends of the "
          "sockets too, the same for every server.\n")
        p("| server | attributed | ÷ the first row's | MemAvailable | "
          "÷ the first row's | Pss | Slab | KernelStack | PageTables | "
          "processes while held |")
        p("|---|---|---|---|---|---|---|---|---|---|")
        for name, rows in m.items():
            p("| %s | %s | %s | %s | %s | %.1f | %.1f | %.1f | %.1f | %d |"
              % (name, fmt([r["attributed"] for r in rows], "%.1f"),
                 ratio(m, name, "attributed"),
                 fmt([r["free"] for r in rows], "%.1f"),
                 ratio(m, name, "free"),
                 *(statistics.median(r[k] for r in rows) for k in (
                     "Pss", "Slab", "KernelStack", "PageTables",
                     "processes"))))
    if "bots" in res:
        b = res["bots"]
        p("\n### 2. CPU per refused bot (%d bots, 500 at once, D = 2 s)\n"
          % N_BOTS)
        p("| server | CPU ms a bot | ÷ the first row's | bots/s | run s |")
        p("|---|---|---|---|---|")
        for name, rows in b.items():
            p("| %s | %s | %s | %s | %s |" % (
                name, fmt([r["cpu_ms"] for r in rows], "%.3f"),
                ratio(b, name, "cpu_ms"),
                fmt([r["rate"] for r in rows], "%.0f"),
                fmt([r["secs"] for r in rows], "%.1f")))
    if "passing" in res:
        s = res["passing"]
        p("\n### 3. A passing client (D = 1 s, greeted, says QUIT)\n")
        p("%d clients, 200 at once: the CPU per client, and the greeting's "
          "latency beyond the 1 s wait; and %d one at a time. *CPU*: the "
          "server's processes (each live one's schedstat, every thread, and "
          "what it reaped) and the kernel's softirq threads (ksoftirqd); "
          "*machine*: the whole machine's busy time (/proc/stat) less the "
          "clients' own (crowd's), other work on it included; *by "
          "process*: sampled every 0.5 s (an exiting process up to its last "
          "sample).\n" % (N_PASS, N_LAT))
        p("| server | CPU ms a client | ÷ the first row's | of which "
          "ksoftirqd | machine ms | by process, ms | beyond the wait, p50 "
          "ms | p99 ms | one at a time, p50 ms | clients/s |")
        p("|---|---|---|---|---|---|---|---|---|---|")
        for name, rows in s.items():
            p("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                name, fmt([r["total_ms"] for r in rows], "%.3f"),
                ratio(s, name, "total_ms"),
                fmt([r["softirqd_ms"] for r in rows], "%.3f"),
                fmt([r["machine_ms"] for r in rows], "%.3f"),
                parts(rows),
                fmt([r["p50_ms"] for r in rows], "%.1f"),
                fmt([r["p99_ms"] for r in rows], "%.1f"),
                fmt([r["one_ms"] for r in rows], "%.1f"),
                fmt([r["rate"] for r in rows], "%.0f")))
    if "burst" in res:
        g = res["burst"]
        p("\n### 4. A burst: %d passing clients at once (D = %d s)\n"
          % (N_BURST, BURST_DELAY))
        p("How late each client was greeted: the greeting's latency from its "
          "connect() less D, s (min, 10th, 50th, 90th, 99th percentile, "
          "max); *connects over*: from the first connect to the last.\n")
        p("| server | greeted | connects over s | min | p10 | p50 | p90 | "
          "p99 | the last | CPU s | processes at most |")
        p("|---|---|---|---|---|---|---|---|---|---|---|")
        for name, rows in g.items():
            p("| %s | %s | %s | %s | %s | %s |" % (
                name, " ".join("%d/%d" % (r["right"], r["total"])
                               for r in rows),
                fmt([r["span_s"] for r in rows]),
                " | ".join(fmt([r["late_" + q] for r in rows]) for q in (
                    "min", "p10", "p50", "p90", "p99", "max")),
                fmt([r["cpu_s"] for r in rows]),
                fmt([r["peak_processes"] for r in rows], "%d")))
    return "\n".join(out) + "\n"


def main():
    shutil.rmtree(SERVERS_DIR, ignore_errors=True)
    os.makedirs(SERVERS_DIR)
    os.chmod(SERVERS_DIR, 0o755)
    info = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": "Linux %s, %d cores" % (os.uname().release,
                                               os.cpu_count()),
            "load_start": proclib.loadavg(), "versions": versions()}
    res = {}
    only = os.environ.get("BENCH_PEERS_ONLY", "").split(",")
    for key, delay, fn, rounds in (("memory", 300, memory_round, MEM_ROUNDS),
                                   ("bots", 2, bot_round, ROUNDS),
                                   ("passing", 1, pass_round, ROUNDS),
                                   ("burst", BURST_DELAY, burst_round,
                                    ROUNDS)):
        if only != [""] and key not in only:
            continue
        log("%s, %d round(s)" % (key, rounds))
        res[key] = in_rounds(delay, fn, rounds)
    benchlib.save(W, res, info, report)


benchlib.run_main(main, e2elib.stop_all)
