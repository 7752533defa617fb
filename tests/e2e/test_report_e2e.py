"""sendwrap --report on logs written by real runs, as an administrator
would have them:

- tcpserver -> sendwrap -> exim, tcpserver's output (sendwrap's stderr
  with it) piped into daemontools' multilog t, which writes TAI64N lines
  to DIR/current; the report is run on that file and on it gzip'd;
- openbsd-inetd -> sendwrap -> exim, sendwrap logging through syslog(3)
  to the test's /dev/log; the datagrams are written to a file as rsyslog
  writes them (RFC 3164 date, host name, tag), among other programs'
  lines.

Each run sees a known set of clients (patient ones, bots, a hang-up, an
allowlisted relay), and the report must count exactly those, on the
right day.
"""
import csv
import gzip
import io
import os
import re
import shutil
import socket
import subprocess
import time

from e2elib import (EXAMPLES, SENDWRAP, SERVER_ENV, Greeting, Inetd,
                    TcpServer,
                    greeted_at_once, refuse_bot, start_group, stop_group,
                    wait_until)

MULTILOG = shutil.which("multilog") or "/usr/bin/multilog"
GNUPLOT = shutil.which("gnuplot") or "/usr/bin/gnuplot"


def report(path, *opts):
    r = subprocess.run([SENDWRAP, "--report", "--report-format", "csv"] +
                       list(opts) + [path], capture_output=True,
                       env=SERVER_ENV, timeout=60)
    assert r.returncode == 0, r.stderr
    rows = list(csv.reader(io.StringIO(r.stdout.decode())))
    return {(x[0], x[1], x[2], x[3]): x[4] for x in rows[1:]}


def today():
    return time.strftime("%Y-%m-%d", time.localtime())


def patient(port, n):
    for _ in range(n):
        g = Greeting("127.0.0.1", port)
        assert g.final().startswith(b"220 "), g.lines
        reply, _ = g.quit()
        assert reply and reply[0].startswith(b"221 "), reply


def hang_up(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    time.sleep(0.2)
    s.close()


def check_counts(rows, day, want):
    for verdict, n in want.items():
        assert rows[("verdicts", day, verdict, "")] == str(n), (verdict, rows)
        assert rows[("verdicts", "total", verdict, "")] == str(n), verdict
    assert rows[("verdicts", "total", "connections", "")] == \
        str(sum(want.values()))
    assert rows[("lines", "total", "malformed", "")] == "0"


def test_report_on_multilog_of_tcpserver(wd, mx):
    logdir = os.path.join(wd, "main")
    r, w = os.pipe()
    ml = start_group([MULTILOG, "t", logdir], stdin=r)
    os.close(r)
    try:
        srv = TcpServer(wd, [SENDWRAP, "-d", "1", "-A", "127.0.0.2", "--"] +
                        mx.argv(), stderr=w)
    finally:
        os.close(w)
    patient(srv.port, 2)
    refuse_bot("127.0.0.1", srv.port, tag="bot1")
    refuse_bot("127.0.0.1", srv.port, tag="bot2")
    hang_up(srv.port)
    greeted_at_once("127.0.0.1", srv.port, mx, source="127.0.0.2")
    # tcpserver -v writes "end" for each child: six ends, then stop it,
    # and multilog ends once the pipe is closed.
    current = os.path.join(logdir, "current")

    def ends():
        try:
            with open(current) as f:
                return len(re.findall(r"tcpserver: end ", f.read())) >= 6
        except FileNotFoundError:
            return False
    wait_until(ends, 20)
    srv.stop()
    ml.wait(timeout=10)
    stop_group(ml)
    text = open(current).read()
    assert re.search(r"^@4[0-9a-f]{23} sendwrap: pass ", text, re.M), text

    rows = report(current)
    check_counts(rows, today(), {"pass": 2, "early": 2, "hangup": 1,
                                 "allow": 1})
    assert rows[("verdicts", "total", "allow", "allowlist")] == "1"
    assert rows[("verdicts", "total", "early", "reject")] == "2"
    # tcpserver's own lines are another program's
    assert int(rows[("lines", "total", "other", "")]) >= 12
    # the same log, rotated and gzip'd by the administrator
    gz = os.path.join(wd, "@4000000000000000.s.gz")
    with open(current, "rb") as f, gzip.open(gz, "wb") as g:
        g.write(f.read())
    assert report(gz) == rows

    # examples/catch-curve.gnuplot draws the catch curve from the CSV
    csv_path, png = os.path.join(wd, "report.csv"), os.path.join(wd, "c.png")
    with open(csv_path, "wb") as f:
        subprocess.run([SENDWRAP, "--report", "--report-format", "csv",
                        current], stdout=f, env=SERVER_ENV, timeout=60,
                       check=True)
    script = os.path.join(EXAMPLES, "catch-curve.gnuplot")
    r = subprocess.run([GNUPLOT, "-c", script, csv_path, png],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    with open(png, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", head
    assert int.from_bytes(head[16:20], "big") == 800      # its width


def test_report_on_inetd_syslog(wd, mx):
    inetd = Inetd(wd, [SENDWRAP, "sendwrap", "-d", "1", "--"] + mx.argv())
    patient(inetd.port, 1)
    refuse_bot("127.0.0.1", inetd.port, tag="bot1")
    refuse_bot("127.0.0.1", inetd.port, tag="bot2")
    hang_up(inetd.port)
    got = inetd.syslog.wait_lines(r"^(pass|early|hangup) ", count=4)
    assert len(got) == 4, inetd.syslog.records
    # what rsyslog writes to /var/log/mail.log: the datagram's date and
    # tag with the host name between them
    lines = []
    with inetd.syslog.lock:
        raw = list(inetd.syslog.raw)
    for data in raw:
        m = re.match(rb"^<\d+>(\w{3} [ \d]\d \d\d:\d\d:\d\d) (.*)$",
                     data.rstrip(b"\n\0"), re.S)
        assert m, data
        lines.append(m.group(1) + b" mx " + m.group(2))
        stamp = m.group(1)
    lines.append(stamp + b" mx exim[77]: 1abcDE-000001-AB <= someone@example")
    lines.append(stamp + b" mx kernel: [ 1.0] eth0: link up")
    path = os.path.join(wd, "mail.log")
    with open(path, "wb") as f:
        f.write(b"".join(l + b"\n" for l in lines))
    rows = report(path)
    check_counts(rows, today(), {"pass": 1, "early": 2, "hangup": 1})
    assert int(rows[("lines", "total", "other", "")]) >= 2
    # the catch curve saw the bots within the first second
    assert rows[("catch", "total", "early", "1.000")] == "2"
