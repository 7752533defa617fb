"""Harness for the sendwrap integration tests.

Each test runs the built binary ($SENDWRAP, default ../../sendwrap) once
per connection, the way inetd or tcpserver would: a real TCP connection
is accepted from a listener of our own and the accepted socket becomes
fds 0 and 1 of sendwrap; the test keeps the client end.  The program
sendwrap runs is the stand-in MTA (standin_mta), which records what it
was handed in record.json.

The child starts from a known state whatever state pytest runs in: only
fds 0, 1, 2 and the extra descriptors a test asks for are open, every
signal is at its default disposition except those the test asks to be
ignored, and the blocked mask is exactly what the test asks for.  The
environment is built from scratch (PATH, STANDIN_DIR and the sanitizer
options) plus what the test adds.

SENDWRAP_VALGRIND=1 runs sendwrap under valgrind (log to a file, never
to the client; any error fails the test) and widens the time limits.
Under the sanitize build, ASan/UBSan reports go to files of their own
and any report fails the test; stderr is checked for them as well.
"""
import fcntl
import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import proclib  # noqa: E402  (tests/proclib.py, /proc for tests and bench)

SENDWRAP = os.environ.get("SENDWRAP") or str(HERE.parent.parent / "sendwrap")
VALGRIND = os.environ.get("SENDWRAP_VALGRIND", "") not in ("", "0")
STANDIN = str(HERE / "standin_mta")
MTA = [STANDIN]
# The same greeting and bye, nothing recorded (light_mta.sh): for many
# connections at once or in a row, where the stand-in's cost adds up.
LIGHT_MTA = [str(HERE / "light_mta.sh")]

# Extra seconds for things that depend on how fast sendwrap starts: under
# valgrind that is most of a second, more on a loaded machine.
SLACK = 15.0 if VALGRIND else 0.0
# Patience for anything that should happen soon; only a failing test
# waits this long.
T = 10.0 + SLACK
# A bound for what should happen at once (no delay), on a loaded machine.
SOON = 3.0 + SLACK

# No gdb server: its pipes in /tmp, made as root, could not be removed by
# a listener that gave root up (-u -g), and valgrind would say so.
VALGRIND_CMD = ["valgrind", "-q", "--error-exitcode=97", "--leak-check=full",
                "--show-leak-kinds=definite",
                "--errors-for-leak-kinds=definite", "--trace-children=no",
                "--vgdb=no"]
# What valgrind and Debian's valgrind wrapper (a dash script: PWD) add to
# the environment of the program exec'd under --trace-children=no.
VALGRIND_ENV = frozenset(["LD_LIBRARY_PATH", "LD_PRELOAD", "PWD",
                          "GLIBCPP_FORCE_NEW", "GLIBCXX_FORCE_NEW"])
# valgrind's log descriptor for a connection, set up in the child, so that
# with fd 2 closed valgrind's log does not become sendwrap's fd 2.  The
# program inherits it (valgrind does not close it); the descriptor tests
# leave out anything open on a valgrind log.
VALGRIND_LOG_FD = 1000
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer",
                   "UndefinedBehaviorSanitizer", "runtime error:")

GREETING = b"220 standin\r\n"
BYE = b"221 bye\r\n"
REPLY_REJECT = b"554 5.5.1 SMTP protocol violation: input before greeting\r\n"
REPLY_TEMPFAIL = (b"421 4.5.1 SMTP protocol violation: input before "
                  b"greeting, try again later\r\n")
REPLY_UNAVAILABLE = b"421 4.3.0 Service temporarily unavailable\r\n"


# The user the tests run sendwrap as to meet a "Permission denied" as
# root; running as root is told by IS_ROOT.
NOBODY = 65534
IS_ROOT = os.geteuid() == 0

