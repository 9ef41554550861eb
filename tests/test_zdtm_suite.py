"""--zdtm-suite: a directory of prebuilt ZDTM-protocol binaries runs as pytest items, with
their declarations (zdtm-suite.toml, CRIU's .desc files, the options a binary declares)."""

import shutil
import sys
from pathlib import Path

import pytest

from zdtm_py import suite as zsuite
from zdtm_py.build import build

from .helpers import TOP as TOP_DIR

TOP = Path(TOP_DIR)

pytest_plugins = ["pytester"]

CONFTEST = f"""
import sys
sys.path.insert(0, {str(TOP)!r})
pytest_plugins = ["zdtm_py.plugin", "zdtm_py.report", "zdtm_py.suite"]
"""
PROGRAMS = {"pipe_data": "files/pipe_data.c", "fifo_data": "files/fifo_data.c",
            "sig_pending": "signals/sig_pending.c", "inotify_queued": "fds/inotify_queued.c",
            "file_regular": "files/file_regular.c"}


@pytest.fixture
def suite_dir(tmp_path):
    """A suite of this project's own programs, built, with a declaration of each kind."""
    directory = tmp_path / "mysuite"
    directory.mkdir()
    for name, source in PROGRAMS.items():
        shutil.copy(build(TOP / "testcases" / source), directory / name)
    (directory / "zdtm-suite.toml").write_text(
        '[tests.inotify_queued]\nexpect_failure = "queued inotify events are lost"\n'
        '[tests.file_regular]\nrequires = ["bpf_iter_io_uring_file"]\n')
    (directory / "sig_pending.desc").write_text("{'flavor': 'ns uns', 'flags': 'suid'}\n")
    (directory / "notes.txt").write_text("not a binary: not a test\n")
    return directory


def test_declarations_come_from_toml_desc_and_the_binary(suite_dir):
    fifo = zsuite.declaration(suite_dir / "fifo_data")
    assert fifo.program.dirname and not fifo.program.filename     # from its option table
    assert fifo.program.prebuilt and fifo.program.name == "fifo_data"
    assert not zsuite.declaration(suite_dir / "pipe_data").program.dirname
    assert zsuite.declaration(suite_dir / "inotify_queued").expect_failure == \
        "queued inotify events are lost"
    assert "only h runs here" in zsuite.declaration(suite_dir / "sig_pending").skip
    (suite_dir / "pipe_data.desc").write_text(
        "{'opts': '--tcp-established', 'feature': 'tcp_repair', 'flags': 'crfail'}")
    pipe = zsuite.declaration(suite_dir / "pipe_data")
    assert pipe.program.dump_options == ("tcp_established",)
    assert pipe.program.requires == ("tcp_repair",) and "crfail" in pipe.expect_failure


def test_a_desc_that_is_not_a_literal_is_refused(suite_dir):
    (suite_dir / "pipe_data.desc").write_text("__import__('os').system('true')")
    with pytest.raises(pytest.UsageError, match="not a literal dict"):
        zsuite.declaration(suite_dir / "pipe_data")


def test_suite_runs_as_pytest_items(pytester, suite_dir):
    pytester.makeconftest(CONFTEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", "-n", "2",
                                           f"--zdtm-suite={suite_dir}", timeout=300)
    result.assert_outcomes(passed=2, skipped=2, xfailed=1)
    for line in ("*PASSED*fifo_data*", "*PASSED*pipe_data*",       # in any order (xdist)
                 "*SKIPPED*sig_pending.desc: flavors ns uns (only h runs here)*",
                 "*SKIPPED*bpf_iter_io_uring_file*",
                 "*XFAIL*inotify_queued*declared: queued inotify events are lost*",
                 "mysuite: 2 passed, 2 skipped, 1 xfailed*"):
        result.stdout.fnmatch_lines([line])


def test_suite_that_is_not_a_directory_is_a_usage_error(pytester, tmp_path):
    pytester.makeconftest(CONFTEST)
    result = pytester.runpytest_subprocess(f"--zdtm-suite={tmp_path / 'nope'}", timeout=60)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--zdtm-suite: * is not a directory*"])


def test_engine_none_runs_the_binaries_too(pytester, suite_dir):
    pytester.makeconftest(CONFTEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--engine", "none",
                                           f"--zdtm-suite={suite_dir}", timeout=300)
    # expect_failure is for checkpointing engines: under none the program itself passes
    result.assert_outcomes(passed=3, skipped=2)


assert sys.version_info >= (3, 11)      # tomllib
