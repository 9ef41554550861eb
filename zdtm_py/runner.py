"""One conformance run: build -> start -> (dump -> reap -> restore) x iters -> stop -> verdict,
as a Mode says (iterations, leave-running, fault injection, state comparison)."""

import hashlib
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import build, launch, reaper, state
from .errors import EngineFailed, StateChanged
from .program import Program

REAP_TIMEOUT = 10.0


@dataclass
class Outcome:
    """What one run did, filled in as it goes (so a failed run still reports its timings)."""
    program: Program
    engine: str
    workdir: Path
    pid: int = None
    seconds: dict = field(default_factory=dict)   # build, start, stop
    dumps: list = field(default_factory=list)     # per iteration: {"seconds", "stats"}
    restores: list = field(default_factory=list)  # per iteration: {"seconds", "stats", "pid"}
    pre_dumps: list = field(default_factory=list)  # {"seconds", "stats"} of each pre-dump
    known: list = field(default_factory=list)     # state differences a known gap explains
    flavor: str = "h"
    log: str = ""

    def properties(self):
        """(name, value) pairs for pytest's user_properties (junit-xml)."""
        props = [("zdtm_engine", self.engine), ("zdtm_flavor", self.flavor)]
        props += [(f"zdtm_{k}_seconds", round(v, 6)) for k, v in self.seconds.items()]
        for i, (d, r) in enumerate(zip(self.dumps, self.restores + [None] * len(self.dumps)), 1):
            props.append((f"zdtm_dump{i}_seconds", round(d["seconds"], 6)))
            if r:
                props.append((f"zdtm_restore{i}_seconds", round(r["seconds"], 6)))
        return props

    def summary(self):
        lines = [f"program {self.program.name}, engine {self.engine}, workdir {self.workdir}"]
        lines += [f"{k}: {v * 1000:.1f} ms" for k, v in self.seconds.items()]
        for i, d in enumerate(self.dumps, 1):
            lines.append(f"dump {i}: {d['seconds'] * 1000:.1f} ms {d['stats'] or ''}".rstrip())
            if i <= len(self.restores):
                r = self.restores[i - 1]
                lines.append(f"restore {i}: {r['seconds'] * 1000:.1f} ms, root pid {r['pid']} "
                             f"{r['stats'] or ''}".rstrip())
        lines += [f"pre-dump {i}: {p['seconds'] * 1000:.1f} ms {p['stats'] or ''}".rstrip()
                  for i, p in enumerate(self.pre_dumps, 1)]
        lines += [f"known difference, {k}" for k in self.known]
        return "\n".join(lines)


@dataclass(frozen=True)
class Mode:
    """How a program is put through C/R (pytest options --iters, --leave-running, --fault,
    --no-state-check).

    ``iters``: dump and restore that many times in a row; ``leave_running``: dump without
    killing (as many times) and check the original; ``faults``: fault points (the engine's
    `fault_points()`) to fail at first - a dump that fails must leave the tree as it was, a
    restore that fails must leave no process and the images unchanged - before the real
    rounds; ``check_state``: compare the tree seen from outside (zdtm_py.state) before each
    dump and after each restore; ``pre_dumps``: that many incremental pre-dumps of the
    running tree before each dump, which then stores only what changed since;
    ``snapshots``: ``iters`` dumps, each incremental on the one before, all but the last
    leaving the tree running; the last one is restored.  ``flavor``: "h" (the host's
    namespaces) or "ns" (new pid, network, IPC and UTS namespaces, under an init)."""
    iters: int = 1
    leave_running: bool = False
    faults: tuple = ()
    check_state: bool = True
    pre_dumps: int = 0
    snapshots: bool = False
    flavor: str = "h"


def _timed(fn, *args, **kwargs):
    t0 = time.monotonic()
    result = fn(*args, **kwargs)
    return result, time.monotonic() - t0


