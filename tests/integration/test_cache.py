"""The pass cache (-c): the built sendwrap on real loopback connections
(sw_harness), with the harness's stand-in MTA, or its light one where
only the verdict counts (many connections at once or in a row).

A client that waited out its delay is recorded and greeted at once next
time (verdict cached); with --bad-ttl an early talker is recorded and
turned away at once next time (known-early); the allowlist, GREETDELAY
and RELAYCLIENT come first; networks as keys (--cache-net, IPv6, mapped
addresses); every failure of the cache is logged once and the connection
goes on as without a cache; the maintenance commands; -n; hundreds of
processes on one cache at once; writers killed with -9 at random moments.

Under SENDWRAP_VALGRIND=1 the load tests are skipped: they run in the
plain suite.
"""
import fcntl
import os
import random
import re
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

import proclib
from sw_harness import (BYE, GREETING, IS_ROOT, LIGHT_MTA, MTA, NOBODY,
                        REPLY_REJECT, REPLY_TEMPFAIL, SECONDS, SENDWRAP,
                        SLACK, T, greet_all, load_test, needs_ipv6,
                        ucspi_env)

QUICK = 0.5 + SLACK                 # "at once", on a loaded machine
# Who meets "Permission denied": nobody when the tests run as root.
USER = NOBODY if IS_ROOT else None
REPLY_KNOWN_EARLY = (b"421 4.7.1 Service temporarily unavailable, try again "
                     b"later\r\n")


def count(plain, path):
    """--cache-count: (entries, pass, bad, expired)."""
    rc, out, err = plain(["--cache-count", path])
    assert rc == 0, err
    m = re.fullmatch(r"(\d+) entries: (\d+) pass, (\d+) bad, \d+ grey, (\d+) expired\n",
                     out)
    assert m, out
    return tuple(int(x) for x in m.groups())


def listing(plain, path):
    """--cache-list: {key: (kind, expires, recorded, state)}."""
    rc, out, err = plain(["--cache-list", path])
    assert rc == 0, err
    rows = {}
    for line in out.splitlines():
        key, kind, expires, recorded, state = line.split(" ")
        rows[key] = (kind, expires, recorded, state)
    return rows


def no_cache_fds(conn, cache):
    for fd, target in conn.mta_fds().items():
        assert not target.startswith(str(cache)), \
            "fd %d of the MTA is the cache's %s" % (fd, target)


# ------------------------------------------------- cached and known-early

def test_second_connection_is_cached(sw, tmp_path):
    cache = tmp_path / "pass.mdb"
    args = ["-d", "1", "-c", cache]
    first = sw(args + MTA)
    took = first.greeted()
    assert took >= 1.0
    assert first.finish(quit=True) == 0
    word, f = first.verdict()
    assert word == "pass" and f["ip"] == "127.0.0.1" and \
        f["port"] == first.client_port
    assert first.errors() == []
    # Made on first use, mode 0600, with LMDB's lock file beside it.
    for p in (cache, Path(str(cache) + "-lock")):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p

    second = sw(args + MTA)
    assert second.greeted() < QUICK
    assert second.finish(quit=True) == 0
    word, f = second.verdict()
    assert word == "cached", second.log
    assert list(f) == ["ip", "port", "age"]
    assert f["ip"] == "127.0.0.1" and f["port"] == second.client_port
    assert SECONDS.fullmatch(f["age"]) and float(f["age"]) < 30
    assert second.errors() == []
    # Neither the pass nor the cached path hands the cache to the MTA.
    no_cache_fds(first, cache)
    no_cache_fds(second, cache)


def test_banner_and_cached(sw, tmp_path):
    """A cached client gets no 220- banner: the MTA greets at once."""
    cache = tmp_path / "c.mdb"
    args = ["-d", "0.5", "-b", "wait.example", "-c", cache]
    first = sw(args + MTA)
    first.greeted()
    assert first.client.data.startswith(b"220-wait.example\r\n")
    first.finish(quit=True)
    second = sw(args + MTA)
    second.greeted()
    assert second.client.data == GREETING
    second.finish(quit=True)
    assert second.verdict()[0] == "cached"


