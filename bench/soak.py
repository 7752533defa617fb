"""bench/soak.py - the listener over a long mixed load (tests/soaklib.py:
bots, hang-ups, greylisted clients, their passing retries, the same
cached, allowlisted clients), at most 500 at once: its memory after the
first 10 000 connections, every 10 000 after, and idle at the end; its
descriptors, timers and children back to idle; every client's outcome
against its verdict line.  Run by bench/soak (make bench-soak); see
BENCHMARKS.md.

    soak.py ROOT WORKDIR QUICK

200 000 connections, or 20 000 with QUICK (as tests/e2e/test_soak.py).
The listener runs in a process group of its own, killed on any way out.
Prints the report and keeps it (report.md) and the figures
(results.json) in WORKDIR; exit status 1 when a check failed.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests"))
import proclib  # noqa: E402  (tests/proclib.py)
import soaklib  # noqa: E402  (tests/soaklib.py: the mix and the checks)

ROOT, W, QUICK = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
TOTAL = int(os.environ.get("BENCH_SOAK_CONNECTIONS",
                           20000 if QUICK else 200000))
FIRST = min(10000, TOTAL // 2)
SENDWRAP = os.path.join(ROOT, "build", "default", "sendwrap")
GROUP = []


def start_listener(cache, logpath):
    for f in (cache, cache + "-lock"):
        if os.path.exists(f):
            os.unlink(f)
    with open(logpath, "wb") as logf:
        p = subprocess.Popen(
            [SENDWRAP, "--listen", "127.0.0.1:0", "-l", "stderr"] +
            soaklib.listener_args(cache) + ["--", os.path.join(W, "target220")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=logf,
            start_new_session=True)
    GROUP.append(p.pid)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(logpath, errors="replace") as f:
            m = re.search(r"listening on=127\.0\.0\.1:(\d+)", f.read())
        if m:
            return p, int(m.group(1))
        time.sleep(0.1)
    raise SystemExit("bench/soak: the listener did not start")


def log_lines(logpath):
    with open(logpath, errors="replace") as f:
        return [l[len("sendwrap: "):] for l in f.read().splitlines()
                if l.startswith("sendwrap: ")]


def report(fig, checks, info):
    out = []
    p = out.append
    m = fig["mix"]
    p("Measured %s on %s, load average at start %s, at end %s; %d "
      "connections in %.1f s (%.0f a second), at most %d at once; the "
      "listener's CPU %.1f s." % (
          info["date"], info["machine"], info["load_start"],
          info["load_end"], fig["total"], m["secs"],
          fig["total"] / m["secs"], m["peak_inflight"], info["cpu_s"]))
    p("")
    p("| after | VmRSS kB | anonymous kB | file kB | Private_Dirty kB | "
      "heap kB | descriptors | children |")
    p("|---|---|---|---|---|---|---|---|")
    rows = ([("idle, before", fig["idle"]["memory"],
              len(fig["idle"]["fds"]), 0)] +
            [("%d" % s["after"], s["memory"], s["fds"], s["children"])
             for s in fig["samples"]] +
            [("idle, at the end", fig["end"]["memory"],
              len(fig["end"]["fds"]), len(fig["end"]["children"]))])
    for name, mem, fds, kids in rows:
        p("| %s | %d | %d | %d | %d | %d | %d | %d |" % (
            name, mem["VmRSS"], mem["RssAnon"], mem["RssFile"],
            mem["Private_Dirty"], mem["heap"], fds, kids))
    p("")
    p("| kind | sent | as it should | verdict lines |")
    p("|---|---|---|---|")
    cls = {"bot": "bot", "hangup": "hangup", "grey": "pool", "pass": "pool",
           "allow": "allow", "cached": "pool"}
    for kind in soaklib.KINDS:
        p("| %s | %d | %d | %d `%s` |" % (
            kind, m["sent"].get(kind, 0), m["ok"].get(kind, 0),
            fig["verdicts"].get("%s %s" % (soaklib.VERDICT[kind],
                                           cls[kind]), 0),
            soaklib.VERDICT[kind]))
    p("")
    p("Hang-ups sent as a reset: %d (log: %d); pool addresses used: %d; "
      "cached turns skipped as too late: %d; the cache file at the end: "
      "%d kB; other log lines: %d; the loop at the end (gdb): %s; the "
      "program's greeting after (median / max): %s." % (
          m["resets"], fig["verdicts"].get("hangup how=reset hangup", 0),
          m["pool_used"], m["cached_skipped"], info["cache_kb"],
          fig["odd_count"], fig["end"]["loop"], ", ".join(
              "%s %.3f / %.3f s" % (k, m["latency"][k][1],
                                    m["latency"][k][0])
              for k in ("allow", "pass", "cached") if k in m["latency"])))
    p("")
    p("| check | measured | verdict |")
    p("|---|---|---|")
    for what, ok, measured in checks:
        p("| %s | %s | **%s** |" % (what, measured.replace("|", "/"),
                                   "PASS" if ok else "FAIL"))
    return "\n".join(out) + "\n"


def main():
    cache = os.path.join(W, "cache.mdb")
    logpath = os.path.join(W, "listener.log")
    info = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": "Linux %s, %d cores" % (os.uname().release,
                                               os.cpu_count()),
            "load_start": proclib.loadavg()}
    lst, port = start_listener(cache, logpath)
    print("bench/soak: %d connections against the listener (pid %d, port "
          "%d)" % (TOTAL, lst.pid, port), file=sys.stderr, flush=True)
    fig, checks = soaklib.soak(
        lst.pid, port, lambda: log_lines(logpath), cache, TOTAL,
        first=FIRST, every=10000 if not QUICK else 2000,
        deadline_s=600 if not QUICK else 120)
    info["cpu_s"] = proclib.cpu_seconds(lst.pid)[1]
    info["cache_kb"] = os.path.getsize(cache) // 1024
    info["load_end"] = proclib.loadavg()
    stop()
    text = report(fig, checks, info)
    with open(os.path.join(W, "results.json"), "w") as f:
        json.dump({"figures": fig, "checks": checks, "info": info}, f,
                  indent=1, default=str)
    with open(os.path.join(W, "report.md"), "w") as f:
        f.write(text)
    print(text)
    return 0 if all(ok for _, ok, _ in checks) else 1


def stop():
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pg in GROUP:
            try:
                os.killpg(pg, sig)
            except ProcessLookupError:
                pass
        time.sleep(1)
    del GROUP[:]


signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
signal.signal(signal.SIGHUP, lambda *_: sys.exit(129))
try:
    sys.exit(main())
except KeyboardInterrupt:
    sys.exit(130)
finally:
    stop()