# Many processes at once: slow and pointless under valgrind, so run in
# the plain suite only.
# Under valgrind (make check-valgrind) a test marked no_valgrind is left
# out, not skipped: load tests and tests of limits valgrind changes run in
# the plain and sanitizer suites.  See conftest.py for the rest of the
# selection.
load_test = pytest.mark.no_valgrind
no_valgrind = pytest.mark.no_valgrind
every_case_under_valgrind = pytest.mark.every_case_under_valgrind


def ipv6_loopback_works():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not ipv6_loopback_works(),
                                reason="no IPv6 loopback")


def ucspi_env(ip, port="2525"):
    """The environment tcpserver gives a client from ip (PROTO and
    TCPREMOTEIP, or TCP6REMOTEIP for an IPv6 address)."""
    if ":" in ip:
        return {"PROTO": "TCP6", "TCP6REMOTEIP": ip, "TCP6REMOTEPORT": port}
    return {"PROTO": "TCP", "TCPREMOTEIP": ip, "TCPREMOTEPORT": port}


def drop_to(uid):
    """In a child before exec: become uid (its group too, no others)."""
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def sig_bits(signals):
    """The /proc/PID/status bit mask for a set of signals."""
    bits = 0
    for s in signals:
        bits |= 1 << (int(s) - 1)
    return bits


# ---------------------------------------------------------------- the log

# A field is key=value, the value either bare (no space, no quote) or
# quoted with backslash escapes.
FIELD = r' ([a-z]+)=("(?:[^"\\]|\\.)*"|[^ "]*)'
FIELD_RE = re.compile(FIELD)
LINE_RE = re.compile(r"sendwrap: (\S+)((?:%s)*)$" % FIELD)
ANY = object()


def parse_line(line):
    """'sendwrap: pass ip=... port=...' -> ('pass', {'ip': ..., ...}).

    Field order is kept; a quoted value is returned with its quotes.
    """
    m = LINE_RE.match(line)
    assert m, "not a verdict line with key=value fields: %r" % line
    return m.group(1), dict(FIELD_RE.findall(m.group(2)))


def unescape(quoted):
    """Undo the log's escaping of a "..." value; returns bytes."""
    assert quoted[0] == '"' and quoted[-1] == '"', quoted
    s, out, i = quoted[1:-1], bytearray(), 0
    while i < len(s):
        c = s[i]
        assert 0x20 <= ord(c) < 0x7f, "raw byte %r in the log" % c
        assert c != '"', "unescaped quote in %r" % quoted
        if c != "\\":
            out.append(ord(c))
            i += 1
            continue
        e = s[i + 1]
        if e == "x":
            out.append(int(s[i + 2:i + 4], 16))
            i += 4
            continue
        out += {"r": b"\r", "n": b"\n", "t": b"\t", "\\": b"\\",
                '"': b'"'}[e]
        i += 2
    return bytes(out)


def check_fields(got, want):
    """Compare parsed fields with want: same keys in the same order; a
    value is compared exactly, by regex (re.Pattern) or not at all (ANY)."""
    assert list(got) == list(want), "fields %r, want %r" % (got, list(want))
    for k, v in want.items():
        if v is ANY:
            continue
        if isinstance(v, re.Pattern):
            assert v.fullmatch(got[k]), "%s=%r does not match %s" % (
                k, got[k], v.pattern)
        else:
            assert got[k] == v, "%s=%r, want %r" % (k, got[k], v)


SECONDS = re.compile(r"\d+\.\d{3}")


# ------------------------------------------------------------ the client

