"""--stress and --slots in delay mode: the count of waiting connections
shared by every sendwrap process that names the same --state-dir (and,
with --listen, the loop's own count).

Real processes on real loopback connections (sw_harness).  Who holds a
place is read from the kernel, not from sendwrap: a place is a flock on
STATE_DIR/place.K, and the test looks for those locks in /proc/locks.
Every wait is bounded and every timing bound generous.
"""
import os
import time

import pytest

from sw_harness import MTA, SECONDS, SLACK, T
from test_listener import Listener

CHECK_S = 1.0                   # WAITERS_CHECK_MS
BUSY = b"421 4.3.2 busy, try again later\r\n"
SOON = 3.0 + SLACK


def held_places(state_dir, n):
    """How many of the first n places some process holds (kernel locks)."""
    files = {}
    for k in range(n):
        try:
            st = os.stat(os.path.join(state_dir, "place.%d" % k))
        except FileNotFoundError:
            continue
        files["%02x:%02x:%d" % (os.major(st.st_dev), os.minor(st.st_dev),
                                st.st_ino)] = k
    held = set()
    with open("/proc/locks") as f:
        for line in f:
            # "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"; a waiter
            # for a lock has "->" before its kind
            parts = line.split()
            if parts[1] == "FLOCK" and parts[5] in files:
                held.add(files[parts[5]])
    return len(held)


def wait_held(state_dir, n, want, timeout=T):
    deadline = time.monotonic() + timeout
    while held_places(state_dir, n) != want:
        assert time.monotonic() < deadline, "%d places held, want %d" % (
            held_places(state_dir, n), want)
        time.sleep(0.02)


@pytest.fixture
def state(tmp_path):
    d = tmp_path / "state"
    d.mkdir(mode=0o700)
    return str(d)


def test_stress_shortens_the_wait_then_returns_to_d(sw, state):
    opts = ["--stress", "20,1s", "--state-dir", state]
    holders = [sw(["-d", "30"] + opts + MTA) for _ in range(20)]
    wait_held(state, 20, 20)
    # 20 more bots: each finds 20 waiting, waits 1 s and is handed on
    bots = [sw(["-d", "30"] + opts + MTA) for _ in range(20)]
    assert held_places(state, 20) == 20

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
    wait_held(state, 20, 0)
    for h in holders:
        h.expect("hangup", after=SECONDS, how="eof")
    c = sw(["-d", "2.5"] + opts + MTA)
    t = c.converse()
    assert 2.5 * 0.9 <= t, t
    c.expect("pass", delay="2.500", waited=SECONDS)


def test_sigkilled_waiters_free_their_places(sw, state):
    opts = ["--stress", "20,1s", "--state-dir", state]
    holders = [sw(["-d", "30"] + opts + MTA) for _ in range(20)]
    wait_held(state, 20, 20)
    # a stressed client: the count of 20 has just been checked
    c = sw(["-d", "30"] + opts + MTA)
    assert c.converse(timeout=1 + SOON) <= 1 + SOON
    c.expect("pass", delay="1.000", waited=SECONDS, stress="1")

    for h in holders:
        h.kill()
    # the kernel has dropped the dead holders' locks at once...
    assert held_places(state, 20) == 0
    # ...and the count sees it by the next check
    time.sleep(CHECK_S + 0.2)
    c = sw(["-d", "2"] + opts + MTA)
    assert c.converse() >= 2 * 0.9
    c.expect("pass", delay="2.000", waited=SECONDS)
    assert held_places(state, 20) == 0


def test_slots_cap_in_delay_mode_is_busy(sw, state):
    opts = ["-d", "30", "--slots", "3", "--state-dir", state] + MTA
    holders = [sw(opts) for _ in range(3)]
    wait_held(state, 3, 3)
    c = sw(opts)
    t0 = time.monotonic()
    assert c.client.read_all(timeout=SOON) == BUSY
    assert time.monotonic() - t0 < SOON
    assert c.wait() == 0
    c.expect("busy", mode="wrap", slots="3")
    assert not c.ran()
    # one leaves: the next client may wait again
    holders[0].finish()
    wait_held(state, 3, 2)
    c = sw(opts)
    wait_held(state, 3, 3)
    c.client.quiet_for(0.3)
    c.finish()
    c.expect("hangup", after=SECONDS, how="eof")


def test_slots_and_stress_together(sw, state):
    """Stressed clients hold a place too: they count toward the cap."""
    opts = ["--slots", "3", "--stress", "2,20s", "--state-dir", state] + MTA
    holders = [sw(["-d", "30"] + opts) for _ in range(2)]
    wait_held(state, 3, 2)
    stressed = sw(["-d", "30"] + opts)
    wait_held(state, 3, 3)
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
    wait_held(state, 1, 1)
    c = sw(opts + ["-A", "127.0.0.1"] + MTA)
    assert c.converse() < SOON
    c.expect("allow", reason="allowlist", rule="127.0.0.1")
    holder.finish()


@pytest.mark.parametrize("problem", ["group-writable", "symlink"])
def test_unusable_state_dir_costs_no_mail(sw, state, tmp_path, problem):
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    if problem == "group-writable":
        os.chmod(state, 0o770)
    else:
        os.symlink(str(victim), os.path.join(state, "waiting"))
    c = sw(["-d", "1", "--stress", "1,0", "--slots", "2", "--state-dir",
            state] + MTA)
    assert c.converse() >= 0.9
    errors = c.errors()
    assert len(errors) == 1 and "cannot count the waiting" in errors[0], \
        c.log
    c.expect("pass", delay="1.000", waited=SECONDS)
    assert victim.read_bytes() == b"keep me"


def test_state_file_is_made_0600(sw, state):
    c = sw(["-d", "0.2", "--stress", "5", "--state-dir", state] + MTA)
    c.converse()
    for name in ("waiting", "place.0"):
        st = os.lstat(os.path.join(state, name))
        assert st.st_mode & 0o7777 == 0o600
        assert st.st_uid == os.geteuid()


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
    assert "state-dir: %s" % state in out
    assert not os.path.exists(os.path.join(state, "waiting"))
    os.chmod(state, 0o777)
    rc, out, err = plain(["-n", "--stress", "20", "--state-dir", state,
                          "/bin/true"])
    assert rc == 100 and "writable by group or others" in err, err
    rc, out, err = plain(["-n", "--stress", "20", "--state-dir",
                          state + "/missing", "/bin/true"])
    assert rc == 100 and "No such file" in err, err
