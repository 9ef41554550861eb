"""SysV IPC objects at dump and restore, in the host's IPC namespace: an id held by another
object fails the restore cleanly; a restore that fails after creating objects removes them
and leaves the ones it found; a dump leaves them as they were; values changed since the dump
are put back.  Real processes (tests/programs/subject.py), real C/R."""

import ctypes
import os

import pytest

import cr_engine
from cr_engine import namespaces, sysv_ipc
from kernel import ipc

from .engine_subjects import alive
from .test_engine_failures import images_digest


@pytest.fixture
def sysv_subject(subject):
    """A subject holding a segment (attached, "segment data"), a set of 2 semaphores (3, 4)
    and a queue (one message, type 7, "queued"): (subject, {kind: id}); the objects are
    removed at the end."""
    yield from _with_objects(subject, "sysv_ipc")


@pytest.fixture
def sysv_undo_subject(subject):
    """A subject that raised a semaphore to 1 with SEM_UNDO."""
    yield from _with_objects(subject, "sysv_undo")


def _with_objects(subject, kind):
    s = subject(kind)
    with open(s.result + ".ipc") as f:
        ids = dict(zip(ipc.KINDS, map(int, f.read().split())))
    yield s, ids
    for k, ident in ids.items():
        try:
            ipc.remove(k, ident)
        except OSError:
            pass                        # none made (-1), or removed by the test


def test_semaphore_values_the_kill_changed_are_put_back(sysv_undo_subject, tmp_path):
    """SEM_UNDO adjustments are not carried: the dump's kill applies them to the set, and
    the restore puts the dumped values back."""
    s, ids = sysv_undo_subject
    images = tmp_path / "img"
    cr_engine.dump(s.pid, images)
    s.kill()
    assert ipc.sem_values(ids["sem"], 1) == [0]         # undone at exit
    restored = cr_engine.restore(images)
    assert ipc.sem_values(ids["sem"], 1) == [1]
    assert ipc.sem_pids(ids["sem"], 1) == [s.pid]       # set by the restored process
    assert s.stop(restored.root_pid).startswith("alive ")
    os.waitpid(restored.root_pid, 0)


def test_dump_with_leave_running_leaves_the_sysv_objects_as_they_were(sysv_subject, tmp_path):
    s, ids = sysv_subject
    before = {kind: ipc.table(kind)[ident] for kind, ident in ids.items()}
    cr_engine.dump(s.pid, tmp_path / "img", leave_running=True)
    after = {kind: ipc.table(kind)[ident] for kind, ident in ids.items()}
    for row in before["shm"], after["shm"]:    # the dumper's read attach shows only there
        for column in "lpid", "atime", "dtime":
            row.pop(column)
    assert after == before
    assert_objects_as_dumped(ids)
    assert s.stop().startswith("alive ")


def assert_objects_as_dumped(ids):
    addr = ipc.shmat(ids["shm"], ipc.SHM_RDONLY)
    try:
        assert ctypes.string_at(addr, 12) == b"segment data"
    finally:
        ipc.shmdt(addr)
    assert ipc.sem_values(ids["sem"], 2) == [3, 4]
    assert ipc.msg_copy(ids["msg"], 0, 64) == (7, b"queued")


def take_id(kind, ident, create):
    """Have ``create()`` make an object with id ``ident``, as another engine would."""
    with sysv_ipc.id_lock():
        ipc.set_next_id(kind, ident)
        got = create()
    assert got == ident
    return got


INTRUDERS = {       # another object than the dumped one, in each kind
    "shm": lambda: ipc.shmget(ipc.IPC_PRIVATE, 4096, ipc.IPC_CREAT | 0o600),
    "sem": lambda: ipc.semget(ipc.IPC_PRIVATE, 3, ipc.IPC_CREAT | 0o600),
    "msg": lambda: ipc.msgget(0x5C000000 | os.getpid(), ipc.IPC_CREAT | ipc.IPC_EXCL | 0o600),
}


