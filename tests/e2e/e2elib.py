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
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
import proclib  # noqa: E402  (tests/proclib.py: /proc for tests and bench)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SENDWRAP = os.path.abspath(os.environ.get("SENDWRAP") or
                           os.path.join(REPO, "sendwrap"))
EXIM = "/usr/sbin/exim4"
TCPSERVER = shutil.which("tcpserver") or "/usr/bin/tcpserver"
TCPRULES = shutil.which("tcprules") or "/usr/bin/tcprules"
INETD = "/usr/sbin/inetd"
SWAKS = shutil.which("swaks") or "/usr/bin/swaks"
SOCKET_ACTIVATE = "/usr/bin/systemd-socket-activate"
SYSTEMD_ANALYZE = "/usr/bin/systemd-analyze"
M4 = "/usr/bin/m4"
# Unpacked from Debian's packages into build/ by tests/deps (each conflicts
# with a package the other tests need installed: see tests/deps).
XINETD = os.path.join(REPO, "build", "xinetd", "usr", "sbin", "xinetd")
SENDMAIL_ROOT = os.path.join(REPO, "build", "sendmail")
SENDMAIL = os.path.join(SENDMAIL_ROOT, "usr", "libexec", "sendmail",
                        "sendmail")
SENDMAIL_CF_M4 = os.path.join(SENDMAIL_ROOT, "usr", "share", "sendmail",
                              "cf", "m4", "cf.m4")
EXAMPLES = os.path.join(REPO, "examples")
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

# Timing bounds: never before 90 % of the delay (the client's clock starts
# before sendwrap's, so this is generous), and within the delay plus 8 s
# of slack for a loaded machine.
SLACK = 8.0


def assert_delayed(t, delay):
    assert t is not None, "no greeting"
    assert 0.9 * delay <= t <= delay + SLACK, \
        "greeting after %.3f s for a %.1f s delay" % (t, delay)


def assert_prompt(t, limit=2.0):
    assert t is not None, "no greeting"
    assert t < limit, "greeting after %.3f s, expected at once" % t


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


_at_stop = []           # closers of listeners that outlive one server


def at_stop(fn):
    """Call fn once the test's servers are stopped (stop_all)."""
    with _groups_lock:
        _at_stop.append(fn)


def outlive_test(p, closer=None):
    """Let the group led by p (and closer, an at_stop function) outlive
    the test that started it: stop_all leaves it alone, the module
    fixture that made it stops it (stop_group; closer()).  tests/e2e/run's
    trap still stops it after a crash."""
    with _groups_lock:
        if p in _groups:
            _groups.remove(p)
        if closer in _at_stop:
            _at_stop.remove(closer)


def stop_all():
    with _groups_lock:
        groups = list(_groups)
    for p in reversed(groups):
        stop_group(p)
    with _groups_lock:
        closers = list(_at_stop)
        del _at_stop[:]
    for fn in reversed(closers):
        fn()


# /proc, through the one reader the tests and benchmarks share: a
# process is a proclib.Stat, whose first fields are (pid, comm, state,
# ppid, pgid).
all_procs = proclib.processes
group_members = proclib.group
children = proclib.children


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
host_lookup =
helo_lookup_domains =
rfc1413_hosts =
tls_advertise_hosts =
chunking_advertise_hosts =
pipelining_connect_advertise_hosts =
prdr_enable = false
"""

RECEIVER_CONF = EXIM_COMMON + """\
keep_environment = {keep_environment}
primary_hostname = {hostname}
qualify_domain = sendwrap.test
log_selector = +smtp_connection{log_selector}
smtp_enforce_sync = {enforce_sync}
queue_only = true
acl_smtp_rcpt = {rcpt_acl}
acl_smtp_data = acl_data
{main}
begin acl

acl_rcpt:
  accept

acl_data:
  accept
{acls}
begin routers
{routers}
begin transports
{transports}"""

SENDER_CONF = EXIM_COMMON + """\
keep_environment =
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
    msg = Message(mid, sender, recipients, headers, body)
    # the client's address as exim recorded it: "-host_address [IP]:PORT"
    # (older spools: IP.PORT)
    addr = [l.split()[1].decode() for l in lines
            if l.startswith(b"-host_address ")]
    msg.host_address = None
    if addr:
        m = re.match(r"^\[([^\]]+)\]:\d+$", addr[0])
        msg.host_address = m.group(1) if m else addr[0].rsplit(".", 1)[0]
    return msg


