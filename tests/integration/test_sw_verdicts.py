"""Verdicts and actions: pass, allow, early, hangup; the banner; the
precedence of GREETDELAY, RELAYCLIENT, the allowlist and -d; exec
failure; exit statuses; SIGTERM during the wait."""
import re
import signal
import time

import pytest

from sw_harness import (ANY, BYE, GREETING, MTA, REPLY_REJECT,
                        REPLY_TEMPFAIL, REPLY_UNAVAILABLE, SECONDS, SLACK,
                        SOON, T, VALGRIND, unescape)

# SOON: a client that is not waited for gets its greeting within this
# long (the alternative in these tests is a -d 20 wait).


# ------------------------------------------------------------------ pass

def test_pass_greeting_not_before_the_delay_nor_much_after(sw):
    c = sw(["-d", "1.5", *MTA])
    t = c.converse()
    assert 1.45 <= t < 1.5 + 5 + SLACK
    assert c.rc == 0
    f = c.expect("pass", delay="1.500", waited=SECONDS)
    assert 1.5 <= float(f["waited"]) < 1.5 + 5 + SLACK
    # Nothing but the MTA's own bytes reached the client, and the MTA
    # saw the whole conversation.
    assert c.client.data == GREETING + BYE
    assert c.record()["before"] == ""


def test_default_delay_is_five_seconds(sw):
    # Checked through the log line and a client that stays quiet for
    # most of it; the full 5 s run is the price of the default.
    c = sw(MTA)
    c.client.quiet_for(4.5)
    t = c.converse()
    assert t >= 4.95
    c.expect("pass", delay="5.000", waited=SECONDS)


# ----------------------------------------------------------------- allow

@pytest.mark.every_case_under_valgrind
@pytest.mark.parametrize("args,env,reason", [
    (["-d", "0"], {}, "delay"),
    (["--delay", "0ms"], {}, "delay"),
    (["-d", "20"], {"GREETDELAY": "0"}, "GREETDELAY"),
    (["-d", "20"], {"RELAYCLIENT": ""}, "RELAYCLIENT"),
    (["-d", "20"], {"RELAYCLIENT": "@relay.example"}, "RELAYCLIENT"),
], ids=["d0", "d0ms", "GREETDELAY0", "RELAYCLIENT-empty", "RELAYCLIENT-set"])
def test_allow_reasons(sw, args, env, reason):
    c = sw(args + MTA, env=env)
    assert c.converse() < SOON
    assert c.rc == 0
    c.expect("allow", reason=reason)
    assert c.client.data == GREETING + BYE


def test_allow_by_A_rule_first_match(sw):
    c = sw(["-d", "20", "-A", "10.0.0.0/8", "--allow", "127.0.0.0/8",
            "-A", "127.0.0.1", *MTA])
    assert c.converse() < SOON
    c.expect("allow", reason="allowlist", rule="127.0.0.0/8")


def test_allow_by_file_rule(sw, write):
    path = write("allow.txt", "# loopback, no delay\n\n10.0.0.0/8\n"
                 "127.0.0.0/8   # trailing comment\n127.0.0.1 5\n")
    c = sw(["-d", "20", "--allowlist", path, *MTA])
    assert c.converse() < SOON
    c.expect("allow", reason="allowlist", rule="127.0.0.0/8")
    assert c.errors() == []


@pytest.mark.parametrize("delay", ["0.4", "400ms", "0.4s"])
def test_allowlist_entry_delay(sw, write, delay):
    path = write("allow.txt", "10.0.0.0/8 0\n127.0.0.1\t%s # slow\n"
                 "127.0.0.0/8\n" % delay)
    c = sw(["-d", "20", "-a", path, *MTA])
    t = c.converse()
    assert 0.39 <= t < 0.4 + SOON
    f = c.expect("pass", delay="0.400", waited=SECONDS, rule="127.0.0.1")
    assert float(f["waited"]) >= 0.4


def test_sources_are_searched_in_command_line_order(sw, write):
    path = write("allow.txt", "127.0.0.0/8 0.3\n")
    c = sw(["-d", "20", "-a", path, "-A", "127.0.0.1", *MTA])
    c.converse()
    c.expect("pass", delay="0.300", waited=SECONDS, rule="127.0.0.0/8")
    c = sw(["-d", "20", "-A", "127.0.0.1", "-a", path, *MTA])
    c.converse()
    c.expect("allow", reason="allowlist", rule="127.0.0.1")


# ------------------------------------------------------------ precedence

