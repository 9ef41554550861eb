"""@pytest.mark.requires skips with the probe's own reason."""

import pytest

pytest_plugins = ["pytester"]

TEST_FILE = """
import pytest

@pytest.mark.requires("bpf_iter_task")
def test_has_task_iterator():
    pass

@pytest.mark.requires("bpf_iter_task", "bpf_iter_io_uring_file")
def test_needs_never_merged_iterator():
    pass
"""


@pytest.fixture
def suite(pytester, request):
    pytester.makeconftest(f"import sys; sys.path.insert(0, {str(request.config.rootpath)!r})\n"
                          "pytest_plugins = ['zdtm_py.plugin']\n")
    return pytester


def test_present_runs_and_absent_skips_with_the_probe_detail(suite):
    suite.makepyfile(TEST_FILE)
    result = suite.runpytest_inprocess("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*requires bpf_iter_io_uring_file: absent (no FUNC and STRUCT*"])


def test_unknown_feature_is_a_usage_error(suite):
    suite.makepyfile("""
import pytest

@pytest.mark.requires("no_such_feature")
def test_x():
    pass
""")
    result = suite.runpytest_inprocess()
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*no such probe*"])
