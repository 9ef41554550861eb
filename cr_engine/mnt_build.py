"""Restore: the tree's mount namespaces made again from mnt_model's image, by a builder.

The builder is a process of its own: the restorer is multi-threaded (setns(CLONE_NEWNS)
wants a single-threaded caller) and nothing may ever be mounted in the restorer's namespace.
It joins the tree's user namespace (if any), makes a private copy of our namespace (its
base), mounts a tmpfs there (the yard) and:
1. makes every new superblock (fsopen/fsconfig/fsmount: tmpfs filled with its files,
   devpts, mqueue in the tree's IPC namespace, sysfs in its network namespace, proc of our
   pid namespace) and attaches its root in the yard;
2. per namespace of the image: unshares from the base, makes each mount as a detached clone
   (open_tree of the yard's superblock root, or of the stage's clone of the path of ours an
   external mount binds: made alone, before a user namespace of the tree is joined),
   gives it its flags (mount_setattr) and attaches it below its parent by fd (openat2
   beneath the parent's mount: no path of ours is walked), children deepest mount point
   first (a mount hidden under a sibling was there before it); then pivots into the
   namespace's root and drops what it was a copy of;
3. hands the restorer an fd of every namespace and of every mount (files are opened through
   them: hidden mounts too) and waits: a proc of the tree's pid namespace can only be made
   by that namespace's init (make_late, in the stub) once the tree is forked;
4. then propagation, once everything is attached (attaching below a shared mount would copy
   it to the peers): each group gets a helper mount in the yard (the whole file system, so
   that its root holds every member's), joined to its master's (MOVE_MOUNT_SET_GROUP) and
   made slave and/or shared; every member joins its helper's group.  Groups with members in
   our namespace are joined from our mount.  Unbindable last; the yard goes.
   Without MOVE_MOUNT_SET_GROUP (before 5.15) the helpers are made before the namespaces
   (the master's a clone of its master's helper, made slave), so that each namespace
   holds copies of them, and every member is cloned from its namespace's copy: a clone
   joins the group of what it clones.  Mounts below a shared mount cannot be made so
   (mnt_model refuses them: "needs_set_group").
Any failure kills the builder: the fds close and every namespace and mount made vanishes.
"""

import errno
import json
import os
import shutil
import signal
import socket
import stat
import tempfile

from kernel import fdinfo
from kernel import mount as kmount
from kernel.libc import syscall
from kernel.namespaces import CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWUSER, setns, unshare

from . import mnt_content, mount_table
from .errors import RestoreError
from .mnt_model import CONTENT_IMAGE, DELETED, below, has_set_group
from .namespaces import inside

O_PATH = 0o10000000
BENEATH = kmount.RESOLVE_BENEATH | kmount.RESOLVE_NO_XDEV | kmount.RESOLVE_NO_MAGICLINKS
EMPTY = kmount.MOVE_MOUNT_F_EMPTY_PATH | kmount.MOVE_MOUNT_T_EMPTY_PATH
SET_GROUP = kmount.MOVE_MOUNT_SET_GROUP | EMPTY
ATTR_BITS = {"ro": kmount.MOUNT_ATTR_RDONLY, "nosuid": kmount.MOUNT_ATTR_NOSUID,
             "nodev": kmount.MOUNT_ATTR_NODEV, "noexec": kmount.MOUNT_ATTR_NOEXEC,
             "nodiratime": kmount.MOUNT_ATTR_NODIRATIME,
             "nosymfollow": kmount.MOUNT_ATTR_NOSYMFOLLOW}
ATIME = {"relatime": kmount.MOUNT_ATTR_RELATIME, "noatime": kmount.MOUNT_ATTR_NOATIME,
         "strictatime": kmount.MOUNT_ATTR_STRICTATIME}
MS_ATIME = {"relatime": kmount.MS_RELATIME, "noatime": kmount.MS_NOATIME,
            "strictatime": kmount.MS_STRICTATIME}
MS_BITS = {"ro": kmount.MS_RDONLY, "nosuid": kmount.MS_NOSUID, "nodev": kmount.MS_NODEV,
           "noexec": kmount.MS_NOEXEC, "nodiratime": kmount.MS_NODIRATIME,
           "nosymfollow": 256}
NS_FLAG = {"net": CLONE_NEWNET, "ipc": CLONE_NEWIPC}
# superblocks made once their namespace is there: a proc of a tree's pid namespace (by
# its init), an overlay (from layer paths of the namespace)
MADE_IN_PLACE = ("late", "overlay")
FDS_PER_MESSAGE = 200           # SCM_RIGHTS takes at most 253
TIMEOUT = 60.0


