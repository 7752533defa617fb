"""sendwrap --spf-walk against a real DNS server (Debian's dnsmasq on a
loopback port, tests/dnsserver.py) serving the zone spf.test below: ip4
and ip6 with and without lengths, include, redirect, a and mx (A and
AAAA, dual lengths), a loop, the depth and lookup bounds, duplicates,
skipped mechanisms, a domain with no record, two records, a malformed
record, SERVFAIL, a server that never answers, exit codes; and that the
lines are an allowlist that -n and --compile take.

One dnsmasq serves the whole module."""
import socket
import time

import pytest

from dnsserver import DNS
from sw_harness import SLACK


def txt(name, *strings):
    """A TXT record of one or more strings (no quotes: dnsmasq takes its
    command line as written, and none of these holds a comma)."""
    return "--txt-record=%s,%s" % (name, ",".join(strings))


def host(name, v4=None, v6=None):
    return "--host-record=%s" % ",".join(x for x in (name, v4, v6) if x)


def deep(n):
    """deep0 includes deep1 ... includes deep11: the last is 11 deep."""
    return [txt("deep%d.spf.test" % i, "v=spf1 ip4:192.0.2.%d include:"
                "deep%d.spf.test -all" % (100 + i, i + 1))
            for i in range(11)] + [txt("deep11.spf.test",
                                       "v=spf1 ip4:192.0.2.111 -all")]


ZONE = [
    txt("plain.spf.test", "v=spf1 ip4:192.0.2.1 ip4:198.51.100.77/24 "
        "ip6:2001:db8::1 ip6:2001:db8:abcd:12::/56 -all"),
    txt("upper.spf.test", "V=SPF1 IP4:192.0.2.90 Ip6:2001:DB8::90/64 -ALL"),
    txt("split.spf.test", "v=spf1 ip4:192.0.2.80", " ip4:192.0.2.81 -all"),
    # include, redirect
    txt("inc.spf.test", "v=spf1 include:_i1.spf.test include:_i2.spf.test"
        " ~all"),
    txt("_i1.spf.test", "v=spf1 ip4:203.0.113.0/26 -all"),
    txt("_i2.spf.test", "v=spf1 ip4:203.0.113.64/26 ip4:203.0.113.0/26 "
        "-all"),
    txt("red.spf.test", "v=spf1 redirect=_r.spf.test"),
    txt("_r.spf.test", "v=spf1 ip4:192.0.2.77 -all"),
    txt("allred.spf.test", "v=spf1 ip4:192.0.2.5 -all redirect=_r.spf.test"),
    # a and mx
    txt("a.spf.test", "v=spf1 a a:host.spf.test/24//64 -all"),
    host("a.spf.test", "192.0.2.10", "2001:db8:a::10"),
    host("host.spf.test", "198.51.100.20", "2001:db8:b::20"),
    txt("mx.spf.test", "v=spf1 mx mx:mx2.spf.test//48 a:nohost.spf.test "
        "-all"),
    "--mx-host=mx.spf.test,mail1.spf.test,10",
    "--mx-host=mx.spf.test,mail2.spf.test,20",
    "--mx-host=mx2.spf.test,mail3.spf.test,10",
    host("mail1.spf.test", "192.0.2.30", "2001:db8:c::30"),
    host("mail2.spf.test", "192.0.2.31"),
    host("mail3.spf.test", "192.0.2.32", "2001:db8:d::32"),
    # a loop, duplicates, what is skipped
    txt("loopa.spf.test", "v=spf1 ip4:192.0.2.40 include:loopb.spf.test "
        "-all"),
    txt("loopb.spf.test", "v=spf1 ip4:192.0.2.41 include:loopa.spf.test "
        "-all"),
    txt("dup.spf.test", "v=spf1 ip4:192.0.2.50 ip4:192.0.2.50/32 a "
        "include:_i1.spf.test ip4:203.0.113.0/26 ip4:203.0.113.0/24 -all"),
    host("dup.spf.test", "192.0.2.50"),
    txt("skip.spf.test", "v=spf1 ptr exists:%{i}.x.spf.test "
        "a:%{d}.spf.test -ip4:192.0.2.70 ~include:_i1.spf.test "
        "ip4:192.0.2.71 ?all"),
    txt("wide.spf.test", "v=spf1 ip4:0.0.0.0/0 ip4:10.0.0.0/7 "
        "ip4:10.0.0.0/8 ip6:2001::/15 a:host.spf.test/4 +all"),
    txt("empty.spf.test", "v=spf1 -all"),
    # errors
    txt("none.spf.test", "google-site-verification=abc"),
    txt("two.spf.test", "v=spf1 ip4:192.0.2.60 -all"),
    txt("two.spf.test", "v=spf1 ip4:192.0.2.61 -all"),
    txt("bad.spf.test", "v=spf1 ip4:192.0.2.1 ip4:192.0.2.300 -all"),
    txt("badinc.spf.test", "v=spf1 ip4:192.0.2.2 include:bad.spf.test"),
    txt("refused.spf.test", "v=spf1 include:spf.other.example -all"),
    txt("slow.spf.test", "v=spf1 include:spf.fail.test -all"),
    txt("nxinc.spf.test", "v=spf1 include:nx.spf.test -all"),
    txt("many.spf.test", "v=spf1" + " a" * 50 + " -all"),
    txt("long.spf.test", *(["v=spf1" + " ip4:192.0.2.1" * 17] +
                           [" ip4:192.0.2.1" * 17] * 17)),
] + deep(11)


