"""probes.sandbox.in_child: results, errnos and crashes cross the fork intact."""

import errno
import os
import time

import pytest

from probes.sandbox import ChildFailed, in_child


def test_returns_the_childs_result():
    assert in_child(lambda: {"pid": os.getpid()})["pid"] != os.getpid()


def test_reraises_the_childs_errno():
    def fail():
        os.close(-1)
    with pytest.raises(OSError) as e:
        in_child(fail)
    assert e.value.errno == errno.EBADF


def test_reports_a_crash():
    with pytest.raises(ChildFailed, match="ZeroDivisionError"):
        in_child(lambda: 1 // 0)


def test_kills_a_hung_child():
    start = time.monotonic()
    with pytest.raises(ChildFailed, match="timed out"):
        in_child(time.sleep, 30, timeout=0.2)
    assert time.monotonic() - start < 2


def test_unshare_stays_in_the_child():
    from kernel.namespaces import CLONE_NEWUTS
    before = os.readlink("/proc/self/ns/uts")
    inside = in_child(lambda: os.readlink("/proc/self/ns/uts"), unshare_flags=CLONE_NEWUTS)
    assert inside != before
    assert os.readlink("/proc/self/ns/uts") == before
