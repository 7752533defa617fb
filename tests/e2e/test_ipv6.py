"""Scenario 4: IPv6 peers and IPv4-mapped peers.

Debian's ucspi-tcp-ipv6 tcpserver reports
  - an IPv6 client as PROTO=TCP6, TCP6REMOTEIP=::1 (and TCPREMOTEIP=::1);
  - an IPv4 client as PROTO=TCP, TCPREMOTEIP=127.0.0.1
    (TCP6REMOTEIP=::ffff:127.0.0.1 alongside);
  - with -6, an IPv4 client as PROTO=TCP6, TCP6REMOTEIP=::ffff:127.0.0.1:
    the IPv4-mapped form that must count as IPv4.
For the getpeername() path with a mapped address, a dual-stack listener
of our own (an AF_INET6 socket bound to ::ffff:127.0.0.1, what a
dual-stack inetd or systemd socket would hand over) runs sendwrap with
the accepted socket on fds 0 and 1 and no UCSPI variables.
"""

import os
import re
import socket
import threading

import pytest

from e2elib import (SERVER_ENV, TcpServer, assert_delayed, assert_prompt,
                    check_message, make_message, smtp_deliver, start_group,
                    stop_group, swaks_message, wait_until)


def v6_available():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


@pytest.fixture(autouse=True)
def _need_v6():
    # Not a skip: a machine without ::1 cannot prove this scenario.
    assert v6_available(), "no IPv6 loopback (::1) on this machine"


def test_ipv6_client_matched_by_ipv6_entry(wd, mx, sw):
    path = os.path.join(wd, "allow6")
    with open(path, "w") as f:
        f.write("127.0.0.0/8\n::1/128\n")
    srv = TcpServer(wd, sw("-d", "4", "-a", path, mta=mx.argv()), host="::1")

    _, greet, _, headers, body = swaks_message(wd, "::1", srv.port,
                                               "v6-swaks", 1)
    assert_prompt(greet)
    raw2, headers2, body2 = make_message("v6-smtplib", 2)
    greet2 = smtp_deliver("::1", srv.port, raw2, "v6@client.sendwrap.test",
                          headers2["To"])
    assert_prompt(greet2)

    msgs = {m.header("X-E2E-Tag"): m for m in mx.messages()}
    check_message(msgs["v6-swaks-1"], headers, body)
    check_message(msgs["v6-smtplib-2"], headers2, body2)
    assert "[::1]" in msgs["v6-swaks-1"].header("Received")
    lines = srv.wait_lines(r"^allow ", count=2)
    assert len(lines) == 2, srv.log()
    for l in lines:
        # the IPv6 entry matched, not 127.0.0.0/8 (first in the file)
        assert re.match(r"^allow ip=::1 port=\d+ reason=allowlist "
                        r"rule=::1/128$", l), l


def test_ipv6_client_not_matched_by_ipv4_entries(wd, mx, sw):
    srv = TcpServer(wd, sw("-d", "2", "-A", "127.0.0.0/8", "-A", "0.0.0.0/0",
                           mta=mx.argv()), host="::1")
    raw, headers, body = make_message("v6-delayed", 3)
    greet = smtp_deliver("::1", srv.port, raw, "v6@client.sendwrap.test",
                         headers["To"])
    assert_delayed(greet, 2.0)
    check_message(mx.messages()[0], headers, body)
    lines = srv.wait_lines(r"^pass ")
    assert lines and re.match(r"^pass ip=::1 port=\d+ delay=2\.000 ",
                              lines[0]), srv.log()


def test_mapped_client_via_tcpserver6_matched_by_ipv4_entry(wd, mx, sw):
    # tcpserver -6: PROTO=TCP6, TCP6REMOTEIP=::ffff:127.0.0.1
    srv = TcpServer(wd, sw("-d", "4", "-A", "::/0", "-A", "127.0.0.0/8",
                           mta=mx.argv()), opts=["-6"])
    raw, headers, body = make_message("mapped-ucspi", 4)
    greet = smtp_deliver("127.0.0.1", srv.port, raw,
                         "m@client.sendwrap.test", headers["To"])
    assert_prompt(greet)
    check_message(mx.messages()[0], headers, body)
    lines = srv.wait_lines(r"^allow ")
    assert lines, srv.log()
    assert re.match(r"^allow ip=(::ffff:)?127\.0\.0\.1 port=\d+ "
                    r"reason=allowlist rule=127\.0\.0\.0/8$", lines[0]), lines


def test_mapped_client_via_tcpserver6_not_matched_by_ipv6_any(wd, mx, sw):
    srv = TcpServer(wd, sw("-d", "2", "-A", "::/0", mta=mx.argv()),
                    opts=["-6"])
    raw, headers, body = make_message("mapped-delayed", 5)
    greet = smtp_deliver("127.0.0.1", srv.port, raw,
                         "m@client.sendwrap.test", headers["To"])
    assert_delayed(greet, 2.0)
    check_message(mx.messages()[0], headers, body)
    assert srv.wait_lines(r"^pass "), srv.log()


class DualStackListener:
    """Accept on an AF_INET6 socket bound to ::ffff:127.0.0.1 (IPv4
    clients arrive IPv4-mapped) and run one sendwrap per connection with
    the socket on fds 0 and 1, its stderr to a log file, no PROTO."""

    def __init__(self, wd, argv):
        self.sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.sock.bind(("::ffff:127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.argv = argv
        self.logpath = os.path.join(wd, "dualstack.log")
        self.procs = []
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(0.2)
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with open(self.logpath, "ab") as log:
                self.procs.append(start_group(
                    self.argv, stdin=conn.fileno(), stdout=conn.fileno(),
                    stderr=log, env=dict(SERVER_ENV)))
            conn.close()

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode()

    def stop(self):
        self.running = False
        self.thread.join(2)
        self.sock.close()
        for p in self.procs:
            stop_group(p)


def test_mapped_client_via_getpeername_matched_by_ipv4_entry(wd, mx, sw):
    lst = DualStackListener(wd, sw("-d", "4", "-A", "::/0", "-A",
                                   "127.0.0.1", mta=mx.argv()))
    try:
        raw, headers, body = make_message("mapped-peer", 6)
        greet = smtp_deliver("127.0.0.1", lst.port, raw,
                             "m@client.sendwrap.test", headers["To"])
        assert_prompt(greet)
        check_message(mx.messages()[0], headers, body)
        assert wait_until(lambda: "allow " in lst.log(), 5), lst.log()
        assert re.search(r"^sendwrap: allow ip=(::ffff:)?127\.0\.0\.1 "
                         r"port=\d+ reason=allowlist rule=127\.0\.0\.1$",
                         lst.log(), re.M), lst.log()
        # and the MTA saw the IPv4 client as such
        assert "[127.0.0.1]" in mx.messages()[0].header("Received")
    finally:
        lst.stop()
