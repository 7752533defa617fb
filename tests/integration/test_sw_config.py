"""Configuration: usage errors, allowlist files that are missing or
have bad lines, -n, --compile, POSIX option parsing, -h and -V."""
import os
import re

import pytest

from sw_harness import (MTA, REPLY_UNAVAILABLE, SECONDS, SENDWRAP, SOON,
                        STANDIN)


# ----------------------------------------------------------- usage errors

USAGE = [
    (["-z", *MTA], "-z"),
    (["--bogus", *MTA], "--bogus"),
    (["-d", "soon", *MTA], "soon"),
    (["-d", "301", *MTA], "300"),           # the message gives the range
    (["-d", "300.001", *MTA], "300"),
    (["-d", "-1", *MTA], "-1"),
    (["--delay=2x", *MTA], "2x"),
    (["-d", "0.0001", *MTA], "0.0001"),
    (["-A", "10.0.0.1/33", *MTA], "10.0.0.1/33"),
    (["-A", "10.0.0.1/8", *MTA], "10.0.0.1/8"),        # host bits
    (["-A", "2001:db8::/129", *MTA], "2001:db8::/129"),
    (["-A", "mail.example.org", *MTA], "mail.example.org"),
    (["-A", "10.0.0.0/8 5", *MTA], "10.0.0.0/8 5"),
    (["-x", "maybe", *MTA], "maybe"),
    (["-l", "loud", *MTA], "loud"),
    (["-b", "", *MTA], None),
    (["-b", "x" * 201, *MTA], None),
    (["-b", "tab\there", *MTA], None),
    (["-b", "caf\u00e9", *MTA], None),
    (["-d"], "-d"),
    ([], None),
    (["-d", "0", "-A", "127.0.0.1"], None),    # no program
]


@pytest.mark.parametrize("args,mention", USAGE,
                         ids=[" ".join(a[:2])[:24] or "none" for a, _ in USAGE])
def test_usage_error(sw, args, mention):
    c = sw(args)
    # The client learns nothing about the configuration.
    assert c.client.read_all() == REPLY_UNAVAILABLE
    assert c.finish() == 100
    assert not c.ran()
    lines = c.log_lines()
    assert lines and lines == c.errors(), c.log
    if mention:
        assert any(mention in line for line in lines), c.log


def test_usage_error_banner_with_crlf(sw):
    c = sw(["-b", "evil\r\n250 ok", *MTA])
    assert c.client.read_all() == REPLY_UNAVAILABLE
    assert c.finish() == 100
    assert not c.ran()
    assert "sendwrap: error " in c.log


def test_usage_error_cannot_break_the_log_line(sw):
    c = sw(["-b", "evil\r\nsendwrap: pass ip=6.6.6.6", *MTA])
    c.finish()
    assert len(c.log_lines()) == 1, c.log


def test_usage_error_names_the_unknown_option_in_a_cluster(sw):
    c = sw(["-zn", *MTA])
    assert c.client.read_all() == REPLY_UNAVAILABLE
    assert c.finish() == 100
    message = c.errors()[0]
    assert "-z" in message and SENDWRAP not in message, c.log


@pytest.mark.parametrize("args", [["-d", "300"], ["-d", "0"],
                                  ["-d", "750ms"], ["-b", "x" * 200]])
def test_limits_accepted(plain, args):
    rc, out, err = plain(["-n", *args])
    assert rc == 0, out + err


# ------------------------------------------------ allowlist file problems

def test_missing_allowlist_file_logged_rest_applies(sw, write, tmp_path):
    missing = str(tmp_path / "missing.txt")
    good = write("good.txt", "127.0.0.1 0.3\n")
    c = sw(["-d", "20", "-a", missing, "-a", good, *MTA])
    t = c.converse()                       # mail still flows
    assert 0.29 <= t < 0.3 + SOON
    c.expect("pass", delay="0.300", waited=SECONDS, rule="127.0.0.1")
    errors = c.errors()
    assert len(errors) == 1 and missing in errors[0], c.log


def test_missing_allowlist_file_alone(sw, tmp_path):
    missing = str(tmp_path / "missing.txt")
    c = sw(["-d", "0.3", "-a", missing, *MTA])
    c.converse()
    assert c.rc == 0
    c.expect("pass", delay="0.300", waited=SECONDS)
    assert any(missing in e for e in c.errors()), c.log


def test_unreadable_allowlist_logged_rest_applies(sw, tmp_path):
    # A directory opens but cannot be read.
    c = sw(["-d", "20", "-a", str(tmp_path), "-A", "127.0.0.1", *MTA])
    assert c.converse() < SOON
    c.expect("allow", reason="allowlist", rule="127.0.0.1")
    assert any(str(tmp_path) in e for e in c.errors()), c.log


