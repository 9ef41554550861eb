"""The mount namespaces of a tree, as an image the builder (mnt_build) makes again.

Every mount namespace a process of the tree is in, other than the dumper's, is read whole
(mount_table.collect: statmount or mountinfo, as the probes say) and each mount described
by how to make it again:
- its superblock: a bind of ours ("external": the file system is mounted in the dumper's
  namespace too; the path of ours whose inode is the mount's root), a new one made with
  its type, source and options ("new": tmpfs, whose files are carried, devpts, mqueue,
  sysfs, a proc of the dumper's pid namespace), or a proc of a pid namespace of the tree
  ("late": made by that namespace's init at restore, once it exists);
- its place: parent, mount point, root within the file system, per-mount flags;
- its propagation: peer groups and masters, over all the tree's namespaces and ours. A group
  with members in ours is joined at restore (external sharing); a master nobody visible
  holds is refused.
Labels (m0.., s0.., g0..) stand for kernel ids, which a restore cannot ask for.  Refusals
name the mount, its namespace and a pid in it.
"""

import os

from . import mnt_content, mount_table
from .errors import Unsupported

MNT_IMAGE, CONTENT_IMAGE = "mnt.json", "mnt-content.img"
# file systems made again from their type and options, with the namespace they belong to
NEW_FS = {"tmpfs": None, "devpts": None, "mqueue": "ipc", "sysfs": "net", "proc": "pid"}
ATTR_WORDS = ("ro", "nosuid", "nodev", "noexec", "nodiratime", "nosymfollow")
ATIME_WORDS = ("noatime", "relatime")           # neither: strictatime
# an overlay's layer options (paths), and the features that record lower inodes in the upper
OVERLAY_LAYERS = ("lowerdir", "upperdir", "workdir", "lowerdir+", "datadir+")
OVERLAY_INODE_TIES = ("index", "metacopy", "nfs_export")
SET_GROUP_FORCE = "CR_ENGINE_MOUNT_SET_GROUP"   # "0" or "1": as if the kernel had it or not
DELETED = "//deleted"           # how mountinfo ends the root of a bind of a removed entry


