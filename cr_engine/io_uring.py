"""io_uring rings: the dump, and the ring memory's layout (no other engine carries rings;
their restore: io_uring_restore.py).

Where each part of a ring comes from at dump:
- its setup (flags, sizes, SQPOLL idle time and CPU), the submitter thread of a
  SINGLE_ISSUER ring, restrictions, the registered eventfd, personalities and the file
  table's struct files: struct io_ring_ctx, read through kernel/kread.py (a BPF iterator)
  at the offsets of the running kernel's BTF;
- the kernel's private positions (cached_sq_head, cached_cq_tail) and sizes: the context
  too; registered buffers (address and length, also once unmapped): the ring's fdinfo;
- requests in flight: io_uring_inflight.py;
- the ring memory (so unconsumed CQEs, and SQEs submitted but not yet entered): our own
  mmap of the ring, or for an IORING_SETUP_NO_MMAP ring the process's own memory, found
  from the pages the kernel pinned (io_uring_user.py);
- fixed-file slots no fd of the tree holds (direct descriptors) and registered buffers
  whose memory is gone: taken out through the ring itself, from inside the frozen
  submitter (FIXED_FD_INSTALL, WRITE_FIXED into a memfd), after everything else is read.
  That spends the ring, so it is refused with --leave-running.

The restore brings the kernel's private counters back by replaying NOPs
(IORING_REGISTER_RESIZE_RINGS copies head and tail but not those counters:
docs/io_uring-cr-findings.md) and writes the dumped ring memory back over what that left.
"""

import functools
import mmap
import os
import struct
import time

from kernel import btf, kread
from kernel import io_uring as uring
from kernel.memory import PAGE_SIZE

from . import io_uring_user, proc
from .errors import DumpError, Unsupported
from .io_uring_inflight import QUIESCE, InFlight, sqe
from .remote import lend_fd

KIND = "io_uring"
OP_NOP, OP_WRITE_FIXED, OP_MSG_RING, OP_FIXED_FD_INSTALL = 0, 5, 40, 54
SQE_FIXED_FILE, SQE_CQE_SKIP_SUCCESS = 1 << 0, 1 << 6
ENTER_GETEVENTS, ENTER_SQ_WAKEUP = 1, 2
SQ_NEED_WAKEUP, SQ_CQ_OVERFLOW = 1, 2
MASK = 0xFFFFFFFF               # ring positions are u32 and wrap
CQ_EVENTFD_DISABLED = 1
SETUP = uring.SETUP
# flags that change where things lie in the ring memory
LAYOUT_FLAGS = SETUP["NO_SQARRAY"] | SETUP["SQE128"] | SETUP["CQE32"] | SETUP["CQE_MIXED"] | \
    SETUP["SQE_MIXED"]
# flags a restore does not pass on: sizes are exact, R_DISABLED is added and lifted by
# the restore itself, a shared io-wq is not carried (it only pools worker threads)
NOT_PASSED = SETUP["CLAMP"] | SETUP["R_DISABLED"] | SETUP["ATTACH_WQ"]
REPLAY_MAX = 1 << 26            # NOPs a restore may replay: ~10 s at this host's rate
OVERFLOW_MAX = 1 << 14          # CQEs of an overflow list carried (one kernel read each)
CHUNK_REQUESTS = 1024           # ring slots spent per injected io_uring_enter at dump
RINGFD_MAX = 16                 # IO_RINGFD_REG_MAX
FFS_MASK = 7                    # FFS_* flags in a fixed file's pointer (3 bits in 5.10's)


def summary(d):
    """One line about a ring's image, for `show`."""
    setup, pos = d["setup"], d["positions"]
    flags = [name for bit, name in enumerate(uring.SETUP_FLAGS) if setup["flags"] >> bit & 1]
    extra = [f"{what} {n}" for what, n in (
        ("files", len(d["file_table"].get("slots", {}))),
        ("buffers", sum(1 for b in d["buffers"] if b)),
        ("personalities", len(d["personalities"]["creds"])),
        ("in flight", len(d.get("in_flight", ())))) if n]
    return (f"ring sq {setup['sq_entries']} cq {setup['cq_entries']} "
            f"{'|'.join(flags) or 'no flags'} at sq {pos['sq_head']} cq {pos['cq_tail']}"
            + "".join(f", {e}" for e in extra))


# --- the ring's memory ------------------------------------------------------------------------
class Layout:
    """Offsets and sizes of a ring's memory, learnt from a ring of the same sizes and
    layout flags made here."""

    def __init__(self, sq_entries, cq_entries, flags):
        params = uring.Params(flags=(flags & LAYOUT_FLAGS) | SETUP["CQSIZE"],
                              cq_entries=cq_entries)
        os.close(uring.setup(sq_entries, params))
        self.sq, self.cq = params.sq_off, params.cq_off
        self.sq_entries, self.cq_entries = sq_entries, cq_entries
        self.sqe_size = 128 if flags & SETUP["SQE128"] else 64
        self.cqe_size = 32 if flags & SETUP["CQE32"] else 16
        self.has_array = not flags & SETUP["NO_SQARRAY"]
        rings = self.cq.cqes + cq_entries * self.cqe_size
        if self.has_array:
            rings = max(rings, self.sq.array + 4 * sq_entries)
        self.rings_size = _page_up(rings)
        self.sqes_size = _page_up(sq_entries * self.sqe_size)


