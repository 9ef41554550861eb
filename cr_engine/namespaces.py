"""Namespaces a tree has of its own, besides a pid namespace whose init is its root
(dump._check_tree, pstree): the UTS namespace (host and domain name) and the IPC
namespace (its SysV objects, which sysv_ipc dumps and makes from inside it).

A kind is carried when the root's namespace of it is not the dumper's and every process of
the tree shares the root's; at restore the root is cloned into a new one of each kind, and
its stub sets it up before it becomes the root (so that its children inherit it).
"""

import ctypes
import os
import socket
import threading

from kernel.libc import syscall
from kernel.namespaces import CLONE_NEWIPC, CLONE_NEWUTS, setns

CARRIED = {"uts": CLONE_NEWUTS, "ipc": CLONE_NEWIPC}
UTSNAME_FIELD = 65              # struct utsname: six fields of 65 bytes


def own(root):
    """{kind: link} of the kinds of CARRIED the root has a namespace of its own of."""
    out = {}
    for kind in CARRIED:
        theirs = os.readlink(f"/proc/{root}/ns/{kind}")
        if theirs != os.readlink(f"/proc/self/ns/{kind}"):
            out[kind] = theirs
    return out


def dump(rem, scratch, kinds):
    """The image of the root's own namespaces (``rem``: a Remote of the frozen root): one
    entry per kind; an IPC namespace's content is sysv_ipc's."""
    out = {kind: {} for kind in kinds}
    if "uts" in kinds:
        at = scratch.reserve(6 * UTSNAME_FIELD)
        rem.call("uname", at)
        raw = scratch.read(at, 6 * UTSNAME_FIELD)
        scratch.reset()
        field = [raw[i * UTSNAME_FIELD:(i + 1) * UTSNAME_FIELD].split(b"\0")[0].decode()
                 for i in range(6)]
        out["uts"] = {"hostname": field[1], "domainname": field[5]}
    return out


def clone_flags(image):
    """What the root's clone3 needs to make the namespaces of ``image``."""
    flags = 0
    for kind in image:
        flags |= CARRIED[kind]
    return flags


def enter(image):
    """In the root's stub, right after its clone: set up what its namespaces hold."""
    uts = image.get("uts")
    if uts:
        socket.sethostname(uts["hostname"])
        name = uts["domainname"].encode()
        syscall("setdomainname", ctypes.c_char_p(name), len(name))


def run_in(pid, kind, fn, *args):
    """``fn(*args)`` in a thread that joined the ``kind`` namespace of ``pid`` (a thread
    may change its own UTS, IPC or network namespace alone); returns what it returns."""
    out, failure = [], []

    def target():
        try:
            fd = os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
            try:
                setns(fd, CARRIED[kind])
            finally:
                os.close(fd)
            out.append(fn(*args))
        except BaseException as e:      # noqa: BLE001 - raised again in the caller
            failure.append(e)
    thread = threading.Thread(target=target, name=f"in-{kind}-ns-of-{pid}")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return out[0]


def describe(image):
    """Short lines for `show`."""
    lines = []
    uts = image.get("uts")
    if uts:
        lines.append(f"  uts namespace: hostname {uts['hostname']!r} domainname "
                     f"{uts['domainname']!r}")
    if "ipc" in image:
        lines.append("  ipc namespace of its own (objects: see SysV IPC)")
    return lines
