"""Run reports (zdtm_py.report): area lines, the JSON summary, the Markdown table.

The runs are of generated test modules that record fake zdtm_* user_properties the way the
zdtm fixture does, so no program is built or checkpointed: in-process pytester runs, and
one subprocess run under pytest-xdist.
"""

import json
import re

import pytest

from zdtm_py import report

pytest_plugins = ["pytester"]

CONFTEST = """
import pytest

pytest_plugins = ["zdtm_py.report"]


@pytest.fixture
def fake_zdtm(record_property):
    '''Records what the zdtm fixture records for a run with these dump/restore seconds.'''
    def record(dumps, restores, flavor=None):
        record_property("zdtm_engine", "fake")
        if flavor:
            record_property("zdtm_flavor", flavor)
        record_property("zdtm_build_seconds", 0.001)
        for i, dump in enumerate(dumps, 1):   # a failed restore leaves a dump alone
            record_property(f"zdtm_dump{i}_seconds", dump)
            if i <= len(restores):
                record_property(f"zdtm_restore{i}_seconds", restores[i - 1])
    return record
"""

SOCKETS = """
import pytest

def test_pass(fake_zdtm):
    fake_zdtm([0.002], [0.004])

def test_iterations(fake_zdtm):
    fake_zdtm([0.001, 0.002, 0.003], [0.004, 0.005, 0.006])

def test_fail(fake_zdtm):
    fake_zdtm([0.010], [0.020])
    assert False, "FAIL: the state is wrong"

@pytest.mark.xfail(strict=True, reason="engine gap")
def test_xfail(fake_zdtm):
    fake_zdtm([0.007], [])
    assert False

@pytest.mark.xfail(strict=False, reason="engine gap closed?")
def test_xpass(fake_zdtm):
    fake_zdtm([0.008], [0.009])

def test_skipped_before_the_run():
    pytest.skip("requires some_probe: absent")

@pytest.mark.parametrize("name", ["a|b"])
def test_param(fake_zdtm, name):
    fake_zdtm([0.003], [0.003])
"""

MEMORY = """
import pytest

@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown broke")

@pytest.fixture
def broken_setup():
    raise RuntimeError("setup broke")

def test_teardown_error(fake_zdtm, broken_teardown):
    fake_zdtm([0.001], [0.002])

def test_setup_error(broken_setup):
    pass

def test_flavor(fake_zdtm):
    fake_zdtm([0.003], [0.004], flavor="ns")

def test_two_programs(fake_zdtm):
    fake_zdtm([0.001], [0.001])
    fake_zdtm([0.002], [0.002])
"""

PLAIN = """
def test_plain():
    pass
"""

# what the generated suite must report, in the order of the JSON rows (sorted by id)
EXPECTED_ROWS = [
    # id, area, flavor, result, dump_ms, restore_ms
    ("testcases/memory/test_fake_memory.py::test_flavor", "memory", "ns", "passed",
     [3.0], [4.0]),
    ("testcases/memory/test_fake_memory.py::test_teardown_error", "memory", "h", "error",
     [1.0], [2.0]),
    ("testcases/memory/test_fake_memory.py::test_two_programs", "memory", "h", "passed",
     [1.0, 2.0], [1.0, 2.0]),
    ("testcases/sockets/test_fake_sockets.py::test_fail", "sockets", "h", "failed",
     [10.0], [20.0]),
    ("testcases/sockets/test_fake_sockets.py::test_iterations", "sockets", "h", "passed",
     [1.0, 2.0, 3.0], [4.0, 5.0, 6.0]),
    ("testcases/sockets/test_fake_sockets.py::test_param[a|b]", "sockets", "h", "passed",
     [3.0], [3.0]),
    ("testcases/sockets/test_fake_sockets.py::test_pass", "sockets", "h", "passed",
     [2.0], [4.0]),
    ("testcases/sockets/test_fake_sockets.py::test_xfail", "sockets", "h", "xfailed",
     [7.0], []),
    ("testcases/sockets/test_fake_sockets.py::test_xpass", "sockets", "h", "xpassed",
     [8.0], [9.0]),
]


@pytest.fixture
def fake_suite(pytester):
    pytester.makeconftest(CONFTEST)
    for area, text in (("sockets", SOCKETS), ("memory", MEMORY)):
        module = pytester.path / "testcases" / area / f"test_fake_{area}.py"
        module.parent.mkdir(parents=True)
        module.write_text(text)
    plain = pytester.path / "tests" / "test_plain.py"
    plain.parent.mkdir()
    plain.write_text(PLAIN)
    return pytester


