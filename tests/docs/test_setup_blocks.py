"""Every guide (doc/*.md) starts with a setup block, and every command in
it is run here or named with what covers it.

The convention: a guide's first line is its title (`# ...`); the next
line that is not blank is the marker `<!-- setup -->`, and the one after
it opens a fenced block whose info string is `sh`.  That block is what an
administrator copies and pastes to do the guide's task.

Each command of it (lines ending in a backslash joined, `#` comments
dropped) must be one simple command: redirections are allowed, pipes and
lists are not, so that each command is checked on its own.  The commands
are checked in the block's order, in one scratch directory per guide
that stands for the root of the file system: every absolute path under
/etc, /var, /run, /usr, /srv, /opt, /lib or /home is rewritten to the
same path under it.  The scratch root starts as the Debian package
leaves a machine: with /etc/sendwrap and /var/lib/sendwrap (mode 0700).

- `sendwrap ...` is run.  A line that configures sendwrap (one that is
  not one of its commands: --report, --compile, --spf-walk, --cache-*,
  --help, --version) is run as `sendwrap -n ARGS` and must exit 0 and
  print `configuration ok`; a command must exit 0.  The files its
  arguments name that the block did not make are made up first: an
  allowlist for -a (compiled, for a .cdb), a trap list for --greytrap, a
  password file for --redis-password-file, the directory of -c, the
  directory of --slots-dir and --state-dir, a log of sendwrap lines for
  --report, and a stand-in for the program to run (a script that exits
  0).  A --redis URL is pointed at a real redis-server started for the
  line (with the URL's user, whose password goes into the line's
  password file), and --dns-server at a real dnsmasq that gives each
  --spf-walk domain an SPF record (a --spf-walk line without
  --dns-server fails: it would ask the network).  The sendwrap run is
  the one built here ($SENDWRAP), without a shell: a value such as
  "$(id -u mail)" fails, write it out.
- The file commands (install, mkdir, chmod, printf, touch) are run by sh
  in the scratch directory, with any owner they name (install's -o and
  -g) made the test's own user: sendwrap checks a file's owner against
  the user it runs as, and here that is the test's.  For the same
  reason `runuser -u USER -- sendwrap ...` is run as the test's user.
- Any other command must be in COVERED, word for word, with the test
  that runs it (tests/...py::test_name, which must exist) or the reason
  it needs a live system (the network, systemd as PID 1, a package
  installed on the machine).  A command that is in no such place fails
  the test, as does an entry of COVERED that no block uses any more.
"""
import functools
import grp
import os
import pwd
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from dnsserver import DNS  # noqa: E402
from redisd import RedisServer  # noqa: E402

SENDWRAP = os.environ.get("SENDWRAP") or str(REPO / "sendwrap")
GUIDES = sorted((REPO / "doc").glob("*.md"))
MARK = "<!-- setup -->"
FENCE = "```sh"

ROOTS = ("/etc/", "/var/", "/run/", "/usr/", "/srv/", "/opt/", "/lib/",
         "/home/")
FILE_COMMANDS = {"install", "mkdir", "chmod", "printf", "touch"}
SENDWRAP_NAMES = {"sendwrap", "/usr/sbin/sendwrap", "/usr/local/sbin/sendwrap"}
SENDWRAP_COMMANDS = {
    "--report", "--compile", "--spf-walk", "--cache-list", "--cache-count",
    "--cache-delete", "--cache-purge", "--cache-add", "-h", "--help", "-V",
    "--version", "--list-options"}
OPERATORS = {"|", "||", "&&", ";", "&", "|&", ";;"}
REDIRECTS = {">", ">>", "<", ">&", "<&", ">|", "&>"}
# The rights the Redis guide gives sendwrap's own ACL user.
REDIS_RULES = "~sendwrap:* +get +set +del +scan +mget +ping +select"

