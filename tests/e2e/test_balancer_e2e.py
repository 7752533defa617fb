"""HAProxy (send-proxy, send-proxy-v2) in front of sendwrap --proxy-from,
in both front ends: the listener relaying to Postfix's PROXY smtpd
(--forward, --forward-proxy v2), and tcpserver running sendwrap per
connection in front of exim -bs.  Every client comes through the one
balancer (127.0.0.1) from an address of its own (127.0.0.X), and each is
judged, logged and passed on by that address: an allowlisted one (-A)
greeted at once, a cached one (-c) waiting once and `cached` the second
time, --per-ip counting each client's own connections, waiting or
relayed (the listener), an early talker caught after the header, all in
one balancer's connections, while its health checks come every 0.3 s
(send-proxy-v2: a LOCAL header, greeted at once; send-proxy: a header
naming HAProxy itself, allowlisted).  A peer at the balancer's address
that sends no valid header gets 421.

What "passed on" means in each: the listener's PROXY header to Postfix,
which records the client in its log and the Received header; under
tcpserver the UCSPI variables sendwrap hands the program, read here by
exim's ACL (keep_environment, ${env{TCPREMOTEIP}}) into a header, since
exim -bs itself takes the balancer's address from the socket.
"""

import os
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from daemons import HAProxy, deliver_timed, from_address
from e2elib import (SENDWRAP, UNAVAILABLE_421, EximReceiver, Greeting,
                    LineReader, Listener, TcpServer, connect, refuse_bot,
                    wait_until)

DELAY = 2.5                 # sendwrap -d, seconds
AT_ONCE = 1.5               # a greeting "at once" comes within this
BALANCER = "127.0.0.1"      # HAProxy's own address, --proxy-from
PER_IP = (b"421 4.7.0 Too many connections from your address, try again "
          b"later\r\n")

# The clients of each run, 127.0.0.(base + k): allowlisted, cached (twice),
# per-ip (twice at once), another address at the same time, early talker.
ALLOWED, CACHED, CROWD, OTHER, EARLY = 1, 2, 3, 4, 5
BASES = {("listener", "v1"): 100, ("listener", "v2"): 110,
         ("tcpserver", "v1"): 120, ("tcpserver", "v2"): 130}


def clients(front, version):
    base = BASES[(front, version)]
    return {k: "127.0.0.%d" % (base + k)
            for k in (ALLOWED, CACHED, CROWD, OTHER, EARLY)}


def cache_file(wd):
    """A pass cache in a directory of root's, 0755 (make_workdir's)."""
    return os.path.join(wd, "cache.mdb")


def judged_options(wd, ip):
    return ["-d", str(DELAY), "--proxy-from", BALANCER + "/32",
            "-A", ip[ALLOWED] + "/32", "-c", cache_file(wd)]


def greeted_within(greet, low, high, what):
    assert greet is not None and low <= greet <= high, \
        "%s greeted after %r s" % (what, greet)


def allowlisted_then_cached(wd, mta, port, tag, ip, relayed):
    """The allowlisted client is greeted at once; the cached one waits the
    first time and is greeted at once the second (once its first session
    is over: relayed(ip) waits for that).  Each delivers to mta.
    Returns the three messages."""
    msg_a, greet = deliver_timed(wd, mta, port, tag + "-allowed",
                                 ip[ALLOWED])
    greeted_within(greet, 0, AT_ONCE, "the allowlisted client")
    msg_b1, greet = deliver_timed(wd, mta, port, tag + "-cached", ip[CACHED])
    greeted_within(greet, 0.9 * DELAY, DELAY + 8, "a new client")
    relayed(ip[CACHED])
    msg_b2, greet = deliver_timed(wd, mta, port, tag + "-cached",
                                  ip[CACHED], n=2)
    greeted_within(greet, 0, AT_ONCE, "the cached client")
    return msg_a, msg_b1, msg_b2


