"""Several MX hosts sharing one pass cache on Redis, with real parts:
Debian's redis-server (a loopback port and a unix socket, a password for
the default user and ACL users for sendwrap and for the MTA), two "MX
hosts" as two tcpservers on 127.0.0.2 and 127.0.0.3, each with its own
LMDB file and its own exim -bs, and real clients (swaks, a blind bot).

- A sender that waited at mx1 is greeted at once at mx2; both messages
  arrive intact.
- A bot caught at mx1 is refused at connect at mx2 with a 4xx, and mx2's
  exim never runs.
- Redis killed, stopped (SIGSTOP), with a wrong password, or at a port
  where nothing listens: every client is still served after its delay,
  the time added stays within --redis-timeout, and one log line says why.
- 200 concurrent connections against one Redis, half of them cached:
  every one served, every verdict logged, every pass written.
- examples/fail2ban: the filter matches sendwrap's own syslog lines
  (fail2ban-regex), and fail2ban-server with the jail and the action
  marks a bot in Redis, which a sendwrap then refuses at connect.
- examples/exim: the dictionary-attack ACL counts failed RCPTs across
  RSET, marks the address and drops the connection at the fifth, and the
  next connection is refused at connect with 421 without exim running.
"""

import os
import re
import shutil
import subprocess
import sys
import threading
import time

from e2elib import (EXAMPLES, SENDWRAP, EximReceiver, Greeting,
                    LineReader, PrivateNS, TcpServer, assert_prompt, bot,
                    bot_payload, check_message, connect, exim_ids,
                    make_message, make_workdir, start_group, stop_group,
                    swaks, wait_until, write_swaks_data)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
from redisd import (MTA_RULES, SENDWRAP_RULES, RedisServer,  # noqa: E402
                    free_port)

AT_ONCE = 1.5
BUDGET = 0.3                # --redis-timeout in the failure test
FAIL2BAN_REGEX = "/usr/bin/fail2ban-regex"
FAIL2BAN_SERVER = "/usr/bin/fail2ban-server"
FAIL2BAN_CLIENT = "/usr/bin/fail2ban-client"


def start_redis(wd):
    return RedisServer(make_workdir(wd, "redis"),
                       users={"sendwrap": SENDWRAP_RULES, "mta": MTA_RULES},
                       start=start_group, stop=stop_group)


def redis_opts(redis, wd, user="sendwrap", unix=False, owner=None):
    pw = redis.password_file(os.path.join(wd, "pw-%s" % user), user,
                             owner=owner)
    return ["--redis", redis.url(user=user, unix=unix),
            "--redis-password-file", pw]


def mx_host(wd, host, opts, mta, name):
    cache = os.path.join(wd, "%s.mdb" % name)
    srv = TcpServer(wd, [SENDWRAP] + opts + ["-c", cache, "--"] + mta,
                    host=host)
    return srv, cache


def swaks_deliver(wd, srv, n, tag):
    raw, headers, body = make_message(tag, n)
    data = write_swaks_data(os.path.join(wd, "%s-%d.eml" % (tag, n)), raw)
    rc, out, greet, _ = swaks(srv.host, srv.port, headers["To"],
                              data_file=data)
    assert rc == 0, out
    return greet, headers, body


