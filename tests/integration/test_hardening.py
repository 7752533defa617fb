"""Hardening (issue 11): sendwrap run as root with its files in
directories others might write, every blocking call bounded, no refusal
on a neighbour's account.

Each test stands for one finding of the issue and fails without its fix.
The built binary runs on real loopback connections (sw_harness), with the
stand-in MTA as the program.  Tests that plant files need root (as
sendwrap usually runs); they are skipped otherwise.
"""
import fcntl
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import sw_harness as h
from sw_harness import MTA, REPLY_UNAVAILABLE, SLACK, T

IS_ROOT = os.geteuid() == 0
NOBODY = 65534
as_root = pytest.mark.skipif(not IS_ROOT, reason="plants files as root")
DELAY = 0.3


# ------------------------------------------------------------- helpers

def cache_dir(tmp_path):
    """A directory only root can write, as a cache directory must be."""
    d = tmp_path / "cache"
    d.mkdir(mode=0o700)
    return d


def victim(tmp_path, content):
    """A file outside the cache directory, standing for /etc/shadow."""
    d = tmp_path / "etc"
    d.mkdir(exist_ok=True)
    v = d / ("shadow%d" % len(list(d.iterdir())))
    v.write_bytes(content)
    v.chmod(0o640)
    return v


def snapshot(path):
    st = path.stat()
    return (path.read_bytes(), st.st_mode, st.st_uid, st.st_mtime_ns)


def plant(kind, where, target):
    if kind == "symlink":
        os.symlink(target, where)
    elif kind == "hardlink":
        os.link(target, where)
    elif kind == "fifo":
        os.mkfifo(where, 0o600)
    else:
        raise ValueError(kind)


def served_with_one_cache_error(c, path):
    """Delayed, then the MTA, with one error line that names the cache."""
    t = c.converse(timeout=T)
    assert t >= DELAY, t
    c.expect("pass", delay="0.300", waited=re.compile(r"\d+\.\d{3}"))
    errors = c.errors()
    assert len(errors) == 1, c.log
    assert "cache %s" % path in errors[0], errors
    return errors[0]


def cache_fds(c, d):
    return [v for v in c.record()["fds"].values() if v.startswith(str(d))]


# ------------------------------------ finding 1: cache and lock files

@pytest.mark.every_case_under_valgrind
@as_root
@pytest.mark.parametrize("kind", ["symlink", "hardlink", "fifo"])
@pytest.mark.parametrize("at", ["data", "lock"])
def test_planted_cache_file_is_never_opened(sw, tmp_path, kind, at):
    """A link or FIFO planted at the cache or its lock file: root's
    sendwrap neither writes through it nor blocks on it; the client is
    served as without a cache, with one error line."""
    d = cache_dir(tmp_path)
    cache = d / "cache.mdb"
    # LMDB takes over an empty data file (writes its meta pages into it)
    # and truncates and rewrites any lock file: either would show.
    target = victim(tmp_path, b"" if at == "data" else b"root:secret\n")
    before = snapshot(target)
    where = cache if at == "data" else Path(str(cache) + "-lock")
    if at == "lock":
        # A real cache beside it, so that lookups reach the lock file.
        c = sw(["-d", "0.05", "-c", str(cache)] + MTA)
        c.converse()
        os.unlink(where)
    plant(kind, where, target)
    for _ in range(2):                  # a lookup and a write, twice
        c = sw(["-d", str(DELAY), "-c", str(cache)] + MTA)
        err = served_with_one_cache_error(c, cache)
        assert {"symlink": "symbolic link", "hardlink": "2 links",
                "fifo": "not a regular file"}[kind] in err, err
        assert cache_fds(c, d) == []
    assert snapshot(target) == before
    assert stat.S_ISFIFO(where.lstat().st_mode) == (kind == "fifo")