def check_verdicts(srv, ip):
    """The verdict lines of the allowlisted, cached and early clients,
    each under the client's own address."""
    esc = {k: re.escape(v) for k, v in ip.items()}
    assert srv.wait_lines(r"^allow ip=%s port=\d+ reason=allowlist "
                          r"rule=%s/32$" % (esc[ALLOWED], esc[ALLOWED])), \
        srv.log()
    assert len(srv.wait_lines(r"^pass ip=%s port=\d+ delay=%s " % (
        esc[CACHED], re.escape("%.3f" % DELAY)))) == 1, srv.log()
    assert len(srv.wait_lines(r"^cached ip=%s port=\d+ age=" %
                              esc[CACHED])) == 1, srv.log()
    early = srv.wait_lines(r"^early ")
    assert len(early) == 1 and re.match(
        r'^early ip=%s port=\d+ after=\S+ bytes=\d+ first="EHLO bot\.invalid'
        r'\\r\\n' % esc[EARLY], early[0]), srv.log()
    # nothing but its own checks judged by the balancer's address
    assert not srv.wait_lines(r"^(?!allow |forwarded ).* ip=%s " %
                              re.escape(BALANCER), timeout=0)


# The balancer's health checks, every CHECK_INTER s: with send-proxy-v2 a
# LOCAL header, greeted at once (proxy-local); with send-proxy a header
# naming HAProxy itself (2.6), greeted at once once the balancer is
# allowlisted (-A), as doc/load-balancer.md says.
CHECK_INTER = 0.3
CHECKS = {"v1": (["-A", BALANCER + "/32"],
                 r"reason=allowlist rule=127\.0\.0\.1/32$"),
          "v2": ([], r"reason=proxy-local$")}


# ------------------------------------------------------------ the listener

def turned_away(port, source):
    """A connection from source gets --per-ip's 421 at once."""
    t0 = time.monotonic()
    s = connect("127.0.0.1", port, source=source)
    got = LineReader(s).read_to_eof(t0 + 10)
    took = time.monotonic() - t0
    s.close()
    assert got == PER_IP, got
    assert took < AT_ONCE, took


