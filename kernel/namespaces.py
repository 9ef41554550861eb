"""unshare(2), setns(2), clone flags and the nsfs ioctls."""

import ctypes
import os

from .libc import IO, IOR, ioctl, syscall

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# namespace kind -> (clone flag, /proc/pid/ns link)
KINDS = {
    "mnt": (CLONE_NEWNS, "mnt"), "uts": (CLONE_NEWUTS, "uts"), "ipc": (CLONE_NEWIPC, "ipc"),
    "user": (CLONE_NEWUSER, "user"), "pid": (CLONE_NEWPID, "pid"),
    "net": (CLONE_NEWNET, "net"), "cgroup": (CLONE_NEWCGROUP, "cgroup"),
    "time": (CLONE_NEWTIME, "time"),
}

# <linux/nsfs.h>
NSIO = 0xB7
NS_GET_USERNS = IO(NSIO, 0x1)                  # 4.9
NS_GET_PARENT = IO(NSIO, 0x2)                  # 4.9
NS_GET_NSTYPE = IO(NSIO, 0x3)                  # 4.11
NS_GET_OWNER_UID = IO(NSIO, 0x4)               # 4.11, writes a uid_t
NS_GET_MNTNS_ID = IOR(NSIO, 0x5, 8)            # writes a __u64
NS_GET_MNTNS_ID_LEGACY = IO(NSIO, 0x5)         # the first patches' spelling (6.18: ENOTTY)
NS_GET_PID_FROM_PIDNS = IOR(NSIO, 0x6, 4)      # the pid is passed by value
NS_GET_TGID_FROM_PIDNS = IOR(NSIO, 0x7, 4)
NS_GET_PID_IN_PIDNS = IOR(NSIO, 0x8, 4)
NS_GET_TGID_IN_PIDNS = IOR(NSIO, 0x9, 4)
MNT_NS_INFO_SIZE_VER0 = 16
NS_MNT_GET_INFO = IOR(NSIO, 10, MNT_NS_INFO_SIZE_VER0)
NS_MNT_GET_NEXT = IOR(NSIO, 11, MNT_NS_INFO_SIZE_VER0)
NS_MNT_GET_PREV = IOR(NSIO, 12, MNT_NS_INFO_SIZE_VER0)
NS_GET_ID = IOR(NSIO, 13, 8)                   # any namespace's 64-bit id


class MntNsInfo(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("nr_mounts", ctypes.c_uint32),
                ("mnt_ns_id", ctypes.c_uint64)]


# listns(2), 6.19
LISTNS_CURRENT_USER = 0xFFFFFFFFFFFFFFFF


class NsIdReq(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("spare", ctypes.c_uint32),
                ("ns_id", ctypes.c_uint64), ("ns_type", ctypes.c_uint32),
                ("spare2", ctypes.c_uint32), ("user_ns_id", ctypes.c_uint64)]


# prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE): what CRIU's `userns` check asks
PR_SET_MM = 35
PR_SET_MM_MAP_SIZE = 15


def unshare(flags):
    return syscall("unshare", flags)


def setns(fd, nstype=0):
    return syscall("setns", fd, nstype)


def ns_get_nstype(fd):
    return ioctl(fd, NS_GET_NSTYPE)


def ns_get_userns(fd):
    """An fd of the user namespace owning the namespace of ``fd``."""
    return ioctl(fd, NS_GET_USERNS)


def ns_get_parent(fd):
    """An fd of the parent of a user or pid namespace."""
    return ioctl(fd, NS_GET_PARENT)


def related_ino(path, ioctl):
    """The inode number of the namespace that ``ioctl`` (ns_get_userns, ns_get_parent)
    relates the one at ``path`` (a /proc/PID/ns link) to."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        other = ioctl(fd)
    finally:
        os.close(fd)
    try:
        return os.fstat(other).st_ino
    finally:
        os.close(other)


def ns_get_owner_uid(fd):
    uid = ctypes.c_uint32()
    ioctl(fd, NS_GET_OWNER_UID, ctypes.byref(uid))
    return uid.value


def _u64_ioctl(fd, request):
    value = ctypes.c_uint64()
    ioctl(fd, request, ctypes.byref(value))
    return value.value


def ns_get_mntns_id(fd, legacy=False):
    """The 64-bit id of the mount namespace of ``fd``."""
    return _u64_ioctl(fd, NS_GET_MNTNS_ID_LEGACY if legacy else NS_GET_MNTNS_ID)


def ns_get_id(fd):
    """The 64-bit id of any namespace."""
    return _u64_ioctl(fd, NS_GET_ID)


def ns_pid_ioctl(fd, request, pid):
    """One of the NS_GET_{PID,TGID}_{FROM,IN}_PIDNS translations: the translated pid."""
    return ioctl(fd, request, pid)


def ns_mnt_info(fd, request=NS_MNT_GET_INFO):
    """NS_MNT_GET_INFO (-> (None, info)) or NEXT/PREV (-> (fd of that namespace, info))."""
    info = MntNsInfo(size=MNT_NS_INFO_SIZE_VER0)
    ret = ioctl(fd, request, ctypes.byref(info))
    return (None if request == NS_MNT_GET_INFO else ret), info


def listns(ns_type=0, user_ns_id=0, after_id=0, max_ids=256, flags=0):
    """listns(2): namespace ids (one call)."""
    req = NsIdReq(size=ctypes.sizeof(NsIdReq), ns_id=after_id, ns_type=ns_type,
                  user_ns_id=user_ns_id)
    ids = (ctypes.c_uint64 * max_ids)()
    ret = syscall("listns", ctypes.byref(req), ids, max_ids, flags)
    return list(ids[:ret])



def mm_map_size():
    """prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE): the size of struct prctl_mm_map."""
    size = ctypes.c_uint32()
    syscall("prctl", PR_SET_MM, PR_SET_MM_MAP_SIZE, ctypes.byref(size), 0, 0)
    return size.value


def map_self(uid, gid, inner=0):
    """After unshare(CLONE_NEWUSER): map ``inner`` to the caller's former uid/gid.

    The one mapping an unprivileged process may write for itself (setgroups
    denied first, as the kernel requires for the gid map).
    """
    for name, text in (("setgroups", "deny"), ("uid_map", f"{inner} {uid} 1"),
                       ("gid_map", f"{inner} {gid} 1")):
        try:
            fd = os.open(f"/proc/self/{name}", os.O_WRONLY)
        except FileNotFoundError:
            if name == "setgroups":  # before 3.19 there is no setgroups file
                continue
            raise
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
