"""How many connections wait in a --state-dir, read from the kernel.

The count behind --stress and --slots in delay mode is a System V
semaphore of the state directory's own (waiters.h): a set of one
semaphore, FREE, keyed by FNV-1a (32 bits) of the directory's st_dev
then st_ino, 8 bytes each, least significant first (0 becomes 1); FREE
starts at WAITERS_MAX and each waiting connection holds one of it.  The
tests and bench/stress.sh read it here, with semctl(2), not through
sendwrap.  Standard library (ctypes) only; Linux only.
"""
import ctypes
import os

WAITERS_MAX = 32767             # waiters.h
IPC_STAT, GETVAL = 2, 12        # <sys/ipc.h>, <sys/sem.h> on Linux

_libc = ctypes.CDLL(None, use_errno=True)


def key(state_dir):
    """The key of state_dir's set, as an unsigned 32-bit number."""
    st = os.stat(state_dir)
    h = 2166136261
    for part in (st.st_dev, st.st_ino):
        for b in range(8):
            h ^= (part >> (8 * b)) & 0xff
            h = (h * 16777619) & 0xffffffff
    return h or 1


def set_id(state_dir):
    """The id of state_dir's set, or None if there is none."""
    k = key(state_dir)
    sid = _libc.semget(ctypes.c_int(k - (1 << 32) if k >= 1 << 31 else k),
                       0, 0)
    if sid < 0:
        err = ctypes.get_errno()
        if err == 2:            # ENOENT
            return None
        raise OSError(err, os.strerror(err))
    return sid


def waiting(state_dir):
    """Places held in state_dir's count (0 when it has no set)."""
    sid = set_id(state_dir)
    if sid is None:
        return 0
    free = _libc.semctl(sid, 0, GETVAL)
    if free < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return WAITERS_MAX - free


def remove(state_dir):
    """Remove state_dir's set (ipcrm), if it has one."""
    sid = set_id(state_dir)
    if sid is not None:
        _libc.semctl(sid, 0, 0)     # IPC_RMID
