"""The pass cache on Redis (--redis), alone and as the shared second level
behind the LMDB file (-c): a real redis-server (Debian's) on a loopback
port and a unix socket, with a password and ACL users, in front of the
stand-in MTA.

- A pass is written to Redis (key, value and TTL as doc/redis.md says) and
  the next connection, on any "host", is greeted at once; with -c the
  Redis hit is copied into the LMDB file, which then answers alone.
- A bad entry added from outside (--cache-add, as the MTA's ACL user) is
  refused at once with a 4xx; without --bad-ttl it is ignored.
- Every way Redis can fail (refused, killed, stopped, wrong password, a
  bad password file) costs a connection at most --redis-timeout, is
  logged once with the reason, and the client is served after its delay.
- Fallback servers are tried in order within the budget, and a write
  refused by a read-only replica goes to the next server.
- The listener keeps one connection, and after a failure does not ask
  Redis again for a second.
- The commands: --cache-add, --cache-list, --cache-count, --cache-delete
  on Redis, on LMDB and on both; -n's PING; option errors.
"""
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sw_harness import (ANY, LIGHT_MTA, MTA, REPLY_TEMPFAIL, SLACK, T,
                        run_plain)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from redisd import (MTA_RULES, SENDWRAP_RULES, RedisServer,  # noqa: E402
                    free_port, write_secret)
from test_listener import Listener, greeted  # noqa: E402

QUICK = 0.6 + SLACK          # "at once", on a loaded machine
BUDGET = 0.4                 # --redis-timeout in the failure tests
DAY_MS = 86400000


@pytest.fixture
def redis(tmp_path):
    srv = RedisServer(tmp_path / "redis", users={"sendwrap": SENDWRAP_RULES,
                                                 "mta": MTA_RULES})
    yield srv
    srv.stop()


def opts(redis, tmp_path, user="sendwrap", unix=False, extra=()):
    pw = redis.password_file(tmp_path / ("pw-%s" % user), user)
    return ["--redis", redis.url(user=user, unix=unix),
            "--redis-password-file", pw] + list(extra)


def lmdb_entries(path):
    rc, out, err = run_plain(Path(path).parent / "plain", ["--cache-list",
                                                         str(path)])
    assert rc == 0, err
    return {f[0]: f[1:] for f in (l.split() for l in out.splitlines())}


