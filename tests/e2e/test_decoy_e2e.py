"""Decoy MX modes (issue 6) with real parts: tcpserver and inetd in front
of sendwrap --tempfail / --tarpit, and real clients: a sending exim,
swaks, a blind bot.

- A real MTA whose only route is the tempfail decoy keeps its message
  queued for retry (the 451 is honoured, nothing bounces), and says QUIT
  (quit=yes in the decoy's log: the mark of a real MTA).
- With the decoy as the first host and the real MX second (the fake low
  MX of seed 003), exim moves on and delivers in the same queue run; so
  it does when the decoy answers an allowlisted (own) host with 421.
- swaks and exim give up on the tarpit's endless greeting after their
  own greeting timeout, although a 220- line arrives every second; a
  bot's whole transaction is read and thrown away unanswered.
- Under inetd the decoy logs to syslog; the client sees SMTP only.

Exim drops the local host (127.0.0.1) and every host after it from a
host list, as it does for MX records, so these tests put the decoy on
127.0.0.2 and the real MX on 127.0.0.3.
"""

import re
import time

from e2elib import (SENDWRAP, SLACK, EximSender, Greeting, Inetd, TcpServer,
                    bot, bot_payload, make_message, smtp_lines_only, swaks)

DECOY_IP, REAL_IP = "127.0.0.2", "127.0.0.3"
LATER = b"451 4.7.1 Service temporarily unavailable, try again later"


def decoy(*opts):
    """sendwrap in a decoy mode: no program, no '--'."""
    return [SENDWRAP] + list(opts)


def route(*hosts):
    """An exim host list of (ip, port), tried in this order."""
    return ":".join("%s::%d" % h for h in hosts)


def submit(sender, tag):
    raw, headers, _ = make_message(tag, 1)
    sender.submit("relay@sender.sendwrap.test", headers["To"], raw)
    return headers


def one_line(srv, pattern):
    lines = srv.wait_lines(pattern)
    assert len(lines) == 1, srv.log()
    return lines[0]


def test_exim_keeps_its_message_queued_at_the_tempfail_decoy(wd):
    srv = TcpServer(wd, decoy("--tempfail", "-d", "1"))
    sender = EximSender(wd, "127.0.0.1", srv.port)
    headers = submit(sender, "decoy-only")
    took = sender.run_queue()
    assert took >= 0.9, "no greeting delay? %.2f s" % took

    # deferred, not bounced: the same single message is still queued
    assert sender.queue_count() == 1, sender.mainlog()
    log = sender.mainlog()
    assert re.search(r"== %s R=to_listener T=to_listener defer \(-44\) "
                     r"H=127\.0\.0\.1 .*after RCPT TO:<%s>: %s"
                     % (re.escape(headers["To"]), re.escape(headers["To"]),
                        LATER.decode()), log), log
    assert "**" not in log and "<= <>" not in log, log
    listing = sender.exim("-bp").stdout.decode()
    assert "<relay@sender.sendwrap.test>" in listing and "<>" not in listing

    line = one_line(srv, r"^decoy ")
    assert re.fullmatch(r'decoy ip=127\.0\.0\.1 port=\d+ '
                        r'helo="sender\.sendwrap\.test" commands=4 quit=yes '
                        r'end=quit', line), line

    # a second run: deferred again, still no bounce
    sender.run_queue()
    assert sender.queue_count() == 1
    assert len(srv.wait_lines(r"^decoy .* quit=yes", count=2)) == 2


def test_exim_moves_on_from_the_decoy_to_the_real_mx(wd, mx):
    srv = TcpServer(wd, decoy("--tempfail", "-d", "1"), host=DECOY_IP)
    real = TcpServer(wd, [SENDWRAP, "-d", "1", "--"] + mx.argv(),
                     host=REAL_IP)
    sender = EximSender(wd, route((DECOY_IP, srv.port),
                                  (REAL_IP, real.port)), 25)
    headers = submit(sender, "next-mx")
    sender.run_queue()
    assert sender.queue_count() == 0, sender.mainlog()
    log = sender.mainlog()
    assert re.search(r"H=127\.0\.0\.2 .*RCPT TO:.*: %s" % LATER.decode(),
                     log), log
    assert re.search(r"=> %s R=to_listener T=to_listener H=127\.0\.0\.3 "
                     % re.escape(headers["To"]), log), log
    assert [m.header("X-E2E-Tag") for m in mx.messages()] == ["next-mx-1"]
    assert re.search(r" quit=yes end=quit$", one_line(srv, r"^decoy "))


def test_own_host_gets_421_and_goes_to_the_real_mx(wd, mx):
    srv = TcpServer(wd, decoy("--tarpit", "-A", "127.0.0.0/8"),
                    host=DECOY_IP)
    real = TcpServer(wd, [SENDWRAP, "-d", "1", "--"] + mx.argv(),
                     host=REAL_IP)
    sender = EximSender(wd, route((DECOY_IP, srv.port),
                                  (REAL_IP, real.port)), 25)
    submit(sender, "own-host")
    took = sender.run_queue()
    assert sender.queue_count() == 0, sender.mainlog()
    assert took < 1 + SLACK, "held %.1f s by its own decoy" % took
    assert re.search(r"H=127\.0\.0\.2 .*initial connection: 421 4\.7\.0 ",
                     sender.mainlog()), sender.mainlog()
    assert len(mx.messages()) == 1
    line = one_line(srv, r"^allow ")
    assert re.fullmatch(r"allow ip=127\.0\.0\.1 port=\d+ reason=allowlist "
                        r"rule=127\.0\.0\.0/8 mode=tarpit reply=421", line), \
        line


