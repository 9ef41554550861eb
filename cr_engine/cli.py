"""python -m cr_engine: dump, restore and show, with CRIU's verbs and flag names."""

import argparse
import json
import os
import sys

from .dump import dump as dump_tree
from .dump import pre_dump as pre_dump_tree
from .restore import restore as restore_tree
from . import mnt_model
from .show import render, show
from .errors import CRError


def build_parser():
    p = argparse.ArgumentParser(prog="python -m cr_engine",
                                description="Checkpoint and restore Linux process trees.")
    sub = p.add_subparsers(dest="verb", required=True, metavar="{dump,pre-dump,restore,show}")
    d = sub.add_parser("dump", help="checkpoint the tree rooted at a pid into images")
    d.add_argument("-t", "--tree", type=int, required=True, metavar="PID")
    d.add_argument("-D", "--images-dir", required=True, metavar="DIR")
    d.add_argument("-R", "--leave-running", action="store_true",
                   help="let the tree run on after the dump (default: kill it)")
    d.add_argument("--shell-job", action="store_true",
                   help="the tree's session/group/terminal belong to the calling shell")
    d.add_argument("--tcp-established", action="store_true",
                   help="carry TCP connections whose peer is outside the tree (its packets "
                        "are dropped until the restore)")
    d.add_argument("--prev-images-dir", metavar="DIR",
                   help="images of a pre-dump (or --track-mem dump) of this tree: store only "
                        "the pages written since")
    d.add_argument("--track-mem", action="store_true",
                   help="with --leave-running: track the pages written from now on, for a "
                        "later dump with these images as --prev-images-dir")
    d.add_argument("--external", action="append", default=[], metavar="mnt[PATH]:KEY",
                   help="the mount at PATH of the root's mount namespace (PATH@N: of "
                        "namespace N) is the outside world's: dumped as KEY, without its "
                        "content, and bound at restore from the path given for KEY")
    d.add_argument("-v", "--verbose", action="store_true", help="print timings and counts")
    d.add_argument("--json", action="store_true", help="print the result as JSON")
    pd = sub.add_parser("pre-dump", help="store the memory of a running tree and track its "
                                         "writes, for an incremental dump")
    pd.add_argument("-t", "--tree", type=int, required=True, metavar="PID")
    pd.add_argument("-D", "--images-dir", required=True, metavar="DIR")
    pd.add_argument("--prev-images-dir", metavar="DIR", help="the previous pre-dump's images")
    pd.add_argument("-v", "--verbose", action="store_true", help="print timings and counts")
    pd.add_argument("--json", action="store_true", help="print the result as JSON")
    r = sub.add_parser("restore", help="recreate a tree from images")
    r.add_argument("-D", "--images-dir", required=True, metavar="DIR")
    r.add_argument("-d", "--restore-detached", action="store_true",
                   help="return once the tree runs (default: wait for the root to exit)")
    r.add_argument("--pidfile", metavar="FILE", help="write the root's pid here")
    r.add_argument("--shell-job", action="store_true",
                   help="attach the tree to this terminal's session and process group")
    r.add_argument("--external", action="append", default=[], metavar="mnt[KEY]:PATH",
                   help="bind PATH where the dump had the external mount KEY")
    r.add_argument("-v", "--verbose", action="store_true", help="print timings and counts")
    r.add_argument("--json", action="store_true", help="print the result as JSON")
    s = sub.add_parser("show", help="decode an image directory")
    s.add_argument("images_dir", metavar="DIR")
    s.add_argument("--json", action="store_true", help="print everything as JSON")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return {"dump": _dump, "pre-dump": _pre_dump, "restore": _restore,
                "show": _show}[args.verb](args)
    except CRError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _report(args, what, result, extra):
    if args.json:
        print(json.dumps({**extra, "stats": result.stats}, indent=1))
        return
    if args.verbose:
        from .stats import Stats
        stats = Stats()
        stats.times, stats.counts = result.stats["times"], result.stats["counts"]
        stats.ways = result.stats.get("ways", {})
        print(f"{what}:", file=sys.stderr)
        for line in stats.lines():
            print(line, file=sys.stderr)


def _dump(args):
    if args.track_mem and not args.leave_running:
        raise CRError("--track-mem needs --leave-running (a killed tree has nothing to track)")
    result = dump_tree(args.tree, args.images_dir, leave_running=args.leave_running,
                       shell_job=args.shell_job, tcp_established=args.tcp_established,
                       parent=args.prev_images_dir, track_mem=args.track_mem,
                       external=args.external)
    _report(args, "dump", result, {"root": result.root_pid, "pids": result.pids,
                                   "images_dir": result.images_dir})
    return 0


def _pre_dump(args):
    result = pre_dump_tree(args.tree, args.images_dir, parent=args.prev_images_dir)
    _report(args, "pre-dump", result, {"root": result.root_pid, "pids": result.pids,
                                       "images_dir": result.images_dir})
    return 0


def _restore(args):
    result = restore_tree(args.images_dir, shell_job=args.shell_job,
                          external=mnt_model.restore_externals(args.external))
    if args.pidfile:
        tmp = args.pidfile + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{result.root_pid}\n")
        os.rename(tmp, args.pidfile)
    _report(args, "restore", result, {"root": result.root_pid, "pids": result.pids})
    if args.restore_detached:
        return 0        # our exit re-parents the tree, as with criu restore -d
    sys.stdout.flush()
    _, status = os.waitpid(result.root_pid, 0)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _show(args):
    decoded = show(args.images_dir)
    if args.json:
        print(json.dumps(decoded, indent=1))
    else:
        print("\n".join(render(decoded)))
    return 0
