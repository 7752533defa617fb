"""Greylisting (--greylist) with real parts: a real exim4 as the sending
MTA (its queue run by the test) and swaks as clients, tcpserver or
sendwrap's own listener in front, exim -bs behind, the LMDB file and a
real redis-server shared by two MX hosts.

- A sending exim's first attempt is greylisted: the 451 in its log, the
  message still queued, nothing at the receiver, exim -bs never run;
  its retry after --grey-pass is delivered intact.
- swaks, which sends once and never retries, is greylisted and its
  message never delivered.
- Two MX hosts sharing Redis: the first attempt at mx1, the retry at mx2
  (the sender's route changed), delivered at mx2.
- The same first attempt and retry through the listener (--listen),
  with the LMDB file and Redis.

Delays are short (-d 0.5) and --grey-pass is 2 s: the file takes about
half a minute.
"""

import os
import re
import subprocess
import sys
import time

from e2elib import (SENDER_CONF, SENDWRAP, EXIM_USER, EximReceiver,
                    EximSender, Listener, TcpServer, check_message,
                    make_message, make_workdir, start_group, stop_group,
                    swaks, write_swaks_data)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
from redisd import SENDWRAP_RULES, RedisServer  # noqa: E402

DELAY = 0.5
GREY_PASS = 2.0
HOST = "mx.grey.test"
GREY = ["-d", str(DELAY), "--greylist", "--grey-pass", "2s",
        "--hostname", HOST]
GREYLISTED = "451 4.7.1 Greylisted, try again later"
SENDER_FROM = "relay@sender.sendwrap.test"


class RetryingSender(EximSender):
    """A sending exim whose retry rule is in seconds (the test runs its
    queue itself, with -qff), and whose route can be changed between
    queue runs (the next MX host)."""

    RETRY = "F,1m,1s"

    def __init__(self, base, host, port):
        super().__init__(base, host, port)
        self.point_at(host, port)

    def point_at(self, host, port):
        text = SENDER_CONF.format(user=EXIM_USER, spool=self.spool,
                                  log=self.logdir, host=host, port=port)
        assert "F,1h,1m" in text
        with open(self.conf, "w") as f:
            f.write(text.replace("F,1h,1m", self.RETRY))

    def deferrals(self):
        """The sender's mainlog lines for deferred deliveries."""
        return [l for l in self.mainlog().splitlines()
                if re.match(r"^\S+ \S+ \S+ == ", l)]

    def deliveries(self):
        return [l for l in self.mainlog().splitlines()
                if re.match(r"^\S+ \S+ \S+ => ", l)]


