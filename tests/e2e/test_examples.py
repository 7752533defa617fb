"""The example files in examples/, run for real.

Each test reads an example file and adjusts it only in where it listens
(a free loopback port instead of port 25 or a public address), in paths
(sendwrap, the MTA with its test configuration, rules and allowlists,
slots directories) and in the unprivileged user (nobody, which exists on
every Debian machine, for sendwrap, qmaild and the decoys' own user).  A
change of the example that the adjustment no longer fits fails the test
(e2elib.adapt).  The xinetd and systemd files are run by test_xinetd.py
and test_systemd.py, inetd.conf's sendmail line by test_sendmail.py;
test_every_example_is_run checks that no example is left out.

qmail is not in Debian 12: qmail-smtpd.run is run with a small stand-in
for /var/qmail/bin/qmail-smtpd (a Python script that records the
environment it was started with and speaks just enough SMTP), not with
qmail-smtpd itself.  What it shows is the interface: tcpserver's
TCPREMOTEIP and the rules' RELAYCLIENT reach the program sendwrap
executes, unchanged, as qmail-smtpd would read them.
"""

import glob
import json
import os
import pwd
import re
import socket
import subprocess
import sys
import time

from e2elib import (EXAMPLES, SENDWRAP, SERVER_ENV, TCPRULES, Greeting,
                    Inetd, LineReader, RunScript, TcpServer, adapt,
                    assert_delayed, assert_prompt, check_message,
                    compile_tcprules, connect, greeted_at_once, make_message,
                    read_example, refuse_bot, swaks, write_swaks_data)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
from dnsserver import DNS  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ALLOWED_IP = "127.0.0.3"
NOBODY = pwd.getpwnam("nobody")

# The stand-in for qmail-smtpd: records its environment and uid in
# DIR/PID.json, greets, answers QUIT with 221 and anything else with 250.
QMAIL_STANDIN = r'''#!/usr/bin/python3
import json, os, sys
with open(os.path.join(sys.argv[1], "%d.json" % os.getpid()), "w") as f:
    json.dump({"env": dict(os.environ), "uid": os.getuid()}, f)
os.write(1, b"220 standin.sendwrap.test ESMTP qmail-smtpd stand-in\r\n")
buf = b""
while True:
    chunk = os.read(0, 4096)
    if not chunk:
        break
    buf += chunk
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        if line.strip().upper() == b"QUIT":
            os.write(1, b"221 bye\r\n")
            sys.exit(0)
        os.write(1, b"250 ok\r\n")
'''


def private_dir(wd, name, owner=NOBODY):
    d = os.path.join(wd, name)
    os.mkdir(d, 0o700)
    os.chown(d, owner.pw_uid, owner.pw_gid)
    return d


def allowlist_file(wd, text):
    path = os.path.join(wd, "allowlist.%d" % len(os.listdir(wd)))
    with open(path, "w") as f:
        f.write(text)
    return path


def test_every_example_is_run():
    """Every file in examples/ is read by some e2e test."""
    used = set()
    for path in glob.glob(os.path.join(HERE, "test_*.py")):
        with open(path) as f:
            used.update(re.findall(r'read_example\("([^"]+)"\)', f.read()))
        used.update(re.findall(r'EXAMPLES, "([^"]+)"', open(path).read()))
    files = {os.path.relpath(p, EXAMPLES) for p in
             glob.glob(os.path.join(EXAMPLES, "**"), recursive=True)
             if os.path.isfile(p)}
    assert files - used == set(), "examples no test runs: %s" % (
        sorted(files - used))