# Timed to the second: valgrind is too slow for it (plain and sanitizer
# suites).
@pytest.mark.no_valgrind
def test_pass_ttl_expires_and_is_not_extended(sw, tmp_path):
    cache = tmp_path / "ttl.mdb"
    args = ["-d", "0.3", "--pass-ttl", "2s", "-c", cache]
    first = sw(args + MTA)
    first.greeted()
    first.finish(quit=True)
    recorded = time.monotonic()
    assert first.verdict()[0] == "pass"
    # Used twice within the TTL: cached both times, never extended.
    for _ in range(2):
        c = sw(args + MTA)
        c.greeted()
        c.finish(quit=True)
        assert c.verdict()[0] == "cached"
        time.sleep(0.5)
    time.sleep(max(0, recorded + 2.2 - time.monotonic()))
    again = sw(args + MTA)
    assert again.greeted() >= 0.3
    again.finish(quit=True)
    assert again.verdict()[0] == "pass", again.log
    assert again.errors() == []
    # The expired entry was replaced: cached once more.
    last = sw(args + MTA)
    last.greeted()
    last.finish(quit=True)
    assert last.verdict()[0] == "cached"


@pytest.mark.parametrize("action,reply", [("tempfail", REPLY_TEMPFAIL),
                                          ("reject", REPLY_REJECT)])
def test_bad_ttl_known_early(sw, plain, tmp_path, action, reply):
    cache = tmp_path / "bad.mdb"
    args = ["-d", "1", "-x", action, "--bad-ttl", "1h", "-c", cache]
    bot = sw(args + MTA, early=b"EHLO bot.example\r\n")
    bot.until(reply)
    assert bot.finish(quit=True) == 0
    assert bot.verdict()[0] == "early"
    # The same client, quiet this time: turned away at once, no wait,
    # and only for now (421) whatever -x says: the entry judges an
    # earlier client, perhaps another behind the same key.
    again = sw(args + MTA)
    assert again.until(REPLY_KNOWN_EARLY) < QUICK
    assert again.finish(quit=True) == 0
    assert again.client.data == REPLY_KNOWN_EARLY
    word, f = again.verdict()
    assert word == "known-early", again.log
    assert list(f) == ["ip", "port", "age", "action"]
    assert f["action"] == "tempfail" and f["port"] == again.client_port
    assert not again.ran()
    assert count(plain, cache) == (1, 0, 1, 0)
    # With --bad-ttl off, bad entries are not acted on: the client waits,
    # passes, and its pass replaces the bad entry.
    args_off = ["-d", "0.5", "-x", action, "-c", cache]
    quiet = sw(args_off + MTA)
    assert quiet.greeted() >= 0.5
    quiet.finish(quit=True)
    assert quiet.verdict()[0] == "pass"
    assert count(plain, cache) == (1, 1, 0, 0)


def test_bad_ttl_off_records_no_bot(sw, tmp_path):
    cache = tmp_path / "nobad.mdb"
    bot = sw(["-d", "1", "-c", cache] + MTA, early=b"EHLO x\r\n")
    bot.until(REPLY_REJECT)
    bot.finish(quit=True)
    assert bot.verdict()[0] == "early"
    assert bot.errors() == []
    # Nothing was written: no file either.
    assert not cache.exists()


def test_bad_ttl_observe_mode(sw, tmp_path):
    """-x pass: a known early talker is let through at once, logged."""
    cache = tmp_path / "observe.mdb"
    args = ["-d", "1", "-x", "pass", "--bad-ttl", "10m", "-c", cache]
    bot = sw(args + MTA, early=b"EHLO early.example\r\n")
    bot.greeted()
    bot.finish(quit=True)
    assert bot.verdict()[0] == "early"
    again = sw(args + MTA)
    assert again.greeted() < QUICK
    again.finish(quit=True)
    word, f = again.verdict()
    assert word == "known-early" and f["action"] == "pass"
    no_cache_fds(again, cache)


def test_bad_ttl_expires(sw, tmp_path):
    cache = tmp_path / "badttl.mdb"
    args = ["-d", "0.5", "--bad-ttl", "1s", "-c", cache]
    bot = sw(args + MTA, early=b"HELO x\r\n")
    bot.until(REPLY_REJECT)
    bot.finish(quit=True)
    time.sleep(1.2)
    quiet = sw(args + MTA)
    assert quiet.greeted() >= 0.5
    quiet.finish(quit=True)
    assert quiet.verdict()[0] == "pass"


# ------------------------------------------------------------ precedence

def prime(sw, cache, env=None, early=b"", extra=()):
    """Record the client (pass, or bad with early bytes) in the cache."""
    args = ["-d", "0.2", "--bad-ttl", "1h", "-c", cache] + list(extra)
    c = sw(args + MTA, env=env, early=early)
    if early:
        c.until(REPLY_REJECT)
    else:
        c.greeted()
    c.finish(quit=True)
    assert c.verdict()[0] == ("early" if early else "pass"), c.log


