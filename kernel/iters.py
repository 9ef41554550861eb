"""BPF iterator programs that read process state in binary records, faster than /proc text:
the VMAs of processes (task_vma iterator, 5.12+).

Each program is assembled here from offsets in the running kernel's BTF, loaded once, and
read through a link made per pass: filtered to one process where the kernel can (6.1+), or
over every task, the records then filtered by tgid here (kernels before 6.1 ignore the
filter, so the filter by tgid is always applied).  Needs CAP_BPF and CAP_PERFMON (or
CAP_SYS_ADMIN); a kernel or host that refuses raises Unavailable, for callers to fall back
to /proc.

    with VmaIterator() as it:
        for r in it.records(pid):   # VmaRecord, in address order per process
            ...
"""

import errno
import os
import struct
from collections import namedtuple

from . import bpf, btf
from .bpfasm import (ADD_K, EXIT, FP, FUNC_PROBE_READ_KERNEL, FUNC_PROBE_READ_KERNEL_STR,
                     FUNC_SEQ_WRITE, JA, JEQ_K, JNE_K, LDX_DW, LDX_W, MOV_K, MOV_X, R0, R1,
                     R2, R3, R4, R5, R6, R7, R8, R9, ST_DW, STX_DW, STX_W, Program, insn,
                     iter_info_task, load_iter)


class Unavailable(OSError):
    """This kernel (or this process's privileges) offers no such iterator."""


SPECIAL_NAME = 16           # bytes kept of a special mapping's name ("[vvar_vclock]")
# one record per VMA: start, end, vm_flags, vm_pgoff, i_ino, s_dev, tgid, struct file *
# (0: no file; equal pointers: one file), the special mapping's name, the mm's start_brk,
# brk and start_stack (maps names [heap] and [stack] from them), anon_name pointer
_VMA_RECORD = struct.Struct(f"<QQQQQIIQ{SPECIAL_NAME}sQQQQ")
VmaRecord = namedtuple("VmaRecord", "start end flags pgoff ino dev tgid file special "
                                    "start_brk brk start_stack anon_name")


def _vma_offsets(types):
    def at(struct_name, path):
        return types.field(struct_name, path).offset
    try:
        anon_name = at("vm_area_struct", "anon_name")
    except KeyError:            # no CONFIG_ANON_VMA_NAME: no VMA has a name of its own
        anon_name = None
    return {"meta": at("bpf_iter__task_vma", "meta"), "task": at("bpf_iter__task_vma", "task"),
            "vma": at("bpf_iter__task_vma", "vma"), "seq": at("bpf_iter_meta", "seq"),
            "tgid": at("task_struct", "tgid"), "mm": at("task_struct", "mm"),
            "start": at("vm_area_struct", "vm_start"), "end": at("vm_area_struct", "vm_end"),
            "flags": at("vm_area_struct", "vm_flags"),
            "pgoff": at("vm_area_struct", "vm_pgoff"),
            "file": at("vm_area_struct", "vm_file"), "ops": at("vm_area_struct", "vm_ops"),
            "private": at("vm_area_struct", "vm_private_data"), "anon_name": anon_name,
            "f_inode": at("file", "f_inode"), "i_ino": at("inode", "i_ino"),
            "i_sb": at("inode", "i_sb"), "s_dev": at("super_block", "s_dev"),
            "special_name": at("vm_special_mapping", "name"),
            "start_brk": at("mm_struct", "start_brk"), "brk": at("mm_struct", "brk"),
            "start_stack": at("mm_struct", "start_stack")}


