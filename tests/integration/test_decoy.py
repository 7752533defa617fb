"""Decoy MX modes: --tarpit (a greeting that never ends), --tempfail (the
"come back later" responder), --slots (a cap shared by every process),
our own hosts turned away at once, -n and usage errors.

The built binary runs on a real loopback connection (sw_harness); no
program is given or run in these modes.  Intervals are short (0.3 s) and
every timing bound is generous: the machine may be loaded.
"""
import re
import select
import time

import pytest

from sw_harness import (MTA, REPLY_REJECT, REPLY_TEMPFAIL,
                        REPLY_UNAVAILABLE, SECONDS, SLACK, SOON, T, unescape)

TARPIT = ["--tarpit", "--tarpit-interval", "0.3"]
TEMPFAIL = ["--tempfail", "-d", "0.3"]
LATER = b"451 4.7.1 Service temporarily unavailable, try again later\r\n"
BUSY = b"421 4.7.0 Too busy, try again later\r\n"
OWN_HOST = re.compile(rb"421 4\.7\.0 [\x20-\x7e]+\r\n")
GREETING = re.compile(rb"220 [A-Za-z0-9.-]+ ESMTP\r\n")
HELO_REPLY = re.compile(rb"250 [A-Za-z0-9.-]+\r\n")


def lines_until(client, n, timeout=T, origin=None):
    """Read until n lines have arrived: [(seconds since origin, line)];
    origin is a time.monotonic() value, by default now."""
    sock, buf, out = client.sock, b"", []
    t0 = time.monotonic() if origin is None else origin
    deadline = time.monotonic() + timeout
    while len(out) < n:
        left = deadline - time.monotonic()
        assert left > 0, "only %d lines in %.1f s: %r" % (len(out), timeout,
                                                          out)
        if not select.select([sock], [], [], left)[0]:
            continue
        chunk = sock.recv(4096)
        assert chunk, "closed after %r" % out
        now = time.monotonic() - t0
        buf += chunk
        while b"\n" in buf:
            line, _, buf = buf.partition(b"\n")
            out.append((now, line + b"\n"))
    assert buf == b"", "a line in pieces: %r" % buf
    return out


def command(client, line, timeout=T):
    """Send one command line, return the one reply line to it."""
    start = len(client.data)
    client.send(line + b"\r\n")
    deadline = time.monotonic() + timeout
    while b"\n" not in client.data[start:]:
        assert not client.eof, "closed after %r" % client.data
        assert client._read(deadline), "no reply to %r" % line
    reply = client.data[start:client.data.index(b"\n", start) + 1]
    assert client.data[start + len(reply):] == b"", client.data[start:]
    return reply


# ----------------------------------------------------------------- tarpit

def test_tarpit_line_cadence_and_content(sw):
    c = sw(TARPIT)
    # Times from before sendwrap started: line k cannot come before 0.3k.
    got = lines_until(c.client, 6, origin=c.t0)
    assert got[0][0] < SOON, "first line after %.2f s" % got[0][0]
    lines = {line for _, line in got}
    assert len(lines) == 1, lines                 # the same line each time
    line = lines.pop()
    # a continuation line, printable and short, never the final "220 "
    assert re.fullmatch(rb"220-[\x20-\x7e]{1,80}\r\n", line), line
    times = [t for t, _ in got]
    # not sent in bursts, not much slower either
    for k, t in enumerate(times):
        assert t >= 0.3 * k - 0.01, times
    assert times[-1] <= 1.5 + 4 + SLACK, times
    assert c.finish() == 0
    f = c.expect("tarpit", held=SECONDS, bytes="0", end="client-closed")
    assert 1.4 <= float(f["held"]) < 1.5 + 4 + SLACK, f
    assert not c.ran()


def test_tarpit_banner_is_the_line_text(sw):
    c = sw(TARPIT + ["-b", "mx.example.org ESMTP"])
    got = lines_until(c.client, 2)
    assert [line for _, line in got] == [b"220-mx.example.org ESMTP\r\n"] * 2
    c.finish()
    c.expect("tarpit", held=SECONDS, bytes="0", end="client-closed")