def utc(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


# ------------------------------------------------ pass, cached, copies

def test_a_pass_goes_to_redis_and_the_next_client_is_greeted_at_once(
        sw, redis, tmp_path):
    r = opts(redis, tmp_path)
    first = sw(["-d", "1"] + r + MTA)
    assert first.converse() >= 1.0
    first.expect("pass", delay="1.000", waited=ANY)
    assert first.errors() == []
    entries = redis.entries()
    assert list(entries) == ["127.0.0.1/32"], entries
    kind, recorded, expires, pttl = entries["127.0.0.1/32"]
    assert kind == "pass" and expires - recorded == DAY_MS
    assert abs(recorded / 1000 - time.time()) < 30
    assert DAY_MS - 60000 < pttl <= DAY_MS        # Redis expires it

    second = sw(["-d", "5"] + r + MTA)
    assert second.converse() < QUICK
    got = second.expect("cached", age=ANY)
    assert float(got["age"]) < 10
    assert second.errors() == []


def test_with_an_lmdb_file_a_redis_hit_is_copied_and_answers_alone(
        sw, redis, tmp_path):
    r = opts(redis, tmp_path, unix=True)
    a, b = tmp_path / "a.mdb", tmp_path / "b.mdb"
    # Host A: the client waits, passes; written to A's file and Redis.
    first = sw(["-d", "1", "-c", str(a)] + r + MTA)
    assert first.converse() >= 1.0
    first.expect("pass", delay="1.000", waited=ANY)
    kind, recorded, expires, _ = redis.entries()["127.0.0.1/32"]
    assert lmdb_entries(a)["127.0.0.1/32"][0] == "pass"

    # Host B, its own file, empty: the client is cached through Redis,
    # and B's file now holds the same entry, times and all.
    assert not b.exists()
    second = sw(["-d", "5", "-c", str(b)] + r + MTA)
    assert second.converse() < QUICK
    second.expect("cached", age=ANY)
    assert second.errors() == []
    assert lmdb_entries(b)["127.0.0.1/32"] == ["pass", utc(expires),
                                               utc(recorded), "live"]

    # Redis gone: B's file answers on its own, and nothing is logged
    # (a local hit never asks Redis).
    redis.stop()
    third = sw(["-d", "5", "-c", str(b)] + r + MTA)
    assert third.converse() < QUICK
    third.expect("cached", age=ANY)
    assert third.errors() == []
    # Host C never saw the client: it asks Redis, logs why it could not,
    # and the client waits as without a cache.
    fourth = sw(["-d", "1", "-c", str(tmp_path / "c.mdb")] + r + MTA)
    assert fourth.converse() >= 1.0
    fourth.expect("pass", delay="1.000", waited=ANY)
    errors = fourth.errors()
    assert len(errors) == 1 and "cache redis unix:" in errors[0] and \
        "connect:" in errors[0], errors


def test_a_bad_mark_from_outside_is_refused_at_once_with_a_4xx(
        sw, plain, redis, tmp_path):
    # As the MTA's ACL user, which may only SET and DEL: a fail2ban or an
    # Exim ACL would run this.
    rc, out, err = plain(opts(redis, tmp_path, user="mta") +
                         ["--cache-add", "bad", "127.0.0.1", "--ttl", "10m"])
    assert rc == 0, err
    assert re.fullmatch(r"127\.0\.0\.1/32 bad until \S+Z: redis\n", out), out
    kind, recorded, expires, pttl = redis.entries()["127.0.0.1/32"]
    assert kind == "bad" and expires - recorded == 600000
    assert 590000 < pttl <= 600000

    c = sw(["-d", "5", "-x", "tempfail", "--bad-ttl", "1h"] +
           opts(redis, tmp_path) + MTA)
    c.client.recv_until(b"\r\n", QUICK)
    assert c.client.data.startswith(b"421 "), c.client.data
    c.finish()
    c.expect("known-early", age=ANY, action="tempfail")
    assert not c.ran()

    # Without --bad-ttl bad entries are not acted on: the client waits.
    d = sw(["-d", "1"] + opts(redis, tmp_path) + MTA)
    assert d.converse() >= 1.0
    d.expect("pass", delay="1.000", waited=ANY)


def test_an_early_talker_is_recorded_as_bad_in_redis(sw, redis, tmp_path):
    c = sw(["-d", "5", "-x", "tempfail", "--bad-ttl", "1h"] +
           opts(redis, tmp_path) + MTA, early=b"EHLO bot\r\n")
    c.client.read_all()
    assert c.client.data == REPLY_TEMPFAIL
    c.finish()
    c.expect("early", after=ANY, bytes=ANY, first=ANY, action="tempfail")
    kind, recorded, expires, _ = redis.entries()["127.0.0.1/32"]
    assert kind == "bad" and expires - recorded == 3600000


# ------------------------------------------------------------ failures

class Silent:
    """A server that accepts connections (the kernel does) and never
    answers: what a hung Redis looks like."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


FAILURES = {
    # name: (what is done to the server, the reason logged)
    "refused": "connect: Connection refused",
    "killed-unix": "connect: ",
    "stopped": "timed out",
    "silent": "timed out",
    "wrong-password": "AUTH refused: WRONGPASS",
    "open-password-file": "group or others can read or write it",
}


@pytest.mark.every_case_under_valgrind
@pytest.mark.parametrize("how", sorted(FAILURES))
def test_a_failing_redis_costs_at_most_the_budget_and_one_line(
        sw, redis, tmp_path, how):
    pw = redis.password_file(tmp_path / "pw", "sendwrap")
    url = redis.url(user="sendwrap")
    silent = None
    if how == "refused":
        url = "redis://sendwrap@127.0.0.1:%d" % free_port()
    elif how == "killed-unix":
        url = redis.url(user="sendwrap", unix=True)
        redis.stop()
    elif how == "stopped":
        redis.pause()
    elif how == "silent":
        silent = Silent()
        url = "redis://sendwrap@127.0.0.1:%d" % silent.port
    elif how == "wrong-password":
        write_secret(pw, "not-the-password")
    elif how == "open-password-file":
        os.chmod(pw, 0o640)
    try:
        c = sw(["-d", "1", "--redis-timeout", "%dms" % (BUDGET * 1000),
                "--redis", url, "--redis-password-file", pw] + MTA)
        took = c.converse()
    finally:
        if how == "stopped":
            redis.resume()
        if silent:
            silent.close()
    # Delayed, never refused; the lookup's failure cost at most the
    # budget, and the record after the pass did not try again.
    assert 1.0 <= took <= 1.0 + BUDGET + 0.5 + SLACK, took
    c.expect("pass", delay="1.000", waited=ANY)
    errors = c.errors()
    assert len(errors) == 1, errors
    assert re.match(r"sendwrap: error ip=127\.0\.0\.1 port=\d+ cache "
                    r"redis", errors[0]) and FAILURES[how] in errors[0], errors
    # The password is never logged.
    assert redis.passwords["sendwrap"] not in c.log


def test_fallbacks_are_tried_in_order_within_the_budget(sw, redis,
                                                        tmp_path):
    pw = redis.password_file(tmp_path / "pw", "sendwrap")
    good = redis.url(user="sendwrap")
    dead = "redis://sendwrap@127.0.0.1:%d" % free_port()
    c = sw(["-d", "1", "--redis", dead, "--redis", good,
            "--redis-password-file", pw] + MTA)
    assert c.converse() >= 1.0
    c.expect("pass", delay="1.000", waited=ANY)
    assert c.errors() == []
    assert "127.0.0.1/32" in redis.entries()

    # A first server that hangs gets its share of the budget (half, with
    # two): the second still answers in time, for the lookup and again
    # for the record.
    silent = Silent()
    hung = "redis://sendwrap@127.0.0.1:%d" % silent.port
    redis.command("FLUSHALL")
    try:
        t0 = time.monotonic()
        c = sw(["-d", "1", "--redis-timeout", "600ms", "--redis", hung,
                "--redis", good, "--redis-password-file", pw] + MTA)
        took = c.converse()
        c.expect("pass", delay="1.000", waited=ANY)
    finally:
        silent.close()
    assert 1.0 + 0.5 <= took <= 1.0 + 0.6 + 0.5 + SLACK, took
    assert c.errors() == [], c.log
    assert "127.0.0.1/32" in redis.entries()
    assert time.monotonic() - t0 < 1.0 + 2 * 0.6 + 1.0 + SLACK


def test_a_read_only_replica_first_sends_the_writes_on(sw, redis, tmp_path):
    replica = RedisServer(
        tmp_path / "replica", users={"sendwrap": SENDWRAP_RULES},
        extra="replicaof 127.0.0.1 %d\nmasterauth %s\nreplica-read-only "
              "yes\n" % (redis.port, redis.passwords["default"]))
    try:
        pw = redis.password_file(tmp_path / "pw", "sendwrap")
        # The same ACL user with the same password on both.
        r = ["--redis", replica.url(user="sendwrap", unix=True),
             "--redis", redis.url(user="sendwrap"),
             "--redis-password-file", pw]
        first = sw(["-d", "1"] + r + MTA)
        assert first.converse() >= 1.0
        first.expect("pass", delay="1.000", waited=ANY)
        assert first.errors() == [], first.log
        assert "127.0.0.1/32" in redis.entries()
        deadline = time.monotonic() + T
        while "127.0.0.1/32" not in replica.entries():
            assert time.monotonic() < deadline, replica.log()
            time.sleep(0.05)
        redis.stop()          # reads need only the replica
        second = sw(["-d", "5"] + r + MTA)
        assert second.converse() < QUICK
        second.expect("cached", age=ANY)
        assert second.errors() == []
    finally:
        replica.stop()


# ------------------------------------------------------------ listener

def test_the_listener_keeps_a_connection_and_backs_off_after_a_failure(
        redis, tmp_path):
    r = opts(redis, tmp_path, extra=["--redis-timeout", "%dms" %
                                     (BUDGET * 1000)])
    lst = Listener(tmp_path / "l", ["-d", "1"] + r + MTA)
    try:
        c = lst.connect()
        assert greeted(c) >= 1.0
        c.close()
        lst.wait_for("pass")
        c = lst.connect()
        assert greeted(c) < QUICK
        c.close()
        lst.wait_for("cached")
        assert lst.errors() == []

        # Stopped: four clients at once.  The loop never waits for
        # Redis: their lookups go out together, and when the oldest has
        # not been answered within the budget the connection is given up
        # (one error line) and every one of them is a miss; for 3 s Redis
        # is not asked at all.  All are served after their delay.
        redis.pause()
        try:
            t0 = time.monotonic()
            cs = [lst.connect(source="127.0.0.%d" % i) for i in (2, 3, 4, 5)]
            ts = []
            for c in cs:
                greeted(c)
                ts.append(time.monotonic() - t0)
        finally:
            redis.resume()
        for c in cs:
            c.close()
        # Generous: a loaded machine adds its own latency to every client.
        assert all(1.0 <= t <= 1.0 + 2.0 + SLACK for t in ts), ts
        lst.wait_for("pass", 5)
        errors = lst.errors()
        assert len(errors) == 1, errors
        assert "timed out" in errors[0], errors

        # Back: 3 s after the failure Redis is asked again (the clients
        # that passed meanwhile were not written there).
        time.sleep(3.0)
        c = lst.connect()
        assert greeted(c) < QUICK
        c.close()
        lst.wait_for("cached", 2)
        assert len(lst.errors()) == 1, lst.errors()
    finally:
        assert lst.stop() == 0


# ------------------------------------------------------------ commands

def test_commands_on_redis_lmdb_and_both(sw, plain, redis, tmp_path):
    r = opts(redis, tmp_path)
    mdb = str(tmp_path / "c.mdb")
    # Maintenance never makes an LMDB file: the other store still gets it.
    rc, out, err = plain(["-c", mdb] + r + ["--cache-add", "pass",
                                            "192.0.2.7"])
    assert rc == 111 and "No such file" in err, (rc, out, err)
    assert re.fullmatch(r"192\.0\.2\.7/32 pass until \S+: redis\n", out)
    assert not os.path.exists(mdb)
    # A connection makes it (and records 127.0.0.1 there).
    sw(["-d", "1ms", "-c", mdb] + MTA).converse()
    rc, out, err = plain(["-c", mdb] + r + ["--cache-net", "24,64",
                                            "--cache-add", "bad",
                                            "198.51.100.9", "--ttl", "1h"])
    assert rc == 0, err
    until = out.split()[3][:-1]
    assert out.splitlines() == [
        "198.51.100.0/24 bad until %s: %s" % (until, mdb),
        "198.51.100.0/24 bad until %s: redis" % until], out

    rc, out, err = plain(r + ["--cache-list"])
    assert rc == 0, err
    keys = sorted(l.split()[:2] for l in out.splitlines())
    assert keys == [["192.0.2.7/32", "pass"], ["198.51.100.0/24", "bad"]]
    rc, out, err = plain(["-c", mdb] + r + ["--cache-list"])
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "# " + mdb and lines[3] == "# redis", lines
    assert sorted(l.split()[1] + " " + l.split()[0] for l in lines[1:3]) \
        == ["bad 198.51.100.0/24", "pass 127.0.0.1/32"], lines
    rc, out, err = plain(["-c", mdb] + r + ["--cache-count"])
    assert out.splitlines() == [
        "%s: 2 entries: 1 pass, 1 bad, 0 grey, 0 expired" % mdb,
        "redis: 2 entries: 1 pass, 1 bad, 0 grey, 0 expired"], out
    rc, out, err = plain(r + ["--cache-count"])
    assert out == "2 entries: 1 pass, 1 bad, 0 grey, 0 expired\n", out
    rc, out, err = plain(["-c", mdb] + r + ["--cache-delete",
                                            "198.51.100.0/24"])
    assert rc == 0 and out.splitlines() == [
        "%s: 198.51.100.0/24: deleted" % mdb,
        "redis: 198.51.100.0/24: deleted"], (out, err)
    rc, out, err = plain(r + ["--cache-delete", "198.51.100.0/24"])
    assert rc == 0 and out == "198.51.100.0/24: not in the cache\n"
    # The old form: the file after the command.
    rc, out, err = plain(["--cache-count", mdb])
    assert rc == 0 and out == "1 entries: 1 pass, 0 bad, 0 grey, 0 expired\n", err

    # A key under sendwrap's prefix that is not an entry is left alone.
    redis.command("SET", "sendwrap:1:junk", "x")
    rc, out, err = plain(r + ["--cache-list"])
    assert rc == 0 and "1 keys under sendwrap:1: are not entries" in err
    assert len(out.splitlines()) == 1


def test_command_errors(plain, redis, tmp_path):
    r = opts(redis, tmp_path)
    dead = ["--redis", "redis://127.0.0.1:%d" % free_port()]
    for args, status, words in (
            (r + ["--cache-purge"], 100, "is for the LMDB file"),
            (r + ["--cache-add", "bad", "192.0.2.1"], 100, "needs --ttl"),
            (r + ["--cache-add", "good", "192.0.2.1"], 100, "pass or bad"),
            (r + ["--cache-add", "pass", "example.org"], 100, "bad key"),
            (["--cache-add", "pass", "192.0.2.1"], 100, "needs a cache"),
            (["--cache-list"], 100, "needs a cache"),
            (dead + ["--cache-list"], 111, "Connection refused"),
            (dead + ["--cache-add", "pass", "192.0.2.1"], 111,
             "Connection refused"),
            (opts(redis, tmp_path, user="mta") + ["--cache-list"], 111,
             "NOPERM"),
    ):
        rc, out, err = plain(args)
        assert rc == status and words in err, (args, rc, out, err)


def test_check_pings_each_server(plain, redis, tmp_path):
    r = opts(redis, tmp_path)
    rc, out, err = plain(["-n"] + r + ["/bin/true"])
    assert rc == 0, (out, err)
    assert "redis: %s as user sendwrap\n" % redis.url(user="sendwrap") in out
    assert "redis-timeout: 0.100 s\n" in out
    assert re.search(r"^redis ping: PONG from %s in \d+\.\d+ s$" %
                     re.escape(redis.url(user="sendwrap")), out, re.M), out
    dead = "redis://127.0.0.1:%d" % free_port()
    rc, out, err = plain(["-n", "--redis", dead] + r + ["/bin/true"])
    assert rc == 100 and "configuration has errors" in out
    assert "%s: connect: Connection refused" % dead in err, err
    redis.pause()
    try:
        t0 = time.monotonic()
        rc, out, err = plain(["-n"] + r + ["--redis-timeout", "300ms",
                                           "/bin/true"])
        took = time.monotonic() - t0
    finally:
        redis.resume()
    assert rc == 100 and "timed out" in err, err
    assert took < 0.3 + 1.0 + SLACK, took


@pytest.mark.parametrize("url,words", [
    ("redis://:secret@127.0.0.1", "no password in the URL"),
    ("redis://u:secret@127.0.0.1", "no password in the URL"),
    ("redis://redis.example.org", "no names are looked up"),
    ("redis://127.0.0.1:0", "bad PORT"),
    ("redis://127.0.0.1:65536", "bad PORT"),
    ("redis://127.0.0.1/x", "bad DB"),
    ("redis://[::1", "HOST is"),
    ("unix:relative.sock", "absolute PATH"),
    ("unix:/run/r.sock?db=x", "db=N"),
    ("http://127.0.0.1", "not redis://"),
])
def test_bad_urls_are_usage_errors(plain, url, words):
    rc, out, err = plain(["-n", "--redis", url, "/bin/true"])
    assert rc == 100 and words in err, (rc, err)
    assert "secret" not in err


def test_option_errors(plain, tmp_path):
    pw = write_secret(str(tmp_path / "pw"), "x")
    for args, words in (
            (["--redis", "redis://u@127.0.0.1"], "its password goes in"),
            (["--redis-password-file", pw], "needs --redis"),
            (["--redis-timeout", "1s"], "needs --redis"),
            (["--redis", "redis://127.0.0.1", "--redis-timeout", "11s"],
             "out of range"),
            (["--ttl", "1h"], "needs --cache-add"),
            (["--redis", "redis://127.0.0.1"] * 5, "at most 4"),
            (["--tarpit", "--redis", "redis://127.0.0.1"], "not with"),
    ):
        rc, out, err = plain(["-n"] + args + ["/bin/true"])
        assert rc == 100 and words in err, (args, err)


@pytest.mark.parametrize("how,words", [
    ("symlink", "a symbolic link"),
    ("group", "group or others can read"),
    ("directory", "not a regular file"),
    ("empty", "no password on its first line"),
    ("missing", "No such file"),
])
def test_the_password_file_is_checked(plain, redis, tmp_path, how, words):
    real = redis.password_file(tmp_path / "real", "sendwrap")
    path = tmp_path / "pw"
    if how == "symlink":
        os.symlink(real, path)
    elif how == "group":
        redis.password_file(path, "sendwrap")
        os.chmod(path, 0o640)
    elif how == "directory":
        os.mkdir(path, 0o700)
    elif how == "empty":
        write_secret(str(path), "")
    rc, out, err = plain(["-n", "--redis", redis.url(user="sendwrap"),
                          "--redis-password-file", str(path), "/bin/true"])
    assert rc == 100 and "redis password: %s: %s" % (path, words) in err, \
        err


def greet_all(port, sources, timeout):
    """Connect from each source at once; the seconds each waited for
    its greeting (None: not greeted in time).  Each says QUIT when
    greeted, so its program ends and makes room for the next."""
    import selectors
    sel = selectors.DefaultSelector()
    got, t0 = {}, {}
    for i, src in enumerate(sources):
        s = socket.socket()
        s.bind((src, 0))
        s.setblocking(False)
        t0[i] = time.monotonic()
        s.connect_ex(("127.0.0.1", port))
        sel.register(s, selectors.EVENT_READ, (i, s))
        got[i] = b""
    waited = [None] * len(sources)
    deadline = time.monotonic() + timeout
    while sel.get_map() and time.monotonic() < deadline:
        for key, _ in sel.select(0.2):
            i, s = key.data
            try:
                chunk = s.recv(4096)
            except OSError:
                chunk = b""
            got[i] += chunk
            if b"\r\n" in got[i] or not chunk:
                if got[i].startswith(b"220 standin"):
                    waited[i] = time.monotonic() - t0[i]
                    s.send(b"QUIT\r\n")
                sel.unregister(s)
                s.close()
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    return waited


@pytest.mark.no_valgrind
def test_a_slow_redis_holds_up_no_client_of_the_listener(redis, tmp_path):
    """Redis answers every command 90 ms late while 500 clients arrive
    at once: the listener asks for all of them together and waits for
    none, so every client is greeted on time, and those Redis knows to
    have passed are greeted as soon as its answer comes, not after the
    delay."""
    from redisd import SlowProxy
    proxy = SlowProxy(redis.port, 0.09)
    now = int(time.time() * 1000)
    known = ["127.0.1.%d" % i for i in range(1, 21)]
    for ip in known:
        redis.command("SET", "sendwrap:1:%s/32" % ip, "pass %d %d" % (
            now, now + DAY_MS), "PX", DAY_MS)
    others = ["127.0.%d.%d" % (2 + i // 60, 1 + i % 60) for i in range(480)]
    pw = redis.password_file(tmp_path / "pw", "sendwrap")
    lst = Listener(tmp_path / "l", [
        "-d", "2", "--redis", proxy.url(redis.url(user="sendwrap")),
        "--redis-password-file", pw, "--redis-timeout", "400ms",
        "--max-children", "100"] + LIGHT_MTA)
    try:
        waited = greet_all(lst.addrs[0][1], known + others, 2.0 + 10 + SLACK)
    finally:
        lst.stop()
        proxy.stop()
    late = [(s, w) for s, w in zip(known + others, waited)
            if w is None or w > 2.0 + 2.5 + SLACK]
    assert late == [], late[:10]
    # Known ones: Redis's answer, about 90 ms, ends their wait.
    assert all(w < 1.5 for w in waited[:len(known)]), waited[:len(known)]
    assert all(w >= 1.9 for w in waited[len(known):]), \
        min(waited[len(known):])
    assert lst.errors() == [], lst.errors()[:3]
