"""Run reports of the conformance suite: a line per area, a JSON summary, a Markdown table.

A pytest plugin of its own (the project's conftest.py lists it in ``pytest_plugins``).
It reads what the ``zdtm`` fixture leaves in each test report's ``user_properties``
(``zdtm_engine``, ``zdtm_flavor``, ``zdtm_<step>_seconds``, ``zdtm_dump<i>_seconds``,
``zdtm_restore<i>_seconds``; runner.Outcome.properties) from pytest_runtest_logreport on
the controller - under pytest-xdist the workers' reports arrive there with their nodeid and
user_properties - and reports at the end of the run, from the controller only:

- the terminal summary gets one line per area whenever zdtm tests ran, e.g.
  ``sockets: 18 passed, 2 xfailed, dump 3.1 ms / restore 5.2 ms median``;
- ``--zdtm-report PATH`` writes PATH.json and PATH.md (a trailing .json or .md is dropped
  from PATH; when PATH is a directory, or ends with a slash: zdtm-report.json and
  zdtm-report.md in it).

Words used below:
  zdtm test  a test whose report carries zdtm_* properties (it ran a program through the
             fixture); only these get a row, every test counts in the totals
  area       the directory under testcases/ that holds the test module (testcases/sockets/
             test_sockets.py -> "sockets"); for a module outside testcases/, its parent
             directory (its own name at the root); areas are listed when they hold a zdtm test
  result     one per test, pytest's own category (pytest_report_teststatus) of its phases:
             passed, failed, skipped, xfailed, xpassed or error; when phases disagree the
             worst wins (failed > error > xpassed > xfailed > skipped > passed), so a passed
             test whose teardown failed is an error, counted once
  flavor     the ``zdtm_flavor`` property, "h" (the host's namespaces) when absent
  times      milliseconds; a test that runs several programs has its iterations in a row,
             in order, and its other steps summed

JSON (``schema`` "crbench-zdtm-report", ``schema_version`` 1; fields are only ever added
within a version; keys always present, null where there is nothing to measure)::

  {
    "schema": "crbench-zdtm-report",
    "schema_version": 1,
    "finished": "2025-01-31T12:00:00+00:00",       # UTC, end of the run
    "duration_seconds": 212.3,                     # session start to end
    "exit_status": 0,                              # pytest's exit status at session end
    "engines": ["builtin"],                        # distinct zdtm_engine values
    "totals": {"tests": 84, "zdtm_tests": 82, "passed": 78, "failed": 0, "skipped": 2,
               "xfailed": 4, "xpassed": 0, "error": 0},
    "areas": [                                     # sorted by name
      {"area": "sockets", "tests": 20, "zdtm_tests": 20, "passed": 18, "failed": 0,
       "skipped": 0, "xfailed": 2, "xpassed": 0, "error": 0,
       "dump_ms_median": 3.1, "restore_ms_median": 5.2}   # over every iteration in the area
    ],
    "tests": [                                     # zdtm tests only, sorted by id
      {"id": "testcases/sockets/test_sockets.py::test_sockets[udp]", "area": "sockets",
       "flavor": "h", "engine": "builtin", "result": "passed",
       "reason": null,                             # why, when not passed (first line)
       "iterations": 1,
       "dump_ms": [3.1], "restore_ms": [5.2],      # per iteration
       "dump_ms_total": 3.1, "restore_ms_total": 5.2,
       "steps_ms": {"build": 0.4, "start": 2.0, "stop": 1.1},   # other zdtm_*_seconds
       "duration_seconds": 0.21}                   # pytest's setup + call + teardown
    ]
  }
"""

import json
import os
import re
import statistics
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

import pytest

SCHEMA = "crbench-zdtm-report"
SCHEMA_VERSION = 1
DEFAULT_NAME = "zdtm-report"
DEFAULT_FLAVOR = "h"

