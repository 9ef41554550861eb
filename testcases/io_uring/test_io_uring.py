"""io_uring: ring positions far from the start, unconsumed CQEs and SQEs not yet entered,
every setup flag, SQPOLL threads, registered files (with and without fds, direct
descriptors), registered buffers (also unmapped ones), eventfds, personalities,
restrictions and disabled rings, registered ring fds per thread, a big ring, a ring in
the program's own memory (NO_MMAP)."""

from pathlib import Path

import pytest

from zdtm_py import Program, engine_lacks

HERE = Path(__file__).parent

RING = ("io_uring_setup", "io_uring_mmap")
# what only the ring holds (a direct descriptor, a file whose fd was closed, an unmapped
# buffer) is taken out through the ring at dump, which spends it
SPENDS = ("a file or buffer only the ring holds is taken out through the ring, which "
          "spends it: refused with --leave-running, and a dump failing after that step "
          "leaves the ring changed")

PROGRAMS = [
    Program(HERE / "uring_basic.c", requires=RING),
    # a ring whose flags the kernel refuses (EINVAL) is left out at run time
    Program(HERE / "uring_flags.c", requires=RING),
    Program(HERE / "uring_sqpoll.c",
            requires=RING + ("io_uring_setup_sqpoll", "io_uring_setup_sq_aff")),
    engine_lacks(Program(HERE / "uring_files.c", dirname=True, requires=RING), SPENDS, 8,
                 when="spends",
                 more=[("a pipe, a direct descriptor and a memfd only the ring holds are taken "
                        "out with IORING_OP_FIXED_FD_INSTALL (6.8)", 8, "always",
                        ("io_uring_fixed_fd_install",))]),
    engine_lacks(Program(HERE / "uring_buffers.c", requires=RING), SPENDS, 8, when="spends"),
    engine_lacks(Program(HERE / "uring_eventfd.c", requires=RING), SPENDS, 8, when="spends"),
    Program(HERE / "uring_personality.c", dirname=True,
            requires=RING + ("io_uring_register_personality",)),
    Program(HERE / "uring_restrictions.c",
            requires=RING + ("io_uring_restrictions", "io_uring_setup_r_disabled")),
    Program(HERE / "uring_ring_fds.c", requires=RING + ("io_uring_register_ring_fds",)),
    Program(HERE / "uring_big.c", requires=RING),
    # its memory is the program's: no mapping of the ring fd (so no io_uring_mmap)
    Program(HERE / "uring_no_mmap.c",
            requires=("io_uring_setup", "io_uring_setup_no_mmap", "io_uring_setup_sqpoll")),
    Program(HERE / "uring_overflow.c", requires=RING + ("io_uring_msg_ring",)),
    # before 6.0 (Debian's 5.10) a request in flight keeps no SQE fd to submit it again with
    engine_lacks(Program(HERE / "uring_inflight.c", requires=RING),
                 "requests in flight are made again from struct io_kiocb, which keeps the "
                 "SQE's fd from 6.0", 8, kernel_lacks=("io_uring_request_fd",)),
]


@pytest.mark.parametrize("program", PROGRAMS, ids=str)
def test_io_uring(zdtm, program):
    zdtm.run(program)
