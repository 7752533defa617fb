"""tcpserver -> sendwrap -> exim -bs: delivery, the bot, the banner."""

import re
import threading

from e2elib import (REJECT_554, SLACK, EximSender, Greeting, TcpServer,
                    assert_delayed, bot, bot_payload, check_message,
                    make_message, smtp_deliver, smtp_lines_only,
                    swaks_message)


def test_swaks_waits_and_delivers_intact(wd, mx, sw):
    """Scenario 1: delay 2 s; swaks and smtplib deliver, byte for byte."""
    srv = TcpServer(wd, sw("-d", "2", mta=mx.argv()))

    out, greet, _, headers, body = swaks_message(wd, "127.0.0.1", srv.port,
                                                 "swaks", 1)
    assert_delayed(greet, 2.0)
    assert re.search(r"<-  220 mx\.sendwrap\.test ESMTP Exim", out), out
    assert not re.search(r"sendwrap[:\[]| ip=127", out), out

    raw2, headers2, body2 = make_message("smtplib", 2)
    greet2 = smtp_deliver("127.0.0.1", srv.port, raw2,
                          "smtplib@client.sendwrap.test", headers2["To"])
    assert_delayed(greet2, 2.0)

    msgs = {m.header("X-E2E-Tag"): m for m in mx.messages()}
    assert sorted(msgs) == ["smtplib-2", "swaks-1"], mx.queue_listing()
    check_message(msgs["swaks-1"], headers, body)
    assert msgs["swaks-1"].sender == "swaks@client.sendwrap.test"
    assert msgs["swaks-1"].recipients == [headers["To"]]
    check_message(msgs["smtplib-2"], headers2, body2)
    assert msgs["smtplib-2"].recipients == [headers2["To"]]
    # exim's own listing agrees with what the spool files say
    listing = mx.queue_listing()
    for m in msgs.values():
        assert m.id in listing

    lines = srv.wait_lines(r"^pass ", count=2)
    assert len(lines) == 2, srv.log()
    for line in lines:
        m = re.match(r"^pass ip=127\.0\.0\.1 port=\d+ delay=2\.000 "
                     r"waited=(\d+\.\d+)$", line)
        assert m, line
        assert 2.0 <= float(m.group(1)) < 2.0 + SLACK
    # sendwrap exec'd exim: exactly one exim session per connection
    assert mx.connections() == 2


def test_blind_bot_gets_554_and_nothing_is_queued(wd, mx, sw):
    """Scenario 2: the whole transaction in one write, before the greeting."""
    srv = TcpServer(wd, sw("-d", "2", mta=mx.argv()))
    payload = bot_payload("one-write")
    got, took, reset = bot("127.0.0.1", srv.port, payload)
    # The reply is exactly the 554 line: no greeting, no log text.
    assert got == REJECT_554, got
    # And the connection ended in an orderly close: sendwrap did not close
    # with the bot's 16 KiB unread, which makes the kernel send a reset
    # that can destroy the reply in flight.
    assert not reset, "the stream ended in a reset"
    assert took < 2.0 + SLACK
    lines = srv.wait_lines(r"^early ")
    assert lines, srv.log()
    m = re.match(r'^early ip=127\.0\.0\.1 port=\d+ after=(\d+\.\d+) '
                 r'bytes=(\d+) first="(.*)" action=reject$', lines[0])
    assert m, lines[0]
    assert float(m.group(1)) < 2.0
    assert int(m.group(2)) > 0
    assert m.group(3).startswith(r"EHLO bot.invalid\r\nMAIL FROM:")
    assert mx.messages() == []
    assert mx.connections() == 0, mx.mainlog()
    # sendwrap exited 0 ("handled without exec")
    statuses = srv.wait_ends(1)
    assert list(statuses.values()) == [0], srv.log()


def test_bot_refused_long_before_a_long_delay(wd, mx, sw):
    """With a 20 s delay the bot is refused at once, not at the deadline."""
    srv = TcpServer(wd, sw("-d", "20", mta=mx.argv()))
    got, took, _ = bot("127.0.0.1", srv.port, bot_payload("fast", body_kib=1))
    assert got == REJECT_554, got
    assert took < 5.0, "bot answered after %.3f s" % took
    assert mx.connections() == 0


