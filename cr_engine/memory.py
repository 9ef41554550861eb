"""Memory: VMAs, their pages, shared memory objects and the mm metadata - dump and restore.

Dump: VMAs come from /proc/pid/smaps (for VmFlags); the pages worth storing (present or
swapped, anonymous - for a private file mapping that means only the changed pages; never the
shared zero page) from PAGEMAP_SCAN, or /proc/pid/pagemap on kernels without it.  They are
written to pages-PID.img in address order by the frozen process itself (pwritev(2) on an fd
lent to it); the pagemap in mm-PID.json lists the runs.
Shared anonymous memory (a shmem file behind MAP_SHARED|MAP_ANONYMOUS) is dumped once per
object from the file itself, so pages only another process touched are not lost.

Restore runs inside the stub through injected system calls: map every VMA at its address
(files and shared memory through fds the stub opened for us), read the pages straight from the
image file into place with preadv(2), set the final protections, then PR_SET_MM_MAP.
"""

import ctypes
import mmap
import os
import queue
import struct
import threading
import zlib

from kernel import memory as kmem
from kernel.libc import syscall

from .errors import RestoreError, Unsupported
from .images import open_direct

PAGE = kmem.PAGE_SIZE
VDSO_NAMES = ("[vdso]", "[vvar]", "[vvar_vclock]")
CHUNK = 8 << 20
IOV_MAX = 1024
CRC_CHUNK = 1 << 20                 # cache-sized: the CRC reads what it just copied
LOAD_MAX = 64 << 20                 # bytes per injected preadv: the CRC thread follows
_MADVISE = {"dd": 16, "dc": 10, "hg": 14, "nh": 15, "wf": 18, "sr": 2, "rr": 1}
MAP_GROWSDOWN, MAP_NORESERVE = 0x100, 0x4000
PR_SET_VMA, PR_SET_VMA_ANON_NAME = 0x53564D41, 0
ARCH_MAP_VDSO_64 = 0x2003
PAGE_IS_FILE, PAGE_IS_PRESENT = kmem.PAGE_CATEGORIES["FILE"], kmem.PAGE_CATEGORIES["PRESENT"]
PAGE_IS_SWAPPED, PAGE_IS_PFNZERO = (kmem.PAGE_CATEGORIES["SWAPPED"],
                                     kmem.PAGE_CATEGORIES["PFNZERO"])


def prot_of(perms):
    return ((kmem.PROT_READ if perms[0] == "r" else 0) |
            (kmem.PROT_WRITE if perms[1] == "w" else 0) |
            (kmem.PROT_EXEC if perms[2] == "x" else 0))


def classify(pid, vma):
    """The kind of a VMA: vdso, skip, anon, file or shmem; Unsupported for the rest."""
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
    if name.startswith("/SYSV"):
        raise Unsupported(f"unsupported: SysV shared memory {name} mapped at {vma.start:#x} "
                          f"of pid {pid}")
    if name.startswith("/memfd:"):
        raise Unsupported(f"unsupported: memfd {name} mapped at {vma.start:#x} of pid {pid}")
    if name.endswith(" (deleted)"):
        raise Unsupported(f"unsupported: deleted file {name} mapped at {vma.start:#x} "
                          f"of pid {pid}")
    if name.startswith("/"):
        return "file"
    raise Unsupported(f"unsupported: mapping {name or '?'} at {vma.start:#x} of pid {pid}")


def vma_image(vma, kind):
    entry = {"start": vma.start, "end": vma.end, "perms": vma.perms, "kind": kind,
             "flags": sorted(vma.flags), "pgoff": vma.offset}
    if kind == "file":
        major, minor = (int(x, 16) for x in vma.dev.split(":"))
        entry.update(path=vma.name, dev=[major, minor], inode=vma.inode)
    elif kind == "shmem":
        entry["shmem"] = vma.inode
    elif vma.name.startswith("[anon:"):
        entry["anon_name"] = vma.name[len("[anon:"):-1]
    elif vma.name in ("[heap]", "[stack]") or kind == "vdso":
        entry["name"] = vma.name
    return entry


