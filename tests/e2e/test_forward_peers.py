"""sendwrap's listener with --forward and --proxy-from between real peers
(tests/e2e/daemons.py): Postfix's smtpd, Exim's daemon (heavy build) and
OpenSMTPD behind it read the PROXY header that --forward-proxy sends and
record the client's own address; HAProxy in front of it (send-proxy,
send-proxy-v2) names the client to --proxy-from, and the client's
address goes on to the MTA.  Each client comes from an address of its
own (127.0.0.X).  One instance of each MTA serves the module.
"""

import re
import time

import pytest

import proclib
from daemons import HAProxy, deliver, from_address, new_addresses
from e2elib import (UNAVAILABLE_421, LineReader, Listener, connect,
                    refuse_bot, wait_until)

DELAY = 0.5                 # sendwrap -d, seconds

FORWARDED = [("postfix", "v1", 61), ("postfix", "v2", 62), ("exim", "v1", 63),
             ("exim", "v2", 64), ("opensmtpd", "v2", 65)]


def proxy_target(request, which):
    """(the MTA, its port that reads a PROXY header)."""
    mta = request.getfixturevalue("exim_proxy" if which == "exim"
                                  else which)
    return mta, mta.port if which == "exim" else mta.proxy_port


def forwarder(wd, port, *opts):
    return Listener(wd, ["-d", str(DELAY), "--forward",
                         "127.0.0.1:%d" % port] + list(opts))


def behind_balancer(wd, port, *opts):
    """The listener behind HAProxy (--proxy-from 127.0.0.1/32), forwarding
    to port with a v2 header."""
    return forwarder(wd, port, "--forward-proxy", "v2", "--proxy-from",
                     "127.0.0.1/32", *opts)


def forwarded_line(lst, client):
    lines = lst.wait_lines(r"^forwarded ip=%s " % re.escape(client))
    assert len(lines) == 1, lst.log()
    # after QUIT either side may close first; no reset, no time-out
    assert re.search(r" in=[1-9]\d* out=[1-9]\d* length=\S+ "
                     r"end=(mta|client)-closed$", lines[0]), lines
    return lines[0]


@pytest.mark.parametrize("which,version,host", FORWARDED,
                         ids=["%s-%s" % p[:2] for p in FORWARDED])
def test_the_mta_records_the_client_that_forward_proxy_names(
        request, wd, which, version, host):
    """--forward-proxy v1/v2 to the MTA's PROXY port: the message arrives
    intact, and the MTA's log and Received header name the client, not
    the listener."""
    mta, port = proxy_target(request, which)
    client = "127.0.0.%d" % host
    lst = forwarder(wd, port, "--forward-proxy", version)
    before = len(mta.client_addresses())
    msg = deliver(wd, mta, lst.port, "fwd-%s-%s" % (which, version), client)
    assert from_address(msg) == client
    assert new_addresses(mta, before, 1) == [client]
    assert lst.wait_lines(r"^pass ip=%s " % re.escape(client))
    forwarded_line(lst, client)


def test_without_forward_proxy_the_mta_sees_the_listener(wd, postfix):
    """Without --forward-proxy (Postfix's plain smtpd) the MTA records
    the listener's address for every client: why the header matters."""
    lst = forwarder(wd, postfix.port)
    before = len(postfix.client_addresses())
    msg = deliver(wd, postfix, lst.port, "fwd-plain", "127.0.0.66")
    assert from_address(msg) == "127.0.0.1"
    assert new_addresses(postfix, before, 1) == ["127.0.0.1"]
    forwarded_line(lst, "127.0.0.66")


NOBODY = 65534


def unix_forwarder(wd, postfix, gid):
    """A listener that gives up root for nobody and group gid, and
    forwards with a v2 header to Postfix's PROXY smtpd on the unix socket
    of its queue's public/ (doc/forward.md's setup)."""
    lst = Listener(wd, ["-d", str(DELAY), "-u", str(NOBODY), "-g", str(gid),
                        "--forward", "unix:" + postfix.socket,
                        "--forward-proxy", "v2"])
    ids = proclib.ids(proclib.status(lst.sendwrap_pid))
    assert ids["Uid"] == [NOBODY] * 4 and ids["Gid"] == [gid] * 4, ids
    return lst


def test_forward_over_a_unix_socket_as_its_own_user(wd, postfix):
    """--forward unix:PATH to Postfix's smtpd on a socket in public/: the
    listener, as nobody with the postdrop group (public/ lets that group
    through, no other), relays the message intact, and Postfix records
    the client's own address from the v2 header."""
    client = "127.0.0.67"
    lst = unix_forwarder(wd, postfix, postfix.postdrop_gid)
    before = len(postfix.client_addresses())
    msg = deliver(wd, postfix, lst.port, "fwd-unix", client)
    assert from_address(msg) == client
    assert new_addresses(postfix, before, 1) == [client]
    forwarded_line(lst, client)


