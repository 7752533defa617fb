"""The listener under a long mixed load must not grow: 20 000 connections
(E2E_SOAK_CONNECTIONS), at most 500 at once, against one sendwrap
--listen in front of the static bench/target220 (greets and exits):
blind bots, hang-ups, greylisted clients in sendwrap's own dialog, their
retries that pass, the same addresses cached, and allowlisted clients
(tests/soaklib.py says which is which, and what each must get).  Run by
tests/e2e/run-load (make check-load); bench/soak runs 200 000.

Checked: every client got what its kind should, and the log holds one
verdict line of that kind for each (counted by the source address's
block); the listener started exactly one process for each client handed
to the program (counted in its PID namespace); its RSS in load near the
end and idle at the end within 10 % of what it was after the first
10 000; its descriptors back to the idle ones (and the cache's files);
its timers, clients, children and queues back to empty (read from the
running process by gdb); no child left, no zombie.
"""

import os
import resource
import subprocess
import sys

from e2elib import Listener

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
import soaklib  # noqa: E402  (tests/soaklib.py)

N = int(os.environ.get("E2E_SOAK_CONNECTIONS", "20000"))
FIRST = min(10000, N // 2)
REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def test_soak_the_listener_comes_back_to_idle(wd):
    target = os.path.join(wd, "target220")
    subprocess.run(["cc", "-O2", "-static", "-o", target,
                    os.path.join(REPO, "bench", "target220.c")], check=True,
                   timeout=60)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 2048), hard))
    cache = os.path.join(wd, "cache.mdb")
    lst = Listener(wd, soaklib.listener_args(cache), [target])
    lst.forks()
    fig, checks = soaklib.soak(lst.sendwrap_pid, lst.port,
                               lst.sendwrap_lines, cache, N, first=FIRST,
                               every=max(1000, N // 10),
                               deadline_s=60 + N / 200, idle_s=30)
    forks = lst.forks()
    sent = fig["mix"]["sent"]
    programs = sum(sent.get(k, 0) for k in ("pass", "allow", "cached"))
    checks.append(("one process started for each client handed over",
                   forks == programs, "%d started for %d" % (forks, programs)))

    m = fig["mix"]
    print("\nsoak: %d connections in %.1f s, at most %d at once; sent %r"
          % (N, m["secs"], m["peak_inflight"], sent))
    for s in ([dict(after="idle", **fig["idle"]["memory"])] +
              [dict(after=s["after"], **s["memory"])
               for s in fig["samples"]] +
              [dict(after="end", **fig["end"]["memory"])]):
        print("soak: after %-6s VmRSS %5d kB (anon %4d, file %4d), "
              "Private_Dirty %4d, heap %4d" % (
                  s["after"], s["VmRSS"], s["RssAnon"], s["RssFile"],
                  s["Private_Dirty"], s["heap"]))
    for what, ok, measured in checks:
        print("soak: %s %s: %s" % ("ok  " if ok else "FAIL", what, measured))
    failed = [what for what, ok, _ in checks if not ok]
    assert not failed, failed
    assert lst.proc.poll() is None, "the listener exited"
