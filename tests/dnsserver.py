"""A real DNS server for the tests: Debian's dnsmasq on a loopback port,
authoritative for the test zones (*.test) and nothing else, logging every
query to a file.

- 127.0.0.1 and ::1 are listed on bl.test (answer 127.0.0.2) and
  127.0.0.1 on bl2.test (127.0.0.4);
- 127.0.0.3 is on the allow list wl.test (127.0.0.5);
- 127.0.0.5 is on bl.test with 127.0.0.9 only (for filters);
- anything under fail.test is forwarded to a server that is not there:
  SERVFAIL;
- and whatever records a test adds, as dnsmasq options (DNS(dir, extra)).

Standard library only; every wait is bounded.
"""
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
START = 10.0

RECORDS = [
    ("1.0.0.127.bl.test", "127.0.0.2"),
    ("1.0.0.127.bl2.test", "127.0.0.4"),
    ("3.0.0.127.wl.test", "127.0.0.5"),
    ("5.0.0.127.bl.test", "127.0.0.9"),
    ("1" + ".0" * 31 + ".bl.test", "127.0.0.2"),
]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DNS:
    """dnsmasq on 127.0.0.1:PORT, in a process group of its own."""

    def __init__(self, workdir, extra=()):
        self.log = Path(workdir) / "dnsmasq.log"
        self.extra = list(extra)
        # A free UDP port may be taken for TCP: then dnsmasq exits, and
        # another port is tried.
        for _ in range(5):
            self.port = free_port()
            self.proc = subprocess.Popen(self.command(),
                                         stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL,
                                         start_new_session=True)
            deadline = time.monotonic() + START
            while not self.answers() and self.proc.poll() is None:
                assert time.monotonic() < deadline, "dnsmasq does not answer"
                time.sleep(0.05)
            if self.proc.poll() is None:
                return
        raise AssertionError("dnsmasq did not start")

    def command(self):
        args = [DNSMASQ, "-k", "--port=%d" % self.port,
                "--listen-address=127.0.0.1", "--bind-interfaces",
                "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
                "--local=/test/", "--server=/fail.test/127.0.0.1#1",
                "--log-queries", "--log-facility=%s" % self.log,
                "--pid-file="]
        args += ["--host-record=%s,%s" % r for r in RECORDS]
        return args + ["--txt-record=1.0.0.127.bl.test,listed for testing"
                       ] + self.extra

    @property
    def server(self):
        return "127.0.0.1:%d" % self.port

    def answers(self):
        """Does it answer a query (a hand-made one, for probe.test)?"""
        q = (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
             + b"".join(bytes([len(p)]) + p.encode()
                        for p in "probe.test".split("."))
             + b"\x00\x00\x01\x00\x01")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.3)
            try:
                s.sendto(q, ("127.0.0.1", self.port))
                return len(s.recv(512)) > 12
            except OSError:
                return False

    def queried(self, name):
        return self.log.exists() and name in self.log.read_text()

    def freeze(self):
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self):
        self.proc.send_signal(signal.SIGCONT)

    def stop(self):
        if self.proc.poll() is None:
            self.thaw()
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
