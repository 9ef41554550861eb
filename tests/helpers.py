"""Small helpers the project's tests share."""

import json
import os
import subprocess
import sys

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