class Mounts:
    """The restorer's side: the builder process and the fds it handed over."""

    def __init__(self, image, reader, joined, userns, external):
        self.image = image
        for sb in image["superblocks"]:        # before anything is made
            if sb["make"] == "key" and sb["key"] not in external:
                raise RestoreError(f"the images have the external mount {sb['key']!r}: "
                                   f"restore with --external mnt[{sb['key']}]:PATH",
                                   "prepare")
        if image.get("needs_set_group") and not has_set_group():
            raise RestoreError(f"this kernel has no MOVE_MOUNT_SET_GROUP (5.15), which the "
                               f"mounts need: {image['needs_set_group']}", "prepare")
        self.by_id = {m["id"]: m for m in image["mounts"]}
        self.sbs = {s["id"]: s for s in image["superblocks"]}
        self.ns_fds, self.fds, self.base = {}, {}, None
        self.ours = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        # our /proc, for the stubs: a namespace of the tree may have none
        self.proc = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        # the builder's yard: a directory any user may pass (the builder may be root of
        # the tree's user namespace only), mounted over in its own namespace only
        self.yard = tempfile.mkdtemp(prefix="cr-yard-", dir="/tmp")
        os.chmod(self.yard, 0o711)
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.pid = os.fork()
        if self.pid == 0:
            self.sock.close()
            code = 1
            try:
                _Builder(image, reader, joined, userns, theirs, self.yard, external).run()
                code = 0
            except BaseException as e:      # noqa: BLE001 - reported, then gone
                try:
                    _send(theirs, {"error": f"{e}"})
                except OSError:
                    pass
            os._exit(code)
        theirs.close()
        self.sock.settimeout(TIMEOUT)
        try:
            self._receive()
        except BaseException:
            self.close()
            raise

    def _receive(self):
        while True:
            msg, fds = _recv(self.sock)
            for key, fd in zip(msg.get("keys", ()), fds):
                kind, _, name = key.partition(":")
                if kind == "ns":
                    self.ns_fds[int(name)] = fd
                elif kind == "base":
                    self.base = fd
                else:
                    self.fds[name] = fd
            if msg.get("built"):
                return

    def open(self, desc, flags):
        """An fd of the file ``desc`` names by mount and path within it."""
        base = self.fds.get(desc["mnt"])
        if base is None:
            raise RestoreError(f"{desc['rel']} is on mount {desc['mnt']}, made late (proc): "
                               f"not opened", "prepare")
        if not desc["rel"]:
            return os.open(f"/proc/self/fd/{base}", flags | os.O_CLOEXEC)
        return kmount.openat2(base, desc["rel"], flags | os.O_CLOEXEC, 0, BENEATH)

    def keeps_inodes(self, label):
        """Whether the mount ``label`` binds a file system of ours (its inode numbers are
        the dumped ones)."""
        return self.sbs[self.by_id[label]["sb"]]["make"] == "external"

    def stub_view(self, cores):
        """What the stubs need (inherited): the fds of the namespaces and of the parents
        of late mounts, and which init makes which late mount."""
        late = {}
        for m in self.image["mounts"]:
            sb = self.sbs[m["sb"]]
            if sb["make"] == "late":     # parent: an fd, or the label of a late one
                late.setdefault(sb["init"], []).append(
                    {"ns": m["ns"], "id": m["id"], "parent": self.fds.get(m["parent"],
                                                                         m["parent"]),
                     "point": m["point"], "sb": sb["id"], "root": m["root"],
                     "rel": below(self.by_id[m["parent"]]["point"], m["point"]),
                     "attr": m["attr"], "options": sb["options"], "ro": sb["ro"],
                     "source": sb["source"]})
        join = {pid: self.ns_fds[core["mnt_ns"]] if core.get("mnt_ns") is not None
                else self.ours for pid, core in cores.items()}
        return {"join": join, "late": late, "base": self.base, "ns": self.ns_fds,
                "proc": self.proc}

    def finish(self):
        """Once the tree is forked (late mounts attached): propagation, then the builder
        leaves."""
        _send(self.sock, {"finish": True})
        msg, _ = _recv(self.sock)
        if not msg.get("done"):
            raise RestoreError(f"mount propagation: {msg}", "fork")
        os.waitpid(self.pid, 0)
        self.pid = None

    def close(self):
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(self.pid, 0)
            self.pid = None
        for fd in [*self.ns_fds.values(), *self.fds.values(), self.base, self.ours, self.proc]:
            if fd is not None:
                os.close(fd)
        self.ns_fds, self.fds, self.base, self.ours, self.proc = {}, {}, None, None, None
        self.sock.close()
        shutil.rmtree(self.yard, ignore_errors=True)


def _send(sock, msg, fds=()):
    socket.send_fds(sock, [json.dumps(msg).encode()], list(fds))


def _recv(sock):
    try:
        data, fds, _, _ = socket.recv_fds(sock, 1 << 20, FDS_PER_MESSAGE + 8)
    except socket.timeout:
        raise RestoreError("the mount builder did not answer", "prepare") from None
    if not data:
        raise RestoreError("the mount builder died", "prepare")
    msg = json.loads(data)
    if "error" in msg:
        for fd in fds:
            os.close(fd)
        raise RestoreError(f"cannot make the mounts: {msg['error']}", "prepare")
    return msg, fds


