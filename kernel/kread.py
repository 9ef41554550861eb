"""Reading what /proc does not show: a process's open files as the kernel holds them
(struct file addresses and their private data) and raw kernel memory, through one small
BPF task_file iterator.

The program knows no kernel structure: it is told a task group (files mode) or a list of
(address, length) requests (read mode) through a config map, and answers with
bpf_seq_write.  Structure walking happens in Python with offsets from the running
kernel's BTF (``btf.BTF.field``), so the same program serves every kernel with task_file
iterators (5.8+) and BTF.  Needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN).

    with KernelReader() as kr:
        files = kr.files(pid)                # {fd: (file address, private_data)}
        blobs = kr.read([(addr, 64), ...])   # [bytes or None (unreadable)]
"""

import errno
import os
import struct

from . import bpf, btf
from .bpfasm import (ADD_K, EXIT, FP, FUNC_MAP_LOOKUP_ELEM, FUNC_PROBE_READ_KERNEL,
                     FUNC_SEQ_WRITE, JA, JEQ_K, JGE_X, JGT_K, JNE_K, JNE_X, LDX_DW, LDX_W,
                     MOV_K, MOV_X, R0, R1, R2, R3, R4, R6, R7, R8, R9, ST_W, STX_DW, STX_W,
                     Program, insn, iter_info_task, load_iter)

MODE_FILES, MODE_READ = 0, 1
MAX_REQUESTS = 64           # per pass of the iterator
CHUNK = 4096                # bytes per request
PASS_BYTES = 28 << 10       # a pass writes at most this (the iterator's buffer is 32 KiB)
FILE_RECORD = struct.Struct("<IIQQ")        # fd, pad, struct file *, private_data
_CONFIG = struct.Struct("<IIII")            # mode, tgid, requests, pad
_REQUEST = struct.Struct("<QII")            # address, length, pad


class Unavailable(OSError):
    """The kernel offers no task_file iterator (or no BTF) to this process."""


def _program(cfg_map, req_map, buf_map, offsets, tasks=False):
    """The iterator program, for the task_file iterator (or, ``tasks``, the task one, in
    files mode only)."""
    p = Program()

    def lookup(map_fd, key_reg=None):       # r0 = &map[key at fp-4] (0 when key_reg None)
        if key_reg is None:
            p.emit(insn(ST_W, FP, 0, -4, 0))
        else:
            p.emit(insn(STX_W, FP, key_reg, -4))
        p.ld_map_fd(R1, map_fd)
        p.emit(insn(MOV_X, R2, FP), insn(ADD_K, R2, imm=-4))
        p.call(FUNC_MAP_LOOKUP_ELEM)

    p.emit(insn(MOV_X, R6, R1),             # ctx
           insn(LDX_DW, R7, R6, 0),         # ctx->meta
           insn(LDX_DW, R8, R6, 8))         # ctx->task (NULL at the end)
    p.jump(JEQ_K, R8, "out")
    lookup(cfg_map)
    p.jump(JEQ_K, R0, "out")
    p.emit(insn(MOV_X, R9, R0),
           insn(LDX_W, R1, R9, 0))
    p.jump(JEQ_K, R1, "reads", imm=MODE_READ)
    # files mode: one record per file of the wanted task group (tasks: one per thread)
    p.emit(insn(LDX_W, R2, R8, offsets["tgid"]), insn(LDX_W, R3, R9, 4))
    p.jump(JNE_X, R2, "out", src=R3)
    if tasks:
        p.emit(insn(LDX_W, R3, R8, offsets["pid"]),        # task->pid
               insn(STX_DW, FP, R3, -32),
               insn(STX_DW, FP, R8, -24),
               insn(ST_W, FP, 0, -16, 0), insn(ST_W, FP, 0, -12, 0))
    else:
        p.emit(insn(LDX_DW, R2, R6, 24))                    # ctx->file
        p.jump(JEQ_K, R2, "out")
        p.emit(insn(LDX_W, R3, R6, 16),                     # ctx->fd
               insn(STX_DW, FP, R3, -32),
               insn(STX_DW, FP, R2, -24),
               insn(LDX_DW, R4, R2, offsets["private_data"]),
               insn(STX_DW, FP, R4, -16))
    p.emit(insn(LDX_DW, R1, R7, 0),                         # meta->seq
           insn(MOV_X, R2, FP), insn(ADD_K, R2, imm=-32), insn(MOV_K, R3, imm=24))
    p.call(FUNC_SEQ_WRITE)
    p.jump(JA, 0, "out")
    # read mode: every request, once (on the iterator's first file)
    p.label("reads")
    p.emit(insn(LDX_DW, R1, R7, 16))        # meta->seq_num
    p.jump(JNE_K, R1, "out")
    p.emit(insn(MOV_K, R6, imm=0))          # request index
    p.label("loop")
    p.jump(JGT_K, R6, "out", imm=MAX_REQUESTS - 1)
    p.emit(insn(LDX_W, R1, R9, 8))
    p.jump(JGE_X, R6, "out", src=R1)
    lookup(req_map, R6)
    p.jump(JEQ_K, R0, "out")
    p.emit(insn(MOV_X, R8, R0))             # the request
    lookup(buf_map)
    p.jump(JEQ_K, R0, "out")
    p.emit(insn(MOV_X, R1, R0),
           insn(LDX_W, R2, R8, 8))          # length
    p.jump(JGT_K, R2, "out", imm=CHUNK)
    p.emit(insn(LDX_DW, R3, R8, 0),         # address
           insn(STX_DW, FP, R1, -16))       # the buffer, kept across the call
    p.call(FUNC_PROBE_READ_KERNEL)
    p.emit(insn(STX_DW, FP, R0, -24),       # its result, then the bytes
           insn(LDX_DW, R1, R7, 0), insn(MOV_X, R2, FP), insn(ADD_K, R2, imm=-24),
           insn(MOV_K, R3, imm=8))
    p.call(FUNC_SEQ_WRITE)
    p.emit(insn(LDX_DW, R1, R7, 0), insn(LDX_DW, R2, FP, -16), insn(LDX_W, R3, R8, 8))
    p.jump(JGT_K, R3, "out", imm=CHUNK)
    p.call(FUNC_SEQ_WRITE)
    p.emit(insn(ADD_K, R6, imm=1))
    p.jump(JA, 0, "loop")
    p.label("out")
    p.emit(insn(MOV_K, R0, imm=0), insn(EXIT))
    return p.assemble()


