"""Memory: mmap family, userfaultfd, PAGEMAP_SCAN, PROCMAP_QUERY, memfd, process_vm_*, AIO.

Thin wrappers: every failure raises ``OSError`` with the kernel's errno;
meanings and policy belong to the callers.
"""

import ctypes
import fcntl
import os

from .libc import IO, IOR, IOWR, ioctl, syscall

PAGE_SIZE = 4096

# <asm-generic/mman*.h>
PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC = 0, 1, 2, 4
MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS = 0x01, 0x02, 0x10, 0x20
MAP_NORESERVE, MAP_POPULATE, MAP_HUGETLB = 0x4000, 0x8000, 0x40000
MAP_FIXED_NOREPLACE = 0x100000
MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP = 1, 2, 4
MADV_DONTNEED = 4
MADV_GUARD_INSTALL, MADV_GUARD_REMOVE = 102, 103   # 6.13


def mmap(length, prot=PROT_READ | PROT_WRITE, flags=MAP_PRIVATE | MAP_ANONYMOUS, fd=-1,
         offset=0, addr=0):
    """Raw mmap(2); returns the address as an int."""
    return syscall("mmap", addr, length, prot, flags, fd, offset)


def munmap(addr, length):
    return syscall("munmap", addr, length)


def mprotect(addr, length, prot):
    return syscall("mprotect", addr, length, prot)


def madvise(addr, length, advice):
    return syscall("madvise", addr, length, advice)


def mremap(old_addr, old_size, new_size, flags=0, new_addr=0):
    return syscall("mremap", old_addr, old_size, new_size, flags, new_addr)


