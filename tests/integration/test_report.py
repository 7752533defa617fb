"""sendwrap --report: a fixed corpus of log lines in every form sendwrap's
lines take (syslog with RFC 3164, RFC 3339 and RFC 5424 timestamps,
journalctl -o short-iso, multilog's TAI64N, s6-log's ISO stamps, bare
standard error), mixed with other programs' lines, malformed sendwrap
lines and garbage, in plain and gzip'd files and on standard input; the
forwarded lines of relayed sessions (--forward), hand-written and as the
listener writes them, which are no connections.

The expected figures are computed here, from the events the test itself
generated, never from sendwrap's code: counts per day and week, shares,
the catch curve, the waits' median, 90th percentile and maximum, the top
networks.  The Prometheus output is read by a real parser (Debian's
python3-prometheus-client).
"""
import calendar
import copy
import csv
import datetime
import gzip
import io
import ipaddress
import os
import random
import re
import resource
import socket
import subprocess
import time
from collections import Counter, defaultdict

import pytest

from sw_harness import SENDWRAP, VALGRIND, check_tools, command, make_env

VERDICTS = ["pass", "allow", "early", "hangup", "cached", "known-early",
            "tarpit", "decoy", "busy", "error"]
REASONS = ["delay", "allowlist", "GREETDELAY", "RELAYCLIENT"]
ACTIONS = ["reject", "tempfail", "drop", "pass"]
FORMS = ["rfc3164", "rfc3339", "rfc5424", "journal", "tai64n", "s6iso",
         "bare"]
CATCH = [1, 2, 5, 10, 20, 30, 60]


def report(args, stdin=None, timeout=60):
    """Run sendwrap --report ARGS: (rc, stdout, stderr)."""
    env = make_env("/tmp", {"TZ": "UTC"})
    r = subprocess.run(command("/tmp", ["--report"] + list(args)),
                       input=stdin, capture_output=True, env=env,
                       timeout=timeout * (20 if VALGRIND else 1))
    return r.returncode, r.stdout.decode(), r.stderr.decode()


# ------------------------------------------------------------ the corpus

def secs(ms):
    return "%d.%03d" % (ms // 1000, ms % 1000)


class Corpus:
    """Lines with known figures.  Times are UTC (the report runs with
    TZ=UTC), days in the last four weeks, so that a date without a year
    is never taken for one in the future."""

    def __init__(self, seed, n):
        self.rnd = random.Random(seed)
        self.lines = []
        self.per_day = defaultdict(Counter)      # day -> Counter
        self.other = self.malformed = self.notices = 0
        self.early_ms, self.hangup_ms, self.waits = [], [], []
        self.delays = set()
        self.early_ips = Counter()
        self.held_ms = 0
        today = datetime.datetime.now(datetime.timezone.utc).date()
        self.days = [today - datetime.timedelta(days=d)
                     for d in range(2, 28, 3)]
        for i in range(n):
            self.add_one(i)

    def stamp(self, form, day, i):
        dt = datetime.datetime(day.year, day.month, day.day, i % 24,
                               i % 60, (i * 7) % 60,
                               tzinfo=datetime.timezone.utc)
        pid = 1000 + i
        if form == "rfc3164":
            return "%s %2d %s mx sendwrap[%d]: " % (
                dt.strftime("%b"), dt.day, dt.strftime("%H:%M:%S"), pid)
        if form == "rfc3339":
            return "%s.%06d+00:00 mx sendwrap[%d]: " % (
                dt.strftime("%Y-%m-%dT%H:%M:%S"), i % 1000000, pid)
        if form == "rfc5424":
            return "<22>1 %sZ mx sendwrap %d - - " % (
                dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3], pid)
        if form == "journal":
            return "%s+0000 mx sendwrap[%d]: sendwrap: " % (
                dt.strftime("%Y-%m-%dT%H:%M:%S"), pid)
        if form == "tai64n":
            t = calendar.timegm(dt.timetuple())
            return "@%016x%08x sendwrap: " % (2 ** 62 + 10 + t, i)
        if form == "s6iso":
            return "%s.%09d  sendwrap: " % (dt.strftime("%Y-%m-%d %H:%M:%S"),
                                            i)
        return "sendwrap: "

    def ip(self):
        r = self.rnd.random()
        if r < 0.5:     # a few busy bots, so the top list means something
            return "203.0.113.%d" % self.rnd.choice([5, 6, 7, 8, 9])
        if r < 0.8:
            return "198.51.100.%d" % self.rnd.randrange(256)
        return "2001:db8:%x::%x" % (self.rnd.randrange(8),
                                    self.rnd.randrange(1, 99))

    def verdict_line(self, v, day_counts):
        r, ip = self.rnd, self.ip()
        head = "%s ip=%s port=%d" % (v, ip, r.randrange(1, 65536))
        stress = r.random() < 0.1 and v in ("pass", "early", "hangup")
        tail = " stress=1" if stress else ""
        day_counts["stressed"] += stress
        if v == "pass":
            delay = r.choice([2000, 5000, 30000])
            waited = delay + r.randrange(0, 40)
            self.waits.append(waited)
            self.delays.add(delay)
            return "%s delay=%s waited=%s%s" % (head, secs(delay),
                                                secs(waited), tail)
        if v == "allow":
            reason = r.choice(REASONS)
            day_counts["allow/" + reason] += 1
            rule = " rule=10.0.0.0/8" if reason == "allowlist" else ""
            return "%s reason=%s%s" % (head, reason, rule)
        if v == "early":
            after, action = r.randrange(0, 70000), r.choice(ACTIONS)
            self.early_ms.append(after)
            self.early_ips[ip] += 1
            day_counts["early/" + action] += 1
            return ('%s after=%s bytes=18 first="EHLO x\\r\\n\\"q\\"" '
                    'action=%s%s' % (head, secs(after), action, tail))
        if v == "hangup":
            after = r.randrange(0, 40000)
            self.hangup_ms.append(after)
            return "%s after=%s how=%s%s" % (head, secs(after),
                                             r.choice(["eof", "reset"]), tail)
        if v == "cached":
            return "%s age=%s" % (head, secs(r.randrange(0, 86400000)))
        if v == "known-early":
            action = r.choice(ACTIONS)
            day_counts["known/" + action] += 1
            return "%s age=12.000 action=%s" % (head, action)
        if v == "tarpit":
            held = r.randrange(0, 1800000)
            self.held_ms += held
            return "%s held=%s bytes=12 end=max-reached" % (head, secs(held))
        if v == "decoy":
            return '%s helo="a b" commands=3 quit=yes end=quit' % head
        if v == "busy":
            return "%s mode=wrap slots=3" % head
        return "error %s cannot read from the client: reset" % head[6:]

    def add_one(self, i):
        r = self.rnd
        form = FORMS[i % len(FORMS)]
        day = r.choice(self.days)
        label = "undated" if form == "bare" else day.isoformat()
        pre = self.stamp(form, day, i)
        kind = r.random()
        if kind < 0.05:
            self.other += 1
            self.lines.append(pre.replace("sendwrap", "postfix/smtpd", 1)
                              .replace("sendwrap: ", "") +
                              "connect from x[192.0.2.1]"
                              if form != "bare" else
                              "tcpserver: status: 1/40")
            return
        if kind < 0.08:
            self.malformed += 1
            self.lines.append(pre + r.choice([
                "bogus ip=1.2.3.4", "pass ip=1.2.3.4 port=1 delay=5.000",
                "early ip=1.2.3.4 port=1 after=x action=reject",
                'early ip=1.2.3.4 port=1 after=1.000 first="open',
                "allow ip=1.2.3.4 port=1 reason=whim",
                "hangup ip=1.2.3.4 port=1 after=1.000 how=eof trailing",
                "pass port=1 delay=5.000 waited=5.000"]))
            return
        if kind < 0.09:
            self.notices += 1
            self.lines.append(pre + "listening on=127.0.0.1:25 clients=10 "
                              "children=4 perip=2")
            return
        v = r.choices(VERDICTS, [30, 10, 25, 8, 10, 3, 5, 3, 3, 3])[0]
        counts = self.per_day[label]
        counts[v] += 1
        self.lines.append(pre + self.verdict_line(v, counts))

    def text(self):
        return "".join(l + "\n" for l in self.lines)

    # -- expected figures

    def total(self):
        t = Counter()
        for c in self.per_day.values():
            t.update(c)
        return t

    @staticmethod
    def connections(c):
        return sum(c[v] for v in VERDICTS if v != "error")

    def within(self, times, ms):
        return sum(1 for t in times if t <= ms)

    def quantile(self, q):
        w = sorted(self.waits)
        k = max(1, min(len(w), int(q * len(w) + 0.5)))
        return w[k - 1]

    def top(self, n, v4=32, v6=64):
        """The n networks with most early talk: [(name, count)], ties in
        address order, IPv4 first; a whole address is named bare."""
        nets = Counter()
        for ip, k in self.early_ips.items():
            a = ipaddress.ip_address(ip)
            nets[ipaddress.ip_network("%s/%d" % (ip, v4 if a.version == 4
                                                 else v6), strict=False)] += k
        best = sorted(nets.items(), key=lambda kv: (
            -kv[1], kv[0].version, kv[0].network_address.packed))[:n]
        return [(str(net.network_address) if net.prefixlen ==
                 net.max_prefixlen else str(net), k) for net, k in best]


