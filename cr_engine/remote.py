"""Driving ptrace-stopped threads: waiting for their stops, reading and writing their memory,
and running system calls inside them (syscall injection, the engine's only "parasite").

A thread runs an injected call by jumping to a ``syscall`` instruction with our registers,
stopping at the syscall's entry and exit (PTRACE_SYSCALL); nothing of ours is left in it.
"""

import ctypes
import errno
import os
import signal
import socket
import struct

from kernel import ptrace
from kernel.libc import NR, syscall
from kernel.memory import Iovec

from .regs import SYSCALL_ARG_REGS, SYSCALL_INSN, get_regs, set_regs, signed

WALL = 0x40000000
SYSCALL_TRAP = signal.SIGTRAP | 0x80
NO_SYSCALL = (1 << 64) - 1
SEIZE_OPTIONS = ptrace.O_TRACESYSGOOD


class TraceeGone(Exception):
    """A thread we hold exited or was killed under us."""


class RemoteError(OSError):
    """An injected system call failed inside the tracee."""

    def __init__(self, name, err):
        super().__init__(err, f"{name} in tracee: {os.strerror(err)}")
        self.call = name


class Stop:
    """One waitpid() report of a traced thread."""
    __slots__ = ("status", "sig", "event")

    def __init__(self, status):
        if not os.WIFSTOPPED(status):
            raise TraceeGone(_describe_exit(status))
        self.status = status
        self.sig = os.WSTOPSIG(status)
        self.event = status >> 16

    @property
    def is_syscall(self):
        return self.sig == SYSCALL_TRAP

    @property
    def is_signal_delivery(self):
        return self.event == 0 and self.sig != SYSCALL_TRAP


def _describe_exit(status):
    if os.WIFEXITED(status):
        return f"exited with status {os.WEXITSTATUS(status)}"
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"status {status:#x}"


# signals of a faulting instruction, and how often one may come back before the injected
# call is given up on (a suppressed fault is raised again by the same instruction)
FAULTS = (signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE)
FAULT_LOOP = 50


def wait_stop(tid):
    try:
        _, status = os.waitpid(tid, WALL)
    except ChildProcessError as e:
        raise TraceeGone(f"thread {tid} is gone") from e
    return Stop(status)


def get_siginfo(tid):
    buf = ctypes.create_string_buffer(128)
    ptrace.ptrace(ptrace.GETSIGINFO, tid, 0, ctypes.addressof(buf))
    return buf.raw


def set_sigmask(tid, mask):
    value = ctypes.c_uint64(mask)
    ptrace.ptrace(ptrace.SETSIGMASK, tid, 8, ctypes.addressof(value))


# Memory of another process -------------------------------------------------------------------
def _vm_call(name, pid, addr, buf, length):
    local, remote = Iovec(ctypes.addressof(buf), length), Iovec(addr, length)
    return syscall(name, pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)


def read_memory(pid, addr, length):
    """Bytes of another process; unreadable (PROT_NONE) pages go through /proc/pid/mem."""
    buf = ctypes.create_string_buffer(length)
    try:
        if _vm_call("process_vm_readv", pid, addr, buf, length) == length:
            return buf.raw
    except OSError:
        pass
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        return os.pread(mem.fileno(), length, addr)


def write_memory(pid, addr, data):
    """Store bytes in another process; read-only pages are written through /proc/pid/mem."""
    buf = ctypes.create_string_buffer(bytes(data), len(data))
    try:
        if _vm_call("process_vm_writev", pid, addr, buf, len(data)) == len(data):
            return
    except OSError:
        pass
    with open(f"/proc/{pid}/mem", "r+b", buffering=0) as mem:
        if os.pwrite(mem.fileno(), bytes(data), addr) != len(data):
            raise OSError(f"short write into /proc/{pid}/mem at {addr:#x}")


def find_syscall_insn(pid, vmas):
    """An address holding ``syscall`` in an executable mapping (the vdso first)."""
    ordered = sorted(vmas, key=lambda v: (v.name != "[vdso]", v.start))
    for vma in ordered:
        if "x" not in vma.perms or vma.name == "[vsyscall]":
            continue
        span = min(vma.end - vma.start, 1 << 16)
        try:
            code = read_memory(pid, vma.start, span)
        except OSError:
            continue
        at = code.find(SYSCALL_INSN)
        if at >= 0:
            return vma.start + at
    raise OSError(f"no syscall instruction found in the executable mappings of {pid}")