def cache_list(path):
    """{key: (kind, recorded)} from sendwrap --cache-list."""
    r = subprocess.run([SENDWRAP, "--cache-list", path], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return {f[0]: (f[1], f[3]) for f in (l.split() for l in
                                         r.stdout.splitlines())}


def grey_line(server, first, ip="127.0.0.1", count=1):
    lines = server.wait_lines(r"^grey ip=%s .* first=%s " % (
        re.escape(ip), first), count=count)
    assert len(lines) >= count, server.log()
    return lines[-1]


def first_attempt(sender, server, mx, tag):
    """Submit a message and run the queue once: greylisted.  Returns the
    message's (headers, body) and the time the attempt was over."""
    raw, headers, body = make_message(tag)
    sender.submit(SENDER_FROM, headers["To"], raw)
    took = sender.run_queue()
    over = time.monotonic()
    assert took >= 0.9 * DELAY, took
    deferred = sender.deferrals()
    assert len(deferred) == 1 and GREYLISTED in deferred[0], \
        sender.mainlog()
    assert sender.deliveries() == []
    assert sender.queue_count() == 1
    assert mx.message_ids() == [] and mx.connections() == 0, mx.mainlog()
    line = grey_line(server, "yes")
    assert 'helo="sender.sendwrap.test"' in line, line
    assert SENDER_FROM in line and " rcpts=1 " in line, line
    return headers, body, over


def retry(sender, server, mx, headers, body, over, ip="127.0.0.1"):
    """After --grey-pass: the queue run delivers; the message arrives
    once, intact."""
    time.sleep(max(0.0, over + GREY_PASS + 0.2 - time.monotonic()))
    took = sender.run_queue()
    assert took >= 0.9 * DELAY, took
    assert sender.queue_count() == 0, sender.mainlog()
    assert len(sender.deliveries()) == 1, sender.mainlog()
    lines = server.wait_lines(r"^pass ip=%s " % re.escape(ip))
    assert lines, server.log()
    m = re.search(r" grey=(\d+\.\d{3})\b", lines[0])
    assert m and float(m.group(1)) >= GREY_PASS, lines[0]
    (msg,) = mx.messages()
    check_message(msg, headers, body)
    assert msg.sender == SENDER_FROM
    assert msg.recipients == [headers["To"]]
    assert mx.connections() == 1, mx.mainlog()


def no_errors(server):
    errors = [l for l in server.sendwrap_lines() if l.startswith("error ")]
    assert errors == [], errors


# ------------------------------------------------------------ tcpserver

def test_a_sending_exim_is_greylisted_then_delivers(wd, mx):
    cache = os.path.join(wd, "grey.mdb")
    srv = TcpServer(wd, [SENDWRAP] + GREY + ["-c", cache, "--"] + mx.argv())
    sender = RetryingSender(wd, "127.0.0.1", srv.port)
    headers, body, over = first_attempt(sender, srv, mx, "grey-exim")
    assert cache_list(cache)["127.0.0.1/32"][0] == "grey"
    retry(sender, srv, mx, headers, body, over)
    assert cache_list(cache)["127.0.0.1/32"][0] == "pass"
    no_errors(srv)


def test_swaks_sending_once_is_never_delivered(wd, mx):
    cache = os.path.join(wd, "grey.mdb")
    srv = TcpServer(wd, [SENDWRAP] + GREY + ["-c", cache, "--"] + mx.argv())
    raw, headers, _ = make_message("grey-swaks")
    data = write_swaks_data(os.path.join(wd, "grey-swaks.eml"), raw)
    rc, out, greet, _ = swaks("127.0.0.1", srv.port, headers["To"],
                              data_file=data)
    assert rc != 0, out
    assert "<** " + GREYLISTED in out, out
    assert "<-  220 %s ESMTP" % HOST in out, out
    assert greet is not None and greet >= 0.9 * DELAY, greet
    line = grey_line(srv, "yes")
    assert 'helo="client.sendwrap.test"' in line and " quit=yes " in line, \
        line
    # It never comes back: nothing is ever delivered, exim never ran.
    time.sleep(0.3)
    assert mx.message_ids() == [] and mx.connections() == 0, mx.mainlog()
    assert cache_list(cache)["127.0.0.1/32"][0] == "grey"
    no_errors(srv)


# ------------------------------------------------------------ two MX hosts

def test_first_attempt_at_mx1_retry_at_mx2_through_redis(wd):
    redis = RedisServer(make_workdir(wd, "redis"),
                        users={"sendwrap": SENDWRAP_RULES},
                        start=start_group, stop=stop_group)
    pw = redis.password_file(os.path.join(wd, "pw"), "sendwrap")
    opts = GREY + ["--redis", redis.url(user="sendwrap"),
                   "--redis-password-file", pw]
    mx1, mx2 = EximReceiver(wd, "mx1"), EximReceiver(wd, "mx2")
    caches = [os.path.join(wd, "mx1.mdb"), os.path.join(wd, "mx2.mdb")]
    srv1 = TcpServer(wd, [SENDWRAP] + opts + ["-c", caches[0], "--"] +
                     mx1.argv(), host="127.0.0.2")
    srv2 = TcpServer(wd, [SENDWRAP] + opts + ["-c", caches[1], "--"] +
                     mx2.argv(), host="127.0.0.3")
    sender = RetryingSender(wd, "127.0.0.2", srv1.port)
    headers, body, over = first_attempt(sender, srv1, mx1, "grey-fleet")
    kind, recorded, expires, _ = redis.entries()["127.0.0.1/32"]
    assert kind == "grey" and expires - recorded == 4 * 3600 * 1000

    # The retry goes to the next MX host, which never saw the client.
    sender.point_at("127.0.0.3", srv2.port)
    retry(sender, srv2, mx2, headers, body, over)
    assert mx1.message_ids() == [] and mx1.connections() == 0
    assert redis.entries()["127.0.0.1/32"][0] == "pass"
    assert cache_list(caches[1])["127.0.0.1/32"][0] == "pass"
    assert srv2.sendwrap_lines()[0].startswith("pass "), srv2.log()
    for srv in (srv1, srv2):
        no_errors(srv)


# ------------------------------------------------------------ the listener

def test_the_listener_greylists_a_sending_exim(wd, mx):
    """The listener, with the LMDB file and Redis (asked from its event
    loop)."""
    redis = RedisServer(make_workdir(wd, "redis"),
                        users={"sendwrap": SENDWRAP_RULES},
                        start=start_group, stop=stop_group)
    pw = redis.password_file(os.path.join(wd, "pw"), "sendwrap")
    cache = os.path.join(wd, "grey.mdb")
    lst = Listener(wd, GREY + ["-c", cache, "--redis",
                               redis.url(user="sendwrap"),
                               "--redis-password-file", pw], mx.argv())
    sender = RetryingSender(wd, lst.host, lst.port)
    headers, body, over = first_attempt(sender, lst, mx, "grey-listen")
    assert cache_list(cache)["127.0.0.1/32"][0] == "grey"
    assert redis.entries()["127.0.0.1/32"][0] == "grey"
    retry(sender, lst, mx, headers, body, over)
    assert cache_list(cache)["127.0.0.1/32"][0] == "pass"
    assert redis.entries()["127.0.0.1/32"][0] == "pass"
    no_errors(lst)