class _Builder:
    """The builder process (see the module's docstring)."""

    def __init__(self, image, reader, joined, userns, sock, yard, external):
        self.image, self.reader, self.joined, self.userns = image, reader, joined, userns
        self.sock = sock
        self.by_id = {m["id"]: m for m in image["mounts"]}
        self.sbs = {s["id"]: s for s in image["superblocks"]}
        self.fds = {}               # mount label -> fd of it
        self.ns_fds = {}
        self.yard = yard
        self.external = external    # key -> path of ours (declared external mounts)
        self.remount = False        # no mount_setattr (5.12): flags by a remount
        self.pending = []           # superblocks waiting for removed entries to go
        # without MOVE_MOUNT_SET_GROUP: the groups' helpers are made first, and their
        # members cloned from them (a clone of a member joins its group)
        self.by_cloning = not has_set_group()
        self.group_of = {label: g for g in image["groups"] for label in g["members"]}
        self.helpers = {}           # group -> fd of its helper mount in the yard
        # path of ours (a propagating declared external: its superblock's label) -> the
        # stage's clone of what it shows
        self.staged = {}

    def run(self):
        outside = self._open_outside()
        if self.image.get("content"):       # before we may lose the right to open it
            data = os.open(self.reader.path(CONTENT_IMAGE), os.O_RDONLY | os.O_CLOEXEC)
            self.data_path = f"/proc/self/fd/{data}"
        # declared external mounts that propagate: clones made here, in ours (peers and
        # slaves of what the path shows), before our copy is made private
        sending = {sb["id"]: _clone_of(self.external[sb["key"]])
                   for sb in self.image["superblocks"]
                   if sb["make"] == "key" and (sb.get("shared") or sb.get("slave"))}
        unshare(CLONE_NEWNS)
        kmount.mount(None, "/", None, kmount.MS_REC | kmount.MS_PRIVATE)
        self._stage(sending)
        if self.userns is not None:
            setns(self.joined["user"], CLONE_NEWUSER)
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
            unshare(CLONE_NEWNS)
        self.base = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        kmount.mount("cr-yard", self.yard, "tmpfs", 0, "mode=700")
        for sb in self.image["superblocks"]:
            if sb["make"] == "new":
                self._superblock(sb)
        if self.by_cloning:
            self._helpers(outside)
        for index, ns in enumerate(self.image["namespaces"]):
            self._namespace(index, ns)
        setns(self.base, CLONE_NEWNS)
        self._remove_deleted()
        keys = [f"ns:{i}" for i in self.ns_fds] + ["base:"] + \
            [f"m:{label}" for label in self.fds]
        fds = list(self.ns_fds.values()) + [self.base] + list(self.fds.values())
        for start in range(0, len(keys), FDS_PER_MESSAGE):
            _send(self.sock, {"keys": keys[start:start + FDS_PER_MESSAGE]},
                  fds[start:start + FDS_PER_MESSAGE])
        _send(self.sock, {"built": True})
        msg, _ = _recv(self.sock)
        if msg.get("finish"):
            self._late()
            self._propagation(outside)
            _send(self.sock, {"done": True})

    def _stage(self, sending):
        """In a private copy of our namespace, before the tree's user namespace is joined:
        a clone of each path of ours the image binds, alone (what covers it in ours
        detached first), attached in a stage there; the namespaces are made of copies of
        these.  (A copy of a namespace made from a user namespace locks its mounts
        together: there a path with mounts below it could not be cloned alone, EINVAL.)
        The yard goes inside the stage."""
        kmount.mount("cr-stage", self.yard, "tmpfs", 0, "mode=711")
        for label, fd in sending.items():
            self.staged[label] = self._put(fd)
        wanted = {}                 # path of ours -> the device it must show (None: any)
        for m in self.image["mounts"]:
            sb = self.sbs[m["sb"]]
            if sb["make"] == "external":
                wanted[m["path"]] = m["dev"]
            elif sb["make"] == "key" and sb["id"] not in sending:
                wanted[self.external[sb["key"]]] = None
        for g in self.image["groups"]:
            if g["template"]:
                wanted[g["template"]] = self.sbs[self.by_id[g["members"][0]]["sb"]]["dev"]
        todo = wanted
        for _ in range(64):         # a path may show a stack: what it shows, its top off
            covered = {}
            for path, dev in todo.items():
                st = os.stat(path)
                if dev is not None and f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}" != dev:
                    covered[path] = dev
                    continue
                try:
                    self.staged[path] = self._put(_clone_of(path))
                except OSError as e:
                    raise RestoreError(f"cannot clone {path} of ours: {e.strerror}",
                                       "prepare") from None
            if not covered:
                break
            for path in covered:
                top = _showing(path, os.stat(path).st_dev)
                if top == "/":
                    raise RestoreError(f"{path} of ours, which the tree binds, shows the "
                                       f"file system {covered[path]} no more", "prepare")
                kmount.umount2(top, kmount.MNT_DETACH)
            todo = covered
        else:
            raise RestoreError(f"{next(iter(todo))} of ours, which the tree binds, stays "
                               f"covered", "prepare")
        self.yard = f"{self.yard}/y"
        os.mkdir(self.yard, 0o700)

    def _put(self, fd):
        """Attach the detached mount ``fd`` in the stage; its path there."""
        where = _attach_at(fd, f"{self.yard}/s{len(self.staged)}")
        os.close(fd)
        return where

    def _open_outside(self):
        """Fds of our mounts whose groups the tree's mounts join, opened before we leave
        our namespace (the base's copies are private): O_PATH, or without SET_GROUP
        detached clones (peers of ours)."""
        out = {}
        for g in self.image["groups"]:
            if g["outside"]:
                if self.userns is not None:
                    raise RestoreError(f"mounts of the tree in a user namespace share a "
                                       f"peer group with {g['outside']} of ours: not "
                                       f"carried", "prepare")
                out[g["id"]] = kmount.open_tree(
                    kmount.AT_FDCWD, g["outside"], kmount.OPEN_TREE_CLONE |
                    kmount.OPEN_TREE_CLOEXEC) if self.by_cloning else \
                    os.open(g["outside"], O_PATH | os.O_CLOEXEC)
        return out

    # superblocks -----------------------------------------------------------------------
    def _superblock(self, sb):
        ns = {"mqueue": "ipc", "sysfs": "net"}.get(sb["fstype"])
        if ns:
            if ns not in self.joined:
                raise RestoreError(f"{sb['fstype']} {sb['source']} belongs to a {ns} "
                                   f"namespace the tree does not have", "prepare")
            setns(self.joined[ns], NS_FLAG[ns])
        try:
            root = _fsmount(sb["fstype"], sb["source"],
                            [self._option(sb, word) for word in sb["options"]])
        except OSError as e:
            raise RestoreError(f"cannot make {sb['fstype']} {sb['source']} "
                               f"({','.join(sb['options'])}): {e.strerror}", "prepare") from None
        _attach_at(root, f"{self.yard}/{sb['id']}")
        removed = self._make_deleted(sb, root)
        later = []
        for part in sb.get("content", ()):
            top = part.split(":", 1)[1]
            dirfd = root if top == "/" else _make_dirs(root, top)
            now, wait = _split(self.image["content"][part]["entries"], top, removed)
            mnt_content.fill(dirfd, now, self.data_path, self._ids())
            if wait:
                later.append((top, wait))
            if dirfd != root:
                os.close(dirfd)
        if removed:                 # the rest once the namespaces hold their mounts
            self.pending.append((sb, root, removed, later))
        else:
            _finish_superblock(sb, root)

    def _make_deleted(self, sb, root):
        """Removed entries some mounts bind (a root "/a/b//deleted"): each is made at its
        path with its attributes and data, to be cloned by the namespaces and removed
        after (a mount whose root was removed can be neither moved nor bound); the
        directories made for them and not in the content go too.  Returns those paths
        (relative to the root), the order they were made in."""
        parts = sorted({m["deleted"] for m in self.image["mounts"]
                        if m["sb"] == sb["id"] and m.get("deleted")})
        content = {"/".join(x for x in (p.split(":", 1)[1].strip("/"), e["path"]) if x)
                   for p in sb.get("content", ()) for e in self.image["content"][p]["entries"]}
        made = []
        for part in parts:
            rel = part.split(":", 1)[1][:-len(DELETED)].strip("/")
            names = rel.split("/")
            for n in range(1, len(names)):
                step = "/".join(names[:n])
                if step not in made:
                    os.close(_make_dirs(root, step))
                    if step not in content:
                        made.append(step)
            mnt_content.fill(root, [dict(e, path=rel) for e in
                                    self.image["content"][part]["entries"]],
                             self.data_path, self._ids())
            made.append(rel)
        return made

    def _remove_deleted(self):
        """Once every namespace holds its mounts: the removed entries removed again, the
        content that was waiting for their names made, the superblocks finished."""
        for sb, root, removed, later in self.pending:
            for rel in sorted(removed, key=lambda r: -r.count("/")):    # children first
                try:
                    os.rmdir(rel, dir_fd=root)
                except NotADirectoryError:
                    os.unlink(rel, dir_fd=root)
            for top, entries in later:
                dirfd = root if top == "/" else _make_dirs(root, top)
                mnt_content.fill(dirfd, entries, self.data_path, self._ids())
                if dirfd != root:
                    os.close(dirfd)
            _finish_superblock(sb, root)
        self.pending = []

    def _option(self, sb, word):
        """A shown option as the kernel takes it from us: tmpfs and devpts show uid= and
        gid= as the initial user namespace numbers them, and parse them in ours."""
        key, eq, value = word.partition("=")
        if key in ("uid", "gid") and self.userns is not None and sb["fstype"] in \
                ("tmpfs", "devpts"):
            return f"{key}={inside(self.userns[f'{key}_map'], int(value))}"
        return word

    def _ids(self):
        if self.userns is None:
            return None
        user = self.userns
        return lambda uid, gid: (inside(user["uid_map"], uid), inside(user["gid_map"], gid))

    # namespaces ------------------------------------------------------------------------
    def _namespace(self, index, ns):
        setns(self.base, CLONE_NEWNS)
        unshare(CLONE_NEWNS)
        self.ns_fds[index] = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        self._clones([m for m in self.image["mounts"] if m["ns"] == index])
        children = {}
        for m in self.image["mounts"]:
            if m["ns"] == index and m["parent"]:
                children.setdefault(m["parent"], []).append(m)
        root = self.by_id[ns["root"]]
        fd = self.fds[root["id"]]
        _attach_at(fd, f"{self.yard}/n{index}")
        if self.remount:
            _remount(fd, root["attr"])
        self._children(root, children)
        self._overlays(index, fd, children)
        self._check_sending(index)
        os.fchdir(fd)
        syscall("pivot_root", b".", b".")
        kmount.umount2(".", kmount.MNT_DETACH)
        os.chdir("/")

    def _children(self, parent, children):
        # deepest mount point first: a mount hidden under a sibling was there before it
        kids = sorted(children.get(parent["id"], ()), key=lambda m: -m["point"].count("/"))
        for m in kids:
            if self.sbs[m["sb"]]["make"] in MADE_IN_PLACE:
                continue
            self._attach(m, parent)
        for m in kids:
            if m["id"] in self.fds:
                self._children(m, children)

    def _attach(self, m, parent):
        """Mount ``m`` (its clone) below its parent, by fd."""
        fd = self.fds[m["id"]]
        rel = below(parent["point"], m["point"])
        target = kmount.openat2(self.fds[parent["id"]], rel, O_PATH | os.O_CLOEXEC, 0,
                                BENEATH) if rel else os.dup(self.fds[parent["id"]])
        try:
            kmount.move_mount(fd, "", target, "", EMPTY)
        except OSError as e:
            raise RestoreError(f"cannot mount {m['point']} of mount namespace "
                               f"{m['ns']}: {e.strerror}", "prepare") from None
        finally:
            os.close(target)
        if self.remount:
            _remount(fd, m["attr"], self.fds[parent["id"]], rel)

    def _check_sending(self, index):
        """Declared external mounts of namespace ``index`` propagate as they did: a clone
        of the given path is what that path is (shared, slave, in ours; a user namespace's
        copy makes shared slave); made private if it was, a slave of the path's group if
        it was a slave only and the path is shared, else refused if it does not send or
        receive as it did."""
        mine = [m for m in self.image["mounts"]
                if m["ns"] == index and self.sbs[m["sb"]]["make"] == "key"]
        if not mine:
            return
        table = {x.id: x for x in mount_table.from_mountinfo("self")}
        for m in mine:
            sb, fd = self.sbs[m["sb"]], self.fds[m["id"]]
            got = table[int(fdinfo.read(fd)["mnt_id"])]
            want = (sb.get("shared", False), sb.get("slave", False))
            if want == (bool(got.shared), bool(got.master)):
                continue
            if want == (False, False) or (want == (False, True) and got.shared):
                # private; or a slave of the group of the path given
                _mount_at(fd, kmount.MS_SLAVE if want[1] else kmount.MS_PRIVATE,
                          *self._place(m))
            else:
                raise RestoreError(
                    f"{m['point']} of mount namespace {index}, declared external "
                    f"{sb['key']!r}, was {_kind(sb['shared'], sb['slave'])} at dump; "
                    f"{self.external[sb['key']]} gives a "
                    f"{_kind(got.shared, got.master)} one", "prepare")

    def _place(self, m):
        """(fd of the parent, path below it) of the attached mount ``m``."""
        parent = self.by_id.get(m["parent"])
        if parent is None:
            return None, ""
        return self.fds[parent["id"]], below(parent["point"], m["point"])

    def _overlays(self, index, root_fd, children):
        """The overlays of namespace ``index`` once the rest is attached (their layers):
        each superblock made from its option strings with the namespace's root as ours
        (chroot: the layer paths are absolute there), its root put in the yard, each mount
        a clone of it, attached, and what is mounted on it then."""
        made = set()
        for m in self.image["mounts"]:
            sb = self.sbs[m["sb"]]
            if m["ns"] != index or sb["make"] != "overlay":
                continue
            if sb["id"] not in made:
                self._overlay(sb, root_fd)
                made.add(sb["id"])
            root = m["root"] if m["root"] != "/" else ""
            self.fds[m["id"]] = self._clone(m, f"{self.yard}/{sb['id']}{root}")
            self._attach(m, self.by_id[m["parent"]])
            self._children(m, children)

    def _overlay(self, sb, root_fd):
        """An overlay superblock from its option strings, made chrooted into the namespace's
        root ``root_fd`` (its layer paths are absolute there), its root put in the yard."""
        ours = os.open("/", O_PATH | os.O_CLOEXEC)
        try:
            os.fchdir(root_fd)
            os.chroot(".")
            root = _fsmount("overlay", sb["source"], sb["options"] + (["ro"] if sb["ro"] else []))
        except OSError as e:
            raise RestoreError(f"cannot make overlay ({','.join(sb['options'])}): "
                               f"{e.strerror}", "prepare") from None
        finally:
            os.fchdir(ours)
            os.chroot(".")
            os.close(ours)
        _attach_at(root, f"{self.yard}/{sb['id']}")
        os.close(root)

    def _clones(self, mounts):
        """Each of ``mounts`` (one namespace's, not made in place) as a detached clone, made
        in the namespace being built, a copy of the base (a mount can only be cloned in its
        own namespace; and a namespace whose mounts were cloned elsewhere cannot be listed
        by listmount(2), measured on 6.18): of its superblock's root in the yard, of the
        stage's clone of the path of ours it binds, or of its group's helper."""
        for m in mounts:
            sb = self.sbs[m["sb"]]
            if sb["make"] in MADE_IN_PLACE:
                continue
            g = self.group_of.get(m["id"]) if self.by_cloning else None
            if g is not None:       # the namespace's copy of the group's helper
                source = self._helper_path(g, m["root"])
            elif sb["make"] == "external":
                source = self.staged[m["path"]]
            elif sb["make"] == "key":
                source = self.staged.get(sb["id"]) or self.staged[self.external[sb["key"]]]
            else:
                root = m["root"].removesuffix(DELETED)
                source = f"{self.yard}/{sb['id']}{root if root != '/' else ''}"
            self.fds[m["id"]] = self._clone(m, source)

    def _clone(self, m, source):
        try:
            fd = kmount.open_tree(kmount.AT_FDCWD, source,
                                  kmount.OPEN_TREE_CLONE | kmount.OPEN_TREE_CLOEXEC)
        except OSError as e:
            raise RestoreError(f"cannot make {m['point']} of mount namespace {m['ns']} "
                               f"(a clone of {source}): {e.strerror}", "prepare") from None
        self._set_attr(fd, m)
        return fd

    def _set_attr(self, fd, m):
        try:
            if not _try_attr(fd, m["attr"]):
                self.remount = True
        except OSError as e:
            raise RestoreError(f"cannot set the flags of {m['point']} of mount "
                               f"namespace {m['ns']}: {e.strerror}", "prepare") from None

    def _late(self):
        """Once the stubs attached the late mounts: fds of them, and below them what the
        builder made (a file or directory masked by a bind, say)."""
        children = {}
        for m in self.image["mounts"]:
            if m["parent"]:
                children.setdefault(m["parent"], []).append(m)
        for m in self.image["mounts"]:      # parents first
            if self.sbs[m["sb"]]["make"] != "late":
                continue
            setns(self.ns_fds[m["ns"]], CLONE_NEWNS)
            parent = self.by_id[m["parent"]]
            self.fds[m["id"]] = kmount.openat2(
                self.fds[parent["id"]], below(parent["point"], m["point"]) or ".",
                O_PATH | os.O_CLOEXEC, 0, kmount.RESOLVE_BENEATH)
            self._children(m, children)
        setns(self.base, CLONE_NEWNS)

    # propagation -----------------------------------------------------------------------
    def _propagation(self, outside):
        setns(self.base, CLONE_NEWNS)
        if not self.by_cloning:
            self._helpers(outside)
        for g in () if self.by_cloning else self.image["groups"]:
            for label in g["members"]:
                try:
                    kmount.move_mount(self.helpers[g["id"]], "", self.fds[label], "",
                                      SET_GROUP)
                except OSError as e:
                    m = self.by_id[label]
                    raise RestoreError(f"cannot join {m['point']} of mount namespace "
                                       f"{m['ns']} to its peer group: {e.strerror}",
                                       "prepare") from None
        for m in self.image["mounts"]:
            if m["unbindable"]:
                setns(self.ns_fds[m["ns"]], CLONE_NEWNS)
                fd = self.fds[m["id"]]
                try:
                    kmount.mount_setattr(fd, "", kmount.AT_EMPTY_PATH,
                                         kmount.MountAttr(propagation=kmount.MS_UNBINDABLE))
                except OSError as e:
                    if e.errno != errno.ENOSYS:     # before 5.12: mount(2)
                        raise
                    _mount_at(fd, kmount.MS_UNBINDABLE, *self._place(m))
        setns(self.base, CLONE_NEWNS)
        kmount.umount2(self.yard, kmount.MNT_DETACH)

    def _helpers(self, outside):
        """A mount in the yard standing for each group (masters first): the whole file
        system (or the path of ours its members show), its master's slave, shared - so
        that its root holds every member's.  Groups of ours are joined through our mount
        (with SET_GROUP an O_PATH fd of it, else a clone of it, attached in the yard)."""
        for g in self.image["groups"]:
            if g["outside"] and not self.by_cloning:
                self.helpers[g["id"]] = outside[g["id"]]
                continue
            where = f"{self.yard}/{g['id']}"
            if g["outside"]:
                fd = outside[g["id"]]
            elif g["master"] and self.by_cloning:   # a peer of the master's helper
                master = next(x for x in self.image["groups"] if x["id"] == g["master"])
                fd = _clone_of(self._helper_path(master, g["root"]))
            else:
                sb = self.sbs[self.by_id[g["members"][0]]["sb"]]
                fd = _clone_of(self.staged[g["template"]] if g["template"] else
                               f"{self.yard}/{sb['id']}")
            _attach_at(fd, where)
            if g["master"]:
                if not self.by_cloning:
                    kmount.move_mount(self.helpers[g["master"]], "", fd, "", SET_GROUP)
                kmount.mount(None, where, None, kmount.MS_SLAVE)
            if g["shared"]:
                kmount.mount(None, where, None, kmount.MS_SHARED)
            self.helpers[g["id"]] = fd

    def _helper_path(self, g, root):
        """The path that shows ``root`` (within the file system) through ``g``'s helper."""
        rel = below(g["root"], root.removesuffix(DELETED))
        return f"{self.yard}/{g['id']}" + (f"/{rel}" if rel else "")


