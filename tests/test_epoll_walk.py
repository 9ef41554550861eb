"""cr_engine.epoll: an epoll's items read by walking its red-black tree in kernel memory
(targets known by their struct file addresses) give the same images as fdinfo's tfd lines
with a kcmp(KCMP_EPOLL_TFD) search per item, on a real stopped tree: targets of several
kinds, one file under two numbers, a target closed after registration (open at another
number, or only in a child), EPOLLEXCLUSIVE, edge-triggered and fired one-shot items, nested
epolls, and a target in flight in a unix socket (that epoll falls back to kcmp).  Small
epolls are walked here by lowering epoll.WALK_FROM; testcases/epoll's epoll_many (1,000
items) is walked as it is."""

import json
import os
import select
import signal
import socket

import pytest

import cr_engine
from cr_engine import epoll
from kernel import fds as kfds
from tests.test_fd_collector import REASON, _kill, _stopped_child

needs_bpf = pytest.mark.skipif(REASON is not None, reason=f"no task_file collector: {REASON}")
IN, ET, ONESHOT, EXCLUSIVE = select.EPOLLIN, kfds.EPOLLET, kfds.EPOLLONESHOT, kfds.EPOLLEXCLUSIVE


def _epolls(numbers_file):
    """The epolls; their fd numbers written to ``numbers_file`` (a child holding a target
    pauses)."""
    def add(epfd, fd, events, data):
        kfds.epoll_ctl(epfd, kfds.EPOLL_CTL_ADD, fd, events, data)

    outer, inner, flying = (kfds.epoll_create1(0) for _ in range(3))
    keep = []
    ready, quiet = os.eventfd(1), os.eventfd(0)
    r, w = os.pipe()
    a, b = (s.detach() for s in socket.socketpair())    # ints: kept open
    timer, sig, notify = kfds.timerfd_create(), kfds.signalfd({signal.SIGUSR2}), \
        kfds.inotify_init1()
    kfds.inotify_add_watch(notify, "/tmp")
    add(outer, ready, IN | ET, 1)                   # edge-triggered, reported (off the list)
    add(outer, quiet, IN | EXCLUSIVE, 0xFFFF_FFFF_FFFF_FFFF)
    dup = os.dup(quiet)
    add(outer, dup, IN, 3)                          # one file under two numbers
    add(outer, a, IN | select.EPOLLOUT, 4)
    add(outer, timer, IN, 5)
    add(outer, sig, IN, 6)
    add(outer, notify, IN, 7)
    shot = os.eventfd(1)
    add(outer, shot, IN | ONESHOT, 8)
    kfds.epoll_wait(outer, 16)                      # fires the one-shot, reports the ET
    add(outer, os.eventfd(1), IN | ET, 14)          # edge-triggered, on the ready list
    add(inner, r, IN, 9)
    add(outer, inner, IN, 10)                       # nested
    moved = os.eventfd(1)
    add(outer, moved, IN, 11)
    keep.append(os.dup(moved))
    os.close(moved)                                 # closed after registration
    child_r, child_w = os.pipe()
    add(outer, child_r, IN, 12)
    if os.fork() == 0:                              # the only holder of child_r
        while True:
            signal.pause()
    os.close(child_r)
    gone = os.eventfd(1)
    add(flying, gone, IN, 13)
    c, d = socket.socketpair()
    socket.send_fds(c, [b"x"], [gone])              # in flight only
    c, d = c.detach(), d.detach()
    os.close(gone)
    keep += [a, b, c, d, w, child_w]
    with open(numbers_file, "w") as f:
        json.dump({"outer": outer, "inner": inner, "flying": flying}, f)
    return keep


@needs_bpf
def test_the_walk_gives_fdinfo_and_kcmp_images(tmp_path, monkeypatch):
    pid = _stopped_child(_epolls, str(tmp_path / "numbers.json"))
    try:
        numbers = json.loads((tmp_path / "numbers.json").read_text())
        searched = []
        real_kcmp = epoll.kcmp_epoll_tfd

        def counted(pid1, pid2, fd1, epfd, tfd, toff):
            searched.append(epfd)
            return real_kcmp(pid1, pid2, fd1, epfd, tfd, toff)
        monkeypatch.setattr(epoll, "kcmp_epoll_tfd", counted)
        images = {}
        # small: these epolls are below WALK_FROM; bpf: walked; no-btf: a field missing
        for mode in ("proc", "small", "bpf", "no-btf"):
            if mode == "proc":
                monkeypatch.setenv("CR_ENGINE_COLLECT", "proc")
            else:           # the default: each collector's iterator where the kernel has it
                monkeypatch.delenv("CR_ENGINE_COLLECT", raising=False)
            if mode == "bpf":
                monkeypatch.setattr(epoll, "WALK_FROM", 0)
            if mode == "no-btf":
                monkeypatch.setattr(epoll, "_TreeWalker", _missing_field)
            searched.clear()
            images[mode] = tmp_path / mode
            stats = cr_engine.dump(pid, str(images[mode]), leave_running=True).stats
            assert stats["ways"]["fds"] == ("proc" if mode == "proc" else "bpf")
            if mode == "bpf":       # kcmp only for the epoll whose target is in flight
                assert set(searched) == {numbers["flying"]}
            else:
                assert set(searched) == set(numbers.values())
        tables = {mode: json.loads((images[mode] / "files.json").read_text())
                  for mode in images}
        cores = {mode: json.loads((images[mode] / f"core-{pid}.json").read_text())
                 for mode in images}
        assert all(tables[mode] == tables["proc"] for mode in images)
        assert all(cores[mode]["fds"] == cores["proc"]["fds"] for mode in images)
        files = tables["bpf"]["files"]
        at = {e["fd"]: files[e["file"]] for e in cores["bpf"]["fds"]}
        outer = at[numbers["outer"]]["items"]
        assert len(outer) == 12 and len(at[numbers["inner"]]["items"]) == 1
        assert {files[i["target"]]["type"] for i in outer} >= {
            "eventfd", "unix", "timerfd", "signalfd", "inotify", "epoll", "pipe"}
        assert [i["data"] for i in outer if i.get("ready")] == [14]
        assert any(i["events"] & EXCLUSIVE for i in outer)
    finally:
        _kill(pid)


def _missing_field():
    raise KeyError("struct epitem")


def test_an_unreadable_kernel_falls_back(monkeypatch):
    """No walker (no BTF field, no reader): the dump's EpollDump says so once and reads
    fdinfo."""
    monkeypatch.setattr(epoll, "_TreeWalker", _missing_field)
    dump = epoll.EpollDump()
    assert dump.walker() is None and dump.walker() is None
    assert "epitem" in dump.no_walker
