"""`show` decodes every fd kind the engine carries, as JSON and as text."""

import os

import pytest

import cr_engine
from cr_engine.show import render


def _fdinfo_shows_semaphore():
    fd = os.eventfd(0, os.EFD_SEMAPHORE | os.EFD_CLOEXEC)
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            return any(line.split() == ["eventfd-semaphore:", "1"] for line in f)
    finally:
        os.close(fd)


def test_show_decodes_fd_kinds(subject, tmp_path):
    s = subject("fds")
    images = str(tmp_path / "img")
    cr_engine.dump(s.pid, images, leave_running=True)
    decoded = cr_engine.show(images)
    by_kind = {}
    for desc in decoded["files"].values():
        by_kind.setdefault(desc["type"], []).append(desc)
    # EFD_SEMAPHORE: from fdinfo, where the kernel shows it (not 5.10, 6.1; support table)
    assert by_kind["eventfd"][0]["count"] == 5
    assert by_kind["eventfd"][0]["semaphore"] == _fdinfo_shows_semaphore()
    timer = by_kind["timerfd"][0]
    assert timer["interval"] == 2_000_000_000 and 0 < timer["remaining"] <= 50_000_000_000
    assert by_kind["signalfd"][0]["sigmask"] == 1 << (10 - 1)             # SIGUSR1
    watch = by_kind["inotify"][0]["watches"][0]
    assert watch["path"] == str(tmp_path) and watch["mask"] & 0x100
    memfd = by_kind["memfd"][0]
    assert (memfd["name"], memfd["size"], memfd["seals"]) == ("subject", 10, 0x4)
    unlinked = by_kind["unlinked"][0]
    assert unlinked["path"] == os.path.join(str(tmp_path), "gone") and unlinked["size"] == 13
    locked = [d for d in by_kind["reg"] if d["path"].endswith("/locked")][0]
    assert locked["locks"] == [{"kind": "flock", "type": "WRITE", "start": 0, "end": None}]
    ring = by_kind["io_uring"][0]["setup"]
    assert (ring["sq_entries"], ring["cq_entries"]) == (4, 16)

    text = "\n".join(render(decoded))
    for line in ("eventfd count 5", "signalfd mask 0x200", "memfd:subject size 10",
                 f"{tmp_path}/gone (unlinked) size 13", "timerfd clock 1 left",
                 "io_uring ring sq 4 cq 16 CQSIZE at sq 0 cq 0"):
        assert line in text, line
    assert s.stop().startswith("alive")                # --leave-running: it runs on


def test_show_tells_each_threads_seccomp_filters(subject, tmp_path):
    s = subject("seccomp")
    images = str(tmp_path / "img")
    cr_engine.dump(s.pid, images, leave_running=True)
    text = "\n".join(render(cr_engine.show(images)))
    assert f"seccomp: {s.pid} filters #0,#1; " in text
    assert "seccomp filters: #0 4 insns log, #1 4 insns, #2 4 insns" in text
    assert s.stop().startswith("alive")                # its filters survived the engine's calls


def test_show_decodes_tcp_sockets(subject, tmp_path):
    s = subject("tcp_pair")
    with open(s.result + ".port") as f:
        port = int(f.read().split()[0])
    images = str(tmp_path / "img")
    cr_engine.dump(s.pid, images, leave_running=True)
    decoded = cr_engine.show(images)
    tcp = [d for d in decoded["files"].values() if d["type"] == "inet"]
    assert sorted(d["state"] for d in tcp) == [1, 1, 10]      # two ends and the listener
    accepted = [d for d in tcp if d["state"] == 1 and d["name"][1] == port][0]
    assert accepted["tcp"]["recv_size"] == 4 and accepted["tcp"]["send_size"] == 0
    text = "\n".join(render(decoded))
    assert f"tcp 127.0.0.1:{port} listen (backlog" in text
    assert f"tcp 127.0.0.1:{port} -> 127.0.0.1:" in text
    assert "established recv queue 4 send queue 0 (0 unsent)" in text
    assert s.stop().startswith("alive")


@pytest.mark.requires("pagemap_scan_guard_pages")
def test_show_counts_guard_pages(subject, tmp_path):
    s = subject("guard_pages")
    at = int((tmp_path / "result.at").read_text())
    images = str(tmp_path / "img")
    cr_engine.dump(s.pid, images, leave_running=True)
    decoded = cr_engine.show(images)
    mm = next(p["mm"] for p in decoded["processes"] if p["pid"] == s.pid)
    assert mm["guards"] == [[at + 2 * 4096, 1], [at + 5 * 4096, 1]]
    vma = next(v for v in mm["vmas"] if v["start"] <= at < v["end"])
    line = next(line for line in render(decoded) if line.strip().startswith(f"{vma['start']:012x}-"))
    assert line.endswith("(2 guard pages)")
    assert s.stop().startswith("alive")
