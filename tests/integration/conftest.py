"""Fixtures for the sendwrap integration tests (see sw_harness.py)."""
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sw_harness as h  # noqa: E402


def pytest_sessionstart(session):
    problems = []
    if not os.access(h.SENDWRAP, os.X_OK):
        problems.append("no sendwrap binary at %s (run make, or set "
                        "SENDWRAP)" % h.SENDWRAP)
    if h.VALGRIND and shutil.which("valgrind") is None:
        problems.append("SENDWRAP_VALGRIND is set but valgrind is missing")
    if problems:
        raise pytest.UsageError("\n".join(problems))


def pytest_configure(config):
    config.addinivalue_line("markers", "no_valgrind: left out of the "
                            "valgrind suite (load tests, limits valgrind "
                            "changes)")
    config.addinivalue_line("markers", "every_case_under_valgrind: each "
                            "parameter set is a code path of its own")


@pytest.hookimpl(tryfirst=True)      # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    keep_apart(items)
    leave_out_under_valgrind(config, items)


def keep_apart(items):
    """The suite runs its tests side by side (make check: pytest -n,
    --dist loadgroup): most of their time is waiting for sendwrap's
    delays.  Two kinds run one at a time, on one worker: the load tests
    (no_valgrind: hundreds of clients, timing that another load would
    bend), and the System V semaphore tests, which check that no set is
    left behind by comparing the system's sets before and after."""
    for item in items:
        if item.get_closest_marker("no_valgrind") or \
                item.nodeid.startswith("test_stress.py") or \
                "/test_stress.py" in item.nodeid:
            item.add_marker(pytest.mark.xdist_group("one-at-a-time"))


def leave_out_under_valgrind(config, items):
    """Under valgrind every process costs a second or more, so the suite
    runs each test function once (its first parameter set: the others
    mostly vary data along the same code path), every case only where the
    cases take different paths (every_case_under_valgrind), and nothing
    marked no_valgrind.  What is left out is deselected, never skipped:
    it runs in the plain and sanitizer suites."""
    if not h.VALGRIND:
        return
    seen, keep, drop = set(), [], []
    for item in items:
        function = item.nodeid.split("[")[0]
        if item.get_closest_marker("no_valgrind") or (
                function in seen and
                not item.get_closest_marker("every_case_under_valgrind")):
            drop.append(item)
            continue
        seen.add(function)
        keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_report_header(config):
    return "sendwrap: %s%s" % (h.SENDWRAP,
                               " (under valgrind)" if h.VALGRIND else "")


@pytest.fixture
def sw(tmp_path):
    """sw(args, **options) starts sendwrap on a fresh connection (see
    sw_harness.Sendwrap); its files go to a new directory under workdir
    (default: the test's)."""
    runs = []

    def start(args, workdir=tmp_path, **kw):
        run = h.Sendwrap(Path(workdir) / ("run%d" % len(runs)), args, **kw)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.cleanup()


@pytest.fixture
def plain(tmp_path):
    """plain(args, **options) runs sendwrap without a connection (see
    sw_harness.run_plain): (rc, out, err).  Its files go to workdir
    (default: plain/ in the test's directory)."""
    def run(args, workdir=tmp_path / "plain", **kw):
        return h.run_plain(workdir, args, **kw)
    return run


@pytest.fixture
def shared():
    """A scratch directory h.NOBODY can reach (pytest's is root-only)."""
    d = tempfile.mkdtemp(prefix="sendwrap-test-")
    os.chmod(d, 0o755)
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def write(tmp_path):
    """write(name, text) puts a file in the test's directory."""
    def put(name, text):
        path = tmp_path / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return str(path)
    return put
