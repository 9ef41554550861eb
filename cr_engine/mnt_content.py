"""The content of a tree's tmpfs file systems, carried in the images (``mnt-content.img``).

Dump walks an *uncovered* view of each super block: a non-recursive clone
(``open_tree(OPEN_TREE_CLONE)``) of one of its mounts has no child mounts, so mount points
show the directories beneath them and whatever they hide. The mount is reached in a
private copy of the tree's mount namespace, where whatever covers it can be detached
without the tree seeing it. The walk only uses calls relative to directory fds that
follow no symlink and leave no mount (the tree controls this file system: a planted
symlink must never make the dumper read a host file), and it leaves atimes as they were.

Each entry (parents before children, names sorted) is a dict: ``path`` (relative, "" for
the root), ``type`` (``d``, ``f``, ``l``, ``h``, ``p``, ``c``, ``b``), and but for ``h``
(another name of an inode already listed: ``link`` is its first path) ``mode``, ``uid``,
``gid`` (as the dumper numbers them), ``atime_ns``, ``mtime_ns``, ``xattrs`` ({name: hex});
``f`` adds ``size`` and ``data`` ([file offset, length, image offset] per data region:
holes stay holes), ``l`` its ``target``, ``c``/``b`` their ``rdev`` [major, minor].

Restore (``fill``) makes the entries in a new, empty tmpfs, again relative to directory
fds only, then sets owners, xattrs, modes and last times, children before parents.
"""

import errno
import json
import os
import resource
import socket
import stat

from kernel import fdinfo
from kernel import mount as kmount
from kernel import namespaces as kns
from kernel.procfs import mountinfo

from .errors import DumpError, RestoreError, Unsupported

_CHUNK = 1 << 20
# lookups in the tree's file system: below the directory, no symlink, no other mount
_BENEATH = (kmount.RESOLVE_BENEATH | kmount.RESOLVE_NO_SYMLINKS | kmount.RESOLVE_NO_XDEV |
            kmount.RESOLVE_NO_MAGICLINKS)
_TYPES = {stat.S_IFDIR: "d", stat.S_IFREG: "f", stat.S_IFLNK: "l", stat.S_IFIFO: "p",
          stat.S_IFCHR: "c", stat.S_IFBLK: "b"}
_NODES = {"p": stat.S_IFIFO, "c": stat.S_IFCHR, "b": stat.S_IFBLK}


# --- dump ---------------------------------------------------------------------------

def dump(pid, targets, sink):
    """Content of tmpfs superblocks of the mount namespace of ``pid``.

    targets: list of (label, point, root, dev) -- one mount per superblock to dump, as
    the namespace's table lists it (point: namespace-absolute; root: the mount's root
    within its fs; dev: "major:minor"). sink: a binary file opened for writing; file data
    is appended to it. Returns {label: {"entries": [...], "bytes": total}}."""
    targets = [tuple(t) for t in targets]
    if not targets:
        return {}
    sink.flush()                # the child writes through the fd, after what is buffered
    try:
        out = in_child(lambda: _dump_child(pid, targets, sink.fileno()))
    finally:
        sink.seek(0, os.SEEK_END)
    return {label: part for (label, *_), part in zip(targets, out)}


def _dump_child(pid, targets, out):
    # one fd per directory level of the walk: allow as many as we may
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    views = _uncovered_views(pid, targets)
    return [_Walk(out, point).run(view) for view, (_, point, _, _) in zip(views, targets)]


def in_child(work):
    """``work()`` in a forked child (a single thread: setns, unshare and fchdir are its
    own); its JSON answer, or its exception raised again here."""
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(r)
        _answer(w, work)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        raw = f.read()
    _, status = os.waitpid(child, 0)
    return _result(raw, status)


def _answer(w, work):
    """Run ``work`` and write what it gave or raised to ``w``; never returns."""
    try:
        data = json.dumps(_run(work)).encode()
        while data:
            data = data[os.write(w, data):]
    finally:
        os._exit(0)


def _run(work):
    """{"ok": work()}, or what it raised told so that _result raises it again."""
    try:
        return {"ok": work()}
    except Unsupported as e:
        return {"error": "unsupported", "message": str(e)}
    except DumpError as e:
        return {"error": "failed", "message": str(e)}
    except BaseException as e:              # noqa: BLE001 - told to the parent
        return {"error": "failed", "message": f"tmpfs content: {str(e) or type(e).__name__}"}


