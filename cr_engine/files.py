"""File descriptors and the file descriptions behind them: regular files, directories,
memory character devices (/dev/null, /dev/zero, ...), pipes and FIFOs (with the data queued
in them), a shell job's terminal, pseudo-terminals (ptys), eventfd/signalfd/timerfd (anon_files), memfds and unlinked
files (carried_files).

Dump: every fd of the tree is matched to a file description - by its struct file where the
collector's iterator read it (collect.FdCollector), else by kcmp(KCMP_FILE) among fds that
look alike - so duplicated fds and fds inherited across fork stay one description.
Restore: the restorer opens each description once, before the tree is forked; stubs inherit
them and only dup2() them into place, so sharing comes back by construction.
"""

import fcntl
import functools
import os
import stat
import struct

from kernel import fdinfo
from kernel.libc import syscall
from kernel.process import KCMP_FILE, kcmp, pidfd_getfd, pidfd_open

from . import (anon_files, bpf_maps, carried_files, collect, epoll, io_uring, locks,
               namespaces, ptys, sockets)
from .errors import RestoreError, Unsupported

MEMORY_DEVICES = {(1, 3): "/dev/null", (1, 5): "/dev/zero", (1, 7): "/dev/full",
                  (1, 8): "/dev/random", (1, 9): "/dev/urandom"}
TTY_MAJORS = (4, 5, 136)
O_CLOEXEC = os.O_CLOEXEC
# O_ASYNC is set by the stub from the fd it belongs at: SIGIO's si_fd is the fd that set it
_OPEN_IGNORED = os.O_CREAT | os.O_EXCL | os.O_TRUNC | os.O_CLOEXEC | os.O_NOCTTY | os.O_ASYNC
F_GETPIPE_SZ, F_SETPIPE_SZ = 1032, 1031
F_SETSIG, F_GETSIG, F_SETOWN_EX, F_GETOWN_EX = 10, 11, 15, 16
SPLICE_F_NONBLOCK = 2
_ACCESS = os.O_RDONLY | os.O_WRONLY | os.O_RDWR


