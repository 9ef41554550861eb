"""The tree's state in one pass of a BPF iterator per kind instead of /proc text and
injected system calls per process and thread.

VMAs (task_vma iterator) instead of one smaps text per process: the same proc.Vma lists
(start, end, perms, offset, dev, inode, name, VmFlags), x3-5 faster for a process of 20,000
VMAs and x145 for a big one (smaps walks the page tables for its Rss and Pss lines, which
the engine never reads).

The way is chosen once, before the tree is frozen (VmaCollector(), which loads the program
and learns the VmFlags table): "bpf" where the kernel has the iterator (5.12) and lets us
load it, else "smaps" with the reason.  CR_ENGINE_COLLECT=proc|bpf forces one (bpf: an
error when unavailable).  Whatever the iterator cannot name exactly (a vm_flags bit the
table lacks, a VMA named by prctl, a file whose maps identity is not its inode's, the heap
rule that changed in 6.6 at its edge) sends that process to smaps: the answer is always
smaps', only faster.

Per-task state (task iterator: dispositions, alternate stack, tid address, parent-death
signal, securebits, dumpable, child subreaper, brk) instead of ~70 injected calls per
process and 4 per thread.

Open files (task_file iterator, FdCollector) instead of a readlink, an fdinfo and a stat per
fd and kcmp searches for shared descriptions: x10-20 faster for 1,000 fds.
"""

import errno
import functools
import os
import sys
from collections import namedtuple

from kernel import fd_iter, fdinfo, iters, task_iter
from kernel import memory as kmem

from . import proc, vmflags

MODES = ("bpf", "proc")      # CR_ENGINE_COLLECT: iterators where they load, or /proc only


class _Collector:
    """A collector's way, chosen before the freeze: "bpf" (its iterator loaded) or its
    /proc way (``proc_way``), with the ``reason`` why.  CR_ENGINE_COLLECT=proc forces the
    /proc ways, =bpf the iterators (an error when one cannot be had)."""

    iterator_class = None
    proc_way = None

    def __init__(self, mode=None, strict=False):
        """``strict``: raise when the bpf way cannot be had (as CR_ENGINE_COLLECT=bpf)."""
        forced = os.environ.get("CR_ENGINE_COLLECT")
        mode = mode or forced or "bpf"
        if mode not in MODES:
            raise ValueError(f"CR_ENGINE_COLLECT={mode!r}: one of {', '.join(MODES)}")
        strict = strict or forced == "bpf"
        self.way, self.reason, self.iterator = "bpf", None, None
        self.fell_back = 0          # processes read the /proc way in a bpf collection
        if mode == "proc":
            self.way, self.reason = self.proc_way, "asked for"
            return
        try:
            self.iterator = self.iterator_class()
            self.prepare()
        except OSError as e:
            self.close()
            if strict:
                raise
            self.way, self.reason = self.proc_way, str(e)

    def prepare(self):
        """What the bpf way needs besides its program, made before the freeze."""

    def close(self):
        if self.iterator is not None:
            self.iterator.close()
            self.iterator = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class VmaCollector(_Collector):
    """collect(pids) -> {pid: [proc.Vma]}."""

    iterator_class = iters.VmaIterator
    proc_way = "smaps"

    def prepare(self):
        if not self.iterator.rows(os.getpid()):
            raise _not_by_our_pid("task_vma")
        self.table = vmflags.learned(iters.VmaIterator)
        _vsyscall()             # read once, here rather than in the frozen window

    def collect(self, pids):
        pids = list(pids)
        if self.way == "smaps" or not pids:
            return {pid: proc.smaps(pid) for pid in pids}
        wanted = set(pids)
        # one process: the iterator's own filter (6.1+) spares walking every task
        rows = self.iterator.rows(pids[0] if len(pids) == 1 else None)
        by_pid = {pid: [] for pid in pids}
        for row in rows:
            if row[6] in wanted:
                by_pid[row[6]].append(row)
        out = {}
        for pid, mine in by_pid.items():
            vmas = _named(pid, mine, self.table) if mine else None   # a live mm has VMAs
            if vmas is None:
                self.fell_back += 1
                vmas = proc.smaps(pid)
            out[pid] = vmas
        return out


def _named(pid, rows, table):
    """proc.Vma of each record (a VmaIterator row) as smaps shows it, or None when one
    cannot be."""
    out, files, Vma, decode = [], {}, proc.Vma, table.decode
    for row in rows:
        start, end, word, pgoff, _, _, _, file, special, _, _, _, anon_name = row
        flags = decode(word)
        if flags is None or anon_name:
            return None
        perms = _PERMS[word & 0x87]
        if file:
            known = files.get(file)
            if known is None:
                known = files[file] = _file_identity(pid, iters.VmaRecord._make(row))
                if known is None:
                    return None
            name, dev, inode = known
            vma = Vma(start, end, perms, pgoff << 12, dev, inode, name, flags)
        else:
            name = _anonymous_name(row)
            if name is None:
                return None
            vma = Vma(start, end, perms, 0, "00:00", 0, name, flags)
        out.append(vma)
    if rows and _vsyscall() is not None:
        out.append(_vsyscall())
    return out


