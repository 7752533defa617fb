"""sendwrap's own listener mode (--listen) with real parts: one sendwrap
process accepts every connection and holds every waiting client in its
event loop; only a client that passes costs a child, which runs exim -bs
or sendmail -bs on the socket.  The scenarios of the tcpserver tests
(patient clients, a blind bot, a hang-up, the allowlist, the pass cache,
IPv6, the environment the MTA sees), then a flood of 2 000 waiting
clients and 1 000 early talkers, the tar pit holding 2 000 bots,
SIGHUP and SIGTERM, and 200 clients greeted on time while the log daemon
is stalled.

How it is observed:
- **Forks**: the listener runs in a PID namespace of its own
  (e2elib.Listener), where every new process takes the next PID: the
  namespace's last PID, read before and after, counts the processes the
  listener started.  "No fork" is that count staying put.
- **MTA runs**: exim's +smtp_connection lines and sendmail's "connect
  from", as in the other tests.
- **Held at once**: the listener's own descriptors (/proc/PID/fd), with
  no child, while no held client has received a byte.
- Many clients come from several 127.0.x.y source addresses, 20 each,
  the listener's default --per-ip; the test raises its own descriptor
  limit to hold them.
"""

import json
import os
import re
import resource
import selectors
import signal
import smtplib
import socket
import struct
import threading
import time

import pytest

from e2elib import (REJECT_554, SENDWRAP, SERVER_ENV, SLACK, Greeting,
                    Listener, LineReader, PrivateNS, SocketActivate,
                    SyslogListener, TcpServer, assert_delayed, assert_prompt, bot_payload,
                    check_message, connect,
                    deliver_patiently, greeted_at_once, make_message,
                    refuse_bot, smtp_deliver, swaks, wait_until,
                    write_swaks_data)
from test_examples import QMAIL_STANDIN
from test_ipv6 import v6_available
from test_passcache import bot_then_known_early, cache_list
from test_sendmail import queued, swaks_one

TOO_MANY_421 = b"421 4.3.2 Too many connections, try again later\r\n"
PER_IP_421 = b"421 4.7.0 Too many connections from your address, " \
    b"try again later\r\n"
SHUTDOWN_421 = b"421 4.3.2 Service shutting down, try again later\r\n"
ALLOWED_IP = "127.0.0.3"
PER_IP = 20                     # sendwrap's default --per-ip


def verdicts(lst, pattern=r"^(pass|early|allow|cached|known-early|hangup) "):
    return sorted(l.split()[0] for l in lst.sendwrap_lines()
                  if re.search(pattern, l))


def no_children(lst, timeout=10):
    """Every program the listener started has ended and been reaped."""
    left = wait_until(lambda: not lst.children(), timeout) or lst.children()
    assert left is True or left == [], "children left: %r" % (left,)


# ------------------------------------------------------------ the scenarios

def test_patient_clients_deliver_and_a_bot_costs_no_fork(wd, mta):
    """swaks and a sending exim wait out -d 3 and deliver, intact, one MTA
    session each; a blind bot gets sendwrap's 554 from the listener itself
    (no process started, the MTA never runs); an allowlisted client is
    greeted by the MTA at once."""
    lst = Listener(wd, ["-d", "3", "-A", ALLOWED_IP + "/32"], mta.argv(),
                   ns=mta.ns)
    deliver_patiently(wd, "127.0.0.1", lst.port, mta, "listener", 3.0)
    assert mta.connections() == 2
    assert lst.forks() >= 2         # a child for each, then the MTA's own

    refuse_bot("127.0.0.1", lst.port, tag="listener-bot")
    assert lst.wait_lines(r"^early ip=127\.0\.0\.1 .* action=reject$")
    assert lst.forks() == 0, "a process was started for the bot"
    assert mta.connections() == 2

    greeted_at_once("127.0.0.1", lst.port, mta, source=ALLOWED_IP)
    assert mta.connections() == 3
    assert lst.wait_lines(r"^allow ip=127\.0\.0\.3 port=\d+ "
                          r"reason=allowlist rule=127\.0\.0\.3/32$")
    lines = lst.wait_lines(r"^pass ", count=2)
    assert all(re.fullmatch(r"pass ip=127\.0\.0\.1 port=\d+ delay=3\.000 "
                            r"waited=\d+\.\d+", l) for l in lines), lines
    assert verdicts(lst) == ["allow", "early", "pass", "pass"], lst.log()
    no_children(lst)
    assert lst.proc.poll() is None


