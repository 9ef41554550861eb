"""How long does a dump keep the tree from running?  Ours next to CRIU 4.1.1, in one run.

    python benchmarks/bench_downtime.py [--runs 5] [--cases mem1g,tree100,fds1000,vmas20k]
                                        [--no-criu] [--json]

Cases (benchmarks/programs/, each started with its stall meter on: STALL_METER=1)
  mem1g     one process with 1 GiB of dirtied private memory (dirty_memory.c)
  tree100   a flat tree of 100 processes with 10 VMAs each (proc_tree.c)
  fds1000   one process with 1,000 fds of mixed kinds, no inet sockets (many_fds.c: CRIU
            4.1.1 cannot dump those on this kernel)
  vmas20k   one process with 20,000 VMAs (proc_tree.c)

Each run of a case starts a process for ours, then one for CRIU (the engines alternate):
  ours  a dump with --leave-running (API): times.downtime (first thread stopped to last
        released), frozen, the call's wall time; then two pre-dumps and a dump on top of
        them (--leave-running), each with its downtime; the original then checks itself,
        the plain dump is restored (timed) and checks itself, then the incremental one.
  CRIU  `criu dump --leave-running --display-stats` (its CLI in its trixie root, as
        bench_engine.py): "Frozen time" (from the tree frozen to its thaw; its "Freezing
        time" apart), the command's wall time; the original checks itself, `criu restore
        -d` (timed), the restored process checks itself.  CRIU's pre-dump is not measured:
        the benchmark asks `criu check --feature mem_dirty_track` and says why.
Around every dump and pre-dump the program's stall meter is read (stall_meter.h): the
largest gap its thread saw, the same measure for both engines, pre-dumps' own stalls
included.  Medians of RUNS; free memory is warmed before every timed step of mem1g
(warm_memory.c).  The tree's meter is its root's: processes stop one by one, root first.
Five runs of every case take some five minutes here (mem1g is half of it).
"""

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)
sys.path.insert(0, os.path.join(TOP, "benchmarks"))

import bench_engine                                  # noqa: E402
import cr_engine                                     # noqa: E402
from kernel.process import PR_SET_CHILD_SUBREAPER, prctl  # noqa: E402
from zdtm_py.build import build                      # noqa: E402

PROGRAMS = os.path.join(TOP, "benchmarks", "programs")
# name: (label, program, its arguments before RESULT_FILE, warm free memory before steps)
CASES = {
    "mem1g": ("1 GiB of dirty memory", "dirty_memory.c", ["1024"], True),
    "tree100": ("100 processes x 10 VMAs", "proc_tree.c", ["100", "10"], False),
    "fds1000": ("1,000 fds (no inet)", "many_fds.c", ["1000", "fds", "noinet"], False),
    "vmas20k": ("20,000 VMAs", "proc_tree.c", ["1", "20000"], False),
}
PRE_DUMPS = 2


def stall(pid, result):
    """The largest stall the program's meter saw since it was last asked, in seconds."""
    path = result + ".stall"
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
    os.kill(pid, signal.SIGUSR2)
    return int(bench_engine.wait_file(path, "stall", timeout=30).split()[1]) / 1e9


def check(pid, result, timeout=60):
    """bench_engine.verify with a deadline: a tree that does not answer is reported (which
    of its processes are left, where they sleep) and killed, instead of hanging the run."""
    os.remove(result)
    os.kill(pid, signal.SIGTERM)
    try:
        text = bench_engine.wait_file(result, "", timeout=timeout).strip()
    except TimeoutError:
        left = _left(pid)
        kill_group(pid)
        raise RuntimeError(f"pid {pid} gave no answer to its check in {timeout} s; "
                           f"left: {left}") from None
    _, status = os.waitpid(pid, 0)
    if status != 0 or text != "OK":
        raise RuntimeError(f"pid {pid} failed its check: {text} (status {status:#x})")


