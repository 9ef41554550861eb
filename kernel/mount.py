"""The mount API: mount(2)/umount2(2), the fd-based mount syscalls (5.2+),
mount_setattr (5.12), statmount/listmount (6.8), openat2 (5.6) and the
mount id of statx.

Thin wrappers: each raises OSError with the kernel's errno; constants and
structure layouts follow <linux/mount.h>, <linux/openat2.h>, <linux/stat.h>.
"""

import ctypes
import errno
import os

from .libc import check, syscall

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_NO_AUTOMOUNT = 0x800
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000

# mount(2) flags
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24

# umount2(2) flags
MNT_FORCE = 0x1
MNT_DETACH = 0x2

# fsopen / fsconfig / fsmount / fspick
FSOPEN_CLOEXEC = 0x1
FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_SET_BINARY = 2
FSCONFIG_SET_PATH = 3
FSCONFIG_SET_PATH_EMPTY = 4
FSCONFIG_SET_FD = 5
FSCONFIG_CMD_CREATE = 6
FSCONFIG_CMD_RECONFIGURE = 7
FSCONFIG_CMD_CREATE_EXCL = 8
FSMOUNT_CLOEXEC = 0x1
FSPICK_CLOEXEC = 0x1
FSPICK_SYMLINK_NOFOLLOW = 0x2
FSPICK_NO_AUTOMOUNT = 0x4
FSPICK_EMPTY_PATH = 0x8

# open_tree
OPEN_TREE_CLONE = 0x1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC

# move_mount
MOVE_MOUNT_F_SYMLINKS = 0x1
MOVE_MOUNT_F_AUTOMOUNTS = 0x2
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_SYMLINKS = 0x10
MOVE_MOUNT_T_AUTOMOUNTS = 0x20
MOVE_MOUNT_T_EMPTY_PATH = 0x40
MOVE_MOUNT_SET_GROUP = 0x100     # 5.15
MOVE_MOUNT_BENEATH = 0x200       # 6.5

# mount_setattr / fsmount attributes
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_IDMAP = 0x100000
MOUNT_ATTR_NOSYMFOLLOW = 0x200000
MOUNT_ATTR_SIZE_VER0 = 32


class MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


# statmount / listmount
STATMOUNT_SB_BASIC = 0x1
STATMOUNT_MNT_BASIC = 0x2
STATMOUNT_PROPAGATE_FROM = 0x4
STATMOUNT_MNT_ROOT = 0x8
STATMOUNT_MNT_POINT = 0x10
STATMOUNT_FS_TYPE = 0x20
STATMOUNT_MNT_NS_ID = 0x40       # 6.11
STATMOUNT_MNT_OPTS = 0x80        # 6.11
STATMOUNT_FS_SUBTYPE = 0x100     # 6.13
STATMOUNT_SB_SOURCE = 0x200      # 6.13
STATMOUNT_OPT_ARRAY = 0x400      # 6.14
STATMOUNT_OPT_SEC_ARRAY = 0x800  # 6.14
STATMOUNT_SUPPORTED_MASK = 0x1000  # 6.15
STATMOUNT_MNT_UIDMAP = 0x2000    # 6.15
STATMOUNT_MNT_GIDMAP = 0x4000    # 6.15

STATMOUNT_FIELDS = {
    STATMOUNT_SB_BASIC: "sb_basic", STATMOUNT_MNT_BASIC: "mnt_basic",
    STATMOUNT_PROPAGATE_FROM: "propagate_from", STATMOUNT_MNT_ROOT: "mnt_root",
    STATMOUNT_MNT_POINT: "mnt_point", STATMOUNT_FS_TYPE: "fs_type",
    STATMOUNT_MNT_NS_ID: "mnt_ns_id", STATMOUNT_MNT_OPTS: "mnt_opts",
    STATMOUNT_FS_SUBTYPE: "fs_subtype", STATMOUNT_SB_SOURCE: "sb_source",
    STATMOUNT_OPT_ARRAY: "opt_array", STATMOUNT_OPT_SEC_ARRAY: "opt_sec_array",
    STATMOUNT_SUPPORTED_MASK: "supported_mask", STATMOUNT_MNT_UIDMAP: "mnt_uidmap",
    STATMOUNT_MNT_GIDMAP: "mnt_gidmap",
}

LSMT_ROOT = 0xFFFFFFFFFFFFFFFF   # listmount: the root of the caller's namespace
LISTMOUNT_REVERSE = 0x1          # 6.11
MNT_ID_REQ_SIZE_VER0 = 24
MNT_ID_REQ_SIZE_VER1 = 32        # + mnt_ns_id (6.11)


