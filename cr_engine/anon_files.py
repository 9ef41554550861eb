"""Files without a path that the kernel makes from a few numbers: eventfd, signalfd, timerfd.

Dump reads those numbers from /proc/pid/fdinfo; restore makes a new file from them.
A relative timerfd restarts with the time it had left at dump (frozen time does not count,
as with CRIU); an absolute one (TFD_TIMER_ABSTIME) keeps its expiry on its clock.  Expiries
not yet read (timerfd ticks) come back through TFD_IOC_SET_TICKS.
"""

import ctypes
import fcntl
import os
import re
import struct
import time

from kernel.libc import syscall

KINDS = ("eventfd", "signalfd", "timerfd")
EFD_SEMAPHORE = 1
TFD_TIMER_ABSTIME = 1
TFD_IOC_SET_TICKS = 0x40085400
_CREATE_FLAGS = os.O_NONBLOCK | os.O_CLOEXEC     # what eventfd2/signalfd4/timerfd_create take
_PAIR = re.compile(r"\((\d+),\s*(\d+)\)")


def describe(kind, info, flags):
    """The image of an eventfd, signalfd or timerfd from its parsed fdinfo."""
    desc = {"type": kind, "flags": flags}
    if kind == "eventfd":
        desc["count"] = int(info["eventfd-count"], 16)     # printed as %16llx
        desc["semaphore"] = info.get("eventfd-semaphore") == "1"
    elif kind == "signalfd":
        desc["sigmask"] = int(info["sigmask"], 16)
    else:
        clock = int(info["clockid"])
        value, interval = (_timespec(info[key]) for key in ("it_value", "it_interval"))
        desc.update(clock=clock, ticks=int(info["ticks"]), interval=interval,
                    abstime=bool(int(info["settime flags"], 8) & TFD_TIMER_ABSTIME))
        if desc["abstime"] and value:
            desc["expiry"] = time.clock_gettime_ns(clock) + value  # fdinfo shows time left
        else:
            desc["remaining"] = value
    return desc


def _timespec(text):
    sec, nsec = _PAIR.match(text).groups()
    return int(sec) * 1_000_000_000 + int(nsec)


def create(desc):
    """A new file like the dumped one, close-on-exec (the fd table sets its own flags)."""
    kind, flags = desc["type"], desc["flags"] & os.O_NONBLOCK | os.O_CLOEXEC
    if kind == "eventfd":
        return os.eventfd(desc["count"], flags | (EFD_SEMAPHORE if desc["semaphore"] else 0))
    if kind == "signalfd":
        mask = ctypes.c_uint64(desc["sigmask"])
        return syscall("signalfd4", -1, ctypes.byref(mask), 8, flags)
    fd = syscall("timerfd_create", desc["clock"], flags)
    try:
        if "expiry" in desc:
            value, how = desc["expiry"], TFD_TIMER_ABSTIME
        else:
            value, how = desc["remaining"], 0
        spec = struct.pack("qqqq", *divmod(desc["interval"], 1_000_000_000),
                           *divmod(value, 1_000_000_000))
        buf = ctypes.create_string_buffer(spec)
        syscall("timerfd_settime", fd, how, buf, None)
        if desc["ticks"]:
            fcntl.ioctl(fd, TFD_IOC_SET_TICKS, struct.pack("Q", desc["ticks"]))
    except BaseException:
        os.close(fd)
        raise
    return fd