class MountDump:
    """The tree's mount namespaces, read while the tree is frozen."""

    def __init__(self, tree, pidns_inits, external=()):
        """``tree``: the frozen tree after dump._check_tree (``tree.mnt_ns``: pid -> the
        link of a mount namespace not ours); ``pidns_inits``: pid namespace link -> the
        pid of its init in the tree; ``external``: "mnt[PATH]:KEY" (PATH@N: in namespace
        N, else the root's) mounts declared the outside world's."""
        self.declared = _dump_externals(external)
        self.ns_index, self.ns_pids = {}, []
        for pid, link in tree.mnt_ns.items():
            if link not in self.ns_index:
                self.ns_index[link] = len(self.ns_pids)
                self.ns_pids.append([])
            self.ns_pids[self.ns_index[link]].append(pid)
        self.pidns_inits = pidns_inits
        # read (and the probes asked) only for a tree with namespaces of its own; dump()
        # asks the probes before it freezes the tree
        self.way = mount_table.way() if self.ns_pids else None
        self.ours = mount_table.collect("self") if self.ns_pids else []
        self.ours_dev, self.our_ids = {}, {m.id for m in self.ours}
        for m in self.ours:
            self.ours_dev.setdefault(m.dev, []).append(m)
        self.mnt_ns = tree.mnt_ns
        self.tables = [self._table(pids) for pids in self.ns_pids]
        self.labels = {}            # (ns index, kernel id) -> label
        self.points = {}            # kernel id -> (label, mount point)
        root_ns = self.ns_index.get(tree.mnt_ns.get(tree.root))
        self.declared = {(point, root_ns if ns is None else ns): key
                         for (point, ns), key in self.declared.items()}
        self.image = self._describe() if self.tables else None
        if self.image and self.image["needs_set_group"] and not has_set_group():
            raise Unsupported(f"unsupported without MOVE_MOUNT_SET_GROUP (5.15): "
                              f"{self.image['needs_set_group']}")
        if self.declared:
            (point, ns), key = next(iter(self.declared.items()))
            raise Unsupported(f"unsupported: --external mnt[{point}]:{key}: no mount at "
                              f"{point} in {'the root' if ns == root_ns else ns}'s mount "
                              f"namespace of the tree")

    def of(self, pid):
        """The index of ``pid``'s mount namespace in the image; None: the dumper's."""
        return self.ns_index.get(self.mnt_ns.get(pid))

    def _table(self, pids):
        """A namespace's mounts, read through a process of it at its root (a chrooted
        one's mountinfo shows only what is under its root), else from inside it."""
        if self.way == "statmount":
            return mount_table.collect(pids[0])
        for pid in pids:
            if os.readlink(f"/proc/{pid}/root") == "/":
                return mount_table.from_mountinfo(pid)
        return mount_table.from_mountinfo_inside(pids[0])

    # describing ------------------------------------------------------------------------
    def _describe(self):
        mounts, sbs = [], {}
        ours_dev = self.ours_dev
        for index, table in enumerate(self.tables):
            where = f"mount namespace {index} (pid {self.ns_pids[index][0]})"
            by_id = {m.id: m for m in table}
            for m in _parents_first(table, where):
                label = f"m{len(mounts)}"
                self.labels[index, m.id] = label
                key = self._declared(m, index, table)
                if key is not None:         # a superblock of its own: nobody else's
                    sb = sbs[label] = {"id": f"s{len(sbs)}", "make": "key", "key": key,
                                       "fstype": m.fstype, "source": m.source,
                                       "dev": m.dev, "ro": False, "options": [],
                                       "shared": bool(m.shared), "slave": bool(m.master)}
                    _check_declared(m, table, where)
                else:
                    sb = sbs.get(m.dev)
                if sb is not None and sb["make"] == "overlay" and sb["ns"] != index:
                    raise Unsupported(f"unsupported: overlay at {m.point} in {where}: mounted "
                                      f"in mount namespace {sb['ns']} too (an overlay is made "
                                      f"again in one namespace only)")
                if sb is None:
                    sb = sbs[m.dev] = self._superblock(f"s{len(sbs)}", m, index, ours_dev,
                                                       where)
                parent = by_id.get(m.parent)
                self.points[m.id] = (label, m.point)
                entry = {"id": label, "ns": index, "sb": sb["id"], "root": m.root,
                         "point": m.point, "attr": _attr(m.options), "dump_id": m.id,
                         "parent": self.labels[index, parent.id] if parent else None,
                         "unbindable": m.unbindable}
                self._check(m, sb, where)
                if sb["make"] == "external":
                    entry["path"] = _reachable(m, ours_dev[m.dev], where)
                    entry["dev"] = m.dev
                mounts.append(entry)
        groups = self._groups(mounts, sbs)
        return {"collect": self.way, "mounts": mounts, "groups": groups,
                "needs_set_group": _needs_set_group(mounts, groups, self.ns_pids),
                "superblocks": sorted(sbs.values(), key=lambda s: int(s["id"][1:])),
                "namespaces": [{"pids": pids, "root": self.labels[i, _root(t).id]}
                               for i, (pids, t) in enumerate(zip(self.ns_pids, self.tables))]}

    def _declared(self, m, index, table):
        """The key of a mount declared external (the top one at its point)."""
        key = self.declared.get((m.point, index))
        if key is None or any(x.parent == m.id and x.point == m.point for x in table):
            return None
        del self.declared[m.point, index]
        return key

    def _superblock(self, label, m, index, ours_dev, where):
        sb = {"id": label, "fstype": m.fstype, "source": m.source, "dev": m.dev,
              "ro": m.super_options.split(",")[0] == "ro",
              "options": [w for w in m.super_options.split(",")[1:] if w]}
        if m.dev in ours_dev:
            sb["make"] = "external"
            return sb
        if m.fstype == "overlay":
            sb["make"], sb["ns"] = "overlay", index
            self._check_overlay(m, index, where)
            return sb
        if m.fstype not in NEW_FS:
            raise Unsupported(f"unsupported: {m.fstype} {m.source} at {m.point} in {where}: "
                              f"not mounted in the dumper's namespace, and not a file "
                              f"system the engine makes ({', '.join(NEW_FS)})")
        sb["make"] = "new"
        if m.fstype == "proc":
            pidns = self._proc_pidns(m, index, where)
            if pidns is not None:
                sb["make"], sb["init"] = "late", pidns
        if m.fstype == "mqueue":
            self._check_empty(m, index, where, "POSIX message queues are not carried")
        return sb

    def _check_overlay(self, m, index, where):
        """An overlay is made again from its option strings, in its namespace once its
        layers' mounts are there: each layer must be an absolute path that is a directory
        there, and nothing may tie the upper layer to the lower ones' inodes (the lower
        file systems are new ones at restore)."""
        for word in m.super_options.split(",")[1:]:
            key, _, value = word.partition("=")
            if "\\" in word:
                raise Unsupported(f"unsupported: overlay at {m.point} in {where}: an escaped "
                                  f"character in its option {word!r}")
            if key in OVERLAY_INODE_TIES and value == "on":
                raise Unsupported(f"unsupported: overlay at {m.point} in {where} has {word}: "
                                  f"its upper layer names the lower layers' inodes")
            if key not in OVERLAY_LAYERS:
                continue
            if "::" in value:
                raise Unsupported(f"unsupported: overlay at {m.point} in {where}: data-only "
                                  f"lower layers ({word})")
            for path in value.split(":"):
                # a /proc/self/fd/N layer (shown as typed) names the mounter's fd, not a path
                there = _seen(self.ns_pids[index], path) if path.startswith("/") and \
                    not path.startswith("/proc/") else None
                if there is None or not os.path.isdir(there):
                    raise Unsupported(f"unsupported: overlay at {m.point} in {where}: its "
                                      f"layer {path!r} is not an absolute path to a directory "
                                      f"of the namespace")

    def _proc_pidns(self, m, index, where):
        """The init (a pid of the image) of the tree's pid namespace a proc mount shows;
        None: the dumper's."""
        there = _seen(self.ns_pids[index], m.point)
        if there is None:
            raise Unsupported(f"unsupported: proc at {m.point} in {where}: outside the root "
                              f"of every process there (chroot)")
        try:
            if os.readlink(f"{there}/self") == str(os.getpid()):
                return None                 # ours: we are in it
        except OSError:
            pass                            # not ours: we are not in it
        try:
            link = os.readlink(f"{there}/1/ns/pid")
        except OSError as e:
            raise Unsupported(f"unsupported: proc at {m.point} in {where}: its pid "
                              f"namespace cannot be read ({e.strerror}; hidden, or "
                              f"hidepid)") from None
        if link == os.readlink("/proc/self/ns/pid"):
            return None
        if link not in self.pidns_inits:
            raise Unsupported(f"unsupported: proc at {m.point} in {where} shows a pid "
                              f"namespace ({link}) whose init is not in the tree")
        return self.pidns_inits[link]

    def _check_empty(self, m, index, where, why):
        path = f"/proc/{self.ns_pids[index][0]}/root{m.point}"
        if os.listdir(path):
            raise Unsupported(f"unsupported: {m.fstype} at {m.point} in {where} is not "
                              f"empty ({why})")

    @staticmethod
    def _check(m, sb, where):
        if m.root.endswith(DELETED) and (sb["make"], sb["fstype"]) != ("new", "tmpfs"):
            raise Unsupported(f"unsupported: {m.point} in {where} binds {m.root[:-9]}, "
                              f"which was deleted (carried on a tmpfs of the tree only)")
        if "idmapped" in m.options.split(","):
            raise Unsupported(f"unsupported: {m.point} in {where} is an idmapped mount")
        if sb["make"] == "late" and (m.shared or m.master):
            raise Unsupported(f"unsupported: proc at {m.point} in {where} propagates "
                              f"(shared or slave): a proc of the tree's pid namespace is "
                              f"made late, and private")

    def _groups(self, mounts, sbs):
        """Peer groups and sets of slaves of one master, over the tree's namespaces:
        [{id, shared, master, members, template, outside}], masters first.  ``template``:
        for a file system of ours, a path of ours showing every member's root (the
        builder's helper mount of the group is a clone of it; a new file system's is its
        whole root); ``outside``: a path of ours whose mount is a member of the group (its
        members in ours stay, the restored ones join them)."""
        tables = {i: {m.id: m for m in t} for i, t in enumerate(self.tables)}
        by_sb = {sb["id"]: sb for sb in sbs.values()}
        ours_groups, ours_dev = {}, self.ours_dev
        for m in self.ours:
            if m.shared:
                ours_groups.setdefault(m.shared, []).append(m)
        keys = {}
        for entry in mounts:
            m = tables[entry["ns"]][entry["dump_id"]]
            if by_sb[entry["sb"]]["make"] == "key":
                continue            # its propagation is the outside's, joined by a clone
            if m.shared is not None or m.master is not None:
                key = ("shared", m.shared) if m.shared else ("slave", m.master)
                keys.setdefault(key, []).append((entry, m))
        out, made = [], {}

        def master_of(gid, root, why):
            """The label of shared group ``gid`` (the master of a group whose helper shows
            ``root``), described first."""
            if ("shared", gid) in keys:
                label = add(("shared", gid))
                g = next(x for x in out if x["id"] == label)
                if g["root"] != "/" and below(g["root"], root) is None:
                    raise Unsupported(f"unsupported: {why} is a slave of a peer group whose "
                                      f"members all show less of the file system "
                                      f"({g['root']}) than it does ({root})")
                return label
            if gid in ours_groups:         # a master only we hold
                made["shared", gid] = f"g{len(out)}"
                point, top = _outside(ours_groups[gid], why, [root])
                out.append({"id": made["shared", gid], "shared": True, "master": None,
                            "members": [], "root": top, "template": None,
                            "outside": point})
                return made["shared", gid]
            raise Unsupported(f"unsupported: {why} is a slave of peer group {gid}, which "
                              f"no namespace of the tree nor the dumper's holds")

        def add(key):
            if key in made:
                return made[key]
            members = keys[key]
            entry, m = members[0]
            why = f"{m.point} in mount namespace {entry['ns']}"
            sb = by_sb[entry["sb"]]
            roots = [x.root for _, x in members]
            root = "/" if sb["make"] != "external" else _common(roots)
            master = master_of(m.master, root, why) if m.master else None
            g = {"id": f"g{len(out)}", "shared": key[0] == "shared", "master": master,
                 "members": [e["id"] for e, _ in members], "root": root,
                 "template": None, "outside": None}
            if key[0] == "shared" and m.shared in ours_groups:
                g["outside"], g["root"] = _outside(ours_groups[m.shared], why, roots)
            elif sb["make"] == "external":
                g["template"] = _reachable(m._replace(root=root), ours_dev[m.dev], why)
            made[key] = g["id"]
            out.append(g)
            return g["id"]

        for key in keys:
            add(key)
        return out

    # files -----------------------------------------------------------------------------
    def locate(self, mnt_id, link, what):
        """{"mnt", "rel"} of a file on mount ``mnt_id`` (fdinfo's) at ``link`` (as we read
        it); None when the mount is one of ours (the file is opened by path)."""
        found = self.points.get(mnt_id)
        if found is None:
            if mnt_id in self.our_ids:
                return None
            raise Unsupported(f"unsupported: {link} ({what}) is on a mount of neither the "
                              f"tree's namespaces nor ours (mount {mnt_id})")
        label, point = found
        if point == "/":
            return {"mnt": label, "rel": link.lstrip("/")}
        if link == point or link.startswith(point + "/"):
            return {"mnt": label, "rel": link[len(point):].lstrip("/")}
        raise Unsupported(f"unsupported: {link} ({what}) is not below its mount's point "
                          f"{point}")

    # content ---------------------------------------------------------------------------
    def dump_content(self, writer):
        """The files of the tree's tmpfs superblocks, into CONTENT_IMAGE; the entries go
        into the image."""
        if not self.image:
            return
        targets = {}
        for sb in self.image["superblocks"]:
            if sb["make"] != "new" or sb["fstype"] != "tmpfs":
                continue
            members = [e for e in self.image["mounts"] if e["sb"] == sb["id"]]
            for e in members:       # each its own view: the same text, other entries?
                if e["root"].endswith(DELETED):
                    targets.setdefault(e["ns"], []).append(
                        (f"{e['id']}:{e['root']}", e["point"], e["root"], sb["dev"]))
            members = [e for e in members if not e["root"].endswith(DELETED)]
            roots = sorted({e["root"] for e in members}, key=len)
            tops = [r for r in roots if not any(below(t, r) is not None
                                               for t in roots if t != r)]
            sb["content"] = []
            for root in tops:
                e = next(e for e in members if e["root"] == root)
                name = f"{sb['id']}:{root}"
                sb["content"].append(name)
                targets.setdefault(e["ns"], []).append((name, e["point"], root, sb["dev"]))
        content = {}
        with open(writer.path(CONTENT_IMAGE), "wb") as sink:
            for index, wanted in targets.items():
                content.update(mnt_content.dump(self.ns_pids[index][0], wanted, sink))
        writer.adopt(CONTENT_IMAGE)
        self.image["content"] = _deleted_roots(self.image["mounts"], content)
        writer.json(MNT_IMAGE, self.image)