def exim_mainlog(logdir):
    """The text of an exim's mainlog ("" before its first line)."""
    try:
        with open(os.path.join(logdir, "mainlog"), "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


class EximReceiver:
    """exim -bs in queue-only mode with its own config, spool and log."""

    name = "exim"
    program = "exim4"           # its name in /proc/PID/stat
    binary = EXIM
    greeting = re.compile(rb"^220 mx\.sendwrap\.test ESMTP Exim \d")
    ns = None                   # runs anywhere

    def __init__(self, base, name="mx", hostname="mx.sendwrap.test",
                 enforce_sync=False, main="", rcpt_acl="acl_rcpt", acls="",
                 routers="", transports="", log_selector="",
                 keep_environment=""):
        """main, acls, routers, transports: text added to those sections
        of the configuration; rcpt_acl: the RCPT ACL's name; log_selector:
        added to +smtp_connection; keep_environment: the variables exim
        keeps (a colon-separated list; by default none)."""
        self.dir = make_workdir(base, name)
        self.spool = exim_dir(os.path.join(self.dir, "spool"))
        self.logdir = exim_dir(os.path.join(self.dir, "log"))
        self.conf = os.path.join(self.dir, "exim.conf")
        self.hostname = hostname
        with open(self.conf, "w") as f:
            f.write(RECEIVER_CONF.format(
                user=EXIM_USER, spool=self.spool, log=self.logdir,
                hostname=hostname,
                enforce_sync="true" if enforce_sync else "false",
                main=main, rcpt_acl=rcpt_acl, acls=acls, routers=routers,
                transports=transports, log_selector=log_selector,
                keep_environment=keep_environment))
        r = subprocess.run([self.binary, "-C", self.conf, "-bV"],
                           capture_output=True, env=SERVER_ENV, timeout=30)
        if r.returncode != 0:
            raise E2EError("exim rejects its test config: %r" % r.stderr)

    def argv(self):
        return [self.binary, "-bs", "-C", self.conf, "-odq"]

    def message_ids(self):
        d = os.path.join(self.spool, "input")
        if not os.path.isdir(d):
            return []
        return sorted(n[:-2] for n in os.listdir(d) if n.endswith("-H"))

    def messages(self):
        d = os.path.join(self.spool, "input")
        return [read_spool_message(d, m) for m in self.message_ids()]

    def queue_listing(self):
        r = subprocess.run([self.binary, "-C", self.conf, "-bp"],
                           capture_output=True,
                           env=SERVER_ENV, timeout=30)
        return r.stdout.decode("utf-8", "replace")

    def mainlog(self):
        return exim_mainlog(self.logdir)

    def connections(self):
        """How many SMTP sessions exim has started (log_selector +smtp_connection)."""
        return len(re.findall(
            r"^\S+ \S+ SMTP connection from \[[^\]]+\](?::\d+)? "
            r"\(via inetd\)$", self.mainlog(), re.M))


SENDMAIL_MC = """\
divert(-1)
# sendmail for the e2e tests: it takes mail for sendwrap.test into its
# own queue, to be relayed from there (the tests only queue, -odq), and
# relays for nobody else.  Every file it reads is the test's.
divert(0)dnl
include(`{cfm4}')dnl
VERSIONID(`sendwrap e2e')dnl
OSTYPE(`linux')dnl
define(`QUEUE_DIR', `{queue}')dnl
define(`STATUS_FILE', `{dir}/statistics')dnl
define(`ALIAS_FILE', `')dnl
define(`confCW_FILE', `{dir}/local-host-names')dnl
define(`confSERVICE_SWITCH_FILE', `{dir}/service.switch')dnl
define(`confHOSTS_FILE', `{dir}/hosts')dnl
define(`confDONT_PROBE_INTERFACES', `True')dnl
define(`confLOG_LEVEL', `20')dnl
FEATURE(`nocanonify')dnl
FEATURE(`accept_unresolvable_domains')dnl
RELAY_DOMAIN(`sendwrap.test')dnl
MAILER(`smtp')dnl
"""


def read_sendmail_queue_file(queue, qid):
    """Parse sendmail's qf (control) and df (body) files (sendmail's
    doc/op, "The Queue"): sender, recipients, the unconditional headers
    (a ?flags? header is only added for some mailers), the $ macros."""
    with open(os.path.join(queue, "qf" + qid), "rb") as f:
        lines = f.read().decode("utf-8", "replace").split("\n")
    with open(os.path.join(queue, "df" + qid), "rb") as f:
        body = f.read()
    sender, recipients, headers, macros = None, [], [], {}
    keep = None             # the header being read: True, False (skipped)
    for line in lines:
        if line[:1] in (" ", "\t") and keep is not None:
            if keep:
                name, value = headers[-1]
                headers[-1] = (name, value + "\n" + line)
            continue
        keep = None
        if line == ".":
            break
        kind, rest = line[:1], line[1:]
        if kind == "S":
            sender = rest.strip("<>")
        elif kind == "R":
            recipients.append(rest.split(":", 1)[1].strip("<>"))
        elif kind == "H":
            m = re.match(r"^\?([^?]*)\?(.*)$", rest) or re.match(
                r"^()(.*)$", rest)
            keep = not m.group(1)
            if keep:
                name, _, value = m.group(2).partition(":")
                headers.append((name, value))
        elif kind == "$":
            m = re.match(r"^(\{[^}]*\}|.)(.*)$", rest)
            macros[m.group(1)] = m.group(2)
    if sender is None:
        raise E2EError("no sender in qf%s" % qid)
    headers = [(n, re.sub(r"\n[ \t]", " ", v).strip()) for n, v in headers]
    msg = Message(qid, sender, recipients, headers, body)
    msg.macros = macros
    return msg


class Sendmail:
    """Debian's sendmail 8.17 (unpacked in build/sendmail by tests/deps) as
    sendmail -bs -C CF -odq, with a configuration built here with m4 from
    its cf/m4 (SENDMAIL_MC), its own queue, and a PrivateNS (self.ns) that
    every server in front of it must run in: sendmail wants a qualified
    host name, and logs (LogLevel 20: each session's connect and every
    command and reply) to syslog, which self.ns.syslog receives.
    """

    name = "sendmail"
    program = "sendmail"
    greeting = re.compile(rb"^220 mx\.sendwrap\.test ESMTP Sendmail 8\.")

    def __init__(self, base, name="sendmail", hostname="mx.sendwrap.test"):
        self.dir = make_workdir(base, name)
        self.hostname = hostname
        self.queue = os.path.join(self.dir, "mqueue")
        os.mkdir(self.queue, 0o700)
        for n, text in (("local-host-names", ""),
                        ("service.switch", "hosts files\n"),
                        ("hosts", "127.0.0.1 %s\n" % hostname)):
            with open(os.path.join(self.dir, n), "w") as f:
                f.write(text)
        self.mc = os.path.join(self.dir, "sendmail.mc")
        self.cf = os.path.join(self.dir, "sendmail.cf")
        with open(self.mc, "w") as f:
            f.write(SENDMAIL_MC.format(cfm4=SENDMAIL_CF_M4, dir=self.dir,
                                       queue=self.queue))
        r = subprocess.run([M4, self.mc], capture_output=True, timeout=30)
        if r.returncode != 0 or r.stderr or b"\nCw" not in r.stdout:
            raise E2EError("m4 could not build sendmail.cf: %r" % r.stderr)
        with open(self.cf, "wb") as f:
            f.write(r.stdout)
        self.ns = PrivateNS(base, hostname=hostname)

    def argv(self):
        return [SENDMAIL, "-bs", "-C", self.cf, "-odq"]

    def message_ids(self, queue=None):
        q = queue or self.queue
        return sorted(n[2:] for n in os.listdir(q) if n.startswith("qf"))

    def messages(self, queue=None):
        q = queue or self.queue
        return [read_sendmail_queue_file(q, i) for i in self.message_ids(q)]

    def log(self):
        return [r[4] for r in self.ns.syslog.tagged("sendmail")]

    def connections(self):
        """How many SMTP sessions sendmail has started (its 'connect from'
        line, logged at the start of each)."""
        return sum(1 for t in self.log()
                   if re.match(r"^NOQUEUE: connect from ", t))

    def queue_listing(self):
        return "%s: %s" % (self.queue, sorted(os.listdir(self.queue)))


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
        return exim_mainlog(self.logdir)


# ---------------------------------------------------------------- servers

class StderrLog:
    """sendwrap's lines in a server's log (self.log(): the text)."""

    def sendwrap_lines(self):
        return [l[len("sendwrap: "):] for l in self.log().splitlines()
                if l.startswith("sendwrap: ")]

    def wait_lines(self, pattern, count=1, timeout=10):
        rx = re.compile(pattern)
        return wait_until(
            lambda: (lambda m: m if len(m) >= count else None)(
                [l for l in self.sendwrap_lines() if rx.search(l)]),
            timeout) or []


class TcpServer(StderrLog):
    """ucspi-tcp(-ipv6) tcpserver on a loopback address, port chosen by it.

    Its stderr (and so the stderr of sendwrap, which inherits it, like the
    pipe to multilog in a real run script) goes to a log file.  With ns (a
    PrivateNS) it runs inside that namespace.
    """

    def __init__(self, base, argv, host="127.0.0.1", rules=None,
                 concurrency=40, backlog=None, opts=(), uid=None, gid=None,
                 ns=None, stderr=None, localname="0", env=None):
        """stderr: a descriptor to write to instead of the log file (the
        pipe to a multilog, say; then log() has nothing).  localname: -l's
        argument; None: no -l, tcpserver looks its address up instead.
        env: its environment (SERVER_ENV)."""
        self.dir = make_workdir(base, "tcpserver")
        self.logpath = os.path.join(self.dir, "stderr.log")
        cmd = [TCPSERVER, "-v", "-1", "-H", "-R"] + (
            [] if localname is None else ["-l" + localname]) + [
            "-c%d" % concurrency]
        if backlog:
            cmd.append("-b%d" % backlog)
        if rules:
            cmd.append("-x" + rules)
        if uid is not None:
            cmd += ["-u%d" % uid, "-g%d" % gid]
        cmd += list(opts) + [host, "0"] + list(argv)
        if ns:
            cmd = ns.argv() + cmd
        self.ns = ns
        self.host = host
        logf = open(self.logpath, "ab")
        self.proc = start_group(cmd, stdout=subprocess.PIPE,
                                stderr=logf if stderr is None else stderr,
                                env=dict(env or SERVER_ENV))
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
    """A datagram socket standing in for /dev/log (for inetd's children).
    stall() stops its reading with its queue full, as a stuck log daemon
    would; resume() reads on."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        os.chmod(path, 0o666)
        self.records = []         # (facility, severity, tag, pid, text)
        self.raw = []             # each datagram as it came
        self.lock = threading.Lock()
        self.running = True
        self.reading = threading.Event()
        self.reading.set()
        self.idle = threading.Event()     # not reading, as asked
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def stall(self):
        """Stop reading, then fill the socket's queue (datagrams tagged
        "filler") until the kernel takes no more: a sender waits, or is
        told EAGAIN.  Returns the number of fillers."""
        self.reading.clear()
        assert self.idle.wait(5), "the reader did not stop"
        n = 0
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(self.path)
            while True:
                try:
                    s.send(b"<22>filler: %d" % n, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    return n
                n += 1

    def resume(self):
        self.idle.clear()
        self.reading.set()

    def _run(self):
        self.sock.settimeout(0.2)
        rx = re.compile(rb"^<(\d+)>(?:\w{3} [ \d]\d \d\d:\d\d:\d\d )?"
                        rb"([^:\[ ]+)(?:\[(\d+)\])?: (.*)$", re.S)
        while self.running:
            if not self.reading.is_set():
                self.idle.set()
                self.reading.wait(0.2)
                continue
            try:
                data = self.sock.recv(8192)
            except socket.timeout:
                continue
            except OSError:
                break
            m = rx.match(data.rstrip(b"\n\0"))
            with self.lock:
                self.raw.append(data)
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
        return self.tagged("sendwrap")

    def tagged(self, tag):
        with self.lock:
            return [r for r in self.records if r[2] == tag]

    def wait_lines(self, pattern, count=1, timeout=10, tag="sendwrap"):
        rx = re.compile(pattern)
        return wait_until(
            lambda: (lambda m: m if len(m) >= count else None)(
                [r for r in self.tagged(tag) if rx.search(r[4])]),
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
# /dev/log a symlink to the test's listener.  Given a host name (in a
# private UTS namespace too), it also sets the host name and binds the
# test's hosts and nsswitch.conf over /etc's.  Nothing outside changes.
NS_SETUP = r"""
set -e
w=$1 sock=$2 name=$3; shift 3
if [ "$name" != - ]; then
    hostname "$name"
    mount --bind "$w/hosts" /etc/hosts
    mount --bind "$w/nsswitch.conf" /etc/nsswitch.conf
