"""cr_engine.mnt_content: a tree's tmpfs dumped through an uncovered view (what mounts on
it and over it hide is dumped, what they hold is not) and filled into a new tmpfs gives
the same files, attribute for attribute; a bind of a subdirectory gives that subtree; a
socket file is refused; ids can be translated on the way in; planted symlinks are never
followed, neither by the dump nor by the fill; a tree whose mount namespace belongs to
another user namespace is dumped too.

Every mount is made in a throw-away mount namespace of a forked child."""

import contextlib
import hashlib
import json
import os
import shutil
import socket
import stat
import tempfile

import pytest

from cr_engine import mnt_content
from cr_engine.errors import DumpError, RestoreError, Unsupported
from kernel import mount as kmount
from kernel.namespaces import CLONE_NEWNS, CLONE_NEWUSER, setns, unshare

MIB = 1 << 20
OWNER = (1234, 5678)
T0 = 1_600_000_000_123_456_789          # times set on the source, in ns
# security.capability, v2 (revision 2 + effective), cap_net_bind_service permitted
CAPS = (0x02000001).to_bytes(4, "little") + (1 << 10).to_bytes(4, "little") + bytes(12)


# --- children in namespaces of their own --------------------------------------------

def _reply(w, work):
    """Write work()'s JSON answer (or its exception) to ``w`` and close it."""
    try:
        msg = {"ok": work()}
    except BaseException as e:              # noqa: BLE001 - reported to the parent
        msg = {"error": type(e).__name__, "message": str(e)}
    data = json.dumps(msg).encode()
    while data:
        data = data[os.write(w, data):]
    os.close(w)


def _answer(r):
    with os.fdopen(r, "rb") as f:
        return json.loads(f.read() or b'{"error": "died", "message": ""}')


def _private():
    unshare(CLONE_NEWNS)
    kmount.mount(None, "/", None, kmount.MS_REC | kmount.MS_PRIVATE)


def _in_ns(work, pid=None):
    """work() in a forked child, in a private copy of ``pid``'s mount namespace (or of
    ours): {"ok": answer} or {"error": exception name, "message": ...}."""
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(r)

            def run():
                if pid is not None:
                    setns(os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY), CLONE_NEWNS)
                _private()
                return work()
            _reply(w, run)
        finally:
            os._exit(0)
    os.close(w)
    out = _answer(r)
    os.waitpid(child, 0)
    return out


def _ok(answer):
    assert "ok" in answer, answer
    return answer["ok"]


@contextlib.contextmanager
def _tree(build, userns_base=None):
    """A child that made mounts under a new temporary directory (build(top) in a mount
    namespace of its own, in a user namespace mapping 0.. to userns_base.. if given) and
    waits: (its pid, build's answer)."""
    top = tempfile.mkdtemp(prefix="mnt-content-")
    if userns_base is not None:
        os.chmod(top, 0o777)        # for a root of a user namespace that maps no host id
    r, w = os.pipe()
    go_r, go_w = os.pipe()
    sync_r, sync_w = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(r)
            os.close(go_w)
            os.close(sync_r)

            def run():
                if userns_base is not None:
                    unshare(CLONE_NEWUSER)
                    os.write(sync_w, b"u")
                    os.read(go_r, 1)                # the maps are written
                    os.setresgid(0, 0, 0)
                    os.setresuid(0, 0, 0)
                _private()
                return build(top)
            _reply(w, run)
            os.read(go_r, 1)                        # EOF: the test is done
        finally:
            os._exit(0)
    os.close(w)
    os.close(go_r)
    os.close(sync_w)
    try:
        if userns_base is not None:
            assert os.read(sync_r, 1) == b"u"
            for name, text in (("uid_map", f"0 {userns_base} 65536"), ("setgroups", "deny"),
                               ("gid_map", f"0 {userns_base} 65536")):
                with open(f"/proc/{child}/{name}", "w") as f:
                    f.write(text)
            os.write(go_w, b"m")
        yield child, _ok(_answer(r))
    finally:
        os.close(go_w)
        os.close(sync_r)
        os.waitpid(child, 0)
        shutil.rmtree(top, ignore_errors=True)