def _kind(shared, slave):
    return " and ".join(w for w, on in (("shared", shared), ("slave", slave)) if on) or \
        "private"


def _clone_of(path):
    return kmount.open_tree(kmount.AT_FDCWD, path,
                            kmount.OPEN_TREE_CLONE | kmount.OPEN_TREE_CLOEXEC)


def _attach_at(fd, path):
    """Attach the detached mount ``fd`` at ``path`` (new: a directory, or a file for a
    file); ``path``."""
    if stat.S_ISDIR(os.fstat(fd).st_mode):
        os.mkdir(path)
    else:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
    kmount.move_mount(fd, "", kmount.AT_FDCWD, path, kmount.MOVE_MOUNT_F_EMPTY_PATH)
    return path


def _finish_superblock(sb, root):
    """A made and filled superblock read-only if it was; its fd closed."""
    if sb["ro"]:
        picked = kmount.fspick(root, "", kmount.FSPICK_CLOEXEC | kmount.FSPICK_EMPTY_PATH)
        kmount.fsconfig(picked, kmount.FSCONFIG_SET_FLAG, "ro")
        kmount.fsconfig(picked, kmount.FSCONFIG_CMD_RECONFIGURE)
        os.close(picked)
    os.close(root)


def _split(entries, top, removed):
    """The entries of a content part (``top``: its directory in the file system) to make
    now, and those to make once the ``removed`` paths are gone: what has a removed one's
    name or lies below it, and (their times made again) the directories holding those and
    the removed ones."""
    base = top.strip("/")

    def in_fs(path):
        return "/".join(x for x in (base, path) if x)

    wait = {e["path"] for e in entries
            if any(in_fs(e["path"]) == r or in_fs(e["path"]).startswith(r + "/")
                   for r in removed)}
    touched = {os.path.dirname(p) for p in wait}
    touched |= {os.path.dirname(rel) for rel in (below("/" + base, "/" + r) for r in removed)
                if rel}
    return ([e for e in entries if e["path"] not in wait],
            [e for e in entries if e["path"] in wait or
             (e["type"] == "d" and e["path"] in touched)])