# pytest's summary order; a test's result is the worst of its phases (see the docstring)
RESULTS = ("failed", "passed", "skipped", "xfailed", "xpassed", "error")
SEVERITY = {name: rank for rank, name in enumerate(
    ("passed", "skipped", "xfailed", "xpassed", "error", "failed"))}

ITERATION_PROPERTY = re.compile(r"zdtm_(dump|restore)\d+_seconds")
STEP_PROPERTY = re.compile(r"zdtm_(\w+)_seconds")


def pytest_addoption(parser):
    group = parser.getgroup("zdtm", "conformance suite (zdtm_py)")
    group.addoption("--zdtm-report", metavar="PATH", default=None,
                    help="write the run's JSON summary and Markdown table to PATH.json and "
                         f"PATH.md (in a directory: {DEFAULT_NAME}.json/.md)")


def pytest_configure(config):
    # Workers only run tests; the controller sees every report and writes once.
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(RunReport(config), "zdtm-run-report")


def pytest_unconfigure(config):
    plugin = config.pluginmanager.get_plugin("zdtm-run-report")
    if plugin is not None:
        config.pluginmanager.unregister(plugin)


# --- what one test did ---------------------------------------------------------------------------

@dataclass
class PhaseReports:
    """What the reports of one test's phases (setup, call, teardown) said."""
    nodeid: str
    categories: list = field(default_factory=list)   # pytest's category of each phase
    properties: list = field(default_factory=list)   # the latest report's user_properties
    duration: float = 0.0
    reasons: dict = field(default_factory=dict)      # category -> why (its first phase's)


def entry_area(entry):
    """A test's area: what it says (``zdtm_area``: a --zdtm-suite directory), else where it
    lives."""
    return last_value(entry.properties, "zdtm_area") or area_of(entry.nodeid)


def area_of(nodeid):
    """The test's area: the directory under testcases/, else the module's parent directory."""
    parts = PurePosixPath(nodeid.split("::", 1)[0]).parts
    dirs = parts[:-1]
    for i in reversed(range(len(dirs) - 1)):
        if dirs[i] == "testcases":
            return dirs[i + 1]
    return dirs[-1] if dirs else PurePosixPath(parts[-1]).stem


REASON_CHARS = 300


def reason_of(report):
    """Why a phase did not simply pass: a skip's reason, an expected failure's, or the
    first line of a failure's message; None for a pass."""
    if hasattr(report, "wasxfail"):
        why = report.wasxfail
    elif report.skipped and isinstance(report.longrepr, tuple):
        why = report.longrepr[2].removeprefix("Skipped: ")
    elif report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        why = crash.message if crash is not None else str(report.longrepr)
    else:
        return None
    why = str(why).strip().splitlines()[0] if str(why).strip() else ""
    return why[:REASON_CHARS] or None


def result_of(categories):
    """The test's one result: the worst of its phases' known categories."""
    known = [c for c in categories if c in SEVERITY]
    return max(known, key=SEVERITY.__getitem__) if known else None


def zdtm_properties(properties):
    """The zdtm_* (name, value) pairs (xdist may turn the tuples into lists)."""
    return [(name, value) for name, value in properties if str(name).startswith("zdtm_")]


def milliseconds(seconds):
    return round(float(seconds) * 1000, 3)


def timings(properties):
    """Per-iteration dump and restore times, and the other steps summed, all in ms."""
    iterations = {"dump": [], "restore": []}
    steps = {}
    for name, value in properties:
        if match := ITERATION_PROPERTY.fullmatch(name):
            iterations[match[1]].append(milliseconds(value))
        elif match := STEP_PROPERTY.fullmatch(name):
            steps[match[1]] = round(steps.get(match[1], 0) + milliseconds(value), 3)
    return iterations["dump"], iterations["restore"], steps


def last_value(properties, name, default=None):
    values = [value for key, value in properties if key == name]
    return str(values[-1]) if values else default


