"""How much does an incremental dump save?  A process with MIB MiB of patterned memory
(programs/dirty_memory.c): a plain dump, next to two pre-dumps and a dump on top of them
(the pre-dumps run while the process runs; the dump freezes it for the pages written since).
Reported: pages stored and the time the process stayed frozen (the dump's "frozen"), medians
of RUNS; every restored process checks all its pages.

    python benchmarks/bench_predump.py [--mib 256] [--runs 3] [--json]
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)
sys.path.insert(0, os.path.join(TOP, "benchmarks"))

import bench_engine                                  # noqa: E402
import cr_engine                                     # noqa: E402
from kernel.process import PR_SET_CHILD_SUBREAPER, prctl  # noqa: E402
from zdtm_py.build import build                      # noqa: E402


def once(binary, mib, workdir, pre_dumps):
    pid, result = bench_engine.start(binary, [str(mib)], workdir)
    parent = None
    for k in range(pre_dumps):
        images = os.path.join(workdir, f"pre{k}")
        cr_engine.pre_dump(pid, images, parent=parent)
        parent = images
    images = os.path.join(workdir, "img")
    dumped = cr_engine.dump(pid, images, parent=parent)
    bench_engine.reap(pid)
    restored = cr_engine.restore(images)
    bench_engine.verify(restored.root_pid, result)
    for name in os.listdir(workdir):
        if name.startswith(("pre", "img")):
            shutil.rmtree(os.path.join(workdir, name))
    counts, times = dumped.stats["counts"], dumped.stats["times"]
    return {"pages_stored": counts["pages_written"],
            "pages_inherited": counts.get("pages_inherited", 0),
            "frozen_ms": times["frozen"] * 1000, "dump_ms": times["total"] * 1000}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mib", type=int, default=256)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    binary = str(build(os.path.join(TOP, "benchmarks", "programs", "dirty_memory.c")))
    cases = {"plain dump": 0, "dump after 2 pre-dumps": 2}
    results = {name: [] for name in cases}
    with tempfile.TemporaryDirectory(prefix="bench-predump-") as workdir:
        for _ in range(args.runs):
            for name, pre in cases.items():
                results[name].append(once(binary, args.mib, workdir, pre))
    summary = {name: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
               for name, runs in results.items()}
    if args.json:
        print(json.dumps({"mib": args.mib, "runs": args.runs, "cases": summary}, indent=1))
        return 0
    print(f"{'case (' + str(args.mib) + ' MiB)':<28}{'stored':>10}{'inherited':>11}"
          f"{'frozen ms':>11}{'dump ms':>10}")
    for name, s in summary.items():
        print(f"{name:<28}{s['pages_stored']:>10.0f}{s['pages_inherited']:>11.0f}"
              f"{s['frozen_ms']:>11.1f}{s['dump_ms']:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
