"""Process states the engine must carry as they are: a stopped (SIGSTOP) task stays stopped,
after a --leave-running dump and after a restore."""

import os
import signal
import time

import pytest

import cr_engine

from .engine_subjects import Subject


@pytest.fixture
def stopped(tmp_path, zdtm_subreaper):
    s = Subject("plain", str(tmp_path))
    os.kill(s.pid, signal.SIGSTOP)
    wait_state(s.pid, "T")
    yield s
    s.kill()


def state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rpartition(")")[2].split()[0]


def wait_state(pid, want, timeout=10):
    deadline = time.monotonic() + timeout
    while state(pid) != want:
        assert time.monotonic() < deadline, f"pid {pid} is {state(pid)}, not {want}"
        time.sleep(0.005)


def test_stopped_task_stays_stopped_after_leave_running_dump(stopped, tmp_path):
    cr_engine.dump(stopped.pid, tmp_path / "img", leave_running=True)
    time.sleep(0.05)
    assert state(stopped.pid) == "T"
    os.kill(stopped.pid, signal.SIGCONT)
    assert stopped.stop().startswith("alive ")


def test_stopped_task_is_restored_stopped(stopped, tmp_path):
    dumped = cr_engine.dump(stopped.pid, tmp_path / "img")
    stopped.kill()
    restored = cr_engine.restore(tmp_path / "img")
    assert restored.root_pid == dumped.root_pid
    wait_state(restored.root_pid, "T")
    os.kill(restored.root_pid, signal.SIGCONT)
    assert stopped.stop(restored.root_pid).startswith("alive ")
    os.waitpid(restored.root_pid, 0)
