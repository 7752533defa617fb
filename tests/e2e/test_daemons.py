"""The MTA daemons and HAProxy of tests/e2e/daemons.py, each on its own
(no sendwrap): the base that the tests of --forward and --proxy-from
build on.

Each MTA takes a message from a client at its own loopback address
(127.0.0.X) and keeps it intact with that address; HAProxy in front
(send-proxy, send-proxy-v2) passes the client's address on, and the MTA
records it, not HAProxy's.  One instance of each MTA serves the module.
"""

import re
import time

import pytest

from daemons import (EximDaemon, HAProxy, deliver, from_address,
                     new_addresses, smtp_source)
from e2elib import (Greeting, LineReader, bot, bot_payload, connect,
                    wait_until)

GREET_WAIT = 1          # Exim's connect ACL delay, as postscreen's wait


@pytest.fixture(scope="module")
def exim(mdir):
    ex = EximDaemon(mdir, name="exim-plain").keep()
    yield ex
    ex.stop()


# ---------------------------------------------------------------- direct

@pytest.mark.parametrize("which,host", [("postfix", 21), ("exim", 31),
                                        ("opensmtpd", 41)])
def test_the_mta_takes_a_message_with_the_client_address(
        request, wd, which, host):
    """Straight to the MTA's plain port: the message arrives intact, and
    the MTA's log and Received header (and Exim's spool) name the
    client's own 127.0.0.X."""
    mta = request.getfixturevalue(which)
    client = "127.0.0.%d" % host
    before = len(mta.client_addresses())
    msg = deliver(wd, mta, mta.port, which + "-direct", client)
    assert from_address(msg) == client
    if which == "exim":
        assert msg.host_address == client
    assert new_addresses(mta, before, 1) == [client]


def test_postfix_smtp_source_load(postfix):
    """smtp-source (Postfix's load generator) against the smtpd: every
    message delivered."""
    before = len(postfix.messages())
    rc, out = smtp_source("127.0.0.1", postfix.port, 6, sessions=3,
                          to="load@sendwrap.test")
    assert rc == 0, out
    assert wait_until(lambda: len(postfix.messages()) == before + 6, 15), \
        postfix.log()


def test_postscreen_makes_clients_wait_and_turns_away_a_pregreeter(
        wd, postfix):
    """postscreen (greet wait 1 s, loopback not exempted): a patient
    client gets the 220- line at once and the final 220 (smtpd's) after
    the wait, then delivers; a blind pipeliner is caught (PREGREET), its
    recipient refused, nothing delivered."""
    g = Greeting("127.0.0.1", postfix.postscreen_port, source="127.0.0.22")
    assert g.lines[0][1].startswith(b"220-"), g.lines
    assert g.t_first < 1.0, g.lines
    wait = postfix.greet_wait
    assert 0.9 * wait <= g.t_final <= wait + 8, g.lines
    assert postfix.greeting.match(g.final()), g.lines
    g.quit()
    msg = deliver(wd, postfix, postfix.postscreen_port, "pf-screened",
                  "127.0.0.22")
    assert from_address(msg) == "127.0.0.22"

    # postscreen answers each command, then closes with the rest of the
    # bot's message unread: the reset may take its last replies away.
    got, took, _ = bot("127.0.0.1", postfix.postscreen_port,
                       bot_payload("pf-bot"), source="127.0.0.23")
    assert got.startswith(b"220-"), got
    assert b"\r\n354 " not in got, got
    assert wait_until(lambda: {"PREGREET", "NOQUEUE: reject: RCPT"} <= {
        e for e, a in postfix.postscreen_events() if a == "127.0.0.23"},
        10), postfix.log()
    assert re.search(r"NOQUEUE: reject: RCPT from \[127\.0\.0\.23\]:\d+: "
                     r"550 5\.5\.1 Protocol error", postfix.log())
    assert ("PASS NEW", "127.0.0.22") in postfix.postscreen_events()
    assert not [m for m in postfix.messages()
                if m.header("Subject") == "BOT pf-bot"]


