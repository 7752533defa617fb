"""sendwrap in front of a real sendmail -bs (Debian's sendmail 8.17).

sendmail is not installed as a package (it would replace exim as the
system MTA): tests/deps unpacks its .debs into build/sendmail, and
e2elib.Sendmail runs `sendmail -bs -C CF -odq` with a configuration built
with m4 from its own cf/m4: mail for sendwrap.test is queued, relaying for
anybody else is refused.  sendmail and the server in front of it run in a
private UTS and mount namespace (host name mx.sendwrap.test, a hosts file
of the test's), where sendmail's syslog goes to a listener of the test:
its "connect from" line, logged at the start of every session, tells
whether sendmail ran at all.

sendmail has an early-talker check of its own (554 5.5.0 SMTP protocol
error, after its greeting).  The bot tests tell it apart from sendwrap's
(554 5.5.1, instead of any greeting) and show both.
"""

import os
import re
import socket
import struct
import time

import pytest

from e2elib import (REJECT_554, SENDMAIL, SENDWRAP, SLACK, Greeting, Inetd,
                    Sendmail, TcpServer, adapt, all_procs, assert_delayed,
                    assert_prompt, bot, bot_payload, check_message, connect,
                    deliver_patiently, greeted_at_once, make_message,
                    read_example, refuse_bot, swaks, wait_until,
                    write_swaks_data)
from test_faults import no_leftovers

SENDMAIL_554 = b"554 5.5.0 SMTP protocol error\r\n"
ALLOWED_IP = "127.0.0.3"


@pytest.fixture
def sm(wd):
    return Sendmail(wd)


def swaks_one(wd, port, tag, n, source=None):
    raw, headers, body = make_message(tag, n)
    data = write_swaks_data(os.path.join(wd, "%s-%d.eml" % (tag, n)), raw)
    rc, out, greet, _ = swaks("127.0.0.1", port, headers["To"],
                              data_file=data, source=source)
    assert rc == 0, out
    return out, greet, headers, body


def queued(sm, headers):
    got = [m for m in sm.messages()
           if m.header("X-E2E-Tag") == headers["X-E2E-Tag"]]
    assert len(got) == 1, sm.queue_listing()
    return got[0]


def test_patient_clients_deliver_after_the_wait(wd, sm, sw):
    """swaks and a sending exim wait out -d 2 and deliver; each message is
    in sendmail's queue once, intact; one sendmail session per client."""
    srv = TcpServer(wd, sw("-d", "2", mta=sm.argv()), ns=sm.ns)
    msgs = deliver_patiently(wd, "127.0.0.1", srv.port, sm, "sm", 2.0)
    received = msgs["sm-exim-2"].header("Received")
    # sendmail's Received on top, then the sending exim's own
    assert len(received) == 2, received
    assert received[0].startswith("from sender.sendwrap.test "
                                  "(mx.sendwrap.test [127.0.0.1]) by "
                                  "mx.sendwrap.test (8.17"), received
    assert "by sender.sendwrap.test" in received[1], received
    assert sm.connections() == 2, sm.log()
    lines = srv.wait_lines(r"^pass ", count=2)
    assert len(lines) == 2 and all(re.match(
        r"^pass ip=127\.0\.0\.1 port=\d+ delay=2\.000 waited=\d+\.\d+$", l)
        for l in lines), srv.log()


def test_blind_bot_is_refused_by_sendwrap_and_sendmail_never_runs(wd, sm,
                                                                  sw):
    srv = TcpServer(wd, sw("-d", "2", mta=sm.argv()), ns=sm.ns)
    took = refuse_bot("127.0.0.1", srv.port, tag="sm-bot")
    assert took < 2.0 + SLACK
    early = srv.wait_lines(r"^early ")
    assert len(early) == 1 and re.match(
        r'^early ip=127\.0\.0\.1 port=\d+ after=\d+\.\d+ bytes=\d+ '
        r'first="EHLO bot\.invalid\\r\\n.*" action=reject$', early[0]), \
        srv.log()
    assert list(srv.wait_ends(1).values()) == [0], srv.log()
    no_leftovers(srv)
    assert sm.connections() == 0, sm.log()
    assert sm.messages() == []

    # The same bot handed to sendmail (-x pass): sendmail runs (its
    # "connect from" is seen, so the count above means something), greets,
    # and its own check answers 554 5.5.0 -- a different reply, after a
    # greeting, from a different program.
    srv2 = TcpServer(wd, sw("-d", "2", "-x", "pass", mta=sm.argv()),
                     ns=sm.ns)
    got, _, _ = bot("127.0.0.1", srv2.port, bot_payload("sm-bot-passed"))
    lines = got.split(b"\r\n")
    assert sm.greeting.match(lines[0]), got
    assert lines[1] + b"\r\n" == SENDMAIL_554, got
    assert REJECT_554 not in got
    assert wait_until(lambda: sm.connections() == 1, 10), sm.log()
    assert [t for t in sm.log() if re.search(
        r"rejecting server EHLO from .* due to traffic before response", t)]
    assert sm.messages() == []


