"""The CRIU engine of the harness (``--engine criu[=PATH]``, zdtm_py/criu_engine.py).

The option, the flags, CRIU's stats images and the error reports are checked without CRIU
(a fake criu script stands in); real programs of testcases/ go through the reference CRIU
(tools/reference_criu.py) and are skipped, with the reason, where it is not set up.
"""

import argparse
import os
from pathlib import Path

import pytest

from zdtm_py import Program, build, engines, launch, reaper, runner
from zdtm_py.criu_engine import (
    CriuEngine,
    option_flags,
    read_stats,
    reference_command,
    reference_tool,
)
from zdtm_py.errors import EngineCrashed, EngineFailed, EngineUnavailable

pytest_plugins = ["pytester"]

TOP = Path(__file__).resolve().parent.parent
CASES = TOP / "testcases"

# --- --engine criu[=PATH] -------------------------------------------------------------------


def test_engine_option_takes_a_path_for_criu():
    assert engines.parse("criu") == ("criu", None)
    assert engines.parse("criu=/opt/criu/sbin/criu") == ("criu", "/opt/criu/sbin/criu")
    assert engines.option("criu=/opt/criu/sbin/criu") == "criu=/opt/criu/sbin/criu"
    host = engines.get("criu=/opt/criu/sbin/criu")
    assert isinstance(host, CriuEngine) and host.name == "criu"
    assert host.path == "/opt/criu/sbin/criu"
    assert engines.get("criu").path is None          # the reference
    assert "criu" in engines.names() and "criu[=PATH]" in engines.usage()


@pytest.mark.parametrize("spec,message", [
    ("criu=", "PATH missing after '='"),
    ("builtin=/usr/sbin/criu", "engine 'builtin' takes no argument"),
    ("cru", r"unknown engine 'cru' \(choose from \{builtin,criu\[=PATH\],none\}\)"),
])
def test_engine_option_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        engines.get(spec)
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        engines.option(spec)


def test_plugin_skips_when_criu_is_missing_and_refuses_a_bad_spec(pytester, tmp_path):
    pytester.makeconftest(f"import sys\nsys.path.insert(0, {str(TOP)!r})\n"
                          "pytest_plugins = ['zdtm_py.plugin']\n")
    pytester.makepyfile(test_one="def test_program(zdtm):\n    zdtm.run('never_built.c')\n")
    missing = tmp_path / "no-criu-here"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs", "--flavor=h",
                                           f"--engine=criu={missing}", timeout=120)
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines([f"*engine criu: {missing} is not an executable file*"])
    bad = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--engine=criu=", timeout=120)
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--engine: engine 'criu': PATH missing after '='*"])


# --- flags, stats, errors (a fake criu) ---------------------------------------------------------

def test_dump_options_become_criu_flags():
    assert option_flags({"tcp_established": True, "ext_unix_sk": False, "ghost_limit": 1024,
                         "shell_job": None}) == ["--tcp-established", "--ghost-limit", "1024"]


# stats-dump and stats-restore as CRIU 4.1.1 wrote them for maps_private_anon
STATS_DUMP = bytes.fromhex("4059105506330957270000000a2508f00110f8db0318ebda0120be9a0128864130"
                           "0038f3404000480050085808600068007000")
STATS_RESTORE = bytes.fromhex("40591055063309570f000000120d0800100018022088dd0128f340")


def test_criu_stats_images_are_read(tmp_path):
    (tmp_path / "stats-dump").write_bytes(STATS_DUMP)
    (tmp_path / "stats-restore").write_bytes(STATS_RESTORE)
    dump = read_stats(tmp_path / "stats-dump", "dump")
    assert dump["times"] == {"freezing": 240e-6, "frozen": 60920e-6, "memdump": 28011e-6,
                             "memwrite": 19774e-6}
    assert dump["counts"]["pages_scanned"] == 8326 and dump["counts"]["pages_written"] == 8307
    restore = read_stats(tmp_path / "stats-restore", "restore")
    assert restore == {"times": {"forking": 2e-6, "restore": 28296e-6},
                       "counts": {"pages_compared": 0, "pages_skipped_cow": 0,
                                  "pages_restored": 8307}}
    assert read_stats(tmp_path / "nothing", "dump") == {}
    (tmp_path / "cut").write_bytes(STATS_DUMP[:20])
    assert read_stats(tmp_path / "cut", "dump") == {}


