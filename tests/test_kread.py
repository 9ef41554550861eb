"""kernel.kread: the BPF task_file/task iterator that reads fd tables and kernel memory, on
real processes, checked against what /proc says."""

import os
import subprocess
import sys

import pytest

from kernel import btf, kread

CHILD = """
import os, sys, threading, time
fds = [os.open("/dev/null", os.O_RDONLY), os.eventfd(3), os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)]
fds.append(os.dup(fds[1]))
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
print(" ".join(map(str, fds)), flush=True)
time.sleep(60)
"""


@pytest.fixture
def reader():
    try:
        r = kread.KernelReader()
    except kread.Unavailable as e:
        pytest.skip(f"no kernel reader here: {e.strerror}")
    with r:
        yield r


@pytest.fixture
def child(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "appended")],
                            stdout=subprocess.PIPE, text=True)
    fds = [int(x) for x in proc.stdout.readline().split()]
    yield proc.pid, fds
    proc.kill()
    proc.wait()


def test_files_are_the_fd_table(reader, child):
    pid, (null, event, appended, event_dup) = child
    files = reader.files(pid)
    assert sorted(files) == sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd"))
    assert files[event] == files[event_dup]            # one description, two fds
    assert files[null][0] != files[event][0]
    assert files[event][1]                              # its eventfd_ctx


def test_read_gives_kernel_memory_at_btf_offsets(reader, child):
    pid, (_, _, appended, _) = child
    types = btf.BTF.vmlinux()
    f_flags = types.field("file", "f_flags")
    file_addr, _ = reader.files(pid)[appended]
    blob = reader.read_one(file_addr, f_flags.offset + 4)
    assert f_flags.value(blob) & (os.O_WRONLY | os.O_APPEND) == os.O_WRONLY | os.O_APPEND
    big, unreadable = reader.read([(file_addr, 9000), (0, 16)])
    assert len(big) == 9000 and big[:len(blob)] == blob
    assert unreadable is None


def test_tasks_are_the_threads(reader, child):
    pid, _ = child
    tasks = reader.tasks(pid)
    assert sorted(tasks) == sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    assert len(set(tasks.values())) == len(tasks) == 2
    pid_field = btf.BTF.vmlinux().field("task_struct", "pid")
    for tid, task in tasks.items():
        assert pid_field.value(reader.read_one(task + pid_field.offset, 4), -pid_field.offset) \
            == tid


def test_nothing_of_another_process(reader):
    assert reader.files(2 ** 22 + 1) == {}              # beyond pid_max: nobody's
    assert reader.tasks(2 ** 22 + 1) == {}