@pytest.mark.parametrize("early", [b"", b"EHLO x\r\n"])
@pytest.mark.parametrize("how,env,extra,want", [
    ("allowlist", {}, ["-A", "127.0.0.0/8"], {"reason": "allowlist",
                                               "rule": "127.0.0.0/8"}),
    ("GREETDELAY", {"GREETDELAY": "0"}, [], {"reason": "GREETDELAY"}),
    ("RELAYCLIENT", {"RELAYCLIENT": ""}, [], {"reason": "RELAYCLIENT"}),
    ("-d 0", {}, ["-d", "0"], {"reason": "delay"}),
])
def test_no_delay_comes_before_the_cache(sw, tmp_path, early, how, env, extra,
                                         want):
    """A client with no delay is let through (allow) whatever the cache
    holds for it: pass, or a known early talker."""
    cache = tmp_path / "prec.mdb"
    prime(sw, cache, early=early)
    c = sw(["-d", "1", "--bad-ttl", "1h", "-c", cache] + extra + MTA,
           env=env)
    assert c.greeted() < QUICK
    c.finish(quit=True)
    word, f = c.verdict()
    assert word == "allow", c.log
    for k, v in want.items():
        assert f[k] == v
    assert c.errors() == []


def test_no_delay_never_touches_the_cache(sw, tmp_path):
    """Allowed clients do not even open it: a broken cache logs nothing."""
    cache = tmp_path / "garbage.mdb"
    cache.write_bytes(os.urandom(20000))
    for env, extra in (({"RELAYCLIENT": ""}, []), ({"GREETDELAY": "0"}, []),
                       ({}, ["-A", "127.0.0.1"])):
        c = sw(["-d", "1", "-c", cache] + extra + MTA, env=env)
        c.greeted()
        c.finish(quit=True)
        assert c.verdict()[0] == "allow"
        assert c.errors() == []


def test_greetdelay_above_zero_uses_the_cache(sw, tmp_path):
    cache = tmp_path / "gd.mdb"
    env = {"GREETDELAY": "0.5"}
    first = sw(["-d", "10", "-c", cache] + MTA, env=env)
    assert first.greeted() >= 0.5
    first.finish(quit=True)
    word, f = first.verdict()
    assert word == "pass" and f["reason"] == "GREETDELAY"
    second = sw(["-d", "10", "-c", cache] + MTA, env=env)
    assert second.greeted() < QUICK
    second.finish(quit=True)
    assert second.verdict()[0] == "cached"


def test_allowlist_delay_uses_the_cache(sw, tmp_path):
    """An allowlist entry with a delay is still a delayed client."""
    cache = tmp_path / "al.mdb"
    wl = tmp_path / "allow.txt"
    wl.write_text("127.0.0.0/8 0.5\n")
    args = ["-d", "10", "-a", wl, "-c", cache]
    first = sw(args + MTA)
    assert first.greeted() >= 0.5
    first.finish(quit=True)
    assert first.verdict()[0] == "pass"
    second = sw(args + MTA)
    assert second.greeted() < QUICK
    second.finish(quit=True)
    assert second.verdict()[0] == "cached"


# ---------------------------------------------------------- network keys

def verdict_for(sw, args, ip):
    """The verdict for a client from ip (through the UCSPI variables)."""
    c = sw(args + LIGHT_MTA, env=ucspi_env(ip))
    c.greeted()
    c.finish(quit=True)
    word, f = c.verdict()
    assert c.errors() == []
    return word


@pytest.mark.parametrize("net,first,same,other", [
    (None, "192.0.2.7", ["192.0.2.7", "::ffff:192.0.2.7"], ["192.0.2.8"]),
    ("24,64", "192.0.2.7", ["192.0.2.200", "::ffff:192.0.2.1"],
     ["192.0.3.7", "192.0.1.7"]),
    ("16,64", "198.51.100.7", ["198.51.3.4"], ["198.52.100.7"]),
    (None, "2001:db8:1:2::5", ["2001:db8:1:2:ffff::1", "2001:db8:1:2::5"],
     ["2001:db8:1:3::5"]),
    ("32,48", "2001:db8:1:2::5", ["2001:db8:1:ffff::1"], ["2001:db8:2::5"]),
    ("32,128", "2001:db8::5", ["2001:db8::5"], ["2001:db8::6"]),
    ("32,64", "::ffff:203.0.113.9", ["203.0.113.9"], ["203.0.113.10"]),
])
def test_network_keys(sw, tmp_path, net, first, same, other):
    cache = tmp_path / "net.mdb"
    args = ["-d", "0.2", "-c", cache] + (["--cache-net", net] if net else [])
    assert verdict_for(sw, args, first) == "pass"
    for ip in same:
        assert verdict_for(sw, args, ip) == "cached", ip
    for ip in other:
        assert verdict_for(sw, args, ip) == "pass", ip


