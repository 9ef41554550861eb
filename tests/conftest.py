"""Fixtures of the project's own tests."""

import pytest

from .engine_subjects import Subject


@pytest.fixture
def subject(tmp_path, zdtm_subreaper):
    """Start tests/programs/subject.py processes (killed and reaped at the end)."""
    made = []

    def make(kind="plain"):
        s = Subject(kind, str(tmp_path))
        made.append(s)
        return s
    yield make
    for s in made:
        s.kill()
