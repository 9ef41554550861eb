"""Small helpers the project's tests share."""

import json
import os
import signal
import subprocess
import sys
import traceback

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_probes(*args, user=None, check=False, timeout=60):
    """Run ``python -m probes ARGS`` as a separate process (optionally as ``user`` uid)."""
    cmd = [sys.executable, "-m", "probes", *args]
    if user is not None:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups",
               "--inh-caps=-all", *cmd]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run(cmd, cwd=TOP, capture_output=True, text=True, timeout=timeout,
                          check=check, env=env)


def probes_json(*args, **kwargs):
    out = run_probes("--json", *args, check=True, **kwargs).stdout
    return json.loads(out)


def stopped_child(make, *args):
    """A child that runs ``make(*args)`` and stops itself (SIGSTOP), so that what it holds
    (memory, fds, threads) keeps still while a test reads it; a failure in it is printed.
    The test kills it: kill_child()."""
    pid = os.fork()
    if pid == 0:
        try:
            make(*args)
            os.kill(os.getpid(), signal.SIGSTOP)
        except BaseException:
            traceback.print_exc()
            sys.stderr.flush()
        finally:
            os._exit(0)
    wait_stopped(pid)
    return pid


def wait_stopped(pid):
    _, status = os.waitpid(pid, os.WUNTRACED)
    assert os.WIFSTOPPED(status), f"the child ended: status {status:#x}"


def kill_child(pid, group=False):
    """SIGKILL a child (``group``: its process group, which it leads) and reap it."""
    if group:
        os.killpg(pid, signal.SIGKILL)
    else:
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
