"""pytest plugin of the suite.

``@pytest.mark.requires("bpf_iter_task_vma", ...)`` skips a test unless
every named probe (``python -m probes --list``) reports the feature
present; the skip reason is the probe's own detail, e.g.
``requires bpf_iter_io_uring_file: absent (no FUNC and STRUCT ...)``.

``--engine NAME`` chooses the checkpoint/restore engine (zdtm_py.engines) the
``zdtm`` fixture runs test programs under::

    @pytest.mark.parametrize("name", ["maps_private_anon", "heap_brk"])
    def test_memory(zdtm, name):
        zdtm.run(HERE / f"{name}.c")

A run's timings go to the test's user_properties and to a "zdtm" report
section. Each worker becomes a child subreaper the first time it needs the
fixture, so that re-parented test daemons are its children.
"""

import contextlib
import os
import tempfile
from pathlib import Path

import pytest

import probes

from . import engines, leaks, reaper, runner
from .errors import EngineUnavailable, ZdtmError
from .program import as_program


def requirement_missing(names):
    """The skip reason for the first probe that is not present, else None."""
    for name in names:
        try:
            result = probes.check(name)
        except KeyError:
            raise pytest.UsageError(
                f"@pytest.mark.requires({name!r}): no such probe "
                "(`python -m probes --list` lists them)") from None
        if result.status != "present":
            return f"requires {name}: {result.status} ({result.detail})"
    return None


def pytest_addoption(parser):
    group = parser.getgroup("zdtm", "conformance suite (zdtm_py)")
    group.addoption("--engine", default=engines.DEFAULT, type=engines.option,
                    metavar=engines.usage(),
                    help="checkpoint/restore engine the test programs run under; "
                         "'criu' is the reference CRIU (tools/reference_criu.py), "
                         "'criu=PATH' a criu binary; "
                         "'none' only starts and stops them (default: %(default)s)")
    group.addoption("--iters", type=int, default=1, metavar="N",
                    help="checkpoint/restore each program N times in a row (default: 1)")
    group.addoption("--leave-running", action="store_true",
                    help="dump without killing the tree (--iters times) and check the "
                         "original instead of a restored tree")
    group.addoption("--fault", default="", metavar="POINTS",
                    help="first make the engine fail at each of these points "
                         "(comma-separated, or 'all'): a failed dump must leave the tree as "
                         "it was, a failed restore nothing behind and the images unchanged")
    group.addoption("--flavor", default="all", metavar="FLAVORS",
                    help="the flavors to run each test in, comma-separated: h (the host's "
                         "namespaces), ns (new pid, mount, network, IPC and UTS namespaces "
                         "under an init of their own), uns (ns, all of them in a new user "
                         "namespace), or all (default: each a program declares)")
    group.addoption("--pre-dump", type=int, default=0, metavar="N",
                    help="N incremental pre-dumps of the running tree before each dump, "
                         "which then stores only the pages written since")
    group.addoption("--snapshots", action="store_true",
                    help="--iters dumps, each incremental on the one before, all but the "
                         "last leaving the tree running; the last one is restored")
    group.addoption("--no-state-check", action="store_true",
                    help="do not compare the tree seen from outside (fds, memory map, "
                         "credentials, limits, mounts) before the dump and after the restore")


FLAVORS = ("h", "ns", "uns")


def selected_flavors(config):
    wanted = config.getoption("flavor")
    if wanted == "all":
        return FLAVORS
    chosen = tuple(f for f in wanted.split(",") if f)
    unknown = [f for f in chosen if f not in FLAVORS]
    if unknown or not chosen:
        raise pytest.UsageError(f"--flavor: unknown {', '.join(unknown) or 'empty'} "
                                f"(choose from {', '.join(FLAVORS)} or all)")
    return chosen


def pytest_generate_tests(metafunc):
    # every test that runs programs runs once per flavor (those it is marked for)
    if "zdtm" in metafunc.fixturenames:
        flavors = selected_flavors(metafunc.config)
        mark = metafunc.definition.get_closest_marker("zdtm_flavors")
        if mark is not None:
            flavors = [f for f in flavors if f in mark.args]
        metafunc.parametrize("zdtm_flavor", flavors)


def pytest_report_header(config):
    return f"zdtm: engine {config.getoption('engine')}"


def pytest_configure(config):
    selected_flavors(config)            # a bad --flavor is a usage error, before collection
    config.addinivalue_line(
        "markers", "requires(*features): skip unless every named kernel feature probe "
                   "reports present (`python -m probes --list`)")
    config.addinivalue_line(
        "markers", "zdtm_flavors(*flavors): run the test in these flavors only (of those "
                   "selected)")


def pytest_runtest_setup(item):
    for mark in item.iter_markers(name="requires"):
        reason = requirement_missing(mark.args)
        if reason:
            pytest.skip(reason)


