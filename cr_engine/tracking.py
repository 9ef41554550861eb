"""Memory changes tracking for incremental dumps (pre-dump, then a dump with a parent).

Soft-dirty bits are what CRIU uses; kernels built without CONFIG_MEM_SOFT_DIRTY (this
host) have none.  Here: a userfaultfd in write-protect mode with UFFD_FEATURE_WP_ASYNC
(6.7): the kernel resolves write faults itself and clears the page's uffd-wp bit, and
PAGEMAP_SCAN reports the pages written since (PAGE_IS_WRITTEN) and write-protects them
again in the same call (PM_SCAN_WP_MATCHING).

  arm       once, in the frozen process: userfaultfd() injected (a userfaultfd tracks the
            mm of the process that made it), taken with pidfd_getfd and closed there, then
            the API handshake, registration of its private anonymous VMAs and the
            write-protection of all their pages, from the engine;
  written   at the next pre-dump or dump: the runs written since, protected again.

The userfaultfd must stay open between two dumps (closing it drops the protection), in a
process of its own: a keeper started by the first pre-dump, holding one fd per process,
that exits when the tracked processes are all gone or when the final dump is done with it.
Its pid (with its start time, against pid reuse) and fd numbers are in tracking.json.

Pages are then split (``split``): present and written since the parent, or not in the
parent, are stored; the others are inherited, recorded as where the parent chain stores
them (directory, offset), resolved at dump time so that a restore reads each page once.
"""

import bisect
import ctypes
import errno
import os
import signal
import subprocess
import sys

from kernel import memory as kmem
from kernel.process import pidfd_getfd, pidfd_open

from .errors import DumpError
from .images import ImageReader
from .memory import PagemapScan, classify

IMAGE = "tracking.json"
PAGE = kmem.PAGE_SIZE
O_CLOEXEC, O_NONBLOCK = os.O_CLOEXEC, os.O_NONBLOCK
FEATURES = kmem.UFFD_FEATURES["WP_ASYNC"] | kmem.UFFD_FEATURES["WP_UNPOPULATED"]
PAGE_IS_WRITTEN = kmem.PAGE_CATEGORIES["WRITTEN"]
PAGE_PRESENT_OR_SWAPPED = kmem.PAGE_CATEGORIES["PRESENT"] | kmem.PAGE_CATEGORIES["SWAPPED"]
WP_CHECKED = kmem.PM_SCAN_WP_MATCHING | kmem.PM_SCAN_CHECK_WPASYNC

# the keeper: holds its inherited fds until every tracked pid is gone (or it is killed)
KEEPER = """
import os, select, sys
poller, alive = select.poll(), 0
for pid in sys.argv[1:]:
    try:
        poller.register(os.pidfd_open(int(pid)), select.POLLIN)
        alive += 1
    except OSError:
        pass
while alive > 0:
    alive -= len(poller.poll())
"""


# arming, in the frozen process ---------------------------------------------------------------
def arm(rem, pid):
    """A userfaultfd for the frozen process ``pid`` (``rem``: a Remote of one of its
    threads), VMAs registered later (Increments._register); returns its fd here."""
    got = rem.call("userfaultfd", O_CLOEXEC | O_NONBLOCK, check=False)
    if got == -errno.EPERM:
        # a process without CAP_SYS_PTRACE may only track its user-mode faults; with
        # WP_ASYNC the kernel resolves write faults without asking, from either mode
        got = rem.call("userfaultfd", O_CLOEXEC | O_NONBLOCK | kmem.UFFD_USER_MODE_ONLY,
                       check=False)
    if got < 0:
        raise DumpError(f"cannot track the memory of pid {pid}: userfaultfd() gave "
                        f"{os.strerror(-got)}")
    pidfd = pidfd_open(pid)
    try:
        uffd = pidfd_getfd(pidfd, got)
    finally:
        os.close(pidfd)
        rem.call("close", got)
    try:
        try:
            api = kmem.uffdio_api(uffd, FEATURES)
        except OSError as e:
            if e.errno != errno.EINVAL:         # a feature the kernel does not know
                raise
            api = None
        if api is None or api.features & FEATURES != FEATURES:
            raise DumpError("cannot track memory: userfaultfd has no WP_ASYNC (6.7)")
    except BaseException:
        os.close(uffd)
        raise
    return uffd