@as_root
@pytest.mark.parametrize("mode,owner,why", [
    (0o770, 0, "writable by group or others"),
    (0o757, 0, "writable by group or others"),
    (0o1777, 0, "writable by group or others"),
    (0o700, NOBODY, "owned by uid 65534"),
], ids=["0770", "0757", "sticky-1777", "nobody's"])
def test_cache_directory_others_can_write(sw, tmp_path, mode, owner, why):
    """Root's sendwrap makes nothing in a directory another user could
    write (the mail user's, in the README's old setup): an error, and
    the client is served as without a cache."""
    d = tmp_path / "shared"
    d.mkdir()
    d.chmod(mode)
    os.chown(d, owner, owner)
    cache = d / "cache.mdb"
    c = sw(["-d", str(DELAY), "-c", str(cache)] + MTA)
    err = served_with_one_cache_error(c, cache)
    assert why in err and str(d) in err, err
    assert list(d.iterdir()) == []


@as_root
def test_cache_file_of_another_user(sw, tmp_path):
    d = cache_dir(tmp_path)
    cache = d / "cache.mdb"
    c = sw(["-d", "0.05", "-c", str(cache)] + MTA)
    c.converse()
    for p in (cache, Path(str(cache) + "-lock")):
        os.chown(p, NOBODY, NOBODY)
    c = sw(["-d", str(DELAY), "-c", str(cache)] + MTA)
    err = served_with_one_cache_error(c, cache)
    assert "owned by uid 65534" in err, err


def test_lookup_creates_nothing(sw, tmp_path):
    """A cached client is found without LMDB's lock file, and a lookup
    does not make one."""
    d = cache_dir(tmp_path)
    cache = d / "cache.mdb"
    lock = Path(str(cache) + "-lock")
    c = sw(["-d", "0.05", "-c", str(cache)] + MTA)
    c.converse()
    lock.unlink()
    c = sw(["-d", "20", "-c", str(cache)] + MTA)
    assert c.converse() < 5 + SLACK
    c.expect("cached", age=re.compile(r"\d+\.\d{3}"))
    assert c.errors() == []
    assert sorted(p.name for p in d.iterdir()) == ["cache.mdb"]


def test_cache_files_made_private(sw, tmp_path):
    d = cache_dir(tmp_path)
    cache = d / "cache.mdb"
    old = os.umask(0)                   # sendwrap inherits it
    try:
        c = sw(["-d", "0.05", "-c", str(cache)] + MTA)
    finally:
        os.umask(old)
    c.converse()
    for p in (cache, Path(str(cache) + "-lock")):
        st = p.lstat()
        assert stat.S_ISREG(st.st_mode) and st.st_nlink == 1
        assert stat.S_IMODE(st.st_mode) == 0o600, p
        assert st.st_uid == os.geteuid()


# ------------------------------------------- finding 10: slots directory

TARPIT = ["--tarpit", "--tarpit-interval", "0.3", "--tarpit-max", "2s"]


@as_root
@pytest.mark.parametrize("mode,owner,why", [
    (0o777, 0, "writable by group or others"),
    (0o700, NOBODY, "owned by uid 65534"),
], ids=["0777", "nobody's"])
def test_slots_directory_others_can_write(sw, tmp_path, mode, owner, why):
    """A slots directory another user could write (and so fill with
    slots it holds): an error, and the decoy fails closed as for any
    unusable slots directory."""
    d = tmp_path / "slots"
    d.mkdir()
    d.chmod(mode)
    os.chown(d, owner, owner)
    c = sw(TARPIT + ["--slots", "2", "--slots-dir", str(d)])
    assert c.client.read_all() == REPLY_UNAVAILABLE
    assert c.finish() == 111
    errors = c.errors()
    assert len(errors) == 1 and why in errors[0] and str(d) in errors[0], \
        c.log
    assert list(d.iterdir()) == []


