"""sendwrap --listen --forward relaying to a real Postfix (its PROXY
smtpd, --forward-proxy v2): what reaches the MTA, and what happens when
either side fails.

  - the MTA down: the client is told 421 4.3.0 after its wait, a sending
    exim keeps its message and delivers it once the MTA is back;
  - the MTA stops reading mid-DATA (its smtpd stopped with SIGSTOP): the
    client's writes are held back, and once it reads again the message
    arrives whole; stopped for good, --forward-idle ends the session;
    an MTA stopped before its greeting: the client is told 421 4.3.0
    after --forward-idle;
  - the client vanishes mid-DATA (an end of input, a reset): Postfix
    sees the connection go and queues nothing;
  - the MTA closes first (after its 421 for too many errors, after
    QUIT): the client gets its bytes, then the end of input (those two
    ends with Exim's daemon behind too);
  - 1 000 short sessions ended each way: the listener's descriptors back
    to what they were, no pipe left, no process started;
  - a 50 MB message arrives byte for byte, and 2 000 messages over 200
    sessions of Postfix's smtp-source are all delivered.

Each session's end is checked in its `forwarded` line, and in Postfix's
log.  One Postfix serves the module, with message_size_limit raised for
the 50 MB message and smtpd_hard_error_limit lowered to 3.
"""

import base64
import collections
import hashlib
import os
import re
import signal
import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from daemons import PostfixServer, smtp_source
from e2elib import (SLACK, UNAVAILABLE_421, EximSender, LineReader, Listener,
                    connect, free_port, make_message, outlive_test,
                    wait_until)
import proclib  # noqa: E402  (tests/proclib.py, on the path since e2elib)

DELAY = 0.5                 # sendwrap -d, seconds
IDLE = 2.0                  # --forward-idle of the idle listener
BIG = 50 * 1000 * 1000      # bytes of the big message's body
POSTFIX_MAIN = """\
message_size_limit = 60000000
virtual_mailbox_limit = 60000000
smtpd_hard_error_limit = 3
"""
LOOP_CLIENT = "127.0.0.200"     # allowlisted: the 1 000 sessions' address


@pytest.fixture(scope="module")
def postfix(mdir):
    """Postfix's PROXY smtpd alone (.proxy_port)."""
    pf = PostfixServer(mdir, smtpd=False, proxy=True, main=POSTFIX_MAIN,
                       name="postfix-relay").keep()
    yield pf
    pf.stop()


def forwarder(base, target, *opts, listen=("127.0.0.1:0",)):
    """A listener forwarding to target with a v2 header, LOOP_CLIENT
    allowlisted, --per-ip and the children's limits above smtp-source's
    200 sessions; .baseline: its descriptors once started."""
    lst = Listener(base, ["-d", str(DELAY), "-A", LOOP_CLIENT + "/32",
                          "--forward", target, "--forward-proxy", "v2",
                          "--per-ip", "300", "--max-children", "300",
                          "--per-ip-children", "300"] + list(opts),
                   listen=listen)
    lst.baseline = descriptors(lst)
    return lst


@pytest.fixture(scope="module")
def relay(mdir, postfix):
    """The listener most tests relay through (the default --forward-idle,
    10 minutes: no session here is idle that long)."""
    lst = forwarder(mdir, "127.0.0.1:%d" % postfix.proxy_port)
    outlive_test(lst.proc)
    yield lst
    lst.stop()


def descriptors(lst):
    """What the listener's descriptors are, their inode numbers left out
    (['pipe:', 'socket:', ...], sorted)."""
    return sorted(re.sub(r"\[\d+\]$", "", t)
                  for t in proclib.fds(lst.sendwrap_pid).values())


def no_leak(lst):
    """The listener's descriptors are back to those it started with: no
    socket and no pipe of a session left."""
    assert wait_until(lambda: descriptors(lst) == lst.baseline, 10), (
        descriptors(lst), lst.baseline)
    assert not [d for d in lst.baseline if d.startswith("pipe:")]


def forwarded(lst, client, end, timeout=10):
    """The one forwarded line of client, which ended as end (a regex):
    {field: value}."""
    lines = lst.wait_lines(r"^forwarded ip=%s " % re.escape(client),
                           timeout=timeout)
    assert len(lines) == 1, lst.log()
    m = re.match(r"^forwarded ip=\S+ port=\d+ in=(\d+) out=(\d+) "
                 r"length=(\d+\.\d{3}) end=(%s)$" % end, lines[0])
    assert m, lines
    return {"in": int(m.group(1)), "out": int(m.group(2)),
            "length": float(m.group(3)), "end": m.group(4)}


