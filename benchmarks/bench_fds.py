"""How long do dump and restore take for a process holding many fds of mixed kinds?  Ours next
to CRIU 4.1.1 in the same run.

    python benchmarks/bench_fds.py [--fds 1000] [--runs 5] [--no-criu] [--json]

The program (programs/many_fds.c) holds FDS fds round robin: regular files with their own
offsets, both ends of pipes holding data, eventfds, timerfds, memfds, /dev/null, both ends
of unix socketpairs and of TCP connections over loopback with data queued, and UDP sockets
holding a datagram; after the restore it checks every one of them.  CRIU needs
--tcp-established for the TCP connections, and --network-lock skip: both ends are in the
tree (its default lock needs iptables in its root).  Dump
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
    binary, evict = str(build(PROGRAM)), str(build(bench_engine.EVICT))
    use_criu = not args.no_criu and bench_engine.criu_available()
    results = {"fds": args.fds, "cases": {}}
    with tempfile.TemporaryDirectory(prefix="bench-fds-") as workdir:
        os.makedirs(os.path.join(workdir, "fds"))
        for case, extra in CASES.items():
            tools = argparse.Namespace(binary=binary, evict=evict, warm=None,
                                       args=lambda n, extra=extra: [str(n), "fds", *extra],
                                       criu_flags="--tcp-established --network-lock skip")
            results["cases"][case] = run_case(tools, args, use_criu, workdir)
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        print("\n".join(table(results)))
    return 0


# the program's fd mix: without inet sockets (what CRIU can dump here too), and with them
CASES = {"mixed": ["noinet"], "mixed + TCP/UDP": []}


def run_case(tools, args, use_criu, workdir):
    """Ours and CRIU alternating, ``args.runs`` times; CRIU is not tried again once it
    failed (its error is kept)."""
    out = {"ours": {"dump_s": [], "restore_s": [], "stats": []}}
    for _ in range(args.runs):
        dump_s, restore_s, dumped, restored = bench_engine.ours_once(tools, args.fds, workdir)
        out["ours"]["dump_s"].append(dump_s)
        out["ours"]["restore_s"].append(restore_s)
        out["ours"]["stats"].append({"dump": dumped, "restore": restored})
        if use_criu and "criu_error" not in out:
            try:
                dump_s, restore_s = bench_engine.criu_once(tools, args.fds, workdir)
                criu = out.setdefault("criu", {"dump_s": [], "restore_s": []})
                criu["dump_s"].append(dump_s)
                criu["restore_s"].append(restore_s)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                out["criu_error"] = str(e)
    return out


def program_cases(source, cases, args, prefix, criu_flags=""):
    """Each of ``cases`` ((name, argv_of(n), n)) of the program built from ``source``:
    ours and CRIU (unless ``args.no_criu``; with ``criu_flags``) alternating, ``args.runs``
    times each, under us as child subreaper; {"cases": {name: run_case() + "size"}}."""
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    binary, evict = str(build(source)), str(build(bench_engine.EVICT))
    use_criu = not args.no_criu and bench_engine.criu_available()
    results = {"cases": {}}
    with tempfile.TemporaryDirectory(prefix=prefix) as workdir:
        for name, argv_of, size in cases:
            tools = argparse.Namespace(binary=binary, evict=evict, warm=None,
                                       criu_flags=criu_flags, args=argv_of)
            results["cases"][name] = run_case(
                tools, argparse.Namespace(runs=args.runs, fds=size), use_criu, workdir)
            results["cases"][name]["size"] = size
    return results


def report(results, as_json, width):
    """Print ``results`` as JSON or as the cases table."""
    print(json.dumps(results, indent=1) if as_json else "\n".join(cases_table(results, width)))


def table(results):
    lines = [f"{'case':<44}{'ours':>10}{'CRIU 4.1.1':>12}"]
    for case, r in results["cases"].items():
        for key, label in (("dump_s", "dump"), ("restore_s", "restore")):
            lines.append(row(f"{results['fds']} fds, {case}: {label}, median ms", r, key))
        if "criu_error" in r:
            lines.append(criu_error_line(case, r))
    return lines


def cases_table(results, width):
    """Dump and restore medians of each case, ours beside CRIU's (bench_bpf_epoll.py,
    bench_io_uring.py)."""
    lines = [f"{'case':<{width}}{'ours':>10}{'CRIU 4.1.1':>12}"]
    for case, r in results["cases"].items():
        for key, label in (("dump_s", "dump"), ("restore_s", "restore")):
            lines.append(row(f"{case}: {label}, median ms", r, key, width=width))
        if "criu_error" in r:
            lines.append(criu_error_line(case, r))
    return lines


def row(what, r, key, width=44):
    """One line of a side-by-side table: our median and CRIU's, in ms."""
    ours = f"{statistics.median(r['ours'][key]) * 1000:.1f}"
    criu = f"{statistics.median(r['criu'][key]) * 1000:.1f}" if "criu" in r else \
        "failed" if "criu_error" in r else "-"
    return f"{what:<{width}}{ours:>10}{criu:>12}"


# an Error line every CRIU run logs here first (its root may not raise RLIMIT_NOFILE): not
# the one that made it fail
_NOT_THE_ERROR = "rlimit: Can't setup RLIMIT_NOFILE"


def criu_error_line(case, r):
    first = next((x for x in r["criu_error"].splitlines()
                  if "Error" in x and _NOT_THE_ERROR not in x),
                 r["criu_error"].splitlines()[0])
    return f"  CRIU, {case}: {first.strip()[:150]}"


if __name__ == "__main__":
    sys.exit(main())
