"""How fast does the engine dump and restore, and how much memory does it take?  Ours next
to CRIU 4.1.1 (the reference engine, from its trixie root) in the same run.

    python benchmarks/bench_engine.py [--size-mib 1024] [--large-runs 5] [--small-runs 20]
                                      [--no-criu] [--cold] [--json]

Cases
  large   one process with SIZE MiB of dirtied private anonymous memory: dump (freeze to
          images written, tree killed) and restore (images to tree running), end to end,
          and the restored memory verified page by page by the program itself; restores
          are timed twice: with the images where the dump left them (CRIU's in the page
          cache, ours on disk: written with O_DIRECT), and read back from the disk (the
          image files written out and dropped from the page cache first, for both engines)
  small   a process with 8 MiB: dump and restore through the Python API, median of N runs
  rss     peak RSS (VmHWM) of the dump command on the large case minus its peak before the
          dump began, with the engine imported (pages must be streamed, not buffered)
Images go to a temporary directory on the file system of $TMPDIR (default /tmp).  Before
every timed step of either engine, free memory is warmed (warm_memory.c says why); --cold
skips that.
"""

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)

import cr_engine                                     # noqa: E402
from kernel.process import PR_SET_CHILD_SUBREAPER, prctl  # noqa: E402
from zdtm_py.build import build                      # noqa: E402

PROGRAM = os.path.join(TOP, "benchmarks", "programs", "dirty_memory.c")
WARM = os.path.join(TOP, "benchmarks", "programs", "warm_memory.c")
EVICT = os.path.join(TOP, "benchmarks", "programs", "evict_cache.c")
REFERENCE_CRIU = os.path.join(TOP, "tools", "reference_criu.py")


