"""Mount interfaces, each used for real in a private mount namespace.

Everything that mounts runs in a forked child that first unshares its mount
namespace (plus a user namespace when the prober lacks CAP_SYS_ADMIN, which
gives it the privilege inside), makes ``/`` recursively private and puts a
fresh tmpfs over ``/tmp``: all the experiments live in that tmpfs and vanish
with the child, so the host mount table is never touched and two probers
never meet.  Read-only interfaces (statmount, listmount, statx, fdinfo,
openat2) are used in-process.

An experiment records the errno of each step (0 = ok) and stops at the
first failing one; judges name that step and its errno.
"""

import errno
import functools
import mmap
import os

from kernel import caps, mount
from kernel.procfs import mountinfo
from kernel.namespaces import CLONE_NEWNS, CLONE_NEWUSER, map_self, ns_get_mntns_id, unshare

from .common import closing_fds
from .registry import absent, errname, never_merged, present, probe, undecided
from .sandbox import in_child

SYS_ADMIN = "CAP_SYS_ADMIN"


# --- experiments made of steps ---------------------------------------------------------------

class StepFailed(Exception):
    """A step of an experiment failed; its errno is recorded."""


class Steps:
    """The errno of each named step (0 = ok) and whatever else an experiment saw."""

    def __init__(self):
        self.seen = {}
        self.data = {}

    def __call__(self, name, fn, *args, **kwargs):
        try:
            value = fn(*args, **kwargs)
        except OSError as e:
            self.seen[name] = e.errno or errno.EIO
            raise StepFailed(name) from None
        self.seen[name] = 0
        return value

    def observation(self):
        return {"steps": self.seen, **self.data}


def stepwise(fn):
    """Run ``fn(steps, *args)``; return its observation even when a step failed."""
    @functools.wraps(fn)
    def run(*args):
        steps = Steps()
        try:
            fn(steps, *args)
        except StepFailed:
            pass
        return steps.observation()
    return run



def first_failure(observation):
    """(step, errno) of the first failed step, or None."""
    for step, code in observation.get("steps", {}).items():
        if code:
            return step, code
    return None


def steps_judge(labels, absent_on=(), finish=None):
    """A judge for a stepwise observation.

    ``labels``: step -> how the detail names it; ``absent_on``: (step, errno
    name) pairs that mean the interface is missing; ``finish(observation)``
    decides when every step succeeded.
    """
    missing = frozenset(absent_on)

    def judge(observation):
        if observation.get("skipped"):
            return undecided(observation["skipped"])
        failed = first_failure(observation)
        if failed is None:
            return finish(observation)
        step, code = failed
        seen = f"{labels.get(step, step)} -> {errname(code)}"
        if (step, errname(code)) in missing:
            return absent(seen)
        return undecided(f"unexpected: {seen}")
    return judge


def fail(steps=None, step="x", code=errno.EPERM, **data):
    """An observation whose ``step`` failed with ``code`` (for examples)."""
    seen = dict(steps or {})
    seen[step] = code
    return {"steps": seen, **data}


# --- the private mount namespace ------------------------------------------------------------

def _work_dir():
    """An existing directory to hide under the experiments' private tmpfs."""
    for candidate in ("/tmp", "/var/tmp", "/mnt", "/run", "/dev/shm"):
        if os.path.isdir(candidate) and not os.path.islink(candidate):
            return candidate
    return "/tmp"


WORK = _work_dir()  # a private tmpfs is mounted here in every experiment


def privileged():
    return caps.has(SYS_ADMIN)


def in_private_mntns(fn, *args, extra_flags=0, timeout=2.0):
    """``fn(*args)`` in a child with a private mount namespace and a tmpfs on WORK (/tmp).

    Without CAP_SYS_ADMIN the child first enters a new user namespace in
    which it is root (its own uid mapped to 0), which is enough for tmpfs,
    bind mounts, overlayfs and the mount API.
    """
    userns = not privileged()
    flags = CLONE_NEWNS | extra_flags | (CLONE_NEWUSER if userns else 0)
    uid, gid = os.getuid(), os.getgid()

    def inside():
        if userns:
            map_self(uid, gid)
        mount.mount(None, "/", None, mount.MS_REC | mount.MS_PRIVATE)
        mount.mount("crbench", WORK, "tmpfs", 0, "mode=0700")
        return fn(*args)
    return in_child(inside, unshare_flags=flags, timeout=timeout)


def mounts_at(mount_point, table=None):
    """The mountinfo entries at ``mount_point``, bottom first."""
    return [m for m in (table or mountinfo()) if m["mount_point"] == mount_point]


def top_mount(mount_point):
    found = mounts_at(mount_point)
    return found[-1] if found else None


def optional_tag(entry, tag):
    """The number of a ``shared:N`` / ``master:N`` optional field, or None."""
    for field in entry["optional"] if entry else ():
        if field.startswith(tag + ":"):
            return int(field.split(":", 1)[1])
    return None


def registered_filesystem(name):
    """Is ``name`` in /proc/filesystems (so mounting it loads no module)?"""
    with open("/proc/filesystems") as f:
        return any(line.split()[-1] == name for line in f if line.strip())


# --- the new mount API -----------------------------------------------------------------------

@stepwise
def _new_mount_api(s):
    target = f"{WORK}/newapi"
    os.mkdir(target)
    with closing_fds() as fds:
        fd = s("fsopen", mount.fsopen, "tmpfs", mount.FSOPEN_CLOEXEC)
        fds.append(fd)
        s("fsconfig_set", mount.fsconfig, fd, mount.FSCONFIG_SET_STRING, "size", "1m")
        s("fsconfig_create", mount.fsconfig, fd, mount.FSCONFIG_CMD_CREATE)
        mfd = s("fsmount", mount.fsmount, fd, mount.FSMOUNT_CLOEXEC, mount.MOUNT_ATTR_NODEV)
        fds.append(mfd)
        s("move_mount", mount.move_mount, mfd, "", mount.AT_FDCWD, target,
          mount.MOVE_MOUNT_F_EMPTY_PATH)
        entry = top_mount(target)
        s.data["mounted"] = bool(entry and entry["fstype"] == "tmpfs"
                                 and "nodev" in entry["options"].split(","))
        pfd = s("fspick", mount.fspick, mount.AT_FDCWD, target, mount.FSPICK_CLOEXEC)
        fds.append(pfd)
        s("fsconfig_size", mount.fsconfig, pfd, mount.FSCONFIG_SET_STRING, "size", "2m")
        s("fsconfig_reconfigure", mount.fsconfig, pfd, mount.FSCONFIG_CMD_RECONFIGURE)
        entry = top_mount(target)
        s.data["reconfigured"] = bool(entry and "size=2048k" in entry["super_options"])


def _finish_new_mount_api(obs):
    if not obs.get("mounted"):
        return undecided("fsmount + move_mount returned 0 but no nodev tmpfs is mounted")
    more = ("; fspick + FSCONFIG_CMD_RECONFIGURE resized it" if obs.get("reconfigured")
            else "; fspick reconfigure did not show")
    return present(f"fsopen/fsconfig/fsmount/move_mount mounted a nodev tmpfs{more}")