@as_root
@pytest.mark.parametrize("kind", ["symlink", "hardlink", "fifo", "theirs"])
def test_planted_slot_file(sw, tmp_path, kind):
    d = tmp_path / "slots"
    d.mkdir(mode=0o700)
    target = victim(tmp_path, b"root:secret\n")
    before = snapshot(target)
    slot = d / "slot.0"
    if kind == "theirs":
        slot.write_bytes(b"")
        os.chown(slot, NOBODY, NOBODY)
    else:
        plant(kind, slot, target)
    c = sw(TARPIT + ["--slots", "1", "--slots-dir", str(d)])
    assert c.client.read_all() == REPLY_UNAVAILABLE
    assert c.finish() == 111
    errors = c.errors()
    assert len(errors) == 1 and str(slot) in errors[0], c.log
    assert snapshot(target) == before


@as_root
def test_check_reports_unsafe_directories(plain, tmp_path):
    d = tmp_path / "shared"
    d.mkdir()
    d.chmod(0o777)
    for args in (["--tarpit", "--slots", "2", "--slots-dir", str(d)],
                 ["-c", str(d / "c.mdb")] + MTA):
        rc, out, err = plain(["-n"] + args)
        assert rc == 100, out + err
        assert "writable by group or others" in err and str(d) in err, err
        assert out.endswith("configuration has errors\n")
    assert list(d.iterdir()) == []


def test_slot_files_made_private(sw, tmp_path):
    d = tmp_path / "slots"
    d.mkdir(mode=0o700)
    c = sw(TARPIT + ["--slots", "1", "--slots-dir", str(d)])
    c.client.recv_until(b"\r\n")
    st = (d / "slot.0").lstat()
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert c.finish() == 0


# ------------------------- findings 5 and 6: waits inside LMDB, leaked fds

HOLDER = r"""
import fcntl, os, signal, sys
fd = os.open(sys.argv[1], os.O_RDWR)
# As LMDB's first opener holds it while it sets the lock file up.
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0)
os.kill(os.getpid(), signal.SIGSTOP)
"""


def stopped(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rpartition(")")[2].split()[0] == "T"


@pytest.fixture
def stalled_holder():
    """start(lock_path): a process that holds LMDB's setup lock on the
    lock file and is stopped (SIGSTOP) while it does."""
    procs = []

    def start(lock):
        p = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock)])
        procs.append(p)
        deadline = time.monotonic() + T
        while not stopped(p.pid):
            assert p.poll() is None, "the holder failed"
            assert time.monotonic() < deadline, "the holder did not stop"
            time.sleep(0.02)
        return p

    yield start
    for p in procs:
        p.kill()
        p.wait()


@pytest.mark.parametrize("known", [False, True], ids=["stranger", "cached"])
def test_stopped_lock_holder_does_not_stall_connections(sw, tmp_path,
                                                         stalled_holder,
                                                         known):
    """LMDB's own wait for its lock file is bounded: a connection goes on
    as without a cache after the limit (1 s), one error line, and the MTA
    inherits no descriptor of the cache (the data file LMDB had opened
    when it began to wait is closed)."""
    d = cache_dir(tmp_path)
    cache = d / "cache.mdb"
    c = sw(["-d", "0.05", "-c", str(cache)] + MTA,
           env=None if known else {"PROTO": "TCP",
                                   "TCPREMOTEIP": "192.0.2.9",
                                   "TCPREMOTEPORT": "25"})
    c.converse()
    stalled_holder(Path(str(cache) + "-lock"))
    c = sw(["-d", str(DELAY), "-c", str(cache)] + MTA)
    t = c.converse(timeout=T)
    assert DELAY <= t < DELAY + 1 + 3 + SLACK, t
    c.expect("pass", delay="0.300", waited=re.compile(r"\d+\.\d{3}"))
    errors = c.errors()
    assert len(errors) == 1 and "waited 1000 ms" in errors[0], c.log
    assert cache_fds(c, d) == []


# -------------------------------------- finding 2: a neighbour's mail

KNOWN_EARLY = b"421 4.7.1 Service temporarily unavailable, try again later\r\n"


