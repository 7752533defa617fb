"""MTA daemons and HAProxy for the end-to-end tests and bench/peers.

Each class starts a real daemon on loopback ports of its own, in a process
group of its own (e2elib.start_group: stopped by stop(), by the tests'
finalizers, and by tests/e2e/run's trap), bounded in time:

  PostfixServer   a private Postfix 3.7 instance (master, smtpd, and
                  optionally postscreen in front of an smtpd, and an smtpd
                  that takes a PROXY protocol header first)
  EximDaemon      exim -bd from exim4-daemon-heavy (hosts_proxy, and a
                  connect ACL delay for bench/peers)
  OpenSMTPD       smtpd -d, a listener with and one without proxy-v2
  HAProxy         TCP mode in front of a target, send-proxy(-v2) or none

Postfix, Exim's heavy daemon and OpenSMTPD cannot be installed beside
exim4-daemon-light (each is a system MTA): tests/deps unpacks them into
build/.  Run without their maintainer scripts, the users they run as do
not exist on the machine, and OpenSMTPD's compiled-in paths (its spool,
its chroot, its delivery helpers, its control socket) are not there: each
runs in an e2elib.PrivateNS whose /etc/passwd and /etc/group add those
users and whose mount namespace binds the test's directories on those
paths.  Nothing outside changes.

Each class starts its daemon in its constructor (as e2elib's servers do:
there is no separate start()) and has its port attributes (port, and
proxy_port or postscreen_port where it has them), client_addresses() (the
client addresses it logged, in order), processes(), keep() (for a module
fixture: outlive the test that made it) and stop() (nothing of it left
running).  Each MTA class has messages(): e2elib.Message objects of what
it received, headers and body as kept (and .raw, the bytes, for a
maildir), with wait_messages(count) where delivery comes after the 250.
The checks at the end (deliver, received, from_address, new_addresses)
are what the tests assert with; tests/e2e/conftest.py has module fixtures
(postfix, exim_proxy, opensmtpd).
"""

import email.parser
import email.policy
import os
import re
import signal
import subprocess
import sys

from e2elib import (REPO, SERVER_ENV, E2EError, EximReceiver, Message,
                    PrivateNS, check_message, free_port, make_workdir,
                    outlive_test, start_group, stop_group, swaks_message,
                    wait_until)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
import proclib  # noqa: E402  (tests/proclib.py)

BUILD = os.path.join(REPO, "build")
POSTFIX_ROOT = os.path.join(BUILD, "postfix")
POSTFIX_LIBS = os.path.join(POSTFIX_ROOT, "usr", "lib", "postfix")
POSTFIX_DAEMONS = os.path.join(POSTFIX_LIBS, "sbin")
POSTFIX_COMMANDS = os.path.join(POSTFIX_ROOT, "usr", "sbin")
POSTFIX_MASTER = os.path.join(POSTFIX_DAEMONS, "master")
SMTP_SOURCE = os.path.join(POSTFIX_COMMANDS, "smtp-source")
EXIM_HEAVY = os.path.join(BUILD, "exim4-heavy", "usr", "sbin", "exim4")
OPENSMTPD_ROOT = os.path.join(BUILD, "opensmtpd")
OPENSMTPD = os.path.join(OPENSMTPD_ROOT, "usr", "sbin", "smtpd")
HAPROXY = "/usr/sbin/haproxy"
TOOLS = (POSTFIX_MASTER, SMTP_SOURCE, EXIM_HEAVY, OPENSMTPD, HAPROXY)

HOSTNAME = "mx.sendwrap.test"
DOMAIN = "sendwrap.test"            # the domain every MTA here takes mail for
START_TIMEOUT = 20


def postfix_env():
    """The environment of Postfix's programs: its libraries are where
    tests/deps unpacked them, not in their RUNPATH (/usr/lib/postfix)."""
    return dict(SERVER_ENV, LD_LIBRARY_PATH=POSTFIX_LIBS)


def postfix_version():
    """mail_version of build/postfix (postconf -d: its built-in default)."""
    r = subprocess.run([os.path.join(POSTFIX_COMMANDS, "postconf"), "-d",
                        "-h", "mail_version"], capture_output=True,
                       env=postfix_env(), timeout=30)
    return "Postfix " + r.stdout.decode().strip()


