"""--stress and --slots in delay mode: the count of waiting connections
shared by every sendwrap process that names the same --state-dir (and,
with --listen, the loop's own count).

Real processes on real loopback connections (sw_harness), and a real
DNS server for an allow list.  How many places are held is read from
the kernel, not from sendwrap: the count is a System V semaphore set
that the state directory names (waiters.h), read with semctl by
tests/semcount.py.  Every wait is bounded and every timing bound
generous.
"""
import fcntl
import os
import sys
import time

import pytest

from dnsserver import DNS
from sw_harness import GREETING, MTA, SECONDS, SLACK, T
from test_listener import Listener

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import semcount  # noqa: E402  (tests/semcount.py)

BUSY = b"421 4.3.2 busy, try again later\r\n"
SOON = 3.0 + SLACK


def wait_held(state_dir, want, timeout=T):
    deadline = time.monotonic() + timeout
    while semcount.waiting(state_dir) != want:
        assert time.monotonic() < deadline, "%d places held, want %d" % (
            semcount.waiting(state_dir), want)
        time.sleep(0.02)


def sysv_set(sid):
    """Set sid as /proc/sysvipc/sem shows it: a dict, or None."""
    return semcount.sets().get(sid)


def name(state_dir, sid, made=None, ns=None):
    """Make state_dir's link name set sid, as sendwrap would (or with
    another time or namespace)."""
    link = os.path.join(state_dir, semcount.LINK)
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink("%d:%s:%d" % (sid, made or sysv_set(sid)["ctime"],
                             ns or semcount.this_ns()), link)


@pytest.fixture
def state(tmp_path):
    d = tmp_path / "state"
    d.mkdir(mode=0o700)
    before = semcount.ours()
    yield str(d)
    # The kernel keeps a set until it is removed: remove the one named,
    # and see that sendwrap made no other (only the test's own are
    # removed: another program of this user may make sets meanwhile, and
    # this check would name them, as it does when make check and another
    # test run share a machine).
    semcount.remove(str(d))
    left = semcount.ours() - before
    assert not left, "sets left behind: %s" % left


def test_stress_shortens_the_wait_then_returns_to_d(sw, state):
    opts = ["--stress", "20,1s", "--state-dir", state]
    holders = [sw(["-d", "30"] + opts + MTA) for _ in range(20)]
    wait_held(state, 20)
    # 20 more bots: each finds 20 waiting, waits 1 s and is handed on
    bots = [sw(["-d", "30"] + opts + MTA) for _ in range(20)]

    # the 41st client waits 1 s, not 30, and its line says why
    c = sw(["-d", "30"] + opts + MTA)
    t = c.converse(timeout=1 + SOON)
    assert 0.9 <= t <= 1 + SOON, t
    c.expect("pass", delay="1.000", waited=SECONDS, stress="1")
    assert c.rc == 0
    for b in bots:
        b.greeted(timeout=1 + SOON)
    for b in bots:
        assert b.verdict()[1]["stress"] == "1", b.log

    # the holders leave (hang up): a new client waits the full -d
    for h in holders:
        h.finish()
    wait_held(state, 0)
    for h in holders:
        h.expect("hangup", after=SECONDS, how="eof")
    c = sw(["-d", "2.5"] + opts + MTA)
    t = c.converse()
    assert 2.5 * 0.9 <= t, t
    c.expect("pass", delay="2.500", waited=SECONDS)


def test_sigkilled_waiters_free_their_places(sw, state):
    opts = ["--stress", "20,1s", "--state-dir", state]
    holders = [sw(["-d", "30"] + opts + MTA) for _ in range(20)]
    wait_held(state, 20)
    # a stressed client
    c = sw(["-d", "30"] + opts + MTA)
    assert c.converse(timeout=1 + SOON) <= 1 + SOON
    c.expect("pass", delay="1.000", waited=SECONDS, stress="1")

    for h in holders:
        h.kill()
    # the kernel has given the dead holders' places back at once: the
    # very next client waits the full delay
    assert semcount.waiting(state) == 0
    c = sw(["-d", "2"] + opts + MTA)
    assert c.converse() >= 2 * 0.9
    c.expect("pass", delay="2.000", waited=SECONDS)
    assert semcount.waiting(state) == 0


