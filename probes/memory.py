"""Memory and introspection: pagemap, PAGEMAP_SCAN, PROCMAP_QUERY, userfaultfd, memfd, vDSO.

Every probe works on mappings it creates itself and unmaps again; what
would change the prober for good (clear_refs, mseal, a write-protected
range that must not be touched) runs in a child.
"""

import contextlib
import ctypes
import errno
import os
import stat

from kernel import memory as mm

from . import sandbox
from .common import closing_fds
from .registry import (Call, absent, attempt, by_errno, errname, never_merged, present, probe,
                       undecided)

EINVAL, ENOSYS, EPERM, ENOENT = errno.EINVAL, errno.ENOSYS, errno.EPERM, errno.ENOENT
ENOTTY, EFAULT, EACCES, EAGAIN = errno.ENOTTY, errno.EFAULT, errno.EACCES, errno.EAGAIN

P = mm.PAGE_SIZE
CAT = mm.PAGE_CATEGORIES
UFFD = mm.UFFD_FEATURES



@contextlib.contextmanager
def mapping(pages, prot=mm.PROT_READ | mm.PROT_WRITE,
            flags=mm.MAP_PRIVATE | mm.MAP_ANONYMOUS):
    """An anonymous mapping of ``pages`` pages, unmapped on the way out."""
    addr = mm.mmap(pages * P, prot, flags)
    try:
        yield addr
    finally:
        mm.munmap(addr, pages * P)


def _open_self(name, flags=os.O_RDONLY):
    return os.open(f"/proc/self/{name}", flags | os.O_CLOEXEC)


# --- /proc/pid/maps, map_files ----------------------------------------------------------------
def _judge_procmap_query(seen):
    if seen["errno"] == ENOTTY:
        return absent("PROCMAP_QUERY on /proc/self/maps -> ENOTTY")
    if seen["errno"]:
        return undecided(f"PROCMAP_QUERY -> {errname(seen['errno'])}")
    want = [P, 2 * P, mm.PROCMAP_QUERY_VMA_READABLE | mm.PROCMAP_QUERY_VMA_WRITABLE]
    got = [seen["start"], seen["end"], seen["flags"]]
    if got == want and seen["unmapped"] == ENOENT:
        return present("PROCMAP_QUERY found our rw- VMA with its exact bounds; an unmapped "
                       "address -> ENOENT")
    return undecided(f"PROCMAP_QUERY answered start/end/flags {got} (want {want}), "
                     f"unmapped address -> {errname(seen['unmapped'])}")


@probe("procmap_query", "memory", since="6.11", judge=_judge_procmap_query,
       examples=[({"errno": 0, "start": P, "end": 2 * P, "flags": 3, "unmapped": ENOENT}, True),
                 ({"errno": 0, "start": 0, "end": 3 * P, "flags": 3, "unmapped": ENOENT}, None),
                 ({"errno": ENOTTY}, False), ({"errno": EINVAL}, None)])
def procmap_query():
    """PROCMAP_QUERY ioctl on /proc/pid/maps: look up the VMA of an address, binary answer."""
    with closing_fds() as fds, mapping(3, prot=mm.PROT_NONE) as addr:
        # a rw- page between two PROT_NONE pages is a VMA of its own
        mm.mprotect(addr + P, P, mm.PROT_READ | mm.PROT_WRITE)
        fds.append(_open_self("maps"))
        call = attempt(mm.procmap_query, fds[0], addr + P + 123)
        if not call.ok:
            return {"errno": call.errno}
        query, _ = call.value
        unmapped = attempt(mm.procmap_query, fds[0], 0).errno
        return {"errno": 0, "start": query.vma_start - addr, "end": query.vma_end - addr,
                "flags": query.vma_flags, "unmapped": unmapped}


def _judge_map_files(seen):
    if seen["access"] == 0:
        link = seen["readlink"]
        tail = (f"; our shared mapping links to {link}" if isinstance(link, str)
                else f"; readlink of our entry -> {errname(link)}")
        return present("/proc/self/map_files is readable" + tail)
    if seen["access"] == ENOENT:
        return absent("no /proc/self/map_files")
    return undecided(f"access(/proc/self/map_files, R_OK) -> {errname(seen['access'])}")


@probe("map_files", "memory", since="3.3", judge=_judge_map_files,
       examples=[({"access": 0, "readlink": "/dev/zero (deleted)"}, True),
                 ({"access": 0, "readlink": EPERM}, True),
                 ({"access": ENOENT, "readlink": None}, False),
                 ({"access": EACCES, "readlink": None}, None)])
def map_files():
    """/proc/pid/map_files: one link per file mapping (CRIU's required check: readable)."""
    seen = {"access": 0, "readlink": None}
    if not os.access("/proc/self/map_files", os.R_OK):
        seen["access"] = ENOENT if not os.path.exists("/proc/self/map_files") else EACCES
        return seen
    with mapping(1, flags=mm.MAP_SHARED | mm.MAP_ANONYMOUS) as addr:
        try:
            seen["readlink"] = os.readlink(f"/proc/self/map_files/{addr:x}-{addr + P:x}")
        except OSError as e:
            seen["readlink"] = e.errno
    return seen


# --- PAGEMAP_SCAN -----------------------------------------------------------------------------
# CRIU's scan (kerndat check_pagemap, pagemap-cache): present or swapped pages that are
# neither the zero page nor file-backed; soft-dirty asked for too.
CRIU_SCAN = dict(category_inverted=CAT["PFNZERO"] | CAT["FILE"],
                 category_mask=CAT["PFNZERO"] | CAT["FILE"],
                 category_anyof_mask=CAT["PRESENT"] | CAT["SWAPPED"],
                 return_mask=CAT["PRESENT"] | CAT["SWAPPED"] | CAT["SOFT_DIRTY"])


def _relative(regions, base):
    return [[start - base, end - base, cats] for start, end, cats in regions]


