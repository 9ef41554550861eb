"""io_uring rings set up with IORING_SETUP_NO_MMAP (6.5+): their memory is the process's
own, given to io_uring_setup as sq_off.user_addr (the SQEs) and cq_off.user_addr (the SQ
and CQ rings).  Where that memory lies, and a window to read and write it in place.

The kernel keeps no user address for such a ring, only the pages it pinned: a struct page
array in ctx->ring_region and ctx->sq_region (struct io_mapped_region, 6.15+), in
ctx->ring_pages / n_ring_pages and ctx->sqe_pages / n_sqe_pages before (6.5 to 6.14), each
found through the running kernel's BTF.  A struct page pointer gives its page frame number,
(page - vmemmap_base) / sizeof(struct page) (SPARSEMEM_VMEMMAP, x86-64), and the
process's pagemap (root reads PFNs there) the virtual address holding that frame: the
pages are pinned, so they are present.  vmemmap_base comes from /proc/kallsyms (kernels
with KALLSYMS_ALL) read through the kernel reader, or else from a NO_MMAP ring of ours,
whose first page's address we know: its PFN in our own pagemap and its struct page in our
own ring's context give the base.

    addrs = addresses(reader, types, ctx_data, pid, lay, what)   # {"rings": ..., "sqes": ...}
    rings = ProcessMemory(pid, addrs["rings"], lay.rings_size)   # rings[a:b], rings[a:b] = ...
"""

import ctypes
import errno
import mmap
import os
import struct

from kernel import btf
from kernel import io_uring as uring
from kernel.memory import PAGE_SIZE

from . import proc
from .errors import Unsupported

PFN_MASK = (1 << 55) - 1            # pagemap entry: bits 0-54 the PFN, bit 63 present
PRESENT = 1 << 63
SCAN_PAGES = 1 << 16                # pagemap entries read at once
# (the part, the 6.15+ io_mapped_region of io_ring_ctx, the 6.5-6.14 page array and count)
PARTS = (("rings", "ring_region", "ring_pages", "n_ring_pages"),
         ("sqes", "sq_region", "sqe_pages", "n_sqe_pages"))

_vmemmap = {}                       # the kernel's vmemmap_base, once found