def json_row(entry):
    """The JSON row of one zdtm test."""
    properties = zdtm_properties(entry.properties)
    dumps, restores, steps = timings(properties)
    return {
        "id": entry.nodeid,
        "area": entry_area(entry),
        "flavor": last_value(properties, "zdtm_flavor", DEFAULT_FLAVOR),
        "engine": last_value(properties, "zdtm_engine"),
        "result": result_of(entry.categories),
        "reason": entry.reasons.get(result_of(entry.categories)),
        "iterations": len(dumps),
        "dump_ms": dumps,
        "restore_ms": restores,
        "dump_ms_total": round(sum(dumps), 3),
        "restore_ms_total": round(sum(restores), 3),
        "steps_ms": steps,
        "duration_seconds": round(entry.duration, 3),
    }


# --- the run as a whole --------------------------------------------------------------------------

def counts(results):
    """Tests per result, every result present."""
    return {name: sum(1 for r in results if r == name) for name in RESULTS}


def median_ms(values):
    return round(statistics.median(values), 3) if values else None


def area_summary(area, results, rows):
    """One area: its tests' results (all of them) and its zdtm tests' median times."""
    return {
        "area": area, "tests": len(results), "zdtm_tests": len(rows), **counts(results),
        "dump_ms_median": median_ms([ms for row in rows for ms in row["dump_ms"]]),
        "restore_ms_median": median_ms([ms for row in rows for ms in row["restore_ms"]]),
    }


def build_report(entries, exit_status, duration_seconds):
    """The JSON document of a run (module docstring) from its PhaseReports list."""
    decided = [e for e in entries if result_of(e.categories) is not None]
    rows = sorted((json_row(e) for e in decided if zdtm_properties(e.properties)),
                  key=lambda row: row["id"])
    areas = sorted({row["area"] for row in rows})
    results_by_area = {area: [] for area in areas}
    for entry in decided:
        area = entry_area(entry)
        if area in results_by_area:   # areas without zdtm tests are not listed
            results_by_area[area].append(result_of(entry.categories))
    results = [result_of(e.categories) for e in decided]
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "duration_seconds": round(duration_seconds, 3),
        "exit_status": int(exit_status),
        "engines": sorted({row["engine"] for row in rows if row["engine"] is not None}),
        "totals": {"tests": len(results), "zdtm_tests": len(rows), **counts(results)},
        "areas": [area_summary(area, results_by_area[area],
                               [row for row in rows if row["area"] == area])
                  for area in areas],
        "tests": rows,
    }


# --- how it is shown -----------------------------------------------------------------------------

def results_phrase(summary):
    """'18 passed, 2 xfailed': pytest's wording, zero counts left out."""
    return ", ".join(f"{summary[name]} {name}" for name in RESULTS if summary[name]) or "no tests"


def timings_phrase(summary):
    """'dump 3.1 ms / restore 5.2 ms median', or '' when nothing was checkpointed."""
    if summary["dump_ms_median"] is None:
        return ""
    restore = summary["restore_ms_median"]
    restore = "-" if restore is None else f"{restore:.1f}"
    return f"dump {summary['dump_ms_median']:.1f} ms / restore {restore} ms median"


def area_lines(report):
    """One terminal line per area: 'sockets: 18 passed, 2 xfailed, dump ... median'."""
    width = max((len(a["area"]) for a in report["areas"]), default=0) + 1
    return [f"{area['area'] + ':':<{width}} "
            + ", ".join(filter(None, (results_phrase(area), timings_phrase(area))))
            for area in report["areas"]]


def cell(value):
    """A Markdown table cell: '-' for nothing, pipes escaped."""
    if value is None or value == []:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value).replace("|", "\\|")


def markdown_row(cells):
    return "| " + " | ".join(cell(c) for c in cells) + " |"


def tests_table(report):
    lines = ["| test | area | flavor | result | iterations | dump ms | restore ms |",
             "|---|---|---|---|---:|---:|---:|"]
    for row in report["tests"]:
        lines.append(markdown_row([
            f"`{row['id']}`", row["area"], row["flavor"], row["result"], row["iterations"],
            row["dump_ms_total"] if row["dump_ms"] else None,
            row["restore_ms_total"] if row["restore_ms"] else None]))
    return lines


