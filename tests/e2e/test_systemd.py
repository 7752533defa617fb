"""systemd socket activation (Accept=yes) -> sendwrap -> exim or sendmail,
from examples/systemd/smtp.socket and smtp@.service.

The unit files, adjusted only in paths (sendwrap, the allowlist, the MTA
with its test configuration), pass `systemd-analyze verify`.  They are
then run for real without systemd as PID 1: `systemd-socket-activate
--accept --inetd -l 127.0.0.1:PORT` gives each connection's instance the
fd layout the template service gets (the connection on fds 0 and 1,
StandardInput=socket, StandardOutput=socket), and its stderr is an
AF_UNIX stream, as StandardError=journal makes it: there sendwrap logs.

The listener mode's units, examples/systemd/smtp-listener.socket and
smtp-listener.service (Accept=no, one `sendwrap --listen systemd`), are
verified the same way and run with `systemd-socket-activate -l
127.0.0.1:PORT` without --accept: sendwrap gets the listening socket on
fd 3 (LISTEN_FDS=1, LISTEN_PID), as from systemd.

smtp-forward.service, the listener relaying to an MTA daemon, is paired
with smtp-listener.socket both ways its comment says (the socket naming
it, or installed under the socket's service name), verified, and run
the same way in front of a private Postfix (tests/e2e/daemons.py) whose
PROXY smtpd takes the place of the example's 127.0.0.1:10025.
"""

import os
import re
import shlex
import signal
import subprocess

from daemons import deliver_timed, from_address, new_addresses
from e2elib import (SENDWRAP, SENDWRAP_COMM, SLACK, SYSTEMD_ANALYZE,
                    EximReceiver, SocketActivate, adapt, deliver_patiently,
                    greeted_at_once, group_members, read_example, refuse_bot,
                    wait_until)

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


