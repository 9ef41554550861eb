"""Processes the harness starts: the subreaper, process trees, reaping, clean-up.

A test program's launcher exits once the test daemonized, so the daemon is
re-parented. The pytest worker makes itself a child subreaper
(PR_SET_CHILD_SUBREAPER) so that every orphan of a test tree becomes a child
of the worker: the harness can then wait for it with os.waitpid(), read its
exit status, and free its pid (a zombie holds its pid, which a restore needs).
"""

import os
import signal
import time

from kernel import process

_POLL = 0.005


def become_subreaper():
    """Make the calling process a child subreaper (idempotent)."""
    if not process.prctl_get_int(process.PR_GET_CHILD_SUBREAPER):
        process.prctl(process.PR_SET_CHILD_SUBREAPER, 1)


def is_subreaper():
    return bool(process.prctl_get_int(process.PR_GET_CHILD_SUBREAPER))


def _stat_fields(pid):
    """(state, ppid) of a pid from /proc/PID/stat, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rest = data.rsplit(b")", 1)[1].split()
    return rest[0].decode(), int(rest[1])


def state(pid):
    """The one-letter state of a process ('R', 'S', 'Z', ...) or None if gone."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def parent(pid):
    fields = _stat_fields(pid)
    return fields[1] if fields else None


def ppid_map():
    """{pid: ppid} of every process visible in /proc."""
    result = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat_fields(int(name))
            if fields:
                result[int(name)] = fields[1]
    return result


def tree(roots, ppids=None):
    """The roots and all their descendants, parents before children (BFS), zombies included."""
    ppids = ppid_map() if ppids is None else ppids
    children = {}
    for pid, ppid in ppids.items():
        children.setdefault(ppid, []).append(pid)
    order, seen = [], set()
    queue = [r for r in roots if r in ppids]
    while queue:
        pid = queue.pop(0)
        if pid in seen:
            continue
        seen.add(pid)
        order.append(pid)
        queue.extend(sorted(children.get(pid, ())))
    return order


def wait_exit(pid, timeout):
    """Wait until ``pid`` exits and reap it; returns its wait status.

    A process that is not (yet) our child - its parent is dying and it will be
    re-parented to us, the subreaper - is polled until it is. Returns None when
    the pid disappeared without us reaping it (someone else did), raises
    TimeoutError when it is still there after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            got, status = os.waitpid(pid, os.WNOHANG)
            if got == pid:
                return status
        except ChildProcessError:
            if state(pid) is None:
                return None
        if time.monotonic() >= deadline:
            raise TimeoutError(f"pid {pid} still exists after {timeout:g}s "
                               f"(state {state(pid)}, parent {parent(pid)})")
        time.sleep(_POLL)


def reap_tree(pids, timeout):
    """Reap every pid of a dead tree, in whatever order the kernel allows (the init of a pid
    namespace finishes exiting only once the rest of its namespace is reaped, and those may
    be ours to reap); returns {pid: status} (None: someone else reaped it)."""
    deadline = time.monotonic() + timeout
    pending, statuses = list(pids), {}
    while pending:
        for pid in list(pending):
            try:
                got, status = os.waitpid(pid, os.WNOHANG)
                if got == pid:
                    statuses[pid] = status
                    pending.remove(pid)
            except ChildProcessError:
                if state(pid) is None:
                    statuses[pid] = None
                    pending.remove(pid)
        if pending and time.monotonic() >= deadline:
            pid = pending[0]
            raise TimeoutError(f"pid {pid} still exists after {timeout:g}s "
                               f"(state {state(pid)}, parent {parent(pid)})")
        if pending:
            time.sleep(_POLL)
    return {pid: statuses[pid] for pid in pids}


def kill(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


class ProcessTracker:
    """Everything one test started: known pids, and whatever appeared under us since.

    ``cleanup()`` SIGKILLs and reaps all of it; it is meant for a finalizer, so
    it never raises for a process that is already gone.
    """

    def __init__(self):
        self.me = os.getpid()
        self.baseline = set(tree([self.me])) - {self.me}
        self.watched = []

    def watch(self, pid):
        if pid not in self.watched:
            self.watched.append(pid)

    def forget(self, pid):
        """``pid`` was reaped: its number may be reused by anyone now."""
        if pid in self.watched:
            self.watched.remove(pid)

    def leftovers(self):
        """Live or zombie processes of this test: watched trees + our new descendants."""
        ppids = ppid_map()
        ours = [p for p in tree([self.me], ppids) if p != self.me and p not in self.baseline]
        order = tree(self.watched, ppids) + ours
        return list(dict.fromkeys(order))

    def cleanup(self, timeout=10.0):
        """Kill and reap what is left; returns the pids that were found."""
        found = []
        deadline = time.monotonic() + timeout
        for _ in range(50):
            victims = self.leftovers()
            if not victims:
                break
            found.extend(p for p in victims if p not in found)
            for pid in victims:
                kill(pid)
            for pid in victims:
                try:
                    wait_exit(pid, max(0.05, min(1.0, deadline - time.monotonic())))
                except TimeoutError:
                    pass
            if time.monotonic() >= deadline:
                break
        return found