def test_forward_over_a_unix_socket_without_the_group(wd, postfix):
    """The same listener without the postdrop group cannot reach the
    socket: the client is told 421 4.3.0 after its wait, an error line
    says why, and Postfix hears of no one."""
    client = "127.0.0.68"
    lst = unix_forwarder(wd, postfix, NOBODY)
    before = len(postfix.client_addresses())
    s = connect("127.0.0.1", lst.port, source=client)
    got = LineReader(s).read_to_eof(time.monotonic() + DELAY + 10)
    s.close()
    assert got == UNAVAILABLE_421, got
    err = lst.wait_lines(r"^error ip=%s " % re.escape(client))
    assert len(err) == 1 and err[0].endswith("Permission denied"), err
    assert len(postfix.client_addresses()) == before


def test_a_bot_is_refused_and_the_mta_never_hears_of_it(wd, postfix):
    lst = forwarder(wd, postfix.proxy_port, "--forward-proxy", "v2")
    before = len(postfix.client_addresses())
    refuse_bot("127.0.0.1", lst.port, source="127.0.0.67", tag="fwd-bot")
    assert lst.wait_lines(r"^early ip=127\.0\.0\.67 .* action=reject$")
    assert not wait_until(lambda: postfix.client_addresses()[before:], 2)
    assert not [l for l in lst.sendwrap_lines()
                if l.startswith("forwarded ")], lst.log()


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_behind_haproxy_the_client_reaches_the_mta(wd, postfix, version):
    """HAProxy (send-proxy, send-proxy-v2) -> sendwrap --proxy-from
    --forward --forward-proxy v2 -> Postfix's PROXY smtpd: sendwrap judges
    the client HAProxy names, and Postfix records that client too."""
    client = "127.0.0.7%s" % version[1]
    lst = behind_balancer(wd, postfix.proxy_port)
    ha = HAProxy(wd, lst.port, send_proxy=version)
    before = len(postfix.client_addresses())
    msg = deliver(wd, postfix, ha.port, "ha-fwd-" + version, client)
    assert from_address(msg) == client
    assert new_addresses(postfix, before, 1) == [client]
    assert re.match(r"^pass ip=%s port=\d+ delay=0\.500 " % re.escape(
        client), lst.wait_lines(r"^pass ")[0]), lst.log()
    forwarded_line(lst, client)
    assert wait_until(lambda: ha.client_addresses() == [client], 10), \
        ha.log()


def checked_then_delivered(wd, mta, lst, version, verdict, client):
    """HAProxy (send-proxy VERSION, health checks every 0.2 s) in front of
    lst: its checks are let through at once (an allow line whose end is
    verdict), and then client, waiting as any client, delivers to mta
    under its own address."""
    ha = HAProxy(wd, lst.port, send_proxy=version, check=True,
                 check_inter=0.2)
    checks = lst.wait_lines(r"^allow ip=127\.0\.0\.1 port=\d+ " + verdict,
                            count=2)
    assert len(checks) >= 2, lst.log()
    msg = deliver(wd, mta, ha.port, "ha-checked-" + version, client)
    assert msg.host_address == client
    assert lst.wait_lines(r"^pass ip=%s port=\d+ delay=0\.500 " %
                          re.escape(client)), lst.log()
    forwarded_line(lst, client)
    ha.stop()


def test_haproxy_health_checks_through_the_listener(wd, exim_proxy):
    """send-proxy-v2 with health checks (a LOCAL header, then a reset):
    sendwrap lets each through at once (allow, reason=proxy-local), and a
    client still reaches Exim under its own address."""
    checked_then_delivered(wd, exim_proxy, behind_balancer(
        wd, exim_proxy.port), "v2", r"reason=proxy-local$", "127.0.0.79")


def test_haproxy_v1_health_checks_name_the_balancer(wd, exim_proxy):
    """send-proxy (v1) with health checks: HAProxy 2.6 names itself in a
    TCP4 header (not UNKNOWN), so each check is judged as a client with
    the balancer's address; allowlisted (-A, as doc/load-balancer.md
    says), it is let through at once, and a client HAProxy brings still
    waits and is judged by its own address."""
    checked_then_delivered(wd, exim_proxy, behind_balancer(
        wd, exim_proxy.port, "-A", "127.0.0.1/32"), "v1",
        r"reason=allowlist ", "127.0.0.78")