def test_hangup_and_reset_cost_no_fork(wd, mx):
    lst = Listener(wd, ["-d", "15"], mx.argv())
    t0 = time.monotonic()
    a = connect("127.0.0.1", lst.port)
    b = connect("127.0.0.1", lst.port)
    time.sleep(0.3)
    a.close()
    b.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    b.close()
    lines = lst.wait_lines(r"^hangup ", count=2)
    assert time.monotonic() - t0 < 10, "noticed only at the deadline"
    hows = sorted(re.fullmatch(r"hangup ip=127\.0\.0\.1 port=\d+ "
                               r"after=\d+\.\d+ how=(\w+)", l).group(1)
                  for l in lines)
    assert hows == ["eof", "reset"], lst.log()
    assert lst.forks() == 0
    assert lst.children() == []
    assert mx.connections() == 0 and mx.messages() == []


def test_allowlist_file_with_a_per_entry_delay(wd, mx):
    """-a FILE: an entry without a delay is greeted at once and delivers;
    an entry with its own delay waits that long, not the default; a
    stranger waits the default."""
    path = os.path.join(wd, "allowlist")
    with open(path, "w") as f:
        f.write("# test\n127.0.0.3/32\n127.0.0.4/32 1.5s\n")
    lst = Listener(wd, ["-d", "10", "-a", path], mx.argv())

    _, greet, headers, body = swaks_one(wd, lst.port, "listener-allow", 1,
                                        source=ALLOWED_IP)
    assert_prompt(greet)
    check_message(queued(mx, headers), headers, body)

    g = Greeting("127.0.0.1", lst.port, source="127.0.0.4")
    assert_delayed(g.t_final, 1.5)
    assert mx.greeting.match(g.final()), g.lines
    g.quit()
    with pytest.raises(socket.timeout):     # nothing within 3 s
        Greeting("127.0.0.1", lst.port, source="127.0.0.5", timeout=3)
    lines = lst.wait_lines(r"^(allow|pass) ", count=2)
    assert re.fullmatch(r"allow ip=127\.0\.0\.3 port=\d+ reason=allowlist "
                        r"rule=127\.0\.0\.3/32", lines[0]), lines
    assert re.fullmatch(r"pass ip=127\.0\.0\.4 port=\d+ delay=1\.500 "
                        r"waited=\d+\.\d+ rule=127\.0\.0\.4/32", lines[1]), \
        lines
    assert mx.connections() == 2


def test_cache_greets_at_once_and_refuses_a_known_bot_at_once(wd, mx):
    """-c with --bad-ttl in the listener: swaks waits once, then is greeted
    at once (cached); a bot gets -x tempfail's 421, then a 421 at once
    on its next connection (known-early), with no process started for
    it; the cache holds both entries."""
    cache = os.path.join(wd, "cache.mdb")
    bot_ip = "127.0.0.3"
    lst = Listener(wd, ["-d", "3", "-c", cache, "-x", "tempfail",
                        "--bad-ttl", "10m"], mx.argv())
    for n, verdict in ((1, "pass"), (2, "cached")):
        _, greet, headers, body = swaks_one(wd, lst.port, "listener-cache",
                                            n)
        if verdict == "pass":
            assert_delayed(greet, 3.0)
        else:
            assert_prompt(greet, 1.5)
        assert lst.wait_lines(r"^%s ip=127\.0\.0\.1 " % verdict), lst.log()
        check_message(queued(mx, headers), headers, body)

    lst.forks()
    bot_then_known_early(lst, "lc", bot_ip)
    assert lst.wait_lines(r"^known-early ip=127\.0\.0\.3 port=\d+ "
                          r"age=\d+\.\d+ action=tempfail$")
    assert lst.forks() == 0
    assert mx.connections() == 2
    assert cache_list(cache) == {"127.0.0.1/32": "pass",
                                 "127.0.0.3/32": "bad"}


