"""Scenario 5: openbsd-inetd -> sendwrap -> exim -bs.

Under inetd, fds 0, 1 and 2 are all the client socket, so with the
default -l auto sendwrap must log to syslog and never write to fd 2.
The test's inetd runs in a private mount namespace whose /dev/log is a
listener of the test (see e2elib.Inetd): the log lines are checked there,
and the client stream is checked to carry SMTP replies only.
"""

import os
import re
import time

from e2elib import (REJECT_554, SENDWRAP, UNAVAILABLE_421, Greeting, Inetd,
                    assert_delayed, assert_prompt, bot, bot_payload,
                    check_message, make_message, smtp_deliver,
                    smtp_lines_only, swaks_message)

LOG_MAIL = 2            # syslog facility "mail"
LOG_INFO = 6


def inetd_argv(opts, mx):
    return [SENDWRAP, "sendwrap"] + list(opts) + ["--"] + mx.argv()


def test_inetd_delivery_bot_and_no_log_on_the_socket(wd, mx):
    inetd = Inetd(wd, inetd_argv(["-d", "2"], mx))

    # a plain SMTP session, byte by byte: the greeting is the first thing
    # on the wire and nothing but SMTP replies follow
    g = Greeting("127.0.0.1", inetd.port)
    assert_delayed(g.t_final, 2.0)
    assert len(g.lines) == 1 and \
        g.final().startswith(b"220 mx.sendwrap.test ESMTP Exim"), g.lines
    g.sock.sendall(b"EHLO client.sendwrap.test\r\n")
    ehlo = g.reader.read_reply(time.monotonic() + 10)
    assert ehlo and ehlo[-1].startswith(b"250 "), ehlo
    reply, rest = g.quit()
    assert reply[0].startswith(b"221 "), reply
    assert smtp_lines_only(g.reader.raw), g.reader.raw
    assert b"sendwrap" not in g.reader.raw.replace(b"sendwrap.test", b"")

    # swaks delivers
    out, greet, _, headers, body = swaks_message(wd, "127.0.0.1", inetd.port,
                                                 "inetd-swaks", 1)
    assert_delayed(greet, 2.0)
    assert not re.search(r"sendwrap[:\[]| ip=127", out), out

    # the bot gets exactly the 554 line: no log text before or after it
    got, _, reset = bot("127.0.0.1", inetd.port, bot_payload("inetd"))
    assert got == REJECT_554, got
    assert not reset

    msgs = mx.messages()
    assert len(msgs) == 1, mx.queue_listing()
    check_message(msgs[0], headers, body)
    assert mx.connections() == 2          # the QUIT session and swaks

    recs = inetd.syslog.wait_lines(r"^(pass|early) ", count=3)
    assert len(recs) == 3, inetd.syslog.records
    for fac, sev, tag, pid, text in recs:
        assert (fac, sev) == (LOG_MAIL, LOG_INFO), recs
        assert pid > 0               # LOG_PID
    texts = [r[4] for r in recs]
    assert sum(bool(re.match(r"^pass ip=127\.0\.0\.1 port=\d+ delay=2\.000 "
                             r"waited=\d+\.\d+$", t)) for t in texts) == 2, \
        texts
    early = [t for t in texts if t.startswith("early ")]
    assert len(early) == 1 and re.match(
        r'^early ip=127\.0\.0\.1 port=\d+ after=\d+\.\d+ bytes=\d+ '
        r'first="EHLO bot\.invalid\\r\\n.*" action=reject$', early[0]), early


def test_inetd_ipv6_getpeername_allowlisted(wd, mx):
    path = os.path.join(wd, "allow6")
    with open(path, "w") as f:
        f.write("::1/128   # loopback\n")
    inetd = Inetd(wd, inetd_argv(["-d", "4", "-a", path], mx), v6=True)
    raw, headers, body = make_message("inetd-v6", 2)
    greet = smtp_deliver("::1", inetd.port, raw, "v6@client.sendwrap.test",
                         headers["To"])
    assert_prompt(greet)
    check_message(mx.messages()[0], headers, body)
    recs = inetd.syslog.wait_lines(r"^allow ")
    assert recs and re.match(r"^allow ip=::1 port=\d+ reason=allowlist "
                             r"rule=::1/128$", recs[0][4]), recs


def test_inetd_exec_failure_is_421_and_logged(wd, mx):
    """A broken inetd line (MTA path wrong) says 421, never a log line."""
    missing = os.path.join(wd, "no-such-mta")
    inetd = Inetd(wd, [SENDWRAP, "sendwrap", "-d", "0.5", "--", missing,
                       "-bs"])
    g = Greeting("127.0.0.1", inetd.port)
    g.reader.read_to_eof(time.monotonic() + 10)
    assert g.reader.raw == UNAVAILABLE_421, g.reader.raw
    recs = inetd.syslog.wait_lines(r"^error ")
    assert recs and missing in recs[0][4], inetd.syslog.records