def test_key_listed_as_network(sw, plain, tmp_path):
    cache = tmp_path / "keys.mdb"
    verdict_for(sw, ["-d", "0.1", "--cache-net", "24,48", "-c", cache],
                "192.0.2.77")
    verdict_for(sw, ["-d", "0.1", "--cache-net", "24,48", "-c", cache],
                "2001:db8:aa:bb::1")
    assert set(listing(plain, cache)) == {"192.0.2.0/24", "2001:db8:aa::/48"}


@needs_ipv6
def test_ipv6_loopback_connection(sw, plain, tmp_path):
    cache = tmp_path / "v6.mdb"
    args = ["-d", "0.5", "-c", cache]
    first = sw(args + MTA, peer="ipv6")
    first.greeted()
    first.finish(quit=True)
    assert first.verdict()[1]["ip"] == "::1"
    second = sw(args + MTA, peer="ipv6")
    assert second.greeted() < QUICK
    second.finish(quit=True)
    assert second.verdict()[0] == "cached"
    assert set(listing(plain, cache)) == {"::/64"}


def test_unknown_peer_is_not_cached(sw, tmp_path):
    """No address (a socketpair, no PROTO): nothing to key, no cache."""
    cache = tmp_path / "unknown.mdb"
    c = sw(["-d", "0.3", "-c", cache] + MTA, peer="socketpair")
    c.greeted()
    assert c.client.data == GREETING
    assert c.finish(quit=True) == 0
    assert c.client.data == GREETING + BYE
    text = c.log
    assert text.startswith("sendwrap: pass ip=unknown") and "error" not in text
    assert not cache.exists()


# --------------------------------------------- failures never cost mail

def expect_as_without_cache(conn, delay, cache_mention):
    """Delay, then the MTA, with exactly one error line about the cache."""
    took = conn.greeted()
    assert took >= delay, conn.log
    assert conn.finish(quit=True) == 0
    errors = conn.errors()
    assert len(errors) == 1, conn.log
    m = re.fullmatch(r"sendwrap: error ip=127\.0\.0\.1 port=%s cache "
                     r"(.+)" % conn.client_port, errors[0])
    assert m and cache_mention in m.group(1), errors
    assert conn.verdict()[0] == "pass"
    return errors[0]


def test_missing_directory(sw, tmp_path):
    cache = tmp_path / "nodir" / "c.mdb"
    c = sw(["-d", "0.5", "-c", cache] + MTA)
    err = expect_as_without_cache(c, 0.5, str(cache))
    assert "No such file or directory" in err
    no_cache_fds(c, cache)


def test_unwritable_directory(sw, shared):
    ro = shared / "ro"
    ro.mkdir()
    cache = ro / "c.mdb"
    if not IS_ROOT:
        ro.chmod(0o555)
    c = sw(["-d", "0.5", "-c", cache] + MTA, user=USER, workdir=shared)
    err = expect_as_without_cache(c, 0.5, str(cache))
    assert "Permission denied" in err
    assert not cache.exists()


def test_permission_denied(sw, shared):
    """A cache owned by someone else, 0600, that holds this client."""
    cache = shared / "theirs.mdb"
    prime(sw, cache)
    if not IS_ROOT:
        cache.chmod(0)
        Path(str(cache) + "-lock").chmod(0)
    c = sw(["-d", "0.5", "-c", cache] + LIGHT_MTA, user=USER, workdir=shared)
    err = expect_as_without_cache(c, 0.5, str(cache))
    assert "Permission denied" in err
    # The early path, with --bad-ttl: still one error, still the action.
    bot = sw(["-d", "1", "--bad-ttl", "1h", "-c", cache] + LIGHT_MTA,
             user=USER, workdir=shared, early=b"EHLO x\r\n")
    bot.until(REPLY_REJECT)
    bot.finish(quit=True)
    assert bot.verdict()[0] == "early"
    assert len(bot.errors()) == 1, bot.log