PRECEDENCE = [
    # GREETDELAY beats RELAYCLIENT, the allowlist and -d
    ({"GREETDELAY": "0.3", "RELAYCLIENT": ""}, ["-A", "127.0.0.1", "-d", "20"],
     "pass", {"delay": "0.300", "reason": "GREETDELAY"}),
    ({"GREETDELAY": "300ms"}, ["-A", "127.0.0.1", "-d", "0"],
     "pass", {"delay": "0.300", "reason": "GREETDELAY"}),
    ({"GREETDELAY": "0", "RELAYCLIENT": ""}, ["-a", "FILE", "-d", "20"],
     "allow", {"reason": "GREETDELAY"}),
    # RELAYCLIENT beats the allowlist and -d
    ({"RELAYCLIENT": ""}, ["-a", "FILE", "-d", "20"],
     "allow", {"reason": "RELAYCLIENT"}),
    # the allowlist beats -d, whichever is longer
    ({}, ["-a", "FILE", "-d", "20"],
     "pass", {"delay": "0.300", "rule": "127.0.0.1"}),
    ({}, ["-a", "FILE", "-d", "0"],
     "pass", {"delay": "0.300", "rule": "127.0.0.1"}),
    ({}, ["-A", "127.0.0.1", "-d", "20"],
     "allow", {"reason": "allowlist", "rule": "127.0.0.1"}),
    # an empty GREETDELAY counts as unset
    ({"GREETDELAY": ""}, ["-d", "0.3"],
     "pass", {"delay": "0.300"}),
    ({"GREETDELAY": "", "RELAYCLIENT": ""}, ["-d", "20"],
     "allow", {"reason": "RELAYCLIENT"}),
    ({"GREETDELAY": ""}, ["-A", "127.0.0.1", "-d", "20"],
     "allow", {"reason": "allowlist", "rule": "127.0.0.1"}),
]


@pytest.mark.parametrize("env,args,word,fields", PRECEDENCE)
def test_precedence(sw, write, env, args, word, fields):
    path = write("allow.txt", "127.0.0.1 0.3\n")
    args = [path if a == "FILE" else a for a in args]
    c = sw(args + MTA, env=env)
    t = c.converse()
    if word == "pass":
        assert 0.29 <= t < 0.3 + SOON
        fields = dict(delay=fields.pop("delay"), waited=SECONDS, **fields)
    else:
        assert t < SOON
    c.expect(word, **fields)
    assert c.errors() == []


@pytest.mark.parametrize("value", ["soon", "301", "300.001", "-1", "5x",
                                   "0.0001"])
def test_invalid_greetdelay_is_logged_and_ignored(sw, value):
    c = sw(["-d", "0.3", *MTA], env={"GREETDELAY": value})
    assert c.converse() >= 0.29
    c.expect("pass", delay="0.300", waited=SECONDS)
    errors = c.errors()
    assert len(errors) == 1 and "GREETDELAY" in errors[0], c.log
    assert value in errors[0]


def test_invalid_greetdelay_falls_through_to_relayclient(sw):
    c = sw(["-d", "20", *MTA], env={"GREETDELAY": "never",
                                     "RELAYCLIENT": ""})
    assert c.converse() < SOON
    c.expect("allow", reason="RELAYCLIENT")
    assert len(c.errors()) == 1


def test_invalid_greetdelay_cannot_forge_a_log_line(sw):
    value = '5"\nsendwrap: allow ip=6.6.6.6 port=1 reason=GREETDELAY\r\n'
    c = sw(["-d", "0.3", *MTA], env={"GREETDELAY": value})
    c.converse()
    c.expect("pass", delay="0.300", waited=SECONDS)
    lines = c.log_lines()
    assert len(lines) == 2, c.log
    assert "6.6.6.6" in c.errors()[0]


# ----------------------------------------------------------------- early

EHLO = b"EHLO bot.example\r\n"


@pytest.mark.every_case_under_valgrind
@pytest.mark.parametrize("opts,action,reply", [
    ([], "reject", REPLY_REJECT),
    (["-x", "reject"], "reject", REPLY_REJECT),
    (["--early", "tempfail"], "tempfail", REPLY_TEMPFAIL),
    (["-x", "tempfail"], "tempfail", REPLY_TEMPFAIL),
    (["-x", "drop"], "drop", b""),
], ids=["default", "reject", "tempfail-long", "tempfail", "drop"])
def test_early_talker(sw, opts, action, reply):
    c = sw(["-d", "20", *opts, *MTA], early=EHLO)
    assert c.client.read_all() == reply
    assert c.finish() == 0
    assert not c.ran()
    f = c.expect("early", after=SECONDS, bytes="18",
                 first='"EHLO bot.example\\r\\n"', action=action)
    assert float(f["after"]) < 1 + SLACK