def test_allowlisted_client_is_greeted_at_once(wd, sm, sw):
    srv = TcpServer(wd, sw("-d", "10", "-A", ALLOWED_IP + "/32",
                           mta=sm.argv()), ns=sm.ns)
    out, greet, headers, body = swaks_one(wd, srv.port, "sm-allow", 1,
                                          source=ALLOWED_IP)
    assert_prompt(greet)
    assert re.search(r"<-  220 mx\.sendwrap\.test ESMTP Sendmail", out), out
    check_message(queued(sm, headers), headers, body)
    lines = srv.wait_lines(r"^allow ")
    assert len(lines) == 1 and re.match(
        r"^allow ip=127\.0\.0\.3 port=\d+ reason=allowlist "
        r"rule=127\.0\.0\.3/32$", lines[0]), srv.log()
    assert sm.connections() == 1


def test_cached_client_is_greeted_at_once(wd, sm, sw):
    """With -c, a client that waited once is greeted at once next time."""
    cache = os.path.join(wd, "cache.mdb")
    srv = TcpServer(wd, sw("-d", "2", "-c", cache, mta=sm.argv()), ns=sm.ns)
    _, greet1, h1, b1 = swaks_one(wd, srv.port, "sm-cache", 1)
    assert_delayed(greet1, 2.0)
    assert srv.wait_lines(r"^pass ip=127\.0\.0\.1 "), srv.log()
    out, greet2, h2, b2 = swaks_one(wd, srv.port, "sm-cache", 2)
    assert_prompt(greet2, 1.5)
    assert re.search(r"<-  220 mx\.sendwrap\.test ESMTP Sendmail", out), out
    cached = srv.wait_lines(r"^cached ")
    assert len(cached) == 1 and re.match(
        r"^cached ip=127\.0\.0\.1 port=\d+ age=\d+\.\d+$", cached[0]), \
        srv.log()
    check_message(queued(sm, h1), h1, b1)
    check_message(queued(sm, h2), h2, b2)
    assert sm.connections() == 2


def test_hangup_during_the_wait_leaves_no_sendmail(wd, sm, sw):
    srv = TcpServer(wd, sw("-d", "10", mta=sm.argv()), ns=sm.ns)
    seen = set()            # every program name seen in the server's group

    def watch():
        seen.update(p[1] for p in all_procs() if p[4] == srv.pid)
        return len(srv.waiting_sendwraps()) == 2

    polite = connect("127.0.0.1", srv.port)         # closes: FIN
    rude = connect("127.0.0.1", srv.port)           # SO_LINGER 0: reset
    assert wait_until(watch, 5), srv.children()
    polite.close()
    rude.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                    struct.pack("ii", 1, 0))
    rude.close()
    t0 = time.monotonic()
    ends = srv.wait_ends(2, timeout=8)
    assert sorted(ends.values()) == [0, 0], srv.log()
    assert time.monotonic() - t0 < 8
    hows = sorted(re.search(r" how=(\w+)$", l).group(1)
                  for l in srv.wait_lines(r"^hangup ", count=2))
    assert hows == ["eof", "reset"], srv.log()
    no_leftovers(srv)
    assert sm.program not in seen, seen
    assert sm.connections() == 0, sm.log()
    assert sm.messages() == []


def normalized(text, sm, msg):
    """Replies and headers without what differs between two runs: the
    queue id, dates and times."""
    text = text.replace(msg.id, "QUEUE-ID")
    return re.sub(r"\w{3}, +\d+ \w{3} \d{4} \d\d:\d\d:\d\d( [-+]?\w+)?",
                  "DATE", text)