def _judge_pagemap_scan(seen):
    code = seen["criu"]
    if code in (EINVAL, ENOTTY):
        return absent(f"PAGEMAP_SCAN with CRIU's masks -> {errname(code)}")
    if code:
        return undecided(f"PAGEMAP_SCAN -> {errname(code)}")
    want = [[0, P, CAT["PRESENT"]], [2 * P, 3 * P, CAT["PRESENT"]]]
    # a kernel with soft-dirty tracking (CONFIG_MEM_SOFT_DIRTY) marks fresh writes soft-dirty
    # too, which CRIU's return mask asks for
    regions = [[a, b, c & ~CAT["SOFT_DIRTY"]] for a, b, c in seen["regions"]]
    soft = all(c & CAT["SOFT_DIRTY"] for _, _, c in seen["regions"])
    if regions == want:
        return present("PAGEMAP_SCAN with CRIU's masks -> 0; a scan of 4 fresh pages, 2 of "
                       "them written, returned exactly those 2 as PRESENT"
                       + (" (and SOFT_DIRTY)" if soft else ""))
    return undecided(f"PAGEMAP_SCAN returned {seen['regions']} for pages 0 and 2 written")


@probe("pagemap_scan", "memory", since="6.7", criu_name="pagemap_scan",
       judge=_judge_pagemap_scan,
       examples=[({"criu": 0, "regions": [[0, P, 8], [2 * P, 3 * P, 8]]}, True),
                 ({"criu": 0, "regions": [[0, P, 136], [2 * P, 3 * P, 136]]}, True),
                 ({"criu": 0, "regions": [[0, 4 * P, 8]]}, None),
                 ({"criu": EINVAL, "regions": None}, False),
                 ({"criu": ENOTTY, "regions": None}, False),
                 ({"criu": EPERM, "regions": None}, None)])
def pagemap_scan():
    """PAGEMAP_SCAN ioctl on /proc/pid/pagemap (CRIU's check: its scan masks accepted,
    which needs PAGE_IS_SOFT_DIRTY, i.e. 6.8 or a 6.7 stable with it)."""
    seen = {"criu": None, "regions": None}
    with closing_fds() as fds, mapping(4) as addr:
        fds.append(_open_self("pagemap"))
        seen["criu"] = attempt(mm.pagemap_scan, fds[0], 0, 0, vec_len=0, **CRIU_SCAN).errno
        if seen["criu"]:
            return seen
        mm.poke(addr, b"x")
        mm.poke(addr + 2 * P, b"x")
        regions, _ = mm.pagemap_scan(fds[0], addr, addr + 4 * P, **CRIU_SCAN)
        seen["regions"] = _relative(regions, addr)
    return seen


def _judge_categories(seen):
    if seen["accepted"] is None:
        return absent(f"PAGEMAP_SCAN -> {errname(seen['errno'])}") if seen["errno"] in (
            ENOTTY, EINVAL) else undecided(f"PAGEMAP_SCAN -> {errname(seen['errno'])}")
    if seen["unknown_bit"] != EINVAL:
        return undecided(f"an unknown category bit -> {errname(seen['unknown_bit'])}, not EINVAL")
    rejected = [c for c in CAT if c not in seen["accepted"]]
    return present(f"accepted: {' '.join(seen['accepted'])}"
                   + (f"; rejected: {' '.join(rejected)}" if rejected else "")
                   + "; unknown bit -> EINVAL", accepted=seen["accepted"])


@probe("pagemap_scan_categories", "memory", since="6.7", judge=_judge_categories,
       examples=[({"errno": 0, "accepted": list(CAT), "unknown_bit": EINVAL}, True),
                 ({"errno": 0, "accepted": ["WPALLOWED", "WRITTEN"], "unknown_bit": EINVAL},
                  True),
                 ({"errno": 0, "accepted": list(CAT), "unknown_bit": 0}, None),
                 ({"errno": ENOTTY, "accepted": None, "unknown_bit": None}, False),
                 ({"errno": EPERM, "accepted": None, "unknown_bit": None}, None)])
def pagemap_scan_categories():
    """Which PAGEMAP_SCAN page categories this kernel knows (WPALLOWED .. GUARD)."""
    with closing_fds() as fds, mapping(1) as addr:
        fds.append(_open_self("pagemap"))
        plain = attempt(mm.pagemap_scan, fds[0], addr, addr + P)
        if not plain.ok:
            return {"errno": plain.errno, "accepted": None, "unknown_bit": None}
        accepted = [name for name, bit in CAT.items() if attempt(
            mm.pagemap_scan, fds[0], addr, addr + P, category_mask=bit, return_mask=bit).ok]
        unknown = attempt(mm.pagemap_scan, fds[0], addr, addr + P,
                          category_mask=1 << 40, return_mask=1 << 40).errno
        return {"errno": 0, "accepted": accepted, "unknown_bit": unknown}


def _judge_guard_pages(seen):
    if seen["criu"]:
        return absent(f"PAGEMAP_SCAN itself -> {errname(seen['criu'])}") if seen["criu"] in (
            EINVAL, ENOTTY) else undecided(f"PAGEMAP_SCAN -> {errname(seen['criu'])}")
    if seen["criu_guard"] == EINVAL:
        return absent("PAGEMAP_SCAN with PAGE_IS_GUARD in the return mask -> EINVAL")
    if seen["criu_guard"]:
        return undecided(f"PAGEMAP_SCAN with PAGE_IS_GUARD -> {errname(seen['criu_guard'])}")
    if seen["madvise"]:
        return present("PAGEMAP_SCAN accepts PAGE_IS_GUARD (MADV_GUARD_INSTALL -> "
                       f"{errname(seen['madvise'])}, so no guard page to find)")
    if seen["regions"] == [[P, 2 * P, CAT["GUARD"]]]:
        return present("PAGEMAP_SCAN accepts PAGE_IS_GUARD and reports our "
                       "MADV_GUARD_INSTALL page")
    return undecided(f"guard page installed at +{P:#x} but the scan returned {seen['regions']}")


@probe("pagemap_scan_guard_pages", "memory", since="6.16",
       criu_name="pagemap_scan_guard_pages", judge=_judge_guard_pages,
       examples=[({"criu": 0, "criu_guard": 0, "madvise": 0,
                   "regions": [[P, 2 * P, CAT["GUARD"]]]}, True),
                 ({"criu": 0, "criu_guard": 0, "madvise": EINVAL, "regions": None}, True),
                 ({"criu": 0, "criu_guard": 0, "madvise": 0, "regions": []}, None),
                 ({"criu": 0, "criu_guard": EINVAL, "madvise": None, "regions": None}, False),
                 ({"criu": ENOTTY, "criu_guard": None, "madvise": None, "regions": None},
                  False),
                 ({"criu": 0, "criu_guard": EPERM, "madvise": None, "regions": None}, None)])
