"""File-descriptor kinds and fd-level calls checkpoint/restore must handle.

signalfd, inotify, timerfd, fanotify, file handles, vmsplice, close_range,
fcntl locks and seals, pty ioctls, raw getsockopt.  Thin wrappers: every
failure raises OSError with the kernel's errno; meanings belong to callers.
Where the project's syscall table has no number, the glibc function is used.
"""

import ctypes
import fcntl
import os
import struct

from .libc import IO, IOR, IOW, check, ioctl, libc, syscall

# --- epoll -------------------------------------------------------------------
EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD = 1, 2, 3
EPOLLEXCLUSIVE, EPOLLWAKEUP, EPOLLONESHOT, EPOLLET = 1 << 28, 1 << 29, 1 << 30, 1 << 31
# the bits an item keeps once its one shot has fired (the kernel's EP_PRIVATE_BITS)
EPOLL_PRIVATE_BITS = EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE
_EPOLL_EVENT = struct.Struct("=IQ")     # struct epoll_event is packed on x86-64


def epoll_create1(flags=os.O_CLOEXEC):
    return syscall("epoll_create1", flags)


def epoll_ctl(epfd, op, fd, events=0, data=0):
    """epoll_ctl(2) with a 64-bit data word (select.epoll only stores the fd there)."""
    event = ctypes.create_string_buffer(_EPOLL_EVENT.pack(events, data), _EPOLL_EVENT.size)
    return syscall("epoll_ctl", epfd, op, fd, event)


def epoll_wait(epfd, maxevents, timeout=0):
    """[(events, data)] of one epoll_wait(2) call."""
    size = _EPOLL_EVENT.size
    buf = ctypes.create_string_buffer(size * max(maxevents, 1))
    count = syscall("epoll_wait", epfd, buf, max(maxevents, 1), timeout)
    return [_EPOLL_EVENT.unpack_from(buf, i * size) for i in range(count)]


# --- signalfd ----------------------------------------------------------------
SFD_CLOEXEC = os.O_CLOEXEC
SFD_NONBLOCK = os.O_NONBLOCK


def signalfd(signals, flags=SFD_CLOEXEC, fd=-1):
    """signalfd4(2) for the set of signal numbers ``signals``."""
    mask = ctypes.c_uint64(sum(1 << (s - 1) for s in signals))
    return syscall("signalfd4", fd, ctypes.byref(mask), 8, flags)


# --- inotify -----------------------------------------------------------------
IN_CLOEXEC = os.O_CLOEXEC
IN_ALL_EVENTS = 0xfff
INOTIFY_IOC_SETNEXTWD = IOW("I", 0, 4)

libc.inotify_add_watch.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32)


def inotify_init1(flags=IN_CLOEXEC):
    return syscall("inotify_init1", flags)


def inotify_add_watch(fd, path, mask=IN_ALL_EVENTS):
    return check(libc.inotify_add_watch(fd, os.fsencode(path), mask), "inotify_add_watch")


# --- timerfd -----------------------------------------------------------------
CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME = 0, 1, 7
TFD_CLOEXEC = os.O_CLOEXEC
TFD_IOC_SET_TICKS = IOW("T", 0, 8)


def timerfd_create(clockid=CLOCK_MONOTONIC, flags=TFD_CLOEXEC):
    return syscall("timerfd_create", clockid, flags)


def timerfd_set_ticks(fd, ticks=None):
    """TFD_IOC_SET_TICKS; ``ticks=None`` passes a NULL pointer."""
    if ticks is None:
        return ioctl(fd, TFD_IOC_SET_TICKS, None)
    value = ctypes.c_uint64(ticks)
    return ioctl(fd, TFD_IOC_SET_TICKS, ctypes.byref(value))


# --- fanotify ----------------------------------------------------------------
FAN_CLOEXEC = 0x1
FAN_CLASS_NOTIF = 0x0
FAN_MARK_ADD = 0x1
FAN_OPEN = 0x20
FAN_CLOSE_WRITE = 0x8

libc.fanotify_mark.argtypes = (ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int,
                               ctypes.c_char_p)


def fanotify_init(flags=FAN_CLOEXEC | FAN_CLASS_NOTIF, event_f_flags=os.O_RDONLY):
    return syscall("fanotify_init", flags, event_f_flags)


def fanotify_mark(fd, flags, mask, path, dirfd=-100):
    return check(libc.fanotify_mark(fd, flags, mask, dirfd, os.fsencode(path)), "fanotify_mark")


# --- file handles ------------------------------------------------------------
MAX_HANDLE_SZ = 128
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000


