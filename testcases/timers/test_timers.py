"""Timers: setitimer/alarm and POSIX timers keep their settings and remaining time."""

from pathlib import Path

import pytest

from zdtm_py import Program

HERE = Path(__file__).parent

PROGRAMS = [
    Program(HERE / "timer_itimer.c"),
    Program(HERE / "timer_posix.c", libs=("-lrt",)),
]


@pytest.mark.parametrize("program", PROGRAMS, ids=str)
def test_timers(zdtm, program):
    zdtm.run(program)