def ucspi(ip):
    if ":" in ip:
        return {"PROTO": "TCP6", "TCP6REMOTEIP": ip, "TCP6REMOTEPORT": "25"}
    return {"PROTO": "TCP", "TCPREMOTEIP": ip, "TCPREMOTEPORT": "25"}


@pytest.mark.parametrize("action", ["reject", "tempfail", "drop"])
def test_innocent_client_behind_a_known_bot_gets_only_a_4xx(sw, tmp_path,
                                                             action):
    """Two clients behind one key (a NAT address): the bot talks early and
    gets the -x action; the real MTA that comes next, quiet, is turned
    away by the bad entry, but only for now: 421, never a 5xx."""
    cache = cache_dir(tmp_path) / "cache.mdb"
    args = ["-d", "5", "-x", action, "--bad-ttl", "1h", "-c", str(cache)]
    bot = sw(args + MTA, env=ucspi("198.51.100.7"), early=b"EHLO bot\r\n")
    bot.client.read_all()
    assert bot.finish() == 0
    assert bot.verdict()[0] == "early"
    mta = sw(args + MTA, env=ucspi("198.51.100.7"))
    assert mta.client.read_all(timeout=3 + SLACK) == KNOWN_EARLY
    assert mta.finish() == 0
    mta.expect("known-early", ip="198.51.100.7", port="25",
               age=re.compile(r"\d+\.\d{3}"), action="tempfail")
    assert not mta.ran()


# ------------------------------ finding 7: the cache filled from outside

def cache_count(plain, cache):
    rc, out, err = plain(["--cache-count", str(cache)])
    assert rc == 0, err
    m = re.fullmatch(r"(\d+) entries: (\d+) pass, (\d+) bad, \d+ grey, (\d+) expired\n",
                     out)
    assert m, out
    return tuple(int(x) for x in m.groups())


def early_talker(sw, args, ip, word="early"):
    bot = sw(args + MTA, env=ucspi(ip), early=b"EHLO bot\r\n")
    bot.client.read_all()
    assert bot.finish() == 0
    assert bot.verdict()[0] == word
    assert bot.errors() == [], bot.log


def test_one_ipv6_48_adds_one_bad_entry(sw, plain, tmp_path):
    """Early talkers from 20 /64s of one /48: one bad entry, not 20; a
    neighbour in the /48 is turned away (421) unless it passed itself."""
    cache = cache_dir(tmp_path) / "cache.mdb"
    args = ["-d", "0.3", "--bad-ttl", "1h", "-c", str(cache)]
    quiet = sw(args + MTA, env=ucspi("2001:db8:77:ff::25"))
    quiet.converse()
    for i in range(20):
        # The first is caught; the rest are known by their /48 at once.
        early_talker(sw, args, "2001:db8:77:%x::1" % i,
                     "known-early" if i else "early")
    assert cache_count(plain, cache) == (2, 1, 1, 0)
    stranger = sw(args + MTA, env=ucspi("2001:db8:77:abcd::1"))
    assert stranger.client.read_all() == KNOWN_EARLY
    stranger.finish()
    again = sw(args + MTA, env=ucspi("2001:db8:77:ff::25"))
    again.converse()
    assert again.verdict()[0] == "cached"


def test_bad_max_caps_the_bad_entries(sw, plain, tmp_path):
    """Past --bad-max, early talkers are still turned away, just not
    remembered: no error, no growth; passes are not capped."""
    cache = cache_dir(tmp_path) / "cache.mdb"
    args = ["-d", "0.05", "--bad-ttl", "1h", "--bad-max", "5", "-c",
            str(cache)]
    for i in range(8):
        early_talker(sw, args, "192.0.2.%d" % (i + 1))
    assert cache_count(plain, cache) == (5, 0, 5, 0)
    c = sw(args + MTA, env=ucspi("198.51.100.1"))
    c.converse()
    assert cache_count(plain, cache) == (6, 1, 5, 0)
    rc, out, err = plain(["-n"] + args + MTA)
    assert rc == 0 and "bad-max: 5 (IPv6 keys at most /48)\n" in out, out


