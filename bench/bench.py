#!/usr/bin/python3
"""bench.py - the measurements behind bench/run (see BENCHMARKS.md).

bench/run installs what is needed, builds sendwrap (default and STATIC=1),
floor 1 the same two ways, the tiny target and the harnesses into
build/bench/, then runs this script.  It measures, in one run:

  1. pass-through cost per invocation (passbench: fork + exec with a
     connected loopback TCP socket on fd 0/1), wall time and peak RSS;
  2. memory per waiting connection (tcpserver, 30 s delay, N idle
     connections, Pss and Private_Dirty from /proc/PID/smaps_rollup);
  3. throughput through tcpserver at delay 0 (loadgen);
  4. allowlist scaling (0 to 1 000 000 generated entries, text and
     compiled), with this harness and with a lean one (a target that
     exits at once, invocations paired with the empty list's);
plus deterministic extras: instructions up to execve (callgrind) and
system calls (strace -c).  It prints the tables and writes them between
the markers in BENCHMARKS.md, and the plot bench/allowlist-scaling.png.

Every load loop is bounded in count and time; every server runs in its own
process group and is killed with its children on the way out.
"""
import argparse
import atexit
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, os.path.join(ROOT, "tests"))
import proclib  # noqa: E402  (tests/proclib.py: /proc for tests and bench)

W = os.path.join(ROOT, "build", "bench")
LISTS = os.path.join(W, "lists")
MD = os.path.join(ROOT, "BENCHMARKS.md")
PNG = os.path.join(BENCH, "allowlist-scaling.png")
BEGIN = "<!-- bench:begin (written by bench/run; do not edit by hand) -->"
END = "<!-- bench:end -->"

TARGET = os.path.join(W, "target220")
TARGET0 = os.path.join(W, "target0")     # exits at once: the lean harness
PASSBENCH = os.path.join(W, "passbench")
LOADGEN = os.path.join(W, "loadgen")
PERL_WRAPPER = os.environ.get(
    "BENCH_PERL_WRAPPER",
    os.path.normpath(os.path.join(ROOT, "..", "shared", "anchors", "sendwrap.pl")))
RBLSMTPD = "/usr/bin/rblsmtpd"
TCPSERVER = "/usr/bin/tcpserver"

VARIANTS = ("default", "static")
VNAME = {"default": "dynamic", "static": "static"}

T0 = time.monotonic()
SERVERS = []            # process groups to kill on the way out


def log(msg):
    print("[%6.1fs] %s" % (time.monotonic() - T0, msg), file=sys.stderr, flush=True)


def floor1(v):
    return os.path.join(W, v, "floor1")


def sendwrap(v):
    return os.path.join(ROOT, "build", v, "sendwrap")


# ---------------------------------------------------------------- cleanup

def kill_group(p, sig=signal.SIGTERM):
    try:
        os.killpg(p.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def cleanup():
    for p in SERVERS:
        kill_group(p, signal.SIGKILL)
        try:
            p.wait(timeout=5)
        except Exception:
            pass
    SERVERS.clear()


atexit.register(cleanup)
for _sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(_sig, lambda s, f: sys.exit(128 + s))


# ---------------------------------------------------------------- helpers

def med(xs):
    return statistics.median(xs) if xs else float("nan")


def summary(xs):
    """(median, min, max) of the repetitions."""
    return (med(xs), min(xs), max(xs)) if xs else (float("nan"),) * 3


def fmt(s, digits=3, unit=""):
    m, lo, hi = s
    if m != m:
        return "n/a"
    f = "%%.%df" % digits
    return (f % m) + unit + " [" + (f % lo) + "–" + (f % hi) + "]"


def env_with(extra):
    env = dict(os.environ)
    for k in list(env):
        # Keep the measured programs' decisions to their command lines.
        if k in ("GREETDELAY", "RELAYCLIENT", "RBLSMTPD", "PROTO") or \
                k.startswith("TCP") or k.startswith("SEED_"):
            del env[k]
    env.update(extra)
    return env


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_tcpserver(port, argv, env, conns, backlog,
                    stderr=subprocess.DEVNULL):
    cmd = [TCPSERVER, "-q", "-H", "-R", "-l0", "-c", str(conns), "-b",
           str(backlog), "127.0.0.1", str(port)] + argv
    return start_server(cmd, env, port, stderr)


def start_server(cmd, env, port, stderr=subprocess.DEVNULL):
    """Start cmd, a server that listens on 127.0.0.1:port, in a process
    group of its own (killed on the way out); return once it listens."""
    p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=stderr,
                         start_new_session=True)
    SERVERS.append(p)
    deadline = time.monotonic() + 5
    while not proclib.listening(port):
        if p.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("server did not start: %s" % cmd)
        time.sleep(0.02)
    return p


def stop_tcpserver(p):
    kill_group(p, signal.SIGTERM)
    try:
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        kill_group(p, signal.SIGKILL)
        p.wait(timeout=5)
    # Children left in the group (they hold their own connections).
    kill_group(p, signal.SIGKILL)
    if p in SERVERS:
        SERVERS.remove(p)


def passbench_run(cmds, n, family6=False, limit=120, extra=()):
    """Run bench/passbench on the commands interleaved; its output lines,
    each a dict.  cmds: list of (argv, extra_env, every)."""
    cmd = [PASSBENCH] + (["-6"] if family6 else []) + list(extra) + \
        ["-n", str(n), "-t", str(limit), "--"]
    for i, (argv, env, every) in enumerate(cmds):
        if i:
            cmd.append(":::")
        if every > 1:
            cmd.append("every=%d" % every)
        cmd += ["%s=%s" % kv for kv in sorted(env.items())] + argv
    r = subprocess.run(cmd, env=env_with({}), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=limit + 60)
    lines = [dict(kv.split("=", 1) for kv in line.split())
             for line in r.stdout.splitlines()]
    stats = [d for d in lines if "raw_us" not in d]
    for d in stats:
        if int(d.get("n", 0)) == 0 or int(d.get("failed", 1)) != 0:
            raise RuntimeError("passbench failed for %s: %s %s" %
                               (cmds[int(d["cmd"])][0], d, r.stderr))
    if r.returncode != 0 or len(stats) != len(cmds):
        raise RuntimeError("passbench failed: %s %s" % (r.stdout, r.stderr))
    return lines