def test_early_pass_runs_the_program_with_the_input_unread(sw):
    early = b"EHLO early.example\r\nMAIL FROM:<a@example.org>\r\n"
    c = sw(["-d", "20", "-x", "pass", *MTA], early=early)
    assert c.converse() < SOON
    assert c.rc == 0
    assert c.record()["before"] == early.decode()
    c.expect("early", after=SECONDS, bytes=str(len(early)),
             first='"EHLO early.example\\r\\nMAIL FROM:<a@example.org>\\r\\n"',
             action="pass")
    assert c.client.data == GREETING + BYE


def test_early_after_some_quiet_time(sw):
    banner = b"220-please wait\r\n"
    c = sw(["-d", "20", "-b", "please wait", *MTA])
    c.client.recv_until(banner)
    time.sleep(0.6)
    c.client.send(b"EHLO impatient\r\n")
    assert c.client.read_all() == banner + REPLY_REJECT
    assert c.finish() == 0
    assert not c.ran()
    f = c.expect("early", after=SECONDS, bytes="16",
                 first='"EHLO impatient\\r\\n"', action="reject")
    assert 0.55 <= float(f["after"]) < 0.6 + SOON


def test_early_first_escapes_every_unsafe_byte(sw):
    early = b'MAIL FROM:<"x"\\y>\r\n\x00\x01\x1b\x7f\x80\xe9\xff\n'
    c = sw(["-d", "20", *MTA], early=early)
    assert c.client.read_all() == REPLY_REJECT
    c.finish()
    f = c.expect("early", after=SECONDS, bytes=str(len(early)), first=ANY,
                 action="reject")
    first = f["first"]
    assert unescape(first) == early        # printable ASCII, lossless
    for esc in ('\\"x\\"', "\\\\y", "\\r\\n", "\\x00", "\\x01", "\\x1b",
                "\\x7f", "\\x80", "\\xe9", "\\xff\\n"):
        assert esc in first.lower(), (esc, first)


def test_early_first_holds_at_most_64_bytes(sw):
    early = b"A" * 63 + b"\xff" + b"B" * 36
    c = sw(["-d", "20", *MTA], early=early)
    assert c.client.read_all() == REPLY_REJECT
    c.finish()
    f = c.expect("early", after=SECONDS, bytes="100", first=ANY,
                 action="reject")
    assert unescape(f["first"]) == early[:64]


def test_early_first_worst_case_expansion(sw):
    # 64 bytes that each need a four-character escape.
    early = bytes(range(0x80, 0x100))
    c = sw(["-d", "20", *MTA], early=early)
    assert c.client.read_all() == REPLY_REJECT
    c.finish()
    f = c.expect("early", after=SECONDS, bytes=ANY, first=ANY,
                 action="reject")
    assert len(f["first"]) == 2 + 4 * 64
    assert unescape(f["first"]) == early[:64]


def test_early_bytes_counts_what_the_peek_saw(sw):
    early = bytes(range(32, 127)) * 20
    c = sw(["-d", "20", *MTA], early=early)
    assert c.client.read_all() == REPLY_REJECT
    c.finish()
    f = c.expect("early", after=SECONDS, bytes=ANY, first=ANY,
                 action="reject")
    assert 64 <= int(f["bytes"]) <= len(early)
    assert unescape(f["first"]) == early[:64]


def test_early_input_cannot_forge_a_log_line(sw):
    early = (b"HELO x\r\nsendwrap: pass ip=6.6.6.6 port=1 delay=0.000 "
             b"waited=0.000\n\"")
    c = sw(["-d", "20", *MTA], early=early)
    assert c.client.read_all() == REPLY_REJECT
    c.finish()
    assert len(c.log_lines()) == 1, c.log
    f = c.expect("early", after=SECONDS, bytes=str(len(early)), first=ANY,
                 action="reject")
    assert unescape(f["first"]) == early[:64]


def _wait_for_log(c, word):
    deadline = time.monotonic() + T
    while ("sendwrap: %s " % word) not in c.log:
        assert time.monotonic() < deadline, "no %s line: %r" % (word, c.log)
        time.sleep(0.02)


@pytest.mark.parametrize("action,reply", [("reject", REPLY_REJECT),
                                          ("tempfail", REPLY_TEMPFAIL)])
def test_reply_survives_unread_input(sw, action, reply):
    # A close() with unread input sends a reset that destroys the reply
    # in flight; sendwrap must shut down and drain instead.
    early = b"EHLO x\r\n" + b"X" * 30000 + b"\r\n"
    c = sw(["-d", "20", "-x", action, *MTA], early=early)
    _wait_for_log(c, "early")
    time.sleep(0.3)
    assert c.client.read_all() == reply
    assert not c.client.reset
    assert c.finish() == 0


