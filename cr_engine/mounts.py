"""The mount namespace of a tree, in one of two shapes the engine can make again.

A copy: the dumper's mounts (the namespace was unshared from ours) with /proc mounts of
the tree's own on top, made private or not - what `unshare --mount-proc` makes.

A private root: the tree pivoted into a tmpfs of its own, holding binds of what we can
reach (/usr, a device node, ...), /proc mounts and further tmpfs mounts, all private -
what a container runtime makes.  Each mount is dumped as how to make it again: a bind (of
a path of ours: the mount of the same device whose root holds the bound root, checked by
inode), a proc mount, or a tmpfs with its files (directories, files up to a size,
symbolic links; mount points as empty directories or files).  At restore the root's stub
builds the tree on a staging directory (the images', mounted over in the tree's new mount
namespace only, where nothing is bound from under it: binds are not recursive) and pivots
into it.

Propagation other than private (shared, slave) is issue 10's.
"""

import collections
import errno
import os
import stat

from kernel import mount as kmount
from kernel.libc import syscall
from kernel.procfs import mountinfo

from .errors import RestoreError, Unsupported

MOUNT_FLAGS = {"ro": kmount.MS_RDONLY, "nosuid": kmount.MS_NOSUID, "nodev": kmount.MS_NODEV,
               "noexec": kmount.MS_NOEXEC, "noatime": kmount.MS_NOATIME,
               "nodiratime": kmount.MS_NODIRATIME, "relatime": kmount.MS_RELATIME,
               "strictatime": kmount.MS_STRICTATIME}
BIND_DEFAULT = kmount.MS_RELATIME       # what a bind gets without a remount
TMPFS_MAX = 16 << 20                    # bytes of file content a tree's tmpfs may hold
OLD_ROOT = ".cr_engine-old-root"        # where pivot_root puts the staging namespace

Mount = collections.namedtuple("Mount", "point root fstype source options super shared")


def _flags(options):
    flags = 0
    for word in options.split(","):
        flags |= MOUNT_FLAGS.get(word, 0)
    return flags


def _data(super_options):
    return ",".join(w for w in super_options.split(",") if w not in ("rw", "ro")) or None


def dump(pid):
    """The image of the mount namespace of ``pid`` (see the module's docstring)."""
    theirs, ours = mountinfo(f"/proc/{pid}/mountinfo"), mountinfo()
    root, our_root = _root(theirs), _root(ours)
    if (root["dev"], root["root"]) == (our_root["dev"], our_root["root"]):
        return _copy_state(pid, theirs, ours)
    return {"tree": _tree_state(pid, theirs, ours)}


def _root(table):
    ids = {m["id"] for m in table}
    return next(m for m in table if m["parent"] not in ids or m["parent"] == m["id"])


# a copy -------------------------------------------------------------------------------------
def _plain(table):
    """``table`` without ids and peer groups."""
    return [Mount(m["mount_point"], m["root"], m["fstype"], m["source"], m["options"],
                  m["super_options"], bool(m["optional"])) for m in table]


def _copy_state(pid, theirs, ours):
    """The dumper's mounts (a copy), plus proc mounts of the tree's own; whether it was made
    private."""
    theirs = _plain(theirs)
    left = collections.Counter(m._replace(shared=False) for m in _plain(ours))
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
        kmount.mount("proc", point, "proc", _flags(options), _data(sup))