class FileTable:
    """Collects the fds of a tree while it is frozen."""

    def __init__(self, shell_job, tcp_established=False, netns=None, mounts=None,
                 injected=None, leave_running=False):
        self.shell_job = shell_job
        self.injected = injected if injected is not None else {}  # pid -> dump._Injected
        self.leave_running = leave_running
        # the tree's mount namespaces (mnt_model.MountDump): a file on a mount of theirs is
        # described by that mount and its path within it
        self.mounts = mounts
        self.tcp_established = tcp_established  # carry TCP connections to outside peers
        self.netns = netns          # pid whose network namespace the tree's sockets are in
        self.files = {}             # id -> description image
        self.by_inode = {}          # (st_dev, ino) -> [(pid, fd, id)] in kcmp order, but
        self.unordered = set()      # these keys' (told by address): sorted when searched
        self.by_address = {}        # struct file address -> id
        self.unaddressed = {}       # (st_dev, ino) -> [(pid, fd, id)] told by kcmp alone
        self.fd_files = {}          # (pid, fd) -> id
        self.payloads = {}          # id -> bytes to store beside (pipe data, file content)
        self.pidfds = {}
        self.pipes_carried = set()  # inodes of the pipes and FIFOs whose data is taken
        self.carried = {}           # (dev, inode) -> id of the description holding its content
        self.posix_seen = set()     # (pid, dev, inode) whose POSIX locks are recorded
        self.kinds = {}             # per-kind state of a dump (sockets keep theirs here)
        self.own_fds = []           # fds this dump holds (carried in SCM_RIGHTS messages)

    def dump_process(self, pid, records):
        """The fd entries of ``pid`` from its collect.FdRecords (either collector way)."""
        entries = []
        for record in records:
            fd = record.fd
            file_id, cloexec, posix_locks = self._describe(pid, record)
            self.fd_files[pid, fd] = file_id
            entries.append({"fd": fd, "file": file_id, "cloexec": cloexec})
            if posix_locks:
                entries[-1]["locks"] = posix_locks
        entries.sort(key=lambda e: e["fd"])
        return entries

    def _describe(self, pid, r):
        """(id, cloexec, POSIX locks) of the fd of FdRecord ``r``."""
        fd, link, flags = r.fd, r.link, r.flags
        path = f"/proc/{pid}/fd/{fd}"
        if r.may_have_locks:
            r = _with_fdinfo(pid, r)
        held = locks.from_fdinfo(r.info, f"fd {fd} of pid {pid}") if r.info else []
        # a process's POSIX locks on a file show on each of its fds of it: keep them once
        posix = [lock for lock in held if lock["kind"] == "posix"]
        if posix and (pid, r.st_dev, r.st_ino) in self.posix_seen:
            posix = []
        self.posix_seen.add((pid, r.st_dev, r.st_ino))
        file_id, at = self._find(pid, r)
        if file_id is not None:
            return file_id, bool(flags & O_CLOEXEC), posix
        content = None
        carried = carried_files.kind_of(link) if stat.S_ISREG(r.st_mode) else None
        if carried:
            # a record stands where a stat result did
            desc, content = carried_files.describe(carried, link, path, r,
                                                   flags & ~O_CLOEXEC, r.pos)
        else:
            desc = self._new_description(pid, r, flags & ~O_CLOEXEC)
        owner = self._owner(pid, fd) if r.may_have_owner else None
        if owner:
            desc["owner"] = owner
        own_locks = [lock for lock in held if lock["kind"] != "posix"]
        if own_locks:
            desc["locks"] = own_locks
        file_id = f"{desc['type']}-{len(self.files)}"
        data = desc.pop("payload", None)    # what a socket had queued
        if data:
            self.payloads[file_id] = data
        self.files[file_id] = desc
        self._add(pid, r, file_id, at)
        if content is not None:
            self._carry_once(file_id, desc, content)
        if desc["type"] in ("pipe", "fifo"):
            data = self._pipe_data(path, desc)
            if data:
                self.payloads[file_id] = data
        return file_id, bool(flags & O_CLOEXEC), posix

    def _find(self, pid, r):
        """(id of the description of FdRecord ``r``'s fd or None, where a new one goes in its
        kcmp-ordered bucket (None: appended, told by address))."""
        key = (r.st_dev, r.st_ino)
        if r.description is None:
            return _find_description(self._ordered(key), lambda other_pid, other_fd: kcmp(
                pid, other_pid, KCMP_FILE, r.fd, other_fd))
        file_id = self.by_address.get(r.description)
        if file_id is None:
            # one first seen without its address (an fd of ours, one the dump made)?
            file_id = next((file_id for other_pid, other_fd, file_id in
                            self.unaddressed.get(key, ())
                            if kcmp(pid, other_pid, KCMP_FILE, r.fd, other_fd) == 0), None)
            if file_id is not None:
                self.by_address[r.description] = file_id
        return file_id, None

    def _add(self, pid, r, file_id, at):
        key = (r.st_dev, r.st_ino)
        bucket = self.by_inode.setdefault(key, [])
        if r.description is None:
            bucket.insert(at, (pid, r.fd, file_id))
            self.unaddressed.setdefault(key, []).append((pid, r.fd, file_id))
        else:
            self.by_address[r.description] = file_id
            bucket.append((pid, r.fd, file_id))
            self.unordered.add(key)

    def _ordered(self, key):
        """The bucket of ``key`` in kcmp order (sorted now if entries came by address)."""
        bucket = self.by_inode.setdefault(key, [])
        if key in self.unordered:
            self.unordered.discard(key)
            bucket.sort(key=functools.cmp_to_key(lambda a, b: _KCMP_ORDER[
                kcmp(a[0], b[0], KCMP_FILE, a[1], b[1])]))
        return bucket

    def carry_mapping(self, pid, vma):
        """The id of the description that carries the content of a mapped memfd or unlinked
        file (one made for the mapping when no fd has been seen with it)."""
        path = f"/proc/{pid}/map_files/{vma.start:x}-{vma.end:x}"
        st = os.stat(path)
        key = (os.major(st.st_dev), os.minor(st.st_dev)), st.st_ino
        if key in self.carried:
            return self.carried[key]
        desc, content = carried_files.describe(carried_files.kind_of(vma.name), vma.name,
                                               path, st, os.O_RDWR, 0)
        file_id = self.add_description(desc)
        self._carry_once(file_id, desc, content)
        return file_id

    def add_description(self, desc, payload=None):
        """A description no fd of the tree holds (a mapped file, an inner BPF map)."""
        file_id = f"{desc['type']}-{len(self.files)}"
        self.files[file_id] = desc
        if payload:
            self.payloads[file_id] = payload
        return file_id

    def map_mapping(self, pid, vma):
        """The id of a description of the BPF map mapped at ``vma``."""
        return self.kinds.setdefault("bpf", bpf_maps.BpfDump()).mapping(self, pid, vma)

    def ring_mapping(self, pid, vma):
        """The id of the description of the io_uring ring mapped at ``vma``."""
        st = os.stat(f"/proc/{pid}/map_files/{vma.start:x}-{vma.end:x}")
        rings = self.kinds.get(io_uring.KIND)
        found = rings.mapped(self, st.st_ino, pid, vma) if rings else []
        if len(found) != 1:
            raise Unsupported(f"unsupported: io_uring ring memory at {vma.start:#x} of pid "
                              f"{pid} " + ("whose ring no fd of the process holds" if not found
                                           else "that several rings could be"))
        return found[0]

    def ring_sockets(self):
        """Inodes of the tree's sockets when it has io_uring rings (which may hold them
        after the tree is gone: dump.py waits for them), else an empty set."""
        if io_uring.KIND not in self.kinds:
            return set()
        return {d["inode"] for d in self.files.values() if d["type"] in sockets.KINDS}

    def describe_extra(self, pid, fd):
        """The id of the description behind an fd the engine itself made in a frozen process
        (not one of its dumped fds)."""
        return self._describe(pid, collect.fd_from_proc(pid, fd))[0]

    def _carry_once(self, file_id, desc, content):
        """An inode's content is stored with its first description; later ones point to it."""
        key = (tuple(desc["dev"]), desc["inode"])
        first = self.carried.setdefault(key, file_id)
        if first == file_id:
            self.payloads[file_id] = content
        else:
            desc["content_of"] = first

    def find(self, dev, ino, order_of):
        """(pid, fd, id) of a description of the tree on inode ``ino`` of ``dev`` that
        ``order_of`` (as for _find_description) finds, or None."""
        bucket = self._ordered((dev, ino))
        file_id, at = _find_description(bucket, order_of)
        return bucket[at] if file_id is not None else None

    def dup(self, pid, fd):
        """A copy in this process of ``fd`` of ``pid`` (the same file description)."""
        if pid not in self.pidfds:
            self.pidfds[pid] = pidfd_open(pid)
        return pidfd_getfd(self.pidfds[pid], fd)

    def describe_own(self, fd):
        """The id of the description of an fd of this process (one that travelled in a
        unix socket's queue), kept open until the dump ends: same fd, same description."""
        self.own_fds.append(fd)
        return self._describe(os.getpid(), collect.fd_from_proc(os.getpid(), fd))[0]

    def finish(self):
        """What needs every fd of the tree seen: a socket's peer must be among them, TCP
        connections are locked and read together."""
        # io_uring first: it may install fds the others then see; epoll last: its targets
        # may be in flight
        for kind in (io_uring.KIND, "unix", "inet", "bpf", "epoll", ptys.KIND):
            if kind in self.kinds:
                self.kinds[kind].finish(self)

    def _owner(self, pid, fd):
        """F_SETOWN/F_SETOWN_EX owner and F_SETSIG signal of a description, if any."""
        try:
            dup = self.dup(pid, fd)
        except OSError:
            return None
        try:
            kind, who = struct.unpack("ii", fcntl.fcntl(dup, F_GETOWN_EX, bytes(8)))
            sig = fcntl.fcntl(dup, F_GETSIG)
        except OSError:
            return None
        finally:
            os.close(dup)
        return {"type": kind, "pid": who, "signal": sig} if who or sig else None

    def close(self, final=False):
        """Let go of the tree; ``final``: it is killed next (dumped sockets need not be
        put back to work)."""
        for state in self.kinds.values():
            state.close(final)
        self.kinds = {}
        for fd in list(self.pidfds.values()) + self.own_fds:
            os.close(fd)
        self.pidfds, self.own_fds = {}, []

    def _new_description(self, pid, r, flags):
        fd, link = r.fd, r.link
        what = f"fd {fd} of pid {pid}"
        mode = r.st_mode
        if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
            if link.endswith(" (deleted)"):
                raise Unsupported(f"unsupported: deleted file {link[:-10]} ({what})")
            if not link.startswith("/"):
                raise Unsupported(f"unsupported: {link} ({what})")
            kind = "reg" if stat.S_ISREG(mode) else "dir"
            desc = {"type": kind, "path": link, "flags": flags, "pos": r.pos,
                    "size": r.st_size, "inode": r.st_ino,
                    "dev": [os.major(r.st_dev), os.minor(r.st_dev)]}
            return self.at_mount(desc, r.mnt_id, link, what)
        if stat.S_ISCHR(mode):
            dev = (os.major(r.st_rdev), os.minor(r.st_rdev))
            if dev in MEMORY_DEVICES:
                return {"type": "chr", "path": MEMORY_DEVICES[dev], "flags": flags}
            if ptys.is_pty(dev):
                return ptys.describe(self, pid, fd, link, r, flags, r.mnt_id, what)
            if dev[0] in TTY_MAJORS:
                if not self.shell_job:
                    raise Unsupported(f"unsupported: terminal {link} ({what}; a shell job "
                                      f"needs --shell-job)")
                return {"type": "tty", "path": link, "flags": flags}
            raise Unsupported(f"unsupported: character device {link} {dev[0]}:{dev[1]} "
                              f"({what})")
        if stat.S_ISFIFO(mode):
            kind = "pipe" if link.startswith("pipe:") else "fifo"
            desc = {"type": kind, "flags": flags, "inode": r.st_ino}
            if kind == "fifo":
                desc["path"] = link
                return self.at_mount(desc, r.mnt_id, link, what)
            return desc
        if stat.S_ISSOCK(mode):
            return sockets.describe(self, pid, fd, flags, what)
        anon = _anon_kind(link)
        if anon == epoll.KIND:          # fdinfo or its tree, as the epoll's size says
            return epoll.describe(self, pid, r, flags)
        info = _with_fdinfo(pid, r).info if anon in _FDINFO_KINDS else None
        if anon in anon_files.KINDS:
            return anon_files.describe(anon, info, flags, what)
        if anon == io_uring.KIND:
            return self.kinds.setdefault(io_uring.KIND, io_uring.RingDump()).describe(
                self, pid, fd, info, flags, what)
        if anon == "btf":
            return bpf_maps.BpfDump.describe_btf(self, pid, fd, flags)
        if anon == bpf_maps.KIND:
            return self.kinds.setdefault("bpf", bpf_maps.BpfDump()).describe(
                self, pid, fd, flags, what)
        if anon:
            raise Unsupported(f"unsupported: {anon} ({what})")
        raise Unsupported(f"unsupported: {link} ({what})")

    def at_mount(self, desc, mnt_id, link, what):
        """``desc`` with the mount of the tree's it is on (``mnt_id``, fdinfo's) and its
        path there, if any."""
        if self.mounts is not None and self.mounts.image:
            desc.update(self.mounts.locate(mnt_id, link, what) or {})
        return desc

    def locate(self, proc_link, link, what):
        """{"mnt", "rel"} of the file at ``proc_link`` (/proc/PID/exe, a map_files entry)
        when it is on a mount of the tree's namespaces."""
        fd = os.open(proc_link, os.O_PATH | O_CLOEXEC)
        try:
            return self.mounts.locate(int(fdinfo.read(fd)["mnt_id"]), link, what)
        finally:
            os.close(fd)

    def _pipe_data(self, path, desc):
        """The bytes queued in a pipe, copied with tee(2) so nothing is consumed."""
        if desc["inode"] in self.pipes_carried:
            return None                     # another description already carried the data
        self.pipes_carried.add(desc["inode"])
        reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK | O_CLOEXEC)
        try:
            size = fcntl.fcntl(reader, F_GETPIPE_SZ)
            desc["pipe_size"] = size
            r, w = os.pipe2(O_CLOEXEC | os.O_NONBLOCK)
            try:
                fcntl.fcntl(w, F_SETPIPE_SZ, size)
                try:
                    n = syscall("tee", reader, w, size, SPLICE_F_NONBLOCK)
                except BlockingIOError:
                    n = 0
                # each read returns at most one packet of a packet-mode (O_DIRECT) pipe:
                # the sizes keep packet boundaries
                chunks, got = [], 0
                while got < n:
                    chunks.append(os.read(r, n - got))
                    got += len(chunks[-1])
                desc["chunks"] = [len(c) for c in chunks]
                return b"".join(chunks)
            finally:
                os.close(r)
                os.close(w)
        finally:
            os.close(reader)