def test_ipv6_and_ipv4_sockets_side_by_side(wd, mx):
    """--listen [::1]:0 and 127.0.0.1:0 in one process: swaks over IPv6
    and smtplib over IPv4 wait and deliver, a bot over IPv6 is refused;
    exim sees each client's own address."""
    assert v6_available(), "no IPv6 loopback (::1) on this machine"
    lst = Listener(wd, ["-d", "2"], mx.argv(),
                   listen=("[::1]:0", "127.0.0.1:0"))
    (h6, p6), (h4, p4) = lst.addrs
    assert (h6, h4) == ("::1", "127.0.0.1"), lst.addrs

    raw, headers, body = make_message("listener-v6", 1)
    data = write_swaks_data(os.path.join(wd, "v6.eml"), raw)
    rc, out, greet, _ = swaks("::1", p6, headers["To"], data_file=data)
    assert rc == 0, out
    assert_delayed(greet, 2.0)
    refuse_bot("::1", p6, tag="listener-v6-bot")
    raw2, headers2, body2 = make_message("listener-v4", 2)
    assert_delayed(smtp_deliver("127.0.0.1", p4, raw2,
                                "v4@client.sendwrap.test", headers2["To"]),
                   2.0)

    msgs = {m.header("X-E2E-Tag"): m for m in mx.messages()}
    assert sorted(msgs) == ["listener-v4-2", "listener-v6-1"], msgs
    check_message(msgs["listener-v6-1"], headers, body)
    check_message(msgs["listener-v4-2"], headers2, body2)
    log = mx.mainlog()
    assert re.search(r"<= swaks@\S+ H=\(client\.sendwrap\.test\) \[::1\] ",
                     log), log
    assert re.search(r"<= v4@\S+ H=\(client\.sendwrap\.test\) "
                     r"\[127\.0\.0\.1\] ", log), log
    assert mx.connections() == 2
    lines = lst.wait_lines(r"^(pass|early) ", count=3)
    assert sorted(l.split()[0] + " " + l.split()[1] for l in lines) == [
        "early ip=::1", "pass ip=127.0.0.1", "pass ip=::1"], lst.log()


@pytest.fixture
def no_such_name():
    """A DNS server on 127.0.0.9:53 that answers every query at once: no
    such name (NXDOMAIN).  Returns its address."""
    ip = "127.0.0.9"
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((ip, 53))
    sock.settimeout(0.2)
    stop = threading.Event()

    def answer():
        while not stop.is_set():
            try:
                q, peer = sock.recvfrom(512)
            except socket.timeout:
                continue
            if len(q) > 12:
                # the query's id, flags QR RD RA and rcode 3, its question
                sock.sendto(q[:2] + b"\x81\x83" + q[4:6] + bytes(6) + q[12:],
                            peer)

    t = threading.Thread(target=answer, daemon=True)
    t.start()
    yield ip
    stop.set()
    t.join(2)
    sock.close()