@pytest.mark.parametrize("content", ["random", "text", "zeros-header"])
def test_corrupt_file(sw, tmp_path, content):
    cache = tmp_path / "corrupt.mdb"
    if content == "random":
        cache.write_bytes(os.urandom(64 * 1024))
    elif content == "text":
        cache.write_bytes(b"192.0.2.0/24 5\n" * 100)
    else:
        cache.write_bytes(b"\0" * 16384)
    before = cache.read_bytes()
    c = sw(["-d", "0.5", "-c", cache] + MTA)
    expect_as_without_cache(c, 0.5, str(cache))
    no_cache_fds(c, cache)
    # sendwrap never "repairs" a file it cannot read.
    assert cache.read_bytes() == before


def test_corrupt_pages(sw, tmp_path):
    """Valid meta pages over garbage: an error or an answer, no crash."""
    good = tmp_path / "good.mdb"
    for i in range(30):
        verdict_for(sw, ["-d", "0.01", "-c", good], "10.9.0.%d" % i)
    data = bytearray(good.read_bytes())
    page = os.sysconf("SC_PAGESIZE")
    rnd = random.Random(7)
    for trial in range(6):
        spoilt = bytearray(data)
        for i in range(2 * page, len(spoilt)):
            spoilt[i] = rnd.randrange(256) if trial % 2 else 0
        cache = tmp_path / ("spoilt%d.mdb" % trial)
        cache.write_bytes(bytes(spoilt))
        c = sw(["-d", "0.3", "-c", cache] + MTA,
               env=ucspi_env("10.9.0.%d" % trial))
        assert c.greeted() >= 0.3 or "cached" in c.log
        assert c.finish(quit=True) == 0
        assert len(c.errors()) <= 1
        assert c.verdict()[0] in ("pass", "cached")


def test_path_is_a_directory(sw, tmp_path):
    cache = tmp_path / "adir"
    cache.mkdir()
    c = sw(["-d", "0.5", "-c", cache] + MTA)
    expect_as_without_cache(c, 0.5, str(cache))


def test_write_lock_held(sw, tmp_path):
    """A writer that never lets go costs the others a second, no mail."""
    cache = tmp_path / "locked.mdb"
    prime(sw, cache, env=ucspi_env("192.0.2.1"))
    with open(cache, "rb") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        c = sw(["-d", "0.3", "-c", cache] + MTA)
        err = expect_as_without_cache(c, 0.3, "write lock")
        # Readers are not held up by it.
        r = sw(["-d", "1", "-c", cache] + MTA, env=ucspi_env("192.0.2.1"))
        assert r.greeted() < QUICK
        r.finish(quit=True)
        assert r.verdict()[0] == "cached"
    assert "holds the write lock" in err


def load_entries(cache, n, expires_ms, map_size):
    """Write n live /128 pass entries straight into a new cache file, in
    sendwrap's layout (see cache.c), with mdb_load.  True if they fit."""
    now = int(time.time() * 1000)
    lines = ["VERSION=3", "format=bytevalue", "type=btree",
             "mapsize=%d" % map_size, "HEADER=END"]
    value = (bytes([1, 1]) + bytes(6) + now.to_bytes(8, "little") +
             expires_ms.to_bytes(8, "little")).hex()
    for i in range(n):
        key = bytes([6, 128]) + bytes.fromhex("20010db8") + i.to_bytes(12, "big")
        lines += [" " + (b"n" + key).hex(), " " + value,
                  " " + (b"x" + expires_ms.to_bytes(8, "big") + key).hex(),
                  " "]
    lines.append("DATA=END")
    for p in (cache, Path(str(cache) + "-lock")):
        if p.exists():
            p.unlink()
    r = subprocess.run(["mdb_load", "-n", "-f", "/dev/stdin", str(cache)],
                       input="\n".join(lines) + "\n", text=True,
                       capture_output=True, timeout=T)
    return r.returncode == 0


@load_test
@pytest.mark.skipif(shutil.which("mdb_load") is None,
                    reason="mdb_load (lmdb-utils) is needed to fill a map")