def maildir_count(pf):
    return sum(len(os.listdir(os.path.join(pf.maildir, sub)))
               for sub in ("new", "cur")
               if os.path.isdir(os.path.join(pf.maildir, sub)))


def postfix_quits(pf):
    """For each session from 127.0.0.1 that ended after QUIT with every
    DATA taken, the number of its messages (data=N, not data=N/M)."""
    return re.findall(r" disconnect from \S*\[127\.0\.0\.1\] .*"
                      r"data=(\d+) quit=1 ", pf.log())


def postfix_lines(pf, client):
    """Postfix's log lines about client."""
    return [l for l in pf.log().splitlines()
            if "[%s]" % client in l]


# ------------------------------------------------------------ a session

COMMANDS = [(b"EHLO client.sendwrap.test", b"250 "),
            (b"MAIL FROM:<relay@client.sendwrap.test>", b"250 "),
            (b"RCPT TO:<relayed@sendwrap.test>", b"250 "),
            (b"DATA", b"354 ")]
COMMAND_BYTES = sum(len(c) + 2 for c, _ in COMMANDS)


def expect(reader, code, deadline):
    reply = reader.read_reply(deadline)
    assert reply and reply[-1].startswith(code), reply
    return reply


def greeted(port, source, timeout=20):
    """A connection greeted by Postfix: (socket, LineReader, deadline)."""
    deadline = time.monotonic() + timeout
    s = connect("127.0.0.1", port, source=source)
    r = LineReader(s)
    expect(r, b"220 ", deadline)
    return s, r, deadline


def in_data(port, source, timeout=60):
    """A session at DATA (Postfix's 354 read): (socket, LineReader,
    deadline)."""
    s, r, deadline = greeted(port, source, timeout)
    for line, code in COMMANDS:
        s.sendall(line + b"\r\n")
        expect(r, code, deadline)
    return s, r, deadline