def run_inprocess(pytester, *args):
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", *args)


def read_report(base):
    return (json.loads(base.with_name(base.name + ".json").read_text()),
            base.with_name(base.name + ".md").read_text())


def rows_without_durations(document):
    return [{k: v for k, v in row.items() if k != "duration_seconds"}
            for row in document["tests"]]


# --- pieces ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("nodeid, area", [
    ("testcases/sockets/test_sockets.py::test_sockets[udp]", "sockets"),
    ("testcases/sockets/more/test_x.py::test_y", "sockets"),
    ("suite/testcases/fds/test_fds.py::test_fds[a/b::c]", "fds"),
    ("tests/test_cli.py::test_help", "tests"),
    ("test_top.py::test_x", "test_top"),
])
def test_area_is_the_directory_under_testcases(nodeid, area):
    assert report.area_of(nodeid) == area


@pytest.mark.parametrize("categories, result", [
    (["", "passed", ""], "passed"),
    (["", "passed", "error"], "error"),
    (["", "failed", "error"], "failed"),
    (["error", ""], "error"),
    (["skipped", ""], "skipped"),
    (["", "xfailed", ""], "xfailed"),
    (["", "rerun"], None),
])
def test_result_is_the_worst_phase(categories, result):
    assert report.result_of(categories) == result


def test_report_paths(tmp_path):
    assert report.report_paths("out/run", tmp_path) == (tmp_path / "out/run.json",
                                                        tmp_path / "out/run.md")
    assert report.report_paths("run.json", tmp_path) == (tmp_path / "run.json",
                                                         tmp_path / "run.md")
    assert report.report_paths(str(tmp_path), "/elsewhere") == (
        tmp_path / "zdtm-report.json", tmp_path / "zdtm-report.md")
    assert report.report_paths("new/", tmp_path) == (tmp_path / "new/zdtm-report.json",
                                                     tmp_path / "new/zdtm-report.md")


# --- whole runs -----------------------------------------------------------------------------------

def test_json_rows_areas_and_totals(fake_suite):
    result = run_inprocess(fake_suite, "--zdtm-report", "out/run")
    result.assert_outcomes(passed=7, failed=1, skipped=1, xfailed=1, xpassed=1, errors=2)
    document, _ = read_report(fake_suite.path / "out" / "run")

    assert (document["schema"], document["schema_version"]) == ("crbench-zdtm-report", 1)
    assert document["engines"] == ["fake"]
    assert document["exit_status"] == pytest.ExitCode.TESTS_FAILED
    # every test counts, each once (the teardown error is the test's result, not a second one)
    assert document["totals"] == {"tests": 12, "zdtm_tests": 9, "failed": 1, "passed": 6,
                                  "skipped": 1, "xfailed": 1, "xpassed": 1, "error": 2}
    # the table: zdtm tests only
    assert [(r["id"], r["area"], r["flavor"], r["result"], r["dump_ms"], r["restore_ms"])
            for r in document["tests"]] == EXPECTED_ROWS
    iterations = document["tests"][4]
    assert (iterations["iterations"], iterations["dump_ms_total"],
            iterations["restore_ms_total"]) == (3, 6.0, 15.0)
    assert iterations["steps_ms"] == {"build": 1.0}
    assert document["tests"][2]["steps_ms"] == {"build": 2.0}   # two programs: summed
    # areas: all their tests (the skip and the setup error too), medians of every iteration
    sockets, memory = document["areas"][1], document["areas"][0]
    assert sockets == {"area": "sockets", "tests": 7, "zdtm_tests": 6, "failed": 1,
                       "passed": 3, "skipped": 1, "xfailed": 1, "xpassed": 1, "error": 0,
                       "dump_ms_median": 3.0, "restore_ms_median": 5.0}
    assert (memory["tests"], memory["passed"], memory["error"], memory["dump_ms_median"],
            memory["restore_ms_median"]) == (4, 2, 2, 1.5, 2.0)
    assert [a["area"] for a in document["areas"]] == ["memory", "sockets"]   # not "tests"


