"""io_uring rings, restore: each ring made again inside its process (the dump's side and
the ring memory's layout: io_uring.py).

Once the process's memory and threads are back: io_uring_setup with the dumped flags plus
R_DISABLED, by the submitter thread (an IORING_SETUP_NO_MMAP ring over the process's
memory, back at the dumped addresses); the fd put at its numbers; the ring mapped where it
was; files, buffers, restrictions, the eventfd, personalities, io-wq limits and per-thread ring
fds registered; the ring enabled; the kernel's private counters brought to the dumped
positions by replaying NOPs, the requests that were in flight submitted again as the last
SQEs; the dumped ring memory written back over what that left.
"""

import errno
import fcntl
import os
import struct
import time

from kernel import io_uring as uring
from kernel import memory as kmem
from kernel.memory import PAGE_SIZE
from kernel.process import pidfd_getfd, pidfd_open

from . import proc
from .errors import RestoreError
from .memory import prot_of
from .remote import lend_fd, write_memory
from .io_uring import (CQ_EVENTFD_DISABLED, ENTER_GETEVENTS, ENTER_SQ_WAKEUP, KIND, MASK,
                       NOT_PASSED, OP_MSG_RING, OP_NOP, SETUP, SQ_CQ_OVERFLOW, SQ_NEED_WAKEUP,
                       SQE_CQE_SKIP_SUCCESS, RingMemory, UserRingMemory, _err, _page_up,
                       layout)
from .io_uring_inflight import sqe, timeout_sqe, timespec

MSG_RING_FLAGS_PASS = 1 << 1


class RingRestore:
    """Rebuilds the rings of one restored process from inside it (restore.py calls
    ``restore`` once its memory and threads are back, before its credentials change)."""

    def __init__(self, files, payload, opened, own_creds):
        self.files, self.payload, self.opened = files, payload, opened
        self.own_creds = own_creds

    def reserve_low(self):
        """Where the kernel alone places a ring (6.4+, and Debian's 6.1), it may choose an
        address below vm.mmap_min_addr (6.1 does, 6.12 does not), where a restored process
        in a user namespace may not map its fillers (_Rebuild._map): the restorer, which
        may, reserves that space before forking the stubs; they inherit it and unmap it once
        their rings are mapped.  The range reserved here, or None."""
        low = _mmap_min_addr()
        if low <= PAGE_SIZE or not any(d["type"] == KIND for d in self.files.values()):
            return None
        try:
            kmem.mmap(low - PAGE_SIZE, kmem.PROT_NONE, MAP_FILLER, addr=PAGE_SIZE)
        except OSError:
            return None
        return PAGE_SIZE, low

    def restore(self, rem, remotes, scratch, pid, live, core, vmas, helpers):
        """``helpers`` makes threads with given credentials (restore._ThreadsFor)."""
        rings = {}
        for entry in core["fds"]:
            if self.files[entry["file"]]["type"] == KIND:
                rings.setdefault(entry["file"], []).append(entry)
        for file_id, entries in rings.items():
            desc = self.files[file_id]
            sub = remotes.get(desc.get("submitter"), rem)
            rebuild = _Rebuild(self, desc, file_id, sub, scratch, live, f"pid {pid}", helpers)
            rebuild.run(entries, [v for v in vmas if v["kind"] == KIND and v["file"] == file_id],
                        {e["file"]: e["fd"] for e in core["fds"]}, remotes)