@functools.lru_cache(maxsize=None)
def layout(sq_entries, cq_entries, flags):
    return Layout(sq_entries, cq_entries, flags & LAYOUT_FLAGS)


def _page_up(n):
    return -(-n // PAGE_SIZE) * PAGE_SIZE


class RingMemory:
    """A ring's memory mapped here (through any fd of the ring): its rings and SQEs."""

    def __init__(self, fd, lay):
        self.lay = lay
        self.rings = mmap.mmap(fd, lay.rings_size, mmap.MAP_SHARED,
                               mmap.PROT_READ | mmap.PROT_WRITE, offset=uring.OFF_SQ_RING)
        try:
            self.sqes = mmap.mmap(fd, lay.sqes_size, mmap.MAP_SHARED,
                                  mmap.PROT_READ | mmap.PROT_WRITE, offset=uring.OFF_SQES)
        except BaseException:
            self.rings.close()
            raise
        # the counters as 4-byte words, each read and written in one access: an SQ thread
        # reads them while we write (struct packs byte by byte: a tail going from 0x1ff to
        # 0x200 is 0x100 for a moment, and the thread then runs away with the ring)
        self.words = memoryview(self.rings).cast("I")

    def close(self):
        self.words.release()
        self.rings.close()
        self.sqes.close()

    def u32(self, off):
        return self.words[off >> 2]

    def set_u32(self, off, value):
        self.words[off >> 2] = value & 0xFFFFFFFF

    def put_sqe(self, slot, position, sqe):
        """SQE bytes into SQE ``slot``, queued at SQ ``position``."""
        size = self.lay.sqe_size
        self.sqes[slot * size:slot * size + len(sqe)] = sqe
        if self.lay.has_array:
            self.set_u32(self.lay.sq.array + 4 * (position % self.lay.sq_entries), slot)

    def cqes(self, head, tail):
        size, mask = self.lay.cqe_size, self.lay.cq_entries - 1
        at = self.lay.cq.cqes
        out = []
        for pos in range(head, tail):
            slot = at + (pos & mask) * size
            out.append(struct.unpack("<Qi", self.rings[slot:slot + 12]))
        return out


class UserRingMemory(RingMemory):
    """The memory of an IORING_SETUP_NO_MMAP ring, which no fd maps: the process's own at
    ``addrs`` ({"rings": ..., "sqes": ...}, io_uring_user.addresses), read and written in
    place through /proc/PID/mem."""

    def __init__(self, pid, addrs, lay):
        self.lay = lay
        self.rings = io_uring_user.ProcessMemory(pid, addrs["rings"], lay.rings_size)
        try:
            self.sqes = io_uring_user.ProcessMemory(pid, addrs["sqes"], lay.sqes_size)
        except BaseException:
            self.rings.close()
            raise
        self.words = self.rings.words()


# --- dump -------------------------------------------------------------------------------------
class _Ctx:
    """Fields of struct io_ring_ctx (and what hangs off it) by name, at this kernel's
    offsets; a field this kernel lacks reads as None."""

    def __init__(self, types):
        self.types = types
        self.size = types.size(types.find("io_ring_ctx", btf.KIND_STRUCT))
        self.fields = {}

    def field(self, struct_name, path):
        key = (struct_name, path)
        if key not in self.fields:
            try:
                self.fields[key] = self.types.field(struct_name, path)
            except KeyError:
                self.fields[key] = None
        return self.fields[key]

    def get(self, data, path, struct_name="io_ring_ctx"):
        f = self.field(struct_name, path)
        return None if f is None else f.value(data)


class RingDump:
    """The rings of a dump: FileTable.kinds["io_uring"]."""

    def __init__(self):
        self.reader = None
        self.ctx = None
        self.hz = None
        self.rings = []             # per ring: pid, fd, dup, memory, desc, ctx, ctx_data, ...
        self.files_of = {}          # pid -> {fd: (struct file, private_data)}
        self.tasks_of = {}          # pid -> {tid: its registered ring table (addresses)}
        self.eventfd_ops = None     # the kernel's eventfd_fops (_eventfd_slots)

    # the kernel reader, loaded once per dump
    def _reader(self, what):
        if self.reader is None:
            try:
                self.reader = kread.KernelReader()
                self.ctx = _Ctx(btf.BTF.vmlinux())
            except (kread.Unavailable, OSError) as e:
                raise Unsupported(f"unsupported: io_uring ring ({what}): its setup, submitter "
                                  f"and registered files are read through a BPF task_file "
                                  f"iterator, which this kernel refuses ({e.strerror})") from None
        return self.reader

    def fds(self, pid):
        """{fd: (struct file, private_data)} of process ``pid``, read once per dump."""
        if pid not in self.files_of:
            self.files_of[pid] = self.reader.files(pid)
        return self.files_of[pid]

    def describe(self, table, pid, fd, info, flags, what):
        reader = self._reader(what)
        _, ctx_addr = self.fds(pid)[fd]
        data = reader.read_one(ctx_addr, self.ctx.size)
        if data is None:
            raise DumpError(f"cannot read the io_uring context of {what}")
        c = self.ctx
        setup_flags = c.get(data, "flags")
        # a NO_MMAP ring's memory is the process's own: where it lies (io_uring_user)
        user_addr = io_uring_user.addresses(reader, c.types, data, pid, layout(
            c.get(data, "sq_entries"), c.get(data, "cq_entries"), setup_flags), what) \
            if setup_flags & SETUP["NO_MMAP"] else None
        desc = {"type": KIND, "flags": flags,
                "setup": {"flags": setup_flags, "sq_entries": c.get(data, "sq_entries"),
                          "cq_entries": c.get(data, "cq_entries")}}
        reads = {}
        for name in ("submitter_task", "sq_data", "io_ev_fd", "cq_ev_fd"):
            addr = c.get(data, name)
            if addr:
                reads[name] = addr
        if reads:
            self._kernel_objects(desc, reads, data)
        for path, what_it_is in (("io_bl_xa.xa_head", "provided buffers (groups or rings)"),
                                 ("zcrx_ctxs.xa_head", "zero-copy receive queues"),
                                 ("cq_wait_arg", "a registered wait region")):
            if c.get(data, path):
                raise Unsupported(f"unsupported: io_uring ring ({what}) with {what_it_is}: "
                                  f"not carried yet")
        desc["restrictions"] = self._restrictions(data)
        desc["personalities"], creds = self._personalities(data, what)
        cqe_size = 32 if setup_flags & SETUP["CQE32"] else 16
        deadline = time.monotonic() + QUIESCE
        while True:
            in_flight = InFlight(self, ctx_addr, data, what)
            desc["in_flight"] = in_flight.collect(lambda: reader.read_one(ctx_addr, c.size),
                                                  creds, pid)
            data = in_flight.data   # the context once quiesced, which the requests are of
            # the kernel's own counters: where the next SQE is taken, the next CQE goes
            desc["positions"] = {"sq_head": c.get(data, "cached_sq_head"),
                                 "cq_tail": c.get(data, "cached_cq_tail")}
            desc["overflow"] = self._overflow(ctx_addr, data, cqe_size, what)
            # a request between two places (an io-wq worker arming its poll) is seen in
            # none: wait for it as for the requests in flight
            if self._unseen(desc, data) <= 0 or time.monotonic() > deadline:
                break
            time.sleep(0.01)
            data = reader.read_one(ctx_addr, c.size)
        self._check_replay(desc, data, what)
        steps = max(desc["positions"]["sq_head"], desc["positions"]["cq_tail"])
        if steps > REPLAY_MAX:
            raise Unsupported(f"unsupported: io_uring ring ({what}) {steps} submissions from "
                              f"its start: replaying its positions would take too long "
                              f"(limit {REPLAY_MAX})")
        desc["iowq_limits"] = _iowq_limits(c, data)
        start, end = c.get(data, "file_alloc_start"), c.get(data, "file_alloc_end")
        desc["file_table"] = {"size": int(info.get("UserFiles", "0").split()[0] or 0),
                              "alloc_range": [start, end - start] if end else None}
        desc["buffers"] = _buffers(info)
        lay = layout(desc["setup"]["sq_entries"], desc["setup"]["cq_entries"], setup_flags)
        dup = table.dup(pid, fd)
        try:
            memory = UserRingMemory(pid, user_addr, lay) if user_addr else RingMemory(dup, lay)
        except OSError as e:
            os.close(dup)
            raise DumpError(f"cannot map the io_uring ring of {what}: {e.strerror}") from None
        payload = bytes(memory.rings) + bytes(memory.sqes)
        desc["memory"] = {"rings": lay.rings_size, "sqes": lay.sqes_size}
        if user_addr:
            desc["user_addr"] = user_addr
        desc["payload"] = payload
        self.rings.append({"pid": pid, "fd": fd, "dup": dup, "memory": memory, "desc": desc,
                           "ctx": ctx_addr, "ctx_data": data, "what": what,
                           "ino": os.fstat(dup).st_ino})
        return desc

    def mapped(self, table, inode, pid, vma):
        """Ids of the described rings whose memory is inode ``inode``, mapped at ``vma`` of
        ``pid``.  Where every anon-inode file shares one inode (5.10), the struct file the
        mapping holds tells which ring it is."""
        rings = {table.fd_files[ring["pid"], ring["fd"]]: ring for ring in self.rings
                 if ring["ino"] == inode}
        if len(rings) > 1:
            held = self._mapped_file(pid, vma.start)
            rings = {file_id: ring for file_id, ring in rings.items()
                     if self.fds(ring["pid"])[ring["fd"]][0] == held}
        return sorted(rings)

    def _mapped_file(self, pid, start):
        """The struct file of the mapping at ``start`` of ``pid``, from the process's list
        of VMAs (mm->mmap, before 6.1; None on later kernels)."""
        c, read = self.ctx, self.reader.read_one
        vm_start, vm_next, vm_file = (c.field("vm_area_struct", name)
                                      for name in ("vm_start", "vm_next", "vm_file"))
        mmap_list = c.field("mm_struct", "mmap")
        if vm_next is None or mmap_list is None:
            return None
        task = self.reader.tasks(pid)[pid]
        mm = struct.unpack("<Q", read(task + c.field("task_struct", "mm").offset, 8))[0]
        vma = struct.unpack("<Q", read(mm + mmap_list.offset, 8))[0]
        size = max(vm_start.offset, vm_next.offset, vm_file.offset) + 8
        while vma:                          # in address order
            blob = read(vma, size)
            if vm_start.value(blob) >= start:
                return vm_file.value(blob) if vm_start.value(blob) == start else None
            vma = vm_next.value(blob)
        return None

    def _kernel_objects(self, desc, reads, ctx_data):
        c, reader = self.ctx, self.reader
        task_pid = c.field("task_struct", "pid")
        sqd = c.field("io_sq_data", "sq_thread_idle")
        evf = c.field("io_ev_fd", "cq_ev_fd")
        asks = []
        if "submitter_task" in reads:
            asks.append((reads["submitter_task"] + task_pid.offset, 4))
        if "sq_data" in reads:
            asks.append((reads["sq_data"], c.types.size(c.types.find("io_sq_data",
                                                                     btf.KIND_STRUCT))))
        if "io_ev_fd" in reads:
            asks.append((reads["io_ev_fd"], c.types.size(c.types.find("io_ev_fd",
                                                                      btf.KIND_STRUCT))))
        got = iter(reader.read(asks))
        if "submitter_task" in reads:
            desc["submitter"] = struct.unpack("<i", next(got))[0]
        if "sq_data" in reads:
            blob = next(got)
            desc["setup"]["sq_thread_idle"] = sqd.value(blob) * 1000 // self._hz()
            desc["setup"]["sq_thread_cpu"] = struct.unpack(
                "<i", struct.pack("<I", c.get(blob, "sq_cpu", "io_sq_data")))[0]
        if "io_ev_fd" in reads:
            blob = next(got)
            desc["eventfd"] = {"ctx": evf.value(blob),
                               "async": bool(c.get(blob, "eventfd_async", "io_ev_fd"))}
        elif "cq_ev_fd" in reads:           # before 5.16: in the context itself
            desc["eventfd"] = {"ctx": reads["cq_ev_fd"],
                               "async": bool(c.get(ctx_data, "eventfd_async"))}

    def _overflow(self, ctx_addr, data, cqe_size, what):
        """The CQEs waiting in the kernel's overflow list (posted while the CQ ring was
        full), oldest first: [[user_data, res, flags], ...]."""
        c = self.ctx
        head = c.field("io_ring_ctx", "cq_overflow_list.next")
        if head is None or head.value(data) == ctx_addr + head.offset:
            return []
        if c.field("io_overflow_cqe", "cqe") is None:       # 5.10: requests, not CQEs
            raise Unsupported(f"unsupported: io_uring ring ({what}) with completions in its "
                              f"overflow list: this kernel keeps requests there, not CQEs")
        at_cqe = c.field("io_overflow_cqe", "cqe").offset
        out, entry = [], head.value(data)
        while entry != ctx_addr + head.offset:
            if len(out) == OVERFLOW_MAX:
                raise Unsupported(f"unsupported: io_uring ring ({what}) with more than "
                                  f"{OVERFLOW_MAX} completions in its overflow list")
            blob = self.reader.read_one(entry, at_cqe + cqe_size)
            if blob is None:
                raise DumpError(f"cannot read the overflow list of the io_uring ring of {what}")
            user_data, res, flags = struct.unpack_from("<QiI", blob, at_cqe)
            if any(blob[at_cqe + 16:]):
                raise Unsupported(f"unsupported: io_uring ring ({what}) with a 32-byte CQE "
                                  f"(user_data {user_data:#x}) in its overflow list: its "
                                  f"second half cannot be posted again")
            out.append([user_data, res, flags])
            entry = struct.unpack_from("<Q", blob, 0)[0]    # list.next comes first
        return out

    def _unseen(self, desc, data):
        """Submissions with neither a completion (in the ring or its overflow list) nor a
        request in flight; negative: completions without submissions.  ``data`` given: 0
        where the ring skips completions (``drain_disabled``: a CQE_SKIP_SUCCESS was
        submitted, or a dropped CQE counted on its own), where those are expected."""
        pos = desc["positions"]
        nops = (pos["sq_head"] - len(desc["in_flight"])) & MASK
        ahead = nops - pos["cq_tail"] - len(desc["overflow"])
        if data is not None and ahead > 0 and self.ctx.get(data, "drain_disabled") != 0:
            return 0
        return ahead

    def _check_replay(self, desc, data, what):
        """Can a restore bring the kernel's counters back?  NOPs give as many completions
        as submissions; NOPs with IOSQE_CQE_SKIP_SUCCESS (5.17) submissions alone, and
        IORING_OP_MSG_RING from a ring of the restorer's (5.18) completions alone (a
        multishot request's, another ring's messages) and the overflow list's CQEs."""
        ahead = self._unseen(desc, None)
        if ahead > 0 and not _kernel()[1] & uring.FEAT["CQE_SKIP"]:
            raise Unsupported(f"unsupported: io_uring ring ({what}) whose SQ is {ahead} "
                              f"entries ahead of its CQ: that is replayed with "
                              f"IOSQE_CQE_SKIP_SUCCESS, which this kernel lacks")
        if self._unseen(desc, data) > 0:
            raise Unsupported(f"unsupported: io_uring ring ({what}) with {ahead} submissions "
                              f"neither completed nor seen in flight (a request between two "
                              f"queues, or completions the kernel dropped)")
        if (ahead < 0 or desc["overflow"]) and \
                OP_MSG_RING not in _supported_ops():
            raise Unsupported(f"unsupported: io_uring ring ({what}) with more completions "
                              f"than submissions or an overflow list: they are posted again "
                              f"with IORING_OP_MSG_RING, which this kernel lacks")

    def _hz(self):
        """The kernel's tick rate (an SQPOLL ring keeps its idle time in jiffies): what a
        ring of ours set up with a 1000 ms idle time keeps."""
        if self.hz is None:
            fd = uring.setup(1, uring.Params(flags=SETUP["SQPOLL"], sq_thread_idle=1000))
            try:
                ctx_addr = self.reader.files(os.getpid())[fd][1]
                sqd = self.reader.read_one(ctx_addr, self.ctx.size)
                sq_data = self.ctx.get(sqd, "sq_data")
                f = self.ctx.field("io_sq_data", "sq_thread_idle")
                self.hz = f.value(self.reader.read_one(sq_data + f.offset, 4), -f.offset)
            finally:
                os.close(fd)
        return self.hz

    def _restrictions(self, data):
        c = self.ctx
        if not c.get(data, "restrictions.registered"):
            return None
        return {"register_op": c.get(data, "restrictions.register_op"),
                "sqe_op": c.get(data, "restrictions.sqe_op"),
                "sqe_flags_allowed": c.get(data, "restrictions.sqe_flags_allowed"),
                "sqe_flags_required": c.get(data, "restrictions.sqe_flags_required")}

    def _personalities(self, data, what):
        """{id: credentials} of the registered personalities and the next id the kernel
        hands out (ids are given cyclically from it); and {id: struct cred address}."""
        c = self.ctx
        head = c.get(data, "personalities.xa_head")
        out = {"next": c.get(data, "pers_next") or 0, "creds": {}}
        if not head:
            return out, {}
        slots = self._xa_entries(head, what)
        creds = self.reader.read([(addr, c.types.size(c.types.find("cred", btf.KIND_STRUCT)))
                                  for addr in slots.values()])
        for (index, _), blob in zip(slots.items(), creds):
            out["creds"][str(index)] = self._cred(blob, what)
        return out, slots

    def _xa_entries(self, head, what):
        """{index: entry} of an xarray of up to 64 entries (one node, or none)."""
        if head & 3 != 2 or head < 4096:
            return {0: head}
        node = head - 2
        c = self.ctx
        slots = c.field("xa_node", "slots")
        shift = c.field("xa_node", "shift")
        blob = self.reader.read_one(node, slots.offset + 64 * 8)
        if shift.value(blob) != 0:
            raise Unsupported(f"unsupported: io_uring ring ({what}) with personalities beyond "
                              f"id 63")
        out = {}
        for i in range(64):
            entry = struct.unpack_from("<Q", blob, slots.offset + 8 * i)[0]
            if entry and entry & 3 == 0:
                out[i] = entry
        return out

    def _cred(self, blob, what):
        c = self.ctx
        ids = [c.get(blob, name, "cred") for name in
               ("uid", "euid", "suid", "fsuid", "gid", "egid", "sgid", "fsgid")]
        caps = {key: c.get(blob, name, "cred") for key, name in
                (("Inh", "cap_inheritable"), ("Prm", "cap_permitted"),
                 ("Eff", "cap_effective"), ("Bnd", "cap_bset"), ("Amb", "cap_ambient"))}
        groups = []
        info_addr = c.get(blob, "group_info", "cred")
        if info_addr:
            ngroups = c.field("group_info", "ngroups")
            gid = c.field("group_info", "gid")
            head = self.reader.read_one(info_addr, gid.offset)
            count = ngroups.value(head)
            if count:
                raw = self.reader.read_one(info_addr + gid.offset, 4 * count)
                groups = list(struct.unpack(f"<{count}I", raw))
        return {"uids": ids[:4], "gids": ids[4:], "groups": groups, "caps": caps,
                "securebits": c.get(blob, "securebits", "cred")}

    def finish(self, table):
        """Once every fd of the tree is seen: which description each fixed-file slot and the
        registered eventfd are; what only the ring holds is taken out through it."""
        if not self.rings:
            return
        by_file = {}
        for (pid, fd), file_id in table.fd_files.items():
            if pid in table.injected or pid in self.files_of:
                file_addr, private = self.fds(pid).get(fd, (None, None))
                if file_addr:
                    by_file.setdefault(file_addr, file_id)
                    by_file.setdefault(("private", private), file_id)
        out = []                    # (ring, loose slots, detached buffers)
        for ring in self.rings:
            desc = ring["desc"]
            ring["id"] = table.fd_files[ring["pid"], ring["fd"]]
            holders = sorted({pid for (pid, _), file_id in table.fd_files.items()
                              if file_id == ring["id"]})
            if holders != [ring["pid"]]:
                raise Unsupported(f"unsupported: io_uring ring ({ring['what']}) shared by "
                                  f"processes {', '.join(map(str, holders))}")
            slots = self._slot_files(ring)
            desc["file_table"]["slots"] = {}
            loose = {}
            for index, addr in slots.items():
                if addr in by_file:
                    desc["file_table"]["slots"][str(index)] = by_file[addr]
                else:
                    loose[index] = addr
            desc["ring_fds"] = self._ring_fds(ring)
            mapped = [(m.start, m.end) for m in proc.maps(ring["pid"])]
            detached = [b for b in desc["buffers"] if b and not _covered(mapped, b)]
            for b in detached:
                b["detached"] = True
            if loose or detached:
                if table.leave_running:
                    raise Unsupported(
                        f"unsupported with --leave-running: io_uring ring ({ring['what']}) "
                        f"holding files or buffers no fd or mapping of the tree holds: taking "
                        f"them out through the ring spends it")
                if OP_FIXED_FD_INSTALL not in _supported_ops():
                    self._eventfd_slots(table, ring, loose, by_file)
                _check_take_out(ring, loose, detached)
            out.append((ring, loose, detached))
        # nothing is submitted before every ring is known to allow it: that spends them
        for ring, loose, detached in out:
            if loose or detached:
                self._take_out(table, ring, loose, detached)
                # what only the ring held is now known too (an eventfd may be among it)
                private = self.ctx.field("file", "private_data").offset
                privates = self.reader.read([(addr + private, 8) for addr in loose.values()])
                for (index, addr), raw in zip(loose.items(), privates):
                    file_id = ring["desc"]["file_table"]["slots"][str(index)]
                    by_file[addr] = file_id
                    by_file[("private", struct.unpack("<Q", raw)[0])] = file_id
        for ring, _, _ in out:
            ev = ring["desc"].get("eventfd")
            if ev:
                ctx_addr = ev.pop("ctx")
                ev["file"] = by_file.get(("private", ctx_addr)) or \
                    table.add_description(self._eventfd(ctx_addr, ring["what"]))

    def _ring_fds(self, ring):
        """[[tid, index]]: the threads that registered the ring (IORING_REGISTER_RING_FDS),
        each under its index (a per-thread table of the task's io_uring context)."""
        c, pid = self.ctx, ring["pid"]
        rings = c.field("io_uring_task", "registered_rings")
        if rings is None:               # no IORING_REGISTER_RING_FDS (5.18) on this kernel
            return []
        if pid not in self.tasks_of:
            tasks = self.reader.tasks(pid)
            ctx_field = c.field("task_struct", "io_uring")
            tctxs = self.reader.read([(task + ctx_field.offset, 8) for task in tasks.values()])
            tctxs = {tid: struct.unpack("<Q", raw)[0] for tid, raw in zip(tasks, tctxs)}
            held = [(tid, t) for tid, t in tctxs.items() if t]
            tables = self.reader.read([(t + rings.offset, 8 * RINGFD_MAX) for _, t in held])
            self.tasks_of[pid] = {tid: struct.unpack(f"<{RINGFD_MAX}Q", raw)
                                  for (tid, _), raw in zip(held, tables)}
        mine = self.fds(pid)[ring["fd"]][0]
        return [[tid, index] for tid, table in sorted(self.tasks_of[pid].items())
                for index, addr in enumerate(table) if addr == mine]

    def _eventfd_slots(self, table, ring, loose, by_file):
        """Without FIXED_FD_INSTALL (before 6.8): the eventfds among the ``loose`` slots
        (files whose f_op is an eventfd's) are made again from their count instead, and
        leave ``loose``."""
        c, read = self.ctx, self.reader.read_one
        f_op, private = c.field("file", "f_op"), c.field("file", "private_data")
        if self.eventfd_ops is None:
            fd = os.eventfd(0)
            try:
                mine = self.reader.files(os.getpid())[fd][0]
                self.eventfd_ops = f_op.value(read(mine + f_op.offset, 8), -f_op.offset)
            finally:
                os.close(fd)
        size = max(f_op.offset, private.offset) + 8
        for index, addr in sorted(loose.items()):
            blob = read(addr, size)
            if f_op.value(blob) == self.eventfd_ops:
                file_id = table.add_description(self._eventfd(private.value(blob),
                                                              ring["what"]))
                ring["desc"]["file_table"]["slots"][str(index)] = file_id
                by_file[addr] = by_file[("private", private.value(blob))] = file_id
                del loose[index]

    def _eventfd(self, addr, what):
        """The image of an eventfd no fd of the tree holds (its count, from the kernel's
        struct eventfd_ctx)."""
        c = self.ctx
        blob = self.reader.read_one(addr, c.types.size(c.types.find("eventfd_ctx",
                                                                   btf.KIND_STRUCT)))
        if blob is None:
            raise DumpError(f"cannot read an eventfd of {what}")
        flags = c.get(blob, "flags", "eventfd_ctx")
        return {"type": "eventfd", "flags": os.O_RDWR | (flags & os.O_NONBLOCK),
                "count": c.get(blob, "count", "eventfd_ctx"), "semaphore": bool(flags & 1)}

    def _slot_files(self, ring):
        """{slot: struct file address} of the ring's fixed-file table: an array of
        resource nodes pointing to the files (6.13+), or of the files' tagged pointers
        themselves (struct io_fixed_file, 5.15 to 6.12)."""
        c, data = self.ctx, ring["ctx_data"]
        nodes = c.get(data, "file_table.data.nodes")
        if nodes is not None:
            count = c.get(data, "file_table.data.nr")
        else:
            nodes, count = c.get(data, "file_table.files"), c.get(data, "nr_user_files")
            if nodes is None:
                raise Unsupported(f"unsupported: io_uring ring ({ring['what']}): this "
                                  f"kernel's fixed-file table (before 5.15) is not known")
        if not count:
            return {}
        addrs = struct.unpack(f"<{count}Q", self.reader.read_one(nodes, 8 * count))
        used = [(i, a) for i, a in enumerate(addrs) if a]
        ptr = c.field("io_rsrc_node", "file_ptr")
        if ptr is None or c.field("io_ring_ctx", "file_table.data.nodes") is None:
            return {i: a & ~FFS_MASK for i, a in used}
        blobs = self.reader.read([(a + ptr.offset, 8) for _, a in used])
        return {i: struct.unpack("<Q", b)[0] & ~FFS_MASK for (i, _), b in zip(used, blobs)}

    def _take_out(self, table, ring, loose, detached):
        """Install the slots' files as fds of the (frozen) process, copy detached buffers into
        a memfd, through the ring from inside its submitter thread; the ring is spent."""
        pid, desc = ring["pid"], ring["desc"]
        state = table.injected[pid]
        rem = state.remotes.get(desc.get("submitter")) or state.main
        memory = ring["memory"]
        lay = memory.lay
        requests = [("slot", index) for index in sorted(loose)] + \
            [("buffer", b["index"]) for b in detached]
        sink = None
        sink_fd = None
        if detached:
            sink = os.memfd_create("cr-io_uring-buffers", os.MFD_CLOEXEC)
            sink_fd = lend_fd(rem, state.scratch, sink)
        results = {}
        offsets, at = {}, 0
        for b in detached:
            offsets[b["index"]] = at
            at += b["len"]
        head = desc["positions"]["sq_head"]
        try:
            for start in range(0, len(requests), min(CHUNK_REQUESTS, lay.sq_entries)):
                batch = requests[start:start + min(CHUNK_REQUESTS, lay.sq_entries)]
                cq_tail = memory.u32(lay.cq.tail)
                memory.set_u32(lay.cq.head, cq_tail)        # room (the CQEs are saved)
                for n, (kind, index) in enumerate(batch):
                    if kind == "slot":
                        entry = sqe(OP_FIXED_FD_INSTALL, fd=index, flags=SQE_FIXED_FILE,
                                    user_data=n)
                    else:
                        buf = desc["buffers"][index]
                        entry = sqe(OP_WRITE_FIXED, fd=sink_fd, addr=buf["addr"],
                                    length=buf["len"], off=offsets[index], user_data=n,
                                    buf_index=index)
                    memory.put_sqe(n, head + n, entry)
                head += len(batch)
                memory.set_u32(lay.sq.tail, head)
                got = rem.call("io_uring_enter", ring["fd"], len(batch), len(batch),
                               ENTER_GETEVENTS, 0, 0, check=False)
                if got != len(batch):
                    raise DumpError(f"io_uring ring ({ring['what']}): taking its files and "
                                    f"buffers out failed ({_err(got)})")
                for user_data, res in memory.cqes(cq_tail, memory.u32(lay.cq.tail)):
                    results[batch[user_data]] = res
        finally:
            if sink_fd is not None:
                rem.call("close", sink_fd, check=False)
        for (kind, index), res in results.items():
            if res < 0:
                raise DumpError(f"io_uring ring ({ring['what']}): {kind} {index} could not be "
                                f"taken out ({os.strerror(-res)})")
        for index in loose:
            fd = results[("slot", index)]
            desc["file_table"]["slots"][str(index)] = table.describe_extra(pid, fd)
        if detached:
            data = os.pread(sink, at, 0)
            os.close(sink)
            stored = table.payloads[ring["id"]]
            for b in detached:
                b["data"] = [len(stored) + offsets[b["index"]], b["len"]]
            table.payloads[ring["id"]] = stored + data

    def close(self, final):
        for ring in self.rings:
            ring["memory"].close()
            os.close(ring["dup"])
        self.rings = []
        if self.reader is not None:
            self.reader.close()
            self.reader = None


def _check_take_out(ring, loose, detached):
    """Unsupported, before anything is submitted, if what only the ring holds cannot be
    taken out through it: the opcodes this kernel has (IORING_REGISTER_PROBE), the ring's
    restrictions, a ring not enabled yet.  A batch stops at its first failing SQE, and
    what went before it has spent the ring."""
    desc, what = ring["desc"], ring["what"]
    steps = []                  # (opcode, its SQE flags, what it takes out)
    if loose:
        steps.append((OP_FIXED_FD_INSTALL, SQE_FIXED_FILE,
                      f"fixed-file slot{'s' if len(loose) > 1 else ''} "
                      f"{', '.join(map(str, sorted(loose)))} (files no fd of the tree holds)"))
    if detached:
        steps.append((OP_WRITE_FIXED, 0,
                      f"registered buffer{'s' if len(detached) > 1 else ''} "
                      f"{', '.join(str(b['index']) for b in detached)} (unmapped memory)"))
    r = desc.get("restrictions")
    for op, flags, held in steps:
        name = f"IORING_OP_{uring.opcode_name(op)}"
        why = None
        if op not in _supported_ops():
            why = "which this kernel lacks" + (" (6.8+)" if op == OP_FIXED_FD_INSTALL else "")
        elif desc["setup"]["flags"] & SETUP["R_DISABLED"]:
            why = "which a ring not enabled yet (IORING_SETUP_R_DISABLED) refuses"
        elif r and (not (r["sqe_op"] >> op) & 1 or
                    (flags & r["sqe_flags_required"]) != r["sqe_flags_required"] or
                    flags & ~(r["sqe_flags_allowed"] | r["sqe_flags_required"])):
            why = "which the ring's restrictions forbid"
        if why:
            raise Unsupported(f"unsupported: io_uring ring ({what}) holding {held}: taking "
                              f"them out needs {name} on the ring, {why}")


@functools.lru_cache(maxsize=None)
def _kernel():
    """(its opcodes, its IORING_FEAT_* bits): what this kernel's io_uring has, from a ring
    of ours (nothing if it says nothing)."""
    params = uring.Params()
    try:
        fd = uring.setup(1, params)
    except OSError:
        return frozenset(), 0
    try:
        return frozenset(uring.probe(fd)[1]), params.features
    except OSError:
        return frozenset(), params.features
    finally:
        os.close(fd)


def _supported_ops():
    return _kernel()[0]


def _covered(mapped, buf):
    """Is every byte of registered buffer ``buf`` in one of the ``mapped`` ranges?"""
    at, end = buf["addr"], buf["addr"] + buf["len"]
    for start, stop in sorted(mapped):
        if start <= at < stop:
            at = stop
        if at >= end:
            return True
    return at >= end


def _buffers(info):
    """[{index, addr, len} or None (an empty slot)] from fdinfo's UserBufs."""
    lines = info.get("UserBufs", "").split("\n")
    count = int(lines[0].split()[0]) if lines and lines[0].strip() else 0
    out = [None] * count
    for line in lines[1:]:
        index, _, rest = line.partition(":")
        rest = rest.strip()
        if "/" in rest:
            addr, length = rest.split("/")
            out[int(index)] = {"index": int(index), "addr": int(addr, 16), "len": int(length)}
    return out


def _iowq_limits(c, data):
    f = c.field("io_ring_ctx", "iowq_limits")
    if f is None:
        return None
    limits = list(struct.unpack_from("<II", data, f.offset))
    return limits if any(limits) else None


def _err(result):
    return os.strerror(-result) if result < 0 else f"{result}"
