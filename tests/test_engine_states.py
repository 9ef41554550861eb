"""Process states the engine must carry as they are: a stopped (SIGSTOP) task stays stopped,
after a --leave-running dump and after a restore; seccomp filter chains come back exactly;
namespaces of the tree's own (pid, uts, net, user) and a private root come back."""

import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

import cr_engine
from zdtm_py import state as zdtm_state
from cr_engine import proc, seccomp
from cr_engine.mnt_model import has_set_group
from cr_engine.regs import get_regs
from cr_engine.remote import wait_stop
from cr_engine.restore import _glibc_rseq
from cr_engine.show import render
from zdtm_py.build import build
from kernel import ptrace
from kernel.namespaces import ns_get_userns, related_ino
from kernel.procfs import mountinfo
from kernel.process import SECCOMP_FILTER_FLAG_LOG, pidfd_getfd, pidfd_open

from .engine_subjects import Subject, status
from .helpers import TOP


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


def test_a_signal_met_first_by_the_restored_task_ends_the_pause_it_was_dumped_in(tmp_path,
                                                                             zdtm_subreaper):
    # SIGTERM queued while the restored task is still stopped is the first thing it meets:
    # pause() must return EINTR, as for a task nobody stopped, and not be entered again
    # after the handler (the task would sleep through the signal it waits for)
    s = Subject("pause", str(tmp_path))
    try:
        os.kill(s.pid, signal.SIGSTOP)
        wait_state(s.pid, "T")
        cr_engine.dump(s.pid, tmp_path / "img")
        s.kill()
        root = cr_engine.restore(tmp_path / "img").root_pid
        wait_state(root, "T")
        os.remove(s.result)
        os.kill(root, signal.SIGTERM)
        os.kill(root, signal.SIGCONT)
        assert s.wait_result("alive", timeout=10) == "alive 1"
        os.waitpid(root, 0)
    finally:
        s.kill()


def syscall_of(pid):
    """The first word of /proc/PID/syscall: the call a blocked task sleeps in, or 'running'."""
    try:
        with open(f"/proc/{pid}/syscall") as f:
            return f.read().split()[0]
    except OSError:
        return "gone"


