"""Readers of the /proc text files the engine dumps from (one small parser per file).

Kept free of engine policy so that faster collectors (BPF iterators, PROCMAP_QUERY,
issue 11) can be dropped in beside them and compared against them.
"""

import os
import threading
import time
from dataclasses import dataclass, field


_STAT_FIELDS = (  # /proc/pid/stat from field 3 on (proc(5))
    "state", "ppid", "pgrp", "session", "tty_nr", "tpgid", "flags", "minflt", "cminflt",
    "majflt", "cmajflt", "utime", "stime", "cutime", "cstime", "priority", "nice",
    "num_threads", "itrealvalue", "starttime", "vsize", "rss", "rsslim", "start_code",
    "end_code", "start_stack", "kstkesp", "kstkeip", "signal", "blocked", "sigignore",
    "sigcatch", "wchan", "nswap", "cnswap", "exit_signal", "processor", "rt_priority",
    "policy", "delayacct_blkio_ticks", "guest_time", "cguest_time", "start_data", "end_data",
    "start_brk", "arg_start", "arg_end", "env_start", "env_end", "exit_code")


def stat(pid, tid=None):
    """{field: value} of /proc/pid/stat (or of one thread); comm and state stay strings."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    with open(path) as f:
        text = f.read()
    head, _, tail = text.rpartition(")")
    values = tail.split()
    out = {"pid": int(head.split(" (", 1)[0]), "comm": head.split(" (", 1)[1]}
    for name, value in zip(_STAT_FIELDS, values):
        out[name] = value if name == "state" else int(value)
    return out


def tids(pid):
    return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))


PF_EXITING, PF_IO_WORKER = 0x4, 0x10


def is_io_worker(pid, tid):
    """Is thread ``tid`` of ``pid`` one of io_uring's (an SQ thread, an io-wq worker)?"""
    try:
        return bool(stat(pid, tid)["flags"] & PF_IO_WORKER)
    except FileNotFoundError:
        return False


def children(pid):
    """Children of every thread of ``pid`` (zombies included)."""
    found = []
    for tid in tids(pid):
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                found += [int(c) for c in f.read().split()]
        except FileNotFoundError:
            continue
    return sorted(set(found))


@dataclass
class Vma:
    start: int
    end: int
    perms: str                  # "rwxp" as maps prints it
    offset: int
    dev: str                    # "major:minor" in hex, as maps prints it
    inode: int
    name: str
    flags: set = field(default_factory=set)   # smaps VmFlags mnemonics

    @property
    def shared(self):
        return self.perms[3] == "s"

    @property
    def length(self):
        return self.end - self.start


def _vma_header(line):
    parts = line.split(None, 5)
    start, end = (int(x, 16) for x in parts[0].split("-"))
    return Vma(start, end, parts[1], int(parts[2], 16), parts[3], int(parts[4]),
               parts[5].rstrip("\n") if len(parts) > 5 else "")


def maps(pid):
    """VMAs of /proc/pid/maps (no VmFlags)."""
    with open(f"/proc/{pid}/maps") as f:
        return [_vma_header(line) for line in f]


def smaps(pid):
    """VMAs of /proc/pid/smaps with their VmFlags."""
    vmas = []
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if line.startswith("VmFlags:"):
                vmas[-1].flags = set(line.split()[1:])
            elif not line.split(":", 1)[0].isalpha() and "-" in line.split(None, 1)[0]:
                vmas.append(_vma_header(line))
    return vmas


def timers(pid):
    """POSIX timers of /proc/pid/timers: [{id, signal, sigev_value, notify, notify_tid, clock}]."""
    out, cur = [], None
    with open(f"/proc/{pid}/timers") as f:
        for line in f:
            key, _, value = line.partition(":")
            value = value.strip()
            if key == "ID":
                cur = {"id": int(value)}
                out.append(cur)
            elif key == "signal":
                sig, _, ptr = value.partition("/")
                cur["signal"], cur["sigev_value"] = int(sig), int(ptr, 16)
            elif key == "notify":          # "signal/pid.123", "thread/tid.124", ...
                how, _, target = value.partition("/")
                kind, _, who = target.partition(".")
                cur["notify"] = f"{how}/{kind}"
                cur["notify_tid"] = int(who) if kind == "tid" and who else 0
            elif key == "ClockID":
                cur["clock"] = int(value)
    return out


