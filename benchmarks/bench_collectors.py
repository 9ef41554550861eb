"""How fast do the engine's collectors read a tree's state from /proc's text, and how fast
do the other ways the kernel offers read the same?  Side by side in one run.

    python benchmarks/bench_collectors.py [--runs 7] [--cases vmas,tree,fds,mounts] [--json]
        [--vmas 20000] [--file-every 4] [--procs 100] [--proc-vmas 100]
        [--fds 1000] [--fd-procs 10] [--mounts 1000]

Cases
  vmas    one process with VMAS VMAs (programs/many_vmas.c: 2-page regions, protections
          alternating so that none merge, every FILE_EVERY-th a private file mapping)
  tree    PROCS processes with PROC_VMAS such VMAs each
  fds     FD_PROCS processes with FDS fds each (programs/fd_tree.c: files, pipes, /dev/null,
          eventfds, memfds, unix sockets; descriptions shared by fork and by dup)
  mounts  a mount namespace of its own with MOUNTS mounts in peer groups, read from outside
          (programs/mounts_1000.c, as bench_mounts.py; they go with the namespace)

Each case has its /proc ways (the engine's own readers), each followed by the ways that
must give the same answer: VMAs with VmFlags, cr_engine.proc.smaps, against the BPF
task_vma iterator (cr_engine.collect.VmaCollector); VMAs without, cr_engine.proc.maps,
against PROCMAP_QUERY (names asked for; through kernel.memory.procmap_query, and with one
struct reused for every call); fds, what cr_engine/files.py reads per fd (readlink of
/proc/PID/fd/N, its fdinfo, stat) and its kcmp grouping into descriptions, against the BPF
task_file iterator (cr_engine.collect.FdCollector); mounts, mountinfo against listmount +
statmount (cr_engine.mount_table).  A way is a line in its group: (name, callable taking
the case's pids).  Every alternative's
answer is compared with its /proc way's in the same run (EQUAL or DIFFERS); one whose
import or first call fails shows "n/a: why".  Times are medians of RUNS of the collection
alone (the processes are set up before), the ways interleaved run by run; each way's first
call (imports, BPF program loads) is not timed.  Ratio: the /proc way's median divided by
the alternative's (above 1: the alternative is faster).
"""

import argparse
import collections
import contextlib
import ctypes
import functools
import gc
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "benchmarks"))

import bench_engine                                  # noqa: E402
from cr_engine import files, mount_table, proc       # noqa: E402
from kernel import fdinfo                            # noqa: E402
from kernel import memory as kmemory                 # noqa: E402
from kernel.libc import ioctl                        # noqa: E402
from kernel.process import KCMP_FILE, PR_SET_CHILD_SUBREAPER, kcmp, prctl  # noqa: E402
from zdtm_py.build import build                      # noqa: E402

PROGRAMS = os.path.join(TOP, "benchmarks", "programs")
READY_TIMEOUT = 120

# collect(pids) -> an answer; note() -> what to tell of its last answer, or None
Way = collections.namedtuple("Way", "name collect note", defaults=(None,))
# a /proc way, what its answers are compared by (answer -> {key: value}), its alternatives
Group = collections.namedtuple("Group", "proc key alternatives")
# the program (and its arguments) making the processes, the groups, the title of its size
Case = collections.namedtuple("Case", "program args groups title")


# VMAs ------------------------------------------------------------------------------------
def per_pid(read):
    return lambda pids: {pid: read(pid) for pid in pids}


def bpf_vmas(pids):
    collector = vma_collector()
    collector.fell_back = 0     # counts for this call only (bpf_vmas_note)
    return collector.collect(pids)


def bpf_vmas_note():
    """A process the iterator cannot name exactly is read from smaps: say how many were."""
    fell_back = vma_collector().fell_back
    return f"{fell_back} processes read by smaps" if fell_back else None


@functools.cache
def vma_collector():
    """The engine's BPF VMA collector, its program loaded (as before a freeze) by the first
    call, which is not timed."""
    from cr_engine import collect       # being written (issue 11): n/a until it lands
    return collect.VmaCollector("bpf", strict=True)


@functools.cache
def gate_area():
    """[vsyscall]: maps shows it in every process, but it is no VMA of theirs (nothing else
    finds it), so the other ways take it from one maps read."""
    return [v for v in proc.maps("self") if v.name == "[vsyscall]"]


