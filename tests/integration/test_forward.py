"""--forward, --forward-timeout, --forward-idle: what the options take and
refuse, and what -n says of the target (one real connect on loopback).
The relay engine itself is tested in tests/unit/test_relay.c."""
import socket
import time

import pytest

from sw_harness import SLACK, needs_ipv6


@pytest.mark.parametrize("args,mention", [
    (["--forward", "127.0.0.1:2525"], "--forward needs --listen"),
    (["--listen", "127.0.0.1:0", "--forward", "127.0.0.1:2525",
      "/bin/true"], "--forward relays in place of a program"),
    (["--listen", "127.0.0.1:0", "--forward-idle", "5m", "/bin/true"],
     "--forward-idle needs --forward"),
    (["--listen", "127.0.0.1:0", "--forward-timeout", "5s", "/bin/true"],
     "--forward-timeout needs --forward"),
    (["--listen", "127.0.0.1:0", "--tarpit", "--forward", "127.0.0.1:25"],
     "--forward is for wrapping a program"),
    (["--listen", "127.0.0.1:0", "--forward", "127.0.0.1:0"],
     "bad --forward '127.0.0.1:0'"),
    (["--listen", "127.0.0.1:0", "--forward", "mx.example:25"],
     "bad --forward 'mx.example:25'"),
    (["--listen", "127.0.0.1:0", "--forward", "unix:run/mta.sock"],
     "absolute path"),
    (["--listen", "127.0.0.1:0", "--forward", "unix:/" + "a" * 120],
     "too long"),
    (["--listen", "127.0.0.1:0", "--forward", "127.0.0.1:25",
      "--forward-timeout", "50ms"], "bad --forward-timeout '50ms'"),
    (["--listen", "127.0.0.1:0", "--forward", "127.0.0.1:25",
      "--forward-idle", "2d"], "bad --forward-idle '2d'"),
])
def test_usage_errors(plain, args, mention):
    rc, out, err = plain(["-n"] + args)
    assert rc == 100, (out, err)
    assert "usage" in err and mention in err, err


def test_check_connects_to_the_target(plain):
    with socket.socket() as mta:
        mta.bind(("127.0.0.1", 0))
        mta.listen(1)
        target = "127.0.0.1:%d" % mta.getsockname()[1]
        rc, out, err = plain(["-n", "--listen", "127.0.0.1:0", "--forward",
                              target, "--forward-idle", "90s"])
        assert rc == 0, err
        assert ("forward: %s (connect within 10.000 s, idle 90.000 s)"
                % target) in out
        assert "forward connect: %s in " % target in out
        assert "program:" not in out
        conn, _ = mta.accept()      # the check's connection, closed
        conn.settimeout(5)
        assert conn.recv(10) == b""
        conn.close()


@needs_ipv6
def test_check_connects_over_ipv6(plain):
    with socket.socket(socket.AF_INET6) as mta:
        mta.bind(("::1", 0))
        mta.listen(1)
        target = "[::1]:%d" % mta.getsockname()[1]
        rc, out, err = plain(["-n", "--listen", "[::1]:0", "--forward",
                              target])
        assert rc == 0, err
        assert "forward connect: %s in " % target in out


def test_check_reports_an_mta_down_without_failing(plain, tmp_path):
    """Down for maintenance: said, not counted as a configuration problem
    (clients get 421 4.3.0 meanwhile)."""
    path = tmp_path / "mta.sock"
    with socket.socket(socket.AF_UNIX) as bound:   # bound, not listening
        bound.bind(str(path))
        rc, out, err = plain(["-n", "--listen", "127.0.0.1:0", "--forward",
                              "unix:%s" % path])
    assert rc == 0, (out, err)
    assert "forward: unix:%s" % path in out
    assert ("cannot connect to unix:%s: Connection refused" % path) in err
    assert "configuration ok" in out


