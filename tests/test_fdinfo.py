"""kernel.fdinfo on fdinfo files captured from real fds on the 6.18 host."""

import os

import pytest

from kernel import fdinfo

DATA = os.path.join(os.path.dirname(__file__), "data", "fdinfo")


def captured(name):
    with open(os.path.join(DATA, name)) as f:
        return fdinfo.parse(f.read())


def test_epoll_targets_repeat_and_split():
    info = captured("epoll.txt")
    assert info["flags"] == "02000002" and info["mnt_id"] == "17"
    targets = fdinfo.entries(info, "tfd")
    assert [t["tfd"] for t in targets] == ["6", "3"]
    assert targets[0] == {"tfd": "6", "events": "8000001c", "data": "7fd800000006",
                          "pos": "0", "ino": "1bc11", "sdev": "f"}


def test_inotify_marks():
    marks = fdinfo.entries(captured("inotify.txt"), "inotify")
    assert [m["wd"] for m in marks] == ["2", "1"]
    assert marks[1]["mask"] == "300" and marks[1]["f_handle"] == "e8f7030000000000"


def test_eventfd_counter_keeps_its_value():
    info = captured("eventfd.txt")
    assert info["eventfd-count"] == "5" and info["eventfd-semaphore"] == "1"


def test_posix_lock_line():
    (lock,) = fdinfo.values(captured("posix_lock.txt"), "lock")
    assert lock.split()[1:4] == ["POSIX", "ADVISORY", "WRITE"]


def test_io_uring_registered_files_and_buffers_are_continuations():
    info = captured("io_uring.txt")
    assert info["SqMask"] == "0x7" and info["SqThread"] == "-1"
    assert info["UserFiles"].splitlines() == ["2", "0: pipe:[113716]", "1: pipe:[113716]"]
    assert info["UserBufs"].splitlines() == ["1", "0: 0x35b6ef80/4096"]
    assert info["PollList"] == "" and info["NAPI"] == "disabled"


def test_absent_key_has_no_values():
    assert fdinfo.values(captured("eventfd.txt"), "tfd") == []


@pytest.mark.parametrize("name", sorted(os.listdir(DATA)))
def test_every_capture_has_the_common_header(name):
    info = captured(name)
    assert {"pos", "flags", "mnt_id", "ino"} <= set(info)


def test_read_live_fd_matches_parse():
    r, w = os.pipe()
    try:
        info = fdinfo.read(r)
        assert info["pos"] == "0" and int(info["flags"], 8) & os.O_ACCMODE == os.O_RDONLY
    finally:
        os.close(r)
        os.close(w)
