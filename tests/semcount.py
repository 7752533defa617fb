"""How many connections wait in a --state-dir, read from the kernel.

The count behind --stress and --slots in delay mode is a System V
semaphore set of one semaphore, FREE, named by the state directory's
symbolic link "count", whose text is "ID:CTIME:NS" (waiters.h); FREE
starts at WAITERS_MAX and each waiting connection holds one of it.  The
tests and bench/stress.sh read it here, with semctl(2), not through
sendwrap.  Standard library (ctypes) only; Linux only.
"""
import ctypes
import errno
import os

WAITERS_MAX = 32767             # waiters.h
LINK = "count"                  # waiters.h: WAITERS_LINK
IPC_RMID, GETVAL = 0, 12        # <sys/ipc.h>, <sys/sem.h> on Linux
IPC_PRIVATE, IPC_CREAT = 0, 0o1000

_libc = ctypes.CDLL(None, use_errno=True)


def _check(r):
    if r < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return r


def this_ns():
    """The inode of this process's IPC namespace, as the link has it."""
    return os.stat("/proc/self/ns/ipc").st_ino


def set_id(state_dir):
    """The id of the set state_dir names, or None if it names none (no
    link, or a text that is no name)."""
    try:
        fields = os.readlink(os.path.join(state_dir, LINK)).split(":")
    except FileNotFoundError:
        return None
    if len(fields) != 3 or not all(f.isdigit() for f in fields):
        return None
    return int(fields[0])


def waiting(state_dir):
    """Places held in state_dir's count (0 when it names no set, or one
    that is gone, as sendwrap sees it)."""
    sid = set_id(state_dir)
    if sid is None:
        return 0
    free = _libc.semctl(sid, 0, GETVAL)
    if free < 0 and ctypes.get_errno() in (errno.EINVAL, errno.EIDRM):
        return 0                # the set named is gone: nobody holds one
    return WAITERS_MAX - _check(free)


def make(mode=0o600, nsems=1):
    """A new set, as whoever calls: its id."""
    return _check(_libc.semget(IPC_PRIVATE, nsems, IPC_CREAT | mode))


def sets():
    """Every set, as /proc/sysvipc/sem lists it: {semid: {column: text}}."""
    with open("/proc/sysvipc/sem") as f:
        head = f.readline().split()
        rows = [dict(zip(head, line.split())) for line in f]
    return {int(r["semid"]): r for r in rows}


def ours():
    """The ids of the sets this user made."""
    me = str(os.geteuid())
    return {sid for sid, r in sets().items() if r["cuid"] == me}


class _Sembuf(ctypes.Structure):
    _fields_ = [("num", ctypes.c_ushort), ("op", ctypes.c_short),
                ("flg", ctypes.c_short)]


def fill(sid):
    """Fill a set as sendwrap does before it names one."""
    _check(_libc.semop(sid, ctypes.byref(_Sembuf(0, WAITERS_MAX, 0)), 1))


def remove_id(sid):
    _libc.semctl(sid, 0, IPC_RMID)


def remove(state_dir):
    """Remove the set state_dir names (ipcrm), if it names one."""
    try:
        sid = set_id(state_dir)
    except OSError:                 # not a link
        return
    if sid is not None:
        remove_id(sid)
