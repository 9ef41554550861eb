"""How long does probing a host take? Ours next to `criu check --all`.

    python benchmarks/bench_probes.py [--runs N] [--json]

Each run is a whole command, start to exit (interpreter start-up included),
timed with a monotonic clock; the table shows the median and range of N
runs after one warm-up run.  CRIU is the reference engine's checker,
run from its trixie root (tools/reference_criu.py) when one is set up,
else from PATH when a working `criu` is there.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE_CRIU = os.path.join(TOP, "tools", "reference_criu.py")


def time_command(cmd, runs):
    subprocess.run(cmd, cwd=TOP, capture_output=True)  # warm-up: page cache, pycache
    times, last = [], None
    for _ in range(runs):
        start = time.perf_counter()
        last = subprocess.run(cmd, cwd=TOP, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
    return times, last


def criu_command():
    """The command that runs a working CRIU's `check --all`, or None."""
    if os.path.exists(REFERENCE_CRIU):
        found = subprocess.run([sys.executable, REFERENCE_CRIU, "path"], capture_output=True)
        if found.returncode == 0:
            return [sys.executable, REFERENCE_CRIU, "run", "--", "check", "--all"]
    if shutil.which("criu"):
        works = subprocess.run(["criu", "check"], capture_output=True)
        if works.returncode == 0:
            return ["criu", "check", "--all"]
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    rows = []
    ours, last = time_command([sys.executable, "-m", "probes", "--json"], args.runs)
    report = json.loads(last.stdout)
    rows.append({"what": "python -m probes --json", "probes": report["summary"]["total"],
                 "times": ours, "inner": report["seconds"]})
    criu = criu_command()
    if criu:
        theirs, _ = time_command(criu, args.runs)
        rows.append({"what": "criu check --all", "probes": None, "times": theirs, "inner": None})

    if args.json:
        print(json.dumps({"runs": args.runs, "rows": [
            {**r, "median_s": statistics.median(r["times"])} for r in rows]}, indent=2))
        return 0
    print(f"{args.runs} runs each, after one warm-up; wall time of the whole command\n")
    print(f"{'command':<28}{'checks':>7}{'median':>10}{'min':>9}{'max':>9}")
    for r in rows:
        t = r["times"]
        print(f"{r['what']:<28}{r['probes'] or '-':>7}{statistics.median(t):>9.3f}s"
              f"{min(t):>8.3f}s{max(t):>8.3f}s")
    print(f"\nprobing alone (in-process, last run): {rows[0]['inner']:.3f} s")
    if not criu:
        print("criu check --all: no working CRIU here "
              "(set one up with: /usr/bin/python3 tools/reference_criu.py setup)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
