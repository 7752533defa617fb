"""Reading /proc, for the tests and the benchmarks.

One module for what tests/integration, tests/e2e, bench/bench.py and
bench/decoy.sh look up about processes: who is whose child or in which
group, which program a process runs and whether it sleeps in a wait,
its memory (smaps_rollup, VmPTE), its CPU time, its descriptors, its
signal masks, its user and groups, and which loopback ports listen; and
the machine's free memory and the kernel's share of it (meminfo,
zoneinfo, sockstat).

Import it from a known place, e.g. from tests/e2e:
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
Standard library only; Linux only.  A pid is a number or "self".
Functions that read one process raise OSError once it is gone, unless
they say otherwise; the waits are bounded by their timeout.
"""
import collections
import os
import re
import statistics
import time

HZ = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# The system calls a process waiting for its peer sleeps in, as
# /proc/PID/syscall numbers them on x86-64: poll, select, pselect6, ppoll.
WAITING_SYSCALLS = frozenset({"7", "23", "270", "271"})

# One process's /proc/PID/stat: the fields the tests and benchmarks use
# (times in clock ticks, HZ a second).  pid, comm, state, ppid and pgid
# come first, so that p[0], p[1], p[3], p[4] are those.
Stat = collections.namedtuple(
    "Stat", "pid comm state ppid pgid utime stime cutime cstime")


def _path(pid, name):
    return "/proc/%s/%s" % (pid, name)


def stat(pid):
    """/proc/PID/stat as a Stat, or None if the process is gone."""
    try:
        with open(_path(pid, "stat"), "rb") as f:
            data = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm may hold spaces and parentheses: it ends at the last ')'.
    lp, rp = data.index("("), data.rindex(")")
    rest = data[rp + 2:].split()
    return Stat(int(data[:lp]), data[lp + 1:rp], rest[0], int(rest[1]),
                int(rest[2]), *(int(x) for x in rest[11:15]))


def processes():
    """A Stat for every process (those gone while read are left out)."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = stat(name)
            if st:
                out.append(st)
    return out


def children(ppid):
    """The processes whose parent is ppid."""
    return [p for p in processes() if p.ppid == ppid]


def group(pgid):
    """The processes of process group pgid."""
    return [p for p in processes() if p.pgid == pgid]


def tree(pid):
    """The process pid and all its descendants (a child that made a
    session or group of its own included)."""
    procs = processes()
    out = [p for p in procs if p.pid == int(pid)]
    i = 0
    while i < len(out):
        out += [p for p in procs if p.ppid == out[i].pid]
        i += 1
    return out


def exe(pid):
    """The path of the program the process runs, or None."""
    try:
        return os.readlink(_path(pid, "exe"))
    except OSError:
        return None


def cmdline(pid):
    """The argument vector, as a list of bytes."""
    with open(_path(pid, "cmdline"), "rb") as f:
        return f.read().split(b"\0")[:-1]


def syscall(pid):
    """The first field of /proc/PID/syscall: the number of the system call
    it sleeps in, "running", or "-1" (blocked, not in a system call)."""
    with open(_path(pid, "syscall")) as f:
        return f.read().split()[0]


def waits_in(pid, program):
    """True if the process runs program (a real path) and sleeps in poll
    or select; False if not, or if it is gone."""
    try:
        return exe(pid) == program and syscall(pid) in WAITING_SYSCALLS
    except OSError:
        return False


def waiting_children(ppid, program):
    """The pids of ppid's children that run program and wait in select."""
    return [p.pid for p in children(ppid) if waits_in(p.pid, program)]


def wait_waiting_children(ppid, program, n, timeout, step=0.1):
    """Poll until n children of ppid run program and wait in select, or
    timeout seconds have passed; returns the pids found last."""
    deadline = time.monotonic() + timeout
    while True:
        pids = waiting_children(ppid, program)
        if len(pids) >= n or time.monotonic() >= deadline:
            return pids
        time.sleep(step)


def wait_childless(ppid, timeout, step=0.1):
    """Poll until ppid has no children, at most timeout seconds; True if
    it has none."""
    deadline = time.monotonic() + timeout
    while children(ppid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)
    return True


def wait_for(pred, timeout, what, step=0.1):
    """Poll pred until it is true; TimeoutError naming what after timeout
    seconds."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError("timed out waiting for " + what)
        time.sleep(step)


def parse_status(text):
    """The text of a /proc/PID/status file as {key: value text}."""
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def status(pid):
    """/proc/PID/status as {key: value text}."""
    with open(_path(pid, "status")) as f:
        return parse_status(f.read())


def signal_masks(st):
    """{'SigIgn': bits, 'SigBlk': bits} (the ignored and the blocked
    signals, bit N-1 for signal N) of a status() dict."""
    return {k: int(st[k], 16) for k in ("SigIgn", "SigBlk")}


def ids(st):
    """{'Uid': [real, effective, saved, fs], 'Gid': [the same],
    'Groups': [supplementary]} of a status() dict, as numbers."""
    return {k: [int(v) for v in st[k].split()]
            for k in ("Uid", "Gid", "Groups")}


def sig_state(pid="self"):
    """The ignored and blocked signals of a process: signal_masks."""
    return signal_masks(status(pid))


def smaps_rollup(pid):
    """The kB lines of /proc/PID/smaps_rollup: {'Rss': kB, 'Pss': kB, ...}."""
    vals = {}
    with open(_path(pid, "smaps_rollup")) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[2] == "kB":
                vals[parts[0].rstrip(":")] = int(parts[1])
    return vals


def vmpte(pid):
    """The process's page tables in kB (VmPTE of /proc/PID/status)."""
    return int(status(pid).get("VmPTE", "0 kB").split()[0])


