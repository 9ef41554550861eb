"""A small eBPF assembler for the hand-written programs of kernel/kread.py and
kernel/iters.py: opcodes, a builder with labels, and the loader of iterator programs.

No policy and no kernel layout here: callers pass structure offsets they took from the
running kernel's BTF (``btf.BTF.field``), which is what makes the same program right on
every kernel (our CO-RE, without clang or libbpf).

    p = Program()
    p.emit(insn(MOV_X, R6, R1))
    p.jump(JEQ_K, R6, "out")
    p.label("out")
    p.emit(insn(MOV_K, R0, imm=0), insn(EXIT))
    prog_fd = load_iter(p.assemble(), btf_func_id)
"""

import errno
import struct

from . import bpf

insn = bpf.insn

# opcodes (class | size/op | source) of the instructions the programs use
LDX_B, LDX_H, LDX_W, LDX_DW = 0x71, 0x69, 0x61, 0x79
STX_W, STX_DW, ST_W, ST_DW = 0x63, 0x7B, 0x62, 0x7A
MOV_K, MOV_X, ADD_K, ADD_X = 0xB7, 0xBF, 0x07, 0x0F
AND_K, RSH_K, LSH_K = 0x57, 0x77, 0x67
JEQ_K, JNE_K, JNE_X, JGE_X, JGT_K, JSLE_K, JA = 0x15, 0x55, 0x5D, 0x3D, 0x25, 0xD5, 0x05
CALL, EXIT = 0x85, 0x95
R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, FP = range(11)

# helper ids (enum bpf_func_id)
FUNC_MAP_LOOKUP_ELEM = bpf.FUNC_MAP_LOOKUP_ELEM
FUNC_PROBE_READ_KERNEL, FUNC_PROBE_READ_KERNEL_STR = 113, 115
FUNC_SEQ_WRITE, FUNC_D_PATH = 127, 147


class Program:
    """Instructions in order; jumps name a label, resolved by assemble()."""

    def __init__(self):
        self.code, self.fixups, self.labels = [], [], {}

    def emit(self, *insns):
        self.code.extend(insns)

    def jump(self, op, dst, target, src=0, imm=0):
        self.fixups.append((len(self.code), target))
        self.code.append((op, dst, src, imm))

    def label(self, name):
        self.labels[name] = len(self.code)

    def ld_map_fd(self, dst, map_fd):       # a 16-byte instruction: two slots
        two = bpf.ld_map_fd(dst, map_fd)
        self.code.extend([two[:8], two[8:]])

    def call(self, helper):
        self.emit(insn(CALL, imm=helper))

    def zero(self, base, start, size):
        """Store zeros over [base+start, base+start+size), size a multiple of 8."""
        for at in range(start, start + size, 8):
            self.emit(insn(ST_DW, base, 0, at, 0))

    def assemble(self):
        code = list(self.code)
        for at, target in self.fixups:
            op, dst, src, imm = code[at]
            code[at] = insn(op, dst, src, self.labels[target] - at - 1, imm)
        return b"".join(code)


def load_iter(insns, func, tries=5):
    """A loaded BPF_TRACE_ITER program for the iterator whose BTF FUNC id is ``func``; the
    verifier's log (its tail) is in the error only when it is refused.  A signal arriving
    while the verifier works makes it give up with EAGAIN: load again (as libbpf does)."""
    for attempt in range(tries):
        try:
            return bpf.prog_load(bpf.PROG_TYPE_TRACING, insns,
                                 expected_attach_type=bpf.TRACE_ITER, attach_btf_id=func)
        except OSError as e:
            if e.errno != errno.EAGAIN or attempt == tries - 1:
                break
    return bpf.prog_load(bpf.PROG_TYPE_TRACING, insns, expected_attach_type=bpf.TRACE_ITER,
                         attach_btf_id=func, log_size=1 << 22)


def iter_info_task(pid=0, tid=0, pid_fd=0):
    """union bpf_iter_link_info's task member (6.1): the task iterators then walk one
    process (pid), one thread (tid) or a pidfd's process.  Kernels before 6.1 ignore it
    and walk every task: readers must filter the records by tgid themselves."""
    return struct.pack("<III4x", tid, pid, pid_fd)