def read_csv(text):
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["table", "period", "name", "detail", "value",
                       "percent"], rows[0]
    return {(r[0], r[1], r[2], r[3]): (r[4], r[5]) for r in rows[1:]}


def pct(n, of):
    return "%.1f" % (100.0 * n / of if of else 0.0)


@pytest.fixture(scope="module")
def corpus():
    return Corpus(seed=17, n=6000)


@pytest.fixture
def logfile(tmp_path, corpus):
    path = tmp_path / "mail.log"
    path.write_text(corpus.text())
    return str(path)


# ------------------------------------------------------------ the figures

def check_figures(rows, c, top=10):
    total = c.total()
    sendwrap = sum(sum(x[v] for v in VERDICTS) for x in c.per_day.values())
    assert rows[("lines", "total", "read", "")][0] == str(len(c.lines))
    assert rows[("lines", "total", "sendwrap", "")][0] == str(sendwrap)
    assert rows[("lines", "total", "malformed", "")][0] == str(c.malformed)
    assert rows[("lines", "total", "other", "")][0] == str(c.other)
    assert rows[("lines", "total", "notices", "")][0] == str(c.notices)
    for label, counts in list(c.per_day.items()) + [("total", total)]:
        conns = c.connections(counts)
        assert rows[("verdicts", label, "connections", "")][0] == str(conns)
        for v in VERDICTS:
            assert rows[("verdicts", label, v, "")] == (
                str(counts[v]), pct(counts[v], conns)), (label, v)
        for reason in REASONS:
            assert rows[("verdicts", label, "allow", reason)][0] == \
                str(counts["allow/" + reason]), (label, reason)
        for a in ACTIONS:
            assert rows[("verdicts", label, "early", a)][0] == \
                str(counts["early/" + a]), (label, a)
            assert rows[("verdicts", label, "known-early", a)][0] == \
                str(counts["known/" + a]), (label, a)
        assert rows[("verdicts", label, "stressed", "")][0] == \
            str(counts["stressed"])
    assert rows[("held", "total", "tarpit", "hours")][0] == \
        "%.3f" % (c.held_ms / 3.6e6)
    # the catch curve: the fixed points and every delay seen
    points = sorted(set(s * 1000 for s in CATCH) | c.delays)
    for ms in points:
        e, h = c.within(c.early_ms, ms), c.within(c.hangup_ms, ms)
        assert rows[("catch", "total", "early", secs(ms))] == (
            str(e), pct(e, len(c.early_ms))), ms
        assert rows[("catch", "total", "hangup", secs(ms))] == (
            str(h), pct(h, len(c.hangup_ms))), ms
    assert rows[("waits", "total", "pass", "count", )][0] == str(len(c.waits))
    assert rows[("waits", "total", "pass", "median")][0] == \
        secs(c.quantile(0.5))
    assert rows[("waits", "total", "pass", "p90")][0] == secs(c.quantile(0.9))
    assert rows[("waits", "total", "pass", "max")][0] == secs(max(c.waits))
    got_top = [(k[3], int(v[0])) for k, v in rows.items() if k[0] == "top"]
    assert got_top == c.top(top)


def test_csv_figures_of_every_form(logfile, corpus):
    rc, out, err = report(["--report-format", "csv", logfile])
    assert rc == 0, err
    rows = read_csv(out)
    check_figures(rows, corpus)
    # every form was read: each day has lines of each dated form
    assert len([k for k in rows if k[0] == "verdicts" and
                k[2] == "connections"]) == len(corpus.per_day) + 1


def test_top_networks_are_cut_as_cache_net(logfile, corpus):
    rc, out, err = report(["--cache-net", "24,48", "--top", "3",
                           "--report-format", "csv", logfile])
    assert rc == 0, err
    top = [(k[3], int(v[0])) for k, v in read_csv(out).items()
           if k[0] == "top"]
    assert top == corpus.top(3, 24, 48)


def test_by_week(logfile, corpus):
    rc, out, err = report(["--by", "week", "--report-format", "csv",
                           logfile])
    assert rc == 0, err
    rows = read_csv(out)
    weeks = defaultdict(Counter)
    for label, counts in corpus.per_day.items():
        if label == "undated":
            weeks[label].update(counts)
            continue
        y, w, _ = datetime.date.fromisoformat(label).isocalendar()
        weeks["%04d-W%02d" % (y, w)].update(counts)
    for label, counts in weeks.items():
        for v in VERDICTS:
            assert rows[("verdicts", label, v, "")][0] == str(counts[v])
    assert len([k for k in rows if k[0] == "verdicts" and
                k[2] == "connections"]) == len(weeks) + 1


def test_text_report(logfile, corpus):
    rc, out, err = report([logfile])
    assert rc == 0, err
    total = corpus.total()
    lines = out.splitlines()
    # the header of the verdict table names the columns of the total row
    head = next(l for l in lines if l.startswith("date "))
    tot = next(l for l in lines if l.startswith("total "))
    cols = head.split()[1:]
    vals = tot.split()[1:]
    assert len(cols) == len(vals) == 12, (head, tot)
    want = {"connections": corpus.connections(total),
            "stressed": total["stressed"]}
    want.update({v: total[v] for v in VERDICTS})
    assert {k: int(v) for k, v in zip(cols, vals)} == want
    for day in corpus.per_day:
        assert any(l.startswith(day + " ") for l in lines), day
    assert "median %s s" % secs(corpus.quantile(0.5)) in out
    assert "%d lines read" % len(corpus.lines) in out
    assert "%d malformed" % corpus.malformed in out


