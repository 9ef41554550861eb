"""Processes: clone3(2), pidfds, waitid(2), kcmp(2), prctl(2), arch_prctl(2), timers.

Thin wrappers: every failure raises ``OSError`` with the kernel's errno;
meanings and policy belong to the callers.
"""

import ctypes
import os
import signal

from .libc import IOWR, ioctl, syscall

# <linux/sched.h>
CLONE_VM = 0x00000100
CLONE_PIDFD = 0x00001000
CLONE_PARENT = 0x00008000
CLONE_NEWPID = 0x20000000
CLONE_INTO_CGROUP = 0x200000000

# struct clone_args sizes: VER0 (5.3), VER1 +set_tid/set_tid_size (5.5), VER2 +cgroup (5.7)
CLONE_ARGS_SIZE_VER0, CLONE_ARGS_SIZE_VER1, CLONE_ARGS_SIZE_VER2 = 64, 80, 88


class CloneArgs(ctypes.Structure):
    """struct clone_args (VER2, 88 bytes)."""
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "flags", "pidfd", "child_tid", "parent_tid", "exit_signal", "stack", "stack_size",
        "tls", "set_tid", "set_tid_size", "cgroup")]


def clone3(args, size=None):
    """Raw clone3(2): returns the child's pid in the parent and 0 in the child.

    Without CLONE_VM the child is a copy of the caller that returns from here
    too; use ``fork3`` to get the interpreter's fork bookkeeping around it.
    """
    return syscall("clone3", ctypes.byref(args), ctypes.sizeof(args) if size is None else size)


_before_fork = ctypes.pythonapi.PyOS_BeforeFork
_after_fork_parent = ctypes.pythonapi.PyOS_AfterFork_Parent
_after_fork_child = ctypes.pythonapi.PyOS_AfterFork_Child
for _fn in (_before_fork, _after_fork_parent, _after_fork_child):
    _fn.restype, _fn.argtypes = None, []


def fork3(flags=0, exit_signal=signal.SIGCHLD, set_tid=()):
    """os.fork() done with clone3(2): returns (pid, pidfd) in the parent, (0, None) in the child.

    ``set_tid`` lists the wanted pid per pid-namespace level, innermost first.
    ``pidfd`` is an fd when ``flags`` has CLONE_PIDFD, else None.
    """
    pidfd = ctypes.c_int(-1)
    tids = (ctypes.c_int * max(len(set_tid), 1))(*set_tid)
    args = CloneArgs(flags=flags, exit_signal=exit_signal,
                     pidfd=ctypes.addressof(pidfd) if flags & CLONE_PIDFD else 0,
                     set_tid=ctypes.addressof(tids) if set_tid else 0,
                     set_tid_size=len(set_tid))
    _before_fork()
    try:
        pid = clone3(args)
    except OSError:
        _after_fork_parent()
        raise
    if pid == 0:
        _after_fork_child()
        return 0, None
    _after_fork_parent()
    return pid, (pidfd.value if flags & CLONE_PIDFD else None)


def fork_clone(flags=0, exit_signal=signal.SIGCHLD):
    """os.fork() done with clone(2) and extra ``flags`` (CLONE_NEWPID, ...), no new stack:
    returns the child's pid in the parent, 0 in the child."""
    _before_fork()
    try:
        pid = syscall("clone", flags | exit_signal, 0, None, None, 0)
    except OSError:
        _after_fork_parent()
        raise
    if pid == 0:
        _after_fork_child()
        return 0
    _after_fork_parent()
    return pid


def gettid():
    return syscall("gettid")


# pidfds --------------------------------------------------------------------
PIDFD_NONBLOCK = os.O_NONBLOCK
PIDFD_THREAD = os.O_EXCL          # 6.9
P_PIDFD = 3                       # waitid idtype, 5.4

PIDFD_INFO_PID, PIDFD_INFO_CREDS, PIDFD_INFO_CGROUPID = 1 << 0, 1 << 1, 1 << 2
PIDFD_INFO_EXIT, PIDFD_INFO_COREDUMP = 1 << 3, 1 << 4


