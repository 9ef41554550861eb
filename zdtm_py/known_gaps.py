"""Known engine gaps, declared where a test module lists its programs."""

import pytest


def engine_lacks(program, what, issue):
    """``program`` as a pytest parameter that the bundled engine does not carry yet: a strict
    xfail under ``--engine builtin`` (it must start passing once the gap is closed), a plain
    test under every other engine (``--engine none`` checks the program itself)."""
    return pytest.param(program, id=program.name, marks=pytest.mark.xfail(
        "config.getoption('engine') == 'builtin'", strict=True,
        reason=f"engine: {what} (issue {issue})"))