def pagemap_scan_guard_pages():
    """PAGEMAP_SCAN reports PAGE_IS_GUARD (pages guarded by MADV_GUARD_INSTALL)."""
    seen = {"criu": None, "criu_guard": None, "madvise": None, "regions": None}
    with closing_fds() as fds, mapping(3) as addr:
        fds.append(_open_self("pagemap"))
        seen["criu"] = attempt(mm.pagemap_scan, fds[0], 0, 0, vec_len=0, **CRIU_SCAN).errno
        if seen["criu"]:
            return seen
        with_guard = dict(CRIU_SCAN, return_mask=CRIU_SCAN["return_mask"] | CAT["GUARD"])
        seen["criu_guard"] = attempt(mm.pagemap_scan, fds[0], 0, 0, vec_len=0,
                                     **with_guard).errno
        if seen["criu_guard"]:
            return seen
        seen["madvise"] = attempt(mm.madvise, addr + P, P, mm.MADV_GUARD_INSTALL).errno
        if not seen["madvise"]:
            regions, _ = mm.pagemap_scan(fds[0], addr, addr + 3 * P,
                                         category_mask=CAT["GUARD"], return_mask=CAT["GUARD"])
            seen["regions"] = _relative(regions, addr)
    return seen


def _soft_dirty_in_child():
    with mapping(1) as addr:
        opened = attempt(_open_self, "clear_refs", os.O_WRONLY)
        if not opened.ok:
            return {"clear_refs": opened.errno, "soft_dirty": None}
        try:
            clear = attempt(os.write, opened.value, b"4").errno
        finally:
            os.close(opened.value)
        mm.poke(addr, b"d")
        fd = _open_self("pagemap")
        try:
            entry = mm.pagemap_entry(fd, addr)
        finally:
            os.close(fd)
    return {"clear_refs": clear, "soft_dirty": bool(entry & mm.PM_SOFT_DIRTY)}


def _judge_soft_dirty(seen):
    if seen["clear_refs"] in (EINVAL, EACCES):
        return absent(f"writing 4 to /proc/self/clear_refs -> {errname(seen['clear_refs'])} "
                      "(CRIU: no dirty tracking)")
    if seen["clear_refs"]:
        return undecided(f"writing 4 to clear_refs -> {errname(seen['clear_refs'])}")
    if seen["soft_dirty"]:
        return present("clear_refs 4, then a write: pagemap bit 55 (soft-dirty) is set")
    return absent("clear_refs 4 accepted but a written page has no soft-dirty bit "
                  "(CONFIG_MEM_SOFT_DIRTY off)")


@probe("soft_dirty", "memory", since="3.11", criu_name="mem_dirty_track",
       judge=_judge_soft_dirty,
       examples=[({"clear_refs": 0, "soft_dirty": True}, True),
                 ({"clear_refs": 0, "soft_dirty": False}, False),
                 ({"clear_refs": EINVAL, "soft_dirty": False}, False),
                 ({"clear_refs": EACCES, "soft_dirty": None}, False),
                 ({"clear_refs": errno.EIO, "soft_dirty": None}, None)])
def soft_dirty():
    """Soft-dirty page tracking (incremental dumps): clear_refs 4, write, pagemap bit 55.

    Done in a child: clearing soft-dirty bits write-protects every page of the process.
    """
    return sandbox.in_child(_soft_dirty_in_child)


# --- userfaultfd ------------------------------------------------------------------------------
def _open_uffd():
    return mm.userfaultfd(os.O_CLOEXEC | os.O_NONBLOCK)


def _uffd_api(features):
    """A new userfaultfd with the UFFDIO_API handshake done; closed on errors."""
    fd = _open_uffd()
    try:
        return fd, mm.uffdio_api(fd, features)
    except OSError:
        os.close(fd)
        raise


def _features(mask):
    return [name for name, bit in UFFD.items() if mask & bit]


def _judge_uffd(seen):
    if seen["open"] == ENOSYS:
        return absent("userfaultfd -> ENOSYS")
    if seen["open"] == EPERM:
        return absent("userfaultfd -> EPERM (CRIU: lazy pages not permitted)")
    if seen["open"] or seen["api"]:
        return undecided(f"userfaultfd -> {errname(seen['open'])}, UFFDIO_API -> "
                         f"{errname(seen['api'])}")
    detail = f"userfaultfd + UFFDIO_API -> features {seen['features']:#x}"
    if seen["register"] == 0:
        detail += "; a range registered for missing faults"
    return present(detail, features=_features(seen["features"]))


@probe("userfaultfd", "memory", since="4.3", criu_name="uffd", needs="CAP_SYS_PTRACE",
       judge=_judge_uffd,
       examples=[({"open": 0, "api": 0, "features": 0x1FFFF, "register": 0}, True),
                 ({"open": ENOSYS, "api": None, "features": None, "register": None}, False),
                 ({"open": EPERM, "api": None, "features": None, "register": None}, False),
                 ({"open": 0, "api": EINVAL, "features": None, "register": None}, None),
                 ({"open": errno.EMFILE, "api": None, "features": None, "register": None},
                  None)])
def userfaultfd():
    """userfaultfd(2) (CRIU's uffd: the fd opens and UFFDIO_API answers); lazy restore."""
    seen = {"open": None, "api": None, "features": None, "register": None}
    call = attempt(_open_uffd)
    seen["open"] = call.errno
    if not call.ok:
        return seen
    with closing_fds(call.value), mapping(1) as addr:
        api = attempt(mm.uffdio_api, call.value, 0)
        seen["api"] = api.errno
        if api.ok:
            seen["features"] = api.value.features
            seen["register"] = attempt(mm.uffdio_register, call.value, addr, P,
                                       mm.UFFDIO_REGISTER_MODE_MISSING).errno
    return seen


NONCOOP = UFFD["EVENT_FORK"] | UFFD["EVENT_REMAP"] | UFFD["EVENT_UNMAP"] | UFFD["EVENT_REMOVE"]


