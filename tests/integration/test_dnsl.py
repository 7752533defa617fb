"""DNS block and allow lists (--dnsbl, --dnswl) asked while the client
waits, against a real DNS server (Debian's dnsmasq) on a loopback port
serving test zones, in front of the stand-in MTA: refusal before the
delay ends, allow lists ending the wait, weights, filters, a server that
is down, stopped or failing, early talkers during the queries, IPv6
nibble names, the listener."""
import time

import pytest

from dnsserver import DNS
from sw_harness import MTA, REPLY_REJECT, SLACK, T
from test_listener import Listener

SOON = 1.5 + SLACK
BLOCKED = (b"554 5.7.1 Service unavailable; client [127.0.0.1] blocked "
           b"using bl.test\r\n")


@pytest.fixture
def dns(tmp_path):
    d = DNS(tmp_path)
    yield d
    d.stop()


def lists(dns, *extra):
    return ["--dnsbl", "bl.test", "--dnswl", "wl.test", "--dns-server",
            dns.server, *extra]


def verdict(c, word):
    """The fields of c's one verdict line, which must be word."""
    got, fields = c.verdict()
    assert got == word, "verdict %r, want %r:\n%s" % (got, word, c.log)
    return fields


def as_client(ip):
    """The environment tcpserver sets for a client from ip."""
    return {"PROTO": "TCP", "TCPREMOTEIP": ip, "TCPREMOTEPORT": "4000"}


def timed(c, want=b"220 standin\r\n", timeout=T):
    t0 = time.monotonic()
    c.recv_until(want, timeout)
    return time.monotonic() - t0


# ------------------------------------------------- one process a connection

def test_listed_client_refused_before_the_delay_ends(sw, dns):
    c = sw(["-d", "20", *lists(dns), *MTA])
    assert c.client.read_all(timeout=SOON + 2) == BLOCKED
    assert c.finish() == 0 and not c.ran()
    f = verdict(c, "dnsbl")
    assert f["dnsbl"] == "bl.test:1" and f["score"] == "1"
    assert float(f["after"]) < SOON


def test_weights_add_up_to_the_threshold(sw, dns):
    pair = ["--dnsbl", "bl.test", "--dnsbl", "bl2.test*2",
            "--dnsbl-threshold", "3", "--dns-server", dns.server]
    c = sw(["-d", "20", *pair, *MTA])
    assert c.client.read_all(timeout=SOON + 2).startswith(b"554 5.7.1 ")
    assert verdict(c, "dnsbl")["score"] == "3"
    # One list of the two is not enough: the client waits and passes.
    c = sw(["-d", "1", "--dnsbl", "bl.test", "--dnsbl-threshold", "3",
            "--dns-server", dns.server, *MTA])
    assert timed(c.client) >= 0.9
    c.client.send(b"QUIT\r\n")
    c.finish()
    f = verdict(c, "pass")
    assert f["dnsbl"] == "bl.test:1" and f["score"] == "1"


def test_filter_that_does_not_match_does_not_count(sw, dns):
    c = sw(["-d", "1", "--dnsbl", "bl.test=127.0.0.[3..8]", "--dns-server",
            dns.server, *MTA])
    assert timed(c.client) >= 0.9
    c.client.send(b"QUIT\r\n")
    c.finish()
    assert verdict(c, "pass")["score"] == "0"
    c = sw(["-d", "20", "--dnsbl", "bl.test=127.0.[0..255].[1;2]",
            "--dns-server", dns.server, *MTA])
    assert c.client.read_all(timeout=SOON + 2) == BLOCKED


def test_allow_list_ends_the_wait_and_is_cached(sw, dns, tmp_path):
    cache = str(tmp_path / "c.mdb")
    c = sw(["-d", "20", "-c", cache, *lists(dns), *MTA],
           env=as_client("127.0.0.3"))
    assert timed(c.client) < SOON
    c.client.send(b"QUIT\r\n")
    c.finish()
    f = verdict(c, "allow")
    assert f["reason"] == "dnswl" and f["dnswl"] == "wl.test:-1"
    c = sw(["-d", "20", "-c", cache, *lists(dns), *MTA],
           env=as_client("127.0.0.3"))
    assert timed(c.client) < SOON
    c.client.send(b"QUIT\r\n")
    c.finish()
    verdict(c, "cached")


@pytest.mark.every_case_under_valgrind
@pytest.mark.parametrize("trouble", ["stopped", "frozen", "servfail"])
def test_dns_trouble_delays_never_refuses(sw, dns, trouble):
    zone = "fail.test" if trouble == "servfail" else "bl.test"
    if trouble == "stopped":
        dns.stop()
    elif trouble == "frozen":
        dns.freeze()
    try:
        c = sw(["-d", "2", "--dnsbl", zone, "--dns-server", dns.server,
                *MTA])
        t = timed(c.client)
        assert 1.9 <= t < 2 + SOON, t
        c.client.send(b"QUIT\r\n")
        assert c.finish() == 0
        assert verdict(c, "pass")["score"] == "0"
    finally:
        dns.thaw()