@pytest.fixture(scope="module")
def dns(tmp_path_factory):
    d = DNS(tmp_path_factory.mktemp("dns"), ZONE)
    yield d
    d.stop()


@pytest.fixture
def walk(plain, dns):
    """walk(domain, ...): (rc, stdout lines, stderr lines)."""
    def run(*domains, server=None):
        rc, out, err = plain(["--dns-server", server or dns.server,
                              "--spf-walk", *domains], timeout=60 + SLACK)
        return rc, out.splitlines(), err.splitlines()
    return run


def lines(domain, *cidrs):
    return ["%s # %s" % (c, domain) for c in cidrs]


# ------------------------------------------------------------ networks

def test_ip4_and_ip6_with_and_without_lengths(walk):
    rc, out, err = walk("plain.spf.test")
    assert (rc, err) == (0, [])
    # Host bits are cleared (198.51.100.77/24), IPv4 first, in order.
    assert out == lines("plain.spf.test", "192.0.2.1/32", "198.51.100.0/24",
                        "2001:db8::1/128", "2001:db8:abcd::/56")


def test_any_case_and_a_record_of_several_strings(walk):
    rc, out, err = walk("upper.spf.test", "split.spf.test")
    assert (rc, err) == (0, [])
    assert out == lines("upper.spf.test", "192.0.2.90/32",
                        "2001:db8::/64") + \
        lines("split.spf.test", "192.0.2.80/32", "192.0.2.81/32")


def test_include_and_redirect(walk):
    rc, out, err = walk("inc.spf.test", "red.spf.test", "allred.spf.test")
    assert (rc, err) == (0, [])
    # The network both includes name comes once; the comment names the
    # domain asked for, not the one whose record held the network.
    assert out == lines("inc.spf.test", "203.0.113.0/26",
                        "203.0.113.64/26") + \
        lines("red.spf.test", "192.0.2.77/32") + \
        lines("allred.spf.test", "192.0.2.5/32")    # redirect= ignored


def test_a_and_mx_with_their_lengths(walk):
    rc, out, err = walk("a.spf.test", "mx.spf.test")
    assert (rc, err) == (0, [])
    assert out == lines("a.spf.test", "192.0.2.10/32", "198.51.100.0/24",
                        "2001:db8:a::10/128", "2001:db8:b::/64") + \
        lines("mx.spf.test", "192.0.2.30/32", "192.0.2.31/32",
              "192.0.2.32/32", "2001:db8:c::30/128", "2001:db8:d::/48")


def test_a_loop_is_walked_once(walk):
    rc, out, err = walk("loopa.spf.test")
    assert (rc, err) == (0, [])
    assert out == lines("loopa.spf.test", "192.0.2.40/32", "192.0.2.41/32")


def test_exact_duplicates_go_covered_networks_stay(walk):
    rc, out, err = walk("dup.spf.test", "dup.spf.test")
    assert rc == 0
    assert out == lines("dup.spf.test", "192.0.2.50/32", "203.0.113.0/24",
                        "203.0.113.0/26")
    assert err == ["sendwrap: spf-walk: dup.spf.test: note: named before: "
                   "walked once"]


def test_what_cannot_be_a_network_is_skipped_with_a_note(walk):
    rc, out, err = walk("skip.spf.test", "wide.spf.test", "empty.spf.test")
    assert rc == 0
    assert out == lines("skip.spf.test", "192.0.2.71/32") + \
        lines("wide.spf.test", "10.0.0.0/8", "2001:db8:b::20/128")
    note = "sendwrap: spf-walk: %s: note: "
    assert err == [note % "skip.spf.test" + x for x in (
        "skip.spf.test: -ip4:192.0.2.70 skipped: not a pass",
        "skip.spf.test: a:%{d}.spf.test skipped: a macro",
        "skip.spf.test: exists:%{i}.x.spf.test skipped: not a network",
        "skip.spf.test: ptr skipped: not a network",
        "skip.spf.test: ~include:_i1.spf.test skipped: not a pass")] + [
        note % "wide.spf.test" + x for x in (
            "wide.spf.test: +all skipped: it passes every address",
            "wide.spf.test: a:host.spf.test/4 skipped for IPv4: wider "
            "than /8",
            "wide.spf.test: ip4:0.0.0.0/0 skipped: wider than /8",
            "wide.spf.test: ip4:10.0.0.0/7 skipped: wider than /8",
            "wide.spf.test: ip6:2001::/15 skipped: wider than /16")] + [
        note % "empty.spf.test" + "no networks"]