def protect(pid, vmas):
    """Write-protect every page of the tracked ``vmas`` [(start, end)] (sorted): from now
    on a write shows as PAGE_IS_WRITTEN.  One PAGEMAP_SCAN over their span (20,000 VMAs: one
    call, not 20,000): without PM_SCAN_CHECK_WPASYNC the kernel skips, unwalked, the VMAs
    between that it cannot protect.  A tracked VMA there protected again loses nothing:
    its written pages were taken (``written``) in the same frozen window."""
    if not vmas:
        return
    with open(f"/proc/{pid}/pagemap", "rb", buffering=0) as pagemap:
        PagemapScan(pagemap.fileno(), flags=kmem.PM_SCAN_WP_MATCHING,
                    return_mask=PAGE_IS_WRITTEN).regions(vmas[0][0], vmas[-1][1])


def written(pid, vmas):
    """Runs [(start, end)] of ``vmas`` (tracked VMAs) written since the last protection,
    protected again.

    One PAGEMAP_SCAN over them all, not one per VMA.  Without PM_SCAN_CHECK_WPASYNC, which
    would refuse the span for the untracked VMAs between, the kernel skips (without walking
    it) every VMA it cannot protect; so every page holding something is asked for, written
    or not - present or swapped, and after the protection a page never touched holds a
    uffd-wp marker, which counts as swapped.  A VMA of ours that shows none may have been
    skipped (tracked by a userfaultfd without async write-protection): it is scanned again
    alone, with the check, as every VMA was before.  What this reports and protects is what
    the scans VMA by VMA did, but for empty page table entries, which the kernel's
    written-only path calls written and gives a marker: no content is stored for them, and
    without the marker a write there still shows as written."""
    vmas, out = sorted(vmas), []
    with open(f"/proc/{pid}/pagemap", "rb", buffering=0) as pagemap:
        if vmas:
            span = PagemapScan(pagemap.fileno(), flags=kmem.PM_SCAN_WP_MATCHING,
                               category_anyof_mask=PAGE_PRESENT_OR_SWAPPED,
                               return_mask=PAGE_IS_WRITTEN)
            regions = span.regions(vmas[0][0], vmas[-1][1])
            out = [(s, e) for s, e, categories in regions if categories & PAGE_IS_WRITTEN]
            alone = PagemapScan(pagemap.fileno(), per_call=64, flags=WP_CHECKED,
                                category_mask=PAGE_IS_WRITTEN, return_mask=PAGE_IS_WRITTEN)
            for start, end in _unmet(vmas, regions):
                out += [(s, e) for s, e, _ in alone.regions(start, end)]
    return _merge(out)


def _unmet(vmas, regions):
    """The VMAs [(start, end)] (sorted) that no region (sorted) overlaps."""
    out, i = [], 0
    for start, end in vmas:
        while i < len(regions) and regions[i][1] <= start:
            i += 1
        if i == len(regions) or regions[i][0] >= end:
            out.append((start, end))
    return out