def limits(pid):
    """[(soft, hard)] of /proc/pid/limits, in RLIMIT_* number order (the file's line order);
    RLIM_INFINITY for "unlimited".  Readable for any process, unlike prlimit(2) from outside."""
    with open(f"/proc/{pid}/limits") as f:
        lines = f.read().splitlines()[1:]
    out = []
    for line in lines:
        soft, hard = line[26:47].strip(), line[47:68].strip()   # fixed-width columns
        out.append(tuple(-1 if v == "unlimited" else int(v) for v in (soft, hard)))
    return out


def auxv(pid):
    with open(f"/proc/{pid}/auxv", "rb") as f:
        return f.read()


def fd_numbers(pid):
    return sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd"))


WALL = 0x40000000           # __WALL: threads and non-SIGCHLD children too


def reap(tids, timeout=5.0):
    """Collect the exit of every one of ``tids`` (threads we trace, processes that are or
    become our children) in whatever order the kernel allows - the init of a pid namespace
    finishes exiting only once the rest of its namespace is reaped - and wait for those
    re-parented elsewhere to be gone; returns those still there after ``timeout``."""
    every = list(dict.fromkeys(tids))
    pending = list(every)
    deadline = time.monotonic() + timeout
    stalled = None
    while pending and time.monotonic() < deadline:
        for tid in list(pending):
            try:
                if os.waitpid(tid, os.WNOHANG | WALL)[0] == tid:
                    pending.remove(tid)
            except ChildProcessError:
                if not os.path.exists(f"/proc/{tid}"):
                    pending.remove(tid)     # gone, reaped by whoever it belonged to
        if pending and all(_exiting_init(tid) for tid in pending):
            # each may wait for zombies of its namespace whose parent was outside it: they
            # went to a reaper outside the tree, which reaps them in its own time (perhaps
            # only once we return): reap these when they are done, meanwhile
            stalled = stalled or time.monotonic()
            if time.monotonic() - stalled > INIT_STALL:
                _reap_later(pending)
                return []
        else:
            stalled = None
        if pending:
            time.sleep(0.001)
    for tid in every:           # every exit told: whatever is re-parented, is by now
        if _ours_now(tid):
            os.waitpid(tid, os.WNOHANG | WALL)
    return pending


INIT_STALL = 0.2                # seconds only exiting inits may hold up reap()


def _reap_later(tids):
    def reap_all():
        for tid in tids:
            try:
                os.waitpid(tid, WALL)
            except ChildProcessError:
                pass
    threading.Thread(target=reap_all, name="reap-inits", daemon=True).start()


def _ours_now(tid):
    """Whether ``tid``, whose exit we took as its tracer, is left a zombie child of ours
    (its parent died after it and we are the subreaper): then it is ours to reap too."""
    try:
        return stat(tid)["ppid"] == os.getpid()
    except (FileNotFoundError, ProcessLookupError):
        return False


def _exiting_init(tid):
    try:
        return bool(stat(tid)["flags"] & PF_EXITING) and ns_tid(tid, tid) == 1
    except (FileNotFoundError, ProcessLookupError):
        return False


def ns_tid(pid, tid):
    """``tid`` of process ``pid`` as its own pid namespace numbers it (what a call made
    from inside the process takes); the same number outside any nested namespace."""
    with open(f"/proc/{pid}/task/{tid}/status") as f:
        for line in f:
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    return tid


def outer_tid(pid, inner):
    """The tid, as we number it, of the thread of ``pid`` numbered ``inner`` in its own pid
    namespace (what a clone made from inside returns)."""
    for name in os.listdir(f"/proc/{pid}/task"):
        if ns_tid(pid, int(name)) == inner:
            return int(name)
    raise ProcessLookupError(f"no thread {inner} (in its pid namespace) in pid {pid}")

