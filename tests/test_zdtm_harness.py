"""The conformance harness itself (zdtm_py): builds, the protocol, verdicts, engines, clean-up.

Runs that start test programs go through pytester in a subprocess: the zdtm
fixture makes its worker a child subreaper, which this worker must not become.
"""

import os
import sys
import threading
import types
from pathlib import Path

import pytest

from zdtm_py import Program, build, engines, launch
from zdtm_py.errors import (
    BuildError,
    EngineCrashed,
    EngineFailed,
    EngineUnavailable,
    ProgramFailed,
)
from zdtm_py.program import as_program, engine_options

pytest_plugins = ["pytester"]

TOP = Path(__file__).resolve().parent.parent

PASSING = r"""
#include "zdtmtst.h"
int main(int argc, char **argv)
{
	test_init(argc, argv);
	test_daemon();
	test_waitsig();
	pass();
	return 0;
}
"""

FAILING = r"""
#include "zdtmtst.h"
int main(int argc, char **argv)
{
	test_init(argc, argv);
	test_msg("some context before the failure\n");
	test_daemon();
	test_waitsig();
	errno = 0;
	fail("the state is wrong: %d != %d", 1, 2);
	return 0;
}
"""

DIES_EARLY = r"""
#include "zdtmtst.h"
int main(int argc, char **argv)
{
	test_init(argc, argv);
	pr_err("cannot set up the state\n");
	return 3;
}
"""

HANGS = r"""
#include "zdtmtst.h"
int main(int argc, char **argv)
{
	test_init(argc, argv);
	for (;;)
		pause();   /* never calls test_daemon() */
}
"""

IGNORES_SIGTERM = r"""
#include <signal.h>
#include "zdtmtst.h"
int main(int argc, char **argv)
{
	sigset_t set;
	test_init(argc, argv);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	test_daemon();
	for (;;)
		pause();
}
"""

# The test exits (PASS) but leaves a grandchild in its own session behind: the
# fixture's finalizer must kill it. It writes its pid next to the outfile.
LEAVES_ORPHAN = r"""
#include <signal.h>
#include "zdtmtst.h"
static char *filename;
TEST_OPTION(filename, string, "where to write the orphan's pid", 1);
int main(int argc, char **argv)
{
	pid_t pid;
	FILE *f;
	test_init(argc, argv);
	pid = fork();
	if (pid == 0) {
		signal(SIGTERM, SIG_IGN);
		setsid();
		for (;;)
			pause();
	}
	f = fopen(filename, "w");
	fprintf(f, "%d\n", pid);
	fclose(f);
	test_daemon();
	test_waitsig();
	pass();
	return 0;
}
"""

WITH_OPTIONS = r"""
#include "zdtmtst.h"
static char *filename, *dirname, *word = "none";
static int count = -1, flag;
static unsigned long big;
TEST_OPTION(filename, string, "file", 1);
TEST_OPTION(dirname, string, "dir", 1);
TEST_OPTION(word, string, "a word", 0);
TEST_OPTION(count, int, "a number", 1);
TEST_OPTION(flag, bool, "a flag", 0);
TEST_OPTION(big, ulong, "a big number", 0);
int main(int argc, char **argv)
{
	test_init(argc, argv);
	test_daemon();
	test_waitsig();
	if (strcmp(filename, "options.test") || strcmp(dirname, "options.dir") || strcmp(word, "hello") ||
	    count != -42 || !flag || big != 18446744073709551615UL)
		fail("options: %s %s %s %d %d %lu", filename, dirname, word, count, flag, big);
	else
		pass();
	return 0;
}
"""


# --- building --------------------------------------------------------------------------

@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


def write(path, text):
    path.write_text(text)
    return path


