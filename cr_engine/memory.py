"""Memory: VMAs, their pages, shared memory objects and the mm metadata - dump and restore.

Dump: VMAs come from /proc/pid/smaps (for VmFlags); the pages worth storing (present or
swapped, anonymous - for a private file mapping that means only the changed pages; never the
shared zero page) from PAGEMAP_SCAN, or /proc/pid/pagemap on kernels without it.  They are
written to pages-PID.img in address order by the frozen process itself (pwritev(2) on an fd
lent to it), into the page cache, where the restore finds them; the pagemap in mm-PID.json
lists the runs.
Shared anonymous memory (a shmem file behind MAP_SHARED|MAP_ANONYMOUS) is dumped once per
object from the file itself, so pages only another process touched are not lost.

Restore runs inside the stub through injected system calls: map every VMA at its address
(files and shared memory through fds the stub opened for us), read the pages straight from the
image file into place with preadv(2) (on several threads of the stub for big images), set the
final protections, then PR_SET_MM_MAP.
"""

import bisect
import collections
import ctypes
import errno
import functools
import os
import queue
import struct
import threading

from kernel import memory as kmem

from . import carried_files
from .errors import RestoreError, Unsupported
from .images import CRC_CHUNK
from .remote import lend_fd
from .syscall_batch import BatchError, Call, SyscallBatch

PAGE = kmem.PAGE_SIZE
VDSO_NAMES = ("[vdso]", "[vvar]", "[vvar_vclock]")
SYSV_PREFIX = "/SYSV"                # a SysV shm attach: /SYSV<key>, its inode the shmid
IOV_MAX = 1024
# Bytes per injected pwritev: the page cache allocates folios as large as a write, and
# multi-MiB folios are slow to come by in a VM that hands free memory back to its host
# (8 MiB writes: 0.18-0.82 s per GiB here; 1 MiB writes: 0.16-0.17 s).
WRITE_MAX = 1 << 20
# More pwritev calls than this for one process: run them as batches (syscall_batch.py: one
# ptrace stop for many calls, where each call alone took ~100 us of stops in this VM); the
# batch's code page costs four injected calls, which fewer do not make up for.
BATCH_FROM = 8
LOAD_MAX = 16 << 20                 # bytes per injected preadv
COPY_CHUNK = 4 << 20               # bytes per /proc/PID/mem read
_MADVISE = {"dd": 16, "dc": 10, "hg": 14, "nh": 15, "wf": 18, "sr": 2, "rr": 1}
MAP_GROWSDOWN, MAP_NORESERVE = 0x100, 0x4000
PR_SET_VMA, PR_SET_VMA_ANON_NAME = 0x53564D41, 0
VMAS_PER_BATCH = 512                # their anon names (<= 96 bytes each) fit in the scratch
PAGE_IS_FILE, PAGE_IS_PRESENT = kmem.PAGE_CATEGORIES["FILE"], kmem.PAGE_CATEGORIES["PRESENT"]
PAGE_IS_SWAPPED, PAGE_IS_PFNZERO = (kmem.PAGE_CATEGORIES["SWAPPED"],
                                     kmem.PAGE_CATEGORIES["PFNZERO"])
PAGE_IS_GUARD = kmem.PAGE_CATEGORIES["GUARD"]


def prot_of(perms):
    return ((kmem.PROT_READ if perms[0] == "r" else 0) |
            (kmem.PROT_WRITE if perms[1] == "w" else 0) |
            (kmem.PROT_EXEC if perms[2] == "x" else 0))


def classify(pid, vma):
    """The kind of a VMA: vdso, skip, anon, file, shmem, sysv (a SysV shm attach), carried
    (a memfd or an unlinked file, whose content the images carry) or bpf-map (mapped from a
    BPF map's fd); Unsupported for the rest."""
    name = vma.name
    if name in VDSO_NAMES:
        return "vdso"
    if name == "[vsyscall]":
        return "skip"
    if vma.inode == 0 and (name in ("", "[heap]", "[stack]") or name.startswith("[anon:")):
        if vma.shared:
            raise Unsupported(f"unsupported: shared mapping without a file at "
                              f"{vma.start:#x} of pid {pid}")
        return "anon"
    if vma.shared and (name == "/dev/zero (deleted)" or name.startswith("[anon_shmem:")):
        return "shmem"
    if name.startswith(SYSV_PREFIX):
        if "ht" in vma.flags:
            raise Unsupported(f"unsupported: SysV shared memory on huge pages {name} mapped "
                              f"at {vma.start:#x} of pid {pid}")
        return "sysv"                   # attached again by sysv_ipc
    if name == "anon_inode:bpf-map":
        return "bpf-map"                # an mmapable array's or a ring buffer's pages
    if name == "anon_inode:[io_uring]":
        return "io_uring"               # a ring's memory: mapped again by io_uring
    if name.startswith("/") and carried_files.kind_of(name):
        return "carried"
    if name.startswith("/"):
        return "file"
    raise Unsupported(f"unsupported: mapping {name or '?'} at {vma.start:#x} of pid {pid}")