def test_prometheus_output_parses(logfile, corpus):
    # Debian's python3-prometheus-client (tests/deps): missing, this fails
    from prometheus_client import parser
    rc, out, err = report(["--report-format", "prometheus", logfile])
    assert rc == 0, err
    fams = {f.name: f for f in parser.text_string_to_metric_families(out)}
    total = corpus.total()
    conns = {}
    for s in fams["sendwrap_connections"].samples:
        conns[(s.labels["verdict"], s.labels.get("reason") or
               s.labels.get("action"))] = s.value
    assert fams["sendwrap_connections"].type == "counter"
    for v in VERDICTS:
        if v == "error":
            continue
        got = sum(n for (vv, _), n in conns.items() if vv == v)
        assert got == total[v], v
    for a in ACTIONS:
        assert conns[("early", a)] == total["early/" + a]
    for reason in REASONS:
        assert conns[("allow", reason)] == total["allow/" + reason]
    errors = fams["sendwrap_errors"].samples[0].value
    assert errors == total["error"]
    for name, times in (("sendwrap_wait_seconds", corpus.waits),
                        ("sendwrap_early_seconds", corpus.early_ms),
                        ("sendwrap_hangup_seconds", corpus.hangup_ms)):
        fam = fams[name]
        assert fam.type == "histogram"
        buckets = {s.labels["le"]: s.value for s in fam.samples
                   if s.name == name + "_bucket"}
        for le, n in buckets.items():
            lim = float("inf") if le == "+Inf" else float(le) * 1000
            assert n == sum(1 for t in times if t <= lim), (name, le)
        count = [s.value for s in fam.samples if s.name == name + "_count"]
        total_s = [s.value for s in fam.samples if s.name == name + "_sum"]
        assert count == [len(times)]
        assert abs(total_s[0] - sum(times) / 1000.0) < 1e-6


