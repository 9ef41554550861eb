"""cr_engine.collect: the BPF task_vma collector gives exactly what smaps gives, field by
field (VmFlags included), on real stopped processes of many kinds of VMAs; and the VmFlags
table learned on this kernel names every calibration VMA as smaps does."""

import ctypes
import errno
import os
import signal
import tempfile

import pytest

from cr_engine import collect, proc, vmflags
from kernel import iters, task_iter
from kernel import memory as mem

from .helpers import kill_child, stopped_child

needs_vma_bpf = pytest.mark.requires("collect_vmas_bpf")
needs_task_bpf = pytest.mark.requires("collect_tasks_bpf")
PAGE = mem.PAGE_SIZE


def _fields(vma):
    return (vma.start, vma.end, vma.perms, vma.offset, vma.dev, vma.inode, vma.name,
            sorted(vma.flags))


def assert_same(pid, got):
    want = [_fields(v) for v in proc.smaps(pid)]
    assert [_fields(v) for v in got] == want


def assert_iterated(collector):
    """No process was read from smaps: where PROCMAP_QUERY is missing (before 6.11) one
    that maps an overlayfs file (the whole root, in the VM matrix's guests) is."""
    assert collector.fell_back == 0 or not _has_procmap_query()


def _kill(pids):
    for pid in pids:
        kill_child(pid)


def _many_vmas(count, file_every=0, path=None):
    """``count`` VMAs that do not merge (protections alternate), every ``file_every``th a
    mapping of ``path``; some pages touched."""
    fd = os.open(path, os.O_RDWR) if file_every else -1
    base = mem.mmap(count * PAGE, mem.PROT_NONE)
    for i in range(count):
        at = base + i * PAGE
        if file_every and i % file_every == 0:
            mem.mmap(PAGE, mem.PROT_READ, mem.MAP_PRIVATE | mem.MAP_FIXED, fd,
                     (i % 4) * PAGE, addr=at)
        else:
            prot = mem.PROT_READ | (mem.PROT_WRITE if i % 2 else 0)
            mem.mmap(PAGE, prot, mem.MAP_PRIVATE | mem.MAP_ANONYMOUS | mem.MAP_FIXED, addr=at)
            if i % 2 and i % 3 == 0:
                ctypes.memset(at, 1, 1)


def _kinds(workdir):
    """One VMA of each kind the dump meets: memfd, shared anonymous, a deleted file, a
    name with a newline, SysV shm, the heap grown, THP-advised, the calibration flags."""
    memfd = mem.memfd_create("collect-memfd")
    os.ftruncate(memfd, 4 * PAGE)
    mem.mmap(4 * PAGE, mem.PROT_READ | mem.PROT_WRITE, mem.MAP_SHARED, memfd)
    mem.mmap(2 * PAGE, mem.PROT_READ | mem.PROT_WRITE, mem.MAP_SHARED | mem.MAP_ANONYMOUS)
    for name in ("deleted", "new\nline"):
        path = os.path.join(workdir, name)
        with open(path, "wb") as f:
            f.write(bytes(2 * PAGE))
        fd = os.open(path, os.O_RDONLY)
        mem.mmap(2 * PAGE, mem.PROT_READ, mem.MAP_PRIVATE, fd)
        if name == "deleted":
            os.unlink(path)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmat.restype = ctypes.c_void_p
    shmid = libc.shmget(0, 2 * PAGE, 0o1600)        # IPC_PRIVATE | IPC_CREAT
    if shmid >= 0:
        libc.shmat(shmid, None, 0)
        libc.shmctl(shmid, 0, None)                 # IPC_RMID: gone with the last detach
    libc.malloc(64 << 20)                           # a big malloc: an mmap'd arena
    libc.sbrk(1 << 20)                              # and a grown heap
    big = mem.mmap(4 << 20)
    mem.madvise(big, 4 << 20, 14)                   # MADV_HUGEPAGE
    ctypes.memset(big, 1, 4 << 20)
    vmflags._make_vmas()


@pytest.fixture
def collector():
    c = collect.VmaCollector(strict=True)
    yield c
    c.close()


@needs_vma_bpf
def test_the_learned_table_names_every_calibration_vma_as_smaps():
    table = vmflags.learned(iters.VmaIterator)
    pid = stopped_child(vmflags._make_vmas)
    try:
        records = {r.start: r.flags for r in iters.VmaIterator().records(pid)}
        vmas = proc.smaps(pid)
    finally:
        _kill([pid])
    gate = sum(v.name == "[vsyscall]" for v in vmas)   # no VMA of the mm (where it is)
    assert len(records) == len(vmas) - gate
    for vma in vmas:
        if vma.start in records:
            assert table.decode(records[vma.start]) == vma.flags, vma