def test_tarpit_max_hold(sw):
    c = sw(TARPIT + ["--tarpit-max", "1s"])
    data = c.client.read_all(timeout=1 + 5 + SLACK)     # the server closes
    t = time.monotonic() - c.t0
    assert 0.95 <= t < 1 + 5 + SLACK, t
    assert not c.client.reset
    lines = data.split(b"\r\n")[:-1]
    assert 2 <= len(lines) <= 4, data            # at 0, 0.3, 0.6, 0.9 s
    assert all(l.startswith(b"220-") for l in lines), data
    assert c.finish() == 0
    f = c.expect("tarpit", held=SECONDS, bytes="0", end="max-reached")
    assert 1.0 <= float(f["held"]) < 1 + 5 + SLACK, f


def test_tarpit_input_is_read_and_discarded(sw):
    bot = (b"EHLO bot.example\r\nMAIL FROM:<spam@bot.example>\r\n"
           b"RCPT TO:<victim@example.org>\r\nDATA\r\n" + b"x" * 100000 +
           b"\r\n.\r\nQUIT\r\n")
    early = b"HELO before-start\r\n"
    c = sw(TARPIT, early=early)
    lines_until(c.client, 1)
    c.client.send(bot)
    got = lines_until(c.client, 3)
    # Never a reply to anything: only the 220- lines, however much it sent.
    assert all(line.startswith(b"220-") for _, line in got), got
    assert c.finish() == 0
    c.expect("tarpit", held=SECONDS, bytes=str(len(early) + len(bot)),
             end="client-closed")


def test_tarpit_client_reset(sw):
    c = sw(TARPIT)
    lines_until(c.client, 2)
    c.client.abort()
    assert c.wait() == 0
    c.expect("tarpit", held=SECONDS, bytes="0", end="reset")


def test_tarpit_client_half_close_ends_the_hold(sw):
    c = sw(TARPIT)
    lines_until(c.client, 1)
    c.client.shutdown_write()
    c.client.read_all()
    assert c.wait() == 0
    c.expect("tarpit", held=SECONDS, bytes="0", end="client-closed")


def test_tarpit_ignores_the_delay(sw):
    # -d is the wrapper's: the tarpit greets (endlessly) at once.
    c = sw(TARPIT + ["-d", "20"])
    got = lines_until(c.client, 1)
    assert time.monotonic() - c.t0 < SOON
    assert got[0][1].startswith(b"220-")
    c.finish()


# --------------------------------------------------------------- tempfail

def greeted(c):
    """The responder's greeting, after the delay; returns its time."""
    t = c.client.recv_until(b"\r\n") - c.t0
    assert GREETING.fullmatch(c.client.data), c.client.data
    return t


def test_tempfail_replies_command_by_command(sw):
    c = sw(TEMPFAIL)
    t = greeted(c)
    assert 0.29 <= t < 0.3 + SOON, t
    assert HELO_REPLY.fullmatch(command(c.client, b"EHLO mta.example.org"))
    assert command(c.client, b"MAIL FROM:<a@example.org>") == \
        b"250 2.1.0 Ok\r\n"
    assert command(c.client, b"RCPT TO:<b@example.org>") == LATER
    assert command(c.client, b"DATA") == LATER
    assert command(c.client, b"RSET") == b"250 2.0.0 Ok\r\n"
    assert command(c.client, b"NOOP") == b"250 2.0.0 Ok\r\n"
    assert HELO_REPLY.fullmatch(command(c.client, b"helo again"))
    assert command(c.client, b"VRFY root") == \
        b"500 5.5.2 Command not recognized\r\n"
    assert command(c.client, b"STARTTLS") == \
        b"500 5.5.2 Command not recognized\r\n"
    assert command(c.client, b"x" * 600) == b"500 5.5.2 Line too long\r\n"
    assert command(c.client, b"mail from:<>") == b"250 2.1.0 Ok\r\n"
    assert command(c.client, b"QUIT") == b"221 2.0.0 Bye\r\n"
    c.client.read_all()                          # and the server closes
    assert not c.client.reset
    assert c.finish() == 0
    c.expect("decoy", helo='"mta.example.org"', commands="12", quit="yes",
             end="quit")
    assert not c.ran()


def test_tempfail_bot_that_does_not_quit(sw):
    c = sw(TEMPFAIL)
    greeted(c)
    command(c.client, b"HELO bot")
    command(c.client, b"MAIL FROM:<spam@bot.example>")
    assert command(c.client, b"RCPT TO:<victim@example.org>") == LATER
    c.finish()
    c.expect("decoy", helo='"bot"', commands="3", quit="no",
             end="client-closed")


