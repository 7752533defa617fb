"""bench/benchlib.py - what bench/listener.py and bench/peers.py share:
running bench/crowd.c, a median with its range, and keeping the results.
Import it from beside those scripts (their own folder is on sys.path)."""

import json
import os
import signal
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests"))
import proclib  # noqa: E402  (tests/proclib.py: /proc for tests and bench)


def parse_crowd(text):
    """crowd's result line (total= right= ... cpums=) as {key: float}."""
    return {k: float(v) for k, v in (kv.split("=") for kv in text.split())}


def run_crowd(binary, port, total, *opts, timeout=300):
    """crowd OPTS 127.0.0.1 PORT TOTAL; its result, or SystemExit."""
    r = subprocess.run([binary] + list(opts) + ["127.0.0.1", str(port),
                                                str(total)],
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise SystemExit("crowd failed: %s" % r.stderr)
    return parse_crowd(r.stdout)


def threads_cpu(pid):
    """A live process's CPU seconds, every thread's (schedstat: the
    process's own /proc/PID/schedstat is its first thread's alone)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
            total += int(f.read().split()[0])
    return total / 1e9


def fmt(vals, f="%.2f"):
    """The median of vals [min–max], each with format f."""
    return (f + " [" + f + "–" + f + "]") % (
        statistics.median(vals), min(vals), max(vals))


def save(workdir, res, info, report):
    """Note the load at the end in info, keep res (with info) in
    workdir/results.json and report(res, info), the tables, in
    workdir/report.md, and print them."""
    info["load_end"] = proclib.loadavg()
    res["info"] = info
    with open(os.path.join(workdir, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    text = report(res, info)
    with open(os.path.join(workdir, "report.md"), "w") as f:
        f.write(text)
    print(text)


def run_main(main, cleanup):
    """main(), then cleanup() on any way out: SIGTERM and SIGHUP end the
    run as an exit would (status 143, 129), Ctrl-C with 130."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(129))
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        cleanup()
