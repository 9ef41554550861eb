"""cr_engine.collect.FdCollector: the BPF task_file way gives exactly what /proc gives per fd
(the link of /proc/PID/fd/N, fdinfo's flags with O_CLOEXEC, pos and mnt_id, stat's dev,
ino, rdev, mode and size) and the same grouping of fds into descriptions as kcmp, on real
stopped processes: every kind of fd the engine meets, a tree sharing descriptions by dup
and fork, a chrooted process in a mount namespace of its own, an overlayfs file."""

import fcntl
import json
import os
import resource
import select
import signal
import socket
import struct
import time

import pytest

import cr_engine
from cr_engine import collect, files
from kernel import bpf, fd_iter, fdinfo
from kernel import fds as kfds
from kernel.process import KCMP_FILE, kcmp

from .helpers import kill_child, stopped_child


def _reason():
    try:
        collect.FdCollector("bpf", strict=True).close()
    except OSError as e:
        return e.strerror or str(e)
    return None


REASON = _reason()
needs_bpf = pytest.mark.skipif(REASON is not None, reason=f"no task_file collector: {REASON}")
F_SETSIG = 10


def _proc_way(pids):
    """{(pid, fd): fields} as cr_engine/files.py reads them today, the description told by
    the first (pid, fd) holding it (kcmp's binary search, files._find_description)."""
    out, buckets = {}, {}
    for pid, records in collect.FdCollector("proc").collect(pids).items():
        for r in records:
            bucket = buckets.setdefault((r.st_dev, r.st_ino), [])
            first, at = files._find_description(
                bucket, lambda other_pid, other_fd: kcmp(pid, other_pid, KCMP_FILE, r.fd,
                                                         other_fd))
            if first is None:
                first = (pid, r.fd)
                bucket.insert(at, (pid, r.fd, first))
            out[pid, r.fd] = r[1:10] + (first,)
    return out


def _bpf_way(collector, pids):
    out, first = {}, {}
    for pid, records in sorted(collector.collect(pids).items()):
        for r in records:
            out[pid, r.fd] = r[1:10] + (first.setdefault(r.description, (pid, r.fd)),)
    return out


def assert_same(collector, pids):
    want, got = _proc_way(pids), _bpf_way(collector, pids)
    bad = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
    assert not bad, f"{len(bad)} of {len(want)} differ; {bad[0]}: /proc {want.get(bad[0])}, " \
                    f"bpf {got.get(bad[0])}"
    return got


def _stopped_child(make, *args):
    """A stopped child that made its fds (make(*args)) with none of pytest's; it leads a
    session of its own (its children die with it)."""
    def alone():
        os.setsid()
        os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])   # pytest's
        make(*args)
    return stopped_child(alone)


def _kill(pid):
    kill_child(pid, group=True)


def _more_fds(count):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, count + 256)), hard))


def _tcp_pair():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    return [listener, client, server]


KINDS = ("pipe", "null", "file", "deleted", "eventfd", "memfd", "unix", "tcp", "udp", "epoll",
         "inotify", "opath", "pty", "bpf", "timerfd", "signalfd", "dir", "dup", "owned",
         "locked", "fifo")


