"""smaps' VmFlags mnemonics from a VMA's raw vm_flags word (what the task_vma iterator
reads), so the engine can skip smaps and still see "dc", "wf", "uw"...

The kernel describes VM_* bits by #define only (no BTF enum), and the high bits move
between versions and configs, so the table is learned on the running kernel: a child makes
one VMA per flag it can (madvise, mlock, uffd, mseal, MAP_DROPPABLE, pkeys...), and each
bit gets the mnemonic whose presence in that child's smaps matches the bit's on every VMA;
where several match (bits that always come together) the static table of
show_smap_vma_flags() decides.  The learned table is then checked against that child's
smaps VMA by VMA: a kernel where it is not exact gets no table (the engine reads smaps).  A
VMA with a bit the table does not know cannot be named (decode() returns None): the caller
reads smaps for that process rather than guess.
"""

import errno
import functools
import os
import signal

from kernel import memory as mem
from kernel.libc import syscall

from . import proc

# bits 0-31 as show_smap_vma_flags() prints them; 11 ("dw", VM_DENYWRITE, before 5.15: the
# child's executable mapping has it) and 27 ("sd", CONFIG_MEM_SOFT_DIRTY) are learned
STATIC = ["rd", "wr", "ex", "sh", "mr", "mw", "me", "ms", "gd", "um", "pf", None, "uw",
          "lo", "io", "sr", "rr", "dc", "de", "lf", "ac", "nr", "ht", "sf", "ar", "wf", "dd",
          None, "mm", "hg", "nh", "mg"]
SILENT = ""                 # a bit smaps shows by no mnemonic (pkeys go to ProtectionKey:)

_MADVISE = {"dc": 10, "dd": 16, "hg": 14, "nh": 15, "wf": 18, "sr": 2, "rr": 1, "mg": 12}
MAP_GROWSDOWN, MAP_DROPPABLE, MLOCK_ONFAULT = 0x100, 0x08, 1


class FlagTable:
    """bit -> mnemonic ("" for a bit smaps does not show); decode() names a word."""

    def __init__(self, names):
        self.names = dict(names)
        self.known = 0
        for bit in self.names:
            self.known |= 1 << bit
        self._sets = {}

    def decode(self, word):
        """The mnemonics of ``word`` (a frozenset: many VMAs share one), or None when it
        has a bit this table cannot name."""
        got = self._sets.get(word)
        if got is None:
            if word & ~self.known:
                return None
            got = self._sets[word] = frozenset(
                name for bit, name in self.names.items() if name and word >> bit & 1)
        return got


def _make_vmas():
    """In the calibration child: one VMA per flag, a free page on each side so none merge.
    A kernel without one of the calls simply lacks that VMA."""
    rw, private = mem.PROT_READ | mem.PROT_WRITE, mem.MAP_PRIVATE | mem.MAP_ANONYMOUS
    page = mem.PAGE_SIZE

    def area(prot=rw, flags=private):
        hole = mem.mmap(3 * page, mem.PROT_NONE)
        mem.munmap(hole, page)
        mem.munmap(hole + 2 * page, page)
        return mem.mmap(page, prot, flags | mem.MAP_FIXED, addr=hole + page)

    def attempt(call, *args):
        try:
            call(*args)
        except OSError:
            pass

    for advice in _MADVISE.values():
        attempt(mem.madvise, area(), page, advice)
    attempt(syscall, "mlock", area(), page)
    attempt(syscall, "mlock2", area(), page, MLOCK_ONFAULT)
    for prot, flags in ((rw, private | MAP_GROWSDOWN), (rw, private | mem.MAP_NORESERVE),
                        (rw, mem.MAP_SHARED | mem.MAP_ANONYMOUS),
                        (mem.PROT_READ, mem.MAP_SHARED | mem.MAP_ANONYMOUS),
                        (mem.PROT_READ | mem.PROT_EXEC, private), (mem.PROT_NONE, private),
                        (rw, MAP_DROPPABLE | mem.MAP_ANONYMOUS)):
        attempt(area, prot, flags)
    attempt(mem.mseal, area(), page)
    try:
        pkey = syscall("pkey_alloc", 0, 0)
        syscall("pkey_mprotect", area(), page, rw, pkey)
    except OSError:
        pass
    try:
        uffd = mem.userfaultfd(os.O_CLOEXEC)
        mem.uffdio_api(uffd)
        attempt(mem.uffdio_register, uffd, area(), page, mem.UFFDIO_REGISTER_MODE_MISSING)
        attempt(mem.uffdio_register, uffd, area(), page, mem.UFFDIO_REGISTER_MODE_WP)
        memfd = mem.memfd_create("vmflags")
        os.ftruncate(memfd, page)
        shared = mem.mmap(page, rw, mem.MAP_SHARED, memfd)
        attempt(mem.uffdio_register, uffd, shared, page, mem.UFFDIO_REGISTER_MODE_MINOR)
    except OSError:
        pass


def _learn(pairs):
    """The table from (raw word, smaps mnemonics) of the same VMAs."""
    names = {bit: name for bit, name in enumerate(STATIC) if name}
    seen_bits = 0
    for word, _ in pairs:
        seen_bits |= word
    mnemonics = set().union(*(flags for _, flags in pairs))
    for bit in range(64):
        if not seen_bits >> bit & 1:
            continue
        matching = [m for m in sorted(mnemonics)
                    if all((word >> bit & 1) == (m in flags) for word, flags in pairs)]
        if names.get(bit) in matching:
            continue
        if len(matching) == 1:
            names[bit] = matching[0]
        elif not matching:
            names[bit] = SILENT
        else:
            names.pop(bit, None)        # ambiguous and not in the static table: unknown
    return FlagTable(names)


@functools.cache
def learned(iterator_factory):
    """The FlagTable of this kernel, or raise OSError saying why there is none.
    ``iterator_factory``: makes a kernel.iters.VmaIterator (the caller's, already loaded)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:                # the child: make the VMAs, say so, wait to be killed
        try:
            os.close(read)
            _make_vmas()
            os.write(write, b"r")
            signal.pause()
        finally:
            os._exit(0)
    try:
        os.close(write)
        if os.read(read, 1) != b"r":
            raise OSError(errno.ECHILD, "the VmFlags calibration child died")
        records = {r.start: r.flags for r in iterator_factory().records(pid)}
        smaps = proc.smaps(pid)
    finally:
        os.close(read)
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    pairs = [(records[v.start], v.flags) for v in smaps if v.start in records]
    table = _learn(pairs)
    for word, flags in pairs:
        if table.decode(word) != flags:
            raise OSError(errno.EPROTO, f"vm_flags {word:#x} decode to "
                                        f"{sorted(table.decode(word) or [])}, smaps says "
                                        f"{sorted(flags)}: no VmFlags table on this kernel")
    return table