def test_check_connect_is_bounded_by_the_timeout(plain):
    """A backlog that is full drops the SYN: the check gives up at
    --forward-timeout."""
    with socket.socket() as mta, socket.socket() as filler:
        mta.bind(("127.0.0.1", 0))
        mta.listen(0)
        filler.connect(mta.getsockname())
        target = "127.0.0.1:%d" % mta.getsockname()[1]
        start = time.monotonic()
        rc, out, err = plain(["-n", "--listen", "127.0.0.1:0", "--forward",
                              target, "--forward-timeout", "300ms"])
        took = time.monotonic() - start
    assert rc == 0, (out, err)
    assert "cannot connect to %s: Connection timed out" % target in err
    assert 0.3 <= took < 0.3 + 5 + SLACK


# ---------------------------------------------------------- the listener

class DaemonMTA:
    """A stand-in MTA daemon on a loopback port (the relay's far end,
    for the unit level: real daemons are in tests/e2e): a thread a
    connection, that records the PROXY header it got (if any), greets,
    answers 250 to every line and 221 to QUIT, and keeps every byte it
    read after the header."""

    def __init__(self, greet=True):
        import threading
        self.greet = greet
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.sessions = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def target(self):
        return "127.0.0.1:%d" % self.port

    def _accept(self):
        import threading
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,),
                             daemon=True).start()

    def _serve(self, c):
        rec = {"header": b"", "data": b""}
        with self.lock:
            self.sessions.append(rec)
        f = c.makefile("rb")
        try:
            # A header comes at once, before any byte of the client's
            # (which waits for the greeting): a moment's silence is none.
            c.settimeout(0.3)
            try:
                first = c.recv(16, socket.MSG_PEEK)
            except socket.timeout:
                first = b""
            c.settimeout(10)
            if first.startswith(b"PROXY "):
                rec["header"] = f.readline()
            elif first.startswith(b"\r\n\r\n\x00\r\nQUIT\n"):
                head = f.read(16)
                rec["header"] = head + f.read(int.from_bytes(head[14:16],
                                                             "big"))
            if self.greet:
                c.sendall(b"220 daemon\r\n")
            for line in f:
                rec["data"] += line
                if line.upper().startswith(b"QUIT"):
                    c.sendall(b"221 bye\r\n")
                    break
                c.sendall(b"250 ok\r\n")
        except OSError:
            pass
        c.close()

    def stop(self):
        self.sock.close()


@pytest.fixture
def daemon():
    d = DaemonMTA()
    yield d
    d.stop()


@pytest.fixture
def forwarding(tmp_path):
    from test_listener import Listener
    started = []

    def start(args):
        lst = Listener(tmp_path / ("l%d" % len(started)), list(args))
        started.append(lst)
        return lst

    yield start
    for lst in started:
        lst.stop()


def session(c, lines=(b"EHLO client.example\r\n",)):
    c.recv_until(b"220 daemon\r\n")
    for line in lines:
        c.send(line)
        c.recv_until(b"250 ok\r\n")
    c.send(b"QUIT\r\n")
    c.recv_until(b"221 bye\r\n")


