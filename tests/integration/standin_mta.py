"""Stand-in MTA for the sendwrap integration tests, stage 2 of 2.

Run by standin_mta (stage 1) with fds 0/1 as sendwrap left them.  It
records what it was given, then plays a tiny SMTP server:

  * lists its open descriptors (and whether fd 0 is blocking), its
    signal masks and its user, group and supplementary groups;
  * reads whatever the client sent before the greeting without waiting
    for more ("before": the early input sendwrap must leave unread);
  * writes STANDIN_GREETING (default "220 standin\\r\\n");
  * reads until a "QUIT" line or end of file ("after"), answers
    "221 bye\\r\\n" and exits with STANDIN_EXIT (default 0).

Everything goes to $STANDIN_DIR/record.json; nothing is ever written to
fd 2 (under inetd it is the client).  A failure of this script itself is
written to $STANDIN_DIR/standin.err and exits 99.
"""
import json
import os
import select
import sys
import time
import traceback

LIMIT = 30.0        # never hang a test run for longer than this
HERE = os.path.dirname(os.path.abspath(__file__))


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def published(d, name):
    """Stage 1's file name.PID, read, then renamed to name in one step
    (another stand-in may put its own there next): its bytes."""
    path = os.path.join(d, name)
    own = "%s.%d" % (path, os.getpid())
    data = read_file(own)
    os.replace(own, path)
    return data


def readable(fd, timeout):
    return bool(select.select([fd], [], [], max(timeout, 0))[0])


def write_all(fd, data):
    while data:
        data = data[os.write(fd, data):]


def main():
    # Here, not at the top: a failure to import goes to standin.err.
    sys.path.insert(0, os.path.dirname(HERE))
    import proclib      # tests/proclib.py

    d = os.environ["STANDIN_DIR"]
    # The descriptor listdir used is closed by the time it is read: left out.
    rec = {"t_start": time.monotonic(), "argv": sys.argv[1:],
           "fds": proclib.fds("self")}
    rec["fd0_blocking"] = os.get_blocking(0)
    env = published(d, "environ")
    rec["environ"] = [e.decode("latin-1") for e in env.split(b"\0")[:-1]]
    status = proclib.parse_status(published(d, "status").decode("latin-1"))
    rec.update(proclib.signal_masks(status))
    rec["ids"] = proclib.ids(status)
    deadline = time.monotonic() + LIMIT

    before = b""
    while readable(0, 0.05):
        chunk = os.read(0, 65536)
        if not chunk:
            break
        before += chunk
    rec["before"] = before.decode("latin-1")

    greeting = os.environ.get("STANDIN_GREETING", "220 standin\r\n")
    write_all(1, greeting.encode("latin-1"))
    rec["t_greet"] = time.monotonic()

    after = b""
    while b"QUIT\r\n" not in after and readable(0, deadline - time.monotonic()):
        chunk = os.read(0, 65536)
        if not chunk:
            break
        after += chunk
    rec["after"] = after.decode("latin-1")

    # A name of its own: several may run at once under the listener.
    tmp = os.path.join(d, "record.json.%d" % os.getpid())
    with open(tmp, "w") as f:
        json.dump(rec, f)
    os.rename(tmp, os.path.join(d, "record.json"))
    try:
        write_all(1, b"221 bye\r\n")
    except OSError:
        pass
    return int(os.environ.get("STANDIN_EXIT", "0"))


if __name__ == "__main__":
    try:
        code = main()
    except BaseException:
        try:
            with open(os.path.join(os.environ.get("STANDIN_DIR", "/tmp"),
                                   "standin.err"), "a") as f:
                traceback.print_exc(file=f)
        finally:
            os._exit(99)
    os._exit(code)