def _judge_noncoop(seen):
    if seen["open"] or seen["api"]:
        return absent(f"no userfaultfd (open -> {errname(seen['open'])}, UFFDIO_API -> "
                      f"{errname(seen['api'])})") if seen["open"] in (ENOSYS, EPERM) else \
            undecided(f"userfaultfd -> {errname(seen['open'])}, UFFDIO_API -> "
                      f"{errname(seen['api'])}")
    missing = [n for n in _features(NONCOOP & ~seen["features"])]
    if missing:
        return absent(f"UFFDIO_API lacks {' '.join(missing)}")
    return present("UFFDIO_API offers EVENT_FORK, EVENT_REMAP, EVENT_UNMAP, EVENT_REMOVE; "
                   f"enabling them -> {errname(seen['enable'])}")


@probe("uffd_noncoop", "memory", since="4.11", criu_name="uffd-noncoop",
       needs="CAP_SYS_PTRACE", judge=_judge_noncoop,
       examples=[({"open": 0, "api": 0, "features": 0x1FFFF, "enable": 0}, True),
                 ({"open": 0, "api": 0, "features": 0x1, "enable": EINVAL}, False),
                 ({"open": ENOSYS, "api": None, "features": None, "enable": None}, False),
                 ({"open": errno.EMFILE, "api": None, "features": None, "enable": None},
                  None)])
def uffd_noncoop():
    """Non-cooperative userfaultfd events (fork, mremap, munmap, madvise) that lazy
    restore of a running tree needs (CRIU: all four in the UFFDIO_API features)."""
    seen = {"open": None, "api": None, "features": None, "enable": None}
    call = attempt(_open_uffd)
    seen["open"] = call.errno
    if not call.ok:
        return seen
    with closing_fds() as fds:
        fds.append(call.value)
        api = attempt(mm.uffdio_api, call.value, 0)
        seen["api"] = api.errno
        if not api.ok:
            return seen
        seen["features"] = api.value.features
        enable = attempt(_uffd_api, NONCOOP)
        seen["enable"] = enable.errno
        if enable.ok:
            fds.append(enable.value[0])
    return seen


def _judge_uffd_wp(seen):
    if seen["open"] in (ENOSYS, EPERM):
        return absent(f"userfaultfd -> {errname(seen['open'])}")
    if seen["api"] == EINVAL:
        return absent("UFFDIO_API(PAGEFAULT_FLAG_WP) -> EINVAL")
    steps = ("open", "api", "register", "protect", "unprotect")
    failed = [s for s in steps if seen[s]]
    if failed:
        return undecided(", ".join(f"{s} -> {errname(seen[s])}" for s in failed))
    if seen["bit_protected"] and not seen["bit_unprotected"]:
        return present("a page registered in WP mode and write-protected shows pagemap bit 57 "
                       "(uffd-wp); cleared again on unprotect")
    if not seen["bit_protected"] and not seen["bit_unprotected"]:
        # registering, protecting and unprotecting all worked: the mode is there; only
        # the pagemap does not show it (its uffd-wp bit came in a later kernel)
        return present("WP mode registered, protect and unprotect accepted; the pagemap has "
                       "no uffd-wp bit to show it")
    return undecided(f"pagemap uffd-wp bit protected={seen['bit_protected']} "
                     f"unprotected={seen['bit_unprotected']}")


@probe("uffd_wp", "memory", since="5.7", needs="CAP_SYS_PTRACE", judge=_judge_uffd_wp,
       examples=[({"open": 0, "api": 0, "register": 0, "protect": 0, "unprotect": 0,
                   "bit_protected": True, "bit_unprotected": False}, True),
                 ({"open": 0, "api": 0, "register": 0, "protect": 0, "unprotect": 0,
                   "bit_protected": False, "bit_unprotected": False}, True),
                 ({"open": 0, "api": 0, "register": 0, "protect": 0, "unprotect": 0,
                   "bit_protected": True, "bit_unprotected": True}, None),
                 ({"open": 0, "api": EINVAL, "register": None, "protect": None,
                   "unprotect": None, "bit_protected": None, "bit_unprotected": None}, False),
                 ({"open": ENOSYS, "api": None, "register": None, "protect": None,
                   "unprotect": None, "bit_protected": None, "bit_unprotected": None}, False),
                 ({"open": 0, "api": 0, "register": EINVAL, "protect": None,
                   "unprotect": None, "bit_protected": None, "bit_unprotected": None}, None)])
def uffd_wp():
    """userfaultfd write-protect mode (UFFD_FEATURE_PAGEFAULT_FLAG_WP): protect and
    unprotect a populated page, seen through the pagemap uffd-wp bit. Nothing touches
    the page while it is protected, so nothing can block."""
    seen = dict.fromkeys(("open", "api", "register", "protect", "unprotect",
                          "bit_protected", "bit_unprotected"))
    call = attempt(_open_uffd)
    seen["open"] = call.errno
    if not call.ok:
        return seen
    with closing_fds(call.value) as fds, mapping(1) as addr:
        uffd = call.value
        mm.poke(addr, b"p")
        seen["api"] = attempt(mm.uffdio_api, uffd, UFFD["PAGEFAULT_FLAG_WP"]).errno
        if seen["api"]:
            return seen
        seen["register"] = attempt(mm.uffdio_register, uffd, addr, P,
                                   mm.UFFDIO_REGISTER_MODE_WP).errno
        if seen["register"]:
            return seen
        fds.append(_open_self("pagemap"))
        seen["protect"] = attempt(mm.uffdio_writeprotect, uffd, addr, P,
                                  mm.UFFDIO_WRITEPROTECT_MODE_WP).errno
        seen["bit_protected"] = bool(mm.pagemap_entry(fds[1], addr) & mm.PM_UFFD_WP)
        seen["unprotect"] = attempt(mm.uffdio_writeprotect, uffd, addr, P, 0).errno
        seen["bit_unprotected"] = bool(mm.pagemap_entry(fds[1], addr) & mm.PM_UFFD_WP)
    return seen


def _wp_async_test():
    seen = {"api": None, "regions": None}
    api = attempt(_uffd_api, UFFD["WP_ASYNC"] | UFFD["WP_UNPOPULATED"])
    seen["api"] = api.errno
    if not api.ok:
        return seen
    uffd = api.value[0]
    with closing_fds(uffd) as fds, mapping(4) as addr:
        mm.uffdio_register(uffd, addr, 4 * P, mm.UFFDIO_REGISTER_MODE_WP)
        mm.uffdio_writeprotect(uffd, addr, 4 * P, mm.UFFDIO_WRITEPROTECT_MODE_WP)
        mm.poke(addr + P, b"w")   # async: resolved by the kernel, no message, no block
        fds.append(_open_self("pagemap"))
        regions, _ = mm.pagemap_scan(fds[1], addr, addr + 4 * P,
                                     category_mask=CAT["WRITTEN"],
                                     return_mask=CAT["WRITTEN"] | CAT["WPALLOWED"])
        seen["regions"] = _relative(regions, addr)
    return seen