def test_build_is_cached_by_content_and_flags(tmp_path, cache, monkeypatch):
    src = write(tmp_path / "t.c", PASSING)
    calls = []
    real_run = build.subprocess.run

    def counting_run(cmd, *args, **kwargs):
        if "-o" in cmd:
            calls.append(cmd)
        return real_run(cmd, *args, **kwargs)

    monkeypatch.setattr(build.subprocess, "run", counting_run)
    first = build.build(src, cache=cache)
    assert first.is_file() and os.access(first, os.X_OK)
    assert build.build(src, cache=cache) == first
    assert len(calls) == 1, "the second build must come from the cache"

    other_flags = build.build(src, cache=cache, cflags=("-DX=1",))
    assert other_flags != first and len(calls) == 2
    write(src, PASSING + "\n/* changed */\n")
    changed = build.build(src, cache=cache)
    assert changed not in (first, other_flags) and len(calls) == 3
    assert not list(cache.glob(".build-*")), "no temporary directory is left behind"


def test_concurrent_builds_of_one_program_agree(tmp_path, cache):
    src = write(tmp_path / "t.c", PASSING)
    results, errors = [], []

    def one():
        try:
            results.append(build.build(src, cache=cache))
        except Exception as e:          # noqa: BLE001 - collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(results)) == 1 and results[0].is_file()
    assert [p.name for p in cache.iterdir()] == [results[0].parent.name]


def test_build_error_shows_the_compiler_output(tmp_path, cache):
    src = write(tmp_path / "broken.c", "int main(void) { return undeclared; }\n")
    with pytest.raises(BuildError, match=r"(?s)building broken.c failed.*undeclared"):
        build.build(src, cache=cache)
    assert not list(cache.iterdir()), "a failed build caches nothing"


def test_missing_source_is_a_build_error(tmp_path, cache):
    with pytest.raises(BuildError, match="no such test source"):
        build.build(tmp_path / "nope.c", cache=cache)


# --- programs and verdicts ------------------------------------------------------------------

def test_program_arguments(tmp_path):
    p = Program(tmp_path / "t.c", filename=True, dirname=True, args=("--count=3",))
    assert p.name == str(p) == "t"
    assert p.argv("/bin/t") == ["/bin/t", "--pidfile=t.pid", "--outfile=t.out",
                                "--filename=t.test", "--dirname=t.dir", "--count=3"]
    assert as_program(tmp_path / "t.c", filename=True) == Program(tmp_path / "t.c", filename=True)
    assert as_program(p, args=()).args == ()
    with pytest.raises(TypeError):
        Program(tmp_path / "t.c", args="--count=3")


