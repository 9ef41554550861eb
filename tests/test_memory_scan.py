"""cr_engine.memory.PageScanner: PAGEMAP_SCAN over spans of many VMAs, cut back at their
bounds, gives the runs that scanning VMA by VMA gives and that /proc/PID/pagemap names
(present or swapped, not file pages, not the zero page) - on stopped children of thousands
of VMAs of every kind (written, read and untouched anonymous pages, PROT_NONE and read-only
ones, private file pages read and written, shared file, shared anonymous and memfd
mappings between them, a THP-advised area with a huge page and the huge zero page, holes),
with output vectors small enough that the kernel's walk stops and is resumed many times."""

import ctypes
import errno
import os
import random
import signal
import struct

import pytest

from cr_engine import memory, proc, tracking
from kernel import memory as mem

from .helpers import kill_child, stopped_child, wait_stopped

needs_scan = pytest.mark.requires("pagemap_scan")
PAGE = mem.PAGE_SIZE
HUGE = 2 << 20
PFN_MASK = (1 << 55) - 1
MADV_FREE, MADV_HUGEPAGE = 8, 14


def _touch(at, pages, rng):
    """Each page written, read (the zero page) or left alone."""
    for i in range(pages):
        what = rng.randrange(3)
        if what == 0:
            ctypes.memset(at + i * PAGE + rng.randrange(PAGE), rng.randrange(1, 256), 1)
        elif what == 1:
            ctypes.c_char.from_address(at + i * PAGE).value


def _mixed(seed, groups, path):
    """``groups`` neighbouring mappings of random kinds in one reserved area."""
    rng = random.Random(seed)
    fd = os.open(path, os.O_RDWR)
    memfd = mem.memfd_create("scan-memfd")
    os.ftruncate(memfd, 64 * PAGE)
    base = mem.mmap(groups * 4 * PAGE + 3 * HUGE, mem.PROT_NONE,
                    mem.MAP_PRIVATE | mem.MAP_ANONYMOUS | mem.MAP_NORESERVE)
    huge = (base + HUGE - 1) & ~(HUGE - 1)     # a THP-advised area: a huge page, written,
    mem.mmap(2 * HUGE, flags=mem.MAP_PRIVATE | mem.MAP_ANONYMOUS | mem.MAP_FIXED, addr=huge)
    mem.madvise(huge, 2 * HUGE, MADV_HUGEPAGE)
    ctypes.memset(huge + 5, 1, 1)
    ctypes.c_char.from_address(huge + HUGE).value      # and the huge zero page, read
    at = huge + 2 * HUGE + PAGE
    rw, shared = mem.PROT_READ | mem.PROT_WRITE, mem.MAP_SHARED | mem.MAP_FIXED
    for _ in range(groups):
        pages, kind = rng.randrange(1, 5), rng.randrange(14)
        length = pages * PAGE
        if kind < 7:                                    # private anonymous
            mem.mmap(length, rw, mem.MAP_PRIVATE | mem.MAP_ANONYMOUS | mem.MAP_FIXED, addr=at)
            _touch(at, pages, rng)
            if kind in (1, 2):
                mem.mprotect(at, length, mem.PROT_READ if kind == 1 else mem.PROT_NONE)
        elif kind < 10:                                 # private file: read and written
            mem.mmap(length, rw, mem.MAP_PRIVATE | mem.MAP_FIXED, fd,
                     rng.randrange(60) * PAGE, addr=at)
            _touch(at, pages, rng)
            if kind == 9:
                mem.mprotect(at, length, mem.PROT_READ)
        elif kind == 10:
            mem.mmap(length, rw, shared, fd, rng.randrange(60) * PAGE, addr=at)
            _touch(at, pages, rng)
        elif kind == 11:
            mem.mmap(length, rw, shared | mem.MAP_ANONYMOUS, addr=at)
            _touch(at, pages, rng)
        elif kind == 12:
            mem.mmap(length, rw, shared, memfd, rng.randrange(60) * PAGE, addr=at)
            _touch(at, pages, rng)
        else:
            mem.munmap(at, length)                      # a hole
        at += length
    # a big shared mapping splits the process into two spans
    big = mem.mmap(2 * memory.SCAN_SKIP, rw, mem.MAP_SHARED | mem.MAP_ANONYMOUS)
    ctypes.memset(big, 1, 2 * memory.SCAN_SKIP)