class _Rebuild:
    """One ring, made again inside its process through the injected calls of ``rem``."""

    def __init__(self, owner, desc, file_id, rem, scratch, live, what, helpers):
        self.owner, self.desc, self.file_id = owner, desc, file_id
        self.rem, self.scratch, self.live = rem, scratch, live
        self.what = f"io_uring ring {file_id} of {what}"
        self.helpers, self.own_creds = helpers, owner.own_creds
        self.blob = owner.payload(file_id)      # its memory, then detached buffers' bytes
        self.lent = []

    def run(self, entries, vmas, fd_of_file, remotes):
        setup = self.desc["setup"]
        flags = setup["flags"]
        self.fd = self._setup(setup)
        self._place(entries)
        if "user_addr" not in self.desc:        # a NO_MMAP ring has no mapping of its own
            for vma in vmas:
                self._map(vma)
        try:
            self._register_files(fd_of_file)
            self._register_buffers()
            self._register_restrictions()
            self._register_eventfd(fd_of_file)
            self._register_personalities()
            self._iowq_limits()
            self._register_ring_fds(remotes)
        finally:
            for fd in self.lent:
                self.rem.call("close", fd, check=False)
        if not flags & SETUP["R_DISABLED"]:
            self._register(uring.REGISTER_ENABLE_RINGS, 0, 0)
        memory = self._memory(layout(setup["sq_entries"], setup["cq_entries"], flags))
        try:
            self._replay(memory, bool(flags & SETUP["SQPOLL"]))
            self._write_back(memory)
        finally:
            memory.close()

    # the ring, its fd and its fd numbers
    def _setup(self, setup):
        flags = (setup["flags"] & ~NOT_PASSED) | SETUP["R_DISABLED"] | SETUP["CQSIZE"]
        params = uring.Params(flags=flags, cq_entries=setup["cq_entries"],
                              sq_thread_idle=setup.get("sq_thread_idle", 0),
                              sq_thread_cpu=max(setup.get("sq_thread_cpu", 0), 0))
        addrs = self.desc.get("user_addr")
        if addrs:       # NO_MMAP: its memory, back at the dumped addresses with the process's
            params.sq_off.user_addr, params.cq_off.user_addr = addrs["sqes"], addrs["rings"]
        at = self.scratch.put(bytes(params))
        fd = self.rem.call("io_uring_setup", setup["sq_entries"], at, check=False)
        self.scratch.reset()
        if fd < 0:
            raise RestoreError(f"{self.what}: io_uring_setup with flags {flags:#x} failed "
                               f"({_err(fd)})", "state")
        if addrs:
            self._fresh_counters(addrs, layout(setup["sq_entries"], setup["cq_entries"], flags))
        return fd

    def _fresh_counters(self, addrs, lay):
        """A NO_MMAP ring's counters as a new ring has them (0), before it is enabled: the
        memory it was set up over holds the dumped ones, which 6.18 clears but 6.12 leaves
        (an SQ thread would take the SQ tail found there for that many SQEs queued)."""
        memory = UserRingMemory(self.live, addrs, lay)
        try:
            for off in (lay.sq.head, lay.sq.tail, lay.sq.flags, lay.sq.dropped, lay.cq.head,
                        lay.cq.tail, lay.cq.flags, lay.cq.overflow):
                memory.set_u32(off, 0)
        finally:
            memory.close()

    def _place(self, entries):
        numbers = [e["fd"] for e in entries]
        for e in entries:
            if e["fd"] != self.fd:
                self.rem.call("dup3", self.fd, e["fd"], os.O_CLOEXEC if e["cloexec"] else 0)
        if self.fd not in numbers:
            self.rem.call("close", self.fd)
            self.fd = numbers[0]
        elif not next(e for e in entries if e["fd"] == self.fd)["cloexec"]:
            self.rem.call("fcntl", self.fd, fcntl.F_SETFD, 0)  # io_uring_setup set CLOEXEC

    def _map(self, vma):
        """Map the ring where the dumped process had it: at its address where the kernel
        takes one (5.10).  Since 6.4 (and in Debian's 6.1) io_uring refuses any address but
        0 (io_uring_get_unmapped_area: also for MAP_FIXED and mremap), so every free gap of
        the address space but that one is filled first (PROT_NONE, no memory), and the
        kernel's own choice then has to be it."""
        start, length = vma["start"], vma["end"] - vma["start"]
        got = self.rem.call("mmap", start, length, prot_of(vma["perms"]),
                            kmem.MAP_SHARED | kmem.MAP_FIXED_NOREPLACE, self.fd, vma["pgoff"],
                            check=False)
        if got == start:
            return
        fillers = []
        at = _mmap_min_addr()
        taken = sorted((m.start, m.end) for m in proc.maps(self.live)) + [(TASK_SIZE, TASK_SIZE)]
        try:
            for lo, hi in taken:
                for gap in _minus((at, min(lo, TASK_SIZE)), (start, start + length)):
                    got = self.rem.call("mmap", gap[0], gap[1] - gap[0], 0,
                                        MAP_FILLER, -1, 0, check=False)
                    if got != gap[0]:
                        raise RestoreError(f"{self.what}: cannot reserve {gap[0]:#x}-"
                                           f"{gap[1]:#x} ({_err(got)})", "state")
                    fillers.append(gap)
                at = max(at, hi)
            got = self.rem.call("mmap", 0, length, prot_of(vma["perms"]), kmem.MAP_SHARED,
                                self.fd, vma["pgoff"], check=False)
        finally:
            for lo, hi in fillers:
                self.rem.call("munmap", lo, hi - lo, check=False)
        if got != start:
            if got > 0:
                self.rem.call("munmap", got, length, check=False)
            raise RestoreError(f"{self.what}: cannot map it at {start:#x} (the kernel chose "
                               f"{_err(got) if got < 0 else hex(got)})", "state")

    def _memory(self, lay):
        """The ring's memory, to write it directly: our own mmap of the ring, or the
        process's memory in place for a NO_MMAP ring (which no fd maps)."""
        if "user_addr" in self.desc:
            return UserRingMemory(self.live, self.desc["user_addr"], lay)
        mine = self._borrow()
        try:
            return RingMemory(mine, lay)
        finally:
            os.close(mine)

    def _borrow(self):
        """The ring as an fd of ours, to write its memory directly."""
        pidfd = pidfd_open(self.live)
        try:
            return pidfd_getfd(pidfd, self.fd)
        finally:
            os.close(pidfd)

    def _register(self, opcode, arg, nr, what=None):
        got = self.rem.call("io_uring_register", self.fd, opcode, arg, nr, check=False)
        if got < 0:
            raise RestoreError(f"{self.what}: {what or f'io_uring_register({opcode})'} failed "
                               f"({_err(got)})", "state")
        return got

    def _fd_for(self, file_id, fd_of_file):
        """An fd of the process holding description ``file_id`` (lent when it has none)."""
        if file_id in fd_of_file:
            return fd_of_file[file_id]
        fd = lend_fd(self.rem, self.scratch, self.owner.opened.fds[file_id])
        self.lent.append(fd)
        return fd

    # registered resources
    def _register_files(self, fd_of_file):
        table = self.desc["file_table"]
        if not table["size"]:
            return
        fds = [-1] * table["size"]
        for index, file_id in table["slots"].items():
            fds[int(index)] = self._fd_for(file_id, fd_of_file)
        at = self.scratch.put(struct.pack(f"<{len(fds)}i", *fds))
        self._register(uring.REGISTER_FILES, at, len(fds), "registering its files")
        self.scratch.reset()
        alloc = table.get("alloc_range")
        if alloc and alloc != [0, table["size"]]:
            at = self.scratch.put(struct.pack("<IIQ", alloc[0], alloc[1], 0))
            self._register(uring.REGISTER_FILE_ALLOC_RANGE, at, 0, "its file alloc range")
            self.scratch.reset()

    def _register_buffers(self):
        buffers = self.desc["buffers"]
        if not buffers:
            return
        temporary = []
        iovecs = []
        for buf in buffers:
            if buf is None:
                iovecs.append((0, 0))
                continue
            iovecs.append((buf["addr"], buf["len"]))
            if buf.get("detached"):
                temporary.append(self._detached_buffer(buf))
        try:
            at = self.scratch.put(b"".join(struct.pack("<QQ", a, n) for a, n in iovecs))
            self._register(uring.REGISTER_BUFFERS, at, len(iovecs), "registering its buffers")
            self.scratch.reset()
        finally:
            for start, length in temporary:
                self.rem.call("munmap", start, length, check=False)

    def _detached_buffer(self, buf):
        """Pages at a buffer's address holding what it held (its memory was unmapped after
        the registration): (start, length) of the mapping to remove once registered."""
        start = buf["addr"] & ~(PAGE_SIZE - 1)
        length = _page_up(buf["addr"] + buf["len"] - start)
        got = self.rem.call("mmap", start, length, kmem.PROT_READ | kmem.PROT_WRITE,
                            kmem.MAP_PRIVATE | kmem.MAP_ANONYMOUS | kmem.MAP_FIXED_NOREPLACE,
                            -1, 0, check=False)
        if got != start:
            raise RestoreError(f"{self.what}: the address of registered buffer {buf['index']} "
                               f"({start:#x}) is taken ({_err(got)})", "state")
        offset, size = buf["data"]
        write_memory(self.live, buf["addr"], self.blob[offset:offset + size])
        return start, length

    def _register_restrictions(self):
        r = self.desc.get("restrictions")
        if not r:
            return
        entries = [struct.pack("<HBB12x", uring.RESTRICTION_REGISTER_OP, op, 0)
                   for op in _bits(r["register_op"])]
        entries += [struct.pack("<HBB12x", uring.RESTRICTION_SQE_OP, op, 0)
                    for op in _bits(r["sqe_op"])]
        entries.append(struct.pack("<HBB12x", uring.RESTRICTION_SQE_FLAGS_ALLOWED,
                                   r["sqe_flags_allowed"], 0))
        entries.append(struct.pack("<HBB12x", uring.RESTRICTION_SQE_FLAGS_REQUIRED,
                                   r["sqe_flags_required"], 0))
        at = self.scratch.put(b"".join(entries))
        self._register(uring.REGISTER_RESTRICTIONS, at, len(entries), "its restrictions")
        self.scratch.reset()

    def _register_eventfd(self, fd_of_file):
        ev = self.desc.get("eventfd")
        if not ev:
            return
        fd = self._fd_for(ev["file"], fd_of_file)
        at = self.scratch.put(struct.pack("<i", fd))
        self._register(uring.REGISTER_EVENTFD_ASYNC if ev["async"] else uring.REGISTER_EVENTFD,
                       at, 1, "its eventfd")
        self.scratch.reset()

    def _register_personalities(self):
        """Each personality under its id, registered by a thread with its credentials.  Ids
        are handed out cyclically from 1: ids freed before the dump are taken by fillers,
        unregistered at the end, so the next id is the dumped one too."""
        pers = self.desc.get("personalities") or {}
        wanted = {int(k): v for k, v in pers.get("creds", {}).items()}
        if not wanted:
            return
        fillers, by_creds = [], {}
        try:
            for pers_id in range(1, max(max(wanted), pers["next"] - 1) + 1):
                creds = wanted.get(pers_id)
                if creds is None or _same_creds(creds, self.own_creds):
                    rem = self.rem
                else:
                    key = repr(sorted(creds.items()))
                    if key not in by_creds:
                        by_creds[key] = self.helpers.with_creds(creds)
                    rem = by_creds[key]
                got = rem.call("io_uring_register", self.fd, uring.REGISTER_PERSONALITY, 0, 0,
                               check=False)
                if got != pers_id:
                    raise RestoreError(f"{self.what}: personality {pers_id} came back as "
                                       f"{_err(got)}", "state")
                if creds is None:
                    fillers.append(pers_id)
        finally:
            self.helpers.end()
        for pers_id in fillers:
            self._register(uring.UNREGISTER_PERSONALITY, 0, pers_id, "a filler personality")

    def _register_ring_fds(self, remotes):
        """Each thread's registration of the ring, under its index (while the ring is still
        disabled: any thread may then)."""
        for tid, index in self.desc.get("ring_fds", ()):
            rem = remotes[tid]
            at = self.scratch.put(bytes(uring.RsrcUpdate(offset=index, data=self.fd)))
            got = rem.call("io_uring_register", self.fd, uring.REGISTER_RING_FDS, at, 1,
                           check=False)
            self.scratch.reset()
            if got != 1:
                raise RestoreError(f"{self.what}: registering it as ring fd {index} of thread "
                                   f"{tid} failed ({_err(got)})", "state")

    def _iowq_limits(self):
        limits = self.desc.get("iowq_limits")
        if limits:
            at = self.scratch.put(struct.pack("<II", *limits))
            self._register(uring.REGISTER_IOWQ_MAX_WORKERS, at, 2, "its io-wq limits")
            self.scratch.reset()

    # positions and memory
    def _replay(self, memory, sqpoll):
        """Bring the kernel's private counters where they were at dump: NOPs (each posting
        a CQE, or with CQE_SKIP_SUCCESS none), completions without submissions (a
        multishot request's) posted from a ring of ours with MSG_RING, the overflow list's
        CQEs the same way into a ring that looks full, the requests in flight submitted
        again last.  Before each batch of completions the CQ head leaves exactly the room
        the batch fills: the kernel caches the free CQ slots it saw (cqe_cached, 5.19+),
        and a cache made from a head beyond the dumped one would let new completions
        overwrite CQEs the application has not read yet."""
        lay, pos = memory.lay, self.desc["positions"]
        carried, overflow = self.desc.get("in_flight", []), self.desc.get("overflow", [])
        # the requests in flight go last: they took SQEs too
        nops, target_cq = (pos["sq_head"] - len(carried)) & MASK, pos["cq_tail"]
        posting = min(nops, target_cq)
        # no eventfd signals for the replayed completions (the dumped flags come back with
        # the ring memory)
        memory.set_u32(lay.cq.flags, memory.u32(lay.cq.flags) | CQ_EVENTFD_DISABLED)
        done = posted = 0
        for with_cqe, count in ((True, posting), (False, nops - posting)):
            entry = sqe(OP_NOP, flags=0 if with_cqe else SQE_CQE_SKIP_SUCCESS)
            step = min(lay.sq_entries, lay.cq_entries)
            if count:               # every slot a NOP, queued in place (position % entries)
                for slot in range(lay.sq_entries):
                    memory.put_sqe(slot, slot, entry)
            left = count
            while left:
                n = min(step, left)
                if with_cqe:
                    _make_room(memory, posted, n)
                done += n
                memory.set_u32(lay.sq.tail, done)
                self._submit(memory, n, done, sqpoll)
                if with_cqe:
                    posted += n
                    self._settle(memory, posted, sqpoll)
                left -= n
        if target_cq > posting or overflow:
            posted = self._post(memory, posted, target_cq - posting, overflow)
        memory.set_u32(lay.cq.head, struct.unpack_from("<I", self.blob, lay.cq.head)[0])
        done = self._resubmit(memory, carried, done, sqpoll)
        target_sq = pos["sq_head"]
        # a request submitted again may complete at once (a timeout that expired meanwhile)
        early = (memory.u32(lay.cq.tail) - target_cq) & MASK
        if memory.u32(lay.sq.head) != target_sq & MASK or early > len(carried):
            raise RestoreError(f"{self.what}: the replay reached sq {memory.u32(lay.sq.head)} "
                               f"cq {memory.u32(lay.cq.tail)}, not {target_sq}/{target_cq}",
                               "state")

    def _post(self, memory, posted, extra, overflow):
        """``extra`` completions of nothing into the CQ ring, then the ``overflow`` CQEs
        into the kernel's overflow list (the CQ ring full), from a ring of ours."""
        lay = memory.lay
        with _Messenger(self._borrow()) as messenger:
            while extra:
                n = min(extra, messenger.entries, lay.cq_entries)
                _make_room(memory, posted, n)
                self._message(messenger, [(0, 0, 0)] * n)
                posted += n
                extra -= n
                self._settle(memory, posted, False)
            if overflow:
                memory.set_u32(lay.cq.head, posted - lay.cq_entries)
                for start in range(0, len(overflow), messenger.entries):
                    self._message(messenger, overflow[start:start + messenger.entries])
                if not memory.u32(lay.sq.flags) & SQ_CQ_OVERFLOW or \
                        memory.u32(lay.cq.tail) != posted & MASK:
                    raise RestoreError(f"{self.what}: the {len(overflow)} CQEs of its overflow "
                                       f"list did not go there", "state")
        return posted

    def _message(self, messenger, cqes):
        messenger.send(cqes)
        if self.desc["setup"]["flags"] & SETUP["DEFER_TASKRUN"]:
            # posted as task work of its submitter (always on 6.18, from another task before;
            # before 6.11 the message itself completes there too): run it there
            self.rem.call("io_uring_enter", self.fd, 0, 0, ENTER_GETEVENTS, 0, 0)
        failed = messenger.reap(len(cqes))
        if failed:
            raise RestoreError(f"{self.what}: posting {len(cqes)} CQEs with IORING_OP_MSG_RING "
                               f"failed ({_err(failed[0])})", "state")

    def _settle(self, memory, posted, sqpoll):
        """Wait until the kernel has published the CQ tail ``posted`` (an SQ thread does
        it after it moved the SQ head)."""
        deadline = time.monotonic() + 5
        while memory.u32(memory.lay.cq.tail) != posted & MASK:
            if not sqpoll or time.monotonic() > deadline:
                raise RestoreError(f"{self.what}: the replay posted up to CQ "
                                   f"{memory.u32(memory.lay.cq.tail)}, not {posted}", "state")
            time.sleep(0.0002)

    def _resubmit(self, memory, carried, done, sqpoll):
        """Submit again the requests that were in flight (io_uring_inflight)."""
        lay = memory.lay
        for start in range(0, len(carried), lay.sq_entries):
            batch = carried[start:start + lay.sq_entries]
            self.scratch.reset()
            for n, entry in enumerate(batch):
                raw = bytes.fromhex(entry["sqe"])
                if "clock" in entry:        # a timeout: its timespec in the process
                    raw = timeout_sqe(entry, self.scratch.put(timespec(entry)))
                slot = (done + n) % lay.sq_entries
                memory.sqes[slot * lay.sqe_size:slot * lay.sqe_size + 64] = raw
                if lay.has_array:
                    memory.set_u32(lay.sq.array + 4 * slot, slot)
            done += len(batch)
            memory.set_u32(lay.sq.tail, done)
            self._submit(memory, len(batch), done, sqpoll, batch)
            self.scratch.reset()
        return done

    def _submit(self, memory, n, upto, sqpoll, carried=None):
        lay = memory.lay
        if not sqpoll:
            got = self.rem.call("io_uring_enter", self.fd, n, 0, 0, 0, 0, check=False)
            if got != n:
                what = "replaying NOPs"
                if carried and 0 < got <= n:        # the request whose preparation failed
                    raw = bytes.fromhex(carried[got - 1]["sqe"])
                    user_data = struct.unpack_from('<Q', raw, 32)[0]
                    tail = memory.u32(lay.cq.tail)  # its failure is the last CQE
                    res = [res for ud, res in memory.cqes(tail - 1, tail) if ud == user_data]
                    what = (f"submitting again a {uring.opcode_name(raw[0])} request in flight "
                            f"at dump (user_data {user_data:#x}, SQE {raw.hex()}"
                            f"{f', refused: {_err(res[0])}' if res else ''})")
                raise RestoreError(f"{self.what}: {what}: io_uring_enter gave {_err(got)}, "
                                   f"not {n}", "state")
            return
        deadline = time.monotonic() + 5
        while memory.u32(lay.sq.head) != upto & 0xFFFFFFFF:
            if memory.u32(lay.sq.flags) & SQ_NEED_WAKEUP:
                self.rem.call("io_uring_enter", self.fd, 0, 0, ENTER_SQ_WAKEUP, 0, 0)
            if time.monotonic() > deadline:
                raise RestoreError(f"{self.what}: its SQ thread does not take the replayed "
                                   f"NOPs", "state")
            time.sleep(0.0002)

    def _write_back(self, memory):
        """The dumped ring memory over what the replay left, but for what the kernel owns
        now: the SQ flags (clearing NEED_WAKEUP under a sleeping SQ thread would stall the
        application), the CQ tail and the free CQ slots (a request submitted again may have
        completed already).  The SQ tail moves last, in one store: an SQ thread takes the
        SQEs queued but not entered at dump as soon as it sees them."""
        lay = memory.lay
        blob = self.blob
        rings = bytearray(blob[:lay.rings_size])
        tail = struct.unpack_from("<I", rings, lay.sq.tail)[0]
        for off in (lay.sq.tail, lay.sq.flags, lay.cq.tail):
            struct.pack_into("<I", rings, off, memory.u32(off))
        memory.sqes[:lay.sqes_size] = blob[lay.rings_size:lay.rings_size + lay.sqes_size]
        memory.rings[:lay.cq.cqes] = rings[:lay.cq.cqes]
        head, dumped_tail = (struct.unpack_from("<I", blob, off)[0]
                             for off in (lay.cq.head, lay.cq.tail))
        size, mask = lay.cqe_size, lay.cq_entries - 1
        for pos in range(head, head + ((dumped_tail - head) & 0xFFFFFFFF)):
            at = lay.cq.cqes + (pos & mask) * size
            memory.rings[at:at + size] = rings[at:at + size]
        end = lay.cq.cqes + lay.cq_entries * size
        memory.rings[end:lay.rings_size] = rings[end:]
        memory.set_u32(lay.sq.tail, tail)


