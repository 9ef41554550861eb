"""Kernel-feature probes for checkpoint/restore: ``python -m probes``.

Each probe really exercises one kernel interface (see registry.py for the
shape of a probe).  The public API:

    probes.run(names=None) -> [Result]
    probes.check(name) -> Result        (memoized; for skip decisions)
    probes.names() -> [str]
"""

import functools
import importlib

from .registry import ALIASES, AREAS, REGISTRY, resolve
from .runner import Result, run, run_one

# one module per area; importing registers its probes
_AREA_MODULES = (
    "bpf_iterators", "bpf", "bpf_maps", "mounts", "process_tree", "memory", "ptrace",
    "files", "io_uring", "network", "namespaces", "security",
)
for _module in _AREA_MODULES:
    importlib.import_module(f"{__name__}.{_module}")


def names():
    return list(REGISTRY)


@functools.lru_cache(maxsize=None)
def _check(canonical):
    return run_one(REGISTRY[canonical])


def check(name) -> Result:
    """The result of one probe, run once per process."""
    return _check(resolve(name))


__all__ = ["AREAS", "ALIASES", "REGISTRY", "Result", "check", "names", "resolve", "run"]
