"""Processes for the engine's own tests (tests/programs/subject.py), started as children of
the test so that they can be reaped, in their own session (no shell job)."""

import os
import signal
import subprocess
import sys
import time

from .helpers import TOP

SUBJECT = os.path.join(TOP, "tests", "programs", "subject.py")


class Subject:
    def __init__(self, kind, workdir):
        self.result = os.path.join(workdir, "result")
        self.popen = subprocess.Popen([sys.executable, SUBJECT, kind, self.result],
                                      cwd=workdir, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True)
        self.wait_result("ready")
        self.pid = self.popen.pid
        if kind in ("pidns", "userns", "userns_alone"):     # the subject is the first child
            with open(f"/proc/{self.pid}/task/{self.pid}/children") as f:
                self.pid = int(f.read().split()[0])

    def wait_result(self, prefix, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open(self.result) as f:
                    text = f.read()
                if text.startswith(prefix):
                    return text
            except FileNotFoundError:
                pass
            time.sleep(0.005)
        raise TimeoutError(f"subject wrote no {prefix!r}")

    def stop(self, pid=None):
        """SIGTERM; returns what the subject answered ("alive N")."""
        os.remove(self.result)
        os.kill(pid or self.pid, signal.SIGTERM)
        return self.wait_result("alive")

    def kill(self):
        for pid in {self.pid, self.popen.pid}:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in {self.pid, self.popen.pid}:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