class MntIdReq(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("spare", ctypes.c_uint32),
                ("mnt_id", ctypes.c_uint64), ("param", ctypes.c_uint64),
                ("mnt_ns_id", ctypes.c_uint64)]


class Statmount(ctypes.Structure):
    """struct statmount without its trailing string area (offsets into it are u32)."""
    _fields_ = [
        ("size", ctypes.c_uint32), ("mnt_opts", ctypes.c_uint32), ("mask", ctypes.c_uint64),
        ("sb_dev_major", ctypes.c_uint32), ("sb_dev_minor", ctypes.c_uint32),
        ("sb_magic", ctypes.c_uint64), ("sb_flags", ctypes.c_uint32),
        ("fs_type", ctypes.c_uint32), ("mnt_id", ctypes.c_uint64),
        ("mnt_parent_id", ctypes.c_uint64), ("mnt_id_old", ctypes.c_uint32),
        ("mnt_parent_id_old", ctypes.c_uint32), ("mnt_attr", ctypes.c_uint64),
        ("mnt_propagation", ctypes.c_uint64), ("mnt_peer_group", ctypes.c_uint64),
        ("mnt_master", ctypes.c_uint64), ("propagate_from", ctypes.c_uint64),
        ("mnt_root", ctypes.c_uint32), ("mnt_point", ctypes.c_uint32),
        ("mnt_ns_id", ctypes.c_uint64), ("fs_subtype", ctypes.c_uint32),
        ("sb_source", ctypes.c_uint32), ("opt_num", ctypes.c_uint32),
        ("opt_array", ctypes.c_uint32), ("opt_sec_num", ctypes.c_uint32),
        ("opt_sec_array", ctypes.c_uint32), ("supported_mask", ctypes.c_uint64),
        ("mnt_uidmap_num", ctypes.c_uint32), ("mnt_uidmap", ctypes.c_uint32),
        ("mnt_gidmap_num", ctypes.c_uint32), ("mnt_gidmap", ctypes.c_uint32),
        ("spare2", ctypes.c_uint64 * 43),
    ]


assert ctypes.sizeof(Statmount) == 512

# openat2 (5.6)
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
RESOLVE_CACHED = 0x20            # 5.12


class OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


# statx mount ids
STATX_MNT_ID = 0x1000            # 5.8
STATX_MNT_ID_UNIQUE = 0x4000     # 6.8
_STATX_SIZE = 256
_STATX_MASK_OFFSET = 0
_STATX_MNT_ID_OFFSET = 0x90


def _path(p):
    return None if p is None else os.fsencode(p)


# A handle of our own, so the argtypes set here do not change anybody else's libc.mount.
_own = ctypes.CDLL(None, use_errno=True)
_mount = _own.mount
_mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                   ctypes.c_char_p]
_umount2 = _own.umount2
_umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def mount(source, target, fstype, flags=0, data=None):
    """mount(2); ``data`` is a str/bytes option string or None."""
    return check(_mount(_path(source), _path(target), _path(fstype), flags, _path(data)),
                 f"mount {target}")


def umount2(target, flags=0):
    return check(_umount2(_path(target), flags), f"umount2 {target}")


def fsopen(fsname, flags=FSOPEN_CLOEXEC):
    return syscall("fsopen", fsname, flags)


def fsconfig(fd, cmd, key=None, value=None, aux=0):
    """fsconfig(2); ``value`` may be a str (SET_STRING/SET_PATH) or None."""
    return syscall("fsconfig", fd, cmd, key, value, aux)


def fsmount(fd, flags=FSMOUNT_CLOEXEC, attr_flags=0):
    return syscall("fsmount", fd, flags, attr_flags)


def fspick(dirfd, path, flags=FSPICK_CLOEXEC):
    return syscall("fspick", dirfd, path, flags)


def open_tree(dirfd, path, flags):
    return syscall("open_tree", dirfd, path, flags)


def move_mount(from_dirfd, from_path, to_dirfd, to_path, flags=0):
    return syscall("move_mount", from_dirfd, from_path, to_dirfd, to_path, flags)


def mount_setattr(dirfd, path, flags, attr, size=None):
    """mount_setattr(2); ``attr`` is a MountAttr or None."""
    if attr is None:
        return syscall("mount_setattr", dirfd, path, flags, None, size or 0)
    return syscall("mount_setattr", dirfd, path, flags, ctypes.byref(attr),
                   ctypes.sizeof(attr) if size is None else size)