fi
if [ -f "$w/passwd" ]; then
    mount --bind "$w/passwd" /etc/passwd
    mount --bind "$w/group" /etc/group
fi
if [ -f "$w/binds" ]; then
    while read -r from to; do mount --bind "$from" "$to"; done < "$w/binds"
fi
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


listening = proclib.listening


class PrivateNS:
    """A private mount namespace (see NS_SETUP) for a server and its
    children, whose /dev/log is self.syslog, a listener of the test.

    With a hostname, also a private UTS namespace with that host name, and
    a hosts file that names it for 127.0.0.1 and ::1 and an nsswitch.conf
    that looks host names up there only (no DNS): sendmail wants a
    qualified name of its own (it sleeps 60 s at start without one) and
    looks the client's address up.  The machine is not touched.

    users: names of users (each with a group of the same name) that the
    namespace's /etc/passwd and /etc/group have beside the machine's, for
    an MTA unpacked without its maintainer scripts (Postfix's postfix and
    postdrop, say); self.ids[name] is (uid, gid), numbers the machine
    does not use.  binds: (directory, mount point) pairs bound there
    inside the namespace (a mount point must exist).
    """

    def __init__(self, base, hostname=None, users=(), binds=()):
        # short: the socket's path must fit in sun_path (108 bytes)
        self.dir = make_workdir(base, "ns")
        self.syslog = SyslogListener(os.path.join(self.dir, "log"))
        self.hostname = hostname
        self.script = os.path.join(self.dir, "ns-setup.sh")
        with open(self.script, "w") as f:
            f.write(NS_SETUP)
        if hostname:
            short = hostname.split(".")[0]
            with open(os.path.join(self.dir, "hosts"), "w") as f:
                f.write("127.0.0.1 %s %s localhost\n"
                        "::1 %s %s localhost ip6-localhost\n"
                        % (hostname, short, hostname, short))
            with open("/etc/nsswitch.conf") as f:
                conf = [l for l in f.read().splitlines()
                        if not l.startswith("hosts:")]
            with open(os.path.join(self.dir, "nsswitch.conf"), "w") as f:
                f.write("\n".join(conf + ["hosts: files"]) + "\n")
        self.ids = self._add_users(users) if users else {}
        if binds:
            with open(os.path.join(self.dir, "binds"), "w") as f:
                f.write("".join("%s %s\n" % b for b in binds))
        at_stop(self.close)

    def _add_users(self, names):
        """The machine's passwd and group files, and a user and group for
        each of names, with IDs from 60100 up that neither file uses."""
        with open("/etc/passwd") as f:
            passwd = f.read()
        with open("/etc/group") as f:
            group = f.read()
        used = {int(l.split(":")[2]) for l in (passwd + group).splitlines()
                if l.count(":") >= 3 and l.split(":")[2].isdigit()}
        ids, n = {}, 60100
        for name in names:
            while n in used:
                n += 1
            ids[name] = (n, n)
            passwd += "%s:x:%d:%d:%s:/nonexistent:/usr/sbin/nologin\n" % (
                name, n, n, name)
            group += "%s:x:%d:\n" % (name, n)
            n += 1
        for fname, text in (("passwd", passwd), ("group", group)):
            with open(os.path.join(self.dir, fname), "w") as f:
                f.write(text)
        return ids

    def argv(self):
        """The prefix that runs a command inside the namespace."""
        return (["unshare", "--mount", "--propagation", "private"] +
                (["--uts"] if self.hostname else []) +
                ["/bin/sh", self.script, self.dir, self.syslog.path,
                 self.hostname or "-"])

    def close(self):
        self.syslog.close()


