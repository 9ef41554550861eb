"""Timings and counters of one dump or restore (stats-dump.json / stats-restore.json)."""

import time


class Stats:
    def __init__(self):
        self.times = {}             # stage -> seconds
        self.counts = {}
        self.ways = {}              # state -> how it was read ("vmas": "bpf" or "smaps")
        self._t0 = time.perf_counter()

    def stage(self, name):
        return _Stage(self, name)

    def add(self, key, value):
        self.counts[key] = self.counts.get(key, 0) + value

    def total(self):
        self.times["total"] = time.perf_counter() - self._t0

    def as_dict(self):
        out = {"times": {k: round(v, 6) for k, v in self.times.items()}, "counts": self.counts}
        if self.ways:
            out["ways"] = self.ways
        return out

    def lines(self):
        """Human-readable lines, for -v."""
        out = [f"  {k:<16} {v * 1000:9.2f} ms" for k, v in self.times.items()]
        out += [f"  {k:<16} {v:>12}" for k, v in self.counts.items()]
        out += [f"  {k + ' read by':<16} {v:>12}" for k, v in self.ways.items()]
        return out


class _Stage:
    def __init__(self, stats, name):
        self.stats, self.name = stats, name

    def __enter__(self):
        self.t = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.stats.times[self.name] = (self.stats.times.get(self.name, 0.0) +
                                       time.perf_counter() - self.t)
