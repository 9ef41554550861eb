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

import functools
import os

from kernel import iters, task_iter

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


class VmaCollector(_Collector):
    """collect(pids) -> {pid: [proc.Vma]}."""

    iterator_class = iters.VmaIterator
    proc_way = "smaps"

    def prepare(self):
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
            vmas = _named(pid, mine, self.table)
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
        start, end, word, pgoff, ino, _, _, file, special, _, _, _, anon_name = row
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
            name, dev = known
            vma = Vma(start, end, perms, pgoff << 12, dev, ino, name, flags)
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
    """(name, "major:minor") of a file VMA as maps prints them, or None: the name by the
    VMA's map_files link (maps escapes a newline); a file whose stat is not the inode the
    iterator read (an overlayfs file: maps shows the user-visible one) is left to smaps."""
    link = f"/proc/{pid}/map_files/{r.start:x}-{r.end:x}"
    try:
        name = os.readlink(link)
        st = os.stat(link)
    except OSError:
        return None
    major, minor = r.dev >> 20, r.dev & 0xFFFFF
    if st.st_ino != r.ino or st.st_dev != os.makedev(major, minor):
        return None
    return name.replace("\n", "\\012"), f"{major:02x}:{minor:02x}"


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

    def __init__(self):
        self.vmas = VmaCollector()
        try:
            self.tasks = TaskCollector()
        except BaseException:
            self.vmas.close()
            raise

    def collect(self, pids):
        """({pid: [proc.Vma]}, {tid: TaskRecord}) of the live processes ``pids``."""
        pids = list(pids)
        return self.vmas.collect(pids), self.tasks.collect(pids)

    def ways(self):
        return {"vmas": self.vmas.way, "tasks": self.tasks.way}

    def close(self):
        self.vmas.close()
        self.tasks.close()