def _fsmount(fstype, source, words, attr=0):
    """A new superblock of ``fstype`` with its source and options ("key=value" or a flag),
    as a detached mount with the per-mount flags ``attr``."""
    fs = kmount.fsopen(fstype)
    try:
        kmount.fsconfig(fs, kmount.FSCONFIG_SET_STRING, "source", source)
        for word in words:
            key, eq, value = word.partition("=")
            if eq:
                kmount.fsconfig(fs, kmount.FSCONFIG_SET_STRING, key, value)
            else:
                kmount.fsconfig(fs, kmount.FSCONFIG_SET_FLAG, key)
        kmount.fsconfig(fs, kmount.FSCONFIG_CMD_CREATE)
        return kmount.fsmount(fs, kmount.FSMOUNT_CLOEXEC, attr)
    finally:
        os.close(fs)


def _showing(path, dev):
    """The mount point of the mount that shows ``path`` (device ``dev``)."""
    while path != "/" and not (os.path.ismount(path) and os.stat(path).st_dev == dev):
        path = os.path.dirname(path)
    return path


def _make_dirs(root, path):
    """An fd of directory ``path`` below ``root`` (an fd), made where missing."""
    fd = os.dup(root)
    for name in path.strip("/").split("/"):
        try:
            os.mkdir(name, 0o755, dir_fd=fd)
        except FileExistsError:
            pass
        nxt = kmount.openat2(fd, name, os.O_DIRECTORY | os.O_CLOEXEC, 0, BENEATH |
                             kmount.RESOLVE_NO_SYMLINKS)
        os.close(fd)
        fd = nxt
    return fd