def _judge_wp_async(seen):
    if seen["api"] in (EINVAL, ENOSYS, EPERM):
        return absent(f"UFFDIO_API(WP_ASYNC) -> {errname(seen['api'])}")
    if seen["api"]:
        return undecided(f"UFFDIO_API(WP_ASYNC) -> {errname(seen['api'])}")
    want = [[P, 2 * P, CAT["WRITTEN"] | CAT["WPALLOWED"]]]
    if seen["regions"] == want:
        return present("4 pages write-protected in async mode, one written: PAGEMAP_SCAN "
                       "reports exactly that page as WRITTEN (soft-dirty replacement)")
    return undecided(f"PAGEMAP_SCAN WRITTEN returned {seen['regions']}, wanted {want}")


@probe("uffd_wp_async", "memory", since="6.7", needs="CAP_SYS_PTRACE", judge=_judge_wp_async,
       examples=[({"api": 0, "regions": [[P, 2 * P, 3]]}, True),
                 ({"api": 0, "regions": [[0, 4 * P, 3]]}, None),
                 ({"api": EINVAL, "regions": None}, False),
                 ({"api": errno.EMFILE, "regions": None}, None)])
def uffd_wp_async():
    """UFFD_FEATURE_WP_ASYNC: write-protect tracking without a handler, read back with
    PAGEMAP_SCAN (how incremental dumps work without soft-dirty). The write to a
    protected page is only made once the kernel accepted WP_ASYNC, so it cannot block."""
    return _wp_async_test()


def _judge_dev_uffd(seen):
    if seen["open"] == ENOENT:
        return absent(f"no {mm.DEV_USERFAULTFD}")
    if seen["open"] in (EACCES, EPERM) and seen["chardev"]:
        return present(f"{mm.DEV_USERFAULTFD} exists (misc char device {seen['chardev']}); "
                       f"opening it -> {errname(seen['open'])} for us")
    if seen["open"] or seen["new"]:
        return undecided(f"open -> {errname(seen['open'])}, USERFAULTFD_IOC_NEW -> "
                         f"{errname(seen['new'])}")
    return present(f"USERFAULTFD_IOC_NEW on {mm.DEV_USERFAULTFD} -> userfaultfd, UFFDIO_API "
                   f"-> {errname(seen['api'])}")


@probe("dev_userfaultfd", "memory", since="6.1", judge=_judge_dev_uffd,
       examples=[({"open": 0, "chardev": "10:257", "new": 0, "api": 0}, True),
                 ({"open": EACCES, "chardev": "10:257", "new": None, "api": None}, True),
                 ({"open": ENOENT, "chardev": None, "new": None, "api": None}, False),
                 ({"open": EACCES, "chardev": None, "new": None, "api": None}, None),
                 ({"open": 0, "chardev": "10:257", "new": ENOTTY, "api": None}, None)])
def dev_userfaultfd():
    """/dev/userfaultfd: userfaultfds gated by file permissions instead of capabilities
    (without permission to open it, the kernel-made device node is the evidence)."""
    seen = {"open": None, "chardev": None, "new": None, "api": None}
    try:
        st = os.stat(mm.DEV_USERFAULTFD)
        if stat.S_ISCHR(st.st_mode):
            seen["chardev"] = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    except OSError:
        pass
    call = attempt(os.open, mm.DEV_USERFAULTFD, os.O_RDWR | os.O_CLOEXEC)
    seen["open"] = call.errno
    if not call.ok:
        return seen
    with closing_fds() as fds:
        fds.append(call.value)
        new = attempt(mm.userfaultfd_from_dev, call.value, os.O_CLOEXEC | os.O_NONBLOCK)
        seen["new"] = new.errno
        if new.ok:
            fds.append(new.value)
            seen["api"] = attempt(mm.uffdio_api, new.value, 0).errno
    return seen


_UNPRIV_UFFD = "/proc/sys/vm/unprivileged_userfaultfd"


def _judge_unpriv_uffd(call):
    if call.ok:
        meaning = ("anyone may create userfaultfds" if call.value == 1 else
                   "only CAP_SYS_PTRACE, UFFD_USER_MODE_ONLY or /dev/userfaultfd")
        return present(f"vm.unprivileged_userfaultfd = {call.value} ({meaning})",
                       value=call.value)
    if call.errno == ENOENT:
        return absent("no vm.unprivileged_userfaultfd sysctl")
    return undecided(f"reading vm.unprivileged_userfaultfd -> {call.describe()}")


@probe("unprivileged_userfaultfd", "memory", since="5.2", judge=_judge_unpriv_uffd,
       examples=[(Call(0, 0), True), (Call(0, 1), True), (Call(ENOENT), False),
                 (Call(EACCES), None)])
def unprivileged_userfaultfd():
    """vm.unprivileged_userfaultfd: who may create userfaultfds (the value is the data)."""
    def read():
        with open(_UNPRIV_UFFD) as f:
            return int(f.read())
    return attempt(read)


# --- memfd ------------------------------------------------------------------------------------
def _judge_memfd_secret(seen):
    if seen["create"] == ENOSYS:
        return absent("memfd_secret -> ENOSYS (absent, or secretmem.enable=0)")
    failed = [k for k in ("create", "truncate", "map") if seen[k]]
    if failed:
        return undecided(", ".join(f"{k} -> {errname(seen[k])}" for k in failed))
    if seen["readback"]:
        return present("memfd_secret -> fd; sized, mapped, written and read back")
    return undecided("memfd_secret mapping did not read back what was written")


@probe("memfd_secret", "memory", since="5.14", judge=_judge_memfd_secret,
       examples=[({"create": 0, "truncate": 0, "map": 0, "readback": True}, True),
                 ({"create": ENOSYS, "truncate": None, "map": None, "readback": None}, False),
                 ({"create": 0, "truncate": 0, "map": EAGAIN, "readback": None}, None),
                 ({"create": 0, "truncate": 0, "map": 0, "readback": False}, None)])
