"""io_uring requests in flight at dump: read from the kernel, submitted again at restore.

A request waiting for its file to become ready (an armed poll: POLL_ADD, and READ, RECV,
RECVMSG, ACCEPT on a pipe or socket that had nothing to give) and a pure timeout are safe to
submit again: nothing of them has happened yet.  They are read from struct io_kiocb (the
poll hash table, the timeout list; kernel/kread.py) and turned back into the SQE that would
make them again; the restore submits them as the ring's last SQEs, so the kernel's counters
still end where they were.  Anything else in flight - linked requests, multishot timeouts,
count-based timeouts, requests running in io-wq workers, IOPOLL, deferred (drained)
requests - makes the dump wait a little (QUIESCE) and then fail, naming it.
"""

import os
import struct
import time

from kernel import btf
from kernel import io_uring as uring

from .errors import Unsupported

QUIESCE = 1.0                   # seconds a dump waits for what cannot be carried to end
# lists of struct io_ring_ctx that hold requests no restore can make again (the overflow
# list holds requests before 5.19, CQEs since: RingDump._overflow)
_BUSY_LISTS = ("ltimeout_list", "cq_overflow_list", "defer_list")
_BUSY_NAMES = {"iopoll_list": "IOPOLL requests"}
# the function an idle io-wq worker waits in (io_wqe_worker before 6.4)
IDLE_WORKER = ("io_wq_worker", "io_wqe_worker", "0")
OP = {name: uring.OPCODES.index(name) for name in
      ("READV", "READ_FIXED", "POLL_ADD", "RECVMSG", "TIMEOUT", "ACCEPT", "READ", "RECV")}
SQE_FLAG_BITS = 0x7F            # REQ_F_* bits 0-6 are the SQE's IOSQE_* flags
SQE_FIXED_FILE, SQE_LINKED, SQE_BUFFER_SELECT = 1 << 0, (1 << 2) | (1 << 3), 1 << 5
EPOLLET, EPOLLONESHOT = 1 << 31, 1 << 30
POLL_ADD_MULTI, POLL_ADD_LEVEL = 1 << 0, 1 << 3
TIMEOUT_ABS, TIMEOUT_BOOTTIME, TIMEOUT_REALTIME, TIMEOUT_MULTISHOT = 1, 1 << 2, 1 << 3, 1 << 6
CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME = 1, 0, 7


def sqe(opcode, fd=0, addr=0, length=0, off=0, user_data=0, flags=0, op_flags=0,
        buf_index=0, ioprio=0, personality=0, file_index=0):
    """A 64-byte SQE."""
    return struct.pack("<BBHiQQIIQHHI16x", opcode, flags, ioprio, fd, off, addr, length,
                       op_flags, user_data, buf_index, personality, file_index)


