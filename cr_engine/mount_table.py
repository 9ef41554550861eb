"""A mount namespace's mounts, read two ways that must agree: listmount(2) + statmount(2)
(6.8; another namespace's by its id, 6.11; every field the engine needs, the source
among them, from 6.13) and the text of /proc/PID/mountinfo, which every kernel has.
``collect`` takes the first where the kernel gives everything (probes: statmount and its
fields, listmount of another namespace), the other otherwise.

Each mount is a ``Mount``: the legacy 32-bit ids mountinfo shows (statmount's mnt_id_old),
the device, the root within its file system, the mount point, the per-mount options as
mountinfo prints them, the propagation (peer group, master, propagate_from, unbindable),
the file system type, the source and the super block's options.
"""

import collections
import os

from kernel import mount as kmount
from kernel import namespaces as knamespaces
from kernel.procfs import mountinfo

Mount = collections.namedtuple(
    "Mount", "id parent dev root point options shared master propagate_from unbindable "
             "fstype source super_options")

# statmount's mnt_attr (MOUNT_ATTR_*) as show_mnt_opts() prints the same flags, in its order
ATTR_NAMES = ((kmount.MOUNT_ATTR_NOSUID, "nosuid"), (kmount.MOUNT_ATTR_NODEV, "nodev"),
              (kmount.MOUNT_ATTR_NOEXEC, "noexec"), (kmount.MOUNT_ATTR_NOATIME, "noatime"),
              (kmount.MOUNT_ATTR_NODIRATIME, "nodiratime"))
ATTR_ATIME = 0x70                       # MOUNT_ATTR__ATIME: 0 is relatime
ATTR_NOSYMFOLLOW = 0x200000
ATTR_IDMAP = 0x100000
# the super block flags show_sb_opts() prints before the file system's own options
SB_RDONLY, SB_NAMES = 0x1, ((0x10, "sync"), (0x80, "dirsync"), (0x40, "mand"),
                            (1 << 25, "lazytime"))
MS_SHARED, MS_SLAVE, MS_UNBINDABLE = kmount.MS_SHARED, kmount.MS_SLAVE, kmount.MS_UNBINDABLE
NEEDED = (kmount.STATMOUNT_SB_BASIC | kmount.STATMOUNT_MNT_BASIC |
          kmount.STATMOUNT_PROPAGATE_FROM | kmount.STATMOUNT_MNT_ROOT |
          kmount.STATMOUNT_MNT_POINT | kmount.STATMOUNT_FS_TYPE)
# set in the answer only where there is something (no options, no subtype, no source)
OPTIONAL = (kmount.STATMOUNT_MNT_OPTS | kmount.STATMOUNT_SB_SOURCE |
            kmount.STATMOUNT_FS_SUBTYPE)


FORCE = "CR_ENGINE_MOUNT_COLLECT"        # "statmount" or "mountinfo": that path, always
STATMOUNT_FIELDS = ("mnt_opts", "sb_source")    # fields statmount lacks before 6.11, 6.13


def collect(pid):
    """The mounts of ``pid``'s mount namespace, the way this kernel tells them whole:
    statmount where it fills every field (6.13) and lists another namespace (6.11), else
    mountinfo (``FORCE`` in the environment picks one)."""
    return from_statmount(mnt_ns_id(pid)) if way() == "statmount" else from_mountinfo(pid)


def way():
    """"statmount" or "mountinfo": how ``collect`` reads a namespace here."""
    forced = os.environ.get(FORCE)
    if forced in ("statmount", "mountinfo"):
        return forced
    import probes           # the prober is run once per process, and only if asked
    filled = probes.check("statmount")
    foreign = probes.check("listmount_foreign_ns")
    if filled.status == "present" and foreign.status == "present" and \
            all(f in (filled.data or {}).get("fields", ()) for f in STATMOUNT_FIELDS):
        return "statmount"
    return "mountinfo"