# Which pages to store --------------------------------------------------------------------------
class PageScanner:
    """Runs of pages worth storing in a private VMA: [(start, end)]."""

    def __init__(self, pid):
        self.fd = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY | os.O_CLOEXEC)
        self.scan = True

    def close(self):
        os.close(self.fd)

    def runs(self, start, end):
        if self.scan:
            try:
                return self._scan(start, end)
            except OSError:
                self.scan = False        # no PAGEMAP_SCAN (< 6.7): read pagemap entries
        return self._pagemap(start, end)

    def _scan(self, start, end):
        out = []
        while start < end:
            regions, walk_end = kmem.pagemap_scan(
                self.fd, start, end, category_inverted=PAGE_IS_FILE | PAGE_IS_PFNZERO,
                category_mask=PAGE_IS_FILE | PAGE_IS_PFNZERO,
                category_anyof_mask=PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
                return_mask=PAGE_IS_PRESENT | PAGE_IS_SWAPPED, vec_len=1024)
            for r_start, r_end, _ in regions:
                if out and out[-1][1] == r_start:
                    out[-1] = (out[-1][0], r_end)
                else:
                    out.append((r_start, r_end))
            if walk_end <= start:
                break
            start = walk_end
        return out

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


# Writing pages out -------------------------------------------------------------------------
class _DirectWriter:
    """Writes buffers to the image with O_DIRECT on a thread while the next buffer is read:
    no page cache is allocated for the image (in a VM that hands freed memory back to the
    host, fresh page cache is what costs most), and reading and writing overlap."""

    def __init__(self, out, size):
        self.fd = open_direct(out.path, os.O_WRONLY, size)
        self.chunk = max(PAGE, min(CHUNK, size))   # small dumps touch small buffers
        self.jobs = queue.SimpleQueue()
        self.free = queue.SimpleQueue()
        for _ in range(2):
            self.free.put(mmap.mmap(-1, self.chunk))    # page-aligned, as O_DIRECT needs
        self.error = None
        self.thread = threading.Thread(target=self._run, name="pages-writer", daemon=True)
        self.thread.start()

    def _run(self):
        while (job := self.jobs.get()) is not None:
            buf, length, offset = job
            try:
                if self.error is None and os.pwritev(self.fd, [memoryview(buf)[:length]],
                                                     offset) != length:
                    raise OSError("short write of the page image")
            except BaseException as e:      # noqa: BLE001 - handed to the reading thread
                self.error = e
            self.free.put(buf)

    def buffer(self):
        buf = self.free.get()
        if self.error is not None:
            raise self.error
        return buf

    def submit(self, buf, length, offset):
        self.jobs.put((buf, length, offset))

    def close(self):
        self.jobs.put(None)
        self.thread.join()
        os.close(self.fd)
        if self.error is not None:
            raise self.error


