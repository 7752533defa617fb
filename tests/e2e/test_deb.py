"""The Debian package (make deb), as an administrator meets it: built
(make deb fails on any lintian error or warning that debian/ does not
explain), installed on this machine with dpkg -i, looked at, run, and
purged, after which nothing of it may be left.

systemd does not run here (no PID 1 of its own), so dpkg runs the
package's maintainer scripts in a private mount namespace where
/run/systemd/system exists, as on a systemd host, and where the
`systemctl` and `deb-systemd-invoke` first on PATH write down what they
are asked: that is what the scripts would have systemd do.
deb-systemd-helper, which keeps the enabled state in files, is the real
one.

It refuses to run where a sendwrap package (in any state) or
/var/lib/sendwrap is already there: its purge would remove them.
"""

import glob
import os
import re
import shlex
import socket
import subprocess

import pytest

from e2elib import REPO, SENDWRAP, SYSTEMD_ANALYZE, make_workdir

PACKAGE = "sendwrap"
STATE = "/var/lib/sendwrap"
UNIT_DIR = "/lib/systemd/system"
UNITS = ["sendwrap-forward.service", "sendwrap-listener.service",
         "sendwrap-listener.socket", "sendwrap.socket", "sendwrap@.service"]
STATIC_LIBS = ["c-ares", "hiredis", "lmdb", "zlib"]
# Where systemd's enabled state lives (symbolic links), and where
# deb-systemd-helper keeps its records: .dsh-also files, made for units
# that are not enabled too, and a copy of each link it made.
ENABLED = "/etc/systemd/system"
HELPER = "/var/lib/systemd/deb-systemd-helper-"

# (a tmpfs over /run/systemd, or over /run where there is none)
NS_SETUP = """\
set -e
top=/run/systemd
[ -d $top ] || top=/run
mount -t tmpfs -o mode=0755 sendwrap-test $top
mkdir -p /run/systemd/system
PATH=$1:$PATH
shift
exec "$@"
"""

RECORDER = """\
#!/bin/sh
echo "${0##*/} $*" >> "%s"
exit 0
"""


def run(argv, timeout=60, **kw):
    return subprocess.run(argv, capture_output=True, text=True,
                          timeout=timeout, **kw)


def dpkg_status():
    """The package's status, None when dpkg has none of it."""
    r = run(["dpkg-query", "-W", "-f=${Status}", PACKAGE])
    if r.returncode != 0 or r.stdout.endswith(" not-installed"):
        return None
    return r.stdout


def readme_deb_pattern():
    """The dpkg -i line of README.md's Installation section."""
    readme = open(os.path.join(REPO, "README.md")).read()
    install = re.search(r"\n## Installation\n(.*?)\n## ", readme, re.S)
    m = re.search(r"^\s+dpkg -i (\S+)", install.group(1), re.M)
    assert m, "README.md's Installation section has no dpkg -i line"
    return m.group(1)


class Machine:
    """dpkg on this machine, its maintainer scripts seeing systemd."""

    def __init__(self, wd):
        self.bin = os.path.join(wd, "recorders")
        os.mkdir(self.bin)
        self.calls_file = os.path.join(wd, "systemd-calls")
        for name in ("systemctl", "deb-systemd-invoke"):
            path = os.path.join(self.bin, name)
            with open(path, "w") as f:
                f.write(RECORDER % self.calls_file)
            os.chmod(path, 0o755)
        self.setup = os.path.join(wd, "ns-setup.sh")
        with open(self.setup, "w") as f:
            f.write(NS_SETUP)

    def dpkg(self, *args):
        """Runs dpkg ARGS; returns what systemd was asked meanwhile."""
        open(self.calls_file, "w").close()
        r = run(["unshare", "--mount", "--propagation", "private",
                 "/bin/sh", self.setup, self.bin, "dpkg"] + list(args),
                timeout=120)
        assert r.returncode == 0, r
        with open(self.calls_file) as f:
            return f.read().splitlines()


@pytest.fixture(scope="module")
def pkg(base):
    status = dpkg_status()
    if status is not None:
        pytest.fail("a %s package is already here (%s): this test installs "
                    "and purges its own; remove it first (dpkg --purge %s)"
                    % (PACKAGE, status, PACKAGE))
    if os.path.lexists(STATE):
        pytest.fail("%s is already here: this test's purge would remove it"
                    % STATE)
    r = run(["make", "--no-print-directory", "deb"], timeout=600, cwd=REPO)
    assert r.returncode == 0, "make deb failed:\n" + (r.stdout +
                                                      r.stderr)[-4000:]
    debs = glob.glob(os.path.join(REPO, readme_deb_pattern()))
    assert len(debs) == 1, debs
    deb = debs[0]
    # "./usr/sbin/" in the listing: "/usr/sbin"
    listing = run(["dpkg-deb", "-c", deb], timeout=30).stdout
    paths = [line.split()[-1][1:].rstrip("/") for line in
             listing.splitlines()]
    assert "/usr/sbin/sendwrap" in paths, listing
    machine = Machine(make_workdir(base, "deb"))
    info = {"deb": deb, "machine": machine,
            "there_before": {p for p in paths if os.path.lexists(p)}}
    try:
        info["install_calls"] = machine.dpkg("-i", deb)
        yield info
    finally:
        if dpkg_status() is not None:
            run(["dpkg", "--purge", PACKAGE], timeout=120)


