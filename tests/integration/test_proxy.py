"""Behind a load balancer (--proxy-from, --proxy-timeout): a connection
from a balancer begins with a PROXY header (v1 or v2), which sendwrap
takes off the connection and not a byte more; the client it names is
judged (allowlist, cache), logged and named to the program in the UCSPI
variables; the delay, and the early-talk test, start after it.  No header,
a bad one or none in time: 421 4.3.0 and an error line.  A header from
anyone else is early talk like any other; the balancer's own connection
(LOCAL) is greeted at once and never recorded.

The headers are written here from the spec (haproxy's
doc/proxy-protocol.txt), not by sendwrap's own code."""
import re
import socket
import struct
import time

import pytest

from sw_harness import (MTA, REPLY_REJECT, REPLY_UNAVAILABLE, SECONDS, SOON,
                        needs_ipv6, ucspi_env)

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
BALANCER = ["--proxy-from", "127.0.0.1"]
CLIENT4, PORT4 = "192.0.2.7", 50000
CLIENT6, PORT6 = "2001:db8::7", 40001
LOCAL4, LOCAL6 = "198.51.100.25", "2001:db8::25"


def v1(src, sport, dst, dport):
    family = "TCP6" if ":" in src else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (family, src, dst, sport,
                                          dport)).encode()


def v2_header(command, family, body):
    """The 16 bytes, then body."""
    return V2_SIGNATURE + bytes([0x20 | command, family]) + \
        struct.pack("!H", len(body)) + body


def v2(src, sport, dst, dport, tlvs=b""):
    """PROXY over TCP (a NOOP TLV too, as balancers pad)."""
    af, family = (socket.AF_INET6, 0x21) if ":" in src else \
        (socket.AF_INET, 0x11)
    body = socket.inet_pton(af, src) + socket.inet_pton(af, dst) + \
        struct.pack("!HH", sport, dport) + tlvs
    return v2_header(1, family, body)


V2_LOCAL = v2_header(0, 0x00, b"")
NOOP = b"\x04\x00\x03pad"

HEADERS = {
    "v1-tcp4": (v1(CLIENT4, PORT4, LOCAL4, 25), CLIENT4, PORT4, LOCAL4),
    "v1-tcp6": (v1(CLIENT6, PORT6, LOCAL6, 25), CLIENT6, PORT6, LOCAL6),
    "v2-ipv4": (v2(CLIENT4, PORT4, LOCAL4, 25, NOOP), CLIENT4, PORT4,
                LOCAL4),
    "v2-ipv6": (v2(CLIENT6, PORT6, LOCAL6, 25), CLIENT6, PORT6, LOCAL6),
    # An IPv4 client through an IPv6 front: IPv4, as everywhere else.
    "v2-mapped": (v2("::ffff:" + CLIENT4, PORT4, LOCAL6, 25), CLIENT4,
                  PORT4, LOCAL6),
}


def environ(conn):
    """The program's environment as a dict."""
    return dict(e.split("=", 1) for e in conn.record()["environ"])


def ucspi(env):
    return {k: v for k, v in env.items()
            if k == "PROTO" or k.startswith("TCP")}


def ucspi_for(client, port, local, local_port=25):
    """What tcpserver (ucspi-tcp6's twins too) would give the client."""
    v4 = ":" not in client
    mapped = "::ffff:" if v4 else ""
    lmapped = "::ffff:" if ":" not in local else ""
    return {"PROTO": "TCP" if v4 else "TCP6",
            "TCPREMOTEIP": client, "TCP6REMOTEIP": mapped + client,
            "TCPREMOTEPORT": str(port), "TCP6REMOTEPORT": str(port),
            "TCPLOCALIP": local, "TCP6LOCALIP": lmapped + local,
            "TCPLOCALPORT": str(local_port),
            "TCP6LOCALPORT": str(local_port)}


def refused(conn, why):
    """421 4.3.0, the end, one error line saying why, no program."""
    conn.client.read_all()
    assert conn.client.data == REPLY_UNAVAILABLE, conn.client.data
    assert conn.finish() == 0
    lines = conn.log_lines()
    assert len(lines) == 1, conn.log
    m = re.fullmatch(r"sendwrap: error ip=127\.0\.0\.1 port=(\d+) no valid "
                     r"PROXY header: (.*)", lines[0])
    assert m, lines[0]
    assert m.group(1) == conn.client_port
    assert re.fullmatch(why, m.group(2)), m.group(2)
    assert not conn.ran()