@pytest.mark.parametrize("family", ["ipv4", "ipv6", "ipv4-mapped"])
def test_the_mta_sees_the_environment_tcpserver_gives_it(wd, family,
                                                        no_such_name):
    """The same client, through tcpserver -> sendwrap and through the
    listener, to a program that records its environment: the same
    variables with the same values, but for the ports, which are each
    connection's own (checked against the client's and the server's).

    tcpserver sets TCPLOCALHOST from -l, or from a DNS lookup of its
    local address at start; the listener looks nothing up and sets no
    TCPLOCALHOST, which is what tcpserver does when the lookup finds no
    name.  So tcpserver runs without -l, its DNS queries sent (through
    djbdns's DNSCACHEIP) to a server of the test's that knows no name.

    ipv4-mapped: the listener's socket is an IPv6 one that takes IPv4
    clients (bound to ::ffff:127.0.0.1), passed by systemd-socket-activate,
    as a unit's ListenStream=25 makes it: the client is still IPv4."""
    v6 = family == "ipv6"
    if v6:
        assert v6_available(), "no IPv6 loopback (::1) on this machine"
    host, source = ("::1", None) if v6 else ("127.0.0.1", ALLOWED_IP)
    env = dict(SERVER_ENV, DNSCACHEIP=no_such_name)
    standin = os.path.join(wd, "standin")
    with open(standin, "w") as f:
        f.write(QMAIL_STANDIN)
    os.chmod(standin, 0o755)
    records = {n: os.path.join(wd, n) for n in ("tcpserver", "listener")}
    for d in records.values():
        os.mkdir(d)
    ts = TcpServer(wd, [SENDWRAP, "-d", "0", "--", standin,
                        records["tcpserver"]], host=host, localname=None,
                   env=env)
    if family == "ipv4-mapped":
        # (it passes the program only the variables -E names)
        setenv = [a for kv in sorted(env.items())
                  for a in ("-E", "%s=%s" % kv)]
        lst = SocketActivate(wd, setenv + [
            SENDWRAP, "--listen", "systemd", "-d", "0", "--", standin,
            records["listener"]], inetd=False, accept=False,
            host="::ffff:127.0.0.1")
    else:
        lst = Listener(wd, ["-d", "0"], [standin, records["listener"]],
                       listen=("[::1]:0" if v6 else "127.0.0.1:0",), env=env)

    seen = {}
    for name, port in (("tcpserver", ts.port), ("listener", lst.port)):
        g = Greeting(host, port, source=source)
        assert g.final().startswith(b"220 standin.sendwrap.test "), g.lines
        client_port = g.sock.getsockname()[1]
        reply, _ = g.quit()
        assert reply[0].startswith(b"221 "), reply
        files = wait_until(lambda: os.listdir(records[name]), 10)
        assert len(files) == 1, files
        with open(os.path.join(records[name], files[0])) as f:
            got = json.load(f)["env"]
        for k, want in (("TCPREMOTEPORT", client_port),
                        ("TCP6REMOTEPORT", client_port),
                        ("TCPLOCALPORT", port), ("TCP6LOCALPORT", port)):
            assert got.get(k) == str(want), (name, k, got)
            got[k] = "(%s)" % k
        seen[name] = got
    assert seen["listener"] == seen["tcpserver"]
    want = {"PROTO": "TCP", "TCPREMOTEIP": source,
            "TCP6REMOTEIP": "::ffff:" + source, "TCPLOCALIP": host,
            "TCP6LOCALIP": "::ffff:" + host} if not v6 else {
        "PROTO": "TCP6", "TCPREMOTEIP": "::1", "TCP6REMOTEIP": "::1",
        "TCPLOCALIP": "::1", "TCP6LOCALIP": "::1"}
    for k, v in want.items():
        assert seen["listener"][k] == v, (k, seen["listener"])
    assert "DNSCACHEIP" in seen["listener"]     # the rest passes through


# ------------------------------------------------------------ signals

def test_sighup_reloads_a_good_allowlist_and_keeps_it_on_a_bad_one(wd, mx):
    path = os.path.join(wd, "allowlist")

    def write(text):
        with open(path + ".new", "w") as f:
            f.write(text)
        os.rename(path + ".new", path)

    write("127.0.0.4/32\n")
    lst = Listener(wd, ["-d", "20", "-a", path], mx.argv())
    with pytest.raises(socket.timeout):     # not on the list: it waits
        Greeting("127.0.0.1", lst.port, source=ALLOWED_IP, timeout=2)

    write("127.0.0.3/32\n")
    lst.signal(signal.SIGHUP)
    assert lst.wait_lines(r"^reload allowlists=1$"), lst.log()
    _, greet, headers, body = swaks_one(wd, lst.port, "listener-hup", 1,
                                        source=ALLOWED_IP)
    assert_prompt(greet)
    check_message(queued(mx, headers), headers, body)

    write("127.0.0.3/32\n127.0.0.0/40\n")       # a bad line
    lst.signal(signal.SIGHUP)
    assert lst.wait_lines(r"^error allowlists not reloaded"), lst.log()
    assert [l for l in lst.sendwrap_lines()
            if l.startswith("error %s:2: " % path)], lst.log()
    greeted_at_once("127.0.0.1", lst.port, mx, source=ALLOWED_IP)
    assert lst.proc.poll() is None
    assert len(lst.wait_lines(r"^allow ip=127\.0\.0\.3 ", count=2)) == 2
    assert len(lst.wait_lines(r"^reload ")) == 1
    assert mx.connections() == 2