def memfd_secret():
    """memfd_secret(2): memory removed from the kernel's direct map (cannot be dumped)."""
    seen = {"create": None, "truncate": None, "map": None, "readback": None}
    call = attempt(mm.memfd_secret, os.O_CLOEXEC)
    seen["create"] = call.errno
    if not call.ok:
        return seen
    with closing_fds() as fds:
        fds.append(call.value)
        seen["truncate"] = attempt(os.ftruncate, call.value, P).errno
        if seen["truncate"]:
            return seen
        mapped = attempt(mm.mmap, P, mm.PROT_READ | mm.PROT_WRITE, mm.MAP_SHARED, call.value)
        seen["map"] = mapped.errno
        if mapped.ok:
            try:
                mm.poke(mapped.value, b"secret")
                seen["readback"] = mm.peek(mapped.value, 6) == b"secret"
            finally:
                mm.munmap(mapped.value, P)
    return seen


def _memfd_hugetlb_call():
    with closing_fds() as fds:
        call = attempt(mm.memfd_create, "", mm.MFD_HUGETLB | mm.MFD_CLOEXEC)
        if call.ok:
            fds.append(call.value)
            return Call(0, "fd")
        return call


@probe("memfd_hugetlb", "memory", since="4.14", criu_name="memfd_hugetlb",
       judge=by_errno("memfd_create(\"\", MFD_HUGETLB)", present_on=(0,),
                      absent_on=("EINVAL", "ENOENT", "ENOSYS")),
       examples=[(Call(0, "fd"), True), (Call(EINVAL), False), (Call(ENOENT), False),
                 (Call(ENOSYS), False), (Call(errno.ENOMEM), None)])
def memfd_hugetlb():
    """memfd_create(MFD_HUGETLB): hugetlbfs-backed memfds (CRIU's check, same errnos)."""
    return _memfd_hugetlb_call()


SEALS = (("SEAL_WRITE", mm.F_SEAL_WRITE), ("SEAL_GROW", mm.F_SEAL_GROW),
         ("SEAL_SHRINK", mm.F_SEAL_SHRINK), ("SEAL_FUTURE_WRITE", mm.F_SEAL_FUTURE_WRITE),
         ("SEAL_EXEC", mm.F_SEAL_EXEC), ("SEAL_SEAL", mm.F_SEAL_SEAL))
BASIC_SEALS = ("SEAL_WRITE", "SEAL_GROW", "SEAL_SHRINK", "SEAL_SEAL")


def _memfd_seals():
    seen = {"create": 0, "seals": {}}
    with closing_fds() as held:
        made = attempt(os.memfd_create, "probe-seals", mm.MFD_CLOEXEC | mm.MFD_ALLOW_SEALING)
        seen["create"] = made.errno
        if not made.ok:
            return seen
        held.append(made.value)
        for name, bit in SEALS:  # SEAL_SEAL last: it forbids any further seal
            seen["seals"][name] = attempt(mm.add_seals, made.value, bit).errno
        seen["get_seals"] = mm.get_seals(made.value)
    return seen


def _judge_memfd_seals(seen):
    if seen["create"] in (ENOSYS, EINVAL):
        return absent(f"memfd_create(MFD_ALLOW_SEALING) -> {errname(seen['create'])}")
    if seen["create"]:
        return undecided(f"memfd_create -> {errname(seen['create'])}")
    seals = seen["seals"]
    broken = [n for n in BASIC_SEALS if seals.get(n) != 0]
    if broken:
        refused = ", ".join(f"{n} {errname(seals.get(n))}" for n in broken)
        return undecided(f"basic seals refused: {refused}")
    extra = [n for n in ("SEAL_FUTURE_WRITE", "SEAL_EXEC") if seals.get(n) == 0]
    accepted = [n for n, _ in SEALS if seals.get(n) == 0]
    return present(f"seals {', '.join(accepted)}; F_GET_SEALS {seen['get_seals']:#x}"
                   + ("" if extra else "; no FUTURE_WRITE/EXEC seals"), seals=accepted)


@probe("memfd_seals", "memory", since="3.17",
       judge=_judge_memfd_seals,
       examples=[({"create": 0, "seals": {n: 0 for n, _ in SEALS}, "get_seals": 0x3f}, True),
                 ({"create": 0, "seals": {"SEAL_WRITE": 0, "SEAL_GROW": 0, "SEAL_SHRINK": 0,
                                          "SEAL_FUTURE_WRITE": EINVAL,
                                          "SEAL_EXEC": EINVAL, "SEAL_SEAL": 0},
                   "get_seals": 15}, True),
                 ({"create": ENOSYS, "seals": {}}, False),
                 ({"create": EINVAL, "seals": {}}, False),
                 ({"create": 0, "seals": {"SEAL_WRITE": EPERM}, "get_seals": 0}, None)])
def memfd_seals():
    """memfd_create(MFD_ALLOW_SEALING) and each file seal, read back with F_GET_SEALS
    (a restorer must re-create memfds with their seals)."""
    return _memfd_seals()


def _judge_noexec(seen):
    if seen["create"] == EINVAL:
        return absent("memfd_create(MFD_NOEXEC_SEAL) -> EINVAL")
    if seen["create"]:
        return (absent if seen["create"] == ENOSYS else undecided)(
            f"memfd_create(MFD_NOEXEC_SEAL) -> {errname(seen['create'])}")
    if seen["seals"] & mm.F_SEAL_EXEC:
        return present(f"MFD_NOEXEC_SEAL -> seals {seen['seals']:#x} include F_SEAL_EXEC; "
                       f"vm.memfd_noexec = {seen['sysctl']}", memfd_noexec=seen["sysctl"])
    return undecided(f"MFD_NOEXEC_SEAL accepted but seals are {seen['seals']:#x}")


@probe("memfd_noexec_seal", "memory", since="6.3", judge=_judge_noexec,
       examples=[({"create": 0, "seals": 0x20, "sysctl": 0}, True),
                 ({"create": 0, "seals": 0, "sysctl": 0}, None),
                 ({"create": EINVAL, "seals": None, "sysctl": None}, False),
                 ({"create": ENOSYS, "seals": None, "sysctl": None}, False),
                 ({"create": errno.EMFILE, "seals": None, "sysctl": None}, None)])
