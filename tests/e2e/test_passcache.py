"""The pass cache (issue 5) with real parts: tcpserver and inetd in front
of sendwrap -c, exim -bs behind it, and real clients: swaks, a sending
exim, a blind bot.

- A sender that waited once is greeted at once on its next connection
  (verdict cached), and both messages arrive intact.
- With --bad-ttl, a bot caught talking early is refused again at once
  (verdict known-early), and exim never runs for it.
- Under inetd the exec'd exim holds no descriptor on the cache, and the
  maintenance commands show what the connections recorded.

Every test has a cache of its own (in its work directory), so clients of
one test never meet entries of another.
"""

import os
import re
import subprocess
import time

from e2elib import (SENDWRAP, EximSender, Greeting, Inetd, TcpServer,
                    assert_delayed, assert_prompt, bot, bot_payload,
                    check_message, make_message, swaks_message)
import proclib  # tests/proclib.py, on the path through e2elib

# A known early talker is told to come back later, whatever -x says.
KNOWN_EARLY_421 = (b"421 4.7.1 Service temporarily unavailable, try again "
                   b"later\r\n")
TEMPFAIL_421 = (b"421 4.5.1 SMTP protocol violation: input before greeting, "
                b"try again later\r\n")
REJECT_554 = b"554 5.5.1 SMTP protocol violation: input before greeting\r\n"
BOT_IP = "127.0.0.3"
# A cached greeting comes "at once": well under the delay, with room for
# a loaded machine.
AT_ONCE = 1.5


def bot_then_known_early(srv, tag, bot_ip=BOT_IP):
    """A bot from bot_ip talks before the greeting at srv (whose log says
    so) and gets the tempfail 421; its next connection gets the
    known-early 421 at once, before it says anything."""
    got, _, _ = bot("127.0.0.1", srv.port, bot_payload(tag), source=bot_ip)
    assert got == TEMPFAIL_421, got
    assert srv.wait_lines(r"^early ip=%s .* action=tempfail$" %
                          re.escape(bot_ip))
    g = Greeting("127.0.0.1", srv.port, source=bot_ip)
    g.reader.read_to_eof(time.monotonic() + 10)
    assert g.reader.raw == KNOWN_EARLY_421, g.reader.raw
    assert g.t_final is not None and g.t_final < AT_ONCE, g.lines


