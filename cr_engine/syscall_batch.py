"""Batched injected system calls: a list of calls a stopped thread runs in one go.

Remote.call costs two ptrace stops per call; a batch costs one stop, whatever its length.
The thread runs CODE (below) over a table in its own memory, an entry of 56 bytes per call
(the syscall number, six arguments), stores each call's rax in a results array, stops at the
first failure unless the entry may fail (bit 63 of its number), and at the end stops itself
with tkill(gettid(), SIGTRAP), a stop its tracer takes out of the way.

Not int3: the kernel forces a trap's SIGTRAP through, resetting the thread's SIGTRAP
disposition to SIG_DFL when it is ignored or blocked; a sent SIGTRAP changes nothing (it is
only unblocked while the batch runs, so that it can stop the thread).
"""

import signal
import struct
from typing import NamedTuple

from kernel import memory as kmem
from kernel import ptrace
from kernel.libc import NR

from .regs import get_regs, set_regs, signed
from .remote import NO_SYSCALL, RemoteError, get_siginfo, set_sigmask, wait_stop, write_memory

# Registers the tracer sets: rbx = the first entry, rbp = past the last one, r12 = results.
# Every byte checked against gcc's assembly of the same source and objdump -D.
CODE = bytes.fromhex(
    "4839eb"            # 00 next: cmp rbx, rbp
    "733d"              # 03       jae done
    "488b03"            # 05       mov rax, [rbx]           number
    "480fbaf03f"        # 08       btr rax, 63              without the may-fail bit
    "488b7b08"          # 0d       mov rdi, [rbx+8]
    "488b7310"          # 11       mov rsi, [rbx+16]
    "488b5318"          # 15       mov rdx, [rbx+24]
    "4c8b5320"          # 19       mov r10, [rbx+32]
    "4c8b4328"          # 1d       mov r8, [rbx+40]
    "4c8b4b30"          # 21       mov r9, [rbx+48]
    "0f05"              # 25       syscall
    "49890424"          # 27       mov [r12], rax
    "4983c408"          # 2b       add r12, 8
    "4883c338"          # 2f       add rbx, 56
    "483d01f0ffff"      # 33       cmp rax, -4095
    "72c5"              # 39       jb next                  not an error
    "48837bc800"        # 3b       cmp qword [rbx-56], 0
    "7cbe"              # 40       jl next                  bit 63 set: may fail
    "b8ba000000"        # 42 done: mov eax, 186             gettid
    "0f05"              # 47       syscall
    "89c7"              # 49       mov edi, eax
    "be05000000"        # 4b       mov esi, 5               SIGTRAP
    "b8c8000000"        # 50       mov eax, 200             tkill
    "0f05"              # 55       syscall
    "cc")               # 57       int3                     (the thread stops before it)
STOP_AT = 0x57          # rip when the thread stops for its own SIGTRAP
ENTRY = struct.Struct("<7Q")
MAY_FAIL = 1 << 63
SI_TKILL = -6
SIGTRAP_BIT = 1 << (signal.SIGTRAP - 1)


class Call(NamedTuple):
    name: str
    args: tuple = ()
    may_fail: bool = False      # a failure is a result like any other: the batch goes on


class BatchError(RemoteError):
    """Call ``index`` of a batch failed (it had not ``may_fail``); the calls after it did not
    run.  ``results``: those of the calls that ran, the failed one last."""

    def __init__(self, index, name, err, results):
        super().__init__(name, err)
        self.index, self.results = index, results


