"""ptrace(2): request numbers, option bits, the structures it exchanges, a raw wrapper.

``ptrace()`` is the raw system call, not glibc's wrapper: PEEK* requests store
the word they read at ``data`` instead of returning it.  Every failure raises
``OSError`` with the kernel's errno.
"""

import ctypes

from .libc import syscall

TRACEME, PEEKTEXT, PEEKDATA, PEEKUSER = 0, 1, 2, 3
POKETEXT, POKEDATA, POKEUSER = 4, 5, 6
CONT, KILL, SINGLESTEP = 7, 8, 9
GETREGS, SETREGS, GETFPREGS, SETFPREGS = 12, 13, 14, 15
ATTACH, DETACH = 16, 17
SYSCALL = 24
SETOPTIONS, GETEVENTMSG, GETSIGINFO, SETSIGINFO = 0x4200, 0x4201, 0x4202, 0x4203
GETREGSET, SETREGSET = 0x4204, 0x4205
SEIZE, INTERRUPT, LISTEN = 0x4206, 0x4207, 0x4208
PEEKSIGINFO, GETSIGMASK, SETSIGMASK = 0x4209, 0x420A, 0x420B
SECCOMP_GET_FILTER, SECCOMP_GET_METADATA = 0x420C, 0x420D
GET_SYSCALL_INFO = 0x420E
GET_RSEQ_CONFIGURATION = 0x420F
SET_SYSCALL_USER_DISPATCH_CONFIG, GET_SYSCALL_USER_DISPATCH_CONFIG = 0x4210, 0x4211
SET_SYSCALL_INFO = 0x4212

# PTRACE_O_* options
O_TRACESYSGOOD, O_TRACEFORK, O_TRACEVFORK, O_TRACECLONE = 1, 2, 4, 8
O_TRACEEXEC, O_TRACEVFORKDONE, O_TRACEEXIT, O_TRACESECCOMP = 0x10, 0x20, 0x40, 0x80
O_EXITKILL, O_SUSPEND_SECCOMP = 1 << 20, 1 << 21

EVENT_STOP = 128                     # status >> 16 of a group-stop/INTERRUPT trap under SEIZE
PEEKSIGINFO_SHARED = 1

# ELF note types for GETREGSET/SETREGSET
NT_PRSTATUS, NT_PRFPREG = 1, 2
NT_X86_XSTATE, NT_X86_SHSTK = 0x202, 0x204

# offsetof(struct user, u_debugreg) on x86-64, and the debug register numbers
USER_DEBUGREG_OFFSET = 848
DR_FIRSTADDR, DR_STATUS, DR_CONTROL = 0, 6, 7
DR7_LOCAL_ENABLE0 = 1                # enable DR0, break on execution, length 1

# struct ptrace_syscall_info.op
SYSCALL_INFO_NONE, SYSCALL_INFO_ENTRY, SYSCALL_INFO_EXIT, SYSCALL_INFO_SECCOMP = 0, 1, 2, 3


def debugreg_offset(n):
    return USER_DEBUGREG_OFFSET + 8 * n


class Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class PeekSiginfoArgs(ctypes.Structure):
    _fields_ = [("off", ctypes.c_uint64), ("flags", ctypes.c_uint32), ("nr", ctypes.c_int32)]