_NEW_API_OK = {"fsopen": 0, "fsconfig_set": 0, "fsconfig_create": 0, "fsmount": 0,
               "move_mount": 0, "fspick": 0, "fsconfig_size": 0, "fsconfig_reconfigure": 0}


@probe("new_mount_api", "mounts", since="5.2", needs=SYS_ADMIN,
       judge=steps_judge({"fsopen": 'fsopen("tmpfs")'}, absent_on={("fsopen", "ENOSYS")},
                         finish=_finish_new_mount_api),
       examples=[({"steps": _NEW_API_OK, "mounted": True, "reconfigured": True}, True),
                 ({"steps": _NEW_API_OK, "mounted": False, "reconfigured": False}, None),
                 (fail(step="fsopen", code=errno.ENOSYS), False),
                 (fail({"fsopen": 0}, "fsconfig_set", errno.EINVAL), None),
                 (fail(step="fsopen", code=errno.EPERM), None)])
def new_mount_api():
    """fsopen/fsconfig/fsmount/move_mount/fspick (5.2): build and attach a tmpfs by fd."""
    return in_private_mntns(_new_mount_api)


@stepwise
def _open_tree(s):
    src, dst = f"{WORK}/ot/src", f"{WORK}/ot/dst"
    os.makedirs(src)
    os.mkdir(dst)
    open(f"{src}/marker", "w").close()
    with closing_fds() as fds:
        fd = s("open_tree", mount.open_tree, mount.AT_FDCWD, src,
               mount.OPEN_TREE_CLONE | mount.OPEN_TREE_CLOEXEC)
        fds.append(fd)
        s("move_mount", mount.move_mount, fd, "", mount.AT_FDCWD, dst,
          mount.MOVE_MOUNT_F_EMPTY_PATH)
    entry = top_mount(dst)
    s.data["root"] = entry["root"] if entry else None
    s.data["marker"] = os.path.exists(f"{dst}/marker")


def _finish_open_tree(obs):
    if obs.get("marker") and obs.get("root") == "/ot/src":
        return present("open_tree(OPEN_TREE_CLONE) + move_mount attached a bind of /ot/src")
    return undecided(f"attached, but the copy shows root {obs.get('root')!r}, "
                     f"marker {'seen' if obs.get('marker') else 'missing'}")


@probe("open_tree", "mounts", since="5.2", needs=SYS_ADMIN,
       judge=steps_judge({"open_tree": "open_tree(OPEN_TREE_CLONE)"},
                         absent_on={("open_tree", "ENOSYS")}, finish=_finish_open_tree),
       examples=[({"steps": {"open_tree": 0, "move_mount": 0}, "root": "/ot/src",
                   "marker": True}, True),
                 ({"steps": {"open_tree": 0, "move_mount": 0}, "root": "/", "marker": False},
                  None),
                 (fail(step="open_tree", code=errno.ENOSYS), False),
                 (fail({"open_tree": 0}, "move_mount", errno.EINVAL), None)])
def open_tree():
    """open_tree(OPEN_TREE_CLONE) (5.2): a detached copy of a mount tree, attached elsewhere."""
    return in_private_mntns(_open_tree)


@stepwise
def _set_group(s):
    top = f"{WORK}/grp"
    sub = f"{top}/subdir"
    os.mkdir(top)
    s("mount_tmpfs", mount.mount, "crbench.set_group", top, "tmpfs")
    s("make_private", mount.mount, None, top, None, mount.MS_PRIVATE)
    os.mkdir(sub)
    s("bind", mount.mount, sub, sub, None, mount.MS_BIND)
    s("make_shared", mount.mount, None, top, None, mount.MS_SHARED)
    s.data["before"] = optional_tag(top_mount(sub), "shared")
    s("set_group", mount.move_mount, mount.AT_FDCWD, top, mount.AT_FDCWD, sub,
      mount.MOVE_MOUNT_SET_GROUP)
    s.data["groups"] = [optional_tag(top_mount(top), "shared"),
                        optional_tag(top_mount(sub), "shared")]


def _finish_set_group(obs):
    tmpfs_group, bind_group = obs.get("groups") or (None, None)
    if tmpfs_group is not None and tmpfs_group == bind_group:
        return present(f"move_mount(MOVE_MOUNT_SET_GROUP) -> 0; the bind joined peer group "
                       f"{tmpfs_group}")
    return undecided(f"move_mount(MOVE_MOUNT_SET_GROUP) -> 0 but the bind is in group "
                     f"{bind_group}, the tmpfs in {tmpfs_group}")


_SET_GROUP_OK = {"mount_tmpfs": 0, "make_private": 0, "bind": 0, "make_shared": 0,
                 "set_group": 0}


@probe("move_mount_set_group", "mounts", since="5.15", criu_name="move_mount_set_group",
       needs=SYS_ADMIN,
       judge=steps_judge({"set_group": "move_mount(MOVE_MOUNT_SET_GROUP)"},
                         absent_on={("set_group", "EINVAL"), ("set_group", "ENOSYS")},
                         finish=_finish_set_group),
       examples=[({"steps": _SET_GROUP_OK, "before": None, "groups": [12, 12]}, True),
                 ({"steps": _SET_GROUP_OK, "before": None, "groups": [12, None]}, None),
                 (fail({"mount_tmpfs": 0, "make_private": 0, "bind": 0, "make_shared": 0},
                       "set_group", errno.EINVAL), False),
                 (fail({"mount_tmpfs": 0, "make_private": 0, "bind": 0, "make_shared": 0},
                       "set_group", errno.ENOSYS), False),
                 (fail({"mount_tmpfs": 0, "make_private": 0, "bind": 0, "make_shared": 0},
                       "set_group", errno.EPERM), None),
                 (fail(step="mount_tmpfs", code=errno.EPERM), None)])
def move_mount_set_group():
    """MOVE_MOUNT_SET_GROUP (5.15): put a mount into an existing peer group.

    CRIU's kerndat experiment: a tmpfs with a bind of its subdir, the tmpfs
    made shared, then move_mount(tmpfs, subdir, MOVE_MOUNT_SET_GROUP); 0 is
    present, EINVAL/ENOSYS absent.  Then mountinfo must show both in one group.
    """
    return in_private_mntns(_set_group)


@stepwise
def _beneath(s):
    target = f"{WORK}/beneath"
    os.mkdir(target)
    s("mount_top", mount.mount, "crbench.top", target, "tmpfs")
    open(f"{target}/top", "w").close()
    with closing_fds() as fds:
        fd = s("fsopen", mount.fsopen, "tmpfs", mount.FSOPEN_CLOEXEC)
        fds.append(fd)
        s("fsconfig_create", mount.fsconfig, fd, mount.FSCONFIG_CMD_CREATE)
        mfd = s("fsmount", mount.fsmount, fd, mount.FSMOUNT_CLOEXEC, 0)
        fds.append(mfd)
        os.close(os.open("beneath", os.O_CREAT | os.O_WRONLY, 0o600, dir_fd=mfd))
        s("beneath", mount.move_mount, mfd, "", mount.AT_FDCWD, target,
          mount.MOVE_MOUNT_F_EMPTY_PATH | mount.MOVE_MOUNT_BENEATH)
    s.data["top_still_visible"] = os.path.exists(f"{target}/top")
    s("umount_top", mount.umount2, target, 0)
    s.data["revealed"] = os.path.exists(f"{target}/beneath")