def from_mountinfo(pid="self", path=None):
    """The mounts of ``pid``'s namespace, as its /proc/PID/mountinfo (or ``path``) lists
    them."""
    out = []
    for m in mountinfo(path or f"/proc/{pid}/mountinfo"):
        tags = dict(t.partition(":")[::2] for t in m["optional"])
        out.append(Mount(m["id"], m["parent"], m["dev"], m["root"], m["mount_point"],
                         m["options"], _int(tags.get("shared")), _int(tags.get("master")),
                         _int(tags.get("propagate_from")), "unbindable" in tags,
                         m["fstype"], m["source"], m["super_options"]))
    return out


def from_mountinfo_inside(pid):
    """from_mountinfo for a namespace whose every process is chrooted (their mountinfo
    shows what is below their root only): read by a child that joined it (setns makes
    the namespace's root its own)."""
    from .mnt_content import in_child

    def read():
        proc = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        knamespaces.setns(os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC),
                          knamespaces.CLONE_NEWNS)
        os.fchdir(proc)         # our /proc: the namespace may have none
        return [list(m) for m in from_mountinfo(path="self/mountinfo")]
    return [Mount(*row) for row in in_child(read)]


def from_statmount(mnt_ns_id=0):
    """The mounts of the namespace ``mnt_ns_id`` (0: ours), from listmount and statmount,
    in listmount's order: by 64-bit id, the order mountinfo lists them in too (a
    namespace keeps its mounts sorted so since 6.8)."""
    out = []
    for mnt_id in kmount.listmount_all(mnt_ns_id=mnt_ns_id):
        sm, raw = kmount.statmount(mnt_id, NEEDED | OPTIONAL, mnt_ns_id)
        if sm.mask & NEEDED != NEEDED:
            raise OSError(f"statmount of mount {mnt_id} left out fields {NEEDED & ~sm.mask:#x}")

        def text(offset, bit=0):
            return kmount.statmount_string(raw, offset) if not bit or sm.mask & bit else ""
        fstype = text(sm.fs_type)
        if text(sm.fs_subtype, kmount.STATMOUNT_FS_SUBTYPE):
            fstype += "." + text(sm.fs_subtype)
        prop = sm.mnt_propagation
        out.append(Mount(
            sm.mnt_id_old, sm.mnt_parent_id_old, f"{sm.sb_dev_major}:{sm.sb_dev_minor}",
            text(sm.mnt_root), text(sm.mnt_point), _mount_options(sm.mnt_attr),
            sm.mnt_peer_group if prop & MS_SHARED else None,
            sm.mnt_master if prop & MS_SLAVE else None,
            # mountinfo names the dominating group only where it is not the master
            sm.propagate_from if prop & MS_SLAVE and sm.propagate_from not in
            (0, sm.mnt_master) else None,
            bool(prop & MS_UNBINDABLE), fstype,
            text(sm.sb_source, kmount.STATMOUNT_SB_SOURCE) or "none",
            _super_options(sm.sb_flags, text(sm.mnt_opts, kmount.STATMOUNT_MNT_OPTS))))
    return out


def _mount_options(attr):
    words = ["ro" if attr & kmount.MOUNT_ATTR_RDONLY else "rw"]
    words += [name for bit, name in ATTR_NAMES if attr & bit]
    if attr & ATTR_ATIME == 0:
        words.append("relatime")
    if attr & ATTR_NOSYMFOLLOW:
        words.append("nosymfollow")
    if attr & ATTR_IDMAP:
        words.append("idmapped")
    return ",".join(words)


def _super_options(sb_flags, fs_options):
    words = ["ro" if sb_flags & SB_RDONLY else "rw"]
    words += [name for bit, name in SB_NAMES if sb_flags & bit]
    return ",".join(words + ([fs_options] if fs_options else []))


def _int(text):
    return int(text) if text else None


def mnt_ns_id(pid):
    """The 64-bit id of ``pid``'s mount namespace (NS_GET_MNTNS_ID, 6.11)."""
    fd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    try:
        return knamespaces.ns_get_mntns_id(fd)
    finally:
        os.close(fd)
