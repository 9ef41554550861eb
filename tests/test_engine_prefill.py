"""Page images prefilled before the freeze (ImageWriter.prefill, dump._prefill): the frozen
process writes over page-cache pages that exist already, the file is cut to what it wrote,
and a prefilled file nobody wrote, or of a dump that failed, is not left behind.  A real
process with 32 MiB of patterned memory (benchmarks/programs/dirty_memory.c) that checks
every page itself after the restore."""

import os
import signal
import sys

import pytest

import cr_engine
from cr_engine.dump import PREFILL_FROM
from cr_engine.images import ImageReader, ImageWriter
from zdtm_py.build import build

from .engine_subjects import alive
from .helpers import TOP

sys.path.insert(0, os.path.join(TOP, "benchmarks"))
import bench_engine  # noqa: E402

MIB = 32


@pytest.fixture
def dirty(tmp_path, zdtm_subreaper):
    """A dirty_memory process of MIB MiB: (pid, result file); killed at the end."""
    binary = str(build(os.path.join(TOP, "benchmarks", "programs", "dirty_memory.c")))
    pid, result = bench_engine.start(binary, [str(MIB)], str(tmp_path))
    yield pid, result
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


@pytest.mark.parametrize("leave_running", [True, False], ids=["leave-running", "kill"])
def test_a_big_process_writes_over_its_prefilled_page_image(dirty, tmp_path, leave_running):
    pid, result = dirty
    assert MIB << 20 >= PREFILL_FROM
    dumped = cr_engine.dump(pid, tmp_path / "img", leave_running=leave_running)
    counts = dumped.stats["counts"]
    assert counts["bytes_prefilled"] >= MIB << 20
    assert "prefill" in dumped.stats["times"]
    pages = tmp_path / "img" / f"pages-{pid}.img"
    # cut to what was written, the size and CRC the inventory lists
    assert pages.stat().st_size == counts["pages_written"] * 4096 >= MIB << 20
    ImageReader(tmp_path / "img").verify()
    if leave_running:
        bench_engine.verify(pid, result)        # the original checks its pages
    else:
        bench_engine.reap(pid)
    restored = cr_engine.restore(tmp_path / "img")
    bench_engine.verify(restored.root_pid, result)


def test_a_prefilled_image_nobody_wrote_is_removed(tmp_path):
    # a process that exits, or leaves the tree, between the prefill and the freeze
    writer = ImageWriter(tmp_path / "img")
    writer.prefill("pages-1.img", 3 << 20)
    assert os.path.getsize(tmp_path / "img" / "pages-1.img") == 3 << 20
    out = writer.raw("pages-2.img")
    out.write(b"x" * 4096)
    writer.close_raw("pages-2.img", out)
    writer.finish(root_pid=2, pids=[2])
    assert sorted(os.listdir(tmp_path / "img")) == ["inventory.json", "pages-2.img"]
    ImageReader(tmp_path / "img").verify()


def test_a_written_prefilled_image_is_cut_to_what_was_written(tmp_path):
    writer = ImageWriter(tmp_path / "img")
    writer.prefill("pages-1.img", 3 << 20)
    out = writer.raw("pages-1.img")
    out.write(b"y" * 8192)
    writer.close_raw("pages-1.img", out)
    writer.finish(root_pid=1, pids=[1])
    assert (tmp_path / "img" / "pages-1.img").read_bytes() == b"y" * 8192
    ImageReader(tmp_path / "img").verify()


@pytest.mark.parametrize("point", ["dump:freeze", "dump:memory"])
def test_a_dump_that_fails_leaves_no_prefilled_image(dirty, tmp_path, point):
    pid, result = dirty
    with pytest.raises(cr_engine.CRError):
        cr_engine.dump(pid, tmp_path / "img", fault=point)
    assert os.listdir(tmp_path / "img") == []
    assert alive(pid)
    bench_engine.verify(pid, result)
