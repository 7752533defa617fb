import os
import shutil
import signal
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import daemons  # noqa: E402
import e2elib  # noqa: E402


def _terminated(signum, frame):
    # Turn SIGTERM (tests/e2e/run's timeout) into an exception, so that the
    # fixtures' finalizers stop every server this run started.
    raise KeyboardInterrupt("SIGTERM")


def pytest_sessionstart(session):
    signal.signal(signal.SIGTERM, _terminated)
    problems = []
    if os.geteuid() != 0:
        problems.append("the end-to-end tests run as root (exim -C, "
                        "Debian-exim spool ownership, tcpserver -u)")
    if not os.access(e2elib.SENDWRAP, os.X_OK):
        problems.append("no sendwrap binary at %s (set SENDWRAP or run make)"
                        % e2elib.SENDWRAP)
    for tool in (e2elib.EXIM, e2elib.TCPSERVER, e2elib.TCPRULES,
                 e2elib.INETD, e2elib.SWAKS, e2elib.XINETD, e2elib.SENDMAIL,
                 e2elib.SOCKET_ACTIVATE, e2elib.SYSTEMD_ANALYZE, e2elib.M4) + \
            daemons.TOOLS:
        if not os.access(tool, os.X_OK):
            problems.append("missing %s" % tool)
    if problems:
        raise pytest.UsageError("cannot run the e2e tests:\n  " +
                                "\n  ".join(problems))


_skipped = []


def pytest_runtest_logreport(report):
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    # A skipped check is not a passed one: fail the run.
    if _skipped and session.exitstatus == 0:
        print("\nskipped checks count as failures here: %s" % _skipped)
        session.exitstatus = 1


@pytest.fixture(scope="session")
def base():
    # tests/e2e/run makes it (and removes it even after a crash)
    d = os.environ.get("E2E_BASE") or tempfile.mkdtemp(
        prefix="sendwrap-e2e.", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    if not os.environ.get("E2E_KEEP"):
        shutil.rmtree(d, ignore_errors=True)
    else:
        print("\nkept the test files in", d)


@pytest.fixture(autouse=True)
def _stop_servers():
    yield
    e2elib.stop_all()


@pytest.fixture
def wd(base, request):
    return e2elib.make_workdir(base, request.node.name[:40])


@pytest.fixture
def mx(wd):
    return e2elib.EximReceiver(wd)


@pytest.fixture(params=["exim", "sendmail"])
def mta(request, wd):
    """Each MTA in turn: exim, and sendmail (whose servers must run in
    its namespace, mta.ns)."""
    if request.param == "exim":
        return e2elib.EximReceiver(wd)
    return e2elib.Sendmail(wd)


def sendwrap_argv(*opts, mta):
    return [e2elib.SENDWRAP] + list(opts) + ["--"] + list(mta)


@pytest.fixture
def sw():
    return sendwrap_argv


# One of each MTA daemon a module (tests/e2e/daemons.py), in a directory
# of the module's: each outlives the test that started it (keep()).

@pytest.fixture(scope="module")
def mdir(base, request):
    return e2elib.make_workdir(base, request.module.__name__[:40])


@pytest.fixture(scope="module")
def postfix(mdir):
    """Postfix: smtpd on .port, a PROXY smtpd on .proxy_port and on the
    unix socket .socket, postscreen (greet wait 1 s) on .postscreen_port."""
    pf = daemons.PostfixServer(mdir, smtpd=True, proxy=True,
                               postscreen=True, greet_wait=1,
                               unix_proxy=True).keep()
    yield pf
    pf.stop()


@pytest.fixture(scope="module")
def exim_proxy(mdir):
    """exim -bd (heavy) with hosts_proxy = 127.0.0.1, on .port."""
    ex = daemons.EximDaemon(mdir, proxy=True, name="exim-proxy").keep()
    yield ex
    ex.stop()


@pytest.fixture(scope="module")
def opensmtpd(mdir):
    """OpenSMTPD: .port, and .proxy_port with proxy-v2."""
    os_ = daemons.OpenSMTPD(mdir).keep()
    yield os_
    os_.stop()
