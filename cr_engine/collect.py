"""The tree's VMAs in one pass of a BPF task_vma iterator instead of one smaps text per
process: the same proc.Vma lists (start, end, perms, offset, dev, inode, name, VmFlags), x5
faster for a process of 20,000 VMAs and x145 for a big one (smaps walks the page tables for
its Rss and Pss lines, which the engine never reads).

The way is chosen once, before the tree is frozen (VmaCollector(), which loads the program
and learns the VmFlags table): "bpf" where the kernel has the iterator (5.12) and lets us
load it, else "smaps" with the reason.  CR_ENGINE_COLLECT=smaps|bpf forces one (bpf: an
error when unavailable).  Whatever the iterator cannot name exactly (a vm_flags bit the
table lacks, a VMA named by prctl, a file whose maps identity is not its inode's, the heap
rule that changed in 6.6 at its edge) sends that process to smaps: the answer is always
smaps', only faster.
"""

import errno
import functools
import os

from kernel import iters

from . import proc, vmflags

WAYS = ("bpf", "smaps")


class VmaCollector:
    """collect(pids) -> {pid: [proc.Vma]}; ``way`` and, when it is smaps, ``reason``."""

    def __init__(self, way=None, strict=False):
        """``strict``: raise when the bpf way cannot be had (as CR_ENGINE_COLLECT=bpf)."""
        forced = os.environ.get("CR_ENGINE_COLLECT")
        way = way or forced or "bpf"
        strict = strict or forced == "bpf"
        if way not in WAYS:
            raise ValueError(f"CR_ENGINE_COLLECT={way!r}: one of {', '.join(WAYS)}")
        self.way, self.reason, self.iterator, self.table = way, None, None, None
        self.fell_back = 0          # processes read from smaps in a bpf collection
        if way == "smaps":
            self.reason = "asked for"
            return
        try:
            self.iterator = iters.VmaIterator()
            self.table = vmflags.learned(iters.VmaIterator)
            _vsyscall()             # read once, here rather than in the frozen window
        except OSError as e:
            self.close()
            if strict:
                raise
            self.way, self.reason = "smaps", str(e)

    def close(self):
        if self.iterator is not None:
            self.iterator.close()
            self.iterator = None

    def collect(self, pids):
        pids = list(pids)
        if self.way == "smaps" or not pids:
            return {pid: proc.smaps(pid) for pid in pids}
        wanted = set(pids)
        # one process: the iterator's own filter (6.1+) spares walking every task
        records = self.iterator.records(pids[0] if len(pids) == 1 else None)
        by_pid = {pid: [] for pid in pids}
        for record in records:
            if record.tgid in wanted:
                by_pid[record.tgid].append(record)
        out = {}
        for pid, mine in by_pid.items():
            vmas = _named(pid, mine, self.table)
            if vmas is None:
                self.fell_back += 1
                vmas = proc.smaps(pid)
            out[pid] = vmas
        return out


def _named(pid, records, table):
    """proc.Vma of each record as smaps shows it, or None when one cannot be."""
    out, files = [], {}
    for r in records:
        flags = table.decode(r.flags)
        if flags is None or r.anon_name:
            return None
        if r.file:
            known = files.get(r.file)
            if known is None:
                known = files[r.file] = _file_identity(pid, r)
                if known is None:
                    return None
            name, dev = known
            vma = proc.Vma(r.start, r.end, _perms(r.flags), r.pgoff << 12, dev, r.ino, name)
        else:
            name = _anonymous_name(r)
            if name is None:
                return None
            vma = proc.Vma(r.start, r.end, _perms(r.flags), 0, "00:00", 0, name)
        vma.flags = flags
        out.append(vma)
    if records and _vsyscall() is not None:
        out.append(_vsyscall())
    return out


def _perms(word):
    # maps' fourth letter is VM_MAYSHARE (bit 7), not VM_SHARED
    return (("r" if word & 1 else "-") + ("w" if word & 2 else "-") +
            ("x" if word & 4 else "-") + ("s" if word & 0x80 else "p"))


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


def _anonymous_name(r):
    """maps' name of a VMA without a file: a special mapping's ("[vdso]"), [heap] (the
    rule moved by an address at its edges in 6.6: where the two disagree, None), [stack],
    or ""."""
    special = r.special.split(b"\0", 1)[0]
    if special:
        name = special.decode(errors="replace")
        return name if name.startswith("[") and name.endswith("]") else None
    heap_since_6_6 = r.start < r.brk and r.end > r.start_brk
    heap_before = r.start <= r.brk and r.end >= r.start_brk
    if heap_since_6_6 != heap_before:
        return None
    if heap_since_6_6:
        return "[heap]"
    if r.start <= r.start_stack <= r.end:
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


def unavailable_reason():
    """Why the bpf way cannot be used here (None: it can); for tests and probes."""
    try:
        VmaCollector("bpf", strict=True).close()
    except OSError as e:
        return e.strerror or errno.errorcode.get(e.errno, str(e))
    return None