class Client:
    """The client end: a socket, or a pair of pipes (rfd, wfd)."""

    def __init__(self, sock=None, rfd=None, wfd=None):
        self.sock = sock
        self.rfd = sock.fileno() if sock else rfd
        self.wfd = sock.fileno() if sock else wfd
        self.data = b""
        self.eof = False
        self.reset = False

    def send(self, data):
        if self.sock:
            self.sock.sendall(data)
        else:
            while data:
                data = data[os.write(self.wfd, data):]

    def _read(self, deadline):
        """One read; False once the deadline has passed."""
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([self.rfd], [], [], left)[0]:
            return False
        try:
            chunk = os.read(self.rfd, 65536)
        except ConnectionResetError:
            self.reset = True
            chunk = b""
        if not chunk:
            self.eof = True
        self.data += chunk
        return True

    def recv_until(self, want, timeout=T):
        """Read until want has arrived; returns the time it did."""
        deadline = time.monotonic() + timeout
        while want not in self.data:
            assert not self.eof, "connection closed after %r, waiting for %r" % (
                self.data, want)
            assert self._read(deadline), "%r not received within %.1f s " \
                "(got %r)" % (want, timeout, self.data)
        return time.monotonic()

    def read_all(self, timeout=T):
        """Read to end of file (or reset); returns all bytes received."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            assert self._read(deadline), "no end of file within %.1f s " \
                "(got %r)" % (timeout, self.data)
        return self.data

    def quiet_for(self, seconds):
        """Assert that nothing arrives for that long."""
        deadline = time.monotonic() + seconds
        before = self.data
        while not self.eof and self._read(deadline):
            pass
        assert self.data == before, "unexpected %r" % self.data[len(before):]

    def shutdown_write(self):
        if self.sock:
            self.sock.shutdown(socket.SHUT_WR)
        else:
            os.close(self.wfd)
            self.wfd = None

    def abort(self):
        """Close with a TCP reset (SO_LINGER 0)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             struct.pack("ii", 1, 0))
        self.close()

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None
        else:
            for fd in (self.rfd, self.wfd):
                if fd is not None:
                    os.close(fd)
            self.rfd = self.wfd = None

    @property
    def port(self):
        return str(self.sock.getsockname()[1])


def fionread(sock):
    buf = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    return struct.unpack("i", buf)[0]


def connect(kind):
    """A connected pair (client, server) of the given kind of peer."""
    if kind == "ipv4":
        lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lst.bind(("127.0.0.1", 0))
        host, family = "127.0.0.1", socket.AF_INET
    elif kind == "ipv6":
        lst = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        lst.bind(("::1", 0))
        host, family = "::1", socket.AF_INET6
    elif kind == "mapped":
        # A dual-stack listener: IPv4 clients arrive as ::ffff:a.b.c.d.
        lst = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        lst.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        lst.bind(("::ffff:127.0.0.1", 0))
        host, family = "127.0.0.1", socket.AF_INET
    else:
        raise ValueError(kind)
    with lst:
        lst.listen(1)
        port = lst.getsockname()[1]
        cli = socket.socket(family, socket.SOCK_STREAM)
        cli.settimeout(T)
        cli.connect((host, port))
        cli.settimeout(None)
        srv, _ = lst.accept()
    return Client(sock=cli), srv


# ------------------------------------------------------ the child's setup

def _child_setup(workdir, extra_fds, close_fd2, ignore, block, user):
    """Runs in the child between fork and exec (see module doc).

    The signal state sendwrap starts with is written to spawn.json: the
    C library keeps two signals (32 and 33) out of reach, so whatever
    disposition they were inherited with (make ignores them) stays.
    Last, with user set, the child becomes that user.
    """
    high = {t: fcntl.fcntl(src, fcntl.F_DUPFD_CLOEXEC, 100)
            for t, src in extra_fds.items()}
    for target, fd in high.items():
        os.dup2(fd, target)                 # inheritable
    if close_fd2:
        os.close(2)
    keep = {0, 1, 2} | set(extra_fds)
    if VALGRIND:
        fd = os.open(os.path.join(workdir, "valgrind.log"),
                     os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, VALGRIND_LOG_FD)
        os.close(fd)
        keep.add(VALGRIND_LOG_FD)
    for fd in proclib.fd_numbers("self"):
        if fd in keep:
            continue
        try:
            if os.get_inheritable(fd):
                os.close(fd)
        except OSError:
            pass
    for sig in range(1, signal.NSIG):
        try:
            signal.signal(sig, signal.SIG_IGN if sig in ignore
                          else signal.SIG_DFL)
        except (OSError, ValueError, RuntimeError):
            pass                            # KILL, STOP, libc's own
    signal.pthread_sigmask(signal.SIG_SETMASK, block)
    with open(os.path.join(workdir, "spawn.json"), "w") as f:
        json.dump(proclib.sig_state("self"), f)
    if user is not None:
        drop_to(user)


