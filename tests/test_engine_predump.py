"""Incremental dumps: pre-dump (memory only, the tree runs on, its writes tracked by a
userfaultfd in async write-protect mode), then a dump with the pre-dump as its parent that
stores only the pages written since; the restore takes the others from the parent chain.
A real process with 32 MiB of patterned memory (benchmarks/programs/dirty_memory.c), which
checks every page itself after the restore."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import cr_engine
from cr_engine import tracking
from cr_engine.images import ImageReader
from zdtm_py.build import build

from .engine_subjects import alive
from .helpers import TOP

sys.path.insert(0, os.path.join(TOP, "benchmarks"))
import bench_engine  # noqa: E402

MIB = 32
PAGES = MIB * 256
# pre-dumps track writes with a userfaultfd in async write-protect mode (6.7)
needs_tracking = pytest.mark.requires("uffd_wp_async")


def keeper_of(images):
    """The tracking entry of an image directory: its keeper, the fds it holds."""
    return ImageReader(images).json(tracking.IMAGE)


@pytest.fixture
def dirty(tmp_path, zdtm_subreaper):
    """A dirty_memory process: (pid, result file); killed at the end."""
    binary = str(build(os.path.join(TOP, "benchmarks", "programs", "dirty_memory.c")))
    pid, result = bench_engine.start(binary, [str(MIB)], str(tmp_path))
    yield pid, result
    for p in (pid,):
        try:
            os.kill(p, signal.SIGKILL)
            os.waitpid(p, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


@needs_tracking
def test_pre_dump_then_dump_stores_only_what_changed(dirty, tmp_path):
    pid, result = dirty
    pre1 = cr_engine.pre_dump(pid, tmp_path / "pre1")
    assert pre1.stats["counts"]["pages_written"] >= PAGES
    entry = keeper_of(tmp_path / "pre1")
    assert alive(entry["keeper"])                       # holds the userfaultfd meanwhile
    assert alive(pid) and not os.path.exists(os.path.join(tmp_path, "pre1", "core-%d.json"
                                                                    % pid))
    pre2 = cr_engine.pre_dump(pid, tmp_path / "pre2", parent=tmp_path / "pre1")
    assert pre2.stats["counts"]["pages_written"] < PAGES // 20
    assert pre2.stats["counts"]["pages_inherited"] >= PAGES
    assert not alive(entry["keeper"])                   # pre2 took its fds over
    dumped = cr_engine.dump(pid, tmp_path / "img", parent=tmp_path / "pre2")
    counts = dumped.stats["counts"]
    assert counts["pages_written"] < PAGES // 20 and counts["pages_inherited"] >= PAGES
    with open(tmp_path / "img" / "inventory.json") as f:
        assert json.load(f)["parent"] == "../pre2"
    bench_engine.reap(pid)
    restored = cr_engine.restore(tmp_path / "img")
    assert restored.stats["counts"]["pages_restored"] >= PAGES
    bench_engine.verify(restored.root_pid, result)      # every page checked by the program
    assert not alive(keeper_of(tmp_path / "pre2")["keeper"])


@needs_tracking
def test_pages_written_after_the_pre_dump_are_dumped_again(tmp_path, zdtm_subreaper):
    # a child that rewrites its buffer when told, after the pre-dump
    code = ("import mmap, signal, sys, time\n"
            "m = mmap.mmap(-1, 1 << 22); m.write(b'a' * (1 << 22))\n"
            "def flip(*_): m.seek(0); m.write(b'b' * (1 << 21))\n"
            "signal.signal(signal.SIGUSR1, flip)\n"
            "def check(*_): m.seek(0); data = m.read();"
            " sys.exit(0 if data == b'b' * (1 << 21) + b'a' * (1 << 21) else 3)\n"
            "signal.signal(signal.SIGTERM, check)\n"
            "print('ready', flush=True)\n"
            "while True: time.sleep(0.01)\n")
    ready = tmp_path / "ready"
    with open(ready, "w") as out:     # no pipe to us, no inherited capture file
        child = subprocess.Popen([sys.executable, "-c", code], stdout=out,
                                 stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)
    try:
        while ready.read_text() != "ready\n":
            time.sleep(0.01)
        cr_engine.pre_dump(child.pid, tmp_path / "pre")
        os.kill(child.pid, signal.SIGUSR1)
        time.sleep(0.3)
        dumped = cr_engine.dump(child.pid, tmp_path / "img", parent=tmp_path / "pre")
        assert dumped.stats["counts"]["pages_written"] >= 512     # the 2 MiB rewritten
        child.wait()
        restored = cr_engine.restore(tmp_path / "img")
        os.kill(restored.root_pid, signal.SIGTERM)
        _, status = os.waitpid(restored.root_pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    finally:
        child.kill()


@needs_tracking
def test_a_damaged_parent_fails_the_restore_and_leaves_nothing(dirty, tmp_path):
    pid, _ = dirty
    cr_engine.pre_dump(pid, tmp_path / "pre")
    dumped = cr_engine.dump(pid, tmp_path / "img", parent=tmp_path / "pre")
    bench_engine.reap(pid)
    with open(tmp_path / "pre" / f"pages-{pid}.img", "r+b") as f:
        f.seek(4096 * 100)
        f.write(b"\xff" * 16)
    with pytest.raises(cr_engine.ImageError, match=f"pages-{pid}.img"):
        cr_engine.restore(tmp_path / "img")
    assert not any(alive(p) for p in dumped.pids)


def test_a_parent_that_is_no_image_is_refused_at_dump(dirty, tmp_path):
    pid, _ = dirty
    (tmp_path / "empty").mkdir()
    with pytest.raises(cr_engine.ImageError, match="not an image directory"):
        cr_engine.dump(pid, tmp_path / "img", parent=tmp_path / "empty")
    assert alive(pid)


def test_split_agrees_with_a_page_by_page_reference():
    """tracking.split on random page sets against the obvious per-page answer."""
    import random
    rng = random.Random(4)
    page = 4096

    def runs_of(pages):
        out = []
        for p in sorted(pages):
            if out and out[-1][1] == p * page:
                out[-1] = (out[-1][0], (p + 1) * page)
            else:
                out.append((p * page, (p + 1) * page))
        return out

    for _ in range(300):
        present = set(rng.sample(range(200), rng.randint(0, 200)))
        written = set(rng.sample(range(200), rng.randint(0, 200)))
        in_parent = set(rng.sample(range(200), rng.randint(0, 200)))
        parent = [(s, e, "up", 7 * s) for s, e in runs_of(in_parent)]
        stored, inherited = tracking.split(runs_of(present), runs_of(written), parent)
        got_stored = {s // page + i for s, e in stored for i in range((e - s) // page)}
        got_inherited = {}
        for s, e, _, offset in inherited:
            for i in range((e - s) // page):
                got_inherited[s // page + i] = offset + i * page
        want_inherited = present & in_parent - written
        assert got_stored == present - want_inherited
        assert set(got_inherited) == want_inherited
        for p, offset in got_inherited.items():
            run = next(r for r in parent if r[0] <= p * page < r[1])
            assert offset == run[3] + p * page - run[0]


@needs_tracking
def test_a_pre_dump_copies_while_the_tree_runs(tmp_path, zdtm_subreaper):
    """A process that writes every page all the time (page_rounds.c checks, before each
    write, that the page holds the round before): the pre-dumps freeze it only to find the
    pages and arm the tracking, copy while it writes on, and what it wrote meanwhile comes
    back from the final dump, never an older copy."""
    binary = str(build(os.path.join(TOP, "benchmarks", "programs", "page_rounds.c")))
    pid, result = bench_engine.start(binary, ["64"], str(tmp_path))
    try:
        pre1 = cr_engine.pre_dump(pid, tmp_path / "pre1")
        assert pre1.stats["counts"]["pages_written"] >= 64 * 256 * 9 // 10
        assert "copy" in pre1.stats["times"]        # made after the thaw
        time.sleep(0.2)
        pre2 = cr_engine.pre_dump(pid, tmp_path / "pre2", parent=tmp_path / "pre1")
        assert pre2.stats["counts"]["pages_written"] > 0     # it wrote on since pre1
        time.sleep(0.2)
        cr_engine.dump(pid, tmp_path / "img", parent=tmp_path / "pre2")
        bench_engine.reap(pid)
        restored = cr_engine.restore(tmp_path / "img")
        time.sleep(0.3)                 # rounds over every page, each checked
        with open(result) as f:
            assert not f.read().startswith("BAD")     # a page came back from an old copy
        bench_engine.verify(restored.root_pid, result)
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
