"""Fault injection: make the engine fail on purpose at a named point, to test that a failed
dump leaves the tree running and a failed restore leaves nothing behind.

Points are "dump:<stage>" and "restore:<stage>" (see POINTS); the environment variable
CR_ENGINE_FAULT names one, or the API's ``fault=`` argument does.
"""

import os

from .errors import DumpError, RestoreError

POINTS = ("dump:freeze", "dump:collect", "dump:memory", "dump:write", "dump:finish",
          "restore:prepare", "restore:fork", "restore:memory", "restore:state",
          "restore:resume")


def armed(fault):
    point = fault or os.environ.get("CR_ENGINE_FAULT")
    if point and point not in POINTS:
        raise ValueError(f"unknown fault point {point!r} (one of {', '.join(POINTS)})")
    return point


def hit(armed_point, point):
    if armed_point == point:
        kind, stage = point.split(":")
        if kind == "dump":
            raise DumpError(f"fault injected at {point}")
        raise RestoreError(f"fault injected at {point}", stage)
