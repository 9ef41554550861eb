"""Known engine gaps, declared where a test module lists its programs."""

import pytest


def engine_lacks(program, what, issue, id=None):
    """``program`` as a pytest parameter that the bundled engine does not carry yet: a strict
    xfail under ``--engine builtin`` (it must start passing once the gap is closed), a plain
    test under every other engine (``--engine none`` checks the program itself).  ``id``
    names a variant of a program run with other arguments."""
    return pytest.param(program, id=id or program.name, marks=pytest.mark.xfail(
        "config.getoption('engine') == 'builtin'", strict=True,
        reason=f"engine: {what} (issue {issue})"))
