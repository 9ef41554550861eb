"""Process trees: parents and children, sessions and groups, zombies."""

from pathlib import Path

import pytest

from zdtm_py import Program

HERE = Path(__file__).parent

PROGRAMS = [
    Program(HERE / "pstree_deep.c"),
    Program(HERE / "session_groups.c"),
    Program(HERE / "zombie_exit.c"),
    Program(HERE / "zombie_signaled.c"),
]


@pytest.mark.parametrize("program", PROGRAMS, ids=str)
def test_process_tree(zdtm, program):
    zdtm.run(program)
