"""Timers: interval timers (setitimer/alarm) and POSIX timers with their ids.

Times are carried as what remained at dump; the clock does not run while the tree is
checkpointed (as with CRIU).
"""

import ctypes
import functools
import struct

from kernel.libc import syscall
from kernel.process import PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_ON

from . import proc
from .errors import RestoreError

ITIMERS = {"real": 0, "virtual": 1, "prof": 2}
ITIMERVAL = struct.Struct("<qqqq")        # interval sec/usec, value sec/usec
ITIMERSPEC = struct.Struct("<qqqq")       # interval sec/nsec, value sec/nsec
SIGEVENT = struct.Struct("<Qiii44x")      # sigev_value, signo, notify, _tid (64 bytes)
SIGEV_THREAD_ID = 4
_NOTIFY = {"signal": 0, "none": 1, "thread": 2}


def _unpadded(values):
    """setitimer() pads a CPU-time timer with a tick so that it never fires early
    (kernel/time/itimer.c): without taking it off, every C/R would add a tick."""
    isec, iusec, sec, usec = values
    left = sec * 1_000_000 + usec - cpu_itimer_padding_us()
    left = max(left, 1)
    return [isec, iusec, left // 1_000_000, left % 1_000_000]


@functools.lru_cache(maxsize=None)
def cpu_itimer_padding_us():
    """The tick setitimer() adds to CPU-time timers, measured on this process (the kernel's
    HZ is not exposed): set ITIMER_VIRTUAL, read it back at once, put the old one back."""
    big = ITIMERVAL.pack(0, 0, 1000, 0)
    old, now = ctypes.create_string_buffer(ITIMERVAL.size), ctypes.create_string_buffer(
        ITIMERVAL.size)
    syscall("setitimer", ITIMERS["virtual"], big, old)
    syscall("getitimer", ITIMERS["virtual"], now)
    syscall("setitimer", ITIMERS["virtual"], old, None)
    _, _, sec, usec = ITIMERVAL.unpack(now.raw)
    padding = sec * 1_000_000 + usec - 1000 * 1_000_000
    return max(0, round(padding / 10) * 10)       # less the few us spent in between


def dump_itimers(rem, scratch):
    out = {}
    at = scratch.reserve(ITIMERVAL.size)
    for name, which in ITIMERS.items():
        rem.call("getitimer", which, at)
        values = ITIMERVAL.unpack(scratch.read(at, ITIMERVAL.size))
        if any(values):
            out[name] = list(values)
    scratch.reset()
    return out


def restore_itimers(rem, scratch, itimers):
    for name, values in itimers.items():
        if name != "real":
            values = _unpadded(values)
        at = scratch.put(ITIMERVAL.pack(*values))
        rem.call("setitimer", ITIMERS[name], at, 0)
        scratch.reset()


def dump_posix(rem, scratch, pid):
    out = []
    at = scratch.reserve(ITIMERSPEC.size)
    for timer in proc.timers(pid):
        rem.call("timer_gettime", timer["id"], at)
        timer["spec"] = list(ITIMERSPEC.unpack(scratch.read(at, ITIMERSPEC.size)))
        timer["overrun"] = rem.call("timer_getoverrun", timer["id"])
        how, _, target = timer.pop("notify").partition("/")
        timer["notify"] = _NOTIFY.get(how, 0) | (SIGEV_THREAD_ID if target == "tid" else 0)
        out.append(timer)
    scratch.reset()
    return sorted(out, key=lambda t: t["id"])


def restore_posix(rem, scratch, timers, pid, live=None):
    """``live``: dumped tid -> the tid the thread has now, where they differ."""
    if not timers:
        return
    exact = rem.call("prctl", PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_ON,
                     0, 0, 0, check=False) == 0
    id_at = scratch.reserve(4)
    spare = []
    for timer in timers:
        target = timer["notify_tid"]    # made from inside: its pid namespace's number
        if target:
            target = proc.ns_tid(pid, (live or {}).get(target, target))
        event = scratch.put(SIGEVENT.pack(timer["sigev_value"], timer["signal"],
                                          timer["notify"], target))
        while True:
            scratch.put_at(id_at, struct.pack("<i", timer["id"]))
            rem.call("timer_create", timer["clock"], event, id_at)
            got = struct.unpack("<i", scratch.read(id_at, 4))[0]
            if got == timer["id"]:
                break
            if exact or got > timer["id"]:
                raise RestoreError(f"POSIX timer {timer['id']} came back as {got}", "timers")
            spare.append(got)           # ids are handed out in order: burn the ones below
        spec = timer["spec"]
        if any(spec[2:]):
            at = scratch.put(ITIMERSPEC.pack(*spec))
            rem.call("timer_settime", timer["id"], 0, at, 0)
    for timer_id in spare:
        rem.call("timer_delete", timer_id)
    if exact:
        rem.call("prctl", PR_TIMER_CREATE_RESTORE_IDS, 0, 0, 0, 0)
    scratch.reset()
