"""Finding the peer: the UCSPI variables first (PROTO, ${PROTO}REMOTEIP,
${PROTO}REMOTEPORT), then getpeername() on IPv4, IPv6 and IPv4-mapped
sockets, else "unknown"."""
import pytest

from sw_harness import (ANY, GREETING, MTA, REPLY_REJECT, SECONDS, SOON,
                        needs_ipv6)


# ------------------------------------------------------------------ UCSPI

@pytest.mark.parametrize("env,allow,ip,port,rule", [
    # tcpserver
    ({"PROTO": "TCP", "TCPREMOTEIP": "192.0.2.7", "TCPREMOTEPORT": "4242"},
     ["-A", "127.0.0.1", "-A", "192.0.2.0/24"],
     "192.0.2.7", "4242", "192.0.2.0/24"),
    # ucspi-tcp6: TCP6REMOTEIP, not TCPREMOTEIP
    ({"PROTO": "TCP6", "TCP6REMOTEIP": "2001:db8::7",
      "TCP6REMOTEPORT": "2525", "TCPREMOTEIP": "192.0.2.7"},
     ["-A", "127.0.0.1", "-A", "192.0.2.7", "-A", "2001:db8::/32"],
     "2001:db8::7", "2525", "2001:db8::/32"),
    # s6-tcpserver: PROTO=TCP with an IPv6 address
    ({"PROTO": "TCP", "TCPREMOTEIP": "2001:db8::8", "TCPREMOTEPORT": "25"},
     ["-A", "127.0.0.1", "-A", "2001:db8::/32"],
     "2001:db8::8", "25", "2001:db8::/32"),
    # ucspi-tcp6 reporting an IPv4 client: an IPv4 peer
    ({"PROTO": "TCP6", "TCP6REMOTEIP": "::ffff:192.0.2.9",
      "TCP6REMOTEPORT": "1"},
     ["-A", "::/0", "-A", "127.0.0.1", "-A", "192.0.2.0/24"],
     "192.0.2.9", "1", "192.0.2.0/24"),
], ids=["TCP", "TCP6", "TCP-ipv6", "TCP6-mapped"])
def test_ucspi_address_used_over_getpeername(sw, env, allow, ip, port, rule):
    c = sw(["-d", "20", *allow, *MTA], env=env)
    assert c.converse() < SOON
    c.expect("allow", ip=ip, port=port, reason="allowlist", rule=rule)


def test_ucspi_address_in_pass_line(sw):
    env = {"PROTO": "TCP", "TCPREMOTEIP": "198.51.100.7",
           "TCPREMOTEPORT": "40123"}
    c = sw(["-d", "0.3", "-A", "127.0.0.1", *MTA], env=env)
    c.converse()
    c.expect("pass", ip="198.51.100.7", port="40123", delay="0.300",
             waited=SECONDS)


@pytest.mark.parametrize("env", [
    {"PROTO": "TCP"},
    {"PROTO": "TCP6", "TCPREMOTEIP": "192.0.2.7"},
    {"TCPREMOTEIP": "192.0.2.7", "TCPREMOTEPORT": "4242"},
    {"PROTO": "TCP", "TCPREMOTEIP": "not-an-address"},
], ids=["no-REMOTEIP", "other-proto", "no-PROTO", "garbage"])
def test_getpeername_when_ucspi_gives_no_address(sw, env):
    c = sw(["-d", "20", "-A", "192.0.2.0/24", "-A", "127.0.0.1", *MTA],
           env=env)
    assert c.converse() < SOON
    c.expect("allow", reason="allowlist", rule="127.0.0.1")


# ------------------------------------------------------------ getpeername

def test_getpeername_ipv4(sw):
    c = sw(["-d", "0.3", "-A", "::/0", "-A", "10.0.0.0/8", *MTA])
    c.converse()
    c.expect("pass", delay="0.300", waited=SECONDS)


def test_getpeername_ipv4_allowlisted(sw):
    c = sw(["-d", "20", "-A", "::/0", "-A", "127.0.0.1/32", *MTA])
    assert c.converse() < SOON
    c.expect("allow", reason="allowlist", rule="127.0.0.1/32")


@needs_ipv6
def test_getpeername_ipv6(sw):
    c = sw(["-d", "20", "-A", "127.0.0.1", "-A", "0.0.0.0/0",
            "-A", "::1/128", *MTA], peer="ipv6")
    assert c.converse() < SOON
    c.expect("allow", reason="allowlist", rule="::1/128")


@needs_ipv6
def test_ipv6_peer_not_matched_by_ipv4_entries(sw):
    c = sw(["-d", "0.3", "-A", "0.0.0.0/0", *MTA], peer="ipv6")
    c.converse()
    c.expect("pass", delay="0.300", waited=SECONDS)


@needs_ipv6
def test_mapped_peer_is_an_ipv4_peer(sw):
    # A dual-stack listener sees an IPv4 client as ::ffff:127.0.0.1.
    c = sw(["-d", "20", "-A", "::/0", "-A", "127.0.0.1", *MTA],
           peer="mapped")
    assert c.converse() < SOON
    c.expect("allow", reason="allowlist", rule="127.0.0.1")


@needs_ipv6
def test_mapped_peer_not_matched_by_ipv6_entries(sw):
    c = sw(["-d", "0.3", "-A", "::/0", *MTA], peer="mapped")
    c.converse()
    c.expect("pass", delay="0.300", waited=SECONDS)


# ---------------------------------------------------------------- unknown

@pytest.mark.parametrize("peer", ["pipe", "socketpair"])
def test_unknown_peer_gets_the_delay(sw, peer):
    c = sw(["-d", "0.3", "-A", "0.0.0.0/0", "-A", "::/0", *MTA], peer=peer)
    assert c.converse() >= 0.29
    assert c.rc == 0
    c.expect("pass", ip="unknown", port=ANY, delay="0.300", waited=SECONDS)
    assert c.client.data.startswith(GREETING)


def test_unknown_peer_early_talker(sw):
    c = sw(["-d", "20", *MTA], peer="socketpair", early=b"EHLO x\r\n")
    assert c.client.read_all() == REPLY_REJECT
    assert c.finish() == 0
    assert not c.ran()
    c.expect("early", ip="unknown", port=ANY, after=SECONDS, bytes="8",
             first='"EHLO x\\r\\n"', action="reject")