class Zdtm:
    """The ``zdtm`` fixture: runs test programs in this test's own directory."""

    def __init__(self, request, workdir, engine, tracker, run_lock, flavor="h"):
        self.request, self.workdir, self.engine, self.tracker = request, workdir, engine, tracker
        self.run_lock, self.flavor = run_lock, flavor
        self.runs = 0
        self.held = False           # in an alone() block

    @contextlib.contextmanager
    def alone(self):
        """Hold the session's run lock exclusively for the block (zdtm_py.leaks.turn): no
        other conformance run, of any xdist worker, overlaps it; ``run`` inside it runs in
        this turn.  For a test that changes what every run sees, e.g. mounts of the host's
        namespace made before its program starts and removed after it."""
        if self.held:
            raise RuntimeError("zdtm.alone() is not re-entrant")
        with leaks.turn(self.run_lock, exclusive=True):
            self.held = True
            try:
                yield
            finally:
                self.held = False

    def mode(self, iters=None):
        """The runner.Mode the command line asks for (``iters`` overrides --iters)."""
        config = self.request.config
        wanted = config.getoption("fault")
        faults = ()
        if wanted:
            points = self.engine.fault_points()
            if not points:
                pytest.skip(f"--fault: engine {self.engine.name} cannot fail on purpose")
            faults = tuple(points) if wanted == "all" else tuple(wanted.split(","))
            unknown = [p for p in faults if p not in points]
            if unknown:
                raise pytest.UsageError(f"--fault: unknown point(s) {', '.join(unknown)} "
                                        f"(engine {self.engine.name}: {', '.join(points)})")
        if (config.getoption("pre_dump") or config.getoption("snapshots")) and \
                self.engine.checkpoints and not self.engine.incremental:
            pytest.skip(f"--pre-dump/--snapshots: engine {self.engine.name} makes no "
                        f"incremental dumps here")
        return runner.Mode(flavor=self.flavor, iters=iters or config.getoption("iters"),
                           leave_running=config.getoption("leave_running"), faults=faults,
                           check_state=not config.getoption("no_state_check"),
                           pre_dumps=config.getoption("pre_dump"),
                           snapshots=config.getoption("snapshots"))

    def run(self, program, *, iters=None, between=None, after_restore=None, **options):
        """Build, start, checkpoint/restore, stop and judge ``program`` (a Program or a
        path to its .c, with Program fields as keywords); returns the runner.Outcome.
        ``between()`` runs after each dump, before the restore; ``after_restore(root)``
        after each restore, with the restored root's pid (runner.run_one)."""
        program = as_program(program, **options)
        if self.flavor not in program.flavors:
            pytest.skip(f"{program.name} does not run in the {self.flavor} flavor (it "
                        f"declares {', '.join(program.flavors)})")
        missing = requirement_missing(program.requires)
        if missing:
            pytest.skip(missing)
        self.runs += 1
        workdir = self.workdir if self.runs == 1 else self.workdir / f"run-{self.runs}"
        workdir.mkdir(exist_ok=True)
        outcome = runner.Outcome(program, self.engine.name, workdir)
        failure = None
        try:
            watch = leaks.Watch(workdir, self.tracker)
            turn = contextlib.nullcontext() if self.held else \
                leaks.turn(self.run_lock, program.exclusive)
            with turn:
                runner.run_one(program, self.engine, workdir, self.tracker,
                               mode=self.mode(iters), outcome=outcome, between=between,
                               after_restore=after_restore)
                watch.check()
        except ZdtmError as e:
            failure = str(e)
        finally:
            node = self.request.node
            node.user_properties.extend(outcome.properties())
            node.add_report_section("call", "zdtm", outcome.summary())
        if failure is not None:
            pytest.fail(failure, pytrace=False)
        return outcome


@pytest.fixture(scope="session")
def zdtm_engine(request):
    """The engine chosen with --engine (skips when it cannot run here)."""
    engine = engines.get(request.config.getoption("engine"))
    try:
        engine.check()
    except EngineUnavailable as e:
        pytest.skip(str(e))
    return engine


@pytest.fixture(scope="session")
def zdtm_subreaper():
    """This worker as a child subreaper: orphaned test processes become its children."""
    reaper.become_subreaper()


@pytest.fixture(scope="session")
def zdtm_run_lock():
    """The lock file every run on this host shares (zdtm_py.leaks.turn): the xdist workers
    of this session, and any other session (a nested one: an h-flavor run compares the
    host's mount table, which a run alone may change).  ``ZDTM_RUN_LOCK`` names another:
    for a session started by one that holds the lock alone."""
    return Path(os.environ.get("ZDTM_RUN_LOCK") or
                Path(tempfile.gettempdir()) / "zdtm-run.lock")


@pytest.fixture
def zdtm_flavor(request):
    """The flavor this test runs in (parametrized per test: pytest_generate_tests)."""
    return getattr(request, "param", "h")


@pytest.fixture
def zdtm(request, tmp_path, zdtm_engine, zdtm_subreaper, zdtm_run_lock, zdtm_flavor):
    tracker = reaper.ProcessTracker()
    request.addfinalizer(tracker.cleanup)
    return Zdtm(request, tmp_path, zdtm_engine, tracker, zdtm_run_lock, zdtm_flavor)