def test_sigterm_lets_a_session_in_progress_deliver(wd, mx):
    """SIGTERM while one client is in the middle of its transaction and
    another waits: the waiting one is told 421 at once, nobody new gets
    in, the session goes on and its message is queued, and then the
    listener exits 0."""
    lst = Listener(wd, ["-d", "1"], mx.argv())
    raw, headers, body = make_message("listener-term", 1)
    s = smtplib.SMTP("127.0.0.1", lst.port, timeout=30,
                     local_hostname="client.sendwrap.test")
    try:
        s.ehlo()
        assert s.mail("term@client.sendwrap.test")[0] == 250
        assert s.rcpt(headers["To"])[0] == 250
        waiting = connect("127.0.0.1", lst.port)
        time.sleep(0.3)
        lst.signal(signal.SIGTERM)
        r = LineReader(waiting)
        assert r.read_to_eof(time.monotonic() + 10) == SHUTDOWN_421
        waiting.close()
        assert lst.wait_lines(r"^busy ip=127\.0\.0\.1 port=\d+ "
                              r"limit=shutdown$"), lst.log()
        assert lst.wait_lines(r"^stopping clients=1 children=1$"), lst.log()
        assert wait_until(lambda: _refused(lst.port), 10), \
            "still accepting after SIGTERM"
        time.sleep(0.5)
        assert lst.proc.poll() is None, "it left before the session ended"
        assert s.data(raw)[0] == 250
        s.quit()
    finally:
        s.close()
    assert lst.proc.wait(10) == 0
    msgs = mx.messages()
    assert len(msgs) == 1, mx.queue_listing()
    check_message(msgs[0], headers, body)
    assert mx.connections() == 1


def _refused(port):
    try:
        connect("127.0.0.1", port).close()
    except ConnectionRefusedError:
        return True
    return False


# ------------------------------------------------------------ crowds

@pytest.fixture
def fd_limit():
    """Raise this process's descriptor limit to at least n (the listener,
    started from here, raises its own)."""
    old = resource.getrlimit(resource.RLIMIT_NOFILE)

    def need(n):
        soft, hard = old
        assert hard == resource.RLIM_INFINITY or hard >= n, \
            "the hard descriptor limit %d is below the %d needed" % (hard, n)
        if soft != resource.RLIM_INFINITY and soft < n:
            resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))
    yield need
    resource.setrlimit(resource.RLIMIT_NOFILE, old)