def _mixed(workdir, count, kinds=KINDS):
    """``count`` fds of ``kinds``, round robin; kept open (the process stops next)."""
    _more_fds(count)
    keep, n = [], 0
    os.mkdir(os.path.join(workdir, "d"))
    for slot in range(count):
        if n >= count:
            break
        kind = kinds[slot % len(kinds)]
        if kind == "inotify" and slot >= 4 * len(kinds):
            kind = "null"       # instances are few (max_user_instances: 128 a user)
        path = os.path.join(workdir, f"f{n}")
        if kind == "pipe":
            got = list(os.pipe2(os.O_NONBLOCK if n % 2 else 0))
        elif kind == "null":
            got = [os.open("/dev/null", os.O_WRONLY | os.O_APPEND)]
        elif kind in ("file", "deleted", "owned", "locked"):
            fd = os.open(path, os.O_RDWR | os.O_CREAT | (os.O_CLOEXEC if n % 3 else 0))
            os.write(fd, b"x" * (n % 100))
            os.lseek(fd, n % 7, os.SEEK_SET)
            if kind == "deleted":
                os.unlink(path)
            elif kind == "owned":
                fcntl.fcntl(fd, fcntl.F_SETOWN, os.getpid())
                fcntl.fcntl(fd, F_SETSIG, signal.SIGUSR1)
            elif kind == "locked":
                fcntl.flock(fd, fcntl.LOCK_EX)
            got = [fd]
        elif kind == "eventfd":
            got = [os.eventfd(n, os.EFD_CLOEXEC if n % 2 else 0)]
        elif kind == "memfd":
            fd = os.memfd_create(f"m{n}")
            os.write(fd, b"y" * n)
            got = [fd]
        elif kind == "unix":
            got = [s.detach() for s in socket.socketpair()]
        elif kind == "tcp":
            got = [s.detach() for s in _tcp_pair()]
        elif kind == "udp":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            got = [s.detach()]
        elif kind == "epoll":
            fd = kfds.epoll_create1(0)
            kfds.epoll_ctl(fd, kfds.EPOLL_CTL_ADD, keep[-1], select.EPOLLIN)
            got = [fd]
        elif kind == "inotify":
            fd = kfds.inotify_init1()
            kfds.inotify_add_watch(fd, workdir)
            got = [fd]
        elif kind == "opath":
            got = [os.open(workdir, os.O_PATH), os.open("/dev/null", os.O_PATH)]
        elif kind == "pty":
            got = list(os.openpty())
        elif kind == "bpf":
            got = [bpf.map_create(bpf.MAP_TYPES["array"], 4, 8, 4)]
        elif kind == "timerfd":
            got = [kfds.timerfd_create()]
        elif kind == "signalfd":
            got = [kfds.signalfd({signal.SIGUSR2})]
        elif kind == "dir":
            got = [os.open(os.path.join(workdir, "d"), os.O_RDONLY | os.O_DIRECTORY)]
        elif kind == "fifo":
            os.mkfifo(path)
            got = [os.open(path, os.O_RDWR)]
        else:       # one more fd on an earlier description
            got = [os.dup(keep[n // 2])]
        keep += got
        n += len(got)
    return keep


@pytest.fixture
def collector():
    c = collect.FdCollector("bpf", strict=True)
    yield c
    c.close()


def _readlinked(collector, fds):
    """How many of ``fds`` are read from /proc in part: none, unless this kernel's verifier
    refused bpf_d_path (5.10: the records have no paths, every link is read)."""
    return 0 if collector.iterator.paths else fds


@needs_bpf
def test_a_thousand_mixed_fds_equal_proc(collector, tmp_path):
    pid = _stopped_child(_mixed, str(tmp_path), 1000)
    try:
        got = assert_same(collector, [pid])
        assert len(got) >= 1000 and collector.fell_back == _readlinked(collector, len(got))
        links = {v[0] for v in got.values()}
        for sign in ("pipe:[", "socket:[", "anon_inode:[eventfd]", "anon_inode:[eventpoll]",
                     "anon_inode:inotify", "anon_inode:bpf-map", "/memfd:m", "/dev/pts/",
                     "/dev/ptmx", " (deleted)"):
            assert any(sign in link for link in links), sign
        # where the iterator says no lock context and no owner, fdinfo and fcntl agree
        for r in collector.collect([pid])[pid]:
            if not r.may_have_locks:
                assert "lock" not in fdinfo.read(r.fd, pid), r
        records = collector.collect([pid])[pid]
        locked = {r.fd for r in records if r.may_have_locks}
        owners = {r.fd for r in records if r.may_have_owner}
        assert locked and owners and len(owners) < len(got) / 10
    finally:
        _kill(pid)


def _tree(workdir, procs, count):
    """This process opens count / 10 fds and forks procs - 1 children; each one (this one
    too) then opens its own up to ``count`` (dups among them) and stops."""
    _more_fds(count)
    shared = len(_mixed(workdir, count // 10))
    for i in range(1, procs):
        if os.fork() == 0:
            try:
                _own_fds(workdir, i, count - shared)
                os.kill(os.getpid(), signal.SIGSTOP)
            finally:
                os._exit(0)
    _own_fds(workdir, 0, count - shared)


def _own_fds(workdir, i, count):
    own = os.path.join(workdir, str(i))
    os.mkdir(own)
    _mixed(own, count)


def _stopped_tree(root, procs, timeout=60):
    """The pids of ``root``'s tree once all ``procs`` are stopped."""
    deadline = time.monotonic() + timeout
    while True:
        with open(f"/proc/{root}/task/{root}/children") as f:
            pids = [root] + [int(p) for p in f.read().split()]
        if len(pids) == procs and all(_state(p) == "T" for p in pids):
            return pids
        assert time.monotonic() < deadline, "the tree did not stop"
        time.sleep(0.05)


def _state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


@needs_bpf
def test_a_tree_of_ten_by_a_thousand_in_one_pass(collector, tmp_path):
    root = _stopped_child(_tree, str(tmp_path), 10, 1000)
    try:
        pids = _stopped_tree(root, 10)
        got = assert_same(collector, pids)
        assert len(got) >= 10 * 1000 and \
            collector.fell_back == _readlinked(collector, len(got))
        shared_by_fork = {v[-1] for (pid, _), v in got.items() if pid != v[-1][0]}
        shared_by_dup = {v[-1] for (pid, fd), v in got.items() if (pid, fd) != v[-1]
                         and pid == v[-1][0]}
        assert len(shared_by_fork) >= 100 and len(shared_by_dup) >= 300
    finally:
        _kill(root)


@needs_bpf
def test_a_process_in_its_own_mount_namespace_and_root(collector, tmp_path):
    def chrooted(root):
        from kernel import mount, namespaces
        namespaces.unshare(namespaces.CLONE_NEWNS)
        mount.mount(None, "/", None, mount.MS_REC | mount.MS_PRIVATE)
        mount.mount("tmpfs", root, "tmpfs")
        os.mkdir(os.path.join(root, "sub"))
        mount.mount("tmpfs", os.path.join(root, "sub"), "tmpfs")
        _mixed(os.path.join(root, "sub"), 60)
        os.chroot(root)
        os.chdir("/")
        os.open("/", os.O_RDONLY)
        os.open("/sub/d", os.O_RDONLY)
    root = tmp_path / "root"
    root.mkdir()
    pid = _stopped_child(chrooted, str(root))
    try:
        got = assert_same(collector, [pid])
        assert collector.fell_back == _readlinked(collector, len(got))
        assert any(v[0].endswith("/root/sub/d") for v in got.values())
    finally:
        _kill(pid)


@needs_bpf
def test_an_overlay_file_is_stated(collector, tmp_path):
    """overlayfs's stat is not its inode's: such fds are stat'ed, the answer stays /proc's."""
    def overlaid(top):
        from kernel import mount, namespaces
        namespaces.unshare(namespaces.CLONE_NEWNS)
        mount.mount(None, "/", None, mount.MS_REC | mount.MS_PRIVATE)
        mount.mount("tmpfs", top, "tmpfs")
        for d in ("lower", "upper", "work", "merged"):
            os.mkdir(os.path.join(top, d))
        with open(os.path.join(top, "lower", "data"), "wb") as f:
            f.write(b"data")
        mount.mount("overlay", os.path.join(top, "merged"), "overlay", 0,
                    f"lowerdir={top}/lower,upperdir={top}/upper,workdir={top}/work")
        return [os.open(os.path.join(top, "merged", "data"), os.O_RDONLY),
                os.open(os.path.join(top, "merged"), os.O_RDONLY)]
    pid = _stopped_child(overlaid, str(tmp_path))
    try:
        got = assert_same(collector, [pid])
        # the file and the directory stat'ed (or every fd, where records have no paths)
        assert collector.fell_back == (2 if collector.iterator.paths else len(got))
    finally:
        _kill(pid)


@needs_bpf
def test_records_without_paths_are_readlinked(collector, tmp_path):
    """As on a kernel whose verifier refuses bpf_d_path: every link by readlink."""
    collector.iterator.close()
    collector.iterator = fd_iter.FileIterator(paths=False)
    pid = _stopped_child(_mixed, str(tmp_path), 100)
    try:
        got = assert_same(collector, [pid])
        assert collector.fell_back == len(got)
    finally:
        _kill(pid)


@needs_bpf
def test_the_dump_is_the_same_both_ways(tmp_path, monkeypatch):
    """The images of a dump whose fds the iterator read equal those of one that read /proc:
    descriptions, their sharing, flags, offsets, owners, locks, queued data."""
    kinds = [k for k in KINDS if k not in ("tcp", "udp", "opath", "bpf", "pty")]
    (tmp_path / "fds").mkdir()
    pid = _stopped_child(_mixed, str(tmp_path / "fds"), 300, kinds)
    try:
        images = {}
        with collect.FdCollector("bpf", strict=True) as probe:
            paths = probe.iterator.paths
        for mode in ("proc", "bpf"):
            if mode == "proc":
                monkeypatch.setenv("CR_ENGINE_COLLECT", mode)
            else:           # the default: each collector's iterator where the kernel has it
                monkeypatch.delenv("CR_ENGINE_COLLECT", raising=False)
            images[mode] = tmp_path / mode
            stats = cr_engine.dump(pid, str(images[mode]), leave_running=True).stats
            assert stats["ways"]["fds"] == mode
            assert ("fds_partly_from_proc" in stats["counts"]) == (mode == "bpf" and
                                                                   not paths)
        cores, tables = ({mode: json.loads((images[mode] / name).read_text())
                          for mode in images} for name in (f"core-{pid}.json", "files.json"))
        assert len(cores["bpf"]["fds"]) >= 300 and cores["bpf"]["fds"] == cores["proc"]["fds"]
        assert tables["bpf"] == tables["proc"]
        described = {d["type"] for d in tables["bpf"]["files"].values()}
        assert {"pipe", "reg", "unlinked", "memfd", "eventfd", "unix", "epoll", "inotify",
                "timerfd", "signalfd", "dir", "fifo", "chr"} <= described
        assert any("owner" in d for d in tables["bpf"]["files"].values())
        assert any("locks" in d for d in tables["bpf"]["files"].values())
    finally:
        _kill(pid)


def test_proc_way_is_asked_for():
    c = collect.FdCollector("proc")
    assert c.way == "proc" and c.reason == "asked for" and c.iterator is None


def test_a_bad_way_is_refused():
    with pytest.raises(ValueError, match="CR_ENGINE_COLLECT"):
        collect.FdCollector("text")


def test_the_record_layout_is_what_the_program_writes():
    """Every field of the record at its place, as wide as the unpacking reads it."""
    assert struct.calcsize("<" + "".join(f for _, f in fd_iter._FIELDS)) == \
        fd_iter._RECORD.size
    assert fd_iter._AT["path_len"] == fd_iter._RECORD.size - 4