def _left(pid):
    """The live processes of the tree of ``pid``: pid, where it sleeps, its tracer."""
    out = []
    with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{pid}/children") as f:
        kids = f.read().split()
    for p in [str(pid)] + kids:
        with contextlib.suppress(OSError), open(f"/proc/{p}/status") as f, \
                open(f"/proc/{p}/wchan") as w:
            status = dict(line.split(":\t", 1) for line in f.read().splitlines())
            if status["State"][0] != "Z":
                out.append(f"{p} {w.read()} tracer {status['TracerPid']}")
    return ", ".join(out[:10]) + (f" and {len(out) - 10} more" if len(out) > 10 else "")


def kill_group(pid):
    """What is left of a run that failed halfway."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    bench_engine.reap(pid)


class Case:
    def __init__(self, name, workdir, warm_binary):
        self.name = name
        self.label, program, self.argv, warms = CASES[name]
        self.binary = str(build(os.path.join(PROGRAMS, program)))
        self.warm_binary = warm_binary if warms else None
        self.workdir = os.path.join(workdir, name)
        os.makedirs(os.path.join(self.workdir, "fds"))

    def warm(self):
        if self.warm_binary:
            subprocess.run([self.warm_binary, "2048"], check=True)

    def path(self, name):
        return os.path.join(self.workdir, name)


def ours_once(case):
    """One process: a plain dump, pre-dumps and a dump on them; both dumps restored.  All
    dumps --leave-running; every process checks itself."""
    pid, result = bench_engine.start(case.binary, case.argv, case.workdir)
    out = {}
    try:
        case.warm()
        stall(pid, result)
        t0 = time.perf_counter()
        dumped = cr_engine.dump(pid, case.path("img"), leave_running=True)
        out["dump_s"] = time.perf_counter() - t0
        out["stall_s"] = stall(pid, result)
        out["downtime_s"] = dumped.stats["times"]["downtime"]
        out["frozen_s"] = dumped.stats["times"]["frozen"]
        parent, out["pre_dump_downtime_s"], out["pre_dump_stall_s"] = None, [], []
        for k in range(PRE_DUMPS):
            case.warm()
            stall(pid, result)
            pre = cr_engine.pre_dump(pid, case.path(f"pre{k}"), parent=parent)
            out["pre_dump_stall_s"].append(stall(pid, result))
            out["pre_dump_downtime_s"].append(pre.stats["times"]["downtime"])
            parent = case.path(f"pre{k}")
        case.warm()
        stall(pid, result)
        dumped = cr_engine.dump(pid, case.path("inc"), leave_running=True, parent=parent)
        out["inc_stall_s"] = stall(pid, result)
        out["inc_downtime_s"] = dumped.stats["times"]["downtime"]
        check(pid, result)                      # four dumps later, the original is intact
        case.warm()
        t0 = time.perf_counter()
        restored = cr_engine.restore(case.path("img"))
        out["restore_s"] = time.perf_counter() - t0
        check(restored.root_pid, result)
        restored = cr_engine.restore(case.path("inc"))
        check(restored.root_pid, result)
    except BaseException:
        kill_group(pid)
        raise
    finally:
        for name in os.listdir(case.workdir):
            if name.startswith(("img", "pre", "inc")):
                shutil.rmtree(case.path(name))
    return out


CRIU_SCRIPT = r"""
set -e
wait_for() {{   # a test, for at most a minute
  n=0
  while ! eval "$1"; do
    sleep 0.005; n=$((n + 1))
    [ $n -lt 12000 ] || {{ echo "timed out: $1"; exit 1; }}
  done
}}
rm -rf img result result.stall
mkdir img
STALL_METER=1 setsid ./prog {args} result </dev/null >prog.log 2>&1 &
wait_for 'grep -q ready result 2>/dev/null'
pid=$(cut -d' ' -f2 result)
echo "pid $pid"
stall() {{
  rm -f result.stall; kill -USR2 $pid
  wait_for '[ -e result.stall ]'
  cut -d' ' -f2 result.stall
}}
check() {{
  rm -f result; kill -TERM $pid
  wait_for '[ -e result ]'
  echo "check $(cat result)"
}}
{warm}
stall >/dev/null
t0=$(date +%s.%N)
criu dump -t $pid -D img -o dump.log --leave-running --display-stats >stats.txt 2>&1
t1=$(date +%s.%N)
echo "dump $t0 $t1"
echo "stall $(stall)"
grep -E '^(Freezing|Frozen) time' stats.txt
check
wait_for '[ ! -e /proc/$pid ]'
{warm}
t2=$(date +%s.%N)
criu restore -d -D img -o restore.log
t3=$(date +%s.%N)
echo "restore $t2 $t3"
check
"""


def criu_once(case):
    """One process under CRIU: a dump --leave-running, its check, a restore, its check."""
    for name, binary in (("prog", case.binary), ("warm", case.warm_binary)):
        if binary:
            shutil.copy(binary, case.path(name))
    script = CRIU_SCRIPT.format(args=" ".join(case.argv),
                                warm="./warm 2048" if case.warm_binary else ":")
    run = subprocess.run([sys.executable, bench_engine.REFERENCE_CRIU, "exec", "--bind-cwd",
                          "--", "sh", "-c", script], cwd=case.workdir, capture_output=True,
                         text=True, timeout=600)
    said = {line.split()[0]: line.split()[1:] for line in run.stdout.splitlines() if line}
    checks = re.findall(r"^check (.*)$", run.stdout, re.M)
    pid = int(said["pid"][0]) if "pid" in said else None
    try:
        if run.returncode != 0 or checks != ["OK", "OK"]:
            raise RuntimeError(f"criu run failed (checks {checks}): {_criu_log(case, run)}")
        frozen = re.search(r"^Frozen time: (\d+) us", run.stdout, re.M)
        freezing = re.search(r"^Freezing time: (\d+) us", run.stdout, re.M)
        return {"frozen_s": int(frozen[1]) / 1e6, "freezing_s": int(freezing[1]) / 1e6,
                "stall_s": int(said["stall"][0]) / 1e9,
                "dump_s": float(said["dump"][1]) - float(said["dump"][0]),
                "restore_s": float(said["restore"][1]) - float(said["restore"][0])}
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise RuntimeError(f"criu run: unexpected output ({e!r}): {run.stdout[-300:]}") from e
    finally:
        if pid:
            kill_group(pid)     # after a failure: what is left; else reaps the restored root
        for name in ("img", "prog", "warm"):
            path = case.path(name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)


def _criu_log(case, run):
    """What says why a CRIU run failed: the script's last words, then CRIU's logs."""
    text = " | ".join(run.stdout.strip().splitlines()[-2:] + run.stderr.strip().splitlines()[-2:])
    for name in ("img/restore.log", "img/dump.log"):
        with contextlib.suppress(OSError), open(case.path(name)) as f:
            text += f" | {name}: {' '.join(f.read().splitlines()[-3:])}"
    return text


def criu_pre_dump_note():
    """Why CRIU's pre-dump is not measured here (its memory tracking check)."""
    out = subprocess.run([sys.executable, bench_engine.REFERENCE_CRIU, "run", "--", "check",
                          "--feature", "mem_dirty_track"], capture_output=True, text=True)
    if out.returncode == 0:
        return "CRIU's pre-dump: available here, but not measured by this benchmark"
    said = next((line.split(": ", 1)[-1].strip() for line in
                 (out.stderr + out.stdout).splitlines() if "Dirty tracking" in line),
                out.stderr.strip()[-120:])
    return (f"CRIU's pre-dump does not work on this host (criu check --feature "
            f"mem_dirty_track: {said!r}; criu pre-dump then stops at BUG criu/mem.c:45): "
            f"CRIU's downtime is always its full dump's")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--cases", default=",".join(CASES),
                   help=f"comma-separated, of {', '.join(CASES)}")
    p.add_argument("--no-criu", action="store_true")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    names = args.cases.split(",")
    if unknown := set(names) - set(CASES):
        p.error(f"unknown cases: {', '.join(sorted(unknown))}")
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    os.environ["STALL_METER"] = "1"         # the programs we start, and CRIU's, meter
    use_criu = not args.no_criu and bench_engine.criu_available()
    results = {"runs": args.runs, "cases": {},
               "criu_pre_dump": criu_pre_dump_note() if use_criu else None}
    warm_binary = str(build(bench_engine.WARM))
    with tempfile.TemporaryDirectory(prefix="bench-downtime-") as workdir:
        for name in names:
            case = Case(name, workdir, warm_binary)
            r = results["cases"][name] = {"label": case.label, "ours": [], "criu": []}
            for _ in range(args.runs):
                try:
                    r["ours"].append(ours_once(case))
                except (RuntimeError, cr_engine.CRError) as e:
                    r.setdefault("ours_errors", []).append(str(e))
                if use_criu and "criu_error" not in r:
                    try:
                        r["criu"].append(criu_once(case))
                    except (RuntimeError, subprocess.TimeoutExpired) as e:
                        r["criu_error"] = str(e)
    for r in results["cases"].values():
        r["medians"] = {engine: _medians(r[engine]) for engine in ("ours", "criu")}
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        print("\n".join(table(results)))
    return 0


