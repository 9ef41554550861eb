"""Threads: many threads, TLS, condition variables, robust futexes, clear_child_tid, rseq."""

from pathlib import Path

import pytest

from zdtm_py import Program

HERE = Path(__file__).parent

PROGRAMS = [
    Program(HERE / "threads_many.c"),
    Program(HERE / "threads_tls.c"),
    Program(HERE / "threads_condvar.c"),
    Program(HERE / "threads_robust_mutex.c"),
    Program(HERE / "threads_join.c"),
    Program(HERE / "threads_rseq.c"),
]


@pytest.mark.parametrize("program", PROGRAMS, ids=str)
def test_threads(zdtm, program):
    zdtm.run(program)