def test_engine_options_flags_values_lists_and_workdir(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    p = Program(tmp_path / "t.c", dump_options=(
        "tcp_established", "external=mnt[{workdir}/t.dir/a]:a", "tcp_established",
        "external=mnt[{workdir}/t.dir/b@1]:b", "ghost_limit=1{workdir}"),
        restore_options=("external=mnt[a]:/outside/{workdir}",))
    # {workdir} is the test's directory resolved (mount points show no symlinks), each time
    assert p.engine_options("dump", tmp_path / "link") == {
        "tcp_established": True,
        "external": [f"mnt[{real}/t.dir/a]:a", f"mnt[{real}/t.dir/b@1]:b"],
        "ghost_limit": f"1{real}"}
    # a key given once keeps its one value (the engine knows which keywords are lists)
    assert p.engine_options("restore", real) == {"external": f"mnt[a]:/outside/{real}"}
    assert Program(tmp_path / "t.c").engine_options("restore", real) == {}
    # what Program(dump_options=("tcp_established",)) always meant
    assert engine_options(("tcp_established",), real) == {"tcp_established": True}
    assert engine_options(("k=", "k=={x}"), real) == {"k": ["", "={x}"]}
    assert as_program(p, restore_options=()).restore_options == ()


@pytest.mark.parametrize("options,error,message", [
    (("tcp-established",), ValueError, "bad option 'tcp-established'"),
    (("=value",), ValueError, "bad option '=value'"),
    (("external", "external=x"), ValueError, "'external' given both as a flag and as"),
    (("k=1", "k"), ValueError, "'k' given both as a flag and as"),
    ((("tcp_established", True),), TypeError, "is a string"),
])
def test_engine_options_refused_when_declared(tmp_path, options, error, message):
    for name in ("dump_options", "restore_options"):
        with pytest.raises(error, match=f"Program.{name}: .*{message}"):
            Program(tmp_path / "t.c", **{name: options})
    with pytest.raises(TypeError, match="is a sequence"):
        Program(tmp_path / "t.c", restore_options="external=mnt[a]:/b")


def make_started(tmp_path, outfile=None, inprogress=None):
    program = Program(tmp_path / "t.c")
    files = program.files(tmp_path)
    if outfile is not None:
        files["outfile"].write_text(outfile)
    if inprogress is not None:
        Path(str(files["outfile"]) + ".inprogress").write_text(inprogress)
    files["launcher_log"].write_text("")
    return launch.Started(program, tmp_path, 1, files)


def test_verdict_pass_needs_the_last_line_of_the_outfile(tmp_path):
    assert "PASS" in launch.verdict(make_started(tmp_path, outfile="12:00: 1: PASS\n\n"), 0)


@pytest.mark.parametrize("outfile,inprogress,message", [
    ("1: FAIL: t.c:3: bad (errno = 0 (Success))\n1: PASS\n", None, "FAIL: t.c:3: bad"),
    ("1: PASS\n1: ERR: t.c:9: later trouble\n", None, "ERR: t.c:9: later trouble"),
    ("", None, "no PASS"),
    (None, "1: PASS\n", "never completed"),
    (None, None, "no PASS"),
])
def test_verdict_failures(tmp_path, outfile, inprogress, message):
    with pytest.raises(ProgramFailed, match=message):
        launch.verdict(make_started(tmp_path, outfile, inprogress), 0)


# --- engines ----------------------------------------------------------------------------------

def fake_cr_engine(monkeypatch, **functions):
    module = types.ModuleType("fake_cr_engine")

    class CRError(Exception):
        pass

    module.CRError = CRError
    for name, fn in functions.items():
        setattr(module, name, fn(module) if callable(fn) else fn)
    monkeypatch.setitem(sys.modules, "fake_cr_engine", module)
    engine = engines.BuiltinEngine()
    engine.module_name = "fake_cr_engine"
    return engine


def test_engine_registry():
    assert {"builtin", "none"} <= set(engines.names())
    assert engines.get("none").checkpoints is False
    with pytest.raises(ValueError, match="unknown engine"):
        engines.get("nope")


def test_builtin_engine_results_and_errors(monkeypatch, tmp_path):
    def dump(module):
        def dump(pid, images_dir, leave_running=False, shell_job=False, fault=None):
            if pid == 1:
                raise module.CRError("cannot freeze")
            if pid == 2:
                raise ZeroDivisionError("oops")
            return types.SimpleNamespace(stats={"pages": 3})
        return dump

    def restore(module):
        return lambda images_dir, shell_job=False, fault=None: types.SimpleNamespace(root_pid=42,
                                                                         stats={"t": 1})

    engine = fake_cr_engine(monkeypatch, dump=dump, restore=restore)
    engine.check()
    assert engine.dump(7, tmp_path) == {"pages": 3}
    assert engine.restore(tmp_path) == (42, {"t": 1})
    with pytest.raises(EngineFailed, match="dump of pid 1 failed: CRError: cannot freeze"):
        engine.dump(1, tmp_path)
    with pytest.raises(EngineCrashed, match="(?s)engine crashed: ZeroDivisionError: oops.*Traceback"):
        engine.dump(2, tmp_path)


def test_builtin_engine_passes_options_and_parses_restore_externals(monkeypatch, tmp_path):
    from cr_engine import CRError, mnt_model
    calls = []

    def dump(module):
        return lambda pid, images_dir, **kwargs: calls.append(("dump", kwargs)) or \
            types.SimpleNamespace(stats={})

    def restore(module):
        return lambda images_dir, **kwargs: calls.append(("restore", kwargs)) or \
            types.SimpleNamespace(root_pid=42, stats={})

    engine = fake_cr_engine(monkeypatch, dump=dump, restore=restore)
    parser = types.ModuleType("fake_cr_engine.mnt_model")
    parser.restore_externals = mnt_model.restore_externals      # the engine's own parser
    monkeypatch.setitem(sys.modules, "fake_cr_engine.mnt_model", parser)
    sys.modules["fake_cr_engine"].CRError = CRError                # ... and its errors
    engine.dump(7, tmp_path, tcp_established=True, external="mnt[/a]:a")
    engine.dump(7, tmp_path, external=["mnt[/a]:a", "mnt[/b@1]:b"])
    engine.restore(tmp_path, external="mnt[a]:/x")
    engine.restore(tmp_path, external=["mnt[a]:/x", "mnt[b]:/y"])
    engine.restore(tmp_path)
    common = {"shell_job": False, "fault": None}
    assert calls == [
        ("dump", {**common, "leave_running": False, "tcp_established": True,
                  "external": ["mnt[/a]:a"]}),
        ("dump", {**common, "leave_running": False, "external": ["mnt[/a]:a", "mnt[/b@1]:b"]}),
        ("restore", {**common, "external": {"a": "/x"}}),
        ("restore", {**common, "external": {"a": "/x", "b": "/y"}}),
        ("restore", common)]
    # a spec the engine cannot read is the engine's clean refusal
    with pytest.raises(EngineFailed, match=r"restore from .* failed: Unsupported: bad "
                                           r"--external 'mnt\[a\]:x'"):
        engine.restore(tmp_path, external="mnt[a]:x")


def test_builtin_engine_without_its_api_is_unavailable(monkeypatch):
    engine = fake_cr_engine(monkeypatch)
    del sys.modules["fake_cr_engine"].CRError
    with pytest.raises(EngineUnavailable, match="has no dump, restore, CRError yet"):
        engine.check()


# --- whole runs through the plugin (in a subprocess) ---------------------------------------------

CONFTEST = f"""
import json, os, signal, subprocess, sys, time
sys.path.insert(0, {str(TOP)!r})
from zdtm_py import engines, reaper

class FakeEngine(engines.Engine):
    '''Not a checkpoint: "dump" kills the tree, "restore" starts the program afresh.'''
    name = "fake"

    def dump(self, pid, images_dir, *, leave_running=False, fault=None, **options):
        (images_dir / "dump-options.json").write_text(json.dumps(options))
        tree = reaper.tree([pid])
        cmd = open(f"/proc/{{pid}}/cmdline", "rb").read().split(b"\\0")[:-1]
        (images_dir / "state.json").write_text(json.dumps(
            {{"cmd": [c.decode() for c in cmd], "cwd": os.readlink(f"/proc/{{pid}}/cwd"),
             "tree": tree}}))
        for p in tree:
            os.kill(p, signal.SIGKILL)
        return {{"processes": len(tree)}}

    def restore(self, images_dir, *, fault=None, **options):
        (images_dir / "restore-options.json").write_text(json.dumps(options))
        state = json.loads((images_dir / "state.json").read_text())
        for p in state["tree"]:
            assert not os.path.exists(f"/proc/{{p}}"), f"pid {{p}} was not reaped after the dump"
        pidfile = os.path.join(state["cwd"], state["cmd"][1].split("=", 1)[1])
        os.unlink(pidfile)
        subprocess.run(state["cmd"], cwd=state["cwd"], check=True, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return int(open(pidfile).read()), {{"restarted": True}}

engines.ENGINES["fake"] = FakeEngine
pytest_plugins = ["zdtm_py.plugin"]
"""


@pytest.fixture
def suite(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.syspathinsert()
    return pytester


def suite_file(pytester, programs, body):
    for name, text in programs.items():
        pytester.path.joinpath(f"{name}.c").write_text(text)
    pytester.makepyfile(test_suite=f"""
from pathlib import Path
import pytest
from zdtm_py import Program
HERE = Path(__file__).parent
{body}
""")


def run_suite(pytester, *args):
    """The suite in a subprocess; in the host flavor unless ``args`` name flavors (the
    harness's behaviour does not depend on it, and test counts stay what they say)."""
    flavor = () if any(a.startswith("--flavor") for a in args) else ("--flavor", "h")
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", *flavor, *args,
                                         timeout=120)


def test_pass_fail_and_early_death_are_reported(suite):
    suite_file(suite, {"passing": PASSING, "failing": FAILING, "dies_early": DIES_EARLY,
                       "options": WITH_OPTIONS}, """
@pytest.mark.parametrize("name", ["passing", "failing", "dies_early"])
def test_program(zdtm, name):
    zdtm.run(HERE / f"{name}.c")

def test_options(zdtm):
    zdtm.run(Program(HERE / "options.c", filename=True, dirname=True,
                     args=("--word", "hello", "--count=-42", "--flag", "--big=18446744073709551615")))
""")
    result = run_suite(suite, "--engine", "none")
    result.assert_outcomes(passed=2, failed=2)
    out = result.stdout.str()
    # the program's own FAIL line and its log tail, no Python traceback
    result.stdout.fnmatch_lines([
        "*failing: *FAIL: *failing.c:*: the state is wrong: 1 != 2 (errno = 0 (Success))",
        "*--- failing.out (last lines) ---",
        "*some context before the failure",
    ])
    result.stdout.fnmatch_lines([
        "*dies_early: launcher exited with 1 before the test daemonized",
        "*ERR: *dies_early.c:*: cannot set up the state",
        "*zdtm: test * exited with 3 before test_daemon()",
    ])
    assert "Traceback" not in out and "raise " not in out
    # timings are reported
    result.stdout.fnmatch_lines(["*Captured zdtm call*", "program passing, engine none, *",
                                 "build: * ms", "start: * ms", "stop: * ms"])


def test_hang_before_daemon_and_ignored_sigterm_time_out(suite):
    suite_file(suite, {"hangs": HANGS, "deaf": IGNORES_SIGTERM}, """
def test_hangs(zdtm):
    zdtm.run(Program(HERE / "hangs.c", start_timeout=1))

def test_deaf(zdtm):
    zdtm.run(Program(HERE / "deaf.c", stop_timeout=1))
""")
    result = run_suite(suite, "--engine", "none")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*hangs: no pidfile after 1s (test_daemon() never called?)*"])
    result.stdout.fnmatch_lines(["*deaf: pid * did not exit within 1s of SIGTERM*"])


def test_leftover_processes_fail_the_test_and_are_killed(suite, tmp_path):
    suite_file(suite, {"orphan": LEAVES_ORPHAN}, """
def test_orphan(zdtm):
    try:
        zdtm.run(Program(HERE / "orphan.c", filename=True))
    finally:
        (HERE / "orphan-pid").write_text((zdtm.workdir / "orphan.test").read_text())
""")
    result = run_suite(suite, "--engine", "none")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the test left behind processes still there: * (orphan)*"])
    pid = int(suite.path.joinpath("orphan-pid").read_text())
    assert not os.path.exists(f"/proc/{pid}"), "the test's orphan outlived the test"


def test_checkpoint_cycle_reaps_the_dumped_tree_and_reports_timings(suite):
    suite_file(suite, {"passing": PASSING, "failing": FAILING}, """
def test_cycle(zdtm, record_property):
    outcome = zdtm.run(HERE / "passing.c", iters=2)
    assert len(outcome.dumps) == len(outcome.restores) == 2
    assert outcome.dumps[0]["stats"] == {"processes": 1}
    assert outcome.restores[1]["stats"] == {"restarted": True}
    names = [name for name, _ in zdtm.request.node.user_properties]
    assert names[:3] == ["zdtm_engine", "zdtm_flavor", "zdtm_build_seconds"]
    assert {"zdtm_dump1_seconds", "zdtm_restore2_seconds", "zdtm_stop_seconds"} <= set(names)

def test_cycle_failure(zdtm):
    zdtm.run(HERE / "failing.c")
""")
    result = run_suite(suite, "--engine", "fake", "--no-state-check")   # it restarts: new pids
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*dump 1: * ms {'processes': 1}",
                                 "*restore 1: * ms, root pid * {'restarted': True}"])