def base_env(workdir):
    return {
        "PATH": "/usr/bin:/bin",
        "STANDIN_DIR": str(workdir),
        "ASAN_OPTIONS": "exitcode=98:abort_on_error=0:detect_leaks=1:"
                        "log_path=%s/asan" % workdir,
        "UBSAN_OPTIONS": "exitcode=98:halt_on_error=1:print_stacktrace=1:"
                         "log_path=%s/ubsan" % workdir,
    }


def make_env(workdir, env):
    full = base_env(workdir)
    for k, v in (env or {}).items():
        if v is None:
            full.pop(k, None)
        else:
            full[k] = v
    return full


def command(workdir, args, log_fd=False):
    pre = []
    if VALGRIND and log_fd:
        pre = VALGRIND_CMD + ["--log-fd=%d" % VALGRIND_LOG_FD]
    elif VALGRIND:
        pre = VALGRIND_CMD + ["--log-file=%s/valgrind.%%p" % workdir]
    return pre + [SENDWRAP] + list(args)


def check_tools(workdir, stderr_text=""):
    """Fail on any valgrind or sanitizer report from this run."""
    for p in sorted(Path(workdir).iterdir()):
        if p.name.startswith(("valgrind.", "asan", "ubsan")):
            text = p.read_text(errors="replace")
            assert not text.strip(), "%s:\n%s" % (p.name, text)
    for mark in SANITIZER_MARKS:
        assert mark not in stderr_text, "sanitizer report:\n" + stderr_text
    err = Path(workdir) / "standin.err"
    assert not err.exists(), "the stand-in MTA failed:\n" + err.read_text()


# --------------------------------------------------- one sendwrap process