def ask_probes(pid):
    """What the dump of ``pid``'s tree may ask the probes (the first asking imports and
    runs them: some 200 ms), asked before the tree is frozen, when its root has a mount
    namespace of its own (a namespace only a child has is asked for while frozen)."""
    try:
        theirs = os.stat(f"/proc/{pid}/ns/mnt").st_ino
    except OSError:
        return                  # no such process: the freeze says so
    if theirs != os.stat("/proc/self/ns/mnt").st_ino:
        mount_table.way()
        has_set_group()


def has_set_group():
    """Whether this kernel joins a mount to a peer group (MOVE_MOUNT_SET_GROUP, 5.15; the
    probe says, ``SET_GROUP_FORCE`` in the environment overrides): else groups are made by
    cloning their helpers, which some shapes do not allow (``_needs_set_group``)."""
    forced = os.environ.get(SET_GROUP_FORCE)
    if forced in ("0", "1"):
        return forced == "1"
    import probes           # the prober is run once per process, and only if asked
    return probes.check("move_mount_set_group").status == "present"


def _needs_set_group(mounts, groups, ns_pids):
    """Why these mounts cannot be made without MOVE_MOUNT_SET_GROUP, naming one; None when
    they can.  Without it a mount joins a group by being cloned from one of its members,
    from its start: a mount made below a shared one would propagate as it is made (and
    pivot_root refuses a shared root)."""
    shared = {label for g in groups if g["shared"] for label in g["members"]}
    by_id = {e["id"]: e for e in mounts}
    for e in mounts:
        where = f"mount namespace {e['ns']} (pid {ns_pids[e['ns']][0]})"
        if e["parent"] is None and e["id"] in shared:
            return f"the root {e['point']} of {where} is in a shared peer group"
        if e["parent"] in shared:
            return (f"{e['point']} in {where} is mounted on {by_id[e['parent']]['point']}, "
                    f"a member of a shared peer group")
    return None


