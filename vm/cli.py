"""`python -m vm`: run a command under a kernel (`run`), the probes and the suite across
kernels (`matrix`), the kernels at hand (`kernels`)."""

import argparse
import json
import sys

from . import kernels, matrix, qemu


def _progress(text):
    print(text, file=sys.stderr, flush=True)


def _stream(data):
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def cmd_run(args):
    if not args.command:
        raise SystemExit("vm run: no command (put it after --)")
    kernel = kernels.get(args.kernel, args.modules, progress=_progress)
    out = qemu.run(kernel, args.command, timeout=args.timeout, boot_timeout=args.boot_timeout,
                   total_timeout=args.total_timeout,
                   memory=args.memory, cpus=args.cpus, share=args.share, accel=args.accel,
                   logs=args.logs, stream=None if args.json else _stream,
                   progress=_progress)
    if args.json:
        print(json.dumps(out.as_dict(), indent=1))
    else:
        _say(out)
    return out.code


def _say(out):
    timing = ""
    if out.total_seconds is not None:
        boot = f"boot {out.boot_seconds:.1f} s, " if out.boot_seconds else ""
        command = f"command {out.command_seconds:.1f} s, " if out.command_seconds else ""
        timing = f" ({boot}{command}total {out.total_seconds:.1f} s)"
    what = {"ok": "exit 0", "failed": f"exit {out.exit_code}",
            "timeout": "timed out", "boot-timeout": "timed out before the command started",
            "panic": "kernel panic", "crashed": "the VM ended with no result"}[out.status]
    _progress(f"vm: {out.kernel} ({out.release}, {out.accel}): {what}{timing}")
    for line in out.warnings:
        _progress(f"vm: kernel warning: {line}")
    if out.console:
        _progress(f"vm: console: {out.console}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m vm", description=__doc__)
    sub = parser.add_subparsers(dest="verb", required=True)
    run = sub.add_parser("run", help="run a command under a kernel")
    run.add_argument("--kernel", default="6.1",
                     help=f"{', '.join(kernels.SUITES)}, {kernels.HOST}, or an image path")
    run.add_argument("--modules", help="lib/modules/RELEASE of an image given by path")
    run.add_argument("--timeout", type=float, default=600.0, help="seconds for the command")
    run.add_argument("--boot-timeout", type=float, default=60.0,
                     help="seconds until the command starts")
    run.add_argument("--total-timeout", type=float,
                     help="seconds for the whole run (default: the two above)")
    run.add_argument("--memory", default="2G")
    run.add_argument("--cpus", type=int, default=2)
    run.add_argument("--accel", choices=("kvm", "tcg"), help="default: kvm where it works")
    run.add_argument("--share", help="a host directory the guest may write (same path)")
    run.add_argument("--logs", help="a directory to keep the guest's console.log in "
                     "(default: a new one under ~/.cache/crbench/vm/runs)")
    run.add_argument("--json", action="store_true", help="the outcome as JSON, output in it")
    run.add_argument("command", nargs=argparse.REMAINDER)
    grid = sub.add_parser("matrix", help="the probes and the suite under each kernel")
    grid.add_argument("--kernels", default=",".join(matrix.DEFAULT_KERNELS),
                      help="comma-separated (default: %(default)s)")
    grid.add_argument("--out", default="vm-matrix", help="the report's directory")
    grid.add_argument("--no-suite", action="store_true", help="the probes only")
    grid.add_argument("--timeout", type=float, default=3600.0,
                      help="seconds for the suite under one kernel")
    grid.add_argument("--memory", default="3G")
    grid.add_argument("pytest_args", nargs=argparse.REMAINDER,
                      help="after --: what pytest runs (default: testcases)")
    listing = sub.add_parser("kernels", help="fetch (if needed) and list the kernels")
    listing.add_argument("names", nargs="*", default=list(kernels.SUITES))
    args = parser.parse_args(argv)
    if args.verb == "kernels":
        try:
            for name in args.names:
                k = kernels.get(name, progress=_progress)
                print(f"{k.name:6} {k.release:28} {k.image or '(the running kernel)'}")
        except kernels.KernelError as e:
            _progress(f"vm: {e}")
            return 126
        return 0
    if args.verb == "matrix":
        pytest_args = args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else \
            args.pytest_args
        try:
            data = matrix.run([k for k in args.kernels.split(",") if k], pytest_args,
                              args.out, suite=not args.no_suite, timeout=args.timeout,
                              memory=args.memory, progress=_progress)
        except kernels.KernelError as e:
            _progress(f"vm: {e}")
            return 126
        _progress(f"vm matrix: {args.out}/matrix.md, matrix.html, matrix.json")
        print(open(f"{args.out}/matrix.md").read())
        bad = [r for r in data["kernels"] if (r.get("probes") or {}).get("status") != "ok"
               or (r.get("suite") or {}).get("status", "ok") not in ("ok", "failed")]
        return 1 if bad else 0
    if args.verb == "run":
        if args.command[:1] == ["--"]:
            args.command = args.command[1:]
        try:
            return cmd_run(args)
        except kernels.KernelError as e:
            _progress(f"vm: {e}")
            return 126
    return 2
