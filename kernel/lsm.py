"""Linux security modules: landlock_create_ruleset(2), lsm_list_modules(2).

Thin wrappers: failures raise OSError with the kernel's errno.
"""

import ctypes

from .libc import syscall

# <linux/landlock.h>
LANDLOCK_CREATE_RULESET_VERSION = 1 << 0
LANDLOCK_CREATE_RULESET_ERRATA = 1 << 1

# <linux/lsm.h> LSM ids (6.8)
LSM_IDS = {
    100: "capability", 101: "selinux", 102: "smack", 103: "tomoyo", 104: "apparmor",
    105: "yama", 106: "loadpin", 107: "safesetid", 108: "lockdown", 109: "bpf",
    110: "landlock", 111: "ima", 112: "evm", 113: "ipe",
}


def landlock_create_ruleset(attr=None, size=0, flags=0):
    return syscall("landlock_create_ruleset", attr, size, flags)


def landlock_abi_version():
    """The Landlock ABI version the kernel offers (OSError when none)."""
    return landlock_create_ruleset(None, 0, LANDLOCK_CREATE_RULESET_VERSION)


def lsm_list_modules(max_ids=32):
    """lsm_list_modules(2) (6.8): the ids of the active LSMs, in order."""
    ids = (ctypes.c_uint64 * max_ids)()
    size = ctypes.c_uint32(ctypes.sizeof(ids))
    ret = syscall("lsm_list_modules", ids, ctypes.byref(size), 0)
    return [ids[i] for i in range(ret)]


def lsm_names(ids):
    return [LSM_IDS.get(i, f"lsm{i}") for i in ids]
