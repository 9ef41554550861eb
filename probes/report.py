"""Render probe results: a table for people, a JSON object for machines.

The JSON shape is documented in docs/probes-json.md; bump SCHEMA when a
field changes meaning or disappears (adding fields does not bump it).
"""

import json

from .registry import AREAS
from .runner import ABSENT, ERROR, PRESENT, UNPRIVILEGED

SCHEMA = 1

AREA_TITLES = {
    "bpf_iterators": "BPF iterators", "bpf": "BPF", "bpf_maps": "BPF maps",
    "mounts": "Mounts", "process_tree": "Process tree", "memory": "Memory and introspection",
    "ptrace": "ptrace and CPU state", "files": "Files and descriptors", "io_uring": "io_uring",
    "network": "Network", "namespaces": "Namespaces", "security": "Security and credentials",
}

_COLORS = {PRESENT: "32", ABSENT: "2", ERROR: "31", UNPRIVILEGED: "33"}


def as_json(results, host, seconds):
    return json.dumps({
        "schema": SCHEMA,
        "kernel": host,
        "seconds": round(seconds, 4),
        "summary": summary(results),
        "probes": [r.as_json() for r in results],
    }, indent=2)


def summary(results):
    counts = {PRESENT: 0, ABSENT: 0, ERROR: 0, UNPRIVILEGED: 0}
    for r in results:
        counts[r.status] += 1
    return {"total": len(results), **counts}


def _when(r):
    if r.proposed:
        return f"never merged: {r.proposed}"
    return f"since {r.since}" if r.since else ""


def as_table(results, host, seconds, color=False, timings=False):
    def paint(status, text):
        return f"\033[{_COLORS[status]}m{text}\033[0m" if color else text

    counts = summary(results)
    lines = [f"Kernel {host['release']} ({host['machine']}): {counts['total']} probes in "
             f"{seconds:.2f} s - {counts[PRESENT]} present, {counts[ABSENT]} absent, "
             f"{counts[ERROR]} error, {counts[UNPRIVILEGED]} unprivileged"]
    width = max((len(r.name) for r in results), default=10) + 2
    for area in AREAS:
        rows = [r for r in results if r.area == area]
        if not rows:
            continue
        lines += ["", AREA_TITLES[area]]
        if area == "bpf_maps":
            lines += _map_matrix(rows, width, paint)
            continue
        for r in rows:
            note = "; ".join(x for x in (r.detail, _when(r)) if x)
            crit = f" [criu: {r.criu_name}]" if r.criu_name and r.criu_name != r.name else ""
            ms = f"{r.seconds * 1000:7.1f} ms  " if timings else ""
            lines.append(f"  {r.name:<{width}}{paint(r.status, f'{r.status:<13}')}{ms}"
                         f"{note}{crit}")
    return "\n".join(lines)


def _yes_no(value):
    return {True: "yes", False: "no", None: "-"}.get(value, value)


def _map_matrix(rows, width, paint):
    """Map types as rows, operations as columns."""
    out = [f"  {'map type':<{width}}{'status':<13}{'create':<8}{'batch':<7}"
           f"{'iterate':<20}{'freeze':<8}detail"]
    for r in rows:
        d = r.data or {}
        out.append(f"  {r.name:<{width}}{paint(r.status, f'{r.status:<13}')}"
                   f"{_yes_no(d.get('create')):<8}{_yes_no(d.get('batch_lookup')):<7}"
                   f"{_yes_no(d.get('iterate')) or 'no':<20}{_yes_no(d.get('freeze')):<8}"
                   f"{r.detail}")
    return out
