"""How close does the dump's page copy come to this machine's memory bandwidth?

    python benchmarks/bench_memcopy.py [--size-mib 1024] [--runs 5] [--json]

Measures, in one run: plain memcpy, a write into the page cache of the images' file system
(new pages, and pages already cached; programs/memcpy_bw.c, best of 5), and our dump of a
process with SIZE MiB of dirtied private memory (programs/dirty_memory.c, as
bench_engine.py; medians of RUNS): its ``memory`` stage throughput (pages written / stage
time), its whole frozen window's, and that of the memory stage with the prefill before
the freeze (the page image made in the page cache while the process runs: dump._prefill),
each as a fraction of memcpy and of the page-cache write, and the spread of the runs.  Before each dump, the same write once into a new file
after the same warm-up (``memcpy_bw ... once``): what writing the image costs in the
machine's state of that minute, next to what our dump made of it.  Issue 11's goal: the
memory stage above 50% of memcpy.
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
import cr_engine                                     # noqa: E402
from kernel.process import PR_SET_CHILD_SUBREAPER, prctl  # noqa: E402
from zdtm_py.build import build                      # noqa: E402

COPY = os.path.join(TOP, "benchmarks", "programs", "memcpy_bw.c")
PAGE = os.sysconf("SC_PAGE_SIZE")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-mib", type=int, default=1024)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    program, warm = str(build(bench_engine.PROGRAM)), str(build(bench_engine.WARM))
    with tempfile.TemporaryDirectory(prefix="bench-memcopy-") as workdir:
        out = subprocess.run([str(build(COPY)), str(args.size_mib),
                              os.path.join(workdir, "copy")],
                             check=True, capture_output=True, text=True).stdout
        rates = {name: float(value) for name, value in (l.split() for l in out.splitlines())}
        memory, frozen, once, with_prefill = [], [], [], []
        for _ in range(args.runs):
            out = subprocess.run([str(build(COPY)), str(args.size_mib),
                                  os.path.join(workdir, "once"), "once"],
                                 check=True, capture_output=True, text=True).stdout
            once.append(float(out.split()[1]))
            pid, result = bench_engine.start(program, [str(args.size_mib)], workdir)
            subprocess.run([warm, str(2 * args.size_mib)], check=True)
            dumped = cr_engine.dump(pid, os.path.join(workdir, "img"), leave_running=True)
            pages = dumped.stats["counts"]["pages_written"] * PAGE
            memory.append(pages / dumped.stats["times"]["memory"])
            frozen.append(pages / dumped.stats["times"]["frozen"])
            # the page image made in the page cache before the freeze is part of the copy
            with_prefill.append(pages / (dumped.stats["times"]["memory"] +
                                         dumped.stats["times"].get("prefill", 0)))
            bench_engine.verify(pid, result)
            subprocess.run(["rm", "-rf", os.path.join(workdir, "img")], check=True)
    rates["pwrite once, warmed"] = statistics.median(once)
    rates["dump memory stage"] = statistics.median(memory)
    rates["dump frozen window"] = statistics.median(frozen)
    rates["dump prefill + memory"] = statistics.median(with_prefill)
    if args.json:
        print(json.dumps({"size_mib": args.size_mib, "bytes_per_second": rates,
                          "memory_stage_runs": memory, "pwrite_once_runs": once,
                          "paired_median": statistics.median(
                              m / o for m, o in zip(memory, once))},
                         indent=1))
        return 0
    print(f"{'copy, ' + str(args.size_mib) + ' MiB':<28}{'GB/s':>8}{'of memcpy':>12}"
          f"{'of pwrite':>12}")
    for name, rate in rates.items():
        print(f"{name:<28}{rate / 1e9:>8.2f}{rate / rates['memcpy']:>12.0%}"
              f"{rate / rates['pwrite']:>12.0%}")
    # the runs spread widely on this VM (free page reporting: see warm_memory.c)
    print(f"dump memory stage, runs: {min(memory) / 1e9:.2f} to {max(memory) / 1e9:.2f} GB/s; "
          f"pwrite once: {min(once) / 1e9:.2f} to {max(once) / 1e9:.2f} GB/s")
    # the host's state moves both within seconds: each dump against the write just before it
    paired = statistics.median(m / o for m, o in zip(memory, once))
    print(f"dump memory stage / pwrite once of the same run: median {paired:.0%} "
          f"({', '.join(f'{m / 1e9:.2f}/{o / 1e9:.2f}' for m, o in zip(memory, once))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
