"""What a test must not leave behind, and tests that must run alone.

Leaks: processes of the test still alive (or zombies) once its program has exited, mounts
under the test's directory, and files an engine made in the shared temporary places
(/tmp, /dev/shm, /run: names starting with "cr_engine" or "criu") that were not there
before.  Only these, so that tests running in parallel never see each other's work; CRIU's
kernel-feature cache (/run/criu.kdat, written through criu.kdat.tmp by any CRIU run, a
parallel test's too) and the engine's SysV id lock file are no leaks.

Running alone: every conformance run holds a shared flock on one lock file of the
session; a program declared ``exclusive`` takes it exclusively, so no other run of any
xdist worker overlaps it.
"""

import contextlib
import fcntl
import os
import time
from pathlib import Path

from .errors import ZdtmError

SHARED_DIRS = ("/tmp", "/dev/shm", "/run")
ENGINE_PREFIXES = ("cr_engine", "criu")
# kept by design, made by whichever run comes first: CRIU's kernel-feature cache, the
# engine's lock for choosing SysV ids (cr_engine.sysv_ipc.LOCK)
CACHES = ("criu.kdat", "cr_engine-sysv-ipc.lock")
GRACE = 2.0     # seconds the children of an exited test get to exit too


class Leaked(ZdtmError):
    """Processes, mounts or files outlived the test."""


class Watch:
    """Taken when a test starts; `check` after its program has exited."""

    def __init__(self, workdir, tracker):
        self.workdir, self.tracker = Path(workdir).resolve(), tracker
        self.files = _engine_files()

    def check(self):
        found = []
        processes = self._processes()
        if processes:
            found.append(f"processes still there: {', '.join(map(str, processes))}")
        mounts = [m for m in _mount_points() if Path(m) == self.workdir or
                  self.workdir in Path(m).parents]
        if mounts:
            found.append(f"mounts: {', '.join(mounts)}")
        files = sorted(_engine_files() - self.files)
        if files:
            found.append(f"files: {', '.join(files)}")
        if found:
            raise Leaked("the test left behind " + "; ".join(found))

    def _processes(self):
        deadline = time.monotonic() + GRACE
        while True:
            left = self.tracker.leftovers()
            if not left or time.monotonic() > deadline:
                return [f"{pid} ({_comm(pid)})" for pid in left]
            time.sleep(0.01)


def _engine_files():
    out = set()
    for directory in SHARED_DIRS:
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        out.update(os.path.join(directory, n) for n in names
                   if n.startswith(ENGINE_PREFIXES) and not n.startswith(CACHES))
    return out


def _mount_points():
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4].encode().decode("unicode_escape") for line in f]


def _comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "gone"


@contextlib.contextmanager
def turn(lock_path, exclusive):
    """Hold the session's run lock: shared, or alone."""
    with open(lock_path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