def sources(net, n):
    """n clients' source addresses, 127.0.NET.1 upward, PER_IP a piece."""
    return ["127.0.%d.%d" % (net, 1 + i // PER_IP) for i in range(n)]


class Crowd:
    """Clients connected at once from the given source addresses; each
    sends payload (if any) as soon as it is connected."""

    def __init__(self, host, port, addrs, payload=b""):
        self.socks, self.data = [], {}
        self.reset = set()
        self.connected, self.first = {}, {}   # when; when its first byte came
        for a in addrs:
            s = connect(host, port, a)
            self.connected[s] = time.monotonic()
            if payload:
                s.sendall(payload)
            s.setblocking(False)
            self.socks.append(s)
            self.data[s] = b""

    def received(self):
        """The clients something has arrived for (or that were closed),
        without waiting."""
        sel = selectors.DefaultSelector()
        for s in self.socks:
            sel.register(s, selectors.EVENT_READ)
        try:
            return [k.fileobj for k, _ in sel.select(0)]
        finally:
            sel.close()

    def read_to_eof(self, timeout):
        """Read every client until the server closes it; returns the
        number still open at the deadline."""
        sel = selectors.DefaultSelector()
        for s in self.socks:
            sel.register(s, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        left = len(self.socks)
        while left and time.monotonic() < deadline:
            for key, _ in sel.select(min(1.0, deadline - time.monotonic())):
                s = key.fileobj
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    self.reset.add(s)
                    chunk = b""
                if chunk:
                    self.first.setdefault(s, time.monotonic())
                    self.data[s] += chunk
                    continue
                sel.unregister(s)
                left -= 1
        sel.close()
        return left

    def close(self, socks=None):
        for s in socks if socks is not None else self.socks:
            s.close()


def test_flood_of_waiters_then_early_talkers(wd, mx, fd_limit):
    """2 000 clients wait at once in the one listener process, 20 from
    each of 100 addresses (one more from a full address gets 421); then
    1 000 early talkers come and each gets the 554 and an orderly close,
    with no process started and exim never run.  1 990 waiters hang up;
    the last 10 are greeted by exim after the delay."""
    delay = 15.0
    fd_limit(4096)
    lst = Listener(wd, ["-d", "%g" % delay], mx.argv())
    t0 = time.monotonic()
    waiters = Crowd("127.0.0.1", lst.port, sources(1, 2000))
    assert wait_until(lambda: lst.open_fds() >= 2000, 20), lst.open_fds()
    assert lst.children() == []
    extra = connect("127.0.0.1", lst.port, "127.0.1.1")
    assert LineReader(extra).read_to_eof(time.monotonic() + 10) == \
        PER_IP_421
    extra.close()
    assert lst.wait_lines(r"^busy ip=127\.0\.1\.1 port=\d+ limit=per-ip$")

    talkers = Crowd("127.0.0.1", lst.port, sources(2, 1000),
                    payload=bot_payload("flood", body_kib=1))
    assert talkers.read_to_eof(30) == 0, "talkers left unanswered"
    wrong = [d for d in talkers.data.values() if d != REJECT_554]
    assert not wrong, "%d talkers got %r" % (len(wrong), wrong[:3])
    assert not talkers.reset, "%d resets" % len(talkers.reset)
    talkers.close()
    early = lst.wait_lines(r"^early ip=127\.0\.2\.", count=1000)
    assert len(early) == 1000 and all(l.endswith(" action=reject")
                                      for l in early)
    assert lst.forks() == 0, "processes started for the flood"
    assert mx.connections() == 0, mx.mainlog()
    # all of it before the waiters' delay ran out: none was answered yet
    assert time.monotonic() - t0 < 0.8 * delay, "the machine is too slow"
    assert waiters.received() == []

    waiters.close(waiters.socks[10:])
    assert len(lst.wait_lines(r"^hangup ip=127\.0\.1\.", count=1990)) == 1990
    for s in waiters.socks[:10]:
        s.setblocking(True)
        r = LineReader(s)
        line = r.readline(t0 + delay + SLACK)
        assert time.monotonic() - t0 >= 0.9 * delay
        assert mx.greeting.match(line), line
        s.sendall(b"QUIT\r\n")
        assert r.read_reply(time.monotonic() + 10)[0].startswith(b"221 ")
    waiters.close(waiters.socks[:10])
    assert len(lst.wait_lines(r"^pass ", count=10)) == 10
    assert mx.connections() == 10
    no_children(lst)
    assert verdicts(lst) == ["early"] * 1000 + ["hangup"] * 1990 + \
        ["pass"] * 10


def test_tarpit_holds_2000_bots_in_one_process(wd, fd_limit):
    """--tarpit in the listener: 2 000 bots (half of them pouring out a
    transaction) held at once by the one process, with no child, each fed
    a 220- line a second until --tarpit-max, then closed."""
    fd_limit(4096)
    banner = "mx.sendwrap.test ESMTP"
    lst = Listener(wd, ["--tarpit", "--tarpit-interval", "1s",
                        "--tarpit-max", "4s", "-b", banner])
    payload = bot_payload("tarpit", body_kib=1)
    quiet = Crowd("127.0.0.1", lst.port, sources(1, 1000))
    talking = Crowd("127.0.0.1", lst.port, sources(2, 1000), payload)
    assert wait_until(lambda: lst.open_fds() >= 2000, 10), lst.open_fds()
    assert lst.children() == []
    line = ("220-%s\r\n" % banner).encode()
    for crowd in (quiet, talking):
        assert crowd.read_to_eof(30) == 0, "bots still held"
        for s, d in crowd.data.items():
            assert 3 <= d.count(line) <= 6 and d == line * d.count(line), d
        assert not crowd.reset
        crowd.close()
    ends = lst.wait_lines(r"^tarpit ", count=2000)
    assert len(ends) == 2000
    for l in ends:
        m = re.fullmatch(r"tarpit ip=127\.0\.[12]\.\d+ port=\d+ "
                         r"held=(\d+\.\d+) bytes=(\d+) end=max-reached", l)
        assert m and 4.0 <= float(m.group(1)) < 4.0 + SLACK, l
    talked = [l for l in ends if " bytes=0 " not in l]
    assert len(talked) == 1000 and all(
        " ip=127.0.2." in l and " bytes=%d " % len(payload) in l
        for l in talked), talked[:3]
    assert lst.forks() == 0


# ------------------------------------------------------------ its log

GREETER = ["/bin/sh", "-c", 'printf "220 greeter\\r\\n"']
MONTH = rb"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"


def ns_pid(pid):
    """A process's PID in its own PID namespace."""
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"^NSpid:.*\s(\d+)$", f.read(), re.M).group(1))


def test_a_stalled_syslog_stops_no_client(wd):
    """The listener logs to syslog (a /dev/log of the test's, in a private
    mount namespace) in the format syslog(3) sends.  When the log daemon
    stalls with its queue full, 200 waiting clients are still each greeted
    after their delay: the lines are dropped, not waited for, and once the
    daemon reads again their count comes first.  A daemon restarted (a
    new socket) gets the next line."""
    delay = 1.0
    ns = PrivateNS(wd)
    # Programs enough for every client at once: none waits in the queue
    # for one, where over --per-ip-children of an address would be told
    # 421.
    lst = Listener(wd, ["-d", "%g" % delay, "--max-children", "200"],
                   GREETER, ns=ns, syslog=True)
    pid = ns_pid(lst.sendwrap_pid)
    head = rb"<22>%s [ \d]\d \d\d:\d\d:\d\d sendwrap\[%d\]: " % (MONTH, pid)
    assert any(re.fullmatch(head + rb"listening on=127\.0\.0\.1:%d "
                            rb"clients=10000 children=200 perip=20 share=50"
                            % lst.port, d) for d in ns.syslog.raw), \
        ns.syslog.raw
    c = connect("127.0.0.1", lst.port)
    assert LineReader(c).read_to_eof(time.monotonic() + delay + SLACK) == \
        b"220 greeter\r\n"
    sport = c.getsockname()[1]
    c.close()
    assert lst.wait_lines(r"^pass ")
    assert any(re.fullmatch(head + rb"pass ip=127\.0\.0\.1 port=%d "
                            rb"delay=1\.000 waited=1\.\d{3}" % sport, d)
               for d in ns.syslog.raw), ns.syslog.raw

    assert ns.syslog.stall() > 0
    crowd = Crowd("127.0.0.1", lst.port, sources(3, 200))
    assert crowd.read_to_eof(delay + SLACK) == 0, \
        "clients not greeted while the log is stalled"
    assert set(crowd.data.values()) == {b"220 greeter\r\n"}
    late = max(crowd.first[s] - crowd.connected[s] for s in crowd.socks)
    assert late <= delay + SLACK, late
    crowd.close()
    assert len(lst.sendwrap_lines()) == 2       # listening, the first pass

    ns.syslog.resume()
    c = connect("127.0.0.1", lst.port)
    LineReader(c).read_to_eof(time.monotonic() + delay + SLACK)
    c.close()
    lines = lst.wait_lines(r"^pass ", count=2)
    assert lst.sendwrap_lines()[2:] == [
        "error 200 log lines dropped: syslog was full or not there",
        lines[1]]
    assert [r[:2] for r in ns.syslog.sendwrap_records()][2:] == \
        [(2, 3), (2, 6)]            # mail.err, mail.info

    ns.syslog.close()               # the daemon restarts
    ns.syslog = SyslogListener(ns.syslog.path)
    lst.syslog = ns.syslog
    c = connect("127.0.0.1", lst.port)
    LineReader(c).read_to_eof(time.monotonic() + delay + SLACK)
    c.close()
    assert lst.wait_lines(r"^pass ")