def message(tag, size):
    """A message of about size bytes with random lines, some starting
    with a dot: (what goes on the wire after DATA, dot-stuffed and
    ended; the body as the maildir keeps it)."""
    head = ("Subject: %s\r\nX-E2E-Tag: %s\r\nFrom: relay@client.sendwrap."
            "test\r\nTo: relayed@sendwrap.test\r\n\r\n" % (tag, tag)).encode()
    lines = base64.encodebytes(os.urandom(size * 57 // 78)).split(b"\n")
    for i in range(0, len(lines), 5000):
        lines[i] = b"." + lines[i]
    body = b"\n".join(lines[:-1]) + b"\n"
    wire = head + body.replace(b"\n", b"\r\n")
    return re.sub(rb"(?m)^\.", b"..", wire) + b".\r\n", body


def delivered(pf, tag, timeout=30):
    """The maildir's message whose X-E2E-Tag is tag, read once it is
    there (the maildir's files are opened only when their head has the
    tag: the module's maildir holds thousands)."""
    needle = ("\nX-E2E-Tag: %s\n" % tag).encode()

    def find():
        for sub in ("new", "cur"):
            d = os.path.join(pf.maildir, sub)
            for name in os.listdir(d) if os.path.isdir(d) else ():
                path = os.path.join(d, name)
                with open(path, "rb") as f:
                    if needle in f.read(4096):
                        return path
        return None
    path = wait_until(find, timeout)
    assert path, "no message %s: %s" % (tag, pf.log()[-3000:])
    with open(path, "rb") as f:
        raw = f.read()
    return raw.partition(b"\n\n")[2], raw


def smtpd_of_the_session(pf):
    """The pid of the one smtpd with an established connection on the
    PROXY port (the test's session)."""
    est = proclib.tcp_sockets(pf.proxy_port, "01")
    pids = wait_until(lambda: [
        p.pid for p in pf.processes() if p.comm == "smtpd" and
        proclib.socket_inodes([p.pid]) & est], 10)
    assert pids and len(pids) == 1, pids
    return pids[0]


def write_until_held(s, data, quiet=1.0, timeout=30):
    """Write data without blocking until the socket takes nothing for
    quiet seconds; returns (bytes taken, when the last were)."""
    s.setblocking(False)
    sent, last = 0, time.monotonic()
    end = last + timeout
    while sent < len(data) and time.monotonic() < end:
        try:
            sent += s.send(data[sent:sent + 65536])
            last = time.monotonic()
        except BlockingIOError:
            if time.monotonic() - last >= quiet:
                break
            time.sleep(0.01)
    s.setblocking(True)
    return sent, last


def lost_after_data(pf, client):
    """The bytes of DATA Postfix counted before it lost client's
    connection (its 'lost connection after DATA (N bytes)' line)."""
    line = wait_until(lambda: [l for l in postfix_lines(pf, client)
                               if "lost connection after DATA" in l], 10)
    assert line and len(line) == 1, postfix_lines(pf, client)
    return int(re.search(r"after DATA \((\d+) bytes\)", line[0]).group(1))


# ------------------------------------------------------------ the MTA down

def test_the_mta_down_costs_no_mail(wd, postfix):
    """--forward to a port where nothing listens: a client that waited is
    told 421 4.3.0 (an error line says why, the forwarded line says
    unreachable); a sending exim keeps its message, and delivers it once
    the listener forwards to Postfix; 200 more refused connects leave no
    descriptor behind."""
    down = free_port()
    lst = forwarder(wd, "127.0.0.1:%d" % down)
    t0 = time.monotonic()
    s = connect("127.0.0.1", lst.port, source="127.0.0.201")
    r = LineReader(s)
    got = r.read_to_eof(t0 + DELAY + SLACK)
    took = time.monotonic() - t0
    s.close()
    assert got == UNAVAILABLE_421 and not r.reset, got
    assert 0.9 * DELAY <= took <= DELAY + SLACK, took
    err = lst.wait_lines(r"^error ip=127\.0\.0\.201 ")
    assert len(err) == 1 and re.match(
        r"^error ip=127\.0\.0\.201 port=\d+ cannot forward to 127\.0\.0\.1:"
        r"%d: Connection refused$" % down, err[0]), lst.log()
    f = forwarded(lst, "127.0.0.201", "unreachable")
    assert (f["in"], f["out"]) == (0, 0), f

    raw, headers, _ = make_message("fwd-down", 1)
    sender = EximSender(wd, "127.0.0.1", lst.port)
    sender.submit("relay@sender.sendwrap.test", headers["To"], raw)
    sender.run_queue()
    assert sender.queue_count() == 1, sender.mainlog()
    assert re.search(r"421 4\.3\.0 Service temporarily unavailable",
                     sender.mainlog()), sender.mainlog()
    assert len(lst.wait_lines(r"^forwarded ip=127\.0\.0\.1 .* "
                              r"end=unreachable$")) == 1, lst.log()

    with ThreadPoolExecutor(10) as pool:
        replies = list(pool.map(lambda i: refused_at_once(lst.port),
                                range(200)))
    assert replies == [UNAVAILABLE_421] * 200
    assert len(lst.wait_lines(r"^forwarded ip=%s .* end=unreachable$" %
                              re.escape(LOOP_CLIENT), count=200)) == 200
    no_leak(lst)
    lst.stop()

    # the MTA is back: the same port now forwards to Postfix
    back = forwarder(wd, "127.0.0.1:%d" % postfix.proxy_port,
                     listen=("127.0.0.1:%d" % lst.port,))
    sender.run_queue()
    assert sender.queue_count() == 0, sender.mainlog()
    body, _ = delivered(postfix, headers["X-E2E-Tag"])
    assert body.startswith(b"Hello, this is message 1 of fwd-down.")
    forwarded(back, "127.0.0.1", "client-closed|mta-closed")
    back.stop()


def refused_at_once(port):
    s = connect("127.0.0.1", port, source=LOOP_CLIENT)
    try:
        return LineReader(s).read_to_eof(time.monotonic() + 10)
    finally:
        s.close()


# ------------------------------------------------------------ a stalled MTA

def test_a_stalled_mta_holds_the_client_back_and_loses_nothing(
        relay, postfix):
    """Postfix's smtpd stopped (SIGSTOP) after its 354: the client's
    writes are taken only until the buffers on the way are full, then
    held back, the session kept; once smtpd runs again (SIGCONT) the rest
    follows and the message arrives byte for byte."""
    client = "127.0.0.202"
    wire, body = message("fwd-stalled", 24 * 1000 * 1000)
    s, r, deadline = in_data(relay.port, client)
    smtpd = smtpd_of_the_session(postfix)
    os.kill(smtpd, signal.SIGSTOP)
    try:
        held, _ = write_until_held(s, wire)
        assert 0 < held < len(wire), held
        assert not relay.wait_lines(r"^forwarded ip=%s " % re.escape(client),
                                    timeout=0)
    finally:
        os.kill(smtpd, signal.SIGCONT)
    s.sendall(wire[held:])
    expect(r, b"250 ", deadline)
    s.sendall(b"QUIT\r\n")
    expect(r, b"221 ", deadline)
    s.close()
    got, _ = delivered(postfix, "fwd-stalled")
    assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest()
    f = forwarded(relay, client, "client-closed|mta-closed")
    assert f["in"] == COMMAND_BYTES + len(wire) + len(b"QUIT\r\n"), f
    no_leak(relay)


def test_a_stalled_mta_is_let_go_after_forward_idle(wd, postfix):
    """smtpd stopped for good mid-DATA: no byte moves either way, so the
    session ends --forward-idle after the last one, the client's
    connection is closed; Postfix, running again, finds the connection
    gone after every byte that had reached it, and queues nothing."""
    client = "127.0.0.203"
    lst = forwarder(wd, "127.0.0.1:%d" % postfix.proxy_port,
                    "--forward-idle", "%gs" % IDLE)
    wire, _ = message("fwd-idle", 24 * 1000 * 1000)
    count = maildir_count(postfix)
    s, r, deadline = in_data(lst.port, client)
    smtpd = smtpd_of_the_session(postfix)
    os.kill(smtpd, signal.SIGSTOP)
    try:
        held, last = write_until_held(s, wire, quiet=0.5)
        assert 0 < held < len(wire), held
        f = forwarded(lst, client, "idle", timeout=IDLE + SLACK)
        ended = time.monotonic() - last
        # the client's end: closed by the listener (a reset, since what
        # it sent is unread)
        s.settimeout(SLACK)
        try:
            assert s.recv(65536) == b""
        except ConnectionResetError:
            pass
        s.close()
    finally:
        os.kill(smtpd, signal.SIGCONT)
    assert 0.5 * IDLE <= ended <= IDLE + SLACK, ended
    assert IDLE <= f["length"] <= IDLE + 30 + SLACK, f
    # Postfix counts the DATA bytes of whole lines: what reached it
    lost = lost_after_data(postfix, client)
    assert 0 < lost <= f["in"] - COMMAND_BYTES < lost + 80, (lost, f)
    time.sleep(1)
    assert maildir_count(postfix) == count
    no_leak(lst)
    lst.stop()


def test_an_mta_that_never_greets_is_421_after_forward_idle(wd, postfix):
    """Postfix stopped whole (SIGSTOP to every process of it): the kernel
    still takes the connection, but no greeting comes; --forward-idle
    after the connect the client, which never heard from the MTA, is told
    421 4.3.0, and may come back later."""
    client = "127.0.0.211"
    lst = forwarder(wd, "127.0.0.1:%d" % postfix.proxy_port,
                    "--forward-idle", "%gs" % IDLE)
    stopped = [p.pid for p in postfix.processes()]
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        s = connect("127.0.0.1", lst.port, source=client)
        r = LineReader(s)
        got = r.read_to_eof(t0 + DELAY + IDLE + SLACK)
        took = time.monotonic() - t0
        s.close()
        f = forwarded(lst, client, "idle")
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
    assert got == UNAVAILABLE_421 and not r.reset, got
    assert 0.9 * (DELAY + IDLE) <= took <= DELAY + IDLE + SLACK, took
    assert f["out"] == 0 and IDLE <= f["length"] <= IDLE + SLACK, f
    assert not lst.wait_lines(r"^error ", timeout=0)
    no_leak(lst)
    lst.stop()


# ------------------------------------------------------------ the client goes

@pytest.mark.parametrize("how", ["close", "reset"])
def test_the_client_vanishes_mid_data(relay, postfix, how):
    """The client goes after 1 MB of its message: its end of input is
    passed on to Postfix after every byte before it (close), or the
    session is cut (reset); Postfix logs the lost connection and queues
    nothing, and the forwarded line says the client ended it."""
    client = {"close": "127.0.0.204", "reset": "127.0.0.205"}[how]
    part = b"".join(b"line %07d of a message that never ends\r\n" % i
                    for i in range(25000))
    count = maildir_count(postfix)
    s, r, deadline = in_data(relay.port, client)
    s.sendall(part)
    t0 = time.monotonic()
    if how == "reset":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
    s.close()
    f = forwarded(relay, client, "client-closed" if how == "close"
                  else "client-reset")
    assert time.monotonic() - t0 < SLACK
    lost = lost_after_data(postfix, client)
    if how == "close":
        assert lost == len(part), lost
        assert f["in"] == COMMAND_BYTES + len(part), f
    else:
        assert lost <= len(part), lost
    time.sleep(0.5)
    assert maildir_count(postfix) == count
    no_leak(relay)


# ------------------------------------------------------------ the MTA goes

@pytest.mark.parametrize("why", ["errors", "quit"])
def test_the_mta_closes_first(relay, postfix, why):
    """Postfix ends the session (its 421 after three bad commands, or
    its 221 to QUIT): the client gets Postfix's bytes, then the end of
    input while it still holds its side open; the forwarded line says
    the MTA ended it."""
    client = {"errors": "127.0.0.206", "quit": "127.0.0.207"}[why]
    s, r, deadline = greeted(relay.port, client)
    if why == "errors":
        s.sendall(b"XYZZY\r\n" * 3)
        want = (b"500 5.5.2 Error: command not recognized\r\n" * 3 +
                b"421 4.7.0 mx.sendwrap.test Error: too many errors\r\n")
    else:
        s.sendall(b"QUIT\r\n")
        want = b"221 2.0.0 Bye\r\n"
    got = r.read_to_eof(deadline)
    assert got == want and not r.reset, got
    s.close()
    f = forwarded(relay, client, "mta-closed")
    assert f["out"] == len(r.raw), (f, r.raw)
    assert wait_until(lambda: [l for l in postfix_lines(postfix, client)
                               if "disconnect from" in l], 10)
    no_leak(relay)


# ------------------------------------------------------------ many sessions

SESSIONS = 1000


# How each kind of session below ends, in its forwarded line: closed at
# once, the client may be gone before Postfix's greeting reaches it (the
# client's kernel answers it with a reset) or not.
SESSION_ENDS = {"quit": "mta-closed", "close": "client-closed",
                "reset": "client-reset",
                "at-once": "client-closed|client-reset"}


def short_session(port, kind):
    """One short session from LOOP_CLIENT (allowlisted: relayed at once),
    ended by kind: 'quit' (Postfix closes after 221), 'close' or 'reset'
    after the greeting, 'at-once' (closed before any greeting).  Returns
    the client's port."""
    s = connect("127.0.0.1", port, source=LOOP_CLIENT)
    try:
        if kind == "at-once":
            return s.getsockname()[1]
        r = LineReader(s)
        deadline = time.monotonic() + 30
        expect(r, b"220 ", deadline)
        if kind == "quit":
            s.sendall(b"QUIT\r\n")
            expect(r, b"221 ", deadline)
            assert r.read_to_eof(deadline) == b""
        elif kind == "reset":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         struct.pack("ii", 1, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def test_1000_sessions_leave_no_descriptor_behind(relay, postfix):
    """1 000 short relayed sessions, 10 at a time, ended in four ways:
    each has its forwarded line with its end, Postfix took a session for
    each that waited for its greeting, and afterwards the listener holds
    the descriptors it started with (no socket or pipe left) and has
    started no process."""
    kinds = sorted(SESSION_ENDS)
    before = postfix.client_addresses().count(LOOP_CLIENT)
    t0 = time.monotonic()
    with ThreadPoolExecutor(10) as pool:
        ports = list(pool.map(lambda i: (short_session(
            relay.port, kinds[i % 4]), kinds[i % 4]), range(SESSIONS)))
    lines = relay.wait_lines(r"^forwarded ip=%s " % re.escape(LOOP_CLIENT),
                             count=SESSIONS, timeout=30)
    assert time.monotonic() - t0 < 60
    assert len(lines) == SESSIONS, len(lines)
    # each session's end by its port (a port the kernel gave twice has
    # two, matched the strict kinds first)
    ends = collections.defaultdict(list)
    for port, end in (re.search(r" port=(\d+) .* end=(\S+)$", l).groups()
                      for l in lines):
        ends[int(port)].append(end)
    wrong = []
    for port, kind in sorted(ports, key=lambda p: p[1] == "at-once"):
        match = [e for e in ends[port]
                 if re.fullmatch(SESSION_ENDS[kind], e)]
        if match:
            ends[port].remove(match[0])
        else:
            wrong.append((port, kind, ends[port]))
    assert not wrong, wrong[:20]
    assert wait_until(lambda: postfix.client_addresses().count(
        LOOP_CLIENT) - before >= SESSIONS * 3 // 4, 10)
    no_leak(relay)
    assert relay.forks() == 0


# ------------------------------------------------------------ every byte

def test_a_50mb_message_arrives_byte_for_byte(relay, postfix):
    """50 MB of random lines (a few starting with a dot) through the
    relay: Postfix delivers the body, whose checksum is the one sent."""
    client = "127.0.0.208"
    wire, body = message("fwd-big", BIG)
    s, r, deadline = in_data(relay.port, client, timeout=120)
    s.sendall(wire)
    expect(r, b"250 ", deadline)
    s.sendall(b"QUIT\r\n")
    expect(r, b"221 ", deadline)
    s.close()
    got, raw = delivered(postfix, "fwd-big", timeout=60)
    assert len(got) == len(body) and len(got) >= 0.95 * BIG, len(got)
    assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest()
    assert re.search(rb"^Received: from \S+ \(unknown \[127\.0\.0\.208\]\)",
                     raw, re.M), raw[:500]
    f = forwarded(relay, client, "client-closed|mta-closed")
    assert f["in"] == COMMAND_BYTES + len(wire) + len(b"QUIT\r\n"), f
    no_leak(relay)


def test_2000_messages_over_200_sessions(relay, postfix):
    """Postfix's smtp-source: 200 sessions at once (each waits the delay,
    then sends message after message), 2 000 messages: every one
    delivered, 200 sessions relayed."""
    count = maildir_count(postfix)
    before = len(relay.wait_lines(r"^forwarded ip=127\.0\.0\.1 ",
                                  timeout=0))
    quits = len(postfix_quits(postfix))
    rc, out = smtp_source("127.0.0.1", relay.port, 2000, sessions=200)
    assert rc == 0, out
    assert wait_until(lambda: maildir_count(postfix) - count >= 2000, 60), \
        maildir_count(postfix) - count
    assert maildir_count(postfix) - count == 2000
    lines = relay.wait_lines(r"^forwarded ip=127\.0\.0\.1 ",
                             count=before + 200)[before:]
    assert len(lines) == 200, relay.log()
    # smtp-source closes with SO_LINGER 0 after its QUIT: a reset, once
    # Postfix has had the QUIT
    assert {l.rsplit("end=", 1)[1] for l in lines} <= {
        "client-reset", "client-closed", "mta-closed"}, lines
    assert wait_until(lambda: len(postfix_quits(postfix)) - quits == 200,
                      10), postfix.log()[-3000:]
    assert sum(int(n) for n in postfix_quits(postfix)[quits:]) == 2000
    no_leak(relay)


# ------------------------------------------------------------ Exim

def test_exim_behind_the_relay_sees_the_client_go_and_closes_first(
        wd, exim_proxy):
    """The same ends with Exim's daemon (hosts_proxy) behind: a client
    gone mid-DATA is a connection lost while reading message data to
    Exim, nothing queued; after QUIT Exim closes first and the client
    gets its 221, then the end of input.  Exim names each client."""
    lst = forwarder(wd, "127.0.0.1:%d" % exim_proxy.port)
    queued = exim_proxy.message_ids()
    s, r, deadline = in_data(lst.port, "127.0.0.209")
    s.sendall(b"Subject: never ends\r\n\r\n" + b"a line\r\n" * 1000)
    s.close()
    forwarded(lst, "127.0.0.209", "client-closed")
    assert wait_until(lambda: re.search(
        r"SMTP connection from \(client\.sendwrap\.test\) "
        r"\[127\.0\.0\.209\] lost while reading message data$",
        exim_proxy.mainlog(), re.M), 10), exim_proxy.mainlog()

    s, r, deadline = greeted(lst.port, "127.0.0.210")
    s.sendall(b"QUIT\r\n")
    got = r.read_to_eof(deadline)
    s.close()
    assert got == b"221 mx.sendwrap.test closing connection\r\n" and \
        not r.reset, got
    forwarded(lst, "127.0.0.210", "mta-closed")
    assert wait_until(lambda: re.search(
        r"SMTP connection from \[127\.0\.0\.210\] closed by QUIT$",
        exim_proxy.mainlog(), re.M), 10), exim_proxy.mainlog()
    assert exim_proxy.message_ids() == queued
    no_leak(lst)
    lst.stop()
