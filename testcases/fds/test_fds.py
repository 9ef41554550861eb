"""File descriptors beyond plain files: eventfd, signalfd, timerfd, inotify, memfd, unlinked
files, O_PATH, file locks, fd flags and owners, descriptions shared between processes."""

from pathlib import Path

import pytest

from zdtm_py import Program, engine_lacks

HERE = Path(__file__).parent


PROGRAMS = [
    Program(HERE / "eventfd.c"),
    Program(HERE / "signalfd.c"),
    Program(HERE / "timerfd.c"),
    Program(HERE / "inotify_watches.c", dirname=True),
    engine_lacks(Program(HERE / "inotify_queued.c", dirname=True),
                 "inotify events queued at dump are lost: the kernel has no way to read an "
                 "inotify queue without emptying it, nor to queue events", 4, when="restore"),
    Program(HERE / "memfd.c"),
    Program(HERE / "unlinked_files.c", dirname=True, known_differences=(
        (r"unlinked_files\.dir/ro \(deleted\) .* -> .*/ro\.cr_engine-unlinked-",
         "an unlinked file whose name was taken again comes back under another name"),)),
    Program(HERE / "opath.c", dirname=True),
    Program(HERE / "file_locks.c", dirname=True),
    Program(HERE / "fd_owners.c"),
    Program(HERE / "shared_desc.c", filename=True),
]


@pytest.mark.parametrize("program", PROGRAMS, ids=str)
def test_fds(zdtm, program):
    zdtm.run(program)