PROCMAP_NAME_SIZE = 4096                # PATH_MAX
NEXT_VMA = kmemory.PROCMAP_QUERY_COVERING_OR_NEXT_VMA
# maps' perms of each combination of the readable, writable, executable and shared bits
PERMS = ["".join(letter if bits & bit else "-" for bit, letter in (
    (kmemory.PROCMAP_QUERY_VMA_READABLE, "r"), (kmemory.PROCMAP_QUERY_VMA_WRITABLE, "w"),
    (kmemory.PROCMAP_QUERY_VMA_EXECUTABLE, "x"))) +
    ("s" if bits & kmemory.PROCMAP_QUERY_VMA_SHARED else "p") for bits in range(16)]


def wrapper_queries(maps_fd):
    """(answer, name) of each VMA by kernel.memory.procmap_query (a new struct and name
    buffer per call)."""
    addr = 0
    while True:
        try:
            q, name = kmemory.procmap_query(maps_fd, addr, NEXT_VMA, PROCMAP_NAME_SIZE)
        except FileNotFoundError:       # no VMA at or above addr
            return
        yield q, name
        addr = q.vma_end


def reused_queries(maps_fd):
    """The same ioctls with one struct and one name buffer for all: what the wrapper's own
    allocations cost."""
    name = ctypes.create_string_buffer(PROCMAP_NAME_SIZE)
    q = kmemory.ProcmapQuery(size=ctypes.sizeof(kmemory.ProcmapQuery), query_flags=NEXT_VMA,
                             vma_name_addr=ctypes.addressof(name))
    while True:
        q.vma_name_size = PROCMAP_NAME_SIZE
        try:
            ioctl(maps_fd, kmemory.PROCMAP_QUERY, ctypes.byref(q))
        except FileNotFoundError:
            return
        yield q, name.value if q.vma_name_size else None
        q.query_addr = q.vma_end


def procmap_vmas(queries):
    """A reader of a pid's VMAs by PROCMAP_QUERY ``queries``, as proc.maps gives them."""
    def read(pid):
        fd = os.open(f"/proc/{pid}/maps", os.O_RDONLY | os.O_CLOEXEC)
        try:
            return [proc.Vma(q.vma_start, q.vma_end, PERMS[q.vma_flags & 15], q.vma_offset,
                             f"{q.dev_major:02x}:{q.dev_minor:02x}", q.inode,
                             os.fsdecode(name) if name else "")
                    for q, name in queries(fd)] + gate_area()
        finally:
            os.close(fd)
    return read


def vma_key(with_flags):
    def key(answer):
        return {(pid, v.start): (v.end, v.perms, v.offset, v.dev, v.inode, v.name) +
                ((frozenset(v.flags),) if with_flags else ())
                for pid, vmas in answer.items() for v in vmas}
    return key


VMA_GROUPS = [
    Group(Way("smaps (cr_engine.proc.smaps)", per_pid(proc.smaps)), vma_key(True), [
        Way("BPF task_vma (cr_engine.collect)", bpf_vmas, bpf_vmas_note),
    ]),
    Group(Way("maps (cr_engine.proc.maps)", per_pid(proc.maps)), vma_key(False), [
        Way("PROCMAP_QUERY (kernel.memory.procmap_query)", per_pid(procmap_vmas(wrapper_queries))),
        Way("PROCMAP_QUERY, one struct reused", per_pid(procmap_vmas(reused_queries))),
    ]),
]


# fds -------------------------------------------------------------------------------------
FdRecord = collections.namedtuple("FdRecord", "path flags pos mnt_id dev ino rdev mode description")


def proc_fds(pids):
    """{(pid, fd): FdRecord} as cr_engine/files.py reads each fd, with its grouping into
    descriptions (``description``: the (pid, fd) it was first seen at)."""
    out, by_inode = {}, {}
    for pid in pids:
        for fd in proc.fd_numbers(pid):
            path = f"/proc/{pid}/fd/{fd}"
            link, info, st = os.readlink(path), fdinfo.read(fd, pid), os.stat(path)
            bucket = by_inode.setdefault((st.st_dev, st.st_ino), [])
            # the engine's own binary search among the fds on the same inode
            description, at = files._find_description(
                bucket, lambda other_pid, other_fd: kcmp(pid, other_pid, KCMP_FILE, fd, other_fd))
            if description is None:
                description = (pid, fd)
                bucket.insert(at, (pid, fd, description))
            out[pid, fd] = FdRecord(link, int(info["flags"], 8), int(info.get("pos", 0)),
                                    int(info["mnt_id"]), st.st_dev, st.st_ino, st.st_rdev,
                                    st.st_mode, description)
    return out


