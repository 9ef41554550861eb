"""The C library handle, raw syscall(2), and the ioctl number macros."""

import ctypes
import os

libc = ctypes.CDLL(None, use_errno=True)

_syscall = libc.syscall
_syscall.restype = ctypes.c_long

# x86-64 syscall numbers used by the project (arch/x86/entry/syscalls/syscall_64.tbl).
NR = {
    "read": 0, "write": 1, "close": 3, "mmap": 9, "mprotect": 10, "munmap": 11,
    "rt_sigaction": 13, "rt_sigprocmask": 14, "ioctl": 16, "mremap": 25, "madvise": 28,
    "getitimer": 36, "getpid": 39, "socket": 41, "connect": 42, "sendmsg": 46, "recvmsg": 47, "clone": 56,
    "fork": 57, "wait4": 61, "kill": 62, "ptrace": 101, "rt_sigqueueinfo": 129,
    "personality": 135, "pivot_root": 155, "prctl": 157, "arch_prctl": 158, "gettid": 186, "tkill": 200,
    "mlock": 149, "futex": 202, "sched_setaffinity": 203, "io_setup": 206, "io_destroy": 207,
    "io_getevents": 208, "io_submit": 209, "set_tid_address": 218, "timer_create": 222,
    "timer_settime": 223, "timer_gettime": 224, "timer_delete": 226, "epoll_ctl": 233,
    "tgkill": 234, "waitid": 247, "unshare": 272, "set_robust_list": 273,
    "get_robust_list": 274, "vmsplice": 278, "timerfd_create": 283, "timerfd_settime": 286,
    "timerfd_gettime": 287, "signalfd4": 289, "eventfd2": 290, "epoll_create1": 291,
    "pipe2": 293, "inotify_init1": 294, "inotify_add_watch": 254, "fanotify_mark": 301, "rt_tgsigqueueinfo": 297, "perf_event_open": 298,
    "fanotify_init": 300, "name_to_handle_at": 303, "open_by_handle_at": 304, "setns": 308,
    "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312, "seccomp": 317,
    "getrandom": 318, "memfd_create": 319, "bpf": 321, "execveat": 322, "userfaultfd": 323,
    "membarrier": 324, "mlock2": 325, "statx": 332, "rseq": 334, "pkey_mprotect": 329, "pkey_alloc": 330,
    "pidfd_send_signal": 424,
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428,
    "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
    "pidfd_open": 434, "clone3": 435, "close_range": 436, "openat2": 437, "pidfd_getfd": 438,
    "faccessat2": 439, "process_madvise": 440, "epoll_pwait2": 441, "mount_setattr": 442,
    "quotactl_fd": 443, "landlock_create_ruleset": 444, "memfd_secret": 447,
    "process_mrelease": 448, "futex_waitv": 449, "cachestat": 451, "map_shadow_stack": 453,
    "statmount": 457, "listmount": 458, "lsm_get_self_attr": 459, "lsm_list_modules": 461, "mseal": 462,
    "setxattrat": 463, "getxattrat": 464, "open_tree_attr": 467, "listns": 470,
    # used by the engine's remote (injected) system calls
    "lseek": 8, "brk": 12, "pread64": 17, "pwrite64": 18, "readv": 19, "writev": 20,
    "sched_yield": 24, "dup": 32, "dup2": 33, "pause": 34, "nanosleep": 35, "setitimer": 38,
    "exit": 60, "fcntl": 72, "flock": 73, "chdir": 80, "fchdir": 81, "umask": 95, "setpgid": 109,
    "getppid": 110, "setsid": 112, "setgroups": 116, "setresuid": 117, "setresgid": 119, "setfsuid": 122, "setfsgid": 123,
    "getpgid": 121, "getsid": 124, "capget": 125, "capset": 126, "rt_sigpending": 127,
    "rt_sigtimedwait": 128, "rt_sigsuspend": 130, "sigaltstack": 131, "restart_syscall": 219,
    "timer_getoverrun": 225, "clock_nanosleep": 230, "exit_group": 231, "epoll_wait": 232,
    "get_mempolicy": 239, "openat": 257, "dup3": 292, "preadv": 295, "pwritev": 296,
    "prlimit64": 302, "tee": 276,
    "uname": 63, "sethostname": 170, "setdomainname": 171,
    # SysV IPC
    "mincore": 27, "shmget": 29, "shmat": 30, "shmctl": 31, "semget": 64, "semop": 65,
    "semctl": 66, "shmdt": 67, "msgget": 68, "msgsnd": 69, "msgrcv": 70, "msgctl": 71,
}


def _arg(value):
    """Coerce one syscall argument to something ctypes passes as a long."""
    if value is None:
        return ctypes.c_void_p(0)
    if isinstance(value, int):
        return ctypes.c_long(value)
    if isinstance(value, str):
        return ctypes.c_char_p(os.fsencode(value))
    return value  # bytes, ctypes pointers and byref() pass as they are


def syscall(name, *args):
    """Call syscall ``name`` and return its result; raise OSError on -1."""
    ret = _syscall(ctypes.c_long(NR[name]), *[_arg(a) for a in args])
    if ret == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")
    return ret


def check(ret, what):
    """Raise OSError from errno when a libc call returned -1."""
    if ret == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def ioctl(fd, request, arg=0):
    return syscall("ioctl", fd, request, arg)


# <asm-generic/ioctl.h>
_IOC_NONE, _IOC_WRITE, _IOC_READ = 0, 1, 2


def _IOC(direction, typ, nr, size):
    if isinstance(typ, str):
        typ = ord(typ)
    return (direction << 30) | (size << 16) | (typ << 8) | nr


def IO(typ, nr):
    return _IOC(_IOC_NONE, typ, nr, 0)


def IOR(typ, nr, size):
    return _IOC(_IOC_READ, typ, nr, size)


def IOW(typ, nr, size):
    return _IOC(_IOC_WRITE, typ, nr, size)


def IOWR(typ, nr, size):
    return _IOC(_IOC_READ | _IOC_WRITE, typ, nr, size)


def buffer_address(buf):
    """Address of a ctypes buffer, for structs that carry user pointers."""
    return ctypes.addressof(buf)