def test_map_full(sw, tmp_path):
    """A map full of live entries: passes go on with one error logged;
    once the entries expire, a write purges them and succeeds."""
    cache = tmp_path / "full.mdb"
    size = 1 << 20
    # How many entries fit (an entry's size does not depend on its
    # expiry), found with entries that outlive the test ...
    later = int(time.time() * 1000) + 3600 * 1000
    lo, hi = 1000, 40000        # fits, does not
    assert load_entries(cache, lo, later, size)
    assert not load_entries(cache, hi, later, size)
    while hi - lo > 5:
        mid = (lo + hi) // 2
        if load_entries(cache, mid, later, size):
            lo = mid
        else:
            hi = mid
    # ... then the map filled for the test, with entries that live long
    # enough to fill the rest of it, even with a slow (sanitizer) build
    # on a busy machine, and no longer: the test waits for them.
    expires = int(time.time() * 1000) + 6000
    assert load_entries(cache, lo, expires, size)
    args = ["-d", "0.05", "--cache-size", "1M", "-c", cache]
    for i in range(250):
        c = sw(args + LIGHT_MTA, env=ucspi_env("192.0.2.%d" % (i + 1)))
        c.greeted()
        c.finish(quit=True)
        assert c.verdict()[0] == "pass"
        if c.errors():
            break
    assert len(c.errors()) == 1, c.log
    assert "full" in c.errors()[0] and "--cache-size" in c.errors()[0]
    assert time.time() * 1000 < expires, "too slow: the entries expired"
    time.sleep(max(0, expires / 1000 - time.time()) + 0.2)
    assert verdict_for(sw, args, "198.51.100.1") == "pass"
    assert verdict_for(sw, args, "198.51.100.1") == "cached"
    assert os.path.getsize(cache) <= size + size // 16


# ---------------------------------------------------------- maintenance

def fill(sw, cache, ips, extra=()):
    for ip in ips:
        verdict_for(sw, ["-d", "0.01", "-c", cache] + list(extra), ip)


def test_maintenance(sw, plain, tmp_path):
    cache = tmp_path / "m.mdb"
    fill(sw, cache, ["192.0.2.1", "192.0.2.2", "2001:db8:5::9"])
    bot = sw(["-d", "1", "--bad-ttl", "1h", "-c", cache] + MTA,
             env=ucspi_env("203.0.113.66"), early=b"EHLO x\r\n")
    bot.until(REPLY_REJECT)
    bot.finish(quit=True)
    # Last, so that no later write purges it: an entry that expires.
    fill(sw, cache, ["198.51.100.1"], ["--pass-ttl", "1ms"])
    time.sleep(0.01)

    rows = listing(plain, cache)
    assert set(rows) == {"192.0.2.1/32", "192.0.2.2/32", "2001:db8:5::/64",
                         "198.51.100.1/32", "203.0.113.66/32"}
    iso = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
    for key, (kind, expires, recorded, state) in rows.items():
        assert iso.fullmatch(expires) and iso.fullmatch(recorded)
        assert expires >= recorded
        assert kind == ("bad" if key.startswith("203.") else "pass")
        assert state == ("expired" if key.startswith("198.") else "live")
    rc, out, _ = plain(["--cache-list", cache])
    assert out.splitlines()[0].startswith("192.0.2.1/32 pass ")
    assert count(plain, cache) == (5, 4, 1, 1)

    # Delete by address (keyed as --cache-net says) or by listed key.
    rc, out, err = plain(["--cache-delete", cache, "192.0.2.1"])
    assert (rc, out) == (0, "192.0.2.1/32: deleted\n"), err
    rc, out, err = plain(["--cache-delete", cache, "2001:db8:5::/64"])
    assert (rc, out) == (0, "2001:db8:5::/64: deleted\n"), err
    rc, out, err = plain(["--cache-delete", cache, "2001:db8:5::77"])
    assert (rc, out) == (0, "2001:db8:5::/64: not in the cache\n"), err
    rc, out, err = plain(["--cache-net", "24,64", "--cache-delete", cache,
                          "192.0.2.2"])
    assert (rc, out) == (0, "192.0.2.0/24: not in the cache\n"), err
    assert count(plain, cache) == (3, 2, 1, 1)
    rc, out, err = plain(["--cache-purge", cache])
    assert (rc, out) == (0, "1 expired entries purged\n"), err
    assert count(plain, cache) == (2, 1, 1, 0)
    rc, out, err = plain(["--cache-purge", cache])
    assert (rc, out) == (0, "0 expired entries purged\n"), err
    # A deleted client waits again.
    assert verdict_for(sw, ["-d", "0.2", "-c", cache],
                       "192.0.2.1") == "pass"
    assert count(plain, cache) == (3, 2, 1, 0)


def test_maintenance_empty_cache(sw, plain, tmp_path):
    cache = tmp_path / "e.mdb"
    fill(sw, cache, ["192.0.2.1"], ["--pass-ttl", "1ms"])
    time.sleep(0.01)
    assert plain(["--cache-purge", cache])[:2] == \
        (0, "1 expired entries purged\n")
    assert plain(["--cache-list", cache])[:2] == (0, "")
    assert count(plain, cache) == (0, 0, 0, 0)