def test_runs_pass_engine_options_call_after_restore_and_run_alone(suite):
    suite_file(suite, {"passing": PASSING}, """
import json, os

def test_options(zdtm):
    program = Program(HERE / "passing.c", dump_options=(
        "tcp_established", "external=mnt[{workdir}/p.dir/a]:a", "external=mnt[/b]:b"),
        restore_options=("external=mnt[a]:{workdir}/outside",))
    roots = []
    outcome = zdtm.run(program, iters=2, after_restore=roots.append)
    assert roots == [r["pid"] for r in outcome.restores] and len(roots) == 2
    wd = os.path.realpath(zdtm.workdir)
    for i in (1, 2):
        images = zdtm.workdir / f"images-{i}"
        assert json.loads((images / "dump-options.json").read_text()) == {
            "tcp_established": True, "external": [f"mnt[{wd}/p.dir/a]:a", "mnt[/b]:b"]}
        assert json.loads((images / "restore-options.json").read_text()) == {
            "external": f"mnt[a]:{wd}/outside"}

def test_after_restore_fails_the_run(zdtm):
    def check(root):
        assert False, f"restored root {root} checked"
    zdtm.run(HERE / "passing.c", after_restore=check)

def test_alone(zdtm):
    import fcntl

    def others_may_run():
        with open(zdtm.run_lock, "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

    def held(root):
        assert not others_may_run()

    with zdtm.alone():          # runs in the block take no turn of their own
        assert not others_may_run()
        zdtm.run(HERE / "passing.c", after_restore=held)
        zdtm.run(HERE / "passing.c", exclusive=True, after_restore=held)
    assert others_may_run()
""")
    result = run_suite(suite, "--engine", "fake", "--no-state-check")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*AssertionError: restored root * checked"])