def _medians(runs):
    """Median of every figure over the runs (lists: per position)."""
    if not runs:
        return {}
    out = {}
    for key, first in runs[0].items():
        if isinstance(first, list):
            out[key] = [statistics.median(r[key][i] for r in runs) for i in range(len(first))]
        else:
            out[key] = statistics.median(r[key] for r in runs)
    return out


ROWS = (  # label, ours' key, CRIU's key
    ("downtime (ours: times.downtime; CRIU: Frozen time)", "downtime_s", "frozen_s"),
    ("  the process's stall meter", "stall_s", "stall_s"),
    ("  ours: frozen; CRIU: Freezing time", "frozen_s", "freezing_s"),
    (f"after {PRE_DUMPS} pre-dumps: downtime", "inc_downtime_s", None),
    ("  the process's stall meter", "inc_stall_s", None),
    ("  the pre-dumps' own downtimes", "pre_dump_downtime_s", None),
    ("  the pre-dumps' own stalls (meter)", "pre_dump_stall_s", None),
    ("dump, wall time (ours: API; CRIU: CLI)", "dump_s", "dump_s"),
    ("restore, wall time", "restore_s", "restore_s"),
)


def table(results):
    width = 54
    lines = []
    for r in results["cases"].values():
        lines.append(f"{r['label'] + ', ms, medians of ' + str(results['runs']):<{width}}"
                     f"{'ours':>14}{'CRIU 4.1.1':>12}")
        ours, criu = r["medians"]["ours"], r["medians"]["criu"]
        for label, ours_key, criu_key in ROWS:
            theirs = criu.get(criu_key) if criu_key else None
            lines.append(f"{label:<{width}}{_ms(ours.get(ours_key)):>14}{_ms(theirs):>12}")
        for error in r.get("ours_errors", []):
            lines.append(f"  ours failed: {error[:300]}")
        if "criu_error" in r:
            lines.append(f"  CRIU failed: {r['criu_error'][:600]}")
        lines.append("")
    if results["criu_pre_dump"]:
        lines.append(results["criu_pre_dump"])
    return lines


def _ms(value):
    if value is None:
        return "-"
    if isinstance(value, list):
        return " / ".join(f"{v * 1000:.0f}" for v in value)
    return f"{value * 1000:.1f}"


if __name__ == "__main__":
    sys.exit(main())