@pytest.mark.parametrize("args", [
    ["--cache-list"],
    ["--cache-delete", "CACHE"],
    ["--cache-delete", "CACHE", "not-an-address"],
    ["--cache-delete", "CACHE", "192.0.2.1/24"],
    ["--cache-list", "CACHE", "--cache-count", "CACHE"],
    ["--cache-net", "24", "--cache-list", "CACHE"],
    ["--cache-size", "12", "--cache-list", "CACHE"],
    ["--pass-ttl", "1d", "--cache-list", "CACHE"],
    ["--pass-ttl", "1d", "/bin/true"],
    ["--bad-ttl", "1h", "/bin/true"],
    ["--cache-net", "24,64", "/bin/true"],
    ["-c", "CACHE", "--pass-ttl", "0", "/bin/true"],
    ["-c", "CACHE", "--pass-ttl", "soon", "/bin/true"],
    ["-c", "CACHE", "--bad-ttl", "-1", "/bin/true"],
    ["-c", "CACHE", "--cache-net", "33,64", "/bin/true"],
    ["-c", "CACHE", "--cache-net", "24,129", "/bin/true"],
    ["-c", "CACHE", "--cache-size", "1K", "/bin/true"],
    ["-c", "CACHE", "--tarpit"],
    ["-c"],
])
def test_usage_errors(plain, tmp_path, args):
    cache = tmp_path / "u.mdb"
    args = [str(cache) if a == "CACHE" else a for a in args]
    rc, out, err = plain(args)
    assert rc == 100, (out, err)
    assert out == ""
    assert not cache.exists()


def test_maintenance_failures(plain, tmp_path):
    d = tmp_path / "caches"         # plain's own files are in tmp_path
    d.mkdir()
    missing = d / "missing.mdb"
    for cmd in (["--cache-list", missing], ["--cache-count", missing],
                ["--cache-purge", missing],
                ["--cache-delete", missing, "192.0.2.1"]):
        rc, out, err = plain(cmd)
        assert rc == 111 and out == "" and str(missing) in err, (cmd, err)
    # Maintenance never makes a cache.
    assert list(d.iterdir()) == []
    garbage = d / "garbage.mdb"
    garbage.write_bytes(os.urandom(30000))
    for cmd in (["--cache-list", garbage], ["--cache-purge", garbage]):
        rc, out, err = plain(cmd)
        assert rc == 111 and "not an LMDB file" in err, (cmd, err)


# --------------------------------------------------------------- -n

def test_check_shows_the_cache(sw, plain, tmp_path):
    d = tmp_path / "caches"         # plain's own files are in tmp_path
    d.mkdir()
    cache = d / "n.mdb"
    rc, out, err = plain(["-n", "-c", cache, "--bad-ttl", "2h",
                          "--cache-net", "24,56", "--cache-size", "64M",
                          *MTA])
    assert rc == 0, err
    assert "cache: %s (keys /24 and /56, map 64 MiB)\n" % cache in out
    assert "pass-ttl: 86400.000 s\n" in out
    assert "bad-ttl: 7200.000 s\n" in out
    assert "cache entries: none yet" in out
    assert out.endswith("configuration ok\n")
    # -n makes nothing: no file, no lock file.
    assert list(d.iterdir()) == []
    fill(sw, cache, ["192.0.2.1", "192.0.2.2"])
    rc, out, err = plain(["-n", "-c", cache, *MTA])
    assert rc == 0, err
    assert "bad-ttl: 0.000 s (off)\n" in out
    assert "cache entries: 2 (2 pass, 0 bad, 0 grey, 0 expired)\n" in out


def test_check_finds_cache_problems(plain, tmp_path, shared):
    rc, out, err = plain(["-n", "-c", tmp_path / "nodir" / "c.mdb", *MTA])
    assert rc == 100 and "cannot make the cache there" in err, err
    assert out.endswith("configuration has errors\n")
    garbage = tmp_path / "g.mdb"
    garbage.write_bytes(os.urandom(30000))
    Path(str(garbage) + "-lock").write_bytes(b"")
    rc, out, err = plain(["-n", "-c", garbage, *MTA])
    assert rc == 100 and "not an LMDB file" in err, err
    ro = shared / "ro"
    ro.mkdir()
    if not IS_ROOT:
        ro.chmod(0o555)
    rc, out, err = plain(["-n", "-c", ro / "c.mdb", *MTA], user=USER,
                         workdir=shared / "plain")
    assert rc == 100 and "Permission denied" in err, err


