"""File descriptors checkpoint/restore must see through: what /proc/pid/fdinfo
shows of each fd kind, and the fd-level calls a restorer needs.

Every probe creates the object, reads back what a dumper would read, and
closes everything.  Nothing here changes the process beyond its fd table
(temporarily), so everything runs in-process.  mnt_id in fdinfo is the
mounts area's; CRIU's required "fdinfo of eventfd/epoll/signalfd/inotify"
check is split into one probe per fd kind.
"""

import ctypes
import errno
import fcntl
import os
import select
import signal

from kernel import fdinfo, fds

from .common import closing_fds
from .registry import Call, absent, attempt, by_errno, errname, present, probe, undecided



def _watch_dir():
    """An existing directory on a filesystem that can encode file handles (no writes)."""
    for path in ("/dev/shm", "/tmp", "/"):
        if os.path.isdir(path):
            return path
    return "/"


def _close_in_background(fd):
    """Close an inotify/fanotify fd.

    Releasing an fsnotify group waits for an SRCU grace period (10-20 ms).
    It used to be handed to a helper thread, but that left a thread running
    after the probe returned and made glibc install its SIGSETXID handler in
    the prober for good (pthread_create): the prober must be left as found,
    so the wait is paid here.
    """
    os.close(fd)


def _hex(value):
    try:
        return int(value, 16)
    except (TypeError, ValueError):
        return None


# --- fdinfo of the fd kinds CRIU requires -------------------------------------

EVENTFD_COUNT = 13


def _judge_eventfd(seen):
    count = _hex(seen.get("eventfd-count"))
    if count is None:
        return absent("no eventfd-count line in fdinfo")
    extra = [k for k in ("eventfd-id", "eventfd-semaphore") if k in seen]
    if count != EVENTFD_COUNT:
        return undecided(f"eventfd-count {count}, expected {EVENTFD_COUNT}")
    return present("eventfd-count matches" + (f"; also {', '.join(extra)}" if extra else ""))


@probe("eventfd_fdinfo", "files", since="3.8",
       judge=_judge_eventfd,
       examples=[({"eventfd-count": "d", "eventfd-id": "3"}, True),
                 ({"eventfd-count": "c"}, None), ({}, False)])
def eventfd_fdinfo():
    """fdinfo of an eventfd shows its counter (CRIU required check, part 1 of 4)."""
    with closing_fds() as opened:
        fd = os.eventfd(EVENTFD_COUNT, os.EFD_CLOEXEC)
        opened.append(fd)
        return {k: v for k, v in fdinfo.read(fd).items() if k.startswith("eventfd-")}


def _judge_epoll(seen):
    lines = seen["tfd"]
    if not lines:
        return absent("no tfd: line for the watched pipe")
    if len(lines) != 1 or lines[0].get("tfd") != str(seen["target"]):
        return undecided(f"unexpected tfd lines: {lines}")
    fields = [k for k in ("events", "data", "pos", "ino", "sdev") if k in lines[0]]
    return present(f"tfd line with {' '.join(fields)}")


@probe("epoll_fdinfo", "files", since="3.8",
       judge=_judge_epoll,
       examples=[({"target": 5, "tfd": [{"tfd": "5", "events": "1d", "data": "5", "pos": "0",
                                          "ino": "aeed", "sdev": "f"}]}, True),
                 ({"target": 5, "tfd": []}, False),
                 ({"target": 5, "tfd": [{"tfd": "6", "events": "1d"}]}, None)])
def epoll_fdinfo():
    """fdinfo of an epoll fd lists its targets as tfd: lines (CRIU required check, part 2)."""
    with closing_fds() as opened:
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        opened += [read_end, write_end]
        poller = select.epoll()
        try:
            poller.register(read_end, select.EPOLLIN | select.EPOLLOUT)
            return {"target": read_end,
                    "tfd": fdinfo.entries(fdinfo.read(poller.fileno()), "tfd")}
        finally:
            poller.close()


SIGMASK_USR1 = 1 << (signal.SIGUSR1 - 1)