class SyscallBatch:
    """Runs lists of Calls in the thread of ``rem``, the tables in ``scratch`` (after what it
    holds: arguments put there before a run stay).  ``code_at``: an executable address in
    the tracee already holding CODE; without it a page is mapped for it, gone on close()."""

    def __init__(self, rem, scratch, code_at=None):
        self.rem, self.scratch = rem, scratch
        self.own_page = code_at is None
        if self.own_page:
            # mapped executable at once and written through /proc/PID/mem: a process under
            # PR_SET_MDWE (systemd's MemoryDenyWriteExecute=) refuses a write-to-exec
            # mprotect; one whose policy refuses executable anonymous memory at all (SELinux
            # execmem) fails the mmap, and the caller does without batches
            code_at = rem.call("mmap", 0, kmem.PAGE_SIZE, kmem.PROT_READ | kmem.PROT_EXEC,
                               kmem.MAP_PRIVATE | kmem.MAP_ANONYMOUS, -1, 0)
            try:
                write_memory(rem.tid, code_at, CODE)
            except BaseException:
                rem.call("munmap", code_at, kmem.PAGE_SIZE, check=False)
                raise
        self.code_at = code_at

    def close(self):
        if self.own_page and self.code_at is not None:
            self.rem.call("munmap", self.code_at, kmem.PAGE_SIZE)
        self.code_at = None

    def run(self, calls):
        """Results (signed) of ``calls`` (Calls), in as many runs as the scratch area
        needs; a call that fails without ``may_fail`` raises BatchError."""
        results = []
        while len(results) < len(calls):
            done = len(results)
            chunk = calls[done:done + self._room()]
            got = self._run_once(chunk)
            results += got
            if len(got) < len(chunk) or (got and _failed(got[-1]) and not chunk[-1].may_fail):
                err = -results[-1]
                raise BatchError(len(results) - 1, calls[len(results) - 1].name, err, results)
        return results

    def _room(self):
        """Calls that fit in the scratch area: an entry and a result each."""
        used = (self.scratch.used + 15) & ~15
        room = (self.scratch.size - used - 16) // (ENTRY.size + 8)
        if room < 1:
            raise MemoryError(f"scratch area of {self.scratch.size} bytes is full")
        return room

    def _run_once(self, calls):
        scratch, before = self.scratch, self.scratch.used
        words = []
        for call in calls:
            args = [a & NO_SYSCALL for a in call.args] + [0] * (6 - len(call.args))
            words += [NR[call.name] | (MAY_FAIL if call.may_fail else 0)] + args
        table = scratch.put(struct.pack(f"<{len(words)}Q", *words))
        results = scratch.reserve(8 * len(calls))
        try:
            ran = self._execute(table, len(calls), results)
            raw = scratch.read(results, 8 * ran)
        finally:
            scratch.used = before           # the arguments the caller put there stay
        return [signed(v) for v in struct.unpack(f"<{ran}Q", raw)]

    def _execute(self, table, count, results):
        """Run the loop over ``count`` entries; returns how many ran.  The thread's registers
        and signal mask are as before afterwards."""
        rem, tid = self.rem, self.rem.tid
        saved, mask = get_regs(tid), ptrace.getsigmask(tid)
        if mask & SIGTRAP_BIT:
            set_sigmask(tid, mask & ~SIGTRAP_BIT)
        regs = rem.template.copy()
        # orig_rax: not in a syscall, or a signal stop on the way would have the kernel
        # "restart" one there
        regs.rip, regs.orig_rax = self.code_at, NO_SYSCALL
        regs.rbx, regs.rbp, regs.r12 = table, table + ENTRY.size * count, results
        set_regs(tid, regs)
        try:
            ptrace.cont(tid)
            faults = 0
            while True:
                stop = wait_stop(tid)
                if stop.sig == signal.SIGTRAP and stop.is_signal_delivery:
                    end = get_regs(tid)
                    if end.rip == self.code_at + STOP_AT and _si_code(tid) == SI_TKILL:
                        return (end.rbx - table) // ENTRY.size
                # a signal that arrived meanwhile: kept for the caller as Remote.call does,
                # suppressed by resuming without it (an interrupted call is restarted)
                faults = rem.take_signal(stop, faults)
                ptrace.cont(tid)
        finally:
            try:
                set_regs(tid, saved)
                if mask & SIGTRAP_BIT:
                    set_sigmask(tid, mask)
            except OSError:
                pass                    # gone: the caller learns it from what is raised


def _si_code(tid):
    return struct.unpack_from("<8xi", get_siginfo(tid))[0]


def _failed(result):
    return -4095 <= result < 0