def passbench(cmds, n, family6=False, limit=120):
    """Run the commands interleaved, n invocations each (a command with
    every=K: n/K).  cmds: list of (argv, extra_env, every).  Returns a list
    of (median ms, median peak RSS kB, median minor faults, median CPU ms),
    one per command."""
    return [(float(d["median_us"]) / 1000.0, int(d["maxrss_kb"]),
             int(d["minflt"]), float(d["cpu_us"]) / 1000.0)
            for d in passbench_run(cmds, n, family6, limit)
            if "raw_us" not in d]


def passbench_paired(cmds, n, family6=False, limit=120):
    """The lean harness: the target writes nothing (passbench -q); every
    invocation in the order it ran.  Returns (times in µs, minor faults)
    for each command, to be paired invocation by invocation."""
    out = [None] * len(cmds)
    for d in passbench_run([(argv, {}, 1) for argv in cmds], n, family6,
                           limit, extra=("-q", "-r")):
        if "raw_us" in d:
            out[int(d["cmd"])] = ([float(x) for x in d["raw_us"].split(",")],
                                  [int(x) for x in d["raw_flt"].split(",")])
    return out


# ---------------------------------------------------------------- programs

def pass_programs(perl):
    """key -> (label, build, argv, env) for the pass-through path."""
    p = {"floor0": ("floor 0: bare target", "-", [TARGET], {})}
    for v in VARIANTS:
        p["floor1-" + v] = ("floor 1", VNAME[v], [floor1(v), "0", TARGET], {})
        p["sendwrap-d0-" + v] = ("sendwrap -d 0", VNAME[v],
                                 [sendwrap(v), "-d", "0", TARGET], {})
        p["sendwrap-allow-" + v] = (
            "sendwrap -A 127.0.0.0/8 (allowlisted peer)", VNAME[v],
            [sendwrap(v), "-A", "127.0.0.0/8", TARGET], {})
    p["rblsmtpd"] = ('rblsmtpd, RBLSMTPD=""', "Debian",
                     [RBLSMTPD, TARGET],
                     {"RBLSMTPD": "", "TCPREMOTEIP": "127.0.0.1", "PROTO": "TCP"})
    if perl:
        p["perl"] = ("Perl wrapper (SEED_DELAY=0)", "perl",
                     ["/usr/bin/perl", PERL_WRAPPER],
                     {"SEED_EXEC": TARGET, "SEED_DELAY": "0",
                      "SEED_ALLOW": r"^10\.0\.1"})
    return p


# ---------------------------------------------------------------- 1. pass-through

def bench_pass(cfg, perl):
    progs = pass_programs(perl)
    times = {k: [] for k in progs}
    rss = {k: [] for k in progs}
    flt = {k: [] for k in progs}
    cpu = {k: [] for k in progs}
    for r in range(cfg.rounds):
        order = list(progs)
        random.shuffle(order)
        got = passbench([(progs[k][2], progs[k][3],
                          cfg.perl_every if k == "perl" else 1) for k in order],
                        cfg.n_pass)
        for k, (t, m, f, c) in zip(order, got):
            times[k].append(t)
            rss[k].append(m)
            flt[k].append(f)
            cpu[k].append(c)
        log("pass-through round %d/%d done" % (r + 1, cfg.rounds))
    res = {}
    for k, (label, build, argv, env) in progs.items():
        row = {"label": label, "build": build, "ms": summary(times[k]),
               "rss_kb": med(rss[k]), "minflt": med(flt[k]),
               "raw_ms": times[k]}
        added = [t - f0 for t, f0 in zip(times[k], times["floor0"])]
        row["added"] = summary(added)
        row["cpu"] = summary(cpu[k])
        for v in VARIANTS:
            f1 = "floor1-" + v
            row["ratio_cpu_added_" + v] = summary(
                [(t - f0) / (f - f0) if f > f0 else float("inf")
                 for t, f, f0 in zip(cpu[k], cpu[f1], cpu["floor0"])])
            row["ratio_total_" + v] = summary(
                [t / f for t, f in zip(times[k], times[f1])])
            row["ratio_added_" + v] = summary(
                [(t - f0) / (f - f0) if f > f0 else float("inf")
                 for t, f, f0 in zip(times[k], times[f1], times["floor0"])])
        res[k] = row
    return res


# ---------------------------------------------------------------- 2. memory

def hold_measure(argv, env, n, exe):
    """Hold n idle connections; per-connection kB over the waiting processes."""
    port = free_port()
    p = start_tcpserver(port, argv, env, n + 100, min(n + 100, 1024))
    socks = []
    try:
        deadline = time.monotonic() + 25        # well inside the 30 s delay
        for _ in range(n):
            if time.monotonic() > deadline:
                break
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        # Wait until every child is the wrapper itself, sleeping in select.
        ready = proclib.wait_waiting_children(p.pid, exe, len(socks),
                                              deadline - time.monotonic())
        tot, counted = proclib.memory_totals(
            ready, ("Rss", "Pss", "Private_Dirty", "Pss_Anon"))
        per = {key: (val / counted if counted else float("nan"))
               for key, val in tot.items()}
        per["n"] = counted
        per["held"] = len(socks)
        return per
    finally:
        for s in socks:
            s.close()
        # The wrappers see EOF and leave; give them a bounded moment.
        proclib.wait_childless(p.pid, 10)
        stop_tcpserver(p)