# Injected system calls -------------------------------------------------------------------------
class Remote:
    """System calls executed by thread ``tid`` (already in a ptrace stop) at ``syscall_ip``.

    Signals that arrive while we drive the thread are taken out of the way and kept in
    ``caught_signals`` (raw siginfos) for the caller to account for.
    """

    def __init__(self, tid, syscall_ip):
        self.tid = tid
        self.syscall_ip = syscall_ip
        self.template = get_regs(tid)
        self.caught_signals = []

    def call(self, name, *args, check=True):
        self.start(name, *args)
        return self.finish(name, check=check)

    def start(self, name, *args):
        """Enter the system call and let it run; finish() collects its result.  Other
        threads' calls may be started in between (their tracer is this same thread)."""
        regs = self.template.copy()
        regs.rip, regs.rax, regs.orig_rax = self.syscall_ip, NR[name], NO_SYSCALL
        for reg, value in zip(SYSCALL_ARG_REGS, args):
            setattr(regs, reg, value & NO_SYSCALL)
        set_regs(self.tid, regs)
        ptrace.resume_syscall(self.tid)
        self._wait_syscall_stop()         # entry
        ptrace.resume_syscall(self.tid)

    def finish(self, name, check=True):
        self._wait_syscall_stop()         # exit
        result = signed(get_regs(self.tid).rax)
        if check and -4095 <= result < 0:
            raise RemoteError(name, -result)
        return result

    def _wait_syscall_stop(self):
        faults = 0
        while True:
            stop = wait_stop(self.tid)
            if stop.is_syscall:
                return
            faults = self.take_signal(stop, faults)
            ptrace.resume_syscall(self.tid)

    def take_signal(self, stop, faults):
        """A stop that is not the injection's own: a signal about to be delivered is kept in
        caught_signals, to be suppressed by the caller's resume (an event stop - a pending
        PTRACE_INTERRUPT, a group stop, a clone event - needs nothing).  ``faults``: how
        often the thread faulted so far in this injection; returns the new count."""
        if stop.is_signal_delivery:     # suppressed here, accounted for by the caller
            if stop.sig in FAULTS:      # suppressed, it comes back at once: never ends
                faults += 1
                if faults > FAULT_LOOP:
                    rip = get_regs(self.tid).rip
                    code, addr = struct.unpack_from("<8xi4xQ", get_siginfo(self.tid))
                    raise TraceeGone(f"thread {self.tid} faults with "
                                     f"{signal.Signals(stop.sig).name} (code {code}, "
                                     f"address {addr:#x}) at {rip:#x} over and over "
                                     f"in an injected system call")
            self.caught_signals.append(get_siginfo(self.tid))
        return faults


def lend_fd(rem, scratch, fd):
    """A copy of our ``fd`` in the tracee ``rem`` runs in; returns its number there.

    pidfd_getfd(2) when the tracee may take it from us (same credentials, and it sees our
    pid); otherwise it is passed with SCM_RIGHTS over an abstract unix socket the tracee
    connects to (abstract names have no permission checks)."""
    pidfd = rem.call("pidfd_open", os.getpid(), 0, check=False)   # ESRCH: we are not
    if pidfd >= 0:                                                  # in its pid namespace
        try:
            got = rem.call("pidfd_getfd", pidfd, fd, 0, check=False)
        finally:
            rem.call("close", pidfd)
        if got >= 0:
            return got
    name = b"\0cr_engine-lend-" + os.urandom(8).hex().encode()

    def listen():
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(name)
        listener.listen(1)
        return listener
    # an abstract name lives in a network namespace: made in the tracee's
    if os.readlink(f"/proc/{rem.tid}/ns/net") != os.readlink("/proc/self/ns/net"):
        from .namespaces import run_in
        made = run_in(rem.tid, "net", listen)
    else:
        made = listen()
    with made as listener:
        sock = rem.call("socket", socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC, 0)
        try:
            addr = struct.pack("H", socket.AF_UNIX) + name
            rem.call("connect", sock, scratch.put(addr), len(addr))
            scratch.reset()
            conn, _ = listener.accept()
            with conn:
                socket.send_fds(conn, [b"f"], [fd])
            # recvmsg(sock, {iov: 1 byte, control: one fd}, MSG_CMSG_CLOEXEC)
            data = scratch.reserve(1)
            iov = scratch.put(struct.pack("QQ", data, 1))
            control = scratch.reserve(CMSG_SPACE_INT)
            msg = scratch.put(struct.pack("QI4xQQQQi4x", 0, 0, iov, 1, control,
                                          CMSG_SPACE_INT, 0))
            rem.call("recvmsg", sock, msg, MSG_CMSG_CLOEXEC)
            length, level, kind, lent = struct.unpack("QiiI", scratch.read(control, 20))
            scratch.reset()
            if (level, kind) != (socket.SOL_SOCKET, socket.SCM_RIGHTS) or length < 20:
                raise RemoteError("recvmsg", errno.EBADMSG)
            return lent
        finally:
            rem.call("close", sock, check=False)


CMSG_SPACE_INT = 24                 # CMSG_SPACE(sizeof(int)) on 64-bit
MSG_CMSG_CLOEXEC = 0x40000000


class Scratch:
    """A bump allocator over a private mapping made inside the tracee for call arguments."""

    def __init__(self, pid, addr, size):
        self.pid, self.addr, self.size = pid, addr, size
        self.used = 0

    def put(self, data):
        data = bytes(data)
        at = self.reserve(len(data))
        if data:
            write_memory(self.pid, at, data)
        return at

    def reserve(self, length):
        offset = (self.used + 15) & ~15
        if offset + length > self.size:
            raise MemoryError(f"scratch area of {self.size} bytes is full")
        self.used = offset + length
        return self.addr + offset

    def put_at(self, addr, data):
        write_memory(self.pid, addr, bytes(data))

    def read(self, addr, length):
        return read_memory(self.pid, addr, length)

    def reset(self):
        self.used = 0