def memfd_noexec_seal():
    """MFD_NOEXEC_SEAL / MFD_EXEC and F_SEAL_EXEC (vm.memfd_noexec as data)."""
    seen = {"create": None, "seals": None, "sysctl": None}
    call = attempt(mm.memfd_create, "probe", mm.MFD_CLOEXEC | mm.MFD_NOEXEC_SEAL)
    seen["create"] = call.errno
    if not call.ok:
        return seen
    with closing_fds() as fds:
        fds.append(call.value)
        seen["seals"] = mm.get_seals(call.value)
    try:
        with open("/proc/sys/vm/memfd_noexec") as f:
            seen["sysctl"] = int(f.read())
    except OSError:
        pass
    return seen


# --- process_vm_readv / writev ----------------------------------------------------------------
_PATTERN = b"process_vm probe"


def _vm_copy(write):
    source = ctypes.create_string_buffer(_PATTERN)
    target = ctypes.create_string_buffer(len(_PATTERN))
    fn = mm.process_vm_writev if write else mm.process_vm_readv
    # readv: local <- remote; writev: local -> remote (both in ourselves)
    local, remote = (source, target) if write else (target, source)
    call = attempt(fn, os.getpid(), ctypes.addressof(local), ctypes.addressof(remote),
                   len(_PATTERN))
    if not call.ok:
        return call
    return Call(0, f"{call.value} bytes, copied correctly" if target.raw == _PATTERN
                else f"{call.value} bytes, wrong contents")


def _judge_vm(what):
    inner = by_errno(what, present_on=(0,), absent_on=("ENOSYS",))

    def judge(call):
        if call.ok and "wrong" in str(call.value):
            return undecided(f"{what} -> {call.value}")
        return inner(call)
    return judge


_VM_EXAMPLES = [(Call(0, "16 bytes, copied correctly"), True),
                (Call(0, "16 bytes, wrong contents"), None), (Call(ENOSYS), False),
                (Call(EPERM), None)]


@probe("process_vm_readv", "memory", since="3.2",
       judge=_judge_vm("process_vm_readv(self)"), examples=_VM_EXAMPLES)
def process_vm_readv():
    """process_vm_readv(2): read another process's memory in one call."""
    return _vm_copy(write=False)


@probe("process_vm_writev", "memory", since="3.2",
       judge=_judge_vm("process_vm_writev(self)"), examples=_VM_EXAMPLES)
def process_vm_writev():
    """process_vm_writev(2): write another process's memory in one call."""
    return _vm_copy(write=True)


# --- AIO ring remap ---------------------------------------------------------------------------
def _aio_ring_len(ctx):
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split(None, 5)
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if start == ctx:
                name = fields[5].strip() if len(fields) > 5 else ""
                return end - start if name == "/[aio] (deleted)" else None
    return None


def _judge_aio(seen):
    if seen["setup"] == EAGAIN:
        return undecided("io_setup -> EAGAIN (fs.aio-max-nr reached)")
    if seen["setup"]:
        return absent(f"io_setup -> {errname(seen['setup'])} (no AIO)")
    if not seen["ring_len"]:
        return absent("no /[aio] ring mapped at the context address")
    if seen["mremap"]:
        return absent(f"mremap of the AIO ring -> {errname(seen['mremap'])}")
    if seen["getevents"]:
        return absent(f"io_getevents on the moved ring -> {errname(seen['getevents'])}")
    return present(f"AIO ring ({seen['ring_len']} bytes) moved with mremap; io_getevents on "
                   "the new address -> 0")


def _aio_remap_test():
    """io_setup, move the ring with mremap, io_getevents at the new address, io_destroy.

    io_destroy() waits for two RCU grace periods (30-50 ms here); a child would
    only move that wait to its exit, so this runs in-process and pays it.
    """
    seen = {"setup": None, "ring_len": None, "mremap": None, "getevents": None}
    call = attempt(mm.io_setup, 16)
    seen["setup"] = call.errno
    if not call.ok:
        return seen
    ctx = call.value
    try:
        seen["ring_len"] = length = _aio_ring_len(ctx)
        if not length:
            return seen
        target = mm.mmap(length)
        moved = attempt(mm.mremap, ctx, length, length, mm.MREMAP_FIXED | mm.MREMAP_MAYMOVE,
                        target)
        seen["mremap"] = moved.errno
        if not moved.ok:
            mm.munmap(target, length)
            return seen
        ctx = moved.value
        seen["getevents"] = attempt(mm.io_getevents, ctx, 0, 1).errno
    finally:
        mm.io_destroy(ctx)   # unmaps the ring wherever it is now
    return seen


@probe("aio_remap", "memory", since="3.19", criu_name="aio_remap", judge=_judge_aio,
       examples=[({"setup": 0, "ring_len": P, "mremap": 0, "getevents": 0}, True),
                 ({"setup": 0, "ring_len": P, "mremap": 0, "getevents": EINVAL}, False),
                 ({"setup": 0, "ring_len": P, "mremap": EINVAL, "getevents": None}, False),
                 ({"setup": 0, "ring_len": None, "mremap": None, "getevents": None}, False),
                 ({"setup": ENOSYS, "ring_len": None, "mremap": None, "getevents": None},
                  False),
                 ({"setup": EAGAIN, "ring_len": None, "mremap": None, "getevents": None},
                  None)])
def aio_remap():
    """mremap of an AIO ring keeps the context working at the new address (CRIU's check)."""
    return _aio_remap_test()


# --- task_diag (never merged) -----------------------------------------------------------------
TASK_DIAG_SERIES = ("Andrey Vagin, \"kernel: add a netlink interface to get information about "
                    "processes\" (task_diag), RFC 2015-02-17 (netlink), later versions as the "
                    "transactional file /proc/task-diag (2016)")


def _judge_task_diag(exists):
    if exists:
        return present("/proc/task-diag exists (a kernel carrying the task_diag patches)")
    return absent("no /proc/task-diag (netlink family not queried: it could load modules)")


never_merged("task_diag", "memory", proposed=TASK_DIAG_SERIES,
             why_absent="task_diag, a binary netlink-style interface to process information, "
                        "was never merged.",
             exercise=lambda: os.path.exists("/proc/task-diag"), judge=_judge_task_diag,
             examples=[(True, True), (False, False)])