def statmount_raw(req, buf, bufsize, flags=0):
    """statmount(2) with caller-made arguments (req: MntIdReq or None)."""
    return syscall("statmount", ctypes.byref(req) if req is not None else None,
                   buf, bufsize, flags)


def statmount(mnt_id, mask, mnt_ns_id=0, bufsize=4096):
    """statmount(2) of one mount: (Statmount header, raw bytes incl. strings).

    Grows the buffer on EOVERFLOW.
    """
    req = MntIdReq(size=MNT_ID_REQ_SIZE_VER1 if mnt_ns_id else MNT_ID_REQ_SIZE_VER0,
                   mnt_id=mnt_id, param=mask, mnt_ns_id=mnt_ns_id)
    while True:
        buf = ctypes.create_string_buffer(bufsize)
        try:
            statmount_raw(req, buf, bufsize)
        except OSError as e:
            if e.errno == errno.EOVERFLOW and bufsize < (1 << 20):  # strings did not fit
                bufsize *= 4
                continue
            raise
        header = Statmount.from_buffer_copy(buf.raw[:ctypes.sizeof(Statmount)])
        return header, buf.raw[:max(header.size, ctypes.sizeof(Statmount))]


def statmount_string(raw, offset):
    """A NUL-terminated string of the statmount string area at ``offset``."""
    start = ctypes.sizeof(Statmount) + offset
    end = raw.find(b"\0", start)
    return raw[start:end if end >= 0 else len(raw)].decode(errors="replace")


def statmount_strings(raw, offset, count):
    """``count`` consecutive NUL-terminated strings (opt_array and the like)."""
    out, pos = [], ctypes.sizeof(Statmount) + offset
    for _ in range(count):
        end = raw.find(b"\0", pos)
        if end < 0:
            break
        out.append(raw[pos:end].decode(errors="replace"))
        pos = end + 1
    return out


def listmount(mnt_id=LSMT_ROOT, mnt_ns_id=0, last_id=0, max_ids=4096, flags=0, mnt_ns_fd=0):
    """listmount(2): a list of 64-bit mount ids (one call, at most ``max_ids``).

    Another mount namespace is named by ``mnt_ns_id`` (6.11) or by an nsfs
    fd in ``mnt_ns_fd`` (6.18, the field that was ``spare`` before).
    """
    big = mnt_ns_id or mnt_ns_fd
    req = MntIdReq(size=MNT_ID_REQ_SIZE_VER1 if big else MNT_ID_REQ_SIZE_VER0,
                   spare=mnt_ns_fd, mnt_id=mnt_id, param=last_id, mnt_ns_id=mnt_ns_id)
    ids = (ctypes.c_uint64 * max_ids)()
    n = syscall("listmount", ctypes.byref(req), ids, max_ids, flags)
    return list(ids[:n])


def listmount_all(mnt_id=LSMT_ROOT, mnt_ns_id=0, chunk=512, mnt_ns_fd=0):
    """Every id listmount(2) gives, following its pagination."""
    out, last = [], 0
    while True:
        part = listmount(mnt_id, mnt_ns_id, last, chunk, mnt_ns_fd=mnt_ns_fd)
        out += part
        if len(part) < chunk:
            return out
        last = part[-1]


def openat2(dirfd, path, flags=0, mode=0, resolve=0, how_size=None):
    how = OpenHow(flags=flags, mode=mode, resolve=resolve)
    return syscall("openat2", dirfd, path, ctypes.byref(how),
                   ctypes.sizeof(how) if how_size is None else how_size)


def openat2_raw(dirfd, path, how, size):
    """openat2 with a caller-made ``how`` (None for NULL)."""
    return syscall("openat2", dirfd, path, ctypes.byref(how) if how is not None else None,
                   size)


def statx_mnt_id(path, mask=STATX_MNT_ID, dirfd=AT_FDCWD, flags=0):
    """statx(2) asking for a mount id: (returned stx_mask, stx_mnt_id)."""
    buf = ctypes.create_string_buffer(_STATX_SIZE)
    syscall("statx", dirfd, path, flags, mask, buf)
    got = int.from_bytes(buf.raw[_STATX_MASK_OFFSET:_STATX_MASK_OFFSET + 4], "little")
    mnt_id = int.from_bytes(buf.raw[_STATX_MNT_ID_OFFSET:_STATX_MNT_ID_OFFSET + 8], "little")
    return got, mnt_id
