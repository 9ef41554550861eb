"""Files: regular files, shared and separate descriptions, directories and cwd, devices,
pipes, FIFOs, fd flags."""

from pathlib import Path

import pytest

from zdtm_py import Program

HERE = Path(__file__).parent

PROGRAMS = [
    Program(HERE / "file_regular.c", dirname=True),
    Program(HERE / "file_shared_offsets.c", filename=True),
    Program(HERE / "file_dirfd_cwd.c", dirname=True),
    Program(HERE / "file_devices.c"),
    Program(HERE / "pipe_data.c"),
    Program(HERE / "pipe_shared.c"),
    Program(HERE / "fifo_data.c", dirname=True),
    Program(HERE / "fd_flags.c"),
]


@pytest.mark.parametrize("program", PROGRAMS, ids=str)
def test_files(zdtm, program):
    zdtm.run(program)