def _deleted_roots(mounts, content):
    """``content`` with one part per removed entry some mounts bind, named on those mounts
    as "deleted" (two removed entries of one path, told apart by inode, are refused: the
    restore makes each at its path for a while)."""
    parts = {}                  # (sb, root) -> (inode, the part's name)
    for e in mounts:
        name = f"{e['id']}:{e['root']}"
        if name in content:
            part = content.pop(name)
            ino, e["deleted"] = parts.setdefault((e["sb"], e["root"]), (part["ino"], name))
            if ino != part.pop("ino"):
                raise Unsupported(f"unsupported: {e['point']} in mount namespace {e['ns']} "
                                  f"binds a removed {e['root'][:-len(DELETED)]}, and another "
                                  f"mount another entry removed from that same path")
            content.setdefault(e["deleted"], part)
    for part in content.values():
        part.pop("ino", None)
    return content


def _dump_externals(specs):
    """{(point, namespace index or None): key} of "mnt[PATH]:KEY" / "mnt[PATH@N]:KEY"."""
    out = {}
    for spec in specs:
        inner, key = _external_spec(spec)
        point, at, ns = inner.rpartition("@") if "@" in inner else (inner, "", "")
        if not point.startswith("/") or (at and not ns.isdigit()):
            raise Unsupported(f"bad --external {spec!r}: mnt[PATH]:KEY or mnt[PATH@N]:KEY")
        out[point.rstrip("/") or "/", int(ns) if at else None] = key
    return out


