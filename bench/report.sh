#!/usr/bin/env bash
# bench/report.sh - how fast sendwrap --report reads logs: 1 000 000
# lines in each form a busy MX would keep (a syslog file with RFC 3164
# dates, multilog's TAI64N, the syslog file gzip'd as logrotate leaves
# it), each read 3 times; the best and median wall time and the rate.
#
# Then the time per distinct date: 100 000 lines, each of a date of its
# own, in ascending and in descending order (whoever writes lines into a
# log chooses their order), each read 3 times; the best CPU time (user
# and system: the machine is shared), and descending over ascending.
#
#   bench/report.sh            (about 40 s on 2 cores)
#   bench/report.sh OLD        (OLD: another sendwrap binary, e.g. one
#                               built from an earlier commit, measured in
#                               the same run for the distinct dates)
#
# The lines are a mix of the verdicts sendwrap writes most (early,
# pass, hangup, allow, cached) from 65 536 addresses; the generated
# files go to build/bench-report/ (about 130 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
W=$PWD/build/bench-report
mkdir -p "$W"
make -s build/default/sendwrap >&2
exec /usr/bin/python3 - "$W" "$PWD/build/default/sendwrap" "$@" <<'PY'
import datetime, gzip, os, random, statistics, subprocess, sys, time
W, SW, REF = sys.argv[1], sys.argv[2], sys.argv[3:]
N = 1000000
rnd = random.Random(4)


def msg(i):
    ip = "203.0.%d.%d" % (i >> 8 & 255, i & 255)
    r = rnd.random()
    if r < 0.45:
        return ('early ip=%s port=%d after=%d.%03d bytes=18 first="EHLO '
                'bot.example\\r\\n" action=reject' % (ip, i & 65535,
                                                        rnd.randrange(5),
                                                        rnd.randrange(1000)))
    if r < 0.75:
        return "pass ip=%s port=%d delay=5.000 waited=5.%03d" % (
            ip, i & 65535, rnd.randrange(20))
    if r < 0.85:
        return "hangup ip=%s port=%d after=%d.%03d how=eof" % (
            ip, i & 65535, rnd.randrange(5), rnd.randrange(1000))
    if r < 0.95:
        return "allow ip=%s port=%d reason=allowlist rule=10.0.0.0/8" % (
            ip, i & 65535)
    return "cached ip=%s port=%d age=%d.000" % (ip, i & 65535,
                                                rnd.randrange(86400))


t0 = int(time.time()) - 86400
files = {"syslog (RFC 3164)": os.path.join(W, "mail.log"),
         "multilog (TAI64N)": os.path.join(W, "current"),
         "syslog, gzip'd": os.path.join(W, "mail.log.1.gz")}
msgs = [msg(i) for i in range(N)]
with open(files["syslog (RFC 3164)"], "w") as f:
    for i, m in enumerate(msgs):
        f.write(time.strftime("%b %e %H:%M:%S", time.localtime(t0 + i // 12))
                + " mx sendwrap[%d]: %s\n" % (1000 + i % 30000, m))
with open(files["multilog (TAI64N)"], "w") as f:
    for i, m in enumerate(msgs):
        f.write("@%016x%08x sendwrap: %s\n" % (2 ** 62 + 10 + t0 + i // 12,
                                                i, m))
with open(files["syslog (RFC 3164)"], "rb") as f, \
        gzip.open(files["syslog, gzip'd"], "wb", compresslevel=6) as g:
    g.write(f.read())
print("| form | lines | MB read | best s | median s | lines/s (best) |")
print("|---|---|---|---|---|---|")
for name, path in files.items():
    took = []
    for _ in range(3):
        t = time.monotonic()
        r = subprocess.run([SW, "--report", path], stdout=subprocess.PIPE,
                           check=True)
        took.append(time.monotonic() - t)
    assert b"%d lines read" % N in r.stdout, r.stdout[:300]
    print("| %s | %d | %.0f | %.2f | %.2f | %.0f |" % (
        name, N, os.path.getsize(path) / 1e6, min(took),
        statistics.median(took), N / min(took)))


def best_of_3(binary, path):
    """CPU time (user and system): the best of three."""
    took = []
    for _ in range(3):
        p = subprocess.Popen([binary, "--report", path],
                             stdout=subprocess.DEVNULL)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        assert p.returncode == 0, binary
        took.append(ru.ru_utime + ru.ru_stime)
    return min(took)


DATES = 100000
first = datetime.date(1500, 1, 1).toordinal()
dated = {}
for order in ("ascending", "descending"):
    days = range(first, first + DATES)
    dated[order] = os.path.join(W, "dates-" + order)
    with open(dated[order], "w") as f:
        for d in (reversed(days) if order == "descending" else days):
            f.write("%s 12:00:00  sendwrap: hangup ip=192.0.2.1 port=1 "
                    "after=1.000 how=eof\n"
                    % datetime.date.fromordinal(d).isoformat())
print()
print("| binary | distinct dates | ascending, CPU s | descending, CPU s "
      "| descending / ascending |")
print("|---|---|---|---|---|")
for name, binary in [("this", SW)] + [("OLD " + r, r) for r in REF]:
    asc = best_of_3(binary, dated["ascending"])
    desc = best_of_3(binary, dated["descending"])
    print("| %s | %d | %.2f | %.2f | %.2f |" % (name, DATES, asc, desc,
                                               desc / asc))
PY
