"""Helpers for the end-to-end tests: real tcpserver, inetd, exim, swaks.

Everything listens on loopback only (127.0.0.0/8 and ::1).  Every process
started here runs in a process group of its own, recorded so that the
tests' finalizers (and, as a last resort, tests/e2e/run's EXIT trap) can
stop it by its group id.
"""

import os
import pwd
import re
import select
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SENDWRAP = os.path.abspath(os.environ.get("SENDWRAP") or
                           os.path.join(REPO, "sendwrap"))
EXIM = "/usr/sbin/exim4"
TCPSERVER = shutil.which("tcpserver") or "/usr/bin/tcpserver"
TCPRULES = shutil.which("tcprules") or "/usr/bin/tcprules"
INETD = "/usr/sbin/inetd"
SWAKS = shutil.which("swaks") or "/usr/bin/swaks"
EXIM_USER = "Debian-exim"
# what /proc/PID/stat shows for a sendwrap that has not exec'd yet
SENDWRAP_COMM = os.path.basename(SENDWRAP)[:15]

# The environment handed to every server: nothing of the caller's leaks in
# (a GREETDELAY or RELAYCLIENT in the developer's shell would change
# sendwrap's verdicts).
SERVER_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}

REJECT_554 = b"554 5.5.1 SMTP protocol violation: input before greeting\r\n"
UNAVAILABLE_421 = b"421 4.3.0 Service temporarily unavailable\r\n"

PGID_FILE = os.environ.get("E2E_PGID_FILE")


class E2EError(Exception):
    pass


# ---------------------------------------------------------------- processes

_groups = []            # Popen objects started by start_group, newest last
_groups_lock = threading.Lock()


def start_group(argv, **kw):
    """Start argv as the leader of a new process group (session)."""
    kw.setdefault("env", dict(SERVER_ENV))
    kw.setdefault("stdin", subprocess.DEVNULL)
    p = subprocess.Popen(argv, start_new_session=True, **kw)
    with _groups_lock:
        _groups.append(p)
    if PGID_FILE:
        with open(PGID_FILE, "a") as f:
            f.write("%d\n" % p.pid)
    return p


def stop_group(p, grace=3.0):
    """SIGTERM the group led by p, then SIGKILL whatever is left of it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
        if wait_until(lambda: p.poll() is not None and
                      not group_members(p.pid), grace):
            break
    try:
        p.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    with _groups_lock:
        if p in _groups:
            _groups.remove(p)


def stop_all():
    with _groups_lock:
        groups = list(_groups)
    for p in reversed(groups):
        stop_group(p)


def proc_stat(pid):
    """(comm, state, ppid, pgid) of a process, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    lp, rp = data.index("("), data.rindex(")")
    rest = data[rp + 2:].split()
    return data[lp + 1:rp], rest[0], int(rest[1]), int(rest[2])


def all_procs():
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st:
                out.append((int(name),) + st)
    return out          # (pid, comm, state, ppid, pgid)


def group_members(pgid):
    return [p for p in all_procs() if p[4] == pgid]


def children(ppid):
    return [p for p in all_procs() if p[3] == ppid]