def run_one(program, engine, workdir, tracker, *, mode=Mode(), outcome=None, build_cache=None,
            between=None, after_restore=None):
    """Run ``program`` under ``engine`` in ``workdir`` as ``mode`` says; raises a ZdtmError
    unless it PASSes.

    ``tracker`` (reaper.ProcessTracker) learns every pid; the caller cleans up
    with it, also when this raises.  ``between()`` runs after each dump, once the dumped
    tree is gone, before the restore (a peer outside the tree acts there).
    ``after_restore(root)`` runs after each successful restore with the restored root's
    pid, before the state comparison (a check from outside the tree; what it raises ends
    the run).  The program's dump and restore options are the engine's keywords
    (Program.engine_options), ``{workdir}`` being ``workdir``.
    """
    workdir = Path(workdir)
    outcome = outcome or Outcome(program, engine.name, workdir)
    outcome.flavor = mode.flavor

    if program.prebuilt or program.interpreted:
        binary, outcome.seconds["build"] = program.source, 0.0
    else:
        binary, outcome.seconds["build"] = _timed(
            build.build, program.source, extra_sources=program.extra_sources,
            cflags=program.cflags, libs=program.libs, cache=build_cache)
    started, outcome.seconds["start"] = _timed(launch.start, program, binary, workdir, tracker,
                                               mode.flavor)
    cycle = _Cycle(program, engine, workdir, tracker, mode, outcome, between, after_restore)
    root = outcome.pid = started.pid

    if engine.checkpoints and mode.snapshots:
        root = cycle.snapshots(root)
    elif engine.checkpoints:
        root = cycle.faults(root)
        for i in range(1, mode.iters + 1):
            root = cycle.round(root, f"images-{i}")
        if mode.check_state:
            cycle.check_known()

    status, outcome.seconds["stop"] = _timed(launch.stop, started, root, tracker)
    outcome.log = launch.verdict(started, status)
    return outcome