# a private root ------------------------------------------------------------------------------
def _tree_state(pid, theirs, ours):
    where = f"the mount namespace of pid {pid}"
    order, seen = [], set()
    todo = [_root(theirs)]
    while todo:                         # parents before children, the kernel's order kept
        m = todo.pop(0)
        order.append(m)
        seen.add(m["id"])
        todo += [c for c in theirs if c["parent"] == m["id"] and c["id"] not in seen
                 and c is not m]
    if len(order) != len(theirs):
        lost = [m for m in theirs if m["id"] not in seen][0]
        raise Unsupported(f"unsupported: {lost['mount_point']} in {where} hangs off no "
                          f"mount of the tree (parent {lost['parent']})")
    points = {m["mount_point"] for m in order}
    out = []
    for m in order:
        if m["optional"]:
            raise Unsupported(f"unsupported: {m['mount_point']} in {where} propagates "
                              f"({' '.join(m['optional'])}): only private mounts are carried")
        entry = {"point": m["mount_point"], "options": m["options"], "fstype": m["fstype"],
                 "source": m["source"], "data": m["super_options"]}
        if m["fstype"] == "proc":
            entry["kind"] = "proc"
        elif any(o["dev"] == m["dev"] for o in ours):
            entry["kind"], entry["from"] = "bind", _reachable(pid, m, ours, where)
        elif m["fstype"] == "tmpfs":
            entry["kind"] = "tmpfs"
            entry["files"] = _tmpfs_files(pid, m["mount_point"], points, where)
        else:
            raise Unsupported(f"unsupported: {m['fstype']} {m['source']} at "
                              f"{m['mount_point']} in {where}: neither a bind of ours, nor "
                              f"proc, nor tmpfs")
        out.append(entry)
    if out[0]["kind"] != "tmpfs":
        raise Unsupported(f"unsupported: the root of {where} is a {out[0]['fstype']} "
                          f"{out[0]['kind']}, not a tmpfs of its own")
    return out


def _reachable(pid, m, ours, where):
    """The path of ours that mount ``m`` of the tree binds: the same inode as its root."""
    there = os.stat(f"/proc/{pid}/root{m['mount_point']}")
    for o in ours:
        base = o["root"].rstrip("/")
        if o["dev"] != m["dev"] or not (m["root"] == o["root"] or
                                        m["root"].startswith(base + "/")):
            continue
        path = o["mount_point"].rstrip("/") + m["root"][len(base):] or "/"
        try:
            here = os.stat(path)
        except OSError:
            continue
        if (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino):
            return path
    raise Unsupported(f"unsupported: {m['mount_point']} in {where} binds {m['root']} of "
                      f"{m['source']}, which the dumper cannot reach")


def _tmpfs_files(pid, point, points, where):
    """[path, kind, mode, uid, gid, content] of a tmpfs of the tree, parents first: "d"
    directory, "f" file (content hex), "l" symbolic link (target), "m"/"M" a mount point
    that is a directory / not one (made empty, never read)."""
    base = f"/proc/{pid}/root{point}".rstrip("/")
    out, total = [], 0
    todo = [""]
    while todo:
        rel = todo.pop(0)
        with os.scandir(base + rel or "/") as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            path = f"{rel}/{e.name}"
            tree_path = (point.rstrip("/") + path) or "/"
            st = e.stat(follow_symlinks=False)
            row = [path, "", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, ""]
            if tree_path in points:
                row[1] = "m" if stat.S_ISDIR(st.st_mode) else "M"
            elif stat.S_ISDIR(st.st_mode):
                row[1] = "d"
                todo.append(path)
            elif stat.S_ISLNK(st.st_mode):
                row[1], row[5] = "l", os.readlink(e.path)
            elif stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
                total += st.st_size
                if total > TMPFS_MAX:
                    raise Unsupported(f"unsupported: the tmpfs at {point} in {where} holds "
                                      f"more than {TMPFS_MAX >> 20} MiB")
                with open(e.path, "rb") as f:
                    row[1], row[5] = "f", f.read().hex()
            else:
                raise Unsupported(f"unsupported: {tree_path} in {where} (a tmpfs of its "
                                  f"own) is neither a directory, nor a file with one link, "
                                  f"nor a symbolic link")
            out.append(row)
    return out


