"""x86-64 thread registers: struct user_regs_struct, the xstate area, and syscall restarts.

Registers travel in images as a {name: int} dict (readable, no binary blobs
besides the XSAVE area, which the kernel defines as an opaque layout).
"""

import ctypes

from kernel import ptrace
from kernel.libc import NR

REG_NAMES = ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax",
             "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss",
             "fs_base", "gs_base", "ds", "es", "fs", "gs")
SYSCALL_ARG_REGS = ("rdi", "rsi", "rdx", "r10", "r8", "r9")
SYSCALL_INSN = b"\x0f\x05"

# <linux/errno.h>: values the kernel leaves in rax of a task interrupted in a syscall
ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK = 512, 513, 514, 516
_RESTART_PLAIN = (ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND)
XSTATE_MAX = 16384          # bigger than any XSAVE area (AMX is ~11 KiB)


class UserRegs(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in REG_NAMES]

    def as_dict(self):
        return {name: getattr(self, name) for name in REG_NAMES}

    @classmethod
    def from_dict(cls, values):
        return cls(**{name: int(values[name]) for name in REG_NAMES})

    def copy(self):
        return UserRegs.from_buffer_copy(self)


def get_regs(tid):
    regs = UserRegs()
    ptrace.ptrace(ptrace.GETREGS, tid, 0, ctypes.addressof(regs))
    return regs


def set_regs(tid, regs):
    ptrace.ptrace(ptrace.SETREGS, tid, 0, ctypes.addressof(regs))


def get_xstate(tid):
    return ptrace.getregset(tid, ptrace.NT_X86_XSTATE, XSTATE_MAX)


def set_xstate(tid, data):
    buf = ctypes.create_string_buffer(bytes(data), len(data))
    iov = ptrace.Iovec(ctypes.addressof(buf), len(data))
    ptrace.ptrace(ptrace.SETREGSET, tid, ptrace.NT_X86_XSTATE, ctypes.addressof(iov))


def signed(value):
    return value - (1 << 64) if value >= 1 << 63 else value


def interrupted_syscall(regs):
    """(syscall number, -errno) when the task sits in an interrupted syscall, else None."""
    nr, ret = signed(regs.orig_rax), signed(regs.rax)
    if nr >= 0 and -ret in _RESTART_PLAIN + (ERESTART_RESTARTBLOCK,):
        return nr, -ret
    return None


# How an interrupted system call goes on.  A tracee let go from any ptrace stop passes the
# kernel's signal path on its way out (ptrace_detach and PTRACE_CONT wake it with
# TIF_SIGPENDING), and that path reads the registers: orig_rax >= 0 and rax -ERESTART*
# mean "in a syscall that was interrupted", so the kernel itself either enters it again or,
# when a signal with a handler comes first, makes it fail with EINTR (-ERESTARTNOHAND,
# -ERESTARTSYS without SA_RESTART) - exactly as for a task nobody stopped.  Rewinding rip
# to the syscall instruction instead would enter the syscall again after such a handler: a
# pause() would sleep through the very signal it waits for.
_SLEEPS_WITH_REMAINDER = {NR["nanosleep"]: ("rdi", "rsi"), NR["clock_nanosleep"]: ("rdx", "r10")}
TIMER_ABSTIME = 1


def restart_in_new_task(regs):
    """The regs that resume an interrupted syscall in a restored task.  The kernel restarts
    it (see above), but -ERESTART_RESTARTBLOCK would go through restart_syscall(2) and the
    new task's restart block, which holds nothing: such a syscall is entered again with its
    own arguments instead (-ERESTARTNOHAND, which is also what the kernel makes of it when
    a handler runs).  A relative sleep that stored its remaining time (nanosleep's ``rem``)
    sleeps what was left; anything else starts over (waits may wait longer, never return
    early)."""
    out = regs.copy()
    hit = interrupted_syscall(regs)
    if hit and hit[1] == ERESTART_RESTARTBLOCK:
        nr = hit[0]
        out.rax = (-ERESTARTNOHAND) & ((1 << 64) - 1)
        if nr in _SLEEPS_WITH_REMAINDER:
            req, rem = _SLEEPS_WITH_REMAINDER[nr]
            relative = nr == NR["nanosleep"] or not regs.rsi & TIMER_ABSTIME
            if relative and getattr(regs, rem):
                setattr(out, req, getattr(regs, rem))
    return out


def errno_of(result):
    """-errno of a raw syscall result, or 0 when it succeeded."""
    value = signed(result)
    return -value if -4095 <= value < 0 else 0