# ------------------------------------------------------ the client named

@pytest.mark.parametrize("name", list(HEADERS))
def test_the_header_names_the_client(sw, name):
    """Judged, logged and handed over as the client inside; the program
    sees the client's bytes, none of the header's."""
    header, client, port, local = HEADERS[name]
    c = sw(["-d", "0.3", *BALANCER, *MTA])
    c.client.send(header)
    assert c.converse() >= 0.3
    c.expect("pass", ip=client, port=str(port), delay="0.300",
             waited=SECONDS)
    assert c.record()["before"] == ""
    assert ucspi(environ(c)) == ucspi_for(client, port, local)


def test_tcpserver_variables_of_the_balancer_are_replaced(sw):
    """Under tcpserver the balancer is found by TCPREMOTEIP, and what
    tcpserver said of it (TCPREMOTEHOST...) goes: the program hears of
    the client only."""
    env = dict(ucspi_env("10.9.8.7", "41000"), TCPREMOTEHOST="lb.example",
               TCPLOCALHOST="mx.example", TCPREMOTEINFO="x",
               TCPLOCALIP="10.9.8.1", TCPLOCALPORT="25")
    c = sw(["-d", "0.2", "--proxy-from", "10.9.8.0/24", *MTA], env=env)
    c.client.send(v1(CLIENT4, PORT4, LOCAL4, 2525))
    c.converse()
    c.expect("pass", ip=CLIENT4, port=str(PORT4), delay="0.200",
             waited=SECONDS)
    assert ucspi(environ(c)) == ucspi_for(CLIENT4, PORT4, LOCAL4, 2525)


@needs_ipv6
def test_a_balancer_on_ipv6(sw):
    c = sw(["-d", "0.2", "--proxy-from", "10.0.0.0/8", "--proxy-from",
            "::1", *MTA], peer="ipv6")
    c.client.send(v2(CLIENT4, PORT4, LOCAL4, 25))
    c.converse()
    c.expect("pass", ip=CLIENT4, port=str(PORT4), delay="0.200",
             waited=SECONDS)


def test_the_allowlist_judges_the_client(sw):
    """The client's entry lets it in; the balancer's does nothing for the
    clients it brings."""
    args = ["-d", "20", "-A", "127.0.0.1", "-A", "192.0.2.0/24",
            *BALANCER, *MTA]
    c = sw(args)
    c.client.send(v1(CLIENT4, PORT4, LOCAL4, 25))
    assert c.converse() < SOON
    c.expect("allow", ip=CLIENT4, port=str(PORT4), reason="allowlist",
             rule="192.0.2.0/24")
    args = ["-d", "0.3", "-A", "127.0.0.1", *BALANCER, *MTA]
    c = sw(args)
    c.client.send(v1("203.0.113.9", 1234, LOCAL4, 25))
    assert c.converse() >= 0.3
    c.expect("pass", ip="203.0.113.9", port="1234", delay="0.300",
             waited=SECONDS)


def test_the_cache_keeps_the_client(sw, plain, tmp_path):
    cache = str(tmp_path / "c.mdb")
    args = ["-d", "0.5", "-c", cache, *BALANCER, *MTA]
    first = sw(args)
    first.client.send(v2(CLIENT4, PORT4, LOCAL4, 25))
    first.converse()
    first.expect("pass", ip=CLIENT4, port=str(PORT4), delay="0.500",
                 waited=SECONDS)
    rc, out, err = plain(["--cache-list", cache])
    assert rc == 0, err
    assert [line.split()[:2] for line in out.splitlines()] == \
        [[CLIENT4 + "/32", "pass"]], out
    again = sw(args)
    again.client.send(v1(CLIENT4, 999, LOCAL4, 25))
    assert again.converse() < SOON
    again.expect("cached", ip=CLIENT4, port="999", age=SECONDS)
    # Another client through the same balancer waits.
    other = sw(args)
    other.client.send(v1("203.0.113.9", 1, LOCAL4, 25))
    assert other.converse() >= 0.5
    assert other.verdict()[0] == "pass"