def wait_text(path, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                text = f.read()
            if text:
                return text.strip()
        except FileNotFoundError:
            pass
        time.sleep(0.005)
    return None


def start_pause_tree(tmp_path):
    """pause_tree.c with 100 processes, ready: (its Popen, its result file)."""
    binary = str(build(os.path.join(TOP, "tests", "programs", "pause_tree.c")))
    result = str(tmp_path / "result")
    tree = subprocess.Popen([binary, "100", result], cwd=tmp_path, start_new_session=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        assert wait_text(result, 10).startswith("ready")
    except BaseException:
        tree.kill()
        tree.wait()
        raise
    return tree, result


def test_a_tree_dumped_in_pause_is_back_in_it_when_the_restore_returns(tmp_path,
                                                                       zdtm_subreaper):
    # A task let go from a restarted pause() is, for signals, before the call until it is
    # in it again: a SIGTERM then runs the handler first and pause() sleeps through it
    # (benchmarks' proc_tree lost children that way, the root's SIGTERM to them coming while
    # they were on their way back).  The restore returns once each one is asleep in its
    # pause() again, the last released first; a SIGTERM to the root right away then ends
    # every pause() in the tree.
    first, result = start_pause_tree(tmp_path)
    try:
        cr_engine.dump(first.pid, tmp_path / "img")
    finally:
        first.kill()
        first.wait()
    for _ in range(3):
        restored = cr_engine.restore(tmp_path / "img")
        not_back = [p for p in reversed(restored.pids) if syscall_of(p) != "34"]  # pause
        os.remove(result)
        os.kill(restored.root_pid, signal.SIGTERM)
        text = wait_text(result, 30)
        if text != "OK":
            os.killpg(restored.root_pid, signal.SIGKILL)
        os.waitpid(restored.root_pid, 0)
        assert (not_back, text) == ([], "OK")
        assert restored.stats["counts"]["sleepers_not_back"] == 0


@pytest.mark.parametrize("how", ["dump", pytest.param(
    "pre-dump", marks=pytest.mark.requires("uffd_wp_async"))])
def test_a_tree_left_running_gets_back_into_its_calls_before_the_dump_returns(how, tmp_path):
    # The same at the thaw of --leave-running dumps and pre-dumps (freezer.thaw): each
    # returns once every pause() of the tree is entered again, and the root's SIGTERM
    # right away then ends them all.
    tree, result = start_pause_tree(tmp_path)
    try:
        for i in range(3):
            images = tmp_path / f"img{i}"
            dumped = (cr_engine.pre_dump(tree.pid, images, parent=tmp_path / f"img{i - 1}"
                                         if i else None) if how == "pre-dump" else
                      cr_engine.dump(tree.pid, images, leave_running=True))
            pids = [tree.pid] + sorted(proc.children(tree.pid))
            assert (len(pids), [p for p in pids if syscall_of(p) != "34"]) == (100, [])
            assert dumped.stats["counts"]["sleepers_not_back"] == 0
        os.remove(result)
        os.kill(tree.pid, signal.SIGTERM)
        assert wait_text(result, 30) == "OK"
    finally:
        os.killpg(tree.pid, signal.SIGKILL)
        tree.wait()


@pytest.mark.requires("prctl_mdwe")
def test_memory_deny_write_execute_is_carried_and_respected(subject, tmp_path):
    # Under PR_SET_MDWE no mapping may become executable: the dump's batch code page is
    # mapped executable at once (a write-to-exec mprotect failed the dump with EACCES),
    # and the restore sets MDWE again last.
    s = subject("mdwe_memory")
    dumped = cr_engine.dump(s.pid, tmp_path / "img", leave_running=True)
    assert dumped.stats["counts"]["pages_written"] >= 32 * 256
    core = json.loads((tmp_path / "img" / f"core-{s.pid}.json").read_text())
    assert core["context"]["mdwe"] == 1
    assert s.stop().split()[2:] == ["mdwe", "1", "kept", "True"]
    s.popen.wait()                      # its pid free for the restore
    restored = cr_engine.restore(tmp_path / "img")
    assert s.stop(restored.root_pid).split()[2:] == ["mdwe", "1", "kept", "True"]


def seccomp_chains(pid):
    """tid -> the thread's seccomp filters (flags and code, oldest first), read with ptrace."""
    out = {}
    for tid in map(int, os.listdir(f"/proc/{pid}/task")):
        ptrace.seize(tid)
        ptrace.interrupt(tid)
        wait_stop(tid)
        try:
            out[tid] = seccomp._read_chain(tid)
        finally:
            ptrace.detach(tid)
    return out


def test_seccomp_filters_are_restored_per_thread_in_order_with_flags(subject, tmp_path):
    s = subject("seccomp")          # its first filter kills it on prctl(), which we inject
    before = seccomp_chains(s.pid)
    assert sorted(len(chain) for chain in before.values()) == [2, 3]
    cr_engine.dump(s.pid, tmp_path / "img")
    s.kill()
    core = json.loads((tmp_path / "img" / f"core-{s.pid}.json").read_text())
    assert len(core["seccomp_filters"]) == 3          # the inherited two are stored once
    restored = cr_engine.restore(tmp_path / "img")
    assert seccomp_chains(restored.root_pid) == before
    assert before[s.pid][0]["flags"] == SECCOMP_FILTER_FLAG_LOG
    for tid in before:
        st = status(f"{restored.root_pid}/task/{tid}")
        assert (st["Seccomp"], st["NoNewPrivs"]) == ("2", "0")
    assert s.stop(restored.root_pid).startswith("alive ")
    os.waitpid(restored.root_pid, 0)


def nspid(pid):
    with open(f"/proc/{pid}/status") as f:
        return [int(x) for line in f if line.startswith("NSpid:") for x in line.split()[1:]]


def test_a_pid_namespace_whose_init_is_the_root(subject, tmp_path):
    s = subject("pidns")
    with open(f"/proc/{s.pid}/task/{s.pid}/children") as f:
        child = int(f.read().split()[0])
    assert nspid(s.pid) == [s.pid, 1] and nspid(child) == [child, 2]
    dumped = cr_engine.dump(s.pid, tmp_path / "img")
    assert sorted(dumped.pids) == sorted([s.pid, child])
    restored = cr_engine.restore(tmp_path / "img")
    assert restored.root_pid == s.pid
    assert nspid(s.pid) == [s.pid, 1] and nspid(child) == [child, 2]     # both levels
    assert os.readlink(f"/proc/{s.pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
    assert os.readlink(f"/proc/{child}/ns/pid") == os.readlink(f"/proc/{s.pid}/ns/pid")
    assert s.stop(s.pid).startswith("alive ")
    os.waitpid(s.pid, 0)


@pytest.mark.parametrize("way", ["fork", "relaunch"])
@pytest.mark.parametrize("kind", ["pidns", "fds"])
def test_stubs_forked_or_relaunched_restore_the_same_tree(subject, tmp_path, monkeypatch,
                                                          kind, way):
    """The root stub a fork of the restorer, or relaunched as a fresh interpreter (what a
    big tree gets): the same pids at every level, the same fds."""
    monkeypatch.setenv("CR_ENGINE_STUBS", way)
    s = subject(kind)
    with open(f"/proc/{s.pid}/task/{s.pid}/children") as f:
        levels = {pid: nspid(pid) for pid in [s.pid, *map(int, f.read().split())]}
    dumped = cr_engine.dump(s.pid, tmp_path / "img")
    assert sorted(dumped.pids) == sorted(levels)
    restored = cr_engine.restore(tmp_path / "img")
    # the fds subject's io_uring ring: where vm.mmap_min_addr is above a page the stubs
    # inherit a reservation below it, which an exec would drop (restore._relaunch)
    with open("/proc/sys/vm/mmap_min_addr") as f:
        low = kind == "fds" and int(f.read()) > os.sysconf("SC_PAGE_SIZE")
    assert restored.stats["ways"]["stubs"] == ("fork" if low else way)
    assert {pid: nspid(pid) for pid in restored.pids} == levels
    assert s.stop(restored.root_pid).startswith("alive ")
    os.waitpid(restored.root_pid, 0)


def test_a_uts_namespace_of_its_own(subject, tmp_path):
    s = subject("utsns")
    cr_engine.dump(s.pid, tmp_path / "img")
    text = "\n".join(render(cr_engine.show(tmp_path / "img")))
    assert "uts namespace: hostname 'cr-subject-host'" in text
    restored = cr_engine.restore(tmp_path / "img")
    # (a namespace's inode number may be reused by the new one: only ours is excluded)
    assert os.readlink(f"/proc/{restored.root_pid}/ns/uts") != os.readlink("/proc/self/ns/uts")
    got = subprocess.run(["nsenter", "-t", str(restored.root_pid), "-u", "hostname"],
                         capture_output=True, text=True)
    assert got.stdout.strip() == "cr-subject-host"
    assert s.stop(restored.root_pid).startswith("alive ")
    os.waitpid(restored.root_pid, 0)


def test_a_network_namespace_of_its_own(subject, tmp_path):
    """lo up with an extra address, a TCP connection over it with queued data and an
    abstract unix socket, all in the tree's own network namespace."""
    s = subject("netns")
    with open(s.result + ".port") as f:
        port, client_fd, accepted_fd = (int(x) for x in f.read().split())
    cr_engine.dump(s.pid, tmp_path / "img")
    text = "\n".join(render(cr_engine.show(tmp_path / "img")))
    assert "net namespace: lo up" in text and "127.0.0.5/8" in text
    restored = cr_engine.restore(tmp_path / "img")
    root = restored.root_pid
    assert os.readlink(f"/proc/{root}/ns/net") != os.readlink("/proc/self/ns/net")
    got = subprocess.run(["nsenter", "-t", str(root), "-n", "ip", "-o", "addr", "show", "lo"],
                         capture_output=True, text=True, check=True).stdout
    assert "127.0.0.5/8" in got and "127.0.0.1/8" in got
    ss = subprocess.run(["nsenter", "-t", str(root), "-n", "ss", "-tnxl"],
                        capture_output=True, text=True, check=True).stdout
    assert f"127.0.0.5:{port}" in ss and "@cr-subject-netns" in ss
    fd = pidfd_open(root)
    try:
        accepted = socket.socket(fileno=pidfd_getfd(fd, accepted_fd))
    finally:
        os.close(fd)
    accepted.settimeout(5)
    assert accepted.recv(64) == b"in the namespace"
    accepted.close()
    assert s.stop(root).startswith("alive ")
    os.waitpid(root, 0)


def status_ids(pid, key):
    with open(f"/proc/{pid}/status") as f:
        return next(line.split()[1:] for line in f if line.startswith(key + ":"))


def ns_inode(pid, kind, ioctl=None):
    path = f"/proc/{pid}/ns/{kind}"
    return os.stat(path).st_ino if ioctl is None else related_ino(path, ioctl)


def test_a_user_namespace_of_its_own(subject, tmp_path):
    """The root is the init of a pid namespace of a user namespace of its own (root mapped
    to root, the rest shifted by 100000), with a thread, and a child running as uid 1000 of
    the namespace: the maps, the owner of the pid namespace, the ids as the namespace sees
    them and the tree's own pids come back; ours are new."""
    s = subject("userns")
    with open(f"/proc/{s.pid}/task/{s.pid}/children") as f:
        child = int(f.read().split()[0])
    assert status_ids(child, "Uid") == ["101000"] * 4
    cr_engine.dump(s.pid, tmp_path / "img")
    text = "\n".join(render(cr_engine.show(tmp_path / "img")))
    assert "user namespace: uid 0->0 x1, 1->100001 x65535" in text
    restored = cr_engine.restore(tmp_path / "img")
    root = restored.root_pid
    with open(f"/proc/{root}/task/{root}/children") as f:
        child = int(f.read().split()[0])
    assert nspid(root)[1:] == [1] and nspid(child)[1:] == [2]
    assert len(os.listdir(f"/proc/{root}/task")) == 2           # the thread too
    assert ns_inode(root, "user") != ns_inode("self", "user")
    assert ns_inode(root, "pid", ns_get_userns) == ns_inode(root, "user")
    with open(f"/proc/{root}/uid_map") as f:
        assert [line.split() for line in f] == [["0", "0", "1"], ["1", "100001", "65535"]]
    assert status_ids(child, "Uid") == ["101000"] * 4 and status_ids(child, "Gid")[0] == "101000"
    assert status_ids(root, "Uid") == ["0"] * 4
    got = subprocess.run(["nsenter", "-t", str(child), "-U", "-p", "--preserve-credentials",
                          "cat", f"/proc/{child}/status"], capture_output=True, text=True)
    assert "Uid:\t1000\t1000\t1000\t1000" in got.stdout
    assert s.stop(root).startswith("alive ")
    os.waitpid(root, 0)


def mount_lines(pid):
    """mountinfo of ``pid`` without ids and peer groups."""
    return sorted((m["root"], m["mount_point"], m["options"], m["fstype"], m["source"],
                   m["super_options"]) for m in mountinfo(f"/proc/{pid}/mountinfo"))


def test_a_private_root(subject, tmp_path):
    """A tree pivoted into a tmpfs of its own holding a file (mode and owner), a link, a
    read-only bind of /usr, a proc and a bind of /dev/null on a file: all of it again,
    built in a new mount namespace; the cwd in it kept."""
    s = subject("private_root")
    before = mount_lines(s.pid)
    cr_engine.dump(s.pid, tmp_path / "img")
    text = "\n".join(render(cr_engine.show(tmp_path / "img")))
    for line in (r"m0 +/: tmpfs tmpfs; nosuid", r"/usr \[/usr\]: bind of /usr; ro,",
                 r"/null \[/null\]: bind of /dev/null;", r"/proc: proc proc;"):
        assert re.search(line, text), (line, text)
    restored = cr_engine.restore(tmp_path / "img")
    root = restored.root_pid
    assert mount_lines(root) == before
    st = os.lstat(f"/proc/{root}/root/data/hello.txt")
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o640, 1234, 5678)
    with open(f"/proc/{root}/root/hello") as f:
        assert f.read() == "kept in the tree's own tmpfs\n"
    assert os.readlink(f"/proc/{root}/cwd") == "/data"
    assert os.listdir(tmp_path / "img")             # where the root was built: as it was
    assert s.stop(root).startswith("alive ")
    os.waitpid(root, 0)


@pytest.mark.requires("move_mount_set_group")
def test_a_private_root_that_propagates(subject, tmp_path):
    """The same with a shared mount in it: peer groups come back (named canonically)."""
    s = subject("private_root_shared")
    with open(f"/proc/{s.pid}/mountinfo") as f:
        before = zdtm_state.mount_lines(f.read().splitlines())
    assert any(" shared:" in line for line in before)
    cr_engine.dump(s.pid, tmp_path / "img")
    restored = cr_engine.restore(tmp_path / "img")
    with open(f"/proc/{restored.root_pid}/mountinfo") as f:
        assert zdtm_state.mount_lines(f.read().splitlines()) == before
    assert s.stop(restored.root_pid).startswith("alive ")
    os.waitpid(restored.root_pid, 0)


def test_without_set_group_a_shared_root_is_refused_at_dump(subject, tmp_path, monkeypatch):
    """Without MOVE_MOUNT_SET_GROUP (forced here) groups are made by cloning their members
    as they are made: a shared mount with mounts below it cannot be, and the dump says so,
    naming it, and leaves the tree running."""
    monkeypatch.setenv("CR_ENGINE_MOUNT_SET_GROUP", "0")
    s = subject("private_root_shared")
    before = mount_lines(s.pid)
    with pytest.raises(cr_engine.CRError, match=r"without MOVE_MOUNT_SET_GROUP \(5\.15\): "
                       r"the root / of mount namespace 0 \(pid \d+\) is in a shared peer"):
        cr_engine.dump(s.pid, tmp_path / "img")
    assert mount_lines(s.pid) == before
    assert s.stop(s.pid).startswith("alive ")


def test_a_declared_external_that_sends_with_mounts_on_it_is_refused(subject, tmp_path):
    """A shared mount declared external is bound again from the restore's path with that
    path's peer group: a mount of the tree below it would be sent to the outside's peers
    as the restore makes it, so the dump refuses, naming it, and the tree runs on."""
    s = subject("private_root_shared")
    with pytest.raises(cr_engine.CRError, match=r"unsupported: /\w+ in mount namespace 0 "
                       r"\(pid \d+\) is mounted on it .*, and / is declared external"):
        cr_engine.dump(s.pid, tmp_path / "img", external=["mnt[/]:root"])
    assert s.stop(s.pid).startswith("alive ")


@pytest.mark.skipif(not has_set_group(), reason="probe move_mount_set_group: not present")
def test_without_set_group_images_that_need_it_are_refused_at_restore(subject, tmp_path,
                                                                      monkeypatch):
    """Images dumped where MOVE_MOUNT_SET_GROUP is, restored where it is not (forced): the
    restore fails before anything is made, the images stay whole."""
    s = subject("private_root_shared")
    cr_engine.dump(s.pid, tmp_path / "img")
    names = sorted(os.listdir(tmp_path / "img"))
    monkeypatch.setenv("CR_ENGINE_MOUNT_SET_GROUP", "0")
    with pytest.raises(cr_engine.CRError, match=r"no MOVE_MOUNT_SET_GROUP \(5\.15\), which "
                       r"the mounts need: the root / of mount namespace 0 \(pid \d+\) is"):
        cr_engine.restore(tmp_path / "img")
    assert sorted(os.listdir(tmp_path / "img")) == names
    monkeypatch.delenv("CR_ENGINE_MOUNT_SET_GROUP")
    restored = cr_engine.restore(tmp_path / "img")
    assert s.stop(restored.root_pid).startswith("alive ")
    os.waitpid(restored.root_pid, 0)


def test_a_pty_that_is_a_sessions_controlling_terminal(subject, tmp_path):
    """A session leader whose controlling terminal is a pty of the tree, a child's group
    in its foreground: the same terminal (its index), the same foreground group, for both,
    after the restore."""
    s = subject("pty_ctty")
    child = int((tmp_path / "result.fg").read_text())

    def terminal(pid):
        stat = proc.stat(pid)
        return stat["tty_nr"], stat["tpgid"], stat["session"]
    before = {"leader": terminal(s.pid), "child": terminal(child)}
    tty_nr, foreground, _ = before["leader"]
    assert tty_nr and foreground == child
    cr_engine.dump(s.pid, tmp_path / "img")
    restored = cr_engine.restore(tmp_path / "img")
    assert {"leader": terminal(restored.root_pid), "child": terminal(child)} == before
    assert s.stop(restored.root_pid).startswith("alive ")
    os.waitpid(restored.root_pid, 0)


@pytest.mark.requires("get_rseq_conf")
def test_the_rseq_area_found_without_ptrace_is_the_one_ptrace_reports():
    """Before 5.13 ptrace cannot tell a task's rseq area: the restorer computes the stub's
    from glibc's __rseq_offset and its thread pointer (it must unregister it before
    unmapping it).  Here both ways must agree, on a fork of ours as a stub is."""
    child = os.fork()
    if child == 0:
        time.sleep(60)
        os._exit(0)
    try:
        ptrace.seize(child, 0)
        ptrace.interrupt(child)
        wait_stop(child)
        _, conf = ptrace.get_rseq_configuration(child)
        found = _glibc_rseq(get_regs(child).fs_base)
        assert found is not None and conf.rseq_abi_pointer
        assert (found[0], found[2]) == (conf.rseq_abi_pointer, conf.signature)
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
