"""pytest plugin of the suite.

``@pytest.mark.requires("bpf_iter_task_vma", ...)`` skips a test unless
every named probe (``python -m probes --list``) reports the feature
present; the skip reason is the probe's own detail, e.g.
``requires bpf_iter_io_uring_file: absent (no FUNC and STRUCT ...)``.
"""

import pytest

import probes


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


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "requires(*features): skip unless every named kernel feature probe "
                   "reports present (`python -m probes --list`)")


def pytest_runtest_setup(item):
    for mark in item.iter_markers(name="requires"):
        reason = requirement_missing(mark.args)
        if reason:
            pytest.skip(reason)