def test_unknown_engine_is_a_usage_error(suite):
    suite_file(suite, {}, "def test_x(zdtm):\n    pass\n")
    result = run_suite(suite, "--engine", "nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*argument --engine: unknown engine 'nope' (choose from *)"])


# --- the mount comparison (zdtm_py.state.mount_lines) on synthetic mountinfo ---------------
def _mountinfo(*mounts):
    """mountinfo lines: (id, point, propagation tags, fs type) each, on one tmpfs."""
    return [f"{i} 1 0:50 / {point} rw,relatime {tags} - {fstype} none rw"
            for i, point, tags, fstype in mounts]


def _mount_diff(a, b):
    from zdtm_py import state
    return state._list_diff("mount", state.mount_lines(a), state.mount_lines(b))


def test_mounts_compare_peer_groups_not_their_numbers():
    before = _mountinfo((10, "/a", "shared:4", "tmpfs"), (11, "/b", "shared:4", "tmpfs"),
                        (12, "/c", "master:4", "tmpfs"))
    renumbered = _mountinfo((20, "/a", "shared:9", "tmpfs"), (21, "/b", "shared:9", "tmpfs"),
                            (22, "/c", "master:9", "tmpfs"))
    assert _mount_diff(before, renumbered) == []
    split = _mountinfo((20, "/a", "shared:9", "tmpfs"), (21, "/b", "shared:8", "tmpfs"),
                       (22, "/c", "master:9", "tmpfs"))
    assert _mount_diff(before, split) == ["mount - / /b #0 rw,relatime shared:g1 tmpfs none rw",
                                          "mount + / /b #0 rw,relatime shared:g2 tmpfs none rw"]


def test_mounts_compare_stacks_and_duplicates():
    stack = _mountinfo((10, "/a", "", "tmpfs"), (11, "/a", "", "proc"))
    swapped = _mountinfo((10, "/a", "", "proc"), (11, "/a", "", "tmpfs"))
    assert len(_mount_diff(stack, swapped)) == 4       # each mount at the other depth
    once = _mountinfo((10, "/a", "", "tmpfs"))
    assert _mount_diff(once, once + _mountinfo((11, "/b", "", "tmpfs"))) == \
        ["mount + / /b #0 rw,relatime private tmpfs none rw"]
    twice = _mountinfo((10, "/a", "", "tmpfs"), (11, "/a", "", "tmpfs"))
    assert _mount_diff(once, twice) == ["mount + / /a #1 rw,relatime private tmpfs none rw"]