@functools.lru_cache(maxsize=256)
def _sorted_flags_of(flags):
    return sorted(flags)


def _sorted_flags(flags):
    """The VmFlags as the image lists them; a collector's frozensets repeat over thousands
    of VMAs (20,000 sorts: ~30 ms of frozen time), so theirs are sorted once each."""
    return list(_sorted_flags_of(flags)) if isinstance(flags, frozenset) else sorted(flags)


def vma_image(vma, kind):
    entry = {"start": vma.start, "end": vma.end, "perms": vma.perms, "kind": kind,
             "flags": _sorted_flags(vma.flags), "pgoff": vma.offset}
    if kind in ("file", "carried"):
        major, minor = (int(x, 16) for x in vma.dev.split(":"))
        entry.update(path=vma.name, dev=[major, minor], inode=vma.inode)
    elif kind == "shmem":
        entry["shmem"] = vma.inode
    elif kind == "sysv":
        entry["shmid"] = vma.inode
    elif vma.name.startswith("[anon:"):
        entry["anon_name"] = vma.name[len("[anon:"):-1]
    elif vma.name in ("[heap]", "[stack]") or kind == "vdso":
        entry["name"] = vma.name
    return entry


# Which pages to store --------------------------------------------------------------------------
SCAN_REGIONS = 1 << 14              # regions asked per PAGEMAP_SCAN call (24 bytes each)
# A VMA not to be stored of at least this size splits a span: walking its page tables
# (~50 ns a mapped page here) would cost what a call does (~7 us).
SCAN_SKIP = 64 * PAGE
SCAN_ARGS = dict(category_inverted=PAGE_IS_FILE | PAGE_IS_PFNZERO,
                 category_mask=PAGE_IS_FILE | PAGE_IS_PFNZERO,
                 category_anyof_mask=PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
                 return_mask=PAGE_IS_PRESENT | PAGE_IS_SWAPPED)
REGION = struct.Struct("3Q")            # struct page_region: start, end, categories


class PagemapScan:
    """PAGEMAP_SCAN of one process with fixed arguments (``args``: pm_scan_arg's flags and
    masks), asking ``per_call`` regions (SCAN_REGIONS) a call into one reused vector."""

    def __init__(self, pagemap_fd, per_call=None, **args):
        self.fd = pagemap_fd
        self.calls = 0
        self.per_call = per_call or SCAN_REGIONS
        self.vec = (kmem.PageRegion * self.per_call)()
        self.arg = kmem.PmScanArg(size=ctypes.sizeof(kmem.PmScanArg),
                                  vec=ctypes.addressof(self.vec), vec_len=self.per_call,
                                  **args)

    def regions(self, start, end):
        """Every region of [start, end), sorted: [(start, end, categories)].  A call that
        returns fewer regions than asked finished the walk.  A full vector: go on from
        walk_end, but never from before the last region's end - when a later bounce-buffer
        pass finished the walk, the kernel returns all regions yet leaves walk_end where an
        earlier pass stopped."""
        out, raw = [], memoryview(self.vec).cast("B")
        while start < end:
            self.arg.start, self.arg.end = start, end
            count = kmem.ioctl(self.fd, kmem.PAGEMAP_SCAN, ctypes.byref(self.arg))
            self.calls += 1
            out += REGION.iter_unpack(raw[:count * REGION.size])
            if count < self.per_call:
                break
            start = max(self.arg.walk_end, out[-1][1])
        return out