def test_early_talker_caught_while_the_queries_are_out(sw, dns):
    dns.freeze()     # the answers never come
    try:
        c = sw(["-d", "5", *lists(dns), *MTA], early=b"EHLO bot\r\n")
        assert c.client.read_all(timeout=SOON + 2) == REPLY_REJECT
        assert verdict(c, "early")["score"] == "0"
        assert not c.ran()
    finally:
        dns.thaw()


def test_ipv6_client_uses_the_nibble_form(sw, dns):
    c = sw(["-d", "20", *lists(dns), *MTA], peer="ipv6")
    assert c.client.read_all(timeout=SOON + 2).startswith(b"554 5.7.1 ")
    assert verdict(c, "dnsbl")["ip"] == "::1"
    assert dns.queried("1" + ".0" * 31 + ".bl.test")


@pytest.mark.every_case_under_valgrind
@pytest.mark.parametrize("action,reply", [
    ("tempfail", b"421 4.7.1 Service unavailable; client [127.0.0.1] "
                 b"blocked using bl.test\r\n"),
    ("drop", b""),
])
def test_dnsbl_actions(sw, dns, action, reply):
    c = sw(["-d", "20", "--dnsbl-action", action, *lists(dns), *MTA])
    assert c.client.read_all(timeout=SOON + 2) == reply
    assert verdict(c, "dnsbl")["action"] == action


def test_dnsbl_pass_only_logs(sw, dns):
    c = sw(["-d", "1", "--dnsbl-action", "pass", *lists(dns), *MTA])
    assert timed(c.client) >= 0.9
    c.client.send(b"QUIT\r\n")
    c.finish()
    assert verdict(c, "pass")["dnsbl"] == "bl.test:1"


def test_reply_text_hides_the_zone(sw, dns):
    c = sw(["-d", "20", "--dnsbl-reply", "our list", *lists(dns), *MTA])
    data = c.client.read_all(timeout=SOON + 2)
    assert data.endswith(b"blocked using our list\r\n") and b"bl.test" \
        not in data


def test_no_lookup_without_a_wait(sw, dns):
    c = sw(["-d", "0", *lists(dns), *MTA])
    assert timed(c.client) < SOON
    c.client.send(b"QUIT\r\n")
    c.finish()
    verdict(c, "allow")
    time.sleep(0.2)
    assert dns.queried("probe.test") and not dns.queried("127.bl.test")


# ------------------------------------------------------------ the listener

def test_listener_asks_the_lists(tmp_path, dns):
    lst = Listener(tmp_path / "l", ["-d", "3", *lists(dns), *MTA])
    try:
        blocked = lst.connect(source="127.0.0.1")
        assert blocked.read_all(timeout=SOON) == BLOCKED
        allowed = lst.connect(source="127.0.0.3")
        assert timed(allowed) < SOON
        allowed.send(b"QUIT\r\n")
        plain = lst.connect(source="127.0.0.6")
        assert timed(plain) >= 2.9
        plain.send(b"QUIT\r\n")
        assert lst.wait_for("dnsbl")[0]["ip"] == "127.0.0.1"
        assert lst.wait_for("allow")[0]["reason"] == "dnswl"
        assert lst.wait_for("pass")[0]["score"] == "0"
    finally:
        lst.stop()


# ------------------------------------------------------------ usage

@pytest.mark.parametrize("args", [
    ["--dnsbl-threshold", "2", "/bin/true"],
    ["--dns-server", "127.0.0.1", "/bin/true"],
    ["--dnsbl", "bad zone!", "/bin/true"],
    ["--dnsbl", "bl.test=127.0.0", "/bin/true"],
    ["--dnsbl", "bl.test=127.0.0.[5..2]", "/bin/true"],
    ["--dnsbl", "bl.test*x", "/bin/true"],
    ["--dnsbl", "bl.test", "--dns-server", "localhost", "/bin/true"],
    ["--dnsbl", "bl.test", "--dnswl-threshold", "1", "/bin/true"],
    ["--dnsbl", "bl.test", "--tarpit"],
])
def test_usage_errors(plain, args):
    rc, out, err = plain(["-n"] + args)
    assert rc == 100 and "usage" in err, (out, err)


def test_check_shows_the_lists(plain):
    rc, out, err = plain(["-n", "--dnsbl", "zen.example=127.0.0.[2..11]*3",
                          "--dnswl", "wl.example", "/bin/true"])
    assert rc == 0, err
    assert "dnsbl: zen.example (filtered) weight 3" in out
    assert "dnswl: wl.example weight -1" in out