def _judge_signalfd(seen):
    mask = _hex(seen["sigmask"])
    if mask is None:
        return absent("no sigmask: line in fdinfo")
    if mask != SIGMASK_USR1:
        return undecided(f"sigmask {mask:#x}, expected {SIGMASK_USR1:#x}")
    return present(f"sigmask {mask:#x}")


@probe("signalfd_fdinfo", "files", since="3.8",
       judge=_judge_signalfd,
       examples=[({"sigmask": "0000000000000200"}, True), ({"sigmask": None}, False),
                 ({"sigmask": "0000000000000400"}, None)])
def signalfd_fdinfo():
    """fdinfo of a signalfd shows its sigmask (CRIU required check, part 3)."""
    with closing_fds() as opened:
        fd = fds.signalfd([signal.SIGUSR1])
        opened.append(fd)
        return {"sigmask": fdinfo.read(fd).get("sigmask")}


INOTIFY_FIELDS = ("wd", "ino", "sdev", "mask", "ignored_mask", "fhandle-bytes", "fhandle-type",
                  "f_handle")


def _judge_inotify(seen):
    marks = seen["marks"]
    if not marks:
        return absent("no inotify watch line in fdinfo")
    if len(marks) != 1 or _hex(marks[0].get("wd")) != seen["wd"]:
        return undecided(f"watch lines do not match wd {seen['wd']}: {marks}")
    missing = [f for f in INOTIFY_FIELDS if f not in marks[0]]
    if missing:
        return absent(f"watch line lacks {', '.join(missing)} (no CONFIG_FHANDLE/EXPORTFS "
                      "or a filesystem without handles)")
    size = _hex(marks[0]["fhandle-bytes"])
    return present(f"watch line with inode and a {size}-byte file handle")


@probe("inotify_fdinfo", "files", since="3.8",
       judge=_judge_inotify,
       examples=[({"wd": 1, "marks": [dict.fromkeys(INOTIFY_FIELDS, "1")]}, True),
                 ({"wd": 1, "marks": [{"wd": "1", "ino": "2", "sdev": "3", "mask": "fff",
                                       "ignored_mask": "0"}]}, False),
                 ({"wd": 1, "marks": []}, False),
                 ({"wd": 1, "marks": [dict.fromkeys(INOTIFY_FIELDS, "2")]}, None)])
def inotify_fdinfo():
    """fdinfo of inotify shows each watch with inode and file handle (CRIU required, part 4).

    Watches are restored from the handle, so CRIU requires the fhandle fields.
    """
    fd = fds.inotify_init1()
    try:
        wd = fds.inotify_add_watch(fd, _watch_dir(), fds.IN_ALL_EVENTS)
        return {"wd": wd, "marks": fdinfo.entries(fdinfo.read(fd), "inotify")}
    finally:
        _close_in_background(fd)


def _judge_timerfd(seen):
    code = seen["set_ticks"]
    shown = [k for k in ("clockid", "ticks", "settime flags", "it_value", "it_interval")
             if k in seen["fdinfo"]]
    if code == errno.EFAULT:
        return present(f"TFD_IOC_SET_TICKS(NULL) -> EFAULT; fdinfo shows {', '.join(shown)}")
    if code in (errno.ENOTTY, errno.EINVAL):
        return absent(f"TFD_IOC_SET_TICKS -> {errname(code)}")
    return undecided(f"unexpected: TFD_IOC_SET_TICKS(NULL) -> {errname(code)}")


@probe("timerfd", "files", since="3.17", criu_name="timerfd",
       judge=_judge_timerfd,
       examples=[({"set_ticks": errno.EFAULT, "fdinfo": ["clockid", "ticks"]}, True),
                 ({"set_ticks": errno.ENOTTY, "fdinfo": ["clockid"]}, False),
                 ({"set_ticks": errno.EINVAL, "fdinfo": []}, False),
                 ({"set_ticks": 0, "fdinfo": []}, None)])