class RseqConfiguration(ctypes.Structure):
    """struct ptrace_rseq_configuration (24 bytes)."""
    _fields_ = [("rseq_abi_pointer", ctypes.c_uint64), ("rseq_abi_size", ctypes.c_uint32),
                ("signature", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("pad", ctypes.c_uint32)]


class SyscallInfo(ctypes.Structure):
    """struct ptrace_syscall_info (88 bytes); the union is kept raw in ``data``.

    ``reserved`` and ``flags`` were one pad before PTRACE_SET_SYSCALL_INFO (6.16).
    """
    _fields_ = [("op", ctypes.c_uint8), ("reserved", ctypes.c_uint8),
                ("flags", ctypes.c_uint16), ("arch", ctypes.c_uint32),
                ("instruction_pointer", ctypes.c_uint64), ("stack_pointer", ctypes.c_uint64),
                ("data", ctypes.c_uint64 * 8)]


class SeccompMetadata(ctypes.Structure):
    """struct seccomp_metadata: which filter (0 = the oldest) and its SECCOMP_FILTER_FLAG_*."""
    _fields_ = [("filter_off", ctypes.c_uint64), ("flags", ctypes.c_uint64)]


def ptrace(request, pid, addr=0, data=0):
    """Raw ptrace(2); returns what the system call returns."""
    return syscall("ptrace", request, pid, addr, data)


def seize(pid, options=0):
    return ptrace(SEIZE, pid, 0, options)


def interrupt(pid):
    return ptrace(INTERRUPT, pid)


def listen(pid):
    return ptrace(LISTEN, pid)


def detach(pid, sig=0):
    return ptrace(DETACH, pid, 0, sig)


def cont(pid, sig=0):
    return ptrace(CONT, pid, 0, sig)


def resume_syscall(pid, sig=0):
    """PTRACE_SYSCALL: resume up to the next syscall entry or exit."""
    return ptrace(SYSCALL, pid, 0, sig)


def setoptions(pid, options):
    return ptrace(SETOPTIONS, pid, 0, options)


def peekuser(pid, offset):
    word = ctypes.c_ulong(0)
    ptrace(PEEKUSER, pid, offset, ctypes.addressof(word))
    return word.value


def pokeuser(pid, offset, value):
    return ptrace(POKEUSER, pid, offset, value)


def getregset(pid, note_type, size):
    """PTRACE_GETREGSET into a ``size``-byte buffer; returns the bytes the kernel filled."""
    buf = ctypes.create_string_buffer(size)
    iov = Iovec(ctypes.addressof(buf), size)
    ptrace(GETREGSET, pid, note_type, ctypes.addressof(iov))
    return buf.raw[:iov.iov_len]


def peeksiginfo(pid, off=0, nr=1, flags=0):
    """PTRACE_PEEKSIGINFO; returns the raw 128-byte siginfos of the pending signals read."""
    buf = ctypes.create_string_buffer(128 * max(nr, 1))
    args = PeekSiginfoArgs(off=off, flags=flags, nr=nr)
    count = ptrace(PEEKSIGINFO, pid, ctypes.addressof(args), ctypes.addressof(buf))
    return [buf.raw[128 * i:128 * (i + 1)] for i in range(count)]


def getsigmask(pid):
    mask = ctypes.c_uint64(0)
    ptrace(GETSIGMASK, pid, 8, ctypes.addressof(mask))
    return mask.value


def get_rseq_configuration(pid, size=ctypes.sizeof(RseqConfiguration)):
    """Returns (value the kernel returned = its struct size, RseqConfiguration)."""
    buf = ctypes.create_string_buffer(max(size, ctypes.sizeof(RseqConfiguration)))
    ret = ptrace(GET_RSEQ_CONFIGURATION, pid, size, ctypes.addressof(buf))
    return ret, RseqConfiguration.from_buffer_copy(buf.raw[:ctypes.sizeof(RseqConfiguration)])


def get_syscall_info(pid):
    """Returns (bytes the kernel says are valid, SyscallInfo)."""
    info = SyscallInfo()
    ret = ptrace(GET_SYSCALL_INFO, pid, ctypes.sizeof(info), ctypes.addressof(info))
    return ret, info


def set_syscall_info(pid, info):
    return ptrace(SET_SYSCALL_INFO, pid, ctypes.sizeof(info), ctypes.addressof(info))


def seccomp_get_filter(pid, index=0, count=0):
    """PTRACE_SECCOMP_GET_FILTER: the instruction count (count=0) or the raw 8-byte insns."""
    if not count:
        return ptrace(SECCOMP_GET_FILTER, pid, index, 0)
    buf = ctypes.create_string_buffer(8 * count)
    n = ptrace(SECCOMP_GET_FILTER, pid, index, ctypes.addressof(buf))
    return buf.raw[:8 * n]


def seccomp_get_metadata(pid, index=0):
    """PTRACE_SECCOMP_GET_METADATA: the flags filter ``index`` was installed with."""
    meta = SeccompMetadata(filter_off=index)
    ptrace(SECCOMP_GET_METADATA, pid, ctypes.sizeof(meta), ctypes.addressof(meta))
    return meta.flags