class _Cycle:
    """The dumps and restores of one run."""

    def __init__(self, program, engine, workdir, tracker, mode, outcome, between,
                 after_restore=None):
        self.program, self.engine, self.workdir = program, engine, workdir
        self.tracker, self.mode, self.outcome, self.between = tracker, mode, outcome, between
        self.after_restore = after_restore
        self.options = program.engine_options("dump", workdir)
        self.restore_options = program.engine_options("restore", workdir)
        self.seen_known = set()     # known_differences patterns met so far
        # in a user namespace of its own the tree keeps only the pids its pid namespace
        # gives it (state.snapshot)
        self.own_pids = mode.flavor == "uns"

    def _snapshot(self, root):
        return state.snapshot(root, self.own_pids) if self.mode.check_state else None

    def _compare(self, before, root, when):
        if before is None:
            return
        after = state.snapshot(root, self.own_pids)
        diff = self._explained(state.differences(before, after), when)
        if diff:
            raise StateChanged(f"{self.program.name}: the tree {when} differs from the tree "
                               f"before the dump:\n  " + "\n  ".join(diff[:40]) +
                               (f"\n  ... {len(diff) - 40} more" if len(diff) > 40 else ""))

    def _explained(self, diff, when):
        """``diff`` without the lines the program's known differences explain; those are
        noted in the outcome, and each known difference must show under the bundled
        engine (it is a gap: once closed, the declaration must go)."""
        left = list(diff)
        for pattern, reason in self.program.known_differences:
            for line in [line for line in left if re.search(pattern, line)]:
                left.remove(line)
                self.seen_known.add(pattern)
                self.outcome.known.append(f"{when}: {line} ({reason})")
        return left

    def check_known(self):
        """Under the bundled engine each known difference must have shown: once a gap is
        closed, its declaration must go (as with a strict xfail)."""
        if self.engine.name != "builtin" or not self.outcome.restores:
            return
        for pattern, reason in self.program.known_differences:
            if pattern not in self.seen_known:
                raise StateChanged(f"{self.program.name}: known difference {pattern!r} "
                                   f"({reason}) never showed: the gap is closed, remove "
                                   f"the declaration")

    def _dump(self, root, images, leave_running=None, **extra):
        images.mkdir()
        if leave_running is None:
            leave_running = self.mode.leave_running
        stats, seconds = _timed(self.engine.dump, root, images, leave_running=leave_running,
                                **self.options, **extra)
        self.outcome.dumps.append({"seconds": seconds, "stats": stats})

    def _pre_dumps(self, root, name):
        """The mode's pre-dumps of the running tree; the last one's images (or None)."""
        parent = None
        for k in range(1, self.mode.pre_dumps + 1):
            before = self._snapshot(root)
            images = self.workdir / f"{name}-pre{k}"
            images.mkdir()
            stats, seconds = _timed(self.engine.pre_dump, root, images, parent=parent)
            self.outcome.pre_dumps.append({"seconds": seconds, "stats": stats})
            self._compare(before, root, f"after pre-dump {k}")
            parent = images
        return parent

    def snapshots(self, root):
        """``iters`` incremental dumps: the running tree's, each on the one before, the last
        one a plain dump (the tree killed as any dump kills it, TCP connections in repair
        mode, not reset), then restored."""
        parent = None
        for i in range(1, self.mode.iters):
            before = self._snapshot(root)
            images = self.workdir / f"snapshot-{i}"
            self._dump(root, images, leave_running=True, track_mem=True,
                       **({"parent": parent} if parent else {}))
            self._compare(before, root, f"after snapshot {i}")
            parent = images
        before = self._snapshot(root)
        members = reaper.tree([root])
        images = self.workdir / f"snapshot-{self.mode.iters}"
        self._dump(root, images, leave_running=False, **({"parent": parent} if parent else {}))
        self._reap(members, len(self.outcome.dumps))
        root = self._restore(images)
        self._compare(before, root, "restored from the last snapshot")
        return root

    def _reap(self, members, i):
        try:    # the dump killed the tree: reap it so that its pids are free for the restore
            reaper.reap_tree(members, REAP_TIMEOUT)
        except TimeoutError as e:
            raise EngineFailed(f"dump {i} returned but the dumped tree is still alive: "
                               f"{e}") from None
        for pid in members:
            self.tracker.forget(pid)
        if self.between is not None:
            self.between()

    def _restore(self, images):
        (root, stats), seconds = _timed(self.engine.restore, images, **self.restore_options)
        self.tracker.watch(root)
        self.outcome.restores.append({"seconds": seconds, "stats": stats, "pid": root})
        if self.after_restore is not None:
            self.after_restore(root)
        return root

    def round(self, root, name):
        """One dump and, unless the tree is left running, its restore; the root after it."""
        parent = self._pre_dumps(root, name)
        before = self._snapshot(root)
        members = reaper.tree([root])
        self._dump(root, self.workdir / name, **({"parent": parent} if parent else {}))
        n = len(self.outcome.dumps)
        if self.mode.leave_running:
            self._compare(before, root, f"after dump {n} (--leave-running)")
            return root
        self._reap(members, n)
        root = self._restore(self.workdir / name)
        self._compare(before, root, f"after restore {n}")
        return root

    def faults(self, root):
        """Fail the engine at each of the mode's fault points; the root afterwards."""
        for point in self.mode.faults:
            kind = point.split(":", 1)[0]
            if kind == "dump":
                self._failing_dump(root, point)
            else:
                root = self._failing_restore(root, point)
        return root

    def _failing_dump(self, root, point):
        before = state.snapshot(root, self.own_pids)
        images = self.workdir / f"fault-{point.replace(':', '-')}"
        images.mkdir()
        try:
            self.engine.dump(root, images, leave_running=False, fault=point, **self.options)
        except EngineFailed:
            pass
        else:
            raise EngineFailed(f"the dump with a fault injected at {point} succeeded")
        diff = state.differences(before, state.snapshot(root, self.own_pids))
        if diff:
            raise StateChanged(f"{self.program.name}: a dump that failed at {point} changed "
                               f"the tree:\n  " + "\n  ".join(diff[:40]))

    def _failing_restore(self, root, point):
        before = self._snapshot(root)
        name = f"fault-{point.replace(':', '-')}"
        members = reaper.tree([root])
        self._dump(root, self.workdir / name)
        self._reap(members, len(self.outcome.dumps))
        digest = _digest(self.workdir / name)
        try:
            self.engine.restore(self.workdir / name, fault=point, **self.restore_options)
        except EngineFailed:
            pass
        else:
            raise EngineFailed(f"the restore with a fault injected at {point} succeeded")
        left = [pid for pid in members if reaper.state(pid) is not None]
        if left:
            raise EngineFailed(f"a restore that failed at {point} left processes: {left}")
        if _digest(self.workdir / name) != digest:
            raise EngineFailed(f"a restore that failed at {point} changed the images")
        root = self._restore(self.workdir / name)
        self._compare(before, root, f"restored after the failure at {point}")
        return root


def _digest(directory):
    """{name: sha256} of an image directory's files."""
    out = {}
    for path in sorted(Path(directory).iterdir()):
        if path.is_file():
            out[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out