# argv: STEP -D DIR -o LOG ...: records its arguments, writes a log, then does $FAKE_CRIU
FAKE_CRIU = """#!/bin/sh
cd "$3"
printf '%s\\n' "$@" > "$1.argv"
{
  echo "(00.000100) Dumping fd 3"
  echo "(00.000200) Error (criu/pipes.c:490): The packetized mode for pipes is not supported yet"
  i=0; while [ $i -lt 40 ]; do echo "(00.000300) clean-up line $i"; i=$((i + 1)); done
} > "$5"
case "$FAKE_CRIU" in
  fail) exit 1 ;;
  crash) kill -SEGV $$ ;;
  restore) while [ "$1" != --pidfile ]; do shift; done; echo 4242 > "$2" ;;
esac
"""


@pytest.fixture
def fake_criu(tmp_path, monkeypatch):
    script = tmp_path / "criu"
    script.write_text(FAKE_CRIU)
    script.chmod(0o755)
    images = tmp_path / "images"
    images.mkdir()

    def run(behaviour, step, *args, **kwargs):
        monkeypatch.setenv("FAKE_CRIU", behaviour)
        engine = CriuEngine(str(script))
        result = getattr(engine, step)(*args, images, **kwargs)
        return result, (images / f"{step}.argv").read_text().split("\n")[:-1]
    return run


def test_a_criu_failure_quotes_the_error_line_and_the_log_tail(fake_criu):
    with pytest.raises(EngineFailed) as failed:
        fake_criu("fail", "dump", 1234, tcp_established=True)
    message = str(failed.value)
    assert message.startswith("criu dump of pid 1234 failed (exit 1):\n(00.000200) Error "
                              "(criu/pipes.c:490): The packetized mode for pipes is not "
                              "supported yet\n--- dump.log (last lines) ---\n")
    assert message.endswith("clean-up line 39")


def test_criu_arguments_of_dump_and_restore(fake_criu):
    _, argv = fake_criu("", "dump", 1234, tcp_established=True, leave_running=True)
    assert argv[:5] == ["dump", "-D", argv[2], "-o", "dump.log"]
    assert {"--file-locks", "--tcp-established", "--leave-running"} <= set(argv)
    assert argv[argv.index("-t") + 1] == "1234"
    assert "--network-lock" not in argv, "a host criu keeps its own network lock"
    (root, stats), argv = fake_criu("restore", "restore")
    assert root == 4242 and stats == {}
    assert argv[:5] == ["restore", "-D", argv[2], "-o", "restore.log"] and "-d" in argv


def test_criu_external_options_on_dump_and_restore(fake_criu):
    assert option_flags({"external": ["mnt[/a]:a", "mnt[/b]:b"]}) == \
        ["--external", "mnt[/a]:a", "--external", "mnt[/b]:b"]
    _, argv = fake_criu("", "dump", 1234, external="mnt[/a]:a")
    assert argv[argv.index("--external") + 1] == "mnt[/a]:a"
    _, argv = fake_criu("restore", "restore", external=["mnt[a]:/x", "mnt[b]:/y"])
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--external"] == \
        ["mnt[a]:/x", "mnt[b]:/y"]


def test_a_criu_killed_by_a_signal_is_a_crash(fake_criu):
    with pytest.raises(EngineCrashed, match=r"criu dump of pid 1: killed by SIGSEGV"):
        fake_criu("crash", "dump", 1)


@pytest.mark.skipif(os.geteuid() != 0, reason="the criu engine needs root")
def test_a_criu_that_fails_its_check_is_unavailable(tmp_path):
    old = tmp_path / "criu"     # what bookworm's CRIU 3.17 says on kernels >= 6.13
    old.write_text("#!/bin/sh\necho 'Error (criu/vdso.c:333): vdso: Unexpected rt vDSO area "
                   "bounds' >&2\nexit 1\n")
    old.chmod(0o755)
    with pytest.raises(EngineUnavailable, match=r"`criu check` failed here \(exit 1\): "
                                                r"Error \(criu/vdso.c:333\): vdso: Unexpected"):
        CriuEngine(str(old)).check()


def test_criu_faults_are_refused(fake_criu):
    assert CriuEngine().fault_points() == ()
    with pytest.raises(EngineUnavailable, match="no fault injection"):
        fake_criu("", "dump", 1, fault="dump:freeze")