def start_listener(build, port_host, logf, v6=False, tries=5, stdout=None):
    """Start build(port) (an argv) as a process group on a free loopback
    port, trying other ports if it cannot listen; returns (Popen, port).

    logf: the file (or descriptor) for its stderr, and stdout unless
    stdout is given.
    """
    argv = status = None
    for _ in range(tries):
        port = free_port(socket.AF_INET6 if v6 else socket.AF_INET,
                         port_host)
        argv = build(port)
        p = start_group(argv, stdout=stdout or logf, stderr=logf)
        ok = wait_until(lambda: p.poll() is not None or
                        listening(port) or listening(port, True), 10)
        if ok and p.poll() is None:
            return p, port
        status = p.returncode
        stop_group(p)
    raise E2EError("%r did not listen (status %r)" % (argv, status))


class Launched:
    """A server started by start_listener on a free loopback port, its
    output in self.logpath."""

    def _start(self, build, host="127.0.0.1", v6=False):
        with open(self.logpath, "ab") as logf:
            try:
                self.proc, self.port = start_listener(build, host, logf, v6)
            except E2EError as e:
                raise E2EError("%s; its output: %s" % (e, self.log()))
        self.pid = self.proc.pid

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        stop_group(self.proc)


class Superserver(Launched):
    """inetd or xinetd with a configuration file of the test's, in a
    PrivateNS (its own, or ns): its children log to syslog through a
    listener that only they see as /dev/log (self.syslog)."""

    def __init__(self, base, name, ns):
        self.dir = make_workdir(base, name)
        self.ns = ns or PrivateNS(base)
        self.syslog = self.ns.syslog
        self.conf = os.path.join(self.dir, name + ".conf")
        self.logpath = os.path.join(self.dir, name + ".out")


