"""What the program inherits: descriptors, signal dispositions and mask,
environment; and where the log goes (never to the client)."""
import os
import signal

import pytest

from proclib import fd_target
from sw_harness import (BYE, GREETING, MTA, REPLY_REJECT, REPLY_UNAVAILABLE,
                        SECONDS, VALGRIND, VALGRIND_ENV, needs_ipv6, sig_bits)

EHLO = b"EHLO early.example\r\n"


def _scenarios(write, tmp_path, plain):
    """(args, options) for each way through sendwrap to the exec."""
    good = write("good.txt", "10.0.0.0/8\n127.0.0.1 0.3\n")
    bad = write("bad.txt", "10.0.0.0/33\n127.0.0.2\n")
    cdb = str(tmp_path / "good.cdb")
    assert plain(["--compile", good, cdb])[0] == 0
    missing = str(tmp_path / "missing.txt")
    return {
        "pass": (["-d", "0.3"], {}),
        "allow": (["-d", "0"], {}),
        "banner": (["-d", "0.3", "-b", "hello"], {}),
        "allowlist-text": (["-d", "20", "-a", good], {}),
        "allowlist-errors": (["-d", "0.3", "-a", missing, "-a", bad], {}),
        "allowlist-cdb": (["-d", "20", "-a", cdb], {}),
        "allowlist-cdb-allow": (["-d", "20", "-a", cdb, "-A", "127.0.0.1"],
                                {}),
        "syslog": (["-d", "0.3", "-l", "syslog", "-a", missing],
                   {"env": {"GREETDELAY": "bogus"}}),
        "early-pass": (["-d", "20", "-x", "pass", "-a", good],
                       {"early": EHLO}),
    }


SCENARIOS = ["pass", "allow", "banner", "allowlist-text", "allowlist-errors",
             "allowlist-cdb", "allowlist-cdb-allow", "syslog", "early-pass"]


# ------------------------------------------------------------ descriptors

@pytest.mark.parametrize("name", SCENARIOS)
def test_program_gets_exactly_the_inherited_fds(sw, write, tmp_path, plain,
                                                name):
    args, opts = _scenarios(write, tmp_path, plain)[name]
    r, w = os.pipe()
    extra = open(tmp_path / "fd7", "ab")
    try:
        want6, want7 = fd_target(r), fd_target(extra.fileno())
        c = sw(args + MTA, extra_fds={6: r, 7: extra.fileno()}, **opts)
    finally:
        os.close(r)
        os.close(w)
        extra.close()
    c.converse()
    sock = "socket:[%d]" % c.socket_inode
    assert c.mta_fds() == {0: sock, 1: sock, 2: str(c.stderr_path),
                           6: want6, 7: want7}
    assert c.record()["fd0_blocking"] is True


@pytest.mark.parametrize("name", ["pass", "allowlist-errors", "syslog",
                                  "early-pass"])
def test_program_gets_no_fd2_when_fd2_was_closed(sw, write, tmp_path, plain,
                                                 name):
    # With fd 2 closed, the first descriptor sendwrap opens (a file, the
    # syslog socket) would land on 2 and survive the exec.
    args, opts = _scenarios(write, tmp_path, plain)[name]
    env = dict(opts.pop("env", {}), GREETDELAY="bogus")
    c = sw(args + MTA, fd2="closed", env=env, **opts)
    c.converse()
    sock = "socket:[%d]" % c.socket_inode
    assert c.mta_fds() == {0: sock, 1: sock}


def test_inetd_fds(sw):
    c = sw(["-d", "0.3", *MTA], fd2="socket")
    c.converse()
    sock = "socket:[%d]" % c.socket_inode
    assert c.mta_fds() == {0: sock, 1: sock, 2: sock}


# ---------------------------------------------------------------- signals

SIGNALS = [
    ((), ()),
    ((signal.SIGPIPE,), ()),
    ((signal.SIGPIPE, signal.SIGHUP, signal.SIGALRM),
     (signal.SIGUSR1, signal.SIGUSR2, signal.SIGQUIT)),
    ((), (signal.SIGUSR1, signal.SIGTERM)),
]


@pytest.mark.parametrize("ignore,block", SIGNALS,
                         ids=["none", "SIGPIPE-ignored", "both", "blocked"])
@pytest.mark.parametrize("args,early", [
    (["-d", "0"], b""),
    (["-d", "0.3"], b""),
    (["-d", "20", "-x", "pass"], EHLO),
], ids=["allow", "pass", "early-pass"])
def test_signal_dispositions_and_mask_unchanged(sw, ignore, block, args,
                                                early):
    c = sw(args + MTA, ignore=ignore, block=block, early=early)
    c.converse()
    rec, start = c.record(), c.spawn_state()
    assert start["SigIgn"] & sig_bits(ignore) == sig_bits(ignore)
    assert start["SigBlk"] == sig_bits(block)
    assert hex(rec["SigIgn"]) == hex(start["SigIgn"])
    assert hex(rec["SigBlk"]) == hex(start["SigBlk"])