def _perms(word):
    # maps' fourth letter is VM_MAYSHARE (bit 7), not VM_SHARED
    return (("r" if word & 1 else "-") + ("w" if word & 2 else "-") +
            ("x" if word & 4 else "-") + ("s" if word & 0x80 else "p"))


_PERMS = {bits: _perms(bits) for bits in range(0x88) if not bits & 0x78}


def _file_identity(pid, r):
    """(name, "major:minor", inode) of a file VMA as maps prints them, or None: the name by
    the VMA's map_files link (maps escapes a newline).  A file whose stat is not the inode
    the iterator read is an overlayfs one (6.8 on, maps shows the overlay's inode, before
    the layer's): PROCMAP_QUERY (6.11) says which maps shows, else smaps is read."""
    link = f"/proc/{pid}/map_files/{r.start:x}-{r.end:x}"
    try:
        name = os.readlink(link)
        st = os.stat(link)
    except OSError:
        return None
    major, minor, inode = r.dev >> 20, r.dev & 0xFFFFF, r.ino
    if st.st_ino != inode or st.st_dev != os.makedev(major, minor):
        try:
            with open(f"/proc/{pid}/maps", "rb", buffering=0) as maps:
                query, _ = kmem.procmap_query(maps.fileno(), r.start)
        except OSError:
            return None
        major, minor, inode = query.dev_major, query.dev_minor, query.inode
    return name.replace("\n", "\\012"), f"{major:02x}:{minor:02x}", inode


def _anonymous_name(row):
    """maps' name of a VMA without a file (a VmaIterator row): a special mapping's
    ("[vdso]"), [heap] (the rule moved by an address at its edges in 6.6: where the two
    disagree, None), [stack], or ""."""
    start, end, special, start_brk, brk, start_stack = row[0], row[1], row[8], *row[9:12]
    if special[0]:
        name = special.split(b"\0", 1)[0].decode(errors="replace")
        return name if name.startswith("[") and name.endswith("]") else None
    heap_since_6_6 = start < brk and end > start_brk
    if heap_since_6_6 != (start <= brk and end >= start_brk):
        return None
    if heap_since_6_6:
        return "[heap]"
    if start <= start_stack <= end:
        return "[stack]"
    return ""


@functools.cache
def _vsyscall():
    """The [vsyscall] gate of x86-64 (not a VMA of the mm, so no iterator sees it; smaps
    shows it in every 64-bit process alike): taken from our own smaps once."""
    with open("/proc/self/maps") as f:
        last = f.readlines()[-1]
    if not last.rstrip().endswith("[vsyscall]"):
        return None
    start = int(last.split("-", 1)[0], 16)
    return next(v for v in proc.smaps(os.getpid()) if v.start == start)


class TaskCollector(_Collector):
    """collect(pids) -> {tid: kernel.task_iter.TaskRecord} of every thread of ``pids``,
    read from task_struct in one pass; {} when the way is "injected" (the dump then asks
    each thread by injected system calls, as before)."""

    iterator_class = task_iter.TaskIterator
    proc_way = "injected"

    def prepare(self):
        if not self.iterator.records(os.getpid()):
            raise _not_by_our_pid("task")

    def collect(self, pids):
        pids = list(pids)
        if self.way != "bpf" or not pids:
            return {}
        wanted = set(pids)
        records = self.iterator.records(pids[0] if len(pids) == 1 else None)
        return {r.tid: r for r in records if r.tgid in wanted}


class Collectors:
    """Every collector of a dump, made before the freeze; closed as soon as the tree is
    read (or on failure)."""

    def __init__(self, memory_only=False):
        """``memory_only``: the VMAs alone (a pre-dump copies memory, nothing else)."""
        self.vmas = VmaCollector()
        self.tasks = self.fds = None
        try:
            if not memory_only:
                self.tasks = TaskCollector()
                self.fds = FdCollector()
        except BaseException:
            self.close()
            raise

    def collect(self, pids):
        """({pid: [proc.Vma]}, {tid: TaskRecord}, {pid: [FdRecord]}) of the live processes
        ``pids`` (the last two None when memory only)."""
        pids = list(pids)
        return (self.vmas.collect(pids),
                self.tasks.collect(pids) if self.tasks else None,
                self.fds.collect(pids) if self.fds else None)

    def ways(self):
        return {name: collector.way for name, collector in
                (("vmas", self.vmas), ("tasks", self.tasks), ("fds", self.fds)) if collector}

    def close(self):
        for collector in (self.vmas, self.tasks, self.fds):
            if collector is not None:
                collector.close()


