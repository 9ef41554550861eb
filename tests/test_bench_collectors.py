"""benchmarks/bench_collectors.py in a tiny configuration: every case runs, and every
alternative way gives what its /proc way gives; the ways this kernel has are there."""

import json
import os
import subprocess
import sys

from cr_engine import mount_table
from probes import check

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = ["vmas", "tree", "fds", "mounts"]


def test_every_case_and_every_available_way_equal_to_proc():
    out = subprocess.run([sys.executable, os.path.join(TOP, "benchmarks", "bench_collectors.py"),
                          "--json", "--runs", "1", "--vmas", "200", "--procs", "3",
                          "--fds", "50", "--mounts", "20"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads(out.stdout)
    assert list(results["cases"]) == CASES
    available = set()
    for name, case in results["cases"].items():
        for group in case["groups"]:
            assert group["proc"]["ms"] > 0, (name, group)
            for alt in group["alternatives"]:
                if "na" not in alt:
                    assert alt["check"] == "EQUAL", (name, alt)
                    available.add(alt["way"].split(" (")[0])
    # an n/a row must not hide a way this kernel offers
    if check("procmap_query").status == "present":
        assert "PROCMAP_QUERY" in available
    if mount_table.way() == "statmount":
        assert "listmount + statmount" in available