def mincore(addr, length):
    """mincore(2): one byte per page, bit 0 set when the page is in memory (for a shared
    mapping: in the page cache, whoever faulted it in)."""
    vec = ctypes.create_string_buffer((length + PAGE_SIZE - 1) // PAGE_SIZE)
    syscall("mincore", addr, length, vec)
    return vec.raw


def mseal(addr, length, flags=0):
    """mseal(2) (6.10)."""
    return syscall("mseal", addr, length, flags)


def poke(addr, data):
    """Copy bytes into memory this process mapped (a thin memmove)."""
    ctypes.memmove(addr, data, len(data))


def peek(addr, length):
    return ctypes.string_at(addr, length)


# memfd --------------------------------------------------------------------------
MFD_CLOEXEC, MFD_ALLOW_SEALING, MFD_HUGETLB = 0x1, 0x2, 0x4
MFD_NOEXEC_SEAL, MFD_EXEC = 0x8, 0x10   # 6.3
F_ADD_SEALS, F_GET_SEALS = 1033, 1034
F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE = 0x1, 0x2, 0x4, 0x8
F_SEAL_FUTURE_WRITE, F_SEAL_EXEC = 0x10, 0x20


def memfd_create(name, flags=0):
    return syscall("memfd_create", name, flags)


def add_seals(fd, seals):
    return fcntl.fcntl(fd, F_ADD_SEALS, seals)


def get_seals(fd):
    return fcntl.fcntl(fd, F_GET_SEALS)


def memfd_secret(flags=0):
    """memfd_secret(2) (5.14); ENOSYS also when disabled (secretmem.enable=0)."""
    return syscall("memfd_secret", flags)


# process_vm_readv / writev ---------------------------------------------------------
class Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


def _iov(addr, length):
    return ctypes.byref(Iovec(addr, length))


def process_vm_readv(pid, local_addr, remote_addr, length):
    """One local and one remote iovec; returns the number of bytes read."""
    return syscall("process_vm_readv", pid, _iov(local_addr, length), 1,
                   _iov(remote_addr, length), 1, 0)


def process_vm_writev(pid, local_addr, remote_addr, length):
    return syscall("process_vm_writev", pid, _iov(local_addr, length), 1,
                   _iov(remote_addr, length), 1, 0)


# userfaultfd ------------------------------------------------------------------------
UFFD_API = 0xAA
UFFD_USER_MODE_ONLY = 1
UFFD_FEATURES = {
    "PAGEFAULT_FLAG_WP": 1 << 0, "EVENT_FORK": 1 << 1, "EVENT_REMAP": 1 << 2,
    "EVENT_REMOVE": 1 << 3, "MISSING_HUGETLBFS": 1 << 4, "MISSING_SHMEM": 1 << 5,
    "EVENT_UNMAP": 1 << 6, "SIGBUS": 1 << 7, "THREAD_ID": 1 << 8,
    "MINOR_HUGETLBFS": 1 << 9, "MINOR_SHMEM": 1 << 10, "EXACT_ADDRESS": 1 << 11,
    "WP_HUGETLBFS_SHMEM": 1 << 12, "WP_UNPOPULATED": 1 << 13, "POISON": 1 << 14,
    "WP_ASYNC": 1 << 15, "MOVE": 1 << 16,
}
UFFDIO_REGISTER_MODE_MISSING, UFFDIO_REGISTER_MODE_WP = 1 << 0, 1 << 1
UFFDIO_REGISTER_MODE_MINOR = 1 << 2
UFFDIO_WRITEPROTECT_MODE_WP, UFFDIO_WRITEPROTECT_MODE_DONTWAKE = 1 << 0, 1 << 1
_UFFDIO_WRITEPROTECT_BIT = 0x06   # bit number in the ioctls masks


class UffdioApi(ctypes.Structure):
    _fields_ = [("api", ctypes.c_uint64), ("features", ctypes.c_uint64),
                ("ioctls", ctypes.c_uint64)]


class UffdioRange(ctypes.Structure):
    _fields_ = [("start", ctypes.c_uint64), ("len", ctypes.c_uint64)]


class UffdioRegister(ctypes.Structure):
    _fields_ = [("range", UffdioRange), ("mode", ctypes.c_uint64), ("ioctls", ctypes.c_uint64)]


class UffdioWriteprotect(ctypes.Structure):
    _fields_ = [("range", UffdioRange), ("mode", ctypes.c_uint64)]


UFFDIO_API = IOWR(UFFD_API, 0x3F, ctypes.sizeof(UffdioApi))
UFFDIO_REGISTER = IOWR(UFFD_API, 0x00, ctypes.sizeof(UffdioRegister))
UFFDIO_UNREGISTER = IOR(UFFD_API, 0x01, ctypes.sizeof(UffdioRange))
UFFDIO_WRITEPROTECT = IOWR(UFFD_API, 0x06, ctypes.sizeof(UffdioWriteprotect))
USERFAULTFD_IOC_NEW = IO(UFFD_API, 0x00)   # on /dev/userfaultfd (6.1)
DEV_USERFAULTFD = "/dev/userfaultfd"


def userfaultfd(flags=0):
    return syscall("userfaultfd", flags)


def userfaultfd_from_dev(dev_fd, flags=0):
    """USERFAULTFD_IOC_NEW on an open /dev/userfaultfd: a new userfaultfd."""
    return ioctl(dev_fd, USERFAULTFD_IOC_NEW, flags)


def uffdio_api(uffd, features=0):
    """UFFDIO_API handshake; returns the UffdioApi the kernel filled in."""
    api = UffdioApi(api=UFFD_API, features=features)
    ioctl(uffd, UFFDIO_API, ctypes.byref(api))
    return api


def uffdio_register(uffd, start, length, mode):
    """Returns the ioctls mask allowed on the range."""
    reg = UffdioRegister(range=UffdioRange(start, length), mode=mode)
    ioctl(uffd, UFFDIO_REGISTER, ctypes.byref(reg))
    return reg.ioctls


def uffdio_unregister(uffd, start, length):
    return ioctl(uffd, UFFDIO_UNREGISTER, ctypes.byref(UffdioRange(start, length)))


def uffdio_writeprotect(uffd, start, length, mode):
    wp = UffdioWriteprotect(range=UffdioRange(start, length), mode=mode)
    return ioctl(uffd, UFFDIO_WRITEPROTECT, ctypes.byref(wp))


# /proc/pid/pagemap: PAGEMAP_SCAN (6.7) -----------------------------------------------
PROCFS_IOCTL_MAGIC = ord("f")
PAGE_CATEGORIES = {
    "WPALLOWED": 1 << 0, "WRITTEN": 1 << 1, "FILE": 1 << 2, "PRESENT": 1 << 3,
    "SWAPPED": 1 << 4, "PFNZERO": 1 << 5, "HUGE": 1 << 6, "SOFT_DIRTY": 1 << 7,
    "GUARD": 1 << 8,
}
PM_SCAN_WP_MATCHING, PM_SCAN_CHECK_WPASYNC = 1 << 0, 1 << 1
# pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst)
PM_SOFT_DIRTY, PM_MMAP_EXCLUSIVE, PM_UFFD_WP = 1 << 55, 1 << 56, 1 << 57
PM_FILE, PM_SWAP, PM_PRESENT = 1 << 61, 1 << 62, 1 << 63


class PmScanArg(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "size", "flags", "start", "end", "walk_end", "vec", "vec_len", "max_pages",
        "category_inverted", "category_mask", "category_anyof_mask", "return_mask")]


class PageRegion(ctypes.Structure):
    _fields_ = [("start", ctypes.c_uint64), ("end", ctypes.c_uint64),
                ("categories", ctypes.c_uint64)]


PAGEMAP_SCAN = IOWR(PROCFS_IOCTL_MAGIC, 16, ctypes.sizeof(PmScanArg))


