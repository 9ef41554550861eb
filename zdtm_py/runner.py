"""One conformance run: build -> start -> (dump -> reap -> restore) x iters -> stop -> verdict."""

import time
from dataclasses import dataclass, field
from pathlib import Path

from . import build, launch, reaper
from .errors import EngineFailed
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
    log: str = ""

    def properties(self):
        """(name, value) pairs for pytest's user_properties (junit-xml)."""
        props = [("zdtm_engine", self.engine)]
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
        return "\n".join(lines)


def _timed(fn, *args, **kwargs):
    t0 = time.monotonic()
    result = fn(*args, **kwargs)
    return result, time.monotonic() - t0


def run_one(program, engine, workdir, tracker, *, iters=1, outcome=None, build_cache=None,
            between=None):
    """Run ``program`` under ``engine`` in ``workdir``; raises a ZdtmError unless it PASSes.

    ``tracker`` (reaper.ProcessTracker) learns every pid; the caller cleans up
    with it, also when this raises.  ``between()`` runs after each dump, once the dumped
    tree is gone, before the restore (a peer outside the tree acts there).
    """
    workdir = Path(workdir)
    outcome = outcome or Outcome(program, engine.name, workdir)

    binary, outcome.seconds["build"] = _timed(
        build.build, program.source, extra_sources=program.extra_sources,
        cflags=program.cflags, libs=program.libs, cache=build_cache)
    started, outcome.seconds["start"] = _timed(launch.start, program, binary, workdir, tracker)
    root = outcome.pid = started.pid

    rounds = iters if engine.checkpoints else 0
    for i in range(1, rounds + 1):
        images = workdir / f"images-{i}"
        images.mkdir()
        members = reaper.tree([root])
        stats, seconds = _timed(engine.dump, root, images,
                                **dict.fromkeys(program.dump_options, True))
        outcome.dumps.append({"seconds": seconds, "stats": stats})
        try:    # the dump killed the tree: reap it so that its pids are free for the restore
            reaper.reap_tree(members, REAP_TIMEOUT)
        except TimeoutError as e:
            raise EngineFailed(f"dump {i} returned but the dumped tree is still alive: {e}") from None
        for pid in members:
            tracker.forget(pid)
        if between is not None:
            between()
        (root, stats), seconds = _timed(engine.restore, images)
        tracker.watch(root)
        outcome.restores.append({"seconds": seconds, "stats": stats, "pid": root})

    status, outcome.seconds["stop"] = _timed(launch.stop, started, root, tracker)
    outcome.log = launch.verdict(started, status)
    return outcome