def test_an_unknown_bit_is_never_guessed():
    table = vmflags.FlagTable({0: "rd", 1: "wr", 33: ""})
    assert table.decode(0b11) == {"rd", "wr"}
    assert table.decode(1 << 33 | 1) == {"rd"}
    assert table.decode(1 << 50) is None


@needs_vma_bpf
@pytest.mark.parametrize("count,file_every", [(20000, 0), (20000, 4)])
def test_many_vmas_equal_smaps(collector, tmp_path, count, file_every):
    path = tmp_path / "mapped"
    path.write_bytes(bytes(range(256)) * 64)
    pid = stopped_child(_many_vmas, count, file_every, str(path))
    try:
        got = collector.collect([pid])[pid]
        assert_iterated(collector)
        assert len(got) > count
        assert_same(pid, got)
    finally:
        _kill([pid])


@needs_vma_bpf
def test_every_kind_of_vma_equals_smaps(collector, tmp_path):
    pid = stopped_child(_kinds, str(tmp_path))
    try:
        got = collector.collect([pid])[pid]
        assert_iterated(collector)
        assert_same(pid, got)
        names = {v.name for v in got}
        assert "/memfd:collect-memfd (deleted)" in names and "[heap]" in names
        assert any(n.endswith("new\\012line") for n in names)
        assert any(n.startswith("/SYSV") for n in names)
    finally:
        _kill([pid])


@needs_vma_bpf
def test_a_tree_in_one_pass_equals_smaps(collector):
    pids = []
    try:
        for _ in range(100):
            pids.append(stopped_child(_many_vmas, 100))
        got = collector.collect(pids)
        assert sorted(got) == sorted(pids)
        assert_iterated(collector)
        for pid in pids:
            assert_same(pid, got[pid])
    finally:
        _kill(pids)


@needs_vma_bpf
def test_a_process_in_its_own_mount_namespace_and_root(collector, tmp_path):
    """map_files links of a chrooted process in another mount namespace name what maps
    names (the path inside its root)."""
    def chrooted(root):
        from kernel import mount, namespaces
        namespaces.unshare(namespaces.CLONE_NEWNS)
        mount.mount(None, "/", None, mount.MS_REC | mount.MS_PRIVATE)
        mount.mount("tmpfs", root, "tmpfs")
        with open(os.path.join(root, "data"), "wb") as f:
            f.write(bytes(PAGE))
        os.chroot(root)
        fd = os.open("/data", os.O_RDONLY)
        mem.mmap(PAGE, mem.PROT_READ, mem.MAP_PRIVATE, fd)
    root = tmp_path / "root"
    root.mkdir()
    pid = stopped_child(chrooted, str(root))
    try:
        got = collector.collect([pid])[pid]
        assert_iterated(collector)
        assert_same(pid, got)
    finally:
        _kill([pid])


def test_smaps_way_is_smaps():
    c = collect.VmaCollector("proc")
    assert c.way == "smaps" and c.reason == "asked for"
    pid = stopped_child(_many_vmas, 10)
    try:
        assert_same(pid, c.collect([pid])[pid])
    finally:
        _kill([pid])


def test_a_bad_way_is_refused():
    with pytest.raises(ValueError, match="CR_ENGINE_COLLECT"):
        collect.VmaCollector("text")


@needs_vma_bpf
def test_an_overlay_mapped_file_is_named_as_maps_names_it(collector, tmp_path):
    """The VMA holds the layer's file; maps shows the overlay's inode (6.8 on) or the
    layer's (before): PROCMAP_QUERY says which, and without it (before 6.11) that process
    is read from smaps."""
    def overlaid(top):
        from kernel import mount, namespaces
        namespaces.unshare(namespaces.CLONE_NEWNS)
        mount.mount(None, "/", None, mount.MS_REC | mount.MS_PRIVATE)
        mount.mount("tmpfs", top, "tmpfs")
        for d in ("lower", "upper", "work", "merged"):
            os.mkdir(os.path.join(top, d))
        with open(os.path.join(top, "lower", "data"), "wb") as f:
            f.write(bytes(PAGE))
        mount.mount("overlay", os.path.join(top, "merged"), "overlay", 0,
                    f"lowerdir={top}/lower,upperdir={top}/upper,workdir={top}/work")
        fd = os.open(os.path.join(top, "merged", "data"), os.O_RDONLY)
        mem.mmap(PAGE, mem.PROT_READ, mem.MAP_PRIVATE, fd)
    pid = stopped_child(overlaid, str(tmp_path))
    try:
        got = collector.collect([pid])[pid]
        assert collector.fell_back == (0 if _has_procmap_query() else 1)
        assert_same(pid, got)
    finally:
        _kill([pid])


def _has_procmap_query():
    with open("/proc/self/maps", "rb", buffering=0) as maps:
        try:
            mem.procmap_query(maps.fileno(), id(maps))
        except OSError as e:
            return e.errno == errno.ENOENT          # no VMA there, but the ioctl exists
    return True


