"""How long do dump and restore take for a process holding many fds of mixed kinds?  Ours next
to CRIU 4.1.1 in the same run.

    python benchmarks/bench_fds.py [--fds 1000] [--runs 5] [--no-criu] [--json]

The program (programs/many_fds.c) holds FDS fds round robin: regular files with their own
offsets, both ends of pipes holding data, eventfds, timerfds, memfds, /dev/null and both ends
of unix socketpairs with data queued; after the restore it checks every one of them.  Dump
and restore are timed end to end (ours through the Python API, CRIU through its CLI); medians
of RUNS runs, the engines alternating.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "benchmarks"))

import bench_engine                                  # noqa: E402
from kernel.process import PR_SET_CHILD_SUBREAPER, prctl  # noqa: E402
from zdtm_py.build import build                      # noqa: E402

PROGRAM = os.path.join(TOP, "benchmarks", "programs", "many_fds.c")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fds", type=int, default=1000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--no-criu", action="store_true")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    tools = argparse.Namespace(binary=str(build(PROGRAM)), evict=str(build(bench_engine.EVICT)),
                               warm=None, args=lambda n: [str(n), "fds"])
    use_criu = not args.no_criu and bench_engine.criu_available()
    results = {"fds": args.fds, "ours": {"dump_s": [], "restore_s": []}}
    with tempfile.TemporaryDirectory(prefix="bench-fds-") as workdir:
        os.makedirs(os.path.join(workdir, "fds"))
        for _ in range(args.runs):
            dump_s, restore_s, _, stats = bench_engine.ours_once(tools, args.fds, workdir)
            results["ours"]["dump_s"].append(dump_s)
            results["ours"]["restore_s"].append(restore_s)
            if use_criu and "criu_error" not in results:
                try:
                    dump_s, restore_s = bench_engine.criu_once(tools, args.fds, workdir)
                    crit = results.setdefault("criu", {"dump_s": [], "restore_s": []})
                    crit["dump_s"].append(dump_s)
                    crit["restore_s"].append(restore_s)
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    results["criu_error"] = str(e)
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        print("\n".join(table(results)))
    return 0


def table(r):
    lines = [f"{'case':<34}{'ours':>14}{'CRIU 4.1.1':>14}"]
    for key, label in (("dump_s", "dump"), ("restore_s", "restore")):
        ours = f"{statistics.median(r['ours'][key]) * 1000:.1f}"
        criu = f"{statistics.median(r['criu'][key]) * 1000:.1f}" if "criu" in r else "-"
        lines.append(f"{str(r['fds']) + ' fds ' + label + ', median ms':<34}{ours:>14}{criu:>14}")
    if "criu_error" in r:
        lines.append(f"CRIU: {r['criu_error']}")
    return lines


if __name__ == "__main__":
    sys.exit(main())