class PidfdInfo(ctypes.Structure):
    """struct pidfd_info, PIDFD_INFO_SIZE_VER0 (64 bytes); exit_code was spare0 before 6.15."""
    _fields_ = [("mask", ctypes.c_uint64), ("cgroupid", ctypes.c_uint64)] + [
        (name, ctypes.c_uint32) for name in (
            "pid", "tgid", "ppid", "ruid", "rgid", "euid", "egid", "suid", "sgid", "fsuid",
            "fsgid")] + [("exit_code", ctypes.c_int32)]


PIDFS_IOCTL_MAGIC = 0xFF
PIDFD_GET_INFO = IOWR(PIDFS_IOCTL_MAGIC, 11, ctypes.sizeof(PidfdInfo))


def pidfd_open(pid, flags=0):
    return syscall("pidfd_open", pid, flags)


def pidfd_getfd(pidfd, targetfd, flags=0):
    return syscall("pidfd_getfd", pidfd, targetfd, flags)


def pidfd_send_signal(pidfd, sig, info=None, flags=0):
    return syscall("pidfd_send_signal", pidfd, sig,
                   None if info is None else ctypes.byref(info), flags)


def pidfd_get_info(pidfd, mask):
    """PIDFD_GET_INFO (6.13): the filled PidfdInfo; ``mask`` says what is asked for."""
    info = PidfdInfo(mask=mask)
    ioctl(pidfd, PIDFD_GET_INFO, ctypes.byref(info))
    return info


# waitid / siginfo -------------------------------------------------------------
P_ALL, P_PID, P_PGID = 0, 1, 2
WEXITED, WSTOPPED, WNOHANG, WNOWAIT = 4, 2, 1, 0x01000000
WALL = 0x40000000    # __WALL


class Siginfo(ctypes.Structure):
    """siginfo_t (128 bytes) with the kill/rt/sigchld fields x86-64 puts first."""
    _fields_ = [("si_signo", ctypes.c_int), ("si_errno", ctypes.c_int),
                ("si_code", ctypes.c_int), ("_pad0", ctypes.c_int),
                ("si_pid", ctypes.c_int), ("si_uid", ctypes.c_uint),
                ("si_status", ctypes.c_int),      # SIGCHLD; si_value (low half) for rt
                ("_rest", ctypes.c_byte * 100)]


def waitid(idtype, ident, options):
    """waitid(2); returns the Siginfo (si_pid 0 when WNOHANG found nothing)."""
    info = Siginfo()
    syscall("waitid", idtype, ident, ctypes.byref(info), options, None)
    return info


def rt_sigqueueinfo(pid, sig, info):
    return syscall("rt_sigqueueinfo", pid, sig, ctypes.byref(info))


# kcmp -------------------------------------------------------------------------
KCMP_FILE, KCMP_VM, KCMP_FILES, KCMP_FS, KCMP_SIGHAND, KCMP_IO, KCMP_SYSVSEM = range(7)
KCMP_EPOLL_TFD = 7


class KcmpEpollSlot(ctypes.Structure):
    _fields_ = [("efd", ctypes.c_uint32), ("tfd", ctypes.c_uint32), ("toff", ctypes.c_uint32)]


def kcmp(pid1, pid2, kind, idx1, idx2):
    """0 equal, 1/2 ordered unequal, 3 not comparable (raises OSError on failure)."""
    return syscall("kcmp", pid1, pid2, kind, idx1, idx2)


def kcmp_epoll_tfd(pid1, pid2, fd, efd, tfd, toff=0):
    """kcmp(KCMP_EPOLL_TFD): compare ``fd`` of pid1 with target ``tfd`` of epoll ``efd`` of pid2."""
    slot = KcmpEpollSlot(efd=efd, tfd=tfd, toff=toff)
    return syscall("kcmp", pid1, pid2, KCMP_EPOLL_TFD, fd, ctypes.byref(slot))


# prctl ------------------------------------------------------------------------
PR_SET_PDEATHSIG, PR_GET_PDEATHSIG = 1, 2
PR_SET_SECCOMP = 22
PR_SET_MM = 35
PR_SET_MM_BRK, PR_SET_MM_EXE_FILE, PR_SET_MM_MAP, PR_SET_MM_MAP_SIZE = 7, 13, 14, 15
PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER = 36, 37
PR_SET_NO_NEW_PRIVS = 38
PR_GET_TID_ADDRESS = 40
PR_SET_MDWE, PR_GET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 66, 1   # 6.3
PR_TIMER_CREATE_RESTORE_IDS = 77
PR_TIMER_CREATE_RESTORE_IDS_OFF, PR_TIMER_CREATE_RESTORE_IDS_ON = 0, 1
PR_TIMER_CREATE_RESTORE_IDS_GET = 2
SECCOMP_MODE_FILTER = 2
SECCOMP_SET_MODE_STRICT, SECCOMP_SET_MODE_FILTER = 0, 1     # seccomp(2)'s operations
SECCOMP_FILTER_FLAG_LOG = 2


