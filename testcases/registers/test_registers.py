"""CPU state: general registers, x87/SSE, AVX, AVX-512, fs/gs bases, checked while held in a busy loop."""

from pathlib import Path

import pytest

from zdtm_py import Program

HERE = Path(__file__).parent


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def needs(*flags):
    missing = sorted(set(flags) - cpu_flags())
    return pytest.mark.skipif(bool(missing), reason=f"CPU lacks {', '.join(missing)}")


PROGRAMS = [
    Program(HERE / "regs_gpr.c"),
    Program(HERE / "regs_x87_sse.c"),
    pytest.param(Program(HERE / "regs_avx.c"), marks=needs("avx")),
    pytest.param(Program(HERE / "regs_avx512.c", cflags=("-mavx512f", "-mavx512bw")),
                 marks=needs("avx512f", "avx512bw")),
    Program(HERE / "regs_fsgs_base.c"),
]


@pytest.mark.parametrize("program", PROGRAMS, ids=str)
def test_registers(zdtm, program):
    zdtm.run(program)
