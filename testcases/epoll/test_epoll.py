"""epoll: items on targets of every kind, edge-triggered and one-shot items, nested epolls,
items whose targets left the fd table or live in another process, epolls and targets made
by different processes, a thousand items."""

from pathlib import Path

import pytest

from zdtm_py import Program

HERE = Path(__file__).parent

PROGRAMS = [
    Program(HERE / "epoll_targets.c", dirname=True),
    Program(HERE / "epoll_et_oneshot.c"),
    Program(HERE / "epoll_nested.c"),
    Program(HERE / "epoll_lost_targets.c"),
    Program(HERE / "epoll_cross_process.c"),
    Program(HERE / "epoll_many.c"),
]


@pytest.mark.parametrize("program", PROGRAMS, ids=str)
def test_epoll(zdtm, program):
    zdtm.run(program)
