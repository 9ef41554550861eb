"""Capabilities of the calling process (from /proc/self/status)."""

from . import procfs

CAP = {
    "CAP_DAC_READ_SEARCH": 2,
    "CAP_NET_ADMIN": 12,
    "CAP_IPC_LOCK": 14,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_RESOURCE": 24,
    "CAP_AUDIT_CONTROL": 30,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}

# Capabilities split off CAP_SYS_ADMIN, which still grants them.
_ALSO_GRANTED_BY_SYS_ADMIN = {"CAP_BPF", "CAP_PERFMON", "CAP_CHECKPOINT_RESTORE"}


def effective(pid="self"):
    """The effective capability mask as an int."""
    return int(procfs.status(pid, keys=("CapEff",)).get("CapEff", "0"), 16)


def has(name, mask=None):
    mask = effective() if mask is None else mask
    if mask >> CAP[name] & 1:
        return True
    return name in _ALSO_GRANTED_BY_SYS_ADMIN and bool(mask >> CAP["CAP_SYS_ADMIN"] & 1)
