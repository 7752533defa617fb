#!/usr/bin/python3
"""bench/scenarios.py - what each defence stops: bot behaviours and a
legitimate sender against sendwrap in several configurations.  Run by
bench/scenarios.sh (make bench-scenarios); see BENCHMARKS.md.

    scenarios.py ROOT WORKDIR [--quick] [-n N] [--only CONF,...]
                 [--scale S] [--seed N] [--sendwrap PATH]

Every client is a thread with a loopback source address of its own
(127.0.X.Y: X names the configuration and the behaviour, Y the client),
so that the pass cache, the DNS lists and the per-address limits see
distinct clients.  The program behind sendwrap is bench/mta.c, which
takes every message and records, per source address, what reached it:
a client "reached the MTA" when its message is in that record.  Each
connection's verdict is sendwrap's log line for its address and port.

Time runs S times faster than in the world it models (--scale, default
60: a minute becomes a second), so that the retries of an hour fit in a
few minutes; TIMES below holds the modelled times, in real seconds.
Within a configuration every client runs at once, their starts spread
over one delay; the configurations run one after the other, each with a
fresh server, cache and record.  Loopback only; every server runs in a
process group of its own, killed on the way out; every wait is bounded.

Results: printed, and in WORKDIR (report.md, results.json).  The exit
status is 1 if a target of a --greylist configuration is missed.
"""

import argparse
import collections
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, HERE)
import bench  # noqa: E402  (bench/bench.py: servers, clean-up)
import proclib  # noqa: E402
from dnsserver import DNS  # noqa: E402

# The modelled times, in real seconds; divided by --scale for the run.
TIMES = {
    "delay": 60,            # -d: longer than every impatient bot's patience
    "impatient": (2, 10, 30),
    "grey_pass": 300,       # --grey-pass (its default)
    "grey_expire": 3600,    # --grey-expire
    "bad_ttl": 86400,       # --bad-ttl of the greylist-bad configuration
    "eager_every": 30,      # the eager retrier's pause between tries
    "legit_retry": 360,     # a legitimate MTA's retry: a little over the pass
    "mta_retry": 600,       # the retrier after the pass time (a bot's MTA)
}
MTA_TRIES = 3               # the retriers like an MTA: at most this many
LEGIT_TRIES = 5
# Slack for a loaded machine (not scaled): how long past the delay a
# client waits for the greeting, and for any other reply.
GREET_SLACK = 15.0
REPLY_WAIT = 15.0
SETTLE = 10.0               # for the last log lines after the clients end

LIST_ZONE = "bl.test"
TRAP = "trap@bench.invalid"
RCPT = "user@bench.invalid"
DNS_LISTED = "127.0.0.2"

FRONTS = ("listener", "tcpserver")
KINDS = ("plain", "dnsbl", "greylist", "greylist-bad")


def log(msg):
    print("[%6.1fs] %s" % (time.monotonic() - bench.T0, msg),
          file=sys.stderr, flush=True)


# ------------------------------------------------------------ parameters

class Params:
    """The run's times in seconds of the run, from TIMES and the scale."""

    def __init__(self, scale):
        self.scale = scale
        for k, v in TIMES.items():
            setattr(self, k, tuple(x / scale for x in v)
                    if isinstance(v, tuple) else v / scale)
        # As many tries as fit, the delay waited each time, in 80 % of
        # the pass time: none of them may come late enough to pass.
        self.eager_tries = 1 + int(0.8 * self.grey_pass //
                                   (self.delay + self.eager_every))
        self.greet_wait = self.delay + GREET_SLACK

    def table(self):
        """(what, modelled, in the run) rows, for the report."""
        def both(real, run):
            return (human(real), "%.3f s" % run)
        rows = [("-d (the delay)",) + both(TIMES["delay"], self.delay)]
        for real, run in zip(TIMES["impatient"], self.impatient):
            rows.append(("an impatient bot gives up after",) +
                        both(real, run))
        rows += [
            ("--grey-pass",) + both(TIMES["grey_pass"], self.grey_pass),
            ("--grey-expire",) + both(TIMES["grey_expire"],
                                      self.grey_expire),
            ("--bad-ttl (where set)",) + both(TIMES["bad_ttl"],
                                              self.bad_ttl),
            ("the eager retrier's pause (%d tries)" % self.eager_tries,) +
            both(TIMES["eager_every"], self.eager_every),
            ("the legitimate sender's retry (at most %d tries), the "
             "trapped sender's (at most %d)" % (LEGIT_TRIES, MTA_TRIES),) +
            both(TIMES["legit_retry"], self.legit_retry),
            ("the retrier after the pass time (at most %d tries)"
             % MTA_TRIES,) + both(TIMES["mta_retry"], self.mta_retry),
        ]
        return rows