def _free_ports(n):
    """n distinct free loopback ports."""
    ports = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def parse_message(mid, raw):
    """An e2elib.Message from a delivered message (LF line ends, as a
    maildir or a queue file keeps it): its headers unfolded, its body,
    and the whole text in .raw."""
    head, _, body = raw.partition(b"\n\n")
    msg = email.parser.BytesHeaderParser(policy=email.policy.compat32) \
        .parsebytes(head + b"\n\n")
    headers = [(n, re.sub(r"\r?\n[ \t]", " ", v).strip())
               for n, v in msg.items()]
    rp = msg.get("Return-Path", "").strip().strip("<>")
    m = Message(mid, rp or None, [v.strip() for n, v in headers
                                  if n.lower() == "delivered-to"],
                headers, body)
    m.raw = raw
    return m


def maildir_messages(maildir):
    """The messages of a maildir (new/ and cur/), oldest first."""
    out = []
    for sub in ("new", "cur"):
        d = os.path.join(maildir, sub)
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            path = os.path.join(d, name)
            with open(path, "rb") as f:
                out.append((os.stat(path).st_mtime, name, f.read()))
    return [parse_message(name, raw) for _, name, raw in sorted(out)]


class Daemon:
    """Common to the classes here: a process group started on free ports
    (retried on other ports if one was taken meanwhile), its output in
    self.logpath."""

    def _launch(self, nports, build, env=None, timeout=START_TIMEOUT):
        """build(ports) writes the configuration and returns the argv;
        the daemon is up once every port listens.  Returns the ports."""
        last = None
        for _ in range(3):
            ports = _free_ports(nports)
            argv = build(ports)
            with open(self.logpath, "ab") as logf:
                self.proc = start_group(argv, stdout=logf, stderr=logf,
                                        env=env or dict(SERVER_ENV))
            self.pid = self.proc.pid
            up = wait_until(lambda: self.proc.poll() is not None or
                            self._listens(ports), timeout)
            if up and self.proc.poll() is None:
                self.pid = self.proc.pid
                return ports
            last = self.proc.returncode
            stop_group(self.proc)
        raise E2EError("%s did not listen (status %r): %s" % (
            type(self).__name__, last, self.diagnostics()))

    def _listens(self, ports):
        """Does each port have a listening socket of its own processes?
        (On a machine where others' tests run too, a port found free may
        be taken by another program before the daemon binds it.)"""
        mine = proclib.socket_inodes(p.pid for p in self.processes())
        return all(proclib.tcp_sockets(p, "0A") & mine for p in ports)

    def diagnostics(self):
        return _read(self.logpath)

    def keep(self):
        """For a module-scoped fixture: outlive the test that started it
        (e2elib.outlive_test) until stop().  Returns self."""
        ns = getattr(self, "ns", None)
        outlive_test(self.proc, ns.close if ns else None)
        return self

    def processes(self):
        """Its processes (proclib.Stat): the one started and all its
        descendants, also those in a session of their own (Postfix's
        postscreen calls setsid)."""
        return proclib.tree(self.pid)

    def stop(self):
        """Stop its group, then what of its other processes is left."""
        others = [(p.pid, p.pgid) for p in self.processes()
                  if p.pgid != self.pid]
        stop_group(self.proc)
        for pid, pgid in others:
            st = proclib.stat(pid)
            if st and st.pgid == pgid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        wait_until(lambda: not any(proclib.stat(pid) for pid, _ in others),
                   5)
        ns = getattr(self, "ns", None)
        if ns:
            ns.close()


# ---------------------------------------------------------------- Postfix