def _lower_dev(point):
    """The device of the first (lowest) mount at ``point`` in our namespace."""
    with open("/proc/self/mountinfo") as f:
        return next(line.split()[2] for line in f if line.split()[4] == point)


# --- describing a file system the same way on both sides ----------------------------

def _describe(top):
    """{relative path: attributes} of everything under ``top`` (read on a noatime
    mount); ``ino``: the first path of the inode, so hard links compare by structure."""
    out, first = {}, {}

    def visit(rel):
        path = os.path.join(top, rel) if rel else top
        st = os.lstat(path)
        d = {"mode": st.st_mode, "uid": st.st_uid, "gid": st.st_gid, "nlink": st.st_nlink,
             "atime_ns": st.st_atime_ns, "mtime_ns": st.st_mtime_ns,
             "ino": first.setdefault(st.st_ino, rel),
             "xattrs": {k: os.getxattr(path, k, follow_symlinks=False).hex()
                        for k in sorted(os.listxattr(path, follow_symlinks=False))}}
        if stat.S_ISREG(st.st_mode):
            fd = os.open(path, os.O_RDONLY | os.O_NOATIME)
            try:
                d["size"] = st.st_size
                d["regions"] = list(mnt_content._regions(fd, st.st_size))
                d["sha256"] = hashlib.sha256(os.pread(fd, st.st_size, 0)).hexdigest()
            finally:
                os.close(fd)
        elif stat.S_ISLNK(st.st_mode):
            d["target"] = os.readlink(path)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            d["rdev"] = [os.major(st.st_rdev), os.minor(st.st_rdev)]
        out[rel] = d
        if stat.S_ISDIR(st.st_mode):
            for name in sorted(os.listdir(path)):
                visit(os.path.join(rel, name) if rel else name)
    visit("")
    return out


def _source(pid, point, covers=()):
    """_describe of the tree's tmpfs at ``point``, in a copy of its namespace where the
    mounts at ``covers`` (paths, the topmost first) are detached."""
    def work():
        for path in covers:
            kmount.umount2(path, kmount.MNT_DETACH)
        kmount.mount(None, point, None, kmount.MS_REMOUNT | kmount.MS_BIND | kmount.MS_NOATIME)
        return _describe(point)
    return _ok(_in_ns(work, pid))


def _restore(entries, data_path, where, ids=None):
    """fill into a new tmpfs (fsopen/fsmount) mounted at ``where`` of a private
    namespace; its _describe."""
    def work():
        fs = kmount.fsopen("tmpfs")
        kmount.fsconfig(fs, kmount.FSCONFIG_CMD_CREATE)
        root = kmount.fsmount(fs, kmount.FSMOUNT_CLOEXEC, kmount.MOUNT_ATTR_NOATIME)
        mnt_content.fill(root, entries, data_path, ids)
        os.makedirs(where, exist_ok=True)
        kmount.move_mount(root, "", kmount.AT_FDCWD, where, kmount.MOVE_MOUNT_F_EMPTY_PATH)
        return _describe(where)
    return _in_ns(work)


def _dump(pid, targets, image, head=b""):
    with open(image, "wb") as sink:
        sink.write(head)
        got = mnt_content.dump(pid, targets, sink)
        sink.write(b"TAIL")
    return got


# --- the trees ----------------------------------------------------------------------

def _write(path, data=b""):
    with open(path, "wb") as f:
        f.write(data)