# Commands of the setup blocks this test does not run: word for word,
# with the test that runs them ("tests/FILE.py::test_name") or why they
# need a live system ("live: ...").
COVERED = {
    "make deb": "tests/e2e/test_deb.py::test_file_list",
    "dpkg -i build/deb/sendwrap_*.deb": "tests/e2e/test_deb.py::test_file_list",
    "sed -i s/^QUEUERUNNER=.*/QUEUERUNNER='queueonly'/ /etc/default/exim4":
        "live: edits the machine's own exim4 settings (the tests run exim "
        "with a configuration of their own)",
    "gnuplot -c /usr/share/doc/sendwrap/examples/catch-curve.gnuplot "
    "report.csv catch-curve.png":
        "tests/e2e/test_report_e2e.py::test_report_on_multilog_of_tcpserver",
    "apt-get install unbound":
        "live: installs a package from Debian's archive (the tests ask "
        "dnsmasq on loopback: tests/integration/test_dnsl.py)",
    "editor /etc/sendwrap/redis.pw":
        "live: an editor, for a password (the test writes the password of "
        "its redis-server's user into the file itself)",
    "systemctl enable --now sendwrap-listener.socket":
        "live: systemd as PID 1 (the units run under systemd-socket-activate "
        "in tests/e2e/test_systemd.py::test_listener_socket_activation)",
    "useradd --system --no-create-home --shell /usr/sbin/nologin sendwrap":
        "live: adds a user to the machine (the test's files are its own "
        "user's instead)",
    "journalctl -u sendwrap@* --since today":
        "live: the machine's journal, under systemd as PID 1",
    "tests/deps check":
        "live: installs Debian packages (make check runs it first)",
    "make -j2": "live: the build every suite starts from (make check)",
    "make check-docs":
        "tests/docs/test_docs.py::test_check_docs_is_in_make_check",
    "systemctl restart exim4": "live: the machine's exim4, under systemd",
    "systemctl enable --now sendwrap.socket":
        "live: systemd as PID 1 (the units run under systemd-socket-activate "
        "in tests/e2e/test_systemd.py::test_socket_activation)",
}


class SetupError(AssertionError):
    pass


def setup_block(path):
    """[(line number, text)] of the guide's setup block."""
    lines = path.read_text().splitlines()
    if not lines or not lines[0].startswith("# "):
        raise SetupError("%s: the first line is not a title" % path.name)
    i = 1
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i >= len(lines) or lines[i] != MARK:
        raise SetupError("%s:%d: %r must follow the title" % (
            path.name, i + 1, MARK))
    i += 1
    if i >= len(lines) or lines[i] != FENCE:
        raise SetupError("%s:%d: %r must open the setup block after %r" % (
            path.name, i + 1, FENCE, MARK))
    block = []
    for n in range(i + 1, len(lines)):
        if lines[n].startswith("```"):
            return block
        block.append((n + 1, lines[n]))
    raise SetupError("%s: the setup block is not closed" % path.name)


def words(text):
    lex = shlex.shlex(text, posix=True, punctuation_chars=";&|<>")
    lex.whitespace_split = True
    lex.commenters = "#"
    return list(lex)


def commands(path, block):
    """[(where, words)]: the block's commands, continuations joined."""
    out, pending, start = [], "", None
    for n, line in block:
        if start is None:
            start = n
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        text, pending = pending + line, ""
        where = "%s:%d" % (path.name, start)
        start = None
        w = words(text)
        if not w:
            continue
        ops = [x for x in w if x in OPERATORS]
        if ops:
            raise SetupError("%s: %r: one simple command a line (no %s)" % (
                where, text.strip(), " ".join(ops)))
        out.append((where, w))
    if pending:
        raise SetupError("%s: the block ends in a continuation" % path.name)
    return out


def command_name(w):
    for x in w:
        if not re.fullmatch(r"[A-Za-z_]\w*=.*", x):
            return x
    return ""