# ------------------------------------------------------ load and kill -9

@load_test
def test_many_processes_at_once(sw, plain, tmp_path):
    """250 sendwraps on one cache at once: all pass and are recorded
    (250 concurrent write transactions); then all 250 are cached."""
    n = 250
    cache = tmp_path / "load.mdb"
    ips = ["10.%d.%d.%d" % (77, i // 250, i % 250 + 1) for i in range(n)]
    for wave, want in (("pass", "pass"), ("cached", "cached")):
        args = ["-d", "3", "-c", cache]
        start = time.monotonic()
        conns = [sw(args + LIGHT_MTA, env=ucspi_env(ip), known_state=False)
                 for ip in ips]
        spawned = time.monotonic() - start
        alive = sum(c.proc.poll() is None for c in conns)
        greet_all(conns, time.monotonic() + 60)
        if wave == "pass":
            # All were waiting at once, and wrote within moments.
            assert alive == n, (spawned, alive)
        for c in conns:
            assert c.rc == 0, c.log
            assert c.errors() == [], c.log
            assert c.verdict()[0] == want, c.log
            assert c.client.data.endswith(GREETING) or b"221" in c.client.data
    assert count(plain, cache) == (n, n, 0, 0)


@load_test
def test_writers_killed_mid_transaction(sw, plain, tmp_path):
    """Hundreds of writers killed with -9 at random moments (before, in
    and after their write transaction); the cache opens, answers, takes
    writes, and each entry still has its index record."""
    cache = tmp_path / "killed.mdb"
    exe = os.path.realpath(SENDWRAP)
    rnd = random.Random(2024)
    killed = 0
    verdict_for(sw, ["-d", "0.01", "-c", cache], "192.0.2.1")
    # How long sendwrap takes to get going here (a sanitizer build: long).
    startup = []
    for _ in range(5):
        c = sw(["-d", "0"] + LIGHT_MTA, known_state=False)
        deadline = c.t0 + T
        while not c.stderr_path.stat().st_size:
            assert time.monotonic() < deadline, "sendwrap -d 0 logged nothing"
            time.sleep(0.0002)
        startup.append(time.monotonic() - c.t0)
        c.cleanup()
    start = sorted(startup)[2] * 1000
    # Until 50 were killed as sendwrap (a loaded machine kills more of
    # them before their exec, so it takes more rounds), at most 144.
    for round_no in range(144):
        if round_no >= 48 and killed > 50:
            break
        # Each is killed about when its delay ends: the moment it writes.
        targets = []
        for i in range(10):
            ip = "10.88.%d.%d" % (round_no, i + 1)
            ttl = rnd.choice(["1ms", "5ms", "50ms", "1d"])
            delay = rnd.randrange(40, 100)
            c = sw(["-d", "%dms" % delay, "--pass-ttl", ttl, "-c", cache]
                   + LIGHT_MTA, env=ucspi_env(ip), known_state=False)
            when = c.t0 + (start + delay + rnd.uniform(-0.5, 3.0)) / 1000
            targets.append((when, i, c))
        for when, _, c in sorted(targets):
            time.sleep(max(0, when - time.monotonic()))
            if proclib.exe(c.proc.pid) == exe:
                killed += 1         # still sendwrap, not yet the MTA
            c.cleanup()
    assert killed > 50
    # It opens and answers, and the entry written before the kills is
    # still there (how many of the killed writers got their write in
    # depends on the machine's load, so that is not asserted).
    total = count(plain, cache)[0]
    assert total >= 1
    rc, out, err = plain(["--cache-list", cache])
    assert rc == 0 and "192.0.2.1/32" in out, (out, err)
    assert verdict_for(sw, ["-d", "0.2", "-c", cache],
                       "192.0.2.123") == "pass"
    assert verdict_for(sw, ["-d", "0.2", "-c", cache],
                       "192.0.2.123") == "cached"
    rc, out, err = plain(["--cache-purge", cache])
    assert rc == 0, err
    after = count(plain, cache)
    assert after[3] == 0
    # Every entry with its index record: LMDB counts both, and the
    # record of the count of bad entries.
    if shutil.which("mdb_stat"):
        st = subprocess.run(["mdb_stat", "-n", str(cache)],
                            capture_output=True, text=True, timeout=T)
        assert st.returncode == 0, st.stderr
        entries = int(re.search(r"Entries: (\d+)", st.stdout).group(1))
        assert entries == 2 * after[0] + 1, (entries, after)
