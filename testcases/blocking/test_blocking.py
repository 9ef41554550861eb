"""Blocking system calls in progress at the checkpoint are restarted correctly."""

from pathlib import Path

import pytest

from zdtm_py import Program

HERE = Path(__file__).parent

PROGRAMS = [
    Program(HERE / "block_pipe_read.c"),
    Program(HERE / "block_pause.c"),
    Program(HERE / "block_nanosleep.c"),
    Program(HERE / "block_futex.c"),
    Program(HERE / "block_wait_child.c"),
]


@pytest.mark.parametrize("program", PROGRAMS, ids=str)
def test_blocking(zdtm, program):
    zdtm.run(program)