def per_ip_counts_each_client(port, ip):
    """--per-ip 1 behind the balancer: a second connection of one client
    while its first waits, and again while it is relayed, gets 421 4.7.0
    at once; another client's, at the same time, waits and is greeted.
    Returns the greetings."""
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(Greeting, "127.0.0.1", port, source=ip[CROWD])
        time.sleep(1.0)     # its header is in, its wait under way
        turned_away(port, ip[CROWD])
        other = pool.submit(Greeting, "127.0.0.1", port, source=ip[OTHER])
        greetings = [first.result(), other.result()]
    for g in greetings:
        greeted_within(g.t_final, 0.9 * DELAY, DELAY + 8,
                       "a client under --per-ip")
    turned_away(port, ip[CROWD])
    for g in greetings:
        g.quit()
    return greetings


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_listener_judges_each_client_behind_haproxy(wd, postfix, version):
    """HAProxy (with health checks) -> sendwrap --listen --proxy-from
    --forward (v2 header) -> Postfix's PROXY smtpd: allowlisted, cached,
    --per-ip and early talker by each client's own address, side by side
    in one balancer's connections; Postfix records each client that
    passed by its address, and each check, greeted at once and relayed,
    as the balancer's."""
    ip = clients("listener", version)
    extra, verdict = CHECKS[version]
    lst = Listener(wd, judged_options(wd, ip) + extra + [
        "--per-ip", "1", "--forward", "127.0.0.1:%d" % postfix.proxy_port,
        "--forward-proxy", "v2"])
    before = len(postfix.client_addresses())
    ha = HAProxy(wd, lst.port, send_proxy=version, check=True,
                 check_inter=CHECK_INTER)
    check = r"^allow ip=127\.0\.0\.1 port=\d+ " + verdict
    assert lst.wait_lines(check), lst.log()

    def relayed(client):
        assert lst.wait_lines(r"^forwarded ip=%s " % re.escape(client))

    with ThreadPoolExecutor(3) as pool:
        mail = pool.submit(allowlisted_then_cached, wd, postfix, ha.port,
                           "lb-" + version, ip, relayed)
        crowd = pool.submit(per_ip_counts_each_client, ha.port, ip)
        bot = pool.submit(refuse_bot, "127.0.0.1", ha.port,
                          source=ip[EARLY], tag="lb-bot-" + version)
        msgs = mail.result()
        crowd.result()
        bot.result()

    assert [from_address(m) for m in msgs] == [ip[ALLOWED], ip[CACHED],
                                               ip[CACHED]]
    check_verdicts(lst, ip)
    busy = lst.wait_lines(r"^busy ", count=2)
    assert len(busy) == 2 and all(re.match(
        r"^busy ip=%s port=\d+ limit=per-ip$" % re.escape(ip[CROWD]), l)
        for l in busy), lst.log()
    for k in (CROWD, OTHER):
        assert len(lst.wait_lines(r"^pass ip=%s " % re.escape(ip[k]))) == 1
    # HAProxy carried all eight connections, and kept the server up
    assert wait_until(lambda: len(ha.client_addresses()) == 8, 10), ha.log()
    assert sorted(set(ha.client_addresses())) == sorted(ip.values())
    ha.stop()
    assert "is DOWN" not in ha.log(), ha.log()
    # Postfix heard of every client that passed, by its address, and of
    # no other (not the early talker, not the one turned away); and of
    # each health check, relayed with a header naming the balancer (a
    # LOCAL header straight from HAProxy would make Postfix 3.7's smtpd
    # exit: daemons.HAProxy), from which it takes no harm
    want = sorted([ip[ALLOWED], ip[CACHED], ip[CACHED], ip[CROWD],
                   ip[OTHER]])
    assert wait_until(lambda: sorted(
        a for a in postfix.client_addresses()[before:] if a != BALANCER) ==
        want, 10), postfix.client_addresses()[before:]

    def relayed():
        """(checks let through, ends), once every session is over."""
        checks = len(lst.wait_lines(check, timeout=0))
        ends = [re.match(r"forwarded ip=(\S+) ", l).group(1)
                for l in lst.wait_lines(r"^forwarded ", timeout=0)]
        return (checks, ends) if len(ends) == len(want) + checks else None
    checks, ends = wait_until(relayed, 10) or (0, [])
    assert checks >= 2, lst.log()
    assert sorted(e for e in ends if e != BALANCER) == want, lst.log()
    assert 1 <= postfix.client_addresses()[before:].count(BALANCER) <= \
        checks, postfix.log()
    assert " fatal: " not in postfix.log()


# ------------------------------------------------------------ tcpserver

# exim -bs with the client sendwrap names in the UCSPI variables written
# into each message.
UCSPI_HEADER = "X-UCSPI-Client"
UCSPI_ACL = """
acl_predata:
  accept add_header = %s: ${env{TCPREMOTEIP}{$value}{unset}} \\
    ${env{TCPREMOTEPORT}{$value}{unset}}
""" % UCSPI_HEADER


def ucspi_exim(wd):
    return EximReceiver(wd, keep_environment="TCPREMOTEIP : TCPREMOTEPORT",
                        main="acl_smtp_predata = acl_predata\n",
                        acls=UCSPI_ACL)