def _result(raw, status=0):
    try:
        msg = json.loads(raw)
    except ValueError:
        raise DumpError(f"tmpfs content: the helper died (wait status {status})") from None
    if "ok" in msg:
        return msg["ok"]
    if msg["error"] == "unsupported":
        raise Unsupported(msg["message"])
    raise DumpError(msg["message"])


def _uncovered_views(pid, targets):
    """fds of non-recursive clones of the targets, made by a helper in a private copy of
    the tree's mount namespace and passed back (the walk stays in our namespaces, with our
    credentials: the ids, trusted.* xattrs and capabilities are read as we see them)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    child = os.fork()
    if child == 0:
        ours.close()
        _send_views(theirs, pid, targets)
    theirs.close()
    try:
        raw, fds, _, _ = socket.recv_fds(ours, 1 << 16, len(targets))
    finally:
        ours.close()
        _, status = os.waitpid(child, 0)
    _result(raw, status)
    if len(fds) != len(targets):
        raise DumpError(f"tmpfs content: got {len(fds)} views of {len(targets)} mounts")
    return fds


def _send_views(sock, pid, targets):
    """In the helper: clone every target, send the fds; never returns."""
    try:
        fds = []
        msg = _run(lambda: fds.extend(_clone_all(pid, targets)))
        socket.send_fds(sock, [json.dumps(msg).encode()], fds if "ok" in msg else [])
    finally:
        os._exit(0)


def _clone_all(pid, targets):
    proc = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)   # before setns:
    mnt = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)   # the tree may
    _enter_owner(mnt)                                                  # have no /proc
    fds, table = [], None
    for _, point, root, dev in targets:
        if table is None:
            # a private copy, fresh again after a peel: peeling for one target may have
            # detached another
            kns.setns(mnt, kns.CLONE_NEWNS)
            kns.unshare(kns.CLONE_NEWNS)
            # rprivate, or unmounting in the copy would propagate into the tree
            kmount.mount(None, "/", None, kmount.MS_REC | kmount.MS_PRIVATE)
            table = _table(proc)
        view, peeled = _uncovered(proc, table, point, root, dev)
        fds.append(view)
        if peeled:
            table = None
    return fds


def _enter_owner(mnt):
    """Join the user namespace owning the tree's mount namespace if it is not ours: a
    copy made from another user namespace locks every mount (none could be detached)."""
    owner = kns.ns_get_userns(mnt)
    mine = os.stat("/proc/self/ns/user")
    st = os.fstat(owner)
    if (st.st_dev, st.st_ino) != (mine.st_dev, mine.st_ino):
        kns.setns(owner, kns.CLONE_NEWUSER)
    os.close(owner)


def _uncovered(proc, table, point, root, dev):
    """A non-recursive clone of the mount (point, root, dev) of our copy (whose mounts
    ``table`` lists), after detaching whatever covers it; and whether anything was."""
    target = next((m for m in table if (m["mount_point"], m["root"], m["dev"]) ==
                   (point, root, dev)), None)
    if target is None:
        raise DumpError(f"tmpfs content: no mount {dev} {root} at {point} in the tree")
    keep = _ancestors(table, target)
    for peeled in range(len(table) + 1):
        fd = _open_point(point)
        if fd is None:              # the point itself is hidden (a mount over a parent)
            _peel(proc, point, keep)
            continue
        if _mnt_id(proc, fd) == target["id"]:
            try:
                view = kmount.open_tree(fd, "", kmount.OPEN_TREE_CLONE | kmount.AT_EMPTY_PATH |
                                        kmount.OPEN_TREE_CLOEXEC)
            except OSError as e:
                raise DumpError(f"tmpfs content: cannot clone the mount at {point}: "
                                f"{e.strerror}") from None
            finally:
                os.close(fd)
            _noatime(view)
            return view, peeled > 0
        os.close(fd)
        _peel(proc, point, keep)
    raise DumpError(f"tmpfs content: the mount at {point} stays covered")


def _table(proc):
    os.fchdir(proc)             # the copy's own table, through our /proc
    return mountinfo("self/mountinfo")


def _ancestors(table, target):
    by_id = {m["id"]: m for m in table}
    keep, m = set(), target
    while m is not None and m["id"] not in keep:
        keep.add(m["id"])
        m = by_id.get(m["parent"])
    return keep


def _open_point(path):
    try:
        return kmount.openat2(kmount.AT_FDCWD, path, os.O_PATH | os.O_CLOEXEC,
                              resolve=kmount.RESOLVE_NO_SYMLINKS | kmount.RESOLVE_NO_MAGICLINKS)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise DumpError(f"tmpfs content: cannot reach {path}: {e.strerror}") from None


def _mnt_id(proc, fd):
    f = os.open(f"self/fdinfo/{fd}", os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc)
    with os.fdopen(f) as text:
        return int(fdinfo.parse(text.read())["mnt_id"])


def _peel(proc, point, keep):
    """Detach the outermost mount covering ``point``: the first prefix of it (shortest
    first) that resolves to a mount that is neither the target nor one of its ancestors
    is that mount's point (a detach takes the mounts above it along)."""
    parts = point.strip("/").split("/") if point != "/" else []
    for n in range(len(parts) + 1):
        path = "/" + "/".join(parts[:n])
        fd = _open_point(path)
        try:
            covering = _mnt_id(proc, fd) not in keep
        finally:
            os.close(fd)
        if covering:
            try:
                kmount.umount2(path, kmount.MNT_DETACH)
            except OSError as e:
                raise Unsupported(f"unsupported: the tmpfs at {point} is covered by a mount "
                                  f"at {path} that cannot be detached ({e.strerror})") from None
            return
    raise DumpError(f"tmpfs content: nothing found covering {point}")