def wait_until(pred, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return v
        time.sleep(step)


# ---------------------------------------------------------------- workdir

def make_workdir(base, name):
    """A directory under base whose parents Debian-exim can traverse."""
    d = tempfile.mkdtemp(prefix=name + ".", dir=base)
    os.chmod(d, 0o755)
    return d


def exim_ids():
    pw = pwd.getpwnam(EXIM_USER)
    return pw.pw_uid, pw.pw_gid


def exim_dir(path):
    uid, gid = exim_ids()
    os.makedirs(path, exist_ok=True)
    os.chown(path, uid, gid)
    os.chmod(path, 0o750)
    return path


# ---------------------------------------------------------------- exim

EXIM_COMMON = """\
exim_user = {user}
exim_group = {user}
spool_directory = {spool}
log_file_path = {log}/%slog
keep_environment =
host_lookup =
helo_lookup_domains =
rfc1413_hosts =
tls_advertise_hosts =
chunking_advertise_hosts =
pipelining_connect_advertise_hosts =
prdr_enable = false
"""

RECEIVER_CONF = EXIM_COMMON + """\
primary_hostname = {hostname}
qualify_domain = sendwrap.test
log_selector = +smtp_connection
smtp_enforce_sync = {enforce_sync}
queue_only = true
acl_smtp_rcpt = acl_rcpt
acl_smtp_data = acl_data

begin acl

acl_rcpt:
  accept

acl_data:
  accept

begin routers

begin transports
"""

SENDER_CONF = EXIM_COMMON + """\
primary_hostname = sender.sendwrap.test
log_selector = +outgoing_port
qualify_domain = sender.sendwrap.test

begin routers

to_listener:
  driver = manualroute
  route_list = * {host}
  self = send
  transport = to_listener

begin transports

to_listener:
  driver = smtp
  port = {port}
  allow_localhost
  hosts_avoid_tls = *
  hosts_try_chunking =
  hosts_try_fastopen =
  hosts_try_prdr =
  connect_timeout = 20s
  command_timeout = 60s

begin retry

*  *  F,1h,1m
"""


class Message:
    def __init__(self, mid, sender, recipients, headers, body):
        self.id = mid
        self.sender = sender
        self.recipients = recipients
        self.headers = headers          # list of (name, value), unfolded
        self.body = body                # bytes, LF line ends as exim stores

    def header(self, name):
        vals = [v for n, v in self.headers if n.lower() == name.lower()]
        return vals[0] if len(vals) == 1 else (vals or None)

    def __repr__(self):
        return "<Message %s %r>" % (self.id, self.header("Subject"))


_HDR_RE = re.compile(rb"(\d{3,})(.) ")


def read_spool_message(input_dir, mid):
    """Parse exim's -H and -D spool files (spec: exim spec, ch. spool files)."""
    with open(os.path.join(input_dir, mid + "-H"), "rb") as f:
        h = f.read()
    with open(os.path.join(input_dir, mid + "-D"), "rb") as f:
        d = f.read()
    first_nl = d.index(b"\n")
    if d[:first_nl] != (mid + "-D").encode():
        raise E2EError("bad -D file for " + mid)
    body = d[first_nl + 1:]
    meta, sep, hdrs = h.partition(b"\n\n")
    if not sep:
        raise E2EError("bad -H file for " + mid)
    lines = meta.split(b"\n")
    sender = lines[2].decode("latin-1")
    if sender.startswith("<") and sender.endswith(">"):
        sender = sender[1:-1]
    # the recipient count is the last line before the recipients
    nrec = None
    for i in range(len(lines) - 1, 2, -1):
        if lines[i].isdigit() and len(lines) - 1 - i == int(lines[i]):
            nrec = int(lines[i])
            recipients = [x.decode("latin-1") for x in lines[i + 1:]]
            break
    if nrec is None:
        raise E2EError("no recipients in -H file for " + mid)
    headers = []
    pos = 0
    while pos < len(hdrs):
        m = _HDR_RE.match(hdrs, pos)
        if not m:
            raise E2EError("bad header section in %s at %d" % (mid, pos))
        n = int(m.group(1))
        text = hdrs[m.end():m.end() + n]
        pos = m.end() + n
        if m.group(2) == b"*":
            continue            # a header exim marked as deleted
        name, _, value = text.decode("utf-8", "replace").partition(":")
        value = re.sub(r"\n[ \t]", " ", value).strip()
        headers.append((name, value))
    return Message(mid, sender, recipients, headers, body)


class EximReceiver:
    """exim -bs in queue-only mode with its own config, spool and log."""

    def __init__(self, base, name="mx", hostname="mx.sendwrap.test",
                 enforce_sync=False):
        self.dir = make_workdir(base, name)
        self.spool = exim_dir(os.path.join(self.dir, "spool"))
        self.logdir = exim_dir(os.path.join(self.dir, "log"))
        self.conf = os.path.join(self.dir, "exim.conf")
        self.hostname = hostname
        with open(self.conf, "w") as f:
            f.write(RECEIVER_CONF.format(
                user=EXIM_USER, spool=self.spool, log=self.logdir,
                hostname=hostname,
                enforce_sync="true" if enforce_sync else "false"))
        r = subprocess.run([EXIM, "-C", self.conf, "-bV"],
                           capture_output=True, env=SERVER_ENV, timeout=30)
        if r.returncode != 0:
            raise E2EError("exim rejects its test config: %r" % r.stderr)

    def argv(self):
        return [EXIM, "-bs", "-C", self.conf, "-odq"]

    def message_ids(self):
        d = os.path.join(self.spool, "input")
        if not os.path.isdir(d):
            return []
        return sorted(n[:-2] for n in os.listdir(d) if n.endswith("-H"))

    def messages(self):
        d = os.path.join(self.spool, "input")
        return [read_spool_message(d, m) for m in self.message_ids()]

    def queue_listing(self):
        r = subprocess.run([EXIM, "-C", self.conf, "-bp"], capture_output=True,
                           env=SERVER_ENV, timeout=30)
        return r.stdout.decode("utf-8", "replace")

    def mainlog(self):
        try:
            with open(os.path.join(self.logdir, "mainlog"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def connections(self):
        """How many SMTP sessions exim has started (log_selector +smtp_connection)."""
        return len(re.findall(
            r"^\S+ \S+ SMTP connection from \[[^\]]+\](?::\d+)? "
            r"\(via inetd\)$", self.mainlog(), re.M))


class EximSender:
    """A second exim that relays everything to host:port as a smarthost."""

    def __init__(self, base, host, port):
        self.dir = make_workdir(base, "sender")
        self.spool = exim_dir(os.path.join(self.dir, "spool"))
        self.logdir = exim_dir(os.path.join(self.dir, "log"))
        self.conf = os.path.join(self.dir, "exim.conf")
        with open(self.conf, "w") as f:
            f.write(SENDER_CONF.format(user=EXIM_USER, spool=self.spool,
                                       log=self.logdir, host=host, port=port))

    def exim(self, *args, stdin=None, timeout=60):
        return subprocess.run([EXIM, "-C", self.conf] + list(args),
                              input=stdin, capture_output=True,
                              env=SERVER_ENV, timeout=timeout)

    def submit(self, mail_from, rcpt, message):
        r = self.exim("-odq", "-oi", "-f", mail_from, "--", rcpt,
                      stdin=message)
        if r.returncode != 0:
            raise E2EError("exim submission failed: %r" % r.stderr)

    def queue_count(self):
        r = self.exim("-bpc")
        return int(r.stdout.strip() or b"0")

    def run_queue(self, timeout=60):
        """One forced queue run in the foreground; returns its duration."""
        t0 = time.monotonic()
        r = self.exim("-qff", timeout=timeout)
        if r.returncode != 0:
            raise E2EError("exim -qff failed: %r" % r.stderr)
        return time.monotonic() - t0

    def mainlog(self):
        try:
            with open(os.path.join(self.logdir, "mainlog"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""


# ---------------------------------------------------------------- servers

class TcpServer:
    """ucspi-tcp(-ipv6) tcpserver on a loopback address, port chosen by it.

    Its stderr (and so the stderr of sendwrap, which inherits it, like the
    pipe to multilog in a real run script) goes to a log file.
    """

    def __init__(self, base, argv, host="127.0.0.1", rules=None,
                 concurrency=40, backlog=None, opts=(), uid=None, gid=None):
        self.dir = make_workdir(base, "tcpserver")
        self.logpath = os.path.join(self.dir, "stderr.log")
        cmd = [TCPSERVER, "-v", "-1", "-H", "-R", "-l0",
               "-c%d" % concurrency]
        if backlog:
            cmd.append("-b%d" % backlog)
        if rules:
            cmd.append("-x" + rules)
        if uid is not None:
            cmd += ["-u%d" % uid, "-g%d" % gid]
        cmd += list(opts) + [host, "0"] + list(argv)
        self.host = host
        logf = open(self.logpath, "ab")
        self.proc = start_group(cmd, stdout=subprocess.PIPE, stderr=logf)
        logf.close()
        self.pid = self.proc.pid
        self.port = self._read_port()

    def _read_port(self):
        out = b""
        deadline = time.monotonic() + 10
        fd = self.proc.stdout.fileno()
        while b"\n" not in out:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                stop_group(self.proc)
                raise E2EError("tcpserver did not start: %r %s"
                               % (out, self.log()))
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 100)
                if not chunk:
                    continue
                out += chunk
        return int(out.split(b"\n")[0])

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def sendwrap_lines(self):
        return [l[len("sendwrap: "):] for l in self.log().splitlines()
                if l.startswith("sendwrap: ")]

    def wait_lines(self, pattern, count=1, timeout=10):
        rx = re.compile(pattern)
        return wait_until(
            lambda: (lambda m: m if len(m) >= count else None)(
                [l for l in self.sendwrap_lines() if rx.search(l)]),
            timeout) or []

    def end_statuses(self):
        """{pid: raw wait status} from tcpserver -v 'end PID status N'."""
        return {int(a): int(b) for a, b in
                re.findall(r"^tcpserver: end (\d+) status (\d+)$", self.log(),
                           re.M)}

    def wait_ends(self, count=1, timeout=10):
        return wait_until(lambda: (lambda e: e if len(e) >= count else None)(
            self.end_statuses()), timeout) or self.end_statuses()

    def pids(self):
        return [int(x) for x in
                re.findall(r"^tcpserver: pid (\d+) from ", self.log(), re.M)]

    def children(self):
        return children(self.pid)

    def waiting_sendwraps(self):
        return [c for c in children(self.pid) if c[1] == SENDWRAP_COMM]

    def stop(self):
        stop_group(self.proc)


def compile_tcprules(base, text):
    d = make_workdir(base, "rules")
    cdb, tmp = os.path.join(d, "rules.cdb"), os.path.join(d, "rules.tmp")
    r = subprocess.run([TCPRULES, cdb, tmp], input=text.encode(),
                       capture_output=True, timeout=30)
    if r.returncode != 0:
        raise E2EError("tcprules failed: %r" % r.stderr)
    return cdb


class SyslogListener:
    """A datagram socket standing in for /dev/log (for inetd's children)."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        os.chmod(path, 0o666)
        self.records = []         # (facility, severity, tag, text)
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(0.2)
        rx = re.compile(rb"^<(\d+)>(?:\w{3} [ \d]\d \d\d:\d\d:\d\d )?"
                        rb"([^:\[ ]+)(?:\[(\d+)\])?: (.*)$", re.S)
        while self.running:
            try:
                data = self.sock.recv(8192)
            except socket.timeout:
                continue
            except OSError:
                break
            m = rx.match(data.rstrip(b"\n\0"))
            with self.lock:
                if m:
                    pri = int(m.group(1))
                    self.records.append((pri >> 3, pri & 7,
                                         m.group(2).decode(),
                                         int(m.group(3) or 0),
                                         m.group(4).decode("utf-8",
                                                           "replace")))
                else:
                    self.records.append((None, None, None, 0,
                                         data.decode("utf-8", "replace")))

    def sendwrap_records(self):
        with self.lock:
            return [r for r in self.records if r[2] == "sendwrap"]

    def wait_lines(self, pattern, count=1, timeout=10):
        rx = re.compile(pattern)
        return wait_until(
            lambda: (lambda m: m if len(m) >= count else None)(
                [r for r in self.sendwrap_records() if rx.search(r[4])]),
            timeout) or []

    def close(self):
        self.running = False
        self.thread.join(2)
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


# /dev/log for inetd's children: inside a private mount namespace, /dev is
# a small tmpfs with the few device nodes bound in from the real /dev and
# /dev/log a symlink to the test's listener.  Nothing outside changes.
NS_SETUP = r"""
set -e
w=$1 sock=$2; shift 2
mkdir -p "$w/hostdev"
mount --bind /dev "$w/hostdev"
mount -t tmpfs -o mode=0755,size=1m sendwrap-e2e-dev /dev
for n in null zero full random urandom tty; do
    [ -e "$w/hostdev/$n" ] || continue
    : > "/dev/$n"
    mount --bind "$w/hostdev/$n" "/dev/$n"
done
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr
mkdir /dev/shm /dev/pts
ln -s "$sock" /dev/log
umount -l "$w/hostdev"
exec "$@"
"""


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def listening(port, v6=False):
    path = "/proc/net/tcp6" if v6 else "/proc/net/tcp"
    try:
        with open(path) as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[3] == "0A" and int(parts[1].split(":")[1], 16) == port:
                    return True
    except FileNotFoundError:
        pass
    return False


class Inetd:
    """openbsd-inetd in debug mode (-d, foreground) with a test config.

    service_argv: the program path followed by its argv (argv[0] first),
    as in an inetd.conf line.  Its children log to syslog through a
    listener that only they see as /dev/log.
    """

    def __init__(self, base, service_argv, v6=False):
        self.dir = make_workdir(base, "inetd")
        self.syslog = SyslogListener(os.path.join(self.dir, "log.sock"))
        self.nsscript = os.path.join(self.dir, "ns-setup.sh")
        with open(self.nsscript, "w") as f:
            f.write(NS_SETUP)
        os.chmod(self.nsscript, 0o755)
        self.conf = os.path.join(self.dir, "inetd.conf")
        self.logpath = os.path.join(self.dir, "inetd.out")
        self.v6 = v6
        self.host = "::1" if v6 else "127.0.0.1"
        last = None
        for _ in range(5):
            port = free_port(socket.AF_INET6 if v6 else socket.AF_INET,
                             self.host)
            with open(self.conf, "w") as f:
                f.write("%s:%d stream %s nowait root %s\n" % (
                    "[::1]" if v6 else "127.0.0.1", port,
                    "tcp6" if v6 else "tcp4", " ".join(service_argv)))
            logf = open(self.logpath, "ab")
            self.proc = start_group(
                ["unshare", "--mount", "--propagation", "private",
                 "/bin/sh", self.nsscript, self.dir, self.syslog.path,
                 INETD, "-d", self.conf],
                stdout=logf, stderr=subprocess.STDOUT)
            logf.close()
            ok = wait_until(lambda: self.proc.poll() is not None or
                            listening(port, v6), 10)
            if ok and self.proc.poll() is None:
                self.port = port
                self.pid = self.proc.pid
                return
            last = self.log()
            stop_group(self.proc)
        self.syslog.close()
        raise E2EError("inetd did not start: %s" % last)

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        stop_group(self.proc)
        self.syslog.close()


# ---------------------------------------------------------------- clients

class LineReader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.raw = b""          # everything received, for stream checks
        self.reset = False      # did the stream end in a reset?

    def readline(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no line before the deadline")
            self.sock.settimeout(left)
            chunk = self.sock.recv(4096)
            if not chunk:
                line, self.buf = self.buf, b""
                return line
            self.raw += chunk
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def read_reply(self, deadline):
        """One SMTP reply, all its lines; [] at end of stream."""
        lines = []
        while True:
            line = self.readline(deadline)
            if not line:
                return lines
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                return lines

    def read_to_eof(self, deadline):
        out = self.buf
        self.buf = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no end of stream before the deadline")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                self.reset = True
                return out
            if not chunk:
                return out
            self.raw += chunk
            out += chunk


def connect(host, port, source=None, timeout=10):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if source:
        s.bind((source, 0))
    s.connect((host, port))
    return s


class Greeting:
    """Connect and time the greeting: first byte and the final '220 ' line."""

    def __init__(self, host, port, source=None, timeout=20):
        self.t0 = time.monotonic()
        self.sock = connect(host, port, source)
        self.reader = LineReader(self.sock)
        deadline = self.t0 + timeout
        self.lines = []
        self.t_first = self.t_final = None
        while True:
            line = self.reader.readline(deadline)
            if not line:
                break
            if self.t_first is None:
                self.t_first = time.monotonic() - self.t0
            self.lines.append((time.monotonic() - self.t0, line))
            if line[3:4] != b"-":
                self.t_final = time.monotonic() - self.t0
                break

    def final(self):
        return self.lines[-1][1] if self.lines else b""

    def quit(self, timeout=10):
        deadline = time.monotonic() + timeout
        self.sock.sendall(b"QUIT\r\n")
        reply = self.reader.read_reply(deadline)
        rest = self.reader.read_to_eof(deadline)
        self.sock.close()
        return reply, rest


def bot(host, port, payload, source=None, timeout=20, wait_first_line=False):
    """A blind-pipelining client: everything in one write, then read to EOF.

    Returns (bytes received, seconds from connect to end of stream,
    True if the stream ended in a reset rather than an orderly close).
    """
    t0 = time.monotonic()
    s = connect(host, port, source)
    r = LineReader(s)
    try:
        if wait_first_line:
            r.readline(t0 + timeout)
        s.sendall(payload)
        r.read_to_eof(t0 + timeout)
    finally:
        s.close()
    return r.raw, time.monotonic() - t0, r.reset


def bot_payload(tag="bot", body_kib=16):
    filler = ("".join("spam line %d of %s, buy now\r\n" % (i, tag)
                      for i in range(body_kib * 1024 // 32)))
    return ("EHLO bot.invalid\r\n"
            "MAIL FROM:<spammer@bot.invalid>\r\n"
            "RCPT TO:<victim@sendwrap.test>\r\n"
            "DATA\r\n"
            "From: spammer@bot.invalid\r\n"
            "To: victim@sendwrap.test\r\n"
            "Subject: BOT %s\r\n"
            "\r\n%s"
            ".\r\n"
            "QUIT\r\n" % (tag, filler)).encode()


def make_message(tag, n=0):
    """A message whose headers and body exercise the transfer: a leading
    dot (dot-stuffing), a long line, tabs, trailing blanks, UTF-8.

    Returns (bytes to send, {header: value}, body as exim stores it).
    """
    headers = {
        "From": "Sender %d <sender%d@client.sendwrap.test>" % (n, n),
        "To": "rcpt%d@sendwrap.test" % n,
        "Subject": "e2e %s #%d" % (tag, n),
        "Message-ID": "<e2e-%s-%d@client.sendwrap.test>" % (tag, n),
        "X-E2E-Tag": "%s-%d" % (tag, n),
    }
    body_lines = [
        "Hello, this is message %d of %s." % (n, tag),
        ".a line that starts with a dot",
        "..two dots",
        ".",
        "\ttab-indented line\twith tabs",
        "trailing blanks   ",
        "",
        "x" * 900,
        "UTF-8: Gr\u00fc\u00dfe, \u65e5\u672c",
        "end of %s #%d" % (tag, n),
    ]
    body = ("\n".join(body_lines) + "\n").encode("utf-8")
    text = "".join("%s: %s\r\n" % kv for kv in headers.items())
    text += "Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n\r\n"
    raw = text.encode() + body.replace(b"\n", b"\r\n")
    return raw, headers, body


def smtp_deliver(host, port, raw, mail_from, rcpt, source=None, timeout=60):
    """Deliver with smtplib; returns the greeting latency in seconds."""
    t0 = time.monotonic()
    kw = {"source_address": (source, 0)} if source else {}
    s = smtplib.SMTP(host, port, local_hostname="client.sendwrap.test",
                     timeout=timeout, **kw)
    greet = time.monotonic() - t0
    try:
        s.ehlo()
        refused = s.sendmail(mail_from, [rcpt], raw)
        if refused:
            raise E2EError("recipients refused: %r" % refused)
        s.quit()
    finally:
        s.close()
    return greet


def write_swaks_data(path, raw):
    """swaks ends DATA with CRLF.CRLF itself: leave the last CRLF out."""
    assert raw.endswith(b"\r\n")
    with open(path, "wb") as f:
        f.write(raw[:-2])
    return path


def swaks(host, port, to, data_file=None, source=None, extra=(), timeout=60):
    """Run swaks; returns (exit code, transcript, greeting latency, wall)."""
    cmd = [SWAKS, "--server", host, "--port", str(port), "--to", to,
           "--from", "swaks@client.sendwrap.test",
           "--helo", "client.sendwrap.test", "-stl", "--timeout", "40"]
    if ":" in host:
        cmd.append("-6")
    if source:
        cmd += ["--local-interface", source]
    if data_file:
        cmd += ["--data", "@" + data_file]
    cmd += list(extra)
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, timeout=timeout,
                       env=dict(SERVER_ENV, HOME="/nonexistent"))
    wall = time.monotonic() - t0
    out = r.stdout.decode("utf-8", "replace") + r.stderr.decode("utf-8",
                                                                "replace")
    m = re.search(r"=== response in ([\d.]+)s", out)
    return r.returncode, out, float(m.group(1)) if m else None, wall


def check_message(msg, headers, body):
    """Assert that a queued message carries the sent headers and body."""
    for k, v in headers.items():
        got = msg.header(k)
        assert got == v, "header %s: sent %r, queued %r" % (k, v, got)
    assert msg.body == body, "body differs:\nsent   %r\nqueued %r" % (
        body, msg.body)


def smtp_lines_only(stream):
    """True if every line of a server stream is an SMTP reply line."""
    for line in stream.split(b"\r\n"):
        if line and not re.match(rb"^[2-5]\d\d[ -]", line):
            return False
    return stream.endswith(b"\r\n") or stream == b""