class PrctlMmMap(ctypes.Structure):
    """struct prctl_mm_map (104 bytes)."""
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "start_code", "end_code", "start_data", "end_data", "start_brk", "brk", "start_stack",
        "arg_start", "arg_end", "env_start", "env_end", "auxv")] + [
        ("auxv_size", ctypes.c_uint32), ("exe_fd", ctypes.c_uint32)]


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


def prctl(option, arg2=0, arg3=0, arg4=0, arg5=0):
    return syscall("prctl", option, arg2, arg3, arg4, arg5)


def prctl_get_int(option):
    """For prctls that store an int through arg2 (PR_GET_CHILD_SUBREAPER, ...)."""
    value = ctypes.c_int(0)
    prctl(option, ctypes.addressof(value))
    return value.value


def prctl_get_ptr(option):
    """For prctls that store a pointer through arg2 (PR_GET_TID_ADDRESS)."""
    value = ctypes.c_uint64(0)
    prctl(option, ctypes.addressof(value))
    return value.value


def prctl_mm_map_size():
    """PR_SET_MM/PR_SET_MM_MAP_SIZE: the kernel's sizeof(struct prctl_mm_map)."""
    size = ctypes.c_uint(0)
    prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, ctypes.addressof(size))
    return size.value


def prctl_set_mm_map(mm_map):
    return prctl(PR_SET_MM, PR_SET_MM_MAP, ctypes.addressof(mm_map), ctypes.sizeof(mm_map))


def seccomp_set_filter(instructions, flags=0):
    """seccomp(SECCOMP_SET_MODE_FILTER) of the calling thread with ``instructions``
    [(code, jt, jf, k)] and SECCOMP_FILTER_FLAG_* ``flags`` (as PR_SET_SECCOMP when 0)."""
    array = (SockFilter * len(instructions))(*[SockFilter(*i) for i in instructions])
    prog = SockFprog(len(instructions), array)
    return syscall("seccomp", SECCOMP_SET_MODE_FILTER, flags, ctypes.addressof(prog))


# arch_prctl (x86-64) ---------------------------------------------------------------
ARCH_SET_GS, ARCH_SET_FS, ARCH_GET_FS, ARCH_GET_GS = 0x1001, 0x1002, 0x1003, 0x1004
ARCH_GET_XCOMP_SUPP = 0x1021
ARCH_MAP_VDSO_X32, ARCH_MAP_VDSO_32, ARCH_MAP_VDSO_64 = 0x2001, 0x2002, 0x2003
ARCH_SHSTK_ENABLE, ARCH_SHSTK_DISABLE, ARCH_SHSTK_LOCK = 0x5001, 0x5002, 0x5003
ARCH_SHSTK_UNLOCK, ARCH_SHSTK_STATUS = 0x5004, 0x5005
ARCH_SHSTK_SHSTK, ARCH_SHSTK_WRSS = 1 << 0, 1 << 1


def arch_prctl(code, addr=0):
    return syscall("arch_prctl", code, addr)


def arch_prctl_get(code):
    """For arch_prctls that store a u64 through addr (ARCH_GET_FS, ARCH_SHSTK_STATUS, ...)."""
    value = ctypes.c_uint64(0)
    arch_prctl(code, ctypes.addressof(value))
    return value.value


# POSIX timers ---------------------------------------------------------------------
CLOCK_MONOTONIC = 1


def timer_create(clockid, timer_id=0):
    """timer_create(clockid, NULL, &id): the id the kernel reports (``timer_id`` is what it
    reads as the wanted id when PR_TIMER_CREATE_RESTORE_IDS is on)."""
    value = ctypes.c_int(timer_id)
    syscall("timer_create", clockid, None, ctypes.byref(value))
    return value.value


def timer_delete(timer_id):
    return syscall("timer_delete", timer_id)