def restore_externals(specs):
    """{key: path} of "mnt[KEY]:PATH" (restore's --external)."""
    out = {}
    for spec in specs:
        key, path = _external_spec(spec)
        if not path.startswith("/"):
            raise Unsupported(f"bad --external {spec!r}: mnt[KEY]:PATH, PATH absolute")
        out[key] = path
    return out


def _external_spec(spec):
    if not spec.startswith("mnt[") or "]:" not in spec:
        raise Unsupported(f"bad --external {spec!r}: only mounts (mnt[...]:...) are named")
    inner, _, rest = spec[4:].partition("]:")
    if not inner or not rest:
        raise Unsupported(f"bad --external {spec!r}: mnt[...]:... with both parts")
    return inner, rest


def _check_declared(m, table, where):
    """A declared external mount propagates with the outside world only: the restore
    clones the given path, with its peer group and master; what of the tree joins it, or
    is mounted below it while it sends (shared: that would reach the outside), is
    refused."""
    for x in table:
        why = None
        if m.shared and x is not m and x.shared == m.shared:
            why = "is in its peer group"
        elif m.shared and x.master == m.shared:
            why = "is a slave of it"
        elif m.shared and x.parent == m.id:
            why = "is mounted on it (the restore would send it to the outside's peers)"
        if why:
            raise Unsupported(f"unsupported: {x.point} in {where} {why}, and {m.point} is "
                              f"declared external")


