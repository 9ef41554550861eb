"""cr_engine.mount_table: statmount/listmount and mountinfo give the same mounts, on the
host's namespace and on a namespace of a child's own with every kind of mount the
engine meets (tmpfs with options, binds of directories and files, read-only binds,
shared peers, slaves, unbindable mounts, a mount over a mount), read from inside and, by
its id, from outside."""

import contextlib
import os
import tempfile

import pytest

from cr_engine import mount_table
from kernel import mount as kmount
from kernel.namespaces import CLONE_NEWNS, unshare
from probes import check

pytestmark = pytest.mark.skipif(check("listmount").status != "present",
                                reason="listmount/statmount: " + check("listmount").detail)
# statmount tells every field mountinfo shows (mount options 6.11, source 6.13)
MISSING = [f for f in mount_table.STATMOUNT_FIELDS
           if f not in (check("statmount").data or {}).get("fields", ())]
whole = pytest.mark.skipif(bool(MISSING), reason="statmount on this kernel does not fill "
                           + ", ".join(MISSING) + " (probe statmount)")


@whole
def test_host_namespace_both_ways():
    assert mount_table.from_statmount() == mount_table.from_mountinfo()


def _build(top):
    """In a mount namespace of our own: the mounts under ``top``."""
    kmount.mount(None, "/", None, kmount.MS_REC | kmount.MS_PRIVATE)
    kmount.mount("tmpfs", top, "tmpfs", kmount.MS_NOSUID | kmount.MS_NODEV |
                 kmount.MS_NOATIME, "size=1m,mode=700")
    for d in ("a", "a/sub", "peer", "slave", "unbind", "ro", "over"):
        os.mkdir(f"{top}/{d}")
    with open(f"{top}/file", "w") as f:
        f.write("x")
    with open(f"{top}/a/f", "w") as f:
        f.write("y")
    kmount.mount(f"{top}/a", f"{top}/a", None, kmount.MS_BIND)
    kmount.mount(None, f"{top}/a", None, kmount.MS_SHARED)
    kmount.mount(f"{top}/a", f"{top}/peer", None, kmount.MS_BIND)        # a peer of a
    kmount.mount(f"{top}/a", f"{top}/slave", None, kmount.MS_BIND)
    kmount.mount(None, f"{top}/slave", None, kmount.MS_SLAVE)             # a's slave
    kmount.mount(f"{top}/a/sub", f"{top}/unbind", None, kmount.MS_BIND)
    kmount.mount(None, f"{top}/unbind", None, kmount.MS_UNBINDABLE)
    kmount.mount(f"{top}/a", f"{top}/ro", None, kmount.MS_BIND)
    kmount.mount(None, f"{top}/ro", None, kmount.MS_BIND | kmount.MS_REMOUNT | kmount.MS_RDONLY)
    kmount.mount(f"{top}/file", f"{top}/a/f", None, kmount.MS_BIND)     # a file bind
    kmount.mount("tmpfs", f"{top}/over", "tmpfs", 0, "size=64k")
    kmount.mount("tmpfs", f"{top}/over", "tmpfs", kmount.MS_NOEXEC, "size=32k")  # over it


def _in_child(fn):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.write(w, repr(fn()).encode()[:60000])
            os._exit(0)
        except BaseException as e:          # noqa: BLE001 - reported to the parent
            os.write(w, f"error: {type(e).__name__}: {e}".encode())
            os._exit(1)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode()
    _, status = os.waitpid(pid, 0)
    return status, out


@whole
def test_namespace_of_its_own_both_ways():
    with tempfile.TemporaryDirectory() as top:
        def both():
            unshare(CLONE_NEWNS)
            _build(top)
            ours = [m for m in mount_table.from_mountinfo() if m.point.startswith(top)]
            theirs = [m for m in mount_table.from_statmount() if m.point.startswith(top)]
            # 12: the file bound on a shared mount shows on its peers and its slave too
            assert len(ours) == 12, ours
            assert {m.shared for m in ours if m.point in (f"{top}/a", f"{top}/peer")} != \
                {None}, ours
            assert ours == theirs, (ours, theirs)
            return "same"
        status, out = _in_child(both)
        assert (status, out) == (0, "'same'")


@contextlib.contextmanager
def _namespace_holder(top, root=None):
    """The pid of a child in a mount namespace of its own with the mounts of _build under
    ``top`` (chrooted into ``root`` if given), there until the block ends."""
    r, w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            unshare(CLONE_NEWNS)
            _build(top)
            if root:
                os.chroot(root)
            os.write(w, b"x")
            os.read(go_r, 1)
        finally:
            os._exit(0)
    try:
        assert os.read(r, 1) == b"x"
        yield pid
    finally:
        os.write(go_w, b"x")
        os.waitpid(pid, 0)


@whole
@pytest.mark.skipif(check("listmount_foreign_ns").status != "present",
                    reason="listmount of another namespace: " +
                    check("listmount_foreign_ns").detail)
def test_another_namespace_by_its_id():
    with tempfile.TemporaryDirectory() as top, _namespace_holder(top) as pid:
        outside = mount_table.from_statmount(mount_table.mnt_ns_id(pid))
        assert outside == mount_table.from_mountinfo(pid)
        assert any(m.point == f"{top}/over" for m in outside)


def test_a_namespace_whose_processes_are_chrooted_read_from_inside():
    """A chrooted process's mountinfo shows what is below its root only: the namespace is
    read by a child that joined it, and gives what an unchrooted reader sees."""
    with tempfile.TemporaryDirectory() as top, \
            _namespace_holder(top, root=f"{top}/a") as pid:
        chrooted = mount_table.from_mountinfo(pid)
        inside = mount_table.from_mountinfo_inside(pid)
        assert len(chrooted) < len(inside)
        assert any(m.point == f"{top}/over" for m in inside)
        assert {m.id for m in chrooted} < {m.id for m in inside}


@pytest.mark.parametrize("way", [pytest.param("statmount", marks=whole), "mountinfo"])
def test_collect_either_way(monkeypatch, way):
    monkeypatch.setenv(mount_table.FORCE, way)
    assert mount_table.way() == way
    assert mount_table.collect(os.getpid()) == mount_table.from_mountinfo()


def test_collect_chooses_statmount_on_a_kernel_that_tells_everything(monkeypatch):
    monkeypatch.delenv(mount_table.FORCE, raising=False)
    fields = check("statmount").data.get("fields", ())
    whole = all(f in fields for f in mount_table.STATMOUNT_FIELDS) and \
        check("listmount_foreign_ns").status == "present"
    assert mount_table.way() == ("statmount" if whole else "mountinfo")
