"""Greylisting (--greylist): the built binary in both front ends (one
process per connection, as under tcpserver, and the --listen loop), the
stand-in MTA as the program, the LMDB file, a real redis-server and a
real DNS server (dnsmasq) on loopback.

- A first attempt waits out the delay and meets sendwrap's own dialog:
  every command answered as the interface says, DATA refused with 451,
  the program never runs, one grey line, a grey entry whose recorded
  time is the first attempt; a retry too soon meets the same dialog and
  leaves the entry alone; a retry after --grey-pass is handed to the
  program and the entry becomes a pass; an expired entry starts over.
- The tests after the greeting (pipelining, non-smtp, bare-newline) with
  every -x action, and not when they are left out of --grey-tests.
- Greytraps: the same replies as any address, a trapped line, the
  network recorded bad for --trap-ttl; a broken or missing file costs
  no mail.
- Clients that are never greylisted: allowlisted, $RELAYCLIENT, DNSWL,
  a cached pass; a neighbour in the same --cache-net network.
- Several hosts on one Redis: a first attempt at one, the retry at
  another; a pass or a trap at one outweighs another's own grey entry.
- Usage errors; failing stores (cache, Redis) serve the client as
  without greylisting; the dialog's command and line limits.  (Its
  session limit, 60 s, is not waited for here.)

Every test that applies to both front ends takes the `front` fixture and
runs once for each.  Delays are short (0.2 s) and --grey-pass is 1 s
(10 s under valgrind); one redis-server and one dnsmasq serve the whole
module.
"""
import fcntl
import ipaddress
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dnsserver import DNS
from sw_harness import (ANY, IS_ROOT, MTA, REPLY_REJECT, SECONDS, SENDWRAP,
                        SLACK, T, VALGRIND, base_env, check_fields, connect,
                        needs_ipv6, parse_line, run_plain, ucspi_env,
                        unescape)
from test_decoy import command
from test_listener import Listener

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from redisd import SENDWRAP_RULES, RedisServer, free_port  # noqa: E402

REPO = Path(__file__).resolve().parent.parent.parent
DELAY = 0.2
HOST = "mx.grey.test"
GREET = b"220 mx.grey.test ESMTP\r\n"
HELO_OK = b"250 mx.grey.test\r\n"
MAIL_OK = b"250 2.1.0 Ok\r\n"
RCPT_OK = b"250 2.1.5 Ok\r\n"
GREYLISTED = b"451 4.7.1 Greylisted, try again later\r\n"
OK = b"250 2.0.0 Ok\r\n"
BYE = b"221 2.0.0 Bye\r\n"
UNKNOWN = b"502 5.5.2 Command not recognized\r\n"
TOO_LONG = b"500 5.5.2 Line too long\r\n"
VIOLATION = {
    "reject": b"554 5.5.1 SMTP protocol violation\r\n",
    "tempfail": b"421 4.5.1 SMTP protocol violation, try again later\r\n",
    "drop": b"",
}
KNOWN_EARLY = (b"421 4.7.1 Service temporarily unavailable, try again "
               b"later\r\n")
PROGRAM_GREETING = b"220 standin\r\n"
PROGRAM_BYE = b"221 bye\r\n"
GREY_EXPIRE_DEFAULT_MS = 4 * 3600 * 1000
TRAP_TTL_DEFAULT_MS = 86400 * 1000
QUICK = 1.5 + SLACK          # "at once", on a loaded machine
# sendwrap's timers count whole milliseconds from the accept, which may
# come a fraction of one after the client's clock started.
MS = 0.002
# --grey-pass in seconds: under valgrind one connection alone can take
# longer than a second, and a retry meant to be too soon would not be.
PASS_S = 10 if VALGRIND else 1
PASS_MS = PASS_S * 1000
as_root = pytest.mark.skipif(not IS_ROOT, reason="needs root (safefile "
                             "checks of a directory others can write)")


def grey(*extra, delay=DELAY):
    """The options of a greylisting sendwrap; extra: a store and more."""
    return ["-d", str(delay), "--greylist", "--hostname", HOST,
            "--grey-pass", "%ds" % PASS_S] + [str(a) for a in extra]


def now_ms():
    return int(time.time() * 1000)