class Sendwrap:
    """sendwrap serving one connection.

    peer:  ipv4, ipv6, mapped (IPv4 client of a dual-stack listener),
           pipe (fd 0 and fd 1 are pipes), socketpair (an AF_UNIX pair).
    early: bytes the client sends before sendwrap starts (all of them
           are in the socket's queue when it does).
    hangup: "eof" to shut down the client's write side before the start.
    fd2:   file (a file, read back as .log), socket (the client socket,
           as inetd does), unix (an AF_UNIX socket, as the journal),
           closed.
    extra_fds: {target fd: fd} inherited besides 0, 1, 2.
    ignore, block: signals ignored / blocked when sendwrap starts.
    user:  a uid to run sendwrap as (when root); workdir is made
           writable for it, and its parents must let it through.
    known_state: False spawns without the setup between fork and exec
           (no spawn.json; signals and mask as Popen leaves them, fds 0,
           1, 2 only): a spawn without a fork of the test process, ten
           times quicker, for hundreds of processes at once.  Not with
           extra_fds, ignore, block, user or fd2="closed".
    """

    def __init__(self, workdir, args, env=None, peer="ipv4", early=b"",
                 hangup=None, fd2="file", extra_fds=None, ignore=(),
                 block=(), user=None, known_state=True):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True)
        if user is not None:
            self.dir.chmod(0o777)
        self.args = list(args)
        self.env = make_env(self.dir, env)
        self.peer = peer
        self.fd2 = fd2
        self.proc = None
        self.rc = None
        self.unix_log = None
        self.client_port = None
        self.stderr_path = self.dir / "stderr"
        extra_fds = dict(extra_fds or {})
        closers = []

        if peer in ("ipv4", "ipv6", "mapped"):
            self.client, srv = connect(peer)
            self.client_port = self.client.port
            stdin = stdout = srv.fileno()
            closers.append(srv.close)
            if early:
                self.client.send(early)
                deadline = time.monotonic() + T
                while fionread(srv) < len(early):
                    assert time.monotonic() < deadline, "early bytes lost"
                    time.sleep(0.001)
            if hangup == "eof":
                self.client.shutdown_write()
                assert select.select([srv], [], [], T)[0]
            self.socket_inode = os.fstat(srv.fileno()).st_ino
        elif peer == "pipe":
            in_r, in_w = os.pipe()
            out_r, out_w = os.pipe()
            self.client = Client(rfd=out_r, wfd=in_w)
            stdin, stdout = in_r, out_w
            closers += [lambda: os.close(in_r), lambda: os.close(out_w)]
            if early:
                self.client.send(early)
        elif peer == "socketpair":
            a, b = socket.socketpair()
            self.client = Client(sock=a)
            stdin = stdout = b.fileno()
            closers.append(b.close)
            if early:
                self.client.send(early)
        else:
            raise ValueError(peer)

        if fd2 == "file":
            errf = open(self.stderr_path, "wb")
            stderr = errf.fileno()
            closers.append(errf.close)
        elif fd2 == "socket":
            stderr = stdin
        elif fd2 == "unix":
            self.unix_log, theirs = socket.socketpair()
            stderr = theirs.fileno()
            closers.append(theirs.close)
        elif fd2 == "closed":
            stderr = None
        else:
            raise ValueError(fd2)

        ignore = frozenset(int(s) for s in ignore)
        block = frozenset(int(s) for s in block)
        if known_state:
            spawn = dict(close_fds=False, restore_signals=False,
                         preexec_fn=lambda: _child_setup(
                             str(self.dir), extra_fds, fd2 == "closed",
                             ignore, block, user))
        else:
            assert not (extra_fds or ignore or block or user is not None or
                        fd2 == "closed"), "these need known_state"
            spawn = dict(close_fds=True)
        self.t0 = time.monotonic()
        try:
            self.proc = subprocess.Popen(
                command(self.dir, self.args, log_fd=known_state),
                stdin=stdin, stdout=stdout, stderr=stderr, env=self.env,
                **spawn)
        finally:
            for close in closers:
                close()

    # -- the conversation

    def until(self, want, timeout=T):
        """Read until want has arrived; seconds from the start to then."""
        return self.client.recv_until(want, timeout) - self.t0

    def greeted(self, timeout=T):
        """Wait for the stand-in's greeting; seconds since the start."""
        return self.until(GREETING, timeout)

    def converse(self, timeout=T):
        """A whole session with the MTA: greeting, one command, QUIT.

        Returns the seconds from the start to the greeting.
        """
        t = self.greeted(timeout)
        self.client.send(b"NOOP after greeting\r\nQUIT\r\n")
        self.client.read_all(timeout)
        assert self.client.data.endswith(GREETING + BYE), self.client.data
        self.finish()
        rec = self.record()
        assert rec["after"] == "NOOP after greeting\r\nQUIT\r\n", rec
        return t

    def finish(self, timeout=T, quit=False):
        """Close the client, wait for the process, check the tools' logs.

        quit: if the MTA has greeted, say QUIT and read its bye first.
        """
        if quit and GREETING in self.client.data:
            self.client.send(b"QUIT\r\n")
            self.client.recv_until(BYE, timeout)
        self.client.close()
        return self.wait(timeout)

    def wait(self, timeout=T):
        if self.rc is None:
            try:
                self.rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError("sendwrap %s did not exit within %.1f s"
                                     % (self.args, timeout))
            if self.unix_log is not None:
                self.unix_text = self._drain_unix()
            check_tools(self.dir, self.log if self.fd2 == "file" else "")
        return self.rc

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def cleanup(self):
        self.kill()
        try:
            self.client.close()
        except OSError:
            pass
        if self.unix_log is not None:
            self.unix_log.close()

    def _drain_unix(self):
        self.unix_log.setblocking(False)
        out = b""
        try:
            while True:
                chunk = self.unix_log.recv(65536)
                if not chunk:
                    break
                out += chunk
        except BlockingIOError:
            pass
        return out.decode("latin-1")

    # -- what happened

    @property
    def log(self):
        return self.stderr_path.read_bytes().decode("latin-1")

    def log_lines(self):
        """The log lines, each checked to carry the stderr prefix."""
        text = self.log
        assert text == "" or text.endswith("\n"), repr(text)
        lines = text.splitlines()
        for line in lines:
            assert line.startswith("sendwrap: "), "line without the " \
                "'sendwrap: ' prefix: %r\nlog:\n%s" % (line, text)
        return lines

    def errors(self):
        return [l for l in self.log_lines() if l.startswith("sendwrap: error ")]

    def verdict(self):
        """The one verdict line of the connection, parsed."""
        lines = [l for l in self.log_lines()
                 if not l.startswith("sendwrap: error ")]
        assert len(lines) == 1, "want one verdict line, log:\n" + self.log
        return parse_line(lines[0])

    def expect(self, word, **fields):
        """Check the verdict line: its word and exactly these fields.

        ip and port default to the client's address; pass ip=None or
        port=None to leave a field out.
        """
        got_word, got = self.verdict()
        assert got_word == word, "verdict %r, want %r; log:\n%s" % (
            got_word, word, self.log)
        want = {}
        if self.peer in ("ipv4", "mapped"):
            want = {"ip": "127.0.0.1", "port": self.client_port}
        elif self.peer == "ipv6":
            want = {"ip": "::1", "port": self.client_port}
        want.update(fields)
        want = {k: v for k, v in want.items() if v is not None}
        check_fields(got, want)
        if word == "pass":
            assert float(got["waited"]) >= float(got["delay"]), got
        return got

    def spawn_state(self):
        """The signal state sendwrap was started with."""
        return json.loads((self.dir / "spawn.json").read_text())

    def ran(self):
        """Did sendwrap exec the program?"""
        return (self.dir / "status").exists()

    def mta_fds(self):
        """The descriptors the program was handed, {fd: target}, less
        valgrind's own log file."""
        fds = {int(k): v for k, v in self.record()["fds"].items()}
        if VALGRIND:
            fds = {k: v for k, v in fds.items()
                   if not v.startswith(str(self.dir / "valgrind."))}
        return fds

    def record(self):
        path = self.dir / "record.json"
        assert path.exists(), "the program did not run (or did not finish)" \
            "; log:\n" + (self.log if self.fd2 == "file" else "")
        return json.loads(path.read_text())