def _finish_beneath(obs):
    if obs.get("top_still_visible") and obs.get("revealed"):
        return present("move_mount(MOVE_MOUNT_BENEATH) -> 0; the new tmpfs went under the "
                       "top mount and appeared when it was unmounted")
    return undecided(f"move_mount(MOVE_MOUNT_BENEATH) -> 0 but top visible: "
                     f"{obs.get('top_still_visible')}, revealed: {obs.get('revealed')}")


_BENEATH_BEFORE = {"mount_top": 0, "fsopen": 0, "fsconfig_create": 0, "fsmount": 0}


@probe("move_mount_beneath", "mounts", since="6.5", needs=SYS_ADMIN,
       judge=steps_judge({"beneath": "move_mount(MOVE_MOUNT_BENEATH)", "fsopen": "fsopen"},
                         absent_on={("beneath", "EINVAL"), ("fsopen", "ENOSYS")},
                         finish=_finish_beneath),
       examples=[({"steps": {**_BENEATH_BEFORE, "beneath": 0, "umount_top": 0},
                   "top_still_visible": True, "revealed": True}, True),
                 ({"steps": {**_BENEATH_BEFORE, "beneath": 0, "umount_top": 0},
                   "top_still_visible": False, "revealed": False}, None),
                 (fail(_BENEATH_BEFORE, "beneath", errno.EINVAL), False),
                 (fail({"mount_top": 0}, "fsopen", errno.ENOSYS), False),
                 (fail(_BENEATH_BEFORE, "beneath", errno.EPERM), None)])
def move_mount_beneath():
    """MOVE_MOUNT_BENEATH (6.5): mount under the top mount of a stack (atomic replace)."""
    return in_private_mntns(_beneath)


@stepwise
def _setattr(s):
    target = f"{WORK}/setattr"
    os.mkdir(target)
    s("mount", mount.mount, "crbench.setattr", target, "tmpfs")
    attr = mount.MountAttr(attr_set=mount.MOUNT_ATTR_RDONLY | mount.MOUNT_ATTR_NOSUID)
    s("mount_setattr", mount.mount_setattr, mount.AT_FDCWD, target, 0, attr)
    entry = top_mount(target)
    s.data["options"] = entry["options"] if entry else None
    try:
        os.close(os.open(f"{target}/file", os.O_CREAT | os.O_WRONLY, 0o600))
        s.data["create"] = 0
    except OSError as e:
        s.data["create"] = e.errno


def _finish_setattr(obs):
    options = (obs.get("options") or "").split(",")
    if "ro" in options and "nosuid" in options and obs.get("create") == errno.EROFS:
        return present("mount_setattr(RDONLY|NOSUID) -> 0; mountinfo shows ro,nosuid and "
                       "creating a file -> EROFS")
    return undecided(f"mount_setattr -> 0 but options {obs.get('options')!r}, "
                     f"create -> {errname(obs.get('create', 0))}")


@probe("mount_setattr", "mounts", since="5.12", needs=SYS_ADMIN,
       judge=steps_judge({"mount_setattr": "mount_setattr(MOUNT_ATTR_RDONLY)"},
                         absent_on={("mount_setattr", "ENOSYS")}, finish=_finish_setattr),
       examples=[({"steps": {"mount": 0, "mount_setattr": 0}, "options": "ro,nosuid,relatime",
                   "create": errno.EROFS}, True),
                 ({"steps": {"mount": 0, "mount_setattr": 0}, "options": "rw,relatime",
                   "create": 0}, None),
                 (fail({"mount": 0}, "mount_setattr", errno.ENOSYS), False),
                 (fail({"mount": 0}, "mount_setattr", errno.EINVAL), None)])
def mount_setattr():
    """mount_setattr(2) (5.12): change mount attributes (ro, nosuid, idmap, propagation)."""
    return in_private_mntns(_setattr)


# --- idmapped mounts -------------------------------------------------------------------------

IDMAP_BASE = 100000  # the uid/gid that 0 is mapped to by the idmapped mount


