"""How long do dump and restore take for a tree of 1,000 processes spread across nested
pid namespaces?  Ours next to CRIU 4.1.1 in the same run (mainline CRIU does not dump a
nested pid namespace: its error is shown).

    python benchmarks/bench_pstree.py [--processes 1000] [--levels 4] [--runs 3]
                                      [--no-criu] [--json]

The program (programs/pid_tree.c) spreads the processes evenly over its own level and
LEVELS nested pid namespaces (each namespace's init a child of the level above); after the
restore every process checks its pid.  Medians of RUNS runs, the engines alternating, as
bench_fds.py does.
"""

import argparse
import os
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "benchmarks"))

import bench_fds                                     # noqa: E402

PROGRAM = os.path.join(TOP, "benchmarks", "programs", "pid_tree.c")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--processes", type=int, default=1000)
    p.add_argument("--levels", type=int, default=4)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--no-criu", action="store_true")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    case = f"{args.processes:,} processes over {args.levels} nested pid namespaces"
    results = bench_fds.program_cases(
        PROGRAM, [(case, lambda n: [str(n), str(args.levels)], args.processes)], args,
        "bench-pstree-")
    bench_fds.report(results, args.json, 66)
    return 0


if __name__ == "__main__":
    sys.exit(main())
