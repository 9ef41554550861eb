"""Files whose content travels in the images, because no path leads to them any more:
memfds and regular files that were unlinked while open.

Dump reads the content through the fd's /proc link (a new description of the same inode, so
the process's offset is untouched).  Restore makes the inode once per dumped inode - a memfd
with the same name, size, content and seals; an unlinked file created at its old path (or
beside it when that name is taken again), filled, then unlinked - and opens each dumped
description of it from there.
"""

import fcntl
import os

MEMFD_PREFIX = "/memfd:"
DELETED = " (deleted)"
F_ADD_SEALS, F_GET_SEALS = 1033, 1034
F_SEAL_SEAL = 1
MFD_ALLOW_SEALING = 2
_CHUNK = 1 << 20


def kind_of(link):
    """"memfd", "unlinked" or None for the target of a /proc/pid/fd link."""
    if link.startswith(MEMFD_PREFIX):
        return "memfd"
    if link.startswith("/") and link.endswith(DELETED):
        return "unlinked"
    return None


def describe(kind, link, proc_path, st, flags, pos):
    """(description image, content) of a memfd or unlinked file."""
    desc = {"type": kind, "flags": flags, "pos": pos, "size": st.st_size,
            "mode": st.st_mode & 0o7777, "inode": st.st_ino,
            "dev": [os.major(st.st_dev), os.minor(st.st_dev)]}
    name = link[:-len(DELETED)] if link.endswith(DELETED) else link
    fd = os.open(proc_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if kind == "memfd":
            desc["name"] = name[len(MEMFD_PREFIX):]
            desc["seals"] = fcntl.fcntl(fd, F_GET_SEALS)
        else:
            desc["path"] = name
        return desc, _read_all(fd, st.st_size)
    finally:
        os.close(fd)


def _read_all(fd, size):
    chunks, at = [], 0
    while at < size:
        data = os.pread(fd, min(_CHUNK, size - at), at)
        if not data:
            break
        chunks.append(data)
        at += len(data)
    return b"".join(chunks)


class Inodes:
    """The restored inodes, one per dumped (dev, inode): a read-write fd to each."""

    def __init__(self):
        self.fds = {}

    def open(self, desc, content):
        """A new description of the restored inode of ``desc``, with its flags and offset;
        ``content()`` gives the inode's data when it is made."""
        key = (tuple(desc["dev"]), desc["inode"])
        if key not in self.fds:
            self.fds[key] = (_make_memfd if desc["type"] == "memfd" else _make_unlinked)(
                desc, content())
        flags = desc["flags"] & ~(os.O_CREAT | os.O_EXCL | os.O_TRUNC | os.O_NOCTTY)
        fd = os.open(f"/proc/self/fd/{self.fds[key]}", flags | os.O_CLOEXEC)
        if desc["pos"]:
            os.lseek(fd, desc["pos"], os.SEEK_SET)
        return fd

    def close(self):
        for fd in self.fds.values():
            os.close(fd)
        self.fds = {}


def _fill(fd, desc, content):
    os.ftruncate(fd, desc["size"])
    view, at = memoryview(content), 0
    while at < len(view):
        at += os.pwrite(fd, view[at:at + _CHUNK], at)


def _make_memfd(desc, content):
    seals = desc["seals"]
    sealable = seals != F_SEAL_SEAL          # F_SEAL_SEAL alone: made without sealing
    fd = os.memfd_create(desc["name"], os.MFD_CLOEXEC | (MFD_ALLOW_SEALING if sealable else 0))
    try:
        _fill(fd, desc, content)
        os.fchmod(fd, desc["mode"])
        if sealable and seals:
            fcntl.fcntl(fd, F_ADD_SEALS, seals)      # last: seals may forbid writing
    except BaseException:
        os.close(fd)
        raise
    return fd


def _make_unlinked(desc, content):
    path, attempt = desc["path"], 0
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            break
        except FileExistsError:
            attempt += 1                        # the old name is taken again: stay beside it
            path = f"{desc['path']}.cr_engine-unlinked-{os.getpid()}-{attempt}"
    try:
        os.unlink(path)
        _fill(fd, desc, content)
        os.fchmod(fd, desc["mode"])
    except BaseException:
        os.close(fd)
        raise
    return fd