class FileHandle(ctypes.Structure):
    _fields_ = [("handle_bytes", ctypes.c_uint32), ("handle_type", ctypes.c_int),
                ("f_handle", ctypes.c_ubyte * MAX_HANDLE_SZ)]


def name_to_handle_at(dirfd, path, flags=0):
    """(handle_type, handle bytes, mount_id) of ``path``."""
    handle = FileHandle(handle_bytes=MAX_HANDLE_SZ)
    mount_id = ctypes.c_int(0)
    syscall("name_to_handle_at", dirfd, path, ctypes.byref(handle), ctypes.byref(mount_id), flags)
    return handle.handle_type, bytes(handle.f_handle[:handle.handle_bytes]), mount_id.value


def open_by_handle_at(mount_fd, handle_type, handle, flags=os.O_RDONLY | os.O_CLOEXEC):
    fh = FileHandle(handle_bytes=len(handle), handle_type=handle_type)
    ctypes.memmove(fh.f_handle, handle, len(handle))
    return syscall("open_by_handle_at", mount_fd, ctypes.byref(fh), flags)


# --- vmsplice, close_range ---------------------------------------------------
SPLICE_F_NONBLOCK = 0x2
SPLICE_F_GIFT = 0x8


class Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def vmsplice(fd, address, length, flags=0):
    """vmsplice(2) of one iovec {address, length}."""
    iov = Iovec(address, length)
    return syscall("vmsplice", fd, ctypes.byref(iov), 1, flags)


CLOSE_RANGE_UNSHARE = 1 << 1
CLOSE_RANGE_CLOEXEC = 1 << 2


def close_range(first, last, flags=0):
    return syscall("close_range", first, last, flags)


# --- fcntl: owner uids, locks ------------------------------------------
F_LINUX_SPECIFIC_BASE = 1024
F_GETOWNER_UIDS = 17  # asm-generic/fcntl.h (not F_LINUX_SPECIFIC_BASE-relative)
F_SETLK, F_OFD_SETLK = 6, 37
F_RDLCK, F_WRLCK, F_UNLCK = 0, 1, 2

_FLOCK = struct.Struct("=hh4xqqi4x")  # struct flock: type, whence, (pad), start, len, pid


def getowner_uids(fd):
    """F_GETOWNER_UIDS: (real uid, effective uid) of the fd's owner."""
    return struct.unpack("=II", fcntl.fcntl(fd, F_GETOWNER_UIDS, bytes(8)))


def set_lock(fd, cmd, kind=F_WRLCK, start=0, length=0):
    """F_SETLK / F_OFD_SETLK on [start, start+length) (0 = to EOF)."""
    return fcntl.fcntl(fd, cmd, _FLOCK.pack(kind, os.SEEK_SET, start, length, 0))


# --- ttys (asm-generic/ioctls.h) ----------------------------------------------
TIOCGPTN = IOR("T", 0x30, 4)
TIOCSPTLCK = IOW("T", 0x31, 4)
TIOCGPKT = IOR("T", 0x38, 4)
TIOCGPTLCK = IOR("T", 0x39, 4)
TIOCGEXCL = IOR("T", 0x40, 4)
TIOCGPTPEER = IO("T", 0x41)
TIOCPKT = 0x5420
TIOCEXCL, TIOCNXCL = 0x540C, 0x540D
TIOCSCTTY, TIOCGPGRP, TIOCSPGRP, TIOCGSID = 0x540E, 0x540F, 0x5410, 0x5429


def ioctl_get_int(fd, request):
    value = ctypes.c_int(-1)
    ioctl(fd, request, ctypes.byref(value))
    return value.value


def ioctl_set_int(fd, request, value):
    arg = ctypes.c_int(value)
    return ioctl(fd, request, ctypes.byref(arg))


# --- sockets -----------------------------------------------------------------
libc.getsockopt.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
                            ctypes.POINTER(ctypes.c_uint32))


def getsockopt(fd, level, name, size):
    """Raw getsockopt(2) with a ``size``-byte buffer (NULL for 0): (bytes, optlen)."""
    buf = ctypes.create_string_buffer(size) if size else None
    optlen = ctypes.c_uint32(size)
    check(libc.getsockopt(fd, level, name, buf, ctypes.byref(optlen)), "getsockopt")
    return (buf.raw[:optlen.value] if buf is not None else b""), optlen.value


SIOCGSKNS = 0x894C
SIOCPROTOPRIVATE = 0x89E0
SIOCUNIXFILE = SIOCPROTOPRIVATE + 0