def bench_memory(cfg, perl):
    progs = {}
    for v in VARIANTS:
        progs["floor1-" + v] = ("floor 1 (select 30 s)", VNAME[v],
                                [floor1(v), "30", TARGET], {}, floor1(v))
        progs["sendwrap-" + v] = ("sendwrap -d 30", VNAME[v],
                                  [sendwrap(v), "-d", "30", TARGET], {},
                                  sendwrap(v))
    if perl:
        progs["perl"] = ("Perl wrapper (SEED_DELAY=30)", "perl",
                         ["/usr/bin/perl", PERL_WRAPPER],
                         {"SEED_EXEC": TARGET, "SEED_DELAY": "30",
                          "SEED_ALLOW": r"^10\.0\.1"}, "/usr/bin/perl")
    got = {k: [] for k in progs}
    for r in range(cfg.mem_rounds):
        order = list(progs)
        random.shuffle(order)
        for k in order:
            label, build, argv, env, exe = progs[k]
            m = hold_measure(argv, env_with(env), cfg.n_mem,
                             os.path.realpath(exe))
            got[k].append(m)
            log("memory %s: %d/%d waiting, Pss %.1f kB, Private_Dirty %.1f kB"
                % (k, m["n"], m["held"], m["Pss"], m["Private_Dirty"]))
    res = {}
    for k, (label, build, argv, env, exe) in progs.items():
        ms = got[k]
        res[k] = {"label": label, "build": build,
                  "n": min(m["n"] for m in ms),
                  "pss": summary([m["Pss"] for m in ms]),
                  "dirty": summary([m["Private_Dirty"] for m in ms]),
                  "rss": summary([m["Rss"] for m in ms]),
                  "raw": ms}
    return res


# ---------------------------------------------------------------- 3. throughput

def loadgen(port, total, inflight, secs):
    r = subprocess.run([LOADGEN, "127.0.0.1", str(port), str(total),
                        str(inflight), str(secs)],
                       stdout=subprocess.PIPE, text=True, timeout=secs + 30)
    out = dict(kv.split("=") for kv in r.stdout.split())
    return int(out["ok"]), int(out["errors"]), float(out["secs"])


def bench_throughput(cfg, perl):
    progs = {"direct": ("direct: tcpserver → target", "-", [TARGET], {})}
    for v in VARIANTS:
        progs["floor1-" + v] = ("floor 1", VNAME[v], [floor1(v), "0", TARGET], {})
        progs["sendwrap-" + v] = ("sendwrap -d 0", VNAME[v],
                                  [sendwrap(v), "-d", "0", TARGET], {})
    progs["rblsmtpd"] = ('rblsmtpd, RBLSMTPD=""', "Debian", [RBLSMTPD, TARGET],
                         {"RBLSMTPD": ""})
    if perl:
        progs["perl"] = ("Perl wrapper (SEED_DELAY=0)", "perl",
                         ["/usr/bin/perl", PERL_WRAPPER],
                         {"SEED_EXEC": TARGET, "SEED_DELAY": "0",
                          "SEED_ALLOW": r"^10\.0\.1"})
    rates = {k: [] for k in progs}
    cpu = {k: [] for k in progs}
    errors = {k: 0 for k in progs}
    servers = {}
    try:
        for k, (label, build, argv, env) in progs.items():
            port = free_port()
            servers[k] = (port, start_tcpserver(port, argv, env_with(env),
                                                cfg.tp_inflight + 50, 256))
        # Each round gives every program tp_total connections, in
        # tp_chunks slices run in turn (shuffled), so that the load of
        # a busy machine falls on all of them alike.
        chunk = cfg.tp_total // cfg.tp_chunks
        for r in range(cfg.tp_rounds):
            ok = {k: 0 for k in progs}
            secs = {k: 0.0 for k in progs}
            ticks = {k: 0 for k in progs}
            for c in range(cfg.tp_chunks):
                order = list(progs)
                random.shuffle(order)
                for k in order:
                    limit = cfg.tp_secs_perl / cfg.tp_chunks if k == "perl" \
                        else cfg.tp_secs
                    pid = servers[k][1].pid
                    # The server and the children it has reaped (the
                    # wrappers and targets).
                    c0 = proclib.tree_cpu_ticks(pid)
                    o, e, t = loadgen(servers[k][0], chunk, cfg.tp_inflight,
                                      limit)
                    time.sleep(0.05)    # let the server reap the last children
                    ticks[k] += proclib.tree_cpu_ticks(pid) - c0
                    ok[k] += o
                    errors[k] += e
                    secs[k] += t
            for k in progs:
                rates[k].append(ok[k] / secs[k] if secs[k] else 0.0)
                cpu[k].append(ticks[k] * 1000.0 / proclib.HZ / ok[k]
                              if ok[k] else float("nan"))
            log("throughput round %d/%d done" % (r + 1, cfg.tp_rounds))
    finally:
        for port, p in servers.values():
            stop_tcpserver(p)
    res = {}
    for k, (label, build, argv, env) in progs.items():
        row = {"label": label, "build": build, "rate": summary(rates[k]),
               "errors": errors[k], "raw": rates[k], "cpu": summary(cpu[k]),
               "vs_direct": summary([a / b for a, b in
                                     zip(rates[k], rates["direct"])])}
        for v in VARIANTS:
            row["vs_floor1_" + v] = summary(
                [a / b for a, b in zip(rates[k], rates["floor1-" + v])])
            row["cpu_vs_floor1_" + v] = summary(
                [b / a for a, b in zip(cpu[k], cpu["floor1-" + v])])
        res[k] = row
    return res


# ---------------------------------------------------------------- 4. allowlists

SIZES = (0, 1000, 10000, 100000, 1000000)
GEN_VERSION = "3"