class InFlight:
    """Reads the requests in flight of one ring (``dump`` holds the reader and the BTF)."""

    def __init__(self, dump, ctx_addr, data, what):
        self.c, self.reader = dump.ctx, dump.reader
        self.ctx_addr, self.data, self.what = ctx_addr, data, what
        self.fds_of = dump.fds          # pid -> {fd: (struct file, private_data)}

    def collect(self, reread, personalities, pid):
        """The requests to submit again: [{"sqe": hex, ...}], once nothing else is in
        flight (waiting up to QUIESCE, ``reread()`` giving the context again);
        ``personalities``: {id: struct cred address} of the ring."""
        deadline = time.monotonic() + QUIESCE
        while True:
            busy = self._busy() + _busy_workers(pid)
            if not busy:
                break
            if time.monotonic() > deadline:
                raise Unsupported(f"unsupported: io_uring ring ({self.what}) with requests in "
                                  f"flight that cannot be submitted again ({', '.join(busy)})")
            time.sleep(0.01)
            self.data = reread()
        self.creds = {addr: int(index) for index, addr in personalities.items()}
        self.pid = pid
        polled, timeouts = self._polled(), self._timeouts()
        if (polled or timeouts) and self.c.field("io_kiocb", "cqe.fd") is None:
            raise Unsupported(f"unsupported: io_uring ring ({self.what}) with requests in "
                              f"flight on this kernel: its struct io_kiocb keeps no SQE fd "
                              f"(no io_kiocb.cqe), so they cannot be made again")
        return [self._poll(req) for req in polled] + [self._timeout(req) for req in timeouts]

    def _busy(self):
        c, busy = self.c, []
        for name in _BUSY_LISTS + ("iopoll_list",):
            if name == "cq_overflow_list" and c.field("io_overflow_cqe", "cqe") is not None:
                continue            # CQEs, not requests (5.19+): RingDump._overflow
            f = c.field("io_ring_ctx", f"{name}.next")      # a list_head: empty points home
            if f is not None and f.value(self.data) != self.ctx_addr + f.offset:
                busy.append(_BUSY_NAMES.get(name, name.replace("_", " ")))
        if c.get(self.data, "iopoll_list.first"):           # a singly linked list (5.17+)
            busy.append("IOPOLL requests")
        for name in ("futex_list", "waitid_list"):
            if c.get(self.data, f"{name}.first"):
                busy.append(name.replace("_list", " waits"))
        if c.get(self.data, "work_llist.first"):
            busy.append("completions waiting for task work")
        return busy

    # requests: struct io_kiocb read whole, its fields at this kernel's offsets
    def _req(self, addr):
        size = self.c.types.size(self.c.types.find("io_kiocb", btf.KIND_STRUCT))
        return addr, self.reader.read_one(addr, size)

    def _head(self, req, opcode):
        """The fields every SQE built again shares: flags, fd, user_data, personality."""
        addr, blob = req
        c = self.c
        flags = c.get(blob, "flags", "io_kiocb")
        if flags & SQE_LINKED or c.get(blob, "link", "io_kiocb"):
            raise Unsupported(f"unsupported: io_uring ring ({self.what}) with a linked "
                              f"{uring.opcode_name(opcode)} request in flight")
        personality = 0
        creds = c.get(blob, "creds", "io_kiocb")
        if creds in self.creds:
            personality = self.creds[creds]
        fd = struct.unpack("<i", struct.pack("<I", c.get(blob, "cqe.fd", "io_kiocb")))[0]
        file = c.get(blob, "file", "io_kiocb")
        if file and not flags & SQE_FIXED_FILE:
            fd = self._fd_of(file, fd, opcode)
        # buf_index means something only to READ_FIXED and with BUFFER_SELECT (a group):
        # the kernel leaves it as a recycled request had it otherwise, and POLL_ADD's
        # preparation refuses any but 0
        buf_index = c.get(blob, "buf_index", "io_kiocb") \
            if opcode == OP["READ_FIXED"] or flags & SQE_BUFFER_SELECT else 0
        return {"opcode": opcode, "flags": flags & SQE_FLAG_BITS, "fd": fd,
                "user_data": c.get(blob, "cqe.user_data", "io_kiocb"),
                "personality": personality, "buf_index": buf_index}

    def _fd_of(self, file, fd, opcode):
        """An fd of the process for the request's struct file: ``fd`` (the SQE's, kept in
        io_kiocb.cqe.fd) where it still holds that file.  cqe.fd shares its word with the
        CQE flags, which a multishot request that has posted overwrote (0 or F_MORE)."""
        held = sorted(n for n, (f, _) in self.fds_of(self.pid).items() if f == file)
        if not held:
            raise Unsupported(f"unsupported: io_uring ring ({self.what}) with a "
                              f"{uring.opcode_name(opcode)} request in flight on a file no "
                              f"fd of the process holds any more")
        return fd if fd in held else held[0]

    def _polled(self):
        """Requests hashed in the context's poll tables (armed polls): cancel_table, and
        cancel_table_locked for those armed under the ring's lock (6.0, gone by 6.18);
        before 6.0 one array of list heads, cancel_hash."""
        c = self.c
        tables = []
        for name in ("cancel_table", "cancel_table_locked"):
            if c.get(self.data, f"{name}.hbs"):
                bucket = c.types.size(c.types.find("io_hash_bucket", btf.KIND_STRUCT))
                tables.append((c.get(self.data, f"{name}.hbs"),
                               c.get(self.data, f"{name}.hash_bits"), bucket,
                               c.field("io_hash_bucket", "list").offset))
        if c.get(self.data, "cancel_hash"):
            tables.append((c.get(self.data, "cancel_hash"),
                           c.get(self.data, "cancel_hash_bits"), 8, 0))
        node_off = c.field("io_kiocb", "hash_node").offset
        out = []
        for table, bits, bucket, first in tables:
            heads = self.reader.read_one(table, bucket << bits)
            for i in range(1 << bits):
                node = struct.unpack_from("<Q", heads, i * bucket + first)[0]
                while node:
                    out.append(self._req(node - node_off))
                    node = struct.unpack("<Q", self.reader.read_one(node, 8))[0]
        return out

    def _poll(self, req):
        addr, blob = req
        c = self.c
        opcode = c.get(blob, "opcode", "io_kiocb")
        head = self._head(req, opcode)
        cmd = blob[:64]                     # the request's command data (a union)
        if opcode == OP["POLL_ADD"]:
            events = c.get(cmd, "events", "io_poll")
            length = (0 if events & EPOLLONESHOT else POLL_ADD_MULTI) | \
                (0 if events & EPOLLET else POLL_ADD_LEVEL)
            return {"sqe": sqe(op_flags=events & ~(EPOLLET | EPOLLONESHOT), length=length,
                               **_args(head)).hex()}
        if opcode in (OP["READ"], OP["READV"], OP["READ_FIXED"]):
            return {"sqe": sqe(addr=c.get(cmd, "addr", "io_rw"), length=c.get(cmd, "len", "io_rw"),
                               off=c.get(cmd, "kiocb.ki_pos", "io_rw"),
                               op_flags=c.get(cmd, "flags", "io_rw"), **_args(head)).hex()}
        if opcode in (OP["RECV"], OP["RECVMSG"]):
            umsg = c.field("io_sr_msg", "buf") or c.field("io_sr_msg", "umsg")
            return {"sqe": sqe(addr=umsg.value(cmd), length=c.get(cmd, "len", "io_sr_msg"),
                               op_flags=c.get(cmd, "msg_flags", "io_sr_msg"),
                               ioprio=c.get(cmd, "flags", "io_sr_msg"),
                               **_args(head, buf_index=c.get(cmd, "buf_group", "io_sr_msg")
                                       if head["flags"] & SQE_BUFFER_SELECT else 0))
                    .hex()}
        if opcode == OP["ACCEPT"]:
            return {"sqe": sqe(addr=c.get(cmd, "addr", "io_accept"),
                               off=c.get(cmd, "addr_len", "io_accept"),
                               op_flags=c.get(cmd, "flags", "io_accept"),
                               ioprio=c.get(cmd, "iou_flags", "io_accept") or 0,
                               file_index=c.get(cmd, "file_slot", "io_accept"),
                               **_args(head)).hex()}
        raise Unsupported(f"unsupported: io_uring ring ({self.what}) with a "
                          f"{uring.opcode_name(opcode)} request waiting on its file (user_data "
                          f"{head['user_data']:#x}): it is not known to be safe to submit again")

    def _timeouts(self):
        c = self.c
        head = c.field("io_ring_ctx", "timeout_list")
        link = c.field("io_timeout", "list").offset
        out, node = [], c.get(self.data, "timeout_list.next")
        while node and node != self.ctx_addr + head.offset:
            out.append(self._req(node - link))      # the command data is the request's start
            node = struct.unpack("<Q", self.reader.read_one(node, 8))[0]
        return out

    def _timeout(self, req):
        addr, blob = req
        c = self.c
        head = self._head(req, OP["TIMEOUT"])
        if c.get(blob, "off", "io_timeout") or c.get(blob, "repeats", "io_timeout"):
            raise Unsupported(f"unsupported: io_uring ring ({self.what}) with a timeout that "
                              f"counts completions or repeats (user_data "
                              f"{head['user_data']:#x})")
        data = self.reader.read_one(c.get(blob, "async_data", "io_kiocb"),
                                    c.types.size(c.types.find("io_timeout_data",
                                                              btf.KIND_STRUCT)))
        flags = c.get(data, "flags", "io_timeout_data")
        if flags & TIMEOUT_MULTISHOT:
            raise Unsupported(f"unsupported: io_uring ring ({self.what}) with a multishot "
                              f"timeout in flight")
        clock = CLOCK_BOOTTIME if flags & TIMEOUT_BOOTTIME else \
            CLOCK_REALTIME if flags & TIMEOUT_REALTIME else CLOCK_MONOTONIC
        expires = c.get(data, "timer.node.expires", "io_timeout_data")
        entry = {"sqe": sqe(op_flags=flags, length=1, **_args(head)).hex(), "clock": clock}
        if flags & TIMEOUT_ABS:
            entry["expires"] = expires              # on its clock: the same after restore
        else:
            entry["left"] = max(0, expires - time.clock_gettime_ns(clock))
        return entry


def _busy_workers(pid):
    """io-wq workers of ``pid`` running a request (an idle one waits in io_wq_worker)."""
    busy = []
    for name in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{name}/comm") as f:
                if not f.read().startswith("iou-wrk-"):
                    continue
            with open(f"/proc/{pid}/task/{name}/wchan") as f:
                where = f.read().strip()
        except FileNotFoundError:
            continue
        if where not in IDLE_WORKER:
            busy.append(f"an io-wq worker in {where}")
    return busy


def _args(head, **over):
    args = {"flags": head["flags"], "fd": head["fd"], "user_data": head["user_data"],
            "personality": head["personality"], "buf_index": head["buf_index"]}
    args.update(over)
    return {"opcode": head["opcode"], **args}


def timeout_sqe(entry, timespec_addr):
    """The SQE of a timeout carried across, pointing to its timespec (absolute expiry on
    its clock, or the time it had left)."""
    raw = bytearray(bytes.fromhex(entry["sqe"]))
    struct.pack_into("<Q", raw, 16, timespec_addr)
    return bytes(raw)


def timespec(entry):
    ns = entry["expires"] if "expires" in entry else entry["left"]
    return struct.pack("<qq", ns // 1_000_000_000, ns % 1_000_000_000)

