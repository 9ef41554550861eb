"""Probing leaves the host as it found it, also when two probers run at once."""

import json
import os
import subprocess
import sys

from .helpers import TOP, probes_json


def snapshot():
    """What a prober could leak: mounts, namespaces of ours, children, open fds."""
    with open("/proc/self/mountinfo") as f:
        mounts = sorted(line.split(" ", 4)[4] for line in f)
    pids = sorted(p for p in os.listdir("/proc") if p.isdigit())
    children = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == os.getpid():
                children.append(pid)
        except OSError:
            pass
    return {"mounts": mounts, "children": children, "fds": sorted(os.listdir("/proc/self/fd"))}


def test_two_concurrent_runs_agree_and_leave_nothing():
    before = snapshot()
    cmd = [sys.executable, "-m", "probes", "--json"]
    runs = [subprocess.Popen(cmd, cwd=TOP, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [r.communicate(timeout=60)[0] for r in runs]
    assert [r.returncode for r in runs] == [0, 0]
    answers = [{p["name"]: p["status"] for p in json.loads(o)["probes"]} for o in outputs]
    assert answers[0] == answers[1]
    assert snapshot() == before


def test_in_process_run_leaves_no_fds_or_mounts():
    import probes
    before = snapshot()
    probes.run()
    assert snapshot() == before


def test_single_feature_json_runs_only_that_probe():
    report = probes_json("--feature", "bpf_iter_task")
    assert [p["name"] for p in report["probes"]] == ["bpf_iter_task"]
