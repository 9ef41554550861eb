"""Process context: root and cwd, per-process attributes, prctl flags, credentials, seccomp,
SysV IPC objects."""

import ctypes
from pathlib import Path

import pytest

from zdtm_py import Program

HERE = Path(__file__).parent


PROGRAMS = [
    Program(HERE / "chroot_cwd.c", dirname=True),
    # a realtime policy and a lower nice value need CAP_SYS_NICE in the first user namespace
    Program(HERE / "proc_attrs.c", flavors=("h", "ns")),
    Program(HERE / "prctl_flags.c"),
    Program(HERE / "credentials.c"),
    Program(HERE / "seccomp_strict.c"),
    Program(HERE / "seccomp_filter.c"),
    Program(HERE / "sysv_ipc.c", filename=True),
]

IPC_RMID = 0


def remove_leftover_ipc(program, workdir):
    """Remove the SysV IPC objects a program listed in its --filename and did not remove itself
    (it removes them and the list at every exit; only a killed program leaves the list)."""
    listing = program.files(workdir)["filename"]
    if not program.filename or not listing.exists():
        return
    libc = ctypes.CDLL(None, use_errno=True)
    remove = {"shm": lambda i: libc.shmctl(i, IPC_RMID, None),
              "sem": lambda i: libc.semctl(i, 0, IPC_RMID),
              "msg": lambda i: libc.msgctl(i, IPC_RMID, None)}
    for line in listing.read_text().splitlines():
        kind, _, ident = line.partition(" ")
        if kind in remove and ident.strip().lstrip("-").isdigit() and int(ident) >= 0:
            remove[kind](int(ident))
    listing.unlink()


@pytest.mark.parametrize("program", PROGRAMS, ids=str)
def test_context(zdtm, program):
    try:
        zdtm.run(program)
    finally:
        if program.name == "sysv_ipc":
            remove_leftover_ipc(program, zdtm.workdir)