class Inetd(Superserver):
    """openbsd-inetd in debug mode (-d, foreground) with a test config.

    service_argv: the program path followed by its argv (argv[0] first),
    as in an inetd.conf line; or line: a whole inetd.conf line whose first
    field (the service) is "{listen}".
    """

    def __init__(self, base, service_argv=None, v6=False, ns=None,
                 line=None):
        super().__init__(base, "inetd", ns)
        self.v6 = v6
        self.host = "::1" if v6 else "127.0.0.1"
        if line is None:
            line = "{listen} stream %s nowait root %s" % (
                "tcp6" if v6 else "tcp4", " ".join(service_argv))

        def build(port):
            with open(self.conf, "w") as f:
                f.write(line.format(listen="%s:%d" % (
                    "[::1]" if v6 else "127.0.0.1", port)) + "\n")
            return self.ns.argv() + [INETD, "-d", self.conf]

        self._start(build, self.host, v6)


class Xinetd(Superserver):
    """Debian's xinetd (unpacked in build/xinetd) in the foreground
    (-dontfork): config(port) returns its configuration's text for a
    listener on that port (127.0.0.1, or ::ffff:127.0.0.1 with flags =
    IPv6).  xinetd's own log goes to self.syslog too (tag xinetd).
    """

    def __init__(self, base, config, ns=None):
        super().__init__(base, "xinetd", ns)

        def build(port):
            with open(self.conf, "w") as f:
                f.write(config(port))
            return self.ns.argv() + [
                XINETD, "-dontfork", "-f", self.conf,
                "-pidfile", os.path.join(self.dir, "xinetd.pid")]

        self._start(build)


