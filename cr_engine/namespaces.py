"""Namespaces a tree has of its own, besides a pid namespace whose init is its root
(dump._check_tree, pstree): the UTS namespace (host and domain name), the IPC namespace
(its SysV objects, which sysv_ipc dumps and makes from inside it), a network namespace
with its loopback device only (up or down, its addresses; the sockets in it are dumped
and made from inside it), and a mount namespace that is a copy of the dumper's with
/proc mounts of its own on top (made private or not) - what a container of the tree's
own pid namespace mounts first.

A kind is carried when the root's namespace of it is not the dumper's and every process of
the tree shares the root's; at restore the root is cloned into a new one of each kind, and
its stub sets it up before it becomes the root (so that its children inherit it).
"""

import ctypes
import os
import socket
import threading

import collections

from kernel import mount as kmount
from kernel import netlink
from kernel.libc import syscall
from kernel.namespaces import (CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWUTS, setns,
                               unshare)

from .errors import Unsupported

CARRIED = {"uts": CLONE_NEWUTS, "ipc": CLONE_NEWIPC, "net": CLONE_NEWNET, "mnt": CLONE_NEWNS}
MOUNT_FLAGS = {"ro": kmount.MS_RDONLY, "nosuid": kmount.MS_NOSUID, "nodev": kmount.MS_NODEV,
               "noexec": kmount.MS_NOEXEC}
# made by the restorer before the sockets in it, joined by the root's stub
JOINED = ("net",)
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
    if "net" in kinds:
        out["net"] = run_in(rem.tid, "net", _net_state, rem.tid)
    if "mnt" in kinds:
        out["mnt"] = _mnt_state(rem.tid)
    return out


Mount = collections.namedtuple("Mount", "point root fstype source options super shared")


def _mounts(pid):
    """The mounts ``pid`` sees, ids and peer groups left out."""
    out = []
    with open(f"/proc/{pid}/mountinfo") as f:
        for line in f:
            head, _, tail = line.rstrip("\n").partition(" - ")
            fields, (fstype, source, sup) = head.split(), tail.split(" ", 2)
            out.append(Mount(fields[4], fields[3], fstype, source, fields[5], sup,
                             bool(fields[6:])))
    return out


def _mnt_state(pid):
    """A mount namespace the engine can make again: the dumper's mounts (a copy), plus proc
    mounts of the tree's own; whether it was made private."""
    theirs = _mounts(pid)
    left = collections.Counter(m._replace(shared=False) for m in _mounts("self"))
    extra = []
    for m in theirs:
        key = m._replace(shared=False)
        if left[key]:
            left[key] -= 1
        else:
            extra.append(m)
    strange = [m for m in extra if m.fstype != "proc"] + list((+left).keys())
    if strange:
        m = strange[0]
        raise Unsupported(f"unsupported: the mount namespace of pid {pid} is not a copy of "
                          f"the dumper's with /proc mounts of its own ({m.fstype} "
                          f"{m.source} at {m.point} {'is missing' if m in left else 'added'})")
    return {"private": not any(m.shared for m in theirs),
            "proc": [[m.point, m.options, m.super] for m in extra]}


def _mount_procs(image):
    """In the root's stub (a new pid namespace's init): make the copied mounts private as
    they were, put the tree's /proc mounts on top."""
    if image["private"]:
        kmount.mount(None, "/", None, kmount.MS_REC | kmount.MS_PRIVATE)
    for point, options, sup in image["proc"]:
        flags = 0
        for word in options.split(","):
            flags |= MOUNT_FLAGS.get(word, 0)
        data = ",".join(w for w in sup.split(",") if w not in ("rw", "ro")) or None
        kmount.mount("proc", point, "proc", flags, data)


def _net_state(pid):
    """The loopback device's state and addresses; any other device is refused."""
    with netlink.open_socket(netlink.NETLINK_ROUTE) as sock:
        links = netlink.links(sock)
        lo = None
        for head, attrs in links:
            name = attrs.get(netlink.IFLA_IFNAME, b"").rstrip(b"\0").decode()
            if name != "lo":
                raise Unsupported(f"unsupported: network device {name} in the network "
                                  f"namespace of pid {pid}")
            lo = head
        addresses = [[family, prefixlen, scope, address.hex()]
                     for index, family, prefixlen, scope, address in netlink.addresses(sock)
                     if lo is not None and index == lo[2]]
    return {"lo_up": bool(lo and lo[3] & netlink.IFF_UP), "addresses": addresses}


def new_net(image):
    """A new network namespace set up as ``image`` says: an fd of it (the sockets of the
    tree are made in it, the root's stub joins it)."""
    def make():
        unshare(CLONE_NEWNET)
        with netlink.open_socket(netlink.NETLINK_ROUTE) as sock:
            if image["lo_up"]:
                lo = next(head for head, _ in netlink.links(sock))
                netlink.link_set_up(sock, lo[2])
                have = {(f, p, a.hex()) for _, f, p, _, a in netlink.addresses(sock)}
                for family, prefixlen, scope, address in image["addresses"]:
                    if (family, prefixlen, address) not in have:
                        netlink.add_address(sock, lo[2], family, prefixlen,
                                            bytes.fromhex(address), scope)
        return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    return _in_thread(make)


def clone_flags(image):
    """What the root's clone3 needs to make the namespaces of ``image`` (those the
    restorer makes beforehand are joined instead)."""
    flags = 0
    for kind in image:
        if kind not in JOINED:
            flags |= CARRIED[kind]
    return flags


def enter(image, joined):
    """In the root's stub, right after its clone: join the namespaces made for it
    (``joined``: kind -> fd), set up what the others hold."""
    for kind, fd in joined.items():
        setns(fd, CARRIED[kind])
    if "mnt" in image:
        _mount_procs(image["mnt"])
    uts = image.get("uts")
    if uts:
        socket.sethostname(uts["hostname"])
        name = uts["domainname"].encode()
        syscall("setdomainname", ctypes.c_char_p(name), len(name))


def run_in(pid, kind, fn, *args):
    """``fn(*args)`` in a thread that joined the ``kind`` namespace of ``pid`` (a thread
    may change its own UTS, IPC or network namespace alone); returns what it returns."""
    def joined():
        fd = os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            setns(fd, CARRIED[kind])
        finally:
            os.close(fd)
        return fn(*args)
    return _in_thread(joined)


def run_in_fd(fd, kind, fn, *args):
    """``fn(*args)`` in a thread that joined the namespace of ``fd``; None: here."""
    if fd is None:
        return fn(*args)

    def joined():
        setns(fd, CARRIED[kind])
        return fn(*args)
    return _in_thread(joined)


def _in_thread(fn):
    out, failure = [], []

    def target():
        try:
            out.append(fn())
        except BaseException as e:      # noqa: BLE001 - raised again in the caller
            failure.append(e)
    thread = threading.Thread(target=target, name="namespace")
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
    if "mnt" in image:
        mnt = image["mnt"]
        lines.append(f"  mount namespace: a {'private ' if mnt['private'] else ''}copy of the "
                     f"dumper's" + "".join(f", proc at {p}" for p, _, _ in mnt["proc"]))
    net = image.get("net")
    if net:
        addresses = ", ".join(f"{_address(f, a)}/{p}" for f, p, _, a in net["addresses"])
        lines.append(f"  net namespace: lo {'up' if net['lo_up'] else 'down'}"
                     + (f", {addresses}" if addresses else ""))
    return lines


def _address(family, hexed):
    return socket.inet_ntop(family, bytes.fromhex(hexed))