def test_exim_connect_delay_holds_clients_and_drops_a_pipeliner(mdir, wd):
    """Exim's own greeting delay (connect ACL delay, smtp_enforce_sync):
    a patient client is greeted after it and delivers; a client that
    talks first gets 554 and is dropped, nothing taken."""
    ex = EximDaemon(mdir, delay=GREET_WAIT, name="exim-delay")
    g = Greeting("127.0.0.1", ex.port, source="127.0.0.32")
    assert 0.9 * GREET_WAIT <= g.t_final <= GREET_WAIT + 8, g.lines
    assert ex.greeting.match(g.final()), g.lines
    g.quit()
    got, _, _ = bot("127.0.0.1", ex.port, bot_payload("ex-bot"),
                    source="127.0.0.33")
    assert got.startswith(b"554 SMTP synchronization error"), got
    assert b"220 " not in got
    deliver(wd, ex, ex.port, "ex-delayed", "127.0.0.32")
    assert [m.header("Subject") for m in ex.messages()] == [
        "e2e ex-delayed #1"]
    assert re.search(r"SMTP protocol synchronization error \(input sent "
                     r"without waiting for greeting\).*\[127\.0\.0\.33\]",
                     ex.mainlog()), ex.mainlog()
    ex.stop()


# ---------------------------------------------------------------- HAProxy

PROXIED = [("postfix", "v1", 51), ("postfix", "v2", 52), ("exim", "v1", 53),
           ("exim", "v2", 54), ("opensmtpd", "v2", 55)]


@pytest.mark.parametrize("which,version,host", PROXIED,
                         ids=["%s-%s" % p[:2] for p in PROXIED])
def test_haproxy_passes_the_client_address_on(
        request, wd, which, version, host):
    """HAProxy (send-proxy or send-proxy-v2) in front of the MTA's PROXY
    listener: the MTA records the client's own 127.0.0.X, in its log and
    the message's Received header, never HAProxy's 127.0.0.1."""
    mta = request.getfixturevalue("exim_proxy" if which == "exim"
                                  else which)
    port = mta.port if which == "exim" else mta.proxy_port
    client = "127.0.0.%d" % host
    ha = HAProxy(wd, port, send_proxy=version)
    before = len(mta.client_addresses())
    msg = deliver(wd, mta, ha.port, "ha-%s-%s" % (which, version), client)
    assert from_address(msg) == client
    if which == "exim":
        assert msg.host_address == client
    assert new_addresses(mta, before, 1) == [client]
    assert wait_until(lambda: ha.client_addresses() == [client], 10), \
        ha.log()


def test_haproxy_health_checks_reach_the_mta_and_mail_still_passes(
        wd, exim_proxy):
    """check with send-proxy-v2: HAProxy's health checks (a v2 header with
    the LOCAL command: the MTA sees HAProxy's own address) reach Exim,
    and a client's message still arrives with the client's address."""
    before = len(exim_proxy.client_addresses())
    ha = HAProxy(wd, exim_proxy.port, send_proxy="v2", check=True,
                 check_inter=0.2)
    assert wait_until(lambda: len(exim_proxy.client_addresses()) >=
                      before + 2, 10), exim_proxy.mainlog()
    msg = deliver(wd, exim_proxy, ha.port, "ha-check", "127.0.0.56")
    assert msg.host_address == "127.0.0.56"
    seen = exim_proxy.client_addresses()[before:]
    assert set(seen) == {"127.0.0.1", "127.0.0.56"}, seen
    assert seen.count("127.0.0.56") == 1, seen
    ha.stop()



def test_proxy_listeners_given_no_header(exim_proxy, postfix, opensmtpd):
    """A client that talks SMTP straight to a PROXY listener, no header
    first (what a forwarder without the PROXY protocol does): Postfix
    answers 421 at once, OpenSMTPD closes at once, and Exim serves it as
    a direct connection from the proxy's own address."""
    def first_reply(port):
        s = connect("127.0.0.1", port)
        s.sendall(b"EHLO client.sendwrap.test\r\n")
        r = LineReader(s)
        try:
            return r.readline(time.monotonic() + 10)
        finally:
            s.close()

    assert first_reply(postfix.proxy_port).startswith(b"421 4.3.0 "), \
        postfix.log()
    assert wait_until(lambda: "haproxy read: unrecognized protocol header: "
                      "EHLO client.sendwrap.test" in postfix.log(), 10)
    assert first_reply(opensmtpd.proxy_port) == b""
    assert wait_until(lambda: 'reason="protocol error (invalid signature)"'
                      in opensmtpd.log(), 10), opensmtpd.log()
    assert exim_proxy.greeting.match(first_reply(exim_proxy.port))