def _build_full(top):
    t = f"{top}/t"
    os.mkdir(t)
    kmount.mount("tmpfs", t, "tmpfs", 0, "size=64m")
    os.makedirs(f"{t}/d1/d2/d3")
    _write(f"{t}/d1/d2/d3/deep", b"deep\n")
    fd = os.open(f"{t}/sparse", os.O_WRONLY | os.O_CREAT, 0o644)
    os.ftruncate(fd, 20 * MIB)
    for at in (0, 10 * MIB, 20 * MIB - 4096):
        os.pwrite(fd, b"%d" % at * 100, at)
    os.close(fd)
    _write(f"{t}/empty")
    fd = os.open(f"{t}/tail-hole", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"head")
    os.ftruncate(fd, 3 * MIB)
    os.close(fd)
    _write(t + "/" + os.fsdecode(b"caf\xe9"), b"a name that is no UTF-8")
    _write(f"{t}/private", b"secret")
    os.chmod(f"{t}/private", 0o600)
    _write(f"{t}/suid", b"#!/bin/true\n")
    os.chown(f"{t}/suid", *OWNER)
    os.setxattr(f"{t}/suid", "security.capability", CAPS)
    os.chmod(f"{t}/suid", 0o4755)
    os.mkdir(f"{t}/sticky")
    os.chown(f"{t}/sticky", *OWNER)
    os.chmod(f"{t}/sticky", 0o1777)
    os.symlink("d1/d2", f"{t}/rel")
    os.symlink("/t/d1", f"{t}/abs")
    os.symlink("nowhere", f"{t}/dangling")
    os.symlink("/etc/passwd", f"{t}/passwd")
    os.setxattr(f"{t}/rel", "trusted.on-a-link", b"l", follow_symlinks=False)
    _write(f"{t}/h1", b"one inode, three names")
    os.link(f"{t}/h1", f"{t}/d1/h2")
    os.link(f"{t}/h1", f"{t}/d1/d2/h3")
    for path in (f"{t}/h1", f"{t}/d1"):
        os.setxattr(path, "user.u", b"user value")
        os.setxattr(path, "trusted.t", b"\x00\x01trusted")
        os.setxattr(path, "security.s", b"security value")
    os.mkfifo(f"{t}/fifo", 0o640)
    os.mknod(f"{t}/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mkdir(f"{t}/mp")
    _write(f"{t}/mp/hidden", b"under a mount")
    for i, path in enumerate(_all(t)):      # bottom-up: a directory after its entries
        os.utime(path, ns=(T0 + 7 * i + 3, T0 + 11 * i), follow_symlinks=False)
    # a tmpfs on mp, and one over the whole tmpfs: neither's content may be dumped
    kmount.mount("tmpfs", f"{t}/mp", "tmpfs", 0, "size=1m")
    _write(f"{t}/mp/mounted", b"on the mount")
    kmount.mount("tmpfs", t, "tmpfs", 0, "size=1m")
    _write(f"{t}/over", b"over the tmpfs")
    return {"point": t, "dev": _lower_dev(t)}


def _all(top):
    for root, dirs, files in os.walk(top, topdown=False):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            yield os.path.join(root, name)
        for name in dirs:
            if not os.path.islink(os.path.join(root, name)):
                yield os.path.join(root, name)
    yield top


# --- the tests ----------------------------------------------------------------------

def test_round_trip_through_an_uncovered_view():
    with _tree(_build_full) as (pid, info):
        point = info["point"]
        covers = (point, f"{point}/mp")
        before = _source(pid, point, covers)
        with open(f"/proc/{pid}/mountinfo") as f:
            table = f.read()
        image = os.path.join(os.path.dirname(point), "mnt-content.img")
        got = _dump(pid, [("the-tmpfs", point, "/", info["dev"])], image, head=b"HEAD")
        # the dump changed nothing of the tree: files (atimes too), mounts
        assert _source(pid, point, covers) == before
        with open(f"/proc/{pid}/mountinfo") as f:
            assert f.read() == table
        entries = got["the-tmpfs"]["entries"]
        with open(image, "rb") as f:
            raw = f.read()
        assert raw[:4] == b"HEAD" and raw[-4:] == b"TAIL"
        assert len(raw) == got["the-tmpfs"]["bytes"] + 8
        after = _ok(_restore(entries, image, os.path.dirname(point) + "/restored"))
    assert after == before
    kinds = {e["path"]: e["type"] for e in entries}
    assert entries[0]["path"] == "" and kinds[""] == "d"
    assert {kinds[p] for p in ("h1", "d1/h2", "d1/d2/h3")} == {"f", "h"}
    assert (kinds["fifo"], kinds["null"], kinds["passwd"]) == ("p", "c", "l")
    assert "mp/hidden" in after and "mp/mounted" not in after and "over" not in after
    assert after["sparse"]["regions"] == [[0, 4096], [10 * MIB, 4096], [20 * MIB - 4096, 4096]]
    assert (after["tail-hole"]["size"], after["tail-hole"]["regions"]) == (3 * MIB, [[0, 4096]])
    assert os.fsdecode(b"caf\xe9") in after
    assert after["suid"]["mode"] == stat.S_IFREG | 0o4755
    assert after["suid"]["xattrs"]["security.capability"] == CAPS.hex()
    assert (after["suid"]["uid"], after["suid"]["gid"]) == OWNER
    assert {(after[p]["nlink"], after[p]["ino"]) for p in ("h1", "d1/h2", "d1/d2/h3")} == \
        {(3, "d1/d2/h3")}
    assert set(after["d1"]["xattrs"]) == {"user.u", "trusted.t", "security.s"}
    assert after["null"]["rdev"] == [1, 3]
    assert after["sparse"]["atime_ns"] != after["sparse"]["mtime_ns"]


def _build_sub(top):
    t, b = f"{top}/t", f"{top}/b"
    os.mkdir(t)
    os.mkdir(b)
    kmount.mount("tmpfs", t, "tmpfs", 0, "size=1m")
    os.makedirs(f"{t}/sub/deeper")
    os.makedirs(f"{t}/other")
    _write(f"{t}/sub/a", b"a")
    _write(f"{t}/sub/deeper/b", b"b")
    _write(f"{t}/other/c", b"c")
    os.chmod(f"{t}/sub", 0o751)
    kmount.mount(f"{t}/sub", b, None, kmount.MS_BIND)
    return {"point": b, "dev": _lower_dev(t)}


def test_a_bind_of_a_subdirectory_gives_that_subtree():
    with _tree(_build_sub) as (pid, info):
        image = os.path.join(os.path.dirname(info["point"]), "img")
        got = _dump(pid, [(7, info["point"], "/sub", info["dev"])], image)
        with pytest.raises(DumpError, match=r"no mount .* /other at "):
            _dump(pid, [(8, info["point"], "/other", info["dev"])], image)
    entries = got[7]["entries"]
    assert [e["path"] for e in entries] == ["", "a", "deeper", "deeper/b"]
    assert entries[0]["mode"] == 0o751
    assert got[7]["bytes"] == 2


def _build_socket(top):
    t = f"{top}/t"
    os.mkdir(t)
    kmount.mount("tmpfs", t, "tmpfs", 0, "size=1m")
    os.mkdir(f"{t}/d")
    s = socket.socket(socket.AF_UNIX)
    s.bind(f"{t}/d/sock")
    s.close()
    return {"point": t, "dev": _lower_dev(t)}


def test_a_socket_file_is_refused_by_its_path():
    with _tree(_build_socket) as (pid, info):
        image = os.path.join(os.path.dirname(info["point"]), "img")
        with pytest.raises(Unsupported) as e:
            _dump(pid, [("s", info["point"], "/", info["dev"])], image)
    assert str(e.value).startswith("unsupported: socket file ")
    assert f"{info['point']}/d/sock" in str(e.value)


def _build_owned(top):
    t = f"{top}/t"
    os.mkdir(t)
    kmount.mount("tmpfs", t, "tmpfs", 0, "size=1m")
    os.mkdir(f"{t}/d")
    _write(f"{t}/d/f", b"x")
    os.chown(f"{t}/d/f", *OWNER)
    os.chmod(f"{t}/d/f", 0o6755)
    os.symlink("f", f"{t}/d/l")
    os.chown(f"{t}/d/l", 10, 20, follow_symlinks=False)
    return {"point": t, "dev": _lower_dev(t)}


def test_fill_gives_ids_as_translated():
    with _tree(_build_owned) as (pid, info):
        top = os.path.dirname(info["point"])
        got = _dump(pid, [("o", info["point"], "/", info["dev"])], f"{top}/img")
        after = _ok(_restore(got["o"], f"{top}/img", f"{top}/restored",   # the whole answer
                             ids=lambda u, g: (u + 1, g + 1)))
    assert (after["d/f"]["uid"], after["d/f"]["gid"]) == (OWNER[0] + 1, OWNER[1] + 1)
    assert after["d/f"]["mode"] == stat.S_IFREG | 0o6755    # chown did not clear them
    assert (after["d/l"]["uid"], after["d/l"]["gid"]) == (11, 21)
    assert (after[""]["uid"], after["d"]["gid"]) == (1, 1)


def _build_planted(top):
    t = f"{top}/t"
    os.mkdir(t)
    kmount.mount("tmpfs", t, "tmpfs", 0, "size=1m")
    os.symlink("/etc/shadow", f"{t}/shadow")
    os.symlink("/etc", f"{t}/etc")
    os.symlink("../../../../../etc/passwd", f"{t}/passwd")
    os.symlink("..", f"{t}/up")
    os.mkdir(f"{t}/d")
    os.symlink("/etc", f"{t}/d/etc")
    return {"point": t, "dev": _lower_dev(t)}


def test_planted_symlinks_are_never_followed_by_the_dump():
    with _tree(_build_planted) as (pid, info):
        image = os.path.join(os.path.dirname(info["point"]), "img")
        got = _dump(pid, [("p", info["point"], "/", info["dev"])], image)
        with open(image, "rb") as f:
            raw = f.read()
    entries = {e["path"]: e for e in got["p"]["entries"]}
    assert set(entries) == {"", "shadow", "etc", "passwd", "up", "d", "d/etc"}
    assert {entries[p]["type"] for p in ("shadow", "etc", "passwd", "up", "d/etc")} == {"l"}
    assert entries["shadow"]["target"] == "/etc/shadow"
    assert got["p"]["bytes"] == 0 and raw == b"TAIL"


def test_fill_follows_no_symlink_and_no_dotdot():
    outside = tempfile.mkdtemp(prefix="mnt-content-outside-")
    try:
        meta = {"mode": 0o644, "uid": 0, "gid": 0, "atime_ns": T0, "mtime_ns": T0,
                "xattrs": {}}
        root = dict(meta, path="", type="d", mode=0o755)
        cases = [
            [root, dict(meta, path="esc", type="l", target=outside),
             dict(meta, path="esc/f", type="f", size=0, data=[])],
            [root, dict(meta, path="../f", type="f", size=0, data=[])],
            [root, dict(meta, path="esc", type="l", target=outside),
             dict(meta, path="esc", type="f", size=0, data=[])],
        ]
        for entries in cases:
            answer = _restore(entries, "/dev/null", outside)
            assert answer["error"] == RestoreError.__name__, answer
            assert answer["message"].startswith("prepare: ")
            assert repr(entries[-1]["path"]) in answer["message"]
            assert os.listdir(outside) == []
    finally:
        shutil.rmtree(outside)


def _build_in_userns(top):
    t = f"{top}/t"
    os.mkdir(t)
    kmount.mount("tmpfs", t, "tmpfs", 0, "size=1m")
    _write(f"{t}/f", b"in a user namespace")
    os.chown(f"{t}/f", 1, 2)
    os.mkdir(f"{t}/mp")
    _write(f"{t}/mp/hidden")
    kmount.mount("tmpfs", f"{t}/mp", "tmpfs", 0, "size=1m")
    kmount.mount("tmpfs", t, "tmpfs", 0, "size=1m")
    _write(f"{t}/over")
    return {"point": t, "dev": _lower_dev(t)}


def test_a_tree_in_its_own_user_namespace():
    # a copy of its namespace made from ours would lock every mount: none could be peeled
    base = 300000
    with _tree(_build_in_userns, userns_base=base) as (pid, info):
        image = os.path.join(os.path.dirname(info["point"]), "img")
        got = _dump(pid, [("u", info["point"], "/", info["dev"])], image)
    entries = {e["path"]: e for e in got["u"]["entries"]}
    assert set(entries) == {"", "f", "mp", "mp/hidden"}
    assert (entries["f"]["uid"], entries["f"]["gid"]) == (base + 1, base + 2)   # as we see them
    assert (entries[""]["uid"], entries["mp/hidden"]["uid"]) == (base, base)