class Scratch:
    """A scratch root for one guide's block."""

    def __init__(self, tmp):
        self.tmp = Path(tmp)
        self.root = self.tmp / "root"
        self.root.mkdir()
        # What the Debian package leaves (installing.md comes first).
        for d, mode in (("etc/sendwrap", 0o755), ("var/lib/sendwrap", 0o700)):
            (self.root / d).mkdir(parents=True)
            (self.root / d).chmod(mode)
        self.servers = []

    def path(self, word):
        if word.startswith(ROOTS):
            return str(self.root) + word
        return word

    def stop(self):
        for s in self.servers:
            s.stop()

    # ------------------------------------------------------ file commands

    def run_shell(self, where, w):
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        out, owner = [], None
        for x in w:
            if owner:
                out.append(shlex.quote(user if owner == "-o" else group))
                owner = None
                continue
            if w[0] == "install" and x in ("-o", "-g"):
                owner = x
                out.append(x)
            elif x in REDIRECTS:
                out.append(x)
            else:
                out.append(shlex.quote(self.path(x)))
        # A redirection's directory exists on a real system (/etc/...).
        for op, target in zip(w, w[1:]):
            if op in (">", ">>") and target.startswith(ROOTS):
                os.makedirs(os.path.dirname(self.path(target)),
                            exist_ok=True)
        r = subprocess.run(["sh", "-c", " ".join(out)], cwd=self.root,
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise SetupError("%s: %s: exit %d: %s" % (
                where, " ".join(w), r.returncode, r.stderr.strip()))

    # ----------------------------------------------------------- sendwrap

    def make_file(self, path, text, mode=0o644):
        p = Path(path)
        if p.exists():
            return
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        p.chmod(mode)

    def make_dir(self, path):
        p = Path(path)
        if not p.exists():
            p.mkdir(parents=True)
            p.chmod(0o700)

    def make_allowlist(self, path):
        if Path(path).exists():
            return
        if not path.endswith(".cdb"):
            self.make_file(path, "127.0.0.0/8\n::1\n")
            return
        text = str(self.tmp / "allowlist.txt")
        self.make_file(text, "127.0.0.0/8\n::1\n")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([SENDWRAP, "--compile", text, path], check=True,
                       capture_output=True, timeout=30)

    def redis_url(self, url, password_file):
        m = re.fullmatch(r"redis://(?:([^@/]+)@)?[^/]+?(?:/(\d+))?", url)
        if m:
            user, db, unix = m.group(1), m.group(2), False
        else:
            m = re.fullmatch(r"unix:[^?]+(?:\?(.*))?", url)
            if not m:
                raise SetupError("a --redis URL this test does not know: "
                                 + url)
            query = dict(q.split("=", 1) for q in (m.group(1) or "").split(
                "&") if "=" in q)
            user, db, unix = query.get("user"), query.get("db"), True
        server = RedisServer(self.tmp / ("redis%d" % len(self.servers)),
                             users={user: REDIS_RULES} if user else None)
        self.servers.append(server)
        if password_file:
            # the made-up password gives way to the server's
            Path(password_file).unlink(missing_ok=True)
            server.password_file(password_file, user or "default")
        return server.url(user, int(db) if db else None, unix)

    def run_sendwrap(self, where, w):
        args, out, append = [], None, False
        i = 1
        while i < len(w):
            fd = w[i] if re.fullmatch(r"\d", w[i]) and i + 1 < len(w) \
                and w[i + 1] in REDIRECTS else None
            op = w[i + 1] if fd else w[i]
            if op not in REDIRECTS:
                args.append(w[i])
                i += 1
                continue
            target = w[i + 2] if fd else w[i + 1]
            if fd == "2" and op == ">&" and target == "1":
                pass
            elif fd in (None, "1") and op in (">", ">>", ">|"):
                out, append = self.path(target), op == ">>"
            else:
                raise SetupError("%s: a redirection this test does not "
                                 "know: %s" % (where, " ".join(w[i:i + 3])))
            i += 3 if fd else 2
        if any("$" in a or "`" in a for a in args):
            raise SetupError("%s: a sendwrap line is run without a shell: "
                             "write its values out" % where)
        args = [self.path(a) for a in args]
        command = bool(SENDWRAP_COMMANDS & set(args))
        self.make_up(where, args, command)
        if not command and "-n" not in args and "--check" not in args:
            args.insert(0, "-n")
        r = subprocess.run([SENDWRAP] + args, cwd=self.root,
                           capture_output=True, text=True, timeout=60)
        shown = "sendwrap " + " ".join(args)
        if r.returncode != 0 or (not command and
                                 "configuration ok" not in r.stdout):
            raise SetupError("%s: %s: exit %d:\n%s%s" % (
                where, shown, r.returncode, r.stdout, r.stderr))
        if out:
            # A relative name is the scratch root's, as the command's cwd.
            with open(os.path.join(self.root, out), "a" if append else
                      "w") as f:
                f.write(r.stdout)

    def make_up(self, where, args, command):
        """Makes the files and servers the arguments name."""
        takes = option_arguments()
        password = None
        for a, b in zip(args, args[1:]):
            if a == "--redis-password-file":
                password = b
        i, program = 0, None
        while i < len(args):
            a = args[i]
            if a == "--":
                program = args[i + 1] if i + 1 < len(args) else None
                break
            if a == "--report":
                rest = args[i + 1:]
                for j, f in enumerate(rest):
                    if f.startswith(str(self.root)) and not (
                            j and rest[j - 1] in takes):
                        self.make_file(f, SAMPLE_LOG)
                break
            if a == "--compile":
                self.make_allowlist(args[i + 1])
                break
            if a == "--spf-walk":
                self.spf(where, args, args[i + 1:])
                break
            if not a.startswith("-") or a == "-":
                program = a
                break
            value = args[i + 1] if a in takes and i + 1 < len(args) else None
            if a in ("-a", "--allowlist"):
                self.make_allowlist(value)
            elif a == "--greytrap":
                self.make_file(value, "trap@example.org\n")
            elif a == "--redis-password-file":
                self.make_file(value, "secret\n", 0o600)
            elif a in ("-c", "--cache"):
                self.make_dir(os.path.dirname(value))
            elif a in ("--slots-dir", "--state-dir"):
                self.make_dir(value)
            elif a == "--redis":
                args[i + 1] = self.redis_url(value, password)
            i += 2 if a in takes else 1
        if program and not command and program.startswith(str(self.root)):
            self.make_file(program, "#!/bin/sh\nexit 0\n", 0o755)

    def spf(self, where, args, domains):
        if "--dns-server" not in args:
            raise SetupError("%s: --spf-walk without --dns-server would ask "
                             "the network's DNS" % where)
        dns = DNS(self.tmp, extra=[
            "--txt-record=%s,v=spf1 ip4:192.0.2.0/24 -all" % d
            for d in domains])
        self.servers.append(dns)
        args[args.index("--dns-server") + 1] = dns.server


SAMPLE_LOG = (
    "2026-11-30T10:00:00+00:00 mx sendwrap[100]: pass ip=198.51.100.7 "
    "port=40123 delay=5.000 waited=5.001\n"
    "2026-11-30T10:00:01+00:00 mx sendwrap[101]: early ip=203.0.113.9 "
    "port=3321 after=0.412 bytes=18 first=\"EHLO bot.example\\r\\n\" "
    "action=reject\n")


@functools.lru_cache(maxsize=None)
def option_arguments():
    """The options that take an argument, as --list-options shows them."""
    takes = set()
    out = subprocess.run([SENDWRAP, "--list-options"], check=True,
                         capture_output=True, text=True, timeout=10).stdout
    for line in out.splitlines():
        m = re.fullmatch(r"(?:(-\w) )?(--[\w-]+) ([A-Z].*)", line)
        if m:
            takes |= {m.group(2)} | ({m.group(1)} if m.group(1) else set())
    return frozenset(takes)


def covered_test_exists(ref):
    name, _, func = ref.partition("::")
    path = REPO / name
    return path.is_file() and re.search(
        r"^def %s\b" % re.escape(func.split("[")[0]), path.read_text(), re.M)


def check_guide(path, tmp):
    """Runs or looks up every command of the guide's setup block; returns
    the COVERED entries it used."""
    used = set()
    scratch = Scratch(tmp)
    try:
        for where, w in commands(path, setup_block(path)):
            key = " ".join(w)
            if w[:2] == ["runuser", "-u"] and w[3:4] == ["--"]:
                w = w[4:]       # as that user: here, the test's own
            name = command_name(w)
            if key in COVERED:
                used.add(key)
            elif name in SENDWRAP_NAMES:
                scratch.run_sendwrap(where, w)
            elif name in FILE_COMMANDS and name == w[0]:
                scratch.run_shell(where, w)
            else:
                raise SetupError(
                    "%s: %r is neither run by this test nor in its COVERED "
                    "table" % (where, key))
    finally:
        scratch.stop()
    return used


def test_there_are_guides():
    assert len(GUIDES) >= 10, "guides in doc/: %s" % [g.name for g in GUIDES]


@pytest.mark.parametrize("path", GUIDES, ids=lambda p: p.name)
def test_setup_block(path, tmp_path):
    check_guide(path, tmp_path)


def test_every_covered_entry_is_used_and_its_test_exists(tmp_path):
    used = set()
    for path in GUIDES:
        used |= {" ".join(w) for _, w in commands(path, setup_block(path))}
    stale = sorted(set(COVERED) - used)
    assert not stale, "COVERED names commands no setup block has: %s" % stale
    for key, how in COVERED.items():
        assert how.startswith("live: ") or covered_test_exists(how), \
            "COVERED[%r]: no such test %s" % (key, how)


def guide(tmp_path, block):
    path = tmp_path / "guide.md"
    path.write_text("# A guide\n\n%s\n%s\n%s```\n\nText.\n" % (
        MARK, FENCE, block))
    return path


def test_an_uncovered_command_fails(tmp_path):
    path = guide(tmp_path, "systemctl restart something-new\n")
    with pytest.raises(SetupError, match="neither run"):
        check_guide(path, tmp_path)


def test_a_sendwrap_line_with_a_mistake_fails(tmp_path):
    path = guide(tmp_path, "sendwrap -d 5 --pass-ttl 0x /usr/sbin/exim4 -bs\n")
    with pytest.raises(SetupError, match="exit 100"):
        check_guide(path, tmp_path)


def test_a_pipeline_fails(tmp_path):
    path = guide(tmp_path, "sendwrap --report /var/log/mail.log | less\n")
    with pytest.raises(SetupError, match="one simple command"):
        check_guide(path, tmp_path)


def test_a_guide_without_a_setup_block_fails(tmp_path):
    path = tmp_path / "guide.md"
    path.write_text("# A guide\n\nText first.\n\n%s\n%s\nls\n```\n" % (
        MARK, FENCE))
    with pytest.raises(SetupError, match="must follow the title"):
        check_guide(path, tmp_path)


def test_paths_are_rewritten_and_files_made_up(tmp_path):
    """A line naming an allowlist, a cache and a program nobody made is
    checked against made-up ones under the scratch root, never the
    machine's own."""
    path = guide(tmp_path, (
        "install -d -o mail -g mail -m 0700 /var/lib/sendwrap\n"
        "sendwrap -d 5 -a /etc/sendwrap/allowlist \\\n"
        "    -c /var/lib/sendwrap/cache.mdb /usr/sbin/some-mta -bs\n"))
    check_guide(path, tmp_path)
    root = tmp_path / "root"
    assert (root / "etc/sendwrap/allowlist").is_file()
    assert os.access(root / "usr/sbin/some-mta", os.X_OK)
    st = (root / "var/lib/sendwrap").stat()
    assert st.st_uid == os.getuid() and st.st_mode & 0o777 == 0o700