def test_tempfail_pipelined_commands(sw):
    c = sw(TEMPFAIL)
    greeted(c)
    c.client.send(b"EHLO p.example\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"
                  b"DATA\r\nQUIT\r\n")
    data = c.client.read_all()
    replies = data.split(b"\r\n")[1:-1]
    assert [r[:3] for r in replies] == [b"250", b"250", b"451", b"451",
                                        b"221"], data
    assert c.finish() == 0
    c.expect("decoy", helo='"p.example"', commands="5", quit="yes",
             end="quit")


def test_tempfail_helo_is_escaped_and_truncated(sw):
    c = sw(TEMPFAIL)
    greeted(c)
    name = b'evil"\\\x01\xff' + b"a" * 100
    command(c.client, b"EHLO " + name)
    c.finish()
    f = c.expect("decoy", helo=re.compile(r'"[\x20-\x7e]*"'), commands="1",
                 quit="no", end="client-closed")
    assert unescape(f["helo"]) == name[:64]


def test_tempfail_no_helo(sw):
    c = sw(TEMPFAIL)
    greeted(c)
    command(c.client, b"QUIT")
    c.client.read_all()
    c.finish()
    c.expect("decoy", helo='""', commands="1", quit="yes", end="quit")


def test_tempfail_command_limit(sw):
    c = sw(TEMPFAIL + ["--tempfail-commands", "3"])
    greeted(c)
    c.client.send(b"NOOP\r\n" * 5)
    data = c.client.read_all()
    assert data.split(b"\r\n")[1:] == [b"250 2.0.0 Ok"] * 3 + [
        b"421 4.7.0 Too many commands, closing connection", b""], data
    assert c.finish() == 0
    c.expect("decoy", helo='""', commands="3", quit="no", end="max-commands")


def test_tempfail_default_command_limit_is_20(sw):
    c = sw(TEMPFAIL)
    greeted(c)
    c.client.send(b"NOOP\r\n" * 25)
    data = c.client.read_all()
    assert data.count(b"250 2.0.0 Ok\r\n") == 20, data
    assert data.endswith(b"421 4.7.0 Too many commands, closing "
                         b"connection\r\n")
    c.finish()
    c.expect("decoy", helo='""', commands="20", quit="no", end="max-commands")


def test_tempfail_time_limit(sw):
    c = sw(TEMPFAIL + ["--tempfail-max", "1s"])
    t = greeted(c)
    command(c.client, b"HELO slow.example")
    data = c.client.read_all(timeout=1 + 5 + SLACK)
    assert data.endswith(b"421 4.4.2 Session time limit reached, closing "
                         b"connection\r\n"), data
    took = time.monotonic() - c.t0 - t
    assert 0.95 <= took < 1 + 5 + SLACK, took
    assert c.finish() == 0
    c.expect("decoy", helo='"slow.example"', commands="1", quit="no",
             end="max-time")


@pytest.mark.parametrize("opts,reply,action", [
    ([], REPLY_REJECT, "reject"),
    (["-x", "tempfail"], REPLY_TEMPFAIL, "tempfail"),
    (["-x", "drop"], b"", "drop"),
], ids=["reject", "tempfail", "drop"])
def test_tempfail_early_talker_gets_the_early_action(sw, opts, reply, action):
    c = sw(["--tempfail", "-d", "20"] + opts, early=b"EHLO bot\r\n")
    assert c.client.read_all(timeout=SOON) == reply
    assert c.finish() == 0
    c.expect("early", after=SECONDS, bytes="10", first='"EHLO bot\\r\\n"',
             action=action)


def test_tempfail_banner_then_greeting(sw):
    c = sw(TEMPFAIL + ["-b", "mx.example.org"])
    c.client.recv_until(b"220-mx.example.org\r\n", timeout=SOON)
    c.client.recv_until(b" ESMTP\r\n")
    assert GREETING.fullmatch(c.client.data[len(b"220-mx.example.org\r\n"):])
    c.finish()


def test_tempfail_hangup_during_the_delay(sw):
    c = sw(["--tempfail", "-d", "20"], hangup="eof")
    assert c.client.read_all(timeout=SOON) == b""
    assert c.wait() == 0
    c.expect("hangup", after=SECONDS, how="eof")


