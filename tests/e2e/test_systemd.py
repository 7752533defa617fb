"""systemd socket activation (Accept=yes) -> sendwrap -> exim or sendmail,
from examples/systemd/smtp.socket and smtp@.service.

The unit files, adjusted only in paths (sendwrap, the allowlist, the MTA
with its test configuration), pass `systemd-analyze verify`.  They are
then run for real without systemd as PID 1: `systemd-socket-activate
--accept --inetd -l 127.0.0.1:PORT` gives each connection's instance the
fd layout the template service gets (the connection on fds 0 and 1,
StandardInput=socket, StandardOutput=socket), and its stderr is an
AF_UNIX stream, as StandardError=journal makes it: there sendwrap logs.
"""

import os
import re
import shlex
import subprocess

from e2elib import (SENDWRAP, SYSTEMD_ANALYZE, EximReceiver, SocketActivate,
                    adapt, deliver_patiently, greeted_at_once, read_example,
                    refuse_bot, wait_until)

ALLOWED_IP = "127.0.0.3"


def unit_settings(text):
    """{section: {key: value}} of a unit file (no key repeats here)."""
    out, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = out.setdefault(line.strip("[]"), {})
        else:
            k, _, v = line.partition("=")
            section[k.strip()] = v.strip()
    return out


def adapted_units(wd, mta):
    """The example units for mta, written to wd/units; returns their paths
    and settings."""
    allowlist = os.path.join(wd, "allowlist")
    with open(allowlist, "w") as f:
        f.write("%s/32\n" % ALLOWED_IP)
    units = os.path.join(wd, "units")
    os.mkdir(units)
    texts = {
        "smtp.socket": read_example("systemd/smtp.socket"),
        "smtp@.service": adapt(read_example("systemd/smtp@.service"), {
            "/usr/local/sbin/sendwrap": SENDWRAP,
            "/etc/sendwrap/allowlist": allowlist,
            "/usr/sbin/exim4 -bs -odq": " ".join(mta.argv()),
        }),
    }
    paths = {}
    for name, text in texts.items():
        paths[name] = os.path.join(units, name)
        with open(paths[name], "w") as f:
            f.write(text)
    return paths, {n: unit_settings(t) for n, t in texts.items()}


def test_example_units_verify(wd):
    paths, units = adapted_units(wd, EximReceiver(wd))
    r = subprocess.run([SYSTEMD_ANALYZE, "verify"] + sorted(paths.values()),
                       capture_output=True, text=True, timeout=60,
                       cwd=os.path.dirname(paths["smtp.socket"]))
    assert r.returncode == 0 and r.stdout + r.stderr == "", r
    # what the activation below stands for
    assert units["smtp.socket"]["Socket"]["Accept"] == "yes"
    assert units["smtp.socket"]["Socket"]["ListenStream"] == "25"
    service = units["smtp@.service"]["Service"]
    assert (service["StandardInput"], service["StandardOutput"],
            service["StandardError"]) == ("socket", "socket", "journal")

    # and verify does tell a broken unit
    with open(paths["smtp@.service"], "a") as f:
        f.write("ExecStartPre=%s/no-such-program\n" % wd)
    r = subprocess.run([SYSTEMD_ANALYZE, "verify", paths["smtp@.service"]],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "no-such-program" in r.stderr, r


def test_socket_activation(wd, mta):
    _, units = adapted_units(wd, mta)
    argv = shlex.split(units["smtp@.service"]["Service"]["ExecStart"])
    assert argv[0] == SENDWRAP and "-d" in argv and argv[argv.index("-d") +
                                                         1] == "5", argv
    srv = SocketActivate(wd, argv, inetd=True, ns=mta.ns)

    # the example's -d 5: swaks and a sending exim wait, then deliver
    deliver_patiently(wd, "127.0.0.1", srv.port, mta, "systemd", 5.0)
    refuse_bot("127.0.0.1", srv.port, tag="systemd-bot")
    greeted_at_once("127.0.0.1", srv.port, mta, source=ALLOWED_IP)
    assert mta.connections() == 3           # not for the bot

    # sendwrap logged to its stderr, the "journal" stream
    lines = srv.wait_lines(r"^(pass|early|allow) ", count=4)
    assert sorted(l.split()[0] for l in lines) == \
        ["allow", "early", "pass", "pass"], srv.log()
    assert [l for l in lines if re.match(
        r"^allow ip=127\.0\.0\.3 port=\d+ reason=allowlist "
        r"rule=127\.0\.0\.3/32$", l)], lines
    # every instance ended, each with 0: the bot's is sendwrap's own exit
    # code (handled without running the MTA), the others the MTA's
    assert wait_until(lambda: len(srv.exit_codes()) == 4, 10), srv.log()
    assert srv.exit_codes() == [0, 0, 0, 0], srv.log()