# ------------------- finding 4: the tempfail decoy writes with a deadline

def small_buffer_connection():
    """A loopback connection whose buffers fill after a few replies: the
    client's receive buffer and the server's send buffer at their least."""
    with socket.socket() as lst:
        lst.bind(("127.0.0.1", 0))
        lst.listen(1)
        cli = socket.socket()
        cli.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        cli.connect(lst.getsockname())
        srv, _ = lst.accept()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1024)
    return cli, srv


def test_tempfail_client_that_never_reads(tmp_path):
    """A client pipelines 1000 commands and never reads a reply: the
    replies fill the buffers, and the session limit still ends it."""
    workdir = tmp_path / "run"
    workdir.mkdir()
    cli, srv = small_buffer_connection()
    with srv, open(workdir / "stderr", "wb") as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(
            h.command(workdir, ["--tempfail", "-d", "0",
                                "--tempfail-commands", "1000",
                                "--tempfail-max", "2s"]),
            stdin=srv, stdout=srv, stderr=err, env=h.make_env(workdir, {}))
    try:
        greeting = b""
        cli.settimeout(T)
        while not greeting.endswith(b"\r\n"):
            greeting += cli.recv(100)
        assert greeting.startswith(b"220 "), greeting
        cli.sendall(b"NOOP\r\n" * 1000)
        rc = proc.wait(timeout=2 + 1 + 2 + 3 + SLACK)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        cli.close()
    took = time.monotonic() - t0
    text = (workdir / "stderr").read_text()
    h.check_tools(workdir, text)
    assert rc == 0, text
    assert 2 <= took, took
    word, f = h.parse_line(text.strip().splitlines()[-1])
    assert word == "decoy" and f["end"] == "max-time", text
    assert 1 <= int(f["commands"]) < 1000, f


# ------------------- finding 3: first= holds only bytes read from the client

@pytest.mark.every_case_under_valgrind
@pytest.mark.parametrize("action", ["reject", "pass"])
def test_pipe_peer_that_talks_early(sw, action):
    """fd 0 a pipe (sslserver, stunnel): nothing can be peeked at, only
    counted.  first= is empty, bytes= the count; no byte of sendwrap's
    own memory reaches the log (under SENDWRAP_VALGRIND=1, valgrind
    fails the run on a read of uninitialised bytes)."""
    early = b"EHLO bot.example\r\n"
    c = sw(["-d", "20", "-x", action] + MTA, peer="pipe", early=early)
    if action == "pass":
        c.converse()
        assert c.record()["before"] == early.decode()
    else:
        assert c.client.read_all() == h.REPLY_REJECT
        assert c.finish() == 0
    c.expect("early", ip="unknown", port=h.ANY, after=h.SECONDS,
             bytes=str(len(early)), first='""', action=action)


# ----------- hygiene with the cache, the slots and the decoy modes
#
# What the program inherits (descriptors, signal dispositions and mask,
# environment, O_NONBLOCK) must not change with -c: the cache installs
# signal handlers, unblocks signals and arms a timer while it is open.
# The decoy modes run no program: what they hold while they hold a
# client is checked instead.

EHLO = b"EHLO early.example\r\n"
# ASan puts a handler of its own on SIGBUS as it starts, before any code
# of ours runs: an ignored SIGBUS cannot survive a sanitizer build.
SANITIZED = "/sanitize/" in h.SENDWRAP
ALARM_SETS = [
    ((), ()),
    ((signal.SIGALRM, signal.SIGPIPE), (signal.SIGSEGV, signal.SIGUSR1)),
    (() if SANITIZED else (signal.SIGBUS,),
     (signal.SIGALRM, signal.SIGBUS)),
]