def human(s):
    if s >= 3600 and s % 3600 == 0:
        return "%d h" % (s // 3600)
    if s >= 60 and s % 60 == 0:
        return "%d min" % (s // 60)
    return "%g s" % s


def ms(seconds):
    """A sendwrap DURATION for seconds, in whole milliseconds."""
    return "%dms" % round(seconds * 1000)


# ------------------------------------------------------------ SMTP client

class Conn:
    """One connection from a source address; every wait bounded."""

    def __init__(self, src, port):
        self.sock = socket.socket()
        try:
            self.sock.bind((src, 0))
            self.sock.settimeout(REPLY_WAIT)
            self.port = self.sock.getsockname()[1]
            self.sock.connect(("127.0.0.1", port))
        except OSError:
            self.sock.close()
            raise
        self.buf = b""
        self.taken_at = None

    def send(self, data):
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def reply(self, timeout=REPLY_WAIT):
        """The next SMTP reply's code (an int), or "eof", "reset",
        "timeout"; a multi-line reply is read whole."""
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                m = re.match(rb"(\d{3})([ -]?)", line)
                if m and m.group(2) != b"-":
                    return int(m.group(1))
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout"
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(4096)
            except socket.timeout:
                return "timeout"
            except OSError:
                return "reset"
            if not chunk:
                return "eof"
            self.buf += chunk

    def close(self):
        self.sock.close()


def outcome(step, r):
    """An attempt's result: "4xx:rcpt", "eof:greeting", ..."""
    return "%s:%s" % ("%dxx" % (r // 100) if isinstance(r, int) else r,
                      step)


def envelope(ip, rcpts):
    return [("mail", b"MAIL FROM:<bot@[%s]>\r\n" % ip.encode(), 250)] + \
        [("rcpt", b"RCPT TO:<%s>\r\n" % r.encode(), 250) for r in rcpts] + \
        [("data", b"DATA\r\n", 354)]


def body(ip):
    return (b"From: <bot@[%s]>\r\nSubject: scenario\r\n\r\n"
            b"One message from %s.\r\n.\r\n" % (ip.encode(), ip.encode()))


def transaction(c, ip, rcpts, greet_wait, pipelined=False, greeted=False,
                polite=False):
    """One SMTP transaction: "delivered" or where it ended.  pipelined:
    EHLO, MAIL, RCPT and DATA in one write; greeted: the 220 is read;
    polite: QUIT after a refusal too, as an MTA does (a bot just
    closes)."""
    r = exchange(c, ip, rcpts, greet_wait, pipelined, greeted)
    if r == "delivered" or (polite and re.match(r"\dxx:(?!greeting)", r)):
        if c.send(b"QUIT\r\n"):
            c.reply()
    return r


def exchange(c, ip, rcpts, greet_wait, pipelined, greeted):
    """transaction's exchange, up to its outcome (QUIT not sent); the
    time of the 250 that took the message in c.taken_at."""
    if not greeted:
        r = c.reply(greet_wait)
        if r != 220:
            return outcome("greeting", r)
    steps = [("ehlo", b"EHLO client.bench.invalid\r\n", 250)] + \
        envelope(ip, rcpts)
    if pipelined:
        c.send(b"".join(line for _, line, _ in steps))
    taken, refused = 0, None
    for step, line, want in steps:
        if step == "data" and not taken:
            return outcome("rcpt", refused)
        if not pipelined and not c.send(line):
            return outcome(step, "reset")
        r = c.reply()
        if step == "rcpt" and isinstance(r, int) and r != want:
            refused = r         # another recipient may be taken
        elif r != want:
            return outcome(step, r)
        elif step == "rcpt":
            taken += 1
    c.send(body(ip))
    r = c.reply()
    if r != 250:
        return outcome("body", r)
    c.taken_at = time.monotonic()
    return "delivered"


# ------------------------------------------------------------ behaviours

class Client:
    """One client of a behaviour: its address, its attempts."""

    def __init__(self, behaviour, index, ip, port, params, t0):
        self.behaviour, self.index, self.ip = behaviour, index, ip
        self.port, self.p, self.t0 = port, params, t0
        self.attempts = []

    def now(self):
        return time.monotonic() - self.t0

    def attempt(self, talk):
        """Connect, run talk(conn) -> result, record the attempt."""
        a = {"start": self.now()}
        self.attempts.append(a)
        try:
            c = Conn(self.ip, self.port)
        except OSError as e:
            a.update(port=None, result="connect:" + type(e).__name__,
                     end=self.now())
            return a["result"]
        a["port"] = c.port
        try:
            a["result"] = talk(c)
        except OSError as e:
            a["result"] = "error:" + type(e).__name__
        finally:
            c.close()
        a["end"] = self.now()
        if c.taken_at is not None:
            a["delivered_at"] = c.taken_at - self.t0
        return a["result"]

    def one_shot(self, rcpts=(RCPT,), pipelined=False, polite=False):
        return self.attempt(lambda c: transaction(
            c, self.ip, list(rcpts), self.p.greet_wait, pipelined,
            polite=polite))

    def retrying(self, tries, pause, rcpts=(RCPT,), eager=False,
                 pipelined=False):
        """Up to tries transactions, pause seconds after each failure; an
        MTA (polite) gives up on a permanent (5xx) failure, an eager bot
        (rude) never."""
        for k in range(tries):
            r = self.one_shot(rcpts, pipelined, polite=not eager)
            if r == "delivered" or k == tries - 1 or \
                    (not eager and r.startswith("5xx")):
                return
            time.sleep(pause)


def blind(cl):
    """Everything at once, as soon as connected: no greeting awaited."""
    def talk(c):
        c.send(b"EHLO client.bench.invalid\r\n" +
               b"".join(line for _, line, _ in envelope(cl.ip, [RCPT])) +
               body(cl.ip) + b"QUIT\r\n")
        r = c.reply(cl.p.greet_wait)
        return outcome("greeting", r)
    cl.attempt(talk)


def impatient(patience):
    def run(cl):
        def talk(c):
            r = c.reply(patience)
            if r == "timeout":
                return "gave-up"
            if r != 220:
                return outcome("greeting", r)
            # Greeted in time after all: a normal transaction.
            return transaction(c, cl.ip, [RCPT], 0, greeted=True)
        cl.attempt(talk)
    return run


def non_smtp(request):
    def run(cl):
        def talk(c):
            r = c.reply(cl.p.greet_wait)
            if r != 220:
                return outcome("greeting", r)
            c.send(request)
            return outcome("request", c.reply())
        cl.attempt(talk)
    return run


Behaviour = collections.namedtuple(
    "Behaviour", "key label name legit retries_after_pass run")


def behaviours(p):
    """The behaviours; names give the modelled times (TIMES)."""
    eager, mta, legit = (human(TIMES[k]) for k in
                         ("eager_every", "mta_retry", "legit_retry"))
    impatient_ones = [
        Behaviour("impatient-%g" % real, "impatient, %s" % human(real),
                  "gives up after %s without a greeting" % human(real),
                  False, False, impatient(run))
        for real, run in zip(TIMES["impatient"], p.impatient)]
    return [
        Behaviour("blind", "blind pipeliner",
                  "blind pipeliner: the whole transaction at once, "
                  "before the greeting", False, False, blind),
    ] + impatient_ones + [
        Behaviour("one-shot", "patient one-shot",
                  "patient one-shot: waits, one transaction, "
                  "never retries", False, False, lambda cl: cl.one_shot()),
        Behaviour("pipelining", "pipelining after the greeting",
                  "pipelines after the greeting: EHLO, MAIL, "
                  "RCPT, DATA in one write", False, False,
                  lambda cl: cl.one_shot(pipelined=True)),
        Behaviour("http", "HTTP request",
                  "HTTP request after the greeting", False, False,
                  non_smtp(b"GET / HTTP/1.1\r\nHost: mx\r\n\r\n")),
        Behaviour("connect", "HTTP CONNECT",
                  "HTTP CONNECT after the greeting", False, False,
                  non_smtp(b"CONNECT 127.0.0.1:25 HTTP/1.1\r\n"
                           b"Host: 127.0.0.1:25\r\n\r\n")),
        Behaviour("eager", "eager retrier",
                  "eager retrier: %d tries, %s apart, all within the pass "
                  "time" % (p.eager_tries, eager), False, False,
                  lambda cl: cl.retrying(p.eager_tries, p.eager_every,
                                         eager=True)),
        Behaviour("mta-retrier", "retrier after the pass time",
                  "retrier after the pass time: every %s, at most %d "
                  "tries" % (mta, MTA_TRIES), False, True,
                  lambda cl: cl.retrying(MTA_TRIES, p.mta_retry)),
        Behaviour("pipelining-retrier",
                  "pipelining retrier after the pass time",
                  "pipelines after the greeting, retries after %s whatever "
                  "the reply, at most %d tries" % (mta, MTA_TRIES),
                  False, True,
                  lambda cl: cl.retrying(MTA_TRIES, p.mta_retry, eager=True,
                                         pipelined=True)),
        Behaviour("trapped", "trapped",
                  "trapped: a greytrap address among its recipients, "
                  "retries after %s" % legit, False, True,
                  lambda cl: cl.retrying(MTA_TRIES, p.legit_retry,
                                         rcpts=(RCPT, TRAP))),
        Behaviour("legit", "legitimate sender",
                  "legitimate sender (an MTA): retries after %s on a 4xx"
                  % legit, True, True,
                  lambda cl: cl.retrying(LEGIT_TRIES, p.legit_retry)),
    ]


def longest(p):
    """An upper bound of one client's run, for the join."""
    one = p.greet_wait + 4 * REPLY_WAIT
    return p.delay + max(
        p.eager_tries * (one + p.eager_every),
        MTA_TRIES * (one + p.mta_retry),
        LEGIT_TRIES * (one + p.legit_retry))


# ------------------------------------------------------------ configurations

def address(conf_no, beh_no, index):
    return "127.0.%d.%d" % (16 * (conf_no + 1) + beh_no, index + 1)


def listed(beh, index):
    """Is this client on the DNS list?  Every second bot of every
    behaviour; no legitimate sender."""
    return not beh.legit and index % 2 == 1


def reverse(ip):
    return ".".join(reversed(ip.split(".")))


class ListDNS(DNS):
    """tests/dnsserver.py's dnsmasq, LIST_ZONE listing the given addresses
    too."""

    def __init__(self, workdir, addresses):
        self.addresses = addresses
        super().__init__(workdir)

    def command(self):
        return super().command() + [
            "--host-record=%s.%s,%s" % (reverse(ip), LIST_ZONE, DNS_LISTED)
            for ip in self.addresses]


def conf_options(kind, p, wd, dns):
    opts = ["-d", ms(p.delay)]
    if kind == "dnsbl":
        opts += ["--dnsbl", LIST_ZONE, "--dns-server", dns.server]
    elif kind.startswith("greylist"):
        trap = os.path.join(wd, "greytrap")
        with open(trap, "w") as f:
            f.write("# the scenarios' trap address\n%s\n" % TRAP)
        opts += ["--greylist", "-c", os.path.join(wd, "cache.lmdb"),
                 "--grey-pass", ms(p.grey_pass),
                 "--grey-expire", ms(p.grey_expire),
                 "--greytrap", trap, "--hostname", "mx.bench.invalid"]
    if kind == "greylist-bad":
        opts += ["--bad-ttl", ms(p.bad_ttl)]
    return opts


def start(front, sendwrap, opts, mta, wd, clients):
    """The server of a configuration, its stderr (sendwrap's log) in
    wd/sendwrap.log: (Popen, port, command)."""
    port = bench.free_port()
    prog = opts + ["--", mta, os.path.join(wd, "record")]
    logf = open(os.path.join(wd, "sendwrap.log"), "ab")
    env = bench.env_with({})
    try:
        if front == "listener":
            cmd = [sendwrap, "--listen", "127.0.0.1:%d" % port] + prog
            p = bench.start_server(cmd, env, port, logf)
        else:
            n = clients + 20
            cmd = [sendwrap] + prog
            p = bench.start_tcpserver(port, cmd, env, n, n, logf)
    finally:
        logf.close()
    return p, port, list(p.args)


def supports(sendwrap, option):
    r = subprocess.run([sendwrap, "--list-options"], capture_output=True,
                       text=True, timeout=10)
    return option in r.stdout.split()


# ------------------------------------------------------------ one run

FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_log(path):
    """{(ip, port): (verdict, {field: value})} of sendwrap's log lines
    that name a client (the verdict is the line's first word)."""
    out = {}
    with open(path, "rb") as f:
        for raw in f:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if not line.startswith("sendwrap: "):
                continue
            word, _, rest = line[len("sendwrap: "):].partition(" ")
            fields = dict(FIELD.findall(rest))
            if "ip" in fields and "port" in fields and word != "error":
                out[(fields["ip"], int(fields["port"]))] = (word, fields)
    return out


def parse_record(path):
    """{ip: messages accepted} from bench/mta.c's record, and {ip:
    sessions}."""
    accepted, sessions = collections.Counter(), collections.Counter()
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                word, _, rest = line.partition(" ")
                fields = dict(FIELD.findall(rest))
                if word == "accepted":
                    accepted[fields.get("ip")] += 1
                elif word == "session":
                    sessions[fields.get("ip")] += 1
    return accepted, sessions


def run_conf(conf_no, kind, front, args, p, beh, mta):
    key = "%s-%s" % (kind, front)
    # The last run's files of this configuration go; the cache's
    # directory is nobody else's to write (sendwrap checks).
    wd = os.path.join(args.workdir, key)
    shutil.rmtree(wd, ignore_errors=True)
    os.mkdir(wd, 0o700)
    rnd = random.Random(args.seed * 100 + conf_no)
    n = args.clients
    on_list = [address(conf_no, b, i) for b, be in enumerate(beh)
               for i in range(n) if listed(be, i)] if kind == "dnsbl" else []
    dns = None
    if kind == "dnsbl":
        dns = ListDNS(wd, on_list)
    server = None
    try:
        opts = conf_options(kind, p, wd, dns)
        server, port, cmd = start(front, args.sendwrap, opts, mta, wd,
                                  n * len(beh))
        log("%s: %s" % (key, " ".join(cmd)))
        t0 = time.monotonic()
        clients = [Client(be, i, address(conf_no, b, i), port, p, t0)
                   for b, be in enumerate(beh) for i in range(n)]
        threads = []
        for cl in clients:
            after = rnd.uniform(0, p.delay)
            th = threading.Thread(target=run_client, args=(cl, after),
                                  daemon=True)
            th.start()
            threads.append(th)
        deadline = t0 + longest(p) + 30
        for th in threads:
            th.join(max(0.0, deadline - time.monotonic()))
        unfinished = sum(th.is_alive() for th in threads)
        logpath = os.path.join(wd, "sendwrap.log")
        settle = time.monotonic() + SETTLE
        while time.monotonic() < settle and \
                not settled(clients, logpath, os.path.join(wd, "record")):
            time.sleep(0.2)
        took = time.monotonic() - t0
    finally:
        if server is not None:
            bench.stop_tcpserver(server)
        if dns is not None:
            dns.stop()
    verdicts = parse_log(logpath)
    accepted, sessions = parse_record(os.path.join(wd, "record"))
    log("%s: done in %.1f s, %d clients%s" % (
        key, took, len(clients),
        ", %d unfinished" % unfinished if unfinished else ""))
    return {
        "key": key, "kind": kind, "front": front, "command": cmd,
        "options": opts, "took": took, "unfinished": unfinished,
        "listed": on_list, "workdir": wd,
        "clients": [client_result(cl, verdicts, accepted, sessions,
                                  cl.ip in on_list) for cl in clients]}


def settled(clients, logpath, recordpath):
    """Has every connection its log line, and every one handed to the
    MTA its session line (written as the MTA exits)?"""
    verdicts = parse_log(logpath)
    handed = 0
    for cl in clients:
        for a in cl.attempts:
            if a.get("port"):
                v = verdicts.get((cl.ip, a["port"]))
                if v is None:
                    return False
                handed += v[0] in HANDED
    return sum(parse_record(recordpath)[1].values()) >= handed


def run_client(cl, after):
    time.sleep(after)
    try:
        cl.behaviour.run(cl)
    except Exception as e:          # recorded, never fatal to the run
        cl.attempts.append({"start": cl.now(), "end": cl.now(),
                            "port": None, "result": "crash:%r" % e})


def client_result(cl, verdicts, accepted, sessions, on_list):
    atts = []
    for a in cl.attempts:
        v = verdicts.get((cl.ip, a.get("port")))
        atts.append(dict(a, verdict=v[0] if v else "none",
                         log=v[1] if v else None))
    return {"behaviour": cl.behaviour.key, "index": cl.index, "ip": cl.ip,
            "listed": on_list, "attempts": atts,
            "accepted": accepted.get(cl.ip, 0),
            "sessions": sessions.get(cl.ip, 0)}


# ------------------------------------------------------------ summaries

def pct(k, n):
    return "%d %% (%d/%d)" % (round(100 * k / n), k, n) if n else "-"


# The verdicts that hand the client to the program.
HANDED = ("pass", "cached", "allow")


def pattern(c):
    """A client's verdicts, connection by connection: "grey x2, pass"."""
    words = [a["verdict"] if a["verdict"] not in HANDED or
             a["result"] == "delivered" else
             "%s (no message: %s)" % (a["verdict"], a["result"])
             for a in c["attempts"]]
    out = []
    for w in words:
        if out and out[-1][0] == w:
            out[-1][1] += 1
        else:
            out.append([w, 1])
    return ", ".join(w if k == 1 else "%s x%d" % (w, k) for w, k in out)


def delivery(c):
    """(attempt number, seconds from the first attempt's start) of the
    attempt the message was taken in, or None."""
    for no, a in enumerate(c["attempts"], 1):
        if "delivered_at" in a:
            return no, a["delivered_at"] - c["attempts"][0]["start"]
    return None


def summarize(conf, beh):
    rows = []
    for be in beh:
        cs = [c for c in conf["clients"] if c["behaviour"] == be.key]
        reached = [c for c in cs if c["accepted"] > 0]
        stopped = [c for c in cs if c["accepted"] == 0]
        pats = collections.Counter(pattern(c) for c in cs)
        times = [d[1] for d in map(delivery, reached) if d]
        tries = collections.Counter(d[0] for d in map(delivery, reached)
                                    if d)
        rows.append({
            "behaviour": be.key, "name": be.name, "clients": len(cs),
            "listed": sum(c["listed"] for c in cs),
            "reached": len(reached), "stopped": len(stopped),
            "handed": sum(c["sessions"] > 0 for c in cs),
            "patterns": dict(pats),
            "attempts": sum(len(c["attempts"]) for c in cs),
            "delivered_on_attempt": dict(tries),
            "delivery_s": ([statistics.median(times), max(times)]
                           if times else None),
            "mismatch": sum((c["accepted"] > 0) != (delivery(c) is not None)
                            for c in cs)})
    return rows


def targets(conf, rows, beh, p):
    """The --greylist targets: [(target, measured, met)]."""
    by = {r["behaviour"]: r for r in rows}
    bots = [be for be in beh if not be.legit and not be.retries_after_pass]
    leaked = ["%s %d" % (be.key, by[be.key]["reached"]) for be in bots
              if by[be.key]["reached"]]
    out = [("no bot that does not retry after the pass time reaches the MTA",
            ", ".join(leaked) if leaked else
            "0 of %d" % sum(by[be.key]["clients"] for be in bots),
            not leaked)]
    legit = [c for c in conf["clients"] if c["behaviour"] == "legit"]
    first_retry_ok = 0
    for c in legit:
        d = delivery(c)
        starts = [a["start"] - c["attempts"][0]["start"]
                  for a in c["attempts"]]
        late = [no for no, s in enumerate(starts, 1) if s >= p.grey_pass]
        if d and late and d[0] == late[0] and c["accepted"] > 0:
            first_retry_ok += 1
    out.append(("the legitimate sender delivers on its first retry after "
                "the pass time", "%d of %d" % (first_retry_ok, len(legit)),
                bool(legit) and first_retry_ok == len(legit)))
    tr = by.get("trapped")
    if tr:
        out.append(("(also) the trapped sender never reaches the MTA",
                    "%d of %d" % (tr["reached"], tr["clients"]),
                    tr["reached"] == 0))
    return out


def fmt_patterns(pats, n):
    return "; ".join("%s %s" % (k, pct(v, n).split(" (")[0])
                     for k, v in sorted(pats.items(), key=lambda kv: -kv[1]))


def fmt_delivery(r, p):
    if not r["delivery_s"]:
        return "-"
    med, mx = r["delivery_s"]
    tries = ", ".join("%d on try %d" % (v, k) for k, v in
                      sorted(r["delivered_on_attempt"].items()))
    return "%.2f / %.2f s (%s / %s modelled; %s)" % (
        med, mx, human_run(med, p), human_run(mx, p), tries)


def human_run(s, p):
    real = s * p.scale
    return "%.1f min" % (real / 60) if real >= 60 else "%.0f s" % real


TITLES = {
    "plain": "the plain delay",
    "dnsbl": "the delay with a DNS list",
    "greylist": "--greylist",
    "greylist-bad": "--greylist --bad-ttl 1d",
}


def verdicts_of(results, kind, key):
    """The verdict patterns of a behaviour in a kind's configurations: one
    text if the front ends agree, else each front end's."""
    texts = collections.OrderedDict()
    for r in results:
        if r["kind"] == kind:
            row = next(x for x in r["rows"] if x["behaviour"] == key)
            texts[r["front"]] = fmt_patterns(row["patterns"], row["clients"])
    if len(set(texts.values())) == 1:
        return next(iter(texts.values()))
    return "; ".join("%s: %s" % kv for kv in texts.items())


def report(results, beh, p, args, meta):
    out = []
    w = out.append
    w("Run of %s on %s, %s core(s), load average at start %s, at end %s; "
      "%d client(s) per behaviour%s." % (
          meta["date"], meta["cpu"], meta["cores"], meta["load_start"],
          meta["load_end"], args.clients,
          " (SMOKE RUN: too few clients for figures)" if args.clients < 10
          else ""))
    w("")
    w("Time runs %gx faster than the world it models:" % p.scale)
    w("")
    w("| what | modelled | in the run |")
    w("|---|---|---|")
    for row in p.table():
        w("| %s | %s | %s |" % row)
    w("")
    if any(r["kind"] == "dnsbl" for r in results):
        w("The DNS list (`--dnsbl %s`, a dnsmasq on loopback) lists every "
          "second client of every bot behaviour and no legitimate "
          "sender." % LIST_ZONE)
        w("")
    w("Share of each behaviour's clients whose message reached the MTA "
      "(and how many were handed to it, when more: those it took no "
      "message from):")
    w("")
    w("| behaviour | " + " | ".join(
        "%s (%s)" % (TITLES[r["kind"]], r["front"]) for r in results) + " |")
    w("|---|" + "---|" * len(results))
    for be in beh:
        cells = []
        for r in results:
            row = next(x for x in r["rows"] if x["behaviour"] == be.key)
            cell = pct(row["reached"], row["clients"])
            if row["handed"] > row["reached"]:
                cell += ", %d handed to it" % row["handed"]
            cells.append(cell)
        w("| %s | %s |" % (be.label, " | ".join(cells)))
    w("")
    w("sendwrap's verdicts, connection by connection (for clients that "
      "were handed to the MTA and took no message, what it answered):")
    w("")
    kinds = list(dict.fromkeys(r["kind"] for r in results))
    w("| behaviour | " + " | ".join(TITLES[k] for k in kinds) + " |")
    w("|---|" + "---|" * len(kinds))
    for be in beh:
        w("| %s | %s |" % (be.label, " | ".join(
            verdicts_of(results, k, be.key) for k in kinds)))
    w("")
    w("What it costs the legitimate sender: from the start of its first "
      "attempt to the 250 that took its message:")
    w("")
    w("| configuration | delivered | median / max |")
    w("|---|---|---|")
    for r in results:
        row = next(x for x in r["rows"] if x["behaviour"] == "legit")
        w("| %s (%s) | %s | %s |" % (TITLES[r["kind"]], r["front"],
                                     pct(row["reached"], row["clients"]),
                                     fmt_delivery(row, p)))
    for r in results:
        w("")
        w("#### %s, %s" % (TITLES[r["kind"]], r["front"]))
        w("")
        w("`%s` (%.0f s)" % (" ".join(os.path.basename(x) if "/" in x
                                      else x for x in r["command"]),
                             r["took"]))
        w("")
        w("| behaviour | clients | on the list | handed to the MTA "
          "| reached the MTA | stopped "
          "| sendwrap's verdicts, connection by connection | connections "
          "| first attempt to message taken, median / max |")
        w("|---|---|---|---|---|---|---|---|---|")
        for row in r["rows"]:
            w("| %s | %d | %s | %d | %s | %s | %s | %d | %s |" % (
                row["name"], row["clients"],
                row["listed"] if r["kind"] == "dnsbl" else "-",
                row["handed"],
                pct(row["reached"], row["clients"]),
                pct(row["stopped"], row["clients"]),
                fmt_patterns(row["patterns"], row["clients"]),
                row["attempts"], fmt_delivery(row, p)))
        bad = sum(row["mismatch"] for row in r["rows"])
        if bad or r["unfinished"]:
            w("")
            w("Warning: %d client(s) whose own view of delivery differs "
              "from the MTA's record, %d unfinished." % (bad,
                                                       r["unfinished"]))
        if r.get("targets"):
            w("")
            w("| target | measured | met |")
            w("|---|---|---|")
            for t, m, ok in r["targets"]:
                w("| %s | %s | %s |" % (t, m, "yes" if ok else "**NO**"))
    return "\n".join(out) + "\n"


# ------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser(prog="bench/scenarios.sh")
    ap.add_argument("root")
    ap.add_argument("workdir")
    ap.add_argument("--quick", action="store_true",
                    help="2 clients per behaviour (a smoke run)")
    ap.add_argument("-n", "--clients", type=int, default=None,
                    help="clients per behaviour (default 20; 2 with "
                    "--quick)")
    ap.add_argument("--only", default="",
                    help="configurations, e.g. plain-listener,greylist "
                    "(a kind, a front end or KIND-FRONT)")
    ap.add_argument("--scale", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sendwrap", default=None)
    args = ap.parse_args()
    if args.clients is None:
        args.clients = 2 if args.quick else 20
    if not 1 <= args.clients <= 250:
        ap.error("-n: 1 to 250 clients per behaviour")
    args.sendwrap = args.sendwrap or os.path.join(
        args.root, "build", "default", "sendwrap")
    mta = os.path.join(args.workdir, "mta")
    p = Params(args.scale)
    beh = behaviours(p)
    wanted = [w for w in args.only.split(",") if w]
    confs = [(k, f) for k in KINDS for f in FRONTS
             if not wanted or any(w in (k, f, "%s-%s" % (k, f))
                                  for w in wanted)]
    if not confs:
        ap.error("--only names no configuration")
    has_grey = supports(args.sendwrap, "--greylist")
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "cpu": proclib.cpu_model(), "cores": os.cpu_count(),
            "load_start": proclib.loadavg(), "sendwrap": args.sendwrap}
    results = []
    for kind, front in confs:
        grey = kind.startswith("greylist")
        if grey and not has_grey:
            log("%s-%s: skipped, this sendwrap has no --greylist"
                % (kind, front))
            continue
        r = run_conf(KINDS.index(kind) * 2 + FRONTS.index(front), kind,
                     front, args, p, beh, mta)
        r["rows"] = summarize(r, beh)
        if grey:
            r["targets"] = targets(r, r["rows"], beh, p)
        results.append(r)
    meta["load_end"] = proclib.loadavg()
    text = report(results, beh, p, args, meta)
    print("\n" + text)
    with open(os.path.join(args.workdir, "report.md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.workdir, "results.json"), "w") as f:
        json.dump({"meta": meta, "times": TIMES, "scale": p.scale,
                   "clients_per_behaviour": args.clients,
                   "behaviours": [dict(b._asdict(), run=None) for b in beh],
                   "configurations": results}, f, indent=1, default=str)
    missed = [t for r in results for t in r.get("targets", []) if not t[2]]
    for t in missed:
        print("target missed (%s): %s" % (t[0], t[1]), file=sys.stderr)
    if not has_grey and any(k.startswith("greylist") for k, _ in confs):
        print("note: the --greylist configurations were skipped: this "
              "sendwrap has no --greylist", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