def pagemap_scan(pagemap_fd, start, end, *, category_mask=0, category_inverted=0,
                 category_anyof_mask=0, return_mask=0, flags=0, max_pages=0, vec_len=32):
    """PAGEMAP_SCAN on an open /proc/pid/pagemap.

    Returns ([(start, end, categories)], walk_end). ``vec_len=0`` passes no
    output vector at all.
    """
    vec = (PageRegion * max(vec_len, 1))()
    arg = PmScanArg(size=ctypes.sizeof(PmScanArg), flags=flags, start=start, end=end,
                    vec=ctypes.addressof(vec) if vec_len else 0, vec_len=vec_len,
                    max_pages=max_pages, category_inverted=category_inverted,
                    category_mask=category_mask, category_anyof_mask=category_anyof_mask,
                    return_mask=return_mask)
    count = ioctl(pagemap_fd, PAGEMAP_SCAN, ctypes.byref(arg))
    return [(r.start, r.end, r.categories) for r in vec[:count]], arg.walk_end


def pagemap_entry(pagemap_fd, addr):
    """The 64-bit /proc/pid/pagemap entry of the page holding ``addr`` (0 past the end)."""
    raw = os.pread(pagemap_fd, 8, addr // PAGE_SIZE * 8)
    return int.from_bytes(raw, "little") if len(raw) == 8 else 0


# /proc/pid/maps: PROCMAP_QUERY (6.11) ----------------------------------------------------
PROCMAP_QUERY_VMA_READABLE, PROCMAP_QUERY_VMA_WRITABLE = 0x01, 0x02
PROCMAP_QUERY_VMA_EXECUTABLE, PROCMAP_QUERY_VMA_SHARED = 0x04, 0x08
PROCMAP_QUERY_COVERING_OR_NEXT_VMA, PROCMAP_QUERY_FILE_BACKED_VMA = 0x10, 0x20


class ProcmapQuery(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "size", "query_flags", "query_addr", "vma_start", "vma_end", "vma_flags",
        "vma_page_size", "vma_offset", "inode")] + [
        (name, ctypes.c_uint32) for name in (
            "dev_major", "dev_minor", "vma_name_size", "build_id_size")] + [
        ("vma_name_addr", ctypes.c_uint64), ("build_id_addr", ctypes.c_uint64)]


PROCMAP_QUERY = IOWR(PROCFS_IOCTL_MAGIC, 17, ctypes.sizeof(ProcmapQuery))


def procmap_query(maps_fd, addr, query_flags=0, name_size=0):
    """PROCMAP_QUERY on an open /proc/pid/maps; returns (ProcmapQuery, name bytes or None)."""
    name = ctypes.create_string_buffer(name_size) if name_size else None
    q = ProcmapQuery(size=ctypes.sizeof(ProcmapQuery), query_flags=query_flags,
                     query_addr=addr, vma_name_size=name_size,
                     vma_name_addr=ctypes.addressof(name) if name is not None else 0)
    ioctl(maps_fd, PROCMAP_QUERY, ctypes.byref(q))
    got = name.raw[:max(q.vma_name_size - 1, 0)] if name is not None and q.vma_name_size else None
    return q, got


# Linux AIO ------------------------------------------------------------------------------
def io_setup(nr_events):
    """io_setup(2); returns the context, which is the ring's address."""
    ctx = ctypes.c_ulong(0)
    syscall("io_setup", nr_events, ctypes.byref(ctx))
    return ctx.value


def io_getevents(ctx, min_nr, nr):
    events = (ctypes.c_byte * (32 * max(nr, 1)))()
    return syscall("io_getevents", ctypes.c_ulong(ctx), min_nr, nr, events, None)


def io_destroy(ctx):
    return syscall("io_destroy", ctypes.c_ulong(ctx))


# membarrier / rseq ---------------------------------------------------------------------------
MEMBARRIER_CMDS = {
    "QUERY": 0, "GLOBAL": 1 << 0, "GLOBAL_EXPEDITED": 1 << 1,
    "REGISTER_GLOBAL_EXPEDITED": 1 << 2, "PRIVATE_EXPEDITED": 1 << 3,
    "REGISTER_PRIVATE_EXPEDITED": 1 << 4, "PRIVATE_EXPEDITED_SYNC_CORE": 1 << 5,
    "REGISTER_PRIVATE_EXPEDITED_SYNC_CORE": 1 << 6, "PRIVATE_EXPEDITED_RSEQ": 1 << 7,
    "REGISTER_PRIVATE_EXPEDITED_RSEQ": 1 << 8, "GET_REGISTRATIONS": 1 << 9,
}


def membarrier(cmd, flags=0, cpu_id=0):
    return syscall("membarrier", cmd, flags, cpu_id)


def rseq(addr, length, flags, sig):
    return syscall("rseq", addr, length, flags, sig)