def lmdb_keys(path):
    r = subprocess.run([SENDWRAP, "--cache-list", path], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return {l.split()[0]: l.split()[1] for l in r.stdout.splitlines()}


# ------------------------------------------------------------ two hosts

def test_a_sender_waits_at_mx1_and_is_greeted_at_once_at_mx2(wd):
    redis = start_redis(wd)
    mx1, mx2 = EximReceiver(wd, "mx1"), EximReceiver(wd, "mx2")
    opts = ["-d", "3"] + redis_opts(redis, wd, unix=True)
    srv1, cache1 = mx_host(wd, "127.0.0.2", opts, mx1.argv(), "mx1")
    srv2, cache2 = mx_host(wd, "127.0.0.3", opts, mx2.argv(), "mx2")

    greet1, h1, b1 = swaks_deliver(wd, srv1, 1, "fleet")
    assert greet1 is not None and greet1 >= 0.9 * 3.0, greet1
    assert srv1.wait_lines(r"^pass ip=127\.0\.0\.1 ")
    greet2, h2, b2 = swaks_deliver(wd, srv2, 2, "fleet")
    assert_prompt(greet2, AT_ONCE)
    cached = srv2.wait_lines(r"^cached ")
    assert re.fullmatch(r"cached ip=127\.0\.0\.1 port=\d+ age=\d+\.\d+",
                        cached[0]), cached

    (m1,), (m2,) = mx1.messages(), mx2.messages()
    check_message(m1, h1, b1)
    check_message(m2, h2, b2)
    assert mx1.connections() == 1 and mx2.connections() == 1
    # mx2 never saw the client wait: its file holds Redis's copy.
    assert lmdb_keys(cache2) == {"127.0.0.1/32": "pass"}
    assert lmdb_keys(cache1) == {"127.0.0.1/32": "pass"}
    assert redis.entries()["127.0.0.1/32"][0] == "pass"
    for srv in (srv1, srv2):
        assert not [l for l in srv.sendwrap_lines() if l.startswith(
            "error ")], srv.log()


def test_a_bot_caught_at_mx1_is_refused_at_connect_at_mx2(wd):
    redis = start_redis(wd)
    mx1, mx2 = EximReceiver(wd, "mx1"), EximReceiver(wd, "mx2")
    opts = ["-d", "3", "-x", "tempfail", "--bad-ttl", "1h"] + \
        redis_opts(redis, wd)
    srv1, _ = mx_host(wd, "127.0.0.2", opts, mx1.argv(), "mx1")
    srv2, cache2 = mx_host(wd, "127.0.0.3", opts, mx2.argv(), "mx2")

    got, _, _ = bot("127.0.0.2", srv1.port, bot_payload("fleet"),
                    source="127.0.0.9")
    assert got.startswith(b"421 "), got
    assert srv1.wait_lines(r"^early ip=127\.0\.0\.9 .* action=tempfail$")
    assert redis.entries()["127.0.0.9/32"][0] == "bad"

    # At mx2 it is refused before it says anything, with a 4xx.
    g = Greeting("127.0.0.3", srv2.port, source="127.0.0.9")
    g.reader.read_to_eof(time.monotonic() + 10)
    assert g.reader.raw.startswith(b"421 "), g.reader.raw
    assert g.t_final is not None and g.t_final < AT_ONCE, g.lines
    known = srv2.wait_lines(r"^known-early ")
    assert re.fullmatch(r"known-early ip=127\.0\.0\.9 port=\d+ "
                        r"age=\d+\.\d+ action=tempfail", known[0]), known
    assert mx1.connections() == 0 and mx2.connections() == 0
    assert lmdb_keys(cache2) == {"127.0.0.9/32": "bad"}


# ------------------------------------------------------------ failures

def test_a_broken_redis_delays_mail_never_refuses_it(wd):
    redis = start_redis(wd)
    mx = EximReceiver(wd, "mx")
    pw = redis.password_file(os.path.join(wd, "pw"), "sendwrap")
    wrong = os.path.join(wd, "pw-wrong")
    with open(wrong, "w") as f:
        f.write("not-the-password\n")
    os.chmod(wrong, 0o600)
    nothing = "redis://sendwrap@127.0.0.1:%d" % free_port()
    cases = [
        # name, URL, password file, before, after, reason logged
        ("unreachable port", nothing, pw, None, None,
         "connect: Connection refused"),
        ("wrong password", redis.url(user="sendwrap"), wrong, None, None,
         "AUTH refused: WRONGPASS"),
        ("stopped", redis.url(user="sendwrap"), pw, redis.pause,
         redis.resume, "timed out"),
        ("killed", redis.url(user="sendwrap", unix=True), pw, redis.stop,
         None, "connect: "),
    ]
    for n, (name, url, pwfile, before, after, reason) in enumerate(cases):
        srv = TcpServer(wd, [SENDWRAP, "-d", "2", "--redis-timeout",
                             "%dms" % (BUDGET * 1000), "--redis", url,
                             "--redis-password-file", pwfile, "--"] +
                        mx.argv())
        if before:
            before()
        try:
            greet, h, b = swaks_deliver(wd, srv, n, "broken")
        finally:
            if after:
                after()
        assert greet is not None and \
            2.0 * 0.95 <= greet <= 2.0 + BUDGET + 1.5, (name, greet)
        assert srv.wait_lines(r"^pass ip=127\.0\.0\.1 "), (name, srv.log())
        errors = [l for l in srv.sendwrap_lines() if l.startswith("error ")]
        assert len(errors) == 1 and "cache redis" in errors[0] and \
            reason in errors[0], (name, errors)
        srv.stop()
    msgs = {m.header("X-E2E-Tag"): m for m in mx.messages()}
    assert sorted(msgs) == ["broken-%d" % n for n in range(len(cases))]


# ------------------------------------------------------------ load

MTA_SCRIPT = """#!/bin/sh
printf '220 standin ESMTP\\r\\n'
IFS= read -r line
printf '221 bye\\r\\n'
"""


def test_200_concurrent_connections_half_cached(wd):
    redis = start_redis(wd)
    opts = redis_opts(redis, wd)
    cached = ["127.0.1.%d" % i for i in range(1, 101)]
    new = ["127.0.2.%d" % i for i in range(1, 101)]
    for ip in cached:
        r = subprocess.run([SENDWRAP] + opts + ["--cache-add", "pass", ip],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
    mta = os.path.join(wd, "mta.sh")
    with open(mta, "w") as f:
        f.write(MTA_SCRIPT)
    os.chmod(mta, 0o755)
    srv = TcpServer(wd, [SENDWRAP, "-d", "1", "--redis-timeout", "1s"] +
                    opts + ["--", mta], concurrency=250, backlog=250)

    got, errors = {}, []
    barrier = threading.Barrier(len(cached) + len(new))

    def client(ip):
        try:
            barrier.wait(30)
            s = connect("127.0.0.1", srv.port, source=ip, timeout=60)
            r = LineReader(s)
            t0 = time.monotonic()
            line = r.readline(t0 + 60)
            got[ip] = (line, time.monotonic() - t0)
            s.sendall(b"QUIT\r\n")
            r.read_to_eof(time.monotonic() + 30)
            s.close()
        except Exception as e:
            errors.append((ip, repr(e)))

    threads = [threading.Thread(target=client, args=(ip,))
               for ip in cached + new]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [], errors[:5]
    assert len(got) == 200 and all(v[0] == b"220 standin ESMTP\r\n"
                                   for v in got.values()), got
    lines = srv.wait_lines(r"^(cached|pass) ", count=200, timeout=30)
    verdicts = {re.search(r"ip=(\S+)", l).group(1): l.split()[0]
                for l in lines}
    assert len(lines) == 200
    assert {ip for ip, v in verdicts.items() if v == "cached"} == set(cached)
    assert {ip for ip, v in verdicts.items() if v == "pass"} == set(new)
    assert all(got[ip][1] >= 0.9 for ip in new)
    assert not [l for l in srv.sendwrap_lines() if l.startswith("error ")]
    entries = redis.entries()
    assert len(entries) == 200 and {k for k, v in entries.items()
                                    if v[0] == "pass"} == \
        {ip + "/32" for ip in cached + new}


# ------------------------------------------------------------ fail2ban

def syslog_file(ns, path, host="mx1"):
    """The datagrams sendwrap sent to syslog, as a syslog daemon writes
    them to a file: TIMESTAMP HOST TAG[PID]: MESSAGE."""
    with ns.syslog.lock:
        raw = list(ns.syslog.raw)
    with open(path, "w") as f:
        for d in raw:
            text = d.decode("utf-8", "replace").rstrip("\n\0")
            m = re.match(r"^<\d+>(\w{3} [ \d]\d \d\d:\d\d:\d\d) (.*)$", text,
                         re.S)
            assert m, text
            f.write("%s %s %s\n" % (m.group(1), host, m.group(2)))
    return path


def fail2ban_dir(wd, redis):
    d = make_workdir(wd, "fail2ban")
    for sub in ("filter.d", "action.d"):
        os.mkdir(os.path.join(d, sub))
    shutil.copy("/etc/fail2ban/filter.d/common.conf",
                os.path.join(d, "filter.d"))
    shutil.copy(os.path.join(EXAMPLES, "fail2ban/filter.d/sendwrap.conf"),
                os.path.join(d, "filter.d"))
    pw = redis.password_file(os.path.join(d, "redis.pw"), "mta")
    action_path = os.path.join(
        EXAMPLES, "fail2ban/action.d/sendwrap-cache.conf")
    with open(action_path) as f:
        action = f.read()
    action = re.sub(r"(?m)^sendwrap = .*$", "sendwrap = " + SENDWRAP, action)
    action = re.sub(r"(?m)^stores = .*$", "stores = --redis %s "
                    "--redis-password-file %s" % (redis.url(user="mta"), pw),
                    action)
    with open(os.path.join(d, "action.d", "sendwrap-cache.conf"), "w") as f:
        f.write(action)
    log = os.path.join(d, "mail.log")
    with open(os.path.join(EXAMPLES, "fail2ban/jail.d/sendwrap.conf")) as f:
        jail = f.read()
    assert "logpath  = /var/log/mail.log" in jail and \
        "backend  = auto" in jail, jail
    jail = jail.replace("/var/log/mail.log", log).replace(
        "backend  = auto", "backend  = polling")
    with open(os.path.join(d, "jail.conf"), "w") as f:
        f.write(jail)
    with open(os.path.join(d, "fail2ban.conf"), "w") as f:
        f.write("[Definition]\nloglevel = INFO\nlogtarget = %s\n"
                "socket = %s\npidfile = %s\ndbfile = :memory:\n"
                "syslogsocket = auto\nallowipv6 = auto\ndbpurgeage = 1d\n"
                % (os.path.join(d, "fail2ban.log"),
                   os.path.join(d, "fail2ban.sock"),
                   os.path.join(d, "fail2ban.pid")))
    return d, log


def test_fail2ban_filter_and_action(wd):
    redis = start_redis(wd)
    ns = PrivateNS(wd)
    mx = EximReceiver(wd, "mx")
    # sendwrap logs to syslog here, as under inetd: real syslog lines.
    srv = TcpServer(wd, [SENDWRAP, "-l", "syslog", "-d", "2"] +
                    redis_opts(redis, wd) + ["--"] + mx.argv(), ns=ns)
    for i in range(3):
        got, _, _ = bot("127.0.0.1", srv.port, bot_payload("f2b-%d" % i),
                        source="127.0.0.7")
        assert got.startswith(b"554 "), got
    swaks_deliver(wd, srv, 0, "f2b")
    assert ns.syslog.wait_lines(r"^early ip=127\.0\.0\.7 ", count=3)
    assert ns.syslog.wait_lines(r"^pass ip=127\.0\.0\.1 ")

    d, log = fail2ban_dir(wd, redis)
    syslog_file(ns, os.path.join(wd, "sample.log"))
    r = subprocess.run([FAIL2BAN_REGEX, os.path.join(wd, "sample.log"),
                        os.path.join(d, "filter.d", "sendwrap.conf")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"^Lines: (\d+) lines, 0 ignored, (\d+) matched, (\d+) "
                  r"missed", r.stdout, re.M)
    assert m and int(m.group(1)) == 4 and int(m.group(2)) == 3, r.stdout
    found = re.findall(r"(?m)^\|\s+(\S+)\s+\w{3} \w{3}", subprocess.run(
        [FAIL2BAN_REGEX, "-v", os.path.join(wd, "sample.log"),
         os.path.join(d, "filter.d", "sendwrap.conf")], capture_output=True,
        text=True, timeout=60).stdout)
    assert found == ["127.0.0.7"] * 3, found

    # The jail and the action, in a fail2ban-server of the test's own:
    # three early talks and the address is in Redis as bad.
    with open(log, "w"):
        pass
    server = start_group([FAIL2BAN_SERVER, "-f", "-x", "-c", d],
                         stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        assert wait_until(lambda: "Jail 'sendwrap' started" in read(
            os.path.join(d, "fail2ban.log")), 30), read(
                os.path.join(d, "fail2ban.log"))
        syslog_file(ns, log)
        assert wait_until(lambda: "127.0.0.7/32" in redis.entries(), 30), \
            read(os.path.join(d, "fail2ban.log"))
        kind, recorded, expires, _ = redis.entries()["127.0.0.7/32"]
        assert kind == "bad" and expires - recorded == 3600 * 1000
        assert "127.0.0.1/32" in redis.entries()      # not banned

        # Another MX host sharing the Redis refuses it at connect.
        srv2 = TcpServer(wd, [SENDWRAP, "-d", "2", "-x", "tempfail",
                              "--bad-ttl", "1h"] + redis_opts(redis, wd) +
                         ["--"] + mx.argv(), host="127.0.0.3")
        g = Greeting("127.0.0.3", srv2.port, source="127.0.0.7")
        g.reader.read_to_eof(time.monotonic() + 10)
        assert g.reader.raw.startswith(b"421 "), g.reader.raw
        assert srv2.wait_lines(r"^known-early ip=127\.0\.0\.7 ")

        # Unbanned: the entry goes.
        r = subprocess.run([FAIL2BAN_CLIENT, "-s",
                            os.path.join(d, "fail2ban.sock"), "set",
                            "sendwrap", "unbanip", "127.0.0.7"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
        assert wait_until(lambda: "127.0.0.7/32" not in redis.entries(),
                          10), redis.entries()
    finally:
        stop_group(server)
    assert mx.connections() == 1


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


# ------------------------------------------------------------ exim ACL

ROUTERS = """
known:
  driver = accept
  domains = sendwrap.test
  local_parts = ^rcpt
  transport = nowhere
"""
TRANSPORTS = """
nowhere:
  driver = appendfile
  file = /dev/null
"""


def smtp(r, s, line):
    s.sendall(line + b"\r\n")
    return r.read_reply(time.monotonic() + 20)


def test_exim_acl_turns_a_dictionary_attack_away(wd):
    redis = start_redis(wd)
    uid, gid = exim_ids()
    mta_opts = redis_opts(redis, wd, user="mta", owner=(uid, gid))
    acl = os.path.join(EXAMPLES, "exim/sendwrap-dictionary.conf")
    mx = EximReceiver(
        wd, "mx", rcpt_acl="acl_sendwrap_rcpt", routers=ROUTERS,
        transports=TRANSPORTS,
        main="SENDWRAP_PROGRAM = %s\nSENDWRAP_STORES = %s\n" % (
            SENDWRAP, " ".join(mta_opts)),
        acls="\n.include %s\n" % acl)
    srv = TcpServer(wd, [SENDWRAP, "-d", "1", "-x", "tempfail", "--bad-ttl",
                         "1h"] + redis_opts(redis, wd) + ["--"] + mx.argv())

    # A real sender to a real recipient: delivered.
    greet, h, b = swaks_deliver(wd, srv, 1, "acl")
    # The attacker waits, then tries names: two, RSET, three more.
    s = connect("127.0.0.1", srv.port, source="127.0.0.8", timeout=20)
    r = LineReader(s)
    assert r.read_reply(time.monotonic() + 20)[-1].startswith(b"220 ")
    assert smtp(r, s, b"EHLO attacker.example")[-1].startswith(b"250 ")
    replies = []
    for batch in ((b"alice", b"bob"), (b"carol", b"dave", b"erin")):
        assert smtp(r, s, b"MAIL FROM:<x@attacker.example>")[0].startswith(
            b"250 ")
        for name in batch:
            replies.append(smtp(r, s, b"RCPT TO:<%s@sendwrap.test>" % name))
        if len(replies) == 2:
            assert smtp(r, s, b"RSET")[0].startswith(b"250 ")
    assert [x[0][:4] for x in replies[:4]] == [b"550 "] * 4, replies
    assert replies[4][0].startswith(b"550 5.1.1 Unknown user; too many"), \
        replies
    assert r.read_to_eof(time.monotonic() + 10) == b""   # dropped
    s.close()
    assert redis.entries()["127.0.0.8/32"][0] == "bad", redis.entries()
    assert re.search(r"sendwrap: 5 failed recipients, marked bad",
                     mx.mainlog()), mx.mainlog()

    # Its next connection is refused at connect; exim does not run.
    sessions = mx.connections()
    g = Greeting("127.0.0.1", srv.port, source="127.0.0.8")
    g.reader.read_to_eof(time.monotonic() + 10)
    assert g.reader.raw.startswith(b"421 "), g.reader.raw
    assert g.t_final is not None and g.t_final < AT_ONCE
    assert srv.wait_lines(r"^known-early ip=127\.0\.0\.8 ")
    assert mx.connections() == sessions

    (m,) = mx.messages()
    check_message(m, h, b)
