"""Seccomp of each thread: strict mode, or a chain of classic-BPF filters with their flags.

Dump: the mode is the ``Seccomp:`` line of the thread's status (1 strict, 2 filter); each
filter is read with PTRACE_SECCOMP_GET_FILTER and PTRACE_SECCOMP_GET_METADATA (the dumper
needs CAP_SYS_ADMIN and no seccomp of its own).  A process's distinct filters are stored
once in its core image (``seccomp_filters``); a thread names its chain by index, oldest
first, so chains inherited across clone() or fork() cost one copy per process.

Restore: every thread installs its chain, oldest first with the same flags, through
injected seccomp(2) calls.  Strict mode and filters would refuse or kill the calls the
engine still injects after them (and before them at dump), so threads under seccomp are
traced with PTRACE_O_SUSPEND_SECCOMP, which lasts until the detach.  With that, the chain is
installed just before the credentials: the thread still has the restorer's CAP_SYS_ADMIN,
which installing a filter needs when no_new_privs is off (and no_new_privs cannot be set for
a while and cleared again), so no_new_privs and the capabilities end as dumped.
"""

import errno
import os
import struct

from kernel import ptrace
from kernel.process import SECCOMP_SET_MODE_FILTER, SECCOMP_SET_MODE_STRICT

from .errors import DumpError, RestoreError, Unsupported

DISABLED, STRICT, FILTER = 0, 1, 2                     # the status line's modes
FLAG_NAMES = {1: "tsync", 2: "log", 4: "spec_allow", 8: "new_listener"}
INSN_SIZE = 8                                          # struct sock_filter


def suspend(tid, options, error, *args):
    """Trace ``tid`` with ``options`` plus PTRACE_O_SUSPEND_SECCOMP; a failure raises
    ``error(message, *args)``."""
    try:
        ptrace.setoptions(tid, options | ptrace.O_SUSPEND_SECCOMP)
    except OSError as e:
        raise error(f"cannot suspend the seccomp of thread {tid} ({e.strerror}): the engine "
                    f"needs CAP_SYS_ADMIN and no seccomp of its own", *args) from None


def suspend_all(statuses, options):
    """Before the first call injected into a frozen process: suspend seccomp in each of its
    threads that has it (``statuses``: tid -> /proc status)."""
    for tid, status in statuses.items():
        if _mode(tid, status) != DISABLED:
            suspend(tid, options, DumpError)


def _mode(tid, status):
    mode = int(status.get("Seccomp", "0"))
    if mode not in (DISABLED, STRICT, FILTER):
        raise Unsupported(f"unsupported: seccomp mode {mode} of thread {tid}")
    return mode


class Filters:
    """The distinct filters of one process, as its core image stores them."""

    def __init__(self):
        self.entries = []           # {"flags": SECCOMP_FILTER_FLAG_*, "code": hex insns}

    def dump_thread(self, tid, status):
        """The thread image entry: {"mode"} and, in filter mode, "filters": indexes into
        ``entries``, oldest first."""
        mode = _mode(tid, status)
        if mode != FILTER:
            return {"mode": mode}
        return {"mode": mode, "filters": [self._index(f) for f in _read_chain(tid)]}

    def _index(self, entry):
        if entry not in self.entries:
            self.entries.append(entry)
        return self.entries.index(entry)


def _read_chain(tid):
    """The filters of the stopped thread ``tid``, oldest first (the kernel's index 0)."""
    chain = []
    while True:
        index = len(chain)
        try:
            count = ptrace.seccomp_get_filter(tid, index)
            code = ptrace.seccomp_get_filter(tid, index, count)
            flags = ptrace.seccomp_get_metadata(tid, index)
        except OSError as e:
            if e.errno == errno.ENOENT and chain:
                return chain
            if e.errno == errno.EMEDIUMTYPE:
                raise Unsupported(f"unsupported: seccomp filter {index} of thread {tid} is "
                                  f"not classic BPF") from None
            raise DumpError(f"cannot read seccomp filter {index} of thread {tid} "
                            f"({e.strerror}): the dumper needs CAP_SYS_ADMIN and no "
                            f"seccomp of its own") from None
        chain.append({"flags": flags, "code": code.hex()})


def restore(remotes, scratch, core, options):
    """Give each thread of a process its dumped seccomp mode and filters (``options``: the
    restorer's ptrace options, kept).  Call it while the threads still have the restorer's
    credentials; every call injected afterwards runs with seccomp suspended."""
    for thread in core["threads"]:
        entry = thread["seccomp"]
        if entry["mode"] == DISABLED:
            continue
        rem = remotes[thread["tid"]]
        suspend(rem.tid, options, RestoreError, "state")
        if entry["mode"] == STRICT:
            _install(rem, "strict mode", SECCOMP_SET_MODE_STRICT, 0, 0)
            continue
        for index in entry["filters"]:
            flt = core["seccomp_filters"][index]
            code = bytes.fromhex(flt["code"])
            prog = scratch.put(struct.pack("H6xQ", len(code) // INSN_SIZE, scratch.put(code)))
            _install(rem, f"filter #{index}", SECCOMP_SET_MODE_FILTER, flt["flags"], prog)
            scratch.reset()


def _install(rem, what, operation, flags, prog):
    got = rem.call("seccomp", operation, flags, prog, check=False)
    if got < 0:
        raise RestoreError(f"cannot install seccomp {what} in thread {rem.tid} "
                           f"({os.strerror(-got)})", "state")


def describe(core):
    """Short lines for `show`: each thread's mode and chain, then the filters."""
    modes = []
    for t in core["threads"]:
        entry = t["seccomp"]
        if entry["mode"] == STRICT:
            modes.append(f"{t['tid']} strict")
        elif entry["mode"] == FILTER:
            modes.append(f"{t['tid']} filters " + ",".join(f"#{i}" for i in entry["filters"]))
    if not modes:
        return []
    filters = [f"#{i} {len(f['code']) // (2 * INSN_SIZE)} insns" + "".join(
        f" {name}" for bit, name in FLAG_NAMES.items() if f["flags"] & bit)
        for i, f in enumerate(core["seccomp_filters"])]
    lines = ["  seccomp: " + "; ".join(modes) + " (oldest first)"]
    if filters:
        lines.append("  seccomp filters: " + ", ".join(filters))
    return lines