def cache_scenario(sw, tmp_path, name):
    """(args, options) for each way through the cache to the exec; the
    cache is primed as the scenario needs."""
    cache = str(cache_dir(tmp_path) / "cache.mdb")
    base = ["--bad-ttl", "1h", "-c", cache]
    if name in ("cached", "known-early-pass"):
        prime = sw(["-d", "0.05", "-x", "pass"] + base + MTA,
                   early=EHLO if name == "known-early-pass" else b"")
        prime.converse()
    return {
        "pass": (["-d", "0.3"] + base, {}),
        "cached": (["-d", "20"] + base, {}),
        "early-pass": (["-d", "20", "-x", "pass"] + base, {"early": EHLO}),
        "known-early-pass": (["-d", "20", "-x", "pass"] + base, {}),
    }[name]


CACHE_SCENARIOS = ["pass", "cached", "early-pass", "known-early-pass"]


def program_fds(c):
    fds = {int(k): v for k, v in c.record()["fds"].items()}
    if h.VALGRIND:
        fds = {k: v for k, v in fds.items()
               if not v.startswith(str(c.dir / "valgrind."))}
    return fds


@pytest.mark.parametrize("name", CACHE_SCENARIOS)
def test_cache_program_inherits_what_it_would_without(sw, tmp_path, name):
    args, opts = cache_scenario(sw, tmp_path, name)
    r, w = os.pipe()
    env = {"FOO": "bar", "NEWLINE": "x\ny"}
    try:
        c = sw(args + MTA, extra_fds={6: r}, env=env, **opts)
    finally:
        os.close(r)
        os.close(w)
    c.converse()
    sock = "socket:[%d]" % c.socket_inode
    fds = program_fds(c)
    assert fds == {0: sock, 1: sock, 2: str(c.stderr_path), 6: fds[6]}, fds
    assert fds[6].startswith("pipe:")
    assert c.record()["fd0_blocking"] is True
    got = c.record()["environ"]
    if h.VALGRIND:
        got = [e for e in got if e.split("=")[0] not in h.VALGRIND_ENV]
    assert sorted(got) == sorted("%s=%s" % kv for kv in c.env.items())


@pytest.mark.parametrize("ignore,block", ALARM_SETS,
                         ids=["none", "ignored", "blocked"])
@pytest.mark.parametrize("name", CACHE_SCENARIOS)
def test_cache_signal_state_unchanged(sw, tmp_path, name, ignore, block):
    args, opts = cache_scenario(sw, tmp_path, name)
    c = sw(args + MTA, ignore=ignore, block=block, **opts)
    c.converse()
    rec, start = c.record(), c.spawn_state()
    assert start["SigBlk"] == h.sig_bits(block)
    assert hex(rec["SigIgn"]) == hex(start["SigIgn"])
    assert hex(rec["SigBlk"]) == hex(start["SigBlk"])


@pytest.mark.parametrize("ignore,block", ALARM_SETS,
                         ids=["none", "ignored", "blocked"])
def test_signal_state_unchanged_after_the_watchdog(sw, tmp_path,
                                                   stalled_holder, ignore,
                                                   block):
    """The watchdog fired (SIGALRM, a jump out of LMDB): the program still
    gets the caller's dispositions and mask, and no cache descriptor."""
    d = cache_dir(tmp_path)
    cache = d / "cache.mdb"
    sw(["-d", "0.05", "-c", str(cache)] + MTA).converse()
    stalled_holder(Path(str(cache) + "-lock"))
    c = sw(["-d", "0.05", "-c", str(cache)] + MTA, ignore=ignore,
           block=block)
    c.converse()
    assert "waited" in c.errors()[0]
    rec, start = c.record(), c.spawn_state()
    assert hex(rec["SigIgn"]) == hex(start["SigIgn"])
    assert hex(rec["SigBlk"]) == hex(start["SigBlk"])
    assert cache_fds(c, d) == []


def held_fds(c):
    """The descriptors of a running sendwrap, less valgrind's own."""
    pid = c.proc.pid
    out = {}
    for name in os.listdir("/proc/%d/fd" % pid):
        try:
            out[int(name)] = os.readlink("/proc/%d/fd/%s" % (pid, name))
        except OSError:
            pass
    if h.VALGRIND:      # its log and its own high descriptors
        out = {k: v for k, v in out.items()
               if k < h.VALGRIND_LOG_FD and "valgrind" not in v}
    return out