def test_real_mta_and_swaks_deliver_through_banner(wd, mx, sw):
    """Scenario 6: -b sends 220- at once; exim, swaks deliver; a bot that
    talks after the 220- line is refused."""
    banner = "mx.sendwrap.test ESMTP greeting delayed, please wait"
    srv = TcpServer(wd, sw("-d", "4", "-b", banner, mta=mx.argv()))

    # the raw view of the multi-line greeting
    g = Greeting("127.0.0.1", srv.port)
    assert g.lines[0][1] == ("220-%s\r\n" % banner).encode(), g.lines
    assert g.t_first < 2.0, "220- line after %.3f s" % g.t_first
    assert len(g.lines) == 2, g.lines
    assert g.final().startswith(b"220 mx.sendwrap.test ESMTP Exim")
    assert_delayed(g.t_final, 4.0)
    reply, rest = g.quit()
    assert reply and reply[0].startswith(b"221 ")
    assert smtp_lines_only(g.reader.raw), g.reader.raw

    # a bot that reads the first line and then pours everything out
    got, _, reset = bot("127.0.0.1", srv.port, bot_payload("after-banner"),
                        wait_first_line=True)
    assert not reset
    assert got == ("220-%s\r\n" % banner).encode() + REJECT_554, got

    # swaks
    out, greet, _, headers, body = swaks_message(wd, "127.0.0.1", srv.port,
                                                 "banner-swaks", 3)
    assert "<-  220-" + banner in out, out
    assert_delayed(greet, 4.0)

    # a second exim, queueing locally and relaying to us as a smarthost
    sender = EximSender(wd, "127.0.0.1", srv.port)
    raw2, headers2, body2 = make_message("banner-exim", 4)
    sender.submit("relay@sender.sendwrap.test", headers2["To"], raw2)
    assert sender.queue_count() == 1
    took = sender.run_queue()
    assert sender.queue_count() == 0, sender.mainlog()
    assert re.search(r"=> %s R=to_listener T=to_listener H=127\.0\.0\.1 "
                     r"\[127\.0\.0\.1\]:%d" % (re.escape(headers2["To"]),
                                              srv.port), sender.mainlog()), \
        sender.mainlog()
    assert took >= 0.9 * 4.0, "exim delivered after %.3f s" % took

    msgs = {m.header("X-E2E-Tag"): m for m in mx.messages()}
    assert sorted(msgs) == ["banner-exim-4", "banner-swaks-3"], msgs
    check_message(msgs["banner-swaks-3"], headers, body)
    check_message(msgs["banner-exim-4"], headers2, body2)
    assert msgs["banner-exim-4"].sender == "relay@sender.sendwrap.test"
    received = msgs["banner-exim-4"].header("Received")
    # ours on top, then the sending exim's own
    assert len(received) == 2, received
    assert received[0].startswith(
        "from [127.0.0.1] (helo=sender.sendwrap.test) by mx.sendwrap.test")
    assert "by sender.sendwrap.test" in received[1]

    lines = srv.wait_lines(r"^(pass|early|allow|hangup) ", count=4)
    verdicts = sorted(l.split()[0] for l in lines)
    # Greeting+QUIT, swaks, exim: pass; the bot: early.  Exim was not
    # mistaken for a bot.
    assert verdicts == ["early", "pass", "pass", "pass"], srv.log()


def test_sending_exim_waits_out_plain_delay(wd, mx, sw):
    """A real MTA as client, no banner: it waits for the greeting."""
    srv = TcpServer(wd, sw("-d", "2", mta=mx.argv()))
    sender = EximSender(wd, "127.0.0.1", srv.port)
    sent = {}
    for n in (5, 6):
        raw, headers, body = make_message("exim-plain", n)
        sender.submit("relay@sender.sendwrap.test", headers["To"], raw)
        sent[headers["X-E2E-Tag"]] = (headers, body)
    took = sender.run_queue()
    assert sender.queue_count() == 0, sender.mainlog()
    assert took >= 0.9 * 2.0
    msgs = {m.header("X-E2E-Tag"): m for m in mx.messages()}
    assert sorted(msgs) == sorted(sent)
    for tag, (headers, body) in sent.items():
        check_message(msgs[tag], headers, body)
    assert all(l.startswith("pass ") for l in srv.sendwrap_lines()), \
        srv.log()


def test_concurrent_clients_each_wait_their_own_delay(wd, mx, sw):
    """Two clients at once: both delayed, both deliver (no serialisation)."""
    srv = TcpServer(wd, sw("-d", "3", mta=mx.argv()))
    results, errors = {}, []

    def client(n):
        try:
            raw, headers, _ = make_message("parallel", n)
            results[n] = smtp_deliver("127.0.0.1", srv.port, raw,
                                      "p@client.sendwrap.test",
                                      headers["To"])
        except Exception as e:      # reported below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(n,)) for n in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    for n in (1, 2):
        assert_delayed(results[n], 3.0)
    assert len(mx.messages()) == 2


def test_observe_mode_leaves_early_input_to_the_mta(wd, sw):
    """-x pass: the early talker is logged and the MTA gets the socket with
    the early input unread, byte for byte."""
    from e2elib import EximReceiver
    # exim without its own early-talker check takes the pipelined bot
    # transaction as it stands: proof that sendwrap consumed nothing
    lax = EximReceiver(wd, "lax")
    srv = TcpServer(wd, sw("-d", "5", "-x", "pass", mta=lax.argv()))
    payload = bot_payload("observed", body_kib=8)
    got, took, _ = bot("127.0.0.1", srv.port, payload)
    assert took < 5.0, "waited %.2f s: pass must exec at once" % took
    codes = [l[:3] for l in got.split(b"\r\n") if l]
    assert codes[0] == b"220" and b"554" not in codes, got
    assert codes[-1] == b"221", got
    msgs = lax.messages()
    assert len(msgs) == 1 and msgs[0].header("Subject") == "BOT observed"
    sent_body = payload.split(b"\r\n\r\n", 1)[1].rsplit(b".\r\nQUIT", 1)[0]
    assert msgs[0].body == sent_body.replace(b"\r\n", b"\n")
    lines = srv.wait_lines(r"^early ")
    assert lines and re.search(r" action=pass$", lines[0]), srv.log()

    # exim's own check (smtp_enforce_sync, its default) is a second line
    strict = EximReceiver(wd, "strict", enforce_sync=True)
    srv2 = TcpServer(wd, sw("-d", "5", "-x", "pass", mta=strict.argv()))
    got, _, _ = bot("127.0.0.1", srv2.port, bot_payload("strict"))
    assert b"554 SMTP synchronization error" in got, got
    assert strict.messages() == []