# ----------------------------------------------------------------- slots

def wait_first_line(c):
    c.client.recv_until(b"\r\n", timeout=T)


@pytest.mark.parametrize("mode", ["tarpit", "tempfail"])
def test_slots_exhausted_then_freed_by_sigkill(sw, tmp_path, mode):
    slots = tmp_path / "slots"
    slots.mkdir()
    args = (TARPIT if mode == "tarpit" else ["--tempfail", "-d", "0"]) + [
        "--slots", "2", "--slots-dir", str(slots)]
    holders = [sw(args), sw(args)]
    for h in holders:
        wait_first_line(h)                       # each holds a slot now
    busy = sw(args)
    assert busy.client.read_all(timeout=SOON) == BUSY
    assert not busy.client.reset
    assert busy.finish() == 0
    busy.expect("busy", mode=mode, slots="2")
    # A holder that dies without a word gives its slot back.
    holders[0].kill()
    again = sw(args)
    wait_first_line(again)
    assert again.client.data.startswith(b"220")
    # ... and so does one that ends normally.
    holders[1].finish()
    third = sw(args)
    wait_first_line(third)
    assert third.client.data.startswith(b"220")
    # Now both are taken again.
    busy2 = sw(args)
    assert busy2.client.read_all(timeout=SOON) == BUSY
    busy2.finish()
    again.finish()
    third.finish()


def test_slot_is_held_through_the_greeting_delay(sw, tmp_path):
    slots = tmp_path / "slots"
    slots.mkdir()
    args = ["--tempfail", "-d", "20", "--slots", "1", "--slots-dir",
            str(slots)]
    waiting = sw(args)
    # The first one is in its 20 s delay: give it time to take the slot.
    deadline = time.monotonic() + T
    while not (slots / "slot.0").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.2)
    busy = sw(args)
    assert busy.client.read_all(timeout=SOON) == BUSY
    waiting.finish()


def test_slots_dir_unusable_fails_closed(sw, tmp_path):
    c = sw(TARPIT + ["--slots", "2", "--slots-dir",
                     str(tmp_path / "missing")])
    assert c.client.read_all(timeout=SOON) == REPLY_UNAVAILABLE
    assert c.finish() == 111
    errors = c.errors()
    assert len(errors) == 1 and "missing" in errors[0], c.log


def test_allowlisted_peer_never_takes_a_slot(sw, tmp_path):
    slots = tmp_path / "slots"
    slots.mkdir()
    c = sw(TARPIT + ["-A", "127.0.0.1", "--slots", "1", "--slots-dir",
                     str(slots)])
    assert OWN_HOST.fullmatch(c.client.read_all(timeout=SOON))
    assert c.finish() == 0
    assert list(slots.iterdir()) == []


# ------------------------------------------------------------ own hosts

@pytest.mark.parametrize("mode", ["--tarpit", "--tempfail"])
@pytest.mark.parametrize("args,env,fields", [
    (["-A", "10.0.0.0/8", "-A", "127.0.0.0/8"], {},
     {"reason": "allowlist", "rule": "127.0.0.0/8"}),
    (["-A", "127.0.0.1"], {"GREETDELAY": "3"},     # tcprules wins
     None),
    ([], {"RELAYCLIENT": ""}, {"reason": "RELAYCLIENT"}),
    ([], {"GREETDELAY": "0"}, {"reason": "GREETDELAY"}),
], ids=["allowlist", "greetdelay3", "relayclient", "greetdelay0"])
def test_own_hosts_get_421_at_once(sw, mode, args, env, fields):
    c = sw([mode, "--tarpit-interval" if mode == "--tarpit" else
            "--tempfail-max", "1s", "-d", "20"] + args, env=env)
    if fields is None:
        # GREETDELAY=3 from tcprules: not ours; the decoy goes on.
        wait_first_line(c)
        assert c.client.data.startswith(b"220")
        c.finish()
        return
    data = c.client.read_all(timeout=SOON)
    assert OWN_HOST.fullmatch(data), data
    assert not c.client.reset
    assert time.monotonic() - c.t0 < SOON
    assert c.finish() == 0
    c.expect("allow", **fields, mode=mode[2:], reply="421")