def test_rotated_and_gzipped_files_count_as_one_log(tmp_path, logfile,
                                                    corpus):
    lines = corpus.text().splitlines(keepends=True)
    third = len(lines) // 3
    old = tmp_path / "mail.log.2.gz"
    # two gzip members, as a rotation that appended to a compressed file
    old.write_bytes(gzip.compress("".join(lines[:third // 2]).encode()) +
                    gzip.compress("".join(lines[third // 2:third]).encode()))
    (tmp_path / "mail.log.1").write_text("".join(lines[third:2 * third]))
    (tmp_path / "mail.log.0.gz").write_bytes(
        gzip.compress("".join(lines[2 * third:]).encode()))
    rc, out, err = report(["--report-format", "csv", str(old),
                           str(tmp_path / "mail.log.1"),
                           str(tmp_path / "mail.log.0.gz")])
    assert rc == 0, err
    check_figures(read_csv(out), corpus)
    rc, whole, err = report(["--report-format", "csv", logfile])
    assert out == whole


def test_standard_input(logfile, corpus):
    data = open(logfile, "rb").read()
    rc, out, err = report(["--report-format", "csv"], stdin=data)
    assert rc == 0, err
    check_figures(read_csv(out), corpus)
    rc2, out2, err2 = report(["--report-format", "csv", "-"],
                             stdin=gzip.compress(data))
    assert rc2 == 0 and out2 == out, err2


def test_garbage_is_never_fatal(tmp_path, logfile, corpus):
    rnd = random.Random(5)
    junk = bytearray()
    for i in range(300):
        junk += bytes(rnd.randrange(256) for _ in range(rnd.randrange(200)))
        junk += b"\n"
    junk += b"sendwrap: pass ip=1 port=1 delay=5.000 waited=" + \
        b"9" * 20000 + b"\n"           # a line past any limit: malformed
    junk += b"\0\0\0sendwrap: pass\n"
    path = tmp_path / "junk.log"
    path.write_bytes(open(logfile, "rb").read() + bytes(junk))
    rc, out, err = report(["--report-format", "csv", str(path)])
    assert rc == 0, err
    rows = read_csv(out)
    sendwrap = sum(sum(x[v] for v in VERDICTS) for x in corpus.per_day.values())
    assert rows[("lines", "total", "sendwrap", "")][0] == str(sendwrap)
    assert rows[("verdicts", "total", "pass", "")][0] == \
        str(corpus.total()["pass"])
    read = int(rows[("lines", "total", "read", "")][0])
    assert read == len(corpus.lines) + junk.count(b"\n")
    assert int(rows[("lines", "total", "malformed", "")][0]) >= \
        corpus.malformed + 1


def test_a_file_that_cannot_be_read(tmp_path, logfile, corpus):
    missing = str(tmp_path / "no-such.log")
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(b"sendwrap: hangup ip=1.2.3.4 port=1 "
                                  b"after=1.000 how=eof\n" * 50)[:-12])
    rc, out, err = report(["--report-format", "csv", missing, logfile,
                           str(bad)])
    assert rc == 111
    assert missing in err and "No such file" in err, err
    assert str(bad) in err, err
    rows = read_csv(out)
    # the readable file is reported whole
    assert int(rows[("verdicts", "total", "pass", "")][0]) == \
        corpus.total()["pass"]


def test_report_options_need_report(plain):
    rc, out, err = plain(["--by", "week", "/bin/true"])
    assert rc == 100 and "needs --report" in err
    rc, out, err = plain(["--report", "--report-format", "xml"])
    assert rc == 100 and "--report-format" in err


def test_a_million_lines_in_under_ten_seconds(tmp_path):
    """The rate: 1 000 000 syslog lines (a day of a busy MX)."""
    n = 50000 if VALGRIND else 1000000
    day = (datetime.datetime.now(datetime.timezone.utc) -
           datetime.timedelta(days=1)).strftime("%b %e")
    one = ("%s 10:00:00 mx sendwrap[1234]: early ip=203.0.113.%%d port=4 "
           "after=0.%%03d bytes=18 first=\"EHLO bot\\r\\n\" action=reject\n"
           "%s 10:00:01 mx sendwrap[1235]: pass ip=198.51.100.%%d port=5 "
           "delay=5.000 waited=5.0%%02d\n" % (day, day))
    path = tmp_path / "big.log"
    with open(path, "w") as f:
        for i in range(n // 2):
            f.write(one % (i % 256, i % 1000, i % 256, i % 100))
    t0 = time.monotonic()
    rc, out, err = report(["--report-format", "csv", str(path)],
                          timeout=120)
    took = time.monotonic() - t0
    assert rc == 0, err
    rows = read_csv(out)
    assert rows[("verdicts", "total", "early", "")][0] == str(n // 2)
    assert rows[("verdicts", "total", "pass", "")][0] == str(n // 2)
    if not VALGRIND:
        assert took < 10.0, "%d lines took %.1f s" % (n, took)


# ------------------------------------------------------------ time per date

def dated_lines(n, descending):
    """n hangup lines, each of a date of its own (ISO, as s6-log stamps
    them), from 1500-01-01 on, in ascending or descending order."""
    first = datetime.date(1500, 1, 1).toordinal()
    days = range(first, first + n)
    if descending:
        days = reversed(days)
    iso = datetime.date.fromordinal
    return "".join("%s 12:00:00  sendwrap: hangup ip=192.0.2.1 port=1 "
                   "after=1.000 how=eof\n" % iso(d).isoformat()
                   for d in days).encode()


def children_cpu():
    """User and system time of the waited-for children so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def test_time_is_linear_in_distinct_dates_whatever_their_order(tmp_path):
    """Whoever writes lines into the log cannot stall the report by the
    order of their dates: 200 000 distinct dates take about as long in
    descending order as in ascending, and report the same."""
    n = 20000 if VALGRIND else 200000
    paths = {}
    for order in ("ascending", "descending"):
        paths[order] = tmp_path / order
        paths[order].write_bytes(dated_lines(n, order == "descending"))
    took = {"ascending": [], "descending": []}
    outs = {}
    # CPU time, the best of three, interleaved: the machine is shared
    for _ in range(3):
        for order, path in paths.items():
            t0 = time.monotonic()
            cpu0 = children_cpu()
            rc, outs[order], err = report([str(path)])
            took[order].append(children_cpu() - cpu0)
            assert rc == 0, err
            if not VALGRIND:
                assert time.monotonic() - t0 < 10.0, order
    assert outs["ascending"] == outs["descending"]
    assert "%d connections" % n in outs["ascending"]
    assert "from 1500-01-01 to " in outs["ascending"]
    lines = outs["ascending"].splitlines()
    assert len([l for l in lines if l[:4].isdigit() and l[4] == "-"]) == n
    asc, desc = min(took["ascending"]), min(took["descending"])
    assert max(asc, desc) < 2 * min(asc, desc), (asc, desc)


# ------------------------------------------------------------ greylisting

GREY_FILE_1 = """\
2026-11-30T00:06:00+00:00 mx sendwrap[9]: pass ip=2001:db8::5 port=4101 \
delay=5.000 waited=5.002 grey=420.000 reason=delay
"""
# Networks: A .1 first, too soon, passed (360 s); B .2 first, a failed
# test let go on (-x pass), never back; C .3 passed (900 s) before its
# first attempt, never back after it; D 2001:db8::5 first, back in the
# file read first (the next day); E .5 first, too soon (came back, never
# passed); F 2001:db8::6 first, 2001:db8::7 (the same /64) passed (300 s);
# G .9 first, undated, never back; H .10 first, non-smtp let go on, never
# back; I .11 first, passed (305 s); J: no address known.  A trapped
# client let go on after a bare newline.
GREY_FILE_2 = """\
2026-11-29T09:00:00+00:00 mx sendwrap[1]: pass ip=192.0.2.3 port=4000 \
delay=5.000 waited=5.001 grey=900.000
2026-11-29T10:00:00+00:00 mx sendwrap[2]: grey ip=192.0.2.1 port=4001 \
first=yes age=0.000 helo="a.example" from="<x@a.example>" \
rcpt="<y@b.example>" rcpts=1 quit=yes end=quit
2026-11-29T10:00:05+00:00 mx sendwrap[3]: grey ip=192.0.2.2 port=4002 \
first=yes age=0.000 helo="b \\"q\\"" from="" rcpt="" rcpts=0 quit=no \
end=client-closed test=pipelining stress=1
2026-11-29T10:01:00+00:00 mx sendwrap[4]: grey ip=192.0.2.1 port=4003 \
first=no age=60.000 helo="a.example" from="<x@a.example>" \
rcpt="<y@b.example>" rcpts=2 quit=yes end=quit dnsbl=a:1 score=1
2026-11-29T10:06:00+00:00 mx sendwrap[5]: pass ip=192.0.2.1 port=4004 \
delay=5.000 waited=5.001 grey=360.000
2026-11-29T12:00:00+00:00 mx sendwrap[6]: grey ip=192.0.2.3 port=4005 \
first=yes age=0.000 helo="c" from="<c@c.example>" rcpt="<d@b.example>" \
rcpts=1 quit=no end=max-time
2026-11-29T23:59:00+00:00 mx sendwrap[7]: grey ip=2001:db8::5 port=4006 \
first=yes age=0.000 helo="d" from="<d@d.example>" rcpt="<e@b.example>" \
rcpts=3 quit=yes end=quit
2026-11-29T13:00:00+00:00 mx sendwrap[8]: grey ip=192.0.2.5 port=4007 \
first=yes age=0.000 helo="e" from="<e@e.example>" rcpt="<e@b.example>" \
rcpts=1 quit=yes end=quit
2026-11-29T13:00:30+00:00 mx sendwrap[8]: grey ip=192.0.2.5 port=4008 \
first=no age=30.000 helo="e" from="<e@e.example>" rcpt="<e@b.example>" \
rcpts=1 quit=no end=reset
2026-11-29T14:00:00+00:00 mx sendwrap[9]: grey ip=2001:db8::6 port=4009 \
first=yes age=0.000 helo="f" from="<f@f.example>" rcpt="<f@b.example>" \
rcpts=1 quit=yes end=quit
2026-11-29T14:05:00+00:00 mx sendwrap[9]: pass ip=2001:db8::7 port=4010 \
delay=5.000 waited=5.003 grey=300.000
2026-11-29T15:00:00+00:00 mx sendwrap[10]: grey ip=192.0.2.10 port=4011 \
first=yes age=0.000 helo="GET / HTTP/1.1" from="" rcpt="" rcpts=0 \
quit=no end=max-commands test=non-smtp
2026-11-29T16:00:00+00:00 mx sendwrap[11]: grey ip=192.0.2.11 port=4012 \
first=yes age=0.000 helo="i" from="<i@i.example>" rcpt="<i@b.example>" \
rcpts=1 quit=yes end=quit
2026-11-29T16:05:05+00:00 mx sendwrap[11]: pass ip=192.0.2.11 port=4013 \
delay=5.000 waited=5.000 grey=305.000
2026-11-29T17:00:00+00:00 mx sendwrap[12]: grey ip=unknown port=unknown \
first=yes age=0.000 helo="j" from="" rcpt="" rcpts=0 quit=no end=error
2026-11-29T18:00:00+00:00 mx sendwrap[13]: trapped ip=192.0.2.20 port=5000 \
age=0.000 trap="spamtrap@b.example" helo="t" from="<t@t.example>" rcpts=2 \
quit=yes end=quit
2026-11-29T18:10:00+00:00 mx sendwrap[14]: trapped ip=192.0.2.20 port=5001 \
age=600.000 trap="SpamTrap@b.example" helo="t" from="" rcpts=1 quit=no \
end=client-closed test=bare-newline
2026-11-29T19:00:00+00:00 mx sendwrap[15]: pipelining ip=192.0.2.30 \
port=5002 after=0.812 commands=1 line="MAIL FROM:<a@x.example>" \
action=reject
2026-11-29T19:00:01+00:00 mx sendwrap[16]: non-smtp ip=192.0.2.31 \
port=5003 after=0.004 commands=0 line="GET / HTTP/1.0" action=tempfail
2026-11-29T19:00:02+00:00 mx sendwrap[17]: non-smtp ip=192.0.2.32 \
port=5004 after=1.500 commands=2 line="Host: b.example" action=drop
2026-11-29T19:00:03+00:00 mx sendwrap[18]: bare-newline ip=192.0.2.33 \
port=5005 after=2.000 commands=1 line="EHLO x" action=reject
2026-11-29T20:00:00+00:00 mx sendwrap[19]: grey ip=192.0.2.40 port=1 \
first=yes age=0.000 helo="" from="" rcpt="" quit=yes end=quit
2026-11-29T20:00:00+00:00 mx sendwrap[19]: grey ip=192.0.2.40 port=1 \
first=maybe age=0.000 helo="" from="" rcpt="" rcpts=0 quit=yes end=quit
2026-11-29T20:00:00+00:00 mx sendwrap[19]: grey ip=192.0.2.40 port=1 \
first=yes age=0.000 helo="" from="" rcpt="" rcpts=0 quit=yes end=bye
2026-11-29T20:00:00+00:00 mx sendwrap[19]: grey ip=192.0.2.40 port=1 \
first=yes age=0.000 helo="" from="" rcpt="" rcpts=0 quit=yes end=quit \
test=tls
2026-11-29T20:00:00+00:00 mx sendwrap[19]: pipelining ip=192.0.2.40 port=1 \
after=0.100 commands=1 line="x" action=pass
2026-11-29T20:00:00+00:00 mx sendwrap[19]: trapped ip=192.0.2.40 port=1 \
age=0.000 helo="t" from="" rcpts=1 quit=no end=quit
sendwrap: grey ip=192.0.2.9 port=4014 first=yes age=0.000 helo="g" \
from="<g@g.example>" rcpt="<g@b.example>" rcpts=1 quit=yes end=quit
"""
GREY = {
    "first": 10, "passed": 5, "median": "360.000", "p90": "900.000",
    "never": 4, "followed": 9, "untracked": 1, "too-soon": 2, "trapped": 2,
    "malformed": 6,
    # (test, action): count
    "tests": {("pipelining", "reject"): 1, ("pipelining", "pass"): 1,
              ("non-smtp", "tempfail"): 1, ("non-smtp", "drop"): 1,
              ("non-smtp", "pass"): 1, ("bare-newline", "reject"): 1,
              ("bare-newline", "pass"): 1},
    # greylist dialog connections by day
    "days": {"2026-11-29": 17, "undated": 1},
}


@pytest.fixture
def grey_logs(tmp_path):
    one, two = tmp_path / "mail.log", tmp_path / "mail.log.1"
    one.write_text(GREY_FILE_1)
    two.write_text(GREY_FILE_2)
    return [str(one), str(two)]     # newest first, as logrotate names them


def test_greylisting_in_csv(grey_logs):
    rc, out, err = report(["--report-format", "csv"] + grey_logs)
    assert rc == 0, err
    rows = read_csv(out)
    g = GREY
    assert rows[("lines", "total", "malformed", "")][0] == str(g["malformed"])
    assert rows[("grey", "total", "first", "")][0] == str(g["first"])
    assert rows[("grey", "total", "passed", "")] == (
        str(g["passed"]), pct(g["passed"], g["first"]))
    assert rows[("grey", "total", "passed", "median")][0] == g["median"]
    assert rows[("grey", "total", "passed", "p90")][0] == g["p90"]
    assert rows[("grey", "total", "never", "")] == (
        str(g["never"]), pct(g["never"], g["followed"]))
    for name in ("followed", "untracked", "too-soon"):
        assert rows[("grey", "total", name, "")][0] == str(g[name]), name
    for test in ("pipelining", "non-smtp", "bare-newline"):
        for action in ACTIONS:
            assert rows[("grey", "total", test, action)][0] == \
                str(g["tests"].get((test, action), 0)), (test, action)
    # each greylist verdict is a connection of its day
    day = {"grey": 11, "trapped": 2, "pipelining": 1, "non-smtp": 2,
           "bare-newline": 1, "pass": 4}
    for v, n in day.items():
        assert rows[("verdicts", "2026-11-29", v, "")][0] == str(n), v
    assert rows[("verdicts", "2026-11-29", "connections", "")][0] == "21"
    assert rows[("verdicts", "2026-11-30", "pass", "")][0] == "1"
    assert rows[("verdicts", "undated", "grey", "")][0] == "1"
    assert rows[("verdicts", "total", "stressed", "")][0] == "1"


def test_greylisting_in_text(grey_logs):
    rc, out, err = report(grey_logs)
    assert rc == 0, err
    g = GREY
    sect = out[out.index("\nGreylisting\n"):]
    assert "first attempts %s" % g["first"] in " ".join(sect.split())
    lines = {l.split("  ")[1].strip(): l.split() for l in sect.splitlines()
             if l.startswith("  ") and len(l.split("  ")) > 1}
    came = lines["came back and passed"]
    assert came[4:6] == [str(g["passed"]), "50.0%"], came
    assert "median %s s, 90th percentile %s s" % (g["median"], g["p90"]) \
        in sect
    never = lines["never came back"]
    assert never[3:6] == [str(g["never"]), "44.4%", "of"], never
    assert "of %d first attempts followed" % g["followed"] in sect
    assert lines["retries too soon"][-1] == str(g["too-soon"])
    assert lines["trapped"][-1] == str(g["trapped"])
    assert "(1 lines of no address" in sect
    head = next(l for l in sect.splitlines() if "failed tests" in l)
    assert head.split()[-4:] == ACTIONS
    for test in ("pipelining", "non-smtp", "bare-newline"):
        row = next(l for l in sect.splitlines()
                   if l.split()[:1] == [test]).split()
        assert row[1:] == [str(g["tests"].get((test, a), 0))
                           for a in ACTIONS], row
    # the verdict table's greylist column: the dialog's connections
    head = next(l for l in out.splitlines() if l.startswith("date "))
    cols = head.split()[1:]
    assert "greylist" in cols
    for label, n in g["days"].items():
        row = next(l for l in out.splitlines() if l.startswith(label + " "))
        assert row.split()[1:][cols.index("greylist")] == str(n), row


def test_greylisting_in_prometheus(grey_logs):
    from prometheus_client import parser
    rc, out, err = report(["--report-format", "prometheus"] + grey_logs)
    assert rc == 0, err
    fams = {f.name: f for f in parser.text_string_to_metric_families(out)}
    g = GREY

    def one(name):
        assert fams[name].type == "counter", name
        return fams[name].samples[0].value

    assert one("sendwrap_grey_first_attempts") == g["first"]
    assert one("sendwrap_grey_passed") == g["passed"]
    assert one("sendwrap_grey_never_back") == g["never"]
    assert one("sendwrap_grey_followed") == g["followed"]
    assert one("sendwrap_grey_untracked") == g["untracked"]
    assert one("sendwrap_grey_too_soon") == g["too-soon"]
    assert one("sendwrap_grey_trapped") == g["trapped"]
    tests = {(s.labels["test"], s.labels["action"]): s.value
             for s in fams["sendwrap_grey_failed_tests"].samples}
    assert len(tests) == 12
    for key, n in tests.items():
        assert n == g["tests"].get(key, 0), key
    back = fams["sendwrap_grey_back_seconds"]
    assert back.type == "summary"
    got = {(s.name, s.labels.get("quantile")): s.value for s in back.samples}
    assert got[("sendwrap_grey_back_seconds", "0.5")] == float(g["median"])
    assert got[("sendwrap_grey_back_seconds", "0.9")] == float(g["p90"])
    assert got[("sendwrap_grey_back_seconds_count", None)] == g["passed"]
    assert got[("sendwrap_grey_back_seconds_sum", None)] == \
        360 + 900 + 420 + 300 + 305
    conns = {s.labels["verdict"]: s.value
             for s in fams["sendwrap_connections"].samples
             if s.labels["verdict"] in ("grey", "trapped", "pipelining",
                                        "non-smtp", "bare-newline")}
    assert conns == {"grey": 12, "trapped": 2, "pipelining": 1,
                     "non-smtp": 2, "bare-newline": 1}


def test_no_greylisting_section_without_its_lines(logfile):
    for fmt in ("text", "csv", "prometheus"):
        rc, out, err = report(["--report-format", fmt, logfile])
        assert rc == 0, err
        assert "Greylisting" not in out and "grey,total" not in out
        assert "sendwrap_grey_" not in out and "greylist" not in out, fmt


def greylisted_session(workdir, log, src, lines):
    """One connection from src to sendwrap --greylist (as inetd runs it:
    the socket its standard input and output), each of lines sent after
    the reply to the one before (the first after the greeting); what the
    client got."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    cli = socket.socket()
    cli.bind((src, 0))
    cli.connect(srv.getsockname())
    conn, _ = srv.accept()
    srv.close()
    args = ["-d", "300ms", "-c", str(workdir / "cache.mdb"), "--greylist",
            "--grey-pass", "1s", "-l", "stderr", "/bin/true"]
    proc = subprocess.Popen(command(str(workdir), args), stdin=conn,
                            stdout=conn, stderr=log,
                            env=make_env(str(workdir), {}))
    conn.close()
    cli.settimeout(10 * (20 if VALGRIND else 1))
    got = b""
    try:
        for line in lines:      # each after the reply to the one before
            while got.count(b"\r\n") < lines.index(line) + 1:
                data = cli.recv(4096)
                assert data, got
                got += data
            cli.sendall(line)
        while True:
            data = cli.recv(4096)
            if not data:
                break
            got += data
    finally:
        cli.close()
        proc.wait(30)
    return got


def test_greylisting_of_real_sessions(tmp_path):
    """The lines sendwrap --greylist writes, as it writes them, reported:
    a first attempt that comes back and passes, one that never does, a
    client failing the non-smtp test."""
    path = tmp_path / "sendwrap.log"
    with open(path, "w") as log:
        got = greylisted_session(tmp_path, log, "127.0.0.2", [
            b"EHLO a.example\r\n", b"MAIL FROM:<x@a.example>\r\n",
            b"RCPT TO:<y@b.example>\r\n", b"DATA\r\n", b"QUIT\r\n"])
        t0 = time.monotonic()   # the first attempt is older than this
        assert b"451 4.7.1" in got, got
        greylisted_session(tmp_path, log, "127.0.0.3", [b"GET / HTTP/1.0\r\n"])
        greylisted_session(tmp_path, log, "127.0.0.4", [b"QUIT\r\n"])
        time.sleep(max(0.0, 1.1 - (time.monotonic() - t0)))
        assert greylisted_session(tmp_path, log, "127.0.0.2", []) == b""
    text = path.read_text()
    check_tools(str(tmp_path), text)
    ages = [round(float(w[5:]) * 1000) for w in text.split()
            if w.startswith("grey=")]
    assert len(ages) == 1 and 1000 <= ages[0], text
    rc, out, err = report(["--report-format", "csv", str(path)])
    assert rc == 0, err
    rows = read_csv(out)
    assert rows[("lines", "total", "read", "")][0] == "4", text
    assert rows[("lines", "total", "malformed", "")][0] == "0", text
    assert rows[("grey", "total", "first", "")][0] == "2", text
    assert rows[("grey", "total", "passed", "")] == ("1", "50.0"), text
    assert rows[("grey", "total", "passed", "median")][0] == secs(ages[0])
    assert rows[("grey", "total", "never", "")] == ("1", "50.0"), text
    assert rows[("grey", "total", "non-smtp", "reject")][0] == "1", text
    assert rows[("verdicts", "total", "connections", "")][0] == "4"


# ------------------------------------------------------------ forwarded

# Connections of three periods, some relayed (--forward); the forwarded
# lines come after, and one session ends past midnight.
FWD_BASE = """\
2026-11-29T10:00:00+00:00 mx sendwrap[1]: pass ip=192.0.2.1 port=4001 \
delay=5.000 waited=5.002
2026-11-29T10:05:00+00:00 mx sendwrap[2]: cached ip=192.0.2.2 port=4002 \
age=3600.000
2026-11-29T10:06:00+00:00 mx sendwrap[3]: allow ip=10.0.0.5 port=4003 \
reason=allowlist rule=10.0.0.0/8
2026-11-29T10:07:00+00:00 mx sendwrap[4]: early ip=203.0.113.9 port=4004 \
after=0.400 bytes=6 first="EHLO x" action=reject
2026-11-29T11:00:00+00:00 mx sendwrap[5]: cached ip=192.0.2.3 port=4005 \
age=60.000
2026-11-29T11:00:00+00:00 mx sendwrap[5]: error ip=192.0.2.3 port=4005 \
cannot forward to 127.0.0.1:2525: Connection refused
2026-11-29T23:59:50+00:00 mx sendwrap[6]: pass ip=2001:db8::9 port=4006 \
delay=5.000 waited=5.001
2026-11-30T08:00:00+00:00 mx sendwrap[7]: hangup ip=198.51.100.4 \
port=4007 after=2.000 how=eof
2026-11-30T09:00:00+00:00 mx sendwrap[8]: pass ip=192.0.2.7 port=4008 \
delay=5.000 waited=5.003
sendwrap: cached ip=192.0.2.8 port=4009 age=10.000
sendwrap: listening on=127.0.0.1:25 clients=10 children=4 perip=2
"""
FWD_LINES = """\
2026-11-29T10:00:42+00:00 mx sendwrap[1]: forwarded ip=192.0.2.1 \
port=4001 in=2048 out=1500 length=37.250 end=mta-closed
2026-11-29T10:05:12+00:00 mx sendwrap[2]: forwarded ip=192.0.2.2 \
port=4002 in=1048576 out=734 length=12.034 end=client-closed
2026-11-29T10:16:00+00:00 mx sendwrap[3]: forwarded ip=10.0.0.5 \
port=4003 in=52428800 out=2210 length=540.000 end=idle
2026-11-29T11:00:00+00:00 mx sendwrap[5]: forwarded ip=192.0.2.3 \
port=4005 in=0 out=0 length=0.000 end=unreachable
2026-11-30T00:00:20+00:00 mx sendwrap[6]: forwarded ip=2001:db8::9 \
port=4006 in=900 out=0 length=30.000 end=mta-reset
2026-11-30T09:00:07+00:00 mx sendwrap[8]: forwarded ip=192.0.2.7 \
port=4008 in=310 out=0 length=2.500 end=client-reset
sendwrap: forwarded ip=192.0.2.8 port=4009 in=77 out=66 length=1.000 \
end=client-error
"""
# Each lacks, or bends, one field.
FWD_MALFORMED = """\
2026-11-29T12:00:00+00:00 mx sendwrap[9]: forwarded ip=192.0.2.1 \
port=4001 out=1500 length=37.250 end=mta-closed
2026-11-29T12:00:00+00:00 mx sendwrap[9]: forwarded ip=192.0.2.1 \
port=4001 in=2048 length=37.250 end=mta-closed
sendwrap: forwarded ip=192.0.2.1 port=4001 in=2048 out=1500 end=mta-closed
sendwrap: forwarded ip=192.0.2.1 port=4001 in=2048 out=1500 length=37.250
sendwrap: forwarded ip=192.0.2.1 in=2048 out=1500 length=37.250 \
end=mta-closed
sendwrap: forwarded port=4001 in=2048 out=1500 length=37.250 end=mta-closed
sendwrap: forwarded ip=192.0.2.1 port=4001 in=2k out=1500 length=37.250 \
end=mta-closed
sendwrap: forwarded ip=192.0.2.1 port=4001 in=2048 \
out=18446744073709551616 length=37.250 end=mta-closed
sendwrap: forwarded ip=192.0.2.1 port=4001 in=2048 out=1500 length=37s \
end=mta-closed
sendwrap: forwarded ip=192.0.2.1 port=4001 in=2048 out=1500 length=37.250 \
end=closed
sendwrap: forwarded ip=192.0.2.1 port=4001 in=2048 out=1500 length=37.250 \
end=mta-closed extra
"""
ENDS = ["client-closed", "mta-closed", "client-reset", "mta-reset",
        "client-error", "mta-error", "idle", "unreachable", "error"]
# Worked out by hand from the lines above.
FWD = {
    "sessions": 7, "unreachable": 1, "malformed": 11,
    # unreachable, and mta-reset with nothing from the MTA: told 421
    "deferred": 2,
    "ends": {"mta-closed": 1, "client-closed": 1, "idle": 1,
             "unreachable": 1, "mta-reset": 1, "client-reset": 1,
             "client-error": 1},
    "in": 53480711, "out": 4510, "in_text": "53.5 MB", "out_text": "4.5 kB",
    # the six that reached the MTA: 1.000 2.500 12.034 30.000 37.250 540
    "reached": 6, "median": "12.034", "p90": "37.250", "max": "540.000",
    "length_sum": 622.784,
    # period: (sessions, unreachable, in, out, connections)
    "periods": {"2026-11-29": (4, 1, 53479424, 4444, 6),
                "2026-11-30": (2, 0, 1210, 0, 2),
                "undated": (1, 0, 77, 66, 1),
                "total": (7, 1, 53480711, 4510, 9)},
}


def fwd_log(tmp_path, with_forwarded=True):
    """The base lines, with the forwarded and malformed lines mixed in
    (each forwarded line after its connection's)."""
    text = FWD_BASE
    if with_forwarded:
        base = FWD_BASE.splitlines(keepends=True)
        fwd = FWD_LINES.splitlines(keepends=True)
        bad = FWD_MALFORMED.splitlines(keepends=True)
        text = "".join(base[:2] + fwd[:1] + bad[:6] + base[2:4] + fwd[1:3] +
                       base[4:6] + fwd[3:4] + base[6:8] + fwd[4:5] +
                       bad[6:] + base[8:] + fwd[5:])
        assert sorted(text.splitlines()) == sorted(
            (FWD_BASE + FWD_LINES + FWD_MALFORMED).splitlines())
    path = tmp_path / ("with.log" if with_forwarded else "without.log")
    path.write_text(text)
    return str(path)


def test_forwarded_lines_are_no_connections(tmp_path):
    """Every figure of the connections, csv and text, is the same with
    the forwarded lines as without them."""
    without, with_fwd = fwd_log(tmp_path, False), fwd_log(tmp_path)
    rc, out0, err = report(["--report-format", "csv", without])
    assert rc == 0, err
    rc, out1, err = report(["--report-format", "csv", with_fwd])
    assert rc == 0, err
    rows0, rows1 = read_csv(out0), read_csv(out1)
    same = [k for k in rows0 if k[0] != "lines"]
    assert len([k for k in same if k[0] == "verdicts"]) >= 4 * 20
    for k in same:
        assert rows1[k] == rows0[k], k
    assert rows1[("verdicts", "total", "connections", "")] == ("9", "100.0")
    assert rows1[("verdicts", "total", "error", "")] == ("1", "11.1")
    assert rows1[("lines", "total", "sendwrap", "")] == \
        rows0[("lines", "total", "sendwrap", "")] == ("10", "")
    assert rows1[("lines", "total", "read", "")][0] == str(11 + 7 + 11)
    assert rows1[("lines", "total", "malformed", "")][0] == "11"
    assert rows0[("lines", "total", "forwarded", "")][0] == "0"
    # the text's verdict table: each column of both, row by row
    rc, text0, err = report([without])
    rc, text1, err = report([with_fwd])

    def table(text):
        lines = text.splitlines()
        head = next(l for l in lines if l.startswith("date "))
        rows = lines[lines.index(head) + 1:]
        rows = rows[:next(i for i, l in enumerate(rows)
                          if l.startswith("share ")) + 1]
        return {r.split()[0]: dict(zip(head.split()[1:], r.split()[1:]))
                for r in rows}

    t0, t1 = table(text0), table(text1)
    assert set(t0) == set(t1) == {"2026-11-29", "2026-11-30", "undated",
                                  "total", "share"}
    for label, cols in t0.items():
        assert "forwarded" not in cols
        assert {k: v for k, v in t1[label].items() if k != "forwarded"} \
            == cols, label
    assert t1["total"]["connections"] == "9"
    assert "\n11 lines read: 10 sendwrap verdicts and errors, 1 notices, " \
        "0 malformed" in text0
    assert "\n29 lines read: 10 sendwrap verdicts and errors, 7 forwarded " \
        "sessions, 1 notices, 11 malformed, 0 of other programs\n" in text1
    assert ": 9 connections\n" in text1


def test_forwarded_lines_leave_a_large_report_alone(tmp_path, corpus):
    """The random corpus, a forwarded line after each connection that may
    be relayed: every figure check_figures() checks is as it was."""
    out, n = [], 0
    for line in corpus.lines:
        out.append(line)
        m = re.match(r"(.*?)(pass|cached|allow) ip=(\S+) port=(\d+) ", line)
        if m:
            out.append("%sforwarded ip=%s port=%s in=%d out=%d "
                       "length=%d.%03d end=%s" % (
                           m.group(1), m.group(3), m.group(4), 10 * n, n,
                           n % 300, n % 1000, ENDS[n % len(ENDS)]))
            n += 1
    path = tmp_path / "mail.log"
    path.write_text("".join(l + "\n" for l in out))
    rc, text, err = report(["--report-format", "csv", str(path)])
    assert rc == 0, err
    rows = read_csv(text)
    c = copy.copy(corpus)
    c.lines = out
    check_figures(rows, c)
    assert rows[("lines", "total", "forwarded", "")][0] == str(n)
    assert rows[("forwarded", "total", "sessions", "")][0] == str(n)
    assert n > 1000


def test_forwarded_in_csv(tmp_path):
    rc, out, err = report(["--report-format", "csv", fwd_log(tmp_path)])
    assert rc == 0, err
    rows = read_csv(out)
    f = FWD
    assert rows[("lines", "total", "forwarded", "")][0] == str(f["sessions"])
    assert rows[("lines", "total", "malformed", "")][0] == str(f["malformed"])
    for label, (n, unreach, b_in, b_out, conns) in f["periods"].items():
        assert rows[("forwarded", label, "sessions", "")] == (
            str(n), pct(n, conns)), label
        assert rows[("forwarded", label, "unreachable", "")] == (
            str(unreach), pct(unreach, n)), label
        assert rows[("forwarded", label, "in", "bytes")][0] == str(b_in)
        assert rows[("forwarded", label, "out", "bytes")][0] == str(b_out)
    for end in ENDS:
        k = f["ends"].get(end, 0)
        assert rows[("forwarded", "total", "end", end)] == (
            str(k), pct(k, f["sessions"])), end
    assert rows[("forwarded", "total", "deferred", "")] == (
        str(f["deferred"]), pct(f["deferred"], f["sessions"]))
    assert rows[("forwarded", "total", "length", "count")][0] == \
        str(f["reached"])
    for q in ("median", "p90", "max"):
        assert rows[("forwarded", "total", "length", q)][0] == f[q], q


def test_forwarded_in_text(tmp_path):
    rc, out, err = report([fwd_log(tmp_path)])
    assert rc == 0, err
    f = FWD
    sect = out[out.index("\nForwarded to the MTA\n"):]
    words = " ".join(sect.split())
    assert "sessions %d could not reach it (unreachable) %d %s%% of " \
        "sessions told 421 4.3.0 to come back later %d %s%% of sessions " \
        "reached the MTA %d their length: median %s s, 90th percentile " \
        "%s s, max %s s bytes from clients to the MTA %s bytes from the " \
        "MTA to clients %s " % (
            f["sessions"], f["unreachable"],
            pct(f["unreachable"], f["sessions"]), f["deferred"],
            pct(f["deferred"], f["sessions"]), f["reached"], f["median"],
            f["p90"], f["max"], f["in_text"], f["out_text"]) in words, sect
    for end in ENDS:
        row = next(l for l in sect.splitlines() if l.split()[:1] == [end])
        k = f["ends"].get(end, 0)
        assert row.split()[1:] == [str(k), pct(k, f["sessions"]) + "%"], row
    # the verdict table's column: the sessions of each period
    lines = out.splitlines()
    head = next(l for l in lines if l.startswith("date "))
    cols = head.split()[1:]
    assert cols[-2:] == ["forwarded", "stressed"], head
    for label, (n, _, _, _, conns) in f["periods"].items():
        row = next(l for l in lines if l.startswith(label + " ")).split()
        assert row[1:][cols.index("forwarded")] == str(n), row
        assert row[1] == str(conns), row
    share = next(l for l in lines if l.startswith("share ")).split()
    assert share[1:][cols.index("forwarded")] == pct(7, 9) + "%"


def test_forwarded_in_prometheus(tmp_path):
    from prometheus_client import parser
    rc, out, err = report(["--report-format", "prometheus",
                           fwd_log(tmp_path)])
    assert rc == 0, err
    fams = {fam.name: fam
            for fam in parser.text_string_to_metric_families(out)}
    f = FWD
    sessions = fams["sendwrap_forwarded_sessions"]
    assert sessions.type == "counter"
    got = {s.labels["end"]: s.value for s in sessions.samples}
    assert got == {end: f["ends"].get(end, 0) for end in ENDS}
    assert fams["sendwrap_forwarded_deferred"].samples[0].value == \
        f["deferred"]
    got = {s.labels["direction"]: s.value
           for s in fams["sendwrap_forwarded_bytes"].samples}
    assert got == {"in": f["in"], "out": f["out"]}
    length = fams["sendwrap_forwarded_length_seconds"]
    assert length.type == "summary"
    got = {(s.name, s.labels.get("quantile")): s.value
           for s in length.samples}
    assert got == {
        ("sendwrap_forwarded_length_seconds", "0.5"): float(f["median"]),
        ("sendwrap_forwarded_length_seconds", "0.9"): float(f["p90"]),
        ("sendwrap_forwarded_length_seconds", "1"): float(f["max"]),
        ("sendwrap_forwarded_length_seconds_sum", None): f["length_sum"],
        ("sendwrap_forwarded_length_seconds_count", None): f["reached"]}
    kinds = {s.labels["kind"]: s.value
             for s in fams["sendwrap_log_lines"].samples}
    assert kinds["forwarded"] == f["sessions"]
    assert kinds["malformed"] == f["malformed"]
    assert kinds["sendwrap"] == 10
    conns = {s.labels["verdict"]: s.value
             for s in fams["sendwrap_connections"].samples
             if "reason" not in s.labels and "action" not in s.labels}
    assert conns["pass"] == 3 and conns["cached"] == 3
    assert conns["hangup"] == 1 and "forwarded" not in conns
    assert fams["sendwrap_errors"].samples[0].value == 1


def test_no_forwarded_section_without_its_lines(logfile):
    for fmt in ("text", "csv", "prometheus"):
        rc, out, err = report(["--report-format", fmt, logfile])
        assert rc == 0, err
        assert "Forwarded" not in out and "forwarded" not in out.replace(
            "lines,total,forwarded,,0,", "").replace(
            'sendwrap_log_lines_total{kind="forwarded"} 0', ""), fmt


def test_forwarded_of_real_sessions(tmp_path):
    """The lines the listener writes as it relays, reported: two
    sessions with a stand-in daemon, one to a daemon that is down."""
    from test_forward import DaemonMTA, session
    from test_listener import Listener
    daemon = DaemonMTA()
    down = socket.socket()
    down.bind(("127.0.0.1", 0))          # bound, never listening: refused
    lsts = [Listener(tmp_path / "up", ["-d", "0", "--forward",
                                       daemon.target()]),
            Listener(tmp_path / "down", ["-d", "0", "--forward",
                                         "127.0.0.1:%d" %
                                         down.getsockname()[1]])]
    try:
        sent = [b"EHLO a.example\r\n", b"EHLO b.example\r\nNOOP\r\n"]
        for i, lines in enumerate(sent):
            c = lsts[0].connect(source="127.0.0.%d" % (20 + i))
            session(c, lines.splitlines(keepends=True))
            c.close()
        c = lsts[1].connect()
        assert c.read_all().startswith(b"421 4.3.0 ")
        lsts[0].wait_for("forwarded", 2)
        lsts[1].wait_for("forwarded", 1)
    finally:
        for lst in lsts:
            lst.stop()
        daemon.stop()
        down.close()
    logs = [str(lst.log_path) for lst in lsts]
    rc, out, err = report(["--report-format", "csv"] + logs)
    assert rc == 0, err
    rows = read_csv(out)
    text = lsts[0].text() + lsts[1].text()
    assert rows[("lines", "total", "malformed", "")][0] == "0", text
    assert rows[("lines", "total", "forwarded", "")][0] == "3", text
    assert rows[("verdicts", "total", "connections", "")][0] == "3", text
    assert rows[("verdicts", "total", "allow", "")][0] == "3", text
    assert rows[("forwarded", "total", "sessions", "")][0] == "3"
    assert rows[("forwarded", "total", "unreachable", "")][0] == "1"
    # Whose end of input came first is a race: the client closes as soon
    # as it has the 221, and the daemon closes after sending it.
    ends = [int(rows.get(("forwarded", "total", "end", e), ["0"])[0])
            for e in ("mta-closed", "client-closed")]
    assert sum(ends) == 2, ends
    assert rows[("forwarded", "total", "deferred", "")][0] == "1"
    assert rows[("forwarded", "total", "in", "bytes")][0] == str(
        sum(len(s) + len(b"QUIT\r\n") for s in sent))
    replies = [b"220 daemon\r\n" + b"250 ok\r\n" * s.count(b"\n") +
               b"221 bye\r\n" for s in sent]
    assert rows[("forwarded", "total", "out", "bytes")][0] == str(
        sum(len(r) for r in replies))
    assert rows[("forwarded", "total", "length", "count")][0] == "2"