def test_slots_cap_in_delay_mode_is_busy(sw, state):
    opts = ["-d", "30", "--slots", "3", "--state-dir", state] + MTA
    holders = [sw(opts) for _ in range(3)]
    wait_held(state, 3)
    c = sw(opts)
    t0 = time.monotonic()
    assert c.client.read_all(timeout=SOON) == BUSY
    assert time.monotonic() - t0 < SOON
    assert c.wait() == 0
    c.expect("busy", mode="wrap", slots="3")
    assert not c.ran()
    # one leaves: the next client may wait again
    holders[0].finish()
    wait_held(state, 2)
    c = sw(opts)
    wait_held(state, 3)
    c.client.quiet_for(0.3)
    c.finish()
    c.expect("hangup", after=SECONDS, how="eof")


def test_slots_and_stress_together(sw, state):
    """Stressed clients hold a place too: they count toward the cap."""
    opts = ["--slots", "3", "--stress", "2,20s", "--state-dir", state] + MTA
    holders = [sw(["-d", "30"] + opts) for _ in range(2)]
    wait_held(state, 2)
    stressed = sw(["-d", "30"] + opts)
    wait_held(state, 3)
    busy = sw(["-d", "30"] + opts)
    assert busy.client.read_all(timeout=SOON) == BUSY
    busy.wait()
    busy.expect("busy", mode="wrap", slots="3")
    stressed.finish()
    stressed.expect("hangup", after=SECONDS, how="eof", stress="1")
    for h in holders:
        h.finish()


def test_allowlisted_clients_take_no_place(sw, state):
    opts = ["--slots", "1", "--state-dir", state, "-d", "30"]
    holder = sw(opts + MTA)
    wait_held(state, 1)
    c = sw(opts + ["-A", "127.0.0.1"] + MTA)
    assert c.converse() < SOON
    c.expect("allow", reason="allowlist", rule="127.0.0.1")
    holder.finish()