# Each bad line would match 127.0.0.1 (with a rule of its own) if it were
# taken; the good entry at the end is 127.0.0.0/8 with 0.3 s.
BAD_LINES = [
    "127.0.0.1/33",                  # prefix out of range
    "127.0.0.1/8",                   # host bits beyond the prefix
    "127.0.0.1/",                    # empty prefix
    "127.0.0.1/x",                   # junk prefix
    "127.0.0.1 0.3 extra",           # trailing junk
    "127.0.0.1 5x",                  # bad duration
    "127.0.0.1 301",                 # duration out of range
    "127.0.0.1 " + " " * 1000 + "0",  # over 1000 bytes
    "127.0.0.1\0 0",                 # NUL byte
    "localhost",                     # not an address
]


def bad_allowlist():
    text = "# first line\n" + "\n".join(BAD_LINES) + "\n127.0.0.0/8 0.3\n"
    return text, list(range(2, 2 + len(BAD_LINES)))


def test_bad_lines_logged_with_file_and_line_rest_applies(sw, write):
    text, bad = bad_allowlist()
    path = write("bad.txt", text)
    c = sw(["-d", "20", "-a", path, *MTA])
    t = c.converse()
    assert 0.29 <= t < 0.3 + SOON
    c.expect("pass", delay="0.300", waited=SECONDS, rule="127.0.0.0/8")
    errors = c.errors()
    for n in bad:
        assert any(e.startswith("sendwrap: error %s:%d: " % (path, n))
                   for e in errors), (n, c.log)


def test_bad_lines_logged_on_every_connection(sw, write):
    path = write("bad.txt", "10.0.0.0/33\n127.0.0.1\n")
    for _ in range(2):
        c = sw(["-d", "20", "-a", path, *MTA])
        c.converse()
        c.expect("allow", reason="allowlist", rule="127.0.0.1")
        assert [e for e in c.errors() if "%s:1: " % path in e], c.log


def test_crlf_allowlist(sw, write):
    path = write("crlf.txt", "10.0.0.0/8\r\n127.0.0.1 0.3\r\n")
    c = sw(["-d", "20", "-a", path, *MTA])
    c.converse()
    c.expect("pass", delay="0.300", waited=SECONDS, rule="127.0.0.1")
    assert c.errors() == []


# -------------------------------------------------------------------- -n

def test_check_valid_configuration(plain, write):
    good = write("good.txt", "# comment\n10.0.0.0/8\n127.0.0.1 0.3\n\n"
                 "2001:db8::/32 5s  # v6\n")
    rc, out, err = plain(["-n", "-d", "2.5", "-x", "tempfail", "-b",
                          "mx.example ESMTP", "-A", "192.0.2.0/24", "-a",
                          good, STANDIN, "-bs"])
    assert rc == 0, out + err
    assert "2.500" in out
    assert "tempfail" in out
    assert "mx.example ESMTP" in out
    assert "192.0.2.0/24" in out
    assert re.search(re.escape(good) + r"\D*3 entries", out), out
    assert not re.search(r"^\S+:\d+: ", out + err, re.M)


def test_check_long_option_and_no_program(plain):
    rc, out, err = plain(["--check"])
    assert rc == 0, out + err
    assert "5.000" in out


def test_check_reports_every_error(plain, write, tmp_path):
    text, bad = bad_allowlist()
    path = write("bad.txt", text + "\n".join(BAD_LINES) + "\n")
    bad += list(range(bad[-1] + 2, bad[-1] + 2 + len(BAD_LINES)))
    missing = str(tmp_path / "missing.txt")
    rc, out, err = plain(["-n", "-a", path, "-a", missing])
    assert rc == 100
    both = out + err
    for n in bad:
        assert re.search(r"^%s:%d: " % (re.escape(path), n), both, re.M), \
            (n, both)
    assert re.search(r"^%s\b.*\S" % re.escape(missing), both, re.M), both


@pytest.mark.parametrize("args", [["-d", "soon"], ["-A", "10.0.0.1/8"],
                                  ["-b", ""], ["-x", "maybe"]])
def test_check_bad_options(plain, args):
    rc, out, err = plain(["-n", *args])
    assert rc == 100


# -------------------------------------------------------------- --compile

def test_compiled_allowlist_behaves_like_the_text(sw, plain, write, tmp_path):
    text = write("list.txt", "# compiled\n10.0.0.0/8\n127.0.0.0/8 0.3\n"
                 "127.0.0.1\n2001:db8::/32 1\n")
    cdb = str(tmp_path / "list.cdb")
    rc, out, err = plain(["--compile", text, cdb])
    assert rc == 0, out + err
    assert os.path.exists(cdb)
    rc, out, err = plain(["-n", "-a", cdb])
    assert rc == 0 and re.search(r"\b4 entries", out), out + err
    # first match in the text's order, with its delay
    for path in (text, cdb):
        c = sw(["-d", "20", "-a", path, *MTA])
        c.converse()
        c.expect("pass", delay="0.300", waited=SECONDS, rule="127.0.0.0/8")
        assert c.errors() == []