def wait_file(path, prefix, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                text = f.read()
            if text.startswith(prefix):
                return text
        except FileNotFoundError:
            pass
        time.sleep(0.005)
    raise TimeoutError(f"{path}: no {prefix!r} after {timeout}s")


def start(binary, args, workdir):
    """Start a benchmark program: ``binary ARGS... RESULT_FILE``; (pid, result file)."""
    result = os.path.join(workdir, "result")
    proc = subprocess.Popen([binary, *args, result], cwd=workdir, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    wait_file(result, "ready")
    return proc.pid, result


def verify(pid, result):
    os.remove(result)
    os.kill(pid, signal.SIGTERM)
    _, status = os.waitpid(pid, 0)
    text = wait_file(result, "", timeout=60).strip()
    if status != 0 or text != "OK":
        raise RuntimeError(f"restored process failed its check: {text} (status {status:#x})")


def reap(pid):
    """Collect the killed original (the engine already did if it was its child)."""
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def warm(tools, mib):
    """See warm_memory.c: run right before each timed step of both engines."""
    if tools.warm:
        subprocess.run([tools.warm, str(2 * mib)], check=True)


def ours_once(tools, mib, workdir, from_disk=False):
    pid, result = start(tools.binary, tools.args(mib), workdir)
    images = os.path.join(workdir, "img")
    warm(tools, mib)
    t0 = time.perf_counter()
    dumped = cr_engine.dump(pid, images)
    t1 = time.perf_counter()
    reap(pid)
    if from_disk:
        subprocess.run([tools.evict, *(os.path.join(images, f) for f in os.listdir(images))],
                       check=True)
    warm(tools, mib)
    t2 = time.perf_counter()
    restored = cr_engine.restore(images)
    t3 = time.perf_counter()
    verify(restored.root_pid, result)
    shutil.rmtree(images)
    return t1 - t0, t3 - t2, dumped.stats, restored.stats


RSS_PROBE = """
import sys
from cr_engine.cli import main
def hwm():
    with open('/proc/self/status') as f:
        return next(int(l.split()[1]) for l in f if l.startswith('VmHWM:'))
base = hwm()
rc = main(sys.argv[1:])
print(base, hwm())
sys.exit(rc)
"""


def rss_case(binary, mib, workdir):
    """(baseline, peak) VmHWM in KiB of the dump CLI: after importing the engine, and after
    dumping the large process (the difference is what the dump itself needed)."""
    pid, result = start(binary, [str(mib)], workdir)
    images = os.path.join(workdir, "img")
    out = subprocess.run([sys.executable, "-c", RSS_PROBE, "dump", "-t", str(pid), "-D", images],
                         cwd=TOP, capture_output=True, text=True, check=True)
    reap(pid)
    shutil.rmtree(images)
    os.remove(result)
    base, peak = (int(x) for x in out.stdout.split())
    return base, peak


def criu_available():
    if not os.path.exists(REFERENCE_CRIU):
        return False
    return subprocess.run([sys.executable, REFERENCE_CRIU, "path"],
                          capture_output=True).returncode == 0


CRIU_SCRIPT = r"""
set -e
rm -f result
setsid ./prog {args} result </dev/null >prog.log 2>&1 &
while ! grep -q ready result 2>/dev/null; do sleep 0.005; done
pid=$(cut -d' ' -f2 result)
{warm}
t0=$(date +%s.%N)
criu dump -t $pid -D img -o dump.log {criu_flags}
t1=$(date +%s.%N)
while [ -e /proc/$pid ]; do sleep 0.001; done
{evict}
{warm}
t2=$(date +%s.%N)
criu restore -d -D img -o restore.log {criu_flags}
t3=$(date +%s.%N)
echo "times $t0 $t1 $t2 $t3 $pid"
"""


def _kill_left_over(result):
    """A failed CRIU dump leaves the program running: kill it, so that the next run starts
    alone."""
    try:
        with open(result) as f:
            words = f.read().split()
        pid = int(words[1]) if words[:1] == ["ready"] else 0
    except (OSError, ValueError, IndexError):
        return
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        reap(pid)
    os.remove(result)


@contextlib.contextmanager
def _reaping_orphans():
    """While CRIU dumps and restores in one script: reap the zombies that come to us (child
    subreaper) and lead no session - a tree's process whose parent CRIU killed first (our
    engine reaps its own): nobody else would, and CRIU's restore then finds its pid taken
    ("Can't fork for N: File exists").  Session leaders (the roots) are not ours to reap."""
    done = threading.Event()

    def loop():
        while not done.wait(0.001):
            for tid in os.listdir("/proc/self/task"):
                try:
                    with open(f"/proc/self/task/{tid}/children") as f:
                        kids = f.read().split()
                except OSError:
                    continue
                for pid in kids:
                    try:
                        with open(f"/proc/{pid}/stat") as f:
                            state, _, _, session = f.read().rpartition(")")[2].split()[:4]
                        if state == "Z" and session != pid:
                            os.waitpid(int(pid), os.WNOHANG)
                    except (OSError, ChildProcessError):
                        pass

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def criu_once(tools, mib, workdir, from_disk=False):
    shutil.copy(tools.binary, os.path.join(workdir, "prog"))
    shutil.copy(tools.evict, os.path.join(workdir, "evict"))
    if tools.warm:
        shutil.copy(tools.warm, os.path.join(workdir, "warm"))
    os.makedirs(os.path.join(workdir, "img"), exist_ok=True)
    with _reaping_orphans():
        out = subprocess.run([sys.executable, REFERENCE_CRIU, "exec", "--bind-cwd", "--", "sh",
                              "-c", CRIU_SCRIPT.format(
                                  args=" ".join(tools.args(mib)),
                                  warm=f"./warm {2 * mib}" if tools.warm else ":",
                                  evict="./evict img/*" if from_disk else ":",
                                  criu_flags=getattr(tools, "criu_flags", ""))],
                             cwd=workdir, capture_output=True, text=True, timeout=600)
    line = next((x for x in out.stdout.splitlines() if x.startswith("times ")), None)
    if out.returncode != 0 or line is None:
        _kill_left_over(os.path.join(workdir, "result"))
        logs = ""
        for name in ("dump.log", "restore.log"):
            path = os.path.join(workdir, "img", name)
            if os.path.exists(path):
                with open(path) as f:
                    logs += f"{name}: {f.read()[-300:]}"
        raise RuntimeError(f"criu run failed: {out.stderr.strip()[-400:]} {logs}")
    t0, t1, t2, t3, pid = line.split()[1:]
    result = os.path.join(workdir, "result")
    os.remove(result)
    os.kill(int(pid), signal.SIGTERM)
    text = wait_file(result, "", timeout=60).strip()
    if text != "OK":
        raise RuntimeError(f"CRIU-restored process failed its check: {text}")
    for name in ("img", "prog", "warm", "evict"):
        path = os.path.join(workdir, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
    return float(t1) - float(t0), float(t3) - float(t2)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-mib", type=int, default=1024)
    p.add_argument("--large-runs", type=int, default=5)
    p.add_argument("--small-runs", type=int, default=20)
    p.add_argument("--no-criu", action="store_true")
    p.add_argument("--cold", action="store_true",
                   help="do not warm free memory before each timed step (see warm_memory.c)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    tools = argparse.Namespace(binary=str(build(PROGRAM)), evict=str(build(EVICT)),
                               warm=None if args.cold else str(build(WARM)),
                               args=lambda mib: [str(mib)])
    results = {"size_mib": args.size_mib, "warm": not args.cold}
    use_criu = not args.no_criu and criu_available()
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as workdir:
        # ours and CRIU alternate run by run, so that both meet the same machine state (this
        # VM's fresh memory is slow to touch the first time, and that drifts over a run)
        for case, mib, runs in (("large", args.size_mib, args.large_runs),
                                ("small", 8, args.small_runs)):
            modes = (False, True) if case == "large" else (False,)
            ours, crius = {m: [] for m in modes}, {m: [] for m in modes}
            for i in range(runs):
                for from_disk in modes:
                    ours[from_disk].append(ours_once(tools, mib, workdir, from_disk))
                    if use_criu and "criu_error" not in results and (case == "large" or i < 5):
                        try:
                            crius[from_disk].append(criu_once(tools, mib, workdir, from_disk))
                        except (RuntimeError, subprocess.TimeoutExpired) as e:
                            results["criu_error"] = str(e)
            results[f"ours_{case}"] = _summary(ours)
            results[f"ours_{case}"].update(dump_stats=ours[False][-1][2],
                                           restore_stats=ours[False][-1][3])
            if crius[False]:
                results[f"criu_{case}"] = _summary(crius)
        base, peak = rss_case(tools.binary, args.size_mib, workdir)
        results["rss_kib"] = {"baseline": base, "dump_peak": peak}
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        print("\n".join(table(results)))
    return 0


def _summary(by_mode):
    """Dump times of every run; restore times apart for images as the dump left them and
    for images read back from the disk."""
    runs = [r for mode in by_mode.values() for r in mode]
    out = {"dump_s": [r[0] for r in runs], "restore_s": [r[1] for r in by_mode[False]]}
    if by_mode.get(True):
        out["restore_disk_s"] = [r[1] for r in by_mode[True]]
    return out


def table(r):
    gib = r["size_mib"] / 1024
    lines = [f"{'case':<34}{'ours':>14}{'CRIU 4.1.1':>14}"]

    def row(name, ours, criu, fmt):
        lines.append(f"{name:<34}{fmt(ours):>14}{fmt(criu) if criu is not None else '-':>14}")

    def med(d, key):
        return statistics.median(d[key]) if d else None

    for key, label in (("dump_s", "dump"), ("restore_s", "restore"),
                       ("restore_disk_s", "restore from disk")):
        o, c = med(r["ours_large"], key), med(r.get("criu_large"), key)
        row(f"{r['size_mib']} MiB {label}, median s", o, c, lambda v: f"{v:.3f}")
        row(f"{r['size_mib']} MiB {label}, GB/s", o and gib * 1.073741824 / o,
            c and gib * 1.073741824 / c, lambda v: f"{v:.2f}")
    for key, label in (("dump_s", "dump"), ("restore_s", "restore")):
        o, c = med(r["ours_small"], key), med(r.get("criu_small"), key)
        row(f"8 MiB {label}, median ms", o and o * 1000, c and c * 1000, lambda v: f"{v:.1f}")
    rss = r["rss_kib"]
    lines.append(f"{'dump peak RSS over baseline, MiB':<34}"
                 f"{(rss['dump_peak'] - rss['baseline']) / 1024:>14.1f}{'-':>14}")
    if "criu_error" in r:
        lines.append(f"CRIU: {r['criu_error']}")
    return lines


if __name__ == "__main__":
    sys.exit(main())