@pytest.fixture
def backing(tmp_path):
    path = tmp_path / "backing"
    path.write_bytes(bytes(range(256)) * (64 * PAGE // 256))
    return str(path)


def _private(pid):
    vmas = proc.smaps(pid)
    private = [v for v in vmas if not v.shared and
               memory.classify(pid, v) in ("anon", "file", "carried")]
    starts = {v.start for v in private}
    return private, [v for v in vmas if v.start not in starts]


def _zero_pfns():
    """The pfns of the zero page and of the huge zero page's first page, as this process
    sees them (pagemap shows pfns to CAP_SYS_ADMIN only: None without)."""
    small = mem.mmap(PAGE)
    area = mem.mmap(2 * HUGE)
    huge = (area + HUGE - 1) & ~(HUGE - 1)
    mem.madvise(huge, HUGE, MADV_HUGEPAGE)
    ctypes.c_char.from_address(small).value
    ctypes.c_char.from_address(huge).value
    try:
        with open("/proc/self/pagemap", "rb", buffering=0) as f:
            pfns = [mem.pagemap_entry(f.fileno(), a) & PFN_MASK for a in (small, huge)]
    finally:
        mem.munmap(small, PAGE)
        mem.munmap(area, 2 * HUGE)
    return pfns if pfns[0] else None


def _pagemap_pages(pid, vmas, zero):
    """Pages of ``vmas`` that pagemap says are present or swapped, not file pages and not
    the zero pages."""
    small, huge = zero
    keep = set()
    with open(f"/proc/{pid}/pagemap", "rb", buffering=0) as f:
        for v in vmas:
            raw = os.pread(f.fileno(), (v.end - v.start) // PAGE * 8, v.start // PAGE * 8)
            for i, e in enumerate(struct.unpack(f"{len(raw) // 8}Q", raw)):
                pfn = e & PFN_MASK
                if (e & mem.PM_PRESENT and (pfn == small or huge <= pfn < huge + 512) or
                        not e & (mem.PM_PRESENT | mem.PM_SWAP) or e & mem.PM_FILE):
                    continue
                keep.add(v.start + i * PAGE)
    return keep


def _per_vma(pid, vmas):
    """VMA by VMA, one scan each (the way before spans): maximal runs in each VMA."""
    out = []
    with open(f"/proc/{pid}/pagemap", "rb", buffering=0) as f:
        for v in vmas:
            start = v.start
            while start < v.end:
                regions, walk_end = mem.pagemap_scan(f.fileno(), start, v.end, vec_len=64,
                                                     **memory.SCAN_ARGS)
                for r_start, r_end, _ in regions:
                    if out and out[-1][1] == r_start and r_start != v.start:
                        out[-1] = (out[-1][0], r_end)
                    else:
                        out.append((r_start, r_end))
                if len(regions) < 64:
                    break
                start = max(walk_end, regions[-1][1])
    return out


def _pages(runs):
    return {a for s, e in runs for a in range(s, e, PAGE)}


def _check_shape(runs, vmas):
    """Sorted, inside the VMAs, never crossing a bound, and maximal: two runs touch only
    at a VMA's start."""
    starts = {v.start for v in vmas}
    for (s1, e1), (s2, e2) in zip(runs, runs[1:]):
        assert e1 < s2 or (e1 == s2 and s2 in starts), (hex(s1), hex(e1), hex(s2))
    owner = {a: v for v in vmas for a in range(v.start, v.end, PAGE)}
    for s, e in runs:
        assert s < e and owner[s] is owner[e - PAGE], f"run {s:#x}-{e:#x} crosses a VMA"


def _scan(pid, private, others):
    scanner = memory.PageScanner(pid)
    try:
        runs = scanner.runs_of(private, others)
        assert scanner.scan, "PAGEMAP_SCAN refused"
        return runs, scanner.scan.calls
    finally:
        scanner.close()


@needs_scan
@pytest.mark.parametrize("regions", [7, 512, 513, memory.SCAN_REGIONS])
def test_spans_give_the_runs_of_scans_vma_by_vma_and_of_pagemap(backing, regions,
                                                                   monkeypatch):
    full_size = regions == memory.SCAN_REGIONS
    monkeypatch.setattr(memory, "SCAN_REGIONS", regions)
    zero = _zero_pfns()
    pid = stopped_child(_mixed, regions, 3000, backing)
    try:
        private, others = _private(pid)
        assert len(private) > 1500
        for _ in range(3):          # the kernel may change pages under a stopped child
            # (reclaim splitting a THP maps its zero-filled pages to the zero page): retry
            before = _per_vma(pid, private)
            runs, calls = _scan(pid, private, others)
            if _per_vma(pid, private) == before:
                break
        assert runs == before
        _check_shape(runs, private)
        assert len(runs) > 1000
        spans = len(memory._spans([v.start for v in private], others))
        assert spans >= 2
        if full_size:
            assert calls == spans           # fewer regions than asked: one call a span
        if zero is not None:
            assert _pages(runs) == _pagemap_pages(pid, private, zero)
    finally:
        kill_child(pid)


@needs_scan
@pytest.mark.parametrize("regions", [600, memory.SCAN_REGIONS])
def test_a_walk_the_kernel_finished_is_not_resumed_from_its_stale_walk_end(regions,
                                                                          monkeypatch):
    """600 runs in one VMA: the kernel returns them all from one call, refilling its
    512-region buffer once, yet leaves walk_end where the first fill stopped (page 1024 of
    1200); resuming from there would return the last 88 runs again.  With 600 regions
    asked the vector comes back full, so only the last run's end tells that it is done."""
    full_size = regions == memory.SCAN_REGIONS
    monkeypatch.setattr(memory, "SCAN_REGIONS", regions)

    at = 0x5a5a00000000                 # away from the rest: the only VMA scanned

    def make():
        mem.mmap(1200 * PAGE, flags=mem.MAP_PRIVATE | mem.MAP_ANONYMOUS |
                 mem.MAP_FIXED_NOREPLACE, addr=at)
        mem.madvise(at, 1200 * PAGE, 15)    # MADV_NOHUGEPAGE: a THP would fill the gaps
        for i in range(0, 1200, 2):
            ctypes.memset(at + i * PAGE, 1, 1)
    pid = stopped_child(make)
    try:
        vma = [v for v in proc.smaps(pid) if v.start == at]
        runs, calls = _scan(pid, vma, [])
        assert runs == [(at + i * PAGE, at + (i + 1) * PAGE) for i in range(0, 1200, 2)]
        assert runs == _per_vma(pid, vma)
        assert calls == (1 if full_size else 2)
    finally:
        kill_child(pid)


def test_cut_splits_regions_at_every_vma_bound_and_merges_within(monkeypatch):
    """_cut against a page by page reference, on random VMAs and regions."""
    rng = random.Random(11)
    for _ in range(300):
        starts, ends, at = [], [], 0
        for _ in range(rng.randrange(1, 12)):
            at += rng.randrange(0, 3) * PAGE                # maybe a gap
            length = rng.randrange(1, 5) * PAGE
            starts.append(at)
            ends.append(at + length)
            at += length
        pages = [a for a in range(0, at, PAGE) if rng.random() < 0.6]
        regions, split = [], rng.random() < 0.5
        for a in pages:                                     # regions as the kernel gives
            if regions and regions[-1][1] == a and not (split and rng.random() < 0.3):
                regions[-1][1] = a + PAGE
            else:
                regions.append([a, a + PAGE, 0])
        want = []
        for s, e in zip(starts, ends):
            for a in range(s, e, PAGE):
                if a in pages:
                    if want and want[-1][1] == a and a != s:
                        want[-1] = (want[-1][0], a + PAGE)
                    else:
                        want.append((a, a + PAGE))
        regions = [r for r in regions if r[0] < ends[-1] and r[1] > starts[0]]
        regions = [(max(s, starts[0]), min(e, ends[-1]), c) for s, e, c in regions]
        assert memory._cut(regions, starts, ends) == want


def test_spans_split_only_at_big_vmas_between():
    class V:
        def __init__(self, start, end):
            self.start, self.end = start, end
    starts = [0, 10, 20, 30, 40]
    big = memory.SCAN_SKIP
    others = [V(5, 6), V(11, 11 + big), V(25, 25 + big), V(26 + big, 27 + 2 * big),
              V(100, 100 + big)]
    assert memory._spans(starts, others) == [(0, 2), (2, 3), (3, 5)]
    assert memory._spans(starts, []) == [(0, 5)]
    assert memory._spans([], others) == []


# tracking.written: one scan for all tracked VMAs ------------------------------------------
WRITTEN = mem.PAGE_CATEGORIES["WRITTEN"]


def _two_phase_child(make, then, *args):
    """A child that runs make(*args), stops, and once continued runs then() on what make
    returned and stops again; returns its pid (stopped after make)."""
    def phases():
        state = make(*args)
        os.kill(os.getpid(), signal.SIGSTOP)
        then(state)
    return stopped_child(phases)


def _go_on(pid):
    os.kill(pid, signal.SIGCONT)
    wait_stopped(pid)


def _tracked(count, features):
    """``count`` one-to-three-page VMAs that do not merge: anonymous rw- ones (some pages
    written) tracked by a userfaultfd of ours with ``features``, r-- anonymous and file
    ones between; returns the rw- ones."""
    rng = random.Random(count)
    uffd = mem.userfaultfd(os.O_CLOEXEC | os.O_NONBLOCK)
    mem.uffdio_api(uffd, features)
    base = mem.mmap(count * 3 * PAGE, mem.PROT_NONE)
    tracked = []
    for i in range(count):
        at, pages = base + i * 3 * PAGE, rng.randrange(1, 4)
        mem.mmap(pages * PAGE, flags=mem.MAP_PRIVATE | mem.MAP_ANONYMOUS | mem.MAP_FIXED,
                 addr=at)
        _touch(at, pages, rng)
        if i % 3 == 1:
            mem.mprotect(at, pages * PAGE, mem.PROT_READ)
        elif i % 3 == 0:
            mem.uffdio_register(uffd, at, pages * PAGE, mem.UFFDIO_REGISTER_MODE_WP)
            tracked.append((at, pages))
    return tracked


def _write_some(tracked):
    rng = random.Random(len(tracked) + 1)
    for at, pages in tracked:
        for i in range(pages):
            if rng.random() < 0.4:
                ctypes.memset(at + i * PAGE + rng.randrange(PAGE), rng.randrange(1, 256), 1)


def _uw(pid):
    return [(v.start, v.end) for v in proc.smaps(pid) if "uw" in v.flags]


def _with_content(pid, vmas):
    """Pages of ``vmas`` present or swapped, as pagemap says."""
    with open(f"/proc/{pid}/pagemap", "rb", buffering=0) as f:
        return {a for start, end in vmas for a in range(start, end, PAGE)
                if mem.pagemap_entry(f.fileno(), a) & (mem.PM_PRESENT | mem.PM_SWAP)}


def _written_with_content(pid, vmas):
    """Pages of ``vmas`` a scan that protects nothing calls written, with content (present
    or swapped, as pagemap says)."""
    pages = set()
    with open(f"/proc/{pid}/pagemap", "rb", buffering=0) as f:
        for start, end in vmas:
            regions, _ = mem.pagemap_scan(f.fileno(), start, end, category_mask=WRITTEN,
                                          return_mask=WRITTEN, vec_len=4096)
            for s, e, _ in regions:
                for a in range(s, e, PAGE):
                    if mem.pagemap_entry(f.fileno(), a) & (mem.PM_PRESENT | mem.PM_SWAP):
                        pages.add(a)
    return pages


@needs_scan
def test_one_scan_of_all_tracked_vmas_reports_and_protects_what_scans_vma_by_vma_did():
    pid = _two_phase_child(_tracked, _write_some, 3000, tracking.FEATURES)
    try:
        vmas = _uw(pid)
        assert len(vmas) == 1000
        tracking.protect(pid, vmas)
        assert _written_with_content(pid, vmas) == set()
        _go_on(pid)                                 # it writes some pages
        want = _written_with_content(pid, vmas)
        assert len(want) > 300
        got = tracking.written(pid, vmas)
        assert _pages(got) & _with_content(pid, vmas) == want
        assert _written_with_content(pid, vmas) == set()    # protected again
        assert not _pages(tracking.written(pid, vmas)) & want
    finally:
        kill_child(pid)


@needs_scan
def test_a_vma_tracked_without_async_write_protection_is_refused_as_before():
    """A uw VMA whose userfaultfd has no WP_ASYNC: the span skips it, so it is scanned alone
    with PM_SCAN_CHECK_WPASYNC, which refuses it."""
    pid = _two_phase_child(_tracked, _write_some, 30, 0)
    try:
        with pytest.raises(OSError) as refused:
            tracking.written(pid, _uw(pid))
        assert refused.value.errno == errno.EPERM
    finally:
        kill_child(pid)


def test_unmet_names_the_vmas_no_region_overlaps():
    vmas = [(0, 10), (10, 20), (30, 40), (50, 60), (70, 80)]
    regions = [(5, 15, 0), (40, 50, 0), (55, 56, 0)]
    assert tracking._unmet(vmas, regions) == [(30, 40), (70, 80)]
    assert tracking._unmet(vmas, []) == vmas