def gen_list(path, n, seed, unique=True):
    """n mixed IPv4/IPv6 CIDR entries, none covering 127.0.0.1 or ::1.
    unique: no network twice (as a real list); otherwise short prefixes
    repeat many times over (there are only so many /8 to /16 networks)."""
    rnd = random.Random(seed)
    out = ["# generated by bench/bench.py: %d entries, seed %d%s\n"
           % (n, seed, "" if unique else ", with repeats")]
    seen = set()
    i = 0
    while i < n:
        if rnd.random() < 0.5:
            plen = rnd.randint(8, 32)
            a = rnd.getrandbits(32)
            while a >> 24 in (0, 127):
                a = rnd.getrandbits(32)
            a &= (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF
            cidr = "%d.%d.%d.%d/%d" % (a >> 24, a >> 16 & 255, a >> 8 & 255,
                                      a & 255, plen)
        else:
            plen = rnd.randint(16, 128)
            a = rnd.getrandbits(128) | (1 << 125)   # first group nonzero
            a &= ((1 << 128) - 1) ^ ((1 << (128 - plen)) - 1)
            cidr = ":".join("%x" % (a >> s & 0xFFFF)
                            for s in range(112, -1, -16)) + "/%d" % plen
        if unique:
            if cidr in seen:
                continue
            seen.add(cidr)
        out.append(cidr + (" 2s\n" if i % 10 == 0 else "\n"))
        i += 1
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.writelines(out)
    os.rename(tmp, path)


def list_names(cfg):
    """(name, entries, unique) of the generated lists."""
    names = [("allow-%d" % n, n, True) for n in cfg.sizes]
    if cfg.sizes:
        big = max(cfg.sizes)
        names.append(("allow-%d-repeats" % big, big, False))
    return names


def prepare_lists(cfg):
    os.makedirs(LISTS, exist_ok=True)
    info = {}
    for name, n, unique in list_names(cfg):
        txt = os.path.join(LISTS, name + ".txt")
        cdb = os.path.join(LISTS, name + ".cdb")
        stamp = txt + ".v" + GEN_VERSION
        if not (os.path.exists(txt) and os.path.exists(stamp)):
            gen_list(txt, n, 4242 + n, unique)
            open(stamp, "w").close()
        t = time.monotonic()
        r = subprocess.run([sendwrap("default"), "--compile", txt, cdb],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError("sendwrap --compile %s failed: %s" % (txt, r.stderr))
        info[name] = {"entries": n, "unique": unique,
                      "compile_s": time.monotonic() - t,
                      "txt_bytes": os.path.getsize(txt),
                      "file_bytes": os.path.getsize(cdb)}
        log("allowlist %s: compiled in %.2f s (%d bytes)"
            % (name, info[name]["compile_s"], info[name]["file_bytes"]))
    return info


def list_path(name, compiled=True):
    return os.path.join(LISTS, name + (".cdb" if compiled else ".txt"))


def scaling_confs(cfg):
    """key -> (format, variant, entries, IPv6 peer, argv, key of its
    reference row: the empty list of the same kind, family and build)."""
    big = max(cfg.sizes)
    confs = {}

    def add(key, fmt_, v, n, six, args, base):
        confs[key] = (fmt_, v, n, six, [sendwrap(v), "-d", "0"] + args +
                      [TARGET], base)
    for v in VARIANTS:
        for six, p in ((False, ""), (True, "6")):
            peer = ", IPv6 peer" if six else ""
            add("none%s-%s" % (p, v), "no -a" + peer, v, None, six, [],
                "none%s-%s" % (p, v))
            for n in (cfg.sizes if not six else (0, big)):
                add("comp%s-%d-%s" % (p, n, v), "compiled" + peer, v, n, six,
                    ["-a", list_path("allow-%d" % n)], "comp%s-0-%s" % (p, v))
            # The same size drawn without the uniqueness check: short
            # prefixes repeat many times over.
            add("rep%s-%d-%s" % (p, big, v),
                "compiled, with repeats" + peer, v, big, six,
                ["-a", list_path("allow-%d-repeats" % big)],
                "comp%s-0-%s" % (p, v))
    for n in cfg.sizes:
        if n <= cfg.text_max:
            add("text-%d-default" % n, "text", "default", n, False,
                ["-a", list_path("allow-%d" % n, False)], "text-0-default")
    return confs


def bench_scaling(cfg):
    info = prepare_lists(cfg)
    confs = scaling_confs(cfg)
    times = {k: [] for k in confs}
    faults = {k: [] for k in confs}
    for r in range(cfg.rounds):
        for six in (False, True):
            order = [k for k in confs if confs[k][3] == six]
            random.shuffle(order)
            got = passbench([(confs[k][4], {},
                              cfg.text_every if confs[k][0] == "text" and
                              confs[k][2] >= 10000 else 1) for k in order],
                            cfg.n_scale, family6=six)
            for k, (t, m, f, c) in zip(order, got):
                times[k].append(t)
                faults[k].append(f)
        log("allowlist scaling round %d/%d done" % (r + 1, cfg.rounds))
    res = {}
    for k, (fmt_, v, n, six, argv, base) in confs.items():
        none = "none%s-%s" % ("6" if six else "", v)
        res[k] = {"format": fmt_, "build": VNAME[v], "n": n,
                  "ms": summary(times[k]), "raw": times[k],
                  "minflt": med(faults[k]),
                  "vs_empty": summary([a / b for a, b in
                                       zip(times[k], times[base])]),
                  "decision_us": summary(
                      [(a - b) * 1000 for a, b in
                       zip(times[k], times[none])])}
    return res, info


def lean_lists(cfg):
    """(key, label, argv tail) of the lists the lean harness compares."""
    big = max(cfg.sizes)
    return [("none", "no -a", []),
            ("empty", "compiled, empty", ["-a", list_path("allow-0")]),
            ("big", "compiled, %s" % fmt_n(big),
             ["-a", list_path("allow-%d" % big)]),
            ("rep", "compiled, %s with repeats" % fmt_n(big),
             ["-a", list_path("allow-%d-repeats" % big)])]


def bench_lean(cfg):
    """The lean harness: fork, exec of sendwrap on a connected socket, a
    static target that exits at once; each invocation paired with the
    empty list's next to it (the commands interleaved), the median of the
    n_lean ratios per round."""
    lists = lean_lists(cfg)
    res = {}
    for six in (False, True):
        keys = [(v, k) for v in VARIANTS for k, _, _ in lists]
        argv = {(v, k): [sendwrap(v), "-d", "0"] + tail + [TARGET0]
                for v in VARIANTS for k, _, tail in lists}
        got = {key: {"ratio": [], "us": [], "flt": [], "dflt": []}
               for key in keys}
        for r in range(cfg.rounds):
            order = list(keys)
            random.shuffle(order)
            out = dict(zip(order, passbench_paired(
                [argv[key] for key in order], cfg.n_lean, six)))
            for (v, k) in keys:
                t, f = out[(v, k)]
                t0, f0 = out[(v, "empty")]
                g = got[(v, k)]
                g["ratio"].append(med([a / b for a, b in zip(t, t0)]))
                g["us"].append(med(t))
                g["flt"].append(med(f))
                g["dflt"].append(med([a - b for a, b in zip(f, f0)]))
        for (v, k), g in got.items():
            label = [lab for kk, lab, _ in lists if kk == k][0]
            res["%s-%s-%s" % ("v6" if six else "v4", k, v)] = {
                "label": label, "build": VNAME[v], "six": six,
                "us": summary(g["us"]), "vs_empty": summary(g["ratio"]),
                "minflt": med(g["flt"]), "dflt": med(g["dflt"])}
        log("lean harness (%s) done" % ("IPv6" if six else "IPv4"))
    return res


def fmt_n(n):
    return "{:,}".format(n).replace(",", " ")


def plot_scaling(res, sizes, path):
    data = os.path.join(W, "scaling.dat")
    series = [("comp-%d-default", "compiled, dynamic build"),
              ("comp-%d-static", "compiled, static build"),
              ("text-%d-default", "text file, dynamic build"),
              ("rep-%d-default", "compiled, list with repeated entries, dynamic"),
              ("comp6-%d-default", "compiled, IPv6 peer, dynamic")]
    with open(data, "w") as f:
        for i, (pat, title) in enumerate(series):
            f.write("# %s\n" % title)
            for n in sizes:
                if n and (pat % n) in res:
                    r = res[pat % n]
                    f.write("%d %.4f %.4f %.4f\n" % (n, r["ms"][0], r["ms"][1],
                                                     r["ms"][2]))
            f.write("\n\n")
    base = res["comp-0-default"]["ms"][0]
    sbase = res["comp-0-static"]["ms"][0]
    plots = []
    for i, (pat, title) in enumerate(series):
        if any(n and (pat % n) in res for n in sizes):
            colour = ("#7b2cbf", "#2a9d8f", "#4cc9f0", "#d62828", "#3a0ca3")[i]
            style = "yerrorlines lw 2 pt 7" if i < 3 else \
                "yerrorbars lw 2 pt %d ps 1.5" % (9 if i == 3 else 5)
            plots.append("'%s' index %d using 1:2:3:4 with %s lc rgb '%s' "
                         "title '%s'" % (data, i, style, colour, title))
    plots.append("%f with lines dt 2 lw 1.5 lc rgb 'gray30' title "
                 "'empty allowlist, dynamic (%.3f ms)'" % (base, base))
    plots.append("%f with lines dt 2 lw 1.5 lc rgb 'gray60' title "
                 "'empty allowlist, static (%.3f ms)'" % (sbase, sbase))
    plots.append("%f with lines dt 4 lw 2 lc rgb 'red' title "
                 "'bar at 1 000 000 entries: 1.2x empty (dynamic)'"
                 % (1.2 * base))
    script = "\n".join([
        "set terminal pngcairo size 900,680 font 'sans,10'",
        "set output '%s'" % path,
        "set title 'sendwrap: per-connection cost against allowlist size "
        "(stranger peer, pass-through, -d 0)'",
        "set logscale xy",
        "set xrange [500:2000000]",
        "set format x '10^{%L}'",
        "set xlabel 'allowlist entries (mixed IPv4/IPv6)' offset 0,0.5",
        "set bmargin 10",
        "set ylabel 'wall time per invocation, ms (median, min-max)'",
        "set key outside below center maxrows 5 box",
        "set yrange [*:*]",
        "set grid",
        "plot " + ", \\\n  ".join(plots),
    ])
    r = subprocess.run(["gnuplot"], input=script, text=True,
                       stderr=subprocess.PIPE)
    if r.returncode != 0:
        log("gnuplot failed: %s" % r.stderr)


# ---------------------------------------------------------------- extras

def callgrind_ir(argv, env, six=False):
    out = os.path.join(W, "callgrind.out")
    for f in os.listdir(W):
        if f.startswith("callgrind.out"):
            os.unlink(os.path.join(W, f))
    cmd = ["/usr/bin/valgrind", "--tool=callgrind", "--dump-before=execve",
           "--callgrind-out-file=" + out] + argv
    passbench([(cmd, env, 1)], 1, family6=six, limit=60)
    with open(out + ".1") as f:
        for line in f:
            if line.startswith("summary:"):
                return int(line.split()[1])
    return None


def strace_calls(argv, env):
    out = os.path.join(W, "strace.out")
    passbench([(["/usr/bin/strace", "-f", "-c", "-o", out, "--"] + argv, env, 1)],
              1, limit=60)
    with open(out) as f:
        for line in f:
            parts = line.split()
            if parts and parts[-1] == "total":
                return int(parts[3])
    return None


def bench_extras(cfg, perl):
    progs = pass_programs(perl)
    res = {"callgrind": {}, "strace": {}}
    have_vg = subprocess.run(["which", "valgrind"], stdout=subprocess.DEVNULL).returncode == 0
    have_st = subprocess.run(["which", "strace"], stdout=subprocess.DEVNULL).returncode == 0
    keys = [k for k in progs if k not in ("floor0", "perl")]
    for k in keys:
        label, build, argv, env = progs[k]
        if have_vg:
            res["callgrind"][k] = callgrind_ir(argv, env)
    if have_vg and cfg.sizes:
        big = max(cfg.sizes)
        for n, name in ((0, "allow-0"), (big, "allow-%d" % big),
                        (big, "allow-%d-repeats" % big)):
            res["callgrind"]["sendwrap-comp-%s-default" % name] = callgrind_ir(
                [sendwrap("default"), "-d", "0", "-a", list_path(name),
                 TARGET], {})
    if have_st:
        for k in ["floor0"] + keys + (["perl"] if perl else []):
            label, build, argv, env = progs[k]
            res["strace"][k] = strace_calls(argv, env)
    log("extras done")
    return res


# ---------------------------------------------------------------- report

def verdict(ok):
    return "**PASS**" if ok else "**FAIL**"


def report(cfg, meta, P, M, T, S, info, X, LN):
    L = []
    a = L.append
    a(BEGIN)
    a("")
    a("Measured %s on %s (%s, %d cores, load average at start %s), "
      "commit %s%s. %s" % (
          meta["date"], meta["host"], meta["cpu"], meta["cores"],
          meta["loadavg"], meta["commit"], meta["dirty"],
          "Quick run (development sizes): figures are indicative only."
          if cfg.quick else "Full run."))
    a("Whole run: %.0f s." % (time.monotonic() - T0))
    a("")
    targets = []

    if P:
        a("### 1. Pass-through cost per invocation")
        a("")
        a("stdin/stdout a connected loopback TCP socket, the wrapper execs the "
          "static target (writes a 220 line, exits). %d rounds × %d invocations "
          "(Perl: every %dth), all programs interleaved invocation by "
          "invocation; per round the median invocation; below the median of "
          "the rounds [min–max]. *added* = over floor 0 (the bare target); "
          "ratios are paired per round against floor 1 of the same build. "
          "*CPU* is the user + system time of the invocation (wait4), less "
          "disturbed by other load than wall time; its added part is again "
          "paired against floor 1 of the same build. "
          "Peak RSS is ru_maxrss (the larger of wrapper and target); page "
          "faults are the minor faults of the whole invocation (ru_minflt)." %
          (cfg.rounds, cfg.n_pass, cfg.perl_every))
        a("")
        a("| program | build | wall ms | added ms | added ÷ floor 1 dyn | "
          "added ÷ floor 1 static | total ÷ floor 1 (same build) | CPU ms | "
          "CPU added ÷ floor 1 (same build) | peak RSS kB | page faults |")
        a("|---|---|---|---|---|---|---|---|---|---|---|")
        for k, r in P.items():
            same = "static" if r["build"] == "static" else "default"
            a("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %d |" % (
                r["label"], r["build"], fmt(r["ms"]), fmt(r["added"]),
                fmt(r["ratio_added_default"], 2), fmt(r["ratio_added_static"], 2),
                fmt(r["ratio_total_" + same], 2), fmt(r["cpu"]),
                fmt(r["ratio_cpu_added_" + same], 2), r["rss_kb"], r["minflt"]))
        a("")
        for v in VARIANTS:
            for kind in ("d0", "allow"):
                r = P["sendwrap-%s-%s" % (kind, v)]
                x = r["ratio_added_" + v][0]
                targets.append((
                    "Pass-through cost (%s, %s) ≤ 1.25× floor 1" %
                    ("-d 0" if kind == "d0" else "allowlisted peer", VNAME[v]),
                    "%.2f× added wall (%.2f× total; CPU added %.2f×)" % (
                        x, r["ratio_total_" + v][0], r["ratio_cpu_added_" + v][0]),
                    x <= 1.25))
            if "perl" in P:
                sw = P["sendwrap-d0-" + v]["added"][0]
                x = P["perl"]["added"][0] / sw if sw > 0 else float("inf")
                targets.append(("Pass-through cost (%s) ≥ 10× below Perl" %
                                VNAME[v], "%.1f× below" % x, x >= 10))

    if M:
        a("### 2. Memory per waiting connection")
        a("")
        a("tcpserver -c %d, %d idle client connections held while each wrapper "
          "waits out a 30 s delay; Pss, Private_Dirty and Rss summed from "
          "/proc/PID/smaps_rollup over the waiting processes, divided by their "
          "number. %d rounds, median [min–max], kB per connection." %
          (cfg.n_mem + 100, cfg.n_mem, cfg.mem_rounds))
        a("")
        a("| program | build | waiting | Pss kB | Private_Dirty kB | Rss kB | "
          "Pss ÷ floor 1 (same build) |")
        a("|---|---|---|---|---|---|---|")
        for k, r in M.items():
            v = "static" if r["build"] == "static" else "default"
            a("| %s | %s | %d | %s | %s | %s | %.2f |" % (
                r["label"], r["build"], r["n"], fmt(r["pss"], 1),
                fmt(r["dirty"], 1), fmt(r["rss"], 0),
                r["pss"][0] / M["floor1-" + v]["pss"][0]))
        a("")
        for v in VARIANTS:
            x = M["sendwrap-" + v]["pss"][0] / M["floor1-" + v]["pss"][0]
            targets.append(("Pss per waiting connection (%s) ≤ 1.25× floor 1"
                            % VNAME[v], "%.2f×" % x, x <= 1.25))
            if "perl" in M:
                x = M["perl"]["pss"][0] / M["sendwrap-" + v]["pss"][0]
                targets.append(("Pss (%s) ≥ 15× below Perl" % VNAME[v],
                                "%.1f× below" % x, x >= 15))

    if T:
        a("### 3. Throughput through tcpserver at delay 0")
        a("")
        a("loadgen: per round %d connections to each program (Perl: as many "
          "as fit in %d s), %d in flight, each reads the 220 line and the "
          "close; run as %d slices of %d connections, the programs taking "
          "turns slice by slice in shuffled order; connections/s = "
          "connections ÷ time summed over the slices. %d rounds, median "
          "[min–max]; ratios paired per round." %
          (cfg.tp_total, cfg.tp_secs_perl, cfg.tp_inflight, cfg.tp_chunks,
           cfg.tp_total // cfg.tp_chunks, cfg.tp_rounds))
        a("")
        a("*CPU ms per connection* is the CPU time of the tcpserver and every "
          "process it ran (its utime, stime, cutime and cstime), divided by "
          "the connections: what a connection costs the machine whatever else "
          "runs on it; *capacity ÷ floor 1* is floor 1's CPU per connection "
          "divided by the program's (the throughput ratio on a machine doing "
          "nothing else).")
        a("")
        a("| program | build | connections/s | ÷ direct | ÷ floor 1 (same build) "
          "| CPU ms per connection | capacity ÷ floor 1 (CPU basis) | errors |")
        a("|---|---|---|---|---|---|---|---|")
        for k, r in T.items():
            v = "static" if r["build"] == "static" else "default"
            a("| %s | %s | %s | %s | %s | %s | %s | %d |" % (
                r["label"], r["build"], fmt(r["rate"], 0), fmt(r["vs_direct"], 2),
                fmt(r["vs_floor1_" + v], 2), fmt(r["cpu"], 3),
                fmt(r["cpu_vs_floor1_" + v], 2), r["errors"]))
        a("")
        for v in VARIANTS:
            x = T["sendwrap-" + v]["vs_floor1_" + v][0]
            targets.append(("Throughput at delay 0 (%s) ≥ 0.9× floor 1" % VNAME[v],
                            "%.2f× (CPU basis %.2f×)" % (
                                x, T["sendwrap-" + v]["cpu_vs_floor1_" + v][0]),
                            x >= 0.9))

    if S:
        a("### 4. Allowlist scaling (a stranger: the peer matches no entry)")
        a("")
        a("sendwrap -d 0 -a LIST, peer 127.0.0.1 (IPv6 rows: ::1), mixed "
          "IPv4/IPv6 entries with random prefix lengths (/8–/32, /16–/128: "
          "every prefix length in use), the target of section 1 (writes a "
          "220 line). *Compiled*: `sendwrap --compile`, an LMDB interval "
          "table; *text*: parsed on every connection. Wall ms per "
          "invocation, %d rounds of %d; *÷ empty* is paired round by round "
          "against the empty list of the same format, peer family and "
          "build; *decision µs* = minus the same build and peer without -a; "
          "page faults are the minor faults of the whole invocation."
          % (cfg.rounds, cfg.n_scale))
        if "load_scaling" in meta:
            a("")
            a("Load average when this section started: %s (it runs before "
              "sections 2 and 3)." % meta["load_scaling"])
        a("")
        a("| format | build | entries | wall ms | ÷ empty | decision µs "
          "| page faults |")
        a("|---|---|---|---|---|---|---|")
        for k, r in S.items():
            a("| %s | %s | %s | %s | %s | %s | %d |" % (
                r["format"], r["build"],
                "—" if r["n"] is None else fmt_n(r["n"]),
                fmt(r["ms"]), fmt(r["vs_empty"], 2), fmt(r["decision_us"], 0),
                r["minflt"]))
        a("")
        if info:
            a("Compiling (sendwrap --compile): " + "; ".join(
                "%s entries%s %.2f s, %.1f MB" % (
                    fmt_n(i["entries"]),
                    "" if i["unique"] else " (with repeats)", i["compile_s"],
                    i["file_bytes"] / 1e6)
                for i in info.values() if i["entries"]) + ".")
            a("")
        a("![allowlist scaling](bench/allowlist-scaling.png)")
        a("")
        for n, lim in ((100000, 2), (1000000, 5)):
            for v in VARIANTS:
                r = S.get("comp-%d-%s" % (n, v))
                if r:
                    x = r["vs_empty"][0]
                    targets.append((
                        "Stranger lookup, %s entries, compiled (%s) ≤ %d× "
                        "empty (issue 4)" % (fmt_n(n), VNAME[v], lim),
                        "%.2f×" % x, x <= lim))
        for v in VARIANTS:
            for key, what in (("comp-%d-%s", "IPv4 peer"),
                              ("comp6-%d-%s", "IPv6 peer"),
                              ("rep-%d-%s", "IPv4 peer, repeats"),
                              ("rep6-%d-%s", "IPv6 peer, repeats")):
                r = S.get(key % (max(cfg.sizes), v))
                if r:
                    x = r["vs_empty"][0]
                    targets.append((
                        "Stranger lookup, %s entries, %s (%s) ≤ 1.2× empty "
                        "(issue 12)" % (fmt_n(max(cfg.sizes)), what, VNAME[v]),
                        "%.2f× (faults %d vs %d)" % (
                            x, r["minflt"], S[(key % (0, v)).replace(
                                "rep", "comp")]["minflt"]), x <= 1.2))

    if LN:
        a("### 4b. Allowlist scaling, lean harness")
        a("")
        a("The same lists, with less fixed cost around the lookup: fork, "
          "exec of sendwrap -d 0 on a connected loopback socket, exec of a "
          "static target that exits at once (`bench/target0.c`), reaped. All "
          "the commands of one peer family interleaved invocation by "
          "invocation, %d rounds of %d; *÷ empty* pairs each invocation with "
          "the empty compiled list's next to it and takes the median of the "
          "%d ratios, then the median of the rounds [min–max]. Page faults: "
          "the median invocation's, and the median paired difference from "
          "the empty list." % (cfg.rounds, cfg.n_lean, cfg.n_lean))
        a("")
        a("| list | build | peer | wall µs | ÷ empty | page faults "
          "| faults over empty |")
        a("|---|---|---|---|---|---|---|")
        for k, r in LN.items():
            a("| %s | %s | %s | %s | %s | %d | %+d |" % (
                r["label"], r["build"], "::1" if r["six"] else "127.0.0.1",
                fmt(r["us"], 0), fmt(r["vs_empty"], 3), r["minflt"],
                r["dflt"]))
        a("")
        for k, r in LN.items():
            if k.split("-")[1] in ("big", "rep"):
                x = r["vs_empty"][0]
                targets.append((
                    "Lean harness: %s, %s peer (%s) ≤ 1.2× empty "
                    "(issue 12)" % (
                        r["label"], "IPv6" if r["six"] else "IPv4",
                        r["build"]),
                    "%.3f× (faults %+d)" % (x, r["dflt"]), x <= 1.2))

    if X and (X["callgrind"] or X["strace"]):
        a("### Deterministic extras: instructions and system calls")
        a("")
        a("Instructions executed from process start to the execve of the "
          "target (valgrind --tool=callgrind --dump-before=execve; includes "
          "the dynamic loader), and system calls of the whole invocation "
          "(strace -f -c, wrapper and target; floor 0 is the target alone).")
        a("")
        a("| program | build | instructions to execve | ÷ floor 1 (same build) "
          "| syscalls |")
        a("|---|---|---|---|---|")
        progs = pass_programs(True)
        cg, st = X["callgrind"], X["strace"]
        for k in list(progs) + [k for k in cg if k.startswith("sendwrap-comp")]:
            if k not in cg and k not in st:
                continue
            if k in progs:
                label, build = progs[k][0], progs[k][1]
            else:
                name = k[len("sendwrap-comp-"):-len("-default")]
                parts = name.split("-")
                label, build = "sendwrap -d 0 -a %s-entry compiled list%s" % (
                    fmt_n(int(parts[1])), ", with repeats"
                    if len(parts) > 2 else ""), "dynamic"
            v = "static" if build == "static" else "default"
            ir = cg.get(k)
            f1 = cg.get("floor1-" + v)
            a("| %s | %s | %s | %s | %s |" % (
                label, build, "{:,}".format(ir).replace(",", " ") if ir else "—",
                "%.2f" % (ir / f1) if ir and f1 else "—",
                st.get(k, "—") if st.get(k) is not None else "—"))
        a("")

    a("### Targets")
    a("")
    a("| target | measured | verdict |")
    a("|---|---|---|")
    for name, val, ok in targets:
        a("| %s | %s | %s |" % (name, val, verdict(ok)))
    a("")
    a(END)
    return "\n".join(L), targets


def write_md(section):
    if os.path.exists(MD):
        with open(MD) as f:
            text = f.read()
    else:
        text = "# sendwrap benchmarks\n\nRun `bench/run` (or `make bench`).\n\n" \
               "## Figures\n\n%s\n%s\n" % (BEGIN, END)
    i, j = text.find(BEGIN), text.find(END)
    if i < 0 or j < 0:
        text = text.rstrip("\n") + "\n\n## Figures\n\n" + BEGIN + "\n" + END + "\n"
        i, j = text.find(BEGIN), text.find(END)
    text = text[:i] + section + text[j + len(END):]
    tmp = MD + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, MD)


def meta_info():
    def sh(cmd):
        try:
            return subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True).stdout.strip()
        except OSError:
            return ""
    return {"date": time.strftime("%Y-%m-%d %H:%M %Z"),
            "host": "Linux " + platform.release(),
            "cpu": proclib.cpu_model() or "unknown CPU",
            "cores": os.cpu_count(), "loadavg": proclib.loadavg(),
            "commit": sh(["git", "rev-parse", "--short", "HEAD"]) or "?",
            "dirty": " (work tree modified)" if sh(["git", "status", "--porcelain",
                                                    "--untracked-files=no"]) else ""}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="small sizes for development; figures indicative only")
    ap.add_argument("--only", default="pass,memory,throughput,scaling,extras",
                    help="comma-separated subset of the sections")
    ap.add_argument("--no-write", action="store_true",
                    help="print only; leave BENCHMARKS.md and the plot alone")
    cfg = ap.parse_args()
    only = set(cfg.only.split(","))
    if cfg.quick:
        cfg.rounds, cfg.n_pass, cfg.perl_every = 3, 60, 5
        cfg.n_mem, cfg.mem_rounds = 50, 1
        cfg.tp_total, cfg.tp_inflight, cfg.tp_rounds, cfg.tp_chunks = 500, 50, 1, 5
        cfg.tp_secs, cfg.tp_secs_perl = 10, 3
        cfg.sizes, cfg.text_max, cfg.n_scale = (0, 1000, 10000, 100000), 10000, 40
        cfg.text_every, cfg.n_lean = 4, 60
    else:
        cfg.rounds, cfg.n_pass, cfg.perl_every = 7, 200, 5
        cfg.n_mem, cfg.mem_rounds = 500, 3
        cfg.tp_total, cfg.tp_inflight, cfg.tp_rounds, cfg.tp_chunks = 5000, 50, 3, 10
        cfg.tp_secs, cfg.tp_secs_perl = 30, 8
        cfg.sizes, cfg.text_max, cfg.n_scale = SIZES, 10000, 150
        cfg.text_every, cfg.n_lean = 4, 300
    random.seed(1)
    perl = os.path.exists(PERL_WRAPPER)
    if not perl:
        log("no Perl wrapper at %s: its rows are left out" % PERL_WRAPPER)
    meta = meta_info()
    P = M = T = S = X = LN = None
    info = {}
    # Scaling runs before memory and throughput: those start hundreds of
    # processes, and the load they leave behind takes minutes to settle.
    if "pass" in only:
        P = bench_pass(cfg, perl)
    if "scaling" in only:
        meta["load_scaling"] = proclib.loadavg()
        S, info = bench_scaling(cfg)
        LN = bench_lean(cfg)
    if "memory" in only:
        M = bench_memory(cfg, perl)
    if "throughput" in only:
        T = bench_throughput(cfg, perl)
    if "extras" in only:
        if "scaling" not in only:
            cfg.sizes = ()
        X = bench_extras(cfg, perl)
    section, targets = report(cfg, meta, P, M, T, S, info, X, LN)
    print(section.replace(BEGIN, "").replace(END, "").strip())
    with open(os.path.join(W, "results.json"), "w") as f:
        json.dump({"meta": meta, "pass": P, "memory": M, "throughput": T,
                   "scaling": S, "compile": info, "lean": LN, "extras": X},
                  f, indent=1, default=str)
    if not cfg.no_write:
        if S:
            plot_scaling(S, cfg.sizes, PNG)
        write_md(section)
        log("wrote %s%s" % (MD, " and " + PNG if S else ""))
    failed = [t for t in targets if not t[2]]
    log("%d targets, %d pass, %d fail" % (len(targets), len(targets) - len(failed),
                                          len(failed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
