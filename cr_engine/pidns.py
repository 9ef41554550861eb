"""The tree's own pid namespaces (the root's when it is an init, and those nested below):
each one's init and the last pid it gave (ns_last_pid), which decides the pid its next
process gets.

/proc/sys/kernel/ns_last_pid answers for the pid namespace of the process reading it, and
only a process of a namespace may write it.  So a short-lived process is made in the
namespace (setns to its init's pidfd, then clone3): with set_tid at every level of the
tree, where choosing the pid does not move the namespace's cursor, at numbers no process
of the tree has.  It reads the value at dump; at restore, once every process and thread of
the tree exists, it writes it.
"""

import os
import struct

from kernel.namespaces import CLONE_NEWPID, setns
from kernel.process import fork3, pidfd_open

from . import pstree
from .errors import DumpError, RestoreError

PATH = "/proc/sys/kernel/ns_last_pid"
TRIES = 64                      # numbers tried, from the free ones up (io threads take pids)


def table(image):
    """{namespace link: {"init": its init's pid, "level": its depth below ours}} of the
    namespaces whose init is in the tree (pstree.json's processes)."""
    out = {}
    for entry in image["processes"]:
        ids = pstree.levels(entry)
        if "pidns" in ids and ids["pid"][-1] == 1 and not entry["zombie"]:
            out[ids["pidns"]] = {"init": entry["pid"], "level": len(ids["pid"]) - 1}
    return out


def dump_last_pids(image):
    """pstree.json's "pid_namespaces": each namespace of the tree's with its ns_last_pid."""
    namespaces = table(image)
    free = pstree.free_numbers(image["processes"])
    for link, ns in namespaces.items():
        value = _in_namespace(ns["init"], free[1:ns["level"] + 1], None)
        if value is None:
            raise DumpError(f"cannot read ns_last_pid of the pid namespace {link}")
        ns["last_pid"] = value
    return namespaces


def restore_last_pids(image, live):
    """Write each namespace's ns_last_pid back (``live``: dumped pid -> ours)."""
    free = pstree.free_numbers(image["processes"])
    for ns in image.get("pid_namespaces", {}).values():
        init = live.get(ns["init"], ns["init"])
        if _in_namespace(init, free[1:ns["level"] + 1], ns["last_pid"]) != 0:
            raise RestoreError(f"cannot set ns_last_pid of the pid namespace of pid "
                               f"{ns['init']} to {ns['last_pid']}", "resume")


def _in_namespace(init, numbers, value):
    """In a process of the pid namespace whose init is ``init`` (ours: its pid in ours),
    made with pids ``numbers`` (outermost of the tree's first): read ns_last_pid (``value``
    None: returns it) or write ``value`` (returns 0).  None when that failed."""
    r, w = os.pipe2(os.O_CLOEXEC)
    helper = os.fork()
    if helper == 0:
        code = 1
        try:
            os.close(r)
            pidfd = pidfd_open(init)
            setns(pidfd, CLONE_NEWPID)
            for step in range(TRIES):   # a number a process outside the image took
                try:
                    child, _ = fork3(set_tid=[n + step for n in reversed(numbers)])
                    break
                except FileExistsError:
                    if step == TRIES - 1:
                        raise
            if child == 0:
                try:
                    if value is None:
                        with open(PATH) as f:
                            os.write(w, struct.pack("<q", int(f.read())))
                    else:
                        with open(PATH, "w") as f:
                            f.write(str(value))
                        os.write(w, struct.pack("<q", 0))
                finally:
                    os._exit(0)
            code = 0 if os.waitpid(child, 0)[1] == 0 else 1
        finally:
            os._exit(code)
    os.close(w)
    try:
        got = os.read(r, 8)
    finally:
        os.close(r)
        os.waitpid(helper, 0)
    return struct.unpack("<q", got)[0] if len(got) == 8 else None