# --- real programs through the reference CRIU -----------------------------------------------------

@pytest.fixture(scope="module")
def criu():
    engine = CriuEngine()
    try:
        engine.check()
    except EngineUnavailable as e:
        pytest.skip(str(e))
    return engine


@pytest.fixture
def tracker(zdtm_subreaper):
    tracker = reaper.ProcessTracker()
    yield tracker
    tracker.cleanup()


PROGRAMS = [Program(CASES / "memory" / "maps_private_anon.c"),
            Program(CASES / "files" / "fifo_data.c", dirname=True),
            Program(CASES / "signals" / "sig_pending.c")]

# The programs' own verdicts are what these tests look at: CRIU restores shared anonymous
# memory as a memfd ("/memfd:/dev/zero (deleted)" in /proc/PID/maps), a difference the
# harness's state comparison reports for every program.
VERDICT_ONLY = dict(check_state=False)


@pytest.mark.parametrize("program", PROGRAMS, ids=str)
def test_programs_pass_through_criu_twice(criu, program, tmp_path, tracker):
    outcome = runner.run_one(program, criu, tmp_path, tracker,
                             mode=runner.Mode(iters=2, **VERDICT_ONLY))
    assert "PASS" in outcome.log
    assert [r["pid"] for r in outcome.restores] == [outcome.pid] * 2    # the same pid
    assert all(d["stats"]["counts"]["pages_written"] > 0 for d in outcome.dumps)


def test_restored_root_is_a_child_of_the_worker(criu, tmp_path, tracker):
    program = PROGRAMS[0]
    started = launch.start(program, build.build(program.source), tmp_path, tracker)
    members = reaper.tree([started.pid])
    images = tmp_path / "images"
    images.mkdir()
    criu.dump(started.pid, images)
    reaper.reap_tree(members, 10.0)
    for pid in members:
        tracker.forget(pid)
    root, stats = criu.restore(images)
    tracker.watch(root)
    assert root == started.pid and reaper.parent(root) == os.getpid()
    assert stats["counts"]["pages_restored"] > 0
    assert "PASS" in launch.verdict(started, launch.stop(started, root, tracker))


def test_a_dump_criu_refuses_fails_with_its_error_and_leaves_the_program_running(
        criu, tmp_path, tracker):
    """CRIU 4.1 does not dump pipes in packet mode (O_DIRECT), which pipe_data holds."""
    program = Program(CASES / "files" / "pipe_data.c")
    started = launch.start(program, build.build(program.source), tmp_path, tracker)
    images = tmp_path / "images"
    images.mkdir()
    with pytest.raises(EngineFailed, match=r"(?s)criu dump of pid \d+ failed .*Error "
                                           r"\(criu/pipes\.c:\d+\): The packetized mode.*"
                                           r"--- dump\.log \(last lines\) ---"):
        criu.dump(started.pid, images)
    assert "PASS" in launch.verdict(started, launch.stop(started, started.pid, tracker))


def test_a_criu_path_runs_programs_too(criu, tmp_path, tracker):
    """``criu=PATH`` with a wrapper that runs the reference's binary as a host criu would."""
    wrapper = tmp_path / "criu"
    command = " ".join(f"'{word}'" for word in reference_command(reference_tool().default_root()))
    wrapper.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
    wrapper.chmod(0o755)
    engine = engines.get(f"criu={wrapper}")
    engine.check()
    workdir = tmp_path / "run"
    workdir.mkdir()
    outcome = runner.run_one(PROGRAMS[2], engine, workdir, tracker,
                             mode=runner.Mode(**VERDICT_ONLY))
    assert "PASS" in outcome.log and len(outcome.restores) == 1


def test_leave_running_dump_keeps_the_program(criu, tmp_path, tracker):
    program = PROGRAMS[0]
    started = launch.start(program, build.build(program.source), tmp_path, tracker)
    images = tmp_path / "images"
    images.mkdir()
    stats = criu.dump(started.pid, images, leave_running=True)
    assert stats["counts"]["pages_written"] > 0 and (images / "dump.log").is_file()
    assert reaper.state(started.pid) not in (None, "Z")
    assert "PASS" in launch.verdict(started, launch.stop(started, started.pid, tracker))
