"""Per-task state the engine otherwise asks each stopped thread for by injected system calls
(rt_sigaction x 62, sigaltstack, PR_GET_TID_ADDRESS, PR_GET_PDEATHSIG, PR_GET_SECUREBITS,
PR_GET_DUMPABLE, PR_GET_CHILD_SUBREAPER, brk): one BPF task iterator pass reads it from
task_struct for every thread of a tree.  An injected call costs 30-500 us of frozen time
(two ptrace stops); the pass costs ~2 ms for every task of the host.

    with TaskIterator() as it:
        for r in it.records(pid):       # TaskRecord per thread; actions on leaders only
            ...
"""

import struct
from collections import namedtuple

from . import bpf
from .bpfasm import (ADD_K, EXIT, FP, FUNC_MAP_LOOKUP_ELEM, FUNC_PROBE_READ_KERNEL,
                     FUNC_SEQ_WRITE, JEQ_K, JNE_X, LDX_B, LDX_DW, LDX_W, MOV_K, MOV_X, R0, R1, R2,
                     R3, R6, R7, R8, R9, ST_W, STX_DW, STX_W, Program, insn)
from .iters import Iterator

NSIG = 64
SIGACTION = struct.Struct("<QQQQ")      # struct k_sigaction on x86-64: handler, flags,
ACTIONS_SIZE = NSIG * SIGACTION.size    # restorer, mask (what rt_sigaction returns)
# per task: tgid, tid, clear_child_tid, sas_ss_sp, sas_ss_size, sas_ss_flags,
# pdeath_signal, cred->securebits, the word holding signal->is_child_subreaper, mm->flags,
# mm->brk, the itimers (signal->real_timer.state, it_real_incr, it[PROF] and it[VIRT]'s
# expires and incr); a leader's record is followed by ACTIONS_SIZE bytes of sighand->action
_TASK_RECORD = struct.Struct("<IIQQQIIIIQQQQQQQQ")
TaskRecord = namedtuple("TaskRecord", "tgid tid tid_address altstack_sp altstack_size "
                                      "altstack_flags pdeath_signal securebits "
                                      "child_subreaper mm_flags brk itimers_idle actions")
HRTIMER_STATE_ENQUEUED = 1


def _two_cpu_itimers(types):
    """signal->it: struct cpu_itimer {u64 expires, incr} for ITIMER_PROF and _VIRTUAL."""
    it = types.field("signal_struct", "it")
    if it.size != 32 or types.field("cpu_itimer", "incr").offset != 8:
        raise KeyError("signal_struct.it as two struct cpu_itimer {expires, incr}")
    return it.offset


def _offsets(types):
    def at(struct_name, path):
        return types.field(struct_name, path).offset
    subreaper = types.field("signal_struct", "is_child_subreaper")
    return {"meta": at("bpf_iter__task", "meta"), "task": at("bpf_iter__task", "task"),
            "seq": at("bpf_iter_meta", "seq"),
            "tgid": at("task_struct", "tgid"), "pid": at("task_struct", "pid"),
            "clear_child_tid": at("task_struct", "clear_child_tid"),
            "sas_ss_sp": at("task_struct", "sas_ss_sp"),
            "sas_ss_size": at("task_struct", "sas_ss_size"),
            "sas_ss_flags": at("task_struct", "sas_ss_flags"),
            "pdeath_signal": at("task_struct", "pdeath_signal"),
            "cred": at("task_struct", "cred"), "securebits": at("cred", "securebits"),
            "signal": at("task_struct", "signal"), "subreaper_word": subreaper.offset,
            "real_timer_state": at("signal_struct", "real_timer") + at("hrtimer", "state"),
            "it_real_incr": at("signal_struct", "it_real_incr"),
            "it": _two_cpu_itimers(types),
            "subreaper_bit": subreaper.bit_offset - 8 * subreaper.offset,
            "mm": at("task_struct", "mm"), "mm_flags": at("mm_struct", "flags"),
            "brk": at("mm_struct", "brk"),
            "sighand": at("task_struct", "sighand"), "action": at("sighand_struct", "action")}