def timerfd():
    """TFD_IOC_SET_TICKS on a timerfd (restores the expiry count), as `criu check` tries it:
    with a NULL pointer, so EFAULT proves the ioctl exists (CONFIG_CHECKPOINT_RESTORE)."""
    with closing_fds() as opened:
        fd = fds.timerfd_create(fds.CLOCK_MONOTONIC)
        opened.append(fd)
        call = attempt(fds.timerfd_set_ticks, fd, None)
        return {"set_ticks": call.errno, "fdinfo": sorted(fdinfo.read(fd))}


def _judge_fdinfo_lock(seen):
    if seen["flock"]:
        return undecided(f"flock(/proc/locks, LOCK_SH) -> {errname(seen['flock'])}")
    if seen["lock"] is None:
        return absent("no lock: line in fdinfo of a flock()ed fd")
    return present(f"lock: {' '.join(seen['lock'].split())}")


# --- locks -------------------------------------------------------------------

@probe("fdinfo_lock", "files", since="4.1", criu_name="fdinfo_lock",
       judge=_judge_fdinfo_lock,
       examples=[({"flock": 0, "lock": "1: FLOCK  ADVISORY  READ 12 00:16:4 0 EOF"}, True),
                 ({"flock": 0, "lock": None}, False),
                 ({"flock": errno.EWOULDBLOCK, "lock": None}, None)])
def fdinfo_lock():
    """fdinfo shows the locks held through the fd (lock: lines), as `criu check` tests it:
    a shared flock on /proc/locks."""
    with closing_fds() as opened:
        fd = os.open("/proc/locks", os.O_RDONLY | os.O_CLOEXEC)
        opened.append(fd)
        taken = attempt(fcntl.flock, fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        if not taken.ok:
            return {"flock": taken.errno, "lock": None}
        lock = fdinfo.read(fd).get("lock")
        return {"flock": 0, "lock": lock[0] if isinstance(lock, list) else lock}


def _judge_proc_locks(seen):
    kinds = seen["kinds"]
    if not kinds:
        return absent("no /proc/locks line for the locked file")
    if not {"FLOCK", "POSIX"} <= set(kinds):
        return undecided(f"only {', '.join(kinds)} listed")
    ofd = "OFD listed" if "OFDLCK" in kinds else f"no OFD locks (F_OFD_SETLK -> " \
                                                 f"{errname(seen['ofd'])})"
    return present(f"{', '.join(kinds)} listed with the inode; {ofd}", kinds=kinds)


@probe("proc_locks", "files", since="2.6.12",
       judge=_judge_proc_locks,
       examples=[({"kinds": ["FLOCK", "OFDLCK", "POSIX"], "ofd": 0}, True),
                 ({"kinds": ["FLOCK", "POSIX"], "ofd": errno.EINVAL}, True),
                 ({"kinds": ["FLOCK"], "ofd": 0}, None),
                 ({"kinds": [], "ofd": 0}, False)])
def proc_locks():
    """/proc/locks lists flock, POSIX and OFD locks with the inode they are on.

    One memfd gets all three kinds (POSIX on byte 0, OFD on byte 1: they
    would conflict on the same range); the lines naming its inode are read.
    """
    with closing_fds() as opened:
        fd = os.memfd_create("probe-locks", os.MFD_CLOEXEC)
        opened.append(fd)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fds.set_lock(fd, fds.F_SETLK, fds.F_WRLCK, 0, 1)
        ofd = attempt(fds.set_lock, fd, fds.F_OFD_SETLK, fds.F_WRLCK, 1, 1)
        st = os.fstat(fd)
        where = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        kinds = set()
        with open("/proc/locks") as f:
            for line in f:
                words = line.split()
                if where in words and len(words) > 1:
                    kinds.add(words[1])
        return {"kinds": sorted(kinds), "ofd": ofd.errno}


# --- other fd-level calls of CRIU's required checks ----------------------------

def _owner_uids():
    with closing_fds() as opened:
        fd = os.open("/proc/self/comm", os.O_RDONLY | os.O_CLOEXEC)
        opened.append(fd)
        return list(fds.getowner_uids(fd))


@probe("f_getowner_uids", "files", since="3.6",
       judge=by_errno("fcntl(F_GETOWNER_UIDS)", present_on=(0,), absent_on=("EINVAL",)),
       examples=[(Call(0, [0, 0]), True), (Call(errno.EINVAL), False),
                 (Call(errno.EBADF), None)])
def f_getowner_uids():
    """fcntl(F_GETOWNER_UIDS): the uids of an fd's F_SETOWN owner (CRIU required check)."""
    return attempt(_owner_uids)


def _vmsplice_one_unaligned_byte():
    with closing_fds() as opened:
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        opened += [read_end, write_end]
        buf = ctypes.create_string_buffer(b"xy", 2)
        return fds.vmsplice(write_end, ctypes.addressof(buf) + 1, 1,
                            fds.SPLICE_F_GIFT | fds.SPLICE_F_NONBLOCK)


def _judge_vmsplice(call):
    if call.ok and call.value == 1:
        return present("vmsplice(GIFT|NONBLOCK, 1 unaligned byte) -> 1")
    if call.errno in (errno.EINVAL, errno.ENOSYS):
        return absent(f"vmsplice -> {call.describe()}")
    return undecided(f"unexpected: vmsplice -> {call.describe()}")


@probe("vmsplice_unaligned", "files", since="2.6.17",
       judge=_judge_vmsplice,
       examples=[(Call(0, 1), True), (Call(errno.EINVAL), False), (Call(errno.ENOSYS), False),
                 (Call(errno.EAGAIN), None)])
def vmsplice_unaligned():
    """vmsplice(SPLICE_F_GIFT) of one unaligned byte into a pipe (CRIU required check:
    pages are dumped through pipes with vmsplice)."""
    return attempt(_vmsplice_one_unaligned_byte)


# --- pty and tty state -------------------------------------------------------

def _open_ptmx():
    return os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)