def _remount(fd, attr, parent=None, rel=""):
    """Per-mount flags the old way (before mount_setattr, 5.12): a bind remount."""
    flags = kmount.MS_REMOUNT | kmount.MS_BIND | MS_ATIME[attr["atime"]]
    flags |= sum(bit for word, bit in MS_BITS.items() if attr[word])
    _mount_at(fd, flags, parent, rel)


def _mount_at(fd, flags, parent=None, rel=""):
    """mount(2) with ``flags`` on the attached mount ``fd`` (at ``rel`` below the mount
    ``parent``), in our namespace: through our cwd, as its /proc may be one we are not in;
    a file's from its parent's directory."""
    if stat.S_ISDIR(os.fstat(fd).st_mode):
        os.fchdir(fd)
        target = "."
    elif parent is not None and rel:
        os.fchdir(parent)
        target = rel
    else:
        target = f"/proc/self/fd/{fd}"
    kmount.mount(None, target, None, flags)


def make_late(view, pid):
    """In the stub of the init of a pid namespace, first thing: the proc mounts of its pid
    namespace, made (in the builder's base, which shows a whole proc: a user namespace may
    not mount a proc otherwise) and attached below their parents (parents first), with
    the binds of its parts."""
    by_label = {}               # late mount -> fd of it, attached
    source = {}                 # superblock -> (namespace or None, a mount to clone)
    attached, detached = [], []
    try:
        for m in view["late"].get(pid, ()):
            flags_set = True
            if m["sb"] not in source:
                fd = _proc(view, m)
                if m["root"] == "/":    # cloned from once attached (a mount is cloned
                    source[m["sb"]] = (m["ns"], fd)     # in its namespace before 6.x)
                else:                   # only parts of it: cloned from it detached (6.x)
                    source[m["sb"]] = (None, fd)
                    detached.append(fd)
            if m["root"] != "/" or source[m["sb"]][1] in attached:
                ns, whole = source[m["sb"]]
                if ns is not None:
                    setns(view["ns"][ns], CLONE_NEWNS)
                fd = kmount.open_tree(whole, m["root"].lstrip("/"), kmount.OPEN_TREE_CLONE |
                                      kmount.OPEN_TREE_CLOEXEC | kmount.AT_EMPTY_PATH)
                flags_set = _try_attr(fd, m["attr"])
            setns(view["ns"][m["ns"]], CLONE_NEWNS)
            parent = by_label[m["parent"]] if isinstance(m["parent"], str) else m["parent"]
            target = kmount.openat2(parent, m["rel"], O_PATH | os.O_CLOEXEC, 0, BENEATH) \
                if m["rel"] else os.dup(parent)
            attached.append(fd)
            kmount.move_mount(fd, "", target, "", EMPTY)
            os.close(target)
            if not flags_set:
                _remount(fd, m["attr"], parent, m["rel"])
            by_label[m["id"]] = fd
    finally:
        for fd in attached + detached:
            os.close(fd)