def per_connection(wd, mx, ip, *opts):
    """tcpserver -> sendwrap (judged_options, opts) -> exim -bs."""
    return TcpServer(wd, [SENDWRAP] + judged_options(wd, ip) + list(opts) +
                     ["--"] + mx.argv())


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_tcpserver_judges_each_client_behind_haproxy(wd, version):
    """HAProxy (with health checks) -> tcpserver -> sendwrap --proxy-from
    -> exim -bs: the allowlisted, cached and early clients judged and
    logged by their own addresses, and each message carries the client's
    address from the UCSPI variables (exim's own record names the
    balancer); the checks are greeted at once and HAProxy keeps the
    server up; exim never runs for the early talker."""
    ip = clients("tcpserver", version)
    mx = ucspi_exim(wd)
    extra, verdict = CHECKS[version]
    srv = per_connection(wd, mx, ip, *extra)
    ha = HAProxy(wd, srv.port, send_proxy=version, check=True,
                 check_inter=CHECK_INTER)
    check = r"^allow ip=127\.0\.0\.1 port=\d+ " + verdict
    assert srv.wait_lines(check), srv.log()

    with ThreadPoolExecutor(2) as pool:
        mail = pool.submit(allowlisted_then_cached, wd, mx, ha.port,
                           "lb-tcp-" + version, ip, lambda c: None)
        bot = pool.submit(refuse_bot, "127.0.0.1", ha.port,
                          source=ip[EARLY], tag="lb-tcp-bot-" + version)
        msgs = mail.result()
        bot.result()
    assert wait_until(lambda: len(ha.client_addresses()) == 4, 10), ha.log()
    check_verdicts(srv, ip)
    ha.stop()
    assert "is DOWN" not in ha.log(), ha.log()

    for m, k in zip(msgs, (ALLOWED, CACHED, CACHED)):
        client, port = m.header(UCSPI_HEADER).split()
        assert client == ip[k] and port.isdigit(), m.header(UCSPI_HEADER)
        assert m.host_address == BALANCER, m.host_address
    assert len(srv.wait_lines(check, timeout=0)) >= 2, srv.log()
    # every sendwrap has ended; exim took the three sessions that passed
    # (for a check it runs on a connection HAProxy has closed already,
    # and leaves before its first log line)
    assert len(srv.wait_ends(len(srv.pids()))) == len(srv.pids()), srv.log()
    assert mx.connections() == 3, mx.mainlog()


# ------------------------------------------------------------ no header

JUNK = [(b"EHLO client.sendwrap.test\r\n", r"not a PROXY header"),
        (b"PROXY TCP4 127.0.0.9 127.0.0.300 1025 25\r\n",
         r"v1: bad destination address")]


@pytest.mark.parametrize("front", ["listener", "tcpserver"])
def test_junk_from_the_balancers_address_gets_421(wd, postfix, front):
    """A peer at the --proxy-from address that sends something else
    first (an SMTP command, a broken v1 line): 421 4.3.0, an error line
    saying why, and no MTA hears of it."""
    ip = clients(front, "v1")
    if front == "listener":
        srv = Listener(wd, judged_options(wd, ip) + [
            "--forward", "127.0.0.1:%d" % postfix.proxy_port,
            "--forward-proxy", "v2"])
        mx = None
    else:
        mx = ucspi_exim(wd)
        srv = per_connection(wd, mx, ip)
    before = len(postfix.client_addresses())
    for sent, why in JUNK:
        t0 = time.monotonic()
        s = connect("127.0.0.1", srv.port, source=BALANCER)
        s.sendall(sent)
        got = LineReader(s).read_to_eof(t0 + 10)
        s.close()
        assert got == UNAVAILABLE_421, got
        assert time.monotonic() - t0 < AT_ONCE
    lines = srv.wait_lines(r"^error ", count=2)
    assert len(lines) == 2, srv.log()
    for line, (_, why) in zip(lines, JUNK):
        assert re.match(r"^error ip=127\.0\.0\.1 port=\d+ no valid PROXY "
                        r"header: %s$" % why, line), lines
    assert [l for l in srv.sendwrap_lines() if not l.startswith(
        ("error ", "listening "))] == [], srv.log()
    if mx:
        assert mx.connections() == 0
    else:
        time.sleep(0.5)
        assert postfix.client_addresses()[before:] == []
