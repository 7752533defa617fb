"""The listener's soak: a long mixed load against one sendwrap --listen,
then what must have come back to idle.  Used by tests/e2e/test_soak.py
(20 000 connections, in make check-load) and bench/soak.py (200 000,
make bench-soak); both start the listener with listener_args() and hand
its pid, port and log here.

The mix: connections take the kinds of KINDS in turn, each from source
addresses of its own on 127.0.0.0/8 (so that --per-ip is never what
stops one), each with the outcome it must get:

  bot      127.1.x.y: writes a pipelined transaction at once; 554, and
           an early line (action=reject)
  hangup   127.2.x.y: closes at once (every other one with a reset);
           a hangup line
  grey     127.3.x.y, an address the cache does not know: waits, then
           sendwrap's own dialog, EHLO MAIL RCPT 250, DATA 451, QUIT 221;
           a grey line, first=yes end=quit
  pass     the same address, over GREY_PASS after: waits, the program's
           220, QUIT; a pass line with grey=
  allow    127.0.100.0/22 (-A): the program's 220 at once; an allow line
  cached   the same address again, soon after its pass: the program's
           220 at once; a cached line

An address of 127.3.x.y goes through grey, pass, cached, then rests
until its pass entry has expired (--pass-ttl PASS_TTL) and starts over:
the cache never holds more than POOL keys, all of them used within the
first 10 000 connections (a sixth of them are grey), so that the cache
file's pages (the listener keeps it mapped) stop growing early too.
A kind whose turn it is goes on only if it has an address ready and is
not over LEAD connections ahead of its sixth; when none can, the mix
waits: each kind gets about its sixth, and the pool sets the pace (POOL
addresses a cycle of about PASS_TTL + 2 s: some 1 200 connections a
second).

Every wait is bounded: each connection by CONN_S, the whole run by its
deadline.  Standard library only; IPv4 loopback only.
"""
import collections
import errno
import os
import re
import select
import shutil
import socket
import struct
import subprocess
import time

import proclib

DELAY = "0.5"
GREY_PASS = 1.0                 # --grey-pass, seconds
PASS_TTL = 4.0                  # --pass-ttl, seconds
POOL = 1500                     # 127.3.x.y addresses going round
LEAD = 200                      # connections a kind may be ahead
ALLOW_NET = "127.0.100.0/22"
HOSTNAME = "soak.invalid"
KINDS = ("bot", "hangup", "grey", "pass", "allow", "cached")
# Kind -> the first word of its verdict line.
VERDICT = {"bot": "early", "hangup": "hangup", "grey": "grey",
           "pass": "pass", "allow": "allow", "cached": "cached"}
CONN_S = 30.0                   # the longest one connection may take
# A pass is retried over GREY_PASS after the grey dialog ended (its entry
# was recorded before the dialog began); a cached client comes at most
# PASS_TTL - CACHED_MARGIN after its pass was greeted (the entry was
# recorded before); a rested address starts over REST_MARGIN after its
# pass entry expired.
PASS_MARGIN = 0.3
CACHED_MARGIN = 1.5
REST_MARGIN = 0.5
IP_BIND_ADDRESS_NO_PORT = 24    # linux/in.h

BOT_TEXT = (b"EHLO bot.invalid\r\nMAIL FROM:<spam@bot.invalid>\r\n"
            b"RCPT TO:<victim@soak.invalid>\r\nDATA\r\nSubject: buy\r\n\r\n"
            b"spam\r\n.\r\nQUIT\r\n")
DIALOG = ((b"EHLO client.soak.invalid\r\n", b"250"),
          (b"MAIL FROM:<sender@client.soak.invalid>\r\n", b"250"),
          (b"RCPT TO:<rcpt@soak.invalid>\r\n", b"250"),
          (b"DATA\r\n", b"451"),
          (b"QUIT\r\n", b"221"))


def listener_args(cache, delay=DELAY):
    """sendwrap's options for the soak (after --listen and -l)."""
    return ["-d", delay, "-c", cache, "--greylist",
            "--grey-pass", "%gs" % GREY_PASS, "--pass-ttl", "%gs" % PASS_TTL,
            "--hostname", HOSTNAME, "-A", ALLOW_NET,
            "--max-clients", "5000", "--max-children", "500"]


