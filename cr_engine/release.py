"""Letting a restored tree go: threads dumped asleep in a system call first, and nothing else
until they sleep in it again.

A thread dumped in an interrupted system call (pause, read, a wait...) leaves its ptrace
stop through the kernel's signal path, which, finding no signal, restarts the call: rip
back on the syscall instruction, rax the call's number (regs.py).  From there until the
thread is inside the call again it is, as far as signals go, *before* the call: a signal
with a handler that comes then runs the handler and the call is entered afterwards - a
pause() sleeps through the very signal it waited for.  A task asleep in pause() never has
that window unless something stops it, but a restored one passes it right at the release,
and on a loaded machine it can sit in it for milliseconds (preempted on its way out of the
kernel) while the threads released before it, or the caller the restore returned to,
already send signals: 2 restores in 30 of a 100-process tree lost a SIGTERM that way.

So the sleepers go first, and the others (threads dumped in user code, who may signal
them) and the caller wait until each sleeper is asleep again in its own call
(/proc/TID/syscall names it), or is past it: asleep in another call, stopped, gone, or
busy on the CPU for longer than the way back into the call can take.
"""

import time

SETTLE_TIMEOUT = 5.0        # s: a guard only; a sleeper is normally back in well under 1 ms
BUSY_NS = 2_000_000         # CPU time that means "runs its own code again"
POLL = 0.0005


def _cpu_ns(tid):
    try:
        with open(f"/proc/{tid}/schedstat") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _settled(tid, nr, cpu0):
    try:
        with open(f"/proc/{tid}/syscall") as f:
            first = f.read().split(None, 1)[0]
    except (OSError, IndexError):
        return True                 # gone (or not ours to read: nothing to wait for)
    if first not in ("running", "-1"):
        return True                 # blocked in its call again, or in another one
    # runnable (perhaps preempted on its way back), or blocked outside any call (-1: a
    # fault on the syscall instruction's page, say): still before its call, unless it
    # exited, stopped, or has run its own code for a while
    try:
        with open(f"/proc/{tid}/stat") as f:
            if f.read().rpartition(")")[2].split()[0] in "ZXxTt":
                return True
    except (OSError, IndexError):
        return True
    cpu = _cpu_ns(tid)
    return cpu is None or cpu0 is None or cpu - cpu0 > BUSY_NS


class Sleepers:
    """Threads let go from an interrupted system call, waited for until they are back in it."""

    def __init__(self):
        self.waiting = {}           # tid: (syscall number, CPU time before the release)

    def add(self, tid, nr):
        """Call before the thread is let go."""
        self.waiting[tid] = (nr, _cpu_ns(tid))

    def wait(self, timeout=SETTLE_TIMEOUT):
        """Until every thread added is settled; the number that were not by ``timeout``."""
        deadline = time.monotonic() + timeout
        left = dict(self.waiting)
        while left:
            left = {tid: v for tid, v in left.items() if not _settled(tid, *v)}
            if not left or time.monotonic() > deadline:
                break
            time.sleep(POLL)
        self.waiting = {}
        return len(left)