# ------------------------------------------------------------ bounds

def test_depth_is_bounded(walk):
    rc, out, err = walk("deep1.spf.test")
    assert (rc, err) == (0, [])
    assert out == lines("deep1.spf.test", *["192.0.2.%d/32" % i
                                            for i in range(101, 112)])
    rc, out, err = walk("deep0.spf.test")
    assert (rc, out) == (111, [])
    assert err == ["sendwrap: spf-walk: deep0.spf.test: deep10.spf.test: "
                   "includes and redirects nested deeper than 10"]


def test_lookups_are_bounded(walk):
    rc, out, err = walk("many.spf.test")
    assert (rc, out) == (111, [])
    assert err == ["sendwrap: spf-walk: many.spf.test: more than 100 DNS "
                   "lookups"]


# ------------------------------------------------------------ errors

@pytest.mark.every_case_under_valgrind     # each fails on a path of its own
@pytest.mark.parametrize("domain,why", [
    ("none.spf.test", "none.spf.test: no SPF record"),
    ("nx.spf.test", "nx.spf.test: TXT: no such domain (NXDOMAIN)"),
    ("two.spf.test", "two.spf.test: two SPF records"),
    ("bad.spf.test", 'bad.spf.test: bad SPF record at "ip4:192.0.2.300": '
     "bad ip4 network"),
    ("badinc.spf.test", 'bad.spf.test: bad SPF record at '
     '"ip4:192.0.2.300": bad ip4 network'),
    ("nxinc.spf.test", "nx.spf.test: TXT: no such domain (NXDOMAIN)"),
    # dnsmasq serves test. only: REFUSED
    ("refused.spf.test", "spf.other.example: TXT: the DNS server failed, "
     "refused or cannot be reached"),
    # dnsmasq waits for a server that is not there: a timeout (6 s)
    ("slow.spf.test", "spf.fail.test: TXT: no answer from the DNS server "
     "(timed out)"),
    ("long.spf.test", "long.spf.test: an SPF record longer than 4096 "
     "bytes"),
])
def test_an_error_is_named_and_the_other_domains_are_walked(walk, domain,
                                                            why):
    rc, out, err = walk("plain.spf.test", domain, "red.spf.test")
    assert rc == 111
    # The domain in error gives no line at all: half a walk would drop
    # networks without a word.
    assert out == lines("plain.spf.test", "192.0.2.1/32", "198.51.100.0/24",
                        "2001:db8::1/128", "2001:db8:abcd::/56") + \
        lines("red.spf.test", "192.0.2.77/32")
    assert err == ["sendwrap: spf-walk: %s: %s" % (domain, why)]


def test_a_server_that_does_not_answer(walk):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        t0 = time.monotonic()
        rc, out, err = walk("plain.spf.test", "inc.spf.test",
                            server="127.0.0.1:%d" % s.getsockname()[1])
        took = time.monotonic() - t0
    assert (rc, out) == (111, [])
    assert err == ["sendwrap: spf-walk: %s: %s: TXT: no answer from the "
                   "DNS server (timed out)" % (d, d)
                   for d in ("plain.spf.test", "inc.spf.test")]
    # Two tries, 2 s and 4 s, for both at once; well within the walk's
    # 30 s.
    assert 5 < took < 20 + SLACK


@pytest.mark.parametrize("args,why", [
    (["--spf-walk"], "--spf-walk needs DOMAIN..."),
    (["--spf-walk", "a.test", "--dns-server", "127.0.0.1"],
     "--spf-walk: the options go before the domains ('--dns-server')"),
    (["--spf-walk", "a.test", "192.0.2.1"],
     "--spf-walk: '192.0.2.1' is not a domain name"),
    (["--spf-walk", "a..test"], "--spf-walk: 'a..test' is not a domain "
     "name"),
    (["--dns-server", "127.0.0.1", "/bin/true"],
     "--dns-server needs --dnsbl, --dnswl or --spf-walk"),
])
def test_usage_errors(plain, args, why):
    rc, out, err = plain(args)
    assert (rc, out) == (100, "")
    assert why in err


# ------------------------------------------------------------ the lines

def test_the_lines_are_an_allowlist(walk, plain, tmp_path):
    rc, out, err = walk("plain.spf.test", "a.spf.test", "mx.spf.test")
    assert rc == 0 and len(out) == 13
    text = tmp_path / "spf.txt"
    text.write_text("\n".join(out) + "\n")
    rc, got, err = plain(["-n", "-a", str(text), "/bin/true"])
    assert rc == 0 and "allowlist: %s: 13 entries" % text in got, got + err
    rc, got, err = plain(["--compile", str(text), str(tmp_path / "a.cdb")])
    assert (rc, err) == (0, "") and got.endswith(": 13 entries\n")