# ------------------------------------------------ the bytes after it

def test_header_and_early_talk_in_one_write(sw):
    """The early-talk test starts after the header: what follows it at
    once is the client talking first, judged by the client's address."""
    c = sw(["-d", "5", *BALANCER, *MTA],
           early=v1(CLIENT4, PORT4, LOCAL4, 25) + b"EHLO bot\r\n")
    c.until(REPLY_REJECT, SOON)
    c.finish()
    c.expect("early", ip=CLIENT4, port=str(PORT4), after=SECONDS,
             bytes="10", first='"EHLO bot\\r\\n"', action="reject")


@pytest.mark.parametrize("header", [v1(CLIENT4, PORT4, LOCAL4, 25),
                                    v2(CLIENT6, PORT6, LOCAL6, 25, NOOP)],
                         ids=["v1", "v2"])
def test_the_program_gets_every_client_byte(sw, header):
    """-x pass: the early talker's bytes reach the program whole, and
    not one of the header's."""
    c = sw(["-d", "5", "-x", "pass", *BALANCER, *MTA],
           early=header + b"EHLO bot\r\nMAIL FROM:<a@b>\r\n")
    assert c.greeted() < SOON
    c.client.send(b"QUIT\r\n")
    c.client.read_all()
    c.finish()
    assert c.record()["before"] == "EHLO bot\r\nMAIL FROM:<a@b>\r\n"
    assert c.verdict()[0] == "early"


@pytest.mark.parametrize("header", [v1(CLIENT6, PORT6, LOCAL6, 25),
                                    v2(CLIENT4, PORT4, LOCAL4, 25, NOOP)],
                         ids=["v1", "v2"])
def test_a_header_in_pieces(sw, header):
    """Bytes at a time, over a while: the header is put together, and the
    delay starts when it is whole."""
    c = sw(["-d", "0.5", *BALANCER, *MTA])
    cuts = [1, 5, 13, 16, len(header) - 1]
    at = 0
    for cut in cuts:
        c.client.send(header[at:cut])
        at = cut
        time.sleep(0.1)
    c.client.send(header[at:])
    whole = time.monotonic() - c.t0
    assert c.greeted() - whole >= 0.5
    c.client.send(b"NOOP\r\nQUIT\r\n")
    c.client.read_all()
    c.finish()
    word, f = c.verdict()
    assert word == "pass" and f["ip"] in (CLIENT4, CLIENT6), c.log
    assert c.record()["after"] == "NOOP\r\nQUIT\r\n"


# --------------------------------------------------- no header, or bad

OVERSIZED_V2 = v2_header(1, 0x11, bytes(12) + b"\x04\x03\xf5" + bytes(1013))


@pytest.mark.parametrize("sent,why", [
    (b"EHLO client.example\r\n", r"not a PROXY header"),
    (b"PROXY TCP4 192.0.2.7\r\n", r"v1: malformed line .*"),
    (b"PROXY TCP4 192.0.2.7 198.51.100.25 50000 025\r\n",
     r"v1: bad destination port"),
    (b"PROXY UNKNOWN " + b"f" * 100 + b"\r\n", r"v1: oversized .*"),
    (v2_header(1, 0x11, bytes(8)), r"v2: addresses longer than the header"),
    (V2_SIGNATURE + b"\x31\x11\x00\x0c" + bytes(12),
     r"v2: unsupported version"),
    (OVERSIZED_V2, r"v2: oversized .*"),
], ids=["smtp", "v1-short", "v1-port", "v1-oversized", "v2-short",
        "v2-version", "v2-oversized"])
def test_a_bad_header_is_refused(sw, sent, why):
    c = sw(["-d", "5", *BALANCER, *MTA], early=sent)
    refused(c, why)


@pytest.mark.parametrize("sent,why", [
    (b"", r"none within 0\.500s"),
    (b"PROXY TCP4 192.0", r"incomplete after 0\.500s"),
    (V2_SIGNATURE, r"incomplete after 0\.500s"),
], ids=["nothing", "v1-part", "v2-part"])
def test_no_header_in_time(sw, sent, why):
    c = sw(["-d", "5", "--proxy-timeout", "0.5", *BALANCER, *MTA],
           early=sent)
    t = c.until(REPLY_UNAVAILABLE)
    assert 0.5 <= t < 0.5 + SOON
    refused(c, why)


