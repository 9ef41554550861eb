"""unshare(2), setns(2), clone flags and the nsfs ioctls."""

from .libc import IO, syscall, ioctl

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# <linux/nsfs.h>
NSIO = 0xB7
NS_GET_USERNS = IO(NSIO, 0x1)
NS_GET_PARENT = IO(NSIO, 0x2)
NS_GET_NSTYPE = IO(NSIO, 0x3)
NS_GET_OWNER_UID = IO(NSIO, 0x4)


def unshare(flags):
    return syscall("unshare", flags)


def setns(fd, nstype=0):
    return syscall("setns", fd, nstype)


def ns_get_nstype(fd):
    return ioctl(fd, NS_GET_NSTYPE)