@pytest.mark.parametrize("kind", ipc.KINDS)
def test_restore_of_a_sysv_id_taken_by_another_object_fails_and_leaves_nothing(
        sysv_subject, tmp_path, kind):
    s, ids = sysv_subject
    images = tmp_path / "img"
    dumped = cr_engine.dump(s.pid, images)
    s.kill()
    for k, ident in ids.items():            # gone: the restore has to create them all ...
        ipc.remove(k, ident)
    intruder = take_id(kind, ids[kind], INTRUDERS[kind])      # ... but one id is taken
    try:
        before = images_digest(images)
        with pytest.raises(cr_engine.RestoreError) as err:
            cr_engine.restore(images)
        assert err.value.stage == "prepare"
        assert f"SysV {sysv_ipc.NAMES[kind]} id {ids[kind]} is taken by another object" in \
            str(err.value)
        assert "\n" not in str(err.value)
        assert not any(alive(pid) for pid in dumped.pids)
        assert images_digest(images) == before
        for k, ident in ids.items():        # nothing made, the intruder untouched
            assert (ident in ipc.table(k)) == (k == kind)
    finally:
        ipc.remove(kind, intruder)
    restored = cr_engine.restore(images)    # the id is free again: all come back
    assert_objects_as_dumped(ids)
    assert s.stop(restored.root_pid).startswith("alive ")
    os.waitpid(restored.root_pid, 0)


@pytest.mark.parametrize("removed", [True, False], ids=["created", "kept"])
@pytest.mark.parametrize("point", ["restore:fork", "restore:memory", "restore:resume"])
def test_restore_failing_late_removes_the_sysv_objects_it_created(sysv_subject, tmp_path,
                                                                 point, removed):
    s, ids = sysv_subject
    images = tmp_path / "img"
    dumped = cr_engine.dump(s.pid, images)
    s.kill()
    if removed:
        for kind, ident in ids.items():
            ipc.remove(kind, ident)
    with pytest.raises(cr_engine.RestoreError):
        cr_engine.restore(images, fault=point)
    assert not any(alive(pid) for pid in dumped.pids)
    for kind, ident in ids.items():         # created ones removed, found ones left
        assert (ident in ipc.table(kind)) != removed
    restored = cr_engine.restore(images)
    assert_objects_as_dumped(ids)
    assert ipc.table("shm")[ids["shm"]]["nattch"] == 1
    assert s.stop(restored.root_pid).startswith("alive ")
    os.waitpid(restored.root_pid, 0)


def test_an_ipc_namespace_of_its_own(subject, tmp_path):
    """Every object of the tree's own IPC namespace comes back, with its id, in a new one."""
    s = subject("sysv_ipc_ns")
    with open(s.result + ".ipc") as f:
        ids = dict(zip(ipc.KINDS, map(int, f.read().split())))
    cr_engine.dump(s.pid, tmp_path / "img")
    restored = cr_engine.restore(tmp_path / "img")
    root = restored.root_pid
    assert os.readlink(f"/proc/{root}/ns/ipc") != os.readlink("/proc/self/ns/ipc")

    def inside():
        tables = {kind: ipc.table(kind) for kind in ipc.KINDS}
        segment = ipc.shmat(ids["shm"])
        try:
            data = ctypes.string_at(segment, 12)
        finally:
            ipc.shmdt(segment)
        return tables, data, ipc.sem_values(ids["sem"], 2)
    tables, data, values = namespaces.run_in(root, "ipc", inside)
    assert {kind: sorted(table) for kind, table in tables.items()} == \
        {kind: [ident] for kind, ident in ids.items()}
    assert data == b"segment data" and values == [3, 4]
    assert tables["shm"][ids["shm"]]["nattch"] == 1          # attached by the root again
    assert s.stop(root).startswith("alive ")
    os.waitpid(root, 0)