def test_the_balancer_closes_before_a_header(sw):
    c = sw(["-d", "5", *BALANCER, *MTA], early=b"PROXY TCP6 2001:db8",
           hangup="eof")
    refused(c, r"the connection ended inside the header")


def test_a_header_from_anyone_else_is_early_talk(sw):
    header = v1(CLIENT4, PORT4, LOCAL4, 25)
    c = sw(["-d", "5", "--proxy-from", "10.0.0.0/8", *MTA],
           early=header)
    c.until(REPLY_REJECT, SOON)
    c.finish()
    shown = header.decode().replace("\r\n", "\\r\\n")
    c.expect("early", after=SECONDS, bytes=str(len(header)),
             first='"%s"' % shown, action="reject")


# ----------------------------------------------- the balancer's own

def test_a_health_check_is_greeted_at_once_and_not_recorded(sw, plain,
                                                             tmp_path):
    """LOCAL: the balancer's own connection, greeted at once whatever the
    cache says of its address (here: an early talker), never greylisted
    nor recorded; its own address in the log and for the program."""
    cache = str(tmp_path / "c.mdb")
    bot = sw(["-d", "5", "-c", cache, "--bad-ttl", "1h", *MTA],
             early=b"EHLO bot\r\n")
    bot.until(REPLY_REJECT)
    bot.finish()
    assert bot.verdict()[0] == "early"
    args = ["-d", "20", "-c", cache, "--bad-ttl", "1h", "--greylist",
            *BALANCER, *MTA]
    c = sw(args, early=V2_LOCAL)
    assert c.converse() < SOON
    c.expect("allow", reason="proxy-local")
    assert ucspi(environ(c)) == {}
    rc, out, err = plain(["--cache-count", cache])
    assert rc == 0 and out.startswith("1 entries: 0 pass, 1 bad, 0 grey"), \
        (out, err)


def test_an_unknown_client_leaves_the_balancer(sw):
    """PROXY UNKNOWN: the connection's own address stands, and is judged
    as any client's."""
    c = sw(["-d", "0.3", *BALANCER, *MTA], early=b"PROXY UNKNOWN\r\n")
    assert c.converse() >= 0.3
    c.expect("pass", delay="0.300", waited=SECONDS)
    assert ucspi(environ(c)) == {}


# ---------------------------------------------------------- the options

@pytest.mark.parametrize("args,message", [
    (["--proxy-timeout", "2s"], "--proxy-timeout needs --proxy-from"),
    (["--proxy-from", "10.0.0.1/8"], "host bits set"),
    (["--proxy-from", "10.0.0.1", "--proxy-timeout", "50ms"],
     "100ms to 60s"),
], ids=["timeout-alone", "host-bits", "timeout-short"])
def test_usage_errors(plain, args, message):
    rc, out, err = plain(["-n", *args, *MTA])
    assert rc == 100 and message in err, (rc, out, err)


def test_check_shows_the_balancers(plain):
    rc, out, err = plain(["-n", "--proxy-from", "10.0.0.0/8",
                          "--proxy-from", "2001:db8::/32",
                          "--proxy-timeout", "2.5", *MTA])
    assert rc == 0, err
    assert "proxy-from: 10.0.0.0/8\nproxy-from: 2001:db8::/32\n" \
        "proxy-timeout: 2.500 s\n" in out, out


# ---------------------------------------------------------- decoy modes

def test_a_decoy_behind_a_balancer(sw):
    """A decoy MX judges and logs the client too; the balancer's health
    check is one of our own hosts: sent away at once."""
    c = sw(["--tempfail", "-d", "0.2", *BALANCER],
           early=v1(CLIENT4, PORT4, LOCAL4, 25))
    c.client.recv_until(b"220 ")
    c.client.send(b"QUIT\r\n")
    c.client.read_all()
    c.finish()
    c.expect("decoy", ip=CLIENT4, port=str(PORT4), helo='""',
             commands="1", quit="yes", end="quit")
    check = sw(["--tempfail", "-d", "0.2", *BALANCER], early=V2_LOCAL)
    assert check.client.read_all().startswith(b"421 4.7.0 ")
    check.finish()
    check.expect("allow", reason="proxy-local", mode="tempfail",
                 reply="421")