def test_markdown_table(fake_suite):
    run_inprocess(fake_suite, "--zdtm-report", "run.md")
    _, markdown = read_report(fake_suite.path / "run")
    lines = markdown.splitlines()
    assert lines[0] == "# zdtm report"
    assert lines[2].startswith("12 tests (9 through the zdtm fixture): 1 failed, 6 passed, "
                               "1 skipped, 1 xfailed, 1 xpassed, 2 error. Engine fake, ")
    header = lines.index("| test | area | flavor | result | iterations | dump ms | restore ms |")
    assert lines[header + 1] == "|---|---|---|---|---:|---:|---:|"
    rows = lines[header + 2:header + 2 + len(EXPECTED_ROWS)]
    assert rows[0] == ("| `testcases/memory/test_fake_memory.py::test_flavor` | memory | ns "
                       "| passed | 1 | 3.0 | 4.0 |")
    assert rows[4] == ("| `testcases/sockets/test_fake_sockets.py::test_iterations` | sockets "
                       "| h | passed | 3 | 6.0 | 15.0 |")
    assert rows[5].startswith("| `testcases/sockets/test_fake_sockets.py::test_param[a\\|b]` ")
    assert rows[7].endswith("| xfailed | 1 | 7.0 | - |")
    assert "| sockets | 7 | 1 | 3 | 1 | 1 | 1 | 0 | 3.0 | 5.0 |" in lines
    assert "| **all tests** | 12 | 1 | 6 | 1 | 1 | 1 | 2 | - | - |" in lines


def test_area_lines_in_the_terminal_summary(fake_suite):
    result = run_inprocess(fake_suite, "-q", "--zdtm-report", str(fake_suite.path))
    result.stdout.fnmatch_lines([
        "*- zdtm areas -*",
        "memory:  2 passed, 2 error, dump 1.5 ms / restore 2.0 ms median",
        "sockets: 1 failed, 3 passed, 1 skipped, 1 xfailed, 1 xpassed, "
        "dump 3.0 ms / restore 5.0 ms median",
        f"zdtm report: {fake_suite.path}/zdtm-report.json, {fake_suite.path}/zdtm-report.md",
        "*short test summary info*",
    ])
    # -q's progress line is pytest's own: one letter per report, the percentage
    assert re.fullmatch(r"[.EFxXs]{13} +\[100%\]", result.outlines[0])


def test_no_zdtm_tests_no_area_lines(pytester):
    pytester.makeconftest('pytest_plugins = ["zdtm_py.report"]')
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = run_inprocess(pytester, "--zdtm-report", "run")
    result.assert_outcomes(passed=1)
    assert "zdtm areas" not in result.stdout.str()
    document, markdown = read_report(pytester.path / "run")
    assert document["totals"]["tests"] == 1 and document["tests"] == document["areas"] == []
    assert "| **all tests** | 1 | 0 | 1 | 0 | 0 | 0 | 0 | - | - |" in markdown


def test_a_report_that_cannot_be_written_fails_the_run(pytester):
    pytester.makeconftest('pytest_plugins = ["zdtm_py.report"]')
    pytester.makepyfile("def test_plain():\n    pass\n")
    (pytester.path / "a_file").write_text("")
    result = run_inprocess(pytester, "--zdtm-report", "a_file/run")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["zdtm report not written: *a_file*"])


def test_under_xdist_the_controller_reports_the_same(fake_suite):
    serial = run_inprocess(fake_suite, "--zdtm-report", "serial")
    serial.assert_outcomes(passed=7, failed=1, skipped=1, xfailed=1, xpassed=1, errors=2)
    result = fake_suite.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2",
                                             "--zdtm-report", "xdist", timeout=120)
    result.assert_outcomes(passed=7, failed=1, skipped=1, xfailed=1, xpassed=1, errors=2)
    result.stdout.fnmatch_lines([
        "created: 2/2 workers*",
        "*- zdtm areas -*",
        "memory:  2 passed, 2 error, dump 1.5 ms / restore 2.0 ms median",
        "sockets: 1 failed, 3 passed, 1 skipped, 1 xfailed, 1 xpassed, "
        "dump 3.0 ms / restore 5.0 ms median",
    ])
    serial_report, _ = read_report(fake_suite.path / "serial")
    xdist_report, xdist_markdown = read_report(fake_suite.path / "xdist")
    assert rows_without_durations(xdist_report) == rows_without_durations(serial_report)
    for key in ("totals", "areas", "engines"):
        assert xdist_report[key] == serial_report[key]
    assert "| `testcases/sockets/test_fake_sockets.py::test_pass` | sockets | h | passed " \
           "| 1 | 2.0 | 4.0 |" in xdist_markdown
    # workers write nothing: only the controller's two files are there
    assert sorted(p.name for p in fake_suite.path.glob("*.json")) == ["serial.json",
                                                                      "xdist.json"]
