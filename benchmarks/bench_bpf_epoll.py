"""How long do dump and restore take for a process holding a big BPF hash map, or an epoll
watching many files?  Ours next to CRIU 4.1.1 in the same run.

    python benchmarks/bench_bpf_epoll.py [--entries 1000000] [--targets 10000] [--runs 5]
                                         [--no-criu] [--json]

The program (programs/bpf_epoll.c) makes either a BPF hash map of ENTRIES u32 -> u64 entries
or an epoll watching TARGETS eventfds (every third one readable); after the restore it checks
every map entry, or the epoll's ready set and item count.  Dump and restore are timed end to
end (ours through the Python API, CRIU through its CLI); medians of RUNS runs, the engines
alternating, as bench_fds.py does.
"""

import argparse
import os
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "benchmarks"))

import bench_fds                                     # noqa: E402

PROGRAM = os.path.join(TOP, "benchmarks", "programs", "bpf_epoll.c")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--entries", type=int, default=1_000_000)
    p.add_argument("--targets", type=int, default=10_000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--no-criu", action="store_true")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    cases = [(f"{what}, {size} {unit}", lambda n, mode=mode: [mode, str(n)], size)
             for what, unit, mode, size in (("BPF hash map", "entries", "hash", args.entries),
                                            ("epoll", "targets", "epoll", args.targets))]
    results = bench_fds.program_cases(PROGRAM, cases, args, "bench-bpf-epoll-")
    bench_fds.report(results, args.json, 46)
    return 0


if __name__ == "__main__":
    sys.exit(main())