def utc(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


# ------------------------------------------------------------ front ends

class WrapConn:
    """One connection to a sendwrap of its own (per-connection mode)."""

    def __init__(self, run, ip):
        self.run = run
        self.client = run.client
        self.t0 = run.t0
        self.ip = ip or "127.0.0.1"
        # With an address from the UCSPI variables, the port is theirs.
        self.port = "2525" if ip else run.client_port

    def end(self, timeout=T):
        """Close our end; the connection's one line: (word, fields)."""
        if self.client.sock is not None:
            self.client.close()
        return self.line(timeout)

    def line(self, timeout=T):
        """The connection's one line, once it has ended (on its own)."""
        self.run.wait(timeout)
        lines = [l for l in self.run.log_lines()
                 if not l.startswith("sendwrap: error ")]
        assert len(lines) == 1, "want one line, log:\n" + self.run.log
        return parse_line(lines[0])

    def errors(self):
        return self.run.errors()

    def ran(self):
        """Did the program run?  (The stand-in records it did.)"""
        return self.run.ran()

    @property
    def rc(self):
        return self.run.rc


class ListenConn:
    """One connection to a sendwrap --listen: its line is the one that
    names this connection's port."""

    def __init__(self, lst, client, ip, t0):
        self.lst = lst
        self.client = client
        self.t0 = t0                    # before the connect
        self.ip = ip or "127.0.0.1"
        self.port = client.port

    def end(self, timeout=T):
        if self.client.sock is not None:
            self.client.close()
        return self.line(timeout)

    def line(self, timeout=T):
        deadline = time.monotonic() + timeout
        while True:
            mine = [(w, f) for w, f in self.lst.lines()
                    if f.get("port") == self.port]
            if mine:
                time.sleep(0.05)        # a second line would be a bug
                mine = [(w, f) for w, f in self.lst.lines()
                        if f.get("port") == self.port]
                assert len(mine) == 1, self.lst.text()
                return mine[0]
            assert time.monotonic() < deadline, \
                "no line for port %s:\n%s" % (self.port, self.lst.text())
            time.sleep(0.02)

    def errors(self):
        return [e for e in self.lst.errors() if " port=%s " % self.port in e]

    def ran(self):
        # The program greets the client itself: its greeting is the mark.
        return PROGRAM_GREETING in self.client.data

    rc = 0


class Wrap:
    kind = "wrap"

    def __init__(self, sw, args, env):
        self.sw = sw
        self.args = [str(a) for a in args]
        self.env = dict(env or {})
        self.conns = []

    def connect(self, ip=None, early=b"", env=None):
        """ip: the client's address, as tcpserver's variables say."""
        e = dict(self.env)
        if ip:
            e.update(ucspi_env(ip))
        e.update(env or {})
        conn = WrapConn(self.sw(self.args + MTA, env=e, early=early), ip)
        self.conns.append(conn)
        return conn

    def errors(self):
        return [e for c in self.conns for e in c.errors()]

    def stop(self):
        pass


class Listen:
    kind = "listen"

    def __init__(self, workdir, args, env):
        self.lst = Listener(workdir, [str(a) for a in args] + MTA, env=env)
        self.clients = []

    def connect(self, ip=None, early=b"", env=None):
        """ip: a loopback address the client connects from."""
        assert not env, "the listener has one environment"
        t0 = time.monotonic()
        c = self.lst.connect(source=ip)
        self.clients.append(c)
        if early:
            c.send(early)
        return ListenConn(self.lst, c, ip, t0)

    def errors(self):
        return self.lst.errors()

    def stop(self):
        # A test that failed half-way may leave a session open, which
        # the listener would wait for.
        for c in self.clients:
            if c.sock is not None:
                c.close()
        assert self.lst.stop() == 0, self.lst.text()


@pytest.fixture(params=["wrap", "listen"])
def front(request, sw, tmp_path):
    """front(args, env=None) starts a greylisting front end of the kind
    the test is run for: connect() gives a connection to it."""
    made = []

    def start(args, env=None):
        if request.param == "wrap":
            f = Wrap(sw, args, env)
        else:
            f = Listen(tmp_path / ("listener%d" % len(made)), args, env)
        made.append(f)
        return f

    yield start
    for f in made:
        f.stop()


# ---------------------------------------------------------- the stores

@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    srv = RedisServer(tmp_path_factory.mktemp("redis"),
                      users={"sendwrap": SENDWRAP_RULES})
    yield srv
    srv.stop()


@pytest.fixture
def redis(redis_server):
    redis_server.command("FLUSHALL")
    return redis_server


@pytest.fixture(scope="module")
def dns(tmp_path_factory):
    d = DNS(tmp_path_factory.mktemp("dns"))
    yield d
    d.stop()


def redis_opts(redis, tmp_path):
    pw = redis.password_file(tmp_path / "pw-sendwrap", "sendwrap")
    return ["--redis", redis.url(user="sendwrap"), "--redis-password-file",
            pw]


def lmdb_entries(path):
    """{key: (kind, recorded ms, expires ms)} of an LMDB cache file, read
    with mdb_dump: the times to the millisecond (--cache-list shows
    seconds)."""
    r = subprocess.run(["mdb_dump", "-n", str(path)], capture_output=True,
                       text=True, timeout=T)
    assert r.returncode == 0, r.stderr
    data = r.stdout.split("HEADER=END\n", 1)[1].split("DATA=END")[0].split()
    out = {}
    for k, v in zip(data[0::2], data[1::2]):
        k, v = bytes.fromhex(k), bytes.fromhex(v)
        if k[:1] != b"n":
            continue                    # the expiry index, the counts
        family, length, addr = k[1], k[2], k[3:]
        size = 4 if family == 4 else 16
        ip = ipaddress.ip_address(addr.ljust(size, b"\0"))
        kind = {1: "pass", 2: "bad", 3: "grey"}[v[1]]
        out["%s/%d" % (ip, length)] = (
            kind, int.from_bytes(v[8:16], "little"),
            int.from_bytes(v[16:24], "little"))
    return out


def redis_entries(redis):
    """{key: (kind, recorded ms, expires ms)}; Redis expires each key
    itself (a PTTL)."""
    out = {}
    for key, (kind, rec, exp, pttl) in redis.entries().items():
        assert 0 < pttl <= exp - rec, (key, pttl)
        out[key] = (kind, rec, exp)
    return out


def listing(path):
    """--cache-list: {key: (kind, expires, recorded, state)}."""
    rc, out, err = run_plain(Path(path).parent / "plain",
                             ["--cache-list", str(path)])
    assert rc == 0, err
    return {f[0]: tuple(f[1:]) for f in (l.split(" ")
                                         for l in out.splitlines())}


class Stores:
    """The options for one or both stores, and what they hold."""

    def __init__(self, which, tmp_path, request):
        self.opts, self.lmdb, self.redis = [], None, None
        if which in ("lmdb", "both"):
            self.lmdb = tmp_path / "grey.mdb"
            self.opts += ["-c", str(self.lmdb)]
        if which in ("redis", "both"):
            self.redis = request.getfixturevalue("redis")
            self.opts += redis_opts(self.redis, tmp_path)

    def entries(self):
        """[{key: (kind, recorded, expires)}] for each store in use."""
        out = []
        if self.lmdb:
            out.append(lmdb_entries(self.lmdb))
        if self.redis:
            out.append(redis_entries(self.redis))
        return out

    def commands(self):
        """The options that point a maintenance command at each store."""
        out = []
        if self.lmdb:
            out.append(["-c", str(self.lmdb)])
        if self.redis:
            out.append([o for o in self.opts if o not in ("-c",
                                                          str(self.lmdb))])
        return out

    def entry(self, key="127.0.0.1/32"):
        """The entry at key, the same in every store."""
        got = [e.get(key) for e in self.entries()]
        assert got[0] is not None and all(g == got[0] for g in got), got
        return got[0]


# ------------------------------------------------------------ the dialog

def dialog(conn, helo=b"client.example", mail=b"<s@example.org>",
           rcpts=(b"<r@example.org>",), quit=True, data_reply=GREYLISTED,
           greeting=GREET):
    """The greylisting dialog, one command at a time, every reply checked.
    Returns the seconds from the connection to the greeting."""
    c = conn.client
    t = c.recv_until(greeting) - conn.t0
    assert c.data.endswith(greeting), c.data
    assert command(c, b"EHLO " + helo) == HELO_OK
    assert command(c, b"MAIL FROM:" + mail) == MAIL_OK
    for r in rcpts:
        assert command(c, b"RCPT TO:" + r) == RCPT_OK
    assert command(c, b"DATA") == data_reply
    if quit:
        assert command(c, b"QUIT") == BYE
        c.read_all()
        assert not c.reset
    return t


def arguments(line, verbs):
    """What the log may show as the argument of a command line: the text
    after any of the verbs ("MAIL FROM:" or "MAIL "), at most 64 bytes.
    The interface says "the raw argument" and no more."""
    out = set()
    for v in (v.encode() for v in verbs):
        if line.upper().startswith(v):
            out.add(line[len(v):][:64])
    return out


def check_grey(conn, fields, first, helo, mail, rcpt, rcpts, quit, end,
               test=None, extra=None):
    """Check a grey line's fields (all of them, in order); mail and rcpt:
    the arguments as sent (b"<a@b>"), or None when none was sent."""
    want = {"ip": conn.ip, "port": conn.port, "first": first,
            "age": "0.000" if first == "yes" else SECONDS,
            "helo": ANY, "from": ANY, "rcpt": ANY, "rcpts": str(rcpts),
            "quit": quit, "end": end}
    if test:
        want["test"] = test
    want.update(extra or {})
    check_fields(fields, want)
    assert unescape(fields["helo"]) == helo[:64], fields["helo"]
    for key, sent, verbs in (("from", mail, ["MAIL FROM:", "MAIL "]),
                             ("rcpt", rcpt, ["RCPT TO:", "RCPT "])):
        if sent is None:
            assert fields[key] == '""', fields
        else:
            line = ("MAIL FROM:" if key == "from" else "RCPT TO:").encode() \
                + sent
            assert unescape(fields[key]) in arguments(line, verbs), \
                (key, fields[key])


def program_serves(conn, after=DELAY):
    """The program greets the client (after the delay), QUIT, bye."""
    t = conn.client.recv_until(PROGRAM_GREETING) - conn.t0
    assert t >= after - MS, t
    assert GREET not in conn.client.data
    conn.client.send(b"QUIT\r\n")
    conn.client.recv_until(PROGRAM_BYE)
    return t


def sleep_until_ms(when_ms):
    time.sleep(max(0.0, when_ms / 1000 - time.time()))


# ---------------------------------------------- first attempt, retry, pass

@pytest.mark.parametrize("store", ["lmdb", "redis", "both"])
def test_first_attempt_too_soon_then_pass(front, tmp_path, request, store):
    st = Stores(store, tmp_path, request)
    f = front(grey(*st.opts, "--pass-ttl", "1h"))

    # The first attempt: the delay, our own dialog, 451 to DATA.
    before = now_ms()
    c = f.connect()
    rcpts = [b"<r1@example.org>", b"<r2@example.org>", b"<r3@example.org>"]
    assert dialog(c, rcpts=rcpts) >= DELAY - MS
    word, fields = c.end()
    after = now_ms()
    assert word == "grey", fields
    check_grey(c, fields, "yes", b"client.example", b"<s@example.org>",
               rcpts[0], 3, "yes", "quit")
    assert not c.ran() and c.rc == 0
    assert c.errors() == []
    kind, first, expires = st.entry()
    assert kind == "grey"
    assert before <= first <= after, (before, first, after)
    assert expires - first == GREY_EXPIRE_DEFAULT_MS
    for where in st.commands():
        rc, out, err = run_plain(tmp_path / "plain", where + ["--cache-list"])
        assert rc == 0 and out == "127.0.0.1/32 grey %s %s live\n" % (
            utc(expires), utc(first)), (where, out, err)
        rc, out, err = run_plain(tmp_path / "plain", where +
                                 ["--cache-count"])
        assert (rc, out) == (0, "1 entries: 0 pass, 0 bad, 1 grey, 0 "
                                "expired\n"), (where, err)

    # Too soon: the same dialog; the first attempt's time stays.
    started = now_ms()
    c = f.connect()
    assert dialog(c, quit=False) >= DELAY - MS
    word, fields = c.end()
    assert word == "grey", fields
    check_grey(c, fields, "no", b"client.example", b"<s@example.org>",
               b"<r@example.org>", 1, "no", "client-closed")
    age = float(fields["age"])
    assert 0 < age < PASS_S and age <= (now_ms() - first) / 1000 + 0.01, age
    assert age >= (started - after) / 1000 - 0.002, age
    assert not c.ran()
    assert st.entry() == ("grey", first, expires)

    # After --grey-pass: the delay, then the program; a pass now.
    sleep_until_ms(first + PASS_MS + 100)
    c = f.connect()
    program_serves(c)
    word, fields = c.end()
    assert word == "pass", fields
    check_fields(fields, {"ip": "127.0.0.1", "port": c.port,
                          "delay": "0.200", "waited": SECONDS,
                          "grey": SECONDS})
    assert float(fields["waited"]) >= DELAY
    assert PASS_S <= float(fields["grey"]) < PASS_S + T, fields
    assert c.ran()
    kind, recorded, expires = st.entry()
    assert kind == "pass" and expires - recorded == 3600 * 1000
    assert recorded >= first + PASS_MS

    # And the next one is cached: the program at once.
    c = f.connect()
    t = c.client.recv_until(PROGRAM_GREETING) - c.t0
    assert t < QUICK
    c.client.send(b"QUIT\r\n")
    c.client.recv_until(PROGRAM_BYE)
    word, fields = c.end()
    assert word == "cached", fields


def test_an_expired_first_attempt_starts_over(front, tmp_path):
    cache = tmp_path / "grey.mdb"
    f = front(grey("-c", cache, "--grey-expire", "%ds" % (PASS_S + 1)))
    c = f.connect()
    dialog(c)
    assert c.end()[1]["first"] == "yes"
    kind, first, expires = lmdb_entries(cache)["127.0.0.1/32"]
    assert kind == "grey" and expires - first == PASS_MS + 1000
    # Past --grey-expire: listed as expired, forgotten, a first attempt
    # again.
    sleep_until_ms(expires + 300)
    assert listing(cache)["127.0.0.1/32"] == ("grey", utc(expires),
                                              utc(first), "expired")
    rc, out, err = run_plain(tmp_path / "plain", ["--cache-count",
                                                  str(cache)])
    assert (rc, out) == (0, "1 entries: 0 pass, 0 bad, 1 grey, 1 "
                            "expired\n"), (out, err)
    c = f.connect()
    dialog(c)
    word, fields = c.end()
    assert word == "grey"
    check_grey(c, fields, "yes", b"client.example", b"<s@example.org>",
               b"<r@example.org>", 1, "yes", "quit")
    kind, again, expires = lmdb_entries(cache)["127.0.0.1/32"]
    assert kind == "grey" and again >= first + PASS_MS + 1000, \
        (first, again)
    assert expires - again == PASS_MS + 1000
    assert listing(cache)["127.0.0.1/32"][2] == utc(again)


def test_every_command_of_the_dialog(front, tmp_path):
    f = front(grey("-c", tmp_path / "c.mdb"))
    conn = f.connect()
    c = conn.client
    c.recv_until(GREET)
    assert c.data == GREET
    for line, reply in (
            (b"EHLO client.example", HELO_OK),    # one line: no extensions
            (b"HELO client.example", HELO_OK),
            (b"NOOP", OK),
            (b"RSET", OK),
            (b"STARTTLS", UNKNOWN),
            (b"AUTH PLAIN AGZvbwBiYXI=", UNKNOWN),
            (b"VRFY postmaster", UNKNOWN),
            (b"BDAT 10 LAST", UNKNOWN),
            (b"mail from:<s@example.org>", MAIL_OK),
            (b"rcpt to:<r@example.org>", RCPT_OK),
            (b"RCPT TO:<q@example.org>", RCPT_OK),
            (b"data", GREYLISTED),
            (b"RSET", OK),
            (b"MAIL FROM:<>", MAIL_OK),
            (b"RCPT TO:<postmaster>", RCPT_OK),
            (b"DATA", GREYLISTED),
            (b"quit", BYE)):
        assert command(c, line) == reply, line
    c.read_all()
    assert not c.reset
    word, fields = conn.end()
    assert word == "grey"
    assert fields["quit"] == "yes" and fields["end"] == "quit"
    # RCPT commands, counted across the RSET.
    assert fields["rcpts"] == "3", fields
    assert not conn.ran()


def test_banner_hostname_and_reply_text(front, tmp_path):
    f = front(grey("-c", tmp_path / "c.mdb", "-b", "mx.example.org wait",
                   "--grey-reply", "Come back in 5 minutes please"))
    c = f.connect()
    c.client.recv_until(b"220-mx.example.org wait\r\n", timeout=QUICK)
    assert dialog(c, greeting=GREET, data_reply=b"451 4.7.1 Come back in "
                  b"5 minutes please\r\n") >= DELAY - MS
    assert c.client.data.startswith(b"220-mx.example.org wait\r\n" + GREET)
    assert c.end()[0] == "grey"


def test_default_hostname(sw, tmp_path):
    c = sw(["-d", str(DELAY), "--greylist", "-c", tmp_path / "c.mdb"] + MTA)
    c.client.recv_until(b"\r\n")
    m = re.fullmatch(rb"220 ([A-Za-z0-9.-]+) ESMTP\r\n", c.client.data)
    assert m, c.client.data
    name = socket.gethostname().encode()
    if re.fullmatch(rb"[A-Za-z0-9.-]+", name):
        assert m.group(1) == name
    assert command(c.client, b"HELO x") == b"250 " + m.group(1) + b"\r\n"
    c.finish()
    assert c.verdict()[0] == "grey"


@pytest.mark.parametrize("peer,ip,key", [
    pytest.param("ipv6", "::1", "::/64", marks=needs_ipv6),
    ("mapped", "127.0.0.1", "127.0.0.1/32"),
])
def test_ipv6_and_mapped_clients(sw, tmp_path, peer, ip, key):
    cache = tmp_path / "c.mdb"
    c = sw(grey("-c", cache) + MTA, peer=peer)
    dialog(WrapConn(c, None))
    c.finish()
    word, fields = c.verdict()
    assert word == "grey" and fields["ip"] == ip, fields
    assert list(lmdb_entries(cache)) == [key]
    assert lmdb_entries(cache)[key][0] == "grey"


@needs_ipv6
def test_a_trapped_ipv6_client_is_known_by_its_wider_network(sw, tmp_path):
    """Bad entries of IPv6 clients are kept by /48 at the widest: the
    trapped client's own grey /64 goes, and it is known next time."""
    traps = tmp_path / "traps"
    traps.write_text("trap@example.org\n")
    cache = tmp_path / "c.mdb"
    args = grey("-c", cache, "--greytrap", traps) + MTA
    c = sw(args, peer="ipv6")
    dialog(WrapConn(c, None), rcpts=[b"<trap@example.org>"])
    c.finish()
    assert c.verdict()[0] == "trapped", c.log
    entries = lmdb_entries(cache)
    assert set(entries) == {"::/48"} and entries["::/48"][0] == "bad", \
        entries
    c = sw(args, peer="ipv6")
    assert c.client.read_all(timeout=QUICK) == KNOWN_EARLY
    c.finish()
    assert c.verdict()[0] == "known-early", c.log


def test_the_decoys_greet_with_the_hostname_too(sw):
    c = sw(["--tempfail", "-d", "0", "--hostname", HOST])
    c.client.recv_until(b"\r\n")
    assert c.client.data == GREET
    assert command(c.client, b"HELO x") == HELO_OK
    c.finish()


def test_an_unsafe_host_name_is_made_safe(tmp_path):
    """The default name comes from gethostname(), which holds whatever
    was set: in a UTS namespace of its own, sendwrap meets a name with a
    space and a line end in it, and greets with one safe word."""
    client, srv = connect("ipv4")
    set_name = ("import os, socket, sys; socket.sethostname(sys.argv[1]); "
                "os.execv(sys.argv[2], sys.argv[2:])")
    with open(tmp_path / "stderr", "wb") as err:
        proc = subprocess.Popen(
            ["unshare", "--uts", "--", "/usr/bin/python3", "-c", set_name,
             "evil host\r\n250 x", SENDWRAP, "-d", str(DELAY), "--greylist",
             "-c", str(tmp_path / "c.mdb")] + MTA,
            stdin=srv, stdout=srv, stderr=err, env=base_env(tmp_path))
    srv.close()
    try:
        client.recv_until(b"\r\n")
        m = re.fullmatch(rb"220 ([\x21-\x7e]+) ESMTP\r\n", client.data)
        assert m, client.data
        assert command(client, b"HELO x") == b"250 " + m.group(1) + b"\r\n"
        client.close()
        assert proc.wait(T) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = (tmp_path / "stderr").read_text(errors="replace")
    assert log.startswith("sendwrap: grey "), log


def test_log_fields_are_escaped_and_bounded(front, tmp_path):
    hostile = b'ev"il\\\x01\x00\r\xff\t\xc3\xa9\x7f' + b"a" * 100
    helo, mail, rcpt = b"h" + hostile, b"<m" + hostile + b">", \
        b"<r" + hostile + b">"
    f = front(grey("-c", tmp_path / "c.mdb"))
    c = f.connect()
    c.client.recv_until(GREET)
    assert command(c.client, b"EHLO " + helo) == HELO_OK
    assert command(c.client, b"MAIL FROM:" + mail) == MAIL_OK
    assert command(c.client, b"RCPT TO:" + rcpt) == RCPT_OK
    assert command(c.client, b"RCPT TO:<second@example.org>") == RCPT_OK
    word, fields = c.end()
    assert word == "grey"
    check_grey(c, fields, "yes", helo, mail, rcpt, 2, "no",
               "client-closed")
    for k in ("helo", "from", "rcpt"):
        assert re.fullmatch(r'"[\x20-\x7e]*"', fields[k]), fields[k]


def test_how_a_session_ends(front, tmp_path):
    f = front(grey("-c", tmp_path / "c.mdb"))
    # No HELO, no MAIL: empty fields.
    c = f.connect()
    c.client.recv_until(GREET)
    assert command(c.client, b"QUIT") == BYE
    c.client.read_all()
    word, fields = c.end()
    assert word == "grey"
    check_grey(c, fields, "yes", b"", None, None, 0, "yes", "quit")
    # Reset by the client.
    c = f.connect()
    c.client.recv_until(GREET)
    assert command(c.client, b"HELO x") == HELO_OK
    time.sleep(0.1)
    c.client.abort()
    word, fields = c.line()
    assert word == "grey" and fields["first"] == "no"
    assert (fields["quit"], fields["end"]) == ("no", "reset"), fields


def test_early_talker_and_hangup_as_without_greylisting(front, tmp_path):
    cache = tmp_path / "c.mdb"
    f = front(grey("-c", cache, delay=5))
    c = f.connect(early=b"EHLO early.example\r\n")
    assert c.client.read_all(timeout=QUICK + 1) == REPLY_REJECT
    word, fields = c.end()
    assert word == "early" and fields["action"] == "reject", fields
    assert not c.ran()
    assert not cache.exists() or "127.0.0.1/32" not in lmdb_entries(cache)
    # -x pass: the early talker is handed to the program, input unread.
    f = front(grey("-c", cache, "-x", "pass", delay=5))
    c = f.connect(ip="127.0.0.7", early=b"EHLO early.example\r\n")
    program_serves(c, after=0)
    word, fields = c.end()
    assert word == "early" and fields["action"] == "pass", fields
    assert c.ran()
    # A hang-up during the wait: as without greylisting too.
    c = f.connect()
    time.sleep(0.2)
    c.client.close()
    word, fields = c.line()
    assert word == "hangup" and fields["how"] == "eof", fields
    assert not cache.exists() or "127.0.0.1/32" not in lmdb_entries(cache)


# ------------------------------------------------ tests after the greeting

# name: (the test, the commands sent one by one first, the offending
# write, the lines it may be reported as).
SCENARIOS = {
    "pipelining-ehlo-mail": (
        "pipelining", [],
        b"EHLO a.example\r\nMAIL FROM:<s@example.org>\r\n",
        [b"EHLO a.example\r\n", b"MAIL FROM:<s@example.org>\r\n"]),
    "pipelining-data-body": (
        "pipelining",
        [b"EHLO a.example", b"MAIL FROM:<s@example.org>",
         b"RCPT TO:<r@example.org>"],
        b"DATA\r\nSubject: hi\r\n\r\nbody\r\n.\r\n",
        [b"DATA\r\n", b"Subject: hi\r\n"]),
    "non-smtp-get": (
        "non-smtp", [], b"GET / HTTP/1.0\r\n", [b"GET / HTTP/1.0\r\n"]),
    "non-smtp-connect": (
        "non-smtp", [], b"CONNECT mx.example.org:25 HTTP/1.1\r\n",
        [b"CONNECT mx.example.org:25 HTTP/1.1\r\n"]),
    "non-smtp-header": (
        "non-smtp", [b"EHLO a.example"], b"Host: x\r\n", [b"Host: x\r\n"]),
    "bare-newline": (
        "bare-newline", [b"EHLO a.example"],
        b"MAIL FROM:<s@example.org>\n", [b"MAIL FROM:<s@example.org>\n"]),
}
# bare-newline is not among the default tests.
TESTS_FOR = {"pipelining": [], "non-smtp": [],
             "bare-newline": ["--grey-tests",
                              "pipelining,non-smtp,bare-newline"]}
REPLIES = {b"EHLO a.example": HELO_OK, b"MAIL FROM:<s@example.org>": MAIL_OK,
           b"RCPT TO:<r@example.org>": RCPT_OK}


def offending_lines(write, candidates):
    """The line= values a report may carry: the offending line with or
    without its line end, or the input from it on (what came too soon),
    at most 64 bytes."""
    out = set()
    for line in candidates:
        out.add(line[:64])
        out.add(line.rstrip(b"\r\n")[:64])
        out.add(write[write.index(line):][:64])
    return out


def run_up_to(conn, before):
    conn.client.recv_until(GREET)
    for line in before:
        assert command(conn.client, line) == REPLIES[line]
    return len(conn.client.data)


@pytest.mark.parametrize("action", ["reject", "tempfail", "drop"])
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_a_failed_test_ends_the_session(front, tmp_path, scenario, action):
    test, before, write, lines = SCENARIOS[scenario]
    cache = tmp_path / "c.mdb"
    f = front(grey("-c", cache, "-x", action, "--bad-ttl", "1h",
                   *TESTS_FOR[test], delay=0.1))
    c = f.connect()
    start = run_up_to(c, before)
    c.client.send(write)
    got = c.client.read_all()[start:]
    assert got == VIOLATION[action], got
    if action != "drop":
        assert not c.client.reset
    word, fields = c.end()
    assert word == test, (word, fields)
    check_fields(fields, {"ip": "127.0.0.1", "port": c.port,
                          "after": SECONDS, "commands": re.compile(r"\d+"),
                          "line": ANY, "action": action})
    assert float(fields["after"]) < T
    # The commands answered before, or those and the offending one.
    assert int(fields["commands"]) in (len(before), len(before) + 1), fields
    assert unescape(fields["line"]) in offending_lines(write, lines), \
        fields
    assert not c.ran()
    assert lmdb_entries(cache)["127.0.0.1/32"][0] == "bad"
    # Known now: turned away at once, for now, whatever -x says.
    again = f.connect()
    assert again.client.read_all(timeout=QUICK) == KNOWN_EARLY
    word, fields = again.end()
    assert word == "known-early" and fields["action"] == "tempfail", fields


def test_a_failed_test_without_bad_ttl_starts_over(front, tmp_path):
    """No --bad-ttl: the failed test is refused as -x says, nothing is
    recorded as bad, and the first attempt does not count (sendwrap.8):
    a bot cannot pass by coming back."""
    cache = tmp_path / "c.mdb"
    f = front(grey("-c", cache, delay=0.1))
    c = f.connect()
    c.client.recv_until(GREET)
    c.client.send(b"EHLO a.example\r\nMAIL FROM:<s@example.org>\r\n")
    assert c.client.read_all()[len(GREET):] == VIOLATION["reject"]
    assert c.end()[0] == "pipelining"
    assert "127.0.0.1/32" not in lmdb_entries(cache)
    c = f.connect()
    dialog(c)
    word, fields = c.end()
    assert word == "grey" and fields["first"] == "yes", (word, fields)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_a_failed_test_with_x_pass_only_notes_it(front, tmp_path, scenario):
    test, before, write, _ = SCENARIOS[scenario]
    f = front(grey("-c", tmp_path / "c.mdb", "-x", "pass",
                   *TESTS_FOR[test], delay=0.1))
    c = f.connect()
    start = run_up_to(c, before)
    c.client.send(write)
    # One reply a line; then the session goes on.
    want = write.count(b"\n")
    deadline = time.monotonic() + T
    while c.client.data[start:].count(b"\r\n") < want:
        assert c.client._read(deadline) and not c.client.eof, c.client.data
    replies = c.client.data[start:].split(b"\r\n")[:-1]
    assert all(re.fullmatch(rb"[2-5]\d\d [\x20-\x7e]+", r) for r in replies)
    if scenario == "pipelining-ehlo-mail":
        assert c.client.data[start:] == HELO_OK + MAIL_OK
    assert command(c.client, b"QUIT") == BYE
    c.client.read_all()
    word, fields = c.end()
    assert word == "grey", (word, fields)
    assert list(fields)[-1] == "test" and fields["test"] == test, fields
    assert fields["quit"] == "yes" and fields["end"] == "quit"
    assert not c.ran()


def test_tests_left_out_catch_nothing(front, tmp_path):
    """--grey-tests none: every scenario is an ordinary session; and
    bare newlines are not caught by the default tests."""
    cache = tmp_path / "c.mdb"
    runs = [("none", s) for s in sorted(SCENARIOS)] + \
        [("default", "bare-newline")]
    fronts = {"none": front(grey("-c", cache, "--grey-tests", "none",
                                 "--bad-ttl", "1h", delay=0.1)),
              "default": front(grey("-c", cache, "--bad-ttl", "1h",
                                    delay=0.1))}
    for n, (tests, scenario) in enumerate(runs):
        _, before, write, _ = SCENARIOS[scenario]
        c = fronts[tests].connect(ip="127.0.0.%d" % (10 + n))
        start = run_up_to(c, before)
        c.client.send(write)
        want = write.count(b"\n")
        deadline = time.monotonic() + T
        while c.client.data[start:].count(b"\r\n") < want:
            assert c.client._read(deadline) and not c.client.eof, \
                (scenario, c.client.data)
        if scenario == "bare-newline":
            assert c.client.data[start:] == MAIL_OK, c.client.data
        if scenario == "pipelining-ehlo-mail":
            assert c.client.data[start:] == HELO_OK + MAIL_OK
        assert command(c.client, b"QUIT") == BYE
        c.client.read_all()
        word, fields = c.end()
        assert word == "grey", (scenario, word, fields)
        assert "test" not in fields, (scenario, fields)
    keys = lmdb_entries(cache)
    assert {v[0] for v in keys.values()} == {"grey"}, keys


# ------------------------------------------------------------- greytraps

TRAPS = "# greytraps\n\ntrap@example.org\n  spam@example.net  \n"


def test_greytrap_same_replies_trapped_and_known(front, tmp_path):
    traps = tmp_path / "traps"
    traps.write_text(TRAPS)
    cache = tmp_path / "c.mdb"
    f = front(grey("-c", cache, "--greytrap", traps, "--bad-ttl", "1h",
                   "--trap-ttl", "2h"))
    plain = f.connect(ip="127.0.0.20")
    dialog(plain, rcpts=[b"<other@example.org>", b"<Tr4p@Example.ORG>"])
    trapped = f.connect(ip="127.0.0.21")
    dialog(trapped, rcpts=[b"<other@example.org>", b"<Trap@Example.ORG>"])
    # Exactly the same replies, in the same order.
    assert trapped.client.data == plain.client.data
    assert plain.end()[0] == "grey"
    word, fields = trapped.end()
    assert word == "trapped", (word, fields)
    check_fields(fields, {"ip": "127.0.0.21", "port": trapped.port,
                          "age": SECONDS, "trap": ANY, "helo": '"client.'
                          'example"', "from": ANY, "rcpts": "2",
                          "quit": "yes", "end": "quit"})
    assert unescape(fields["trap"]).strip(b"<>").lower() == \
        b"trap@example.org", fields
    assert unescape(fields["from"]) in arguments(
        b"MAIL FROM:<s@example.org>", ["MAIL FROM:", "MAIL "])
    assert not trapped.ran()
    assert trapped.errors() == [] and plain.errors() == []
    # Recorded bad for --trap-ttl (not --bad-ttl) ...
    kind, recorded, expires = lmdb_entries(cache)["127.0.0.21/32"]
    assert kind == "bad" and expires - recorded == 2 * 3600 * 1000
    # ... and so turned away at once next time; the other is greylisted.
    again = f.connect(ip="127.0.0.21")
    assert again.client.read_all(timeout=QUICK) == KNOWN_EARLY
    assert again.end()[0] == "known-early"
    c = f.connect(ip="127.0.0.20")
    dialog(c)
    assert c.end()[1]["first"] == "no"


def test_greytrap_default_ttl_without_bad_ttl(front, tmp_path):
    """No --bad-ttl: a trapped network is still recorded (for the default
    --trap-ttl) and turned away next time."""
    traps = tmp_path / "traps"
    traps.write_text("trap@example.org\n")
    cache = tmp_path / "c.mdb"
    f = front(grey("-c", cache, "--greytrap", traps))
    c = f.connect()
    dialog(c, rcpts=[b"<TRAP@EXAMPLE.ORG>"])
    assert c.end()[0] == "trapped"
    kind, recorded, expires = lmdb_entries(cache)["127.0.0.1/32"]
    assert kind == "bad" and expires - recorded == TRAP_TTL_DEFAULT_MS
    again = f.connect()
    assert again.client.read_all(timeout=QUICK) == KNOWN_EARLY
    assert again.end()[0] == "known-early"


@pytest.mark.parametrize("rcpt", [
    b"RCPT TO: <trap@example.org>",
    b"RCPT TO:<SPAM@example.NET> NOTIFY=NEVER",
    b"rcpt to:<Spam@Example.Net>",
], ids=["space", "parameters", "lower-case"])
def test_greytrap_in_any_form_of_rcpt(front, tmp_path, rcpt):
    """Every form of RCPT naming a trap is caught; trap= is the trap's
    address as the list has it (lower case), whatever else the command
    carried."""
    traps = tmp_path / "traps"
    traps.write_text("trap@example.org\nspam@example.net   # honeypot\n")
    f = front(grey("-c", tmp_path / "c.mdb", "--greytrap", traps))
    c = f.connect()
    c.client.recv_until(GREET)
    assert command(c.client, b"HELO x") == HELO_OK
    assert command(c.client, b"MAIL FROM:<s@example.org>") == MAIL_OK
    assert command(c.client, rcpt) == RCPT_OK
    assert command(c.client, b"DATA") == GREYLISTED
    word, fields = c.end()
    assert word == "trapped", (word, fields)
    addr = re.search(rb"<(.*)>", rcpt).group(1)
    assert unescape(fields["trap"]) == addr.lower(), fields
    assert f.errors() == []


@pytest.mark.parametrize("how", ["malformed", "missing", "directory"])
def test_a_broken_greytrap_file_costs_no_mail(front, tmp_path, how):
    traps = tmp_path / "traps"
    if how == "malformed":
        traps.write_text("trap@example.org\nthis is not an address\n")
        mention = "%s:2:" % traps
    elif how == "directory":
        traps.mkdir()
        mention = str(traps)
    else:
        mention = str(traps)
    f = front(grey("-c", tmp_path / "c.mdb", "--greytrap", traps))
    c = f.connect()
    dialog(c)
    word, fields = c.end()
    assert word == "grey", (word, fields)
    assert not c.ran()
    errors = f.errors()
    assert errors and all(mention in e for e in errors), errors


def test_check_reports_greytrap_problems(plain, tmp_path):
    traps = tmp_path / "traps"
    traps.write_text("trap@example.org\nthis is not an address\n")
    args = ["-n", "--greylist", "-c", str(tmp_path / "c.mdb"), "--greytrap",
            str(traps)] + MTA
    rc, out, err = plain(args)
    assert rc == 100, (out, err)
    assert "%s:2:" % traps in err, err
    assert out.endswith("configuration has errors\n"), out
    traps.write_text(TRAPS)
    rc, out, err = plain(args)
    assert rc == 0, (out, err)
    assert out.endswith("configuration ok\n"), out
    rc, out, err = plain(args[:-len(MTA) - 1] + [str(tmp_path / "no")] + MTA)
    assert rc == 100 and str(tmp_path / "no") in err, (out, err)


# ------------------------------------------------------------ exemptions

def no_grey_entries(cache):
    return not cache.exists() or all(
        v[0] != "grey" for v in lmdb_entries(cache).values())


def test_allowlisted_client_is_not_greylisted(front, tmp_path):
    cache = tmp_path / "c.mdb"
    f = front(grey("-c", cache, "-A", "127.0.0.0/8", delay=5))
    c = f.connect()
    program_serves(c, after=0)
    assert c.client.data.startswith(PROGRAM_GREETING)
    word, fields = c.end()
    assert word == "allow" and fields["reason"] == "allowlist", fields
    assert no_grey_entries(cache)


@pytest.mark.parametrize("env,allowed", [
    ({"RELAYCLIENT": ""}, "RELAYCLIENT"),
    ({"GREETDELAY": "0"}, "GREETDELAY"),
    ({"GREETDELAY": str(DELAY)}, None),
], ids=["RELAYCLIENT", "GREETDELAY=0", "GREETDELAY=0.2"])
def test_tcprules_marks(sw, tmp_path, env, allowed):
    """$RELAYCLIENT and $GREETDELAY=0 are never greylisted; a client
    that waited $GREETDELAY is."""
    cache = tmp_path / "c.mdb"
    c = sw(grey("-c", cache, delay=5) + MTA, env=env)
    if allowed:
        assert c.greeted() < QUICK
        c.finish(quit=True)
        word, fields = c.verdict()
        assert word == "allow" and fields["reason"] == allowed, fields
        assert no_grey_entries(cache)
        return
    assert DELAY - MS <= dialog(WrapConn(c, None)) < 5
    c.finish()
    assert c.verdict()[0] == "grey"
    assert lmdb_entries(cache)["127.0.0.1/32"][0] == "grey"


def test_allowlist_entry_with_a_delay_is_not_greylisted(front, tmp_path):
    cache = tmp_path / "c.mdb"
    allow = tmp_path / "allow"
    allow.write_text("127.0.0.0/8 %s\n" % DELAY)
    f = front(grey("-c", cache, "-a", allow, delay=5))
    c = f.connect()
    assert program_serves(c) < 5
    word, fields = c.end()
    assert word == "pass" and "grey" not in fields, fields
    assert no_grey_entries(cache)


def test_dnswl_client_is_not_greylisted(front, tmp_path, dns):
    cache = tmp_path / "c.mdb"
    lists = ["--dnsbl", "bl.test", "--dnswl", "wl.test", "--dns-server",
             dns.server]
    f = front(grey("-c", cache, *lists, delay=5))
    c = f.connect(ip="127.0.0.3")             # on wl.test
    program_serves(c, after=0)
    word, fields = c.end()
    assert word == "allow" and fields["reason"] == "dnswl", fields
    assert no_grey_entries(cache)
    # One on the block list is refused, as without greylisting.
    c = f.connect(ip="127.0.0.1")
    assert c.client.read_all(timeout=QUICK + 2).startswith(b"554 5.7.1 ")
    assert c.end()[0] == "dnsbl"
    # A client on neither list is greylisted; the line has its score.
    f = front(grey("-c", cache, *lists))
    c = f.connect(ip="127.0.0.6")
    dialog(c)
    word, fields = c.end()
    assert word == "grey", fields
    check_grey(c, fields, "yes", b"client.example", b"<s@example.org>",
               b"<r@example.org>", 1, "yes", "quit",
               extra={"score": "0"})


def test_a_cached_pass_is_not_greylisted(front, tmp_path):
    cache = tmp_path / "c.mdb"
    # The cache of a sendwrap that ran without --greylist before.
    f = front(["-d", str(DELAY), "-c", cache])
    c = f.connect()
    program_serves(c)
    assert c.end()[0] == "pass"
    f = front(grey("-c", cache, delay=5))
    c = f.connect()
    program_serves(c, after=0)
    assert c.end()[0] == "cached"
    assert no_grey_entries(cache)


def test_a_retry_that_talks_early_is_an_early_talker(front, tmp_path):
    """After --grey-pass a retry waits the delay as any client: talking
    early still counts."""
    cache = tmp_path / "c.mdb"
    f = front(grey("-c", cache, "--bad-ttl", "1h", delay=0.5))
    c = f.connect()
    dialog(c)
    assert c.end()[0] == "grey"
    first = lmdb_entries(cache)["127.0.0.1/32"][1]
    sleep_until_ms(first + PASS_MS + 100)
    c = f.connect(early=b"EHLO hasty.example\r\n")
    assert c.client.read_all(timeout=QUICK) == REPLY_REJECT
    assert c.end()[0] == "early"
    assert not c.ran()
    assert lmdb_entries(cache)["127.0.0.1/32"][0] == "bad"


def test_the_listener_reads_the_greytraps_again_on_sighup(tmp_path):
    """(core.h: the greytrap list is read again on SIGHUP, its good
    lines used whatever the bad ones.)"""
    traps = tmp_path / "traps"
    traps.write_text("other@example.org\n")
    f = Listen(tmp_path / "l", grey("-c", tmp_path / "c.mdb",
                                    "--greytrap", traps), None)
    try:
        c = f.connect(ip="127.0.0.30")
        dialog(c, rcpts=[b"<trap@example.org>"])
        assert c.end()[0] == "grey"
        traps.write_text("trap@example.org\nnot an address\n")
        f.lst.signal(signal.SIGHUP)
        f.lst.wait_for("reload")
        c = f.connect(ip="127.0.0.31")
        dialog(c, rcpts=[b"<trap@example.org>"])
        assert c.end()[0] == "trapped"
        assert any("%s:2:" % traps in e for e in f.errors()), f.errors()
    finally:
        f.stop()


def test_a_neighbour_in_the_same_network_passes(front, tmp_path):
    cache = tmp_path / "c.mdb"
    f = front(grey("-c", cache, "--cache-net", "24,64"))
    c = f.connect(ip="127.0.0.5")
    dialog(c)
    assert c.end()[0] == "grey"
    kind, first, _ = lmdb_entries(cache)["127.0.0.0/24"]
    assert kind == "grey"
    sleep_until_ms(first + PASS_MS + 100)
    c = f.connect(ip="127.0.0.6")
    program_serves(c)
    word, fields = c.end()
    assert word == "pass" and float(fields["grey"]) >= PASS_S, fields
    assert lmdb_entries(cache)["127.0.0.0/24"][0] == "pass"


def test_hosts_share_a_first_attempt_through_redis(sw, redis, tmp_path):
    """Host A (its own file) sees the first attempt, host B (another
    file, the same Redis) the retry: it passes."""
    r = redis_opts(redis, tmp_path)
    a = sw(grey("-c", tmp_path / "a.mdb", *r) + MTA)
    dialog(WrapConn(a, None))
    a.finish()
    assert a.verdict()[0] == "grey"
    _, first, _ = redis_entries(redis)["127.0.0.1/32"]
    sleep_until_ms(first + PASS_MS + 100)
    b = sw(grey("-c", tmp_path / "b.mdb", *r) + MTA)
    program_serves(WrapConn(b, None))
    b.finish()
    word, fields = b.verdict()
    assert word == "pass" and float(fields["grey"]) >= PASS_S, b.log
    assert redis_entries(redis)["127.0.0.1/32"][0] == "pass"
    # A holds its own grey entry; Redis's pass wins: cached at once.
    assert lmdb_entries(tmp_path / "a.mdb")["127.0.0.1/32"][0] == "grey"
    a = sw(grey("-c", tmp_path / "a.mdb", *r, delay=5) + MTA)
    assert a.greeted() < QUICK
    a.finish(quit=True)
    assert a.verdict()[0] == "cached", a.log


def test_a_copy_from_redis_is_the_first_attempt_elsewhere(sw, redis,
                                                          tmp_path):
    """Host B meets the client too soon after its first attempt at A:
    greylisted, its first attempt A's; after --grey-pass B passes it."""
    r = redis_opts(redis, tmp_path)
    a = sw(grey("-c", tmp_path / "a.mdb", *r) + MTA)
    dialog(WrapConn(a, None))
    a.finish()
    first = redis_entries(redis)["127.0.0.1/32"][1]
    b = sw(grey("-c", tmp_path / "b.mdb", *r) + MTA)
    dialog(WrapConn(b, None))
    b.finish()
    word, fields = b.verdict()
    assert word == "grey" and fields["first"] == "no", b.log
    assert redis_entries(redis)["127.0.0.1/32"][:2] == ("grey", first)
    sleep_until_ms(first + PASS_MS + 100)
    b = sw(grey("-c", tmp_path / "b.mdb", *r) + MTA)
    program_serves(WrapConn(b, None))
    b.finish()
    assert b.verdict()[0] == "pass", b.log


def test_trapped_at_one_host_is_known_at_another(sw, redis, tmp_path):
    """A network that named a greytrap at B does not pass at A for
    having come back after --grey-pass: Redis's bad entry wins over A's
    own grey one."""
    traps = tmp_path / "traps"
    traps.write_text("trap@example.org\n")
    r = redis_opts(redis, tmp_path) + ["--greytrap", str(traps)]
    a = sw(grey("-c", tmp_path / "a.mdb", *r) + MTA)
    dialog(WrapConn(a, None))
    a.finish()
    first = redis_entries(redis)["127.0.0.1/32"][1]
    b = sw(grey("-c", tmp_path / "b.mdb", *r) + MTA)
    dialog(WrapConn(b, None), rcpts=[b"<trap@example.org>"])
    b.finish()
    assert b.verdict()[0] == "trapped", b.log
    assert redis_entries(redis)["127.0.0.1/32"][0] == "bad"
    sleep_until_ms(first + PASS_MS + 100)
    a = sw(grey("-c", tmp_path / "a.mdb", *r) + MTA)
    assert a.client.read_all(timeout=QUICK) == KNOWN_EARLY
    a.finish()
    assert a.verdict()[0] == "known-early", a.log
    assert not a.ran()


# ------------------------------------------------------------ usage

@pytest.mark.parametrize("args,named", [
    (["--greylist"], "--greylist"),
    (["--greylist", "-c", "C", "--grey-pass", "2s", "--grey-expire", "1s"],
     "--grey-expire"),
    (["--greylist", "-c", "C", "--grey-pass", "0.5"], "--grey-pass"),
    (["--greylist", "-c", "C", "--grey-pass", "2d"], "--grey-pass"),
    (["--greylist", "-c", "C", "--grey-pass", "soon"], "--grey-pass"),
    (["--greylist", "-c", "C", "--grey-expire", "8d"], "--grey-expire"),
    (["--greylist", "-c", "C", "--grey-tests", "pipelining,telepathy"],
     "--grey-tests"),
    (["--greylist", "-c", "C", "--trap-ttl", "soon"], "--trap-ttl"),
    (["-c", "C", "--greytrap", "T"], "--greytrap"),
    (["-c", "C", "--trap-ttl", "1h"], "--trap-ttl"),
    (["-c", "C", "--grey-pass", "1m"], "--grey-pass"),
    (["-c", "C", "--grey-expire", "1h"], "--grey-expire"),
    (["-c", "C", "--grey-tests", "none"], "--grey-tests"),
    (["-c", "C", "--grey-reply", "later"], "--grey-reply"),
], ids=lambda a: " ".join(a) if isinstance(a, list) else a)
def test_usage_errors(plain, tmp_path, args, named):
    cache = tmp_path / "u.mdb"
    (tmp_path / "T").write_text("trap@example.org\n")
    args = [str(cache) if a == "C" else str(tmp_path / "T") if a == "T"
            else a for a in args]
    rc, out, err = plain(args + MTA)
    assert rc == 100, (out, err)
    assert named in err, err
    assert out == ""
    assert not cache.exists()


@pytest.mark.parametrize("mode", ["--tarpit", "--tempfail"])
def test_greylist_is_for_the_wrapper_only(plain, tmp_path, mode):
    rc, out, err = plain(["-n", mode, "--greylist"])
    assert rc == 100 and "--greylist" in err, (out, err)


@pytest.mark.parametrize("opt,text", [
    ("--grey-reply", "later\r\n250 ok"),
    ("--hostname", "mx\r\n250 ok"),
    ("--grey-reply", ""),
    ("--grey-reply", "x" * 201),
], ids=["reply-line-end", "hostname-line-end", "reply-empty",
        "reply-201"])
def test_texts_that_would_break_a_reply_are_refused(plain, tmp_path, opt,
                                                    text):
    """A reply text or a name with a line end in it would let the
    configuration forge replies (the interface does not say; sendwrap.8:
    --grey-reply is 1 to 200 printable characters)."""
    rc, out, err = plain(["-n", "--greylist", "-c", str(tmp_path / "c.mdb"),
                          opt, text] + MTA)
    assert rc == 100 and opt in err, (out, err)


def test_limits_of_the_durations_are_allowed(plain, tmp_path):
    for extra in (["--grey-pass", "1s", "--grey-expire", "1s"],
                  ["--grey-pass", "1d", "--grey-expire", "7d"],
                  ["--grey-tests", "none"],
                  ["--grey-tests", "bare-newline,non-smtp,pipelining"]):
        rc, out, err = plain(["-n", "--greylist", "-c",
                              str(tmp_path / "c.mdb")] + extra + MTA)
        assert rc == 0, (extra, out, err)


# ------------------------------------------------ failing stores cost no mail

def served_without_greylisting(f, mention, after=DELAY, ip=None):
    c = f.connect(ip=ip)
    program_serves(c, after=after)
    word, fields = c.end()
    assert word == "pass", (word, fields)
    assert "grey" not in fields, fields
    assert c.ran()
    errors = f.errors()
    assert errors and all(mention in e for e in errors), errors
    if f.kind == "wrap":
        assert len(c.errors()) == 1, errors
    return errors


@as_root
def test_a_cache_in_an_unsafe_directory(front, tmp_path):
    d = tmp_path / "shared"
    d.mkdir()
    d.chmod(0o770)
    cache = d / "c.mdb"
    f = front(grey("-c", cache))
    errors = served_without_greylisting(f, str(cache))
    assert "writable by group or others" in errors[0], errors
    assert list(d.iterdir()) == []


def test_a_cache_that_cannot_be_written(front, tmp_path):
    """A writer holds the lock: the grey entry cannot be recorded, and a
    first attempt that is not recorded would be one for ever."""
    cache = tmp_path / "c.mdb"
    f = front(grey("-c", cache))
    c = f.connect(ip="127.0.0.40")           # makes the file
    dialog(c)
    assert c.end()[0] == "grey"
    with open(cache, "rb") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        served_without_greylisting(f, "lock")
    assert "127.0.0.1/32" not in lmdb_entries(cache)


@pytest.mark.every_case_under_valgrind
@pytest.mark.parametrize("how", ["refused", "stopped"])
def test_a_redis_that_is_down(front, redis, tmp_path, how):
    pw = redis.password_file(tmp_path / "pw", "sendwrap")
    url = redis.url(user="sendwrap")
    if how == "refused":
        url = "redis://sendwrap@127.0.0.1:%d" % free_port()
    f = front(grey("--redis", url, "--redis-password-file", pw,
                   "--redis-timeout", "300ms"))
    if how == "stopped":
        redis.pause()
    try:
        served_without_greylisting(f, "redis")
        # And the next client too, Redis still down.
        served_without_greylisting(f, "redis", ip="127.0.0.2")
    finally:
        if how == "stopped":
            redis.resume()
    # Nothing was recorded grey (a pass sent meanwhile may land later).
    time.sleep(0.2)
    assert all(v[0] == "pass" for v in redis_entries(redis).values()), \
        redis_entries(redis)


def test_one_store_of_two_down(front, tmp_path):
    """-c and a Redis that is down.  The interface says a store failure
    serves the client as without greylisting; with the LMDB file still
    keeping first attempts, greylisting on with it costs no mail either.
    Either way: logged, never refused, and a greylisted client's retry
    after --grey-pass passes."""
    cache = tmp_path / "c.mdb"
    pw = tmp_path / "pw"
    pw.write_text("x\n")
    pw.chmod(0o600)
    f = front(grey("-c", cache, "--redis", "redis://127.0.0.1:%d" %
                   free_port(), "--redis-password-file", pw,
                   "--redis-timeout", "300ms"))
    c = f.connect()
    c.client.recv_until(b"\r\n")
    if c.client.data == PROGRAM_GREETING:
        c.client.send(b"QUIT\r\n")
        c.client.recv_until(PROGRAM_BYE)
        assert c.end()[0] == "pass"
    else:
        dialog(c, greeting=GREET)
        assert c.end()[0] == "grey"
        kind, first, _ = lmdb_entries(cache)["127.0.0.1/32"]
        assert kind == "grey"
        sleep_until_ms(first + PASS_MS + 100)
        c = f.connect()
        program_serves(c)
        assert c.end()[0] == "pass"
    errors = f.errors()
    assert errors and all("redis" in e for e in errors), errors


# ------------------------------------------------------------ limits

def dialog_constant(name):
    """A constant of dialog.h (its value may be an expression): DIALOG_X,
    or GREY_X as the interface calls it."""
    text = (REPO / "dialog.h").read_text()
    m = re.search(r"^#define\s+(?:DIALOG|GREY)_%s\s+(.+?)\s*(?:/\*.*)?$"
                  % name, text, re.M)
    assert m, "%s is not in dialog.h" % name
    expr = re.sub(r"(?<=\d)[uUlL]+\b", "", m.group(1))
    expr = re.sub(r"\((?:uint64_t|unsigned|long|int)\)", "", expr)
    assert re.fullmatch(r"[\d\s()*+/-]+", expr), expr
    return int(eval(expr))


def test_the_command_limit(front, tmp_path):
    n = dialog_constant("COMMANDS_MAX")
    f = front(grey("-c", tmp_path / "c.mdb", "--grey-tests", "none"))
    c = f.connect()
    c.client.recv_until(GREET)
    c.client.send(b"NOOP\r\n" * (n + 1))
    data = c.client.read_all()
    replies = data[len(GREET):].split(b"\r\n")
    assert replies[:n] == [OK.rstrip(b"\r\n")] * n, data
    assert replies[n].startswith(b"421 4.7.0 ") and replies[n + 1:] == [b""]
    word, fields = c.end()
    assert word == "grey" and fields["end"] == "max-commands", fields
    assert fields["quit"] == "no"


def test_line_length(front, tmp_path):
    f = front(grey("-c", tmp_path / "c.mdb"))
    c = f.connect()
    c.client.recv_until(GREET)
    # 512 bytes with the CRLF: a command line; one more: too long.
    assert command(c.client, b"NOOP " + b"x" * 505) == OK
    assert command(c.client, b"NOOP " + b"x" * 506) == TOO_LONG
    assert command(c.client, b"EHLO " + b"y" * 5000) == TOO_LONG
    assert command(c.client, b"EHLO after.example") == HELO_OK
    assert command(c.client, b"QUIT") == BYE
    word, fields = c.end()
    assert word == "grey" and fields["helo"] == '"after.example"', fields
