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
