"""Namespaces a tree has of its own, besides a pid namespace whose init is its root
(dump._check_tree, pstree): the UTS namespace (host and domain name), the IPC namespace
(its SysV objects, which sysv_ipc dumps and makes from inside it) and a network namespace
with its loopback device only (up or down, its addresses; the sockets in it are dumped
and made from inside it).  Mount namespaces, any number of them, are mnt_model's and
mnt_build's.

All of them may belong to a user namespace of the tree's own (a child of the dumper's, with
its uid and gid maps; every other namespace of the tree, its pid namespace too, owned by it).

A kind is carried when the root's namespace of it is not the dumper's and every process of
the tree shares the root's.  At restore a holder process makes them all first (the user
namespace first, its maps written by the restorer, then the others inside it, so that it
owns them), and the restorer keeps an fd of each: it makes the network namespace's sockets
in it, forks the root from a helper that joined the user namespace (so that the root's new
pid namespace belongs to it), and the root's stub joins the rest before any child.  Inside
a user namespace no process may choose its pid in ours (that takes privilege over our pid
namespace): the tree gets back the pids its own pid namespace gives it, and new ones in
ours, as under CRIU.
"""

import ctypes
import json
import os
import socket
import threading

from kernel import netlink
from kernel.libc import syscall
from kernel.namespaces import (CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWUSER, CLONE_NEWUTS,
                               ns_get_parent, ns_get_userns, related_ino, setns, unshare)

from .errors import RestoreError, Unsupported

CARRIED = {"uts": CLONE_NEWUTS, "ipc": CLONE_NEWIPC, "net": CLONE_NEWNET,
           "user": CLONE_NEWUSER}
UTSNAME_FIELD = 65              # struct utsname: six fields of 65 bytes
HOLDER_TIMEOUT = 10.0


def own(root):
    """{kind: link} of the kinds of CARRIED the root has a namespace of its own of."""
    out = {}
    for kind in CARRIED:
        theirs = os.readlink(f"/proc/{root}/ns/{kind}")
        if theirs != os.readlink(f"/proc/self/ns/{kind}"):
            out[kind] = theirs
    return out


def check_owners(root, kinds, pidns):
    """Refuse what could not be made again: a user namespace that is not a child of ours,
    or a namespace of the tree (its pid namespace too, when ``pidns``) owned by another
    user namespace than the tree's (ours when it has none of its own)."""
    ours = os.stat("/proc/self/ns/user").st_ino
    if "user" in kinds:
        if not pidns:
            raise Unsupported(f"unsupported: pid {root} has a user namespace of its own but "
                              f"not a pid namespace whose init it is")
        if related_ino(f"/proc/{root}/ns/user", ns_get_parent) != ours:
            raise Unsupported(f"unsupported: the user namespace of pid {root} is nested "
                              f"deeper than one level below the dumper's")
    for kind in [k for k in kinds if k != "user"] + (["pid"] if pidns else []):
        check_owner(root, kind, root, kinds)


def check_owner(pid, kind, root, kinds):
    """Refuse ``pid``'s namespace of ``kind`` if another user namespace than the tree's
    (the root's, when in ``kinds``, else ours) owns it."""
    owner = os.stat(f"/proc/{root}/ns/user" if "user" in kinds else "/proc/self/ns/user")
    if related_ino(f"/proc/{pid}/ns/{kind}", ns_get_userns) != owner.st_ino:
        raise Unsupported(f"unsupported: the {kind} namespace of pid {pid} belongs to "
                          f"another user namespace than the tree's")


def dump(rem, scratch, kinds):
    """The image of the root's own namespaces (``rem``: a Remote of the frozen root): one
    entry per kind; an IPC namespace's content is sysv_ipc's."""
    out = {kind: {} for kind in kinds}
    if "user" in kinds:
        out["user"] = _user_state(rem.tid)
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
    return out


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


def _user_state(pid):
    """The uid and gid maps ([inside, ours, count] lines) and whether setgroups is denied."""
    out = {}
    for name in ("uid_map", "gid_map"):
        with open(f"/proc/{pid}/{name}") as f:
            out[name] = [[int(x) for x in line.split()] for line in f if line.strip()]
    with open(f"/proc/{pid}/setgroups") as f:
        out["setgroups"] = f.read().strip()
    return out