def stream_pages(pid, runs, readable, out):
    """Copy the runs [(start, end)] of ``pid`` into the image ``out`` in order, computing its
    CRC from the very bytes written; returns the number of pages.  Readable memory comes with
    process_vm_readv(2), PROT_NONE memory through /proc/pid/mem."""
    total = sum(end - start for start, end in runs)
    _preallocate(out.fd, total)
    writer = _DirectWriter(out, total)
    chunk = writer.chunk
    remote = (kmem.Iovec * IOV_MAX)()
    mem, offset = None, 0

    def read_batch(batch, size, buf):
        local = kmem.Iovec(ctypes.addressof(ctypes.c_char.from_buffer(buf)), size)
        for i, (addr, length) in enumerate(batch):
            remote[i].iov_base, remote[i].iov_len = addr, length
        got = syscall("process_vm_readv", pid, ctypes.byref(local), 1, remote, len(batch), 0)
        if got != size:
            raise OSError(f"short read of {pid}'s memory ({got} of {size} bytes)")

    try:
        batch, size = [], 0
        for (start, end), can_read in zip(runs, readable):
            if not can_read and batch:          # keep file order
                offset = _flush(writer, read_batch, batch, size, offset, out)
                batch, size = [], 0
            while start < end:
                if not can_read:
                    n = min(chunk, end - start)
                    if mem is None:
                        mem = os.open(f"/proc/{pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
                    buf = writer.buffer()
                    if os.preadv(mem, [memoryview(buf)[:n]], start) != n:
                        raise OSError(f"short read of {pid}'s memory at {start:#x}")
                    out.checksum(memoryview(buf)[:n])
                    writer.submit(buf, n, offset)
                    offset += n
                    start += n
                    continue
                n = min(chunk - size, end - start)
                batch.append((start, n))
                size += n
                start += n
                if size == chunk or len(batch) == IOV_MAX:
                    offset = _flush(writer, read_batch, batch, size, offset, out)
                    batch, size = [], 0
        if batch:
            offset = _flush(writer, read_batch, batch, size, offset, out)
    finally:
        writer.close()
        if mem is not None:
            os.close(mem)
    out.size = offset
    return offset // PAGE


def _flush(writer, read_batch, batch, size, offset, out):
    buf = writer.buffer()
    read_batch(batch, size, buf)
    out.checksum(memoryview(buf)[:size])
    writer.submit(buf, size, offset)
    return offset + size


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
                chunk = os.pread(fd, min(CHUNK, hole_at - at), at)
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
def restore_vmas(rem, scratch, pid, vmas, fd_of):
    """mmap every VMA; ``fd_of(vma)`` gives the stub's fd for file and shmem VMAs."""
    for vma in vmas:
        if vma["kind"] in ("vdso", "skip"):
            continue
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
        got = rem.call("mmap", start, length, prot, flags, fd, offset, check=False)
        if got != start:
            raise RestoreError(f"mmap of {vma.get('path', vma['kind'])} at {start:#x} in pid "
                               f"{pid} failed ({_err(got)})", "memory")
        if "anon_name" in vma:
            name = scratch.put(vma["anon_name"].encode() + b"\0")
            rem.call("prctl", PR_SET_VMA, PR_SET_VMA_ANON_NAME, start, length, name, check=False)
            scratch.reset()


def load_pages(rem, scratch, pid, pagemap, pages_fd):
    """preadv() the image's pages into place (at most IOV_MAX runs and LOAD_MAX bytes per
    call); returns (pages, CRC-32 of what arrived).  The CRC is taken from the process's
    memory on a thread that follows the loads, so checking the image costs no second read
    of the file."""
    crc = MemoryCrc(pid)
    offset, i = 0, 0
    try:
        while i < len(pagemap):
            group, size = [], 0
            while i < len(pagemap) and len(group) < IOV_MAX and size < LOAD_MAX:
                addr, count = pagemap[i]
                group.append((addr, count * PAGE))
                size += count * PAGE
                i += 1
            array = (kmem.Iovec * len(group))(*[kmem.Iovec(a, n) for a, n in group])
            iov = scratch.put(bytes(array))
            got = rem.call("preadv", pages_fd, iov, len(group), offset, 0)
            scratch.reset()
            if got != size:
                raise RestoreError(f"short read of the page image ({got} of {size} bytes)",
                                   "memory")
            crc.add(group)
            offset += size
    finally:
        value = crc.close()
    return offset // PAGE, value


class MemoryCrc:
    """CRC-32 of runs [(addr, length)] of another process's memory, computed on a thread."""

    def __init__(self, pid):
        self.pid = pid
        self.crc = 0
        self.jobs = queue.SimpleQueue()
        self.error = None
        self.thread = threading.Thread(target=self._run, name="memory-crc", daemon=True)
        self.thread.start()

    def add(self, runs):
        self.jobs.put(runs)

    def _run(self):
        buf = mmap.mmap(-1, CRC_CHUNK)
        view = memoryview(buf)
        local = kmem.Iovec(ctypes.addressof(ctypes.c_char.from_buffer(buf)), 0)
        remote = kmem.Iovec(0, 0)
        try:
            while (runs := self.jobs.get()) is not None:
                for addr, length in runs:
                    for at in range(addr, addr + length, CRC_CHUNK):
                        n = min(CRC_CHUNK, addr + length - at)
                        local.iov_len, remote.iov_base, remote.iov_len = n, at, n
                        if syscall("process_vm_readv", self.pid, ctypes.byref(local), 1,
                                   ctypes.byref(remote), 1, 0) != n:
                            raise OSError(f"short read of {self.pid}'s memory at {at:#x}")
                        self.crc = zlib.crc32(view[:n], self.crc)
        except BaseException as e:      # noqa: BLE001 - handed to the caller
            self.error = e

    def close(self):
        self.jobs.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.crc


def finish_vmas(rem, vmas):
    """Final protections and madvise() flags."""
    for vma in vmas:
        if vma["kind"] in ("vdso", "skip"):
            continue
        start, length = vma["start"], vma["end"] - vma["start"]
        prot = prot_of(vma["perms"])
        if vma["perms"][3] != "s" and prot != kmem.PROT_READ | kmem.PROT_WRITE:
            rem.call("mprotect", start, length, prot)
        for flag in vma["flags"]:
            if flag in _MADVISE:
                rem.call("madvise", start, length, _MADVISE[flag], check=False)


def map_vdso(rem, vmas, pid):
    """Put the kernel's vdso (and its vvar pages) at the dumped address."""
    special = [v for v in vmas if v["kind"] == "vdso"]
    if not special:
        return
    start = min(v["start"] for v in special)
    got = rem.call("arch_prctl", ARCH_MAP_VDSO_64, start, check=False)
    if got < 0:
        raise RestoreError(f"cannot map the vdso at {start:#x} in pid {pid} ({_err(got)})",
                           "memory")


def _err(result):
    return os.strerror(-result) if -4095 <= result < 0 else f"got {result:#x}"