class _Messenger:
    """A ring of the restorer's that posts CQEs into another ring with IORING_OP_MSG_RING
    (5.18; CQE flags other than 0 need IORING_MSG_RING_FLAGS_PASS, 6.3)."""

    entries = 64

    def __init__(self, target):
        self.target = target
        try:
            params = uring.Params()
            self.fd = uring.setup(self.entries, params)
            self.memory = RingMemory(self.fd, layout(self.entries, params.cq_entries, 0))
        except BaseException:
            os.close(target)
            raise
        self.tail = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.memory.close()
        os.close(self.fd)
        os.close(self.target)

    def send(self, cqes):
        """Submit messages posting [(user_data, res, flags)] (at most ``entries``)."""
        mem = self.memory
        for n, (user_data, res, flags) in enumerate(cqes):
            entry = sqe(OP_MSG_RING, fd=self.target, length=res & MASK, off=user_data,
                        op_flags=MSG_RING_FLAGS_PASS if flags else 0, file_index=flags)
            mem.put_sqe((self.tail + n) % self.entries, self.tail + n, entry)
        self.tail += len(cqes)
        mem.set_u32(mem.lay.sq.tail, self.tail)
        uring.enter(self.fd, len(cqes))

    def reap(self, n, timeout=5.0):
        """The errors of the ``n`` messages sent last that failed, once they completed."""
        mem, deadline = self.memory, time.monotonic() + timeout
        head = mem.u32(mem.lay.cq.head)
        while (mem.u32(mem.lay.cq.tail) - head) & MASK < n:
            if time.monotonic() > deadline:
                return [-errno.ETIMEDOUT]
            time.sleep(0.0002)
        results = mem.cqes(head, head + n)
        mem.set_u32(mem.lay.cq.head, head + n)
        return [res for _, res in results if res < 0]


def _make_room(memory, posted, n):
    """Leave exactly ``n`` free CQ slots after CQ position ``posted``."""
    memory.set_u32(memory.lay.cq.head, posted + n - memory.lay.cq_entries)


TASK_SIZE = (1 << 47) - 4096
MAP_FILLER = kmem.MAP_PRIVATE | kmem.MAP_ANONYMOUS | kmem.MAP_NORESERVE | \
    kmem.MAP_FIXED_NOREPLACE


def _mmap_min_addr():
    """The lowest address a mapping may have (vm.mmap_min_addr): the gaps to fill start
    there."""
    with open("/proc/sys/vm/mmap_min_addr") as f:
        return max(int(f.read()), PAGE_SIZE)


def _minus(span, hole):
    """The parts of range ``span`` outside range ``hole`` (non-empty ones)."""
    (lo, hi), (h_lo, h_hi) = span, hole
    parts = [(lo, min(hi, h_lo)), (max(lo, h_hi), hi)]
    return [(a, b) for a, b in parts if a < b]


def _same_creds(a, b):
    return all(a[key] == b[key] for key in ("uids", "gids", "groups", "caps", "securebits"))


def _bits(mask):
    return [bit for bit in range(mask.bit_length()) if mask >> bit & 1]