class KernelReader:
    """The loaded iterator program and its maps; a context manager (closes them)."""

    def __init__(self, types=None):
        self.fds = []
        try:
            types = types or btf.BTF.vmlinux()
            func = types.find("bpf_iter_task_file", btf.KIND_FUNC)
            task_func = types.find("bpf_iter_task", btf.KIND_FUNC)
            if func is None or task_func is None:
                raise Unavailable(errno.ENOSYS, "no bpf_iter_task_file in the kernel's BTF")
            bpf.memlock_unlimited()
            self.cfg = self._own(bpf.map_create(bpf.MAP_TYPES["array"], 4, _CONFIG.size, 1))
            self.req = self._own(bpf.map_create(bpf.MAP_TYPES["array"], 4, _REQUEST.size,
                                                MAX_REQUESTS))
            buf = self._own(bpf.map_create(bpf.MAP_TYPES["array"], 4, CHUNK, 1))
            offsets = {"tgid": types.field("task_struct", "tgid").offset,
                       "pid": types.field("task_struct", "pid").offset,
                       "private_data": types.field("file", "private_data").offset}
            prog = self._own(load_iter(_program(self.cfg, self.req, buf, offsets), func))
            self.link = self._own(bpf.link_create(prog, bpf.TRACE_ITER))
            # reads run on the first file the iterator meets: walking only our own files
            # (6.1+) spares visiting every file of the host per pass (~ms with many fds)
            try:
                self.read_link = self._own(bpf.link_create(
                    prog, bpf.TRACE_ITER, iter_info=iter_info_task(pid=os.getpid())))
            except OSError:
                self.read_link = self.link
            self.task_func, self.offsets, self.buf = task_func, offsets, buf
            self.task_link = None
        except FileNotFoundError:
            self.close()
            raise Unavailable(errno.ENOENT, "the kernel has no BTF") from None
        except Unavailable:
            self.close()
            raise
        except OSError as e:
            self.close()
            raise Unavailable(e.errno, f"cannot load the kernel reader: {e.strerror}") from None

    def _own(self, fd):
        self.fds.append(fd)
        return fd

    def close(self):
        for fd in self.fds:
            os.close(fd)
        self.fds = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _pass(self, mode, tgid=0, count=0, link=None):
        bpf.map_update(self.cfg, bytes(4), _CONFIG.pack(mode, tgid, count, 0))
        it = bpf.iter_create(link or self.link)
        try:
            return bpf.read_all(it)
        finally:
            os.close(it)

    def files(self, tgid):
        """{fd: (struct file address, its private_data)} of process ``tgid`` (its pid as
        the initial pid namespace numbers it)."""
        data = self._pass(MODE_FILES, tgid)
        return {fd: (file, private) for fd, _, file, private in
                (FILE_RECORD.unpack_from(data, at)
                 for at in range(0, len(data) - FILE_RECORD.size + 1, FILE_RECORD.size))}

    def tasks(self, tgid):
        """{tid: struct task_struct address} of the threads of process ``tgid``."""
        if self.task_link is None:      # loaded on first use
            prog = self._own(load_iter(_program(self.cfg, self.req, self.buf, self.offsets,
                                            tasks=True), self.task_func))
            self.task_link = self._own(bpf.link_create(prog, bpf.TRACE_ITER))
        data = self._pass(MODE_FILES, tgid, link=self.task_link)
        return {tid: task for tid, _, task, _ in
                (FILE_RECORD.unpack_from(data, at)
                 for at in range(0, len(data) - FILE_RECORD.size + 1, FILE_RECORD.size))}

    def read(self, requests):
        """The kernel memory at each (address, length): bytes, or None where it could not
        be read.  Lengths above CHUNK are read in pieces."""
        pieces = []         # (index of the request, address, length)
        for index, (addr, length) in enumerate(requests):
            for off in range(0, length, CHUNK):
                pieces.append((index, addr + off, min(CHUNK, length - off)))
        got = [bytearray() for _ in requests]
        failed = set()
        at = 0
        while at < len(pieces):
            batch, size = [], 0
            while at < len(pieces) and len(batch) < MAX_REQUESTS and \
                    size + pieces[at][2] + 8 <= PASS_BYTES:
                batch.append(pieces[at])
                size += pieces[at][2] + 8
                at += 1
            for n, (_, addr, length) in enumerate(batch):
                bpf.map_update(self.req, struct.pack("<I", n), _REQUEST.pack(addr, length, 0))
            data = self._pass(MODE_READ, count=len(batch), link=self.read_link)
            pos = 0
            for index, _, length in batch:
                if pos + 8 + length > len(data):
                    raise OSError(errno.EIO, "the kernel reader returned less than asked")
                result = struct.unpack_from("<q", data, pos)[0]
                if result < 0:
                    failed.add(index)
                got[index] += data[pos + 8:pos + 8 + length]
                pos += 8 + length
        return [None if index in failed else bytes(blob) for index, blob in enumerate(got)]

    def read_one(self, addr, length):
        return self.read([(addr, length)])[0]
