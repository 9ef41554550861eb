"""Project-wide pytest configuration: the suite's plugins (harness, reports), and CI rules."""

import pytest

pytest_plugins = ["zdtm_py.plugin", "zdtm_py.report", "zdtm_py.suite"]


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    # "no tests collected" must never pass as success: a broken collection or a
    # selection that matches nothing is an error in CI and for users.
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter:
            reporter.write_line("error: no tests ran (a selection that matches nothing "
                                "is a failure here)", red=True)