def test_same_replies_and_queue_with_and_without_sendwrap(wd, sw):
    """A patient client sees the same replies from sendmail, and the same
    message is queued, with sendwrap in front and with sendmail alone."""
    alone = Sendmail(wd, "alone")
    behind = Sendmail(wd, "behind")
    plain = TcpServer(wd, alone.argv(), ns=alone.ns)
    wrapped = TcpServer(wd, sw("-d", "2", mta=behind.argv()), ns=behind.ns)

    runs = {}
    for name, srv, sm in (("alone", plain, alone),
                          ("behind", wrapped, behind)):
        out, greet, headers, body = swaks_one(wd, srv.port, "same", 1)
        msg = queued(sm, headers)
        check_message(msg, headers, body)
        replies = [normalized(l, sm, msg) for l in out.splitlines()
                   if l.startswith("<-")]
        runs[name] = (greet, replies, msg)
    assert_prompt(runs["alone"][0])
    assert_delayed(runs["behind"][0], 2.0)
    assert runs["alone"][1] == runs["behind"][1], runs
    assert "<-  250-ETRN" in runs["alone"][1]       # see the inetd test

    a, b = runs["alone"][2], runs["behind"][2]
    assert (a.sender, a.recipients, a.body) == (b.sender, b.recipients,
                                                b.body)
    assert [(n, normalized(v, alone, a)) for n, v in a.headers] == \
        [(n, normalized(v, behind, b)) for n, v in b.headers]
    for macro in ("_", "r", "s"):       # client host, protocol, HELO name
        assert a.macros[macro] == b.macros[macro], (a.macros, b.macros)
    assert a.macros["_"] == "mx.sendwrap.test [127.0.0.1]"

    # and the test's sendmail is no open relay: it relays for the local
    # host itself (127.0.0.1, sendmail's rule), nobody else
    g = Greeting("127.0.0.1", plain.port, source=ALLOWED_IP)
    deadline = time.monotonic() + 10
    for cmd in (b"HELO client.sendwrap.test", b"MAIL FROM:<a@client.test>",
                b"RCPT TO:<someone@elsewhere.invalid>"):
        g.sock.sendall(cmd + b"\r\n")
        reply = g.reader.read_reply(deadline)
    assert reply[-1].startswith(b"550 5.7.1 "), reply
    g.quit()


def test_inetd_example_line_in_front_of_sendmail(wd, sm):
    """examples/inetd.conf's sendmail line, adjusted in port and paths
    only (the sendmail binary and its -C configuration, sendwrap, the
    allowlist, the queue directory): sendwrap logs to syslog; the options
    on the line reach sendmail (no ETRN, queued in the line's directory)."""
    line = [l for l in read_example("inetd.conf").splitlines()
            if l.startswith("smtp ") and "sendmail" in l]
    assert len(line) == 1, line
    allowlist = os.path.join(wd, "allowlist")
    with open(allowlist, "w") as f:
        f.write("%s/32\n" % ALLOWED_IP)
    queue_in = os.path.join(sm.dir, "mqueue.in")
    os.mkdir(queue_in, 0o700)
    line = adapt(line[0], {
        "smtp ": "{listen} ",
        "/usr/local/sbin/sendwrap": SENDWRAP,
        "/etc/sendwrap/allowlist": allowlist,
        "/usr/sbin/sendmail -bs": "%s -bs -C %s" % (SENDMAIL, sm.cf),
        "/var/spool/mqueue.in": queue_in,
    })
    assert " -d 5 " in line
    inetd = Inetd(wd, line=line, ns=sm.ns)

    out, greet, headers, body = swaks_one(wd, inetd.port, "sm-inetd", 1)
    assert_delayed(greet, 5.0)
    assert not re.search(r"sendwrap[:\[]| ip=127", out), out
    assert "ETRN" not in out, out                   # PrivacyOptions=noetrn
    assert sm.messages() == [], sm.queue_listing()  # not in the cf's queue
    msgs = sm.messages(queue_in)
    assert len(msgs) == 1, os.listdir(queue_in)
    check_message(msgs[0], headers, body)

    refuse_bot("127.0.0.1", inetd.port, tag="sm-inetd-bot")

    greeted_at_once("127.0.0.1", inetd.port, sm, source=ALLOWED_IP)

    recs = inetd.syslog.wait_lines(r"^(pass|early|allow) ", count=3)
    assert sorted(r[4].split()[0] for r in recs) == \
        ["allow", "early", "pass"], inetd.syslog.records
    assert sm.connections() == 2, sm.log()