def installed_files():
    r = run(["dpkg", "-L", PACKAGE])
    assert r.returncode == 0, r
    return [p for p in r.stdout.splitlines() if p != "/."]


def test_file_list(pkg):
    files = {p for p in installed_files() if not os.path.isdir(p)}
    examples = set()
    top = os.path.join(REPO, "examples")
    for d, _, names in os.walk(top):
        for n in names:
            examples.add("/usr/share/doc/sendwrap/examples/" +
                         os.path.relpath(os.path.join(d, n), top))
    assert files == {
        "/usr/sbin/sendwrap",
        "/usr/share/man/man8/sendwrap.8.gz",
        "/etc/sendwrap/allowlist",
        "/usr/share/doc/sendwrap/copyright",
        "/usr/share/doc/sendwrap/changelog.gz",
        "/usr/share/lintian/overrides/sendwrap",
    } | {UNIT_DIR + "/" + u for u in UNITS} | {
        "/usr/share/doc/sendwrap/linked/" + lib for lib in STATIC_LIBS
    } | examples
    conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", PACKAGE]).stdout
    assert [l.split()[0] for l in conffiles.splitlines() if l.strip()] == \
        ["/etc/sendwrap/allowlist"]
    # the examples name the packaged binary, as the units do
    for path in examples | {UNIT_DIR + "/" + u for u in UNITS}:
        with open(path, errors="replace") as f:
            assert "/usr/local/sbin/sendwrap" not in f.read(), path


def test_version_is_the_programs(pkg):
    version = run(["dpkg-query", "-W", "-f=${Version}", PACKAGE]).stdout
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", version), version
    assert run(["/usr/sbin/sendwrap", "--version"]).stdout == \
        "sendwrap %s\n" % version
    assert run([SENDWRAP, "--version"]).stdout == "sendwrap %s\n" % version
    assert os.path.basename(pkg["deb"]).startswith(
        "sendwrap_%s_" % version), pkg["deb"]


def test_binary_is_the_hardened_build_needing_only_libc(pkg):
    depends = run(["dpkg-query", "-W", "-f=${Depends}", PACKAGE]).stdout
    assert re.fullmatch(r"libc6 \(>= [\d.]+\)", depends), depends
    dyn = run(["readelf", "-d", "/usr/sbin/sendwrap"]).stdout
    assert re.findall(r"\(NEEDED\).*\[(.*)\]", dyn) == ["libc.so.6"], dyn
    assert re.search(r"\(FLAGS\).*\bBIND_NOW\b", dyn), dyn
    assert re.search(r"\(FLAGS_1\).*\bPIE\b", dyn), dyn
    headers = run(["readelf", "-lW", "/usr/sbin/sendwrap"]).stdout
    assert "GNU_RELRO" in headers, headers
    symbols = run(["readelf", "--dyn-syms", "-W", "/usr/sbin/sendwrap"]).stdout
    assert "__stack_chk_fail" in symbols            # -fstack-protector-strong
    assert re.findall(r"\b__\w+_chk\b", symbols)     # _FORTIFY_SOURCE


def test_state_directory(pkg):
    st = os.lstat(STATE)
    assert (oct(st.st_mode), st.st_uid, st.st_gid) == (oct(0o40700), 0, 0)
    # not one of the package's files: an owner the administrator gives
    # it later survives upgrades
    assert STATE not in installed_files()


def test_units_verify(pkg):
    paths = [UNIT_DIR + "/" + u for u in UNITS]
    r = run([SYSTEMD_ANALYZE, "verify"] + paths, timeout=60)
    assert r.returncode == 0 and r.stdout + r.stderr == "", r
    # the units start the packaged binary
    for u in ("sendwrap@.service", "sendwrap-listener.service"):
        argv = exec_start(u)
        assert argv[0] == "/usr/sbin/sendwrap", (u, argv)


def exec_start(unit):
    with open(UNIT_DIR + "/" + unit) as f:
        m = re.search(r"^ExecStart=(.*)$", f.read(), re.M)
    return shlex.split(m.group(1))