def test_example_allowlist_and_rules_are_valid():
    """examples/allowlist has no bad line; examples/tcp.smtp compiles and
    gives each network what its comments say."""
    r = subprocess.run([SENDWRAP, "-n", "-a", os.path.join(EXAMPLES,
                                                           "allowlist"),
                        "/bin/true"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r
    assert "allowlist: %s: 6 entries" % os.path.join(EXAMPLES, "allowlist") \
        in r.stdout and "error" not in r.stdout + r.stderr, r

    cdb = compile_tcprules("/tmp", read_example("tcp.smtp"))
    try:
        for ip, env in (("127.0.0.1", 'RELAYCLIENT='),
                        ("10.0.1.9", 'RELAYCLIENT='),
                        ("192.0.2.7", 'GREETDELAY=1'),
                        ("203.0.113.9", None)):
            out = subprocess.run(
                [os.path.join(os.path.dirname(TCPRULES), "tcprulescheck"),
                 cdb], env={"TCPREMOTEIP": ip}, capture_output=True,
                text=True, timeout=30).stdout
            assert "allow connection" in out, (ip, out)
            sets = re.findall(r"set environment variable (\S+)", out)
            assert sets == ([env] if env else []), (ip, out)
    finally:
        subprocess.run(["rm", "-rf", os.path.dirname(cdb)], timeout=30)


def test_tcpserver_run_script(wd, mx):
    """examples/tcpserver.run with examples/tcp.smtp: a loopback client
    (RELAYCLIENT) is greeted by exim at once and delivers; with a rules
    file of no marks, a stranger gets the example's 220- banner and a bot
    is refused after it."""
    script = read_example("tcpserver.run")

    def run(rules):
        return RunScript(wd, lambda port: adapt(script, {
            "0 smtp": "127.0.0.1 %d" % port,
            "/etc/tcp.smtp.cdb": rules,
            "/usr/local/sbin/sendwrap": SENDWRAP,
            "/usr/sbin/exim4 -bs -odq": " ".join(mx.argv()),
        }), name="tcpserver-run")

    own = run(compile_tcprules(wd, read_example("tcp.smtp")))
    raw, headers, body = make_message("tcpserver-run", 1)
    data = write_swaks_data(os.path.join(wd, "m.eml"), raw)
    rc, out, greet, _ = swaks("127.0.0.1", own.port, headers["To"],
                              data_file=data)
    assert rc == 0, out
    assert_prompt(greet)
    assert "220-" not in out and mx.greeting.search(
        re.search(r"^<-  (220 .*)$", out, re.M).group(1).encode()), out
    check_message(mx.messages()[0], headers, body)
    lines = own.wait_lines(r"^allow ")
    assert re.match(r"^allow ip=127\.0\.0\.1 port=\d+ reason=RELAYCLIENT$",
                    lines[0]), own.log()
    assert re.search(r"^tcpserver: ok \d+ ", own.log(), re.M), own.log()

    strangers = run(compile_tcprules(wd, ":allow\n"))
    refuse_bot("127.0.0.1", strangers.port,
               before=b"220-mail.example.org\r\n")
    assert strangers.wait_lines(r"^early ip=127\.0\.0\.1 "), strangers.log()
    assert mx.connections() == 1


def test_inetd_example_exim_lines(wd, mx):
    """examples/inetd.conf's exim lines (commented out there, the sendmail
    line being the active one): the IPv4 line with its banner, and the
    IPv6 (tcp6) line."""
    lines = [l[1:] for l in read_example("inetd.conf").splitlines()
             if l.startswith("#smtp ") and "exim4" in l]
    assert len(lines) == 2 and " tcp6 " in lines[1], lines
    allowlist = allowlist_file(wd, "%s/32\n" % ALLOWED_IP)
    for line, v6 in zip(lines, (False, True)):
        inetd = Inetd(wd, v6=v6, line=adapt(line, {
            "smtp ": "{listen} ",
            "/usr/local/sbin/sendwrap": SENDWRAP,
            "/etc/sendwrap/allowlist": allowlist,
            "/usr/sbin/exim4 -bs -odq": " ".join(mx.argv()),
        }))
        if v6:
            refuse_bot("::1", inetd.port)
        else:
            refuse_bot("127.0.0.1", inetd.port,
                       before=b"220-mail.example.org\r\n")
            greeted_at_once("127.0.0.1", inetd.port, mx, source=ALLOWED_IP)
        recs = inetd.syslog.wait_lines(r"^early ")
        assert len(recs) == 1, inetd.syslog.records
        assert (" ip=::1 " if v6 else " ip=127.0.0.1 ") in recs[0][4], recs
    assert mx.connections() == 1            # the allowlisted client only


def decoy_changes(wd, allowlist, mode):
    """The paths of a decoy line: sendwrap, the allowlist, and a slots
    directory of the mode's (tarpit, tempfail) owned by nobody."""
    return {
        "/usr/local/sbin/sendwrap": SENDWRAP,
        "/etc/sendwrap/allowlist": allowlist,
        "/var/lib/sendwrap/" + mode: private_dir(
            wd, "%s.%d" % (mode, len(os.listdir(wd)))),
    }


def check_slots(slots_dir, taken):
    """Our own host never takes a slot; a stranger took one, a lock file
    made by sendwrap running as nobody."""
    slots = os.listdir(slots_dir)
    if not taken:
        assert slots == []
        return
    assert len(slots) == 1 and re.fullmatch(r"slot\.\d+", slots[0]), slots
    st = os.stat(os.path.join(slots_dir, slots[0]))
    assert (st.st_uid, st.st_mode & 0o777) == (NOBODY.pw_uid, 0o600)


def told_421_at_once(host, port):
    """Our own host gets the decoy's 421 at once, then the close."""
    g = Greeting(host, port)
    g.reader.read_to_eof(time.monotonic() + 10)
    assert re.match(rb"^421 4\.7\.0 ", g.reader.raw), g.reader.raw
    assert_prompt(g.t_first)


def held_by_tarpit(host, port):
    """A client of the tar pit gets a 220- line at once, and no more."""
    t0 = time.monotonic()
    s = connect(host, port)
    r = LineReader(s)
    line = r.readline(t0 + 10)
    assert line.startswith(b"220-"), line
    assert_prompt(time.monotonic() - t0)
    s.settimeout(1.0)
    try:
        more = s.recv(100)
    except socket.timeout:
        more = None
    s.close()
    assert more is None, "the tar pit said more: %r" % more


def test_inetd_decoy_example_lines(wd):
    """examples/inetd.conf.decoy, as the unprivileged user: with
    examples/allowlist, this host (loopback is in it) gets 421 at once from
    both decoys and is never held; with an empty allowlist, the tar pit
    holds a client with its 220- line and the tempfail decoy refuses a
    bot."""
    text = read_example("inetd.conf.decoy")
    tarpit, tempfail = [l for l in text.splitlines()
                        if l.startswith("192.0.2.")]
    tarpit6 = [l[1:] for l in text.splitlines()
               if l.startswith("#[2001:db8::26]:smtp ")]
    assert len(tarpit6) == 1, text
    for allowlist in (os.path.join(EXAMPLES, "allowlist"),
                      allowlist_file(wd, "")):
        own = allowlist.startswith(EXAMPLES)
        for line, mode, v6 in ((tarpit, "tarpit", False),
                               (tempfail, "tempfail", False),
                               (tarpit6[0], "tarpit", True)):
            changes = decoy_changes(wd, allowlist, mode)
            line = adapt(re.sub(r"^\S+:smtp ", "{listen} ", line),
                         dict(changes, **{" nowait sendwrap ":
                                          " nowait nobody "}))
            inetd = Inetd(wd, v6=v6, line=line)
            host = "::1" if v6 else "127.0.0.1"
            if own:
                told_421_at_once(host, inetd.port)
                verdict = r"^allow .*reason=allowlist"
            elif mode == "tarpit":
                held_by_tarpit(host, inetd.port)
                verdict = r"^tarpit "
            else:
                refuse_bot(host, inetd.port)
                verdict = r"^early "
            recs = inetd.syslog.wait_lines(verdict)
            assert recs, (line, inetd.syslog.records)
            check_slots(changes["/var/lib/sendwrap/" + mode], taken=not own)
            procs = inetd.syslog.sendwrap_records()
            assert all(r[3] for r in procs), procs   # logged with a pid
            inetd.stop()


def test_tarpit_run_script(wd):
    """examples/tarpit.run as the unprivileged user: with examples/tcp.smtp
    this host (RELAYCLIENT) gets 421 at once; a stranger is held, a 220-
    line at once and no final 220."""
    script = read_example("tarpit.run")

    def run(rules, allowlist):
        changes = dict(decoy_changes(wd, allowlist, "tarpit"), **{
            '"$(id -u sendwrap)"': '"$(id -u nobody)"',
            '"$(id -g sendwrap)"': '"$(id -g nobody)"',
            "/etc/tcp.decoy.cdb": rules,
        })
        srv = RunScript(wd, lambda port: adapt(script, dict(changes, **{
            "192.0.2.26 smtp": "127.0.0.1 %d" % port})), name="tarpit-run")
        srv.slots_dir = changes["/var/lib/sendwrap/tarpit"]
        return srv

    own = run(compile_tcprules(wd, read_example("tcp.smtp")),
              os.path.join(EXAMPLES, "allowlist"))
    told_421_at_once("127.0.0.1", own.port)
    assert own.wait_lines(r"^allow ip=127\.0\.0\.1 .*reason=RELAYCLIENT"), \
        own.log()
    check_slots(own.slots_dir, taken=False)

    stranger = run(compile_tcprules(wd, ":allow\n"), allowlist_file(wd, ""))
    held_by_tarpit("127.0.0.1", stranger.port)
    assert stranger.wait_lines(r"^tarpit ip=127\.0\.0\.1 "), stranger.log()
    check_slots(stranger.slots_dir, taken=True)     # tcpserver -u nobody


def test_qmail_run_script(wd):
    """examples/qmail-smtpd.run with a stand-in for qmail-smtpd (see the
    module's docstring): with examples/tcp.smtp a loopback client has
    RELAYCLIENT: no wait, and the stand-in sees RELAYCLIENT="" and
    TCPREMOTEIP; a stranger waits the example's 5 s, and the stand-in sees
    TCPREMOTEIP and no RELAYCLIENT; a bot never reaches it.  All of it as
    the unprivileged user, as qmaild."""
    records = os.path.join(wd, "records")
    os.mkdir(records)
    os.chmod(records, 0o777)
    standin = os.path.join(wd, "qmail-smtpd")
    with open(standin, "w") as f:
        f.write(QMAIL_STANDIN)
    os.chmod(standin, 0o755)
    script = read_example("qmail-smtpd.run")

    def run(rules):
        return RunScript(wd, lambda port: adapt(script, {
            "0 smtp": "127.0.0.1 %d" % port,
            "/etc/tcp.smtp.cdb": rules,
            '"$(id -u qmaild)"': '"$(id -u nobody)"',
            '"$(id -g qmaild)"': '"$(id -g nobody)"',
            "/usr/local/sbin/sendwrap": SENDWRAP,
            "/var/qmail/bin/qmail-smtpd": "%s %s" % (standin, records),
        }), name="qmail-run")

    def sessions():
        out = []
        for p in sorted(glob.glob(os.path.join(records, "*.json"))):
            with open(p) as f:
                out.append(json.load(f))
        return out

    own = run(compile_tcprules(wd, read_example("tcp.smtp")))
    g = Greeting("127.0.0.1", own.port)
    assert_prompt(g.t_final)
    assert g.final().startswith(b"220 standin.sendwrap.test "), g.lines
    g.quit()
    [s] = sessions()
    assert s["uid"] == NOBODY.pw_uid
    assert s["env"]["TCPREMOTEIP"] == "127.0.0.1"
    assert s["env"]["RELAYCLIENT"] == ""
    assert own.wait_lines(r"^allow ip=127\.0\.0\.1 port=\d+ "
                          r"reason=RELAYCLIENT$"), own.log()

    strangers = run(compile_tcprules(wd, ":allow\n"))
    refuse_bot("127.0.0.1", strangers.port)
    g = Greeting("127.0.0.1", strangers.port)
    assert_delayed(g.t_final, 5.0)
    assert g.final().startswith(b"220 standin.sendwrap.test "), g.lines
    g.quit()
    s = sessions()
    assert len(s) == 2, s                   # not the bot's
    stranger = [x for x in s if "RELAYCLIENT" not in x["env"]]
    assert len(stranger) == 1, s
    assert stranger[0]["env"]["TCPREMOTEIP"] == "127.0.0.1"
    assert stranger[0]["uid"] == NOBODY.pw_uid
    assert strangers.wait_lines(r"^pass ip=127\.0\.0\.1 port=\d+ "
                                r"delay=5\.000 "), strangers.log()
    assert strangers.wait_lines(r"^early ip=127\.0\.0\.1 "), strangers.log()


# The senders' zone for spf-allowlist: big.spf.test sends from 127.0.0.3
# and, through an include and an a mechanism, from 127.0.0.4; its ptr
# cannot be allowlisted (a note).
SPF_ZONE = ["--txt-record=big.spf.test,v=spf1 ip4:127.0.0.3 "
            "include:_out.spf.test ptr ~all",
            "--txt-record=_out.spf.test,v=spf1 a:out.spf.test -all",
            "--host-record=out.spf.test,127.0.0.4"]


def run_spf_allowlist(wd, dns, *args):
    env = dict(SERVER_ENV, SENDWRAP=SENDWRAP, DNS_SERVER=dns.server)
    return subprocess.run(["/bin/sh", os.path.join(EXAMPLES, "spf-allowlist"),
                           *args], env=env, capture_output=True, text=True,
                          timeout=60)


def test_spf_allowlist_script(wd, mx, sw):
    """examples/spf-allowlist builds a compiled allowlist from the SPF
    records (a real dnsmasq) of the domains in a file, after a local list;
    sendwrap -a CDB greets those senders at once and delays the others.
    A walk that fails leaves the old list in place and says so."""
    dns = DNS(wd, SPF_ZONE)
    try:
        domains = allowlist_file(wd, "# senders we do not delay\n"
                                 "big.spf.test   # mail.example's\n\n")
        local = allowlist_file(wd, "127.0.0.5 # our relay")
        cdb = os.path.join(wd, "spf.cdb")
        r = run_spf_allowlist(wd, dns, "-q", domains, cdb, local)
        assert (r.returncode, r.stdout, r.stderr) == (0, "", ""), r   # -q

        srv = TcpServer(wd, sw("-d", "3", "-a", cdb, mta=mx.argv()),
                        host="127.0.0.1")
        for src in ("127.0.0.3", "127.0.0.4", "127.0.0.5"):
            greeted_at_once("127.0.0.1", srv.port, mx, source=src)
        g = Greeting("127.0.0.1", srv.port, source="127.0.0.2")
        assert_delayed(g.t_final, 3.0)
        g.quit()

        # A domain without a record: the old list stays, byte for byte,
        # and nothing is left behind.
        before = open(cdb, "rb").read(), os.stat(cdb).st_ino
        with open(domains, "a") as f:
            f.write("none.spf.test\n")
        r = run_spf_allowlist(wd, dns, domains, cdb, local)
        assert r.returncode == 111, r
        assert r.stderr.splitlines() == [
            "sendwrap: spf-walk: big.spf.test: note: big.spf.test: ptr "
            "skipped: not a network",
            "sendwrap: spf-walk: none.spf.test: none.spf.test: TXT: no "
            "such domain (NXDOMAIN)",
            "spf-allowlist: sendwrap --spf-walk failed (exit 111); %s left "
            "as it was" % cdb], r.stderr
        assert (open(cdb, "rb").read(), os.stat(cdb).st_ino) == before
        assert not [n for n in os.listdir(wd) if ".spf-allowlist" in n]
        greeted_at_once("127.0.0.1", srv.port, mx, source="127.0.0.4")
    finally:
        dns.stop()