def test_a_client_that_passes_reaches_the_daemon(forwarding, daemon):
    lst = forwarding(["-d", "0.3", "--forward", daemon.target()])
    c = lst.connect(source="127.0.0.7")
    t0 = time.monotonic()
    session(c, [b"EHLO client.example\r\n", b"MAIL FROM:<a@b>\r\n"])
    assert time.monotonic() - t0 >= 0.25
    # The daemon closes after its 221: the client closes once that end
    # has reached it, so the session ends as the daemon's doing.
    c.read_all()
    c.close()
    f = lst.wait_for("forwarded")[0]
    assert f["ip"] == "127.0.0.7"
    assert f["in"] == str(len(b"EHLO client.example\r\nMAIL FROM:<a@b>\r\n"
                              b"QUIT\r\n"))
    assert f["out"] == str(len(b"220 daemon\r\n250 ok\r\n250 ok\r\n"
                               b"221 bye\r\n"))
    assert f["end"] == "mta-closed"
    assert lst.wait_for("pass")[0]["ip"] == "127.0.0.7"
    assert daemon.sessions[0]["header"] == b""
    assert daemon.sessions[0]["data"].startswith(b"EHLO client.example")
    assert lst.errors() == []


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_the_daemon_hears_of_the_client(forwarding, daemon, version):
    lst = forwarding(["-d", "0", "--forward", daemon.target(),
                      "--forward-proxy", version])
    c = lst.connect(source="127.0.0.8")
    session(c)
    sport = c.sock.getsockname()[1]
    c.close()
    header = daemon.sessions[0]["header"]
    if version == "v1":
        assert header == b"PROXY TCP4 127.0.0.8 127.0.0.1 %d %d\r\n" % (
            sport, lst.addrs[0][1])
    else:
        # version 2, PROXY, TCP over IPv4, 12 bytes of addresses
        assert header[12:16] == b"\x21\x11\x00\x0c"
        assert header[16:20] == socket.inet_aton("127.0.0.8")
        assert int.from_bytes(header[24:26], "big") == sport


def test_a_bot_never_reaches_the_daemon(forwarding, daemon):
    lst = forwarding(["-d", "2", "--forward", daemon.target()])
    c = lst.connect()
    c.send(b"EHLO bot\r\nMAIL FROM:<spam@bot>\r\n")
    assert c.read_all().startswith(b"554 ")
    lst.wait_for("early")
    time.sleep(0.2)
    assert daemon.sessions == []


def test_a_daemon_that_is_down_costs_no_mail(forwarding):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))     # bound, never listening: refused
        target = "127.0.0.1:%d" % s.getsockname()[1]
        lst = forwarding(["-d", "0", "--forward", target])
        c = lst.connect()
        assert c.read_all() == b"421 4.3.0 Service temporarily " \
            b"unavailable\r\n"
    f = lst.wait_for("forwarded")[0]
    assert f["end"] == "unreachable" and f["in"] == "0"
    assert any("cannot forward to %s" % target in e for e in lst.errors())


def test_an_idle_session_is_closed(forwarding, daemon):
    lst = forwarding(["-d", "0", "--forward", daemon.target(),
                      "--forward-idle", "1s"])
    c = lst.connect()
    c.recv_until(b"220 daemon\r\n")
    t0 = time.monotonic()
    c.read_all(timeout=5 + SLACK)
    assert 0.9 <= time.monotonic() - t0 <= 3 + SLACK
    assert lst.wait_for("forwarded")[0]["end"] == "idle"


def test_relayed_sessions_are_within_max_children(forwarding, daemon):
    """--max-children bounds the sessions relayed at once: one more
    waits in the queue for a place, then reaches the daemon."""
    lst = forwarding(["-d", "0", "--forward", daemon.target(),
                      "--max-children", "1"])
    first = lst.connect(source="127.0.0.11")
    first.recv_until(b"220 daemon\r\n")
    second = lst.connect(source="127.0.0.12")
    second.quiet_for(0.4)
    first.send(b"QUIT\r\n")
    first.recv_until(b"221 bye\r\n")
    first.close()                    # both ways closed: the place is free
    session(second)
    second.close()


def test_sigterm_lets_a_relayed_session_finish(forwarding, daemon):
    import signal
    lst = forwarding(["-d", "0", "--forward", daemon.target()])
    c = lst.connect()
    c.recv_until(b"220 daemon\r\n")
    lst.signal(signal.SIGTERM)
    time.sleep(0.3)
    c.send(b"EHLO still.here\r\n")
    c.recv_until(b"250 ok\r\n")
    c.send(b"QUIT\r\n")
    c.recv_until(b"221 bye\r\n")
    c.close()
    assert lst.proc.wait(timeout=5 + SLACK) == 0