# ------------------------------------------------------------ environment

ENV = {
    "FOO": "bar",
    "EMPTY": "",
    "SPACES": " a  b ",
    "NEWLINE": "x\ny",
    "EQUALS": "a=b=c",
    "LANG": "C.UTF-8",
    "UTF8": "caf\u00e9",
}
UCSPI_ENV = {
    "GREETDELAY": "0.3",
    "RELAYCLIENT": "",
    "PROTO": "TCP",
    "TCPREMOTEIP": "127.0.0.1",
    "TCPREMOTEPORT": "1234",
    "TCPLOCALIP": "127.0.0.1",
    "TCPLOCALPORT": "25",
}


@pytest.mark.parametrize("args,extra,early", [
    (["-d", "0"], {}, b""),
    (["-d", "20"], UCSPI_ENV, b""),
    (["-d", "20", "-A", "127.0.0.1"], {}, b""),
    (["-d", "20", "-x", "pass"], {}, EHLO),
], ids=["allow", "GREETDELAY-UCSPI", "allowlist", "early-pass"])
def test_environment_passed_unchanged(sw, args, extra, early):
    env = dict(ENV, **extra)
    c = sw(args + MTA, env=env, early=early)
    c.converse()
    got = c.record()["environ"]
    want = [("%s=%s" % kv).encode().decode("latin-1")
            for kv in c.env.items()]
    if VALGRIND:
        got = sorted(e for e in got if e.split("=")[0] not in VALGRIND_ENV)
        want = sorted(want)
    assert got == want


# ---------------------------------------------------------------- logging

@pytest.mark.parametrize("peer", ["ipv4", pytest.param("ipv6",
                                                       marks=needs_ipv6)])
@pytest.mark.parametrize("case", ["pass", "allow", "early-pass"])
def test_inetd_no_log_byte_reaches_the_client(sw, tmp_path, peer, case):
    # fd 2 is the client socket: -l auto must not write a byte there, even
    # with error lines to log.
    args = {"pass": ["-d", "0.3"], "allow": ["-d", "0"],
            "early-pass": ["-d", "20", "-x", "pass"]}[case]
    c = sw(args + ["-a", str(tmp_path / "missing.txt"), *MTA], peer=peer,
           fd2="socket", env={"GREETDELAY": "bogus"},
           early=EHLO if case == "early-pass" else b"")
    c.converse()
    assert c.client.data == GREETING + BYE


@pytest.mark.parametrize("args,early,reply,rc", [
    (["-d", "20"], EHLO, REPLY_REJECT, 0),
    (["-z"], b"", REPLY_UNAVAILABLE, 100),
    (["-d", "soon"], b"", REPLY_UNAVAILABLE, 100),
    (["-d", "0", "/nonexistent/mta"], b"", REPLY_UNAVAILABLE, 111),
], ids=["early", "unknown-option", "bad-delay", "exec-failure"])
def test_inetd_only_the_reply_reaches_the_client(sw, tmp_path, args, early,
                                                 reply, rc):
    c = sw(args + ["-a", str(tmp_path / "missing.txt"), *MTA], fd2="socket",
           early=early)
    assert c.client.read_all() == reply
    assert c.finish() == rc
    assert not c.ran()


def test_auto_logs_to_a_unix_socket_on_fd2(sw):
    # The journal's stream (AF_UNIX) is not the client: auto = stderr.
    c = sw(["-d", "0.3", *MTA], fd2="unix")
    c.converse()
    assert ("sendwrap: pass ip=127.0.0.1 port=%s delay=0.300 waited="
            % c.client_port) in c.unix_text
    assert c.client.data == GREETING + BYE


@pytest.mark.parametrize("where", ["none", "syslog"])
def test_log_none_and_syslog_write_nothing_to_stderr(sw, tmp_path, where):
    c = sw(["-l", where, "-d", "0.3", "-a", str(tmp_path / "missing.txt"),
            *MTA], env={"GREETDELAY": "bogus"})
    c.converse()
    assert c.rc == 0
    assert c.log == ""


@pytest.mark.parametrize("where", ["none", "syslog"])
def test_log_none_and_syslog_early(sw, where):
    c = sw(["--log", where, "-d", "20", *MTA], early=EHLO)
    assert c.client.read_all() == REPLY_REJECT
    assert c.finish() == 0
    assert c.log == ""


@pytest.mark.parametrize("where", [["-l", "stderr"], ["--log=stderr"], []])
def test_log_stderr_prefix(sw, tmp_path, where):
    missing = str(tmp_path / "missing.txt")
    c = sw(where + ["-d", "0.3", "-a", missing, *MTA],
           env={"GREETDELAY": "bogus"})
    c.converse()
    lines = c.log_lines()                 # each checked for the prefix
    assert len(lines) == 3, c.log
    c.expect("pass", delay="0.300", waited=SECONDS)