POSTFIX_MAIN = """\
# A private Postfix instance for the e2e tests and bench/peers: every
# directory is the test's, every listener on loopback, mail for {domain}
# delivered by virtual(8) into one maildir, nothing relayed elsewhere.
compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
daemon_directory = {daemons}
command_directory = {commands}
shlib_directory = {libs}
meta_directory = {dir}/etc
mail_owner = {owner}
setgid_group = {sgid}
import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C
    LD_LIBRARY_PATH={libs}
maillog_file = {dir}/maillog
maillog_file_prefixes = {dir}
myhostname = {hostname}
mydomain = {domain}
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
relay_domains =
alias_maps =
alias_database =
local_recipient_maps =
smtpd_relay_restrictions = reject_unauth_destination
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {dir}
virtual_mailbox_maps = static:mail/
virtual_minimum_uid = 1
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
smtpd_banner = $myhostname ESMTP Postfix
biff = no
delay_warning_time = 0
smtputf8_enable = no
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
default_process_limit = {backlog}
smtpd_proxy_timeout = 30s
postscreen_greet_action = enforce
postscreen_greet_wait = {greet_wait}
postscreen_access_list =
postscreen_pre_queue_limit = {queue_limit}
postscreen_post_queue_limit = {queue_limit}
postscreen_client_connection_count_limit = 0
postscreen_cache_map = {cache_map}
postscreen_greet_ttl = {greet_ttl}
{main}"""