def test_swaks_times_out_on_the_tarpit_greeting(wd):
    srv = TcpServer(wd, decoy("--tarpit", "--tarpit-interval", "1",
                              "--tarpit-max", "60s"))
    rc, out, greet, wall = swaks("127.0.0.1", srv.port, "x@sendwrap.test",
                                 extra=["--timeout", "4"])
    # swaks times the whole greeting, not each line: it gives up at 4 s
    assert rc != 0, out
    assert re.search(r"Timeout \(4 secs\) waiting for server response", out), \
        out
    assert 4.0 <= wall < 4 + 4 + SLACK, wall
    # then it says QUIT (read and thrown away), waits 4 s more for a
    # reply and closes; with our lines unread, its kernel may send a reset
    line = one_line(srv, r"^tarpit ")
    m = re.fullmatch(r"tarpit ip=127\.0\.0\.1 port=\d+ held=(\d+\.\d+) "
                     r"bytes=\d+ end=(client-closed|reset)", line)
    assert m, line
    assert 4.0 <= float(m.group(1)) <= wall + 1
    assert srv.wait_ends(1) and list(srv.end_statuses().values()) == [0]


def test_exim_gives_up_on_the_tarpit_and_keeps_the_message(wd):
    srv = TcpServer(wd, decoy("--tarpit", "--tarpit-interval", "1",
                              "--tarpit-max", "60s"))
    sender = EximSender(wd, "127.0.0.1", srv.port)
    with open(sender.conf) as f:
        conf = f.read()
    assert "command_timeout = 60s" in conf
    with open(sender.conf, "w") as f:     # a short greeting timeout
        f.write(conf.replace("command_timeout = 60s", "command_timeout = 5s"))
    submit(sender, "tarpit")
    took = sender.run_queue(timeout=60)
    assert 5.0 <= took < 5 + SLACK, took
    assert sender.queue_count() == 1, sender.mainlog()
    assert "SMTP timeout after initial connection" in sender.mainlog()
    line = one_line(srv, r"^tarpit ")
    # exim just closes; a line that came in meanwhile may make it a reset
    assert re.search(r" bytes=0 end=(client-closed|reset)$", line), line


def test_bot_is_held_and_its_transaction_thrown_away(wd):
    srv = TcpServer(wd, decoy("--tarpit", "--tarpit-interval", "0.5",
                              "--tarpit-max", "3s", "-b",
                              "mx.sendwrap.test ESMTP"))
    payload = bot_payload("tarpit", body_kib=8)
    got, took, reset = bot("127.0.0.1", srv.port, payload)
    lines = got.split(b"\r\n")
    assert lines[-1] == b"" and set(lines[:-1]) == \
        {b"220-mx.sendwrap.test ESMTP"}, got
    assert 4 <= len(lines) - 1 <= 7, got        # every 0.5 s for 3 s
    assert 3.0 <= took < 3 + SLACK, took
    line = one_line(srv, r"^tarpit ")
    assert re.fullmatch(r"tarpit ip=127\.0\.0\.1 port=\d+ held=\d+\.\d+ "
                        r"bytes=%d end=max-reached" % len(payload), line), line


def test_tempfail_decoy_under_inetd_logs_to_syslog(wd):
    inetd = Inetd(wd, [SENDWRAP, "sendwrap", "--tempfail", "-d", "1"])
    g = Greeting("127.0.0.1", inetd.port)
    assert g.t_final is not None and g.t_final >= 0.9, g.lines
    assert re.fullmatch(rb"220 [A-Za-z0-9.-]+ ESMTP\r\n", g.final()), g.lines
    deadline = time.monotonic() + 10
    replies = []
    for cmd in (b"EHLO client.sendwrap.test", b"MAIL FROM:<a@sendwrap.test>",
                b"RCPT TO:<b@sendwrap.test>", b"DATA"):
        g.sock.sendall(cmd + b"\r\n")
        replies.append(g.reader.read_reply(deadline)[-1][:3])
    assert replies == [b"250", b"250", b"451", b"451"], replies
    reply, rest = g.quit()
    assert reply[0].startswith(b"221 ") and rest == b"", (reply, rest)
    assert smtp_lines_only(g.reader.raw), g.reader.raw
    recs = inetd.syslog.wait_lines(r"^decoy ")
    assert len(recs) == 1, inetd.syslog.records
    assert re.fullmatch(r'decoy ip=127\.0\.0\.1 port=\d+ '
                        r'helo="client\.sendwrap\.test" commands=5 quit=yes '
                        r'end=quit', recs[0][4]), recs
