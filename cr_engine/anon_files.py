"""Files without a path that the kernel makes from a few numbers: eventfd, signalfd, timerfd,
inotify.

Dump reads those numbers from /proc/pid/fdinfo; restore makes a new file from them.
A relative timerfd restarts with the time it had left at dump (frozen time does not count,
as with CRIU); an absolute one (TFD_TIMER_ABSTIME) keeps its expiry on its clock.  Expiries
not yet read (timerfd ticks) come back through TFD_IOC_SET_TICKS.  Inotify watches come back
with their masks and watch descriptors (INOTIFY_IOC_SETNEXTWD) on the path their file
handle leads to at dump; events queued but unread at dump are not carried (reading them
would take them from the process).
"""

import ctypes
import os
import re
import struct
import time

from kernel import fdinfo, fds
from kernel.libc import ioctl, syscall

from .errors import RestoreError, Unsupported

KINDS = ("eventfd", "signalfd", "timerfd", "inotify")
EFD_SEMAPHORE = 1
TFD_TIMER_ABSTIME = 1
_PAIR = re.compile(r"\((\d+),\s*(\d+)\)")


def describe(kind, info, flags, what):
    """The image of an eventfd, signalfd, timerfd or inotify from its parsed fdinfo."""
    desc = {"type": kind, "flags": flags}
    if kind == "inotify":
        desc["watches"] = [_watch(w, what) for w in fdinfo.entries(info, "inotify")]
        return desc
    if kind == "eventfd":
        desc["count"] = int(info["eventfd-count"], 16)     # printed as %16llx
        desc["semaphore"] = info.get("eventfd-semaphore") == "1"
    elif kind == "signalfd":
        desc["sigmask"] = int(info["sigmask"], 16)
    elif kind == "timerfd":
        clock = int(info["clockid"])
        value, interval = (_timespec(info[key]) for key in ("it_value", "it_interval"))
        desc.update(clock=clock, ticks=int(info["ticks"]), interval=interval,
                    abstime=bool(int(info["settime flags"], 8) & TFD_TIMER_ABSTIME))
        if desc["abstime"] and value:
            desc["expiry"] = time.clock_gettime_ns(clock) + value  # fdinfo shows time left
        else:
            desc["remaining"] = value
    return desc


def _watch(fields, what):
    """One inotify watch: wd, mask and the path its file handle opens to now."""
    sdev = int(fields["sdev"], 16)                   # the kernel's dev_t: major << 20 | minor
    dev = (sdev >> 20, sdev & 0xFFFFF)
    handle = bytes.fromhex(fields["f_handle"])
    mount = _mount_of(dev)
    if mount is None:
        raise Unsupported(f"unsupported: inotify watch on device {dev[0]}:{dev[1]} with no "
                          f"mount here ({what})")
    mount_fd = os.open(mount, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # not O_PATH: refused
    try:
        fd = fds.open_by_handle_at(mount_fd, int(fields["fhandle-type"], 16), handle,
                                   os.O_PATH | os.O_CLOEXEC)
    except OSError as e:
        raise Unsupported(f"unsupported: inotify watch whose file is gone ({e.strerror}; "
                          f"{what})") from None
    finally:
        os.close(mount_fd)
    try:
        path = os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)
    if not path.startswith("/") or path.endswith(" (deleted)"):
        raise Unsupported(f"unsupported: inotify watch on {path} ({what})")
    return {"wd": int(fields["wd"], 16), "mask": int(fields["mask"], 16), "path": path,
            "inode": int(fields["ino"], 16), "dev": list(dev)}


def _mount_of(dev):
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            if parts[2] == f"{dev[0]}:{dev[1]}":
                return parts[4]
    return None


def _timespec(text):
    sec, nsec = _PAIR.match(text).groups()
    return int(sec) * 1_000_000_000 + int(nsec)


def create(desc):
    """A new file like the dumped one, close-on-exec (the fd table sets its own flags)."""
    kind, flags = desc["type"], desc["flags"] & os.O_NONBLOCK | os.O_CLOEXEC
    if kind == "eventfd":
        # eventfd2 takes a 32-bit start value: the 64-bit count is written in
        fd = os.eventfd(0, flags | (EFD_SEMAPHORE if desc["semaphore"] else 0))
        if desc["count"]:
            os.eventfd_write(fd, desc["count"])
        return fd
    if kind == "signalfd":
        mask = ctypes.c_uint64(desc["sigmask"])
        return syscall("signalfd4", -1, ctypes.byref(mask), 8, flags)
    if kind == "inotify":
        return _inotify(desc, flags)
    fd = fds.timerfd_create(desc["clock"], flags)
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
            fds.timerfd_set_ticks(fd, desc["ticks"])
    except BaseException:
        os.close(fd)
        raise
    return fd


def _inotify(desc, flags):
    fd = fds.inotify_init1(flags)
    try:
        for watch in sorted(desc["watches"], key=lambda w: w["wd"]):
            st = os.stat(watch["path"])
            if st.st_ino != watch["inode"]:
                raise RestoreError(f"{watch['path']}, watched by an inotify, is not the file "
                                   f"that was dumped", "files")
            ioctl(fd, fds.INOTIFY_IOC_SETNEXTWD, watch["wd"])
            wd = fds.inotify_add_watch(fd, watch["path"], watch["mask"])
            if wd != watch["wd"]:
                raise RestoreError(f"inotify watch on {watch['path']} came back as wd {wd}, "
                                   f"not {watch['wd']}", "files")
    except BaseException:
        os.close(fd)
        raise
    return fd