def bpf_fds(pids):
    return {(pid, r.fd): FdRecord(*r[1:9], r.description)
            for pid, records in fd_collector().collect(pids).items() for r in records}


@functools.cache
def fd_collector():
    """The engine's BPF fd collector, its program loaded by the first call (not timed)."""
    from cr_engine import collect
    return collect.FdCollector("bpf", strict=True)


def fd_key(answer):
    """FdRecord fields by (pid, fd); a description told by the first (pid, fd) holding it,
    whatever the way names it by."""
    first = {}
    for pid_fd in sorted(answer):
        first.setdefault(answer[pid_fd].description, pid_fd)
    return {pid_fd: tuple(getattr(r, f) for f in FdRecord._fields[:-1]) + (first[r.description],)
            for pid_fd, r in answer.items()}


FD_GROUPS = [
    Group(Way("readlink + fdinfo + stat + kcmp (files.py)", proc_fds), fd_key, [
        Way("BPF task_file (cr_engine.collect.FdCollector)", bpf_fds),
    ]),
]


# mounts ----------------------------------------------------------------------------------
def mount_key(answer):
    return dict(enumerate(answer))      # in order: parents before their children


@functools.cache
def statmount_whole():
    """Whether statmount tells every field of another namespace's mounts here (the probes
    mount_table.way() asks; the engine reads mountinfo otherwise)."""
    return mount_table.way() == "statmount"


def statmount_mounts(pids):
    if not statmount_whole():
        raise LookupError("the engine reads mountinfo here (mount_table.way())")
    return mount_table.from_statmount(mount_table.mnt_ns_id(pids[0]))


MOUNT_GROUPS = [
    Group(Way("mountinfo (mount_table.from_mountinfo)",
              lambda pids: mount_table.from_mountinfo(pids[0])), mount_key, [
        Way("listmount + statmount (mount_table)", statmount_mounts),
    ]),
]


def cases(args):
    vmas = os.path.join(PROGRAMS, "many_vmas.c")
    files_note = f", 1 in {args.file_every} a file mapping" if args.file_every else ""
    return {
        "vmas": Case(vmas, [args.vmas, args.file_every, 1], VMA_GROUPS,
                     lambda a: f"1 process, {len(a):,} VMAs{files_note}"),
        "tree": Case(vmas, [args.proc_vmas, args.file_every, args.procs], VMA_GROUPS,
                     lambda a: f"{args.procs} processes, {len(a):,} VMAs{files_note}"),
        "fds": Case(os.path.join(PROGRAMS, "fd_tree.c"), [args.fd_procs, args.fds], FD_GROUPS,
                    lambda a: f"{args.fd_procs} processes, {len(a):,} fds on "
                              f"{len({r[-1] for r in a.values()}):,} descriptions"),
        # the program makes MOUNTS / 2 mounts in each of two namespaces
        "mounts": Case(os.path.join(PROGRAMS, "mounts_1000.c"), [2 * args.mounts], MOUNT_GROUPS,
                       lambda a: f"{len(a):,} mounts in a mount namespace of its own"),
    }


# running ---------------------------------------------------------------------------------
def tree(root):
    """``root`` and its descendants (those still there)."""
    out, todo = [], [root]
    while todo:
        pid = todo.pop(0)
        out.append(pid)
        try:
            todo += proc.children(pid)
        except FileNotFoundError:
            pass
    return out


@contextlib.contextmanager
def running(source, args):
    """The pids of a benchmark program's tree, ready; killed (its process group: the program
    leads a session of its own) and reaped however the block ends."""
    with tempfile.TemporaryDirectory(prefix="bench-collectors-") as workdir:
        result = os.path.join(workdir, "result")
        program = subprocess.Popen([str(build(source)), *map(str, args), result], cwd=workdir,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        pids = [program.pid]
        try:
            deadline = time.monotonic() + READY_TIMEOUT
            while True:
                with contextlib.suppress(TimeoutError):
                    bench_engine.wait_file(result, "ready", timeout=0.1)
                    break
                if program.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{os.path.basename(source)} {' '.join(map(str, args))}: "
                                       f"not ready (exit status {program.returncode})")
            pids = tree(program.pid)
            yield pids
        finally:
            pids = tree(program.pid) if program.poll() is None else pids
            with contextlib.suppress(ProcessLookupError):
                os.killpg(program.pid, signal.SIGKILL)
            program.wait()
            proc.reap(pids[1:])     # ours to reap: we are their subreaper