def source(octet, i):
    """The i-th address of block 127.OCTET (skipping .0 and .255)."""
    return "127.%d.%d.%d" % (octet, i // 250 % 250, 1 + i % 250)


def address_class(ip):
    """Which kind's block ip is from: bot, hangup, pool, allow, or other."""
    b = [int(x) for x in ip.split(".")]
    if b[0] != 127:
        return "other"
    if b[1] == 0 and 100 <= b[2] <= 103:
        return "allow"
    return {1: "bot", 2: "hangup", 3: "pool"}.get(b[1], "other")


# ------------------------------------------------------------ the pool

class Pool:
    """The 127.3.x.y addresses and where each is in grey, pass, cached:
    queues of (ready at, address), each in the order it was filled.  An
    address in use is in none of them."""

    def __init__(self, n):
        self.fresh = collections.deque((0.0, source(3, i)) for i in range(n))
        self.greyed = collections.deque()
        self.passed = collections.deque()
        self.used = set()       # addresses used at least once
        self.cached_skipped = 0  # passes whose cached turn came too late

    def take(self, kind, now):
        """An address ready for kind, or None."""
        if kind == "cached":
            while self.passed and now - self.passed[0][0] > \
                    PASS_TTL - CACHED_MARGIN:
                t, ip = self.passed.popleft()
                self.cached_skipped += 1
                self.rest(ip, t)
            if not self.passed:
                return None
            t, ip = self.passed.popleft()
            self.rest(ip, t)    # its cached turn is its last
            return ip
        q = self.fresh if kind == "grey" else self.greyed
        if q and q[0][0] <= now:
            ip = q.popleft()[1]
            self.used.add(ip)
            return ip
        return None

    def done(self, kind, ip, ok, now, greeted_at):
        """A connection of kind from ip ended (ok: as it should)."""
        if not ok:
            return          # its entry is unknown: the address retires
        if kind == "grey":
            self.greyed.append((now + GREY_PASS + PASS_MARGIN, ip))
        elif kind == "pass":
            self.passed.append((greeted_at, ip))

    def rest(self, ip, passed_at):
        self.fresh.append((passed_at + PASS_TTL + REST_MARGIN, ip))


# ------------------------------------------------------------ connections

class Conn:
    __slots__ = ("kind", "ip", "sock", "t0", "greeted", "buf", "step",
                 "connected", "passed_at")

    def __init__(self, kind, ip, sock, t0):
        self.kind, self.ip, self.sock, self.t0 = kind, ip, sock, t0
        self.greeted = None     # when the first reply came
        self.buf = b""
        self.step = -1          # DIALOG step sent; -1: waiting for 220
        self.connected = False
        self.passed_at = None


def reply_end(buf):
    """The length of the first complete SMTP reply in buf, or 0."""
    pos = 0
    while True:
        nl = buf.find(b"\n", pos)
        if nl < 0:
            return 0
        line = buf[pos:nl + 1]
        if len(line) >= 4 and line[3:4] == b" ":
            return nl + 1
        pos = nl + 1


class Mix:
    """total connections of the mix to 127.0.0.1:port, at most inflight
    at once; at each count in samples (completed connections) calls
    probe(count).  run() returns the tally."""

    def __init__(self, port, total, inflight, deadline_s, delay=float(DELAY),
                 samples=(), probe=None):
        self.dst = ("127.0.0.1", port)
        self.total, self.inflight = total, inflight
        self.deadline_s, self.delay = deadline_s, delay
        self.samples, self.probe = sorted(samples), probe
        self.pool = Pool(POOL)
        self.sent = collections.Counter()       # kind -> connections
        self.ok = collections.Counter()         # kind -> as they should
        self.failures = collections.Counter()   # (kind, why) -> count
        self.examples = []                      # the first few failures
        self.resets = 0                         # hangups sent as a reset
        self.latency = collections.defaultdict(list)
        self.turn = 0
        self.peak = 0                           # connections at once
        self.started = self.done_n = 0
        self.ep = select.epoll()
        self.conns = {}

    # ---------------------------------------------------------- starting

    def next_kind(self, now):
        """The next kind, in turn, that has an address ready and is not
        over LEAD ahead of its sixth, and that address; None while there
        is none (the mix waits)."""
        share = self.started / len(KINDS) + LEAD
        for k in range(len(KINDS)):
            kind = KINDS[(self.turn + k) % len(KINDS)]
            n = self.sent[kind]
            if n > share:
                continue
            if kind in ("grey", "pass", "cached"):
                ip = self.pool.take(kind, now)
                if ip is None:
                    continue
            elif kind == "allow":
                ip = "127.0.%d.%d" % (100 + n // 250 % 4, 1 + n % 250)
            else:
                ip = source(1 if kind == "bot" else 2, n % 1000)
            self.turn += k + 1
            return kind, ip
        return None

    def start(self, now):
        """Start the next connection; False if its kind must wait."""
        nk = self.next_kind(now)
        if nk is None:
            return False
        kind, ip = nk
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM |
                          socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        s.bind((ip, 0))
        c = Conn(kind, ip, s, now)
        self.sent[kind] += 1
        self.started += 1
        err = s.connect_ex(self.dst)
        if err not in (0, errno.EINPROGRESS):
            self.finish(c, "connect: %s" % os.strerror(err), now)
            return True
        self.conns[s.fileno()] = c
        self.ep.register(s.fileno(), select.EPOLLOUT)
        self.peak = max(self.peak, len(self.conns))
        return True

    # ---------------------------------------------------------- events

    def finish(self, c, why, now):
        """c is over: why is None when it got what it should."""
        fd = c.sock.fileno()
        if fd in self.conns:
            del self.conns[fd]
            self.ep.unregister(fd)
        c.sock.close()
        self.done_n += 1
        if why is None:
            self.ok[c.kind] += 1
        else:
            self.failures[(c.kind, why)] += 1
            if len(self.examples) < 10:
                self.examples.append((c.kind, c.ip, why, c.buf[:80]))
        if c.kind in ("grey", "pass", "cached"):
            self.pool.done(c.kind, c.ip, why is None, now, c.passed_at)

    def connected(self, c, now):
        err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            return "connect: %s" % os.strerror(err)
        c.connected = True
        fd = c.sock.fileno()
        if c.kind == "hangup":
            if self.sent["hangup"] % 2 == 0:
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                  struct.pack("ii", 1, 0))
                self.resets += 1
            return None                     # closed by finish()
        if c.kind == "bot":
            c.sock.send(BOT_TEXT)
        self.ep.modify(fd, select.EPOLLIN)
        return ""                           # "": not over yet

    def readable(self, c, now):
        try:
            data = c.sock.recv(4096)
        except BlockingIOError:
            return ""
        except ConnectionResetError:
            data = None
        if data:
            if c.greeted is None:
                c.greeted = now
            c.buf += data
        at_end = not data
        if c.kind == "bot":
            if not at_end:
                return ""
            return None if c.buf.startswith(b"554 ") else "no 554"
        if c.kind == "grey":
            return self.dialog(c, at_end)
        return self.program(c, at_end)

    def dialog(self, c, at_end):
        while True:
            n = reply_end(c.buf)
            if n == 0:
                break
            reply, c.buf = c.buf[:n], c.buf[n:]
            if c.step < 0:
                if not reply.startswith(b"220 " + HOSTNAME.encode()):
                    c.buf = reply
                    return "not the dialog's 220"
                if c.greeted - c.t0 < 0.9 * self.delay:
                    return "greeted before the delay"
            elif not reply.startswith(DIALOG[c.step][1]):
                c.buf = reply
                return "%s to %s" % (reply[:3].decode("ascii", "replace"),
                                     DIALOG[c.step][0].split()[0].decode())
            if c.step == len(DIALOG) - 1:
                c.step += 1         # 221 came: now the close
                break
            c.step += 1
            c.sock.send(DIALOG[c.step][0])
        if at_end:
            return None if c.step == len(DIALOG) else "closed in the dialog"
        return ""

    def program(self, c, at_end):
        if c.step < 0:
            if b"\n" not in c.buf:
                return "closed before a greeting" if at_end else ""
            if not (c.buf.startswith(b"220 ") and b"target220" in c.buf):
                return "not the program's 220"
            self.latency[c.kind].append(c.greeted - c.t0)
            if c.kind == "pass":
                if c.greeted - c.t0 < 0.9 * self.delay:
                    return "greeted before the delay"
                c.passed_at = c.greeted
            c.step = 0
            try:
                c.sock.send(b"QUIT\r\n")
            except OSError:
                pass            # the program has already gone
        return None if at_end else ""

    # ---------------------------------------------------------- the loop

    def run(self):
        t_start = time.monotonic()
        deadline = t_start + self.deadline_s
        samples = collections.deque(self.samples)
        while self.done_n < self.total:
            now = time.monotonic()
            if now > deadline:
                break
            while self.started < self.total and \
                    len(self.conns) < self.inflight and self.start(now):
                pass
            for fd, ev in self.ep.poll(0.05, 512):
                c = self.conns.get(fd)
                if c is None:
                    continue
                now = time.monotonic()
                try:
                    why = (self.readable(c, now) if c.connected else
                           self.connected(c, now))
                except OSError as e:
                    why = "%s: %s" % (type(e).__name__, e.strerror)
                if why != "":
                    self.finish(c, why, now)
            now = time.monotonic()
            for c in [c for c in self.conns.values()
                      if now - c.t0 > CONN_S]:
                self.finish(c, "no end within %g s" % CONN_S, now)
            while samples and self.done_n >= samples[0]:
                self.probe(samples.popleft())
        for c in list(self.conns.values()):
            self.finish(c, "cut by the run's deadline", time.monotonic())
        self.ep.close()
        return {"secs": time.monotonic() - t_start, "sent": dict(self.sent),
                "ok": dict(self.ok), "failures": dict(self.failures),
                "examples": self.examples, "resets": self.resets,
                "pool_used": len(self.pool.used), "peak_inflight": self.peak,
                "cached_skipped": self.pool.cached_skipped,
                "latency": {k: (max(v), sorted(v)[len(v) // 2])
                            for k, v in self.latency.items() if v}}


# ------------------------------------------------------------ the listener

def memory(pid):
    """The listener's memory in kB: VmRSS and its anonymous and file
    parts (status), Private_Dirty (smaps_rollup), and the heap's Rss."""
    st = proclib.status(pid)
    out = {k: int(st[k].split()[0]) for k in ("VmRSS", "RssAnon", "RssFile")}
    out["Private_Dirty"] = proclib.smaps_rollup(pid)["Private_Dirty"]
    out["heap"] = 0
    with open("/proc/%d/smaps" % pid) as f:
        in_heap = False
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                in_heap = line.rstrip().endswith("[heap]")
            elif in_heap and line.startswith("Rss:"):
                out["heap"] = int(line.split()[1])
    return out


def descriptors(pid):
    """{fd: what it is}, sockets as 'socket' (their inode says nothing)."""
    return {fd: "socket" if t.startswith("socket:") else t
            for fd, t in proclib.fds(pid).items()}


def children(pid):
    """The listener's children as (pid, state)."""
    return [(p.pid, p.state) for p in proclib.children(pid)]


# The loop's own counts, read by gdb from the running listener (the
# static struct loop of listener_main(); needs the build's -g).
LOOP_FIELDS = ("timers.n", "clients", "waiting", "programs.running",
               "programs.queued")
# the heads of the lists: every client held, the queue for a program,
# the dead
LOOP_LISTS = ("all", "programs.head", "dead")


def loop_counts(pid):
    """{field: value} of LOOP_FIELDS and of the lists of every client, of
    the queue for a child and of the dead (their heads, 0 when empty)."""
    gdb = shutil.which("gdb")
    if gdb is None:
        raise RuntimeError("no gdb (tests/deps installs it)")
    cmd = [gdb, "-nx", "-batch", "-p", str(pid)]
    for f in LOOP_FIELDS + LOOP_LISTS:
        cmd += ["-ex", "printf \"%s=%%lu\\n\", (unsigned long)"
                "listener_main::l.%s" % (f, f)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    vals = dict(re.findall(r"^([\w.]+)=(\d+)$", r.stdout, re.M))
    if len(vals) != len(LOOP_FIELDS) + len(LOOP_LISTS):
        raise RuntimeError("gdb could not read the loop: %s %s"
                           % (r.stdout[-500:], r.stderr[-500:]))
    return {k: int(v) for k, v in vals.items()}


def verdicts(log_lines):
    """Counter of (verdict word, address class) over sendwrap's log lines
    (without the 'sendwrap: ' prefix), the hang-ups by reset counted
    again as ('hangup how=reset', class); and the lines that are neither
    a verdict of the mix nor the listening line, nor of the right shape."""
    count = collections.Counter()
    odd = []
    for line in log_lines:
        word = line.split(" ", 1)[0]
        m = re.search(r" ip=(\S+) ", line)
        if word == "listening" or word == "stopping":
            continue
        if m is None or word not in VERDICT.values():
            odd.append(line)
            continue
        shape = {"early": r" action=reject$", "grey": r" first=yes .* end=quit$",
                 "pass": r" grey=\S+$", "hangup": r" how=(eof|reset)$"}
        if word in shape and not re.search(shape[word], line):
            odd.append(line)
            continue
        count[(word, address_class(m.group(1)))] += 1
        if line.endswith(" how=reset"):
            count[("hangup how=reset", address_class(m.group(1)))] += 1
    return count, odd


def expected_verdicts(sent, resets):
    """What verdicts() must count for the connections sent, of which
    resets hang-ups were resets."""
    cls = {"bot": "bot", "hangup": "hangup", "grey": "pool", "pass": "pool",
           "allow": "allow", "cached": "pool"}
    want = collections.Counter({(VERDICT[k], cls[k]): n
                                for k, n in sent.items() if n})
    if resets:
        want[("hangup how=reset", "hangup")] = resets
    return want


def wait_idle(pid, idle_fds, timeout):
    """Wait until the listener holds only idle_fds's kinds of descriptors
    and has no child; True if it came to that within timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sockets(descriptors(pid)) == sockets(idle_fds) and \
                not children(pid):
            return True
        time.sleep(0.2)
    return False


def sockets(fds):
    return sum(1 for t in fds.values() if t == "socket")


# ------------------------------------------------------------ the soak

def soak(pid, port, log_lines, cache, total, inflight=500, first=10000,
         every=None, deadline_s=None, idle_s=60):
    """Run the mix against the listener pid (on 127.0.0.1:port; its log
    lines, without the 'sendwrap: ' prefix, from log_lines(); its pass
    cache the file cache), measuring it idle, after the first
    connections, every `every` connections, and idle again at the end.
    Returns (figures, checks): checks are (what, passed, measured)."""
    every = every or first
    deadline_s = deadline_s or 120 + total / 100
    time.sleep(0.5)
    idle_fds = descriptors(pid)
    fig = {"total": total, "inflight": inflight, "first": first,
           "idle": {"memory": memory(pid), "fds": idle_fds,
                    "loop": loop_counts(pid)},
           "samples": []}

    def probe(n):
        fig["samples"].append({"after": n, "memory": memory(pid),
                               "fds": len(descriptors(pid)),
                               "children": len(children(pid))})

    points = [first] + list(range(every, total, every))
    mix = Mix(port, total, inflight, deadline_s,
              samples=sorted(set(p for p in points if p < total)),
              probe=probe)
    fig["mix"] = mix.run()
    came_back = wait_idle(pid, idle_fds, idle_s)
    fig["end"] = {"memory": memory(pid), "fds": descriptors(pid),
                  "children": children(pid), "loop": loop_counts(pid),
                  "idle_in_time": came_back}
    count, odd = verdicts(log_lines())
    fig["verdicts"] = {"%s %s" % k: n for k, n in sorted(count.items())}
    fig["odd_lines"] = odd[:10]
    fig["odd_count"] = len(odd)
    fig["cache"] = cache
    return fig, checks(fig, count)


def checks(fig, count):
    out = []
    m = fig["mix"]
    sent, ok = m["sent"], m["ok"]
    out.append(("every connection made and ended as its kind should",
                sum(sent.values()) == fig["total"] and ok == sent and
                not m["failures"],
                "%d of %d as they should; failures %r %r" % (
                    sum(ok.values()), fig["total"], m["failures"],
                    m["examples"][:3])))
    want = expected_verdicts(sent, m["resets"])
    out.append(("one verdict line of the right kind a connection",
                count == want and fig["odd_count"] == 0,
                "log %r, sent %r; %d other lines %r" % (
                    dict(count), dict(want), fig["odd_count"],
                    fig["odd_lines"][:3])))
    first = next(s for s in fig["samples"] if s["after"] == fig["first"])
    last = fig["samples"][-1]
    r0 = first["memory"]["VmRSS"]
    for name, mem in (("in load at %d" % last["after"], last["memory"]),
                      ("idle at the end", fig["end"]["memory"])):
        out.append(("RSS %s within 10%% of after the first %d" % (
            name, fig["first"]), mem["VmRSS"] <= 1.10 * r0,
            "%d kB against %d kB (%+.1f%%)" % (
                mem["VmRSS"], r0, 100.0 * (mem["VmRSS"] - r0) / r0)))
    idle, end = fig["idle"]["fds"], fig["end"]["fds"]
    extra = {fd: t for fd, t in end.items() if idle.get(fd) != t}
    gone = {fd: t for fd, t in idle.items() if end.get(fd) != t}
    out.append(("descriptors back to idle (the cache's files kept open)",
                fig["end"]["idle_in_time"] and not gone and
                set(extra.values()) <= {fig["cache"], fig["cache"] + "-lock"},
                "idle %d, end %d; new %r, gone %r" % (
                    len(idle), len(end), extra, gone)))
    loop = fig["end"]["loop"]
    out.append(("the loop's timers, clients, children, queues empty",
                all(v == 0 for v in loop.values()), repr(loop)))
    out.append(("no child left, no zombie", fig["end"]["children"] == [],
                repr(fig["end"]["children"])))
    return out
