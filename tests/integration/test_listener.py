"""The listener front end (--listen): one sendwrap process accepts every
connection on loopback and hands only the clients that pass to the
stand-in MTA.  Verdicts, limits, the child's state (UCSPI environment,
descriptors, signals), SIGHUP and SIGTERM, the decoy modes in the loop."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import proclib  # noqa: E402  tests/proclib.py

from sw_harness import (IS_ROOT, MTA, NOBODY, REPLY_REJECT,
                        REPLY_UNAVAILABLE, SECONDS, SENDWRAP, SLACK, T,
                        VALGRIND, VALGRIND_CMD, Client, base_env,
                        check_fields, check_tools, needs_ipv6, parse_line,
                        sig_bits)

REPLY_TOO_MANY = b"421 4.3.2 Too many connections, try again later\r\n"
REPLY_PER_IP = b"421 4.7.0 Too many connections from your address, " \
    b"try again later\r\n"
REPLY_SHUTDOWN = b"421 4.3.2 Service shutting down, try again later\r\n"
SOON = 2.0 + SLACK
START = 10.0 + SLACK


class Listener:
    """sendwrap --listen on a free loopback port, logging to a file."""

    def __init__(self, workdir, args, addrs=("127.0.0.1:0",), env=None,
                 groups=None):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / "log"
        env_full = base_env(self.dir)
        env_full.update(env or {})
        pre = (VALGRIND_CMD + ["--log-file=%s/valgrind.%%p" % self.dir]
               if VALGRIND else [])
        listen = []
        for a in addrs:
            listen += ["--listen", a]
        cmd = pre + [SENDWRAP] + listen + ["-l", "stderr"] + list(args)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=self.log, env=env_full,
                                     start_new_session=True,
                                     extra_groups=groups)
        try:
            self.addrs = self.wait_listening()
        except BaseException:
            self.stop()
            raise

    def wait_listening(self):
        deadline = time.monotonic() + START
        while time.monotonic() < deadline:
            for verdict, f in self.lines():
                if verdict == "listening":
                    out = []
                    for a in f["on"].split(","):
                        host, _, port = a.rpartition(":")
                        out.append((host.strip("[]"), int(port)))
                    return out
            assert self.proc.poll() is None, self.text()
            time.sleep(0.02)
        raise AssertionError("not listening:\n" + self.text())

    def text(self):
        return self.log_path.read_text(errors="replace")

    def lines(self):
        out = []
        for line in self.text().splitlines():
            # error lines are free text (errors() reads them)
            if line.startswith("sendwrap: ") and \
                    not line.startswith("sendwrap: error "):
                out.append(parse_line(line))
        return out

    def verdicts(self, word):
        return [f for v, f in self.lines() if v == word]

    def errors(self):
        return [line for line in self.text().splitlines()
                if line.startswith("sendwrap: error ")]

    def wait_for(self, word, n=1, timeout=T):
        deadline = time.monotonic() + timeout
        while len(self.verdicts(word)) < n:
            assert time.monotonic() < deadline, \
                "no %d %r lines within %.1f s:\n%s" % (n, word, timeout,
                                                       self.text())
            time.sleep(0.01)
        return self.verdicts(word)

    def connect(self, i=0, source=None):
        host, port = self.addrs[i]
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        if source:
            s.bind((source, 0))
        s.settimeout(T)
        s.connect((host, port))
        s.settimeout(None)
        return Client(sock=s)

    def record(self):
        p = self.dir / "record.json"
        deadline = time.monotonic() + T
        while not p.exists():
            assert time.monotonic() < deadline, "the MTA never ran"
            time.sleep(0.01)
        while True:
            try:
                return json.loads(p.read_text())
            except ValueError:
                assert time.monotonic() < deadline
                time.sleep(0.01)

    def ran(self):
        return (self.dir / "record.json").exists() or \
            (self.dir / "environ").exists()

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(T)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        check_tools(self.dir, self.text())
        return self.proc.returncode


@pytest.fixture
def listener(tmp_path):
    started = []

    def start(args, **kw):
        lst = Listener(tmp_path / ("l%d" % len(started)), args, **kw)
        started.append(lst)
        return lst

    yield start
    for lst in started:
        lst.stop()


def greeted(c, timeout=T):
    t0 = time.monotonic()
    c.recv_until(b"220 standin\r\n", timeout)
    return time.monotonic() - t0


# ------------------------------------------------------------ verdicts

def test_patient_client_passes_and_mta_gets_a_clean_start(listener):
    lst = listener(["-d", "1", *MTA])
    t0 = time.monotonic()
    c = lst.connect()
    c.recv_until(b"220 standin\r\n")
    assert 0.9 <= time.monotonic() - t0 < 1 + SOON
    c.send(b"QUIT\r\n")
    c.recv_until(b"221 bye\r\n")
    rec = lst.record()
    host, port = lst.addrs[0]
    env = dict(e.split("=", 1) for e in rec["environ"])
    assert env["PROTO"] == "TCP"
    assert env["TCPREMOTEIP"] == "127.0.0.1"
    assert env["TCPREMOTEPORT"] == c.port
    assert env["TCPLOCALIP"] == "127.0.0.1"
    assert env["TCPLOCALPORT"] == str(port)
    assert env["TCP6REMOTEIP"] == "::ffff:127.0.0.1"
    # Only the socket on 0 and 1 and the log on 2; no signal blocked or
    # ignored; the socket blocking, as tcpserver leaves it.
    fds = {k: v for k, v in rec["fds"].items()
           if not (VALGRIND and v.startswith(str(lst.dir / "valgrind.")))}
    assert sorted(fds) == ["0", "1", "2"], rec["fds"]
    assert rec["fds"]["0"] == rec["fds"]["1"]
    assert rec["fds"]["0"].startswith("socket:")
    # (The C library's own signals 32 and 33 keep what the test run had.)
    assert rec["SigBlk"] == 0, rec
    assert rec["SigIgn"] & ~sig_bits([32, 33]) == 0, rec
    assert rec["fd0_blocking"]
    check_fields(lst.wait_for("pass")[0],
                 {"ip": "127.0.0.1", "port": c.port, "delay": "1.000",
                  "waited": SECONDS})


def test_early_talker_refused_without_a_child(listener):
    lst = listener(["-d", "5", *MTA])
    c = lst.connect()
    c.send(b"EHLO bot\r\n")
    assert c.read_all(timeout=SOON) == REPLY_REJECT
    f = lst.wait_for("early")[0]
    assert f["first"] == '"EHLO bot\\r\\n"' and f["action"] == "reject"
    assert not lst.ran()


def test_hangup_and_reset_are_noted(listener):
    lst = listener(["-d", "5", *MTA])
    lst.connect().close()
    lst.connect().abort()
    hs = lst.wait_for("hangup", 2)
    assert sorted(f["how"] for f in hs) == ["eof", "reset"]
    assert not lst.ran()


def test_allowlisted_client_greeted_at_once(listener):
    lst = listener(["-d", "20", "-A", "127.0.0.1", *MTA])
    assert greeted(lst.connect()) < SOON
    f = lst.wait_for("allow")[0]
    assert f["reason"] == "allowlist" and f["rule"] == "127.0.0.1"


def test_cache_greets_the_second_connection_at_once(listener, tmp_path):
    lst = listener(["-d", "1", "-c", str(tmp_path / "c.mdb"), *MTA])
    assert greeted(lst.connect()) >= 0.9
    lst.wait_for("pass")
    assert greeted(lst.connect()) < 0.9
    lst.wait_for("cached")


@needs_ipv6
def test_ipv6_listener(listener):
    lst = listener(["-d", "0.5", *MTA], addrs=("[::1]:0",))
    c = lst.connect()
    greeted(c)
    c.send(b"QUIT\r\n")
    env = dict(e.split("=", 1) for e in lst.record()["environ"])
    assert env["PROTO"] == "TCP6" and env["TCPREMOTEIP"] == "::1"
    assert env["TCP6REMOTEIP"] == "::1"


def test_pass_action_hands_the_early_input_over_unread(listener):
    lst = listener(["-d", "5", "-x", "pass", *MTA])
    c = lst.connect()
    c.send(b"EHLO early\r\n")
    greeted(c)
    c.send(b"QUIT\r\n")
    assert lst.record()["before"] == "EHLO early\r\n"


def test_program_that_cannot_run_gets_421(listener, tmp_path):
    lst = listener(["-d", "0", str(tmp_path / "no-such-mta")])
    c = lst.connect()
    assert c.read_all() == REPLY_UNAVAILABLE
    assert any("cannot run" in e for e in lst.errors()), lst.text()


# ------------------------------------------------------------ limits

def test_max_clients(listener):
    lst = listener(["-d", "10", "--max-clients", "2", *MTA])
    held = [lst.connect(), lst.connect()]
    lst_wait_clients(lst, held)
    third = lst.connect()
    assert third.read_all(timeout=SOON) == REPLY_TOO_MANY
    assert lst.wait_for("busy")[0]["limit"] == "max-clients"
    for c in held:
        c.close()


def lst_wait_clients(lst, clients):
    # Nothing to read from a held client: give the loop a moment to accept.
    time.sleep(0.2 + SLACK / 10)


def test_per_ip(listener):
    lst = listener(["-d", "10", "--per-ip", "2", *MTA])
    held = [lst.connect(source="127.0.0.5"), lst.connect(source="127.0.0.5")]
    lst_wait_clients(lst, held)
    assert lst.connect(source="127.0.0.5").read_all(timeout=SOON) == \
        REPLY_PER_IP
    assert lst.wait_for("busy")[0]["limit"] == "per-ip"
    # Another address is not affected.
    other = lst.connect(source="127.0.0.6")
    other.quiet_for(0.3)
    for c in held + [other]:
        c.close()


def in_session(lst, source):
    """A client of source that passed (-d 0) and sits in its program."""
    c = lst.connect(source=source)
    greeted(c)
    return c


def leave(c):
    c.send(b"QUIT\r\n")
    c.recv_until(b"221 bye\r\n")
    c.close()


def test_per_ip_counts_clients_in_their_programs(listener):
    """--per-ip bounds every connection of an address, the ones its
    programs serve too: they do not stop counting at the handover."""
    lst = listener(["-d", "0", "--per-ip", "2", *MTA])
    sessions = [in_session(lst, "127.0.0.5"), in_session(lst, "127.0.0.5")]
    assert lst.connect(source="127.0.0.5").read_all(timeout=SOON) == \
        REPLY_PER_IP
    assert lst.wait_for("busy")[0]["limit"] == "per-ip"
    leave(sessions[0])
    # Its place is back once its program has ended (and been reaped).
    deadline = time.monotonic() + T
    while True:
        c = lst.connect(source="127.0.0.5")
        c.recv_until(b"\r\n")
        if c.data == b"220 standin\r\n":
            break
        assert c.data == REPLY_PER_IP, c.data
        assert time.monotonic() < deadline, "the place never came back"
        time.sleep(0.05)
    for c in (sessions[1], c):
        leave(c)


def test_one_address_cannot_take_every_program(listener):
    """With --max-children 3 one address gets its share (1 here) and
    waits for more; another address is greeted at once."""
    lst = listener(["-d", "0", "--max-children", "3", "--per-ip-children",
                    "1", *MTA])
    first = in_session(lst, "127.0.0.5")
    second = lst.connect(source="127.0.0.5")
    second.quiet_for(0.5)            # its share is taken: queued
    other = lst.connect(source="127.0.0.6")
    assert greeted(other) < SOON
    leave(first)
    greeted(second)                  # its own program ended: its turn
    for c in (second, other):
        leave(c)


def test_the_queue_serves_an_address_without_a_program_first(listener):
    """A place that frees goes to the queued client whose address has no
    program, ahead of one queued earlier whose address has several."""
    lst = listener(["-d", "0", "--max-children", "2", "--per-ip-children",
                    "2", *MTA])
    busy = [in_session(lst, "127.0.0.5"), in_session(lst, "127.0.0.5")]
    earlier = lst.connect(source="127.0.0.5")
    earlier.quiet_for(0.3)           # queued first
    later = lst.connect(source="127.0.0.6")
    later.quiet_for(0.3)             # queued second
    leave(busy[0])
    assert greeted(later) < SOON
    earlier.quiet_for(0.3)           # still waiting: no place
    leave(busy[1])
    greeted(earlier)
    for c in (later, earlier):
        leave(c)


def test_one_address_cannot_fill_the_queue(listener):
    lst = listener(["-d", "0", "--max-children", "1", "--per-ip-children",
                    "1", *MTA])
    first = in_session(lst, "127.0.0.5")
    queued = lst.connect(source="127.0.0.5")
    queued.quiet_for(0.3)
    assert lst.connect(source="127.0.0.5").read_all(timeout=SOON) == \
        REPLY_PER_IP
    assert lst.wait_for("busy")[0]["limit"] == "per-ip-children"
    other = lst.connect(source="127.0.0.6")
    other.quiet_for(0.3)             # queued: the one place is taken
    leave(first)
    greeted(queued)                  # neither runs one now: the oldest
    other.quiet_for(0.3)
    leave(queued)
    greeted(other)
    leave(other)


def test_max_children_queues_a_passing_client(listener):
    lst = listener(["-d", "0", "--max-children", "1", *MTA])
    first = lst.connect()
    greeted(first)
    second = lst.connect()
    second.quiet_for(0.5)            # waits for the first child to end
    first.send(b"QUIT\r\n")
    first.recv_until(b"221 bye\r\n")
    greeted(second)


# ------------------------------------------------------------ signals

def test_sighup_reloads_and_keeps_the_old_list_on_a_bad_one(listener,
                                                             tmp_path):
    allow = tmp_path / "allow"
    allow.write_text("127.0.0.9\n")
    lst = listener(["-d", "20", "-a", str(allow), *MTA])
    c = lst.connect()
    c.quiet_for(0.3)                   # 127.0.0.1 is not on it
    c.close()
    allow.write_text("127.0.0.1\n")
    lst.signal(signal.SIGHUP)
    lst.wait_for("reload")
    assert greeted(lst.connect()) < SOON
    allow.write_text("127.0.0.1/40\n")     # a bad line: keep the old list
    lst.signal(signal.SIGHUP)
    deadline = time.monotonic() + T
    while not any("not reloaded" in e for e in lst.errors()):
        assert time.monotonic() < deadline, lst.text()
        time.sleep(0.02)
    assert any("127.0.0.1/40" in e or ":1:" in e for e in lst.errors())
    assert greeted(lst.connect()) < SOON


def test_sigterm_tells_waiting_clients_and_lets_a_session_finish(listener):
    lst = listener(["-d", "10", "-A", "127.0.0.2", *MTA])
    session = lst.connect(source="127.0.0.2")
    greeted(session)
    waiting = lst.connect()
    waiting.quiet_for(0.2)
    lst.signal(signal.SIGTERM)
    assert waiting.read_all(timeout=SOON) == REPLY_SHUTDOWN
    assert lst.wait_for("busy")[0]["limit"] == "shutdown"
    # The session goes on, and the listener waits for it.
    assert lst.proc.poll() is None
    with pytest.raises(OSError):
        lst.connect()
    session.send(b"QUIT\r\n")
    session.recv_until(b"221 bye\r\n")
    assert lst.proc.wait(T) == 0


# ------------------------------------------------------------ decoys

def test_tarpit_in_the_loop(listener):
    lst = listener(["--tarpit", "--tarpit-interval", "200ms",
                    "--tarpit-max", "1s", "-b", "hold on"])
    c = lst.connect()
    data = c.read_all(timeout=1 + SOON)
    lines = data.split(b"\r\n")[:-1]
    assert 4 <= len(lines) <= 7 and set(lines) == {b"220-hold on"}, data
    f = lst.wait_for("tarpit")[0]
    assert f["end"] == "max-reached" and float(f["held"]) >= 1.0


def test_tempfail_responder_after_the_wait(listener):
    lst = listener(["--tempfail", "-d", "0.3"])
    c = lst.connect()
    c.recv_until(b"\r\n")
    assert c.data.startswith(b"220 ")
    c.send(b"EHLO me\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nQUIT\r\n")
    c.read_all()
    assert b"451 4.7.1" in c.data and c.data.endswith(b"221 2.0.0 Bye\r\n")
    f = lst.wait_for("decoy")[0]
    assert f["quit"] == "yes" and f["helo"] == '"me"'


# ------------------------------------------------------------ a crowd

def test_crowd_of_waiters_and_early_talkers(listener, tmp_path):
    """300 clients held at once, then 200 early talkers: every talker is
    refused and no child runs for any of them; the waiters all pass."""
    runs = tmp_path / "runs"
    mta = ["/bin/sh", "-c", 'echo >> "$0"; printf "220 standin\\r\\n"; '
           'read line', str(runs)]
    lst = listener(["-d", "2", "--per-ip", "1000", "--max-children", "400",
                    *mta])
    waiters = [lst.connect(source="127.0.1.%d" % (i % 200 + 1))
               for i in range(300)]
    talkers = []
    for i in range(200):
        c = lst.connect(source="127.0.2.%d" % (i % 200 + 1))
        c.send(b"EHLO bot\r\n")
        talkers.append(c)
    for c in talkers:
        assert c.read_all(timeout=SOON + 5) == REPLY_REJECT
    assert len(lst.wait_for("early", 200)) == 200
    assert not runs.exists()
    for c in waiters:
        c.recv_until(b"220 standin\r\n", timeout=30)
        c.send(b"QUIT\r\n")
    assert len(lst.wait_for("pass", 300, timeout=30)) == 300
    assert len(runs.read_text().splitlines()) == 300


# ------------------------------------------------------------ privileges

OTHER_GID = 65532           # not NOBODY's own: -g is the group, not -u's


@pytest.mark.skipif(not IS_ROOT, reason="gives up root")
@pytest.mark.parametrize("how", ["-u -g", "-U"])
def test_listener_and_its_programs_keep_only_the_given_ids(listener,
                                                            shared, how):
    """Started as root (with root's groups), the listener and the MTA it
    starts run as exactly the user and the one group given: every uid and
    gid, and no supplementary group but that one."""
    work = shared / "ids"
    work.mkdir()
    work.chmod(0o777)           # for the MTA, as the user given
    if how == "-U":
        args, env = ["-U"], {"UID": str(NOBODY), "GID": str(OTHER_GID)}
    else:
        args, env = ["-u", str(NOBODY), "-g", str(OTHER_GID)], None
    # Groups beside root's, given to the listener to be dropped.
    lst = Listener(work, ["-d", "0"] + args + MTA, env=env,
                   groups=[0, 4, 27])
    try:
        want = {"Uid": [NOBODY] * 4, "Gid": [OTHER_GID] * 4,
                "Groups": [OTHER_GID]}
        assert proclib.ids(proclib.status(lst.proc.pid)) == want
        c = lst.connect()
        greeted(c)
        c.send(b"QUIT\r\n")
        assert lst.record()["ids"] == want
    finally:
        assert lst.stop() == 0, lst.text()


@pytest.mark.skipif(not IS_ROOT, reason="gives up root")
@pytest.mark.parametrize("uid,gid,way", [(0, 0, "setuid(0)"),
                                         (NOBODY, 0, "setgid(0)")])
def test_a_listener_that_could_become_root_again_stops(plain, uid, gid,
                                                        way):
    """Root's user or group kept: the listener says which call still
    works and exits 111 before it accepts anything."""
    rc, out, err = plain(["--listen", "127.0.0.1:0", "-l", "stderr",
                          "-u", str(uid), "-g", str(gid), "/bin/true"])
    assert rc == 111, (out, err)
    assert "error listener: root not given up: %s still works" % way in err
    assert "listening" not in err


# ------------------------------------------------------------ usage

@pytest.mark.parametrize("args", [
    ["--max-clients", "5", "/bin/true"],
    ["--per-ip", "5", "/bin/true"],
    ["-u", "5", "/bin/true"],
    ["--listen", "127.0.0.1:25", "-u", "5", "/bin/true"],
    ["--listen", "127.0.0.1:25", "-g", "5", "/bin/true"],
    ["--listen", "localhost:25", "/bin/true"],
    ["--listen", "127.0.0.1:65536", "/bin/true"],
    ["--listen", "127.0.0.1:25", "-U", "-u", "5", "/bin/true"],
    ["--listen", "127.0.0.1:25", "--tarpit", "--slots", "3",
     "--slots-dir", "/tmp"],
])
def test_usage_errors(plain, args):
    rc, out, err = plain(["-n"] + args)
    assert rc == 100 and "usage" in err, (out, err)


@pytest.mark.parametrize("given,missing", [("-u", "-g"), ("-g", "-u")])
def test_user_and_group_go_together(plain, given, missing):
    """Either alone would leave root's powers: root's groups, or root."""
    rc, out, err = plain(["--listen", "127.0.0.1:0", given, "5",
                          "/bin/true"])
    assert rc == 100, (out, err)
    assert "usage: %s needs %s" % (given, missing) in err, err


@pytest.mark.parametrize("env", [{"UID": "5"}, {"GID": "5"}, {}])
def test_envuidgid_needs_both_variables(plain, env):
    """-U reads the ids as the listener starts: one missing is a usage
    error, in one line, before any socket is bound."""
    rc, out, err = plain(["--listen", "127.0.0.1:0", "-l", "stderr", "-U",
                          "/bin/true"], env=env)
    assert rc == 100, (out, err)
    assert err.splitlines() == ["sendwrap: error usage: -U needs $UID and "
                                "$GID, as envuidgid sets them"], err


def test_check_shows_the_listener(plain):
    rc, out, err = plain(["-n", "--listen", "0.0.0.0:25", "--listen",
                          "[::]:25", "--max-clients", "500", "/bin/true"])
    assert rc == 0, err
    assert "listen: 0.0.0.0:25" in out and "listen: [::]:25" in out
    assert "max-clients: 500" in out


# ------------------------------------------------------------ robustness

def test_a_stuck_log_reader_does_not_stop_the_listener(tmp_path):
    """fd 2 a pipe nobody reads: once it is full, lines are dropped (and
    counted), never waited for; clients go on being served."""
    import fcntl
    rfd, wfd = os.pipe()
    fcntl.fcntl(wfd, 1031, 4096)            # F_SETPIPE_SZ: one page
    cmd = [SENDWRAP, "--listen", "127.0.0.1:0", "-l", "stderr", "-d", "0",
           "--", "/bin/sh", "-c", 'printf "220 x\\r\\n"']
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=wfd,
                            env=base_env(tmp_path), start_new_session=True)
    os.close(wfd)
    try:
        first = b""
        while b"listening" not in first or not first.endswith(b"\n"):
            first += os.read(rfd, 4096)
        port = int(re.search(rb"on=127\.0\.0\.1:(\d+)", first).group(1))
        # Far more lines than a one-page pipe holds, nobody reading.
        for _ in range(100):
            c = socket.create_connection(("127.0.0.1", port), timeout=T)
            c.settimeout(T)
            assert c.recv(100) == b"220 x\r\n"
            c.close()
        # Now read: the next line is preceded by the count of the dropped.
        os.set_blocking(rfd, False)
        while True:
            try:
                if not os.read(rfd, 65536):
                    break
            except BlockingIOError:
                break
        c = socket.create_connection(("127.0.0.1", port), timeout=T)
        c.recv(100)
        c.close()
        os.set_blocking(rfd, True)
        tail = b""
        while b"allow " not in tail:
            tail += os.read(rfd, 4096)
        assert re.search(rb"error \d+ log lines dropped", tail), tail
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        os.close(rfd)


# valgrind keeps the descriptor limit to itself (plain and sanitizer
# suites).
@pytest.mark.no_valgrind
def test_children_get_the_descriptor_limit_the_listener_was_given(
        listener, tmp_path):
    """The listener raises its own limit for --max-clients; the program
    gets the limit the listener was started with."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        out = tmp_path / "nofile"
        lst = listener(["-d", "0", "--max-clients", "5000", "--", "/bin/sh",
                        "-c", 'ulimit -n > "$0"; printf "220 standin\\r\\n"',
                        str(out)])
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert int(open("/proc/%d/limits" % lst.proc.pid).read().split(
        "Max open files")[1].split()[0]) >= 5000
    greeted(lst.connect())
    deadline = time.monotonic() + T
    while not out.exists() or not out.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert int(out.read_text()) == 1024
