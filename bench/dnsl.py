#!/usr/bin/python3
"""dnsl.py - the measurements of bench/dnsl-bench (see its header).

Three lists are asked, all served by a dnsmasq on loopback: bl.test,
bl2.test and wl.test for the time to greeting of 127.0.0.3 (on wl.test;
PROTO and TCPREMOTEIP say who the client is), three zones that list
nobody for the CPU and memory, so that every query is answered and
every client waits.
"""
import json
import os
import random
import socket
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, HERE)
import bench  # noqa: E402  (bench/bench.py: passbench, tcpserver, memory)
import proclib  # noqa: E402
from dnsserver import DNS  # noqa: E402

W, ROUNDS, N, HELD = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
    int(sys.argv[4])
TARGET = os.path.join(W, "target220")
bench.PASSBENCH = os.path.join(W, "passbench")
VARIANTS = ("default", "static")


def peer(ip):
    return {"PROTO": "TCP", "TCPREMOTEIP": ip, "TCPREMOTEPORT": "2525"}


def lists(dns, listing=True):
    """Three lists; with listing=False three that list nobody (tcpserver
    gives every client of the memory test the address 127.0.0.1)."""
    z = ("bl.test", "bl2.test", "wl.test") if listing else \
        ("none1.test", "none2.test", "none3.test")
    return ["--dnsbl", z[0], "--dnsbl", z[1] + "*2", "--dnswl", z[2],
            "--dns-server", dns.server]


def dns_rtt(dns, n=200):
    """Median round trip of one A query to the server, in ms."""
    q = (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
         + b"".join(bytes([len(p)]) + p.encode()
                    for p in "3.0.0.127.wl.test".split("."))
         + b"\x00\x00\x01\x00\x01")
    times = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1)
        for _ in range(n):
            t0 = time.monotonic()
            s.sendto(q, ("127.0.0.1", dns.port))
            s.recv(512)
            times.append((time.monotonic() - t0) * 1000)
    return statistics.median(times)


def programs(dns):
    p = {}
    for v in VARIANTS:
        sw = bench.sendwrap(v)
        # Time to greeting: an allow-listed client, a 5 s delay it does
        # not wait, against -d 0 without lists (no wait, no lookup).
        p["plain-" + v] = ([sw, "-d", "0", TARGET], peer("127.0.0.3"))
        p["dnswl-" + v] = ([sw, "-d", "5", *lists(dns), TARGET],
                           peer("127.0.0.3"))
        # CPU: a client on no list, waiting 20 ms (time for the three
        # answers), with and without lists.
        p["wait-" + v] = ([sw, "-d", "20ms", TARGET], peer("127.0.0.7"))
        p["lists-" + v] = ([sw, "-d", "20ms", *lists(dns, False), TARGET],
                           peer("127.0.0.7"))
    return p


def run_rounds(progs):
    rounds = []
    for r in range(ROUNDS):
        order = list(progs)
        random.shuffle(order)
        res = bench.passbench([(progs[k][0], progs[k][1], 1) for k in order],
                              N)
        rounds.append({k: {"wall": x[0], "cpu": x[3]}
                       for k, x in zip(order, res)})
        print("[round %d/%d done]" % (r + 1, ROUNDS), file=sys.stderr,
              flush=True)
    return rounds


def memory(dns):
    out = {}
    for v in VARIANTS:
        sw = bench.sendwrap(v)
        env = bench.env_with(peer("127.0.0.7"))
        for key, extra in (("wait", []), ("lists", lists(dns, False))):
            argv = [sw, "-d", "30", *extra, TARGET]
            out[key + "-" + v] = bench.hold_measure(argv, env, HELD, sw)
    return out


def med(rounds, key, what):
    xs = [r[key][what] for r in rounds]
    return statistics.median(xs), min(xs), max(xs)


def main():
    import tempfile
    wd = tempfile.mkdtemp(prefix="dnsl-bench.", dir=W)
    dns = DNS(wd)
    try:
        rtt = dns_rtt(dns)
        progs = programs(dns)
        rounds = run_rounds(progs)
        mem = memory(dns)
    finally:
        dns.stop()
    res = {"rtt_ms": rtt, "rounds": rounds, "memory": mem,
           "load": proclib.loadavg(), "cpu": proclib.cpu_model(),
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    with open(os.path.join(W, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    print("\nbench/dnsl-bench: %d rounds x %d invocations, %s, load %s"
          % (ROUNDS, N, res["date"], res["load"]))
    print("\nDNS round trip (one A query to dnsmasq on loopback, median of "
          "200): %.3f ms\n" % rtt)
    print("| measure | build | without lists | with three lists | "
          "difference or ratio | target | met |")
    print("|---|---|---|---|---|---|---|")
    for v in bench.VARIANTS:
        name = bench.VNAME[v]
        p, w = med(rounds, "plain-" + v, "wall"), med(rounds, "dnswl-" + v,
                                                     "wall")
        extra = [r["dnswl-" + v]["wall"] - r["plain-" + v]["wall"]
                 for r in rounds]
        e = statistics.median(extra)
        print("| allow-listed client, fork to exit, ms | %s | %.3f | %.3f | "
              "+%.3f (round trip %.3f) | round trip + 5 ms | %s |"
              % (name, p[0], w[0], e, rtt, "yes" if e <= rtt + 5 else "NO"))
        ratios = [r["lists-" + v]["cpu"] / r["wait-" + v]["cpu"]
                  for r in rounds]
        c0, c1 = med(rounds, "wait-" + v, "cpu"), med(rounds, "lists-" + v,
                                                      "cpu")
        rc = statistics.median(ratios)
        print("| CPU per connection, ms | %s | %.3f | %.3f | %.2fx | "
              "1.3x | %s |" % (name, c0[0], c1[0], rc,
                              "yes" if rc <= 1.3 else "NO"))
        m0, m1 = mem["wait-" + v], mem["lists-" + v]
        rm = m1["Pss"] / m0["Pss"]
        print("| Pss per waiting connection, kB (%d held) | %s | %.1f | "
              "%.1f | %.2fx | 1.25x | %s |" % (m1["n"], name, m0["Pss"],
                                              m1["Pss"], rm,
                                              "yes" if rm <= 1.25 else "NO"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
