"""Run part of a probe in a forked child, so its effects die with the child.

Experiments that change the process (new namespaces, mounts, seccomp
filters, ptrace relations) run here: the child does the work, sends back a
JSON-able observation through a pipe and exits; the prober itself is left
as it was.  A child that hangs is killed after ``timeout`` seconds.
"""

import json
import os
import select
import signal
import time

from kernel.namespaces import unshare


class ChildFailed(RuntimeError):
    """The child crashed, hung or died without an answer."""


def in_child(fn, *args, unshare_flags=0, timeout=2.0, fork=os.fork):
    """Return ``fn(*args)`` computed in a fresh child process.

    An OSError in the child is raised again here with the same errno, so
    callers treat it exactly as if the call had been made in-process.
    ``fork``: how the child is made (a clone with namespace flags, say).
    """
    read_end, write_end = os.pipe()
    try:
        pid = fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        raise
    if pid == 0:  # child: never returns
        os.close(read_end)
        try:
            if unshare_flags:
                unshare(unshare_flags)
            message = {"result": fn(*args)}
        except OSError as e:
            message = {"errno": e.errno, "error": str(e)}
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            message = {"crash": f"{type(e).__name__}: {e}"}
        try:
            os.write(write_end, json.dumps(message).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    raw = None
    try:
        raw = _read_until_eof(read_end, timeout)
    finally:
        os.close(read_end)
        _reap(pid, answered=bool(raw))
    if raw is None:
        raise ChildFailed(f"probe child timed out after {timeout}s")
    if not raw:
        raise ChildFailed("probe child died without an answer")
    message = json.loads(raw)
    if "errno" in message:
        raise OSError(message["errno"], message["error"])
    if "crash" in message:
        raise ChildFailed(message["crash"])
    return message["result"]


def _read_until_eof(fd, timeout):
    deadline = time.monotonic() + timeout
    parts = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        part = os.read(fd, 65536)
        if not part:
            return b"".join(parts)
        parts.append(part)


def _reap(pid, answered):
    """Wait for the child; one that has not answered (timed out, or closed the pipe
    without writing) is killed first, so the wait is bounded."""
    if not answered:
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