# fds -------------------------------------------------------------------------------------
# What cr_engine/files.py reads of an fd: the link of /proc/PID/fd/N, fdinfo's flags (with
# O_CLOEXEC), pos and mnt_id, and stat's fields under stat's names (a record stands where a
# stat result did).  description: the struct file's address (equal: one description), or
# None from /proc (kcmp tells); may_have_locks / may_have_owner: False only where the
# iterator saw no lock context on the inode / no owner or signal on the file; info: the
# parsed fdinfo when it was read
FdRecord = namedtuple("FdRecord", "fd link flags pos mnt_id st_dev st_ino st_rdev st_mode "
                                  "st_size description may_have_locks may_have_owner info")

# file systems whose stat() is the inode's i_ino, s_dev, i_mode, i_rdev and i_size
# (generic_fillattr, nothing changed after it); elsewhere a getattr may say otherwise
# (overlayfs and btrfs give other devices, NFS and FUSE ask the server, procfs's sysctl
# files another mode...): those fds are stat'ed
STAT_IS_INODE = {0xEF53: "ext2/3/4", 0x01021994: "tmpfs", 0x858458F6: "ramfs",
                 0x958458F6: "hugetlbfs", 0x50495045: "pipefs", 0x534F434B: "sockfs",
                 0x09041934: "anon_inodefs", 0x1CD1: "devpts", 0xCAFE4A11: "bpf",
                 0x19800202: "mqueue", 0x6E736673: "nsfs"}


def fd_from_proc(pid, fd):
    """The FdRecord of ``fd`` of ``pid`` as /proc gives it (a readlink, fdinfo, stat)."""
    path = f"/proc/{pid}/fd/{fd}"
    link, info, st = os.readlink(path), fdinfo.read(fd, pid), os.stat(path)
    return FdRecord(fd, link, int(info["flags"], 8), int(info.get("pos", 0)),
                    int(info["mnt_id"]), st.st_dev, st.st_ino, st.st_rdev, st.st_mode,
                    st.st_size, None, True, True, info)


class FdCollector(_Collector):
    """collect(pids) -> {pid: [FdRecord]} in fd order: "bpf", one task_file iterator pass
    for the tree, each fd's description told by its struct file (no kcmp); or "proc", what
    /proc gives per fd.  In a bpf collection a link the iterator could not give is read,
    and an fd on a file system not in STAT_IS_INODE stat'ed (``fell_back`` counts those
    fds): the answer is always /proc's."""

    iterator_class = fd_iter.FileIterator
    proc_way = "proc"

    def prepare(self):
        _check_pids(self.iterator)

    def collect(self, pids):
        pids = list(pids)
        if self.way == "proc" or not pids:
            return {pid: [fd_from_proc(pid, fd) for fd in proc.fd_numbers(pid)]
                    for pid in pids}
        out, record = {pid: [] for pid in pids}, self._record
        # one process: the iterator's own filter (6.1+) spares walking every task
        for fields, path in self.iterator.rows(pids[0] if len(pids) == 1 else None):
            mine = out.get(fields[0])
            if mine is not None:
                mine.append(record(fields, path))
        return out

    def _record(self, fields, path):
        (tgid, fd, file, flags, _, pos, ino, size, dev, rdev, magic, mode, mnt_id,
         cloexec_word, lock_context, owner, signum, _) = fields
        if cloexec_word >> (fd & 63) & 1:
            flags |= os.O_CLOEXEC               # as fdinfo prints them
        link = path.decode(_FS_ENCODING, _FS_ERRORS) if path is not None else None
        stat_is_inode = magic in STAT_IS_INODE
        if link is None or not stat_is_inode:
            self.fell_back += 1
            proc_path = f"/proc/{tgid}/fd/{fd}"
            if link is None:
                link = os.readlink(proc_path)
            if not stat_is_inode:
                st = os.stat(proc_path)
                dev, ino, rdev, mode, size = (st.st_dev, st.st_ino, st.st_rdev, st.st_mode,
                                              st.st_size)
        if stat_is_inode:
            dev, rdev = _user_dev(dev), _user_dev(rdev)
        return FdRecord(fd, link, flags, pos, mnt_id, dev, ino, rdev, mode, size, file,
                        bool(lock_context), bool(owner or signum), None)


_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()


@functools.cache
def _user_dev(kernel_dev):
    """A kernel dev_t (MAJOR << 20 | MINOR) as stat gives it."""
    return os.makedev(kernel_dev >> 20, kernel_dev & 0xFFFFF)


def _check_pids(iterator):
    """The iterator names processes by their pid in the initial pid namespace: a dumper in
    another sees other numbers.  A pipe of ours must be where we see it."""
    read, write = os.pipe()
    try:
        ino = os.fstat(read).st_ino
        seen = any(r.fd == read and r.ino == ino for r in iterator.records(os.getpid()))
    finally:
        os.close(read)
        os.close(write)
    if not seen:
        raise _not_by_our_pid("task_file")


def _not_by_our_pid(target):
    return OSError(errno.ESRCH, f"the {target} iterator does not find this process by its "
                                f"pid (a pid namespace of its own?)")
