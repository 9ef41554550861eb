"""How long do dump and restore take for a process holding an io_uring ring?  Ours next to
CRIU 4.1.1 (which refuses io_uring) in the same run.

    python benchmarks/bench_io_uring.py [--entries 4096] [--buffers 256]
                                        [--submitted 0,1000000] [--runs 5] [--no-criu] [--json]

The program (programs/io_uring_ring.c) sets up a ring of ENTRIES SQ entries with BUFFERS
registered 4 KiB buffers, pushes SUBMITTED NOPs through it and leaves 3 CQEs unconsumed;
after the restore it checks the positions and the CQEs and writes every buffer out with
WRITE_FIXED.  The restore replays NOPs up to the dumped positions (the only way to set
them), so its time grows with SUBMITTED: each value is a case.  Medians of RUNS runs, the
engines alternating, as bench_fds.py does.
"""

import argparse
import os
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "benchmarks"))

import bench_fds                                     # noqa: E402

PROGRAM = os.path.join(TOP, "benchmarks", "programs", "io_uring_ring.c")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--entries", type=int, default=4096)
    p.add_argument("--buffers", type=int, default=256)
    p.add_argument("--submitted", default="0,1000000",
                   help="NOPs pushed through the ring before the dump, one case per value")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--no-criu", action="store_true")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    cases = [(f"{args.entries}-entry ring, {args.buffers} buffers, {submitted:,} NOPs before",
              lambda n, s=submitted: [str(args.entries), str(n), str(s)], args.buffers)
             for submitted in (int(x) for x in args.submitted.split(","))]
    results = bench_fds.program_cases(PROGRAM, cases, args, "bench-io_uring-")
    bench_fds.report(results, args.json, 66)
    return 0


if __name__ == "__main__":
    sys.exit(main())
