"""Pid namespaces and re-parented trees: nested levels with their inits, children forked
into a namespace from outside it, every level's ids; child subreapers and their orphans."""

from pathlib import Path

import pytest

from zdtm_py import Program

HERE = Path(__file__).parent

PROGRAMS = [
    Program(HERE / "pidns_nested.c", requires=("clone3_set_tid",)),
    Program(HERE / "subreaper_orphans.c", requires=("child_subreaper",)),
    Program(HERE / "session_reparented.c", requires=("child_subreaper",)),
]


@pytest.mark.parametrize("program", PROGRAMS, ids=str)
def test_pidns(zdtm, program):
    zdtm.run(program)