# --- membarrier, rseq -------------------------------------------------------------------------
def _judge_membarrier(seen):
    call = Call(*seen["query"])
    if call.ok:
        commands = [n for n, bit in mm.MEMBARRIER_CMDS.items() if bit and call.value & bit]
        regs = Call(*seen["registrations"])
        tail = (f"; GET_REGISTRATIONS -> {regs.value:#x}" if regs.ok
                else f"; GET_REGISTRATIONS -> {regs.describe()}")
        return present(f"MEMBARRIER_CMD_QUERY -> {call.value:#x}{tail}", commands=commands)
    if call.errno == ENOSYS:
        return absent("membarrier -> ENOSYS")
    return undecided(f"MEMBARRIER_CMD_QUERY -> {call.describe()}")


@probe("membarrier", "memory", since="4.3", judge=_judge_membarrier,
       examples=[({"query": [0, 0x3FF], "registrations": [0, 0]}, True),
                 ({"query": [0, 0x1F], "registrations": [EINVAL, None]}, True),
                 ({"query": [ENOSYS, None], "registrations": [ENOSYS, None]}, False),
                 ({"query": [EPERM, None], "registrations": [EPERM, None]}, None)])
def membarrier():
    """membarrier(2) (its registrations are per-mm state a restore must redo)."""
    return {"query": list(attempt(mm.membarrier, mm.MEMBARRIER_CMDS["QUERY"])),
            "registrations": list(attempt(mm.membarrier,
                                          mm.MEMBARRIER_CMDS["GET_REGISTRATIONS"]))}


@probe("rseq", "memory", since="4.18",
       judge=by_errno("rseq(NULL, 0, 0, 0)", present_on=("EINVAL",), absent_on=("ENOSYS",)),
       examples=[(Call(EINVAL), True), (Call(ENOSYS), False), (Call(EPERM), None)])
def rseq():
    """rseq(2): restartable sequences (glibc registers one per thread since 2.35)."""
    return attempt(mm.rseq, None, 0, 0, 0)


# --- mseal, guard pages, vDSO -----------------------------------------------------------------
def _mseal_in_child():
    addr = mm.mmap(P)
    mm.mseal(addr, P, 0)
    return [attempt(mm.munmap, addr, P).errno, attempt(mm.mprotect, addr, P, 0).errno]


def _judge_mseal(call):
    if call.ok:
        if call.value == [EPERM, EPERM]:
            return present("mseal(page) -> 0; munmap and mprotect of it -> EPERM (in a child)")
        return undecided(f"sealed page: munmap/mprotect -> {call.value}")
    if call.errno == ENOSYS:
        return absent("mseal -> ENOSYS")
    return undecided(f"mseal -> {call.describe()}")


@probe("mseal", "memory", since="6.10", judge=_judge_mseal,
       examples=[(Call(0, [EPERM, EPERM]), True), (Call(0, [0, 0]), None),
                 (Call(ENOSYS), False), (Call(EINVAL), None)])
def mseal():
    """mseal(2): mappings that can no longer be unmapped or changed (a restore must
    recreate them, then seal)."""
    return attempt(sandbox.in_child, _mseal_in_child)


def _judge_madv_guard(seen):
    if seen["install"] == EINVAL:
        return absent("madvise(MADV_GUARD_INSTALL) -> EINVAL")
    if seen["install"]:
        return undecided(f"madvise(MADV_GUARD_INSTALL) -> {errname(seen['install'])}")
    if seen["read_guarded"] == EFAULT and seen["remove"] == 0 and seen["read_after"] == 0:
        return present("MADV_GUARD_INSTALL -> 0; reading the page -> EFAULT; "
                       "MADV_GUARD_REMOVE -> 0; readable again")
    return undecided(f"read guarded -> {errname(seen['read_guarded'])}, remove -> "
                     f"{errname(seen['remove'])}, read after -> {errname(seen['read_after'])}")


@probe("madv_guard", "memory", since="6.13", judge=_judge_madv_guard,
       examples=[({"install": 0, "read_guarded": EFAULT, "remove": 0, "read_after": 0}, True),
                 ({"install": 0, "read_guarded": 0, "remove": 0, "read_after": 0}, None),
                 ({"install": EINVAL, "read_guarded": None, "remove": None,
                   "read_after": None}, False),
                 ({"install": EPERM, "read_guarded": None, "remove": None,
                   "read_after": None}, None)])
def madv_guard():
    """MADV_GUARD_INSTALL/REMOVE: guard pages without a VMA of their own (a dump must
    find them: see pagemap_scan_guard_pages)."""
    seen = {"install": None, "read_guarded": None, "remove": None, "read_after": None}
    buf = ctypes.create_string_buffer(16)
    with mapping(2) as addr:
        mm.poke(addr + P, b"g")
        seen["install"] = attempt(mm.madvise, addr + P, P, mm.MADV_GUARD_INSTALL).errno
        if seen["install"]:
            return seen
        read = (mm.process_vm_readv, os.getpid(), ctypes.addressof(buf), addr + P, 16)
        seen["read_guarded"] = attempt(*read).errno
        seen["remove"] = attempt(mm.madvise, addr + P, P, mm.MADV_GUARD_REMOVE).errno
        seen["read_after"] = attempt(*read).errno
    return seen


_SPECIAL = ("[vvar]", "[vvar_vclock]", "[vdso]", "[vsyscall]")


def _judge_vvar_vclock(seen):
    names = seen["names"]
    if "[vvar_vclock]" in names:
        return present(f"mappings: {' '.join(names)}", names=names)
    if "[vvar]" in names or "[vdso]" in names:
        return absent(f"mappings: {' '.join(names)} (no [vvar_vclock])", names=names)
    return undecided("no vDSO mappings at all (vdso=0?)")


@probe("vvar_vclock", "memory", since="6.13", judge=_judge_vvar_vclock,
       examples=[({"names": ["[vvar]", "[vvar_vclock]", "[vdso]", "[vsyscall]"]}, True),
                 ({"names": ["[vvar]", "[vdso]", "[vsyscall]"]}, False),
                 ({"names": []}, None)])
def vvar_vclock():
    """The vDSO data split into [vvar] + [vvar_vclock] (6.13): a third special mapping
    a restorer must move (CRIU < 4.1 fails on it). The names seen are the data."""
    names = []
    with open("/proc/self/maps") as f:
        for line in f:
            name = line.rstrip("\n").rsplit(" ", 1)[-1]
            if name in _SPECIAL and name not in names:
                names.append(name)
    return {"names": names}