POSTFIX_MASTER_CF = """\
{listeners}
smtpd     pass  -       -       n       -       {process_limit:<7d} smtpd
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

# The queue's directories and their owners (postfix-files): the mail
# owner's, the two of the setgid group, the two of root.
POSTFIX_QUEUE_DIRS = ("active", "bounce", "corrupt", "defer", "deferred",
                      "flush", "hold", "incoming", "private", "saved",
                      "trace")


class MaildirMTA(Daemon):
    """An MTA that delivers every message into one maildir, self.maildir,
    after its 250 to the client."""

    def messages(self):
        return maildir_messages(self.maildir)

    def wait_messages(self, count, timeout=15):
        """The maildir's messages once there are count (or at the
        timeout, those there are)."""
        return wait_until(lambda: (lambda m: m if len(m) >= count else None)(
            self.messages()), timeout) or self.messages()


class PostfixServer(MaildirMTA):
    """A private Postfix 3.7 (build/postfix) in the foreground (master
    -d), in a PrivateNS that has its users (postfix, postdrop), its host
    name and hosts-file-only name lookups.  Its listeners, each on a
    loopback port of its own (None when not asked for):

      port             smtpd
      proxy_port       smtpd with smtpd_upstream_proxy_protocol = haproxy
                       (a PROXY v1 or v2 header first, as HAProxy's
                       send-proxy and send-proxy-v2 send; without one it
                       answers 421 4.3.0 at once, or after 5 s if the
                       client sends nothing; v1 "PROXY UNKNOWN" and a v2
                       PROXY header without addresses get 421 too; a v2
                       LOCAL header then a reset kills it: see HAProxy)
      postscreen_port  postscreen (greet action enforce, greet wait
                       greet_wait seconds, no client exempted: its access
                       list is empty, loopback included) in front of smtpd

    Mail for sendwrap.test goes, through cleanup, qmgr and virtual, into
    one maildir (messages()).  Its log is a file (maillog_file, written by
    postlogd): log(), client_addresses() (smtpd's 'connect from'),
    postscreen_events().  main: lines added to main.cf.

    postscreen runs in a session of its own (it calls setsid): stop()
    kills it too, and after a crash it leaves by itself once master has
    gone (within seconds).

    process_limit: the most smtpd processes at once (each listener's).
    backlog: each listener's listen backlog (Postfix takes the larger of
    a service's process limit and default_process_limit, so that is set
    to backlog: with Postfix's 100, postscreen's 1 process would lose
    connections in a burst).  queue_limit: postscreen's pre- and
    post-queue limits (clients in its tests, clients waiting for an
    smtpd) before it answers 421.

    greet_ttl: seconds postscreen remembers a client that passed and lets
    it through at once (PASS OLD); 0, the default here, means its least,
    1 s, in memory only (no postscreen_cache_map).  Postfix's own default
    is a day, in a cache file.  greet_wait: whole seconds.
    """

    name = "postfix"
    greeting = re.compile(rb"^220 mx\.sendwrap\.test ESMTP Postfix")

    def __init__(self, base, smtpd=True, proxy=False, postscreen=False,
                 greet_wait=2.0, greet_ttl=0, process_limit=100,
                 queue_limit=10000, backlog=1024, main="", name="postfix",
                 unix_proxy=False):
        self.dir = make_workdir(base, name)
        # unix_proxy: a PROXY smtpd on a unix socket of the queue's public/
        # (master.cf's private column n), as doc/forward.md sets it up
        self.unix_proxy = unix_proxy
        self.socket = os.path.join(self.dir, "queue", "public", "smtpfwd")
        self.greet_wait = greet_wait
        self.logpath = os.path.join(self.dir, "master.out")
        self.maillog = os.path.join(self.dir, "maillog")
        self.maildir = os.path.join(self.dir, "mail")
        self.conf = os.path.join(self.dir, "etc")
        os.mkdir(self.conf, 0o755)
        self.ns = PrivateNS(base, hostname=HOSTNAME,
                            users=("postfix", "postdrop"))
        owner, _ = self.ns.ids["postfix"]
        _, sgid = self.ns.ids["postdrop"]
        self.postdrop_gid = sgid
        self._make_queue(owner, sgid)
        self.settings = dict(
            dir=self.dir, daemons=POSTFIX_DAEMONS, commands=POSTFIX_COMMANDS,
            libs=POSTFIX_LIBS, owner="postfix", sgid="postdrop",
            hostname=HOSTNAME, domain=DOMAIN, uid=owner, gid=owner,
            process_limit=process_limit, queue_limit=queue_limit,
            backlog=backlog,
            greet_wait="%ds" % greet_wait,
            cache_map=("btree:$data_directory/postscreen_cache"
                       if greet_ttl else ""),
            greet_ttl="%ds" % (greet_ttl or 1), main=main)
        kinds = [k for k, on in (("smtpd", smtpd), ("proxy", proxy),
                                 ("postscreen", postscreen)) if on]

        def build(ports):
            self._write_config(dict(zip(kinds, ports)))
            return self.ns.argv() + [POSTFIX_MASTER, "-d", "-c", self.conf]

        ports = dict(zip(kinds, self._launch(len(kinds), build,
                                             env=postfix_env())))
        self.port = ports.get("smtpd")
        self.proxy_port = ports.get("proxy")
        self.postscreen_port = ports.get("postscreen")

    def _make_queue(self, owner, sgid):
        q = os.path.join(self.dir, "queue")
        os.mkdir(q, 0o755)
        for d in POSTFIX_QUEUE_DIRS:
            os.mkdir(os.path.join(q, d), 0o700)
            os.chown(os.path.join(q, d), owner, owner)
        for d, mode in (("maildrop", 0o730), ("public", 0o710)):
            os.mkdir(os.path.join(q, d))
            os.chmod(os.path.join(q, d), mode)
            os.chown(os.path.join(q, d), owner, sgid)
        os.mkdir(os.path.join(q, "pid"), 0o755)
        for d in ("data", "mail"):
            os.mkdir(os.path.join(self.dir, d), 0o700)
            os.chown(os.path.join(self.dir, d), owner, owner)

    def _write_config(self, ports):
        lines = []
        for kind, port in sorted(ports.items()):
            service = "postscreen" if kind == "postscreen" else "smtpd"
            limit = "1" if kind == "postscreen" else str(
                self.settings["process_limit"])
            lines.append("127.0.0.1:%d inet n - n - %s %s" % (
                port, limit, service))
            if kind == "proxy":
                lines.append("  -o smtpd_upstream_proxy_protocol=haproxy")
        if self.unix_proxy:
            lines.append("smtpfwd unix n - n - %d smtpd" %
                         self.settings["process_limit"])
            lines.append("  -o smtpd_upstream_proxy_protocol=haproxy")
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            f.write(POSTFIX_MAIN.format(**self.settings))
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write(POSTFIX_MASTER_CF.format(
                listeners="\n".join(lines),
                process_limit=self.settings["process_limit"]))

    def log(self):
        return _read(self.maillog)

    def diagnostics(self):
        return "%s\n%s\n%s" % (_read(self.logpath), self.log(), [
            r[4] for r in self.ns.syslog.records])

    def client_addresses(self):
        """The client address of each smtpd session, in order (its
        'connect from NAME[ADDR]' line: after a PROXY header, the address
        in it)."""
        return re.findall(r" postfix/smtpd\[\d+\]: connect from "
                          r"[^\s\[]*\[([^\]]+)\]", self.log())

    def postscreen_events(self):
        """(event, address) of postscreen's verdict lines: PASS NEW,
        PASS OLD, PREGREET, ..."""
        return re.findall(r" postfix/postscreen\[\d+\]: (PASS NEW|PASS OLD|"
                          r"PREGREET|HANGUP|DISCONNECT|COMMAND PIPELINING"
                          r"|NOQUEUE: reject: RCPT)\S* .*?\[([^\]]+)\]",
                          self.log())


def smtp_source(host, port, messages, sessions=1, to="load@" + DOMAIN,
                size=1024, timeout=120):
    """Postfix's smtp-source: messages messages of size bytes to `to`,
    over sessions parallel sessions, each sending one message after
    another until they are all sent (-d: do not disconnect after a
    message).  Returns (exit status, output)."""
    r = subprocess.run([SMTP_SOURCE, "-d", "-s", str(sessions), "-m",
                        str(messages), "-l", str(size), "-M",
                        "client.sendwrap.test", "-f",
                        "source@client.sendwrap.test", "-t", to,
                        "%s:%d" % (host, port)],
                       capture_output=True, env=postfix_env(),
                       timeout=timeout)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


# ---------------------------------------------------------------- Exim

EXIM_DAEMON_MAIN = """\
daemon_smtp_ports = {port}
local_interfaces = 127.0.0.1
pid_file_path = $spool_directory/exim-daemon.pid
smtp_accept_max = 0
smtp_connect_backlog = 1024
{proxy}{connect}"""


class EximDaemon(Daemon, EximReceiver):
    """exim -bdf (a daemon in the foreground) from exim4-daemon-heavy
    (build/exim4-heavy: hosts_proxy is only in that build), with the
    configuration, spool and log of an e2elib.EximReceiver (its keyword
    arguments too): messages() reads the spool, mainlog() the log.  It
    listens on self.port (127.0.0.1).

    proxy: hosts_proxy = 127.0.0.1: a connection from there is read for
    a PROXY v1 or v2 header first, and the client address is the one in
    it (log_selector +proxy: PRX= on the <= lines).  Exim 4.96 does not
    insist: a connection that starts with something else is served at
    once as a direct one from 127.0.0.1 (what it sent is lost), one that
    sends nothing after proxy_protocol_timeout (5 s here).

    delay: seconds the connect ACL waits before the greeting
    (acl_smtp_connect, `delay`), with smtp_enforce_sync, so a client
    that talks meanwhile gets 554 and is dropped (Exim's own greeting
    delay, for bench/peers).  No connection limit (smtp_accept_max = 0).

    Started by root with -C, Exim gives up root (the file is not in its
    TRUSTED_CONFIG_LIST): the daemon and its receiving processes run as
    Debian-exim, which is enough for a port above 1023 and a spool and
    log of Debian-exim's (e2elib.exim_dir).  The configuration file must
    be root's and not writable by group or others (Exim refuses it
    otherwise).  The binary needs no set-user-ID bit (tests/deps clears
    it).
    """

    binary = EXIM_HEAVY
    greeting = re.compile(rb"^220 mx\.sendwrap\.test ESMTP Exim 4\.96")

    def __init__(self, base, proxy=False, delay=0, name="exim-daemon",
                 main="", acls="", **kw):
        connect = ""
        if delay:
            connect = "acl_smtp_connect = acl_connect\n"
            acls = "\nacl_connect:\n  accept delay = %gs\n%s" % (delay, acls)
        kw = dict(kw, name=name, acls=acls,
                  enforce_sync=bool(delay) or kw.get("enforce_sync", False),
                  log_selector=" +proxy" if proxy else "")
        self.proxy = proxy

        def build(ports):
            # a configuration, spool and log of their own for each port
            EximReceiver.__init__(self, base, main=EXIM_DAEMON_MAIN.format(
                port=ports[0], connect=connect, proxy=(
                    "hosts_proxy = 127.0.0.1\nproxy_protocol_timeout = 5s\n"
                    if proxy else "")) + main, **kw)
            self.logpath = os.path.join(self.dir, "daemon.out")
            return [self.binary, "-bdf", "-odq", "-C", self.conf]

        self.port, = self._launch(1, build)

    def client_addresses(self):
        """The client address of each SMTP connection, in order: from the
        line that opens it ('SMTP connection from [ADDR] (TCP/IP
        connection count ...'); with proxy, from the one that ends it
        ('... [ADDR] closed by QUIT', 'lost', ...), since Exim logs the
        opening before it reads the PROXY header (its address is then
        HAProxy's)."""
        end = r"(?!\(TCP/IP)" if self.proxy else r"\(TCP/IP connection"
        return re.findall(r"^\S+ \S+ SMTP connection from (?:\(\S*\) )?"
                          r"\[([^\]]+)\](?::\d+)? " + end,
                          self.mainlog(), re.M)

    def diagnostics(self):
        return "%s\n%s" % (_read(self.logpath), self.mainlog())


# ---------------------------------------------------------------- HAProxy

HAPROXY_CFG = """\
global
    log stdout format raw local0 info
    maxconn {maxconn}
    nbthread 1
defaults
    mode tcp
    log global
    option tcplog
    timeout connect 5s
    timeout client 120s
    timeout server 120s
frontend smtp
    bind 127.0.0.1:{port}
    default_backend mta
backend mta
{options}    server mta {target_host}:{target_port}{proxy}{check}
"""


class HAProxy(Daemon):
    """Debian's haproxy in TCP mode on 127.0.0.1:self.port, in front of
    target_host:target_port, in the foreground (-db), its log (option
    tcplog, to stdout) in a file.

    send_proxy: None (a plain relay), "v1" (send-proxy: a PROXY v1 line
    first) or "v2" (send-proxy-v2: the binary header).  check: health
    checks every check_inter seconds; with send-proxy(-v2) they send a
    header too (a v2 one with the LOCAL command), as HAProxy does when a
    server uses the PROXY protocol.  A v2 check is a bare LOCAL header
    and a reset at once: Postfix 3.7's smtpd, which then takes the
    address of a peer already gone, exits (fatal:
    smtpd_peer_hostaddr_to_sockaddr: cannot convert client address/port
    to string) and master throttles the service, so real clients wait;
    a LOCAL header on a connection that stays is served.  Exim and
    OpenSMTPD log a check as a connection from HAProxy's own address.

    options: lines for the backend section (bench/relays.py: "option
    splice-request").
    """

    def __init__(self, base, target_port, target_host="127.0.0.1",
                 send_proxy=None, check=False, check_inter=1.0,
                 maxconn=2000, name="haproxy", options=()):
        self.dir = make_workdir(base, name)
        self.logpath = os.path.join(self.dir, "haproxy.log")
        self.conf = os.path.join(self.dir, "haproxy.cfg")
        proxy = {None: "", "v1": " send-proxy", "v2": " send-proxy-v2"}[
            send_proxy]
        check = " check inter %dms" % (check_inter * 1000) if check else ""

        def build(ports):
            with open(self.conf, "w") as f:
                f.write(HAPROXY_CFG.format(
                    port=ports[0], target_host=target_host,
                    target_port=target_port, proxy=proxy, check=check,
                    maxconn=maxconn, options="".join(
                        "    %s\n" % o for o in options)))
            return [HAPROXY, "-db", "-f", self.conf]

        self.port, = self._launch(1, build)

    def log(self):
        return _read(self.logpath)

    def client_addresses(self):
        """The client address of each connection it relayed (tcplog lines,
        logged when the connection ends)."""
        return re.findall(r"^(\d+\.\d+\.\d+\.\d+|\[[^\]]+\]):\d+ \[",
                          self.log(), re.M)


# ---------------------------------------------------------------- OpenSMTPD

OPENSMTPD_CONF = """\
# OpenSMTPD for the e2e tests: mail for {domain} into one maildir.
listen on 127.0.0.1 port {port} hostname {hostname}
listen on 127.0.0.1 port {proxy_port} hostname {hostname} proxy-v2
table recipients {{ "@" = "{user}" }}
action "store" maildir "{maildir}" virtual <recipients>
match from any for domain "{domain}" action "store"
"""


class OpenSMTPD(MaildirMTA):
    """Debian's OpenSMTPD 6.8 (build/opensmtpd) in the foreground (smtpd
    -d, its log on stderr, in a file), listening on self.port and on
    self.proxy_port (proxy-v2: each connection starts with a PROXY v2
    header, the client address is the one in it).  Mail for
    sendwrap.test goes into one maildir (messages()).

    What the unpacked package lacks is made in a PrivateNS: its users
    (opensmtpd, opensmtpq, and swmail, who the maildir belongs to), and
    its compiled-in paths, each a directory of the test's bound there:
    /var/spool (its queue, /var/spool/smtpd), /var/lib (its chroot,
    /var/lib/opensmtpd/empty), /run (its control socket) and /usr/libexec
    (its delivery helpers, build/opensmtpd/usr/libexec).
    """

    name = "opensmtpd"
    greeting = re.compile(rb"^220 mx\.sendwrap\.test ESMTP OpenSMTPD")

    def __init__(self, base, name="opensmtpd"):
        """On the proxy port a connection that does not start with a v2
        header is closed at once (invalid signature); one that sends
        nothing is held."""
        self.dir = make_workdir(base, name)
        self.logpath = os.path.join(self.dir, "smtpd.log")
        self.conf = os.path.join(self.dir, "smtpd.conf")
        roots = {}
        for mnt in ("/var/spool", "/var/lib", "/run"):
            roots[mnt] = os.path.join(self.dir, mnt.strip("/").replace(
                "/", "-"))
            os.mkdir(roots[mnt], 0o755)
        os.makedirs(os.path.join(roots["/var/lib"], "opensmtpd", "empty"),
                    0o755)
        self.spool = os.path.join(roots["/var/spool"], "smtpd")
        binds = sorted(roots.items()) + [
            ("/usr/libexec", os.path.join(OPENSMTPD_ROOT, "usr", "libexec"))]
        self.ns = PrivateNS(base, hostname=HOSTNAME,
                            users=("opensmtpd", "opensmtpq", "swmail"),
                            binds=[(src, mnt) for mnt, src in binds])
        self.maildir = os.path.join(self.dir, "mail")
        os.mkdir(self.maildir, 0o700)
        os.chown(self.maildir, *self.ns.ids["swmail"])

        def build(ports):
            with open(self.conf, "w") as f:
                f.write(OPENSMTPD_CONF.format(
                    domain=DOMAIN, hostname=HOSTNAME, port=ports[0],
                    proxy_port=ports[1], maildir=self.maildir,
                    user="swmail"))
            return self.ns.argv() + [OPENSMTPD, "-d", "-f", self.conf]

        self.port, self.proxy_port = self._launch(2, build)

    def log(self):
        return _read(self.logpath)

    def client_addresses(self):
        """The client address of each SMTP session, in order (its
        'smtp connected address=ADDR' line; after a PROXY header, the
        address in it)."""
        return re.findall(r"smtp connected address=([^\s]+)", self.log())


# ---------------------------------------------------------------- checks

def received(mta, tag, count=1, timeout=15):
    """The messages mta holds whose X-E2E-Tag is tag, once there are
    count of them."""
    def find():
        got = [m for m in mta.messages() if m.header("X-E2E-Tag") == tag]
        return got if len(got) >= count else None
    return wait_until(find, timeout) or [
        m for m in mta.messages() if m.header("X-E2E-Tag") == tag]


def deliver(wd, mta, port, tag, source):
    """swaks from source delivers one message to port; mta keeps it
    intact, once, for its recipient.  Returns the message."""
    return deliver_timed(wd, mta, port, tag, source)[0]


def deliver_timed(wd, mta, port, tag, source, n=1):
    """deliver() of message n of tag; returns (the message, the seconds
    swaks waited for the greeting)."""
    _, greet, _, headers, body = swaks_message(wd, "127.0.0.1", port, tag,
                                               n, source=source)
    got = received(mta, headers["X-E2E-Tag"])
    assert len(got) == 1, [m.header("X-E2E-Tag") for m in mta.messages()]
    check_message(got[0], headers, body)
    assert got[0].recipients == [headers["To"]], got[0].recipients
    assert got[0].sender == "swaks@client.sendwrap.test", got[0].sender
    return got[0], greet


def from_address(msg):
    """The client address in the topmost Received header."""
    rcvd = msg.header("Received")
    top = rcvd[0] if isinstance(rcvd, list) else rcvd
    m = re.search(r"\[(\d+\.\d+\.\d+\.\d+)\]", top)
    assert m, top
    return m.group(1)


def new_addresses(mta, before, count, timeout=10):
    """The client addresses mta recorded after the first `before`, once
    there are count of them."""
    return wait_until(lambda: (lambda a: a if len(a) >= count else None)(
        mta.client_addresses()[before:]), timeout) or \
        mta.client_addresses()[before:]
