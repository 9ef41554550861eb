"""Command line of the prober, modelled on `criu check`."""

import argparse
import sys
import time

from . import REGISTRY, resolve
from .report import as_json, as_table
from .runner import PRESENT, host, run


def parser():
    p = argparse.ArgumentParser(
        prog="python -m probes",
        description="Report which checkpoint/restore-relevant kernel interfaces this host "
                    "has, by exercising each one.")
    p.add_argument("--json", action="store_true", help="print a JSON object (docs/probes-json.md)")
    p.add_argument("--feature", action="append", metavar="NAME",
                   help="check one feature (repeatable; CRIU names accepted): exit 0 when "
                        "all are present, 1 when one is not, 2 for an unknown name")
    p.add_argument("--list", action="store_true", help="list probe names and CRIU aliases")
    p.add_argument("--area", action="append", metavar="AREA", help="only probes of this area")
    p.add_argument("--timings", action="store_true", help="show each probe's run time")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    if args.list:
        for p in REGISTRY.values():
            alias = f" (criu: {p.criu_name})" if p.criu_name and p.criu_name != p.name else ""
            print(f"{p.name}{alias}")
        return 0
    names = None
    if args.feature:
        try:
            names = [resolve(n) for raw in args.feature for n in raw.split(",") if n]
        except KeyError as e:
            print(f"unknown feature {e.args[0]!r}; `python -m probes --list` lists them",
                  file=sys.stderr)
            return 2
    elif args.area:
        names = [n for n, p in REGISTRY.items() if p.area in args.area]
        if not names:
            print(f"no probes in area(s) {', '.join(args.area)}", file=sys.stderr)
            return 2
    start = time.perf_counter()
    results = run(names)
    seconds = time.perf_counter() - start
    if args.json:
        print(as_json(results, host(), seconds))
    elif args.feature:
        for r in results:
            print(f"{r.name}: {r.status} - {r.detail}")
    else:
        color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
        print(as_table(results, host(), seconds, color=color, timings=args.timings))
    if args.feature:
        return 0 if all(r.status == PRESENT for r in results) else 1
    return 0