def test_compiled_allowlist_entry_without_delay(sw, plain, write, tmp_path):
    text = write("list.txt", "10.0.0.0/8 3\n127.0.0.1\n127.0.0.0/8 0.3\n")
    cdb = str(tmp_path / "list.cdb")
    assert plain(["--compile", text, cdb])[0] == 0
    c = sw(["-d", "20", "-a", cdb, *MTA])
    assert c.converse() < SOON
    c.expect("allow", reason="allowlist", rule="127.0.0.1")


def test_compiled_allowlist_no_match(sw, plain, write, tmp_path):
    text = write("list.txt", "10.0.0.0/8\n::/0\n")
    cdb = str(tmp_path / "list.cdb")
    assert plain(["--compile", text, cdb])[0] == 0
    c = sw(["-d", "0.3", "-a", cdb, *MTA])
    c.converse()
    c.expect("pass", delay="0.300", waited=SECONDS)


def test_compile_refuses_a_bad_text(plain, write, tmp_path):
    text = write("bad.txt", "127.0.0.1\n10.0.0.0/33\n")
    cdb = str(tmp_path / "bad.cdb")
    rc, out, err = plain(["--compile", text, cdb])
    assert rc == 100
    assert re.search(r"^%s:2: " % re.escape(text), out + err, re.M), out + err
    assert not [n for n in os.listdir(tmp_path) if n.startswith("bad.cdb")]


def test_not_a_compiled_allowlist(sw, write):
    fake = write("fake.cdb", "127.0.0.1\n")
    good = write("good.txt", "127.0.0.1 0.3\n")
    c = sw(["-d", "20", "-a", fake, "-a", good, *MTA])
    c.converse()
    c.expect("pass", delay="0.300", waited=SECONDS, rule="127.0.0.1")
    assert any(fake in e for e in c.errors()), c.log


# A compiled allowlist made by an older sendwrap (tinycdb), kept with the
# unit tests.
OLD_FORMAT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          os.pardir, "unit", "data", "old-format.cdb")


def test_old_compiled_format_is_named(sw, plain, write):
    good = write("good.txt", "127.0.0.1 0.3\n")
    c = sw(["-d", "20", "-a", OLD_FORMAT, "-a", good, *MTA])
    c.converse()
    c.expect("pass", delay="0.300", waited=SECONDS, rule="127.0.0.1")
    want = ("%s: not a compiled sendwrap allowlist (make one with "
            "sendwrap --compile)" % OLD_FORMAT)
    assert any(e.endswith(want) for e in c.errors()), c.log
    rc, out, err = plain(["-n", "-a", OLD_FORMAT])
    assert rc == 100 and want in out + err, out + err


def test_compile_drops_repeats_keeps_first_match(sw, plain, write, tmp_path):
    text = write("list.txt", "127.0.0.1 0.3\n127.0.0.0/8\n127.0.0.1 5\n"
                 "127.0.0.1 0.3\n")
    cdb = str(tmp_path / "list.cdb")
    rc, out, err = plain(["--compile", text, cdb])
    assert rc == 0 and re.search(r"\b4 entries", out), out + err
    c = sw(["-d", "20", "-a", cdb, *MTA])
    c.converse()
    c.expect("pass", delay="0.300", waited=SECONDS, rule="127.0.0.1")


# --------------------------------------------------- POSIX option parsing

@pytest.mark.parametrize("args,argv", [
    (["-d", "0", STANDIN, "-bs"], ["-bs"]),
    (["-d", "0", "--", STANDIN, "-bs"], ["-bs"]),
    (["-d", "0", STANDIN, "-d", "7", "-x", "drop"], ["-d", "7", "-x", "drop"]),
    (["-d", "0", "--", STANDIN, "--", "-d", "7"], ["--", "-d", "7"]),
    (["-d", "0", STANDIN], []),
], ids=["bs", "dashdash-bs", "program-options", "dashdash-twice", "no-args"])
def test_options_stop_at_the_program(sw, args, argv):
    c = sw(args)
    assert c.converse() < SOON
    assert c.record()["argv"] == argv
    c.expect("allow", reason="delay")      # -d 7 was not taken by sendwrap


def test_help_and_version(plain):
    rc, out, err = plain(["-h"])
    assert rc == 0 and "usage" in out.lower()
    rc, out, err = plain(["--version"])
    assert rc == 0 and re.match(r"sendwrap \d+\.\d+", out), out
