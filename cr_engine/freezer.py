"""Freezing a process tree with ptrace (PTRACE_SEIZE + PTRACE_INTERRUPT of every thread),
and thawing it again exactly as it was.

While frozen, every thread has all signals blocked (its own mask is saved) so that no signal
is taken while the engine works inside it; a signal that was already being delivered when
the thread stopped is kept in ``Thread.taken_signals`` and handed back on thaw.
"""

import os
import signal
import time

from kernel import ptrace

from . import proc, release
from .errors import DumpError
from .regs import get_regs, interrupted_syscall, set_regs
from .remote import SEIZE_OPTIONS, TraceeGone, get_siginfo, set_sigmask, wait_stop

ALL_SIGNALS = (1 << 64) - 1


class Thread:
    def __init__(self, tid):
        self.tid = tid
        self.regs = None            # registers at the stop, before the engine touched them
        self.sigmask = None
        self.taken_signals = []     # raw siginfos dequeued by the kernel as we stopped it
        self.group_stopped = False  # the thread was in a SIGSTOP-style group stop
        self.touched = False        # the engine ran calls in it (its stop is no longer the
                                    # kernel's own: thaw must restart its syscall itself)


class Process:
    def __init__(self, pid, stat):
        self.pid = pid
        self.stat = stat
        self.status = None          # /proc/pid/status, read once by the dump's checks
        self.zombie = stat["state"] in ("Z", "X")
        self.threads = {}           # tid -> Thread (empty for zombies)
        self.io_workers = set()     # tids of io_uring's kernel threads in it (not seized)
        self.children = []

    @property
    def stopped(self):
        return bool(self.threads) and all(t.group_stopped for t in self.threads.values())


class FrozenTree:
    """The processes of a tree, all stopped under our ptrace, parents before children."""

    def __init__(self, root):
        self.root = root
        self.processes = {}         # pid -> Process, in the order they were found
        # the tree's downtime: from the first thread's stop to the last one's release
        # (perf_counter seconds; None until it happened)
        self.first_stop = None
        self.released = None
        self.sleepers_not_back = 0      # threads not back in their interrupted call (thaw)

    @property
    def downtime(self):
        if self.first_stop is None or self.released is None:
            return None
        return self.released - self.first_stop

    # freezing -----------------------------------------------------------------------------
    def freeze(self):
        try:
            root_stat = proc.stat(self.root)
        except FileNotFoundError:
            raise DumpError(f"no process with pid {self.root}") from None
        todo = [(self.root, root_stat)]
        try:
            while todo:
                pid, st = todo.pop(0)
                process = Process(pid, st)
                self.processes[pid] = process
                if not process.zombie:
                    self._seize_threads(process)
                    # read again now that it is stopped: its session, group and mm
                    # fields cannot change any more
                    process.stat = proc.stat(pid)
                for child in proc.children(pid):
                    try:
                        todo.append((child, proc.stat(child)))
                    except FileNotFoundError:
                        continue
                    process.children.append(child)
        except BaseException:
            self.thaw()
            raise
        return self

    def _seize_threads(self, process):
        """Seize threads until a re-read of the task list finds no new one."""
        while True:
            try:
                tids = [t for t in proc.tids(process.pid)
                        if t not in process.threads and t not in process.io_workers]
            except FileNotFoundError:
                raise DumpError(f"process {process.pid} exited while being frozen") from None
            # io_uring's SQ threads and io-wq workers: the kernel's, made again with the ring
            workers = {t for t in tids if proc.is_io_worker(process.pid, t)}
            process.io_workers |= workers
            tids = [t for t in tids if t not in workers]
            if not tids:
                return
            for tid in tids:
                try:
                    ptrace.seize(tid, SEIZE_OPTIONS)
                except ProcessLookupError:
                    continue            # exited meanwhile
                except OSError as e:
                    raise DumpError(f"cannot seize thread {tid} of {process.pid}: "
                                    f"{e.strerror}") from None
                thread = Thread(tid)
                process.threads[tid] = thread
                if self.first_stop is None:
                    self.first_stop = time.perf_counter()
                ptrace.interrupt(tid)
            for tid in tids:
                if tid in process.threads and process.threads[tid].regs is None:
                    self._wait_frozen(process.threads[tid])

    @staticmethod
    def _wait_frozen(thread):
        while True:
            stop = wait_stop(thread.tid)
            if stop.event == ptrace.EVENT_STOP:
                thread.group_stopped = stop.sig in (signal.SIGSTOP, signal.SIGTSTP,
                                                    signal.SIGTTIN, signal.SIGTTOU)
                break
            if stop.is_signal_delivery:
                # the kernel already dequeued this signal for delivery: keep it, and stay
                # stopped here (the pending INTERRUPT trap is harmless later)
                thread.taken_signals.append(get_siginfo(thread.tid))
                break
            ptrace.cont(thread.tid)
        thread.regs = get_regs(thread.tid)
        thread.sigmask = ptrace.getsigmask(thread.tid)
        set_sigmask(thread.tid, ALL_SIGNALS)

    def threads(self):
        for process in self.processes.values():
            yield from process.threads.values()

    # thawing ------------------------------------------------------------------------------
    def thaw(self):
        """Put every thread back as it was and let it go.  Signals taken while frozen must
        have been queued again by whoever touched a thread.  Threads stopped in an
        interrupted system call go first, the others once those are back in their calls
        (release.py: a signal sent in between would run its handler ahead of the call,
        which then sleeps through it); with none of the others, our caller waits for them
        instead, after the downtime ends."""
        sleepers, others = release.Sleepers(), []
        for process in self.processes.values():
            for thread in process.threads.values():
                try:
                    sig = signal.SIGSTOP if thread.group_stopped else 0
                    hit = None
                    if thread.regs is not None:
                        if thread.touched:        # the kernel restarts its syscall (regs.py)
                            set_regs(thread.tid, thread.regs)
                        elif thread.taken_signals:
                            # still in its signal-delivery stop: let the kernel deliver it
                            sig = int.from_bytes(thread.taken_signals[0][:4], "little")
                        set_sigmask(thread.tid, thread.sigmask)
                        hit = None if sig else interrupted_syscall(thread.regs)
                    if hit is None:
                        others.append((thread.tid, sig))
                        continue
                    sleepers.add(thread.tid, hit[0])
                    ptrace.detach(thread.tid, 0)
                except (OSError, TraceeGone):
                    continue
        if others:
            self.sleepers_not_back = sleepers.wait()
        for tid, sig in others:
            try:
                ptrace.detach(tid, sig)
            except OSError:
                continue
        self.released = time.perf_counter()
        if not others:
            self.sleepers_not_back = sleepers.wait()

    def kill(self):
        """SIGKILL the whole tree and collect the traced threads' exit reports."""
        for pid in self.processes:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # a traced thread stays a zombie until its tracer reaps it
        proc.reap(thread.tid for thread in self.threads())

