"""How long do dump and restore take for two mount namespaces holding 1,000 mounts in 50 peer
groups, read by statmount or by mountinfo?  Ours next to CRIU 4.1.1 in the same run.

    python benchmarks/bench_mounts.py [--mounts 1000] [--runs 5] [--no-criu] [--json]

The program (programs/mounts_1000.c) makes MOUNTS / 2 mounts in a mount namespace of its own
(tmpfs superblocks made shared, 10 members each, half of them binds of a subdirectory, 10
small files in each) and a child unshares a second one, where the kernel copies them as
peers; after the restore it checks the mounts, the files and that a mount propagates from
the first namespace to the second.  Each collection path is a case (CR_ENGINE_MOUNT_COLLECT
forces it): ours and CRIU alternating, as bench_fds.py does; beside the end-to-end medians,
the medians of our stages over the same runs (dump: collect-mounts, mount-content; restore:
mounts) and the sizes of one more dump of each case (restored and checked too).  A failed
check of ours ends the benchmark with the program's words.
CRIU runs with mount-v2 (its default) and --ext-mount-map auto: the namespace's private
copies of CRIU's own mounts are external to it ("doesn't have a proper root mount" without).
"""

import argparse
import json
import os
import statistics
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "benchmarks"))

import bench_engine                                  # noqa: E402
import bench_fds                                     # noqa: E402
import cr_engine                                     # noqa: E402
from cr_engine import mount_table                    # noqa: E402
from zdtm_py.build import build                      # noqa: E402

PROGRAM = os.path.join(TOP, "benchmarks", "programs", "mounts_1000.c")
WAYS = ("statmount", "mountinfo")
STAGES = (("dump", "collect-mounts"), ("dump", "mount-content"), ("dump", "total"),
          ("restore", "mounts"), ("restore", "total"))
CRIU_FLAGS = "--ext-mount-map auto"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mounts", type=int, default=1000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--no-criu", action="store_true")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    groups = args.mounts // 20
    results = {"mounts": args.mounts, "cases": {}}
    forced = os.environ.get(mount_table.FORCE)
    for way in WAYS:
        # read at every dump: mount_table.way() caches nothing when forced
        os.environ[mount_table.FORCE] = way
        case = f"{way}, {groups * 20:,} mounts in {groups} peer groups"
        out = bench_fds.program_cases(PROGRAM, [(case, lambda n: [str(n)], args.mounts)],
                                      args, "bench-mounts-", CRIU_FLAGS)
        r = results["cases"][case] = out["cases"][case]
        r["way"] = way
        r["stages_ms"] = {f"{kind}: {stage}": round(statistics.median(
            s[kind]["times"][stage] * 1000 for s in r["ours"]["stats"]), 2)
            for kind, stage in STAGES}
        del r["ours"]["stats"]
        r["image_bytes"] = image_sizes(args.mounts, way)
    if forced is None:
        del os.environ[mount_table.FORCE]
    else:
        os.environ[mount_table.FORCE] = forced
    bench_fds.report(results, args.json, 66)
    if not args.json:
        print("\n" + "\n".join(stages_table(results)))
    return 0


def image_sizes(mounts, way):
    """Bytes of one more dump's images (all, mnt.json, mnt-content.img); the dump must have
    read the namespaces ``way``, and the restored program must pass its check."""
    with tempfile.TemporaryDirectory(prefix="bench-mounts-") as workdir:
        pid, result = bench_engine.start(str(build(PROGRAM)), [str(mounts)], workdir)
        images = os.path.join(workdir, "img")
        cr_engine.dump(pid, images)
        bench_engine.reap(pid)
        sizes = {name: os.path.getsize(os.path.join(images, name)) for name in os.listdir(images)}
        with open(os.path.join(images, "mnt.json")) as f:
            taken = json.load(f)["collect"]
        if taken != way:
            raise RuntimeError(f"{mount_table.FORCE}={way}, but the dump read {taken}")
        bench_engine.verify(cr_engine.restore(images).root_pid, result)
    return {"all": sum(sizes.values()), "mnt.json": sizes["mnt.json"],
            "mnt-content.img": sizes["mnt-content.img"]}


def stages_table(results):
    """Our stages and image sizes, a column per collection path."""
    cases = results["cases"].values()
    lines = [f"{'ours: stage, median ms':<34}" + "".join(f"{r['way']:>12}" for r in cases)]
    for key in next(iter(cases))["stages_ms"]:
        lines.append(f"{key:<34}" + "".join(f"{r['stages_ms'][key]:>12.1f}" for r in cases))
    for key in ("all", "mnt.json", "mnt-content.img"):
        lines.append(f"{'images, ' + key + ', KiB':<34}" +
                     "".join(f"{r['image_bytes'][key] / 1024:>12.1f}" for r in cases))
    return lines


if __name__ == "__main__":
    sys.exit(main())