def _anon_kind(link):
    """"eventfd", "io_uring", "bpf-map"... of an anon inode's link, else None."""
    return link[len("anon_inode:"):].strip("[]") if link.startswith("anon_inode:") else None


# the kinds whose descriptions are read from fdinfo (counts, masks, watches, ring
# buffers), beyond what a collector's record holds
_FDINFO_KINDS = (*anon_files.KINDS, io_uring.KIND)


def _with_fdinfo(pid, r):
    """FdRecord ``r`` with its fd's parsed fdinfo."""
    return r if r.info is not None else r._replace(info=fdinfo.read(r.fd, pid))


_KCMP_ORDER = {0: 0, 1: -1, 2: 1, 3: 0}      # kcmp's answer as a sort key's (3: no order)


def _find_description(bucket, order_of):
    """(id, index) of a file description in a kcmp-ordered bucket, or (None, where it goes):
    a binary search, since all anon-inode fds (eventfds, timerfds, ...) share one inode.
    ``order_of(pid, fd)``: kcmp's answer for the file sought against that fd's (0 the same,
    1 before it, 2 after it)."""
    lo, hi = 0, len(bucket)
    while lo < hi:
        mid = (lo + hi) // 2
        other_pid, other_fd, file_id = bucket[mid]
        order = order_of(other_pid, other_fd)
        if order == 0:
            return file_id, mid
        if order == 1:
            hi = mid
        elif order == 2:
            lo = mid + 1
        else:                               # unordered (kernel without it): compare them all
            for i, (other_pid, other_fd, file_id) in enumerate(bucket):
                if order_of(other_pid, other_fd) == 0:
                    return file_id, i
            return None, len(bucket)
    return None, lo