def run_plain(workdir, args, env=None, stdin=subprocess.DEVNULL, timeout=T,
              user=None):
    """Run sendwrap with no connection (-n, --compile, -h, -V); user: a
    uid to run it as (workdir is made writable for it)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if user is not None:
        workdir.chmod(0o777)
    r = subprocess.run(command(workdir, args), stdin=stdin,
                       capture_output=True, env=make_env(workdir, env),
                       timeout=timeout,
                       preexec_fn=None if user is None else
                       lambda: drop_to(user))
    out = r.stdout.decode("latin-1")
    err = r.stderr.decode("latin-1")
    check_tools(workdir, out + err)
    return r.returncode, out, err


def greet_all(runs, deadline):
    """Many connections at once: read each one's greeting (or whatever it
    gets up to its end of file), then QUIT and finish every one; all by
    deadline (a time.monotonic() value)."""
    pending = {r.client.rfd: r for r in runs}
    while pending:
        left = deadline - time.monotonic()
        assert left > 0, "%d connections not greeted" % len(pending)
        ready, _, _ = select.select(list(pending), [], [], min(left, 1))
        for fd in ready:
            r = pending[fd]
            r.client._read(deadline)
            if GREETING in r.client.data or r.client.eof:
                del pending[fd]
    for r in runs:
        r.finish(max(1, deadline - time.monotonic()), quit=True)