def areas_table(report):
    lines = ["| area | tests | " + " | ".join(RESULTS) + " | dump ms median | restore ms median |",
             "|---|" + "---:|" * (len(RESULTS) + 3)]
    for area in report["areas"]:
        lines.append(markdown_row([area["area"], area["tests"], *(area[r] for r in RESULTS),
                                   area["dump_ms_median"], area["restore_ms_median"]]))
    totals = report["totals"]
    lines.append(markdown_row(["**all tests**", totals["tests"],
                               *(totals[r] for r in RESULTS), None, None]))
    return lines


def render_markdown(report):
    totals = report["totals"]
    engines = ", ".join(report["engines"]) or "-"
    return "\n".join([
        "# zdtm report",
        "",
        f"{totals['tests']} tests ({totals['zdtm_tests']} through the zdtm fixture): "
        f"{results_phrase(totals)}. Engine {engines}, {report['duration_seconds']:.1f} s, "
        f"exit status {report['exit_status']}, finished {report['finished']}.",
        "",
        *tests_table(report),
        "",
        "## Areas",
        "",
        "Every test of an area that holds zdtm tests; medians over every dump and restore.",
        "",
        *areas_table(report),
        "",
    ])


# --- where it goes -------------------------------------------------------------------------------

def report_paths(option, invocation_dir):
    """(PATH.json, PATH.md) for ``--zdtm-report PATH``, relative to where pytest was run."""
    path = Path(invocation_dir, os.path.expanduser(option))
    if path.is_dir() or option.endswith(("/", os.sep)):
        path = path / DEFAULT_NAME
    elif path.suffix in (".json", ".md"):
        path = path.with_suffix("")
    return path.with_name(path.name + ".json"), path.with_name(path.name + ".md")


def write_atomically(path, text):
    # a reader never sees half a report, even when the run is killed while writing
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(text)
    os.replace(partial, path)


class RunReport:
    """The controller's collector: one PhaseReports per test, the report at the end."""

    def __init__(self, config):
        self.config = config
        self.entries = {}
        self.started = time.monotonic()
        self.report = None
        self.written = ()
        self.write_error = None

    def pytest_sessionstart(self):
        self.started = time.monotonic()

    def pytest_runtest_logreport(self, report):
        entry = self.entries.setdefault(report.nodeid, PhaseReports(report.nodeid))
        category = self.config.hook.pytest_report_teststatus(report=report, config=self.config)[0]
        entry.categories.append(category)
        entry.duration += report.duration
        why = reason_of(report)
        if why and category not in entry.reasons:
            entry.reasons[category] = why
        if report.user_properties:   # each phase's report holds all of them so far
            entry.properties = [tuple(pair) for pair in report.user_properties]

    def pytest_sessionfinish(self, session, exitstatus):
        self.report = build_report(list(self.entries.values()), exitstatus,
                                   time.monotonic() - self.started)
        option = self.config.getoption("zdtm_report")
        if option:
            self.write(session, *report_paths(option, self.config.invocation_params.dir))

    def write(self, session, json_path, md_path):
        try:
            write_atomically(json_path, json.dumps(self.report, indent=2) + "\n")
            write_atomically(md_path, render_markdown(self.report))
        except OSError as e:
            # a run asked for a report it did not get: say so, and do not pass
            self.write_error = f"zdtm report not written: {e}"
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
            return
        self.written = (json_path, md_path)

    def pytest_terminal_summary(self, terminalreporter):
        if self.report is None:
            return
        if self.report["tests"]:
            terminalreporter.write_sep("-", "zdtm areas")
            for area, line in zip(self.report["areas"], area_lines(self.report)):
                terminalreporter.write_line(line, red=bool(area["failed"] or area["error"]))
        if self.written:
            terminalreporter.write_line("zdtm report: " + ", ".join(map(str, self.written)))
        if self.write_error:
            terminalreporter.write_line(self.write_error, red=True)