# Restore: the restorer opens every description once --------------------------------------------
class OpenFiles:
    """The descriptions of an image, opened in the restorer: id -> fd."""

    def __init__(self):
        self.fds = {}
        self.keepalive = []         # fds that hold FIFOs and pipes open while stubs take them
        self.inodes = carried_files.Inodes()
        self.maps = None
        self.mounts = None          # mnt_build.Mounts: files on mounts of the tree's
        self._unsent, self._netns = {}, None

    def open_all(self, files, payload, netns=None):
        self._pipes = {}
        self._packet_pipes = {d["inode"] for d in files.values()
                              if d["type"] == "pipe" and d["flags"] & os.O_DIRECT}
        self.maps = bpf_maps.Maps(files, payload)
        self.maps.check_pins()
        self.ptys = ptys.PtyOpener(files, self.open_path)
        for file_id, desc in files.items():
            if desc["type"] in sockets.KINDS or desc["type"] == io_uring.KIND:
                continue                # rings: made inside their process (io_uring)
            try:
                self.fds[file_id] = self._open(file_id, desc, payload)
            except OSError as e:
                raise RestoreError(f"cannot open {desc.get('path', file_id)}: "
                                   f"{e.strerror}", "files") from None
        self.ptys.finish()
        # last: a socket's queue may carry any other file (SCM_RIGHTS); in the tree's
        # network namespace (an fd of it) when it has one
        self._netns = netns
        self._unsent = namespaces.run_in_fd(netns, "net", sockets.restore_all, files,
                                            payload, self.fds)
        epoll.restore_items(files, self.fds)    # once every target is open

    def go_live(self, files):
        """Once the tree is restored: sockets held back (TCP in repair mode) start."""
        namespaces.run_in_fd(self._netns, "net", sockets.go_live, files, self.fds,
                             self._unsent)
        self.maps.pin_all()

    def _open(self, file_id, desc, payload):
        kind = desc["type"]
        if kind in ("reg", "dir"):
            fd = self.open_path(desc, desc["flags"] & ~_OPEN_IGNORED)
            st = os.fstat(fd)
            if st.st_ino != desc["inode"] and self.same_inodes(desc):
                os.close(fd)
                raise RestoreError(f"{desc['path']} is not the file that was dumped "
                                   f"(inode {st.st_ino}, was {desc['inode']})", "files")
            if kind == "reg" and st.st_size != desc["size"]:
                os.close(fd)
                raise RestoreError(f"{desc['path']} has size {st.st_size}, was "
                                   f"{desc['size']} at dump", "files")
            if desc["pos"]:
                try:
                    os.lseek(fd, desc["pos"], os.SEEK_SET)
                except OSError:
                    if kind == "reg":
                        raise
            return fd
        if kind == "chr":
            return os.open(desc["path"], desc["flags"] & ~_OPEN_IGNORED | O_CLOEXEC)
        if kind in anon_files.KINDS:
            return anon_files.create(desc)
        if kind == "epoll":
            return epoll.create(desc)
        if kind == "bpf-map":
            return self.maps.open(desc)
        if kind == "btf":
            return self.maps.open_btf(payload(file_id))
        if kind in ("memfd", "unlinked"):
            return self.inodes.open(desc, lambda: payload(desc.get("content_of", file_id)))
        if kind == ptys.KIND:
            return self.ptys.open(file_id, desc)
        if kind == "tty":
            try:
                tty = os.ttyname(0)
            except OSError:
                raise RestoreError("a shell job needs a terminal on the restorer's stdin",
                                   "files") from None
            return os.open(tty, desc["flags"] & ~_OPEN_IGNORED | O_CLOEXEC | os.O_NOCTTY)
        if kind == "pipe":
            return self._pipe_end(file_id, desc, payload)
        if kind == "fifo":
            holder = self.open_path(desc, os.O_RDWR | os.O_NONBLOCK)
            self.keepalive.append(holder)
            fd = self.open_path(desc, (desc["flags"] & ~_OPEN_IGNORED) | os.O_NONBLOCK)
            fcntl.fcntl(fd, fcntl.F_SETFL, desc["flags"] & ~_OPEN_IGNORED)
            self._fill(holder, desc, payload(file_id))
            return fd
        raise RestoreError(f"unknown file kind {kind!r} ({file_id})", "files")

    def open_path(self, desc, flags):
        """``desc``'s file: through the mount of the tree's it is on, else by path."""
        if desc.get("mnt"):
            return self.mounts.open(desc, flags)
        return os.open(desc["path"], flags | O_CLOEXEC)

    def same_inodes(self, desc):
        """Whether ``desc``'s file system keeps its inode numbers (ours; not a tmpfs the
        restore made again)."""
        return not desc.get("mnt") or self.mounts.keeps_inodes(desc["mnt"])

    def _pipe_end(self, file_id, desc, payload):
        """Pipes are made once per inode; the first read and first write description are the
        pipe's own ends (only those can be in packet mode), others are reopened from them."""
        if desc["inode"] not in self._pipes:
            packet = desc["inode"] in self._packet_pipes
            r, w = os.pipe2(O_CLOEXEC | (os.O_DIRECT if packet else 0))
            self._pipes[desc["inode"]] = {"ends": [r, w], "used": set()}
            self.keepalive += [r, w]
        pipe = self._pipes[desc["inode"]]
        reader = desc["flags"] & _ACCESS == os.O_RDONLY
        end = pipe["ends"][0 if reader else 1]
        self._fill(pipe["ends"][1], desc, payload(file_id))
        flags = desc["flags"] & ~_OPEN_IGNORED
        if end not in pipe["used"]:
            pipe["used"].add(end)
            self.keepalive.remove(end)
            fcntl.fcntl(end, fcntl.F_SETFL, flags)
            return end
        return os.open(f"/proc/self/fd/{end}", flags & ~os.O_DIRECT | O_CLOEXEC)

    @staticmethod
    def _fill(fd, desc, data):
        """Size a pipe as dumped and queue its data again, a write per dumped chunk (in
        packet mode each is one packet)."""
        if "pipe_size" in desc:
            fcntl.fcntl(fd, F_SETPIPE_SZ, desc["pipe_size"])
        at = 0
        for size in desc.get("chunks", [len(data)]) if data else ():
            os.write(fd, data[at:at + size])
            at += size

    @staticmethod
    def first_fds(files, cores, order, wanted):
        """file id -> (pid, fd): the first fd of each description that ``wanted(desc)``, the
        one that sets what a description holds once (O_ASYNC, flock and OFD locks)."""
        out = {}
        for pid in order:
            for entry in cores[pid]["fds"] if pid in cores else ():
                if wanted(files[entry["file"]]):
                    out.setdefault(entry["file"], (pid, entry["fd"]))
        return out

    def set_owners(self, files, live=None):
        """File owners name processes, threads and groups: set once they all exist (``live``:
        dumped pid or tid -> the one it has now, where they differ)."""
        live = live or {}
        for file_id, desc in files.items():
            owner = desc.get("owner")
            if owner and file_id in self.fds:
                fd = self.fds[file_id]
                if owner["pid"]:
                    who = live.get(owner["pid"], owner["pid"])
                    fcntl.fcntl(fd, F_SETOWN_EX, struct.pack("ii", owner["type"], who))
                if owner["signal"]:
                    fcntl.fcntl(fd, F_SETSIG, owner["signal"])

    def close(self):
        for fd in list(self.fds.values()) + self.keepalive:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds, self.keepalive = {}, []
        self.inodes.close()
        if self.maps:
            self.maps.close()


def same_file(path, st):
    """Whether ``path`` is, for this process, the file ``st`` describes."""
    try:
        here = os.stat(path)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (st.st_dev, st.st_ino)