def traces(*tops):
    """Every file under tops that names a unit of ours."""
    found = []
    for top in tops:
        for d, dirs, names in os.walk(top):
            found += [os.path.join(d, n) for n in dirs + names
                      if n.startswith("sendwrap")]
    return found


def enabled_traces():
    return [p for p in traces(ENABLED, HELPER + "enabled", HELPER + "masked")
            if not p.endswith(".dsh-also")]


def one_connection(argv):
    """argv run as inetd runs it, for one loopback connection that says
    nothing; returns its exit status and what it logged."""
    with socket.create_server(("127.0.0.1", 0)) as srv:
        client = socket.create_connection(srv.getsockname(), timeout=10)
        conn, _ = srv.accept()
        with client, conn:
            r = subprocess.run(argv, stdin=conn, stdout=conn,
                               stderr=subprocess.PIPE, text=True, timeout=30)
    return r.returncode, r.stderr


def test_nothing_enabled_or_started(pkg):
    # systemd was asked for nothing but to read its units again
    assert [c for c in pkg["install_calls"]
            if c != "systemctl --system daemon-reload"] == [], \
        pkg["install_calls"]
    assert enabled_traces() == []
    # (what systemctl tells offline; the template has no [Install])
    states = {u: run(["systemctl", "is-enabled", u]).stdout.strip()
              for u in UNITS}
    assert states == {"sendwrap.socket": "disabled",
                      "sendwrap-listener.socket": "disabled",
                      "sendwrap-listener.service": "indirect",
                      "sendwrap-forward.service": "indirect",
                      "sendwrap@.service": "static"}, states
    # and no sendwrap of the package runs
    running = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            exe = os.readlink("/proc/%s/exe" % pid)
        except OSError:
            continue
        if exe.startswith("/usr/sbin/sendwrap"):
            running.append(pid)
    assert running == []


def test_reinstall_restarts_only_a_running_listener(pkg):
    """An upgrade (here the same version again) asks systemd to restart
    the listener if it runs, and enables or starts nothing."""
    calls = pkg["machine"].dpkg("-i", pkg["deb"])
    assert [c for c in calls if c != "systemctl --system daemon-reload"] == \
        ["deb-systemd-invoke try-restart sendwrap-listener.service "
         "sendwrap-forward.service"], calls
    assert enabled_traces() == []


def test_check_mode_of_the_installed_units(pkg):
    """sendwrap -n with each service's own command line: the units, the
    allowlist they name and the binary fit together."""
    for u in ("sendwrap@.service", "sendwrap-listener.service",
              "sendwrap-forward.service"):
        argv = exec_start(u)
        r = run([argv[0], "-n"] + argv[1:], timeout=30)
        assert r.returncode == 0, (u, r)
        assert "/etc/sendwrap/allowlist" in r.stdout, (u, r.stdout)


def test_pass_cache_in_the_state_directory(pkg):
    """The packaged binary keeps its pass cache where the package put the
    directory, which passes its checks of who could write there."""
    cache = STATE + "/cache.mdb"
    status, log = one_connection(["/usr/sbin/sendwrap", "-d", "1ms", "-c",
                                  cache, "/bin/true"])
    assert status == 0 and re.search(r"^sendwrap: pass ip=127\.0\.0\.1 ", log,
                                     re.M), log
    r = run(["/usr/sbin/sendwrap", "-c", cache, "--cache-count"])
    assert r.returncode == 0 and re.match(r"1\b", r.stdout), r
    assert sorted(os.listdir(STATE)) == ["cache.mdb", "cache.mdb-lock"]


def test_purge_leaves_nothing(pkg):
    files = installed_files()
    # what sendwrap keeps there goes too
    one_connection(["/usr/sbin/sendwrap", "-d", "1ms", "-c",
                    STATE + "/cache.mdb", "/bin/true"])
    assert os.listdir(STATE)
    calls = pkg["machine"].dpkg("--purge", PACKAGE)
    assert "deb-systemd-invoke stop sendwrap.socket sendwrap-listener.socket" \
        " sendwrap-listener.service sendwrap-forward.service" in calls, calls
    assert not [c for c in calls if re.search(r"\b(start|enable)\b", c)], \
        calls
    assert dpkg_status() is None
    left = [p for p in files if os.path.lexists(p) and
            p not in pkg["there_before"]]
    assert left == []
    assert not os.path.lexists(STATE)
    assert not os.path.lexists("/etc/sendwrap")
    assert traces(ENABLED, HELPER + "enabled", HELPER + "masked") == []
    assert not glob.glob(UNIT_DIR + "/sendwrap*")