def as_user(uid, fn):
    """fn() in a child process running as uid; its int result."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgid(uid)
            os.setuid(uid)
            os.write(w, b"%d" % fn())
            os._exit(0)
        finally:
            os._exit(1)
    os.close(w)
    out = os.read(r, 64)
    os.close(r)
    assert os.waitpid(pid, 0)[1] == 0
    return int(out)


@pytest.mark.parametrize("problem", [
    "group-writable", "another user's", "count is a file",
    "another IPC namespace's"])
def test_unusable_state_dir_costs_no_mail(sw, state, problem):
    link = os.path.join(state, semcount.LINK)
    before = None
    if problem == "group-writable":
        os.chmod(state, 0o770)
    elif problem == "another user's":
        if os.geteuid() != 0:
            pytest.skip("needs root to give the directory away")
        os.chown(state, 65534, 65534)
    elif problem == "count is a file":
        with open(link, "w") as f:
            f.write("0:0:0")
    else:
        # its set cannot be seen from here: it looks gone
        gone = semcount.make()
        name(state, gone, ns=semcount.this_ns() + 1)
        semcount.remove_id(gone)
        before = os.readlink(link)
    c = sw(["-d", "1", "--stress", "1,0", "--slots", "2", "--state-dir",
            state] + MTA)
    assert c.converse() >= 0.9
    errors = c.errors()
    assert len(errors) == 1 and "cannot count the waiting" in errors[0], \
        c.log
    c.expect("pass", delay="1.000", waited=SECONDS)
    if before is not None:
        assert "another IPC namespace" in errors[0], errors
        assert os.readlink(link) == before      # not replaced


def test_count_is_a_set_of_ours_named_in_the_dir(sw, state):
    c = sw(["-d", "0.2", "--stress", "5", "--state-dir", state] + MTA)
    c.converse()
    c.expect("pass", delay="0.200", waited=SECONDS)
    assert os.listdir(state) == [semcount.LINK]
    link = os.path.join(state, semcount.LINK)
    assert os.path.islink(link)
    sid = semcount.set_id(state)
    row = sysv_set(sid)
    me = str(os.geteuid())
    # no key: nobody can make it first
    assert (row["key"], row["perms"], row["nsems"], row["uid"],
            row["cuid"]) == ("0", "600", "1", me, me), row
    assert os.readlink(link) == "%d:%s:%d" % (sid, row["ctime"],
                                              semcount.this_ns())
    assert semcount.waiting(state) == 0
    # the next connection uses the same set
    c = sw(["-d", "0.2", "--stress", "5", "--state-dir", state] + MTA)
    c.converse()
    assert semcount.set_id(state) == sid


@pytest.mark.parametrize("stale", [
    "set removed", "not a name", "id too big", "id of a newer set",
    "set mode 0666", "set of two semaphores", "set of another user"])
def test_a_stale_link_is_replaced(sw, state, stale):
    """Of 8 clients that find it stale at once, one replaces it: the
    others use its set, and no set is left behind (the fixture)."""
    link = os.path.join(state, semcount.LINK)
    foreign = None
    if stale == "set removed":
        gone = semcount.make()
        name(state, gone)
        semcount.remove_id(gone)
    elif stale == "not a name":
        os.symlink("nonsense", link)
    elif stale == "id too big":
        os.symlink("2147483648:1:%d" % semcount.this_ns(), link)
    else:
        if stale == "id of a newer set":
            foreign = semcount.make()
            made = int(sysv_set(foreign)["ctime"]) - 1
        elif stale == "set mode 0666":
            foreign, made = semcount.make(0o666), None
        elif stale == "set of two semaphores":
            foreign, made = semcount.make(nsems=2), None
        else:
            if os.geteuid() != 0:
                pytest.skip("needs root to make a set as another user")
            foreign, made = as_user(65534, semcount.make), None
        name(state, foreign, made)
    before = os.readlink(link)
    try:
        opts = ["-d", "30", "--slots", "8", "--state-dir", state] + MTA
        holders = [sw(opts) for _ in range(8)]
        wait_held(state, 8)
        assert os.readlink(link) != before
        c = sw(opts)
        assert c.client.read_all(timeout=SOON) == BUSY
        c.wait()
        c.expect("busy", mode="wrap", slots="8")
        for h in holders + [c]:
            assert h.errors() == [], h.log
        if foreign is not None:
            assert sysv_set(foreign)["otime"] == "0"    # never used
        for h in holders:
            h.finish()
        wait_held(state, 0)
    finally:
        if foreign is not None:
            semcount.remove_id(foreign)


def opened(pid, path):
    """Has process pid a descriptor open on path?"""
    fds = "/proc/%d/fd" % pid
    try:
        return any(os.readlink(os.path.join(fds, fd)) == path
                   for fd in os.listdir(fds))
    except FileNotFoundError:
        return False


@pytest.fixture
def dir_locked(state):
    """state, locked as a client replacing its stale link locks it."""
    gone = semcount.make()
    name(state, gone)
    semcount.remove_id(gone)
    fd = os.open(state, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    yield fd
    os.close(fd)


def test_a_link_replaced_meanwhile_is_used(sw, state, dir_locked):
    """A client that found the link stale waits for the lock, then finds
    it replaced by another: it uses that set and makes none."""
    c = sw(["-d", "30", "--slots", "1", "--state-dir", state] + MTA)
    deadline = time.monotonic() + T
    while not opened(c.proc.pid, state):        # waiting for the lock
        assert time.monotonic() < deadline, c.log
        time.sleep(0.001)
    other = semcount.make()
    semcount.fill(other)
    name(state, other)
    fcntl.flock(dir_locked, fcntl.LOCK_UN)
    wait_held(state, 1)
    assert semcount.set_id(state) == other
    assert c.errors() == []
    c.finish()


def test_a_lock_held_too_long_costs_no_mail(sw, state, dir_locked):
    c = sw(["-d", "1", "--slots", "1", "--state-dir", state] + MTA)
    t = c.converse()
    assert 0.9 <= t < 1 + SOON, t
    errors = c.errors()
    assert len(errors) == 1 and "cannot count the waiting" in errors[0] \
        and "timed out" in errors[0], c.log
    c.expect("pass", delay="1.000", waited=SECONDS)


def test_the_program_never_holds_a_place(sw, state, tmp_path):
    """Given back before the exec, on every way to it: after the wait,
    and when a DNS allow list ends the wait early."""
    c = sw(["-d", "0.3", "--slots", "1", "--state-dir", state] + MTA)
    c.greeted()
    assert semcount.waiting(state) == 0     # the MTA's session is open
    dns = DNS(tmp_path)
    try:
        env = {"PROTO": "TCP", "TCPREMOTEIP": "127.0.0.3",
               "TCPREMOTEPORT": "4000"}
        listed = sw(["-d", "30", "--slots", "1", "--state-dir", state,
                     "--dnswl", "wl.test", "--dns-server", dns.server] + MTA,
                    env=env)
        assert listed.greeted() < SOON
        assert semcount.waiting(state) == 0
        # so the one slot is free for a client that waits
        other = sw(["-d", "30", "--slots", "1", "--state-dir", state] + MTA)
        wait_held(state, 1)
        assert GREETING not in other.client.data
        other.finish()
        listed.finish(quit=True)
        assert listed.verdict()[1]["reason"] == "dnswl"
    finally:
        dns.stop()
    c.finish(quit=True)


@pytest.fixture
def listener(tmp_path):
    started = []

    def start(args):
        lst = Listener(tmp_path / ("l%d" % len(started)), args)
        started.append(lst)
        return lst

    yield start
    for lst in started:
        lst.stop()


def test_listener_counts_its_own_waiting_clients(listener):
    lst = listener(["-d", "30", "--stress", "2,0.5", *MTA])
    held = [lst.connect(), lst.connect()]
    time.sleep(0.3 + SLACK / 10)
    c = lst.connect()
    t0 = time.monotonic()
    c.recv_until(b"220 standin\r\n", timeout=0.5 + SOON)
    assert 0.45 <= time.monotonic() - t0 <= 0.5 + SOON
    f = lst.wait_for("pass")[0]
    assert f["delay"] == "0.500" and f["stress"] == "1", f
    c.send(b"QUIT\r\n")
    for h in held:
        h.close()
    hangups = lst.wait_for("hangup", 2)
    assert all("stress" not in f for f in hangups), hangups
    # nobody waits now: the next client gets the full delay
    c = lst.connect()
    c.quiet_for(1.0)
    c.close()
    f = lst.wait_for("hangup", 3)[-1]
    assert "stress" not in f and float(f["after"]) >= 0.9, f


@pytest.mark.parametrize("args,msg", [
    (["--stress", "5", "/bin/true"], "--stress needs --state-dir"),
    (["--state-dir", "/tmp", "/bin/true"], "--state-dir goes with"),
    (["--slots", "5", "/bin/true"], "--slots in delay mode needs"),
    (["--stress", "5", "--slots", "5", "--state-dir", "/tmp", "/bin/true"],
     "must be above"),
    (["--stress", "0", "--state-dir", "/tmp", "/bin/true"], "--stress"),
    (["--stress", "32768", "--state-dir", "/tmp", "/bin/true"], "--stress"),
    (["--slots", "32768", "--state-dir", "/tmp", "/bin/true"],
     "--slots in delay mode counts at most 32767"),
    (["--stress", "5,301", "--state-dir", "/tmp", "/bin/true"], "--stress"),
    (["--stress", "5,x", "--state-dir", "/tmp", "/bin/true"], "--stress"),
    (["--tarpit", "--stress", "5", "--state-dir", "/tmp"], "--stress"),
    (["--listen", "127.0.0.1:0", "--stress", "5", "--state-dir", "/tmp",
      "/bin/true"], "--state-dir"),
])
def test_usage_errors(plain, args, msg):
    rc, out, err = plain(["-n"] + args)
    assert rc == 100 and msg in err, err


def test_check_shows_the_count(plain, state):
    rc, out, err = plain(["-n", "--stress", "20,1s", "--slots", "50",
                          "--state-dir", state, "/bin/true"])
    assert rc == 0, err
    assert "stress: 1.000 s for a client when 20 are waiting" in out
    assert "slots: 50 waiting at most" in out
    assert "state-dir: %s (0 waiting now)" % state in out
    assert os.listdir(state) == []      # -n makes nothing
    os.chmod(state, 0o777)
    rc, out, err = plain(["-n", "--stress", "20", "--state-dir", state,
                          "/bin/true"])
    assert rc == 100 and "writable by group or others" in err, err
    rc, out, err = plain(["-n", "--stress", "20", "--state-dir",
                          state + "/missing", "/bin/true"])
    assert rc == 100 and "No such file" in err, err


def test_check_counts_the_waiting(sw, plain, state):
    opts = ["--stress", "20", "--state-dir", state]
    holders = [sw(["-d", "30"] + opts + MTA) for _ in range(2)]
    wait_held(state, 2)
    rc, out, err = plain(["-n"] + opts + ["/bin/true"])
    assert rc == 0 and "state-dir: %s (2 waiting now)" % state in out, err
    for h in holders:
        h.kill()
    rc, out, err = plain(["-n"] + opts + ["/bin/true"])
    assert rc == 0 and "state-dir: %s (0 waiting now)" % state in out, err
    # a stale link: nobody waits, and -n leaves it for the next client
    sid = semcount.set_id(state)
    semcount.remove_id(sid)
    before = os.readlink(os.path.join(state, semcount.LINK))
    rc, out, err = plain(["-n"] + opts + ["/bin/true"])
    assert rc == 0 and "state-dir: %s (0 waiting now)" % state in out, err
    assert os.readlink(os.path.join(state, semcount.LINK)) == before
    # a link from another IPC namespace (whose set cannot be seen from
    # here) is reported
    name(state, sid, made=1, ns=semcount.this_ns() + 1)
    rc, out, err = plain(["-n"] + opts + ["/bin/true"])
    assert rc == 100 and "another IPC namespace" in err, (out, err)