def _seen(pids, point):
    """A path of ours to ``point`` of the mount namespace of ``pids``, through a process
    whose root (a chroot, perhaps) holds it."""
    for pid in pids:
        root = os.readlink(f"/proc/{pid}/root").rstrip("/")
        if point == root or point.startswith(root + "/") or not root:
            return f"/proc/{pid}/root{point[len(root):]}"
    return None


def _parents_first(table, where):
    children = {}
    for m in table:
        children.setdefault(m.parent, []).append(m)
    out, todo = [], [_root(table)]
    while todo:
        m = todo.pop(0)
        out.append(m)
        todo += [c for c in children.get(m.id, ()) if c is not m]
    if len(out) != len(table):
        lost = next(m for m in table if m not in out)
        raise Unsupported(f"unsupported: {lost.point} in {where} hangs off no mount of "
                          f"its namespace (parent {lost.parent})")
    return out


def _root(table):
    ids = {m.id for m in table}
    return next(m for m in table if m.parent not in ids or m.parent == m.id)


def _attr(options):
    words = options.split(",")
    out = {w: w in words for w in ATTR_WORDS}
    out["atime"] = next((w for w in ATIME_WORDS if w in words), "strictatime")
    return out


def _reachable(m, ours, where):
    """The path of ours that shows the root of the tree's mount ``m`` (a file system we
    have mounted too) below one of our mounts of it: one not covered by another mount if
    there is one (else the builder uncovers it in its private copy of our namespace)."""
    major, minor = (int(x) for x in m.dev.split(":"))
    paths = [p for p in (_below(o, m.root) for o in ours) if p is not None]
    for path in paths:
        try:
            here = os.stat(path)
        except OSError:
            continue
        if (os.major(here.st_dev), os.minor(here.st_dev)) == (major, minor):
            return path
    if paths:
        return paths[0]
    raise Unsupported(f"unsupported: {m.point} in {where} binds {m.root} of {m.source}, "
                      f"which the dumper cannot reach")