def addresses(reader, types, ctx_data, pid, lay, what):
    """{"rings": address, "sqes": address} of a NO_MMAP ring's memory in process ``pid``
    (``ctx_data``: its struct io_ring_ctx); Unsupported when a step cannot be taken."""
    def refuse(why):
        return Unsupported(f"unsupported: io_uring ring with IORING_SETUP_NO_MMAP ({what}): "
                           f"{why}")

    arrays = _page_arrays(types, ctx_data)
    if arrays is None:
        raise refuse("this kernel's io_ring_ctx has neither ring_region nor ring_pages")
    pages = {}
    for part, (at, count) in arrays.items():
        size = lay.rings_size if part == "rings" else lay.sqes_size
        if not at or count != size // PAGE_SIZE:
            raise refuse(f"its {part} are {count} pinned pages, not {size // PAGE_SIZE}")
        raw = reader.read_one(at, 8 * count)
        if raw is None:
            raise refuse(f"its {part}' page array cannot be read")
        pages[part] = struct.unpack(f"<{count}Q", raw)
    page_size = types.size(types.find("page", btf.KIND_STRUCT))
    base = vmemmap_base(reader, types)
    if base is None:
        raise refuse("the kernel's vmemmap_base is not in /proc/kallsyms and no ring of ours "
                     "gives it")
    pfns = {}
    for part, array in pages.items():
        offsets = [page - base for page in array]
        if any(off < 0 or off % page_size for off in offsets):
            raise refuse(f"a page of its {part} is not in the kernel's vmemmap")
        pfns[part] = [off // page_size for off in offsets]
    found = _find(pid, pfns)
    for part in pfns:
        if part not in found:
            raise refuse(f"its {part} are in no writable mapping of the process")
    return found


def _page_arrays(types, ctx_data):
    """{part: (struct page ** address, count)} of a ring's pinned pages; None when this
    kernel keeps them in neither known way."""
    out = {}
    for part, region, old_pages, old_count in PARTS:
        try:
            at = types.field("io_ring_ctx", f"{region}.pages")
            count = types.field("io_ring_ctx", f"{region}.nr_pages")
        except KeyError:
            try:
                at = types.field("io_ring_ctx", old_pages)
                count = types.field("io_ring_ctx", old_count)
            except KeyError:
                return None
        out[part] = (at.value(ctx_data), count.value(ctx_data))
    return out


def vmemmap_base(reader, types):
    """The kernel's vmemmap_base (where struct page of PFN 0 would be), or None."""
    if "base" not in _vmemmap:
        _vmemmap["base"] = _kallsyms_base(reader) or _own_ring_base(reader, types)
    return _vmemmap["base"]


def _kallsyms_base(reader):
    try:
        with open("/proc/kallsyms") as f:
            addr = next((int(line.split()[0], 16) for line in f
                         if line.split()[2:3] == ["vmemmap_base"]), 0)
    except OSError:
        return None
    raw = reader.read_one(addr, 8) if addr else None       # 0 under kptr_restrict
    return struct.unpack("<Q", raw)[0] if raw else None


def _own_ring_base(reader, types):
    """vmemmap_base from a NO_MMAP ring of ours: the struct page its context holds for our
    rings page, minus that page's PFN (from our pagemap) times sizeof(struct page)."""
    rings = mmap.mmap(-1, PAGE_SIZE)
    sqes = mmap.mmap(-1, PAGE_SIZE)
    try:
        at = ctypes.addressof(ctypes.c_char.from_buffer(rings))
        sqes_at = ctypes.addressof(ctypes.c_char.from_buffer(sqes))
        params = uring.Params(flags=uring.SETUP["NO_MMAP"],
                              sq_off=uring.SqringOffsets(user_addr=sqes_at),
                              cq_off=uring.CqringOffsets(user_addr=at))
        try:
            fd = uring.setup(1, params)
        except OSError:
            return None
        try:
            ctx = reader.files(os.getpid())[fd][1]
            size = types.size(types.find("io_ring_ctx", btf.KIND_STRUCT))
            data = reader.read_one(ctx, size)
            arrays = data and _page_arrays(types, data)
            raw = arrays and reader.read_one(arrays["rings"][0], 8)
            with open("/proc/self/pagemap", "rb", buffering=0) as f:
                entry = struct.unpack("<Q", os.pread(f.fileno(), 8, at // PAGE_SIZE * 8))[0]
        finally:
            os.close(fd)
        pfn = entry & PFN_MASK
        if not raw or not entry & PRESENT or not pfn:          # no PFNs without CAP_SYS_ADMIN
            return None
        return struct.unpack("<Q", raw)[0] - pfn * types.size(types.find("page",
                                                                          btf.KIND_STRUCT))
    finally:
        rings.close()
        sqes.close()


def _find(pid, pfns):
    """{part: the address of the writable pages of ``pid`` whose frames are pfns[part]}."""
    firsts = {frames[0]: part for part, frames in pfns.items()}
    found = {}
    with open(f"/proc/{pid}/pagemap", "rb", buffering=0) as f:
        fd = f.fileno()
        for vma in proc.maps(pid):
            if "w" not in vma.perms:
                continue
            for start in range(vma.start, vma.end, SCAN_PAGES * PAGE_SIZE):
                count = min(SCAN_PAGES, (vma.end - start) // PAGE_SIZE)
                for i, entry in enumerate(_pagemap(fd, start, count)):
                    part = firsts.get(entry & PFN_MASK) if entry & PRESENT else None
                    if part is None or part in found:
                        continue
                    addr, frames = start + i * PAGE_SIZE, pfns[part]
                    if addr + len(frames) * PAGE_SIZE <= vma.end and \
                            [e & PFN_MASK for e in _pagemap(fd, addr, len(frames))] == frames:
                        found[part] = addr
                if len(found) == len(pfns):
                    return found
    return found


def _pagemap(fd, start, count):
    raw = os.pread(fd, 8 * count, start // PAGE_SIZE * 8)
    return struct.unpack(f"<{len(raw) // 8}Q", raw)


class ProcessMemory:
    """``length`` bytes of process ``pid`` at ``addr``, read and written in place through
    /proc/PID/mem: sliced like the mmap of a ring fd (bytes(m), m[a:b], m[a:b] = data),
    its 4-byte words through ``words()``."""

    def __init__(self, pid, addr, length):
        self.addr, self.length = addr, length
        self.fd = os.open(f"/proc/{pid}/mem", os.O_RDWR | os.O_CLOEXEC)

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __len__(self):
        return self.length

    def _span(self, key):
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("process memory is read and written by slices")
        start, stop, _ = key.indices(self.length)
        return start, max(stop - start, 0)

    def __getitem__(self, key):
        start, length = self._span(key)
        return self._read(start, length)

    def __setitem__(self, key, data):
        start, length = self._span(key)
        if len(data) != length:
            raise ValueError("process memory cannot change size")
        self._write(start, bytes(data))

    def __bytes__(self):
        return self._read(0, self.length)

    def _read(self, off, length):
        data = os.pread(self.fd, length, self.addr + off)
        if len(data) != length:
            raise OSError(errno.EIO, f"short read of process memory at {self.addr + off:#x}")
        return data

    def _write(self, off, data):
        if os.pwrite(self.fd, data, self.addr + off) != len(data):
            raise OSError(errno.EIO, f"short write of process memory at {self.addr + off:#x}")

    def words(self):
        return _Words(self)


class _Words:
    """A ProcessMemory as 4-byte words (memoryview.cast("I") of a mapping): each read and
    written by one aligned 4-byte access."""

    def __init__(self, memory):
        self.memory = memory

    def __getitem__(self, index):
        return struct.unpack("<I", self.memory._read(4 * index, 4))[0]

    def __setitem__(self, index, value):
        self.memory._write(4 * index, struct.pack("<I", value))

    def release(self):
        pass
