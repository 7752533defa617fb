"""Load: 300 concurrent connections through tcpserver -c 400, delay 1 s,
half legitimate clients delivering one numbered message each, half
blind-pipelining bots.  Run by tests/e2e/run-load (make check-load).

E2E_LOAD_CONNECTIONS overrides the number of connections (even).
"""

import os
import re
import threading
import time

from e2elib import (REJECT_554, TcpServer, bot, bot_payload, check_message,
                    make_message, smtp_deliver)
from test_faults import no_leftovers

N = int(os.environ.get("E2E_LOAD_CONNECTIONS", "300")) // 2 * 2
DELAY = 1.0
DEADLINE = 240          # seconds for the whole run of clients


def test_load(wd, mx, sw):
    srv = TcpServer(wd, sw("-d", "1", mta=mx.argv()), concurrency=400,
                    backlog=400)
    legit = list(range(0, N, 2))
    bots = list(range(1, N, 2))
    sent, greet, replies, errors, resets = {}, {}, {}, [], []
    for n in legit:
        sent[n] = make_message("load", n)
    payloads = {n: bot_payload("load-%d" % n, body_kib=4) for n in bots}
    barrier = threading.Barrier(N + 1)
    peak = [0]
    sampling = threading.Event()

    def sample():
        while not sampling.is_set():
            peak[0] = max(peak[0], len(srv.waiting_sendwraps()))
            time.sleep(0.05)

    def legit_client(n):
        try:
            barrier.wait(30)
            raw, headers, _ = sent[n]
            greet[n] = smtp_deliver("127.0.0.1", srv.port, raw,
                                    "load%d@client.sendwrap.test" % n,
                                    headers["To"], timeout=120)
        except Exception as e:
            errors.append(("legit", n, repr(e)))

    def bot_client(n):
        try:
            barrier.wait(30)
            got, _, reset = bot("127.0.0.1", srv.port, payloads[n],
                                timeout=120)
            replies[n] = got
            if reset:
                resets.append(n)
        except Exception as e:
            errors.append(("bot", n, repr(e)))

    old = threading.stack_size(256 * 1024)
    try:
        threads = [threading.Thread(
            target=legit_client if n % 2 == 0 else bot_client, args=(n,),
            daemon=True) for n in range(N)]
        for t in threads:
            t.start()
    finally:
        threading.stack_size(old)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    barrier.wait(30)
    t0 = time.monotonic()
    for t in threads:
        t.join(max(0.1, t0 + DEADLINE - time.monotonic()))
    wall = time.monotonic() - t0
    sampling.set()
    sampler.join(5)
    stuck = sum(t.is_alive() for t in threads)

    lines = srv.wait_lines(r"^(pass|early|allow|hangup) ", count=N,
                           timeout=30)
    verdicts = {}
    for l in lines:
        v = l.split()[0]
        verdicts[v] = verdicts.get(v, 0) + 1
    print("\nload: %d connections (%d legitimate, %d bots) through "
          "tcpserver -c 400, delay %.0f s" % (N, len(legit), len(bots), DELAY))
    print("load: wall time %.2f s; peak waiting sendwrap processes %d"
          % (wall, peak[0]))
    if greet:
        print("load: greeting latency min %.3f s, max %.3f s"
              % (min(greet.values()), max(greet.values())))
    print("load: sendwrap verdicts %r" % verdicts)

    assert stuck == 0, "%d clients still running after %d s" % (stuck,
                                                                DEADLINE)
    assert not errors, errors[:10]
    assert len(greet) == len(legit) and len(replies) == len(bots)
    # every bot got exactly the 554 reply
    bad = {n: r for n, r in replies.items() if r != REJECT_554}
    assert not bad, list(bad.items())[:5]
    assert not resets, "%d bots saw a reset, not a close" % len(resets)
    # nobody was greeted before the delay
    early_greet = {n: t for n, t in greet.items() if t < 0.9 * DELAY}
    assert not early_greet, early_greet

    # every legitimate message queued exactly once and intact; no bot mail
    msgs = mx.messages()
    tags = [m.header("X-E2E-Tag") for m in msgs]
    assert not [m for m in msgs if "BOT" in str(m.header("Subject"))]
    assert len(msgs) == len(legit), "%d queued for %d sent" % (len(msgs),
                                                              len(legit))
    assert sorted(tags) == sorted("load-%d" % n for n in legit)
    by_tag = dict(zip(tags, msgs))
    for n in legit:
        _, headers, body = sent[n]
        check_message(by_tag["load-%d" % n], headers, body)

    assert verdicts == {"pass": len(legit), "early": len(bots)}, verdicts
    assert all(re.search(r"action=reject$", l) for l in lines
               if l.startswith("early "))
    # no sendwrap (or exim) left behind
    no_leftovers(srv, timeout=30)
    assert peak[0] >= 10, "peak of waiting sendwraps %d: no concurrency?" \
        % peak[0]
