"""Memory: private, file-backed and shared mappings, heap, stack, protections, vDSO, mm metadata,
guard pages."""

from pathlib import Path

import pytest

from zdtm_py import Program

HERE = Path(__file__).parent

PROGRAMS = [
    Program(HERE / "maps_private_anon.c"),
    Program(HERE / "maps_private_file.c", filename=True),
    Program(HERE / "maps_shared_anon.c"),
    Program(HERE / "heap_brk.c"),
    Program(HERE / "stack_contents.c"),
    Program(HERE / "mprotect_regions.c"),
    Program(HERE / "maps_holes.c"),
    Program(HERE / "vdso.c"),
    Program(HERE / "mm_metadata.c"),
    Program(HERE / "guard_pages.c", requires=("pagemap_scan_guard_pages",)),
]


@pytest.mark.parametrize("program", PROGRAMS, ids=str)
def test_memory(zdtm, program):
    zdtm.run(program)