def adapted_units(wd, mta, listener=False):
    """The example units for mta (with listener, those of the listener
    mode), written to wd/units; returns their paths and settings."""
    allowlist = os.path.join(wd, "allowlist")
    with open(allowlist, "w") as f:
        f.write("%s/32\n" % ALLOWED_IP)
    units = os.path.join(wd, "units")
    os.mkdir(units)
    if listener:
        sock, service = "smtp-listener.socket", "smtp-listener.service"
        sock_text = read_example("systemd/smtp-listener.socket")
        service_text = read_example("systemd/smtp-listener.service")
    else:
        sock, service = "smtp.socket", "smtp@.service"
        sock_text = read_example("systemd/smtp.socket")
        service_text = read_example("systemd/smtp@.service")
    texts = {
        sock: sock_text,
        service: adapt(service_text, {
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


# ------------------------------------------------------------ Accept=no

def test_listener_units_verify(wd):
    """smtp-listener.socket and .service (the listener mode: Accept=no, one
    sendwrap --listen systemd) pass systemd-analyze verify."""
    paths, units = adapted_units(wd, EximReceiver(wd), listener=True)
    assert sorted(paths) == ["smtp-listener.service", "smtp-listener.socket"]
    r = subprocess.run([SYSTEMD_ANALYZE, "verify"] + sorted(paths.values()),
                       capture_output=True, text=True, timeout=60,
                       cwd=os.path.dirname(paths["smtp-listener.socket"]))
    assert r.returncode == 0 and r.stdout + r.stderr == "", r
    assert units["smtp-listener.socket"]["Socket"] == {
        "ListenStream": "25", "Accept": "no"}
    service = units["smtp-listener.service"]["Service"]
    assert shlex.split(service["ExecStart"])[1:3] == ["--listen", "systemd"]
    assert service["KillMode"] == "mixed"
    assert service["StandardError"] == "journal"
    assert "StandardInput" not in service       # no client on fd 0


def test_listener_socket_activation(wd, mta):
    """The listener units run for real: systemd-socket-activate (no
    --accept) passes the listening socket (LISTEN_FDS) to the one
    sendwrap, started at the first connection; swaks and a sending exim
    wait the example's 5 s and deliver, a bot is refused, the allowlisted
    client is greeted at once, ExecReload's SIGHUP reloads, and SIGTERM
    ends it, with exit code 0, once the sessions are over."""
    _, units = adapted_units(wd, mta, listener=True)
    service = units["smtp-listener.service"]["Service"]
    argv = shlex.split(service["ExecStart"])
    srv = SocketActivate(wd, argv, inetd=False, accept=False, ns=mta.ns)

    deliver_patiently(wd, "127.0.0.1", srv.port, mta, "systemd-listener",
                      5.0)
    refuse_bot("127.0.0.1", srv.port, tag="systemd-listener-bot")
    greeted_at_once("127.0.0.1", srv.port, mta, source=ALLOWED_IP)
    assert mta.connections() == 3           # not for the bot

    # one sendwrap, on the socket systemd-socket-activate bound
    assert srv.wait_lines(r"^listening on=127\.0\.0\.1:%d " % srv.port)
    lines = srv.wait_lines(r"^(pass|early|allow) ", count=4)
    assert sorted(l.split()[0] for l in lines) == \
        ["allow", "early", "pass", "pass"], srv.log()
    pids = [p for p in group_members(srv.pid) if p[1] == SENDWRAP_COMM]
    assert [p[0] for p in pids] == [srv.pid], pids

    reload = shlex.split(service["ExecReload"].replace("$MAINPID",
                                                       str(srv.pid)))
    subprocess.run(reload, check=True, timeout=30)
    assert srv.wait_lines(r"^reload allowlists=1$"), srv.log()

    os.kill(srv.pid, signal.SIGTERM)
    assert srv.proc.wait(10) == 0, srv.log()
    assert srv.wait_lines(r"^stopping clients=0 children=0$"), srv.log()


# ------------------------------------------------------------ --forward

FORWARD_CLIENT = "127.0.0.92"


def forward_units(wd, postfix):
    """smtp-listener.socket and smtp-forward.service adapted in paths and
    in the forward target (Postfix's PROXY smtpd), written to wd/units
    twice, the two ways the service's comment gives: the socket naming
    the service (Service=), and the service installed under the socket's
    own service name.  Returns ({dir: [paths]}, the service's
    settings)."""
    allowlist = os.path.join(wd, "allowlist")
    with open(allowlist, "w") as f:
        f.write("%s/32\n" % ALLOWED_IP)
    sock = read_example("systemd/smtp-listener.socket")
    service = adapt(read_example("systemd/smtp-forward.service"), {
        "/usr/local/sbin/sendwrap": SENDWRAP,
        "/etc/sendwrap/allowlist": allowlist,
        "--forward 127.0.0.1:10025": "--forward 127.0.0.1:%d" %
        postfix.proxy_port,
    })
    ways = {
        "named": {"smtp-listener.socket": adapt(sock, {
            "Accept=no\n": "Accept=no\nService=smtp-forward.service\n"}),
            "smtp-forward.service": service},
        "renamed": {"smtp-listener.socket": sock,
                    "smtp-listener.service": service},
    }
    out = {}
    for way, texts in ways.items():
        d = os.path.join(wd, "units-" + way)
        os.mkdir(d)
        out[d] = []
        for name, text in texts.items():
            out[d].append(os.path.join(d, name))
            with open(out[d][-1], "w") as f:
                f.write(text)
    return out, unit_settings(service)["Service"]


def test_forward_unit(wd, postfix):
    """examples/systemd/smtp-forward.service with smtp-listener.socket:
    `systemd-analyze verify` passes both ways of pairing them, and its
    ExecStart, run by systemd-socket-activate (LISTEN_FDS), holds a
    client the example's 5 s, then relays it to Postfix's PROXY smtpd,
    which delivers its message and records the client's own address; the
    allowlisted client is greeted by Postfix at once, a bot is refused
    and Postfix never hears of it; SIGTERM ends it with 0."""
    dirs, service = forward_units(wd, postfix)
    for d, paths in sorted(dirs.items()):
        r = subprocess.run([SYSTEMD_ANALYZE, "verify"] + sorted(paths),
                           capture_output=True, text=True, timeout=60,
                           cwd=d)
        assert r.returncode == 0 and r.stdout + r.stderr == "", (d, r)
    argv = shlex.split(service["ExecStart"])
    assert argv[1:3] == ["--listen", "systemd"] and \
        argv[argv.index("--forward-proxy") + 1] == "v2", argv
    assert service["KillMode"] == "mixed"
    srv = SocketActivate(wd, argv, inetd=False, accept=False)

    before = len(postfix.client_addresses())
    msg, greet = deliver_timed(wd, postfix, srv.port, "systemd-forward",
                               FORWARD_CLIENT)
    assert 0.9 * 5 <= greet <= 5 + SLACK, greet
    assert from_address(msg) == FORWARD_CLIENT
    greeted_at_once("127.0.0.1", srv.port, postfix, source=ALLOWED_IP)
    refuse_bot("127.0.0.1", srv.port, source="127.0.0.93",
               tag="systemd-forward-bot")
    assert new_addresses(postfix, before, 2) == [FORWARD_CLIENT, ALLOWED_IP]

    assert srv.wait_lines(r"^pass ip=127\.0\.0\.92 port=\d+ delay=5\.000 ")
    ends = srv.wait_lines(r"^forwarded ", count=2)
    assert sorted(re.match(r"forwarded ip=(\S+) ", l).group(1)
                  for l in ends) == [ALLOWED_IP, FORWARD_CLIENT], srv.log()
    assert srv.wait_lines(r"^early ip=127\.0\.0\.93 ")
    os.kill(srv.pid, signal.SIGTERM)
    assert srv.proc.wait(10) == 0, srv.log()
    assert postfix.client_addresses()[before:] == [FORWARD_CLIENT,
                                                   ALLOWED_IP]