def _build_tree(tree, staging, ids):
    """In the root's stub, in a new mount namespace (a copy of the restorer's): the tree's
    mounts on ``staging``, then pivot_root into them.  ``ids(uid, gid)``: the ids to give
    files, as the stub's user namespace numbers them."""
    kmount.mount(None, "/", None, kmount.MS_REC | kmount.MS_PRIVATE)
    if any(m["kind"] == "bind" and (m["from"] + "/").startswith(staging.rstrip("/") + "/")
           for m in tree):
        raise RestoreError(f"the tree binds {staging} or a path below it, where its root is "
                           f"built", "fork")
    for m in tree:
        target = staging + (m["point"] if m["point"] != "/" else "")
        flags = _flags(m["options"])
        try:
            if m["kind"] == "tmpfs":
                kmount.mount(m["source"], target, "tmpfs", flags, _data(m["data"]))
                _fill(target, m["files"], ids)
            elif m["kind"] == "proc":
                kmount.mount("proc", target, "proc", flags, _data(m["data"]))
            elif _already(m["from"], target):
                continue            # a recursive bind above brought it along, locked
            else:
                _bind(m["from"], target)
                if flags != BIND_DEFAULT:
                    kmount.mount(None, target, None,
                                 kmount.MS_REMOUNT | kmount.MS_BIND | flags)
        except OSError as e:
            raise RestoreError(f"cannot mount {m['kind']} at {m['point']}: {e}",
                               "fork") from None
    os.mkdir(os.path.join(staging, OLD_ROOT), 0o700)
    os.chdir(staging)
    syscall("pivot_root", b".", OLD_ROOT.encode())
    os.chdir("/")
    kmount.umount2("/" + OLD_ROOT, kmount.MNT_DETACH)
    os.rmdir("/" + OLD_ROOT)


def _bind(source, target):
    """A bind mount; in a user namespace an older kernel may refuse a plain one of a path
    on a mount with locked children anywhere (EINVAL): then a recursive one, and what it
    brought along from below the source is unmounted again where it may be (the locked
    ones stay; the tree's own entry for one of them is then skipped: _already)."""
    try:
        kmount.mount(source, target, None, kmount.MS_BIND)
        return
    except OSError as e:
        if e.errno != errno.EINVAL:
            raise
    kmount.mount(source, target, None, kmount.MS_BIND | kmount.MS_REC)
    below = [m["mount_point"] for m in mountinfo()
             if m["mount_point"].startswith(target.rstrip("/") + "/")]
    for point in sorted(below, key=len, reverse=True):
        try:
            kmount.umount2(point, kmount.MNT_DETACH)
        except OSError:
            pass


def _already(source, target):
    """Whether ``target`` is already a mount point showing ``source``."""
    try:
        here, there, parent = os.stat(target), os.stat(source), os.stat(target + "/..")
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino) and \
        here.st_dev != parent.st_dev


def _fill(top, files, ids):
    for path, kind, mode, uid, gid, content in files:
        where = top + path
        if kind in ("d", "m"):
            os.mkdir(where)
        elif kind == "l":
            os.symlink(content, where)
        else:
            fd = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                if kind == "f":
                    os.write(fd, bytes.fromhex(content))
            finally:
                os.close(fd)
        os.lchown(where, *ids(uid, gid))
        if kind != "l":
            os.chmod(where, mode)


def enter(image, staging, ids):
    """In the root's stub, after it joined its new mount namespace: make the tree's."""
    if "tree" in image:
        _build_tree(image["tree"], staging, ids)
    else:
        _mount_procs(image)


def describe(image):
    if "tree" not in image:
        return (f"a {'private ' if image['private'] else ''}copy of the dumper's" +
                "".join(f", proc at {p}" for p, _, _ in image["proc"]))
    parts = []
    for m in image["tree"]:
        what = {"bind": lambda: f"bind of {m['from']}", "proc": lambda: "proc",
                "tmpfs": lambda: f"tmpfs ({len(m['files'])} entries)"}[m["kind"]]()
        parts.append(f"{m['point']}: {what}")
    return "a private root: " + "; ".join(parts)