# ---------------------------------------------------------- the listener

@pytest.fixture
def balanced(tmp_path):
    """A listener whose 127.0.0.1 is a balancer (args after its own)."""
    from test_listener import Listener
    started = []

    def start(args):
        lst = Listener(tmp_path / ("l%d" % len(started)),
                       BALANCER + list(args) + MTA)
        started.append(lst)
        return lst

    yield start
    for lst in started:
        lst.stop()


def test_the_listener_judges_and_names_the_client(balanced):
    lst = balanced(["-d", "0.3"])
    c = lst.connect()
    c.send(v2(CLIENT4, PORT4, LOCAL4, 25))
    t0 = time.monotonic()
    c.recv_until(b"220 standin\r\n")
    assert time.monotonic() - t0 >= 0.25     # the wait after the header
    c.send(b"QUIT\r\n")
    c.recv_until(b"221 bye\r\n")
    f = lst.wait_for("pass")[0]
    assert (f["ip"], f["port"]) == (CLIENT4, str(PORT4))
    assert ucspi(dict(e.split("=", 1) for e in lst.record()["environ"])) == \
        ucspi_for(CLIENT4, PORT4, LOCAL4)
    assert lst.errors() == []


def test_the_listener_catches_early_talk_after_the_header(balanced):
    lst = balanced(["-d", "5"])
    c = lst.connect()
    c.send(v1(CLIENT4, PORT4, LOCAL4, 25) + b"EHLO bot\r\n")
    assert c.read_all(timeout=SOON) == REPLY_REJECT
    f = lst.wait_for("early")[0]
    assert f["ip"] == CLIENT4 and f["first"] == '"EHLO bot\\r\\n"'
    assert not lst.ran()


def test_the_listener_counts_a_balancers_clients_by_their_own_address(
        balanced):
    lst = balanced(["-d", "10", "--per-ip", "1"])
    first = lst.connect()
    first.send(v2(CLIENT4, PORT4, LOCAL4, 25))
    first.quiet_for(0.3)
    again = lst.connect()
    again.send(v2(CLIENT4, PORT4 + 1, LOCAL4, 25))
    assert again.read_all(timeout=SOON).startswith(b"421 4.7.0 ")
    busy = lst.wait_for("busy")[0]
    assert busy["ip"] == CLIENT4 and busy["limit"] == "per-ip"
    other = lst.connect()            # another client, the same balancer
    other.send(v2("192.0.2.8", PORT4, LOCAL4, 25))
    other.quiet_for(0.3)
    for c in (first, other):
        c.close()


def test_the_listener_refuses_a_balancer_without_a_header(balanced):
    lst = balanced(["-d", "0.2", "--proxy-timeout", "300ms"])
    late = lst.connect()
    assert late.read_all(timeout=SOON) == REPLY_UNAVAILABLE
    bad = lst.connect()
    bad.send(b"PROXY TCP4 nonsense\r\n")
    assert bad.read_all(timeout=SOON) == REPLY_UNAVAILABLE
    deadline = time.monotonic() + SOON
    while len(lst.errors()) < 2:
        assert time.monotonic() < deadline, lst.text()
        time.sleep(0.02)
    errors = sorted(lst.errors())
    assert "no valid PROXY header: none within 0.300s" in errors[1] or \
        "no valid PROXY header: none within 0.300s" in errors[0], errors
    assert any("v1:" in e for e in errors), errors
    assert not lst.ran()


def test_the_listener_greets_a_health_check_at_once(balanced, tmp_path):
    lst = balanced(["-d", "10", "-c", str(tmp_path / "cache.mdb")])
    c = lst.connect()
    c.send(v2_header(0x20, 0x00, b""))      # LOCAL
    t0 = time.monotonic()
    c.recv_until(b"220 standin\r\n")
    assert time.monotonic() - t0 < SOON
    f = lst.wait_for("allow")[0]
    assert f["ip"] == "127.0.0.1" and f["reason"] == "proxy-local"
    c.close()
    assert not (tmp_path / "cache.mdb").exists()