def memory_totals(pids, keys):
    """Sum keys over the processes: smaps_rollup fields, and VmPTE.

    Returns ({key: kB}, how many processes were counted); one gone while
    read is left out whole."""
    tot, counted = dict.fromkeys(keys, 0), 0
    for pid in pids:
        try:
            vals = smaps_rollup(pid)
            if "VmPTE" in tot:
                vals["VmPTE"] = vmpte(pid)
        except OSError:
            continue
        counted += 1
        for key in tot:
            tot[key] += vals.get(key, 0)
    return tot, counted


def cpu_seconds(pid):
    """(utime + stime, schedstat run time), both in seconds."""
    st = stat(pid)
    if st is None:
        raise ProcessLookupError(pid)
    with open(_path(pid, "schedstat")) as f:
        ns = int(f.read().split()[0])
    return (st.utime + st.stime) / HZ, ns / 1e9


def tree_cpu_ticks(pid):
    """utime + stime + cutime + cstime: the process and the children it
    has reaped, in clock ticks."""
    st = stat(pid)
    if st is None:
        raise ProcessLookupError(pid)
    return st.utime + st.stime + st.cutime + st.cstime


def fd_numbers(pid="self"):
    """The open descriptors, as numbers (for "self", the one listdir
    used is among them)."""
    return [int(n) for n in os.listdir(_path(pid, "fd"))]


def fd_target(fd, pid="self"):
    """What a descriptor points at ('socket:[123]', a path, ...)."""
    return os.readlink(_path(pid, "fd/%d" % fd))


def fds(pid="self"):
    """{fd: target} of the open descriptors (one closed meanwhile, such
    as listdir's own, is left out)."""
    out = {}
    for fd in fd_numbers(pid):
        try:
            out[fd] = fd_target(fd, pid)
        except OSError:
            pass
    return out


def listening(port, v6=False):
    """Is a TCP socket listening on port (any address of the family)?"""
    try:
        with open("/proc/net/tcp6" if v6 else "/proc/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[3] == "0A" and \
                        int(parts[1].rsplit(":", 1)[1], 16) == port:
                    return True
    except OSError:
        pass
    return False


def tcp_sockets(port, state, v6=False):
    """The inodes of the TCP sockets on local port in state (/proc/net/tcp's
    hex code: "0A" listening, "01" established), any address of the
    family."""
    out = set()
    try:
        with open("/proc/net/tcp6" if v6 else "/proc/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[3] == state and \
                        int(parts[1].rsplit(":", 1)[1], 16) == port:
                    out.add(parts[9])
    except OSError:
        pass
    return out


def socket_inodes(pids):
    """The inodes of the sockets the processes pids hold (those gone
    while read are left out)."""
    out = set()
    for pid in pids:
        try:
            for fd in fd_numbers(pid):
                t = fd_target(fd, pid)
                if t.startswith("socket:["):
                    out.add(t[8:-1])
        except OSError:
            continue
    return out


def cpu_model():
    """The 'model name' of /proc/cpuinfo, or None."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def loadavg():
    """The 1, 5 and 15 minute load averages, as text."""
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def meminfo():
    """/proc/meminfo: {field: kB}."""
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":")
            out[k] = int(v.split()[0])
    return out


def pcp_kb():
    """The free pages the kernel keeps on its per-CPU lists (the count:
    lines of /proc/zoneinfo's pagesets), which MemFree and MemAvailable
    count as used: an allocation served from them lowers neither."""
    with open("/proc/zoneinfo") as f:
        return sum(int(n) for n in re.findall(r"\n\s+count:\s+(\d+)",
                                              f.read())) * PAGE // 1024


def free_kb():
    """(MemAvailable, MemAvailable and the per-CPU free lists), each the
    median of five reads over half a second."""
    avail, free = [], []
    for _ in range(5):
        a = meminfo()["MemAvailable"]
        avail.append(a)
        free.append(a + pcp_kb())
        time.sleep(0.1)
    return statistics.median(avail), statistics.median(free)


def kernel_kb():
    """The kernel's memory that held sockets and processes take: slab,
    kernel stacks, page tables, and the TCP buffer pages (sockstat)."""
    m = meminfo()
    tcp = 0
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                tcp = int(line.split("mem")[1].split()[0]) * PAGE // 1024
    return {"Slab": m["Slab"], "SReclaimable": m["SReclaimable"],
            "KernelStack": m["KernelStack"], "PageTables": m["PageTables"],
            "TCP buffers": tcp}


def slab_objects_kb():
    """The kernel's slab objects in use, in kB: active objects times
    their size, summed over /proc/slabinfo's caches (which only root may
    read: None otherwise).  Unlike meminfo's Slab, it leaves out the
    free objects a slab keeps after a burst of traffic."""
    try:
        with open("/proc/slabinfo") as f:
            lines = f.read().splitlines()[2:]
    except OSError:
        return None
    return sum(int(p[1]) * int(p[3]) for p in map(str.split, lines)) / 1024
