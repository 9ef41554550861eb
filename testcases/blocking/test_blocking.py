"""Blocking system calls in progress at the checkpoint are restarted correctly."""

from pathlib import Path

import pytest

from zdtm_py import Program, engine_lacks

HERE = Path(__file__).parent

PROGRAMS = [
    Program(HERE / "block_pipe_read.c"),
    Program(HERE / "block_pause.c"),
    # a sleep the kernel already restarted once (restart_syscall, after the thaw of a
    # pre-dump or of a dump that failed) keeps its deadline in the thread's restart block,
    # which nothing reads: the restored sleep returns EINTR, as with CRIU
    engine_lacks(Program(HERE / "block_nanosleep.c"), "a sleep already restarted by the "
                 "kernel (restart_syscall) returns EINTR after the restore", 4,
                 when="frozen again"),
    Program(HERE / "block_futex.c"),
    Program(HERE / "block_wait_child.c"),
]


@pytest.mark.parametrize("program", PROGRAMS, ids=str)
def test_blocking(zdtm, program):
    zdtm.run(program)