def test_drain_is_bounded_in_time(sw):
    # A client that keeps the connection open and silent after the
    # reply does not keep sendwrap around for long.
    c = sw(["-d", "20", *MTA], early=EHLO)
    assert c.client.read_all() == REPLY_REJECT
    t = time.monotonic()
    assert c.wait(timeout=6 + SLACK) == 0
    assert time.monotonic() - t < 6 + SLACK


# ---------------------------------------------------------------- hangup

def test_hangup_eof_at_once(sw):
    c = sw(["-d", "20", *MTA], hangup="eof")
    assert c.client.read_all() == b""
    assert c.finish() == 0
    assert not c.ran()
    f = c.expect("hangup", after=SECONDS, how="eof")
    assert float(f["after"]) < 1 + SLACK


def test_hangup_eof_during_the_wait(sw):
    banner = b"220-hold on\r\n"
    c = sw(["-d", "20", "-b", "hold on", *MTA])
    c.client.recv_until(banner)
    time.sleep(0.4)
    c.client.shutdown_write()
    assert c.client.read_all() == banner
    assert c.finish() == 0
    assert not c.ran()
    f = c.expect("hangup", after=SECONDS, how="eof")
    assert 0.35 <= float(f["after"]) < 0.4 + SOON


def test_hangup_reset(sw):
    c = sw(["-d", "20", "-b", "hold on", *MTA])
    c.client.recv_until(b"220-hold on\r\n")
    time.sleep(0.3)
    c.client.abort()
    assert c.wait() == 0
    assert not c.ran()
    f = c.expect("hangup", after=SECONDS, how="reset")
    assert 0.25 <= float(f["after"]) < 0.3 + SOON


# ---------------------------------------------------------------- banner

@pytest.mark.parametrize("text", [
    "mx.example.org ESMTP please wait",
    "x" * 200,
    "~!@#$%^&*()_+{}|:<>? `-=[]\\;',./\"",
], ids=["words", "200-bytes", "punctuation"])
def test_banner_sent_at_once_then_the_mta_greeting(sw, text):
    line = b"220-" + text.encode() + b"\r\n"
    c = sw(["-d", "1", "--banner", text, *MTA])
    t_banner = c.client.recv_until(line) - c.t0
    t_greet = c.converse()
    assert t_greet - t_banner >= 0.8, "banner sent late"
    if not VALGRIND:
        assert t_banner < 0.8
    assert c.client.data == line + GREETING + BYE
    c.expect("pass", delay="1.000", waited=SECONDS)


@pytest.mark.parametrize("args", [["-d", "0"], ["-d", "20", "-A", "127.0.0.1"]])
def test_no_banner_for_clients_not_delayed(sw, args):
    c = sw(["-b", "not for you", *args, *MTA])
    c.converse()
    assert c.client.data == GREETING + BYE


# ------------------------------------------------- exec failure, statuses

@pytest.mark.parametrize("delay,word", [("0", "allow"), ("0.3", "pass")])
def test_exec_failure(sw, tmp_path, delay, word):
    missing = str(tmp_path / "no-such-mta")
    c = sw(["-d", delay, missing, "-bs"])
    assert c.client.read_all() == REPLY_UNAVAILABLE
    assert c.finish() == 111
    errors = c.errors()
    assert len(errors) == 1, c.log
    assert missing in errors[0] and "No such file or directory" in errors[0]
    assert c.verdict()[0] == word


def test_exec_failure_not_executable(sw, write):
    path = write("mta.sh", "#!/bin/sh\necho 220 never\n")
    c = sw(["-d", "0", path])
    assert c.client.read_all() == REPLY_UNAVAILABLE
    assert c.finish() == 111
    assert any(path in e and "Permission denied" in e for e in c.errors()), \
        c.log


@pytest.mark.parametrize("args,early", [
    (["-d", "0"], b""),
    (["-d", "0.3"], b""),
    (["-d", "20", "-x", "pass"], EHLO),
], ids=["allow", "pass", "early-pass"])
def test_exit_status_is_the_programs(sw, args, early):
    c = sw(args + MTA, env={"STANDIN_EXIT": "7"}, early=early)
    c.converse()
    assert c.rc == 7


def test_sigterm_during_the_wait(sw):
    c = sw(["-d", "20", "-b", "hold on", *MTA])
    c.client.recv_until(b"220-hold on\r\n")
    t = time.monotonic()
    c.proc.send_signal(signal.SIGTERM)
    c.wait(timeout=2 + SLACK)
    assert time.monotonic() - t < 2 + SLACK
    assert not c.ran()
    assert c.client.read_all() == b"220-hold on\r\n"
    assert not re.search(r"^sendwrap: (pass|allow) ", c.log, re.M)
