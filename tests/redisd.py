"""A real redis-server (Debian's) for the tests: on a loopback port and a
unix socket in a directory of the test's own, with a password for the
default user and ACL users, no persistence.  Used by the integration and
the end-to-end tests (each conftest puts tests/ on sys.path).

The server leads a process group of its own; stop() ends the group (the
caller may hand in its own start function, as e2elib's start_group, so
that its finalizers know of the server too).
"""
import os
import signal
import socket
import subprocess
import time

REDIS_SERVER = "/usr/bin/redis-server"
PASSWORD = "default-secret-0"

# What sendwrap's own user may do: its keys, and the commands it sends.
SENDWRAP_RULES = "~sendwrap:* +get +set +del +scan +mget +ping +select"
# What the MTA's user may do: add and delete entries, no more.
MTA_RULES = "~sendwrap:* +set +del +ping"


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def write_secret(path, text, mode=0o600, owner=None):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.chmod(path, mode)
    if owner is not None:
        os.chown(path, owner[0], owner[1])
    return path


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _bytes(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._bytes(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise ValueError("bad reply line %r" % line)


class RedisError(str):
    pass


class RedisServer:
    def __init__(self, workdir, users=None, start=None, stop=None,
                 extra=""):
        """users: {name: rules}; each gets a password, password_file(name)
        writes it to a file."""
        self.dir = str(workdir)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.sock = os.path.join(self.dir, "redis.sock")
        self.users = dict(users or {})
        self.passwords = {"default": PASSWORD}
        lines = ["port %d" % self.port, "bind 127.0.0.1",
                 "unixsocket %s" % self.sock, "unixsocketperm 777",
                 "daemonize no", 'save ""', "appendonly no",
                 "dir %s" % self.dir, "logfile %s" % os.path.join(
                     self.dir, "redis.log"),
                 "requirepass %s" % PASSWORD, "protected-mode no"]
        for name, rules in self.users.items():
            pw = "%s-secret-1" % name
            self.passwords[name] = pw
            lines.append("user %s on >%s %s" % (name, pw, rules))
        self.conf = os.path.join(self.dir, "redis.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n" + extra)
        self._start = start
        self._stop = stop
        self.proc = None
        self.start()

    # ------------------------------------------------------------ life

    def start(self):
        argv = [REDIS_SERVER, self.conf]
        if self._start:
            self.proc = self._start(argv, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        else:
            self.proc = subprocess.Popen(argv, start_new_session=True,
                                         stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.command("PING") == "PONG":
                    return
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("redis-server did not start: %s"
                                   % self.log())
            time.sleep(0.02)

    def stop(self):
        if self.proc is None:
            return
        if self._stop:
            self._stop(self.proc)
        else:
            for sig in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    pass
            self.proc.wait(10)
        self.proc = None

    def pause(self):
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.killpg(self.proc.pid, signal.SIGCONT)

    def log(self):
        try:
            with open(os.path.join(self.dir, "redis.log")) as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    # ---------------------------------------------------------- access

    def url(self, user=None, db=None, unix=False):
        if unix:
            q = []
            if db is not None:
                q.append("db=%d" % db)
            if user:
                q.append("user=%s" % user)
            return "unix:%s%s" % (self.sock, "?" + "&".join(q) if q else "")
        return "redis://%s127.0.0.1:%d%s" % (
            user + "@" if user else "", self.port,
            "/%d" % db if db is not None else "")

    def password_file(self, path, user="default", owner=None):
        return write_secret(str(path), self.passwords[user], owner=owner)

    def command(self, *args, db=0):
        """One command as the default user; the reply (errors as
        RedisError values)."""
        with socket.create_connection(("127.0.0.1", self.port), 5) as s:
            pre = [resp("AUTH", PASSWORD)]
            if db:
                pre.append(resp("SELECT", db))
            s.sendall(b"".join(pre) + resp(*args))
            r = Reader(s)
            for _ in pre:
                got = r.reply()
                if isinstance(got, RedisError):
                    raise RuntimeError(got)
            return r.reply()

    def entries(self, db=0):
        """{key text: (kind, recorded_ms, expires_ms, pttl_ms)} of
        sendwrap's keys."""
        out = {}
        for k in self.command("KEYS", "sendwrap:1:*", db=db):
            v = self.command("GET", k, db=db)
            ttl = self.command("PTTL", k, db=db)
            kind, rec, exp = v.decode().split(" ")
            out[k.decode()[len("sendwrap:1:"):]] = (kind, int(rec), int(exp),
                                                   ttl)
        return out


class SlowProxy:
    """A relay on a loopback port in front of a real server that holds
    every chunk of the server's replies for delay seconds before passing
    it on, each on its own clock (pipelined replies are late together,
    not one after the other): a Redis that answers slowly.  Threads, all
    daemons; stop() closes every socket."""

    def __init__(self, target_port, delay):
        self.target = target_port
        self.delay = delay
        self.socks = []
        self.stopped = False
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self._thread(self._accept)

    def _thread(self, fn, *args):
        import threading
        threading.Thread(target=fn, args=args, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                client, _ = self.lsock.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            self.socks += [client, server]
            self._thread(self._pass, client, server, 0)
            self._thread(self._pass, server, client, self.delay)

    def _pass(self, src, dst, delay):
        import queue
        due = queue.Queue()

        def send_when_due():
            while True:
                when, chunk = due.get()
                if chunk is None:
                    return
                time.sleep(max(0.0, when - time.monotonic()))
                try:
                    dst.sendall(chunk)
                except OSError:
                    return
        self._thread(send_when_due)
        while True:
            try:
                chunk = src.recv(65536)
            except OSError:
                chunk = b""
            due.put((time.monotonic() + delay, chunk or None))
            if not chunk:
                return

    def url(self, server_url):
        """server_url with its port made ours."""
        head, _, rest = server_url.rpartition(":")
        port, slash, db = rest.partition("/")
        return "%s:%d%s%s" % (head, self.port, slash, db)

    def stop(self):
        self.stopped = True
        for s in [self.lsock] + self.socks:
            try:
                s.close()
            except OSError:
                pass
