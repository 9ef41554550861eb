"""Run probes: isolate crashes, account for missing privileges, time each."""

import os
import platform
import time
import traceback
from dataclasses import dataclass
from typing import Optional

from kernel import caps

from .registry import REGISTRY, Verdict, errname, resolve

PRESENT, ABSENT, ERROR, UNPRIVILEGED = "present", "absent", "error", "unprivileged"


@dataclass
class Result:
    name: str
    area: str
    present: Optional[bool]
    status: str
    detail: str
    since: Optional[str]
    proposed: Optional[str]
    criu_name: Optional[str]
    needs: Optional[str]
    data: Optional[dict]
    seconds: float

    def as_json(self):
        out = {
            "name": self.name, "area": self.area, "present": self.present,
            "status": self.status, "detail": self.detail, "criu_name": self.criu_name,
            "since": self.since, "proposed": self.proposed, "needs": self.needs,
        }
        if self.data:
            out["data"] = self.data
        return out


def judge_safely(p, observation):
    try:
        return p.judge(observation)
    except Exception as e:  # noqa: BLE001 - a bad judge is reported, not fatal
        return Verdict(None, f"judge crashed on {observation!r}: {type(e).__name__}: {e}")


def run_one(p, cap_mask=None):
    """Run one probe; never raises."""
    start = time.perf_counter()
    try:
        verdict = judge_safely(p, p.exercise())
    except OSError as e:
        verdict = Verdict(None, f"unexpected {errname(e.errno)} ({e.strerror or e})")
    except Exception as e:  # noqa: BLE001 - a crashing probe must not stop the others
        where = traceback.extract_tb(e.__traceback__)[-1]
        verdict = Verdict(None, f"probe crashed: {type(e).__name__}: {e} "
                                f"({os.path.basename(where.filename)}:{where.lineno})")
    status = {True: PRESENT, False: ABSENT, None: ERROR}[verdict.present]
    detail = verdict.detail
    if p.needs and verdict.present is not True and not caps.has(p.needs, cap_mask):
        # without the capability a negative answer proves nothing
        status, detail = UNPRIVILEGED, f"needs {p.needs} (run as root); saw: {detail}"
        verdict = Verdict(None, detail, verdict.data)
    return Result(p.name, p.area, verdict.present, status, detail, p.since, p.proposed,
                  p.criu_name, p.needs, verdict.data, time.perf_counter() - start)


def run(names=None):
    """Run the named probes (all when None), in registry order."""
    cap_mask = caps.effective()
    selected = [resolve(n) for n in names] if names else list(REGISTRY)
    return [run_one(REGISTRY[n], cap_mask) for n in selected]


def host():
    uname = platform.uname()
    return {"release": uname.release, "version": uname.version, "machine": uname.machine,
            "euid": os.geteuid()}