def _vma_program(o):
    """The record is built on the stack at fp-SIZE, then bpf_seq_write'n."""
    p, rec = Program(), -_VMA_RECORD.size
    p.emit(insn(MOV_X, R6, R1), insn(LDX_DW, R7, R6, o["meta"]),
           insn(LDX_DW, R8, R6, o["task"]))
    p.jump(JEQ_K, R8, "out")                # the end of the walk
    p.emit(insn(LDX_DW, R9, R6, o["vma"]))
    p.jump(JEQ_K, R9, "out")
    p.zero(FP, rec, _VMA_RECORD.size)
    for name, at in (("start", 0), ("end", 8), ("flags", 16), ("pgoff", 24)):
        p.emit(insn(LDX_DW, R1, R9, o[name]), insn(STX_DW, FP, R1, rec + at))
    p.emit(insn(LDX_W, R1, R8, o["tgid"]), insn(STX_W, FP, R1, rec + 44),
           insn(LDX_DW, R1, R8, o["mm"]))
    for name, at in (("start_brk", 72), ("brk", 80), ("start_stack", 88)):
        p.emit(insn(LDX_DW, R2, R1, o[name]), insn(STX_DW, FP, R2, rec + at))
    if o["anon_name"] is not None:
        p.emit(insn(LDX_DW, R1, R9, o["anon_name"]), insn(STX_DW, FP, R1, rec + 96))
    p.emit(insn(LDX_DW, R2, R9, o["file"]), insn(STX_DW, FP, R2, rec + 48))
    p.jump(JEQ_K, R2, "no_file")
    p.emit(insn(LDX_DW, R3, R2, o["f_inode"]),
           insn(LDX_DW, R4, R3, o["i_ino"]), insn(STX_DW, FP, R4, rec + 32),
           insn(LDX_DW, R4, R3, o["i_sb"]),
           insn(LDX_W, R5, R4, o["s_dev"]), insn(STX_W, FP, R5, rec + 40))
    p.jump(JA, 0, "write")
    # a special mapping (vdso, vvar, uprobes): vm_ops and no file, its name behind
    # vm_private_data; a pointer loaded from the vma is not trusted: read by helper
    p.label("no_file")
    p.emit(insn(LDX_DW, R2, R9, o["ops"]))
    p.jump(JEQ_K, R2, "write")
    p.emit(insn(LDX_DW, R3, R9, o["private"]))
    p.jump(JEQ_K, R3, "write")
    p.emit(insn(MOV_X, R1, FP), insn(ADD_K, R1, imm=rec + 56), insn(MOV_K, R2, imm=8),
           insn(ADD_K, R3, imm=o["special_name"]))
    p.call(FUNC_PROBE_READ_KERNEL)
    p.jump(JNE_K, R0, "no_name")
    p.emit(insn(LDX_DW, R3, FP, rec + 56),
           insn(MOV_X, R1, FP), insn(ADD_K, R1, imm=rec + 56),
           insn(MOV_K, R2, imm=SPECIAL_NAME))
    p.call(FUNC_PROBE_READ_KERNEL_STR)
    p.jump(JA, 0, "write")
    p.label("no_name")
    p.emit(insn(ST_DW, FP, 0, rec + 56, 0))
    p.label("write")
    p.emit(insn(LDX_DW, R1, R7, o["seq"]), insn(MOV_X, R2, FP), insn(ADD_K, R2, imm=rec),
           insn(MOV_K, R3, imm=_VMA_RECORD.size))
    p.call(FUNC_SEQ_WRITE)
    p.label("out")
    p.emit(insn(MOV_K, R0, imm=0), insn(EXIT))
    return p.assemble()


class Iterator:
    """A loaded iterator program; read() makes a link (filtered to ``pid`` when given) and
    reads one pass of records."""

    target = None           # the iterator's name: bpf_iter_<target>
    pid_filter = True       # the kernel takes a pid in the link (6.1): until it refuses

    def __init__(self, types=None):
        self.prog, self.fds = None, []      # fds: the program's and its maps'
        try:
            types = types or btf.BTF.vmlinux()
            func = types.find(f"bpf_iter_{self.target}", btf.KIND_FUNC)
            if func is None:
                raise Unavailable(errno.ENOSYS, f"no bpf_iter_{self.target} in the kernel's BTF")
            bpf.memlock_unlimited()
            try:
                insns = self.program(types)
            except KeyError as e:
                raise Unavailable(errno.ENOSYS, f"the kernel's BTF lacks {e.args[0]}") from None
            self.prog = self.own(load_iter(insns, func))
        except BaseException as e:
            self.close()
            if isinstance(e, FileNotFoundError):
                raise Unavailable(errno.ENOENT, "the kernel has no BTF") from None
            if isinstance(e, OSError) and not isinstance(e, Unavailable):
                raise Unavailable(e.errno, f"cannot load the {self.target} iterator: "
                                           f"{e.strerror}") from None
            raise

    def own(self, fd):
        """Close ``fd`` (a map of the program's) with the program."""
        self.fds.append(fd)
        return fd

    def program(self, types):
        raise NotImplementedError

    def read(self, pid=None):
        """One pass's bytes: of process ``pid``'s tasks where the kernel can filter (6.1),
        else of every task (the reader filters)."""
        link = None
        if pid and Iterator.pid_filter:
            try:
                link = bpf.link_create(self.prog, bpf.TRACE_ITER,
                                       iter_info=iter_info_task(pid=pid))
            except OSError as e:
                # before 6.1 the task iterators' link info is 4 bytes (a map fd): a longer
                # one with a non-zero tail is E2BIG
                if e.errno not in (errno.E2BIG, errno.EINVAL):
                    raise
                Iterator.pid_filter = False
        if link is None:
            link = bpf.link_create(self.prog, bpf.TRACE_ITER)
        try:
            it = bpf.iter_create(link)
            try:
                return bpf.read_all(it, 1 << 20)
            finally:
                os.close(it)
        finally:
            os.close(link)

    def close(self):
        for fd in self.fds:
            os.close(fd)
        self.prog, self.fds = None, []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class VmaIterator(Iterator):
    target = "task_vma"

    def program(self, types):
        return _vma_program(_vma_offsets(types))

    def rows(self, pid=None):
        """The records of process ``pid`` (None: of every process) as plain tuples in
        VmaRecord's field order (the fast path), each process's in address order.  The
        iterator skips threads sharing the leader's fd table; a thread that has its own
        walks the same mm again: those records (not above the last one seen of its
        process) are dropped."""
        out, last_end = [], {}
        for row in _VMA_RECORD.iter_unpack(self.read(pid)):
            tgid = row[6]
            if pid is not None and tgid != pid:
                continue
            if row[0] < last_end.get(tgid, 0):
                continue
            last_end[tgid] = row[1]
            out.append(row)
        return out

    def records(self, pid=None):
        """rows() as VmaRecords."""
        return [VmaRecord._make(row) for row in self.rows(pid)]