def fd0_flags(c):
    with open("/proc/%d/fdinfo/0" % c.proc.pid) as f:
        for line in f:
            if line.startswith("flags:"):
                return int(line.split()[1], 8)
    raise AssertionError("no flags")


@pytest.mark.parametrize("mode", ["tarpit", "tempfail"])
@pytest.mark.parametrize("slots", [False, True], ids=["", "slots"])
def test_decoy_holds_nothing_else(sw, tmp_path, mode, slots):
    """A held decoy connection: the client's descriptors, the slot's lock
    file with --slots, nothing else; the socket left blocking (its flags
    are shared with the superserver); no log line to the client."""
    extra = []
    if slots:
        d = tmp_path / "slots"
        d.mkdir(mode=0o700)
        extra = ["--slots", "3", "--slots-dir", str(d)]
    args = (["--tarpit", "--tarpit-interval", "0.3"] if mode == "tarpit"
            else ["--tempfail", "-d", "0"]) + extra
    c = sw(args, fd2="socket", env={"GREETDELAY": "bogus"})
    c.client.recv_until(b"\r\n")
    if mode == "tempfail":
        c.client.send(b"HELO me\r\n")
        c.client.recv_until(b"250 ")
    fds = held_fds(c)
    sock = "socket:[%d]" % c.socket_inode
    want = {0: sock, 1: sock, 2: sock}
    if slots:
        slot = [k for k, v in fds.items() if v.startswith(str(d) + "/slot.")]
        assert len(slot) == 1, fds
        want[slot[0]] = fds[slot[0]]
    assert fds == want
    assert not fd0_flags(c) & os.O_NONBLOCK
    assert c.finish() == 0
    assert b"sendwrap" not in c.client.data and b"error" not in c.client.data


# ------------------------- finding 9: -l stderr, and fds 0-2 closed

@pytest.mark.parametrize("case", ["pass", "early-pass", "early"])
def test_log_stderr_under_inetd_reaches_no_client(sw, tmp_path, case):
    """inetd hands the client over on fds 0, 1 and 2: with -l stderr the
    lines go to syslog, never a byte to the client."""
    args = {"pass": ["-d", "0.3"], "early-pass": ["-d", "20", "-x", "pass"],
            "early": ["-d", "20"]}[case]
    c = sw(["-l", "stderr"] + args + ["-a", str(tmp_path / "missing")] + MTA,
           fd2="socket", env={"GREETDELAY": "bogus"},
           early=EHLO if case.startswith("early") else b"")
    if case == "early":
        assert c.client.read_all() == h.REPLY_REJECT
        assert c.finish() == 0
    else:
        c.converse()
        assert c.client.data == h.GREETING + h.BYE


def test_log_stderr_with_fd2_closed_writes_into_no_file(sw, tmp_path):
    """fd 2 closed: the cache's lock file would be the first file opened
    and land on it; -l stderr would then write lines into it.  Nothing
    lands there now, and the program still gets fd 2 closed."""
    d = cache_dir(tmp_path)
    cache = d / "cache.mdb"
    lock = Path(str(cache) + "-lock")
    sw(["-d", "0.05", "-c", str(cache)] + MTA).converse()
    with open(cache, "rb") as holder:
        # The write lock held: an error is logged with the cache open.
        fcntl.flock(holder, fcntl.LOCK_EX)
        c = sw(["-l", "stderr", "-d", "0.05", "-c", str(cache)] + MTA,
               fd2="closed", env=ucspi("192.0.2.44"))
        c.converse()
    assert b"sendwrap" not in lock.read_bytes()
    assert b"sendwrap" not in cache.read_bytes()
    sock = "socket:[%d]" % c.socket_inode
    assert program_fds(c) == {0: sock, 1: sock}
