"""Scenarios 7 and 8: clients that leave, a broken MTA path, an unreadable
allowlist, SIGTERM during the wait."""

import os
import re
import signal
import socket
import stat
import struct
import time

from e2elib import (EXIM, UNAVAILABLE_421, EximSender, LineReader, TcpServer,
                    assert_delayed, check_message, connect, exim_ids,
                    make_message, swaks_message, wait_until)
import proclib  # tests/proclib.py, on the path through e2elib

EXIT_TEMP = 111


def no_leftovers(srv, timeout=10):
    """Only tcpserver is left in its process group: every sendwrap (and
    any MTA) has exited and been reaped (no zombie)."""
    def clean():
        members = proclib.group(srv.pid)
        return [m for m in members if m[0] != srv.pid] == []
    wait_until(clean, timeout)
    members = [m for m in proclib.group(srv.pid) if m[0] != srv.pid]
    assert members == [], "left over (pid, comm, state, ppid, pgid): %r" % (
        members,)


def test_hangup_and_reset_during_the_wait(wd, mx, sw):
    srv = TcpServer(wd, sw("-d", "15", mta=mx.argv()))
    t0 = time.monotonic()

    # a client that connects and closes politely (FIN)
    a = connect("127.0.0.1", srv.port)
    # a client that aborts: SO_LINGER 0 makes close() send a reset
    b = connect("127.0.0.1", srv.port)
    assert wait_until(lambda: len(srv.waiting_sendwraps()) == 2, 5), \
        srv.children()
    time.sleep(0.3)
    a.close()
    b.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    b.close()

    ends = srv.wait_ends(2, timeout=8)
    took = time.monotonic() - t0
    assert len(ends) == 2, srv.log()
    assert took < 10, "sendwrap left after %.1f s of a 15 s delay" % took
    assert sorted(ends.values()) == [0, 0], srv.log()

    lines = srv.wait_lines(r"^hangup ", count=2)
    hows = sorted(re.search(r" how=(\w+)$", l).group(1) for l in lines)
    assert hows == ["eof", "reset"], srv.log()
    for l in lines:
        m = re.match(r"^hangup ip=127\.0\.0\.1 port=\d+ after=(\d+\.\d+) "
                     r"how=\w+$", l)
        assert m, l
        assert float(m.group(1)) < 10
    assert not [l for l in srv.sendwrap_lines() if not l.startswith("hangup")]
    no_leftovers(srv)
    assert mx.connections() == 0, mx.mainlog()      # no MTA ran
    assert mx.messages() == []


def test_sigterm_during_the_wait(wd, mx, sw):
    srv = TcpServer(wd, sw("-d", "30", mta=mx.argv()))
    s = connect("127.0.0.1", srv.port)
    waiting = wait_until(lambda: srv.waiting_sendwraps(), 5)
    assert len(waiting) == 1, srv.children()
    pid = waiting[0][0]
    time.sleep(0.2)
    t0 = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    r = LineReader(s)
    rest = r.read_to_eof(t0 + 10)
    took = time.monotonic() - t0
    s.close()
    assert rest == b"", rest            # no greeting, no MTA
    assert took < 3, "sendwrap took %.2f s to go after SIGTERM" % took
    ends = srv.wait_ends(1)
    status = ends.get(pid)
    assert status is not None, srv.log()
    # killed by SIGTERM (or exited on it), not by anything else (a crash)
    assert status & 0x7f in (0, signal.SIGTERM), status
    no_leftovers(srv)
    assert mx.connections() == 0, mx.mainlog()


def test_missing_mta_is_421_and_retry_succeeds_once_fixed(wd, mx, sw):
    mta = os.path.join(wd, "mta")           # does not exist yet
    srv = TcpServer(wd, sw("-d", "1", mta=[mta] + mx.argv()[1:]))
    sender = EximSender(wd, "127.0.0.1", srv.port)
    raw, headers, body = make_message("retry", 1)
    sender.submit("relay@sender.sendwrap.test", headers["To"], raw)

    # 1. a raw client: 421 after the delay, then end of stream
    t0 = time.monotonic()
    s = connect("127.0.0.1", srv.port)
    r = LineReader(s)
    got = r.read_to_eof(t0 + 15)
    s.close()
    assert got == UNAVAILABLE_421, got
    assert_delayed(time.monotonic() - t0, 1.0)
    errs = srv.wait_lines(r"^error ")
    assert errs and mta in errs[0] and \
        "No such file or directory" in errs[0], srv.log()
    ends = srv.wait_ends(1)
    assert list(ends.values()) == [EXIT_TEMP << 8], srv.log()

    # 2. the sending exim tries, is deferred by the 421, keeps the message
    sender.run_queue()
    assert sender.queue_count() == 1
    assert re.search(r"== %s .*421 4\.3\.0 Service temporarily unavailable"
                     % re.escape(headers["To"]), sender.mainlog()), \
        sender.mainlog()

    # 3. a program that is there but cannot be executed: still 421
    with open(mta, "w") as f:
        f.write("#!/bin/sh\nexec %s \"$@\"\n" % EXIM)
    os.chmod(mta, 0o644)
    sender.run_queue()
    assert sender.queue_count() == 1
    errs = srv.wait_lines(r"^error ", count=3)
    assert len(errs) == 3 and "Permission denied" in errs[2], srv.log()

    # 4. fixed: the retry delivers, and the message is intact
    os.chmod(mta, 0o755)
    sender.run_queue()
    assert sender.queue_count() == 0, sender.mainlog()
    msgs = mx.messages()
    assert len(msgs) == 1
    check_message(msgs[0], headers, body)
    assert mx.connections() == 1
    no_leftovers(srv)


def test_unreadable_and_missing_allowlists_do_not_stop_mail(wd, mx, sw):
    unreadable = os.path.join(wd, "unreadable")
    with open(unreadable, "w") as f:
        f.write("127.0.0.0/8\n")            # would allow us, if readable
    os.chmod(unreadable, 0)
    missing = os.path.join(wd, "missing")
    # sendwrap (and exim -bs, which keeps working with its -C config as
    # the exim user) runs as Debian-exim: root would read a mode-0 file.
    uid, gid = exim_ids()
    srv = TcpServer(wd, sw("-d", "2", "-a", missing, "-a", unreadable,
                           mta=mx.argv()), uid=uid, gid=gid)
    assert os.stat(unreadable).st_mode & 0o777 == 0

    _, greet, _, headers, body = swaks_message(wd, "127.0.0.1", srv.port,
                                               "unreadable", 1)
    assert_delayed(greet, 2.0)          # the lists were skipped, not obeyed
    msgs = mx.messages()
    assert len(msgs) == 1
    check_message(msgs[0], headers, body)

    lines = srv.wait_lines(r"^(pass|error) ", count=3)
    errors = [l for l in lines if l.startswith("error ")]
    assert any(missing in l and "No such file" in l for l in errors), lines
    assert any(unreadable in l and "Permission denied" in l
               for l in errors), lines
    assert any(re.match(r"^pass ip=127\.0\.0\.1 port=\d+ delay=2\.000 ", l)
               for l in lines), lines
    assert stat.S_IMODE(os.stat(unreadable).st_mode) == 0