def _noatime(view):
    """Make our clone noatime: reading directories and symlinks leaves atimes alone (files
    and directories are also opened O_NOATIME, for where this is refused)."""
    attr = kmount.MountAttr(attr_set=kmount.MOUNT_ATTR_NOATIME, attr_clr=kmount.MOUNT_ATTR__ATIME)
    try:
        kmount.mount_setattr(view, "", kmount.AT_EMPTY_PATH, attr)
    except OSError:
        pass


class _Walk:
    """The entries of one uncovered view; file data appended to ``out``."""

    def __init__(self, out, point):
        self.out, self.point = out, point
        self.entries, self.total, self.first = [], 0, {}
        self.cwd = None

    def run(self, view):
        top_st = os.fstat(view)
        done = {"entries": self.entries, "ino": top_st.st_ino}
        if not stat.S_ISDIR(top_st.st_mode):    # a bind of a file: that file alone
            self.entries.append(self._file_root(view, top_st))
            os.close(view)
            return dict(done, bytes=self.total)
        top = _open_beneath(view, ".", os.O_RDONLY | os.O_DIRECTORY)
        os.close(view)
        self.entries.append(self._entry(top, ".", "", os.fstat(top)))
        stack = [(top, "", iter(sorted(os.listdir(top))))]
        while stack:
            dirfd, rel, names = stack[-1]
            name = next(names, None)
            if name is None:
                os.close(dirfd)
                if self.cwd == dirfd:       # the number may come back for another one
                    self.cwd = None
                stack.pop()
                continue
            path = f"{rel}/{name}" if rel else name
            st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            self.entries.append(self._entry(dirfd, name, path, st))
            if stat.S_ISDIR(st.st_mode):
                sub = _open_beneath(dirfd, name, os.O_RDONLY | os.O_DIRECTORY)
                stack.append((sub, path, iter(sorted(os.listdir(sub)))))
        return dict(done, bytes=self.total)

    def _file_root(self, view, st):
        """The entry of a view whose root is a regular file (no directory to name it
        from: read through the view itself, reopened)."""
        if not stat.S_ISREG(st.st_mode):
            raise Unsupported(f"unsupported: the mount at {self.point} binds a special "
                              f"file")
        fd = os.open(f"/proc/self/fd/{view}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            return {"path": "", "type": "f", "mode": stat.S_IMODE(st.st_mode),
                    "uid": st.st_uid, "gid": st.st_gid, "atime_ns": st.st_atime_ns,
                    "mtime_ns": st.st_mtime_ns, "size": st.st_size,
                    "xattrs": {key: os.getxattr(fd, key).hex()
                               for key in sorted(os.listxattr(fd))},
                    "data": [[start, length, self._append(fd, start, length)]
                             for start, length in _regions(fd, st.st_size)]}
        finally:
            os.close(fd)

    def _entry(self, dirfd, name, path, st):
        kind = _TYPES.get(stat.S_IFMT(st.st_mode))
        if kind is None:
            what = "socket file" if stat.S_ISSOCK(st.st_mode) else "special file"
            raise Unsupported(f"unsupported: {what} {os.path.join(self.point, path)} "
                              "in a tmpfs of the tree")
        if kind != "d" and st.st_nlink > 1:
            if st.st_ino in self.first:
                return {"path": path, "type": "h", "link": self.first[st.st_ino]}
            self.first[st.st_ino] = path
        entry = {"path": path, "type": kind, "mode": stat.S_IMODE(st.st_mode),
                 "uid": st.st_uid, "gid": st.st_gid, "atime_ns": st.st_atime_ns,
                 "mtime_ns": st.st_mtime_ns, "xattrs": self._xattrs(dirfd, name)}
        if kind == "f":
            entry["size"] = st.st_size
            entry["data"] = self._data(dirfd, name, st)
        elif kind == "l":
            entry["target"] = os.readlink(name, dir_fd=dirfd)
        elif kind in "cb":
            entry["rdev"] = [os.major(st.st_rdev), os.minor(st.st_rdev)]
        return entry

    def _xattrs(self, dirfd, name):
        # os has no *xattr relative to a dir fd: by name from that directory
        if self.cwd != dirfd:
            os.fchdir(dirfd)
            self.cwd = dirfd
        return {key: os.getxattr(name, key, follow_symlinks=False).hex()
                for key in sorted(os.listxattr(name, follow_symlinks=False))}

    def _data(self, dirfd, name, st):
        fd = _open_beneath(dirfd, name, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            if os.fstat(fd).st_ino != st.st_ino:
                raise DumpError(f"tmpfs content: {self.point}/{name} changed while read")
            return [[start, length, self._append(fd, start, length)]
                    for start, length in _regions(fd, st.st_size)]
        finally:
            os.close(fd)

    def _append(self, fd, start, length):
        at = os.lseek(self.out, 0, os.SEEK_END)
        done = 0
        while done < length:
            n = _copy(self.out, fd, start + done, min(_CHUNK, length - done))
            if n == 0:
                raise DumpError(f"tmpfs content: a file under {self.point} shrank while read")
            done += n
        self.total += length
        return at


def _open_beneath(dirfd, name, flags):
    """openat2 below ``dirfd``, O_NOATIME where the kernel lets us."""
    flags |= os.O_CLOEXEC
    try:
        return kmount.openat2(dirfd, name, flags | os.O_NOATIME, resolve=_BENEATH)
    except OSError as e:
        if e.errno != errno.EPERM:
            raise
    return kmount.openat2(dirfd, name, flags, resolve=_BENEATH)


def _regions(fd, size):
    """(offset, length) of the data regions of the first ``size`` bytes."""
    at = 0
    while at < size:
        try:
            start = os.lseek(fd, at, os.SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:      # only a hole left
                return
            raise
        if start >= size:
            return
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        yield start, end - start
        at = end


def _copy(out, fd, offset, count):
    try:
        return os.sendfile(out, fd, offset, count)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOSYS):     # an O_APPEND image, say
            raise
    data = os.pread(fd, count, offset)
    os.write(out, data)
    return len(data)


# --- restore ------------------------------------------------------------------------

def fill(root_fd, entries, data_path, ids=None):
    """Make ``entries`` (as dump returned for one label) under ``root_fd`` (the root
    directory of a new, empty tmpfs), reading file data from ``data_path`` at the offsets
    the entries name. ``ids(uid, gid) -> (uid, gid)``: how the caller must give ids (None:
    as they are). Raises RestoreError(msg, "prepare") naming the path on failure."""
    if isinstance(entries, dict):       # dump's whole answer for the label
        entries = entries["entries"]
    data = os.open(data_path, os.O_RDONLY | os.O_CLOEXEC)
    cwd = os.open(".", os.O_PATH | os.O_CLOEXEC)
    dirs = _Dirs(root_fd)
    try:
        for entry in entries:
            _guard(entry, _make, dirs, entry, data)
        # children before parents: a directory's times after its entries are made
        for entry in reversed(entries):
            if entry["type"] != "h":
                _guard(entry, _settle, dirs, entry, ids)
    finally:
        dirs.close()
        os.fchdir(cwd)          # xattrs are set by name from each directory
        os.close(cwd)
        os.close(data)


def _guard(entry, step, *args):
    try:
        step(*args)
    except RestoreError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as e:
        what = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise RestoreError(f"tmpfs content: {entry.get('path')!r}: {what}", "prepare") from None


class _Dirs:
    """O_PATH fds of the directories of the new tmpfs, opened below its root following no
    symlink (a bounded cache: a walk returns to the same few directories)."""

    LIMIT = 64

    def __init__(self, root_fd):
        self.root, self.open = root_fd, {}

    def at(self, path):
        """(directory fd, name) of an entry's path; the root is (root_fd, ".")."""
        if path == "":
            return self.root, "."
        parts = path.split("/")
        if any(p in ("", ".", "..") or "\0" in p for p in parts):
            raise ValueError("not a plain relative path")
        return self._dir("/".join(parts[:-1])), parts[-1]

    def _dir(self, rel):
        if rel == "":
            return self.root
        fd = self.open.get(rel)
        if fd is None:
            if len(self.open) >= self.LIMIT:
                os.close(self.open.pop(next(iter(self.open))))
            fd = kmount.openat2(self.root, rel, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC,
                                resolve=_BENEATH)
            self.open[rel] = fd
        return fd

    def close(self):
        for fd in self.open.values():
            os.close(fd)
        self.open.clear()


def _make(dirs, entry, data):
    dirfd, name = dirs.at(entry["path"])
    kind = entry["type"]
    try:
        if kind == "d":
            if name != ".":
                os.mkdir(name, 0o700, dir_fd=dirfd)
        elif kind == "f":
            _make_file(dirfd, name, entry, data)
        elif kind == "l":
            os.symlink(entry["target"], name, dir_fd=dirfd)
        elif kind in _NODES:
            os.mknod(name, _NODES[kind] | 0o600, _rdev(entry), dir_fd=dirfd)
        elif kind == "h":
            src_dir, src = dirs.at(entry["link"])
            os.link(src, name, src_dir_fd=src_dir, dst_dir_fd=dirfd, follow_symlinks=False)
        else:
            raise ValueError(f"unknown entry type {kind!r}")
    except FileExistsError:
        if not _same(dirs, dirfd, name, entry):
            raise


def _rdev(entry):
    return os.makedev(*entry["rdev"]) if entry["type"] in "cb" else 0


def _same(dirs, dirfd, name, entry):
    """Whether what already has this name (a mount point the engine made) will do."""
    st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    kind = entry["type"]
    if kind == "h":
        src_dir, src = dirs.at(entry["link"])
        other = os.stat(src, dir_fd=src_dir, follow_symlinks=False)
        return (st.st_dev, st.st_ino) == (other.st_dev, other.st_ino)
    if _TYPES.get(stat.S_IFMT(st.st_mode)) != kind:
        return False
    if kind == "l":
        return os.readlink(name, dir_fd=dirfd) == entry["target"]
    elif kind in "cb":
        return st.st_rdev == _rdev(entry)
    return True


def _make_file(dirfd, name, entry, data):
    flags = os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(name, flags | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=dirfd)
    except FileExistsError:     # a regular file already (a file mount point): refilled
        if not stat.S_ISREG(os.stat(name, dir_fd=dirfd, follow_symlinks=False).st_mode):
            raise
        fd = os.open(name, flags | os.O_TRUNC, dir_fd=dirfd)
    try:
        for offset, length, at in entry["data"]:
            _copy_in(data, fd, offset, length, at)
        os.ftruncate(fd, entry["size"])     # the tail hole, if any
    finally:
        os.close(fd)


def _copy_in(data, fd, offset, length, at):
    # pread/pwrite: copy_file_range refuses images on another file system (EXDEV)
    done = 0
    while done < length:
        chunk = os.pread(data, min(_CHUNK, length - done), at + done)
        if not chunk:
            raise ValueError(f"the image's data ends before offset {at + length}")
        os.pwrite(fd, chunk, offset + done)
        done += len(chunk)


def _settle(dirs, entry, ids):
    """Owner, then xattrs (chown clears security.capability), then mode (chown clears
    setuid/setgid), then times."""
    dirfd, name = dirs.at(entry["path"])
    uid, gid = ids(entry["uid"], entry["gid"]) if ids else (entry["uid"], entry["gid"])
    os.chown(name, uid, gid, dir_fd=dirfd, follow_symlinks=False)
    if entry["xattrs"]:
        os.fchdir(dirfd)        # os has no *xattr relative to a dir fd
        for key, value in entry["xattrs"].items():
            os.setxattr(name, key, bytes.fromhex(value), follow_symlinks=False)
    if entry["type"] != "l":    # a symlink has no mode of its own; this name is no symlink
        os.chmod(name, entry["mode"], dir_fd=dirfd)
    os.utime(name, ns=(entry["atime_ns"], entry["mtime_ns"]), dir_fd=dirfd,
             follow_symlinks=False)