def _proc(view, m):
    """A detached proc of our pid namespace, with the options and flags of ``m``."""
    if view["base"] is not None:
        setns(view["base"], CLONE_NEWNS)
    attr = sum(bit for word, bit in ATTR_BITS.items() if m["attr"][word])
    return _fsmount("proc", m["source"], m["options"] + (["ro"] if m["ro"] else []),
                    attr | ATIME[m["attr"]["atime"]])


def _try_attr(fd, attr):
    """_set_attr; False where the kernel has no mount_setattr (5.12): a remount once
    attached, then."""
    try:
        _set_attr(fd, attr)
    except OSError as e:
        if e.errno != errno.ENOSYS:
            raise
        return False
    return True


def _set_attr(fd, attr):
    """The per-mount flags ``attr`` (the image's words) on mount ``fd``."""
    kmount.mount_setattr(fd, "", kmount.AT_EMPTY_PATH, kmount.MountAttr(
        attr_set=sum(bit for word, bit in ATTR_BITS.items() if attr[word]) |
        ATIME[attr["atime"]],
        attr_clr=sum(bit for word, bit in ATTR_BITS.items() if not attr[word]) |
        kmount.MOUNT_ATTR__ATIME))


def join(view, pid):
    """In a stub: into the mount namespace ``pid`` had (when not the one it was born in)."""
    fd = view["join"].get(pid)
    if fd is not None and os.fstat(fd).st_ino != os.stat("self/ns/mnt",
                                                         dir_fd=view["proc"]).st_ino:
        setns(fd, CLONE_NEWNS)