class PageScanner:
    """Runs of pages worth storing in private VMAs: [(start, end)], each inside one VMA.

    One PAGEMAP_SCAN walks a span of many VMAs (20,000 VMAs: one call instead of 20,000).
    Whether the kernel reports a page depends on its page table entry alone (SCAN_ARGS
    hold none of the per-VMA categories, WPALLOWED and SOFT_DIRTY), so a span reports the
    pages its VMAs report one by one.  Only the regions differ: the kernel merges
    neighbouring pages of equal categories across VMA bounds and splits regions where it
    refills its 512-entry bounce buffer; they are cut back at the VMAs' bounds and merged
    again within each (docs/plans/issue-11-collectors.md, 3.4)."""

    def __init__(self, pid):
        self.fd = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY | os.O_CLOEXEC)
        # None: no PAGEMAP_SCAN (< 6.7).  Guard pages (MADV_GUARD_INSTALL, 6.13) are asked
        # apart where the kernel names them (PAGE_IS_GUARD): they hold no content, and
        # reading one faults; where it cannot, the scan is asked without them
        self.scan = PagemapScan(self.fd, **dict(
            SCAN_ARGS, return_mask=SCAN_ARGS["return_mask"] | PAGE_IS_GUARD))
        self.guards = []            # [(start, end)] of the guard pages of the VMAs scanned

    def close(self):
        os.close(self.fd)

    def runs_of(self, vmas, others=()):
        """The runs of ``vmas`` (sorted, not overlapping), in address order; ``others``:
        the process's VMAs not to be stored (a big one between two VMAs splits the span).
        Their guard pages go to ``guards``."""
        starts, ends = [v.start for v in vmas], [v.end for v in vmas]
        out = []
        for lo, hi in _spans(starts, others):
            if self.scan:
                try:
                    regions = self._regions(starts[lo], ends[hi - 1])
                    if any(r[2] & PAGE_IS_GUARD for r in regions):
                        self.guards += _cut([r for r in regions if r[2] & PAGE_IS_GUARD],
                                            starts[lo:hi], ends[lo:hi])
                        regions = [r for r in regions if not r[2] & PAGE_IS_GUARD]
                    out += _cut(regions, starts[lo:hi], ends[lo:hi])
                    continue
                except OSError:
                    self.scan = None     # read pagemap entries instead
            out += [run for i in range(lo, hi) for run in self._pagemap(starts[i], ends[i])]
        return out

    def guards_in(self, vmas):
        """Add the guard pages of ``vmas`` (ones runs_of does not scan: shared mappings) to
        ``guards``, where the kernel names guard pages."""
        if not vmas or not self.scan or not self.scan.arg.return_mask & PAGE_IS_GUARD:
            return
        scan = PagemapScan(self.fd, category_anyof_mask=PAGE_IS_GUARD,
                           return_mask=PAGE_IS_GUARD)
        for v in vmas:
            self.guards += [(s, e) for s, e, _ in scan.regions(v.start, v.end)]
        self.guards.sort()

    def _regions(self, start, end):
        try:
            return self.scan.regions(start, end)
        except OSError as e:
            if e.errno != errno.EINVAL or not self.scan.arg.return_mask & PAGE_IS_GUARD:
                raise
        self.scan = PagemapScan(self.fd, **SCAN_ARGS)     # no PAGE_IS_GUARD here
        return self.scan.regions(start, end)

    def _pagemap(self, start, end):
        raw = os.pread(self.fd, (end - start) // PAGE * 8, start // PAGE * 8)
        entries = struct.unpack(f"{len(raw) // 8}Q", raw)
        out, run = [], None
        for i, e in enumerate(entries):
            keep = e & (kmem.PM_PRESENT | kmem.PM_SWAP) and not e & kmem.PM_FILE
            addr = start + i * PAGE
            if keep and run is not None and run[1] == addr:
                run[1] = addr + PAGE
            elif keep:
                run = [addr, addr + PAGE]
                out.append(run)
        return [tuple(r) for r in out]


def _spans(starts, others):
    """The VMAs starting at ``starts`` (sorted) in groups to scan at once, [(lo, hi)]
    index ranges: a VMA of ``others`` of at least SCAN_SKIP between two ends a group."""
    splits = {bisect.bisect_left(starts, v.start) for v in others
              if v.end - v.start >= SCAN_SKIP}
    bounds = [0] + sorted(i for i in splits if 0 < i < len(starts)) + [len(starts)]
    return [(lo, hi) for lo, hi in zip(bounds, bounds[1:]) if lo < hi]


def _cut(regions, starts, ends):
    """``regions`` [(start, end, categories)] (sorted, inside [starts[0], ends[-1])) cut
    back at the bounds of the VMAs [starts[i], ends[i]) (sorted) and merged within each:
    [(start, end)], none crossing a VMA bound."""
    out, i = [], 0
    for r_start, r_end, _ in regions:
        while ends[i] <= r_start:
            i += 1
        while True:                         # the VMAs from i on that the region meets
            lo, hi = max(r_start, starts[i]), min(r_end, ends[i])
            if lo >= hi:
                break                       # the rest of the region lies between VMAs
            if out and out[-1][1] == lo and lo != starts[i]:
                out[-1] = (out[-1][0], hi)  # the same VMA's run, split by the kernel
            else:
                out.append((lo, hi))
            if r_end <= ends[i]:
                break
            i += 1
    return out


# Writing pages out -------------------------------------------------------------------------
def _groups(runs, limit):
    """Cut runs [(addr, length)] into groups of at most IOV_MAX runs and ``limit`` bytes,
    splitting long runs: yields (group, bytes)."""
    i, runs = 0, list(runs)
    while i < len(runs):
        group, size = [], 0
        while i < len(runs) and len(group) < IOV_MAX and size < limit:
            addr, length = runs[i]
            take = min(length, limit - size)
            group.append((addr, take))
            size += take
            if take < length:
                runs[i] = (addr + take, length - take)
            else:
                i += 1
        yield group, size


class _Checksummer:
    """CRC-32 of a file that another writer extends, read back from the page cache.
    Following: a thread reads behind the writer, so that the check costs no extra wall
    time; not following: ``join()`` reads it all, once the writer is done (``end()``)."""

    def __init__(self, out, follow=True):
        self.out = out
        self.fd = os.open(out.path, os.O_RDONLY | os.O_CLOEXEC)
        self.done = self.last = 0
        self.view = None
        self.error = None
        self.marks = self.thread = None
        if follow:
            self.marks = queue.SimpleQueue()
            self.thread = threading.Thread(target=self._follow, name="pages-crc", daemon=True)
            self.thread.start()

    def written_up_to(self, offset):
        self.last = offset
        if self.marks is not None:
            self.marks.put(offset)

    def _follow(self):
        try:
            while (mark := self.marks.get()) is not None:
                self._read_to(mark)
        except BaseException as e:      # noqa: BLE001 - handed to the caller
            self.error = e

    def _read_to(self, mark):
        if self.view is None:
            self.view = memoryview(bytearray(CRC_CHUNK))
        while self.done < mark:
            n = os.preadv(self.fd, [self.view[:min(CRC_CHUNK, mark - self.done)]], self.done)
            if n <= 0:
                raise OSError(f"short read back of {self.out.path}")
            self.out.checksum(self.view[:n])
            self.done += n

    def end(self):
        """Nothing more is written."""
        if self.marks is not None:
            self.marks.put(None)

    def join(self):
        """Complete the CRC (wait for the follower, or read it all now); raise what went
        wrong reading it back."""
        try:
            if self.thread is None:
                self._read_to(self.last)
            else:
                self.thread.join()
                if self.error is not None:
                    raise self.error
        finally:
            self._close()

    def abandon(self):
        """The file is not kept: stop, without the CRC."""
        self.end()
        if self.thread is not None:
            self.thread.join()
        self._close()

    def _close(self):
        self.view = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def push_pages(rem, scratch, pid, runs, readable, out, follow=True):
    """Have the frozen process write its own pages into the image (one copy, its memory to
    the page cache, no buffer of ours): the image fd is lent to it (remote.lend_fd), and
    it runs pwritev(2) over at most WRITE_MAX bytes at a time.  Unreadable (PROT_NONE) runs
    go through /proc/pid/mem.  The CRC is read back from the page cache: ``follow``, by a
    thread behind the copy, else all of it once the checksummer is joined - a tree that
    runs on can be thawed first (a follower competing with the copy for the CPU made a
    loaded machine's 1 GiB window 1.5 s instead of 0.33).  Returns (the number of pages,
    the checksummer): ``out``'s CRC is complete once its ``join()`` returned, which reads
    our file, not the process."""
    fd = lend_fd(rem, scratch, out.fd)
    _preallocate(out.fd, sum(end - start for start, end in runs))
    crc = _Checksummer(out, follow)
    offset, mem, batch = 0, None, None
    try:
        i = 0
        while i < len(runs):
            j = i
            while j < len(runs) and readable[j] == readable[i]:
                j += 1
            if not readable[i]:
                if mem is None:
                    mem = os.open(f"/proc/{pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
                for start, end in runs[i:j]:
                    for at in range(start, end, WRITE_MAX):
                        n = min(WRITE_MAX, end - at)
                        data = os.pread(mem, n, at)
                        if len(data) != n or os.pwrite(out.fd, data, offset) != n:
                            raise OSError(f"short copy of {pid}'s memory at {at:#x}")
                        offset += n
                crc.written_up_to(offset)
            else:
                groups = list(_groups([(s, e - s) for s, e in runs[i:j]], WRITE_MAX))
                if batch is None and len(groups) > BATCH_FROM:
                    batch = _batch(rem, scratch)
                offset = _write_groups(rem, batch or None, scratch, pid, fd, groups, offset,
                                       crc)
            i = j
    except BaseException:
        crc.abandon()
        raise
    finally:
        try:
            if batch:
                batch.close()
        finally:
            try:
                rem.call("close", fd, check=False)
            finally:
                if mem is not None:
                    os.close(mem)
    crc.end()
    out.size = offset
    return offset // PAGE, crc


def _batch(rem, scratch):
    """A SyscallBatch in the frozen process, or False where it cannot have one (its policy
    refuses executable anonymous memory): its pages are then written a call at a time."""
    try:
        return SyscallBatch(rem, scratch)
    except OSError:
        return False


def _write_groups(rem, batch, scratch, pid, fd, groups, offset, crc):
    """pwritev(2) each (group of runs, bytes) at ``offset`` on, by the frozen process: one
    injected call each, or with ``batch`` as many a stop as their vectors fill half the
    scratch area; returns the offset after them."""
    calls = []                          # [(Call, bytes)] waiting for a run of the batch
    for k, (group, size) in enumerate(groups):
        iov = scratch.put(bytes((kmem.Iovec * len(group))(
            *[kmem.Iovec(a, n) for a, n in group])))
        calls.append((Call("pwritev", (fd, iov, len(group), offset, 0)), size))
        offset += size
        last = k == len(groups) - 1
        if batch is None or last or scratch.used + 16 * IOV_MAX > scratch.size // 2:
            results = (batch.run([c for c, _ in calls]) if batch is not None else
                       [rem.call("pwritev", *calls[0][0].args)])
            scratch.reset()
            for got, (_, want) in zip(results, calls):
                if got != want:
                    raise OSError(f"pid {pid} wrote {got} of {want} bytes of its pages")
            calls = []
            crc.written_up_to(offset)
    return offset


def copy_pages(pid, runs, out, chunk=COPY_CHUNK):
    """Copy ``runs`` of the running process ``pid`` into the image ``out`` from outside,
    through /proc/PID/mem (FOLL_FORCE: PROT_NONE pages too): a pre-dump's copy, after the
    thaw.  A run that cannot be read to its end (unmapped since the scan) is cut where the
    reading stopped, at a page.  Returns (the runs stored, pages).  What the process writes
    meanwhile is tracked (tracking.py), and stored again by the next dump."""
    stored, view = [], memoryview(bytearray(chunk))
    mem = os.open(f"/proc/{pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _preallocate(out.fd, sum(end - start for start, end in runs))
        for start, end in runs:
            at = start
            while at < end:
                want = min(chunk, end - at)
                try:
                    got = os.preadv(mem, [view[:want]], at)
                except OSError:
                    got = 0
                got -= got % PAGE
                if got:
                    out.write(view[:got])
                    at += got
                if got < want:
                    break
            if at > start:
                stored.append((start, at))
    finally:
        os.close(mem)
    return stored, sum(end - start for start, end in stored) // PAGE


def _preallocate(fd, size):
    """Reserve the image's blocks at once: writing into allocated blocks is several times
    faster than letting the file system allocate as the file grows (ext4: 0.13 s vs 0.2-0.8 s
    per GiB here)."""
    if size:
        try:
            os.posix_fallocate(fd, 0, size)
        except OSError:
            pass                        # file systems without fallocate just grow the file


def dump_shmem(pid, vma, out):
    """Data ranges of a shmem object (via /proc/pid/map_files): [[offset, length]]."""
    fd = os.open(f"/proc/{pid}/map_files/{vma.start:x}-{vma.end:x}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        ranges, offset = [], 0
        while offset < size:
            try:
                data_at = os.lseek(fd, offset, os.SEEK_DATA)
            except OSError:
                break                   # ENXIO: no data past offset
            hole_at = os.lseek(fd, data_at, os.SEEK_HOLE)
            ranges.append([data_at, hole_at - data_at])
            at = data_at
            while at < hole_at:
                chunk = os.pread(fd, min(WRITE_MAX, hole_at - at), at)
                if not chunk:
                    break
                out.write(chunk)
                at += len(chunk)
            offset = hole_at
        return size, ranges
    finally:
        os.close(fd)


def mm_image(pid, stat, brk, exe):
    with open(f"/proc/{pid}/auxv", "rb") as f:
        auxv = f.read()
    mm = {k: stat[k] for k in ("start_code", "end_code", "start_data", "end_data", "start_brk",
                               "start_stack", "arg_start", "arg_end", "env_start", "env_end")}
    mm.update(brk=brk, auxv=auxv.hex(), exe=exe)
    return mm


def file_identity(path):
    st = os.stat(path)
    return [os.major(st.st_dev), os.minor(st.st_dev)], st.st_ino


# Restore, inside the stub ----------------------------------------------------------------------
def restore_vmas(batch, scratch, pid, vmas, fd_of):
    """mmap every VMA but SysV attaches (sysv_ipc's), and name the named anonymous ones;
    ``fd_of(vma)`` gives the stub's fd for file and shmem VMAs.  In batches (syscall_batch)
    of VMAS_PER_BATCH VMAs, their names in ``scratch``."""
    mapped = [v for v in vmas if v["kind"] not in ("vdso", "skip", "sysv", "io_uring")]
    for first in range(0, len(mapped), VMAS_PER_BATCH):
        calls, owners = [], []          # owners[i]: the VMA of calls[i]
        for vma in mapped[first:first + VMAS_PER_BATCH]:
            calls.append(Call("mmap", _mmap_args(vma, fd_of)))   # MAP_FIXED: there or fails
            owners.append(vma)
            if "anon_name" in vma:
                name = scratch.put(vma["anon_name"].encode() + b"\0")
                # may fail: a kernel without CONFIG_ANON_VMA_NAME keeps the VMA nameless
                calls.append(Call("prctl", (PR_SET_VMA, PR_SET_VMA_ANON_NAME, vma["start"],
                                            vma["end"] - vma["start"], name), may_fail=True))
                owners.append(vma)
        try:
            batch.run(calls)
        except BatchError as e:
            raise _vma_error(e, owners[e.index], pid) from None
        finally:
            scratch.reset()


def _mmap_args(vma, fd_of):
    """mmap()'s arguments that map ``vma`` at its place, writable (its pages go in next)."""
    start, length = vma["start"], vma["end"] - vma["start"]
    prot = prot_of(vma["perms"]) | kmem.PROT_READ | kmem.PROT_WRITE
    flags = kmem.MAP_FIXED
    fd, offset = -1, 0
    if vma["kind"] == "anon":
        flags |= kmem.MAP_PRIVATE | kmem.MAP_ANONYMOUS
        if "gd" in vma["flags"]:
            flags |= MAP_GROWSDOWN
    else:
        fd, offset = fd_of(vma), vma["pgoff"]
        flags |= kmem.MAP_SHARED if vma["perms"][3] == "s" else kmem.MAP_PRIVATE
        if vma["perms"][3] == "s":
            prot = prot_of(vma["perms"])
    if "nr" in vma["flags"]:
        flags |= MAP_NORESERVE
    return start, length, prot, flags, fd, offset


def _vma_error(e, vma, pid):
    return RestoreError(f"{e.call} of {vma.get('path', vma['kind'])} at {vma['start']:#x} in "
                        f"pid {pid} failed ({os.strerror(e.errno)})", "memory")


def load_pages(loaders, scratch, pagemap, pages_fd):
    """preadv() the image's pages into place, LOAD_MAX bytes per call, the calls spread round
    robin over ``loaders`` (Remotes of threads of the process, working at once: faulting in
    fresh pages is what a load costs, and it scales with CPUs); returns the number of pages.
    The image is checked against its CRC by the restore's verifier, not here."""
    slots = [scratch.reserve(IOV_MAX * ctypes.sizeof(kmem.Iovec)) for _ in loaders]
    running = collections.deque()
    offset = 0

    def wait_oldest():
        loader, size = running.popleft()
        got = loader.finish("preadv")
        if got != size:
            raise RestoreError(f"short read of the page image ({got} of {size} bytes)",
                               "memory")

    runs = [(addr, count * PAGE) for addr, count in pagemap]
    for n, (group, size) in enumerate(_groups(runs, LOAD_MAX)):
        k = n % len(loaders)
        if len(running) == len(loaders):
            wait_oldest()                   # the oldest call is loader k's
        array = (kmem.Iovec * len(group))(*[kmem.Iovec(a, length) for a, length in group])
        scratch.put_at(slots[k], bytes(array))
        loaders[k].start("preadv", pages_fd, slots[k], len(group), offset, 0)
        running.append((loaders[k], size))
        offset += size
    while running:
        wait_oldest()
    return offset // PAGE


def finish_vmas(batch, pid, vmas):
    """Final protections and madvise() flags, in one batch."""
    calls, owners = [], []              # owners[i]: the VMA of calls[i]
    for vma in vmas:
        if vma["kind"] in ("vdso", "skip", "io_uring"):
            continue
        start, length = vma["start"], vma["end"] - vma["start"]
        prot = prot_of(vma["perms"])
        if vma["perms"][3] != "s" and prot != kmem.PROT_READ | kmem.PROT_WRITE:
            calls.append(Call("mprotect", (start, length, prot)))
            owners.append(vma)
        for flag in vma["flags"]:
            if flag in _MADVISE:        # may fail: advice this kernel or mapping refuses
                calls.append(Call("madvise", (start, length, _MADVISE[flag]), may_fail=True))
                owners.append(vma)
    try:
        batch.run(calls)
    except BatchError as e:
        raise _vma_error(e, owners[e.index], pid) from None


def install_guards(batch, pid, guards):
    """The dumped guard pages [(start, pages)] installed again (MADV_GUARD_INSTALL), after
    the pages are in: a guard holds none."""
    calls = [Call("madvise", (start, count * PAGE, kmem.MADV_GUARD_INSTALL))
             for start, count in guards]
    try:
        batch.run(calls)
    except BatchError as e:
        start, count = guards[e.index]
        raise RestoreError(f"guard pages at {start:#x} (+{count}) in pid {pid}: "
                           f"madvise(MADV_GUARD_INSTALL) failed ({os.strerror(e.errno)}; "
                           "guard pages are 6.13+)", "memory") from None


def move_vdso(rem, vmas, pid, here):
    """Put the kernel's vdso and its vvar pages (``here``: [(start, end, name)] of the
    stub's, left mapped) at the dumped addresses with mremap, which the kernel follows
    (vdso_mremap); without a dumped vdso they go.  (Unmapping them and asking for a new
    vdso with ARCH_MAP_VDSO_64 leaves a 5.10 task unable to enter the kernel again.)"""
    dumped = {v["name"]: v for v in vmas if v["kind"] == "vdso"}
    for start, end, name in here:
        want = dumped.get(name)
        if want is None:
            rem.call("munmap", start, end - start)
            continue
        if want["end"] - want["start"] != end - start:
            raise RestoreError(f"the {name} of pid {pid} was {want['end'] - want['start']} "
                               f"bytes, this kernel's is {end - start}", "memory")
        if start == want["start"]:
            continue
        # a place that overlaps where one of them is now: first anywhere else
        overlaps = any(s < want["end"] and want["start"] < e for s, e, _ in here)
        if overlaps:
            at = rem.call("mremap", start, end - start, end - start, kmem.MREMAP_MAYMOVE,
                          check=False)
            if at < 0:
                raise RestoreError(f"cannot move the {name} of pid {pid} ({_err(at)})",
                                   "memory")
            start = at
        got = rem.call("mremap", start, end - start, end - start,
                       kmem.MREMAP_MAYMOVE | kmem.MREMAP_FIXED, want["start"], check=False)
        if got != want["start"]:
            raise RestoreError(f"cannot move the {name} of pid {pid} to {want['start']:#x} "
                               f"({_err(got)})", "memory")
    missing = set(dumped) - {name for _, _, name in here}
    if missing:
        raise RestoreError(f"pid {pid} had {', '.join(sorted(missing))}, this kernel has "
                           f"none", "memory")


def _err(result):
    return os.strerror(-result) if -4095 <= result < 0 else f"got {result:#x}"