def _below(o, root):
    """The path of ours at which our mount ``o`` shows ``root`` of its file system; None
    when ``root`` is not below ``o``'s root."""
    rel = below(o.root, root)
    if rel is None:
        return None
    return o.point.rstrip("/") + "/" + rel if rel else o.point


def below(top, root):
    """Path ``root`` relative to ``top`` ("" when the same; both roots within one file
    system, or both mount points); None when ``root`` is not below ``top``."""
    base = top.rstrip("/")
    if root == top or top == "/":
        return root[len(base):].lstrip("/")
    if root.startswith(base + "/"):
        return root[len(base) + 1:]
    return None


def _common(roots):
    """The deepest root within a file system that holds every one of ``roots``."""
    parts = [r.strip("/").split("/") if r != "/" else [] for r in roots]
    common = []
    for names in zip(*parts):
        if len(set(names)) != 1:
            break
        common.append(names[0])
    return "/" + "/".join(common)


def _outside(ours, why, roots):
    """(point, root) of a mount of ours, a member of one of our groups, that shows every
    root of ``roots`` (SET_GROUP takes a source whose root holds the target's)."""
    for o in ours:
        if all(_below(o, r) is not None for r in roots):
            return o.point, o.root
    raise Unsupported(f"unsupported: {why} shares a peer group with mounts of ours, none "
                      f"of which holds the roots {', '.join(roots)}")


def describe(image):
    """Lines for `show`: each namespace's mounts as a tree, with how each is made."""
    if not image:
        return []
    sbs = {s["id"]: s for s in image["superblocks"]}
    groups = {}
    for g in image["groups"]:
        for label in g["members"]:
            groups[label] = g
    lines = [f"mount namespaces (read by {image['collect']}):"]
    for index, ns in enumerate(image["namespaces"]):
        lines.append(f"  namespace {index}: pids {', '.join(map(str, ns['pids']))}")
        for m in image["mounts"]:
            if m["ns"] != index:
                continue
            sb = sbs[m["sb"]]
            how = f"bind of {m['path']}" if sb["make"] == "external" else \
                f"overlay ({','.join(sb['options'])})" if sb["make"] == "overlay" else \
                f"external {sb['key']!r}" if sb["make"] == "key" else \
                f"{sb['fstype']} {sb['source']}" + (" (made by its pid namespace's init)"
                                                   if sb["make"] == "late" else "")
            flags = [w for w in ATTR_WORDS if m["attr"][w]] + [m["attr"]["atime"]]
            g = groups.get(m["id"])
            prop = "unbindable" if m["unbindable"] else "private" if g is None else \
                (f"shared {g['id']}" if g["shared"] else "") + \
                (f" slave of {g['master']}" if g["master"] else "")
            root = f" [{m['root']}]" if m["root"] != "/" else ""
            lines.append(f"    {m['id']:<5} {m['point']}{root}: {how}; {','.join(flags)}; "
                         f"{prop.strip()}")
    return lines