def inside(lines, outer):
    """``outer`` (an id as we see it) as the user namespace of ``lines`` (a map) sees it."""
    for first, lower, count in lines:
        if lower <= outer < lower + count:
            return first + outer - lower
    raise RestoreError(f"id {outer} is not mapped in the tree's user namespace", "state")


def make(image):
    """Make the namespaces of ``image``, a user namespace first with the others inside it;
    returns {kind: fd}.  A holder process makes them; we write the user namespace's maps
    (root of the parent namespace may map any id) and keep an fd of each."""
    flags = 0
    for kind in image:
        if kind != "user":
            flags |= CARRIED[kind]
    if not image:
        return {}
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    holder = os.fork()
    if holder == 0:
        try:
            os.close(ready_r)
            os.close(go_w)
            if "user" in image:
                unshare(CLONE_NEWUSER)
                os.write(ready_w, b"u")
                os.read(go_r, 1)                # the maps are written
            if flags:
                unshare(flags)
            os.write(ready_w, b"n")
            os.read(go_r, 1)                    # until our namespaces have fds elsewhere
            os._exit(0)
        except BaseException as e:          # noqa: BLE001 - reported, then gone
            os.write(ready_w, json.dumps(str(e)).encode())
            os._exit(1)
    os.close(ready_w)
    os.close(go_r)
    fds = {}
    try:
        if "user" in image:
            _holder_says(ready_r, b"u")
            user = image["user"]
            _write_proc(holder, "setgroups", user["setgroups"])
            for name in ("uid_map", "gid_map"):
                _write_proc(holder, name, "".join(f"{a} {b} {c}\n" for a, b, c in user[name]))
            os.write(go_w, b"g")
        _holder_says(ready_r, b"n")
        for kind in image:
            fds[kind] = os.open(f"/proc/{holder}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
    except BaseException:
        for fd in fds.values():
            os.close(fd)
        raise
    finally:
        os.close(go_w)                          # the holder exits
        os.close(ready_r)
        os.waitpid(holder, 0)
    return fds


def _holder_says(ready_r, word):
    got = os.read(ready_r, 4096)
    if got != word:
        why = json.loads(got) if got else "it died"
        raise RestoreError(f"cannot make the namespaces: {why}", "prepare")


def _write_proc(pid, name, text):
    try:
        with open(f"/proc/{pid}/{name}", "w") as f:
            f.write(text)
    except OSError as e:
        raise RestoreError(f"cannot write the {name} of the new user namespace: "
                           f"{e.strerror}", "prepare") from None


def set_up_net(image, fd):
    """The loopback device of the new network namespace ``fd`` as ``image`` says."""
    def up():
        with netlink.open_socket(netlink.NETLINK_ROUTE) as sock:
            lo = next(head for head, _ in netlink.links(sock))
            netlink.link_set_up(sock, lo[2])
            have = {(f, p, a.hex()) for _, f, p, _, a in netlink.addresses(sock)}
            for family, prefixlen, scope, address in image["addresses"]:
                if (family, prefixlen, address) not in have:
                    netlink.add_address(sock, lo[2], family, prefixlen,
                                        bytes.fromhex(address), scope)
    if image["lo_up"]:
        run_in_fd(fd, "net", up)


def enter(image, joined):
    """In the root's stub, right after its fork: join the namespaces made for it
    (``joined``: kind -> fd; the user namespace it was forked into), set up what they
    hold."""
    for kind, fd in joined.items():
        if kind != "user":
            setns(fd, CARRIED[kind])
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
    user = image.get("user")
    if user:
        maps = "; ".join(f"{name[0]}id " + ", ".join(f"{a}->{b} x{c}" for a, b, c in user[name])
                         for name in ("uid_map", "gid_map"))
        lines.append(f"  user namespace: {maps}, setgroups {user['setgroups']}")
    uts = image.get("uts")
    if uts:
        lines.append(f"  uts namespace: hostname {uts['hostname']!r} domainname "
                     f"{uts['domainname']!r}")
    if "ipc" in image:
        lines.append("  ipc namespace of its own (objects: see SysV IPC)")
    net = image.get("net")
    if net:
        addresses = ", ".join(f"{_address(f, a)}/{p}" for f, p, _, a in net["addresses"])
        lines.append(f"  net namespace: lo {'up' if net['lo_up'] else 'down'}"
                     + (f", {addresses}" if addresses else ""))
    return lines


def _address(family, hexed):
    return socket.inet_ntop(family, bytes.fromhex(hexed))