def difference(want, got):
    """None when the two {key: value} are equal, else how many keys differ and the first."""
    bad = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
    if not bad:
        return None
    first = bad[0]
    return (f"{len(bad):,} of {len(want):,} differ; first {first}: /proc {want.get(first)}, "
            f"this way {got.get(first)}")[:400]


def timed(collect, pids):
    gc.collect()                # not the garbage of the way before
    t0 = time.perf_counter()
    collect(pids)
    return time.perf_counter() - t0


def run_case(case, runs):
    """{"title", "groups": [{"proc": row, "alternatives": [row]}]}; a row: the way's
    name and its times, or "na", and an alternative's check and ratio."""
    with running(case.program, case.args) as pids:
        groups, ways = [], []
        for group in case.groups:
            want = group.key(group.proc.collect(pids))
            row = {"way": group.proc.name}
            ways.append((group.proc, row))
            alternatives = []
            for way in group.alternatives:
                alt = {"way": way.name}
                try:
                    gap = difference(want, group.key(way.collect(pids)))
                except Exception as e:          # noqa: BLE001 - a way not there (yet)
                    alt["na"] = f"{type(e).__name__}: {e}"
                else:
                    alt["check"] = "EQUAL" if gap is None else "DIFFERS"
                    if gap:
                        alt["difference"] = gap
                    note = way.note and way.note()
                    if note:
                        alt["note"] = note
                    ways.append((way, alt))
                alternatives.append(alt)
            groups.append({"proc": row, "alternatives": alternatives})
            if len(groups) == 1:
                title = case.title(want)
        for row in (row for _, row in ways):
            row["runs_ms"] = []
        for _ in range(runs):
            for way, row in ways:
                row["runs_ms"].append(round(timed(way.collect, pids) * 1000, 3))
    for g in groups:
        g["proc"]["ms"] = statistics.median(g["proc"]["runs_ms"])
        for alt in g["alternatives"]:
            if "runs_ms" in alt:
                alt["ms"] = statistics.median(alt["runs_ms"])
                alt["ratio"] = round(g["proc"]["ms"] / alt["ms"], 2)
    return {"title": title, "groups": groups}


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def table(results):
    lines = [f"{'case, way':<58}{'median ms':>11}{'ratio':>8}  check"]
    for case in results["cases"].values():
        lines.append(case["title"])
        for g in case["groups"]:
            lines.append(f"  {'/proc: ' + g['proc']['way']:<56}{g['proc']['ms']:>11.2f}")
            for alt in g["alternatives"]:
                if "na" in alt:
                    lines.append(f"    {alt['way']:<54}  n/a: {alt['na'][:80]}")
                else:
                    note = f" ({alt['note']})" if "note" in alt else ""
                    lines.append(f"    {alt['way']:<54}{alt['ms']:>11.2f}"
                                 f"{'x' + format(alt['ratio'], '.2f'):>8}  {alt['check']}{note}")
                    if "difference" in alt:
                        lines.append(f"      {alt['difference']}")
    lines.append(f"medians of {results['runs']} runs; ratio: /proc's time / the way's; load "
                 f"average {results['load_average']['before']} before, "
                 f"{results['load_average']['after']} after")
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--cases", default="vmas,tree,fds,mounts",
                   help="comma-separated, of: vmas, tree, fds, mounts")
    p.add_argument("--vmas", type=int, default=20000, help="VMAs of the vmas case's process")
    p.add_argument("--file-every", type=int, default=4,
                   help="every Nth VMA a file mapping (0: none)")
    p.add_argument("--procs", type=int, default=100, help="processes of the tree case")
    p.add_argument("--proc-vmas", type=int, default=100, help="VMAs of each, besides its own")
    p.add_argument("--fds", type=int, default=1000, help="fds of each process of the fds case")
    p.add_argument("--fd-procs", type=int, default=10, help="processes of the fds case")
    p.add_argument("--mounts", type=int, default=1000,
                   help="mounts of the mounts case's namespace (a multiple of 10), "
                        "besides the copies of ours")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    known = cases(args)
    chosen = args.cases.split(",")
    unknown = [c for c in chosen if c not in known]
    if unknown:
        p.error(f"unknown cases {', '.join(unknown)} (known: {', '.join(known)})")
    prctl(PR_SET_CHILD_SUBREAPER, 1)    # the programs' children come to us when they die
    results = {"runs": args.runs, "load_average": {"before": load_average()}, "cases": {}}
    for name in chosen:
        results["cases"][name] = run_case(known[name], args.runs)
    results["load_average"]["after"] = load_average()
    print(json.dumps(results, indent=1) if args.json else "\n".join(table(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
