"""Pid namespaces: nested levels with their inits, children forked into a namespace from
outside it, every level's ids."""

from pathlib import Path

import pytest

from zdtm_py import Program

HERE = Path(__file__).parent

PROGRAMS = [
    Program(HERE / "pidns_nested.c", requires=("clone3_set_tid",)),
]


@pytest.mark.parametrize("program", PROGRAMS, ids=str)
def test_pidns(zdtm, program):
    zdtm.run(program)