# the keeper ---------------------------------------------------------------------------------
def start_keeper(uffds):
    """A process holding ``uffds`` {pid: fd}; returns its image entry."""
    fds = list(uffds.values())
    proc = subprocess.Popen([sys.executable, "-c", KEEPER, *map(str, uffds)], pass_fds=fds,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    return {"keeper": proc.pid, "started": _start_time(proc.pid),
            "fds": {str(pid): fd for pid, fd in uffds.items()}}


def take(entry, pid):
    """The userfaultfd tracking ``pid`` from the keeper of ``entry``, or None when there is
    no such keeper any more (or it does not track that pid)."""
    fd = entry["fds"].get(str(pid))
    if fd is None or _start_time(entry["keeper"]) != entry["started"]:
        return None
    try:
        pidfd = pidfd_open(entry["keeper"])
    except OSError:
        return None
    try:
        return pidfd_getfd(pidfd, fd)
    except OSError:
        return None
    finally:
        os.close(pidfd)


def stop_keeper(entry):
    """End the keeper (SIGKILL: it holds nothing to save, and nothing can delay it); reap it
    when it is our child (the engine ran in-process)."""
    if _start_time(entry["keeper"]) != entry["started"]:
        return
    try:
        os.kill(entry["keeper"], signal.SIGKILL)
        os.waitpid(entry["keeper"], 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _start_time(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


# splitting pages between this image and its parents ---------------------------------------
def split(runs, written_runs, parent):
    """(stored runs, inherited entries) of the present ``runs`` [(start, end)] (sorted):
    ``parent`` [(start, end, dir, offset)] (sorted, not overlapping) says where the parent
    chain has its pages.  One sweep over the three sorted lists: this runs in the frozen
    window, over every run of a process of 20,000 VMAs."""
    stored, inherited = [], []
    changed = _merge(written_runs)
    i = j = 0
    n_parent, n_changed = len(parent), len(changed)
    for start, end in runs:
        pos, piece = start, None            # piece: the stored run being extended
        while pos < end:
            while i < n_parent and parent[i][1] <= pos:
                i += 1
            if i == n_parent or parent[i][0] > pos:          # not in the parent
                upto = end if i == n_parent else min(end, parent[i][0])
            else:
                p_start, p_end, directory, offset = parent[i]
                upto = min(end, p_end)
                while j < n_changed and changed[j][1] <= pos:
                    j += 1
                if j == n_changed or changed[j][0] >= upto:  # unchanged to upto
                    inherited.append((pos, upto, directory, offset + (pos - p_start)))
                    pos, piece = upto, None
                    continue
                if changed[j][0] > pos:                      # unchanged to the change
                    inherited.append((pos, changed[j][0], directory,
                                      offset + (pos - p_start)))
                    pos, piece = changed[j][0], None
                    continue
                upto = min(upto, changed[j][1])              # changed: stored
            # not merged across runs: a run never crosses a VMA (protections may differ)
            if piece is not None:
                stored[piece] = (stored[piece][0], upto)
            else:
                piece = len(stored)
                stored.append((pos, upto))
            pos = upto
    return stored, inherited


def _merge(runs):
    out = []
    for s, e in sorted(runs):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def _minus(runs, cut, ends=None):
    """``runs`` without the ranges of ``cut`` (both sorted, merged; ``ends``: the ends of
    ``cut``, when the caller has them already)."""
    ends = [c[1] for c in cut] if ends is None else ends
    out = []
    for s, e in runs:
        i = bisect.bisect_right(ends, s)        # the first cut ending after s
        while i < len(cut) and cut[i][0] < e:
            c_s, c_e = cut[i]
            if c_s > s:
                out.append((s, c_s))
            s = max(s, c_e)
            i += 1
            if s >= e:
                break
        if s < e:
            out.append((s, e))
    return out


def parent_pages(parent_dir, pid, mm):
    """Where the image in ``parent_dir`` (relative to the new image) keeps the pages of
    ``pid`` whose mm image is ``mm``: [(start, end, dir, offset)], own pages and inherited
    ones (their dirs made relative to the new image)."""
    out, offset, dirs = [], 0, {}
    for start, count in mm["pagemap"]:
        out.append((start, start + count * PAGE, parent_dir, offset))
        offset += count * PAGE
    for start, end, directory, off in mm.get("inherited", ()):
        if directory not in dirs:       # a handful of dirs over thousands of entries
            dirs[directory] = os.path.normpath(os.path.join(parent_dir, directory))
        out.append((start, end, dirs[directory], off))
    return sorted(out)


def write_inherited(pid, inherited, images_dir, live=None):
    """Copy inherited pages into the restored process ``pid`` (its VMAs mapped writable;
    ``live``: its pid now, when not the dumped one)."""
    live = pid if live is None else live
    files = {}
    try:
        for start, end, directory, offset in inherited:
            path = os.path.join(images_dir, directory, f"pages-{pid}.img")
            if path not in files:
                files[path] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            size = end - start
            buf = ctypes.create_string_buffer(size)
            got = os.preadv(files[path], [buf], offset)
            if got != size:
                raise OSError(0, f"short read of {path} ({got} of {size} bytes)")
            done = kmem.process_vm_writev(live, ctypes.addressof(buf), start, size)
            if done != size:
                raise OSError(0, f"short write into pid {pid} ({done} of {size} bytes)")
    finally:
        for fd in files.values():
            os.close(fd)
    return sum(e - s for s, e, _, _ in inherited) // PAGE


class Increments:
    """What an incremental dump needs, process by process: the parent's pages and its
    tracking (taken over from the parent's keeper); ``keep`` (a pre-dump, a --track-mem
    dump): tracking goes on after this dump, under a keeper of its own."""

    def __init__(self, images_dir, parent, keep):
        self.images_dir, self.keep = os.fspath(images_dir), keep
        self.parent = os.fspath(parent) if parent else None
        self.parent_rel = os.path.relpath(self.parent, self.images_dir) if parent else None
        self.reader = ImageReader(self.parent) if parent else None  # refuses a non-image
        self.entry = self.reader.json(IMAGE) if parent and self.reader.has(IMAGE) else None
        self.uffds, self.keeper = {}, None
        self.active = bool(parent) or keep
        # where the parent has each process's pages, read now: not in the frozen window
        self.parents = {}
        if self.entry:
            for pid in self.entry["fds"]:
                if self.reader.has(f"mm-{pid}.json"):
                    self.parents[int(pid)] = parent_pages(
                        self.parent_rel, pid, self.reader.json(f"mm-{pid}.json"))

    def split(self, rem, pid, vmas, runs):
        """(stored runs, inherited entries) of ``runs`` of the frozen process ``pid``
        (``rem``: a Remote of it, ``vmas``: its smaps), tracking it on when ``keep``."""
        uffd = take(self.entry, pid) if self.entry else None
        registered = [(v.start, v.end) for v in vmas if "uw" in v.flags]
        parent, changed = [], runs                 # all changed, unless the parent knows
        if uffd is not None and pid in self.parents:
            parent = self.parents[pid]
            changed = written(pid, registered) + _minus(_merge(runs), _merge(registered))
        if self.keep:
            self.uffds[pid] = uffd if uffd is not None else arm(rem, pid)
            self._register(pid, [v for v in vmas if "uw" not in v.flags])
        elif uffd is not None:
            os.close(uffd)
        return split(runs, changed, parent) if parent else (runs, [])

    def _register(self, pid, vmas):
        """Track the private anonymous writable VMAs not tracked yet."""
        registered = []
        for v in vmas:
            if "w" not in v.perms or v.shared or classify(pid, v) != "anon":
                continue
            try:
                kmem.uffdio_register(self.uffds[pid], v.start, v.end - v.start,
                                     kmem.UFFDIO_REGISTER_MODE_WP)
            except OSError:
                continue                # not tracked: stored in full each time
            registered.append((v.start, v.end))
        protect(pid, registered)

    def hand_over(self, writer):
        """Before the image is finished: its tracking goes to a new keeper, named in it."""
        if self.keep and self.uffds:
            self.keeper = start_keeper(self.uffds)
            writer.json(IMAGE, self.keeper)

    def done(self):
        """The image is finished: the parent's keeper goes (its fds were taken over)."""
        if self.entry:
            stop_keeper(self.entry)
        self.keeper = None
        self.close()

    def close(self):
        """Let go of the userfaultfds; a keeper started for an image that failed goes."""
        if self.keeper:
            stop_keeper(self.keeper)
            self.keeper = None
        for fd in self.uffds.values():
            os.close(fd)
        self.uffds = {}