def test_delay_zero_is_not_an_own_host(sw):
    # -d 0 is about the decoy, not the client: greeted at once.
    c = sw(["--tempfail", "-d", "0"])
    t = greeted(c)
    assert t < SOON
    command(c.client, b"QUIT")
    c.client.read_all()
    c.finish()
    c.expect("decoy", helo='""', commands="1", quit="yes", end="quit")


# ------------------------------------------------------- -n, usage errors

def test_check_prints_the_decoy_settings(plain, tmp_path):
    slots = tmp_path / "slots"
    slots.mkdir()
    rc, out, err = plain(["-n", "--tarpit", "--tarpit-interval", "2s",
                          "--tarpit-max", "1h", "--slots", "35",
                          "--slots-dir", str(slots)])
    assert rc == 0, out + err
    assert "mode: tarpit" in out
    assert re.search(r"every 2\.000 s, for at most 3600\.000 s", out), out
    assert "slots: 35 in %s" % slots in out
    assert "configuration ok" in out


def test_check_prints_the_defaults(plain):
    rc, out, err = plain(["-n", "--tarpit"])
    assert rc == 0, out + err
    assert re.search(r"every 10\.000 s, for at most 1800\.000 s", out), out
    assert "slots: no cap" in out
    rc, out, err = plain(["-n", "--tempfail", "-d", "7"])
    assert rc == 0, out + err
    assert "mode: tempfail" in out
    assert "at most 20 commands in 60.000 s" in out
    assert "7.000" in out


def test_check_reports_an_unusable_slots_dir(plain, tmp_path):
    f = tmp_path / "file"
    f.write_text("")
    for d in (tmp_path / "missing", f):
        rc, out, err = plain(["-n", "--tempfail", "--slots", "2",
                              "--slots-dir", str(d)])
        assert rc == 100, out + err
        assert str(d) in err and "configuration has errors" in out


def test_check_creates_no_lock_file(plain, tmp_path):
    rc, out, err = plain(["-n", "--tarpit", "--slots", "2", "--slots-dir",
                          str(tmp_path)])
    assert rc == 0
    assert not list(tmp_path.glob("slot.*"))


@pytest.mark.parametrize("args", [
    ["--tarpit", "--tempfail"],
    ["--tarpit", MTA[0]],
    ["--tempfail", "--", MTA[0]],
    ["--tempfail", "-x", "pass"],
    ["--tarpit", "--tarpit-interval", "10ms"],
    ["--tarpit", "--tarpit-interval", "2h"],
    ["--tarpit", "--tarpit-interval", "soon"],
    ["--tarpit", "--tarpit-max", "0.5"],
    ["--tarpit", "--tarpit-max", "8d"],
    ["--tempfail", "--tempfail-commands", "0"],
    ["--tempfail", "--tempfail-commands", "1001"],
    ["--tempfail", "--tempfail-commands", "-3"],
    ["--tempfail", "--tempfail-commands", "5x"],
    ["--tempfail", "--tempfail-max", "2h"],
    ["--tarpit-interval", "1s"],
    ["--tempfail", "--tarpit-max", "1m"],
    ["--tarpit", "--tempfail-commands", "5"],
    ["--tarpit", "--slots", "5"],
    ["--tarpit", "--slots-dir", "/tmp"],
    ["--tarpit", "--slots", "0", "--slots-dir", "/tmp"],
    ["--tarpit", "--slots", "100001", "--slots-dir", "/tmp"],
    ["--slots", "5", "--slots-dir", "/tmp", MTA[0]],
], ids=lambda a: " ".join(a).replace(MTA[0], "PROGRAM"))
def test_usage_errors(plain, args):
    rc, out, err = plain(["-n"] + args)
    assert rc == 100, out + err
    assert "usage" in err


def test_usage_error_on_a_connection(sw):
    # As elsewhere: 421 to the client, the reason in the log, exit 100.
    c = sw(["--tarpit", *MTA])
    assert c.client.read_all(timeout=SOON) == REPLY_UNAVAILABLE
    assert c.finish() == 100
    assert not c.ran()
    errors = c.errors()
    assert len(errors) == 1 and "no program" in errors[0], c.log


def test_help_mentions_the_decoy_modes(plain):
    rc, out, err = plain(["--help"])
    assert rc == 0
    for opt in ("--tarpit", "--tarpit-interval", "--tarpit-max",
                "--tempfail", "--tempfail-commands", "--tempfail-max",
                "--slots", "--slots-dir"):
        assert opt in out, opt