def _program(o, actions_map):
    """The record on the stack at fp-SIZE; a leader's actions copied into the one-entry
    map (2 KiB: more than the stack holds) and written after it."""
    p, rec = Program(), -_TASK_RECORD.size
    p.emit(insn(MOV_X, R6, R1), insn(LDX_DW, R7, R6, o["meta"]),
           insn(LDX_DW, R8, R6, o["task"]))
    p.jump(JEQ_K, R8, "out")
    p.zero(FP, rec, _TASK_RECORD.size)
    p.emit(insn(LDX_W, R1, R8, o["tgid"]), insn(STX_W, FP, R1, rec),
           insn(LDX_W, R1, R8, o["pid"]), insn(STX_W, FP, R1, rec + 4))
    for name, at in (("clear_child_tid", 8), ("sas_ss_sp", 16), ("sas_ss_size", 24)):
        p.emit(insn(LDX_DW, R1, R8, o[name]), insn(STX_DW, FP, R1, rec + at))
    p.emit(insn(LDX_W, R1, R8, o["sas_ss_flags"]), insn(STX_W, FP, R1, rec + 32),
           insn(LDX_W, R1, R8, o["pdeath_signal"]), insn(STX_W, FP, R1, rec + 36),
           insn(LDX_DW, R1, R8, o["cred"]))
    p.jump(JEQ_K, R1, "signal")
    p.emit(insn(LDX_W, R2, R1, o["securebits"]), insn(STX_W, FP, R2, rec + 40))
    p.label("signal")
    p.emit(insn(LDX_DW, R1, R8, o["signal"]))
    p.jump(JEQ_K, R1, "mm")
    p.emit(insn(LDX_W, R2, R1, o["subreaper_word"]), insn(STX_W, FP, R2, rec + 44),
           insn(LDX_B, R2, R1, o["real_timer_state"]), insn(STX_DW, FP, R2, rec + 64),
           insn(LDX_DW, R2, R1, o["it_real_incr"]), insn(STX_DW, FP, R2, rec + 72))
    for at in range(0, 32, 8):                  # it[0..1]: {expires, incr} each
        p.emit(insn(LDX_DW, R2, R1, o["it"] + at), insn(STX_DW, FP, R2, rec + 80 + at))
    p.label("mm")
    p.emit(insn(LDX_DW, R1, R8, o["mm"]))
    p.jump(JEQ_K, R1, "write")                  # a kernel thread, or one exiting
    p.emit(insn(LDX_DW, R2, R1, o["mm_flags"]), insn(STX_DW, FP, R2, rec + 48),
           insn(LDX_DW, R2, R1, o["brk"]), insn(STX_DW, FP, R2, rec + 56))
    p.label("write")
    p.emit(insn(LDX_DW, R1, R7, o["seq"]), insn(MOV_X, R2, FP), insn(ADD_K, R2, imm=rec),
           insn(MOV_K, R3, imm=_TASK_RECORD.size))
    p.call(FUNC_SEQ_WRITE)
    # a leader's dispositions (a thread shares them): sighand->action, by helper
    p.emit(insn(LDX_W, R1, R8, o["tgid"]), insn(LDX_W, R2, R8, o["pid"]))
    p.jump(JNE_X, R1, "out", src=R2)
    p.emit(insn(ST_W, FP, 0, rec - 8, 0))
    p.ld_map_fd(R1, actions_map)
    p.emit(insn(MOV_X, R2, FP), insn(ADD_K, R2, imm=rec - 8))
    p.call(FUNC_MAP_LOOKUP_ELEM)
    p.jump(JEQ_K, R0, "out")
    p.emit(insn(MOV_X, R9, R0), insn(LDX_DW, R3, R8, o["sighand"]))
    p.jump(JEQ_K, R3, "zeros")
    p.emit(insn(ADD_K, R3, imm=o["action"]), insn(MOV_X, R1, R9),
           insn(MOV_K, R2, imm=ACTIONS_SIZE))
    p.call(FUNC_PROBE_READ_KERNEL)
    p.jump(JEQ_K, R0, "actions")
    p.label("zeros")                            # unreadable: the reader sees no actions
    p.zero(R9, 0, ACTIONS_SIZE)
    p.label("actions")
    p.emit(insn(LDX_DW, R1, R7, o["seq"]), insn(MOV_X, R2, R9),
           insn(MOV_K, R3, imm=ACTIONS_SIZE))
    p.call(FUNC_SEQ_WRITE)
    p.label("out")
    p.emit(insn(MOV_K, R0, imm=0), insn(EXIT))
    return p.assemble()


class TaskIterator(Iterator):
    target = "task"

    def program(self, types):
        offsets = _offsets(types)
        self.subreaper_bit = offsets["subreaper_bit"]
        actions = self.own(bpf.map_create(bpf.MAP_TYPES["array"], 4, ACTIONS_SIZE, 1))
        return _program(offsets, actions)

    def records(self, pid=None):
        """TaskRecords of the threads of ``pid`` (None: of every task); ``actions``:
        {signo: (handler, flags, restorer, mask)} on a leader's record, else None;
        ``child_subreaper`` is the process's (a bit of signal_struct); ``itimers_idle``:
        no interval timer of the process is armed (getitimer would say zeros)."""
        data, at, out = self.read(pid), 0, []
        while at + _TASK_RECORD.size <= len(data):
            fields = _TASK_RECORD.unpack_from(data, at)
            at += _TASK_RECORD.size
            actions = None
            if fields[0] == fields[1]:
                if at + ACTIONS_SIZE > len(data):
                    raise OSError(5, "the task iterator's output ended inside a record")
                actions = {sig + 1: SIGACTION.unpack_from(data, at + sig * SIGACTION.size)
                           for sig in range(NSIG)}
                at += ACTIONS_SIZE
            if pid is None or fields[0] == pid:
                subreaper = bool(fields[8] >> self.subreaper_bit & 1)
                itimers_idle = not (fields[11] & HRTIMER_STATE_ENQUEUED or any(fields[12:]))
                out.append(TaskRecord(*fields[:8], subreaper, fields[9], fields[10],
                                      itimers_idle, actions))
        return out