def _locked_pty():
    seen = {"ptmx": 0, "lock": None, "gptlck": None, "slave": None}
    with closing_fds() as opened:
        master = attempt(_open_ptmx)
        if not master.ok:
            seen["ptmx"] = master.errno
            return seen
        opened.append(master.value)
        seen["lock"] = attempt(fds.ioctl_set_int, master.value, fds.TIOCSPTLCK, 1).errno
        got = attempt(fds.ioctl_get_int, master.value, fds.TIOCGPTLCK)
        seen["gptlck"] = got.value if got.ok else -got.errno
        number = fds.ioctl_get_int(master.value, fds.TIOCGPTN)
        slave = attempt(os.open, f"/dev/pts/{number}",
                        os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        if slave.ok:
            opened.append(slave.value)
        seen["slave"] = slave.errno
    return seen


def _judge_pty_locked(seen):
    if seen["ptmx"]:
        return undecided(f"cannot open /dev/ptmx: {errname(seen['ptmx'])}")
    if seen["lock"]:
        return absent(f"TIOCSPTLCK -> {errname(seen['lock'])}")
    if seen["slave"] != errno.EIO:
        return absent(f"slave of a locked pty opened -> {errname(seen['slave'])}, expected EIO")
    if seen["gptlck"] != 1:
        got = seen["gptlck"]
        return absent("TIOCGPTLCK -> " + (errname(-got) if got is not None and got < 0
                                          else f"{got}, expected 1"))
    return present("slave refused with EIO; TIOCGPTLCK reads 1")


@probe("pty_locked", "files", since="3.8",
       judge=_judge_pty_locked,
       examples=[({"ptmx": 0, "lock": 0, "gptlck": 1, "slave": errno.EIO}, True),
                 ({"ptmx": 0, "lock": 0, "gptlck": -errno.EINVAL, "slave": errno.EIO}, False),
                 ({"ptmx": 0, "lock": 0, "gptlck": 1, "slave": 0}, False),
                 ({"ptmx": errno.ENOENT, "lock": None, "gptlck": None, "slave": None}, None)])
def pty_locked():
    """A locked pty (TIOCSPTLCK) refuses its slave with EIO, and TIOCGPTLCK reads the lock
    back (CRIU required "locked pty" check; TIOCGPTLCK is how a dumper sees the lock)."""
    return _locked_pty()


def _tty_flag(get_request, set_request, set_arg):
    """Read a tty flag, set it, read it again: (errno, before, after)."""
    with closing_fds() as opened:
        master = attempt(_open_ptmx)
        if not master.ok:
            return {"ptmx": master.errno}
        opened.append(master.value)
        before = attempt(fds.ioctl_get_int, master.value, get_request)
        if not before.ok:
            return {"ptmx": 0, "get": before.errno}
        if set_arg is None:
            fds.ioctl(master.value, set_request, 0)
        else:
            fds.ioctl_set_int(master.value, set_request, set_arg)
        after = fds.ioctl_get_int(master.value, get_request)
        return {"ptmx": 0, "get": 0, "before": before.value, "after": after}


def _judge_tty_flag(what):
    def judge(seen):
        if seen["ptmx"]:
            return undecided(f"cannot open /dev/ptmx: {errname(seen['ptmx'])}")
        if seen["get"] in (errno.ENOTTY, errno.EINVAL):
            return absent(f"{what} -> {errname(seen['get'])}")
        if seen["get"]:
            return undecided(f"unexpected: {what} -> {errname(seen['get'])}")
        if seen["before"] == 0 and seen["after"] == 1:
            return present(f"{what} reads 0, then 1 after setting it")
        return undecided(f"{what} read {seen['before']} then {seen['after']}")
    return judge


TTY_EXAMPLES = [({"ptmx": 0, "get": 0, "before": 0, "after": 1}, True),
                ({"ptmx": 0, "get": errno.ENOTTY}, False),
                ({"ptmx": 0, "get": errno.EINVAL}, False),
                ({"ptmx": 0, "get": 0, "before": 0, "after": 0}, None),
                ({"ptmx": errno.ENOENT}, None)]


@probe("tty_gexcl", "files", since="3.8", judge=_judge_tty_flag("TIOCGEXCL"),
       examples=TTY_EXAMPLES)
def tty_gexcl():
    """TIOCGEXCL: read a tty's exclusive mode (set with TIOCEXCL), needed to dump it."""
    return _tty_flag(fds.TIOCGEXCL, fds.TIOCEXCL, None)


@probe("tty_gpkt", "files", since="3.8", judge=_judge_tty_flag("TIOCGPKT"),
       examples=TTY_EXAMPLES)
def tty_gpkt():
    """TIOCGPKT: read a pty master's packet mode (set with TIOCPKT), needed to dump it."""
    return _tty_flag(fds.TIOCGPKT, fds.TIOCPKT, 1)


# --- O_PATH, file handles, close_range -----------------------------------

O_PATH = getattr(os, "O_PATH", 0o10000000)


def _o_path_flags():
    with closing_fds() as opened:
        fd = os.open("/", O_PATH | os.O_CLOEXEC)
        opened.append(fd)
        return int(fdinfo.read(fd)["flags"], 8)


def _judge_o_path(call):
    if not call.ok:
        if call.errno == errno.EINVAL:
            return absent("open(O_PATH) -> EINVAL")
        return undecided(f"open(O_PATH) -> {call.describe()}")
    if call.value & O_PATH:
        return present(f"fdinfo flags {call.value:o} include O_PATH")
    return undecided(f"fdinfo flags {call.value:o} lack O_PATH")


@probe("o_path_fdinfo", "files", since="2.6.39",
       judge=_judge_o_path,
       examples=[(Call(0, 0o12000000), True), (Call(0, 0o2000000), None),
                 (Call(errno.EINVAL), False)])
def o_path_fdinfo():
    """An O_PATH fd can be opened and its fdinfo flags show O_PATH (dumped as such)."""
    return attempt(_o_path_flags)


def _encode_handle():
    handle_type, handle, mount_id = fds.name_to_handle_at(fds.AT_FDCWD, _watch_dir())
    return {"type": handle_type, "bytes": len(handle), "mount_id": mount_id}


def _judge_encode(call):
    if call.ok:
        v = call.value
        return present(f"type {v['type']}, {v['bytes']} bytes, mount_id {v['mount_id']}")
    if call.errno == errno.ENOSYS:
        return absent("name_to_handle_at -> ENOSYS (no CONFIG_FHANDLE)")
    return undecided(f"name_to_handle_at({_watch_dir()}) -> {call.describe()}")


@probe("name_to_handle_at", "files", since="2.6.39",
       judge=_judge_encode,
       examples=[(Call(0, {"type": 1, "bytes": 8, "mount_id": 30}), True),
                 (Call(errno.ENOSYS), False), (Call(errno.EOPNOTSUPP), None)])
def name_to_handle_at():
    """name_to_handle_at(2): a file handle for a path (inotify/fanotify marks are dumped and
    restored by handle)."""
    return attempt(_encode_handle)


def _decode_handle():
    path = _watch_dir()
    handle_type, handle, _ = fds.name_to_handle_at(fds.AT_FDCWD, path)
    with closing_fds() as opened:
        mount_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        opened.append(mount_fd)
        got = attempt(fds.open_by_handle_at, mount_fd, handle_type, handle)
        if not got.ok:
            return {"open": got.errno}
        opened.append(got.value)
        a, b = os.fstat(got.value), os.stat(path)
        return {"open": 0, "same_inode": (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)}




def _judge_decode(call):
    if not call.ok:
        if call.errno == errno.ENOSYS:
            return absent("name_to_handle_at -> ENOSYS (no CONFIG_FHANDLE)")
        return undecided(f"cannot encode a handle: {call.describe()}")
    code = call.value["open"]
    if code == errno.ENOSYS:
        return absent("open_by_handle_at -> ENOSYS")
    if code == errno.EPERM:
        return undecided("open_by_handle_at -> EPERM: needs CAP_DAC_READ_SEARCH")
    if code:
        return undecided(f"open_by_handle_at -> {errname(code)}")
    if not call.value["same_inode"]:
        return undecided("the handle reopened a different inode")
    return present("reopened the same inode from its handle")


@probe("open_by_handle_at", "files", since="2.6.39", needs="CAP_DAC_READ_SEARCH",
       judge=_judge_decode,
       examples=[(Call(0, {"open": 0, "same_inode": True}), True),
                 (Call(0, {"open": errno.EPERM}), None),
                 (Call(0, {"open": 0, "same_inode": False}), None),
                 (Call(errno.ENOSYS), False), (Call(0, {"open": errno.ENOSYS}), False)])
def open_by_handle_at():
    """open_by_handle_at(2) reopens a file from its handle (restoring inotify watches).
    Needs CAP_DAC_READ_SEARCH."""
    return attempt(_decode_handle)


def _close_range():
    seen = {"einval": attempt(fds.close_range, 2, 1, 0).errno}
    with closing_fds() as opened:
        fd = os.dup(0) if _fd_ok(0) else os.open("/", os.O_RDONLY)
        opened.append(fd)
        os.set_inheritable(fd, True)
        seen["cloexec"] = attempt(fds.close_range, fd, fd, fds.CLOSE_RANGE_CLOEXEC).errno
        seen["cloexec_set"] = not os.get_inheritable(fd)
    return seen


def _fd_ok(fd):
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def _judge_close_range(seen):
    if seen["einval"] == errno.ENOSYS:
        return absent("close_range -> ENOSYS")
    if seen["einval"] != errno.EINVAL:
        return undecided(f"close_range(2, 1, 0) -> {errname(seen['einval'])}, expected EINVAL")
    cloexec = "CLOSE_RANGE_CLOEXEC works" if seen["cloexec"] == 0 and seen["cloexec_set"] \
        else f"CLOSE_RANGE_CLOEXEC -> {errname(seen['cloexec'])}"
    return present(f"close_range(2, 1, 0) -> EINVAL; {cloexec}")


@probe("close_range", "files", since="5.9",
       judge=_judge_close_range,
       examples=[({"einval": errno.EINVAL, "cloexec": 0, "cloexec_set": True}, True),
                 ({"einval": errno.EINVAL, "cloexec": errno.EINVAL, "cloexec_set": False}, True),
                 ({"einval": errno.ENOSYS, "cloexec": errno.ENOSYS, "cloexec_set": False}, False),
                 ({"einval": 0, "cloexec": 0, "cloexec_set": True}, None)])
def close_range():
    """close_range(2) (CRIU closes its service fds with it): close_range(2, 1, 0) must fail
    with EINVAL, as CRIU tests it; CLOSE_RANGE_CLOEXEC is tried on a dup."""
    return _close_range()


# --- fanotify and pidfd fdinfo ---------------------------------------------------

FANOTIFY_MARK_FIELDS = ("ino", "sdev", "mflags", "mask", "ignored_mask", "fhandle-bytes",
                        "fhandle-type", "f_handle")


def _fanotify():
    made = attempt(fds.fanotify_init)
    if not made.ok:
        return {"init": made.errno}
    try:
        marked = attempt(fds.fanotify_mark, made.value, fds.FAN_MARK_ADD, fds.FAN_OPEN,
                         _watch_dir())
        if not marked.ok:
            return {"init": 0, "mark": marked.errno}
        return {"init": 0, "mark": 0,
                "lines": fdinfo.entries(fdinfo.read(made.value), "fanotify")}
    finally:
        _close_in_background(made.value)


def _judge_fanotify(seen):
    if seen["init"] == errno.ENOSYS:
        return absent("fanotify_init -> ENOSYS (no CONFIG_FANOTIFY)")
    if seen["init"]:
        return undecided(f"fanotify_init -> {errname(seen['init'])}")
    if seen["mark"]:
        return undecided(f"fanotify_mark -> {errname(seen['mark'])}")
    lines = seen["lines"]
    marks = [m for m in lines if "ino" in m]
    if not marks:
        return absent("no fanotify mark line in fdinfo")
    missing = [f for f in FANOTIFY_MARK_FIELDS if f not in marks[0]]
    if missing:
        return absent(f"mark line lacks {', '.join(missing)}")
    group = "group flags shown" if any("flags" in m for m in lines) else "no group flags line"
    return present(f"inode mark with mask and file handle; {group}")


@probe("fanotify_fdinfo", "files", since="3.8", needs="CAP_SYS_ADMIN",
       judge=_judge_fanotify,
       examples=[({"init": 0, "mark": 0, "lines": [
                      {"flags": "1", "event-flags": "0"},
                      dict.fromkeys(FANOTIFY_MARK_FIELDS, "1")]}, True),
                 ({"init": 0, "mark": 0, "lines": [{"flags": "1", "event-flags": "0"}]},
                  False),
                 ({"init": errno.ENOSYS}, False), ({"init": errno.EPERM}, None),
                 ({"init": 0, "mark": errno.EINVAL}, None)])
def fanotify_fdinfo():
    """fdinfo of a fanotify group shows its flags and each inode mark with a file handle."""
    return _fanotify()


def _pidfd_fdinfo():
    with closing_fds() as opened:
        fd = os.pidfd_open(os.getpid())
        opened.append(fd)
        info = fdinfo.read(fd)
        return {"pid": os.getpid(), "Pid": info.get("Pid"), "NSpid": info.get("NSpid")}


def _judge_pidfd(call):
    if not call.ok:
        if call.errno == errno.ENOSYS:
            return absent("pidfd_open -> ENOSYS")
        return undecided(f"pidfd_open -> {call.describe()}")
    v = call.value
    if v["Pid"] is None:
        return absent("no Pid: line in a pidfd's fdinfo")
    if v["Pid"] != str(v["pid"]):
        return undecided(f"Pid: {v['Pid']}, expected {v['pid']}")
    return present("Pid: matches" + ("; NSpid: shown" if v["NSpid"] is not None
                                     else "; no NSpid: line"))


@probe("pidfd_fdinfo", "files", since="~5.5",
       judge=_judge_pidfd,
       examples=[(Call(0, {"pid": 7, "Pid": "7", "NSpid": "7"}), True),
                 (Call(0, {"pid": 7, "Pid": None, "NSpid": None}), False),
                 (Call(errno.ENOSYS), False),
                 (Call(0, {"pid": 7, "Pid": "8", "NSpid": "8"}), None)])
def pidfd_fdinfo():
    """fdinfo of a pidfd names its process (Pid:, NSpid: per pid namespace level)."""
    return attempt(_pidfd_fdinfo)