class JournalStream:
    """What a unit's StandardError=journal gives its process: fd 2 on an
    AF_UNIX stream socket, whose other end (journald's, here a thread of
    the test) collects the lines into a file."""

    def __init__(self, path):
        self.path = path
        self.ours, self.theirs = socket.socketpair(socket.AF_UNIX,
                                                   socket.SOCK_STREAM)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        at_stop(self.close)

    def _run(self):
        with open(self.path, "ab") as f:
            while True:
                try:
                    chunk = self.ours.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                f.write(chunk)
                f.flush()

    def child_end(self):
        return self.theirs.fileno()

    def close(self):
        for s in (self.theirs, self.ours):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.thread.join(2)
        self.ours.close()
        self.theirs.close()


class SocketActivate(StderrLog):
    """systemd-socket-activate --accept on 127.0.0.1: an Accept=yes socket
    unit and its template service, run without systemd as PID 1.  One
    instance of argv per connection; with inetd (StandardInput=socket,
    StandardOutput=socket) the connection is its fd 0 and 1.  Its stderr,
    and the instances', is a JournalStream (StandardError=journal), read
    with log().  With ns (a PrivateNS) it runs inside that namespace.

    With accept False, an Accept=no socket unit and its service: argv is
    run once, at the first connection, with the listening socket on fd 3
    (LISTEN_FDS=1).  host: the address to listen on (::ffff:127.0.0.1:
    an IPv6 socket taking IPv4 clients, as ListenStream=25 makes one).
    """

    def __init__(self, base, argv, inetd=True, ns=None, accept=True,
                 host="127.0.0.1"):
        self.dir = make_workdir(base, "socket-activate")
        self.journal = JournalStream(os.path.join(self.dir, "journal.log"))
        self.ns = ns

        def build(port):
            return ((ns.argv() if ns else []) +
                    [SOCKET_ACTIVATE] + (["--accept"] if accept else []) +
                    (["--inetd"] if inetd else []) +
                    ["-l", ("[%s]:%d" if ":" in host else "%s:%d") % (
                        host, port)] + list(argv))

        self.proc, self.port = start_listener(
            build, "127.0.0.1", self.journal.child_end())
        self.pid = self.proc.pid

    def log(self):
        try:
            with open(self.journal.path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def exit_codes(self):
        """[code] from the 'Child PID died with code N' lines."""
        return [int(c) for c in
                re.findall(r"^Child \d+ died with code (\d+)$", self.log(),
                           re.M)]

    def stop(self):
        stop_group(self.proc)


# A command run by this prefix is the second process of a PID namespace of
# its own, under a shell as the namespace's init: it is not PID 1, so it
# reaps only its own children, as under systemd or a run script.  Every
# process started in the namespace takes the next PID there, so the last
# PID of the namespace counts the forks (Listener.forks).
PIDNS_PREFIX = ["unshare", "--pid", "--fork", "--kill-child", "--",
                "/bin/sh", "-c", 'unset PWD; "$@" & wait $!', "pidns-init"]


class Listener(StderrLog):
    """sendwrap's own listener mode: sendwrap --listen ADDR ... -l stderr,
    its log in a file (as from a run script or a unit).  ADDR's port 0
    lets the kernel choose; the addresses come from its 'listening on='
    line (self.addrs; self.host and self.port: the first).  It runs in a
    PID namespace of its own (PIDNS_PREFIX): forks() tells how many
    processes it started since the last call.  With ns (a PrivateNS) it
    runs inside that namespace too, and with syslog it logs there (-l
    syslog), to ns.syslog, where its lines are read.  self.proc's exit
    status is sendwrap's."""

    def __init__(self, base, opts, program=(), listen=("127.0.0.1:0",),
                 ns=None, env=None, syslog=False):
        self.dir = make_workdir(base, "listener")
        self.logpath = os.path.join(self.dir, "stderr.log")
        self.syslog = ns.syslog if syslog else None
        cmd = [SENDWRAP]
        for a in listen:
            cmd += ["--listen", a]
        cmd += ["-l", "syslog" if syslog else "stderr"] + list(opts)
        if program:
            cmd += ["--"] + list(program)
        with open(self.logpath, "ab") as logf:
            self.proc = start_group((ns.argv() if ns else []) +
                                    PIDNS_PREFIX + cmd,
                                    stdout=logf, stderr=logf,
                                    env=dict(env or SERVER_ENV))
        self.pid = self.proc.pid
        try:
            self.addrs = self._listening()
            self.init = self._child(self.pid, lambda p: True)
            self.sendwrap_pid = self._child(
                self.init, lambda p: p[1] == SENDWRAP_COMM)
            self._last = self.last_pid()
        except BaseException:
            stop_group(self.proc)
            raise
        self.host, self.port = self.addrs[0]

    def _listening(self):
        lines = self.wait_lines(r"^listening on=\S+ ", timeout=10)
        if not lines:
            raise E2EError("sendwrap --listen did not start: %s" % self.log())
        out = []
        for a in lines[0].split()[1][len("on="):].split(","):
            host, _, port = a.rpartition(":")
            out.append((host.strip("[]"), int(port)))
        return out

    def _child(self, ppid, pred):
        found = wait_until(lambda: [p for p in children(ppid) if pred(p)], 10)
        if len(found or []) != 1:
            raise E2EError("no single child of %d: %r; %s" % (
                ppid, found, self.log()))
        return found[0][0]

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def sendwrap_lines(self):
        if self.syslog:
            return [r[4] for r in self.syslog.sendwrap_records()]
        return StderrLog.sendwrap_lines(self)

    def last_pid(self):
        """The last PID taken in the namespace (reading it takes one)."""
        r = subprocess.run(["nsenter", "-t", str(self.init), "--pid", "cat",
                            "/proc/sys/kernel/ns_last_pid"],
                           capture_output=True, timeout=30)
        if r.returncode != 0:
            raise E2EError("cannot read ns_last_pid: %r" % r.stderr)
        return int(r.stdout)

    def forks(self):
        """Processes started in the namespace since the last call (or the
        start), less the one each reading takes."""
        last = self.last_pid()
        n, self._last = last - self._last - 1, last
        return n

    def open_fds(self):
        return len(os.listdir("/proc/%d/fd" % self.sendwrap_pid))

    def children(self):
        return children(self.sendwrap_pid)

    def signal(self, sig):
        os.kill(self.sendwrap_pid, sig)

    def stop(self):
        stop_group(self.proc)


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


def swaks_message(wd, host, port, tag, n, source=None):
    """Send make_message(tag, n) with swaks (its data file in wd) and
    check that swaks succeeded.  Returns (transcript, greeting latency,
    wall time, headers, body)."""
    raw, headers, body = make_message(tag, n)
    data = write_swaks_data(os.path.join(wd, "%s-%d.eml" % (tag, n)), raw)
    rc, out, greet, wall = swaks(host, port, headers["To"], data_file=data,
                                 source=source)
    assert rc == 0, out
    return out, greet, wall, headers, body


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


# ---------------------------------------------------------------- examples

def read_example(name):
    with open(os.path.join(EXAMPLES, name)) as f:
        return f.read()


def adapt(text, changes):
    """text with each key of changes replaced by its value; a key that is
    not in text is an error, so that a changed example fails its test
    instead of being tested half-adapted."""
    for old, new in changes.items():
        if old not in text:
            raise E2EError("%r is not in the example any more" % old)
        text = text.replace(old, new)
    return text


class RunScript(StderrLog, Launched):
    """A daemontools/runit run script (examples/*.run), adapted by the
    test: script(port) returns its text for a listener on that port.  It
    is run with /bin/sh, its output (exec 2>&1) going to a log file."""

    def __init__(self, base, script, name="run"):
        self.dir = make_workdir(base, name)
        self.path = os.path.join(self.dir, "run")
        self.logpath = os.path.join(self.dir, "log")

        def build(port):
            with open(self.path, "w") as f:
                f.write(script(port))
            os.chmod(self.path, 0o755)
            return ["/bin/sh", self.path]

        self._start(build)


# ---------------------------------------------------------------- scenarios

def deliver_patiently(wd, host, port, mta, tag, delay):
    """A patient swaks and a sending exim deliver a message each, at the
    same time, through host:port.  Checks that swaks was greeted by mta
    after the delay (at least 90 % of it), that exim's queue run took that
    long and emptied its queue (one delivery), and that each message is in
    mta's queue once, intact.  Returns {X-E2E-Tag: Message}."""
    raw1, headers1, body1 = make_message(tag + "-swaks", 1)
    raw2, headers2, body2 = make_message(tag + "-exim", 2)
    data = write_swaks_data(os.path.join(wd, tag + "-swaks.eml"), raw1)
    sender = EximSender(wd, host, port)
    sender.submit("relay@sender.sendwrap.test", headers2["To"], raw2)
    ran = {}

    def queue_run():
        try:
            ran["took"] = sender.run_queue()
        except Exception as e:          # reported below
            ran["error"] = e

    t = threading.Thread(target=queue_run)
    t.start()
    try:
        rc, out, greet, _ = swaks(host, port, headers1["To"], data_file=data)
    finally:
        t.join(90)
    assert rc == 0, out
    assert_delayed(greet, delay)
    greeting = [l[4:] for l in out.splitlines() if l.startswith("<-  220")]
    assert greeting and mta.greeting.match(greeting[-1].encode()), out
    assert "error" not in ran, ran
    assert ran["took"] >= 0.9 * delay, "exim delivered after %.3f s" % (
        ran["took"])
    assert sender.queue_count() == 0, sender.mainlog()
    assert len(re.findall(r"^\S+ \S+ \S+ => %s " % re.escape(headers2["To"]),
                          sender.mainlog(), re.M)) == 1, sender.mainlog()

    msgs = {}
    for m in mta.messages():
        msgs.setdefault(m.header("X-E2E-Tag"), []).append(m)
    for (headers, body), who in (((headers1, body1), "swaks"),
                                 ((headers2, body2), "exim")):
        got = msgs.get(headers["X-E2E-Tag"], [])
        assert len(got) == 1, "%s's message queued %d times: %s" % (
            who, len(got), mta.queue_listing())
        check_message(got[0], headers, body)
        assert got[0].recipients == [headers["To"]]
    assert msgs[headers1["X-E2E-Tag"]][0].sender == \
        "swaks@client.sendwrap.test"
    assert msgs[headers2["X-E2E-Tag"]][0].sender == \
        "relay@sender.sendwrap.test"
    return {k: v[0] for k, v in msgs.items()}


def refuse_bot(host, port, source=None, tag="bot", before=b""):
    """A blind-pipelining bot gets sendwrap's own 554 (not an MTA's: no
    220 greeting, no MTA's reply text) and an orderly close."""
    got, took, reset = bot(host, port, bot_payload(tag), source=source,
                           wait_first_line=bool(before))
    assert got == before + REJECT_554, got
    assert not reset, "the stream ended in a reset"
    return took


def greeted_at_once(host, port, mta, source=None):
    """A client (an allowlisted one) is greeted by mta at once, says QUIT,
    and the stream holds SMTP replies only: no log text."""
    g = Greeting(host, port, source=source)
    assert_prompt(g.t_final)
    assert mta.greeting.match(g.final()), g.lines
    reply, _ = g.quit()
    assert reply and reply[0].startswith(b"221 "), reply
    assert smtp_lines_only(g.reader.raw), g.reader.raw
