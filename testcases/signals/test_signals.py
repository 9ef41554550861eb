"""Signals: handlers and flags, alternate stacks, blocked masks, pending and queued signals."""

from pathlib import Path

import pytest

from zdtm_py import Program

HERE = Path(__file__).parent

PROGRAMS = [
    Program(HERE / "sig_handlers.c"),
    Program(HERE / "sig_altstack.c"),
    Program(HERE / "sig_masks.c"),
    Program(HERE / "sig_pending.c"),
]


@pytest.mark.parametrize("program", PROGRAMS, ids=str)
def test_signals(zdtm, program):
    zdtm.run(program)