def cache_list(path):
    """{key: kind} from sendwrap --cache-list."""
    r = subprocess.run([SENDWRAP, "--cache-list", path], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return {f[0]: f[1] for f in (l.split() for l in r.stdout.splitlines())}


def test_swaks_waits_once_and_a_bot_is_refused_twice(wd, mx, sw):
    cache = os.path.join(wd, "cache.mdb")
    srv = TcpServer(wd, sw("-d", "3", "-c", cache, "-x", "tempfail",
                           "--bad-ttl", "10m", mta=mx.argv()))

    _, greet1, _, h1, b1 = swaks_message(wd, "127.0.0.1", srv.port,
                                         "cache-swaks", 1)
    assert_delayed(greet1, 3.0)
    assert srv.wait_lines(r"^pass ip=127\.0\.0\.1 "), srv.log()
    _, greet2, _, h2, b2 = swaks_message(wd, "127.0.0.1", srv.port,
                                         "cache-swaks", 2)
    assert_prompt(greet2, AT_ONCE)
    cached = srv.wait_lines(r"^cached ")
    assert len(cached) == 1 and re.fullmatch(
        r"cached ip=127\.0\.0\.1 port=\d+ age=\d+\.\d+", cached[0]), cached

    # The bot talks before the greeting and gets the 421; known, it gets
    # a 421 at once on its next connection, before it says anything
    # (a stranger that kept quiet would wait 3 s and meet exim).
    bot_then_known_early(srv, "c1")
    known = srv.wait_lines(r"^known-early ")
    assert len(known) == 1 and re.fullmatch(
        r"known-early ip=127\.0\.0\.3 port=\d+ age=\d+\.\d+ "
        r"action=tempfail", known[0]), known

    msgs = {m.header("X-E2E-Tag"): m for m in mx.messages()}
    assert sorted(msgs) == ["cache-swaks-1", "cache-swaks-2"], \
        mx.queue_listing()
    check_message(msgs["cache-swaks-1"], h1, b1)
    check_message(msgs["cache-swaks-2"], h2, b2)
    assert mx.connections() == 2, mx.mainlog()      # swaks only
    assert cache_list(cache) == {"127.0.0.1/32": "pass",
                                 "127.0.0.3/32": "bad"}


def test_sending_exim_waits_once(wd, mx, sw):
    cache = os.path.join(wd, "cache.mdb")
    srv = TcpServer(wd, sw("-d", "4", "-c", cache, mta=mx.argv()))
    sender = EximSender(wd, "127.0.0.1", srv.port)
    sent = []
    for n in (1, 2):
        raw, headers, body = make_message("cache-exim", n)
        sender.submit("relay@sender.sendwrap.test", headers["To"], raw)
        sent.append((headers, body, sender.run_queue()))
        assert sender.queue_count() == 0, sender.mainlog()

    # The first queue run waited out the greeting delay, the second did
    # not (each is one connection: exim's start, the session, its end).
    assert sent[0][2] >= 0.9 * 4.0, "first run took %.2f s" % sent[0][2]
    assert sent[1][2] < 4.0 * 0.5, "second run took %.2f s" % sent[1][2]
    lines = srv.wait_lines(r"^(pass|cached) ", count=2)
    assert [l.split()[0] for l in lines] == ["pass", "cached"], srv.log()
    m = re.fullmatch(r"pass ip=(\S+) port=\d+ delay=4\.000 "
                     r"waited=(\d+\.\d+)", lines[0])
    assert m and float(m.group(2)) >= 4.0, lines[0]
    assert re.fullmatch(r"cached ip=%s port=\d+ age=\d+\.\d+"
                        % re.escape(m.group(1)), lines[1]), lines[1]

    msgs = {m.header("X-E2E-Tag"): m for m in mx.messages()}
    assert sorted(msgs) == ["cache-exim-1", "cache-exim-2"], \
        mx.queue_listing()
    for n, (headers, body, _) in enumerate(sent, 1):
        check_message(msgs["cache-exim-%d" % n], headers, body)
        assert msgs["cache-exim-%d" % n].sender == \
            "relay@sender.sendwrap.test"
    assert mx.connections() == 2, mx.mainlog()


def exim_sessions(conf):
    """PIDs of running exim processes started with -C conf."""
    pids = []
    for pid, comm, *_ in proclib.processes():
        if not comm.startswith("exim"):
            continue
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if conf.encode() in argv:
            pids.append(pid)
    return pids


def open_files(pid):
    out = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out.append(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            pass
    return out


def held_exim_files(g, mx):
    """The files of the exim behind an open session g."""
    g.sock.sendall(b"EHLO client.sendwrap.test\r\n")
    reply = g.reader.read_reply(time.monotonic() + 10)
    assert reply and reply[-1].startswith(b"250 "), reply
    pids = exim_sessions(mx.conf)
    assert len(pids) == 1, pids
    return open_files(pids[0])


def test_inetd_exim_holds_no_cache_descriptor(wd, mx):
    cache = os.path.join(wd, "cache.mdb")
    inetd = Inetd(wd, [SENDWRAP, "sendwrap", "-d", "2", "-c", cache,
                       "--bad-ttl", "10m", "--"] + mx.argv())

    # The first session waits, passes, records (a read-write open of the
    # cache), then execs exim; the second is cached (a read-only open).
    for expect in ("pass", "cached"):
        g = Greeting("127.0.0.1", inetd.port)
        if expect == "pass":
            assert_delayed(g.t_final, 2.0)
        else:
            assert_prompt(g.t_final, AT_ONCE)
        assert g.final().startswith(b"220 mx.sendwrap.test ESMTP Exim"), \
            g.lines
        files = held_exim_files(g, mx)
        assert not [f for f in files if "cache.mdb" in f], files
        # exim's own descriptors are there: the check sees real files
        assert [f for f in files if f.startswith("socket:")], files
        reply, _ = g.quit()
        assert reply[0].startswith(b"221 "), reply
        assert inetd.syslog.wait_lines(r"^%s ip=127\.0\.0\.1 " % expect), \
            inetd.syslog.records

    got, _, _ = bot("127.0.0.1", inetd.port, bot_payload("inetd-cache"),
                    source=BOT_IP)
    assert got == REJECT_554, got
    assert inetd.syslog.wait_lines(r"^early ip=127\.0\.0\.3 ")
    assert cache_list(cache) == {"127.0.0.1/32": "pass",
                                 "127.0.0.3/32": "bad"}
    assert not [r for r in inetd.syslog.records
                if r[4].startswith("error ")], inetd.syslog.records
    assert mx.connections() == 2, mx.mainlog()