def _dump_core(pid, workdir, mode, monkeypatch):
    """core and mm images of a --leave-running dump with CR_ENGINE_COLLECT=mode."""
    import json
    import cr_engine
    if mode == "proc":
        monkeypatch.setenv("CR_ENGINE_COLLECT", mode)
    else:                   # the default: each collector's iterator where the kernel has it
        monkeypatch.delenv("CR_ENGINE_COLLECT", raising=False)
    images = os.path.join(workdir, f"images-{mode}")
    result = cr_engine.dump(pid, images, leave_running=True)
    with open(os.path.join(images, f"core-{pid}.json")) as f:
        core = json.load(f)
    with open(os.path.join(images, f"mm-{pid}.json")) as f:
        mm = json.load(f)
    return result.stats, core, mm


@needs_task_bpf
def test_task_state_equals_what_the_threads_answer(subject, tmp_path, monkeypatch):
    """Dispositions, alternate stacks, tid addresses, parent-death signals, securebits,
    dumpable, subreaper, brk and the VMAs: read by iterators, the same images as asked by
    injected calls and smaps."""
    s = subject("task_state")
    proc_stats, proc_core, proc_mm = _dump_core(s.pid, str(tmp_path), "proc", monkeypatch)
    bpf_stats, bpf_core, bpf_mm = _dump_core(s.pid, str(tmp_path), "bpf", monkeypatch)
    assert proc_stats["ways"] == {"vmas": "smaps", "tasks": "injected", "fds": "proc"}
    assert bpf_stats["ways"]["tasks"] == "bpf"        # the VMAs' way: smaps before 5.12
    for key in ("sigactions", "context"):
        assert bpf_core[key] == proc_core[key], key
    assert len(proc_core["threads"]) == 3
    assert proc_core["context"] == {"dumpable": 0, "child_subreaper": True, "mdwe": 0}
    assert {"1", "10", "37"} <= set(proc_core["sigactions"])    # HUP USR1 SIGRTMIN+3
    for mine, theirs in zip(bpf_core["threads"], proc_core["threads"]):
        for key in ("tid", "tid_address", "altstack", "context", "creds"):
            assert mine[key] == theirs[key], (mine["tid"], key)
    altstacks = sorted((t["altstack"]["size"], t["altstack"]["flags"])
                       for t in proc_core["threads"])
    assert altstacks == [(0, 2), (32768, -1 << 31), (65536, 0)]     # SS_DISABLE, AUTODISARM
    assert sorted(t["context"]["pdeath_signal"] for t in proc_core["threads"]) == [0, 9, 15]
    assert all(t["creds"]["securebits"] == 1 << 4 for t in proc_core["threads"])
    for key in ("brk", "vmas"):
        assert bpf_mm[key] == proc_mm[key], key
    assert s.stop().startswith("alive")


@needs_task_bpf
@pytest.mark.parametrize("which", [None, signal.ITIMER_REAL, signal.ITIMER_VIRTUAL,
                                   signal.ITIMER_PROF])
def test_an_armed_interval_timer_is_seen(which):
    """The dump skips getitimer only where the task iterator sees no timer armed."""
    def arm():
        for sig in (signal.SIGALRM, signal.SIGVTALRM, signal.SIGPROF):
            signal.signal(sig, signal.SIG_IGN)
        if which is not None:
            signal.setitimer(which, 1000, 1000)
    pid = stopped_child(arm)
    try:
        with task_iter.TaskIterator() as it:
            (record,) = it.records(pid)
        assert record.itimers_idle == (which is None)
    finally:
        _kill([pid])


@needs_vma_bpf
@needs_task_bpf
def test_a_dumper_in_a_pid_namespace_of_its_own_reads_proc():
    """The iterators name tasks by their pid in the initial namespace: a dumper that sees
    other numbers gets the /proc ways (never empty answers)."""
    import json
    from kernel import namespaces
    read, write = os.pipe()
    outer = os.fork()
    if outer == 0:
        try:
            namespaces.unshare(namespaces.CLONE_NEWPID)
            inner = os.fork()
            if inner == 0:
                ways = {}
                for name, cls in (("vmas", collect.VmaCollector),
                                  ("tasks", collect.TaskCollector),
                                  ("fds", collect.FdCollector)):
                    c = cls()
                    ways[name] = [c.way, c.reason]
                    c.close()
                os.write(write, json.dumps(ways).encode())
                os._exit(0)
            os.waitpid(inner, 0)
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        ways = json.loads(f.read())
    os.waitpid(outer, 0)
    assert {k: v[0] for k, v in ways.items()} == {"vmas": "smaps", "tasks": "injected",
                                                  "fds": "proc"}
    assert all("pid namespace" in v[1] for v in ways.values())
