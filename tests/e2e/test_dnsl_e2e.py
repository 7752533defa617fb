"""DNS lists with real parts: tcpserver -> sendwrap --dnsbl/--dnswl ->
exim -bs, a real DNS server (dnsmasq, tests/dnsserver.py) on a loopback
port serving the test zones, swaks and a blind bot as clients.

- a listed client is refused before the delay ends, and exim never runs;
- a client on the allow list is greeted within a second of a 20 s delay
  and delivers; with -c it is cached;
- with the DNS server stopped or frozen, clients are delayed as without
  lists, never refused, never held past the delay, and deliver;
- an early talker is caught while the queries are out;
- an IPv6 client is looked up in the nibble form and refused.
"""
import os
import sys

from e2elib import (TcpServer, assert_delayed, bot, bot_payload,
                    check_message, make_message, swaks, write_swaks_data)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
from dnsserver import DNS  # noqa: E402

AT_ONCE = 1.5      # well under the 20 s delay, with room for a loaded box


def lists(dns):
    return ["--dnsbl", "bl.test", "--dnswl", "wl.test",
            "--dns-server", dns.server]


def deliver(wd, srv, n, source=None, host="127.0.0.1"):
    raw, headers, body = make_message("dnsl", n)
    data = write_swaks_data(os.path.join(wd, "m%d.eml" % n), raw)
    rc, out, greet, _ = swaks(host, srv.port, headers["To"], data_file=data,
                              source=source)
    return rc, out, greet, headers, body


def test_listed_refused_allowed_greeted(wd, mx, sw):
    dns = DNS(wd)
    try:
        cache = os.path.join(wd, "cache.mdb")
        srv = TcpServer(wd, sw("-d", "20", "-c", cache, *lists(dns),
                               mta=mx.argv()))
        # 127.0.0.1 is on bl.test: refused with 554 5.7.1 at once.
        rc, out, greet, _, _ = deliver(wd, srv, 1)
        assert rc != 0 and "554 5.7.1 Service unavailable; client " \
            "[127.0.0.1] blocked using bl.test" in out, out
        assert greet is not None and greet < AT_ONCE, out
        assert srv.wait_lines(r"^dnsbl ip=127\.0\.0\.1 .*score=1$")
        # 127.0.0.3 is on wl.test: greeted at once, delivers, cached.
        for n in (2, 3):
            rc, out, greet, headers, body = deliver(wd, srv, n,
                                                    source="127.0.0.3")
            assert rc == 0, out
            assert greet < AT_ONCE, out
        assert srv.wait_lines(r"^allow ip=127\.0\.0\.3 .*reason=dnswl")
        assert srv.wait_lines(r"^cached ip=127\.0\.0\.3 ")
        msgs = {m.header("X-E2E-Tag"): m for m in mx.messages()}
        assert sorted(msgs) == ["dnsl-2", "dnsl-3"], mx.queue_listing()
        check_message(msgs["dnsl-3"], headers, body)
        assert mx.connections() == 2
    finally:
        dns.stop()


def test_dns_down_only_delays(wd, mx, sw):
    dns = DNS(wd)
    try:
        srv = TcpServer(wd, sw("-d", "3", *lists(dns), mta=mx.argv()))
        dns.freeze()
        rc, out, greet, _, _ = deliver(wd, srv, 1)
        assert rc == 0, out
        assert_delayed(greet, 3.0)
        assert greet < 3.0 + AT_ONCE, out
        dns.stop()
        rc, out, greet, _, _ = deliver(wd, srv, 2)
        assert rc == 0, out
        assert_delayed(greet, 3.0)
        assert greet < 3.0 + AT_ONCE, out
        assert len(mx.messages()) == 2
        assert len(srv.wait_lines(r"^pass .*score=0$", count=2)) == 2
    finally:
        dns.stop()


def test_early_talker_caught_while_asking(wd, mx, sw):
    dns = DNS(wd)
    try:
        srv = TcpServer(wd, sw("-d", "10", *lists(dns), mta=mx.argv()))
        dns.freeze()            # the answers never come
        got, took, _ = bot("127.0.0.1", srv.port, bot_payload("dnsl"))
        assert got.startswith(b"554 5.5.1 "), got
        assert took < AT_ONCE + 2
        assert srv.wait_lines(r"^early ip=127\.0\.0\.1 ")
        assert mx.connections() == 0
    finally:
        dns.stop()


def test_ipv6_client_in_nibble_form(wd, mx, sw):
    dns = DNS(wd)
    try:
        srv = TcpServer(wd, sw("-d", "20", *lists(dns), mta=mx.argv()),
                        host="::1")
        rc, out, greet, _, _ = deliver(wd, srv, 1, host="::1")
        assert rc != 0 and "blocked using bl.test" in out, out
        assert dns.queried("1" + ".0" * 31 + ".bl.test")
        assert mx.connections() == 0
    finally:
        dns.stop()