def _userns_fd_with_mapping(outer, count=1000):
    """An fd of a fresh user namespace mapping 0..count-1 to outer..; needs real root.

    A grandchild creates the namespace and waits; we write its maps, open its
    ns/user and let it go (it also goes when we die: its read end sees EOF).
    """
    ready_r, ready_w = os.pipe()
    hold_r, hold_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        os.close(hold_w)
        try:
            unshare(CLONE_NEWUSER)
            os.write(ready_w, b"1")
            os.read(hold_r, 1)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(hold_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise OSError(errno.ECHILD, "user namespace helper died")
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(f"0 {outer} {count}")
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(hold_w)
        os.waitpid(pid, 0)


@stepwise
def _idmap(s, real_root):
    if not real_root:
        s.data["skipped"] = "an idmapped mount needs a second uid range: run as root"
        return
    src, dst = f"{WORK}/idm/src", f"{WORK}/idm/dst"
    os.makedirs(src)
    os.mkdir(dst)
    s("mount", mount.mount, "crbench.idmap", src, "tmpfs")
    open(f"{src}/file", "w").close()
    with closing_fds() as fds:
        userns = s("userns", _userns_fd_with_mapping, IDMAP_BASE)
        fds.append(userns)
        tree = s("open_tree", mount.open_tree, mount.AT_FDCWD, src,
                 mount.OPEN_TREE_CLONE | mount.OPEN_TREE_CLOEXEC)
        fds.append(tree)
        attr = mount.MountAttr(attr_set=mount.MOUNT_ATTR_IDMAP, userns_fd=userns)
        s("mount_setattr", mount.mount_setattr, tree, "", mount.AT_EMPTY_PATH, attr)
        s("move_mount", mount.move_mount, tree, "", mount.AT_FDCWD, dst,
          mount.MOVE_MOUNT_F_EMPTY_PATH)
    s.data["uid"] = [os.stat(f"{src}/file").st_uid, os.stat(f"{dst}/file").st_uid]


def _finish_idmap(obs):
    before, after = obs.get("uid") or (None, None)
    if before == 0 and after == IDMAP_BASE:
        return present(f"MOUNT_ATTR_IDMAP on a tmpfs -> 0; a file of uid 0 shows as uid "
                       f"{after} through the idmapped mount")
    return undecided(f"MOUNT_ATTR_IDMAP -> 0 but uid {before} shows as {after}")


_IDMAP_BEFORE = {"mount": 0, "userns": 0, "open_tree": 0}


@probe("idmapped_mounts", "mounts", since="5.12 (tmpfs: 6.3)", needs=SYS_ADMIN,
       judge=steps_judge({"mount_setattr": "mount_setattr(MOUNT_ATTR_IDMAP) on tmpfs",
                          "open_tree": "open_tree"},
                         absent_on={("mount_setattr", "EINVAL"), ("mount_setattr", "ENOSYS"),
                                    ("open_tree", "ENOSYS")},
                         finish=_finish_idmap),
       examples=[({"steps": {**_IDMAP_BEFORE, "mount_setattr": 0, "move_mount": 0},
                   "uid": [0, IDMAP_BASE]}, True),
                 ({"steps": {**_IDMAP_BEFORE, "mount_setattr": 0, "move_mount": 0},
                   "uid": [0, 0]}, None),
                 (fail(_IDMAP_BEFORE, "mount_setattr", errno.EINVAL), False),
                 (fail(_IDMAP_BEFORE, "mount_setattr", errno.ENOSYS), False),
                 (fail({"mount": 0, "userns": 0}, "open_tree", errno.ENOSYS), False),
                 (fail(_IDMAP_BEFORE, "mount_setattr", errno.EPERM), None),
                 ({"steps": {}, "skipped": "run as root"}, None)])
def idmapped_mounts():
    """MOUNT_ATTR_IDMAP (5.12; tmpfs can be idmapped since 6.3): an idmapped bind of a tmpfs."""
    return in_private_mntns(_idmap, privileged() and os.geteuid() == 0)


# --- propagation as mountinfo shows it -------------------------------------------------------

@stepwise
def _propagation(s):
    a, b, c = (f"{WORK}/prop{x}" for x in "abc")
    for d in (a, b, c):
        os.mkdir(d)
    s("mount", mount.mount, "crbench.prop", a, "tmpfs")
    s("make_shared", mount.mount, None, a, None, mount.MS_SHARED)
    s("bind_peer", mount.mount, a, b, None, mount.MS_BIND)
    s("bind_slave", mount.mount, a, c, None, mount.MS_BIND)
    s("make_slave", mount.mount, None, c, None, mount.MS_SLAVE)
    table = mountinfo()
    s.data["fields"] = {}
    for name, d in (("a", a), ("b", b), ("c", c)):
        found = mounts_at(d, table)
        s.data["fields"][name] = found[-1]["optional"] if found else None


def _tag(fields, tag):
    return optional_tag({"optional": fields or []}, tag)


def _finish_propagation(obs):
    f = obs.get("fields") or {}
    group = _tag(f.get("a"), "shared")
    if group is not None and _tag(f.get("b"), "shared") == group \
            and _tag(f.get("c"), "master") == group:
        return present(f"mountinfo shows shared:{group} on the tmpfs and its peer bind, "
                       f"master:{group} on the slave bind")
    return absent(f"mountinfo optional fields: {f}")


_PROP_OK = {"mount": 0, "make_shared": 0, "bind_peer": 0, "bind_slave": 0, "make_slave": 0}


@probe("mountinfo_propagation", "mounts", since="2.6.26", needs=SYS_ADMIN,
       judge=steps_judge({}, finish=_finish_propagation),
       examples=[({"steps": _PROP_OK, "fields": {"a": ["shared:7"], "b": ["shared:7"],
                                                 "c": ["master:7"]}}, True),
                 ({"steps": _PROP_OK, "fields": {"a": [], "b": [], "c": []}}, False),
                 (fail({"mount": 0}, "make_shared", errno.EINVAL), None)])
def mountinfo_propagation():
    """/proc/pid/mountinfo shared:N / master:N fields: how peer groups are dumped."""
    return in_private_mntns(_propagation)


# --- overlayfs ----------------------------------------------------------------------------

@stepwise
def _overlay(s):
    if not registered_filesystem("overlay"):
        s.data["registered"] = False  # mounting it could load a module: not tried
        return
    s.data["registered"] = True
    base = f"{WORK}/ovl"
    dirs = {n: f"{base}/{n}" for n in ("lower", "upper", "work", "merged")}
    for d in dirs.values():
        os.makedirs(d)
    with open(f"{dirs['lower']}/file", "wb") as f:
        f.write(b"x" * mmap.PAGESIZE)
    options = f"lowerdir={dirs['lower']},upperdir={dirs['upper']},workdir={dirs['work']}"
    s("mount_overlay", mount.mount, "crbench.overlay", dirs["merged"], "overlay", 0, options)
    entry = top_mount(dirs["merged"])
    s.data["super_options"] = entry["super_options"] if entry else ""
    path = f"{dirs['merged']}/file"
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        s.data["stat"] = [os.major(st.st_dev), os.minor(st.st_dev), st.st_ino]
        mapping = mmap.mmap(fd, mmap.PAGESIZE, mmap.MAP_SHARED, mmap.PROT_READ)
        try:
            s.data["maps"] = _maps_dev_ino(path)
        finally:
            mapping.close()
    finally:
        os.close(fd)


def _maps_dev_ino(path):
    """[major, minor, inode] of the first /proc/self/maps line mapping ``path``."""
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split(None, 5)
            if len(fields) == 6 and fields[5].rstrip("\n") == path:
                major, minor = fields[3].split(":")
                return [int(major, 16), int(minor, 16), int(fields[4])]
    return None


@stepwise
def _proc_pidns(s):
    with closing_fds() as fds:
        fd = s("fsopen", mount.fsopen, "proc")
        fds.append(fd)
        ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        fds.append(ns)
        s("fsconfig_pidns", mount.fsconfig, fd, mount.FSCONFIG_SET_FD, "pidns", None, ns)
        s("fsconfig_create", mount.fsconfig, fd, mount.FSCONFIG_CMD_CREATE)
        fds.append(s("fsmount", mount.fsmount, fd))


@probe("proc_pidns_option", "mounts", since="6.18", needs=SYS_ADMIN,
       judge=steps_judge({"fsopen": 'fsopen("proc")', "fsconfig_pidns": "fsconfig(pidns=fd)"},
                         absent_on={("fsopen", "ENOSYS"), ("fsconfig_pidns", "EINVAL")},
                         finish=lambda obs: present("a proc mount made for the pid namespace "
                                                    "of an fd (fsconfig pidns)")),
       examples=[({"steps": {"fsopen": 0, "fsconfig_pidns": 0, "fsconfig_create": 0,
                             "fsmount": 0}}, True),
                 (fail({"fsopen": 0}, "fsconfig_pidns", errno.EINVAL), False),
                 (fail(step="fsopen", code=errno.EPERM), None)])
def proc_pidns_option():
    """proc's ``pidns`` option (an nsfs fd through fsconfig): a proc mount for a pid
    namespace other than the mounter's, how a restore can make a tree's /proc before the
    namespace's init runs anything."""
    return in_private_mntns(_proc_pidns)


@stepwise
def _tmpfs_user_xattr(s):
    where = f"{WORK}/xattr"
    os.mkdir(where)
    s("mount", mount.mount, "tmpfs", where, "tmpfs", 0, "size=64k")
    open(f"{where}/f", "w").close()
    s("setxattr", os.setxattr, f"{where}/f", "user.cr", b"1")
    s.data["read"] = os.getxattr(f"{where}/f", "user.cr").decode()


@probe("tmpfs_user_xattr", "mounts", since="6.6", needs=SYS_ADMIN,
       judge=steps_judge({"setxattr": "setxattr(user.cr) on tmpfs"},
                         absent_on={("setxattr", "EOPNOTSUPP"), ("setxattr", "ENOTSUP"),
                                    ("setxattr", "EPERM")},
                         finish=lambda obs: present("user.* xattrs set and read back on "
                                                    "tmpfs") if obs.get("read") == "1"
                         else undecided(f"set, read back {obs.get('read')!r}")),
       examples=[({"steps": {"mount": 0, "setxattr": 0}, "read": "1"}, True),
                 (fail({"mount": 0}, "setxattr", errno.EOPNOTSUPP), False),
                 (fail(step="mount", code=errno.EPERM), None)])
def tmpfs_user_xattr():
    """user.* extended attributes on tmpfs (6.6): what a tree's tmpfs files may carry."""
    return in_private_mntns(_tmpfs_user_xattr)


@stepwise
def _overlay_userns(s):
    for d in ("lower", "upper", "work", "merged"):
        os.mkdir(f"{WORK}/{d}")
    s("mount_overlay", mount.mount, "overlay", f"{WORK}/merged", "overlay", 0,
      f"lowerdir={WORK}/lower,upperdir={WORK}/upper,workdir={WORK}/work,userxattr")


def _overlay_in_userns(uid, gid):
    map_self(uid, gid)
    mount.mount(None, "/", None, mount.MS_REC | mount.MS_PRIVATE)
    mount.mount("crbench", WORK, "tmpfs", 0, "mode=0700")
    return _overlay_userns()


@probe("overlayfs_userns", "mounts", since="5.11",
       judge=steps_judge({"mount_overlay": "mount -t overlay (userxattr) in a user namespace"},
                         absent_on={("mount_overlay", "EPERM"),
                                    ("mount_overlay", "EINVAL")},
                         finish=lambda obs: present("mounted overlay with userxattr as root "
                                                    "of a user namespace")),
       examples=[({"steps": {"mount_overlay": 0}}, True),
                 (fail(step="mount_overlay", code=errno.EPERM), False),
                 (fail(step="mount_overlay", code=errno.ENODEV), None)])
def overlayfs_userns():
    """overlayfs mounted by the root of a user namespace (5.11): what a tree in a user
    namespace of its own may have."""
    return in_child(_overlay_in_userns, os.getuid(), os.getgid(),
                    unshare_flags=CLONE_NEWUSER | CLONE_NEWNS)


@functools.lru_cache(maxsize=1)
def overlay_experiment():
    """One overlay mount serves three probes (mountable, maps dev:ino, options)."""
    return in_private_mntns(_overlay)


def _overlay_unavailable(obs):
    if not obs.get("registered"):
        return "overlay is not in /proc/filesystems"
    failed = first_failure(obs)
    if failed:
        return f"mount -t overlay -> {errname(failed[1])}"
    return None


def _judge_overlayfs(obs):
    if not obs.get("registered"):
        return absent("overlay is not in /proc/filesystems (not mounted: no module loading)")
    failed = first_failure(obs)
    if failed:
        seen = f"mount -t overlay -> {errname(failed[1])}"
        return absent(seen) if failed[1] == errno.ENODEV else undecided(f"unexpected: {seen}")
    return present("mounted overlay (lowerdir, upperdir, workdir on tmpfs)")


_OVL_OK = {"steps": {"mount_overlay": 0}, "registered": True,
           "super_options": "rw,lowerdir=/tmp/ovl/lower,upperdir=/tmp/ovl/upper,"
                            "workdir=/tmp/ovl/work", "stat": [0, 45, 3], "maps": [0, 45, 3]}


@probe("overlayfs", "mounts", since="3.18", needs=SYS_ADMIN, judge=_judge_overlayfs,
       examples=[(_OVL_OK, True), ({"steps": {}, "registered": False}, False),
                 (fail(step="mount_overlay", code=errno.ENODEV, registered=True), False),
                 (fail(step="mount_overlay", code=errno.EPERM, registered=True), None)])
def overlayfs():
    """overlayfs can be mounted (needed to restore container root filesystems)."""
    return overlay_experiment()


def _judge_overlayfs_maps(obs):
    why = _overlay_unavailable(obs)
    if why:
        return absent(f"no overlay mount to check: {why}")
    maps, stat = obs.get("maps"), obs.get("stat")
    if maps is None:
        return undecided("the mmapped overlay file is not in /proc/self/maps")
    text = "{:x}:{:x}:{}".format
    if maps == stat:
        return present(f"/proc/self/maps shows {text(*maps)} for an mmapped overlay file, "
                       f"as fstat does")
    return absent(f"/proc/self/maps shows {text(*maps)}, fstat {text(*stat)}: the real "
                  f"layer's dev:ino leaks into maps")


@probe("overlayfs_maps", "mounts", since="6.8", criu_name="overlayfs_maps", needs=SYS_ADMIN,
       judge=_judge_overlayfs_maps,
       examples=[(_OVL_OK, True), ({**_OVL_OK, "maps": [0, 44, 3]}, False),
                 ({"steps": {}, "registered": False}, False),
                 ({**_OVL_OK, "maps": None}, None),
                 (fail(step="mount_overlay", code=errno.EPERM, registered=True), False)])
def overlayfs_maps():
    """/proc/pid/maps shows the overlay dev:ino of mmapped overlay files, as stat does.

    CRIU's check: map a file from an overlay mount and compare the maps line
    with fstat (before 6.8 maps showed the underlying layer's inode).
    """
    return overlay_experiment()


OVERLAY_MNT_ID_SERIES = ('Alexander Mikhalitsyn, "overlayfs: C/R enhancements" (RFC, '
                         'linux-unionfs, 2020): show the mount ids of the lower/upper layers '
                         'in the overlay mount options')


def _judge_overlay_mnt_ids(obs):
    why = _overlay_unavailable(obs)
    if why:
        return absent(f"no overlay mount to look at: {why}")
    options = [o for o in obs.get("super_options", "").split(",") if "mnt_id" in o]
    if options:
        return present(f"overlay options carry layer mount ids: {', '.join(options)}")
    return absent("overlay mount options name the layers by path only (no *mnt_id*)")


never_merged("overlayfs_layer_mnt_ids", "mounts", proposed=OVERLAY_MNT_ID_SERIES,
             why_absent="Overlay mount options carrying the layers' mount ids (C/R could then "
                        "find the real layers); looked for in a test overlay mount.",
             exercise=overlay_experiment, judge=_judge_overlay_mnt_ids,
             examples=[(_OVL_OK, False),
                       ({**_OVL_OK, "super_options": "rw,lowerdir=/l,lowerdir_mnt_id=31"}, True),
                       ({"steps": {}, "registered": False}, False)])


# --- autofs ----------------------------------------------------------------------------------

@stepwise
def _autofs(s):
    target = f"{WORK}/autofs"
    os.mkdir(target)
    r, w = os.pipe()
    try:
        options = f"fd={w},pgrp={os.getpgrp()},minproto=5,maxproto=5,direct"
        s("mount_autofs", mount.mount, "crbench", target, "autofs", 0, options)
        # never look inside: a direct autofs mount would wait for a daemon
        entry = top_mount(target)
        s.data["super_options"] = entry["super_options"] if entry else None
    finally:
        os.close(r)
        os.close(w)


def _exercise_autofs():
    host = [m for m in mountinfo() if m["fstype"] == "autofs"]
    if host:  # CRIU looks at an existing autofs mount first
        return {"steps": {}, "registered": True, "host": True,
                "super_options": host[0]["super_options"]}
    if not registered_filesystem("autofs"):
        return {"steps": {}, "registered": False}
    return {**in_private_mntns(_autofs), "registered": True, "host": False}


def _finish_autofs(obs):
    options = obs.get("super_options")
    where = "the host's autofs mount" if obs.get("host") else "a test autofs mount"
    if options is None:
        return undecided("autofs mounted but not in mountinfo")
    pipe = [o for o in options.split(",") if o.startswith("pipe_ino=")]
    if pipe:
        return present(f"{where} shows {pipe[0]} in its options")
    return absent(f"{where} shows no pipe_ino= (options {options})")


_autofs_steps = steps_judge({"mount_autofs": "mount -t autofs"},
                            absent_on={("mount_autofs", "ENODEV")}, finish=_finish_autofs)


def _judge_autofs(obs):
    if not obs.get("registered"):
        return absent("autofs is not in /proc/filesystems (not mounted: no module loading)")
    return _autofs_steps(obs)


@probe("autofs", "mounts", since="4.6", criu_name="autofs", needs=SYS_ADMIN,
       judge=_judge_autofs,
       examples=[({"steps": {"mount_autofs": 0}, "registered": True, "host": False,
                   "super_options": "rw,fd=5,pgrp=1,timeout=300,minproto=5,maxproto=5,direct,"
                                    "pipe_ino=4242"}, True),
                 ({"steps": {}, "registered": True, "host": True,
                   "super_options": "rw,fd=5,pgrp=1,timeout=300,minproto=5,maxproto=5,direct"},
                  False),
                 ({"steps": {}, "registered": False}, False),
                 (fail(step="mount_autofs", code=errno.ENODEV, registered=True, host=False),
                  False),
                 (fail(step="mount_autofs", code=errno.EPERM, registered=True, host=False),
                  None)])
def autofs():
    """autofs mounts show pipe_ino= (CRIU's check: restore the pipe to the automount daemon)."""
    return _exercise_autofs()


# --- statmount / listmount / mount ids ------------------------------------------------------

ALL_STATMOUNT = 0
for _bit in mount.STATMOUNT_FIELDS:
    ALL_STATMOUNT |= _bit
_BASIC_STATMOUNT = 0x3f  # the fields of 6.8


def _root_mount_id():
    """The 64-bit id of the mount at / (statx), 0 when the kernel has none."""
    try:
        got, mnt_id = mount.statx_mnt_id("/", mount.STATX_MNT_ID_UNIQUE)
    except OSError:
        return 0
    return mnt_id if got & mount.STATX_MNT_ID_UNIQUE else 0


def _fields(mask):
    return [name for bit, name in sorted(mount.STATMOUNT_FIELDS.items()) if mask & bit]


def _statmount_view(header, raw):
    """The interesting part of a statmount answer, JSON-able."""
    m = header.mask
    view = {"mask": m, "fields": _fields(m)}
    if m & mount.STATMOUNT_SB_BASIC:
        view["sb_magic"] = header.sb_magic
    if m & mount.STATMOUNT_MNT_BASIC:
        view.update(mnt_id=header.mnt_id, mnt_id_old=header.mnt_id_old,
                    mnt_propagation=header.mnt_propagation)
    for bit, name in ((mount.STATMOUNT_FS_TYPE, "fs_type"), (mount.STATMOUNT_MNT_ROOT, "mnt_root"),
                      (mount.STATMOUNT_MNT_POINT, "mnt_point"),
                      (mount.STATMOUNT_MNT_OPTS, "mnt_opts"),
                      (mount.STATMOUNT_FS_SUBTYPE, "fs_subtype"),
                      (mount.STATMOUNT_SB_SOURCE, "sb_source")):
        if m & bit:
            view[name] = mount.statmount_string(raw, getattr(header, name))
    if m & mount.STATMOUNT_MNT_NS_ID:
        view["mnt_ns_id"] = header.mnt_ns_id
    if m & mount.STATMOUNT_OPT_ARRAY:
        view["opt_array"] = mount.statmount_strings(raw, header.opt_array, header.opt_num)
    if m & mount.STATMOUNT_SUPPORTED_MASK:
        view["supported_mask"] = header.supported_mask
    return view


def statmount_root(mask):
    mnt_id = _root_mount_id()
    try:
        header, raw = mount.statmount(mnt_id, mask)
    except OSError as e:
        return {"errno": e.errno, "mnt_id": mnt_id}
    return {"errno": 0, **_statmount_view(header, raw)}


def _judge_statmount(obs):
    code = obs["errno"]
    if code == errno.ENOSYS:
        return absent("statmount -> ENOSYS")
    if code:
        return undecided(f"unexpected: statmount(root mount {obs.get('mnt_id')}) -> "
                         f"{errname(code)}")
    basic = mount.STATMOUNT_SB_BASIC | mount.STATMOUNT_MNT_BASIC
    if obs["mask"] & basic != basic:
        return undecided(f"statmount -> 0 without sb/mnt basics (mask {obs['mask']:#x})")
    names = [n for n in ("fs_type", "mnt_point", "mnt_root", "sb_source", "mnt_opts")
             if obs.get(n)]
    shown = ", ".join(f"{n} {obs[n]!r}" for n in names[:3])
    data = {k: v for k, v in obs.items() if k != "errno"}
    return present(f"statmount(/) filled {', '.join(obs['fields'])}; {shown}", **data)


_SM_OK = {"errno": 0, "mask": 0x127f, "fields": ["sb_basic", "mnt_basic", "fs_type"],
          "fs_type": "ext4", "mnt_point": "/", "mnt_root": "/"}


@probe("statmount", "mounts", since="6.8",
       judge=_judge_statmount,
       examples=[(_SM_OK, True), ({"errno": errno.ENOSYS, "mnt_id": 0}, False),
                 ({"errno": errno.ENOENT, "mnt_id": 0}, None),
                 ({**_SM_OK, "mask": 0x20}, None)])
def statmount():
    """statmount(2) (6.8) of the root mount; every field this kernel fills is in data."""
    seen = statmount_root(ALL_STATMOUNT)
    if seen["errno"] == errno.EINVAL:  # a kernel that refuses request bits it does not know
        seen = statmount_root(_BASIC_STATMOUNT)
    return seen


def _judge_supported_mask(obs):
    code = obs["errno"]
    if code == errno.ENOSYS:
        return absent("statmount -> ENOSYS")
    if code:
        return undecided(f"unexpected: statmount -> {errname(code)}")
    if not obs["mask"] & mount.STATMOUNT_SUPPORTED_MASK:
        return absent(f"statmount ignores STATMOUNT_SUPPORTED_MASK (mask {obs['mask']:#x})")
    supported = obs["supported_mask"]
    return present(f"supported_mask {supported:#x}", supported_mask=supported,
                   fields=_fields(supported))


@probe("statmount_supported_mask", "mounts", since="6.15",
       judge=_judge_supported_mask,
       examples=[({"errno": 0, "mask": 0x1003, "fields": [], "supported_mask": 0x7fff}, True),
                 ({"errno": 0, "mask": 0x3, "fields": []}, False),
                 ({"errno": errno.ENOSYS, "mnt_id": 0}, False),
                 ({"errno": errno.EPERM, "mnt_id": 0}, None)])
def statmount_supported_mask():
    """STATMOUNT_SUPPORTED_MASK (6.15): which statmount fields this kernel can fill."""
    return statmount_root(mount.STATMOUNT_SUPPORTED_MASK | mount.STATMOUNT_SB_BASIC)


def _judge_listmount(obs):
    code = obs["errno"]
    if code == errno.ENOSYS:
        return absent("listmount -> ENOSYS")
    if code:
        return undecided(f"unexpected: listmount(LSMT_ROOT) -> {errname(code)}")
    if not obs["ids"]:
        return undecided("listmount(LSMT_ROOT) -> no mounts")
    return present(f"listmount(LSMT_ROOT) -> {obs['ids']} mount ids; /proc/self/mountinfo "
                   f"has {obs['mountinfo']} lines")


@probe("listmount", "mounts", since="6.8",
       judge=_judge_listmount,
       examples=[({"errno": 0, "ids": 20, "mountinfo": 20}, True),
                 ({"errno": errno.ENOSYS}, False), ({"errno": errno.EINVAL}, None),
                 ({"errno": 0, "ids": 0, "mountinfo": 20}, None)])
def listmount():
    """listmount(2) (6.8): the 64-bit ids of the mounts of this namespace."""
    try:
        ids = mount.listmount_all()
    except OSError as e:
        return {"errno": e.errno}
    return {"errno": 0, "ids": len(ids), "mountinfo": len(mountinfo())}


# listing another mount namespace: the child lists the prober's namespace from a new one

def _mntns_id_of(fd):
    """The id of the mount namespace of ``fd``: (id, how) or (0, why not)."""
    for legacy in (False, True):
        try:
            return ns_get_mntns_id(fd, legacy=legacy), "NS_GET_MNTNS_ID"
        except OSError:
            pass
    seen = statmount_root(mount.STATMOUNT_MNT_NS_ID)
    if not seen["errno"] and seen["mask"] & mount.STATMOUNT_MNT_NS_ID:
        return seen["mnt_ns_id"], "statmount"
    return 0, "neither NS_GET_MNTNS_ID nor statmount names mount namespaces"


def _foreign_listing(userns, uid, gid):
    seen = {"mountinfo": len(mountinfo())}
    with closing_fds() as fds:
        host = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        fds.append(host)
        seen["ns_id"], seen["ns_id_from"] = _mntns_id_of(host)
        unshare(CLONE_NEWNS | (CLONE_NEWUSER if userns else 0))
        if userns:
            map_self(uid, gid)
        for name, kwargs in (("by_id", {"mnt_ns_id": seen["ns_id"]}),
                             ("by_fd", {"mnt_ns_fd": host})):
            if name == "by_id" and not seen["ns_id"]:
                seen[name] = {"errno": errno.ENOENT}
                continue
            try:
                seen[name] = {"errno": 0, "ids": len(mount.listmount_all(**kwargs))}
            except OSError as e:
                seen[name] = {"errno": e.errno}
    return seen


@functools.lru_cache(maxsize=1)
def foreign_listing():
    userns = not privileged()
    return in_child(_foreign_listing, userns, os.getuid(), os.getgid())


def _judge_foreign(key, how):
    def judge(obs):
        seen = obs.get(key) or {}
        code = seen.get("errno")
        if key == "by_id" and not obs.get("ns_id"):
            return absent(f"cannot name the other namespace: {obs.get('ns_id_from')}")
        if code == 0:
            return present(f"listmount(LSMT_ROOT, {how}) from another mount namespace -> "
                           f"{seen['ids']} ids; its mountinfo has {obs['mountinfo']} lines")
        text = f"listmount({how}) -> {errname(code)}"
        if code in (errno.EINVAL, errno.E2BIG, errno.ENOSYS):
            return absent(text)
        return undecided(f"unexpected: {text}")
    return judge


_FOREIGN_OK = {"mountinfo": 20, "ns_id": 4, "ns_id_from": "NS_GET_MNTNS_ID",
               "by_id": {"errno": 0, "ids": 20}, "by_fd": {"errno": 0, "ids": 20}}


@probe("listmount_foreign_ns", "mounts", since="~6.11", needs=SYS_ADMIN,
       judge=_judge_foreign("by_id", "mnt_ns_id"),
       examples=[(_FOREIGN_OK, True),
                 ({**_FOREIGN_OK, "by_id": {"errno": errno.E2BIG}}, False),
                 ({**_FOREIGN_OK, "by_id": {"errno": errno.EINVAL}}, False),
                 ({**_FOREIGN_OK, "by_id": {"errno": errno.ENOSYS}}, False),
                 ({**_FOREIGN_OK, "ns_id": 0, "ns_id_from": "neither"}, False),
                 ({**_FOREIGN_OK, "by_id": {"errno": errno.EPERM}}, None)])
def listmount_foreign_ns():
    """listmount(2) of another mount namespace named by its 64-bit id (mnt_id_req.mnt_ns_id)."""
    return foreign_listing()


@probe("listmount_mnt_ns_fd", "mounts", since="6.18", needs=SYS_ADMIN,
       judge=_judge_foreign("by_fd", "mnt_ns_fd"),
       examples=[(_FOREIGN_OK, True),
                 ({**_FOREIGN_OK, "by_fd": {"errno": errno.EINVAL}}, False),
                 ({**_FOREIGN_OK, "by_fd": {"errno": errno.E2BIG}}, False),
                 ({**_FOREIGN_OK, "by_fd": {"errno": errno.ENOSYS}}, False),
                 ({**_FOREIGN_OK, "by_fd": {"errno": errno.EPERM}}, None)])
def listmount_mnt_ns_fd():
    """listmount(2) of another mount namespace named by an nsfs fd (mnt_id_req.mnt_ns_fd)."""
    return foreign_listing()


def _judge_unique_id(obs):
    if obs.get("errno"):
        text = f"statx(STATX_MNT_ID_UNIQUE) -> {errname(obs['errno'])}"
        return absent(text) if obs["errno"] == errno.ENOSYS else undecided(f"unexpected: {text}")
    if not obs["mask"] & mount.STATX_MNT_ID_UNIQUE:
        return absent(f"statx ignores STATX_MNT_ID_UNIQUE (mask {obs['mask']:#x}); old id "
                      f"{obs.get('old_id')}")
    listed = "" if obs.get("listed") is None else (
        "; listmount lists it" if obs["listed"] else "; listmount does not list it")
    return present(f"statx(/) unique mount id {obs['unique_id']:#x} (mountinfo id "
                   f"{obs.get('old_id')}){listed}")


@probe("statx_mnt_id_unique", "mounts", since="6.8",
       judge=_judge_unique_id,
       examples=[({"errno": 0, "mask": 0x4fff, "unique_id": 0x8000001c, "old_id": 27,
                   "listed": True}, True),
                 ({"errno": 0, "mask": 0x1fff, "unique_id": 27, "old_id": 27,
                   "listed": None}, False),
                 ({"errno": errno.ENOSYS}, False), ({"errno": errno.EACCES}, None)])
def statx_mnt_id_unique():
    """STATX_MNT_ID_UNIQUE (6.8): the 64-bit never-reused mount id of a file."""
    try:
        got, unique = mount.statx_mnt_id("/", mount.STATX_MNT_ID_UNIQUE)
        old = mount.statx_mnt_id("/", mount.STATX_MNT_ID)[1]
    except OSError as e:
        return {"errno": e.errno}
    try:
        listed = unique in mount.listmount_all()
    except OSError:
        listed = None
    return {"errno": 0, "mask": got, "unique_id": unique, "old_id": old, "listed": listed}


# --- mount ids of files, openat2, limits -----------------------------------------------------

def _judge_mnt_id(obs):
    if obs["mnt_id"] is None:
        return absent("fdinfo has no mnt_id: field")
    same = "" if obs["mountinfo_id"] is None else (
        ", the id mountinfo gives /" if obs["mnt_id"] == obs["mountinfo_id"]
        else f" but mountinfo says {obs['mountinfo_id']}")
    return present(f"fdinfo of an fd of / has mnt_id: {obs['mnt_id']}{same}")


@probe("mnt_id", "mounts", since="3.15", criu_name="mnt_id",
       judge=_judge_mnt_id,
       examples=[({"mnt_id": 27, "mountinfo_id": 27}, True),
                 ({"mnt_id": None, "mountinfo_id": 27}, False)])
def mnt_id():
    """/proc/pid/fdinfo/N shows mnt_id: (CRIU: which mount a file was opened on)."""
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            ids = [int(line.split()[1]) for line in f if line.startswith("mnt_id:")]
    finally:
        os.close(fd)
    root = [m["id"] for m in mountinfo() if m["mount_point"] == "/"]
    return {"mnt_id": ids[0] if ids else None, "mountinfo_id": root[-1] if root else None}


_RESOLVE_TESTS = (
    # name, flag, path from a dirfd of /, errnos that show the flag works
    ("RESOLVE_NO_XDEV", mount.RESOLVE_NO_XDEV, "proc", (errno.EXDEV,)),
    ("RESOLVE_BENEATH", mount.RESOLVE_BENEATH, "..", (errno.EXDEV,)),
    ("RESOLVE_NO_MAGICLINKS", mount.RESOLVE_NO_MAGICLINKS, "proc/self/exe", (errno.ELOOP,)),
    ("RESOLVE_NO_SYMLINKS", mount.RESOLVE_NO_SYMLINKS, "proc/self", (errno.ELOOP,)),
    ("RESOLVE_IN_ROOT", mount.RESOLVE_IN_ROOT, "../proc", (0,)),
    ("RESOLVE_CACHED", mount.RESOLVE_CACHED, ".", (0, errno.EAGAIN)),  # 5.12
)


def _exercise_openat2():
    # CRIU's kerndat: openat2(AT_FDCWD, ".", NULL, 0) fails; ENOSYS means none
    seen = {"criu": 0}
    try:
        os.close(mount.openat2_raw(mount.AT_FDCWD, ".", None, 0))
    except OSError as e:
        seen["criu"] = e.errno
    if seen["criu"] == errno.ENOSYS:
        return seen
    resolve = {}
    with closing_fds() as fds:
        root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        fds.append(root)
        for name, flag, path, _want in _RESOLVE_TESTS:
            try:
                os.close(mount.openat2(root, path, os.O_PATH | os.O_CLOEXEC, resolve=flag))
                resolve[name] = 0
            except OSError as e:
                resolve[name] = e.errno
    seen["resolve"] = resolve
    return seen


def _judge_openat2(obs):
    if obs["criu"] == errno.ENOSYS:
        return absent("openat2(AT_FDCWD, \".\", NULL, 0) -> ENOSYS")
    resolve = obs.get("resolve", {})
    working = [name for name, _f, _p, want in _RESOLVE_TESTS if resolve.get(name) in want]
    failing = [f"{name} {errname(resolve[name])}" for name, _f, _p, want in _RESOLVE_TESTS
               if name in resolve and resolve[name] not in want]
    detail = (f"openat2(AT_FDCWD, \".\", NULL, 0) -> {errname(obs['criu'])}; resolve flags "
              f"working: {', '.join(working) or 'none'}")
    if failing:
        detail += f"; not: {', '.join(failing)}"
    return present(detail, resolve={k: errname(v) for k, v in resolve.items()})


_OPENAT2_OK = {"criu": errno.EINVAL, "resolve": {
    "RESOLVE_NO_XDEV": errno.EXDEV, "RESOLVE_BENEATH": errno.EXDEV,
    "RESOLVE_NO_MAGICLINKS": errno.ELOOP, "RESOLVE_NO_SYMLINKS": errno.ELOOP,
    "RESOLVE_IN_ROOT": 0, "RESOLVE_CACHED": 0}}


@probe("openat2", "mounts", since="5.6", criu_name="openat2",
       judge=_judge_openat2,
       examples=[(_OPENAT2_OK, True),
                 ({"criu": errno.EINVAL, "resolve": {**_OPENAT2_OK["resolve"],
                                                     "RESOLVE_CACHED": errno.EINVAL}}, True),
                 ({"criu": errno.ENOSYS}, False)])
def openat2():
    """openat2(2) (5.6) and its RESOLVE_* flags (CRIU: present unless ENOSYS)."""
    return _exercise_openat2()


def _judge_mount_max(obs):
    if obs.get("errno"):
        text = f"/proc/sys/fs/mount-max -> {errname(obs['errno'])}"
        return absent(text) if obs["errno"] == errno.ENOENT else undecided(f"unexpected: {text}")
    return present(f"fs.mount-max = {obs['value']} mounts per namespace (this one has "
                   f"{obs['mounts']})")


@probe("mount_max", "mounts", since="4.9",
       judge=_judge_mount_max,
       examples=[({"errno": 0, "value": 100000, "mounts": 20}, True),
                 ({"errno": errno.ENOENT}, False), ({"errno": errno.EACCES}, None)])
def mount_max():
    """fs.mount-max: the cap on mounts per mount namespace a restore must stay under."""
    try:
        with open("/proc/sys/fs/mount-max") as f:
            value = int(f.read())
    except OSError as e:
        return {"errno": e.errno}
    return {"errno": 0, "value": value, "mounts": len(mountinfo())}


never_merged(
    "fsinfo", "mounts",
    proposed='David Howells, "VFS: Filesystem information" (fsinfo() syscall), LKML '
             '2018-2020, ver #21; superseded by statmount/listmount (6.8)',
    why_absent="fsinfo() was never merged: no syscall number exists to call")
